"""``kws-edge listen`` acting on detections: a keyword subset, per-keyword thresholds, ``--exec``
(a real command) and ``--post`` (a real HTTP server on 127.0.0.1), fed from a WAV file."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

from edge_runtime.audio_source import file_source
from edge_runtime.detector import DetectorConfig, StreamingDetector, run_detector
from edge_runtime.model import KwsModel
from edge_runtime.wav import write_wav
from tests.conftest import ROOT
from tests.tone_streams import RATE, error_lines, keyword_stream, train_tone_model

RECORD = ("import json, os, sys; open(sys.argv[1], 'a').write(json.dumps({k: os.environ[k] "
          "for k in ('KWS_LABEL', 'KWS_PROBABILITY', 'KWS_TIME_S', 'KWS_TIMESTAMP', "
          "'KWS_MODEL')}) + chr(10))")


@pytest.fixture(scope="module")
def tone(tmp_path_factory) -> dict:
    folder = tmp_path_factory.mktemp("tones")
    model = train_tone_model(folder)
    x, _ = keyword_stream(seed=3, n_words=9)
    wav = folder / "stream.wav"
    write_wav(wav, x, RATE)
    events = run_detector(StreamingDetector(KwsModel(model), DetectorConfig(threshold=0.6)),
                          file_source(wav, RATE, 1600))
    assert {e.label for e in events} == {"yes", "no"}
    return {"model": model, "wav": wav, "events": [e.to_dict() for e in events]}


class Receiver:
    """An HTTP server on 127.0.0.1 that keeps the JSON bodies posted to it; it answers the
    first ``fail`` requests with ``status``."""

    def __init__(self, fail: int = 0, status: int = 503) -> None:
        self.bodies: list[dict] = []
        self.requests = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers["Content-Length"]))
                outer.requests += 1
                if outer.requests <= fail:
                    self.send_response(status)
                else:
                    assert self.headers["Content-Type"] == "application/json"
                    outer.bodies.append(json.loads(body))
                    self.send_response(204)
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    made: list[Receiver] = []

    def make(**kwargs) -> Receiver:
        made.append(Receiver(**kwargs))
        return made[-1]

    yield make
    for r in made:
        r.close()


def listen(tone: dict, *args, timeout: float = 120, **popen) -> subprocess.CompletedProcess:
    argv = [sys.executable, "-m", "edge_runtime.cli", "listen", "--input", str(tone["wav"]),
            "--fast", "--json", "--model", str(tone["model"]), "--threshold", "0.6",
            *map(str, args)]
    return subprocess.run(argv, capture_output=True, text=True, cwd=ROOT, timeout=timeout,
                          env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}, **popen)


def record_cmd(path: Path) -> str:
    return shlex.join([sys.executable, "-c", RECORD, str(path)])


def printed(out: subprocess.CompletedProcess) -> list[dict]:
    assert out.returncode == 0, out.stderr
    return [json.loads(line) for line in out.stdout.splitlines()]


def test_every_detection_runs_the_command_and_posts_json(tone, tmp_path, receiver) -> None:
    hook, ran = receiver(), tmp_path / "ran.jsonl"
    out = listen(tone, "--exec", record_cmd(ran), "--post", hook.url, "--action-interval", 0)
    events = printed(out)
    assert events == tone["events"]
    runs = [json.loads(line) for line in ran.read_text().splitlines()]
    assert [(r["KWS_LABEL"], float(r["KWS_PROBABILITY"]), float(r["KWS_TIME_S"]))
            for r in runs] == [(e["label"], e["probability"], e["time_s"]) for e in events]
    assert {r["KWS_MODEL"] for r in runs} == {str(tone["model"])}
    assert [{k: b[k] for k in ("time_s", "label", "probability")} for b in hook.bodies] == events
    assert all(b["timestamp"].endswith("+00:00") and b["model"] == str(tone["model"])
               for b in hook.bodies)


@pytest.mark.parametrize("interval", ["all", "median"])
def test_actions_are_rate_limited_in_stream_time(tone, tmp_path, receiver, interval) -> None:
    hook, ran = receiver(), tmp_path / "ran.jsonl"
    times = [e["time_s"] for e in tone["events"]]
    # longer than the whole stream: only the first detection acts; else every one at least
    # this long after the last that acted
    gap = times[-1] - times[0] + 0.01 if interval == "all" else float(np.median(np.diff(times)))
    acted = [times[0]]
    for t in times[1:]:
        if t - acted[-1] >= gap:
            acted.append(t)
    assert (len(acted) == 1) == (interval == "all") and len(acted) < len(times)
    out = listen(tone, "--exec", record_cmd(ran), "--post", hook.url,
                 "--action-interval", gap)
    assert printed(out) == tone["events"]  # printing is not limited
    assert [float(json.loads(x)["KWS_TIME_S"]) for x in ran.read_text().splitlines()] == acted
    assert [b["time_s"] for b in hook.bodies] == acted


def test_a_keyword_subset_and_per_keyword_thresholds(tone) -> None:
    events = tone["events"]
    only_yes = printed(listen(tone, "--keywords", "yes"))
    assert only_yes == [e for e in events if e["label"] == "yes"] and only_yes
    # "no" at a threshold above every smoothed "no" probability of the stream never fires
    detector = StreamingDetector(KwsModel(tone["model"]), DetectorConfig(threshold=0.6),
                                 record=True)
    run_detector(detector, file_source(tone["wav"], RATE, 1600))
    no = detector.model.labels.index("no")
    top_no = max(float(p[no]) for p in detector.posteriors)
    assert top_no < 1.0
    strict = printed(listen(tone, "--keyword-threshold", f"no={(top_no + 1) / 2}"))
    assert strict == [e for e in events if e["label"] == "yes"]
    loose = printed(listen(tone, "--threshold", "0.99", "--keyword-threshold", "yes=0.6",
                           "--keyword-threshold", "no=0.6"))
    assert loose == events


def test_failures_are_logged_and_listening_goes_on(tone, tmp_path, receiver) -> None:
    failing = shlex.join([sys.executable, "-c", "import sys; sys.exit('boom')"])
    out = listen(tone, "--exec", failing, "--action-interval", 0)
    assert printed(out) == tone["events"]
    logged = [x for x in error_lines(out.stderr) if "exit status 1: boom" in x]
    assert len(logged) == len(tone["events"])
    assert logged[0].startswith("kws-edge listen: --exec ")
    out = listen(tone, "--exec", str(tmp_path / "no-such-program"))
    assert printed(out) == tone["events"] and "No such file" in out.stderr
    # a receiver that refuses (4xx) is not asked again; a 5xx is retried, a bounded number
    refusing = receiver(fail=99, status=400)
    out = listen(tone, "--post", refusing.url, "--action-interval", 1000)
    assert printed(out) == tone["events"] and refusing.requests == 1
    assert "HTTP 400 (try 1)" in out.stderr
    flaky = receiver(fail=2, status=503)
    out = listen(tone, "--post", flaky.url, "--post-retries", 2, "--action-interval", 1000)
    assert printed(out) == tone["events"] and flaky.requests == 3 and len(flaky.bodies) == 1
    down = receiver(fail=99, status=503)
    out = listen(tone, "--post", down.url, "--post-retries", 1, "--action-interval", 1000)
    assert printed(out) == tone["events"] and down.requests == 2 and not down.bodies
    closed = receiver()
    closed.close()
    out = listen(tone, "--post", closed.url, "--post-retries", 1, "--action-interval", 1000)
    assert printed(out) == tone["events"]
    assert out.stderr.count("--post http://127.0.0.1") == 2  # both tries logged


def test_a_busy_command_never_holds_up_detection(tone, tmp_path) -> None:
    """The command waits for a file that the test writes only after listen has printed every
    event: the audio loop went on while the command ran."""
    release = tmp_path / "release"
    wait = shlex.join([sys.executable, "-c", "import os, sys, time\nwhile not os.path.exists("
                       "sys.argv[1]): time.sleep(0.05)", str(release)])
    argv = [sys.executable, "-m", "edge_runtime.cli", "listen", "--input", str(tone["wav"]),
            "--fast", "--json", "--model", str(tone["model"]), "--threshold", "0.6",
            "--exec", wait, "--action-interval", "0"]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            cwd=ROOT)
    try:
        lines = [json.loads(proc.stdout.readline()) for _ in tone["events"]]
        assert lines == tone["events"]
        assert proc.poll() is None  # still finishing the queued commands
    finally:
        release.touch()
        _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err


@pytest.mark.parametrize("args, message", [
    (("--keywords", "yes,maybe"), "error: 'maybe' is not a keyword of the model (yes, no)"),
    (("--keyword-threshold", "_silence_=0.5"), "error: '_silence_' is not a keyword"),
    (("--keyword-threshold", "yes"), "use WORD=PROBABILITY"),
    (("--keyword-threshold", "yes=1.5"), "must be within 0-1"),
    (("--post", "ftp://127.0.0.1/x"), "error: --post 'ftp://127.0.0.1/x': give an http://"),
    (("--exec", "'unclosed"), "error: --exec"),
    (("--post-retries", "-1"), "must be a whole number"),
])
def test_bad_action_settings_exit_2(tone, args, message) -> None:
    out = listen(tone, *args)
    assert out.returncode == 2 and out.stdout == ""
    lines = error_lines(out.stderr)
    assert len(lines) == 1 and message in lines[0] and lines[0].startswith("error: ")
