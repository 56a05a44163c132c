"""NumPy front-end vs librosa: speed, agreement, and the cost of a streaming hop.

``python -m benchmarks.frontend --json`` prints one JSON object (medians in ms over
``--runs`` runs of 1 s of audio after warm-up) for the two MFCC presets and the log-mel
one, and writes benchmarks/results/frontend.*.
Each configuration must equal librosa to within ``PARITY`` (1e-3): ``matches_librosa``.
"""

from __future__ import annotations

import argparse
import os
import time
import warnings
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402

from benchmarks.results_io import RESULTS, markdown_table, publish  # noqa: E402
from edge_runtime.frontend import (  # noqa: E402
    EDGE_FRONTEND,
    LOG_MEL_FRONTEND,
    SEED_FRONTEND,
    Frontend,
    FrontendConfig,
    StreamingFrontend,
)

PARITY = 1e-3  # the largest difference from librosa allowed


def librosa_mfcc(y: np.ndarray, c: FrontendConfig) -> np.ndarray:
    """``librosa.feature.mfcc`` (or the log-mel under it) with ``c``'s settings, (frames, n)."""
    import librosa

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        mel = librosa.feature.melspectrogram(
            y=y, sr=c.sample_rate, n_fft=c.n_fft, hop_length=c.hop_length,
            win_length=c.win_length, window="hann", center=False, power=2.0,
            n_mels=c.n_mels, fmin=c.fmin, fmax=c.fmax, htk=False, norm="slaney",
        )
    log_mel = librosa.power_to_db(mel, ref=1.0, amin=c.log_floor, top_db=None)
    if c.features == "log_mel":
        return log_mel.T
    return librosa.feature.mfcc(S=log_mel, n_mfcc=c.n_mfcc, dct_type=2, norm="ortho").T


def median_ms(fn, runs: int, warmup: int = 10) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times) * 1e3)


def test_audio(config: FrontendConfig, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(config.clip_samples) / config.sample_rate
    voice = sum(np.sin(2 * np.pi * k * (140 + 40 * t) * t) / k for k in range(1, 6))
    return (0.2 * voice + 0.01 * rng.standard_normal(t.size)).astype(np.float32)


def bench_config(config: FrontendConfig, runs: int) -> dict:
    y = test_audio(config)
    frontend = Frontend(config)
    numpy_ms = median_ms(lambda: frontend(y), runs)
    librosa_ms = median_ms(lambda: librosa_mfcc(y, config), runs)
    diff = float(np.abs(frontend(y) - librosa_mfcc(y, config)).max())
    stream = StreamingFrontend(config)
    hop = config.hop_length
    stream.push(y)  # a full window of history, as in steady-state streaming
    position = [0]

    def one_hop() -> None:
        start = position[0] % (y.size - hop)
        stream.push(y[start : start + hop])
        position[0] += hop

    hop_ms = median_ms(one_hop, runs * 5)
    return {
        "numpy_ms": round(numpy_ms, 4),
        "librosa_ms": round(librosa_ms, 4),
        "speedup_vs_librosa": round(librosa_ms / numpy_ms, 2),
        "max_abs_diff_vs_librosa": diff,
        "matches_librosa": diff <= PARITY,
        "streaming_ms_per_hop": round(hop_ms, 4),
        "batch_ms_per_window": round(numpy_ms, 4),
        "hop_cost_vs_window": round(hop_ms / numpy_ms, 3),
        "features": config.features,
        "feature_shape": list(config.feature_shape),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=300, help="timed runs (>= 100)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--json", action="store_true", help="print the JSON object")
    args = parser.parse_args(argv)
    runs = max(100, args.runs)
    frames, mels = LOG_MEL_FRONTEND.feature_shape
    configs = {"edge_49x10": EDGE_FRONTEND, "seed_99x40": SEED_FRONTEND,
               f"log_mel_{frames}x{mels}": LOG_MEL_FRONTEND}
    per_config = {name: bench_config(c, runs) for name, c in configs.items()}
    result = {**per_config["edge_49x10"], "config": "edge_49x10", "runs": runs,
              "configs": per_config}
    rows = [[name, r["features"], r["numpy_ms"], r["librosa_ms"], f"{r['speedup_vs_librosa']}x",
             f"{r['max_abs_diff_vs_librosa']:.1e}"
             + ("" if r["matches_librosa"] else f" (**over {PARITY:g}**)"),
             r["streaming_ms_per_hop"],
             f"{r['hop_cost_vs_window']:.2f}"] for name, r in per_config.items()]
    table = markdown_table(
        ["config", "features", "numpy ms", "librosa ms", "speed-up", "max abs diff",
         "stream ms/hop", "hop / window"], rows)
    return publish("frontend", result, "# Front-end: NumPy vs librosa, MFCC and log-mel "
                   "(medians, 1 s of audio, "
                   f"{runs} runs)\n\n" + table, table, args.json, args.out)


if __name__ == "__main__":
    raise SystemExit(main())
