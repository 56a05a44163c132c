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
