"""What ``kws-edge listen`` does on a detection besides printing it: run a command, post JSON.

Each action has its own worker thread and a small queue: the audio loop only enqueues (never
waits), an action no more often than every ``min_interval_s`` of stream time, a full queue drops
the detection, and every failure is logged to stderr, never raised into the loop.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import queue
import shlex
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass

from edge_runtime.detector import Event
from edge_runtime.errors import KwsError

log = logging.getLogger("kws_edge.listen")


@dataclass(frozen=True)
class ActionConfig:
    exec_cmd: str | None = None  # run per detection (no shell; env KWS_LABEL, ...)
    exec_timeout_s: float = 30.0
    post_url: str | None = None  # JSON webhook
    post_timeout_s: float = 5.0
    post_retries: int = 2  # further tries after a failed post
    retry_delay_s: float = 0.5  # doubles with each retry
    min_interval_s: float = 1.0  # per action, in stream time
    queue_size: int = 8

    def check(self) -> None:
        """Raise :class:`KwsError` for settings that cannot work."""
        self.argv()
        if self.post_url is not None:
            parts = urllib.parse.urlsplit(self.post_url)
            if parts.scheme not in ("http", "https") or not parts.netloc:
                raise KwsError(f"--post {self.post_url!r}: give an http:// or https:// URL")

    def argv(self) -> list[str] | None:
        if self.exec_cmd is None:
            return None
        try:
            argv = shlex.split(self.exec_cmd)
        except ValueError as exc:
            raise KwsError(f"--exec {self.exec_cmd!r}: {exc}") from None
        if not argv:
            raise KwsError("--exec needs a command")
        return argv


def event_payload(event: Event, model: str) -> dict:
    return {**event.to_dict(), "model": model,
            "timestamp": dt.datetime.now(dt.timezone.utc).isoformat(timespec="milliseconds")}


def event_env(payload: dict) -> dict[str, str]:
    """The environment of an ``--exec`` command: the caller's plus the detection."""
    return {**os.environ, "KWS_LABEL": payload["label"],
            "KWS_PROBABILITY": f"{payload['probability']:.6f}",
            "KWS_TIME_S": f"{payload['time_s']:.3f}", "KWS_TIMESTAMP": payload["timestamp"],
            "KWS_MODEL": payload["model"]}


def run_command(argv: list[str], payload: dict, timeout_s: float) -> None:
    try:
        proc = subprocess.run(argv, env=event_env(payload), timeout=timeout_s,
                              stdin=subprocess.DEVNULL, capture_output=True, text=True)
    except subprocess.TimeoutExpired:
        log.warning("--exec %s: killed after %g s (%s)", argv[0], timeout_s, payload["label"])
        return
    except OSError as exc:
        log.warning("--exec %s: %s", argv[0], exc)
        return
    if proc.returncode != 0:
        log.warning("--exec %s: exit status %d: %s", argv[0], proc.returncode,
                    proc.stderr.strip()[-300:])


def post_json(url: str, payload: dict, config: ActionConfig) -> bool:
    """POST ``payload``; retry a failure (network error or 5xx) ``post_retries`` times."""
    body = json.dumps(payload).encode()
    for attempt in range(config.post_retries + 1):
        if attempt:
            time.sleep(config.retry_delay_s * 2 ** (attempt - 1))
        request = urllib.request.Request(url, data=body, method="POST",
                                         headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=config.post_timeout_s) as response:
                response.read()
            return True
        except urllib.error.HTTPError as exc:
            log.warning("--post %s: HTTP %d (try %d)", url, exc.code, attempt + 1)
            if exc.code < 500:  # the receiver refuses it: trying again will not help
                return False
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            log.warning("--post %s: %s (try %d)", url, reason, attempt + 1)
    return False


class Worker:
    """One action in its own thread, fed through a bounded queue, rate-limited."""

    def __init__(self, name: str, act: Callable[[dict], object], config: ActionConfig) -> None:
        self.name = name
        self._act = act
        self._min_interval_s = config.min_interval_s
        self._queue: queue.Queue[dict | None] = queue.Queue(config.queue_size)
        self._last_s: float | None = None
        self._thread = threading.Thread(target=self._loop, name=f"listen-{name}", daemon=True)
        self._thread.start()

    def submit(self, payload: dict) -> None:
        now = payload["time_s"]
        if self._last_s is not None and now - self._last_s < self._min_interval_s:
            log.info("%s: %s at %.2f s skipped (rate limit)", self.name, payload["label"], now)
            return
        try:
            self._queue.put_nowait(payload)
        except queue.Full:
            log.warning("%s: busy, %s at %.2f s dropped", self.name, payload["label"], now)
            return
        self._last_s = now

    def _loop(self) -> None:
        while (payload := self._queue.get()) is not None:
            try:
                self._act(payload)
            except Exception as exc:  # an action never stops the listener
                log.warning("%s: %s", self.name, exc)

    def close(self, timeout_s: float) -> None:
        """Finish what is queued (up to ``timeout_s``), then stop."""
        try:
            self._queue.put(None, timeout=timeout_s)
        except queue.Full:
            return
        self._thread.join(timeout_s)
        if self._thread.is_alive():
            log.warning("%s: still busy after %g s; left behind", self.name, timeout_s)


class Actions:
    """The configured actions; ``on_event`` is cheap enough for the audio loop."""

    def __init__(self, config: ActionConfig, model: str) -> None:
        self.config = config
        self.model = model
        self.workers: list[Worker] = []
        config.check()
        argv = config.argv()
        if argv is not None:
            self.workers.append(Worker("--exec", lambda p: run_command(
                argv, p, config.exec_timeout_s), config))
        if config.post_url is not None:
            self.workers.append(Worker("--post", lambda p: post_json(
                config.post_url, p, config), config))

    def on_event(self, event: Event) -> None:
        if self.workers:
            payload = event_payload(event, self.model)
            for worker in self.workers:
                worker.submit(payload)

    def close(self) -> None:
        c = self.config
        longest = max(c.exec_timeout_s, (c.post_retries + 1) * c.post_timeout_s
                      + c.retry_delay_s * 2 ** c.post_retries)
        for worker in self.workers:
            worker.close(longest * c.queue_size)
