"""Pause gate: does letting a keyword fire only where the speech is not continuous pay?

``python -m benchmarks.experiments.pause_gate [--model FILE] [--extra DIR] [--minutes 20]``
builds the validation streams of :mod:`benchmarks.rejection` (``--speakers val --even-words``;
with ``--extra``, that folder's validation speakers too and ``--main-keywords``), records the
detector's smoothed posteriors and each front-end frame's level once, and applies each gate of
a fixed grid offline. Gate ``(S, M, O)``: an event may fire at a hop only if, over the last ``S``
seconds up to the end of the window that fired, at most a share ``O`` of the frames are more than
``M`` dB above the floor (the 10th percentile of the last 10 s of frame levels). Commands are
spoken with a pause around them; running speech is continuous: the idea is that this cuts the
false accepts on running speech (and read speech) at little cost in false rejects.

The rule (session 45, written before the first measurement): the gate of the grid with the
fewest false accepts per hour (both non-keyword streams) at the model's threshold whose
false-reject rate there is at most 1.0 point above no gate's (ties: the weaker gate) qualifies,
and ships only if it does not raise the false accepts at the <= 10% false-reject operating point.
Validation only: the test speakers are never read. Writes ``pause_gate.{json,md}`` into
``--out`` (default ``benchmarks/results``).
"""

from __future__ import annotations

import argparse
import itertools
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from benchmarks.rejection import (
    DATA,
    SPLIT,
    THRESHOLDS,
    make_streams,
    operating_point,
    point_at,
    sweep,
)
from benchmarks.results_io import RESULTS, markdown_table, publish
from edge_runtime.detector import DetectorConfig, model_threshold
from edge_runtime.errors import KwsError
from edge_runtime.frontend import Frontend, FrontendConfig
from edge_runtime.manifest import BACKGROUND_LABELS
from edge_runtime.model import KwsModel
from edge_runtime.paths import default_model
from edge_runtime.stream_score import record_posteriors

SPANS_S = (1.5, 2.0)
MARGINS_DB = (6.0, 10.0)
OCCUPANCIES = (0.6, 0.7, 0.8, 0.9)
FLOOR_S = 10.0
FLOOR_PERCENTILE = 10
MAX_FRR_RISE = 0.01  # the rule: false rejects at the model's threshold at most 1 point higher


@dataclass(frozen=True)
class Gate:
    span_s: float
    margin_db: float
    max_occupancy: float


def frame_levels(features: np.ndarray, frontend: FrontendConfig) -> np.ndarray:
    """Each frame's mean log-mel energy (dB): the mean of the log-mel bins, or, from MFCC, the
    orthonormal DCT's first coefficient over sqrt(n_mels)."""
    if frontend.features == "log_mel":
        return features.mean(axis=1)
    return features[:, 0] / np.sqrt(frontend.n_mels)


def occupancy(levels: np.ndarray, frame_ends_s: np.ndarray, ends_s: np.ndarray,
              span_s: float, margin_db: float) -> np.ndarray:
    """For each time of ``ends_s``: the share of the frames ending within the last ``span_s``
    seconds whose level is more than ``margin_db`` above the floor (the 10th percentile of the
    frames ending within the last 10 s)."""
    last = np.searchsorted(frame_ends_s, ends_s, side="right")
    span_first = np.searchsorted(frame_ends_s, ends_s - span_s, side="right")
    floor_first = np.searchsorted(frame_ends_s, ends_s - FLOOR_S, side="right")
    out = np.zeros(len(ends_s))
    for i, (a, f, b) in enumerate(zip(span_first, floor_first, last, strict=True)):
        if b > a:
            floor = np.percentile(levels[f:b], FLOOR_PERCENTILE)
            out[i] = np.mean(levels[a:b] > floor + margin_db)
    return out


@dataclass
class Recorded:
    """One stream, recorded once: hop times, smoothed posteriors and frame levels."""

    times: np.ndarray
    smoothed: np.ndarray
    levels: np.ndarray
    frame_ends_s: np.ndarray


def record(model: KwsModel, stream, config: DetectorConfig) -> Recorded:
    times, smoothed = record_posteriors(model, stream.samples, config)
    fe = model.manifest.frontend
    levels = frame_levels(Frontend(fe)(stream.samples), fe)
    ends = (np.arange(len(levels)) * fe.hop_length + fe.n_fft) / fe.sample_rate
    return Recorded(times, smoothed, levels, ends)


def evaluate(model: KwsModel, streams: dict, recorded: dict[str, Recorded],
             config: DetectorConfig) -> list[dict]:
    """No gate and every gate of the grid: each at the detector's threshold and at its
    operating point (``benchmarks.rejection``'s sweep over the gated posteriors)."""
    clip_s = model.manifest.frontend.clip_ms / 1000

    def row(gate: Gate | None, opened: dict[str, np.ndarray]) -> dict:
        gated = {name: (rec.times, rec.smoothed * opened[name][:, None])
                 for name, rec in recorded.items()}
        points = sweep(model, gated, streams, config)
        op = operating_point(points)
        return {"gate": asdict(gate) if gate else None,
                "at_threshold": asdict(point_at(points, config.threshold)),
                "operating_point": asdict(op) if op else None}

    rows = [row(None, {name: np.ones(len(rec.times)) for name, rec in recorded.items()})]
    for span, margin in itertools.product(SPANS_S, MARGINS_DB):
        # a hop's time is its window's centre: the span ends where the window does
        busy = {name: occupancy(rec.levels, rec.frame_ends_s, rec.times + clip_s / 2, span,
                                margin) for name, rec in recorded.items()}
        rows += [row(Gate(span, margin, most),
                     {name: (occ <= most).astype(np.float32) for name, occ in busy.items()})
                 for most in OCCUPANCIES]
    return rows


