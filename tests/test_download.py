"""``kws data download`` against a real HTTP server on 127.0.0.1 that supports Range."""

from __future__ import annotations

import argparse
import hashlib
import io
import tarfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from edge_runtime.cmdline import Parser, run
from edge_runtime.dataset import list_clips
from tests.fixtures_data import make_fake_dataset
from train.data_cli import add_data_parser
from train.download import CHUNK, MARKER, get_dataset


def kws(*argv: str) -> int:
    """The ``data`` commands as the ``kws`` CLI runs them (error: line + status 2)."""
    parser = Parser(prog="kws")
    add_data_parser(parser.add_subparsers(dest="command", required=True, parser_class=Parser))

    def go() -> int:
        args: argparse.Namespace = parser.parse_args(list(argv))
        return args.func(args)

    return run(go)


class Server:
    """Serves one payload; honours ``Range: bytes=N-``; can drop the first response early."""

    def __init__(self, payload: bytes, drop_after: int | None = None, ranges: bool = True):
        self.payload, self.drop_after, self.ranges = payload, drop_after, ranges
        self.requests: list[str | None] = []  # the Range header of each request
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_GET(self) -> None:
                header = self.headers.get("Range")
                outer.requests.append(header)
                start = 0
                if header and outer.ranges:
                    start = int(header.removeprefix("bytes=").split("-")[0])
                    if start >= len(outer.payload):
                        self.send_response(416)
                        self.send_header("Content-Range", f"bytes */{len(outer.payload)}")
                        self.end_headers()
                        return
                    self.send_response(206)
                    self.send_header("Content-Range",
                                     f"bytes {start}-{len(outer.payload) - 1}/"
                                     f"{len(outer.payload)}")
                else:
                    self.send_response(200)
                body = outer.payload[start:]
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if outer.drop_after is not None:
                    body, outer.drop_after = body[: outer.drop_after], None
                    self.wfile.write(body)
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/speech_commands_test.tar.gz"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> Server:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(scope="module")
def tarball(tmp_path_factory) -> bytes:
    src = make_fake_dataset(tmp_path_factory.mktemp("src"), ["yes", "no"], 4, 2,
                            with_lists=True, noise_seconds=1.5)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for path in sorted(src.rglob("*")):
            tar.add(path, arcname="./" + path.relative_to(src).as_posix(), recursive=False)
    return buf.getvalue()


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_download_checks_and_extracts(tmp_path, tarball, capsys):
    dest = tmp_path / "sc"
    with Server(tarball) as server:
        code = kws("data", "download", "--dest", str(dest), "--url", server.url,
                   "--sha256", sha(tarball), "--quiet")
    assert code == 0
    assert "sha256 checked" in capsys.readouterr().out
    assert len(list_clips(dest)) == 16
    assert (dest / "testing_list.txt").is_file() and (dest / MARKER).is_file()
    assert not list(dest.glob("*.tar.gz*"))  # archive removed after extraction
    # a second run finds the extracted set and does not download
    with Server(tarball) as server:
        assert kws("data", "download", "--dest", str(dest), "--url", server.url) == 0
        assert server.requests == []
    assert "already holds an extracted data set" in capsys.readouterr().out


def test_download_resumes_after_a_dropped_connection(tmp_path, tarball):
    dest = tmp_path / "sc"
    cut = 2 * CHUNK + 1000  # whole reads that arrived are kept, the broken one is not
    assert len(tarball) > 2 * cut
    with Server(tarball, drop_after=cut) as server:
        message = get_dataset("v0.02", dest, url=server.url, sha256=sha(tarball),
                              retries=1, progress=False, keep_archive=True)
        assert server.requests == [None, f"bytes={2 * CHUNK}-"]
    assert "extracted" in message
    archive = dest / "speech_commands_test.tar.gz"
    assert archive.read_bytes() == tarball
    assert len(list_clips(dest)) == 16


def test_interrupted_download_is_kept_and_resumed_by_the_next_run(tmp_path, tarball, capsys):
    dest = tmp_path / "sc"
    cut = 3 * CHUNK
    with Server(tarball, drop_after=cut) as server:
        code = kws("data", "download", "--dest", str(dest), "--url", server.url,
                   "--retries", "0", "--quiet")
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: download interrupted") and "\n" not in err
    part = dest / "speech_commands_test.tar.gz.part"
    assert part.stat().st_size == cut
    with Server(tarball) as server:
        assert kws("data", "download", "--dest", str(dest), "--url", server.url,
                   "--quiet") == 0
        assert server.requests == [f"bytes={cut}-"]
    assert len(list_clips(dest)) == 16


def test_server_without_range_support_restarts(tmp_path, tarball):
    dest = tmp_path / "sc"
    dest.mkdir()
    (dest / "speech_commands_test.tar.gz.part").write_bytes(b"garbage from before")
    with Server(tarball, ranges=False) as server:
        get_dataset("v0.02", dest, url=server.url, sha256=sha(tarball), progress=False)
    assert len(list_clips(dest)) == 16


def test_wrong_sha256_is_an_error_and_the_file_is_deleted(tmp_path, tarball, capsys):
    dest = tmp_path / "sc"
    with Server(tarball) as server:
        code = kws("data", "download", "--dest", str(dest), "--url", server.url,
                   "--sha256", "0" * 64, "--quiet")
    assert code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "does not match" in err
    assert not list(dest.glob("*.tar.gz*"))


def test_bad_arguments(tmp_path, capsys):
    assert kws("data", "download", "--dest", str(tmp_path), "--sha256", "xyz") == 2
    assert "64 hex digits" in capsys.readouterr().err
    assert kws("data", "download", "--version", "v9") == 2
    assert kws("data") == 2
    assert "sub-command" in capsys.readouterr().err
    assert kws("data", "download", "--dest", str(tmp_path / "d"),
               "--url", "http://127.0.0.1:9/x.tar.gz", "--quiet") == 2
    assert "cannot reach" in capsys.readouterr().err


def test_local_archive_is_extracted_without_download(tmp_path, tarball):
    archive = tmp_path / "local.tar.gz"
    archive.write_bytes(tarball)
    assert kws("data", "download", "--dest", str(tmp_path / "sc"), "--archive", str(archive),
               "--sha256", sha(tarball), "--quiet") == 0
    assert len(list_clips(tmp_path / "sc")) == 16
    assert archive.is_file()  # the user's file stays
    assert kws("data", "download", "--dest", str(tmp_path / "x"), "--archive", str(archive),
               "--sha256", "1" * 64, "--quiet") == 2
    assert archive.is_file()  # even when its hash is wrong


def test_unsafe_archive_members_are_refused(tmp_path):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        info = tarfile.TarInfo("../escape.txt")
        info.size = 3
        tar.addfile(info, io.BytesIO(b"bad"))
    archive = tmp_path / "evil.tar.gz"
    archive.write_bytes(buf.getvalue())
    dest = tmp_path / "sc"
    assert kws("data", "download", "--dest", str(dest), "--archive", str(archive),
               "--quiet") == 2
    assert not (tmp_path / "escape.txt").exists()


def test_known_archives_have_checksums():
    from train.download import ARCHIVES

    assert ARCHIVES["v0.02"].size == 2_428_923_189
    assert all(len(a.sha256) == 64 for a in ARCHIVES.values() if a.sha256)
    assert Path(ARCHIVES["v0.01"].url).name == "speech_commands_v0.01.tar.gz"
