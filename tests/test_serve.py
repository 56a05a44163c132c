"""The upload page and JSON API: predictions, 4xx JSON errors, limits, threads, the CLI."""

from __future__ import annotations

import contextlib
import io
import logging
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from edge_runtime.model import KwsModel
from edge_runtime.wav import Audio, encode_wav
from tests.conftest import ROOT, speech_like
from tests.wav_fixtures import wav_bytes

flask = pytest.importorskip("flask", reason="Flask is not installed (extra [serve])")
requests = pytest.importorskip("requests")

from edge_runtime.serve import OPENAPI_PATH, create_app  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def running_server(model_path: Path, *extra: str) -> Iterator[str]:
    """``kws-edge serve`` (waitress) in a subprocess on a free port; yields its base URL."""
    port = free_port()
    log = io.BytesIO()
    proc = subprocess.Popen(
        [sys.executable, "-m", "edge_runtime.cli", "serve", "--port", str(port), "--model",
         str(model_path), *extra],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
    )
    threading.Thread(target=lambda: log.write(proc.stdout.read()), daemon=True).start()
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if requests.get(url + "/api/health", timeout=1).ok:
                    break
            except requests.ConnectionError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"server did not start: {log.getvalue().decode()}")
            time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture(scope="module")
def model(tiny_models) -> KwsModel:
    return KwsModel(tiny_models["float32"])


@pytest.fixture(scope="module")
def client(model):
    return create_app(model).test_client()


def clip_bytes(seconds: float = 1.0, seed: int = 0) -> bytes:
    return encode_wav(speech_like(seconds, seed=seed), 16000)


def assert_error(response, status: int, text: str) -> None:
    assert response.status_code == status, response.data
    assert response.mimetype == "application/json"
    body = response.get_json()
    assert set(body) == {"error"} and text in body["error"], body
    assert "Traceback" not in body["error"]


def test_health_model_and_openapi(client, model) -> None:
    assert client.get("/api/health").get_json() == {
        "status": "ok", "model": model.path.name, "labels": 12}
    info = client.get("/api/model").get_json()
    assert info["labels"] == model.labels and info["sha256"] == model.manifest.sha256
    assert info["frontend"]["n_mfcc"] == 10 and info["model"] == model.path.name
    spec = client.get("/api/openapi.yaml")
    assert spec.status_code == 200 and spec.data == OPENAPI_PATH.read_bytes()


def test_predict_multipart_and_raw_body_match_the_model(client, model) -> None:
    data = clip_bytes(seed=2)
    expected = model.classify(Audio(speech_like(seed=2), 16000), top_k=5)
    multipart = client.post("/api/predict", data={"file": (io.BytesIO(data), "a.wav")})
    raw = client.post("/api/predict", data=data, content_type="audio/wav")
    for response in (multipart, raw):
        assert response.status_code == 200, response.data
        body = response.get_json()
        assert set(body) == {"label", "probability", "top_k", "latency_ms", "duration_s",
                             "timings_ms"}
        assert body["label"] == expected.label
        assert body["probability"] == pytest.approx(expected.probability, abs=1e-4)
        assert [e["label"] for e in body["top_k"]] == [lab for lab, _ in expected.top_k]
        assert body["top_k"][0]["probability"] == body["probability"]
        assert body["latency_ms"] > 0 and body["duration_s"] == 1.0
    three = client.post("/api/predict?top_k=3", data=data, content_type="audio/x-wav")
    assert len(three.get_json()["top_k"]) == 3
    every = client.post("/api/predict?top_k=100", data=data, content_type="audio/wav")
    assert len(every.get_json()["top_k"]) == 12


def test_long_audio_lists_detections(client) -> None:
    x = np.concatenate([speech_like(seed=i) for i in range(3)])
    response = client.post("/api/predict", data=encode_wav(x, 16000), content_type="audio/wav")
    body = response.get_json()
    assert response.status_code == 200 and body["duration_s"] == 3.0
    assert isinstance(body["detections"], list)


