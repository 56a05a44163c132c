"""MFCC features of data-set examples, computed once with the shared front-end and cached.

The cache key is a sha256 of the front-end config and of the (sorted) examples with the size
and mtime of their files, so a changed file, front-end or split gives a new entry. Entries are
``.npy`` files under ``$KWS_CACHE_DIR`` (default ``~/.cache/kws-edge/features``).
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

import numpy as np

from edge_runtime.frontend import Frontend, FrontendConfig
from train.data import Dataset, Example, load_waveforms

BATCH = 512  # clips per front-end call (bounds the memory of one call)


def default_cache_dir() -> Path:
    env = os.environ.get("KWS_CACHE_DIR")
    return Path(env) if env else Path.home() / ".cache" / "kws-edge" / "features"


def _identity(dataset: Dataset, ex: Example) -> str:
    """The example's name plus what would change its audio (file size and mtime)."""
    name = dataset.example_id(ex)
    if ex.path is None:
        return name
    st = ex.path.stat()
    return f"{name}\t{st.st_size}\t{st.st_mtime_ns}"


def cache_key(config: FrontendConfig, identities: list[str]) -> str:
    h = hashlib.sha256(config.to_json().encode())
    for ident in identities:
        h.update(b"\n" + ident.encode("utf-8", "surrogateescape"))
    return h.hexdigest()


def compute_features(dataset: Dataset, examples: list[Example], config: FrontendConfig
                     ) -> np.ndarray:
    """``(N, frames, n_mfcc)`` float32 MFCCs of the examples, without the cache."""
    from tqdm import tqdm

    frontend = Frontend(config)
    out = np.empty((len(examples), *config.feature_shape), dtype=np.float32)
    with tqdm(total=len(examples), desc="features", unit=" clips", disable=None,
              leave=False) as bar:  # a bar on a terminal only
        for start in range(0, len(examples), BATCH):
            part = examples[start : start + BATCH]
            audio = load_waveforms(dataset, part, config.sample_rate, config.clip_samples)
            out[start : start + len(part)] = frontend(audio)
            bar.update(len(part))
    return out


def cached_features(dataset: Dataset, examples: list[Example], config: FrontendConfig,
                    cache_dir: Path | None = None) -> np.ndarray:
    """Features of ``examples`` (in their order), from the cache when computed before."""
    idents = [_identity(dataset, ex) for ex in examples]
    unique = sorted(set(idents))
    row = {ident: i for i, ident in enumerate(unique)}
    cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    path = cache_dir / f"{cache_key(config, unique)}.npy"
    table = None
    if path.is_file():
        try:
            table = np.load(path)
        except (OSError, ValueError, EOFError):
            table = None  # a damaged (or empty) entry is recomputed
        if table is not None and table.shape != (len(unique), *config.feature_shape):
            table = None
    if table is None:
        first = {}
        for ex, ident in zip(examples, idents, strict=True):
            first.setdefault(ident, ex)
        table = compute_features(dataset, [first[i] for i in unique], config)
        cache_dir.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=cache_dir, suffix=".npy.tmp")
        with os.fdopen(fd, "wb") as f:
            np.save(f, table)
        os.replace(tmp, path)
    return table[[row[i] for i in idents]] if idents else table[:0]
