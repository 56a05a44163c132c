"""Streaming detection: window posteriors equal the clip path, smoothing, refractory period,
the offline threshold sweep equals live runs, and the listen / evaluate-stream commands."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from edge_runtime.errors import KwsError
from edge_runtime.model import KwsModel
from edge_runtime.stream import (
    DetectorConfig,
    Event,
    StreamingDetector,
    array_source,
    evaluate_stream,
    file_source,
        run_detector,
    score_events,
)
from edge_runtime.stream_gen import write_labels
from edge_runtime.wav import Audio, read_wav, write_wav
from tests.conftest import ROOT

RATE = 16000
TONE_LABELS = ["_silence_", "_unknown_", "yes", "no"]
TONES = {"yes": 440.0, "no": 1500.0}


def tone_clip(label: str, rng: np.random.Generator, seconds: float = 1.0) -> np.ndarray:
    """A made-up 'word' per class: a 0.6-s tone burst (keywords), a rising chirp (unknown)
    or quiet noise (silence), placed at a random offset in the clip."""
    n = round(seconds * RATE)
    x = 0.003 * rng.standard_normal(n)
    if label != "_silence_":
        length = round(0.6 * RATE)
        start = int(rng.integers(0, n - length + 1))
        envelope = np.hanning(length)
        t = np.arange(length) / RATE
        if label == "_unknown_":
            f0 = rng.uniform(2000, 2400)
            burst = 0.4 * np.sin(2 * np.pi * (f0 * t + 1000 * t**2))
        else:
            f = TONES[label] * rng.uniform(0.97, 1.03)
            burst = 0.4 * np.sin(2 * np.pi * f * t)
        x[start : start + length] += envelope * burst
    return x.astype(np.float32)


def train_tone_model(out_dir: Path) -> Path:
    """A small Keras model trained 6 epochs (~1 s) on tone clips -> float32 TFLite + manifest."""
    import keras

    from convert.tflite import to_tflite
    from edge_runtime.frontend import EDGE_FRONTEND, mfcc
    from edge_runtime.manifest import write_manifest
    from tests.model_factory import tiny_keras_model

    rng = np.random.default_rng(0)
    ys = np.repeat(np.arange(len(TONE_LABELS)), 60)
    x = mfcc(np.stack([tone_clip(TONE_LABELS[y], rng) for y in ys]), EDGE_FRONTEND)[..., None]
    model = tiny_keras_model(EDGE_FRONTEND, len(TONE_LABELS))
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="sparse_categorical_crossentropy")
    model.fit(x, ys, epochs=6, batch_size=16, verbose=0, shuffle=True)
    path = out_dir / "tones_float32.tflite"
    path.write_bytes(to_tflite(model, "float32", x[:32]))
    write_manifest(path, labels=TONE_LABELS, frontend=EDGE_FRONTEND, quantization="float32",
                   arch="tiny_test_tones")
    return path


@pytest.fixture(scope="module")
def tone_model_path(tmp_path_factory) -> Path:
    return train_tone_model(tmp_path_factory.mktemp("tones"))


@pytest.fixture(scope="module")
def tone_model(tone_model_path) -> KwsModel:
    return KwsModel(tone_model_path)


def padded(clip: np.ndarray, before_s: float = 0.5, after_s: float = 0.5) -> np.ndarray:
    rng = np.random.default_rng(99)
    pad = lambda s: (0.003 * rng.standard_normal(round(s * RATE))).astype(np.float32)  # noqa: E731
    return np.concatenate([pad(before_s), clip, pad(after_s)])


def recorded(model, samples: np.ndarray, config: DetectorConfig, chunk: int = 1600):
    detector = StreamingDetector(model, config, record=True)
    events = run_detector(detector, array_source(samples, chunk, RATE))
    return detector, events


def test_stream_window_posteriors_equal_the_clip_path(tone_model) -> None:
    rng = np.random.default_rng(5)
    labels_seen = set()
    for label in TONE_LABELS:
        clip = tone_clip(label, rng)
        x = padded(clip)
        # odd chunk sizes: the result must not depend on how the audio arrives
        detector, _ = recorded(tone_model, x, DetectorConfig(smooth_ms=0, threshold=1.0),
                               chunk=1234)
        assert len(detector.posteriors) == 1 + (x.size - RATE) // 1600
        for i, probs in enumerate(detector.posteriors):
            start = detector.window_start(i)
            expected = tone_model.predict_samples(x[start : start + RATE])
            np.testing.assert_allclose(probs, expected, atol=1e-5)
            assert detector.times[i] == pytest.approx((start + RATE / 2) / RATE)
        aligned = detector.posteriors[5]  # the window starting at 0.5 s holds exactly the clip
        file_label = tone_model.classify(Audio(clip, RATE)).label
        assert tone_model.labels[int(np.argmax(aligned))] == file_label
        labels_seen.add(file_label)
    assert labels_seen == set(TONE_LABELS), "the trained tone model should tell classes apart"


def test_smoothing_is_a_moving_average_of_the_last_posteriors(tone_model) -> None:
    x = padded(tone_clip("yes", np.random.default_rng(1)), 1.0, 1.0)
    raw, _ = recorded(tone_model, x, DetectorConfig(smooth_ms=0))
    smooth, _ = recorded(tone_model, x, DetectorConfig(smooth_ms=300))
    assert DetectorConfig(smooth_ms=300).smooth_hops == 3
    r = np.stack(raw.posteriors)
    for i, p in enumerate(smooth.posteriors):
        np.testing.assert_allclose(p, r[max(0, i - 2) : i + 1].mean(axis=0), atol=1e-6)


def test_refractory_period_suppresses_repeated_events(tone_model) -> None:
    # back-to-back 'yes' words: the keyword stays above threshold for many hops
    rng = np.random.default_rng(8)
    x = padded(np.concatenate([tone_clip("yes", rng) for _ in range(4)]), 1.0, 1.0)
    _, every_hop = recorded(tone_model, x, DetectorConfig(threshold=0.5, refractory_ms=0))
    _, refractory = recorded(tone_model, x, DetectorConfig(threshold=0.5, refractory_ms=1000))
    assert len(every_hop) >= 15 and "yes" in {e.label for e in every_hop}
    kept, last = [], None
    for e in every_hop:  # the rule: an event, then nothing for 1 s
        if last is None or e.time_s - last >= 1.0 - 1e-9:
            kept.append(e)
            last = e.time_s
    assert refractory == kept
    assert 2 <= len(refractory) < len(every_hop) / 3
    assert np.diff([e.time_s for e in refractory]).min() >= 1.0 - 1e-9


def test_background_labels_never_fire(tone_model) -> None:
    rng = np.random.default_rng(3)
    x = np.concatenate([tone_clip(label, rng) for label in ["_silence_", "_unknown_"] * 3])
    detector, events = recorded(tone_model, x, DetectorConfig(threshold=0.0, smooth_ms=0))
    tops = {tone_model.labels[int(np.argmax(p))] for p in detector.posteriors}
    assert tops & {"_silence_", "_unknown_"}  # the model does see background here
    assert all(e.label in ("yes", "no") for e in events)


def test_hop_must_be_a_multiple_of_the_frontend_hop(tiny_models) -> None:
    model = KwsModel(tiny_models["float32"])
    for bad in (DetectorConfig(hop_ms=30), DetectorConfig(hop_ms=0),
                DetectorConfig(threshold=1.5), DetectorConfig(smooth_ms=-1)):
        with pytest.raises(KwsError):
            StreamingDetector(model, bad)
    assert StreamingDetector(model, DetectorConfig(hop_ms=40)).hop_frames == 2


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


def keyword_stream(seed: int = 0, n_words: int = 12):
    """Tone 'words' (keywords and unknown) at known times with quiet noise between."""
    rng = np.random.default_rng(seed)
    parts, rows, pos = [], [], 0
    for i in range(n_words):
        label = ["yes", "no", "_unknown_"][i % 3]
        gap = (0.003 * rng.standard_normal(int(rng.integers(RATE, 2 * RATE)))).astype(np.float32)
        parts += [gap, tone_clip(label, rng)]
        pos += gap.size
        if label != "_unknown_":
            rows.append((pos / RATE, (pos + RATE) / RATE, label))
        pos += RATE
    return np.concatenate(parts), rows


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


def test_file_source_paces_in_real_time(tmp_path) -> None:
    wav = tmp_path / "half.wav"
    write_wav(wav, np.zeros(RATE // 2, dtype=np.float32), RATE)
    t0 = time.monotonic()
    chunks = list(file_source(wav, RATE, 1600, realtime=True))
    assert time.monotonic() - t0 >= 0.45
    assert sum(c.size for c in chunks) == RATE // 2


def error_lines(stderr: str) -> list[str]:
    """stderr without the interpreter's own INFO log lines."""
    return [x for x in stderr.strip().splitlines() if not x.startswith("INFO:")]


