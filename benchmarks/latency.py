"""Latency of kws-edge beside the pipelines users would run instead; cold start, memory, size.

``python -m benchmarks.latency --json`` measures, in one run:

* the pipelines (:mod:`benchmarks.pipelines`) ``kws_edge`` (int8), ``kws_edge_float32``,
  ``librosa`` and ``tf_signal`` (skipped, saying so, without ``--mlperf``'s folder) on the
  same real clips (``--data``) at the same interpreter thread count: front-end / invoke /
  end-to-end (samples -> label) medians and p99 over ``--runs`` runs, taking turns clip by
  clip, and the bare interpreter invoke;
* for each kws-edge model: the same at 1 and 2 threads on a synthetic clip, the cold start of
  a ``kws-edge predict`` process (spawn -> result) and its peak RSS (the child's alone, see
  :mod:`benchmarks.child_usage`), and the file size;
* the live detector with the shipped model (:mod:`benchmarks.strides`): real-time factor on
  one core at its default invoke stride and others, and each stride's detection delay;

and the targets as ratios from that same run. Writes benchmarks/results/latency.{json,md,png}.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field, fields
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402

from benchmarks import pipelines as pl  # noqa: E402
from benchmarks import strides  # noqa: E402
from benchmarks.reference import INT8_FILE, reference_dir  # noqa: E402
from benchmarks.results_io import RESULTS, markdown_table, write_results  # noqa: E402
from edge_runtime.bench import measure, test_signal  # noqa: E402
from edge_runtime.detector import DetectorConfig, model_threshold  # noqa: E402
from edge_runtime.errors import KwsError  # noqa: E402
from edge_runtime.model import KwsModel  # noqa: E402
from edge_runtime.wav import write_wav  # noqa: E402

SHIPPED = Path(__file__).resolve().parents[1] / "artifacts"
LAUNCHER = Path(__file__).resolve().parent / "child_usage.py"
TARGETS = {  # name: (goal, True when the value must be at least the goal)
    "speedup_vs_librosa": (4.0, True),
    "speedup_vs_tf_signal": (10.0, True),
    "end_to_end_vs_bare_invoke": (2.0, False),
    "streaming_rtf": (0.005, False),
    "cold_start_s": (0.5, False),
    "peak_rss_mb": (80.0, False),
}


def predict_process(model: Path, wav: Path) -> tuple[float, float, float]:
    """(seconds from spawn to result, its CPU seconds, peak RSS in MB) of one
    ``kws-edge predict``."""
    cmd = [sys.executable, "-S", str(LAUNCHER), sys.executable, "-m", "edge_runtime.cli",
           "predict", str(wav), "--model", str(model)]
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1"}
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    try:
        usage = json.loads(done.stdout.strip().splitlines()[-1])
    except (IndexError, json.JSONDecodeError):
        usage = {"status": None}
    if done.returncode != 0 or usage["status"] != 0:
        last = (done.stderr.strip().splitlines() or ["no message"])[-1]
        raise RuntimeError(f"kws-edge predict failed with status {usage['status']}: {last}")
    return usage["seconds"], usage["cpu_seconds"], usage["maxrss_kb"] / 1024.0


def bench_model(path: Path, runs: int, starts: int, wav: Path) -> dict:
    result: dict = {"path": pl.shown(path), "size_bytes": path.stat().st_size}
    for threads in (1, 2):
        model = KwsModel(path, num_threads=threads)
        result[f"threads_{threads}"] = measure(model, runs=runs)
    for key in ("frontend_ms", "invoke_ms", "end_to_end_ms"):
        result[key] = result["threads_1"][key]
    result["quantization"] = model.manifest.quantization
    predict_process(path, wav)  # warm the page cache: cold start means a fresh process
    cold = [predict_process(path, wav) for _ in range(starts)]
    result["cold_start_s"] = round(float(np.median([c[0] for c in cold])), 4)
    result["cold_start_cpu_s"] = round(float(np.median([c[1] for c in cold])), 4)
    result["peak_rss_mb"] = round(float(np.median([c[2] for c in cold])), 2)
    result["cold_start_runs"] = starts
    return result


def build_pipelines(models: dict[str, Path], threads: int, mlperf: Path | None
                    ) -> tuple[list[pl.Pipeline], dict[str, str]]:
    """The pipelines to time, and a message for each one skipped."""
    shipped = KwsModel(models["int8"], num_threads=threads)
    out = [pl.kws_edge_pipeline("kws_edge", shipped, "kws-edge NumPy front-end + LiteRT"),
           pl.kws_edge_pipeline("kws_edge_float32",
                                KwsModel(models["float32"], num_threads=threads),
                                "kws-edge NumPy front-end + LiteRT, float32 model"),
           pl.librosa_pipeline(KwsModel(models["int8"], num_threads=threads))]
    skipped = {}
    if mlperf is not None and (mlperf / INT8_FILE).is_file():
        out += pl.tf_signal_pipelines(mlperf, threads)
    else:
        where = pl.shown(mlperf / INT8_FILE) if mlperf else "../shared/models/mlperf_tiny_kws"
        skipped["tf_signal"] = f"skipped: the MLPerf Tiny reference model {where} is not there"
    return out, skipped


def targets(pipes: dict, stream: dict, shipped: dict) -> dict:
    """Each target's goal, measured value (wall clock; ``cpu``: from CPU times) and whether
    it is met (None: not measured)."""
    edge = pipes["kws_edge"]

    def ratio(a: dict, part_a: str, b: dict, part_b: str) -> tuple[float | None, ...]:
        if f"{part_a}_ms" not in a:
            return None, None
        return (round(a[f"{part_a}_ms"] / b[f"{part_b}_ms"], 2),
                round(a["cpu_ms"][part_a] / max(b["cpu_ms"][part_b], 1e-9), 2))

    values = {
        "speedup_vs_librosa": ratio(pipes.get("librosa", {}), "end_to_end", edge, "end_to_end"),
        "speedup_vs_tf_signal": ratio(pipes.get("tf_signal", {}), "end_to_end", edge,
                                      "end_to_end"),
        "end_to_end_vs_bare_invoke": ratio(edge, "end_to_end", edge, "bare_invoke"),
        "streaming_rtf": (stream["rtf"], stream["rtf_cpu"]),
        "cold_start_s": (shipped["cold_start_s"], shipped["cold_start_cpu_s"]),
        "peak_rss_mb": (shipped["peak_rss_mb"], None),
    }
    out = {}
    for name, (goal, at_least) in TARGETS.items():
        entry = {"goal": goal, "at_least": at_least}
        for key, v in zip(("value", "cpu"), values[name], strict=True):
            entry[key] = v
            entry[f"met{'' if key == 'value' else '_cpu'}"] = (
                None if v is None else (v >= goal if at_least else v <= goal))
        out[name] = entry
    return out


def plot(pipes: dict, out: Path, title: str) -> None:
    """One bar per pipeline (not the informational ones): end-to-end median, stacked
    front-end / invoke medians."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [n for n, p in pipes.items() if "end_to_end_ms" in p and not p.get("informational")]
    front = np.array([pipes[n]["frontend_ms"] for n in names])
    invoke = np.array([pipes[n]["invoke_ms"] for n in names])
    fig, ax = plt.subplots(figsize=(8, 4.5))
    ax.bar(names, front, label="front-end")
    ax.bar(names, invoke, bottom=front, label="invoke (quantise, run, read out)")
    for i, n in enumerate(names):
        ax.annotate(f"{pipes[n]['end_to_end_ms']:.3g} ms", (i, front[i] + invoke[i]),
                    ha="center", va="bottom", fontsize=9)
    ax.set_ylabel("median ms per 1-s clip (samples -> label)")
    ax.set_title(title, fontsize=9)
    ax.legend()
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


