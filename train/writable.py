"""Checks, before hours of training, that the results can be written where they go."""

from __future__ import annotations

import tempfile
from pathlib import Path
from urllib.parse import unquote, urlparse

from edge_runtime.errors import KwsError


def check_writable_dir(folder: Path, what: str = "output folder") -> None:
    """Refuse ``folder`` unless it (or its nearest existing parent, where it would be made)
    is a folder this process can create files in (tried, not guessed from permissions)."""
    folder = Path(folder).absolute()
    existing = next(p for p in (folder, *folder.parents) if p.exists())
    if not existing.is_dir():
        raise KwsError(f"{folder}: cannot make the {what} ({existing} is not a folder)")
    try:
        with tempfile.NamedTemporaryFile(dir=existing, prefix=".kws-write-test-"):
            pass
    except OSError as exc:
        raise KwsError(f"{folder}: the {what} is not writable ({existing}: "
                       f"{exc.strerror or exc})") from None


def check_tracking_store(uri: str) -> None:
    """A local MLflow store (``sqlite:///`` file, ``file:`` or plain folder) must be
    writable; a remote one (http, databricks, ...) is left to MLflow."""
    parsed = urlparse(uri)
    if parsed.scheme == "sqlite":
        path = Path(unquote(parsed.path)[1:])  # sqlite:///rel.db, sqlite:////abs.db
        check_writable_dir(path.parent, "MLflow store's folder")
        if path.exists() and not path.is_file():
            raise KwsError(f"{path}: the MLflow store is not a file")
    elif parsed.scheme in ("", "file"):
        check_writable_dir(Path(unquote(parsed.path)), "MLflow store")
