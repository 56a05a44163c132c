"""``kws pipeline`` failures: one error line, status 2, and no empty run folder left behind."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.test_synth import no_espeak_env

KWS = Path(sys.executable).parent / "kws"  # the installed toolchain command


def pipeline(*args: str, cwd, env=None) -> subprocess.CompletedProcess:
    return subprocess.run([str(KWS), "pipeline", *args], cwd=cwd,
                          env=env or no_espeak_env(), capture_output=True, text=True,
                          timeout=600)


def test_demo_without_any_synthesiser_makes_no_run_folder(tmp_path):
    env = {**no_espeak_env(), "KWS_ESPEAK": "binary"}  # the binary alone, and it is missing
    r = pipeline("--demo", cwd=tmp_path, env=env)
    assert r.returncode == 2
    assert r.stderr.startswith("error: espeak-ng not found") and r.stderr.count("\n") == 1
    assert list(tmp_path.iterdir()) == []


def test_a_step_that_fails_removes_the_folder_it_made(tmp_path):
    (tmp_path / "empty").mkdir()
    out = tmp_path / "run"
    r = pipeline("--data", str(tmp_path / "empty"), "--out", str(out),
                 "--tracking-uri", f"sqlite:///{tmp_path / 'mlflow.db'}", cwd=ROOT)
    assert r.returncode == 2 and r.stderr.splitlines()[-1].startswith("error: "), r.stderr
    assert not out.exists()
    r = pipeline("--data", str(tmp_path / "nothing"), "--out", str(out), cwd=ROOT)
    assert r.returncode == 2 and "data folder not found" in r.stderr
    assert not out.exists()


def test_a_folder_given_and_existing_is_kept(tmp_path):
    (tmp_path / "empty").mkdir()
    out = tmp_path / "run"
    out.mkdir()
    r = pipeline("--data", str(tmp_path / "empty"), "--out", str(out),
                 "--tracking-uri", f"sqlite:///{tmp_path / 'mlflow.db'}", cwd=ROOT)
    assert r.returncode == 2 and out.is_dir()


def test_peak_rss_is_the_child_s_own(tmp_path):
    """A big parent (here ~400 MB more) must not show up in ``kws-edge predict``'s peak."""
    import resource

    import numpy as np

    from benchmarks.latency import predict_process
    from edge_runtime.wav import write_wav

    ballast = np.ones(400 * 2**20 // 8)
    parent_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    write_wav(tmp_path / "a.wav", np.zeros(16000, np.float32), 16000)
    *_, peak_mb = predict_process(ROOT / "artifacts" / "kws_int8.tflite", tmp_path / "a.wav")
    assert parent_mb > 400 and ballast.sum() > 0
    assert 10 < peak_mb < 200  # NumPy + LiteRT + the model, not the parent's 400+ MB


@pytest.mark.slow
def test_demo_pipeline_logs_registers_and_measures(tmp_path):
    """``kws pipeline --demo`` in small, with no espeak-ng on PATH, into a fresh SQLite store."""
    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    r = pipeline("--demo", "--demo-voices", "30", "--epochs", "2", "--bench-runs", "5",
                 "--max-drop", "100", "--min-accuracy", "0", "--out", str(tmp_path / "run"),
                 "--tracking-uri", uri,
                 "--experiment", "demo-test", "--lr", "0.002", "--patience", "3",
                 "--calibration", "50", "--word-balance", "0.5", "--unknown-bias", "0.5",
                 cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    report = json.loads((tmp_path / "run" / "report.json").read_text())
    client = MlflowClient(uri, uri)
    run = client.get_run(report["train"]["run_id"])
    assert client.get_experiment(run.info.experiment_id).name == "demo-test"
    assert (run.data.params["lr"], run.data.params["patience"]) == ("0.002", "3")
    assert run.data.tags["convert.calibration"] == "50"
    # every recipe and conversion option of kws train / kws convert reaches its step
    assert run.data.params["word_balance"] == "0.5"
    assert run.data.tags["convert.unknown_bias"] == "0.5"
    (data,) = run.inputs.dataset_inputs
    assert data.dataset.name == "demo_data" and len(data.dataset.digest) == 32
    tags = {t.key: t.value for t in data.tags}
    assert {k: int(tags[f"{k}_clips"]) for k in ("train", "val", "test")} == \
        report["data"]["counts"]
    logged = {f.path for f in client.list_artifacts(run.info.run_id, "pipeline")}
    assert {"pipeline/report.md", "pipeline/latency.md", "pipeline/latency.png"} <= logged
    champion = client.get_model_version_by_alias("kws-edge-12", "champion")
    assert int(champion.version) == 1 and champion.run_id == run.info.run_id
    assert "kws-edge-12 version 1 (now champion" in report["convert"]["registered"]
    assert report["benchmarks"]["int8"]["peak_rss_mb"] < 200  # the child, not the pipeline
    assert set(report["benchmarks"]) == {"int8", "float32"}
    assert report["benchmarks"]["int8"]["size_bytes"] == \
        (tmp_path / "run" / "models" / "kws_int8.tflite").stat().st_size
    assert 0 <= report["convert"]["accuracy"]["int8"] <= 1
    latency = json.loads((tmp_path / "run" / "benchmarks" / "latency.json").read_text())
    assert set(latency["models"]) == {"int8", "float32"}
    # stdout is the report and where things are, not the benchmark's own table
    assert r.stdout.startswith("# kws-edge pipeline report")
    assert "| target |" not in r.stdout and f"report       : {tmp_path / 'run'}" in r.stdout


@pytest.mark.parametrize("module, command, shown", [
    ("kws", "pipeline", ["training epochs (default: 40)", "(default: ds_cnn_s)",
                               "(default: 500)"]),
    ("edge_runtime.cli", "listen", ["(default: the threshold in the model's manifest, else 0.7)",
                                    "(default: 1.0)"]),
    ("kws", "export", ["--force"]),
])
def test_help_shows_defaults_once(module, command, shown):
    done = subprocess.run([sys.executable, "-m", module, command, "--help"], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    text = " ".join(done.stdout.split())  # unwrapped
    assert all(s in text for s in shown), text
    assert "(default: None)" not in text and "(default: False)" not in text
    assert "(default: )" not in text and "``" not in text