def markdown(data: dict) -> tuple[str, str]:
    """(the whole report, the targets table printed without --json)."""
    pipes, s = data["pipelines"], data["streaming"]
    edge = pipes["kws_edge"]["end_to_end_ms"]
    rows = [[name, f"`{p['model']}`", p["frontend_ms"], p["invoke_ms"], p["end_to_end_ms"],
             p["p99_ms"]["end_to_end"], p["cpu_ms"]["end_to_end"], p["bare_invoke_ms"],
             f"{p['end_to_end_ms'] / edge:.1f}x",
             "n/a" if p["clips_correct"] is None else f"{p['clips_correct']}/{data['clips']['n']}"]
            for name, p in pipes.items() if "end_to_end_ms" in p]
    pipe_table = markdown_table(
        ["pipeline", "model", "front-end ms", "invoke ms", "end-to-end ms", "e2e p99 ms",
         "e2e CPU ms", "bare invoke ms", "e2e vs kws_edge", "clips right"], rows)
    notes = "\n".join(f"* `{name}`: {p.get('description', p.get('skipped'))}"
                      for name, p in pipes.items())
    status = {True: "met", False: "**not met**", None: "n/a"}
    target_rows = [[name.replace("_", " "), ("≥ " if t["at_least"] else "≤ ") + f"{t['goal']:g}",
                    t["value"], status[t["met"]], "n/a" if t["cpu"] is None else t["cpu"],
                    status[t["met_cpu"]]] for name, t in data["targets"].items()]
    target_table = markdown_table(["target", "goal", "measured (wall clock)", "status",
                                   "from CPU time", "status (CPU)"], target_rows)
    stride_rows = [[f"{r['hop_ms']:g}" + (" (default)" if r["hop_ms"] == s["default_hop_ms"]
                                          else ""), r["invokes_per_s"], f"{r['rtf']:.5f}",
                    f"{r['rtf_cpu']:.5f}", f"{r['detected']}/{r['keywords']}",
                    (r["delay_ms"] or {}).get("median", "n/a"),
                    (r["delay_ms"] or {}).get("p90", "n/a")] for r in s["strides"]]
    stride_table = markdown_table(
        ["invoke stride ms", "invokes/s", "RTF (wall)", "RTF (CPU)", "keywords detected",
         "delay median ms", "delay p90 ms"], stride_rows)
    model_rows = []
    for name, r in data["models"].items():
        for threads in (1, 2):
            t = r[f"threads_{threads}"]
            model_rows.append([name, threads, t["frontend_ms"]["median"],
                               t["invoke_ms"]["median"], t["end_to_end_ms"]["median"],
                               t["end_to_end_ms"]["p99"], r["cold_start_s"], r["peak_rss_mb"],
                               f"{r['size_bytes']:,}"])
    model_table = markdown_table(
        ["model", "threads", "front-end ms", "invoke ms", "end-to-end ms", "e2e p99",
         "cold start s", "peak RSS MB", "bytes"], model_rows)
    load = data["load_average"]
    text = f"""# Latency: kws-edge beside the pipelines users would run instead

All figures from one run: {data['clips']['source']}; {data['threads']} interpreter
thread(s) everywhere (TensorFlow's own thread pools too); medians and p99 over {data['runs']}
runs per pipeline after warm-up, the pipelines taking turns in blocks of {pl.BLOCK} clips. End to
end = 1 s of float samples -> label; invoke = quantise, run the interpreter, read out (after
the front-end, as in use); bare invoke = the interpreter's invoke alone, in a tight loop; e2e
CPU = CPU time of the process for end to end. Load average (1, 5, 15 min) at the start / end:
{load['start']} / {load['end']}: other jobs on the machine slow every pipeline alike, the
ratios are what to read.

{pipe_table}

{notes}

![end to end per pipeline](latency.png)

## Targets (ratios from this run; shipped model `{data['shipped']}`)

Measured from wall-clock medians as above, and from the CPU-time medians of the same runs
(the child process's CPU time for the cold start), which leave out the time the OS gave other
processes: on a loaded machine the steadier reading.

{target_table}

## The live detector: cost per second of audio and the invoke stride

{s['audio']}, {s['audio_seconds']} s fed in {s['chunk_ms']:g} ms chunks to the streaming
detector with `{s['model']}` on 1 thread (smoothing {s['smooth_ms']:g} ms, threshold
{s['threshold']:g}). RTF = processing s / audio s. Delay = when the event comes out (end of
the window that fired) minus the end of the keyword's 1-s clip; a longer stride adds up to
one stride of waiting before a window is scored.

{stride_table}

## kws-edge models at 1 and 2 threads (synthetic clip)

Cold start: `kws-edge predict` process spawn -> result (median of {data['starts']}); peak RSS
of that process alone.

{model_table}
"""
    return text, target_table


