"""Shared fixtures: real data location, small models built with TF, WAV helpers."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pytest

if TYPE_CHECKING:
    from edge_runtime.model import KwsModel

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import train  # noqa: E402,F401  (TensorFlow's CPU kernel switch, set before it loads)


def real_data_dir() -> Path | None:
    env = os.environ.get("KWS_DATA_DIR")
    path = Path(env) if env else ROOT.parent / "shared" / "data" / "speech_commands_mini"
    return path if path.is_dir() else None


@pytest.fixture(scope="session")
def real_data() -> Path:
    path = real_data_dir()
    if path is None:
        pytest.skip("real speech not found at ../shared/data/speech_commands_mini "
                    "or $KWS_DATA_DIR: skipping")
    return path


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory) -> dict[str, Path]:
    """A small float32 + int8 model pair (untrained weights) with manifests."""
    from tests.model_factory import build_models

    return build_models(tmp_path_factory.mktemp("models"))


@pytest.fixture(scope="session")
def tone_model_path(tmp_path_factory) -> Path:
    """A float32 model trained on tone words (:mod:`tests.tone_streams`)."""
    from tests.tone_streams import train_tone_model

    return train_tone_model(tmp_path_factory.mktemp("tones"))


@pytest.fixture(scope="session")
def tone_model(tone_model_path) -> KwsModel:
    """The tone model, loaded once."""
    from edge_runtime.model import KwsModel

    return KwsModel(tone_model_path)


@pytest.fixture(scope="session")
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


def speech_like(seconds: float = 1.0, rate: int = 16000, seed: int = 0) -> np.ndarray:
    """A voiced-sounding test signal: gliding harmonics under an envelope, plus noise."""
    r = np.random.default_rng(seed)
    n = int(seconds * rate)
    t = np.arange(n) / rate
    f0 = 120 + 60 * np.sin(2 * np.pi * 1.5 * t)
    phase = 2 * np.pi * np.cumsum(f0) / rate
    voice = sum(np.sin(k * phase) / k for k in range(1, 8))
    envelope = np.sin(np.pi * np.clip(t / max(seconds, 1e-9), 0, 1)) ** 2
    return (0.25 * voice * envelope + 0.005 * r.standard_normal(n)).astype(np.float32)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
