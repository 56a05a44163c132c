"""Scoring the detector on long audio with known keyword times.

:func:`evaluate_stream` runs the detector once with its posteriors recorded, then applies each
threshold of a sweep and the refractory period offline (:func:`gate_events`), exactly as a live
run at that threshold would, and matches the events to the labelled keywords: hits, misses,
false accepts per hour and the false-reject rate.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from edge_runtime.audio_source import array_source
from edge_runtime.detector import (
    DetectorConfig,
    Event,
    EventGate,
    StreamingDetector,
    chunk_samples,
    run_detector,
)
from edge_runtime.errors import KwsError
from edge_runtime.manifest import BACKGROUND_LABELS

SWEEP_THRESHOLDS = tuple(round(0.05 * i, 2) for i in range(1, 20))


@dataclass(frozen=True)
class StreamScore:
    """Detections scored against the labelled keywords at one threshold."""

    threshold: float
    keywords: int  # labelled keyword occurrences
    hits: int
    misses: int
    false_accepts: int
    duplicates: int  # further events on an already-detected keyword (not counted as FA)
    hours: float

    @property
    def false_accepts_per_hour(self) -> float:
        return self.false_accepts / self.hours if self.hours > 0 else 0.0

    @property
    def false_reject_rate(self) -> float:
        return self.misses / self.keywords if self.keywords else 0.0

    def to_dict(self) -> dict:
        return {
            "threshold": self.threshold, "keywords": self.keywords, "hits": self.hits,
            "misses": self.misses, "false_accepts": self.false_accepts,
            "duplicates": self.duplicates,
            "false_accepts_per_hour": round(self.false_accepts_per_hour, 3),
            "false_reject_rate": round(self.false_reject_rate, 5),
        }


def score_events(events: list[Event], rows: list[tuple[float, float, str]], seconds: float,
                 threshold: float, tolerance_s: float) -> StreamScore:
    """Match events to labelled ``(start_s, end_s, label)`` rows: an event matches a row of
    the same keyword when its time is within ``[start - tol, end + tol]``; each row is hit
    at most once (the nearest unmatched row wins); unmatched events are false accepts."""
    starts = np.array([r[0] for r in rows], dtype=np.float64)
    ends = np.array([r[1] for r in rows], dtype=np.float64)
    names = np.array([r[2] for r in rows], dtype=object)
    hit = np.zeros(len(rows), dtype=bool)
    false_accepts = duplicates = 0
    for e in events:
        near = (names == e.label) & (starts - tolerance_s <= e.time_s) & (
            e.time_s <= ends + tolerance_s)
        free = np.nonzero(near & ~hit)[0]
        if free.size:
            centres = (starts[free] + ends[free]) / 2
            hit[free[np.argmin(np.abs(centres - e.time_s))]] = True
        elif near.any():
            duplicates += 1
        else:
            false_accepts += 1
    n_hit = int(hit.sum())
    return StreamScore(threshold, len(rows), n_hit, len(rows) - n_hit, false_accepts,
                       duplicates, seconds / 3600.0)


@dataclass
class StreamEvaluation:
    """The detector at its threshold and a threshold sweep over one long recording."""

    seconds: float
    at_threshold: StreamScore
    sweep: list[StreamScore]
    events: list[Event]

    def to_dict(self) -> dict:
        return {"seconds": round(self.seconds, 3), **self.at_threshold.to_dict(),
                "sweep": [s.to_dict() for s in self.sweep],
                "events": [e.to_dict() for e in self.events]}

    def to_text(self) -> str:
        s = self.at_threshold
        lines = [
            f"audio {self.seconds / 60:.1f} min, {s.keywords} keywords, threshold "
            f"{s.threshold:g}: {s.hits} hits, {s.misses} misses, {s.false_accepts} false "
            f"accepts ({s.duplicates} duplicates)",
            f"false-reject rate {s.false_reject_rate:.3f}, false accepts per hour "
            f"{s.false_accepts_per_hour:.1f}",
            "",
            f"{'threshold':>9} {'hits':>5} {'misses':>6} {'FA':>5} {'FA/h':>8} {'FRR':>6}",
        ]
        for r in self.sweep:
            lines.append(f"{r.threshold:>9.2f} {r.hits:>5} {r.misses:>6} {r.false_accepts:>5} "
                         f"{r.false_accepts_per_hour:>8.1f} {r.false_reject_rate:>6.3f}")
        return "\n".join(lines)


def gate_events(times: np.ndarray, smoothed: np.ndarray, labels: list[str],
                threshold: float, refractory_s: float) -> list[Event]:
    """Apply a threshold and refractory period to recorded smoothed posteriors."""
    gate = EventGate(labels, threshold, refractory_s)
    events = (gate.step(float(t), p) for t, p in zip(times, smoothed, strict=True))
    return [e for e in events if e is not None]


def check_rows(rows: list[tuple[float, float, str]], labels: list[str]) -> None:
    """Raise :class:`KwsError` unless every row's label is a keyword of the model."""
    keywords = [x for x in labels if x not in BACKGROUND_LABELS]
    unknown = sorted({r[2] for r in rows} - set(keywords))
    if unknown:
        raise KwsError(f"labels {', '.join(unknown)} are not keywords of the model "
                       f"({', '.join(keywords)})")


def record_posteriors(model, samples: np.ndarray, config: DetectorConfig = DetectorConfig()
                      ) -> tuple[np.ndarray, np.ndarray]:
    """The detector's window times (s) and smoothed posteriors over ``samples``."""
    detector = StreamingDetector(model, config, record=True)
    run_detector(detector, array_source(samples, chunk_samples(config, model.sample_rate),
                                        model.sample_rate))
    times = np.array(detector.times, dtype=np.float64)
    smoothed = (np.stack(detector.posteriors) if detector.posteriors
                else np.zeros((0, len(model.labels)), dtype=np.float32))
    return times, smoothed


def evaluate_stream(model, samples: np.ndarray, rows: list[tuple[float, float, str]],
                    config: DetectorConfig = DetectorConfig(), tolerance_s: float = 0.5,
                    thresholds: Iterable[float] = SWEEP_THRESHOLDS) -> StreamEvaluation:
    """Run the detector once (threshold 0, posteriors recorded), then apply each threshold
    and the refractory period offline, exactly as a live run at that threshold would."""
    check_rows(rows, model.labels)
    times, smoothed = record_posteriors(model, samples, config)
    seconds = samples.size / model.sample_rate
    refractory_s = config.refractory_ms / 1000.0

    def score(threshold: float) -> tuple[StreamScore, list[Event]]:
        events = gate_events(times, smoothed, model.labels, threshold, refractory_s)
        return score_events(events, rows, seconds, threshold, tolerance_s), events

    at, events = score(config.threshold)
    sweep = [score(t)[0] for t in sorted(set(thresholds) | {config.threshold})]
    return StreamEvaluation(seconds, at, sweep, events)
