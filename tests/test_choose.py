"""Choosing the model to ship on validation speakers only."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from benchmarks.experiments.choose import (
    Candidate,
    choose,
    difference_interval,
    load_candidate,
    main,
    report,
    validation_gate,
)
from edge_runtime.errors import KwsError
from tests.fixtures_data import make_fake_dataset


def cand(name: str, val: float, fa: float, *, main_val: float = 0.90,
         gate: bool = True) -> Candidate:
    return Candidate(name, val, main_val, gate, fa, 0.09, 0.8)


def test_a_candidate_replaces_the_shipped_file_only_when_no_worse_on_both():
    shipped = cand("shipped", 0.93, 73.5)
    assert choose(shipped, [cand("more_accurate_fires_more", 0.94, 90.0),
                            cand("fires_less_less_accurate", 0.92, 50.0)]) is None
    assert choose(shipped, [cand("equal", 0.93, 73.5)]).name == "equal"
    # among those that qualify, the fewest false accepts, then the higher accuracy
    pick = choose(shipped, [cand("a", 0.95, 60.0), cand("b", 0.94, 55.0),
                            cand("c", 0.96, 55.0)])
    assert pick.name == "c"
    # a failed gate, or main validation under the floor, never ships
    assert choose(shipped, [cand("gate", 0.99, 1.0, gate=False)]) is None
    assert choose(shipped, [cand("floor", 0.99, 1.0, main_val=0.85)]) is None
    assert choose(shipped, [cand("floor", 0.99, 1.0, main_val=0.85)], min_main_val=0.8).name
    # the incumbent named among the candidates does not replace itself
    assert choose(shipped, [shipped]) is None


def test_the_report_gives_the_count_behind_the_rate():
    shipped = Candidate("shipped", 0.93, 0.91, True, 73.5, 0.098, 0.79, hours=2 / 3)
    none = Candidate("none", 0.95, 0.91, True, math.inf, None, None, hours=2 / 3)
    assert shipped.fa_events() == 49 and none.fa_events() is None
    text = report(shipped, [none], 0.8899)
    assert "| 49 ± 7.0 in 0.67 h | — |" in text and "| inf | — | — |" in text


def test_the_report_counts_the_recordings_and_names_the_words_that_fired():
    words = {"dog": {"stop": 52, "go": 8}, "nine": {"no": 5}}
    shipped = Candidate("shipped", 0.93, 0.91, True, 57.0, 0.09, 0.76, hours=2 / 3,
                        by_speaker={"events": {}, "seconds": {},
                                    "words": {"backward": {"left": 17}}}, recordings=8)
    new = Candidate("new", 0.935, 0.91, True, 345.0, 0.096, 0.53, hours=2 / 3,
                    by_speaker={"events": {}, "seconds": {}, "words": words}, recordings=36)
    text = report(shipped, [new], 0.8899)
    table, words_table = text.split("\n\n")[0], text.split("\n\n")[-1]
    rows = {line.split(" | ")[0].lstrip("| "): line for line in table.splitlines()}
    assert "| 38 ± 6.2 in 0.67 h | 8 |" in rows["shipped (shipped)"]
    assert "| 230 ± 15.2 in 0.67 h | 36 |" in rows["new"]
    assert "| shipped | backward 17 (left 17) |" in words_table
    assert "| new | dog 60 (stop 52, go 8); nine 5 (no 5) |" in words_table


def tiny_model_and_speakers(tmp_path) -> tuple[Path, Path, Path]:
    """A real tiny int8 model (yes/no), a small data set and a split file of its speakers
    (two test, two validation): what the stream benchmarks need."""
    from tests.model_factory import build_models

    tflite = build_models(tmp_path / "m", labels=["_silence_", "_unknown_", "yes", "no"])["int8"]
    data = make_fake_dataset(tmp_path / "sc", ["yes", "no", "bed", "cat"], speakers=4,
                             per_speaker=2, mini_layout=True, silence_clips=2)
    speakers = sorted({p.name.split("_")[0] for p in (data / "yes").glob("*.wav")})
    split = tmp_path / "split.json"
    split.write_text(json.dumps({"test": speakers[:2], "val": speakers[2:]}))
    return tflite, data, split


def measure_streams(tmp_path, runs: dict[str, str]) -> Path:
    """``benchmarks.rejection`` of one real tiny int8 model on 0.5-min streams of a small
    data set's speakers, once per ``{run name: speaker list}``; the streams folder."""
    from benchmarks import rejection

    tflite, data, split = tiny_model_and_speakers(tmp_path)
    for name, speaker_list in runs.items():
        assert rejection.main(["--model", str(tflite), "--data", str(data), "--split",
                               str(split), "--speakers", speaker_list, "--minutes", "0.5",
                               "--no-reference", "--out", str(tmp_path / "streams" / name)]) == 0
    return tmp_path / "streams"