def choose(rows: list[dict]) -> dict | None:
    """The rule: the qualifying gate (see the module's docstring), or None."""
    base = rows[0]
    limit = base["at_threshold"]["false_reject_rate"] + MAX_FRR_RISE + 1e-9
    fair = [r for r in rows[1:] if r["at_threshold"]["false_reject_rate"] <= limit]
    if not fair:
        return None
    best = min(fair, key=lambda r: (r["at_threshold"]["non_keyword_fa_per_hour"],
                                    -r["gate"]["max_occupancy"], r["gate"]["span_s"],
                                    -r["gate"]["margin_db"]))

    def op_fa(r: dict) -> float:
        return r["operating_point"]["non_keyword_fa_per_hour"] if r["operating_point"] \
            else float("inf")

    return best if op_fa(best) <= op_fa(base) else None


def markdown(data: dict) -> str:
    def cells(r: dict) -> list[str]:
        g, at, op = r["gate"], r["at_threshold"], r["operating_point"]
        return [f"{g['span_s']:g} s, {g['margin_db']:g} dB, {g['max_occupancy']:g}" if g
                else "no gate", f"{100 * at['false_reject_rate']:.1f}",
                f"{at['non_keyword_fa_per_hour']:.1f}",
                str(round(at["non_keyword_fa_per_hour"] * data["non_keyword_hours"])),
                f"{op['threshold']:.2f}: {100 * op['false_reject_rate']:.1f}% / "
                f"{op['non_keyword_fa_per_hour']:.1f}" if op else "none reaches 10% FRR"]

    chosen = data["chosen"]
    verdict = ("no gate qualifies: every gate of the grid raises the false rejects at the "
               "threshold by more than 1 point, or fires more at the operating point"
               if chosen is None else f"the gate {chosen['gate']} qualifies")
    return (f"# Pause gate on validation streams\n\n{data['streams']}. Model "
            f"`{data['model']}`, threshold {data['threshold']:g}; gate (span S, margin M, "
            f"largest share O): see `benchmarks/experiments/pause_gate.py`.\n\n"
            + markdown_table(["gate (S, M, O)", f"FRR % at {data['threshold']:g}",
                              f"FA/h at {data['threshold']:g}", "events",
                              "operating point: threshold: FRR / FA/h"],
                             [cells(r) for r in data["gates"]])
            + f"\n\nResult (the rule of session 45): {verdict}.\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, help="TFLite model (default: the shipped int8)")
    parser.add_argument("--data", type=Path, default=DATA, help="Speech Commands folder")
    parser.add_argument("--split", type=Path, default=SPLIT, help="split file (its val list)")
    parser.add_argument("--extra", type=Path, action="append", default=[], metavar="DIR",
                        help="a training-only folder whose validation speakers join the streams")
    parser.add_argument("--extra-val-pct", type=float, default=10.0)
    parser.add_argument("--minutes", type=float, default=20.0, help="length of each stream")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    try:
        if not 0 < args.minutes <= 600:
            raise KwsError(f"--minutes must be within (0, 600], got {args.minutes:g}")
        model = KwsModel(args.model or default_model())
        threshold = model_threshold(model)
        if not any(abs(t - threshold) < 1e-9 for t in THRESHOLDS):
            raise KwsError(f"the model's threshold {threshold:g} is not on the sweep's grid "
                           f"({THRESHOLDS[0]:g}-{THRESHOLDS[-1]:g} by 0.01)")
        config = DetectorConfig(threshold=threshold)
        streams_args = argparse.Namespace(
            data=args.data, split=args.split, speakers="val", extra=args.extra,
            extra_val_pct=args.extra_val_pct, minutes=args.minutes, even_words=True,
            main_keywords=bool(args.extra))
        keywords = tuple(x for x in model.labels if x not in BACKGROUND_LABELS)
        _, streams = make_streams(streams_args, keywords)
    except (KwsError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    recorded = {name: record(model, s, config) for name, s in streams.items()}
    rows = evaluate(model, streams, recorded, config)
    data = {"model": model.path.name, "threshold": threshold,
            "non_keyword_hours": round(2 * args.minutes / 60, 4),
            "streams": f"Three {args.minutes:g}-min validation streams (`benchmarks.rejection "
                       f"--speakers val --even-words"
                       + (" --extra ... --main-keywords`)" if args.extra else "`)"),
            "gates": rows, "chosen": choose(rows)}
    text = markdown(data)
    return publish("pause_gate", data, text, text, args.json, args.out)


if __name__ == "__main__":
    sys.exit(main())
