"""The mini set's speaker folds as ``ship``'s fold runs deal them, and their split files.

``crossval`` pools fold runs on these clips; ``fold_streams`` builds streams of each fold's
validation speakers from the split files.
"""

from __future__ import annotations

import json
from pathlib import Path


def fold_split(data: Path, fold: int, cv_folds: int):
    """The main folder alone split as ``ship``'s fold runs split it (its validation clips are
    their main part)."""
    from benchmarks.experiments.ship import TEST_PCT, VAL_PCT
    from train.data import DataConfig, load_dataset

    return load_dataset(DataConfig(data, val_pct=VAL_PCT, test_pct=TEST_PCT, cv_folds=cv_folds,
                                   cv_fold=fold))


def write_splits(data: Path, folds: list[int], cv_folds: int, out: Path) -> list[Path]:
    """``out``/fold_<k>.json: fold k's validation speakers (and the test speakers) as a split
    file, for streams of those speakers (``benchmarks.rejection --split F --speakers val``)."""
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for k in folds:
        dataset = fold_split(data, k, cv_folds)
        split = {name: sorted({e.speaker for e in dataset.split(name) if e.speaker})
                 for name in ("val", "test")}
        path = out / f"fold_{k}.json"
        path.write_text(json.dumps({"rule": dataset.split_rule, **split}, indent=1) + "\n")
        paths.append(path)
    return paths
