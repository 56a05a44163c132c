"""The model card generator: a missing run is one error line, not a traceback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def card(work: Path, name: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "KWS_SHIP_WORK": str(work)}
    return subprocess.run([sys.executable, "-m", "benchmarks.experiments.model_card", name,
                           "--artifacts", str(ROOT / "artifacts")], capture_output=True,
                          text=True, cwd=ROOT, env=env, timeout=300)


def test_a_run_without_results_or_trained_model_is_one_error_line(tmp_path):
    before = (ROOT / "artifacts" / "MODEL_CARD.md").read_bytes()
    done = card(tmp_path, "speech_ema_150_xv_ub10")
    assert done.returncode == 2
    assert done.stderr.startswith("error: ") and done.stderr.count("\n") == 1
    assert "run `ship run speech_ema_150_xv_ub10` first" in done.stderr
    # a results row copied from the committed table (no model_dir) and no trained model here
    rows = json.loads((ROOT / "benchmarks/results/shipped_model.json").read_text())["runs"]
    row = next(r for r in rows if r["name"] == "speech_ema_150_xv_ub10")
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "speech_ema_150_xv_ub10.json").write_text(json.dumps(row))
    done = card(tmp_path, "speech_ema_150_xv_ub10")
    assert done.returncode == 2 and done.stderr.count("\n") == 1
    assert "the trained model of speech_ema_150_xv_ub10 is not here" in done.stderr
    assert (ROOT / "artifacts" / "MODEL_CARD.md").read_bytes() == before  # not overwritten


def test_the_card_says_how_many_recordings_its_stream_rates_rest_on(tmp_path, monkeypatch):
    from benchmarks.experiments import model_card

    point = {"threshold": 0.55, "false_reject_rate": 0.099,
             "false_accepts_per_hour": {"other_words": 12.0, "running_speech": 8.0}}
    seconds = {f"s{i}": 360.0 for i in range(10)}
    (tmp_path / "rejection.json").write_text(json.dumps({
        "minutes_per_stream": 20, "detector": {"threshold": 0.7, "smooth_ms": 800},
        "models": [{"name": "ours", "operating_point": point, "at_default_threshold": None,
                    "operating_point_speakers": {
                        "events": {"s0": 10}, "seconds": seconds,
                        "clips": {"distinct": 40, "fired": 2, "top5_events": 10}}},
                   {"name": "older file", "operating_point": point,
                    "at_default_threshold": None}]}))
    monkeypatch.setattr(model_card, "RESULTS", tmp_path)
    text = "\n".join(model_card.anchor_lines())
    # all 10 events from one of ten speakers: the interval runs from 0 to several times 10/h
    row = next(line for line in text.splitlines() if line.startswith("| ours |"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    low, high = map(float, cells[5].split("-"))
    assert low == 0.0 and high >= 30.0
    assert cells[6] == "10: 2 / 40 (10)"
    assert "| older file | 0.55 | 9.9 | 12.0 | 8.0 | — | — |" in text
