"""Pool the speaker-fold validation figures of recipes (``ship``'s ``NAME_f<k>`` runs).

Each fold run validates on one fold of the mini set's training and validation speakers (the
test split never changes). Summed over its folds, a recipe's int8 accuracy on those speakers
rests on several times the clips of one validation split, all of them from the population the
test speakers come from; the extra folder's validation speakers are pooled apart.

``python -m benchmarks.experiments.crossval RECIPE ... [--folds 0 1]`` reads
``<work>/results/RECIPE_f<k>.json`` and prints a markdown table (or ``--json``); differences
are against the first recipe, with the standard error of two independent binomial
proportions (conservative: the recipes are scored on the same clips). ``--streams DIR`` adds
each recipe's false accepts per hour on streams of each fold's own validation speakers, at one
threshold for all its folds (:mod:`benchmarks.experiments.fold_streams`).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from dataclasses import dataclass
from pathlib import Path

from benchmarks.experiments.fold_streams import pooled_streams, stream_rows
from benchmarks.experiments.speaker_folds import fold_split, write_splits
from benchmarks.results_io import markdown_table
from edge_runtime.errors import KwsError


@dataclass(frozen=True)
class Pooled:
    """One recipe's figures summed over its folds."""

    recipe: str
    folds: tuple[int, ...]
    n: int  # main-folder validation clips, all folds
    correct: int  # ... labelled right by the int8 file
    float32_correct: int
    agree: int  # ... where the int8 and float32 files give the same label
    n_extra: int
    extra_correct: int
    gates_passed: int
    per_class: dict[str, float]  # int8 accuracy per class, pooled
    anchor: bool = False  # the reference model: no float32 twin, gate or extra part

    @property
    def accuracy(self) -> float:
        return self.correct / self.n

    @property
    def standard_error(self) -> float:
        return math.sqrt(self.accuracy * (1 - self.accuracy) / self.n)

    def difference(self, other: Pooled) -> tuple[float, float]:
        """This accuracy minus ``other``'s and its standard error (points)."""
        diff = self.accuracy - other.accuracy
        return 100 * diff, 100 * math.hypot(self.standard_error, other.standard_error)


def _count(accuracy: float, n: int) -> int:
    return round(accuracy * n)


def pool(recipe: str, folds: list[int], results: Path,
         class_counts: dict[int, dict[str, int]] | None = None) -> Pooled:
    """Sum ``recipe``'s fold runs; ``class_counts[k][label]``: the main-folder validation
    clips of fold ``k`` per class (None: each fold's classes weigh alike)."""
    runs = []
    for k in folds:
        path = results / f"{recipe}_f{k}.json"
        if not path.is_file():
            raise KwsError(f"{path}: no results for fold {k} of {recipe} (ship run it first)")
        row = json.loads(path.read_text())
        if "n_val_main" not in row:
            raise KwsError(f"{path}: no validation figures (converted before they existed)")
        runs.append(row)
    n = sum(r["n_val_main"] for r in runs)
    labels = list(runs[0]["val_main_per_class_int8"])
    per_class = {}
    for label in labels:
        weights = [1 if class_counts is None else class_counts[k].get(label, 0) for k in folds]
        accs = [r["val_main_per_class_int8"].get(label, 0.0) for r in runs]
        total = sum(w * a for w, a in zip(weights, accs, strict=True))
        per_class[label] = total / max(sum(weights), 1)
    return Pooled(
        recipe, tuple(folds), n,
        sum(_count(r["val_main_int8_accuracy"], r["n_val_main"]) for r in runs),
        sum(_count(r["val_main_float32_accuracy"], r["n_val_main"]) for r in runs),
        sum(_count(r["val_main_agreement_float32_int8"], r["n_val_main"]) for r in runs),
        sum(r.get("n_val_extra", 0) for r in runs),
        sum(_count(r.get("val_extra_int8_accuracy", 0.0), r.get("n_val_extra", 0))
            for r in runs),
        sum(bool(r["gate_passed"]) for r in runs), per_class)


def main_val_class_counts(data: Path, folds: list[int], cv_folds: int) -> dict[int, dict]:
    """Per fold, the main folder's validation examples per class."""
    from collections import Counter

    return {k: dict(Counter(e.label for e in fold_split(data, k, cv_folds).val)) for k in folds}


def reference_on_folds(data: Path, folds: list[int], cv_folds: int) -> Pooled | None:
    """The MLPerf Tiny reference on the same main-folder fold clips (None: not here)."""
    from benchmarks.accuracy import reference_report
    from benchmarks.reference import ANCHOR_ROW
    from convert.convert import split_clips
    from edge_runtime.frontend import EDGE_FRONTEND

    n = correct = 0
    hits: dict[str, list[int]] = {}
    for k in folds:
        clips = split_clips(fold_split(data, k, cv_folds), EDGE_FRONTEND, "val")
        got = reference_report(clips)
        if got is None:
            return None
        report = got[0]
        n += len(clips.truths)
        correct += round(report.accuracy * len(clips.truths))
        for label, acc in report.per_class().items():
            if acc is None:  # no clip of the class on this fold
                continue
            count = clips.truths.count(label)
            hit = hits.setdefault(label, [0, 0])
            hit[0], hit[1] = hit[0] + round(acc * count), hit[1] + count
    return Pooled(ANCHOR_ROW, tuple(folds), n, correct, correct, n, 0, 0,
                  0, {label: h / max(c, 1) for label, (h, c) in hits.items()}, anchor=True)


