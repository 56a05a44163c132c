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


def test_architectures_without_their_run_file_take_the_untrained_graphs_time(tmp_path,
                                                                             monkeypatch):
    """A kept int8 file is timed now; a gone one shows its architecture's time from
    ``benchmarks.architectures`` marked *, and one measured nowhere n/a."""
    from benchmarks.experiments import model_card
    from tests.model_factory import build_models

    results, work = tmp_path / "results", tmp_path / "work"
    results.mkdir()
    (work / "results").mkdir(parents=True)
    (results / "architectures.json").write_text(json.dumps({
        "machine": {"date": "2026-12-05T06:00:00+00:00"},
        "rows": [{"arch": "seed_cnn", "trained": False, "int8": {"end_to_end": 4.567}},
                 {"arch": "ds_cnn_w", "trained": True, "int8": {"end_to_end": 9.0}}]}))
    build_models(tmp_path / "kept", name="kws")  # a run folder that kept kws_int8.tflite
    row = {"val_accuracy": 0.9, "float32_accuracy": 0.8, "int8_accuracy": 0.8,
           "int8_bytes": 1000, "float32_bytes": 2000}
    for name, arch, folder in (("a", "seed_cnn", None), ("b", "ds_cnn_w", None),
                               ("c", "bc_resnet_1", str(tmp_path / "kept"))):
        (work / "results" / f"{name}.json").write_text(json.dumps(
            {**row, "name": name, "arch": arch, "folder": folder}))
    monkeypatch.setattr(model_card, "RESULTS", results)
    monkeypatch.setattr(model_card, "WORK", work)
    monkeypatch.setattr(model_card, "earlier_runs", dict)
    text = "\n".join(model_card.comparison_lines("b"))
    cells = {line.split("|")[2].strip(): line.split("|")[-2].strip()
             for line in text.splitlines() if line.startswith("| `")}
    assert cells["a"] == "4.57*"
    assert cells["b"] == "n/a"  # only a trained row for ds_cnn_w: not the untrained graph's
    assert float(cells["c"]) > 0  # the kept file, timed now
    assert "(2026-12-05;" in text


def test_the_architecture_table_leaves_out_fold_runs_ensembles_and_their_conversions(
        tmp_path, monkeypatch):
    """From the committed table: one row per architecture, each a run of one model validated
    on the fixed split (a fold run validates on other clips; an ensemble, also after a prior
    correction, is not its member's architecture alone)."""
    from benchmarks.experiments import model_card

    (tmp_path / "results").mkdir()
    monkeypatch.setattr(model_card, "WORK", tmp_path)
    text = "\n".join(model_card.comparison_lines("speech_ema_150_xv_ub10"))
    lines = [line for line in text.splitlines() if line.startswith("| `")]
    runs = {line.split("|")[1].strip(): line.split("|")[2].strip() for line in lines}
    assert runs["`ds_cnn_w` (shipped)"] == "speech_ema_150_xv_ub10"
    assert runs["`seed_cnn`"] == "seed_ema_24"
    assert runs["`bc_resnet_h12_4k_bnhs`"] == "bc12hb_speech_40_xv"  # not ens_ema_bc12hb_*
    assert not [r for r in runs.values() if r.startswith(("ens_", "gpu_")) or "_f" in r[-3:]]


def test_the_card_says_whether_its_run_made_the_shipped_file(tmp_path):
    from benchmarks.experiments import model_card
    from edge_runtime.manifest import sha256_of
    from tests.model_factory import build_models

    paths = build_models(tmp_path, name="kws")
    row = {"name": "run", "folder": str(tmp_path)}
    same = model_card.reproduction_line(row, {"sha256": sha256_of(paths["int8"].read_bytes())})
    assert same and same[0].endswith("made the shipped int8 file byte for byte (same sha256).")
    other = model_card.reproduction_line(row, {"sha256": "0" * 64})
    assert "an int8 file other than the shipped one" in other[0]
    assert model_card.reproduction_line({"name": "run", "folder": None}, {}) == []


def test_the_training_line_names_the_weight_decay_of_runs_that_had_it():
    """From the committed table: the shipped recipe's run with decay 0.3 says so (AdamW), the
    one without it does not."""
    from benchmarks.experiments import model_card
    from benchmarks.experiments.ship import EXPERIMENTS

    rows = {r["name"]: r for r in json.loads(
        (Path(__file__).resolve().parents[1] / "benchmarks" / "results"
         / "shipped_model.json").read_text())["runs"]}
    lines = {name: " ".join(model_card.training_lines(name, rows[name], EXPERIMENTS[name]))
             for name in ("speech_wd30_150_xv_ub05", "speech_ema_150_xv_ub10")}
    assert "decoupled weight decay 0.3 of the kernels (AdamW" in lines["speech_wd30_150_xv_ub05"]
    assert "weight decay" not in lines["speech_ema_150_xv_ub10"]
    # a recipe trained with SGD says so, its decay without AdamW's name (the row's figures
    # borrowed: only the recipe's words are checked)
    sgd = " ".join(model_card.training_lines(
        "speech_wd1w96ldvtlpsgd_150_xv_f0", rows["speech_wd30_150_xv_ub05"],
        EXPERIMENTS["speech_wd1w96ldvtlpsgd_150_xv_f0"]))
    assert "batch 100, SGD (Nesterov momentum 0.9) with cosine decay from 0.1" in sgd
    assert "decoupled weight decay 0.01 of the kernels (each step" in sgd
    assert "batch 100, Adam with cosine decay from 0.001" in lines["speech_ema_150_xv_ub10"]
    focal = " ".join(model_card.training_lines(
        "speech_wd100w96ldvtlpfocal_150_xv_f0", rows["speech_wd30_150_xv_ub05"],
        EXPERIMENTS["speech_wd100w96ldvtlpfocal_150_xv_f0"]))
    assert "focal loss (gamma 2) instead of cross-entropy" in focal
    assert "focal" not in lines["speech_ema_150_xv_ub10"] and "AdamW" in focal
