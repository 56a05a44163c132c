"""Load test of ``kws-edge serve``: many concurrent clients, valid and invalid uploads mixed.

    python -m benchmarks.load --json [--model M] [--requests 2000] [--clients 50]

Starts the real server (waitress) as a subprocess on a free port of 127.0.0.1, warms it up,
then sends ``--requests`` requests from ``--clients`` threads (one ``requests`` session
each). Checks: no 5xx, every valid upload gets the label that a direct ``KwsModel`` gives
the same bytes, every invalid one a 4xx JSON error, and the server's resident memory
(``VmRSS`` of its process) after the run against after the warm-up. Reports client-side
latency percentiles and throughput; writes benchmarks/results/load.json/.md. Every wait has
a timeout, so the run always ends.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402

from benchmarks.results_io import markdown_table, write_results  # noqa: E402
from edge_runtime.bench import percentiles  # noqa: E402
from edge_runtime.errors import KwsError  # noqa: E402
from edge_runtime.wav import encode_wav  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class LoadConfig:
    model: Path
    requests: int = 2000
    clients: int = 50
    warmup: int = 200
    invalid_fraction: float = 0.3
    server_threads: int = 4
    timeout_s: float = 30.0  # per request
    startup_s: float = 60.0
    seed: int = 0


@dataclass(frozen=True)
class Payload:
    """One request body; ``expected`` is a label, or None when a 4xx is the right answer."""

    name: str
    body: bytes
    content_type: str
    expected: str | None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_kb(pid: int) -> int:
    """Resident memory of a process in KiB (``VmRSS`` in /proc/<pid>/status)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for pid {pid}")


def _float_wav(samples: np.ndarray, rate: int) -> bytes:
    raw = np.asarray(samples, dtype="<f4").tobytes()
    fmt = struct.pack("<HHIIHH", 3, 1, rate, rate * 4, 4, 32)
    return (b"RIFF" + struct.pack("<I", 36 + len(raw)) + b"WAVE" + b"fmt "
            + struct.pack("<I", 16) + fmt + b"data" + struct.pack("<I", len(raw)) + raw)


def test_clips(rate: int, n: int, seed: int) -> list[tuple[str, np.ndarray]]:
    """``n`` one-second signals of different kinds: tones, glides, noise bursts, silence."""
    rng = np.random.default_rng(seed)
    t = np.arange(rate) / rate
    clips = []
    for i in range(n):
        kind = ("tone", "glide", "noise", "silence")[i % 4]
        f = rng.uniform(150, 2500)
        if kind == "tone":
            x = np.sin(2 * np.pi * f * t)
        elif kind == "glide":
            x = np.sin(2 * np.pi * np.cumsum(f * (1 + t)) / rate)
        elif kind == "noise":
            x = rng.standard_normal(rate)
        else:
            x = np.zeros(rate)
        envelope = np.sin(np.pi * np.clip((t - rng.uniform(0, 0.4)) / 0.6, 0, 1)) ** 2
        x = rng.uniform(0.05, 0.5) * envelope * x + 0.003 * rng.standard_normal(rate)
        clips.append((f"{kind}{i}", x.astype(np.float32)))
    return clips


