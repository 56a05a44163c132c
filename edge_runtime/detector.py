"""Streaming keyword detection: audio chunks in, ``Event(time_s, label, probability)`` out.

The detector feeds a :class:`~edge_runtime.frontend.StreamingFrontend`, keeps the last
``n_frames`` feature frames in a ring, runs the model every hop once a whole window is
there, averages the last ``k`` posteriors (``smooth_ms``), and fires when the top smoothed
label is a keyword at or above the threshold and no event fired within ``refractory_ms``.
Background labels (``_silence_``, ``_unknown_``) never fire.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np

from edge_runtime.errors import KwsError
from edge_runtime.frontend import FrontendConfig, StreamingFrontend
from edge_runtime.manifest import BACKGROUND_LABELS


@dataclass(frozen=True)
class DetectorConfig:
    """Decision settings of the streaming detector."""

    hop_ms: float = 100.0
    smooth_ms: float = 800.0
    threshold: float = 0.7
    refractory_ms: float = 1000.0
    keywords: tuple[str, ...] | None = None  # fire only for these (None: every keyword)
    thresholds: tuple[tuple[str, float], ...] = ()  # (keyword, threshold) overriding threshold

    def validate(self, frontend: FrontendConfig) -> None:
        """Raise :class:`KwsError` unless these settings fit ``frontend``."""
        step = self.hop_ms / frontend.hop_ms
        if not (math.isfinite(step) and step > 0 and abs(step - round(step)) < 1e-9):
            raise KwsError(f"--hop-ms {self.hop_ms:g} must be a positive multiple of the "
                           f"front-end hop ({frontend.hop_ms:g} ms)")
        if not (self.smooth_ms >= 0 and math.isfinite(self.smooth_ms)):
            raise KwsError(f"--smooth-ms must be >= 0, got {self.smooth_ms:g}")
        if not 0.0 <= self.threshold <= 1.0:
            raise KwsError(f"--threshold must be in [0, 1], got {self.threshold:g}")
        if not (self.refractory_ms >= 0 and math.isfinite(self.refractory_ms)):
            raise KwsError(f"--refractory-ms must be >= 0, got {self.refractory_ms:g}")
        for word, value in self.thresholds:
            if not 0.0 <= value <= 1.0:
                raise KwsError(f"threshold of {word!r} must be in [0, 1], got {value:g}")

    def check_labels(self, labels: list[str]) -> None:
        """Raise :class:`KwsError` unless every keyword named here is one of ``labels``."""
        keywords = [x for x in labels if x not in BACKGROUND_LABELS]
        named = list(self.keywords or ()) + [word for word, _ in self.thresholds]
        for word in named:
            if word not in keywords:
                raise KwsError(f"{word!r} is not a keyword of the model "
                               f"({', '.join(keywords)})")

    @property
    def smooth_hops(self) -> int:
        """How many posteriors the moving average spans (at least 1)."""
        return max(1, round(self.smooth_ms / self.hop_ms))


@dataclass(frozen=True)
class Event:
    """A detected keyword; ``time_s`` is the centre of the window that fired."""

    time_s: float
    label: str
    probability: float

    def to_dict(self) -> dict:
        return {"time_s": round(self.time_s, 3), "label": self.label,
                "probability": round(self.probability, 6)}

    def to_text(self) -> str:
        return f"{self.time_s:9.2f}  {self.label:<10} {self.probability:.3f}"


class EventGate:
    """Threshold + refractory period over smoothed posteriors, one hop at a time.

    Used by the live detector and by the offline threshold sweep, so both decide alike.
    """

    def __init__(self, labels: list[str], threshold: float, refractory_s: float,
                 keywords: tuple[str, ...] | None = None,
                 thresholds: tuple[tuple[str, float], ...] = ()) -> None:
        self.labels = labels
        self.threshold = threshold
        self.refractory_s = refractory_s
        per_word = dict(thresholds)
        # background labels and keywords not listened for never fire (an infinite threshold)
        self._thresholds = [math.inf if x in BACKGROUND_LABELS or
                            (keywords is not None and x not in keywords)
                            else per_word.get(x, threshold) for x in labels]
        self._last: float | None = None

    def step(self, time_s: float, smoothed: np.ndarray) -> Event | None:
        i = int(np.argmax(smoothed))
        label, p = self.labels[i], float(smoothed[i])
        if p < self._thresholds[i]:
            return None
        # A small slack keeps float hop times from splitting hairs at the boundary.
        if self._last is not None and time_s - self._last < self.refractory_s - 1e-9:
            return None
        self._last = time_s
        return Event(time_s, label, p)


class StreamingDetector:
    """Push audio chunks at the model's sample rate; get the events they complete.

    With ``record=True`` every hop's time and smoothed posterior are kept in
    :attr:`times` / :attr:`posteriors` (for the offline threshold sweep).
    """

    def __init__(self, model, config: DetectorConfig = DetectorConfig(),
                 record: bool = False) -> None:
        frontend = model.manifest.frontend
        config.validate(frontend)
        config.check_labels(model.labels)
        self.model = model
        self.config = config
        self.frontend_config = frontend
        self.hop_frames = round(config.hop_ms / frontend.hop_ms)
        self.record = record
        self.reset()

    def reset(self) -> None:
        fe = self.frontend_config
        self._frontend = StreamingFrontend(fe)
        self._ring = np.zeros((2 * fe.n_frames, fe.n_features), dtype=np.float32)
        self._frames = 0  # frames seen so far
        self._recent: deque[np.ndarray] = deque(maxlen=self.config.smooth_hops)
        self._gate = EventGate(self.model.labels, self.config.threshold,
                               self.config.refractory_ms / 1000.0, self.config.keywords,
                               self.config.thresholds)
        self.times: list[float] = []
        self.posteriors: list[np.ndarray] = []

    def _window(self) -> np.ndarray:
        """The last ``n_frames`` frames, oldest first."""
        n = self.frontend_config.n_frames
        end = self._frames % n
        # The ring holds each frame twice (at i and i + n) so a window is one slice.
        return self._ring[end : end + n]

    def _add_frame(self, frame: np.ndarray) -> Event | None:
        fe = self.frontend_config
        n = fe.n_frames
        slot = self._frames % n
        self._ring[slot] = frame
        self._ring[slot + n] = frame
        self._frames += 1
        first = self._frames - n  # index of the window's first frame
        if first < 0 or first % self.hop_frames:
            return None
        probs = self.model.predict_features(self._window())
        self._recent.append(probs)
        smoothed = np.mean(self._recent, axis=0)
        centre_s = (first * fe.hop_length + fe.clip_samples / 2) / fe.sample_rate
        if self.record:
            self.times.append(centre_s)
            self.posteriors.append(smoothed)
        return self._gate.step(centre_s, smoothed)

    def push(self, chunk: np.ndarray) -> list[Event]:
        """Add samples (float in [-1, 1], the model's rate); return the new events."""
        events = []
        for frame in self._frontend.push(chunk):
            event = self._add_frame(frame)
            if event is not None:
                events.append(event)
        return events

    def window_start(self, index: int) -> int:
        """The first sample of the ``index``-th analysed window."""
        return index * self.hop_frames * self.frontend_config.hop_length


def run_detector(detector: StreamingDetector, chunks: Iterable[np.ndarray],
                 on_event: Callable[[Event], None] | None = None) -> list[Event]:
    """Feed every chunk; call ``on_event`` as events come; return them all."""
    events = []
    for chunk in chunks:
        for event in detector.push(chunk):
            events.append(event)
            if on_event is not None:
                on_event(event)
    return events


def chunk_samples(config: DetectorConfig, sample_rate: int) -> int:
    """Samples per detector hop: the chunk size that feeds one hop at a time."""
    return round(sample_rate * config.hop_ms / 1000)


def model_threshold(model) -> float:
    """The threshold in ``model``'s manifest, else :class:`DetectorConfig`'s default."""
    chosen = model.manifest.threshold
    return DetectorConfig.threshold if chosen is None else float(chosen)
