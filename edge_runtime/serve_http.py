"""waitress, hardened for ``kws-edge serve``: slow clients cannot lock everyone out, and
waitress' own errors (request too large, header too large, malformed) are JSON.

waitress reads requests on its event loop, so a slow client costs a connection, not a
worker thread; what ran out was connections (100 by default) for as long as a client kept
trickling bytes (an idle timeout of 120 s is reset by every byte). Here connections are
limited by the file-descriptor limit only (1,000 by default) and to ``PER_CLIENT_LIMIT`` from
one address (more are closed at once), idle ones are closed after ``IDLE_TIMEOUT_S``, and a
request whose header and body have not arrived within ``request_timeout`` seconds of its first
byte is dropped, however steadily it trickles.
"""

from __future__ import annotations

import json
import resource
import time

from waitress.channel import HTTPChannel
from waitress.server import BaseWSGIServer, create_server
from waitress.task import ErrorTask

IDLE_TIMEOUT_S = 10
CONNECTION_LIMIT = 1000
PER_CLIENT_LIMIT = 200  # connections from one address (a proxy in front counts as one)
MIN_REQUEST_TIMEOUT_S = 10.0
SECONDS_PER_MB = 8.0  # 1 Mbit/s: the slowest upload link given time for a full upload


def default_request_timeout(max_upload_mb: float) -> float:
    return MIN_REQUEST_TIMEOUT_S + SECONDS_PER_MB * max_upload_mb


class JsonErrorTask(ErrorTask):
    """waitress' 400/413/431 answers as ``{"error": …}`` (the API's error format)."""

    def execute(self) -> None:
        error = self.request.error
        body = json.dumps({"error": f"{error.reason}: {error.body}"}).encode()
        self.status = f"{error.code} {error.reason}"
        self.response_headers.extend([("Content-Type", "application/json"),
                                      ("X-Content-Type-Options", "nosniff")])
        self.set_close_on_finish()
        self.content_length = len(body)
        self.write(body)


class GuardedChannel(HTTPChannel):
    """A connection that notes when its current request began, closed at once when its
    address already holds ``PER_CLIENT_LIMIT`` connections."""

    error_task_class = JsonErrorTask
    request_started = 0.0

    def __init__(self, server, sock, addr, adj, map=None) -> None:
        super().__init__(server, sock, addr, adj, map)
        host = addr[0] if isinstance(addr, tuple) else None
        same = sum(1 for c in server.active_channels.values()
                   if isinstance(c.addr, tuple) and c.addr[0] == host)
        if host is not None and same > PER_CLIENT_LIMIT:
            self.close()

    def received(self, data: bytes) -> bool:
        if self.request is None and data:
            self.request_started = time.time()
        return super().received(data)


def _guard(server: BaseWSGIServer, request_timeout: float) -> None:
    """Make ``server`` open :class:`GuardedChannel` s and drop requests that take too long."""
    plain_maintenance = server.maintenance

    def maintenance(now: float) -> None:
        plain_maintenance(now)  # idle connections
        for channel in list(server.active_channels.values()):
            started = getattr(channel, "request_started", 0.0)
            if (channel.request is not None and not channel.requests
                    and now - started > request_timeout):
                channel.will_close = True

    server.channel_class = GuardedChannel
    server.maintenance = maintenance


def connection_limit() -> int:
    """CONNECTION_LIMIT, raising the soft file-descriptor limit if needed and allowed."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = CONNECTION_LIMIT + 64
    if soft != resource.RLIM_INFINITY and soft < wanted:
        new = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (new, hard))
            soft = new
        except (ValueError, OSError):
            pass
    return CONNECTION_LIMIT if soft == resource.RLIM_INFINITY else min(CONNECTION_LIMIT,
                                                                        soft - 64)


def make_server(app, host: str, port: int, threads: int, max_body_bytes: int,
                request_timeout: float):
    """A waitress server (not yet running) with the guards above."""
    sockets: dict = {}
    server = create_server(app, map=sockets, host=host, port=port, threads=threads,
                           max_request_body_size=max_body_bytes, ident="kws-edge",
                           connection_limit=connection_limit(),
                           channel_timeout=IDLE_TIMEOUT_S, cleanup_interval=1)
    for dispatcher in list(sockets.values()):
        if isinstance(dispatcher, BaseWSGIServer):
            _guard(dispatcher, request_timeout)
    return server
