"""Choose the model to ship on validation speakers only.

A candidate FILE replaces the shipped one only when it is no worse on both validation criteria:
(a) int8 accuracy on the whole validation split (``ship``'s ``val_all_int8_accuracy``) and
(b) false accepts per hour on validation-speaker streams at the operating point that keeps false
rejects <= 10% (``benchmarks.rejection --speakers val``'s ``operating_point``). It must also pass
the int8 gate measured on the validation clips (float32 -> int8 drop <= ``ship.MAX_DROP`` points
and agreement >= 99%: ``ship``'s own ``gate_passed`` is measured on the test clips, which no
decision may read) and keep the main folder's validation accuracy at or above a floor. Among those
that qualify, the fewest false accepts wins (ties: the higher accuracy); its threshold is that
operating point's. The report gives the false accepts behind (b) as a count of events
with its Poisson standard error and the distinct recordings that fired, each candidate's
difference in (b) from the incumbent with a 95% interval from a paired speaker bootstrap (the
same streams; speakers drawn with replacement, each bringing their false accepts and their share
of the streams): a few speakers make most false accepts, so this interval is the wider, honest
one; and the words behind each file's false accepts.

``python -m benchmarks.experiments.choose --incumbent SHIPPED --streams DIR CANDIDATE ...``
reads ``<work>/results/NAME.json`` and ``DIR/NAME/rejection.json`` for every name (a file that
failed its validation gate needs no streams: it cannot qualify). Streams built from test
speakers are refused: the test split is never chosen on; so are files whose false rejects come
from different keyword streams (all validation speakers' or, ``rejection --main-keywords``, the
main folder's only).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from benchmarks.rejection import bootstrap_rate, words_cell
from benchmarks.results_io import markdown_table
from edge_runtime.errors import KwsError

DEFAULT_MIN_MAIN_VAL = 0.8899  # the main-validation floor the earlier rounds used
MIN_AGREEMENT = 0.99  # float32/int8 agreement asked of the shipped file (issue 11)
GATE_KEYS = ("val_all_float32_accuracy", "val_all_int8_accuracy",
             "val_all_agreement_float32_int8")


def validation_gate(r: dict, max_drop: float | None = None) -> bool:
    """The int8 gate on the whole validation split of a ``ship`` results dict: drop <=
    ``max_drop`` points (default ``ship.MAX_DROP``) and float32/int8 agreement >= 99%."""
    if max_drop is None:
        from benchmarks.experiments.ship import MAX_DROP as max_drop
    drop = 100 * (r["val_all_float32_accuracy"] - r["val_all_int8_accuracy"])
    return drop <= max_drop + 1e-9 and r["val_all_agreement_float32_int8"] >= MIN_AGREEMENT


@dataclass(frozen=True)
class Candidate:
    """One converted model's validation figures."""

    name: str
    val_int8: float  # int8 accuracy on the whole validation split
    val_main_int8: float  # ... on the main folder's validation speakers
    gate_passed: bool  # the int8 gate on the validation clips (validation_gate)
    fa_per_hour: float  # non-keyword false accepts per hour at the operating point (inf: none)
    false_reject_rate: float | None
    threshold: float | None
    hours: float | None = None  # non-keyword audio behind fa_per_hour (both streams)
    streams_measured: bool = True  # False: gate failed, validation streams not run
    # the operating point's false accepts and stream seconds by speaker (benchmarks.rejection)
    by_speaker: dict | None = field(default=None, compare=False)
    # distinct non-keyword recordings that fired at the operating point (the streams repeat
    # each recording: a few of them can make most of the events; None: not measured)
    recordings: int | None = None
    # whose keywords made the false rejects: "all" validation speakers, or the "main" folder's
    # only (benchmarks.rejection --main-keywords); files are compared on one kind of streams
    keyword_speakers: str = "all"

    def fa_events(self) -> int | None:
        """False accepts counted at the operating point (None: unknown or no point)."""
        if self.hours is None or math.isinf(self.fa_per_hour):
            return None
        return round(self.fa_per_hour * self.hours)


def load_candidate(name: str, results: Path, streams: Path) -> Candidate:
    """``name``'s figures from its results JSON and its validation-stream rejection JSON."""
    from benchmarks.rejection import non_keyword_hours

    paths = (results / f"{name}.json", streams / name / "rejection.json")
    if not paths[0].is_file():
        raise KwsError(f"{name}: {paths[0]} not found")
    r = json.loads(paths[0].read_text())
    missing = [k for k in (*GATE_KEYS, "val_main_int8_accuracy") if k not in r]
    if missing:
        raise KwsError(f"{name}: {paths[0]} has no {', '.join(missing)} (validation through "
                       "the runtime)")
    gate = validation_gate(r)
    if not paths[1].is_file():
        if gate:
            raise KwsError(f"{name}: {paths[1]} not found")
        # a file that failed its gate cannot qualify: its streams need not be measured
        return Candidate(name, r["val_all_int8_accuracy"], r["val_main_int8_accuracy"], False,
                         math.inf, None, None, streams_measured=False)
    rej = json.loads(paths[1].read_text())
    speakers = rej.get("speaker_list")
    if speakers != "val":
        raise KwsError(f"{name}: {paths[1]} was measured on {speakers!r} speakers, not "
                       "validation ones (benchmarks.rejection --speakers val)")
    op = rej["models"][0].get("operating_point")
    return Candidate(name, r["val_all_int8_accuracy"], r["val_main_int8_accuracy"], gate,
                     op["non_keyword_fa_per_hour"] if op else float("inf"),
                     op["false_reject_rate"] if op else None, op["threshold"] if op else None,
                     non_keyword_hours(rej),
                     by_speaker=rej["models"][0].get("operating_point_speakers"),
                     recordings=op.get("clips_fired") if op else None,
                     keyword_speakers=rej.get("keyword_speakers", "all"))


