"""Download, check and extract the Speech Commands archive (``kws data download``).

Resumable (HTTP Range into ``<archive>.part``), with a tqdm progress bar, a size check
(Content-Length / Content-Range and the known size), a sha256 check when the hash is known,
and extraction with tarfile's ``"data"`` safety filter.
"""

from __future__ import annotations

import hashlib
import re
import tarfile
from dataclasses import dataclass
from pathlib import Path

import requests
from tqdm import tqdm

from edge_runtime.errors import KwsError


@dataclass(frozen=True)
class Archive:
    url: str
    size: int | None  # bytes, None where unknown
    sha256: str | None  # None where unknown


# Checksums as published by TensorFlow Datasets / torchaudio for these archives.
ARCHIVES = {
    "v0.01": Archive(
        "http://download.tensorflow.org/data/speech_commands_v0.01.tar.gz",
        None,
        "743935421bb51cccdb6bdd152e04c5c70274e935c82119ad7faeec31780d811d",
    ),
    "v0.02": Archive(
        "http://download.tensorflow.org/data/speech_commands_v0.02.tar.gz",
        2_428_923_189,
        "af14739ee7dc311471de98f5f9d2c9191b18aedfe957f4a6ff791c709868ff58",
    ),
}
MARKER = ".kws-extracted"  # written once an archive was extracted completely
CHUNK = 1 << 16  # what a dropped connection can lose of the last read


class Incomplete(Exception):
    """The connection ended before the whole file arrived (resumable)."""


def default_dest(version: str) -> Path:
    return Path("data") / f"speech_commands_{version}"


def is_extracted(dest: Path) -> bool:
    """True when ``dest`` holds a complete data set (ours, or one the user unpacked)."""
    if (dest / MARKER).is_file():
        return True
    lists = all((dest / n).is_file() for n in ("testing_list.txt", "validation_list.txt"))
    return lists and any(next(p.glob("*.wav"), None) for p in dest.iterdir() if p.is_dir())


def _total_from(response: requests.Response, have: int) -> int | None:
    if response.status_code == 206:
        m = re.match(r"bytes (\d+)-\d+/(\d+|\*)", response.headers.get("Content-Range", ""))
        if not m or int(m.group(1)) != have:
            raise KwsError(f"server answered a resume with a wrong range: {m and m.group(0)}")
        return None if m.group(2) == "*" else int(m.group(2))
    length = response.headers.get("Content-Length")
    return int(length) if length and length.isdigit() else None


def fetch(url: str, part: Path, expected_size: int | None = None, progress: bool = True,
          timeout: float = 30.0) -> int:
    """Download ``url`` into ``part``, resuming what is there; return its final size.

    Raises :class:`Incomplete` when the connection drops (call again to resume).
    """
    have = part.stat().st_size if part.is_file() else 0
    if expected_size is not None and have == expected_size:
        return have
    if expected_size is not None and have > expected_size:
        part.unlink()
        have = 0
    headers = {"Range": f"bytes={have}-"} if have else {}
    try:
        with requests.get(url, headers=headers, stream=True, timeout=timeout) as r:
            if r.status_code == 416 and have:  # nothing after what we have: it is complete
                return have
            if r.status_code not in (200, 206):
                raise KwsError(f"download failed: HTTP {r.status_code} from {url}")
            if r.status_code == 200:
                have = 0  # no resume support: start again
            total = _total_from(r, have)
            if expected_size is not None and total is not None and total != expected_size:
                raise KwsError(f"{url}: server size {total} bytes, expected {expected_size}")
            with open(part, "ab" if have else "wb") as f, tqdm(
                total=total, initial=have, unit="B", unit_scale=True, unit_divisor=1024,
                desc=part.name, disable=not progress,
            ) as bar:
                for block in r.iter_content(CHUNK):
                    f.write(block)
                    bar.update(len(block))
    except requests.exceptions.ConnectionError as exc:
        if "Connection refused" in str(exc) or "resolve" in str(exc).lower():
            raise KwsError(f"download failed: cannot reach {url}") from None
        raise Incomplete(str(exc)) from None
    except (requests.exceptions.ChunkedEncodingError, requests.exceptions.Timeout) as exc:
        raise Incomplete(str(exc)) from None
    except requests.exceptions.RequestException as exc:
        raise KwsError(f"download failed: {exc}") from None
    size = part.stat().st_size
    want = total if total is not None else expected_size
    if want is not None and size != want:
        raise Incomplete(f"got {size} of {want} bytes")
    return size


