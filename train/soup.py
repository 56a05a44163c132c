"""Weight averaging ("model soup"): one model whose every weight, BatchNorm statistics
included, is the weighted mean of the same weight in several trained models.

Meant for models that share a starting point, e.g. a model and the fine-tunes started from
it (Wortsman et al. 2022, "Model soups"; Wortsman et al. 2022, "Robust fine-tuning of
zero-shot models", WiSE-FT): their weights lie in one basin, so their mean is a model of
its own, often better than each, at the cost of one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np

from edge_runtime.errors import KwsError
from train.settings import MODEL_FILENAME, ModelSettings


def soup_weights(n: int, weights: Sequence[float] | None) -> np.ndarray:
    """``weights`` normalised to sum to 1 (None: uniform); KwsError when unusable."""
    w = np.full(n, 1.0 / n) if weights is None else np.asarray(weights, dtype=np.float64)
    if w.shape != (n,):
        raise KwsError(f"{len(w)} weights for {n} models")
    if not (np.all(np.isfinite(w)) and np.all(w >= 0) and w.sum() > 0):
        raise KwsError(f"soup weights must be >= 0 and not all 0, got {list(w)}")
    return w / w.sum()


def check_same_model(settings: list[ModelSettings], folders: Sequence[Path]) -> None:
    """KwsError unless every model has the first one's architecture, labels, front-end
    and input normalisation."""
    first = settings[0]
    for s, folder in zip(settings[1:], folders[1:], strict=True):
        if (s.arch, list(s.labels), s.frontend, s.data.normalized) != (
                first.arch, list(first.labels), first.frontend, first.data.normalized):
            raise KwsError(f"{folder}: a {s.arch} model for other labels, front-end or input "
                           f"normalisation than {folders[0]}'s {first.arch}: not averageable")


def average_models(folders: Sequence[Path], out_dir: Path,
                   weights: Sequence[float] | None = None) -> Path:
    """Write the weighted mean of the models in ``folders`` (``model.keras`` +
    ``model_settings.json`` each) to ``out_dir``; returns ``out_dir``. Its settings are the
    first model's (data, split, front-end), its metrics name the ingredients."""
    from train.models import load_keras

    folders = [Path(f) for f in folders]
    if not folders:
        raise KwsError("no models to average")
    w = soup_weights(len(folders), weights)
    settings = [ModelSettings.load(f) for f in folders]
    check_same_model(settings, folders)
    models = [load_keras(f) for f in folders]
    tensors = [m.get_weights() for m in models]
    shapes = [[t.shape for t in ts] for ts in tensors]
    for folder, s in zip(folders[1:], shapes[1:], strict=True):
        if s != shapes[0]:
            raise KwsError(f"{folder}: its weights differ in shape from {folders[0]}'s")
    mean = [np.sum([wi * ts[j].astype(np.float64) for wi, ts in zip(w, tensors, strict=True)],
                   axis=0).astype(tensors[0][j].dtype) for j in range(len(tensors[0]))]
    models[0].set_weights(mean)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    models[0].save(out_dir / MODEL_FILENAME)
    metrics = {"soup_of": [str(f) for f in folders],
               "soup_weights": [round(float(x), 6) for x in w]}
    replace(settings[0], run_id=None, metrics=metrics).save(out_dir)
    return out_dir
