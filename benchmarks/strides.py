"""What the live detector's invoke stride (``DetectorConfig.hop_ms``) costs and buys.

For each stride: the real-time factor (processing seconds per second of audio, wall clock
and CPU) of :class:`StreamingDetector` fed 20 ms chunks, and the detection delay: how long
after the end of a labelled keyword's clip the event comes out (the end of the window that
fired; negative when the word is detected before its 1-s clip is over).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from benchmarks.pipelines import shown
from benchmarks.streaming import run, synthetic_audio
from edge_runtime.detector import DetectorConfig, Event, model_threshold
from edge_runtime.manifest import BACKGROUND_LABELS
from edge_runtime.model import KwsModel

TOLERANCE_S = 0.5  # as edge_runtime.stream_score.evaluate_stream


def stream(model: KwsModel, data: Path | None, seconds: float, seed: int = 0
           ) -> tuple[np.ndarray, list[tuple[float, float, str]], str]:
    """Audio, its labelled keywords and a description: generated from ``data``'s clips of
    the model's keywords, else a synthetic signal (no keywords)."""
    keywords = tuple(k for k in model.labels
                     if k not in BACKGROUND_LABELS and data is not None and (data / k).is_dir())
    if not keywords:
        return synthetic_audio(model, seconds, seed), [], "synthetic speech-like signal"
    from edge_runtime.stream_gen import StreamSpec, generate

    g = generate(data, StreamSpec(minutes=seconds / 60, seed=seed, keywords=keywords,
                                  sample_rate=model.sample_rate))
    return g.samples, g.keyword_rows(), f"stream generated from {shown(data)} (seed {seed})"


def delays_s(events: list[Event], rows: list[tuple[float, float, str]], window_s: float
             ) -> list[float]:
    """For each labelled keyword detected: first matching event's window end - clip end."""
    out = []
    for start, end, label in rows:
        hits = [e.time_s for e in events
                if e.label == label and start - TOLERANCE_S <= e.time_s <= end + TOLERANCE_S]
        if hits:
            out.append(min(hits) + window_s / 2 - end)
    return out


def stride_sweep(model: KwsModel, audio: np.ndarray, rows: list[tuple[float, float, str]],
                 strides_ms: list[float], chunk_ms: float = 20.0) -> list[dict]:
    """One entry per stride: RTF (wall, CPU), invokes per second, detection delay."""
    fe = model.manifest.frontend
    chunk = round(model.sample_rate * chunk_ms / 1000)
    audio_s = audio.size / model.sample_rate
    out = []
    for hop_ms in strides_ms:
        r = run(model, audio, chunk,
                DetectorConfig(hop_ms=hop_ms, threshold=model_threshold(model)))
        delays = np.asarray(delays_s(r["events"], rows, fe.clip_ms / 1000)) * 1e3
        out.append({
            "hop_ms": hop_ms,
            "rtf": round(float(np.sum(r["push_ms"])) / 1e3 / audio_s, 6),
            "rtf_cpu": round(r["cpu_seconds"] / audio_s, 6),
            "invokes_per_s": round(r["hops"] / audio_s, 2),
            "keywords": len(rows), "detected": int(delays.size), "events": len(r["events"]),
            "delay_ms": ({"median": round(float(np.median(delays)), 1),
                          "p90": round(float(np.percentile(delays, 90)), 1)}
                         if delays.size else None),
        })
    return out


def strides_for(model: KwsModel, default_ms: float) -> list[float]:
    """1, 2, 5 and 10 front-end hops, and the detector's default."""
    hop = model.manifest.frontend.hop_ms
    return sorted({hop * k for k in (1, 2, 5, 10)} | {default_ms})
