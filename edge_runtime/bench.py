"""On-device latency of a model: front-end, interpreter invoke and end to end."""

from __future__ import annotations

import time

import numpy as np

from edge_runtime.model import KwsModel


def percentiles(values_ms: list[float]) -> dict[str, float]:
    arr = np.asarray(values_ms, dtype=np.float64)
    return {
        "median": round(float(np.median(arr)), 4),
        "p90": round(float(np.percentile(arr, 90)), 4),
        "p99": round(float(np.percentile(arr, 99)), 4),
    }


def test_signal(model: KwsModel, seed: int = 0) -> np.ndarray:
    """One clip of speech-like audio (a gliding harmonic tone in noise)."""
    rng = np.random.default_rng(seed)
    n = model.clip_samples
    t = np.arange(n) / model.sample_rate
    voice = np.sin(2 * np.pi * (180 + 80 * t) * t) * np.hanning(n)
    return (0.3 * voice + 0.01 * rng.standard_normal(n)).astype(np.float32)


def measure(model: KwsModel, runs: int = 200, warmup: int = 20, raw: bool = False) -> dict:
    """Medians and tails over ``runs`` after ``warmup``, in milliseconds (``raw``: and
    every timing, under ``"raw_ms"``)."""
    samples = test_signal(model)
    frontend, invoke, total = [], [], []
    for i in range(warmup + runs):
        t0 = time.perf_counter()
        features = model.frontend(samples)
        t1 = time.perf_counter()
        probs = model.predict_features(features)
        model.labels[int(np.argmax(probs))]
        t2 = time.perf_counter()
        if i >= warmup:
            frontend.append((t1 - t0) * 1e3)
            invoke.append((t2 - t1) * 1e3)
            total.append((t2 - t0) * 1e3)
    result = {
        "runs": runs,
        "frontend_ms": percentiles(frontend),
        "invoke_ms": percentiles(invoke),
        "end_to_end_ms": percentiles(total),
    }
    if raw:
        result["raw_ms"] = {"frontend": frontend, "invoke": invoke, "end_to_end": total}
    return result