@dataclass
class LatencyConfig:
    """What :func:`measure_latency` times; ``main``'s options, with the same defaults."""

    int8: Path = SHIPPED / "kws_int8.tflite"
    float32: Path = SHIPPED / "kws_float32.tflite"
    runs: int = 500  # timed runs (at least MIN_RUNS)
    starts: int = 7  # process starts for the cold start
    threads: int = 1  # interpreter threads
    data: Path | None = None  # clips to time on (default pipelines.DATA_DIR when there)
    clips_per_label: int = 2
    mlperf: Path | None = field(default_factory=reference_dir)
    stream_seconds: float = 300.0


MIN_RUNS = 200


def measure_latency(config: LatencyConfig) -> dict:
    """Everything the module docstring lists, as the results dict; bad input: KwsError."""
    runs = max(MIN_RUNS, config.runs)
    models = {"int8": config.int8, "float32": config.float32}
    data_dir = config.data or (pl.DATA_DIR if pl.DATA_DIR.is_dir() else None)
    missing = [str(p) for p in models.values() if not p.is_file()]
    if missing:
        raise KwsError(f"model not found: {', '.join(missing)}")
    if data_dir is not None and not data_dir.is_dir():
        raise KwsError(f"{data_dir}: data folder not found")
    if min(config.threads, config.starts, config.clips_per_label) < 1 \
            or config.stream_seconds < 10:
        raise KwsError("need --threads, --starts, --clips-per-label >= 1 and "
                       "--stream-seconds >= 10")
    shipped = KwsModel(config.int8)
    KwsModel(config.float32)
    clips, truth, source = pl.load_clips(data_dir, config.clips_per_label, shipped)
    audio, rows, audio_source = strides.stream(shipped, data_dir, config.stream_seconds)
    load_start = [round(x, 2) for x in os.getloadavg()]
    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "clip.wav"
        write_wav(wav, test_signal(shipped), shipped.sample_rate)
        per_model = {name: bench_model(path, runs, config.starts, wav)
                     for name, path in models.items()}
    pipes, skipped = build_pipelines(models, config.threads, config.mlperf)
    for message in skipped.values():
        print(f"tf_signal {message}", file=sys.stderr)
    times = pl.time_pipelines(pipes, clips, runs)
    results = {p.name: pl.summarise(p, {**times[p.name], **pl.bare_invoke_ms(p, runs)},
                                    clips, truth) for p in pipes}
    # fed the features the model was trained on, the librosa pipeline labels alike
    results["librosa"]["same_labels_as_kws_edge"] = (
        results["librosa"]["predicted"] == results["kws_edge"]["predicted"])
    results.update({name: {"skipped": m} for name, m in skipped.items()})
    detector = DetectorConfig(threshold=model_threshold(shipped))
    sweep = strides.stride_sweep(shipped, audio, rows,
                                 strides.strides_for(shipped, detector.hop_ms))
    at_default = next(r for r in sweep if r["hop_ms"] == detector.hop_ms)
    return {
        "runs": runs, "threads": config.threads, "starts": config.starts,
        "shipped": pl.shown(config.int8),
        "clips": {"source": source, "n": len(clips)},
        "pipelines": results,
        "streaming": {"model": pl.shown(config.int8), "audio": audio_source,
                      "audio_seconds": round(audio.size / shipped.sample_rate, 2),
                      "chunk_ms": 20.0, "threads": 1, "default_hop_ms": detector.hop_ms,
                      "smooth_ms": detector.smooth_ms, "threshold": detector.threshold,
                      "rtf": at_default["rtf"], "rtf_cpu": at_default["rtf_cpu"],
                      "strides": sweep},
        "targets": targets(results, at_default, per_model["int8"]),
        "models": per_model, **per_model,
        "load_average": {"start": load_start, "end": [round(x, 2) for x in os.getloadavg()]},
    }


