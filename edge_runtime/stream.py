"""Streaming keyword detection: audio chunks in, ``Event(time_s, label, probability)`` out.

The detector feeds a :class:`~edge_runtime.frontend.StreamingFrontend`, keeps the last
``n_frames`` feature frames in a ring, runs the model every hop once a whole window is
there, averages the last ``k`` posteriors (``smooth_ms``), and fires when the top smoothed
label is a keyword at or above the threshold and no event fired within ``refractory_ms``.
Background labels (``_silence_``, ``_unknown_``) never fire.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edge_runtime.errors import KwsError
from edge_runtime.frontend import FrontendConfig, StreamingFrontend
from edge_runtime.manifest import BACKGROUND_LABELS
from edge_runtime.wav import load_audio


@dataclass(frozen=True)
class DetectorConfig:
    """Decision settings of the streaming detector."""

    hop_ms: float = 100.0
    smooth_ms: float = 300.0
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


def gate_events(times: np.ndarray, smoothed: np.ndarray, labels: list[str],
                threshold: float, refractory_s: float) -> list[Event]:
    """Apply a threshold and refractory period to recorded smoothed posteriors."""
    gate = EventGate(labels, threshold, refractory_s)
    events = (gate.step(float(t), p) for t, p in zip(times, smoothed, strict=True))
    return [e for e in events if e is not None]


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
    return round(sample_rate * config.hop_ms / 1000)


def array_source(samples: np.ndarray, chunk: int, sample_rate: int,
                 realtime: bool = False) -> Iterator[np.ndarray]:
    """Yield ``chunk``-sample pieces; with ``realtime`` paced like a live microphone."""
    t0 = time.monotonic()
    for start in range(0, samples.size, chunk):
        if realtime:
            delay = t0 + (start + chunk) / sample_rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        yield samples[start : start + chunk]


def file_source(path: str | Path, sample_rate: int, chunk: int,
                realtime: bool = False) -> Iterator[np.ndarray]:
    """A WAV file (resampled to ``sample_rate``) in chunks."""
    audio = load_audio(path, sample_rate)
    return array_source(audio.samples, chunk, sample_rate, realtime)


def microphone_source(sample_rate: int, chunk: int, device: int | str | None = None,
                      seconds: float | None = None) -> Iterator[np.ndarray]:
    """Mono chunks from a microphone (``sounddevice``), resampled when the device cannot
    record at ``sample_rate``; stops after ``seconds`` if given.

    The device is checked and opened here, so a missing library or device raises
    :class:`KwsError` at once rather than on the first chunk.
    """
    try:
        import sounddevice as sd
    except ImportError:
        raise KwsError("microphone capture needs sounddevice: install kws-edge[mic]") from None
    except OSError as exc:  # sounddevice is there but the PortAudio library is not
        raise KwsError(f"microphone capture needs PortAudio ({exc})") from None
    import queue

    try:
        sd.check_input_settings(device=device, channels=1, samplerate=sample_rate)
        rate = sample_rate
    except (sd.PortAudioError, ValueError):
        try:
            rate = int(sd.query_devices(device, "input")["default_samplerate"])
        except (sd.PortAudioError, ValueError) as exc:
            raise KwsError(f"no usable input device {device!r}: {exc}") from None
    blocks: queue.Queue[np.ndarray] = queue.Queue()

    def callback(indata, frames, time_info, status) -> None:
        blocks.put(indata[:, 0].copy())

    try:
        stream = sd.InputStream(device=device, channels=1, samplerate=rate, dtype="float32",
                                blocksize=round(chunk * rate / sample_rate), callback=callback)
    except (sd.PortAudioError, ValueError) as exc:
        raise KwsError(f"cannot open input device {device!r}: {exc}") from None
    resampler = None
    if rate != sample_rate:
        import soxr

        resampler = soxr.ResampleStream(rate, sample_rate, 1, dtype="float32")

    def chunks() -> Iterator[np.ndarray]:
        total = 0
        limit = None if seconds is None else round(seconds * sample_rate)
        with stream:
            while limit is None or total < limit:
                samples = blocks.get()
                if resampler is not None:
                    samples = resampler.resample_chunk(samples)
                total += samples.size
                yield samples

    return chunks()


# --- Evaluation on long audio with known keyword times -------------------------------------

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


def check_rows(rows: list[tuple[float, float, str]], labels: list[str]) -> None:
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


def plot_sweep(evaluation: StreamEvaluation, path: str | Path) -> None:
    """A DET-style plot (false-reject rate against false accepts per hour) as PNG."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise KwsError("--plot needs matplotlib (pip install matplotlib)") from None
    xs = [s.false_accepts_per_hour for s in evaluation.sweep]
    ys = [s.false_reject_rate for s in evaluation.sweep]
    fig, ax = plt.subplots(figsize=(6, 4.5))
    ax.plot(xs, ys, marker="o")
    for s, x, y in zip(evaluation.sweep, xs, ys, strict=True):
        ax.annotate(f"{s.threshold:g}", (x, y), textcoords="offset points", xytext=(4, 4),
                    fontsize=7)
    ax.set_xlabel("false accepts per hour")
    ax.set_ylabel("false-reject rate")
    ax.set_title(f"Streaming detection, {evaluation.seconds / 60:.1f} min")
    ax.grid(True, alpha=0.3)
    fig.tight_layout()
    try:
        fig.savefig(path, dpi=120)
    except OSError as exc:
        raise KwsError(f"{path}: cannot write the plot ({exc.strerror or exc})") from None
    finally:
        plt.close(fig)
