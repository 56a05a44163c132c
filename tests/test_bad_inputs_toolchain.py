"""Rows of tests/bad_inputs.md for the quantisation gate and ``kws convert``: a useless
model, a test split too small to measure the allowed drop, a nonsense ``--max-drop``, a
model already in ``--out``; and a model whose outputs are not numbers."""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from convert.gate import GATE_EXIT_STATUS, check_gate, min_test_clips
from edge_runtime.errors import KwsError
from tests.conftest import ROOT
from tests.fixtures_data import make_fake_dataset

BIN = Path(sys.executable).parent


def kws(*args) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / "kws"), *map(str, args)], capture_output=True, text=True,
                          cwd=ROOT, timeout=300)


def error_line(r: subprocess.CompletedProcess, status: int, pattern: str) -> None:
    lines = [x for x in r.stderr.splitlines() if x.startswith(("error", "gate"))]
    assert r.returncode == status, (r.returncode, r.stderr[-2000:])
    assert "Traceback" not in r.stderr
    assert len(lines) == 1 and re.search(pattern, lines[0]), (pattern, r.stderr[-2000:])


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    """A test split of 16 clips (the tiny models' 12 labels cover its words)."""
    return make_fake_dataset(tmp_path_factory.mktemp("data"), ["yes", "no", "up", "cat"],
                             speakers=4, per_speaker=2, with_lists=True, mini_layout=True)


def compare(models: dict[str, Path], data: Path, *extra) -> subprocess.CompletedProcess:
    return kws("compare", "--float", models["float32"], "--int8", models["int8"],
               "--data", data, *extra)


def test_gate_refuses_a_useless_model(tiny_models, data) -> None:
    """Row gate-below-min-accuracy: untrained float32 and int8 models agree (no drop) but
    are useless: the default --min-accuracy (50%) refuses them with status 3."""
    r = compare(tiny_models, data, "--max-drop", "100", "--json")
    error_line(r, GATE_EXIT_STATUS, r"gate FAILED: .*below the --min-accuracy floor of 50%")
    assert json.loads(r.stdout)["gate"]["passed"] is False
    assert check_gate(0.03, 0.03).passed is False  # the 3% model, no drop
    assert check_gate(0.92, 0.92).passed is True


def test_gate_refuses_a_test_split_too_small_to_measure_the_drop(tiny_models, data) -> None:
    """Row gate-test-split-too-small: one clip of 16 is 6.25 points; the default 0.5-point
    gate needs 200 clips (a 2-clip split used to pass anything)."""
    r = compare(tiny_models, data)
    error_line(r, 2, r"the test split has \d+ clips: .* at least 200 clips")
    assert min_test_clips(0.5) == 200 and min_test_clips(0.3) == 334
    assert min_test_clips(100) == 1


@pytest.mark.parametrize("value", ["nan", "inf", "-1", "101"])
def test_nonsense_max_drop_is_bad_input(value: str, tiny_models, data) -> None:
    """Row gate-max-drop-nan-inf-negative: before anything is loaded, status 2."""
    from convert.convert import ConvertConfig

    error_line(compare(tiny_models, data, f"--max-drop={value}"), 2,
               "--max-drop: must be within 0-100")
    with pytest.raises(KwsError, match="--max-drop must be within 0-100"):
        ConvertConfig(data_dir=data, keras_path=Path("m.keras"), max_drop=float(value))
    if value != "101":
        with pytest.raises(KwsError, match="--max-drop"):
            check_gate(0.9, 0.9, float(value))


def test_convert_will_not_replace_a_model_without_force(tmp_path, data) -> None:
    """Row convert-existing-model-needs-force: ``--out`` holds a model of that ``--name``:
    refused at once (status 2), the model untouched, nothing converted."""
    out = tmp_path / "artifacts"
    out.mkdir()
    shipped = {out / "kws_int8.tflite": b"the shipped model",
               out / "kws_int8.manifest.json": b"{}"}
    for path, content in shipped.items():
        path.write_bytes(content)
    r = kws("convert", "--keras", tmp_path / "model.keras", "--data", data, "--out", out,
            "--no-mlflow")
    error_line(r, 2, r"kws_int8.tflite exists: give --force to replace it")
    assert sorted(out.iterdir()) == sorted(shipped)
    assert all(path.read_bytes() == content for path, content in shipped.items())
    assert not any(tmp_path.glob(".artifacts-*staging*"))


def test_convert_checks_that_it_can_write_out_first(tmp_path, data) -> None:
    """Row convert-unwritable-out: ``--out`` under a file or in /proc is refused before the
    model is even loaded (it used to fail after calibrating and converting)."""
    (tmp_path / "file").write_text("x")
    for out in (tmp_path / "file" / "artifacts", Path("/proc/kws-artifacts")):
        r = kws("convert", "--keras", tmp_path / "missing.keras", "--data", data, "--out",
                out, "--no-mlflow")
        error_line(r, 2, "not writable|not a folder")


def test_a_model_with_nan_outputs_is_an_error_not_a_label(tmp_path, tiny_models) -> None:
    """Row model-nan-output: a (float32) model whose weights hold a NaN gives NaN
    probabilities; predict says so instead of printing a label (or invalid JSON)."""
    import keras

    from convert.tflite import to_tflite
    from edge_runtime.frontend import EDGE_FRONTEND
    from edge_runtime.manifest import write_manifest
    from edge_runtime.model import KwsModel
    from tests.model_factory import LABELS, tiny_keras_model

    model = tiny_keras_model(EDGE_FRONTEND, len(LABELS))
    dense = [layer for layer in model.layers if isinstance(layer, keras.layers.Dense)][-1]
    kernel, bias = dense.get_weights()
    dense.set_weights([kernel, np.full_like(bias, math.nan)])
    path = tmp_path / "nan_float32.tflite"
    path.write_bytes(to_tflite(model, "float32"))
    write_manifest(path, labels=list(LABELS), frontend=EDGE_FRONTEND, quantization="float32")
    with pytest.raises(KwsError, match="NaN or Inf probabilities"):
        KwsModel(path).predict_samples(np.zeros(16000, np.float32))
    from tests.wav_fixtures import wav_bytes

    wav = tmp_path / "a.wav"
    wav.write_bytes(wav_bytes(np.zeros(16000)))
    r = subprocess.run([sys.executable, "-m", "edge_runtime.cli", "predict", str(wav),
                        "--model", str(path), "--json"], capture_output=True, text=True,
                       cwd=ROOT, timeout=120)
    error_line(r, 2, "NaN or Inf probabilities")
    assert r.stdout == ""


ROWS = ("gate-below-min-accuracy", "gate-test-split-too-small",
        "gate-max-drop-nan-inf-negative", "convert-existing-model-needs-force",
        "convert-unwritable-out", "model-nan-output")
