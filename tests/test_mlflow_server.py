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
from train.data import DataConfig
from train.settings import DataSummary, ModelSettings

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
            except (requests.ConnectionError, requests.Timeout):  # not up yet, or busy
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
    result = train(TrainConfig(DataConfig(data, task="yes,no"), epochs=1, batch_size=8,
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


def test_registry_and_export_through_a_server(mlflow_server, tmp_path, monkeypatch):
    """A gated conversion becomes a version on the server; models:/…@champion exports it."""
    from convert.convert import ConvertConfig, convert_model
    from convert.registry import CHAMPION, export, keras_folder, registered_name
    from edge_runtime.frontend import EDGE_FRONTEND
    from tests.model_factory import tiny_keras_model
    from train.data import load_dataset

    url, server_root = mlflow_server
    data = make_fake_dataset(tmp_path / "sc", ["yes", "no", "cat"], speakers=6, per_speaker=2,
                             with_lists=True)
    dataset = load_dataset(DataConfig(data_dir=data, task="yes,no"))
    folder = tmp_path / "model_dir"
    folder.mkdir()
    ModelSettings(arch="tiny_test", labels=list(dataset.labels), frontend=EDGE_FRONTEND,
                  data=DataSummary(dataset.config)).save(folder)
    tiny_keras_model(EDGE_FRONTEND, len(dataset.labels)).save(folder / "model.keras")
    monkeypatch.chdir(tmp_path)
    result = convert_model(ConvertConfig(data_dir=data, keras_path=folder / "model.keras",
                                         out_dir=tmp_path / "out", max_drop=100.0,
                                         min_accuracy=0.0, calibration=10,
                                         tracking_uri=url))
    assert result.registration.name == registered_name("yes,no") == "kws-edge-yes-no"
    assert result.registration.version == 1 and result.registration.champion
    assert not (tmp_path / "mlflow.db").exists() and not (tmp_path / "mlruns").exists()
    done = export(f"models:/kws-edge-yes-no@{CHAMPION}", url, tmp_path / "device")
    assert Path(done["model"]).read_bytes() == result.models["int8"].read_bytes()
    again, run_id = keras_folder(f"models:/kws-edge-yes-no@{CHAMPION}", url, tmp_path / "k")
    assert run_id == result.mlflow_run_id
    assert (again / "model.keras").read_bytes() == (folder / "model.keras").read_bytes()
    stored = {p.name for p in (server_root / "artifacts").rglob("*") if p.is_file()}
    assert {"kws_int8.tflite", "kws_int8.manifest.json", "kws_report.md"} <= stored
