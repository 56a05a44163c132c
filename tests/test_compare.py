"""``kws compare``: float32 vs int8 through the edge runtime, the gate, bad model files."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from convert.compare import agreement, compare_files, folder_test_set, report_of
from convert.gate import GATE_EXIT_STATUS, check_gate
from convert.report import markdown
from edge_runtime.evaluate import evaluate_model
from edge_runtime.frontend import EDGE_FRONTEND
from edge_runtime.manifest import load_manifest, manifest_path_for, write_manifest
from edge_runtime.model import KwsModel
from tests.fixtures_data import make_fake_dataset
from tests.model_factory import resealed

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def kws(*args) -> subprocess.CompletedProcess:
    """Run ``kws`` (the toolchain CLI) as a subprocess."""
    return subprocess.run([str(BIN / "kws"), *map(str, args)], capture_output=True, text=True,
                          cwd=ROOT, timeout=300)


@pytest.fixture(scope="module")
def fake_data(tmp_path_factory) -> Path:
    return make_fake_dataset(tmp_path_factory.mktemp("data"), ["yes", "no", "up", "cat"],
                             speakers=4, per_speaker=2, with_lists=True, mini_layout=True)


def compare_args(models: dict[str, Path], data: Path, *extra: str) -> list[str]:
    return ["compare", "--float", models["float32"], "--int8", models["int8"],
            "--data", data, *extra]


def test_gate_drop_is_in_points_and_inclusive():
    assert check_gate(0.90, 0.89, 0.5).drop_points == pytest.approx(1.0)
    assert not check_gate(0.90, 0.89, 0.5).passed
    assert check_gate(0.90, 0.897, 0.5).passed
    assert check_gate(0.90, 0.91, 0.0).passed  # int8 one point better
    assert not check_gate(0.90, 0.91, 0.5, min_accuracy=95).passed
    assert GATE_EXIT_STATUS == 3


def test_comparison_matches_the_runtime_evaluation(tiny_models, fake_data):
    comparison = compare_files(tiny_models["float32"], tiny_models["int8"], fake_data,
                               max_drop=100)
    for quant in ("float32", "int8"):
        direct = evaluate_model(KwsModel(tiny_models[quant]), fake_data)
        assert comparison.reports[quant].confusion.tolist() == direct.confusion.tolist()
        assert comparison.sizes[quant] == tiny_models[quant].stat().st_size
    float_pred = [p[2] for p in comparison.reports["float32"].predictions]
    int8_pred = [p[2] for p in comparison.reports["int8"].predictions]
    same = np.mean([a == b for a, b in zip(float_pred, int8_pred, strict=True)])
    assert comparison.agreement_float_int8 == pytest.approx(same)
    assert comparison.n == 8  # the last speaker's 4 words x 2 clips (testing_list.txt)


def test_agreement_and_report_of():
    labels = ["a", "b", "c"]
    from convert.compare import ClipSet

    test = ClipSet(["1", "2", "3", "4"], ["a", "b", "c", "a"], np.zeros((4, 10), np.float32))
    one = report_of(test, labels, [0, 1, 2, 1])
    two = report_of(test, labels, [0, 1, 0, 0])
    assert one.accuracy == 0.75 and two.accuracy == 0.75
    assert agreement(one, two) == 0.5
    assert one.confusion.tolist() == [[1, 1, 0], [0, 1, 0], [0, 0, 1]]


def test_compare_passes_with_generous_threshold(tiny_models, fake_data, tmp_path):
    out = tmp_path / "report"
    done = kws(*compare_args(tiny_models, fake_data, "--max-drop", "100", "--out", out,
                             "--json", "--min-accuracy", "0"))
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["gate"]["passed"] is True
    assert set(result["accuracy"]) == {"float32", "int8"}
    assert 0 <= result["agreement_float32_int8"] <= 1
    saved = json.loads((out / "compare_report.json").read_text())
    assert saved["accuracy"] == result["accuracy"]
    table = (out / "compare_report.md").read_text()
    assert "| float32 |" in table and "| int8 |" in table and "Per-class" in table
    for quant in ("float32", "int8"):
        assert (out / f"compare_confusion_{quant}.png").read_bytes()[:4] == b"\x89PNG"


def test_gate_fires_below_the_accuracy_floor(tiny_models, fake_data):
    done = kws(*compare_args(tiny_models, fake_data, "--max-drop", "100"))  # untrained models
    assert done.returncode == GATE_EXIT_STATUS
    assert "gate FAILED" in done.stderr
    assert "float32 accuracy" in done.stderr and "int8 accuracy" in done.stderr


def corrupt_copy(model: Path, folder: Path, content: bytes, rehash: bool) -> Path:
    """A copy of ``model`` with other bytes; ``rehash`` makes the manifest match them."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / model.name
    path.write_bytes(content)
    data = json.loads(manifest_path_for(model).read_text())
    if rehash:
        data = resealed(data, content)
    manifest_path_for(path).write_text(json.dumps(data))
    return path


def one_error_line(stderr: str) -> bool:
    """Exactly one ``error: …`` line, the last one, and no traceback (the interpreter may log
    an INFO line first)."""
    lines = stderr.strip().splitlines()
    errors = [line for line in lines if line.startswith("error: ")]
    return len(errors) == 1 and lines[-1] == errors[0] and "Traceback" not in stderr


@pytest.mark.parametrize("kind", ["truncated", "garbage", "altered"])
def test_corrupted_model_is_refused(tiny_models, fake_data, tmp_path, kind):
    original = tiny_models["int8"].read_bytes()
    content = {"truncated": original[: len(original) // 2],
               "garbage": np.random.default_rng(0).bytes(3000),
               "altered": original[:-8] + b"\0" * 8}[kind]
    bad = corrupt_copy(tiny_models["int8"], tmp_path / kind, content, rehash=kind != "altered")
    done = kws(*compare_args({"float32": tiny_models["float32"], "int8": bad}, fake_data))
    assert done.returncode == 2 and one_error_line(done.stderr)
    wav = next(fake_data.glob("yes/*.wav"))
    done = subprocess.run([str(BIN / "kws-edge"), "predict", "--model", str(bad), str(wav)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and one_error_line(done.stderr)


def test_compare_refuses_models_with_different_labels(tiny_models, fake_data, tmp_path):
    other = tmp_path / "other_int8.tflite"
    shutil.copy(tiny_models["int8"], other)
    labels = load_manifest(manifest_path_for(tiny_models["int8"])).labels
    write_manifest(other, labels=list(reversed(labels)),
                   frontend=load_manifest(manifest_path_for(tiny_models["int8"])).frontend,
                   quantization="int8")
    done = kws(*compare_args({"float32": tiny_models["float32"], "int8": other}, fake_data))
    assert done.returncode == 2 and "labels differ" in done.stderr


def test_markdown_lists_every_class(tiny_models, fake_data):
    comparison = compare_files(tiny_models["float32"], tiny_models["int8"], fake_data,
                               max_drop=100)
    text = markdown(comparison)
    for label in comparison.labels:
        assert f"| {label} |" in text
    assert "Agreement float32 vs int8" in text


def test_folder_test_set_counts_clips_without_label(tmp_path):
    data = make_fake_dataset(tmp_path / "d", ["yes", "cat"], speakers=2, per_speaker=1,
                             mini_layout=True, silence_clips=2, with_noise=False)
    test = folder_test_set(data, ["yes", "no"], EDGE_FRONTEND)
    assert sorted(test.truths) == ["yes", "yes"]
    assert test.skipped == {"no matching label": 4}  # 2 _unknown_ + 2 _silence_ clips


