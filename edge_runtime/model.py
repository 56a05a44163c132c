"""A keyword-spotting model on the device: a ``.tflite`` file, its manifest, the front-end."""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edge_runtime.errors import KwsError
from edge_runtime.frontend import Frontend
from edge_runtime.interpreter import make_interpreter
from edge_runtime.manifest import (
    BACKGROUND_LABELS,
    Manifest,
    load_manifest,
    manifest_path_for,
    sha256_of,
)
from edge_runtime.wav import (
    Audio,
    fit_clip,
    read_wav,
    resample,
    resample_blocks,
    stream_wav,
)

STREAM_AFTER_S = 60.0  # longer files are read and scanned block by block


@dataclass
class Prediction:
    """The result for one clip (or the best window of a long file)."""

    label: str
    probability: float
    top_k: list[tuple[str, float]]
    timings_ms: dict[str, float] = field(default_factory=dict)
    detections: list[Detection] | None = None

    def to_dict(self) -> dict:
        data = {
            "label": self.label,
            "probability": round(self.probability, 6),
            "top_k": [{"label": lab, "probability": round(p, 6)} for lab, p in self.top_k],
            "timings_ms": {k: round(v, 3) for k, v in self.timings_ms.items()},
        }
        if self.detections is not None:
            data["detections"] = [d.to_dict() for d in self.detections]
        return data


@dataclass
class Detection:
    """A keyword found in a long recording."""

    start_s: float
    end_s: float
    label: str
    probability: float

    def to_dict(self) -> dict:
        return {
            "start_s": round(self.start_s, 3),
            "end_s": round(self.end_s, 3),
            "label": self.label,
            "probability": round(self.probability, 6),
        }


