"""The streaming detector: window posteriors equal the clip path, smoothing, refractory
period, background labels never fire, settings are checked."""

from __future__ import annotations

import numpy as np
import pytest

from edge_runtime.audio_source import array_source
from edge_runtime.detector import DetectorConfig, StreamingDetector, run_detector
from edge_runtime.errors import KwsError
from edge_runtime.model import KwsModel
from edge_runtime.wav import Audio
from tests.tone_streams import RATE, TONE_LABELS, tone_clip


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
