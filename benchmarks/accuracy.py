"""Float32 vs int8 accuracy of a model pair on a data folder, per class, beside the anchor.

``python -m benchmarks.accuracy --data DIR [--float A --int8 B] [--held-out SPLIT.json] --json``
scores both TFLite models with the converter's comparison (:mod:`convert.compare`: the edge
runtime's front-end and interpreter, clip by clip) on ``DIR``'s test split
(``testing_list.txt``, else every clip). ``--held-out`` keeps only the clips listed under
``test_files`` in a split file such as ``artifacts/split_speakers.json`` (the shipped model's
held-out speakers). Default models: ``artifacts/kws_float32.tflite`` and ``kws_int8.tflite``.
The MLPerf Tiny reference model (:mod:`benchmarks.reference`, its own front-end) is scored on
the same clips unless ``--no-reference`` or absent. Writes ``accuracy.{json,md,png}`` into
``--out`` (benchmarks/results).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402

from benchmarks.results_io import RESULTS, markdown_table, publish  # noqa: E402
from convert.compare import (  # noqa: E402
    ClipSet,
    Comparison,
    compare_models,
    folder_test_set,
    report_of,
)
from convert.gate import DEFAULT_MAX_DROP  # noqa: E402
from edge_runtime.dataset import SILENCE, UNKNOWN  # noqa: E402
from edge_runtime.errors import KwsError  # noqa: E402
from edge_runtime.evaluate import EvalReport  # noqa: E402
from edge_runtime.model import KwsModel  # noqa: E402

SHIPPED = Path(__file__).resolve().parents[1] / "artifacts"


def held_out(test: ClipSet, split_file: Path) -> ClipSet:
    """Only the clips named in ``split_file``'s ``test_files`` list."""
    try:
        wanted = set(json.loads(split_file.read_text())["test_files"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise KwsError(f"{split_file}: not a split file with a test_files list ({exc})") from None
    keep = [i for i, rel in enumerate(test.rels) if rel in wanted]
    if not keep:
        raise KwsError(f"{split_file}: none of its test files is in the data folder")
    skipped = {**test.skipped, "not held out": len(test) - len(keep)}
    return ClipSet([test.rels[i] for i in keep], [test.truths[i] for i in keep],
                   test.waveforms[keep], skipped)


def compare(float_path: Path, int8_path: Path, data: Path, split_file: Path | None,
            max_drop: float) -> tuple[Comparison, ClipSet]:
    models = {"float32": KwsModel(float_path), "int8": KwsModel(int8_path)}
    ref = models["float32"]
    test = folder_test_set(data, ref.labels, ref.manifest.frontend)
    if split_file is not None:
        test = held_out(test, split_file)
    comparison = compare_models(models, test, max_drop)
    comparison.data = str(data)
    return comparison, test


def reference_report(test: ClipSet) -> tuple[EvalReport, int] | None:
    """The MLPerf Tiny reference on the same clips (16 kHz), or None when it is absent."""
    from benchmarks.reference import SAMPLE_RATE, ReferenceModel, reference_dir

    if reference_dir() is None:
        print("note: the MLPerf Tiny reference model is not on this machine: skipped",
              file=sys.stderr)
        return None
    model = ReferenceModel()
    if test.waveforms.shape[1] != model.clip_samples:
        raise KwsError(f"the reference takes 1-s clips at {SAMPLE_RATE} Hz")
    probs = model.predict_waves(test.waveforms)
    return report_of(test, model.labels, probs.argmax(axis=1)), model.size_bytes


def summary(report: EvalReport) -> dict:
    """Accuracy, ``_unknown_`` recall and the weakest keyword of a report."""
    per = report.per_class()
    keywords = {lb: v for lb, v in per.items() if lb not in (SILENCE, UNKNOWN) and v is not None}
    weakest = min(keywords, key=keywords.get) if keywords else None
    return {"accuracy": round(report.accuracy, 6), "n": report.n,
            "unknown_recall": per.get(UNKNOWN), "weakest_keyword": weakest,
            "weakest_keyword_accuracy": keywords.get(weakest),
            "per_class": per}


def standard_error(accuracy: float, n: int) -> float:
    """Binomial standard error of an accuracy, in points."""
    return 100.0 * float(np.sqrt(accuracy * (1 - accuracy) / max(1, n)))


def plot(c: Comparison, out: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = c.labels
    x = np.arange(len(labels))
    fig, ax = plt.subplots(figsize=(10, 4))
    for offset, name in ((-0.2, "float32"), (0.2, "int8")):
        per = c.reports[name].per_class()
        values = [100 * (per[lb] or 0.0) for lb in labels]
        ax.bar(x + offset, values, 0.4,
               label=f"{name} ({100 * c.reports[name].accuracy:.1f}% overall)")
    ax.set_xticks(x, labels, rotation=30, fontsize=8)
    ax.set_ylabel("accuracy (%)")
    ax.set_ylim(0, 100)
    ax.legend(loc="lower right")
    ax.grid(axis="y", alpha=0.3)
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", type=Path, required=True, help="Speech Commands folder")
    parser.add_argument("--float", dest="float32", type=Path,
                        default=SHIPPED / "kws_float32.tflite")
    parser.add_argument("--int8", type=Path, default=SHIPPED / "kws_int8.tflite")
    parser.add_argument("--held-out", type=Path, help="split file with a test_files list")
    parser.add_argument("--max-drop", type=float, default=DEFAULT_MAX_DROP,
                        help="gate: largest int8 drop in points")
    parser.add_argument("--no-reference", action="store_true",
                        help="do not score the MLPerf Tiny reference model beside it")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    try:
        for path in (args.float32, args.int8):
            if not path.is_file():
                raise KwsError(f"model not found: {path}")
        if not args.data.is_dir():
            raise KwsError(f"{args.data}: no such data folder")
        c, test = compare(args.float32, args.int8, args.data, args.held_out, args.max_drop)
        reference = None if args.no_reference else reference_report(test)
    except KwsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    per = {name: c.reports[name].per_class() for name in ("float32", "int8")}
    result = {
        **c.to_dict(),
        "held_out": None if args.held_out is None else str(args.held_out),
        "standard_error_points": {name: round(standard_error(r.accuracy, r.n), 3)
                                  for name, r in c.reports.items()},
        "per_class": per,
        "summary": {name: summary(r) for name, r in c.reports.items()},
        "reference": None if reference is None else {
            "name": "MLPerf Tiny reference DS-CNN (int8)", "bytes": reference[1],
            **summary(reference[0])},
    }

    def pct(v: float | None) -> str:
        return "n/a" if v is None else f"{100 * v:.1f}"

    scored = [(name, r, f"{c.drop_points(name):+.2f}", c.sizes[name])
              for name, r in c.reports.items()]
    if reference is not None:
        scored.append(("MLPerf Tiny reference (int8)", reference[0], "", reference[1]))
    rows = []
    for name, r, drop, size in scored:
        s = summary(r)
        rows.append([name, f"{100 * r.accuracy:.2f}", f"{standard_error(r.accuracy, r.n):.2f}",
                     pct(s["unknown_recall"]),
                     f"{s['weakest_keyword']} {pct(s['weakest_keyword_accuracy'])}", drop,
                     f"{size:,}"])
    table = markdown_table(["model", "accuracy %", "s.e. (pt)", "_unknown_ recall %",
                            "weakest keyword %", "drop vs float32 (pt)", "bytes"], rows)
    ref_per = reference[0].per_class() if reference is not None else {}
    class_rows = [[lb, *(pct(per[q][lb]) for q in ("float32", "int8")),
                   *([pct(ref_per.get(lb))] if reference is not None else [])]
                  for lb in c.labels]
    class_table = markdown_table(["class", "float32 %", "int8 %",
                                  *(["reference int8 %"] if reference is not None else [])],
                                 class_rows)
    scope = "held-out clips of " + str(args.held_out) if args.held_out else "test split"
    args.out.mkdir(parents=True, exist_ok=True)
    plot(c, args.out / "accuracy.png", f"float32 vs int8 on {c.n} clips ({scope})")
    gate = "passed" if c.gate.passed else "FAILED"
    text = (f"# Float32 vs int8 accuracy\n\n{c.n} clips of {args.data} ({scope}); "
            f"agreement {100 * c.agreement_float_int8:.2f}%; gate (drop <= {args.max_drop:g} "
            f"pt): {gate}.\n\n{table}\n\n## Per class\n\n{class_table}\n\n"
            "![per-class accuracy](accuracy.png)")
    return publish("accuracy", result, text, table, args.json, args.out)


if __name__ == "__main__":
    raise SystemExit(main())
