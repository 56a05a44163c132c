"""``kws-edge serve`` opened beyond the machine: KWS_API_TOKEN guards ``POST /api/predict``."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from edge_runtime.errors import KwsError
from edge_runtime.model import KwsModel
from edge_runtime.serve import api_token, create_app
from tests.conftest import ROOT
from tests.test_serve import assert_error, clip_bytes, requests, running_server

TOKEN = "s3cret-token-0123456789"


@pytest.fixture(scope="module")
def guarded(tiny_models):
    return create_app(KwsModel(tiny_models["float32"]), api_token=TOKEN).test_client()


def predict(client, headers=None):
    return client.post("/api/predict", data=clip_bytes(),
                       headers={"Content-Type": "audio/wav", **(headers or {})})


def test_predict_needs_the_token(guarded) -> None:
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN},
                    {"Authorization": f"Basic {TOKEN}"},
                    {"Authorization": f"Bearer {TOKEN}x"}):
        response = predict(guarded, headers)
        assert_error(response, 401, "missing or wrong API token")
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
    ok = predict(guarded, {"Authorization": f"Bearer {TOKEN}"})
    assert ok.status_code == 200 and "label" in ok.get_json()
    assert guarded.get("/api/health").status_code == 200  # health and the page stay open
    assert guarded.get("/").status_code == 200


def test_a_real_server_with_a_token(tiny_models, monkeypatch) -> None:
    monkeypatch.setenv("KWS_API_TOKEN", TOKEN)
    with running_server(tiny_models["int8"]) as url:
        refused = requests.post(url + "/api/predict", files={"file": ("c.wav", clip_bytes())},
                                timeout=30)
        assert refused.status_code == 401 and "API token" in refused.json()["error"]
        done = requests.post(url + "/api/predict", files={"file": ("c.wav", clip_bytes())},
                             headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30)
        assert done.status_code == 200 and "label" in done.json()


def test_the_lan_needs_a_token(monkeypatch) -> None:
    monkeypatch.delenv("KWS_API_TOKEN", raising=False)
    assert api_token("127.0.0.1") is None and api_token("localhost") is None
    assert api_token("::1") is None
    for host in ("0.0.0.0", "192.168.1.20", "::", "pi.local"):
        with pytest.raises(KwsError, match="set KWS_API_TOKEN"):
            api_token(host)
    monkeypatch.setenv("KWS_API_TOKEN", "short")
    with pytest.raises(KwsError, match="too short"):
        api_token("127.0.0.1")
    monkeypatch.setenv("KWS_API_TOKEN", TOKEN)
    assert api_token("0.0.0.0") == TOKEN


def test_serve_cli_refuses_the_lan_without_a_token(tiny_models) -> None:
    env = {k: v for k, v in os.environ.items() if k != "KWS_API_TOKEN"}
    out = subprocess.run([sys.executable, "-m", "edge_runtime.cli", "serve", "--host",
                          "0.0.0.0", "--model", str(tiny_models["int8"])], capture_output=True,
                         text=True, cwd=ROOT, timeout=60, env=env)
    lines = [x for x in out.stderr.strip().splitlines() if not x.startswith("INFO:")]
    assert out.returncode == 2 and len(lines) == 1
    assert lines[0].startswith("error: --host 0.0.0.0 opens the API") and out.stdout == ""