def test_load_reads_real_validation_streams_and_refuses_test_ones(tmp_path, capsys):
    streams = measure_streams(tmp_path, {"val_model": "val", "test_model": "test"})
    results = tmp_path / "results"
    results.mkdir()
    for name in ("val_model", "test_model"):
        (results / f"{name}.json").write_text(json.dumps(figures(0.5, 0.5)))
    c = load_candidate("val_model", results, streams)
    op = json.loads((streams / "val_model" / "rejection.json").read_text())["models"][0][
        "operating_point"]
    if op is None:  # no threshold keeps false rejects <= 10%: it can never qualify
        assert math.isinf(c.fa_per_hour) and c.threshold is None and c.fa_events() is None
    else:
        assert (c.fa_per_hour, c.threshold) == (op["non_keyword_fa_per_hour"], op["threshold"])
        # the count behind the rate: the two non-keyword streams' own events (0.5 min each)
        per_stream = op["false_accepts_per_hour"]
        counted = sum(per_stream[s] * 0.5 / 60 for s in ("other_words", "running_speech"))
        assert c.hours == 1 / 60 and c.fa_events() == round(counted)
        assert c.recordings == op["clips_fired"]
    capsys.readouterr()
    args = ["--results", str(results), "--streams", str(streams)]
    assert main([*args, "--incumbent", "val_model", "val_model"]) == 0
    assert capsys.readouterr().out.rstrip().endswith("keep val_model")
    assert main([*args, "--incumbent", "val_model", "test_model"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: test_model:") and "'test' speakers" in err
    assert len(err.splitlines()) == 1
    assert main([*args, "--incumbent", "val_model", "missing"]) == 2
    assert "missing: " in capsys.readouterr().err
    # a file that failed its validation gate is reported without streams (it cannot qualify);
    # one that passed it still needs them, whatever ship's test-clip gate said
    for name, float32, test_gate in (("gate_failed", 0.995, True), ("no_streams", 0.99, False)):
        (results / f"{name}.json").write_text(json.dumps(figures(float32, 0.99,
                                                                 gate_passed=test_gate)))
    assert main([*args, "--incumbent", "val_model", "gate_failed"]) == 0
    out = capsys.readouterr().out
    row = next(line for line in out.splitlines() if line.startswith("| gate_failed"))
    assert "| no | not measured | — |" in row and row.rstrip().endswith("| no |")
    assert out.rstrip().endswith("keep val_model")
    assert main([*args, "--incumbent", "val_model", "no_streams"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: no_streams:") and "rejection.json not found" in err


def figures(float32: float, int8: float, agreement: float = 0.995, **more) -> dict:
    """A ship results dict's validation figures (whole and main validation split)."""
    return {"val_all_float32_accuracy": float32, "val_all_int8_accuracy": int8,
            "val_all_agreement_float32_int8": agreement, "val_main_int8_accuracy": int8,
            **more}


def test_the_gate_that_chooses_is_measured_on_validation_clips_not_test_ones(tmp_path):
    # drop <= 0.3 points (0.3 itself passes: 1,099-clip ratios do not round it up) and
    # agreement >= 99%; ship's test-clip gate_passed is not read
    assert validation_gate(figures(0.950, 0.947, gate_passed=False))
    assert validation_gate(figures(0.940, 0.950))  # int8 above float32
    assert not validation_gate(figures(0.951, 0.947, gate_passed=True))
    assert not validation_gate(figures(0.950, 0.950, agreement=0.989))
    assert validation_gate(figures(0.951, 0.947), max_drop=0.5)
    (tmp_path / "old.json").write_text(json.dumps({"val_all_int8_accuracy": 0.9,
                                                   "val_main_int8_accuracy": 0.9,
                                                   "gate_passed": True}))
    with pytest.raises(KwsError, match="old: .* has no val_all_float32_accuracy, "
                       "val_all_agreement_float32_int8"):
        load_candidate("old", tmp_path, tmp_path)


def by_speaker(events: list[int]) -> dict:
    """Ten speakers with 6 min of streams each (1 h), and their false accepts."""
    return {"events": {f"s{i}": n for i, n in enumerate(events)},
            "seconds": {f"s{i}": 360.0 for i in range(len(events))}}


def test_the_speaker_bootstrap_tells_a_drop_of_one_speaker_from_a_drop_of_all():
    shipped = Candidate("shipped", 0.93, 0.91, True, 20.0, 0.09, 0.7, hours=1.0,
                        by_speaker=by_speaker([2] * 10))
    everyone = Candidate("everyone", 0.93, 0.91, True, 10.0, 0.09, 0.7, hours=1.0,
                         by_speaker=by_speaker([1] * 10))
    assert difference_interval(everyone, shipped) == pytest.approx((-10.0, -10.0))
    # the same 10 FA/h fewer, all from one speaker: drawn in none of a third of the resamples
    one = Candidate("one", 0.93, 0.91, True, 9.0, 0.09, 0.7, hours=1.0,
                    by_speaker=by_speaker([0] + [1] * 9))
    shipped_one = Candidate("shipped", 0.93, 0.91, True, 19.0, 0.09, 0.7, hours=1.0,
                            by_speaker=by_speaker([10] + [1] * 9))
    low, high = difference_interval(one, shipped_one)
    assert low < -10.0 and high == pytest.approx(0.0)
    assert "| -10.0 (-10.0 to -10.0) |" in report(shipped, [everyone], 0.8)
    # streams of other speakers, or none recorded: no interval
    other = Candidate("other", 0.93, 0.91, True, 10.0, 0.09, 0.7, hours=1.0,
                      by_speaker=by_speaker([1] * 9))
    assert difference_interval(other, shipped) is None
    assert difference_interval(cand("old", 0.93, 10.0), shipped) is None


def test_each_false_accept_is_put_on_the_speaker_of_the_nearest_word(tmp_path):
    """At a threshold low enough to fire on everything, every non-keyword-stream event goes
    to a speaker whose clips are in the streams, and the speakers' shares of the streams sum
    to their length."""
    from benchmarks import rejection
    from edge_runtime.detector import DetectorConfig
    from edge_runtime.model import KwsModel
    from edge_runtime.stream_gen import generate
    from edge_runtime.stream_score import gate_events
    from tests.model_factory import build_models

    model = KwsModel(build_models(tmp_path / "m", labels=["_silence_", "_unknown_", "yes",
                                                          "no"])["int8"])
    data = make_fake_dataset(tmp_path / "sc", ["yes", "no", "bed", "cat"], speakers=4,
                             per_speaker=2, mini_layout=True, silence_clips=2)
    speakers = frozenset(p.name.split("_")[0] for p in (data / "yes").glob("*.wav"))
    streams = {name: generate(data, spec) for name, spec in rejection.stream_specs(
        0.5, speakers, ("yes", "no")).items()}
    config = DetectorConfig()
    posteriors = rejection.stream_posteriors(model, streams, config, reference=False)
    who = rejection.false_accepts_by_speaker(model, posteriors, streams, config, 0.05)
    fired = sum(len(gate_events(t, p, model.labels, 0.05, config.refractory_ms / 1000))
                for name, (t, p) in posteriors.items() if name != "keywords")
    assert fired > 0 and sum(who["events"].values()) == fired
    assert set(who["events"]) <= set(who["seconds"]) <= speakers
    assert sum(who["seconds"].values()) == pytest.approx(60.0, abs=0.01)
    # the streams repeat a few recordings: how many, and how many of them fired
    distinct = {p.source for name, s in streams.items() if name != "keywords"
                for p in s.placements}
    clips = who["clips"]
    assert clips["distinct"] == len(distinct) < sum(
        len(s.placements) for name, s in streams.items() if name != "keywords")
    assert 0 < clips["fired"] <= clips["distinct"]
    assert min(fired, 5) <= clips["top5_events"] <= fired
    low, high = rejection.speaker_interval(who)
    assert low <= fired / (60.0 / 3600) <= high
    # and by the word spoken: the streams' other words, each with the keywords it fired
    words = who["words"]
    assert set(words) <= {"bed", "cat"} and sum(sum(k.values()) for k in words.values()) == fired
    assert all(set(k) <= {"yes", "no"} for k in words.values())
    totals = [sum(k.values()) for k in words.values()]
    assert totals == sorted(totals, reverse=True)


def test_the_words_cell_lists_the_words_behind_most_false_accepts():
    from benchmarks.rejection import words_cell

    who = {"words": {"nine": {"no": 9, "right": 3}, "wow": {"left": 2}, "dog": {"down": 1}}}
    assert words_cell(who) == "nine 12 (no 9, right 3); wow 2 (left 2); dog 1 (down 1)"
    assert words_cell(who, top=1) == "nine 12 (no 9, right 3)"
    assert words_cell({"words": {}}) == "none"
    assert words_cell({"events": {}}) == "—" and words_cell(None) == "—"


def test_a_rate_whose_events_all_come_from_one_speaker_has_a_wide_interval():
    from benchmarks.rejection import bootstrap_rate, sources_cells

    seconds = np.full(10, 360.0)  # 1 h in all
    assert bootstrap_rate(np.full(10, 1), seconds) == pytest.approx((10.0, 10.0))
    # the same 10 events from one speaker: none in ~35% of the resamples, 3+ in ~7%
    low, high = bootstrap_rate(np.array([10] + [0] * 9), seconds)
    assert low == 0.0 and high >= 30.0
    cells = sources_cells({**by_speaker([10] + [0] * 9), "clips": {
        "distinct": 40, "fired": 2, "top5_events": 10}})
    assert cells == [f"{low:.1f}-{high:.1f}", "10: 2 / 40 (10)"]
    assert sources_cells(None) == ["—", "—"]
    assert sources_cells(by_speaker([10] + [0] * 9)) == [f"{low:.1f}-{high:.1f}", "—"]


def test_each_event_goes_to_the_nearest_word_clip():
    from pathlib import Path

    from benchmarks.rejection import nearest_placements
    from edge_runtime.detector import Event
    from edge_runtime.stream_gen import GeneratedStream, Placement

    rate = 100  # samples per second
    clips = [Placement(100, 200, "_unknown_", Path("a")), Placement(500, 600, "_unknown_",
             Path("b")), Placement(300, 400, "_unknown_", Path("c"))]  # out of time order
    stream = GeneratedStream(np.zeros(800, np.float32), rate, clips)
    # before the first clip, inside one, nearer the one before, nearer the next, after the last
    times = [0.2, 1.5, 2.3, 2.6, 3.4, 4.6, 7.5]
    events = [Event(t, "yes", 0.9) for t in times]
    assert [p.source.name for p in nearest_placements(stream, events)] == [
        "a", "a", "a", "c", "c", "b", "b"]
    assert nearest_placements(stream, []) == []
