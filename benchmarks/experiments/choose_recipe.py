"""Choose between two recipes by their median training seed on validation speakers.

One file's false accepts on the validation streams (0.67 h) vary more between training seeds of
one recipe than between recipes (the shipped recipe's three seeds: 4.5, 31.5 and 100.5 FA/h at
prior correction 0.5), so ``choose``, file against file, keeps whichever lucky seed was shipped.
Here a recipe is judged by the median over its seeds of (a) whole-validation int8 accuracy and
(b) FA/h at the operating point on the validation streams (``choose``'s two criteria), each seed
represented by its file of one conversion (``--variant``, default ``_ub05``: the shipped file's);
a seed whose file fails the validation gate or the main-validation floor counts as infinite
FA/h. The candidate recipe replaces the incumbent recipe when its medians are no worse on both.
Only then is a file named: among all the candidate recipe's files (every seed, every conversion
in ``--conversions``) that pass the gate and the floor, ``choose``'s ranking (the fewest FA/h,
ties: the higher accuracy), at that operating point's threshold.

``python -m benchmarks.experiments.choose_recipe --incumbent R0 --incumbent-seeds 3
--candidate R1 --candidate-seeds 4 --streams DIR`` reads ``choose``'s files for the seeds'
run names (``R``, ``R_s1``, ...: ``ship.seeds``).
"""

from __future__ import annotations

import argparse
import math
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from benchmarks.experiments.choose import (
    DEFAULT_MIN_MAIN_VAL,
    Candidate,
    events_text,
    first,
    load_candidate,
    one_kind_of_streams,
    usable,
)
from benchmarks.results_io import markdown_table
from edge_runtime.errors import KwsError

DEFAULT_VARIANT = "_ub05"  # the conversion that stands for a seed (the shipped file's)
DEFAULT_CONVERSIONS = ("", "_ub05", "_ub10")  # as trained, prior correction 0.5 and 1.0


@dataclass(frozen=True)
class Recipe:
    """A recipe's seeds, each by its file of the representing conversion."""

    name: str
    seeds: tuple[Candidate, ...]
    min_main_val: float = DEFAULT_MIN_MAIN_VAL

    def counted_fa(self, c: Candidate) -> float:
        """A seed's FA/h as the median counts it: infinite for an unusable file."""
        return c.fa_per_hour if usable(c, self.min_main_val) else math.inf

    def median_accuracy(self) -> float:
        return float(np.median([c.val_int8 for c in self.seeds]))

    def median_fa(self) -> float:
        return float(np.median([self.counted_fa(c) for c in self.seeds]))


def recipe_wins(candidate: Recipe, incumbent: Recipe) -> bool:
    """The candidate's median seed no worse than the incumbent's on both criteria."""
    return (candidate.median_accuracy() >= incumbent.median_accuracy()
            and candidate.median_fa() <= incumbent.median_fa())


def file_to_ship(files: list[Candidate], min_main_val: float) -> Candidate | None:
    """The winning recipe's file to ship: ``choose``'s ranking over its usable files."""
    return first([c for c in files if usable(c, min_main_val)])


def report(recipes: tuple[Recipe, Recipe]) -> str:
    rows = []
    for recipe in recipes:
        for c in recipe.seeds:
            rows.append([recipe.name, c.name, f"{100 * c.val_int8:.2f}",
                         "yes" if usable(c, recipe.min_main_val) else "no",
                         f"{recipe.counted_fa(c):.1f}", events_text(c),
                         "—" if c.threshold is None else f"{c.threshold:.2f}"])
        rows.append([recipe.name, f"**median of {len(recipe.seeds)} seeds**",
                     f"**{100 * recipe.median_accuracy():.2f}**", "",
                     f"**{recipe.median_fa():.1f}**", "", ""])
    return markdown_table(["recipe", "seed file", "val int8 %", "usable", "FA/h at op",
                           "FA events at op", "threshold"], rows)


def seed_names(name: str, count: int, variant: str) -> list[str]:
    from benchmarks.experiments.ship import seed_name

    return [seed_name(name, s) + variant for s in range(count)]


def main(argv: list[str] | None = None) -> int:
    from benchmarks.experiments.ship import WORK

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--incumbent", required=True, help="the shipped recipe's run name")
    parser.add_argument("--incumbent-seeds", type=int, required=True)
    parser.add_argument("--candidate", required=True, help="the other recipe's run name")
    parser.add_argument("--candidate-seeds", type=int, required=True)
    parser.add_argument("--streams", type=Path, required=True,
                        help="folder of NAME/rejection.json from --speakers val")
    parser.add_argument("--results", type=Path, default=WORK / "results")
    parser.add_argument("--variant", default=DEFAULT_VARIANT,
                        help="the conversion whose file stands for each seed")
    parser.add_argument("--conversions", nargs="+", default=list(DEFAULT_CONVERSIONS),
                        help="the winning recipe's conversions the shipped file is drawn from "
                        "('' for as trained)")
    parser.add_argument("--min-main-val", type=float, default=DEFAULT_MIN_MAIN_VAL)
    args = parser.parse_args(argv)
    if min(args.incumbent_seeds, args.candidate_seeds) < 1:
        parser.error("each recipe needs at least one seed")

    def load(names: list[str]) -> list[Candidate]:
        return [load_candidate(n, args.results, args.streams) for n in names]

    try:
        incumbent, candidate = (
            Recipe(name, tuple(load(seed_names(name, count, args.variant))), args.min_main_val)
            for name, count in ((args.incumbent, args.incumbent_seeds),
                                (args.candidate, args.candidate_seeds)))
        wins = recipe_wins(candidate, incumbent)
        # the representing variant's files are loaded already: reuse them
        loaded = {c.name: c for c in candidate.seeds}
        files = ([loaded.get(n) or load_candidate(n, args.results, args.streams)
                  for v in args.conversions
                  for n in seed_names(args.candidate, args.candidate_seeds, v)]
                 if wins else [])
        one_kind_of_streams([*incumbent.seeds, *candidate.seeds, *files])
    except KwsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(report((incumbent, candidate)))
    if not wins:
        print(f"\nkeep recipe {incumbent.name}")
        return 0
    pick = file_to_ship(files, args.min_main_val)
    print(f"\nrecipe {candidate.name} replaces {incumbent.name}; "
          + ("none of its files is usable" if pick is None else
             f"ship {pick.name} at threshold {pick.threshold:.2f} "
             f"({pick.fa_per_hour:.1f} FA/h, {100 * pick.val_int8:.2f}% val int8)"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