def one_kind_of_streams(candidates: list[Candidate]) -> None:
    """Refuse files whose operating points come from different keyword streams."""
    kinds = {c.keyword_speakers for c in candidates if c.streams_measured}
    if len(kinds) > 1:
        raise KwsError("the files' streams differ in whose keywords made the false rejects "
                       f"({' and '.join(sorted(kinds))}): measure all with or all without "
                       "benchmarks.rejection --main-keywords")


def usable(c: Candidate, min_main_val: float) -> bool:
    """Gate passed and main validation at or above the floor: the file could be shipped."""
    return c.gate_passed and c.val_main_int8 >= min_main_val


def qualifies(c: Candidate, incumbent: Candidate, min_main_val: float) -> bool:
    """Usable and no worse than the incumbent on either criterion."""
    return (usable(c, min_main_val) and c.val_int8 >= incumbent.val_int8
            and c.fa_per_hour <= incumbent.fa_per_hour)


def first(candidates: list[Candidate]) -> Candidate | None:
    """The fewest false accepts (ties: the higher accuracy); None for no candidates."""
    return min(candidates, key=lambda c: (c.fa_per_hour, -c.val_int8), default=None)


def choose(incumbent: Candidate, candidates: list[Candidate],
           min_main_val: float = DEFAULT_MIN_MAIN_VAL) -> Candidate | None:
    """The candidate that replaces ``incumbent``, or None: it stays."""
    return first([c for c in candidates if c.name != incumbent.name
                  and qualifies(c, incumbent, min_main_val)])


def difference_interval(c: Candidate, incumbent: Candidate, draws: int = 2000,
                        seed: int = 0) -> tuple[float, float] | None:
    """95% interval of ``c``'s FA/h minus the incumbent's, from a paired speaker bootstrap
    (None without per-speaker figures for both, or for other streams)."""
    a, b = c.by_speaker, incumbent.by_speaker
    if not a or not b or a["seconds"] != b["seconds"]:
        return None
    speakers = sorted(a["seconds"])
    seconds = np.array([a["seconds"][s] for s in speakers])
    diff = np.array([a["events"].get(s, 0) - b["events"].get(s, 0) for s in speakers])
    return bootstrap_rate(diff, seconds, draws, seed)


def difference_text(c: Candidate, incumbent: Candidate) -> str:
    """``-12.0 (-30.5 to +4.5)``: FA/h minus the incumbent's, with its bootstrap interval."""
    interval = difference_interval(c, incumbent)
    if interval is None or c is incumbent:
        return "—"
    return (f"{c.fa_per_hour - incumbent.fa_per_hour:+.1f} ({interval[0]:+.1f} to "
            f"{interval[1]:+.1f})")


def events_text(c: Candidate) -> str:
    """``43 ± 6.6 in 0.67 h``: the count behind FA/h and its Poisson standard error."""
    n = c.fa_events()
    return "—" if n is None else f"{n} ± {math.sqrt(n):.1f} in {c.hours:.2f} h"


def report(incumbent: Candidate, candidates: list[Candidate], min_main_val: float) -> str:
    rows = [[c.name + (" (shipped)" if c is incumbent else ""), f"{100 * c.val_int8:.2f}",
             f"{100 * c.val_main_int8:.2f}", "yes" if c.gate_passed else "no",
             f"{c.fa_per_hour:.1f}" if c.streams_measured else "not measured", events_text(c),
             "—" if c.recordings is None else str(c.recordings),
             "—" if c.false_reject_rate is None else f"{100 * c.false_reject_rate:.1f}",
             "—" if c.threshold is None else f"{c.threshold:.2f}",
             difference_text(c, incumbent),
             "" if c is incumbent else
             ("yes" if qualifies(c, incumbent, min_main_val) else "no")]
            for c in (incumbent, *candidates)]
    words = [[c.name, words_cell(c.by_speaker)] for c in (incumbent, *candidates)
             if c.streams_measured]
    return (markdown_table(["model", "val int8 %", "main val int8 %", "val gate",
                            "FA/h at op", "FA events at op", "recordings fired at op",
                            "FRR % at op", "threshold",
                            "FA/h - shipped's (95% speaker bootstrap)", "qualifies"], rows)
            + "\n\nThe words behind the most false accepts at each operating point:\n\n"
            + markdown_table(["model", "words (events: keywords they fired)"], words))


def main(argv: list[str] | None = None) -> int:
    from benchmarks.experiments.ship import WORK

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("candidates", nargs="+")
    parser.add_argument("--incumbent", required=True, help="the shipped model's run name")
    parser.add_argument("--streams", type=Path, required=True,
                        help="folder of NAME/rejection.json from --speakers val")
    parser.add_argument("--results", type=Path, default=WORK / "results")
    parser.add_argument("--min-main-val", type=float, default=DEFAULT_MIN_MAIN_VAL)
    args = parser.parse_args(argv)
    try:
        incumbent = load_candidate(args.incumbent, args.results, args.streams)
        candidates = [load_candidate(n, args.results, args.streams) for n in args.candidates]
        one_kind_of_streams([incumbent, *candidates])
    except KwsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(report(incumbent, candidates, args.min_main_val))
    pick = choose(incumbent, candidates, args.min_main_val)
    print(f"\nkeep {incumbent.name}" if pick is None else
          f"\nship {pick.name} at threshold {pick.threshold:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
