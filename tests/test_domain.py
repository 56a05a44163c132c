"""benchmarks.experiments.domain: clip levels and per-folder statistics on known signals."""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks.experiments.domain import clip_levels, folder_levels
from edge_runtime.wav import write_wav

RATE = 16000


def tone(freq: float, amplitude: float) -> np.ndarray:
    t = np.arange(RATE) / RATE
    return (amplitude * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def test_clip_levels_of_a_sine():
    rms, peak, centroid = clip_levels(tone(1000.0, 0.5), RATE)
    assert rms == pytest.approx(20 * np.log10(0.5 / np.sqrt(2)), abs=0.01)  # -9.03 dBFS
    assert peak == pytest.approx(20 * np.log10(0.5), abs=0.01)  # -6.02 dBFS
    assert centroid == pytest.approx(1000.0, abs=1.0)


def test_folder_levels_per_word_and_drawn_clips(tmp_path):
    for i, amplitude in enumerate((0.1, 0.2, 0.4)):
        for word, freq in (("go", 300.0), ("up", 2000.0)):
            (tmp_path / word).mkdir(exist_ok=True)
            write_wav(tmp_path / word / f"s{i}_nohash_0.wav", tone(freq, amplitude), RATE)
    levels = folder_levels(tmp_path, ("go", "up", "no"), per_word=5)
    assert set(levels) == {"go", "up"}  # a word without clips is left out
    go = levels["go"]
    assert go["clips"] == 3
    assert go["rms_dbfs"]["median"] == pytest.approx(20 * np.log10(0.2 / np.sqrt(2)), abs=0.01)
    assert go["peak_dbfs"]["p10"] < go["peak_dbfs"]["median"] < go["peak_dbfs"]["p90"]
    assert go["centroid_hz"]["median"] == pytest.approx(300.0, abs=1.0)
    assert levels["up"]["centroid_hz"]["median"] == pytest.approx(2000.0, abs=1.0)
    assert folder_levels(tmp_path, ("go",), per_word=2)["go"]["clips"] == 2
