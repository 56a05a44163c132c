"""Test-time shifts: does averaging a clip's prediction over time-shifted copies pay?

``python -m benchmarks.experiments.test_time_shifts [--model FILE] [--variant NAME=MS,MS,...]``
classifies each validation clip of experiment ``--experiment``'s split (default
``speech_ema_150_xv``, the shipped recipe: 20 speakers of the mini set + 160 of the extra
folder) by the mean of the model's probabilities over copies of the clip shifted by the given
milliseconds (zero-filled, as training's time-shift augmentation fills), through the runtime, and
compares each variant with one plain prediction per clip. A variant qualifies (the rule written
before the first measurement, session 36) when the 95% speaker-bootstrap interval of its accuracy
minus the plain one lies above zero, it is no less accurate on the main folder's speakers, and its
``_unknown_`` recall is at most 1 point lower. Validation only: the test split is never read.
Writes ``test_time_shifts.{json,md}`` into ``--out`` (default ``benchmarks/results``).
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from benchmarks.experiments.ship import DATA, EXPERIMENTS, train_config
from benchmarks.rejection import bootstrap_ratio
from benchmarks.results_io import RESULTS, ROOT, markdown_table, write_results
from edge_runtime.model import KwsModel
from train.augment import shifted

VARIANTS = {"T3": (-100, 0, 100), "T5": (-100, -50, 0, 50, 100), "T3s": (-50, 0, 50)}
MAX_UNKNOWN_LOSS = 0.01  # the rule: _unknown_ recall at most 1 point lower


@dataclass
class Variant:
    name: str
    shifts_ms: tuple[int, ...]
    accuracy: float
    main_accuracy: float
    unknown_recall: float
    difference: float  # accuracy minus the plain prediction's
    interval: tuple[float, float]  # its 95% speaker-bootstrap interval
    qualifies: bool


def shifted_probabilities(model: KwsModel, waves: np.ndarray, shifts_ms: tuple[int, ...]
                          ) -> np.ndarray:
    """``(clips, labels)``: the mean of the model's probabilities over the shifted copies."""
    out = np.zeros((len(waves), len(model.labels)))
    for ms in shifts_ms:
        moved = shifted(waves, round(model.sample_rate * ms / 1000))
        out += np.stack([model.predict_samples(w) for w in moved])
    return out / len(shifts_ms)


def compare(model: KwsModel, waves: np.ndarray, truths: list[str], speakers: list[str],
            main: np.ndarray, variants: dict[str, tuple[int, ...]]) -> list[Variant]:
    """Each variant against one plain prediction per clip (first row: the plain one);
    ``speakers``: the bootstrap's units, ``main``: the clips of the main folder."""
    truth = np.array([model.labels.index(t) for t in truths])
    unknown = truth == model.labels.index("_unknown_")
    units, unit_of = np.unique(speakers, return_inverse=True)
    counts = np.bincount(unit_of, minlength=len(units)).astype(float)
    rows, plain = [], None
    for name, shifts in {"plain": (0,), **variants}.items():
        right = shifted_probabilities(model, waves, shifts).argmax(axis=1) == truth
        plain = right if plain is None else plain
        gained = np.bincount(unit_of, weights=right.astype(float) - plain, minlength=len(units))
        interval = bootstrap_ratio(gained, counts)
        row = Variant(name, tuple(shifts), float(right.mean()), float(right[main].mean()),
                      float(right[unknown].mean()), float(gained.sum() / len(right)), interval,
                      False)
        if rows:
            row.qualifies = bool(interval[0] > 0 and row.main_accuracy >= rows[0].main_accuracy
                                 and row.unknown_recall >= rows[0].unknown_recall
                                 - MAX_UNKNOWN_LOSS)
        rows.append(row)
    return rows


def markdown(rows: list[Variant], model: str, n: int, units: int) -> str:
    table = markdown_table(
        ["variant", "shifts (ms)", "val int8 %", "main val %", "`_unknown_` %",
         "minus plain, points (95% speaker bootstrap)", "qualifies"],
        [[r.name, ", ".join(map(str, r.shifts_ms)), f"{100 * r.accuracy:.2f}",
          f"{100 * r.main_accuracy:.2f}", f"{100 * r.unknown_recall:.1f}",
          f"{100 * r.difference:+.2f} ({100 * r.interval[0]:+.2f} to {100 * r.interval[1]:+.2f})",
          "" if r.name == "plain" else "yes" if r.qualifies else "no"] for r in rows])
    return (f"# Test-time shifts on the validation clips\n\n`{model}` on {n:,} validation clips "
            f"({units} speakers and silence cuts as bootstrap units), each clip's probabilities "
            f"averaged over its shifted copies:\n\n{table}\n")


def main(argv: list[str] | None = None) -> int:
    from convert.convert import split_clips
    from train.data import load_dataset

    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, default=ROOT / "artifacts" / "kws_int8.tflite")
    parser.add_argument("--experiment", default="speech_ema_150_xv",
                        help="the experiment whose validation split to use")
    parser.add_argument("--variant", action="append", default=[], metavar="NAME=MS,MS,...",
                        help=f"shifts to average over (default: {VARIANTS})")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    try:
        variants = {name: tuple(int(v) for v in ms.split(",")) for name, ms in
                    (item.split("=", 1) for item in args.variant)} or VARIANTS
    except ValueError:
        print(f"error: --variant takes NAME=MS,MS,... (milliseconds), got {args.variant}",
              file=sys.stderr)
        return 2
    if args.experiment not in EXPERIMENTS:
        print(f"error: {args.experiment}: no such experiment", file=sys.stderr)
        return 2
    model = KwsModel(args.model)
    dataset = load_dataset(train_config(args.experiment, EXPERIMENTS[args.experiment], DATA).data)
    examples = dataset.split("val")
    clips = split_clips(dataset, model.manifest.frontend, "val")
    speakers = [e.speaker or rel for e, rel in zip(examples, clips.rels, strict=True)]
    main_clips = np.array([not r.startswith("extra:") for r in clips.rels])
    rows = compare(model, clips.waveforms, clips.truths, speakers, main_clips, variants)
    text = markdown(rows, args.model.name, len(clips), len(set(speakers)))
    write_results("test_time_shifts", {"model": str(args.model.resolve()),
                                       "experiment": args.experiment, "n_val": len(clips),
                                       "variants": [asdict(r) for r in rows]}, text, args.out)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
