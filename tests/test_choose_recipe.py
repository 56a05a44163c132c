"""Choosing between recipes by their median training seed on validation speakers."""

from __future__ import annotations

import copy
import json
import math

import pytest

from benchmarks.experiments.choose import Candidate
from benchmarks.experiments.choose_recipe import Recipe, file_to_ship, main, recipe_wins
from tests.test_choose import figures, measure_streams


def seed(name: str, val: float, fa: float, *, gate: bool = True) -> Candidate:
    return Candidate(name, val, 0.90, gate, fa, 0.09, 0.8)


def test_a_recipe_is_judged_by_its_median_seed_not_its_luckiest():
    shipped = Recipe("shipped", (seed("s0", 0.949, 4.5), seed("s1", 0.9536, 31.5),
                                 seed("s2", 0.949, 100.5)))
    assert (shipped.median_accuracy(), shipped.median_fa()) == (0.949, 31.5)
    # better median on both: wins, though its best seed fires more than the shipped one's
    steady = Recipe("steady", (seed("a", 0.952, 19.5), seed("b", 0.955, 25.0),
                               seed("c", 0.951, 28.5), seed("d", 0.96, 120.0)))
    assert steady.median_fa() == 26.75 and recipe_wins(steady, shipped)
    # an even count's median is the mean of the middle two
    assert not recipe_wins(Recipe("r", (seed("a", 0.96, 19.5), seed("b", 0.96, 112.5))),
                           shipped)
    # no worse on both, not one: fewer false accepts but less accurate loses
    assert not recipe_wins(Recipe("r", (seed("a", 0.948, 1.0),)), shipped)
    # a seed whose file failed its gate counts as infinitely many false accepts
    gated = Recipe("gated", (seed("a", 0.96, 1.0), seed("b", 0.96, 1.0, gate=False),
                             seed("c", 0.96, 2.0, gate=False)))
    assert math.isinf(gated.median_fa()) and not recipe_wins(gated, shipped)
    # ... and so does one under the main-validation floor
    floor = Recipe("floor", (seed("a", 0.96, 1.0),), min_main_val=0.95)
    assert math.isinf(floor.median_fa())


def test_the_file_shipped_is_the_winning_recipes_fewest_false_accepts():
    files = [seed("s0", 0.95, 19.5), seed("s0_ub05", 0.951, 19.5),
             seed("s1", 0.96, 2.0, gate=False), seed("s1_ub05", 0.94, 40.0)]
    assert file_to_ship(files, 0.8899).name == "s0_ub05"  # ties: the higher accuracy
    assert file_to_ship(files[2:3], 0.8899) is None


@pytest.fixture(scope="module")
def streams_of_one_real_model(tmp_path_factory) -> dict:
    """A rejection.json measured on validation streams of a real (tiny) int8 model."""
    streams = measure_streams(tmp_path_factory.mktemp("recipe"), {"real": "val"})
    return json.loads((streams / "real" / "rejection.json").read_text())


def write_file(results, streams, rejection: dict, name: str, val: float, fa: float,
               **more) -> None:
    """``name``'s results JSON and its validation streams at ``fa`` FA/h (``more``: other
    fields of the streams' JSON)."""
    (results / f"{name}.json").write_text(json.dumps(figures(val + 0.001, val)))
    rej = {**copy.deepcopy(rejection), **more}
    rej["models"][0]["operating_point"] = {
        **(rej["models"][0]["operating_point"] or {"false_reject_rate": 0.05, "threshold": 0.7,
                                                     "clips_fired": 0}),
        "non_keyword_fa_per_hour": fa}
    (streams / name).mkdir(parents=True)
    (streams / name / "rejection.json").write_text(json.dumps(rej))


def test_the_command_reads_each_seeds_files_and_names_the_file_to_ship(
        tmp_path, capsys, streams_of_one_real_model):
    results, streams = tmp_path / "results", tmp_path / "streams"
    results.mkdir()
    figures_by_file = {"old_ub05": (0.949, 4.5), "old_s1_ub05": (0.9536, 31.5),
                       "old_s2_ub05": (0.949, 100.5),
                       "new": (0.955, 19.5), "new_ub05": (0.952, 19.5), "new_ub10": (0.947, 12.0),
                       "new_s1": (0.96, 140.0), "new_s1_ub05": (0.959, 112.5),
                       "new_s1_ub10": (0.957, 87.0)}
    for name, (val, fa) in figures_by_file.items():
        write_file(results, streams, streams_of_one_real_model, name, val, fa)
    args = ["--results", str(results), "--streams", str(streams), "--incumbent", "old",
            "--incumbent-seeds", "3", "--candidate", "new"]
    # two seeds: medians 95.55% and 66.0 FA/h against 94.90% and 31.5 -> the recipe stays
    assert main([*args, "--candidate-seeds", "2"]) == 0
    out = capsys.readouterr().out
    assert "| old | **median of 3 seeds** | **94.90** |  | **31.5** |" in out
    assert "| new | **median of 2 seeds** | **95.55** |  | **66.0** |" in out
    assert out.rstrip().endswith("keep recipe old")
    # a third seed that fires little: median 19.5 FA/h -> the recipe wins, and the file
    # shipped is the fewest false accepts among all its conversions
    for name, val, fa in (("new_s2", 0.953, 25.0), ("new_s2_ub05", 0.951, 15.0),
                          ("new_s2_ub10", 0.946, 9.0)):
        write_file(results, streams, streams_of_one_real_model, name, val, fa)
    assert main([*args, "--candidate-seeds", "3"]) == 0
    out = capsys.readouterr().out.rstrip()
    assert "| new | **median of 3 seeds** | **95.20** |  | **19.5** |" in out
    threshold = streams_of_one_real_model["models"][0]["operating_point"]
    threshold = 0.7 if threshold is None else threshold["threshold"]
    assert out.endswith(f"recipe new replaces old; ship new_s2_ub10 at threshold "
                        f"{threshold:.2f} (9.0 FA/h, 94.60% val int8)")
    # a seed missing: one line on stderr, status 2
    assert main([*args, "--candidate-seeds", "4"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: new_s3_ub05: ") and len(err.splitlines()) == 1
    # a seed whose false rejects came from other speakers' keywords cannot be compared
    write_file(results, streams, streams_of_one_real_model, "new_s3_ub05", 0.96, 200.0,
               keyword_speakers="main")
    assert main([*args, "--candidate-seeds", "4"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: the files' streams differ in whose keywords made the false "
                          "rejects (all and main)") and len(err.splitlines()) == 1
    with pytest.raises(SystemExit) as exit_:
        main([*args, "--candidate-seeds", "0"])
    assert exit_.value.code == 2
