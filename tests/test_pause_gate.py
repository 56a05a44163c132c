"""The pause gate experiment: frame levels, occupancy, the rule, and a real run end to end."""

from __future__ import annotations

import json

import numpy as np

from benchmarks.experiments.pause_gate import (
    MAX_FRR_RISE,
    choose,
    frame_levels,
    main,
    occupancy,
)
from edge_runtime.frontend import EDGE_FRONTEND, EDGE_LOG_MEL_FRONTEND, Frontend
from tests.conftest import speech_like
from tests.test_choose import tiny_model_and_speakers


def test_the_level_from_mfcc_is_the_mean_of_the_log_mel_energies():
    audio = speech_like(1.0)
    from_mfcc = frame_levels(Frontend(EDGE_FRONTEND)(audio), EDGE_FRONTEND)
    log_mel = Frontend(EDGE_LOG_MEL_FRONTEND)(audio)
    np.testing.assert_allclose(from_mfcc, frame_levels(log_mel, EDGE_LOG_MEL_FRONTEND),
                               atol=1e-3)
    np.testing.assert_allclose(from_mfcc, log_mel.mean(axis=1), atol=1e-3)


def test_occupancy_is_the_share_of_loud_frames_over_the_span():
    frame_s = 0.02
    ends = np.arange(1, 1001) * frame_s  # 20 s of frames
    levels = np.full(1000, -60.0)
    levels[500:525] = -20.0  # one 0.5-s word at 10.0-10.5 s in quiet
    levels[800:] = -20.0  # continuous speech from 16 s on
    occ = occupancy(levels, ends, np.array([10.6, 19.9, 5.0]), span_s=2.0, margin_db=10.0)
    assert abs(occ[0] - 0.25) < 0.02  # 0.5 s of 2 s
    assert occ[1] == 1.0  # all of the last 2 s is loud
    assert occ[2] == 0.0  # quiet
    # the floor follows the background: a louder bed does not count as speech
    assert occupancy(levels + 30.0, ends, np.array([10.6]), 2.0, 10.0)[0] == occ[0]


def row(gate, frr: float, fa: float, op_fa: float | None) -> dict:
    return {"gate": gate, "at_threshold": {"false_reject_rate": frr,
                                           "non_keyword_fa_per_hour": fa},
            "operating_point": None if op_fa is None else {"non_keyword_fa_per_hour": op_fa}}


def test_the_rule_takes_the_fewest_false_accepts_within_one_point_of_false_rejects():
    def gate(o: float, s: float = 2.0, m: float = 10.0) -> dict:
        return {"span_s": s, "margin_db": m, "max_occupancy": o}

    base = row(None, 0.16, 9.0, 90.0)
    strong = row(gate(0.6), 0.16 + 2 * MAX_FRR_RISE, 0.0, 50.0)  # misses too many keywords
    weak = row(gate(0.9), 0.165, 3.0, 80.0)
    weaker_tie = row(gate(0.8), 0.165, 3.0, 80.0)
    assert choose([base, strong, weak, weaker_tie]) is weak  # ties: the larger share
    assert choose([base, strong]) is None
    # qualifying at the threshold is not enough if it fires more at the operating point
    assert choose([base, row(gate(0.9), 0.16, 3.0, 95.0)]) is None
    assert choose([base, row(gate(0.9), 0.16, 3.0, None)]) is None


def test_a_real_run_on_validation_streams_of_a_tiny_model(tmp_path, capsys):
    tflite, data, split = tiny_model_and_speakers(tmp_path)
    out = tmp_path / "out"
    assert main(["--model", str(tflite), "--data", str(data), "--split", str(split),
                 "--minutes", "0.5", "--out", str(out)]) == 0
    result = json.loads((out / "pause_gate.json").read_text())
    assert result["gates"][0]["gate"] is None and len(result["gates"]) == 17
    for r in result["gates"]:
        at = r["at_threshold"]
        assert 0.0 <= at["false_reject_rate"] <= 1.0 and at["non_keyword_fa_per_hour"] >= 0
        assert r["operating_point"] is None or r["operating_point"]["false_reject_rate"] <= 0.1
    assert result["chosen"] is None or result["chosen"] in result["gates"][1:]
    assert "Pause gate" in (out / "pause_gate.md").read_text()
    # bad input: one line on stderr, exit 2
    capsys.readouterr()
    assert main(["--model", str(tflite), "--data", str(data), "--split",
                 str(tmp_path / "missing.json"), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1
