"""Audio sources: a WAV file paced in real time, and the microphone's missing-extra message."""

from __future__ import annotations

import time

import numpy as np
import pytest

from edge_runtime.audio_source import file_source
from edge_runtime.wav import write_wav
from tests.tone_streams import RATE, error_lines, run_cli


def test_file_source_paces_in_real_time(tmp_path) -> None:
    wav = tmp_path / "half.wav"
    write_wav(wav, np.zeros(RATE // 2, dtype=np.float32), RATE)
    t0 = time.monotonic()
    chunks = list(file_source(wav, RATE, 1600, realtime=True))
    assert time.monotonic() - t0 >= 0.45
    assert sum(c.size for c in chunks) == RATE // 2


def test_listen_without_sounddevice_says_what_to_install(tone_model_path) -> None:
    import importlib.util

    if importlib.util.find_spec("sounddevice") is not None:
        pytest.skip("sounddevice is installed here; the missing-extra message cannot be shown")
    out = run_cli("listen", "--model", tone_model_path)
    assert out.returncode == 2
    assert len(error_lines(out.stderr)) == 1
    assert error_lines(out.stderr)[0].startswith("error: ")
    assert "install kws-edge[mic]" in out.stderr and "Traceback" not in out.stderr
