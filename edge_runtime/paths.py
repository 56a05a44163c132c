"""Where the default (shipped) model lives."""

from __future__ import annotations

import os
from pathlib import Path

from edge_runtime.errors import KwsError

DEFAULT_MODEL_NAME = "kws_int8.tflite"


def default_model() -> Path:
    """``$KWS_MODEL``, else the shipped int8 model: package data ``edge_runtime.shipped`` (the
    repository's ``artifacts/`` folder, see pyproject.toml)."""
    env = os.environ.get("KWS_MODEL")
    if env:
        return Path(env)
    try:
        from importlib.resources import files

        shipped = Path(str(files("edge_runtime.shipped") / DEFAULT_MODEL_NAME))
    except (ImportError, TypeError):
        shipped = None
    if shipped is None or not shipped.is_file():
        raise KwsError("no default model is installed: pass --model PATH (or set KWS_MODEL)")
    return shipped
