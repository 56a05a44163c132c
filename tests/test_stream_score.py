"""Scoring long streams: hits, misses and false accepts, the offline threshold sweep equals
live runs, and the ``evaluate-stream`` command (with its DET plot)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from edge_runtime.audio_source import file_source
from edge_runtime.detector import DetectorConfig, Event, StreamingDetector, run_detector
from edge_runtime.stream_gen import write_labels
from edge_runtime.stream_score import evaluate_stream, score_events
from edge_runtime.wav import read_wav, write_wav
from tests.tone_streams import RATE, error_lines, keyword_stream, run_cli


def test_score_events_counts_hits_misses_false_accepts() -> None:
    rows = [(1.0, 2.0, "yes"), (5.0, 6.0, "no"), (9.0, 10.0, "yes")]
    events = [Event(1.6, "yes", 0.9),   # hit
              Event(2.3, "yes", 0.8),   # same keyword again, within tolerance: duplicate
              Event(5.5, "yes", 0.9),   # wrong keyword: false accept
              Event(20.0, "no", 0.9)]   # nothing there: false accept
    s = score_events(events, rows, seconds=1800.0, threshold=0.5, tolerance_s=0.5)
    assert (s.hits, s.misses, s.false_accepts, s.duplicates) == (1, 2, 2, 1)
    assert s.false_accepts_per_hour == pytest.approx(4.0)
    assert s.false_reject_rate == pytest.approx(2 / 3)
    assert score_events([Event(2.6, "yes", 1.0)], rows, 10, 0.5, 0.5).hits == 0


def test_offline_threshold_sweep_equals_live_runs(tone_model, tmp_path) -> None:
    wav = tmp_path / "stream.wav"
    x, rows = keyword_stream()
    write_wav(wav, x, RATE)
    x = read_wav(wav).samples  # the live runs read the 16-bit file
    config = DetectorConfig(threshold=0.6)
    result = evaluate_stream(tone_model, x, rows, config, tolerance_s=0.5,
                             thresholds=(0.3, 0.6, 0.9, 0.99))
    for score in result.sweep:
        live_config = DetectorConfig(threshold=score.threshold)
        live = run_detector(StreamingDetector(tone_model, live_config),
                            file_source(wav, RATE, 1600))
        expected = score_events(live, rows, x.size / RATE, score.threshold, 0.5)
        assert score == expected
        if score.threshold == 0.6:
            assert [e.to_dict() for e in live] == [e.to_dict() for e in result.events]
    assert result.at_threshold.hits >= len(rows) - 1  # the tones are easy
    assert [s.threshold for s in result.sweep] == [0.3, 0.6, 0.9, 0.99]


def test_evaluate_stream_cli_reports_rates_and_plots(tone_model_path, tmp_path) -> None:
    x, rows = keyword_stream(seed=2)
    wav, csv_path, png = tmp_path / "s.wav", tmp_path / "s.csv", tmp_path / "det.png"
    write_wav(wav, x, RATE)
    write_labels(csv_path, rows)
    # 300 ms smoothing: the count of events need not fall as the threshold rises (which events
    # a refractory period hides depends on when the one before fired), and on this short tone
    # stream it does not with the default 800 ms
    out = run_cli("evaluate-stream", "--audio", wav, "--labels", csv_path, "--model",
                  tone_model_path, "--json", "--plot", png, "--threshold", "0.6",
                  "--smooth-ms", "300")
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert report["keywords"] == len(rows) == report["hits"] + report["misses"]
    assert report["false_reject_rate"] == pytest.approx(report["misses"] / len(rows), abs=1e-5)
    hours = x.size / RATE / 3600
    assert report["false_accepts_per_hour"] == pytest.approx(report["false_accepts"] / hours,
                                                             abs=1e-3)
    thresholds = [s["threshold"] for s in report["sweep"]]
    assert thresholds == sorted(thresholds) and 0.6 in thresholds
    fas = [s["false_accepts"] + s["hits"] for s in report["sweep"]]
    assert fas == sorted(fas, reverse=True)  # fewer detections as the threshold rises
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    text = run_cli("evaluate-stream", "--audio", wav, "--labels", csv_path, "--model",
                   tone_model_path)
    assert "false accepts per hour" in text.stdout and "FA/h" in text.stdout


def test_evaluate_stream_cli_rejects_bad_labels(tone_model_path, tmp_path) -> None:
    wav, bad = tmp_path / "s.wav", tmp_path / "bad.csv"
    write_wav(wav, np.zeros(2 * RATE, dtype=np.float32), RATE)
    for content, message in [("a,b\n1,2\n", "expected the header start_s,end_s,label"),
                             ("start_s,end_s,label\n1,2,stop\n", "not keywords of the model"),
                             ("start_s,end_s,label\nx,2,yes\n", "bad row")]:
        bad.write_text(content)
        out = run_cli("evaluate-stream", "--audio", wav, "--labels", bad, "--model",
                      tone_model_path)
        assert out.returncode == 2 and message in out.stderr, out.stderr
        assert len(error_lines(out.stderr)) == 1


def test_the_models_own_threshold_is_the_default(tone_model_path, tmp_path) -> None:
    """A threshold in the manifest (chosen for that model) is what the detector uses unless
    --threshold says otherwise; without one, the detector's default."""
    import shutil
    from dataclasses import replace

    from edge_runtime.manifest import load_manifest, manifest_path_for, save_manifest

    x, rows = keyword_stream(seed=2)
    wav, csv_path = tmp_path / "s.wav", tmp_path / "s.csv"
    write_wav(wav, x, RATE)
    write_labels(csv_path, rows)
    model = tmp_path / "model.tflite"
    shutil.copy(tone_model_path, model)
    manifest = load_manifest(manifest_path_for(tone_model_path))
    assert manifest.threshold is None

    def threshold_used(*extra) -> float:
        out = run_cli("evaluate-stream", "--audio", wav, "--labels", csv_path, "--model",
                      model, "--json", *extra)
        assert out.returncode == 0, out.stderr
        return json.loads(out.stdout)["threshold"]

    save_manifest(manifest, manifest_path_for(model))
    assert threshold_used() == DetectorConfig().threshold
    save_manifest(replace(manifest, threshold=0.85), manifest_path_for(model))
    assert threshold_used() == 0.85
    assert threshold_used("--threshold", "0.6") == 0.6
    assert "threshold   0.85" in run_cli("info", "--model", model).stdout
