"""Tempo perturbation: frames cut at a scaled hop change how long a sound lasts, not its
spectrum."""

import numpy as np
import pytest

from edge_runtime.frontend import EDGE_FRONTEND, EDGE_LOG_MEL_FRONTEND, Frontend
from train.augment import AugmentConfig
from train.tempo import tempo_frames, tempo_starts
from train.vtlp import warped_features

SR = 16000


def burst(ms: float, hz: float = 1000.0) -> np.ndarray:
    """A tone of ``ms`` milliseconds in the middle of a quiet one-second clip."""
    t = np.arange(SR) / SR
    wave = 1e-4 * np.random.default_rng(0).standard_normal(SR)
    on = np.abs(t - 0.5) < ms / 2000
    wave[on] += 0.3 * np.sin(2 * np.pi * hz * t[on])
    return wave


def loud_frames(features: np.ndarray) -> np.ndarray:
    """Per row, how many frames lie within 10 dB of the row's loudest (log-mel features)."""
    energy = features.max(axis=-1)
    return (energy > energy.max(axis=-1, keepdims=True) - 10).sum(axis=-1)


def test_rate_one_is_the_plain_front_end():
    waves = np.stack([burst(200), burst(300, 2000)])
    frontend = Frontend(EDGE_FRONTEND)
    np.testing.assert_array_equal(tempo_frames(waves, EDGE_FRONTEND, np.ones(2)),
                                  frontend.frames(waves))
    np.testing.assert_array_equal(warped_features(waves, EDGE_FRONTEND, np.ones(2), np.ones(2)),
                                  frontend(waves))


def test_frames_lie_in_the_clip_about_its_centre():
    starts = tempo_starts(SR, EDGE_FRONTEND, np.array([0.5, 1.0, 1.5]))
    hop, last = EDGE_FRONTEND.hop_length, SR - EDGE_FRONTEND.n_fft
    assert starts.shape == (3, EDGE_FRONTEND.n_frames)
    assert starts.min() >= 0 and starts.max() <= last
    np.testing.assert_array_equal(starts[1], np.arange(EDGE_FRONTEND.n_frames) * hop)
    centre = starts[1].mean()
    assert abs(starts[0].mean() - centre) <= 1  # slower: a shorter stretch about the centre
    np.testing.assert_allclose(np.diff(starts[0]), hop / 2, atol=1)
    assert starts[2, 0] == 0 and starts[2, -1] == last  # faster: held at the ends


def test_a_slower_clip_lasts_more_frames_with_the_same_spectrum():
    """At rate 0.8 a 300 ms tone lasts ~1/0.8 as many frames, at 1.25 ~0.8 as many; its
    spectrum (the loudest band) is the same at every rate."""
    wave = burst(300)
    waves = np.stack([wave, wave, wave])
    rate = np.array([0.8, 1.0, 1.25])
    feats = warped_features(waves, EDGE_LOG_MEL_FRONTEND, np.ones(3), rate)
    slow, plain, fast = loud_frames(feats)
    assert plain == pytest.approx(15, abs=2)  # 300 ms of 20 ms hops
    assert slow == pytest.approx(plain / 0.8, abs=1.5)
    assert fast == pytest.approx(plain / 1.25, abs=1.5)
    middle = feats[:, EDGE_FRONTEND.n_frames // 2]
    np.testing.assert_allclose(middle[0], middle[1], atol=0.5)
    np.testing.assert_allclose(middle[2], middle[1], atol=0.5)
    assert len(set(middle.argmax(axis=1))) == 1


def test_tempo_pct_is_checked():
    with pytest.raises(ValueError, match="tempo_pct"):
        AugmentConfig(tempo_pct=50)
    with pytest.raises(ValueError, match="tempo_pct"):
        AugmentConfig(tempo_pct=-1)
