"""Tempo perturbation in the front-end: a clip's frames cut at a scaled hop.

Frames cut every ``hop * rate`` samples instead of every ``hop`` are those of the same clip
said ``rate`` times as fast: each frame's spectrum (the voice, its pitch and formants) stays as
it was, only how many frames a sound lasts changes (unlike ``AugmentConfig.speed_pct``, which
moves pitch and tempo together, and ``train.vtlp``, which moves the voice alone). The frames are
placed about the centre of those the plain front-end cuts; positions past the clip's ends are
held at its first or last frame.
"""

from __future__ import annotations

import numpy as np

from edge_runtime.frontend import FrontendConfig, frames_in


def tempo_starts(samples: int, config: FrontendConfig, rate: np.ndarray) -> np.ndarray:
    """``(N, frames)`` first samples of the frames of clips of ``samples`` samples, row ``i``
    cut every ``hop * rate[i]`` samples (rate 1: the plain front-end's ``k * hop``)."""
    count = frames_in(samples, config)
    offsets = (np.arange(count) - (count - 1) / 2) * config.hop_length
    centre = (count - 1) * config.hop_length / 2
    starts = np.rint(centre + np.asarray(rate, dtype=np.float64)[:, None] * offsets)
    return np.clip(starts.astype(np.int64), 0, samples - config.n_fft)


def tempo_frames(waves: np.ndarray, config: FrontendConfig, rate: np.ndarray) -> np.ndarray:
    """Frames ``(N, frames, n_fft)`` (float64) of ``waves`` ``(N, samples)``, row ``i`` at tempo
    ``rate[i]`` (see :func:`tempo_starts`)."""
    waves = np.asarray(waves, dtype=np.float64)
    starts = tempo_starts(waves.shape[1], config, rate)
    index = starts[..., None] + np.arange(config.n_fft)
    return waves[np.arange(len(waves))[:, None, None], index]