def make_payloads(model_path: Path, seed: int = 0) -> list[Payload]:
    """Valid clips (labelled by a direct KwsModel on the same bytes) and invalid bodies."""
    import soxr

    from edge_runtime.model import KwsModel
    from edge_runtime.wav import decode_wav

    model = KwsModel(model_path)
    rate = model.sample_rate
    payloads = []
    for name, x in test_clips(rate, 24, seed):
        bodies = [(f"{name}.wav", encode_wav(x, rate))]
        if name.endswith(("0", "5")):
            bodies.append((f"{name}@48k.wav", encode_wav(soxr.resample(x, rate, 48000), 48000)))
            bodies.append((f"{name}-float.wav", _float_wav(x, rate)))
        for label, body in bodies:
            expected = model.classify(decode_wav(body)).label
            payloads.append(Payload(label, body, "audio/wav", expected))
    good = payloads[0].body
    nan = _float_wav(np.where(np.arange(rate) == 7, np.nan, 0.1), rate)
    payloads += [
        Payload("not-a-wav", b"GIF89a not audio" * 10, "audio/wav", None),
        Payload("truncated", good[: len(good) // 2], "audio/wav", None),
        Payload("header-only", good[:40], "audio/wav", None),
        Payload("nan", nan, "audio/wav", None),
        Payload("empty", b"", "audio/wav", None),
        Payload("wrong-type", good, "text/plain", None),
        Payload("giant-declared", good[:40] + struct.pack("<I", 0xFFFFFFF0) + good[44:200],
                "audio/wav", None),
    ]
    return payloads


@dataclass
class Result:
    name: str
    ok: bool
    status: int | None
    latency_ms: float
    problem: str = ""


def send(session, url: str, payload: Payload, timeout: float) -> Result:
    import requests

    t0 = time.perf_counter()
    try:
        r = session.post(url, data=payload.body, headers={"Content-Type": payload.content_type},
                         timeout=timeout)
        latency = (time.perf_counter() - t0) * 1e3
    except requests.RequestException as exc:
        return Result(payload.name, False, None, (time.perf_counter() - t0) * 1e3,
                      f"transport: {type(exc).__name__}")
    try:
        body = r.json()
    except ValueError:
        return Result(payload.name, False, r.status_code, latency, "reply is not JSON")
    if payload.expected is None:
        ok = 400 <= r.status_code < 500 and isinstance(body.get("error"), str)
        problem = "" if ok else f"expected a 4xx JSON error, got {r.status_code}"
    else:
        ok = r.status_code == 200 and body.get("label") == payload.expected
        problem = "" if ok else (f"expected {payload.expected!r}, got {r.status_code} "
                                 f"{body.get('label') or body.get('error')!r}")
    return Result(payload.name, ok, r.status_code, latency, problem)


def fire(url: str, payloads: list[Payload], clients: int, timeout: float) -> list[Result]:
    """Send every payload once from ``clients`` threads, one HTTP session per thread."""
    import requests

    local = threading.local()

    def one(payload: Payload) -> Result:
        if not hasattr(local, "session"):
            local.session = requests.Session()
        return send(local.session, url, payload, timeout)

    with ThreadPoolExecutor(clients) as pool:
        return list(pool.map(one, payloads))


class Server:
    """``kws-edge serve`` in a subprocess; a context manager that always stops it."""

    def __init__(self, model: Path, threads: int, startup_s: float) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        # A file, not a pipe: a pipe nobody reads fills up and blocks the server's logging.
        self.log = tempfile.TemporaryFile("w+")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "edge_runtime.cli", "serve", "--model", str(model),
             "--port", str(self.port), "--threads", str(threads)],
            cwd=ROOT, stdout=self.log, stderr=subprocess.STDOUT, text=True,
            env={**os.environ, "OPENBLAS_NUM_THREADS": "1", "TF_CPP_MIN_LOG_LEVEL": "2"})
        self._wait_ready(startup_s)

    def _wait_ready(self, startup_s: float) -> None:
        import requests

        deadline = time.monotonic() + startup_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise KwsError(f"the server exited with {self.proc.returncode}: "
                               f"{self.stop()[-2000:]}")
            try:
                if requests.get(self.url + "/api/health", timeout=2).status_code == 200:
                    return
            except requests.RequestException:
                time.sleep(0.1)
        self.stop()
        raise KwsError(f"the server did not answer within {startup_s:g} s")

    def stop(self) -> str:
        """Stop the server; return what it printed."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        if self.log.closed:
            return ""
        self.log.seek(0)
        text = self.log.read()
        self.log.close()
        return text

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def run_load(config: LoadConfig) -> dict:
    """Warm up, then the measured run; the figures and every invariant's outcome."""
    payloads = make_payloads(config.model, config.seed)
    rng = random.Random(config.seed)
    valid = [p for p in payloads if p.expected is not None]
    invalid = [p for p in payloads if p.expected is None]

    def mix(n: int) -> list[Payload]:
        return [rng.choice(invalid if rng.random() < config.invalid_fraction else valid)
                for _ in range(n)]

    with Server(config.model, config.server_threads, config.startup_s) as server:
        url = server.url + "/api/predict"
        warm = fire(url, mix(config.warmup), config.clients, config.timeout_s)
        rss_warm = rss_kb(server.proc.pid)
        samples = [rss_warm]
        done = threading.Event()

        def monitor() -> None:
            while not done.wait(0.25):
                samples.append(rss_kb(server.proc.pid))

        watcher = threading.Thread(target=monitor, daemon=True)
        watcher.start()
        t0 = time.perf_counter()
        results = fire(url, mix(config.requests), config.clients, config.timeout_s)
        wall = time.perf_counter() - t0
        done.set()
        watcher.join(5)
        rss_end = rss_kb(server.proc.pid)
        alive = server.proc.poll() is None
        server_log = server.stop()
    statuses: dict[str, int] = {}
    for r in results:
        key = str(r.status) if r.status is not None else "no reply"
        statuses[key] = statuses.get(key, 0) + 1
    failures = [r for r in warm + results if not r.ok]
    valid_latency = [r.latency_ms for r in results if r.ok and r.status == 200]
    return {
        "config": {**asdict(config), "model": str(config.model)},
        "requests": len(results),
        "valid": sum(r.status == 200 for r in results),
        "status_counts": dict(sorted(statuses.items())),
        "server_errors_5xx": sum(r.status is not None and r.status >= 500
                                 for r in warm + results),
        "wrong_answers": len(failures),
        "failure_examples": [asdict(r) for r in failures[:10]],
        "latency_ms_valid": percentiles(valid_latency) if valid_latency else {},
        "latency_ms_all": percentiles([r.latency_ms for r in results]),
        "throughput_rps": round(len(results) / wall, 1),
        "wall_s": round(wall, 2),
        "rss_kb": {"after_warmup": rss_warm, "end": rss_end, "peak": max(samples + [rss_end])},
        "rss_growth_pct": round(100 * (rss_end - rss_warm) / rss_warm, 2),
        "server_alive_at_end": alive,
        "server_tracebacks": server_log.count("Traceback"),
    }


