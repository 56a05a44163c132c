"""Real-time factor and per-hop latency of the streaming detector.

``python -m benchmarks.streaming [--model M] [--data DIR] [--seconds 120] --json`` feeds
``--seconds`` of audio in ``--chunk-ms`` chunks (20 ms: what a microphone callback delivers)
to :class:`edge_runtime.detector.StreamingDetector` with the shipped int8 model, timing every
``push``. The audio is a stream generated from ``--data``'s clips (keywords among other words
and noise, :mod:`edge_runtime.stream_gen`), or, without ``--data``, a speech-like synthetic
signal. Reports the real-time factor (processing seconds / audio seconds), the latency of
pushes that ran the model (one per detector hop) and of those that did not, and the events.
Writes ``streaming.{json,md,png}`` into ``--out`` (benchmarks/results).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402

from benchmarks.results_io import RESULTS, markdown_table, publish  # noqa: E402
from edge_runtime.bench import percentiles, test_signal  # noqa: E402
from edge_runtime.detector import DetectorConfig, StreamingDetector, model_threshold  # noqa: E402
from edge_runtime.errors import KwsError  # noqa: E402
from edge_runtime.model import KwsModel  # noqa: E402
from edge_runtime.paths import default_model  # noqa: E402

RTF_TARGET = 0.005


def synthetic_audio(model: KwsModel, seconds: float, seed: int = 0) -> np.ndarray:
    """Speech-like clips (:func:`edge_runtime.bench.test_signal`) every 2 s in low noise."""
    rng = np.random.default_rng(seed)
    n = round(seconds * model.sample_rate)
    out = (0.005 * rng.standard_normal(n)).astype(np.float32)
    clip = test_signal(model, seed)
    for start in range(model.sample_rate // 2, n - clip.size, 2 * model.sample_rate):
        out[start : start + clip.size] += clip
    return np.clip(out, -1.0, 1.0)


def stream_audio(model: KwsModel, seconds: float, data: Path | None, seed: int
                 ) -> tuple[np.ndarray, str]:
    if data is None:
        return synthetic_audio(model, seconds, seed), "synthetic speech-like signal"
    from edge_runtime.stream_gen import StreamSpec, generate

    stream = generate(data, StreamSpec(minutes=seconds / 60, seed=seed,
                                       sample_rate=model.sample_rate))
    return stream.samples, f"stream generated from {data} (seed {seed})"


def run(model: KwsModel, audio: np.ndarray, chunk: int, config: DetectorConfig,
        warmup_s: float = 2.0) -> dict:
    """Push ``audio`` chunk by chunk; timings of every push (ms) and whether it ran the model."""
    warm = StreamingDetector(model, config)
    for start in range(0, min(audio.size, round(warmup_s * model.sample_rate)), chunk):
        warm.push(audio[start : start + chunk])
    detector = StreamingDetector(model, config, record=True)
    push_ms, ran_model, events = [], [], []
    cpu0 = time.process_time()
    for start in range(0, audio.size, chunk):
        piece = audio[start : start + chunk]
        hops = len(detector.times)
        t0 = time.perf_counter()
        events += detector.push(piece)
        push_ms.append((time.perf_counter() - t0) * 1e3)
        ran_model.append(len(detector.times) > hops)
    return {"push_ms": push_ms, "ran_model": ran_model, "events": events,
            "hops": len(detector.times), "cpu_seconds": time.process_time() - cpu0}


def plot(push_ms: np.ndarray, ran_model: np.ndarray, out: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4))
    top = float(np.percentile(push_ms, 99.9)) * 1.1
    bins = np.linspace(0.0, top, 60)
    ax.hist(np.clip(push_ms[~ran_model], 0, top), bins=bins, alpha=0.7,
            label="front-end only")
    ax.hist(np.clip(push_ms[ran_model], 0, top), bins=bins, alpha=0.7,
            label="front-end + model (one per hop)")
    ax.set_xlabel("processing time of one chunk push (ms)")
    ax.set_ylabel("pushes")
    ax.set_yscale("log")
    ax.legend()
    ax.grid(alpha=0.3)
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", type=Path, help="TFLite model (default: the shipped int8)")
    parser.add_argument("--data", type=Path, help="Speech Commands folder to build audio from")
    parser.add_argument("--seconds", type=float, default=120.0, help="audio length (>= 60)")
    parser.add_argument("--chunk-ms", type=float, default=20.0)
    parser.add_argument("--hop-ms", type=float, default=DetectorConfig.hop_ms)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    try:
        path = args.model or default_model()
        if not Path(path).is_file():
            raise KwsError(f"model not found: {path}")
        if args.seconds < 60 or args.chunk_ms <= 0:
            raise KwsError("need --seconds >= 60 and --chunk-ms > 0")
        model = KwsModel(path, num_threads=args.threads)
        config = DetectorConfig(hop_ms=args.hop_ms, threshold=model_threshold(model))
        audio, source = stream_audio(model, args.seconds, args.data, args.seed)
    except KwsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    chunk = max(1, round(model.sample_rate * args.chunk_ms / 1000))
    r = run(model, audio, chunk, config)
    push_ms = np.asarray(r["push_ms"])
    ran = np.asarray(r["ran_model"], dtype=bool)
    audio_s = audio.size / model.sample_rate
    rtf = float(push_ms.sum() / 1e3 / audio_s)
    result = {
        "model": str(path), "quantization": model.manifest.quantization,
        "audio": source, "audio_seconds": round(audio_s, 3),
        "chunk_ms": args.chunk_ms, "chunks": int(push_ms.size), "threads": args.threads,
        "detector": {"hop_ms": config.hop_ms, "smooth_ms": config.smooth_ms,
                     "threshold": config.threshold, "refractory_ms": config.refractory_ms},
        "rtf": round(rtf, 6), "rtf_target": RTF_TARGET, "meets_target": rtf <= RTF_TARGET,
        # CPU seconds of this process per audio second: unaffected by time the OS gave
        # other processes (the wall-clock RTF above is not, on a shared machine)
        "rtf_cpu": round(r["cpu_seconds"] / audio_s, 6),
        "processing_seconds": round(float(push_ms.sum() / 1e3), 4),
        "hops": r["hops"],
        "hop_latency_ms": percentiles(push_ms[ran]) if ran.any() else None,
        "chunk_latency_ms": percentiles(push_ms),
        "frontend_only_chunk_ms": percentiles(push_ms[~ran]) if (~ran).any() else None,
        "max_push_ms": round(float(push_ms.max()), 4),
        "events": len(r["events"]),
        "events_per_label": {lb: sum(e.label == lb for e in r["events"])
                             for lb in sorted({e.label for e in r["events"]})},
    }
    hop = result["hop_latency_ms"] or {"median": "n/a", "p99": "n/a"}
    table = markdown_table(
        ["model", "audio s", "chunk ms", "RTF (wall)", "RTF (CPU)", "hop median ms",
         "hop p99 ms", "chunk median ms", "max push ms", "events"],
        [[Path(path).name, result["audio_seconds"], args.chunk_ms, f"{rtf:.5f}",
          f"{result['rtf_cpu']:.5f}",
          hop["median"], hop["p99"], result["chunk_latency_ms"]["median"],
          result["max_push_ms"], result["events"]]])
    args.out.mkdir(parents=True, exist_ok=True)
    plot(push_ms, ran, args.out / "streaming.png",
         f"{Path(path).name}: {push_ms.size} pushes of {args.chunk_ms:g} ms, RTF {rtf:.5f}")
    text = (f"# Streaming detector: real-time factor\n\n{source}, {result['audio_seconds']} s "
            f"fed in {args.chunk_ms:g} ms chunks, {args.threads} interpreter thread(s); "
            f"detector hop {config.hop_ms:g} ms. RTF = processing s / audio s (target "
            f"<= {RTF_TARGET}): wall-clock time of the pushes, and CPU time of the process "
            "(which leaves out time the OS gave to other processes); a hop push runs the "
            f"front-end and the model.\n\n{table}\n\n"
            "![per-push latency](streaming.png)")
    return publish("streaming", result, text, table, args.json, args.out)


if __name__ == "__main__":
    raise SystemExit(main())