def run_cli(*args, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "edge_runtime.cli", *map(str, args)],
                          capture_output=True, text=True, cwd=ROOT, timeout=timeout,
                          env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})


def test_listen_cli_streams_a_file_like_the_detector(tone_model, tone_model_path,
                                                     tmp_path) -> None:
    x, _ = keyword_stream(seed=1, n_words=6)
    wav = tmp_path / "s.wav"
    write_wav(wav, x, RATE)
    out = run_cli("listen", "--input", wav, "--fast", "--json", "--model", tone_model_path,
                  "--threshold", "0.6", "--refractory-ms", "800")
    assert out.returncode == 0, out.stderr
    printed = [json.loads(line) for line in out.stdout.splitlines()]
    config = DetectorConfig(threshold=0.6, refractory_ms=800)
    expected = run_detector(StreamingDetector(tone_model, config), file_source(wav, RATE, 1600))
    assert printed == [e.to_dict() for e in expected] and printed
    text = run_cli("listen", "--input", wav, "--fast", "--model", tone_model_path)
    assert text.returncode == 0 and text.stdout.split()[1] in ("yes", "no")


def test_listen_cli_rejects_bad_settings(tone_model_path, tmp_path) -> None:
    out = run_cli("listen", "--input", tmp_path / "none.wav", "--model", tone_model_path,
                  "--hop-ms", "30")
    assert out.returncode == 2
    assert error_lines(out.stderr) == [
        "error: --hop-ms 30 must be a positive multiple of the front-end hop (20 ms)"]
    out = run_cli("listen", "--input", tmp_path / "none.wav", "--model", tone_model_path)
    assert out.returncode == 2 and "no such file" in out.stderr and "Traceback" not in out.stderr


