"""Augmentation: each transform does what it says, is deterministic and can be turned off."""

from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import speech_like
from train.augment import AugmentConfig, augment_waveforms, coloured_noise, spec_augment

OFF = dict(noise=False, shift=False, gain=False, specaugment=False)


def batch(n: int = 16) -> np.ndarray:
    return np.stack([speech_like(1.0, seed=i) for i in range(n)])


def test_deterministic_for_a_seed_and_varies_across_seeds():
    x = batch()
    cfg = AugmentConfig()
    noise = [np.random.default_rng(0).standard_normal(40000).astype(np.float32) * 0.1]
    a = augment_waveforms(x, np.random.default_rng(7), noise, cfg)
    b = augment_waveforms(x, np.random.default_rng(7), noise, cfg)
    c = augment_waveforms(x, np.random.default_rng(8), noise, cfg)
    assert a.shape == x.shape and a.dtype == np.float32
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    assert np.abs(a).max() <= 1.0
    assert np.array_equal(x, batch())  # input untouched


def test_everything_off_is_identity():
    x = batch(4)
    out = augment_waveforms(x, np.random.default_rng(0), [], AugmentConfig(**OFF))
    assert np.array_equal(out, x)
    feats = np.random.default_rng(0).standard_normal((4, 49, 10)).astype(np.float32)
    assert np.array_equal(spec_augment(feats, np.random.default_rng(0), AugmentConfig(**OFF)),
                          feats)


def test_speed_moves_pitch_and_duration_together_within_the_limit():
    sr, n = 16000, 32
    t = np.arange(sr) / sr
    tone = np.where(np.abs(t - 0.5) < 0.2, np.sin(2 * np.pi * 500 * t), 0.0)  # 400 ms, 500 Hz
    x = np.tile(tone.astype(np.float32), (n, 1))
    cfg = AugmentConfig(**OFF, speed_pct=10)
    out = augment_waveforms(x, np.random.default_rng(3), [], cfg)
    assert out.shape == x.shape and out.dtype == np.float32
    pitch = np.abs(np.fft.rfft(out, axis=1)).argmax(axis=1)  # 1-Hz bins
    loud = np.abs(out) > 0.5
    duration = (sr - loud[:, ::-1].argmax(axis=1) - loud.argmax(axis=1)) / sr
    assert np.all((pitch >= 450 - 2) & (pitch <= 550 + 2))  # 500 Hz x 0.9-1.1
    assert np.ptp(pitch) > 40  # the factors vary across clips
    factor = pitch / 500
    assert np.allclose(duration * factor, 0.4, atol=0.01)  # faster: higher AND shorter
    centre = (loud.argmax(axis=1) + sr - loud[:, ::-1].argmax(axis=1)) / 2 / sr
    assert np.allclose(centre, 0.5, atol=0.01)  # stays centred
    assert np.array_equal(out, augment_waveforms(x, np.random.default_rng(3), [], cfg))


def test_shift_moves_each_clip_within_the_limit():
    x = np.zeros((50, 16000), dtype=np.float32)
    x[:, 8000] = 1.0
    cfg = AugmentConfig(**{**OFF, "shift": True}, shift_ms=100)
    out = augment_waveforms(x, np.random.default_rng(1), [], cfg)
    moved = out.argmax(axis=1) - 8000
    assert np.all(out.max(axis=1) == 1.0)
    assert np.all(np.abs(moved) <= 1600) and len(set(moved.tolist())) > 10


def test_gain_stays_within_the_range():
    x = batch(64) * 0.5
    out = augment_waveforms(x, np.random.default_rng(2), [],
                            AugmentConfig(**{**OFF, "gain": True}, gain_db=6))
    db = 20 * np.log10(np.abs(out).max(axis=1) / np.abs(x).max(axis=1))
    assert db.min() >= -6.001 and db.max() <= 6.001 and db.max() - db.min() > 6


@pytest.mark.parametrize("use_recordings", [True, False])
def test_noise_is_mixed_at_the_requested_snr(use_recordings):
    x = batch(32)
    recordings = ([np.random.default_rng(3).standard_normal(50000).astype(np.float32)]
                  if use_recordings else [])
    cfg = AugmentConfig(**{**OFF, "noise": True}, noise_prob=1.0, noise_snr_db=(10, 20))
    out = augment_waveforms(x, np.random.default_rng(4), recordings, cfg)
    added = out - x
    snr = 10 * np.log10(np.mean(x**2, axis=1) / np.mean(added**2, axis=1))
    assert snr.min() > 9.9 and snr.max() < 20.1


