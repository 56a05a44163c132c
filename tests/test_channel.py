"""Random rooms and microphones: the impulse responses are what they claim, clips keep their
length, timing and level, and the augmentation is repeatable and can be turned off."""

from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import speech_like
from train.augment import AugmentConfig, augment_waveforms
from train.channel import MIC_TAPS, OCTAVES_HZ, microphone_response, room_response, through_channel

SR = 16000
OFF = dict(noise=False, shift=False, gain=False, specaugment=False)


@pytest.mark.parametrize(("rt60", "drr"), [(0.2, 5.0), (0.5, 15.0)])
def test_room_decays_60_db_in_rt60_with_the_drawn_direct_to_reverberant_ratio(rt60, drr):
    h = room_response(np.random.default_rng(0), SR, (rt60, rt60), (drr, drr))
    assert h.size == int(rt60 * SR) and h[0] == 1.0 and np.abs(h[1:]).max() < 1.0
    assert 10 * np.log10(1.0 / np.sum(h[1:] ** 2)) == pytest.approx(drr, abs=1e-6)
    # energy of the tail in 20 ms blocks: a straight line of -60 dB per rt60
    block = SR // 50
    energy = np.array([np.sum(h[1 + i : 1 + i + block] ** 2)
                       for i in range(0, h.size - 1 - block, block)])
    t = np.arange(energy.size) * block / SR
    slope = np.polyfit(t, 10 * np.log10(energy), 1)[0]
    assert slope == pytest.approx(-60.0 / rt60, rel=0.15)


def test_microphone_gains_stay_within_the_range_and_vary():
    rng = np.random.default_rng(1)
    bands = np.array(OCTAVES_HZ[2:-1], dtype=int)  # 250 Hz - 4 kHz: inside the FIR's reach
    spread = []
    for _ in range(20):
        fir = microphone_response(rng, SR, 6.0)
        assert fir.size == MIC_TAPS and np.allclose(fir, fir[::-1])  # linear phase
        db = 20 * np.log10(np.abs(np.fft.rfft(fir, SR))[bands])  # 1-Hz bins
        assert np.all(np.abs(db) <= 6.5)
        spread.append(np.ptp(db))
    assert np.mean(spread) > 3.0  # not flat
    assert np.allclose(microphone_response(rng, SR, 0.0)[MIC_TAPS // 2], 1.0, atol=0.02)


def test_clips_keep_length_timing_and_level():
    x = np.zeros((8, SR), dtype=np.float32)
    x[:, 4000:4400] = np.sin(2 * np.pi * 1000 * np.arange(400) / SR)  # a 25-ms burst
    out = through_channel(x, np.random.default_rng(2), 1.0, (0.1, 0.6), (3.0, 20.0), 6.0, SR)
    assert out.shape == x.shape and out.dtype == np.float32
    rms = np.sqrt(np.mean(x.astype(np.float64) ** 2, axis=1))
    assert np.allclose(np.sqrt(np.mean(out.astype(np.float64) ** 2, axis=1)), rms, rtol=1e-4)
    assert np.all(np.abs(out[:, :3900]).max(axis=1) < 1e-3)  # nothing before the burst
    peak = np.abs(out).argmax(axis=1)
    assert np.all((peak >= 4000) & (peak < 4400 + 200))  # the direct sound stays in place
    tail = np.sqrt(np.mean(out[:, 4600:6000].astype(np.float64) ** 2, axis=1))
    assert np.all(tail > 1e-4)  # reverberation after the burst


def test_share_of_rows_and_repeatable():
    x = np.stack([speech_like(1.0, seed=i) for i in range(200)])
    args = ((0.1, 0.6), (3.0, 20.0), 6.0, SR)
    a = through_channel(x, np.random.default_rng(3), 0.5, *args)
    changed = np.any(a != x, axis=1)
    assert 70 < changed.sum() < 130
    assert np.array_equal(a, through_channel(x, np.random.default_rng(3), 0.5, *args))
    rng = np.random.default_rng(4)
    assert np.array_equal(through_channel(x, rng, 0.0, *args), x)
    assert rng.random() == np.random.default_rng(4).random()  # nothing drawn when off


def test_augmentation_plays_clips_through_the_channel_only_when_asked():
    x = np.stack([speech_like(1.0, seed=i) for i in range(16)])
    off = augment_waveforms(x, np.random.default_rng(5), [], AugmentConfig(**OFF))
    on = augment_waveforms(x, np.random.default_rng(5), [],
                           AugmentConfig(**OFF, channel_prob=1.0))
    assert np.array_equal(off, x) and np.all(np.any(on != x, axis=1))
    assert np.abs(on).max() <= 1.0


@pytest.mark.parametrize("bad", [dict(channel_prob=1.5), dict(channel_prob=-0.1),
                                 dict(rt60_s=(0.0, 0.5)), dict(rt60_s=(0.6, 0.1)),
                                 dict(drr_db=(10.0, 3.0)), dict(eq_db=-1.0)])
def test_bad_channel_settings_are_refused(bad):
    with pytest.raises(ValueError):
        AugmentConfig(**bad)