def save(data: dict, out: Path) -> tuple[dict, str]:
    """Write ``latency.{json,md,png}`` into ``out``: (the data as written, the targets
    table)."""
    out.mkdir(parents=True, exist_ok=True)
    plot(data["pipelines"], out / "latency.png",
         f"End to end per 1-s clip, {data['threads']} thread(s), {data['clips']['n']} clips, "
         f"medians of {data['runs']} runs")
    text, table = markdown(data)
    return write_results("latency", data, text, out), table


def main(argv: list[str] | None = None) -> int:
    defaults = LatencyConfig()
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--int8", type=Path, default=defaults.int8,
                        help="the shipped model (default: artifacts/kws_int8.tflite)")
    parser.add_argument("--float", dest="float32", type=Path, default=defaults.float32)
    parser.add_argument("--runs", type=int, default=defaults.runs,
                        help=f"timed runs (>= {MIN_RUNS})")
    parser.add_argument("--starts", type=int, default=defaults.starts,
                        help="process starts for cold start")
    parser.add_argument("--threads", type=int, default=defaults.threads,
                        help="interpreter threads")
    parser.add_argument("--data", type=Path, help="clips to time on and to build the stream "
                        "from (default ../shared/data/speech_commands_mini when there)")
    parser.add_argument("--clips-per-label", type=int, default=defaults.clips_per_label)
    parser.add_argument("--mlperf", type=Path, default=defaults.mlperf,
                        help="MLPerf Tiny reference folder (default ../shared/models/"
                        "mlperf_tiny_kws or $KWS_REFERENCE_DIR)")
    parser.add_argument("--stream-seconds", type=float, default=defaults.stream_seconds)
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    config = LatencyConfig(**{f.name: getattr(args, f.name) for f in fields(LatencyConfig)})
    try:
        data = measure_latency(config)
    except KwsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    data, table = save(data, args.out)
    print(json.dumps(data, indent=2) if args.json else table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
