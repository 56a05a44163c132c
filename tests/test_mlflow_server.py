"""Training against a real ``mlflow server`` (SQLite backend, proxied artifacts) on 127.0.0.1."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from tests.fixtures_data import make_fake_dataset
from train.settings import ModelSettings

pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory):
    """``mlflow server`` in its own process group, healthy, killed (with its workers) after."""
    root = tmp_path_factory.mktemp("mlflow-server")
    port = free_port()
    mlflow_bin = Path(sys.executable).with_name("mlflow")
    log = (root / "server.log").open("w")
    proc = subprocess.Popen(
        [str(mlflow_bin), "server", "--host", "127.0.0.1", "--port", str(port),
         "--backend-store-uri", f"sqlite:///{root / 'mlflow.db'}",
         "--artifacts-destination", str(root / "artifacts"), "--workers", "1"],
        cwd=root, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            assert proc.poll() is None, (root / "server.log").read_text()[-3000:]
            try:
                if requests.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            assert time.monotonic() < deadline, "mlflow server did not become healthy"
            time.sleep(0.5)
        yield url, root
    finally:
        for sig, wait in ((signal.SIGTERM, 5), (signal.SIGKILL, 10)):
            if proc.poll() is not None:
                break
            os.killpg(proc.pid, sig)
            try:
                proc.wait(timeout=wait)
            except subprocess.TimeoutExpired:
                pass
        log.close()
        assert proc.poll() is not None


def test_training_run_logged_to_a_server_reads_back(mlflow_server, tmp_path, monkeypatch):
    import mlflow

    from train.train import MODEL_DIR_ARTIFACT, TrainConfig, train

    url, server_root = mlflow_server
    data = make_fake_dataset(tmp_path / "sc", ["yes", "no", "cat"], speakers=4, per_speaker=2,
                             with_lists=True)
    monkeypatch.chdir(tmp_path)
    result = train(TrainConfig(data_dir=data, task="yes,no", epochs=1, batch_size=8,
                               tracking_uri=url, experiment="server-test",
                               cache_dir=tmp_path / "cache", out_dir=tmp_path / "model"))
    assert not (tmp_path / "mlflow.db").exists()  # nothing went to the default store

    client = mlflow.MlflowClient(tracking_uri=url)
    run = client.get_run(result.run_id)
    assert run.info.status == "FINISHED"
    assert client.get_experiment(run.info.experiment_id).name == "server-test"
    assert run.data.params["arch"] == "ds_cnn_s" and run.data.params["task"] == "yes,no"
    assert run.data.metrics["test_accuracy"] == pytest.approx(result.test_accuracy, abs=1e-6)
    history = client.get_metric_history(result.run_id, "loss")
    assert [m.step for m in history] == [0]
    names = {a.path for a in client.list_artifacts(result.run_id)}
    assert {MODEL_DIR_ARTIFACT, "confusion_matrix.png", "dataset_manifest.json"} <= names

    # the converter's path: download the model folder of a run
    folder = Path(mlflow.artifacts.download_artifacts(
        run_id=result.run_id, artifact_path=MODEL_DIR_ARTIFACT, tracking_uri=url,
        dst_path=str(tmp_path / "download")))
    settings = ModelSettings.load(folder)
    assert settings.run_id == result.run_id and settings.labels[2:] == ["yes", "no"]
    assert (folder / "model.keras").read_bytes() == (tmp_path / "model" / "model.keras"
                                                      ).read_bytes()
    # the artifacts went through the server into its artifact destination
    stored = {p.name for p in (server_root / "artifacts").rglob("*") if p.is_file()}
    assert {"model.keras", "model_settings.json", "confusion_matrix.png"} <= stored