def test_noise_probability():
    x = batch(200)
    cfg = AugmentConfig(**{**OFF, "noise": True}, noise_prob=0.3)
    out = augment_waveforms(x, np.random.default_rng(5), [], cfg)
    share = np.mean(np.any(out != x, axis=1))
    assert 0.2 < share < 0.4


def test_noise_colours_have_their_spectral_slope():
    rng = np.random.default_rng(6)
    slopes = {}
    for colour in ("white", "pink", "brown"):
        noise = coloured_noise(rng, 8, 16000, colour)
        assert np.allclose(np.sqrt(np.mean(noise.astype(np.float64) ** 2, axis=1)), 1, atol=1e-3)
        power = np.mean(np.abs(np.fft.rfft(noise, axis=1)) ** 2, axis=0)
        f = np.arange(power.size)
        band = (f > 50) & (f < 5000)
        slopes[colour] = np.polyfit(np.log(f[band]), np.log(power[band]), 1)[0]
    assert abs(slopes["white"]) < 0.2
    assert abs(slopes["pink"] + 1) < 0.2
    assert abs(slopes["brown"] + 2) < 0.2


def test_spec_augment_masks_bands_with_the_mean():
    feats = np.random.default_rng(7).standard_normal((64, 49, 10)).astype(np.float32) + 5
    cfg = AugmentConfig(time_masks=2, time_mask_frames=5, freq_masks=1, freq_mask_bins=2)
    out = spec_augment(feats, np.random.default_rng(8), cfg)
    mean = feats.mean(axis=1, keepdims=True)
    changed = out != feats
    assert changed.any()
    assert np.allclose(out[changed], np.broadcast_to(mean, feats.shape)[changed])
    for i in range(64):
        frames_fully_masked = np.all(changed[i], axis=1).sum()
        coeffs_fully_masked = np.all(changed[i], axis=0).sum()
        assert frames_fully_masked <= 10 and coeffs_fully_masked <= 2
    again = spec_augment(feats, np.random.default_rng(8), cfg)
    assert np.array_equal(out, again)


def test_bad_config():
    with pytest.raises(ValueError, match="colours"):
        AugmentConfig(noise_colours=("purple",))
    with pytest.raises(ValueError, match="noise_prob"):
        AugmentConfig(noise_prob=2)
    with pytest.raises(ValueError, match="speed_pct"):
        AugmentConfig(speed_pct=-1)


def test_mix_up_mixes_features_targets_and_weights_alike():
    """Row i of a batch of unit vectors e_i shows its mixing weights: lam on i, 1 - lam on its
    partner; the targets and loss weights carry exactly the same mix."""
    from train.augment import mix_up

    n, classes = 64, 3
    feats = np.eye(n, dtype=np.float32).reshape(n, n, 1)
    labels = np.arange(n) % classes
    weights = np.arange(1, n + 1, dtype=np.float32)
    x, t, w = mix_up(feats, labels, weights, np.random.default_rng(0), 0.4, classes)
    x = x[..., 0]
    lam = x[np.arange(n), np.arange(n)]
    partner = np.where(np.isclose(lam, 1.0), np.arange(n),
                       np.argmax(x - np.diag(lam), axis=1))
    assert np.all(lam >= 0.5) and np.all(lam <= 1.0) and np.ptp(lam) > 0.1
    np.testing.assert_allclose(x.sum(axis=1), 1.0, rtol=1e-6)
    one_hot = np.eye(classes, dtype=np.float32)
    expected = lam[:, None] * one_hot[labels] + (1 - lam[:, None]) * one_hot[labels[partner]]
    np.testing.assert_allclose(t, expected, atol=1e-6)
    np.testing.assert_allclose(w, lam * weights + (1 - lam) * weights[partner], rtol=1e-5)
    assert np.all(t.argmax(axis=1)[lam > 0.5] == labels[lam > 0.5])
    # probability targets (e.g. a teacher's) are mixed as they are
    soft = np.full((n, classes), 1 / classes, np.float32)
    _, t2, _ = mix_up(feats, soft, weights, np.random.default_rng(0), 0.4, classes)
    np.testing.assert_allclose(t2, soft, rtol=1e-6)
