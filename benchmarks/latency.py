"""Latency, cold start, peak memory and size of the float32 and int8 models.

``python -m benchmarks.latency [--int8 M] [--float M] --json`` measures, for each model,
front-end / invoke / end-to-end (WAV samples -> label) medians, p90 and p99 over ``--runs``
runs after warm-up at 1 and 2 interpreter threads; the cold start of a ``kws-edge predict``
process (spawn -> result) and its peak RSS; and the file size. Writes
benchmarks/results/latency.{json,md,png}.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402

from benchmarks.results_io import RESULTS, markdown_table, publish  # noqa: E402
from edge_runtime.bench import measure, test_signal  # noqa: E402
from edge_runtime.model import KwsModel  # noqa: E402
from edge_runtime.wav import write_wav  # noqa: E402

SHIPPED = Path(__file__).resolve().parents[1] / "artifacts"


def predict_process(model: Path, wav: Path) -> tuple[float, float]:
    """(seconds from spawn to result, peak RSS in MB) of one ``kws-edge predict``."""
    cmd = [sys.executable, "-m", "edge_runtime.cli", "predict", str(wav), "--model", str(model)]
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1"}
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env)
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - t0
    proc.stdout.read()
    proc.stdout.close()
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise RuntimeError(f"kws-edge predict failed with status {proc.returncode}")
    return elapsed, usage.ru_maxrss / 1024.0


def bench_model(path: Path, runs: int, starts: int, wav: Path) -> tuple[dict, dict]:
    result: dict = {"path": str(path), "size_bytes": path.stat().st_size}
    raw = {}
    for threads in (1, 2):
        model = KwsModel(path, num_threads=threads)
        m = measure(model, runs=runs, raw=True)
        raw[threads] = m.pop("raw_ms")
        result[f"threads_{threads}"] = m
    for key in ("frontend_ms", "invoke_ms", "end_to_end_ms"):
        result[key] = result["threads_1"][key]
    result["quantization"] = model.manifest.quantization
    predict_process(path, wav)  # warm the page cache: cold start means a fresh process
    cold = [predict_process(path, wav) for _ in range(starts)]
    result["cold_start_s"] = round(float(np.median([c[0] for c in cold])), 4)
    result["peak_rss_mb"] = round(float(np.median([c[1] for c in cold])), 2)
    result["cold_start_runs"] = starts
    return result, raw


def plot(raw: dict, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(13, 4))
    for ax, part in zip(axes, ("frontend", "invoke", "end_to_end"), strict=True):
        data, names = [], []
        for name, by_threads in raw.items():
            for threads, timings in by_threads.items():
                data.append(timings[part])
                names.append(f"{name}\n{threads} thr")
        ax.boxplot(data, showfliers=False)
        ax.set_xticks(range(1, len(names) + 1), names, fontsize=8)
        ax.set_title(f"{part.replace('_', '-')} (ms)")
        ax.grid(alpha=0.3)
    fig.suptitle("kws-edge latency per 1-s clip (boxes: quartiles, whiskers: 1.5 IQR)")
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--int8", type=Path, default=SHIPPED / "kws_int8.tflite")
    parser.add_argument("--float", dest="float32", type=Path,
                        default=SHIPPED / "kws_float32.tflite")
    parser.add_argument("--model", type=Path, help="benchmark only this model")
    parser.add_argument("--runs", type=int, default=500, help="timed runs (>= 200)")
    parser.add_argument("--starts", type=int, default=7, help="process starts for cold start")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    runs = max(200, args.runs)
    models = {"model": args.model} if args.model else {"float32": args.float32,
                                                       "int8": args.int8}
    missing = [str(p) for p in models.values() if not p.is_file()]
    if missing:
        print(f"error: model not found: {', '.join(missing)}", file=sys.stderr)
        return 2
    results, raw = {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "clip.wav"
        first = KwsModel(next(iter(models.values())))
        write_wav(wav, test_signal(first), first.sample_rate)
        for name, path in models.items():
            results[name], raw[name] = bench_model(path, runs, args.starts, wav)
    rows = []
    for name, r in results.items():
        for threads in (1, 2):
            t = r[f"threads_{threads}"]
            rows.append([name, threads, t["frontend_ms"]["median"], t["invoke_ms"]["median"],
                         t["end_to_end_ms"]["median"], t["end_to_end_ms"]["p90"],
                         t["end_to_end_ms"]["p99"],
                         round(t["end_to_end_ms"]["median"] / t["invoke_ms"]["median"], 2),
                         r["cold_start_s"], r["peak_rss_mb"], f"{r['size_bytes']:,}"])
    table = markdown_table(
        ["model", "threads", "front-end ms", "invoke ms", "end-to-end ms", "e2e p90",
         "e2e p99", "e2e / invoke", "cold start s", "peak RSS MB", "bytes"], rows)
    args.out.mkdir(parents=True, exist_ok=True)
    plot(raw, args.out / "latency.png")
    return publish("latency", {"runs": runs, "models": results, **results},
                   f"# Latency (medians over {runs} runs of a 1-s clip)\n\n{table}\n\n"
                   "![latency](latency.png)", table, args.json, args.out)


if __name__ == "__main__":
    raise SystemExit(main())
