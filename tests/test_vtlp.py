"""Vocal tract length perturbation: warped mel band edges move a voice's spectrum, not its
timing."""

import numpy as np
import pytest

from edge_runtime.frontend import (
    EDGE_FRONTEND,
    EDGE_LOG_MEL_FRONTEND,
    WIDEBAND_FRONTEND,
    Frontend,
    mel_filterbank,
    warp_hz,
)
from train.augment import AugmentConfig
from train.vtlp import warp_factors, warped_features, warped_frontend

SR = 16000


def tone(hz: float) -> np.ndarray:
    t = np.arange(SR) / SR
    return (0.3 * np.sin(2 * np.pi * hz * t)).astype(np.float32)


def test_warp_factors_lie_within_the_range_in_steps():
    alpha = warp_factors(np.random.default_rng(0), 2000, 10.0)
    assert alpha.min() >= 0.9 - 1e-9 and alpha.max() <= 1.1 + 1e-9
    np.testing.assert_allclose(alpha * 100, np.round(alpha * 100), atol=1e-6)
    assert len(np.unique(alpha)) > 15  # the whole range is used
    np.testing.assert_array_equal(alpha, warp_factors(np.random.default_rng(0), 2000, 10.0))


def test_factor_one_is_the_plain_front_end():
    waves = np.stack([tone(700), tone(1500)])
    np.testing.assert_array_equal(warped_features(waves, EDGE_FRONTEND, np.ones(2)),
                                  Frontend(EDGE_FRONTEND)(waves))
    # bands up to Nyquist, where factor 1 goes through the warp's upper segment
    hz = np.fft.rfftfreq(1024, 1 / SR)
    np.testing.assert_array_equal(warp_hz(hz, 1.0, SR / 2), hz)


def test_a_warped_tone_looks_like_a_lower_or_higher_tone():
    """Band edges scaled by 1.1 show a 1,000 Hz tone where the plain front-end shows a
    1,000 / 1.1 Hz one (and 0.9: 1,000 / 0.9 Hz): each row through its own factor."""
    plain = Frontend(EDGE_LOG_MEL_FRONTEND)
    waves = np.stack([tone(1000), tone(1000), tone(1000)])
    warped = warped_features(waves, EDGE_LOG_MEL_FRONTEND, np.array([1.1, 0.9, 1.0]))
    peak = warped.mean(axis=1).argmax(axis=1)
    expect = [plain(tone(hz)[None])[0].mean(axis=0).argmax() for hz in (1000 / 1.1, 1000 / 0.9,
                                                                         1000)]
    assert list(peak) == expect
    assert peak[0] < peak[2] < peak[1]


def test_every_filter_edge_scales_by_the_factor():
    plain = mel_filterbank(EDGE_FRONTEND)
    hz = np.fft.rfftfreq(EDGE_FRONTEND.n_fft, 1 / SR)
    centre = (plain * hz).sum(axis=1) / plain.sum(axis=1)
    warped = warped_frontend(EDGE_FRONTEND, 1.1).filterbank()
    centre_w = (warped * hz).sum(axis=1) / warped.sum(axis=1)
    np.testing.assert_allclose(centre_w[10:] / centre[10:], 1.1, rtol=0.02)


def test_vtlp_pct_is_checked():
    with pytest.raises(ValueError, match="vtlp_pct"):
        AugmentConfig(vtlp_pct=50)


def test_the_edge_front_ends_filters_scale_exactly_by_the_factor():
    """Its band (up to 4 kHz) lies below the warp's boundary for factors within +-20 %."""
    edges = [20.0, 4000.0]
    for alpha in (0.8, 0.9, 1.1, 1.2):
        np.testing.assert_array_equal(warp_hz(np.array(edges), alpha, SR / 2),
                                      alpha * np.array(edges))


def test_the_warp_keeps_nyquist_and_moves_high_frequencies_less():
    hz = np.linspace(0, SR / 2, 801)
    for alpha in (0.85, 0.9, 1.1, 1.15):
        warped = warp_hz(hz, alpha, SR / 2)
        assert warped[0] == 0 and warped[-1] == pytest.approx(SR / 2)
        assert np.all(np.diff(warped) > 0)  # one to one, order kept
        np.testing.assert_allclose(warped[hz <= 4000], alpha * hz[hz <= 4000])
        ratio = warped[1:] / hz[1:]
        assert abs(ratio[-1] - 1) < 1e-9 and np.all(np.abs(np.diff(ratio)) < 1e-3)  # continuous


def test_no_filter_of_a_full_band_front_end_is_warped_past_nyquist():
    """With mel bands up to 8 kHz, scaling every edge by 1.1 would push the top filters past
    Nyquist, where they see no energy: the piecewise warp keeps every filter in the band."""
    for alpha in (0.9, 1.1):
        bank = warped_frontend(WIDEBAND_FRONTEND, alpha).filterbank()
        assert bank.shape == mel_filterbank(WIDEBAND_FRONTEND).shape
        assert np.all(bank.sum(axis=1) > 0)
    hz = np.fft.rfftfreq(WIDEBAND_FRONTEND.n_fft, 1 / SR)
    top = warped_frontend(WIDEBAND_FRONTEND, 1.1).filterbank()[-1]
    assert (top * hz).sum() / top.sum() > 7000  # the top filter still covers the top band
