"""Rejection on streams of each speaker fold's own validation speakers, pooled over the folds.

A ``ship`` fold run ``RECIPE_f<k>`` validated on fold k of the mini set's training and
validation speakers; ``benchmarks.rejection --split DIR/fold_<k>.json --speakers val
--even-words`` builds streams of exactly those speakers and sweeps the detector's threshold.
Pooled over the folds, a recipe gets ONE threshold (as a shipped file has): the one with the
fewest false accepts on all folds' non-keyword streams together among those whose false rejects,
over all folds' keywords together, stay at or below 10%. Streams of ~40 speakers a fold are
dominated by a few speakers' words, so rejection is only comparable over several folds.

``crossval RECIPE ... --streams DIR`` runs the benchmark for every fold file not yet in
``DIR/RECIPE_f<k>/rejection.json`` (with ``--reference``: the MLPerf Tiny reference on the same
streams, ``DIR/reference_f<k>/``) and prints the pooled table; files kept in ``DIR`` must have
met streams of the length asked for (one ``DIR`` per stream length).
"""

from __future__ import annotations

import contextlib
import json
import math
import sys
from dataclasses import dataclass
from pathlib import Path

from edge_runtime.errors import KwsError

REFERENCE = "reference"  # DIR/reference_f<k>: the anchor's sweep on fold k's streams
# what must be equal for two sweeps to have met the same streams
SAME_STREAMS = ("data", "extra", "speaker_list", "even_words", "minutes_per_stream", "streams")
SAME_DETECTOR = ("hop_ms", "smooth_ms", "refractory_ms")


@dataclass(frozen=True)
class FoldSweep:
    """One model's threshold sweep on one fold's streams, as counts."""

    fold: int
    keywords: int  # keywords in the keywords stream (false rejects are out of these)
    hours: float  # non-keyword speech (both non-keyword streams)
    misses: dict[float, int]  # threshold -> keywords not detected
    false_accepts: dict[float, int]  # threshold -> events on the non-keyword streams
    streams: tuple  # what identifies the streams (SAME_STREAMS, SAME_DETECTOR)
    minutes: float = 20.0  # each stream's length
    # threshold -> distinct non-keyword recordings that fired, and how many the streams repeat
    # (None: a file written before they were counted)
    clips_fired: dict[float, int] | None = None
    recordings: int | None = None


@dataclass(frozen=True)
class PooledStreams:
    """A recipe's false rejects and false accepts over its folds at one threshold."""

    recipe: str
    folds: tuple[int, ...]
    keywords: int
    hours: float
    threshold: float | None  # None: no threshold keeps false rejects <= 10%
    misses: int | None = None
    false_accepts: int | None = None
    clips_fired: int | None = None  # distinct recordings behind the false accepts
    recordings: int | None = None  # distinct recordings in the non-keyword streams

    @property
    def false_reject_rate(self) -> float | None:
        return None if self.misses is None else self.misses / self.keywords

    @property
    def per_hour(self) -> float:
        return math.inf if self.false_accepts is None else self.false_accepts / self.hours


def run_dir(out: Path, recipe: str, fold: int) -> Path:
    return out / f"{recipe}_f{fold}"


def read_sweep(path: Path, fold: int, model: str | None = None) -> FoldSweep:
    """Fold ``fold``'s sweep in ``path`` (a ``benchmarks.rejection`` JSON): of its first model,
    or of the one named ``model``."""
    from benchmarks.rejection import non_keyword_hours

    if not path.is_file():
        raise KwsError(f"{path}: not found")
    r = json.loads(path.read_text())
    if r.get("speaker_list") != "val" or Path(str(r.get("split"))).name != f"fold_{fold}.json":
        raise KwsError(f"{path}: not streams of fold {fold}'s validation speakers "
                       f"(split {r.get('split')!r}, speakers {r.get('speaker_list')!r})")
    entry = (r["models"][0] if model is None
             else next((m for m in r["models"] if m["name"] == model), None))
    if entry is None:
        raise KwsError(f"{path}: no {model!r} in it")
    keywords, hours = r["streams"]["keywords"]["keywords"], non_keyword_hours(r)
    # the JSON keeps rates (false rejects to 4 decimals, false accepts per hour to 2): the
    # counts behind them are exact for streams of up to ~100 h and ~10,000 keywords
    counted = all(p.get("clips_fired") is not None for p in entry["sweep"])
    return FoldSweep(
        fold, keywords, hours,
        {p["threshold"]: round(p["false_reject_rate"] * keywords) for p in entry["sweep"]},
        {p["threshold"]: round(p["non_keyword_fa_per_hour"] * hours) for p in entry["sweep"]},
        (*(json.dumps(r[k], sort_keys=True) for k in SAME_STREAMS),
         *(r["detector"][k] for k in SAME_DETECTOR)), float(r["minutes_per_stream"]),
        {p["threshold"]: p["clips_fired"] for p in entry["sweep"]} if counted else None,
        r.get("non_keyword_recordings"))


def pool_sweeps(recipe: str, sweeps: list[FoldSweep], max_frr: float) -> PooledStreams:
    """One threshold for all of ``sweeps``: ``rejection.operating_point`` on the sweep pooled
    over the folds (false rejects over all keywords, false accepts over all hours)."""
    from benchmarks.rejection import OperatingPoint, operating_point

    keywords, hours = sum(s.keywords for s in sweeps), sum(s.hours for s in sweeps)
    folds = tuple(s.fold for s in sweeps)
    common = set.intersection(*(set(s.misses) for s in sweeps))
    counts = {t: (sum(s.misses[t] for s in sweeps), sum(s.false_accepts[t] for s in sweeps))
              for t in sorted(common)}
    best = operating_point([OperatingPoint(t, misses / keywords, {}, fa / hours)
                            for t, (misses, fa) in counts.items()], max_frr)
    if best is None:
        return PooledStreams(recipe, folds, keywords, hours, None)
    misses, fa = counts[best.threshold]
    counted = all(s.clips_fired is not None and s.recordings is not None for s in sweeps)
    # the folds' speakers are disjoint, so are their recordings: counts add up
    return PooledStreams(recipe, folds, keywords, hours, best.threshold, misses, fa,
                         sum(s.clips_fired[best.threshold] for s in sweeps) if counted else None,
                         sum(s.recordings for s in sweeps) if counted else None)


