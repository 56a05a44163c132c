"""Pipeline faults: ``kws train`` killed mid-run, and a conversion that fails its gate.

* SIGTERM: the run ends KILLED in MLflow (train/tracking.py stops Keras after the batch),
  ``kws train`` exits 128 + 15 with one ``error:`` line.
* SIGKILL: nothing can run in the process, so its MLflow run stays RUNNING (MLflow has no
  heartbeat); the earlier runs are untouched and the next ``kws train`` works.
* The next run reuses the feature cache: no cache file is written or touched again.
* A failed gate (``--min-accuracy 100``) exits 3 and leaves ``--out`` exactly as it was.
"""

from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.fixtures_data import make_fake_dataset

ENV = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "TF_CPP_MIN_LOG_LEVEL": "2"}


def kws(*args, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "kws", *map(str, args)],
                          capture_output=True, text=True, cwd=ROOT, env=ENV, timeout=timeout)


def snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    """Every file under ``folder``: (size, mtime in ns)."""
    return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def setup(tmp_path_factory) -> dict:
    if importlib.util.find_spec("mlflow") is None or importlib.util.find_spec("keras") is None:
        pytest.skip("training needs the [train] extra (TensorFlow, MLflow)")
    root = tmp_path_factory.mktemp("faults")
    data = make_fake_dataset(root / "data", ["yes", "no", "up"], speakers=8, per_speaker=3,
                             with_lists=True)
    return {"root": root, "data": data, "cache": root / "cache",
            "uri": f"sqlite:///{root / 'mlflow.db'}"}


def train_args(s: dict, out: str, epochs: int) -> list:
    return ["train", "--data", s["data"], "--arch", "ds_cnn_s", "--task", "yes,no,up",
            "--epochs", epochs, "--patience", 1000, "--batch-size", 16, "--out",
            s["root"] / out, "--cache-dir", s["cache"], "--tracking-uri", s["uri"],
            "--no-log-model"]


def runs(uri: str) -> dict[str, object]:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    experiments = [e.experiment_id for e in client.search_experiments()]
    return {r.info.run_id: r for r in client.search_runs(experiments)}


def start_and_kill(s: dict, out: str, sig: int, timeout: float = 300) -> tuple:
    """Start a long ``kws train``; once its run has logged an epoch, send ``sig``."""
    before = set(runs(s["uri"]))
    proc = subprocess.Popen(
        [sys.executable, "-m", "kws", *map(str, train_args(s, out, 500))],
        cwd=ROOT, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + timeout
    try:
        while True:
            assert proc.poll() is None, proc.communicate()[1][-3000:]
            assert time.monotonic() < deadline, "training did not start in time"
            new = [r for k, r in runs(s["uri"]).items() if k not in before]
            if new and new[0].data.metrics:  # an epoch is done: we are mid-training
                run_id = new[0].info.run_id
                break
            time.sleep(1)
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    return run_id, proc.returncode, err


@pytest.fixture(scope="module")
def first(setup) -> dict:
    """An ordinary run, which computes and caches the features."""
    r = kws(*train_args(setup, "first", 1))
    assert r.returncode == 0, r.stderr[-3000:]
    found = runs(setup["uri"])
    assert len(found) == 1
    (run_id, run), = found.items()
    assert run.info.status == "FINISHED"
    cache = snapshot(setup["cache"])
    assert cache, "the first run wrote no feature cache"
    return {"id": run_id, "run": run, "cache": cache, "model_dir": setup["root"] / "first"}


@pytest.mark.slow
def test_killed_training_and_the_runs_around_it(setup, first) -> None:
    s = setup
    first_id, first_run, cache = first["id"], first["run"], first["cache"]

    # 2. SIGTERM mid-training: the run ends KILLED, with one error line and status 143
    run_id, code, err = start_and_kill(s, "terminated", signal.SIGTERM)
    assert code == 128 + signal.SIGTERM, err[-3000:]
    lines = [x for x in err.splitlines() if x.startswith("error:")]
    assert len(lines) == 1 and "KILLED" in lines[0] and "Traceback" not in err, err[-3000:]
    assert runs(s["uri"])[run_id].info.status == "KILLED"

    # 3. SIGKILL mid-training: that run cannot mark itself, it stays RUNNING
    killed_id, code, _ = start_and_kill(s, "sigkilled", signal.SIGKILL)
    assert code == -signal.SIGKILL
    assert runs(s["uri"])[killed_id].info.status == "RUNNING"

    # 4. the next run works and reuses the cache; the first run is intact
    r = kws(*train_args(s, "after", 1))
    assert r.returncode == 0, r.stderr[-3000:]
    now = runs(s["uri"])
    assert len(now) == 4
    assert [x.info.status for k, x in now.items() if k not in (run_id, killed_id)] == [
        "FINISHED", "FINISHED"]
    assert now[first_id].info.status == "FINISHED"
    assert now[first_id].data.metrics == first_run.data.metrics
    assert now[first_id].data.params == first_run.data.params
    assert snapshot(s["cache"]) == cache, "the feature cache was recomputed"
    assert (first["model_dir"] / "model.keras").is_file()


@pytest.mark.slow
def test_failed_gate_leaves_the_output_folder_alone(setup, first) -> None:
    s = setup
    model_dir = first["model_dir"]
    for state in ("missing", "with an earlier model"):
        out = s["root"] / "artifacts" / state.replace(" ", "_")
        if state == "with an earlier model":
            out.mkdir(parents=True)
            (out / "kws_int8.tflite").write_bytes(b"the model that shipped before")
            (out / "kws_int8.manifest.json").write_text("{}")
        before = snapshot(out) if out.exists() else None
        r = kws("convert", "--keras", model_dir, "--data", s["data"], "--max-drop", 100,
                "--min-accuracy", 100, "--out", out, "--no-mlflow", "--calibration", 20,
                *(["--force"] if out.exists() else []))
        assert r.returncode == 3, (state, r.stderr[-3000:])
        assert "Traceback" not in r.stderr
        if before is None:
            assert not out.exists() or not any(out.iterdir()), list(out.iterdir())
        else:
            assert snapshot(out) == before, state
