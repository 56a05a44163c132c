"""``kws-edge listen``: a file streams like the detector, bad settings are one error line, and
listening imports nothing heavy."""

from __future__ import annotations

import json
import subprocess
import sys

from edge_runtime.audio_source import file_source
from edge_runtime.detector import DetectorConfig, StreamingDetector, run_detector
from edge_runtime.wav import write_wav
from tests.conftest import ROOT
from tests.tone_streams import RATE, error_lines, keyword_stream, run_cli


def test_listen_cli_streams_a_file_like_the_detector(tone_model, tone_model_path,
                                                     tmp_path) -> None:
    x, _ = keyword_stream(seed=1, n_words=6)
    wav = tmp_path / "s.wav"
    write_wav(wav, x, RATE)
    out = run_cli("listen", "--input", wav, "--fast", "--json", "--model", tone_model_path,
                  "--threshold", "0.6", "--refractory-ms", "800")
    assert out.returncode == 0, out.stderr
    printed = [json.loads(line) for line in out.stdout.splitlines()]
    config = DetectorConfig(threshold=0.6, refractory_ms=800)
    expected = run_detector(StreamingDetector(tone_model, config), file_source(wav, RATE, 1600))
    assert printed == [e.to_dict() for e in expected] and printed
    text = run_cli("listen", "--input", wav, "--fast", "--model", tone_model_path)
    assert text.returncode == 0 and text.stdout.split()[1] in ("yes", "no")


def test_listen_cli_rejects_bad_settings(tone_model_path, tmp_path) -> None:
    out = run_cli("listen", "--input", tmp_path / "none.wav", "--model", tone_model_path,
                  "--hop-ms", "30")
    assert out.returncode == 2
    assert error_lines(out.stderr) == [
        "error: --hop-ms 30 must be a positive multiple of the front-end hop (20 ms)"]
    out = run_cli("listen", "--input", tmp_path / "none.wav", "--model", tone_model_path)
    assert out.returncode == 2 and "no such file" in out.stderr and "Traceback" not in out.stderr


def test_streaming_imports_no_tensorflow(tone_model_path, tmp_path) -> None:
    wav = tmp_path / "s.wav"
    write_wav(wav, keyword_stream(n_words=3)[0], RATE)
    code = (
        "import sys\n"
        "from edge_runtime.cli import main\n"
        f"assert main(['listen', '--input', {str(wav)!r}, '--fast', '--model', "
        f"{str(tone_model_path)!r}]) == 0\n"
        "import edge_runtime.serve, edge_runtime.stream_gen, edge_runtime.stream_score\n"
        "heavy = {'tensorflow', 'keras', 'librosa', 'scipy', 'flask', 'sounddevice',"
        " 'matplotlib'} & set(sys.modules)\n"
        "assert not heavy, heavy\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                         timeout=120)
    assert out.returncode == 0, out.stderr
