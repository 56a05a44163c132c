"""benchmarks.read_speech: events per hour of the detector on long read speech."""

from __future__ import annotations

import json
from collections import Counter

import numpy as np
import pytest

from benchmarks.read_speech import Recording, count_events, main, paragraphs, spoken_text
from edge_runtime.audio_source import array_source
from edge_runtime.detector import DetectorConfig, StreamingDetector, chunk_samples, run_detector
from edge_runtime.wav import write_wav
from tests.tone_streams import RATE, keyword_stream


def test_paragraphs_are_blank_line_separated_and_joined_into_one_line():
    text = "Go left\nthen stop.\n\n\n  Yes,\n no.  \n\n"
    assert paragraphs(text) == ["Go left then stop.", "Yes, no."]


def live_events(model, samples: np.ndarray, config: DetectorConfig) -> list:
    """The events of the live detector over ``samples``."""
    detector = StreamingDetector(model, config)
    return run_detector(detector, array_source(samples, chunk_samples(config, RATE), RATE))


def test_events_are_the_live_detectors_at_each_threshold(tone_model):
    samples, _ = keyword_stream(seed=1, n_words=12)
    recording = Recording("tones", samples)
    hours = samples.size / RATE / 3600
    counted = count_events(tone_model, [recording], DetectorConfig(threshold=0.5), False,
                           (0.3, 0.5, 0.9))
    for t, point in zip((0.3, 0.5, 0.9), counted["sweep"], strict=True):
        live = live_events(tone_model, samples, DetectorConfig(threshold=t))
        assert point["events_per_hour"] == pytest.approx(len(live) / hours, abs=0.05)
    live = live_events(tone_model, samples, DetectorConfig(threshold=0.5))
    assert counted["events"] == len(live) > 0
    by_label = Counter(e.label for e in live)
    assert counted["by_keyword_per_hour"] == {
        k: pytest.approx(by_label[k] / hours, abs=0.05) for k in ("yes", "no")}
    # quiet noise alone: nothing fires, at any threshold
    quiet = Recording("noise", 0.003 * np.random.default_rng(0).standard_normal(20 * RATE))
    none = count_events(tone_model, [quiet], DetectorConfig(threshold=0.5), False, (0.3, 0.9))
    assert none["events"] == 0 and all(p["events_per_hour"] == 0 for p in none["sweep"])


def test_recordings_on_the_command_line(tone_model, tone_model_path, tmp_path):
    samples, _ = keyword_stream(seed=2, n_words=9)
    wav = tmp_path / "long.wav"
    write_wav(wav, samples, RATE)
    out = tmp_path / "out"
    assert main([str(wav), "--model", str(tone_model_path), "--no-reference", "--out",
                 str(out)]) == 0
    data = json.loads((out / "read_speech.json").read_text())
    assert data["recordings"] == [{"name": "long.wav",
                                   "minutes": round(samples.size / RATE / 60, 2)}]
    (result,) = data["results"]
    assert result["threshold"] == DetectorConfig.threshold
    assert result["events"] == len(live_events(tone_model, samples, DetectorConfig())) > 0
    assert "| kws-edge tones_float32.tflite |" in (out / "read_speech.md").read_text()


def test_text_read_out_counts_the_keywords_said(tmp_path):
    text = tmp_path / "text.txt"
    text.write_text("Go left, then stop.\n\nYes, go on.\n")
    rec = spoken_text([text], ("en-us",), minutes=0.05)
    assert rec.said["go"] == 2 and rec.said["left"] == 1 and rec.said["stop"] == 1
    assert rec.samples.size > 2 * RATE and np.abs(rec.samples).max() <= 0.51


def test_speech_made_here_is_saved_and_scored_again_alike(tone_model_path, tmp_path):
    """``--save`` keeps what ``--speak`` read out; scored as a recording it gives the same
    events (at a threshold given on the command line)."""
    text = tmp_path / "text.txt"
    text.write_text("Go left, then stop.\n\nYes, go on.\n")
    wav, a, b = tmp_path / "read.wav", tmp_path / "a", tmp_path / "b"
    common = ["--model", str(tone_model_path), "--no-reference", "--threshold", "0.3"]
    assert main(["--speak", str(text), "--voices", "en-us", "--minutes", "0.2", "--save",
                 str(wav), *common, "--out", str(a)]) == 0
    assert main([str(wav), *common, "--out", str(b)]) == 0
    spoken, again = (json.loads((d / "read_speech.json").read_text()) for d in (a, b))
    said = spoken["keywords_said"]
    assert said["yes"] >= 1 and said["no"] == 0 and again["keywords_said"] == {}
    first, second = spoken["results"][0], again["results"][0]
    assert first["threshold"] == second["threshold"] == 0.3
    assert first["events"] == second["events"] and first["sweep"] == second["sweep"]


@pytest.mark.parametrize("argv, message", [
    ([], "give recordings or --speak TEXT"),
    (["x.wav", "--speak", "t.txt"], "give recordings or --speak TEXT"),
    (["--speak", "t.txt", "--minutes", "0"], "--minutes must be within (0, 600]"),
    (["missing.wav", "--no-reference"], "missing.wav"),
    (["x.wav", "--save", "y.wav"], "--save keeps the speech that --speak makes"),
    (["x.wav", "--threshold", "1.5"], "--threshold must be within (0, 1)"),
])
def test_bad_input_gets_one_error_line(argv, message, tone_model_path, capsys, tmp_path,
                                       monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main([*argv, "--model", str(tone_model_path), "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and err.count("\n") == 1