def test_listen_without_sounddevice_says_what_to_install(tone_model_path) -> None:
    import importlib.util

    if importlib.util.find_spec("sounddevice") is not None:
        pytest.skip("sounddevice is installed here; the missing-extra message cannot be shown")
    out = run_cli("listen", "--model", tone_model_path)
    assert out.returncode == 2
    assert len(error_lines(out.stderr)) == 1
    assert error_lines(out.stderr)[0].startswith("error: ")
    assert "install kws-edge[mic]" in out.stderr and "Traceback" not in out.stderr


def test_evaluate_stream_cli_reports_rates_and_plots(tone_model_path, tmp_path) -> None:
    x, rows = keyword_stream(seed=2)
    wav, csv_path, png = tmp_path / "s.wav", tmp_path / "s.csv", tmp_path / "det.png"
    write_wav(wav, x, RATE)
    write_labels(csv_path, rows)
    out = run_cli("evaluate-stream", "--audio", wav, "--labels", csv_path, "--model",
                  tone_model_path, "--json", "--plot", png, "--threshold", "0.6")
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


def test_streaming_imports_no_tensorflow(tone_model_path, tmp_path) -> None:
    wav = tmp_path / "s.wav"
    write_wav(wav, keyword_stream(n_words=3)[0], RATE)
    code = (
        "import sys\n"
        "from edge_runtime.cli import main\n"
        f"assert main(['listen', '--input', {str(wav)!r}, '--fast', '--model', "
        f"{str(tone_model_path)!r}]) == 0\n"
        "import edge_runtime.serve, edge_runtime.stream_gen\n"
        "heavy = {'tensorflow', 'keras', 'librosa', 'scipy', 'flask', 'sounddevice',"
        " 'matplotlib'} & set(sys.modules)\n"
        "assert not heavy, heavy\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                         timeout=120)
    assert out.returncode == 0, out.stderr