def to_markdown(result: dict) -> str:
    c = result["config"]
    lat, rss = result["latency_ms_valid"], result["rss_kb"]
    rows = [
        ["requests (after warm-up)", result["requests"]],
        ["concurrent clients / server threads", f"{c['clients']} / {c['server_threads']}"],
        ["answered 200 (valid uploads)", result["valid"]],
        ["status counts", ", ".join(f"{k}: {v}" for k, v in result["status_counts"].items())],
        ["5xx", result["server_errors_5xx"]],
        ["wrong answers", result["wrong_answers"]],
        ["latency of valid requests p50 / p90 / p99 (ms)",
         f"{lat.get('median')} / {lat.get('p90')} / {lat.get('p99')}"],
        ["throughput (requests/s)", result["throughput_rps"]],
        ["server RSS after warm-up / end / peak (MiB)",
         f"{rss['after_warmup'] / 1024:.1f} / {rss['end'] / 1024:.1f} / {rss['peak'] / 1024:.1f}"],
        ["RSS growth after warm-up", f"{result['rss_growth_pct']}%"],
    ]
    return ("# Server load test\n\n`python -m benchmarks.load --json`: `kws-edge serve` "
            f"(waitress) on 127.0.0.1, model `{Path(c['model']).name}`, "
            f"{round(100 * c['invalid_fraction'])}% invalid uploads mixed in. Latency is "
            "measured by the clients, so it includes queueing behind the server's threads.\n\n"
            + markdown_table(["", "value"], rows))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, help="default: the shipped model")
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--warmup", type=int, default=200)
    parser.add_argument("--server-threads", type=int, default=4)
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.add_argument("--no-write", action="store_true", help="do not write results/")
    args = parser.parse_args(argv)
    try:
        from edge_runtime.paths import default_model

        config = LoadConfig(model=args.model or default_model(), requests=args.requests,
                            clients=args.clients, warmup=args.warmup,
                            server_threads=args.server_threads)
        result = run_load(config)
    except KwsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if not args.no_write:
        result = write_results("load", result, to_markdown(result))
    print(json.dumps(result, indent=2) if args.json else to_markdown(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