class KwsModel:
    """Loads a model and its manifest, checks the hash and shapes, and classifies audio."""

    def __init__(self, path: str | Path, num_threads: int = 1) -> None:
        self.path = Path(path)
        try:
            content = self.path.read_bytes()
        except FileNotFoundError:
            raise KwsError(f"{self.path}: model file not found") from None
        except OSError as exc:
            raise KwsError(f"{self.path}: cannot read model ({exc.strerror})") from None
        self.manifest: Manifest = load_manifest(manifest_path_for(self.path))
        digest = sha256_of(content)
        if digest != self.manifest.sha256:
            raise KwsError(
                f"{self.path}: sha256 {digest[:12]}… does not match its manifest "
                f"({self.manifest.sha256[:12]}…): wrong or altered model file"
            )
        if len(content) != self.manifest.size_bytes:
            raise KwsError(f"{self.path}: {len(content)} bytes but its manifest says "
                           f"{self.manifest.size_bytes}")
        self._content = content
        self.interpreter = make_interpreter(content, num_threads, str(self.path))
        self._input = self.interpreter.get_input_details()[0]
        self._output = self.interpreter.get_output_details()[0]
        self.frontend = Frontend(self.manifest.frontend)
        norm = self.manifest.feature_norm
        self._norm = (np.asarray(norm["mean"], np.float32),
                      np.float32(1.0) / np.asarray(norm["std"], np.float32)) if norm else None
        self._check_shapes()

    def _check_shapes(self) -> None:
        frames, coeffs = self.manifest.frontend.feature_shape
        shape = tuple(int(x) for x in self._input["shape"])
        if len(shape) < 3 or shape[1] != frames or int(np.prod(shape[2:])) != coeffs:
            raise KwsError(
                f"{self.path}: model input shape {list(shape)} does not fit the front-end "
                f"in its manifest ({frames} frames x {coeffs} MFCC)"
            )
        n_out = int(self._output["shape"][-1])
        if n_out != len(self.labels):
            raise KwsError(
                f"{self.path}: model has {n_out} outputs but its manifest {len(self.labels)} labels"
            )

    @property
    def labels(self) -> list[str]:
        return self.manifest.labels

    @property
    def sample_rate(self) -> int:
        return self.manifest.frontend.sample_rate

    @property
    def clip_samples(self) -> int:
        return self.manifest.frontend.clip_samples

    def _quantize(self, features: np.ndarray) -> np.ndarray:
        dtype = np.dtype(self._input["dtype"])
        if dtype == np.float32:
            return features.astype(np.float32)
        scale, zero_point = self._input["quantization"]
        info = np.iinfo(dtype)
        q = np.round(features / scale + zero_point)
        return np.clip(q, info.min, info.max).astype(dtype)

    def _dequantize(self, raw: np.ndarray) -> np.ndarray:
        if raw.dtype == np.float32:
            return raw
        scale, zero_point = self._output["quantization"]
        return ((raw.astype(np.float32) - zero_point) * scale).astype(np.float32)

    def predict_features(self, features: np.ndarray) -> np.ndarray:
        """Class probabilities for one ``(frames, n_mfcc)`` feature matrix."""
        features = np.asarray(features, dtype=np.float32)
        if self._norm is not None:
            features = (features - self._norm[0]) * self._norm[1]
        x = self._quantize(features).reshape(self._input["shape"])
        self.interpreter.set_tensor(self._input["index"], x)
        self.interpreter.invoke()
        probs = self._dequantize(self.interpreter.get_tensor(self._output["index"]))[0]
        if not np.isfinite(probs).all():
            raise KwsError(f"{self.path}: the model gave NaN or Inf probabilities")
        return probs

    def predict_samples(self, samples: np.ndarray) -> np.ndarray:
        """Class probabilities for one clip of samples at the model's rate (padded/cut)."""
        return self.predict_features(self.frontend(fit_clip(samples, self.clip_samples)))

    def top_k(self, probs: np.ndarray, k: int) -> list[tuple[str, float]]:
        order = np.argsort(-probs, kind="stable")[: max(1, k)]
        return [(self.labels[i], float(probs[i])) for i in order]

    def classify(self, audio: Audio, top_k: int = 3, hop_s: float = 0.5,
                 threshold: float = 0.5) -> Prediction:
        """Label a clip; a file longer than one clip is scanned in windows (see ``scan``)."""
        t0 = time.perf_counter()
        samples = resample(audio, self.sample_rate).samples
        if samples.size > self.clip_samples:
            return self.scan(samples, top_k=top_k, hop_s=hop_s, threshold=threshold, t0=t0)
        t1 = time.perf_counter()
        features = self.frontend(fit_clip(samples, self.clip_samples))
        t2 = time.perf_counter()
        probs = self.predict_features(features)
        t3 = time.perf_counter()
        timings = {
            "frontend": (t2 - t1) * 1e3,
            "invoke": (t3 - t2) * 1e3,
            "total": (t3 - t0) * 1e3,
        }
        best = self.top_k(probs, top_k)
        return Prediction(best[0][0], best[0][1], best, timings)

    def classify_file(self, path: str | Path, top_k: int = 3, hop_s: float = 0.5,
                      threshold: float = 0.5) -> Prediction:
        """:meth:`classify` a WAV file; one longer than ``STREAM_AFTER_S`` is scanned as it
        is read, so that memory does not grow with its length."""
        layout, blocks = stream_wav(path)
        if layout.seconds <= STREAM_AFTER_S:
            return self.classify(read_wav(path), top_k=top_k, hop_s=hop_s,
                                 threshold=threshold)
        return self.scan_blocks(resample_blocks(blocks, layout.sample_rate, self.sample_rate),
                                top_k=top_k, hop_s=hop_s, threshold=threshold)

    def window_starts(self, n_samples: int, hop_s: float) -> list[int]:
        hop = max(1, round(hop_s * self.sample_rate))
        last = max(0, n_samples - self.clip_samples)
        starts = list(range(0, last + 1, hop))
        if starts[-1] != last:
            starts.append(last)
        return starts

    def scan(self, samples: np.ndarray, top_k: int = 3, hop_s: float = 0.5,
             threshold: float = 0.5, t0: float | None = None) -> Prediction:
        """Classify 1-s windows every ``hop_s``; keywords above ``threshold`` become
        detections (neighbouring windows with the same label merge into one)."""
        n = self.clip_samples
        windows = ((start, samples[start : start + n])
                   for start in self.window_starts(samples.size, self._hop(hop_s)))
        return self._scan(windows, top_k, threshold, t0)

    def scan_blocks(self, blocks: Iterable[np.ndarray], top_k: int = 3, hop_s: float = 0.5,
                    threshold: float = 0.5) -> Prediction:
        """:meth:`scan` over audio that arrives in blocks (at the model's rate) and is never
        held whole: the same windows, the same answer, memory bounded by the block size."""
        t0 = time.perf_counter()
        return self._scan(self._stream_windows(blocks, round(self._hop(hop_s)
                                                                * self.sample_rate)),
                          top_k, threshold, t0)

    def _hop(self, hop_s: float) -> float:
        if not hop_s > 0:
            raise KwsError("--hop must be > 0 seconds")
        return hop_s

    def _stream_windows(self, blocks: Iterable[np.ndarray], hop: int):
        """(start, window) pairs as :meth:`window_starts` gives them, from blocks."""
        n, hop = self.clip_samples, max(1, hop)
        buffer, offset, start, last_done = np.zeros(0, np.float32), 0, 0, -1
        for block in blocks:
            buffer = np.concatenate((buffer, block))
            while start + n <= offset + buffer.size:
                yield start, buffer[start - offset : start - offset + n]
                last_done, start = start, start + hop
            keep = max(0, min(start, offset + buffer.size - n) - offset)
            buffer, offset = buffer[keep:], offset + keep
        total = offset + buffer.size
        if total < n and last_done < 0:
            yield 0, np.pad(buffer, (0, n - buffer.size))
        elif total - n != last_done:
            yield total - n, buffer[buffer.size - n :]

    def _scan(self, windows, top_k: int, threshold: float, t0: float | None) -> Prediction:
        t0 = time.perf_counter() if t0 is None else t0
        rate, n = self.sample_rate, self.clip_samples
        detections: list[Detection] = []
        best_probs, best_score = None, -1.0
        frontend_s = invoke_s = 0.0
        for start, window in windows:
            ta = time.perf_counter()
            features = self.frontend(window)
            tb = time.perf_counter()
            probs = self.predict_features(features)
            frontend_s += tb - ta
            invoke_s += time.perf_counter() - tb
            i = int(np.argmax(probs))
            label, p = self.labels[i], float(probs[i])
            keyword = label not in BACKGROUND_LABELS
            score = p if keyword else p - 1.0  # any keyword window beats background ones
            if score > best_score:
                best_probs, best_score = probs, score
            if not keyword or p < threshold:
                continue
            begin, end = start / rate, (start + n) / rate
            last = detections[-1] if detections else None
            if last and last.label == label and begin <= last.end_s:
                last.end_s, last.probability = end, max(last.probability, p)
            else:
                detections.append(Detection(begin, end, label, p))
        best = self.top_k(best_probs, top_k)
        timings = {
            "frontend": frontend_s * 1e3,
            "invoke": invoke_s * 1e3,
            "total": (time.perf_counter() - t0) * 1e3,
        }
        return Prediction(best[0][0], best[0][1], best, timings, detections)