def measure(model: Path, data: Path, split: Path, out: Path, reference: bool,
            minutes: float) -> None:
    """``benchmarks.rejection`` on ``split``'s validation speakers, ``minutes`` a stream (its
    printout to stderr): ``model`` alone, or with ``reference`` the anchor alone (``model``
    still sets the detector and keywords)."""
    from benchmarks import rejection

    print(f"streams: {out.name} ...", file=sys.stderr, flush=True)
    with contextlib.redirect_stdout(sys.stderr):
        status = rejection.main(["--model", str(model), "--data", str(data), "--split",
                                 str(split), "--speakers", "val", "--even-words", "--minutes",
                                 str(minutes), "--out", str(out),
                                 "--reference-only" if reference else "--no-reference"])
    if status != 0:
        raise KwsError(f"{out.name}: the rejection benchmark failed (status {status})")


def fold_model(results: Path, run: str) -> Path:
    """The int8 file of ``ship`` run ``run`` (its results JSON names the folder)."""
    path = results / f"{run}.json"
    if not path.is_file():
        raise KwsError(f"{path}: no results for {run} (ship run it first)")
    folder = json.loads(path.read_text()).get("folder")
    if folder is None:  # runs scored before the folder was recorded, or on another machine
        raise KwsError(f"{path}: names no model folder (score its trained model here: "
                       f"`ship score {run}`)")
    model = Path(folder) / "kws_int8.tflite"
    if not model.is_file():
        raise KwsError(f"{model}: {run}'s int8 file is gone (`ship score {run}` makes it again)")
    return model


def pooled_streams(recipes: list[str], folds: list[int], results: Path, data: Path,
                   out: Path, cv_folds: int, reference: bool, minutes: float = 20.0
                   ) -> list[PooledStreams]:
    """Each recipe's (and with ``reference`` the anchor's) pooled rejection over ``folds``,
    measuring what ``out`` lacks first (streams of ``minutes`` each)."""
    from benchmarks.experiments.speaker_folds import write_splits
    from benchmarks.reference import REFERENCE_NAME, reference_dir
    from benchmarks.rejection import MAX_FRR

    todo = [(r, k) for r in recipes for k in folds
            if not (run_dir(out, r, k) / "rejection.json").is_file()]
    if reference:
        todo += [(REFERENCE, k) for k in folds
                 if not (run_dir(out, REFERENCE, k) / "rejection.json").is_file()]
        if any(r == REFERENCE for r, _ in todo) and reference_dir() is None:
            raise KwsError("the MLPerf Tiny reference model is not on this machine")
    if todo:
        if not data.is_dir():
            raise KwsError(f"{data}: no data folder to build the streams from")
        missing = [k for k in folds if not (out / f"fold_{k}.json").is_file()]
        write_splits(data, missing, cv_folds, out)
        models = {(r, k): fold_model(results, f"{recipes[0] if r == REFERENCE else r}_f{k}")
                  for r, k in todo}  # every file found before minutes of streams
        for (r, k), model in models.items():
            measure(model, data, out / f"fold_{k}.json", run_dir(out, r, k), r == REFERENCE,
                    minutes)
    sweeps = {r: [read_sweep(run_dir(out, r, k) / "rejection.json", k) for k in folds]
              for r in recipes}
    if reference:
        sweeps[REFERENCE] = [read_sweep(run_dir(out, REFERENCE, k) / "rejection.json", k,
                                        REFERENCE_NAME) for k in folds]
    for i, k in enumerate(folds):
        seen = {r: s[i].streams for r, s in sweeps.items()}
        if len(set(seen.values())) > 1:
            raise KwsError(f"fold {k}: the rejection files in {out} were not measured on the "
                           f"same streams and detector ({', '.join(seen)})")
    for r, s in sweeps.items():  # files kept from an earlier call with another length
        other = next((x for x in s if x.minutes != minutes), None)
        if other is not None:
            raise KwsError(f"{run_dir(out, r, other.fold)}: measured on {other.minutes:g}-min "
                           f"streams, not {minutes:g} (use a new --streams folder)")
    return [pool_sweeps(r, s, MAX_FRR) for r, s in sweeps.items()]


def stream_rows(pooled: list[PooledStreams]) -> list[dict]:
    from benchmarks.reference import ANCHOR_ROW

    return [{"recipe": ANCHOR_ROW if p.recipe == REFERENCE else p.recipe,
             "folds": " ".join(map(str, p.folds)), "keywords": p.keywords,
             "hours": round(p.hours, 2),
             "threshold": "none reaches 10% FRR" if p.threshold is None else f"{p.threshold:.2f}",
             "false rejects %": ("—" if p.misses is None
                                 else f"{100 * p.false_reject_rate:.1f}"),
             "false accepts (events)": ("—" if p.false_accepts is None
                                        else f"{p.false_accepts} ± {p.false_accepts ** 0.5:.0f}"),
             "per hour": "—" if p.false_accepts is None else f"{p.per_hour:.1f}",
             "recordings that fired": ("—" if p.clips_fired is None
                                       else f"{p.clips_fired} of {p.recordings}")}
            for p in pooled]