def sha256_of(path: Path, progress: bool = True) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f, tqdm(total=path.stat().st_size, unit="B", unit_scale=True,
                                     desc="sha256", disable=not progress) as bar:
        for block in iter(lambda: f.read(CHUNK), b""):
            h.update(block)
            bar.update(len(block))
    return h.hexdigest()


def download(url: str, archive: Path, size: int | None = None, sha256: str | None = None,
             retries: int = 5, progress: bool = True) -> Path:
    """Download ``url`` to ``archive`` (via ``archive.part``) and check size and sha256."""
    part = archive.with_name(archive.name + ".part")
    archive.parent.mkdir(parents=True, exist_ok=True)
    for attempt in range(retries + 1):
        try:
            fetch(url, part, size, progress)
            break
        except Incomplete as exc:
            if attempt == retries:
                have = part.stat().st_size if part.is_file() else 0
                raise KwsError(f"download interrupted ({exc}); {have} bytes kept in {part}: "
                               "run the command again to resume") from None
    verify(part, size, sha256, progress)
    part.replace(archive)
    return archive


def verify(path: Path, size: int | None, sha256: str | None, progress: bool = True,
           delete: bool = True) -> None:
    """Check size and sha256 (when known); a bad download is deleted."""
    gone = " (deleted)" if delete else ""
    actual = path.stat().st_size
    if size is not None and actual != size:
        if delete:
            path.unlink()
        raise KwsError(f"{path}: {actual} bytes, expected {size}{gone}")
    if sha256 is not None:
        digest = sha256_of(path, progress)
        if digest != sha256.lower():
            if delete:
                path.unlink()
            raise KwsError(f"{path}: sha256 {digest} does not match {sha256}{gone}")


def extract(archive: Path, dest: Path, progress: bool = True) -> int:
    """Unpack ``archive`` into ``dest`` with the ``"data"`` filter; return the file count."""
    dest.mkdir(parents=True, exist_ok=True)
    count = 0
    try:
        with tarfile.open(archive, "r:*") as tar:
            for member in tqdm(tar, unit=" files", desc="extract", disable=not progress):
                tar.extract(member, dest, filter="data")
                count += member.isfile()
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise KwsError(f"{archive}: cannot extract ({exc})") from None
    (dest / MARKER).write_text(f"{archive.name}\n")
    return count


def get_dataset(version: str = "v0.02", dest: Path | None = None, url: str | None = None,
                sha256: str | None = None, archive: Path | None = None,
                keep_archive: bool = False, retries: int = 5, progress: bool = True) -> str:
    """Make ``dest`` hold the extracted data set; return a one-line summary of what was done.

    ``url``/``sha256`` override the known ones (a custom URL has no known size); ``archive``
    extracts a local copy of the archive instead of downloading.
    """
    if version not in ARCHIVES:
        raise KwsError(f"unknown version {version!r} (choose from {', '.join(ARCHIVES)})")
    known = ARCHIVES[version]
    dest = Path(dest) if dest is not None else default_dest(version)
    if dest.is_dir() and is_extracted(dest):
        return f"{dest} already holds an extracted data set: nothing to do"
    if sha256 is not None and not re.fullmatch(r"[0-9a-fA-F]{64}", sha256):
        raise KwsError(f"--sha256 must be 64 hex digits, got {sha256!r}")
    if archive is not None:
        if not Path(archive).is_file():
            raise KwsError(f"{archive}: no such archive")
        verify_hash = sha256 if sha256 is not None else (known.sha256 if url is None else None)
        if verify_hash:
            verify(Path(archive), None, verify_hash, progress, delete=False)
        files = extract(Path(archive), dest, progress)
        return f"extracted {files} files from {archive} into {dest}"
    source = url or known.url
    size = known.size if url is None else None
    digest = sha256 if sha256 is not None else (known.sha256 if url is None else None)
    target = dest / Path(source.split("?")[0]).name
    download(source, target, size, digest, retries, progress)
    files = extract(target, dest, progress)
    if not keep_archive:
        target.unlink()
    checked = "sha256 checked" if digest else "no sha256 known: size checked only"
    return f"downloaded {source} ({checked}) and extracted {files} files into {dest}"
