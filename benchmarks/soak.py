"""Soak test of the streaming detector: one minute of audio repeated for an hour, fed as fast
as the CPU allows in 100 ms hops.

    python -m benchmarks.soak --minutes 60 --json [--model M] [--data DIR]

The minute comes from ``edge_runtime.stream_gen`` (Speech Commands clips at known times) when
a data folder is found, else from synthetic tones and noise bursts. Because the detector is
causal and the minute is a whole number of hops, the long run must reproduce the single
minute's events exactly in its first minute, and every later minute must repeat the second
minute's events shifted by 60 s (the second minute is the first one with the previous
minute's tail in its history). Also reported: per-hop latency (median of the first and the
last ten minutes, and their ratio: drift means a leak or growing work) and this process's
resident memory after the first minute and at the end. Writes benchmarks/results/soak.*.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402

from benchmarks.load import rss_kb, test_clips  # noqa: E402
from benchmarks.results_io import markdown_table, write_results  # noqa: E402
from edge_runtime.bench import percentiles  # noqa: E402
from edge_runtime.detector import (  # noqa: E402
    DetectorConfig,
    Event,
    StreamingDetector,
    chunk_samples,
    model_threshold,
)
from edge_runtime.errors import KwsError  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
MINUTE_S = 60


def default_data() -> Path | None:
    env = os.environ.get("KWS_DATA_DIR")
    path = Path(env) if env else ROOT.parent / "shared" / "data" / "speech_commands_mini"
    return path if path.is_dir() else None


def one_minute(sample_rate: int, data: Path | None, seed: int = 0) -> tuple[np.ndarray, str]:
    """60 s of test audio and where it came from."""
    if data is not None:
        from edge_runtime.stream_gen import StreamSpec, generate

        stream = generate(data, StreamSpec(minutes=1, seed=seed, sample_rate=sample_rate))
        return stream.samples, f"stream_gen over {data.name} (seed {seed})"
    n = MINUTE_S * sample_rate
    rng = np.random.default_rng(seed)
    minute = (0.003 * rng.standard_normal(n)).astype(np.float32)
    for i, (_, clip) in enumerate(test_clips(sample_rate, 30, seed)):
        minute[i * 2 * sample_rate : i * 2 * sample_rate + clip.size] = clip
    return minute, "synthetic tones, glides and noise bursts every 2 s"


def _same(a: list[Event], b: list[Event], shift_s: float) -> bool:
    return len(a) == len(b) and all(
        x.label == y.label and abs(x.time_s + shift_s - y.time_s) < 1e-6
        and abs(x.probability - y.probability) < 1e-6 for x, y in zip(a, b, strict=True))


def run_soak(model, minute: np.ndarray, minutes: int = 60,
             config: DetectorConfig | None = None) -> dict:
    """Feed ``minute`` ``minutes`` times; the figures and the invariants' outcomes."""
    config = config or DetectorConfig()
    rate = model.sample_rate
    if minute.size != MINUTE_S * rate:
        raise KwsError(f"need exactly {MINUTE_S} s of audio, got {minute.size / rate:g} s")
    if minutes < 3:
        raise KwsError("--minutes must be at least 3")
    hop = chunk_samples(config, rate)
    if minute.size % hop:
        raise KwsError("a minute must be a whole number of hops")
    single = StreamingDetector(model, config)
    reference = [e for i in range(0, minute.size, hop) for e in single.push(minute[i : i + hop])]

    detector = StreamingDetector(model, config)
    per_minute: list[list[Event]] = [[] for _ in range(minutes + 1)]
    hop_ms: list[float] = []
    rss = []
    t_start = time.perf_counter()
    for _ in range(minutes):
        for i in range(0, minute.size, hop):
            t0 = time.perf_counter()
            events = detector.push(minute[i : i + hop])
            hop_ms.append((time.perf_counter() - t0) * 1e3)
            for e in events:
                # minute k holds the windows that start in it (centre - half a clip)
                start_s = e.time_s - model.clip_samples / rate / 2
                per_minute[int(start_s // MINUTE_S + 1e-9)].append(e)
        rss.append(rss_kb(os.getpid()))
    wall = time.perf_counter() - t_start
    total = sum(len(x) for x in per_minute)
    repeats_ok = all(_same(per_minute[1], per_minute[k], (k - 1) * MINUTE_S)
                     for k in range(2, minutes))
    hops_per_minute = minute.size // hop
    span = min(10, minutes // 3) * hops_per_minute
    first, last = float(np.median(hop_ms[:span])), float(np.median(hop_ms[-span:]))
    return {
        "minutes": minutes,
        "threshold": config.threshold,
        "hops": len(hop_ms),
        "events_single_minute": len(reference),
        "events_first_minute": len(per_minute[0]),
        "events_steady_minute": len(per_minute[1]),
        "events_total": total,
        "events_expected": len(reference) + (minutes - 1) * len(per_minute[1]),
        "first_minute_matches_single_run": _same(reference, per_minute[0], 0.0),
        "later_minutes_repeat_exactly": repeats_ok,
        "hop_ms": percentiles(hop_ms),
        "hop_ms_median_first_last": [round(first, 4), round(last, 4)],
        "latency_drift_ratio": round(last / first, 3),
        "window_minutes": span // hops_per_minute,
        "rss_kb": {"after_first_minute": rss[0], "end": rss[-1], "peak": max(rss)},
        "rss_growth_pct": round(100 * (rss[-1] - rss[0]) / rss[0], 2),
        "wall_s": round(wall, 1),
        "realtime_factor": round(minutes * MINUTE_S / wall, 1),
        "labels_fired": sorted({e.label for e in reference}),
    }


def to_markdown(result: dict, source: str, model: str) -> str:
    lat, rss = result["hop_ms"], result["rss_kb"]
    rows = [
        ["audio", f"{result['minutes']} min ({result['hops']:,} hops of 100 ms), {source}"],
        ["wall time / faster than real time",
         f"{result['wall_s']} s / {result['realtime_factor']}x"],
        ["events: single minute / first / steady minute / total (expected)",
         f"{result['events_single_minute']} / {result['events_first_minute']} / "
         f"{result['events_steady_minute']} / {result['events_total']} "
         f"({result['events_expected']})"],
        ["first minute = single run; later minutes repeat exactly",
         f"{result['first_minute_matches_single_run']}; {result['later_minutes_repeat_exactly']}"],
        ["per-hop latency p50 / p90 / p99 (ms)", f"{lat['median']} / {lat['p90']} / {lat['p99']}"],
        [f"median per-hop latency, first / last {result['window_minutes']} min (ms)",
         " / ".join(map(str, result["hop_ms_median_first_last"]))],
        ["latency drift (last / first)", result["latency_drift_ratio"]],
        ["RSS after 1 min / end / peak (MiB)",
         f"{rss['after_first_minute'] / 1024:.1f} / {rss['end'] / 1024:.1f} / "
         f"{rss['peak'] / 1024:.1f}"],
        ["RSS growth", f"{result['rss_growth_pct']}%"],
    ]
    return (f"# Streaming soak test\n\n`python -m benchmarks.soak --minutes {result['minutes']}"
            f" --json`, model `{model}`, default detector settings at the model's threshold "
            f"({result['threshold']:g}).\n\n"
            + markdown_table(["", "value"], rows))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, help="default: the shipped model")
    parser.add_argument("--minutes", type=int, default=60)
    parser.add_argument("--data", type=Path, help="Speech Commands folder (default: shared)")
    parser.add_argument("--synthetic", action="store_true", help="ignore the data folder")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.add_argument("--no-write", action="store_true", help="do not write results/")
    args = parser.parse_args(argv)
    try:
        from edge_runtime.model import KwsModel
        from edge_runtime.paths import default_model

        model = KwsModel(args.model or default_model())
        data = None if args.synthetic else (args.data or default_data())
        minute, source = one_minute(model.sample_rate, data)
        result = run_soak(model, minute, args.minutes,
                          DetectorConfig(threshold=model_threshold(model)))
    except KwsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    result = {"model": str(model.path), "source": source, **result}
    markdown = to_markdown(result, source, model.path.name)
    if not args.no_write:
        result = write_results("soak", result, markdown)
    print(json.dumps(result, indent=2) if args.json else markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