def test_bad_uploads_get_clear_4xx_json(client) -> None:
    post = client.post
    good = clip_bytes()
    nan = wav_bytes(np.array([0.1, np.nan, 0.2] * 100), fmt="float", bits=32)
    cases = [
        (post("/api/predict", data=b"hello", content_type="audio/wav"), 400, "not a WAV"),
        (post("/api/predict", data=good[:30], content_type="audio/wav"), 400, "truncated"),
        (post("/api/predict", data=good[:2000] + b"", content_type="audio/wav"), 400,
         "truncated WAV data"),
        (post("/api/predict", data=nan, content_type="audio/wav"), 400, "NaN"),
        (post("/api/predict", data=b"", content_type="audio/wav"), 400, "empty upload"),
        (post("/api/predict", data={"other": (io.BytesIO(good), "a.wav")}), 400,
         "multipart field 'file'"),
        (post("/api/predict", data=good, content_type="text/plain"), 415,
         "unsupported content type"),
        (post("/api/predict", data=good), 415, "unsupported content type"),
        (post("/api/predict?top_k=0", data=good, content_type="audio/wav"), 400, "top_k"),
        (post("/api/predict?top_k=x", data=good, content_type="audio/wav"), 400, "top_k"),
        (post("/api/predict", data=b"\0" * (3 * 1024 * 1024), content_type="audio/wav"), 413,
         "limit is 2 MB"),
        (client.get("/api/predict"), 405, "Method Not Allowed"),
        (client.get("/api/nothing"), 404, "Not Found"),
        (client.delete("/api/health"), 405, "Method Not Allowed"),
    ]
    for response, status, text in cases:
        assert_error(response, status, text)
    assert client.get("/api/predict").headers["Allow"]


def test_audio_longer_than_the_limit_is_refused(model) -> None:
    client = create_app(model, max_audio_s=2.0).test_client()
    response = client.post("/api/predict", data=encode_wav(np.zeros(3 * 16000), 16000),
                           content_type="audio/wav")
    assert_error(response, 400, "audio too long")
    # the limit is on seconds, whatever the rate
    response = client.post("/api/predict", data=encode_wav(np.zeros(3 * 4000), 4000),
                           content_type="audio/wav")
    assert_error(response, 400, "audio too long")


def test_upload_limit_is_configurable(model) -> None:
    client = create_app(model, max_upload_mb=0.01).test_client()
    assert_error(client.post("/api/predict", data=clip_bytes(), content_type="audio/wav"),
                 413, "limit is 0.01 MB")


def test_server_errors_are_logged_not_shown(model, caplog) -> None:
    app = create_app(model)

    @app.get("/api/boom")
    def boom():
        raise RuntimeError("secret internals")

    with caplog.at_level(logging.ERROR, logger="kws_edge.serve"):
        response = app.test_client().get("/api/boom")
    assert_error(response, 500, "internal server error")
    assert b"secret" not in response.data
    assert "secret internals" in caplog.text and "Traceback" in caplog.text


def test_page_and_assets_are_served_with_a_strict_policy(client) -> None:
    page = client.get("/")
    assert page.status_code == 200 and b'<input type="file"' in page.data
    assert "script-src 'self'" in page.headers["Content-Security-Policy"]
    assert b"http://" not in page.data and b"https://" not in page.data  # no CDNs
    for asset in ("/static/app.js", "/static/style.css"):
        response = client.get(asset)
        assert response.status_code == 200 and b"https://" not in response.data


def test_real_server_under_concurrent_requests(tiny_models) -> None:
    model = KwsModel(tiny_models["int8"])
    clips = [clip_bytes(seed=i) for i in range(6)]
    expected = [model.classify(Audio(speech_like(seed=i), 16000), top_k=5).to_dict()
                for i in range(6)]
    with running_server(tiny_models["int8"], "--threads", "4") as url:
        def post(i: int) -> dict:
            r = requests.post(url + "/api/predict", files={"file": ("c.wav", clips[i % 6])},
                              timeout=30)
            assert r.status_code == 200, r.text
            return r.json()

        with ThreadPoolExecutor(8) as pool:
            results = list(pool.map(post, range(48)))
        for i, body in enumerate(results):
            assert body["top_k"] == expected[i % 6]["top_k"]
        big = requests.post(url + "/api/predict", data=b"\0" * (3 * 1024 * 1024),
                            headers={"Content-Type": "audio/wav"}, timeout=30)
        assert big.status_code == 413 and "limit" in big.json()["error"]
        assert requests.get(url + "/nope", timeout=5).json()["error"].startswith("Not Found")


def test_serve_cli_rejects_a_bad_model(tmp_path) -> None:
    out = subprocess.run([sys.executable, "-m", "edge_runtime.cli", "serve", "--model",
                          tmp_path / "none.tflite"], capture_output=True, text=True, cwd=ROOT,
                         timeout=60)
    assert out.returncode == 2 and out.stderr.startswith("error: ")
    assert "not found" in out.stderr