def rows(pooled: list[Pooled]) -> list[dict]:
    first = pooled[0]
    out = []
    for p in pooled:
        diff, se = p.difference(first)
        weakest = sorted(p.per_class.items(), key=lambda kv: kv[1])[:3]
        out.append({
            "recipe": p.recipe, "folds": " ".join(map(str, p.folds)), "clips": p.n,
            "int8 %": f"{100 * p.accuracy:.2f} ± {100 * p.standard_error:.2f}",
            f"vs {first.recipe} (pt)": "" if p is first else f"{diff:+.2f} ± {se:.2f}",
            "float32 %": "—" if p.anchor else f"{100 * p.float32_correct / p.n:.2f}",
            "agree %": "—" if p.anchor else f"{100 * p.agree / p.n:.2f}",
            "extra part int8 %": (f"{100 * p.extra_correct / p.n_extra:.2f}" if p.n_extra
                                  else "—"),
            "gate": "—" if p.anchor else f"{p.gates_passed}/{len(p.folds)}",
            "weakest classes": ", ".join(f"{c} {100 * a:.1f}" for c, a in weakest)})
    return out


def main(argv: list[str] | None = None) -> int:
    from benchmarks.experiments.ship import CV_FOLDS, DATA, WORK

    p = argparse.ArgumentParser(prog="python -m benchmarks.experiments.crossval",
                                description=__doc__.split("\n\n")[0])
    p.add_argument("recipes", nargs="*", help="experiment names without _f<k>")
    p.add_argument("--folds", type=int, nargs="+", default=list(range(CV_FOLDS)))
    p.add_argument("--results", type=Path, default=WORK / "results")
    p.add_argument("--data", type=Path, default=DATA,
                   help="the main folder (for per-class clip counts)")
    p.add_argument("--reference", action="store_true",
                   help="add the MLPerf Tiny reference scored on the same clips (an anchor)")
    p.add_argument("--json", action="store_true")
    p.add_argument("--streams", type=Path, metavar="DIR",
                   help="also pool rejection on streams of each fold's validation speakers "
                        "(DIR/RECIPE_f<k>/rejection.json; those missing are measured first)")
    p.add_argument("--stream-minutes", type=float, default=20.0,
                   help="length of each stream measured for --streams (default: %(default)g)")
    p.add_argument("--write-splits", type=Path, metavar="DIR",
                   help="also write DIR/fold_<k>.json, each fold's validation speakers as a "
                        "split file for benchmarks.rejection --split ... --speakers val")
    args = p.parse_args(argv)
    try:
        if args.write_splits is not None:
            if not args.data.is_dir():
                raise KwsError(f"{args.data}: no data folder to deal the speakers of")
            for path in write_splits(args.data, args.folds, CV_FOLDS, args.write_splits):
                print(f"wrote {path}", file=sys.stderr)
            if not args.recipes:
                return 0
        if not args.recipes:
            raise KwsError("name at least one recipe (or --write-splits DIR)")
        if not args.stream_minutes > 0:
            raise KwsError(f"--stream-minutes must be > 0, got {args.stream_minutes:g}")
        if any(not 0 <= k < CV_FOLDS for k in args.folds):
            raise KwsError(f"--folds must be within 0-{CV_FOLDS - 1}")
        counts = (main_val_class_counts(args.data, args.folds, CV_FOLDS)
                  if args.data.is_dir() else None)
        pooled = [pool(r, args.folds, args.results, counts) for r in args.recipes]
        anchor = (reference_on_folds(args.data, args.folds, CV_FOLDS)
                  if args.reference and args.data.is_dir() else None)
        streams = (None if args.streams is None else stream_rows(pooled_streams(
            args.recipes, args.folds, args.results, args.data, args.streams, CV_FOLDS,
            args.reference, args.stream_minutes)))
    except KwsError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    table = rows(pooled + ([anchor] if anchor is not None else []))
    if args.json:
        print(json.dumps(table if streams is None else {"accuracy": table, "streams": streams},
                         indent=2))
        return 0
    print(markdown_table(list(table[0]), [list(r.values()) for r in table]))
    if streams is not None:
        print("\nStreams of each fold's validation speakers, one threshold for all folds "
              "(the fewest false accepts with <= 10% false rejects):\n")
        print(markdown_table(list(streams[0]), [list(r.values()) for r in streams]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
