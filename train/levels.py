"""Signal levels of batches of waveforms."""

from __future__ import annotations

import numpy as np


def row_rms(batch: np.ndarray) -> np.ndarray:
    """``(N, 1)`` float64 RMS of each row of ``batch`` ``(N, samples)``."""
    return np.sqrt(np.mean(np.asarray(batch, dtype=np.float64) ** 2, axis=1, keepdims=True))
