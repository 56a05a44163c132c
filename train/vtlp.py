"""Vocal tract length perturbation (Jaitly & Hinton 2013) in the front-end.

A speaker's vocal tract scales the frequencies of their formants by roughly one factor.
Features of a clip computed with every mel filter's edges scaled by ``alpha`` (in Hz) are those
of the same clip from a speaker whose spectrum is scaled by ``1 / alpha``: the voice changes,
the tempo does not (unlike ``AugmentConfig.speed_pct``). Factors are drawn per clip in steps of
0.01, so a run builds a handful of front-ends once. The warp is piecewise linear
(``edge_runtime.frontend.warp_hz``): edges high in the band move less, so no filter of a
front-end reaching Nyquist is pushed past it.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from edge_runtime.frontend import Frontend, FrontendConfig, mel_filterbank
from train.tempo import tempo_frames

STEP = 0.01  # warp factors are multiples of this


class WarpedFrontend(Frontend):
    """The front-end of ``config`` with its mel filters' edges scaled by ``alpha``."""

    def __init__(self, config: FrontendConfig, alpha: float) -> None:
        super().__init__(config)
        self.alpha = alpha

    def filterbank(self) -> np.ndarray:
        return mel_filterbank(self.config, self.alpha)


def warp_factors(rng: np.random.Generator, n: int, pct: float) -> np.ndarray:
    """``n`` factors uniform within 1 +- ``pct`` %, rounded to ``STEP``."""
    alpha = rng.uniform(1 - pct / 100, 1 + pct / 100, size=n)
    return np.round(alpha / STEP) * STEP


@lru_cache(maxsize=128)
def warped_frontend(config: FrontendConfig, alpha: float) -> WarpedFrontend:
    return WarpedFrontend(config, alpha)


def warped_features(waves: np.ndarray, config: FrontendConfig, alpha: np.ndarray,
                    rate: np.ndarray | None = None) -> np.ndarray:
    """Features of ``waves`` ``(N, samples)``, row ``i`` through ``warped_frontend(alpha[i])``
    and, with ``rate``, at tempo ``rate[i]`` (``train.tempo``)."""
    out = np.empty((len(waves), *config.feature_shape), dtype=np.float32)
    for a in np.unique(alpha):
        rows = np.nonzero(alpha == a)[0]
        frontend = warped_frontend(config, float(a))
        if rate is None:
            out[rows] = frontend(waves[rows])
        else:
            out[rows] = frontend.features_of_frames(tempo_frames(waves[rows], config, rate[rows]))
    return out
