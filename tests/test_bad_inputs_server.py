"""Rows of tests/bad_inputs.md for ``kws-edge serve`` under attack: slow clients, requests
waitress refuses itself, forms with thousands of parts. A real server on 127.0.0.1; every
loop is bounded."""

from __future__ import annotations

import io
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from tests.conftest import ROOT, free_port
from tests.wav_fixtures import wav_bytes

pytest.importorskip("waitress", reason="the server needs waitress (kws-edge[serve])")

SLOW_CLIENTS = 150
REQUEST_TIMEOUT_S = 3


@pytest.fixture(scope="module")
def server(tiny_models):
    """``kws-edge serve`` on a free port, with a short --request-timeout."""
    port = free_port()
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "TF_CPP_MIN_LOG_LEVEL": "2"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "edge_runtime.cli", "serve", "--model", str(tiny_models["int8"]),
         "--port", str(port), "--request-timeout", str(REQUEST_TIMEOUT_S)],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url + "/api/health", timeout=1).read()
            break
        except OSError:
            time.sleep(0.2)
    else:
        proc.kill()
        pytest.fail(proc.communicate()[0].decode()[-2000:])
    yield {"port": port, "url": url}
    proc.terminate()
    proc.wait(timeout=30)


def health_seconds(url: str) -> float:
    """Seconds /api/health takes to answer 200 (the request gives up after 1 s)."""
    t0 = time.monotonic()
    with urllib.request.urlopen(url + "/api/health", timeout=1) as r:
        assert r.status == 200 and json.load(r)["status"] == "ok"
    return time.monotonic() - t0


def test_health_answers_while_150_slow_clients_are_connected(server) -> None:
    """Row server-slow-clients: 150 connections trickle header bytes; /api/health still
    answers within 1 s, again and again (waitress' default 100 connections locked it out)."""
    clients = []
    try:
        for _ in range(SLOW_CLIENTS):
            s = socket.create_connection(("127.0.0.1", server["port"]), timeout=5)
            s.sendall(b"POST /api/predict HTTP/1.1\r\nHost: x\r\n")
            clients.append(s)
        for round_ in range(4):  # ~2 s in all, within the request timeout
            for i, s in enumerate(clients):
                s.sendall(f"X-Slow-{round_}-{i}: y\r\n".encode())
            assert health_seconds(server["url"]) < 1.0
            time.sleep(0.5)
    finally:
        for s in clients:
            s.close()


def test_one_address_cannot_take_every_connection(server) -> None:
    """Row server-per-client-cap: past PER_CLIENT_LIMIT (200) connections from one address,
    new ones are closed at once; the others stay open, and health answers once they go."""
    from edge_runtime.serve_http import PER_CLIENT_LIMIT

    time.sleep(1)  # the server has seen the earlier tests' connections close
    clients = []
    try:
        for _ in range(PER_CLIENT_LIMIT + 10):
            clients.append(socket.create_connection(("127.0.0.1", server["port"]), timeout=5))
        time.sleep(0.5)
        closed = 0
        for s in clients:
            s.settimeout(0.05)
            try:
                closed += s.recv(1) == b""
            except (TimeoutError, ConnectionResetError) as exc:
                closed += isinstance(exc, ConnectionResetError)
        # (a few more when the server still counts the earlier tests' connections)
        assert 10 <= closed <= 30, closed
    finally:
        for s in clients:
            s.close()
    deadline = time.monotonic() + 10
    while True:
        try:
            assert health_seconds(server["url"]) < 1.0
            break
        except OSError:
            assert time.monotonic() < deadline
            time.sleep(0.2)


def test_a_trickling_request_is_dropped(server) -> None:
    """Row server-trickle-dropped: a byte every 0.2 s never finishes a request; the server
    closes the connection after --request-timeout (3 s) instead of the 120 s idle timeout
    that each byte used to reset."""
    s = socket.create_connection(("127.0.0.1", server["port"]), timeout=5)
    t0 = time.monotonic()
    closed_after = None
    try:
        s.sendall(b"GET /api/health HTTP/1.1\r\n")
        while time.monotonic() - t0 < 30:
            try:
                s.sendall(b"X: y\r\n")
                s.setblocking(False)
                try:
                    if s.recv(1) == b"":
                        raise ConnectionResetError
                except BlockingIOError:
                    pass
                s.setblocking(True)
            except OSError:
                closed_after = time.monotonic() - t0
                break
            time.sleep(0.2)
    finally:
        s.close()
    assert closed_after is not None, "the trickling client was never dropped"
    assert closed_after >= REQUEST_TIMEOUT_S - 0.5


def raw_request(port: int, head: bytes) -> tuple[int, str, dict]:
    """Send ``head`` and read the whole answer: (status, content type, JSON body)."""
    data = b""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        try:  # the server may answer and close before it has read everything
            s.sendall(head)
            while chunk := s.recv(65536):
                data += chunk
        except ConnectionResetError:
            pass
    header, _, body = data.partition(b"\r\n\r\n")
    lines = header.decode().split("\r\n")
    fields = dict(line.split(": ", 1) for line in lines[1:])
    return int(lines[0].split()[1]), fields.get("Content-Type", ""), json.loads(body)


def test_waitress_refusals_are_json(server) -> None:
    """Rows server-body-far-too-large, server-header-too-large, server-malformed-request:
    answered by waitress before Flask sees them, now as JSON like every other error."""
    status, ctype, body = raw_request(
        server["port"], b"POST /api/predict HTTP/1.1\r\nHost: x\r\nContent-Type: audio/wav\r\n"
                        b"Content-Length: 99999999999\r\n\r\n")
    assert (status, ctype) == (413, "application/json") and "Too Large" in body["error"]
    status, ctype, body = raw_request(
        server["port"], b"GET /api/health HTTP/1.1\r\nHost: x\r\nX-Big: "
                        + b"a" * 263_000 + b"\r\n\r\n")
    assert (status, ctype) == (431, "application/json") and "max_header" in body["error"]
    status, ctype, body = raw_request(
        server["port"], b"POST /api/predict HTTP/1.1\r\nHost: x\r\nContent-Length: x\r\n\r\n")
    assert (status, ctype) == (400, "application/json") and body["error"]


def test_many_small_multipart_parts_get_a_message_that_says_so(tiny_models) -> None:
    """Row server-many-multipart-parts: 5,000 tiny fields (~100 KB, far under the upload
    limit) are refused as a form with too many parts, not as an upload too large."""
    pytest.importorskip("flask")
    from edge_runtime.model import KwsModel
    from edge_runtime.serve import create_app

    client = create_app(KwsModel(tiny_models["int8"])).test_client()
    fields = {f"f{i}": "x" for i in range(5000)}
    fields["file"] = (io.BytesIO(wav_bytes([0.0] * 16000)), "a.wav")
    r = client.post("/api/predict", data=fields, content_type="multipart/form-data")
    assert r.status_code == 413 and r.is_json, r.get_data()[:200]
    error = r.get_json()["error"]
    assert "more than 1000 parts" in error and "upload too large" not in error, error


ROWS = ("server-slow-clients", "server-per-client-cap", "server-trickle-dropped",
        "server-body-far-too-large", "server-header-too-large", "server-malformed-request",
        "server-many-multipart-parts")
