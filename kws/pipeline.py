"""``kws pipeline``: data -> features -> train (MLflow) -> convert -> gate -> benchmarks -> report.

``kws pipeline --demo`` makes its own data (synthetic speech from espeak-ng: the library in the
``espeakng-loader`` wheel, or the system binary), so it runs offline on a fresh machine;
``kws pipeline --data DIR`` is the same on a real Speech Commands folder.
A failed gate stops the pipeline with the gate's exit status (3).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import time
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path

from convert.clip_activations import DEFAULT_PERCENTILE
from convert.convert import DEFAULT_CALIBRATION
from convert.gate import DEFAULT_MAX_DROP, DEFAULT_MIN_ACCURACY, GATE_EXIT_STATUS
from edge_runtime.cmdline import field_default, positive_int, seed_int
from edge_runtime.errors import KwsError
from train.cli import (
    add_training_args,
    data_config,
    data_default,
    recipe_fields,
    train_default,
)
from train.data import STANDARD_WORDS
from train.train import TrainConfig

DEMO_UNKNOWN_WORDS = ("bed", "bird", "cat", "dog", "house", "tree", "wow", "happy")
DEMO_BATCH_SIZE = 32
DEMO_DATA = "demo_data"  # the folder in out_dir that --demo synthesizes the data into


@dataclass
class PipelineConfig:
    """The training run (with ``demo``, its data folder is where the data is synthesized;
    the pipeline sets its output folder, tracking store and run name), then the conversion,
    gate and benchmark settings. The data seed also seeds synthesis and calibration."""

    out_dir: Path
    train: TrainConfig
    demo: bool = False
    calibration: int = DEFAULT_CALIBRATION
    clip_percentile: float | None = DEFAULT_PERCENTILE
    unknown_bias: float = 0.0  # added to the _unknown_ logit at conversion (prior correction)
    per_tensor: bool = False  # int8 weights with one scale per tensor (see convert.tflite)
    max_drop: float = DEFAULT_MAX_DROP
    min_accuracy: float = DEFAULT_MIN_ACCURACY
    demo_voices: int = 80  # clips per word in the demo data (one voice each)
    bench_runs: int = 200

    @property
    def data_dir(self) -> Path:
        return self.train.data.data_dir


def log(message: str) -> None:
    print(f"[pipeline] {message}", file=sys.stderr, flush=True)


def make_demo_data(folder: Path, voices: int, seed: int) -> Path:
    """Synthetic Speech-Commands-layout data in ``folder``: the 10 words plus a few unknown
    words, ``voices`` clips of each."""
    from train.espeak import espeak
    from train.synth import SynthConfig, synthesize

    if (folder / "synth_manifest.json").is_file():
        log(f"demo data already at {folder}")
        return folder
    log(f"synthesizing demo speech into {folder} (espeak-ng {espeak().name}, "
        f"{voices} voices)")
    synthesize(SynthConfig(words=tuple(STANDARD_WORDS), unknown_words=DEMO_UNKNOWN_WORDS,
                           out=folder, per_word=voices, seed=seed))
    return folder


def run_benchmarks(models: dict[str, Path], out: Path, runs: int) -> dict:
    """Latency of both models (:func:`benchmarks.latency.measure_latency`), saved into
    ``out``; the per-model figures of the report."""
    from benchmarks.latency import LatencyConfig, measure_latency, save

    data, _ = save(measure_latency(LatencyConfig(int8=models["int8"],
                                                 float32=models["float32"], runs=runs,
                                                 starts=3)), out)
    keys = ("frontend_ms", "invoke_ms", "end_to_end_ms", "cold_start_s", "peak_rss_mb",
            "size_bytes")
    return {name: {k: data["models"][name][k] for k in keys} for name in data["models"]}


def demo_predictions(int8: Path, dataset, n: int = 6) -> list[dict]:
    """Label a few held-out generated clips with the produced int8 model."""
    from edge_runtime.model import KwsModel
    from edge_runtime.wav import read_wav

    model = KwsModel(int8)
    picked = [e for e in dataset.test if e.path is not None][:: max(1, len(dataset.test) // n)]
    out = []
    for example in picked[:n]:
        pred = model.classify(read_wav(example.path))
        out.append({"file": str(example.path), "truth": example.label, "label": pred.label,
                    "probability": round(pred.probability, 4)})
    return out


def log_to_run(tracking_uri: str, run_id: str, out: Path, dataset) -> None:
    """Add the report, the latency table/plot and the data set (``log_input``) to the run."""
    import mlflow
    from mlflow.data.dataset_source_registry import resolve_dataset_source
    from mlflow.data.meta_dataset import MetaDataset

    from convert.registry import mlflow_store

    manifest = dataset.manifest()
    data_dir = Path(manifest["data_dir"])
    source = resolve_dataset_source(str(data_dir.resolve()))
    data = MetaDataset(source, name=data_dir.name, digest=manifest["files_sha256"][:32])
    counts = {f"{split}_clips": str(n) for split, n in manifest["totals"].items()}
    with mlflow_store(tracking_uri), mlflow.start_run(run_id=run_id):
        mlflow.log_input(data, context="training", tags={
            **counts, "files_sha256": manifest["files_sha256"],
            "speakers": json.dumps(manifest["speakers"])})
        for name in ("report.md", "report.json", "benchmarks/latency.md",
                     "benchmarks/latency.json", "benchmarks/latency.png"):
            if (out / name).is_file():
                mlflow.log_artifact(str(out / name), artifact_path="pipeline")


def write_report(report: dict, out: Path) -> Path:
    (out / "report.json").write_text(json.dumps(report, indent=2, default=str) + "\n")
    t, c = report["train"], report["convert"]
    lines = [
        "# kws-edge pipeline report",
        "",
        f"- data: `{report['data']['dir']}` ({report['data']['counts']})",
        f"- MLflow run: `{t['run_id']}` in `{t['tracking_uri']}`",
        f"- model: {t['arch']}, {t['epochs_run']} epochs, {t['seconds_per_epoch']:.1f} s/epoch",
        f"- gate: {c['gate_message']}",
        f"- MLflow Model Registry: {c.get('registered') or 'not registered'}",
        "",
        "| model | test accuracy | size (bytes) | end-to-end ms (median) | invoke ms |",
        "|---|---|---|---|---|",
    ]
    for name in ("keras", "float32", "int8"):
        acc = c["accuracy"].get(name)
        bench = report.get("benchmarks", {}).get(name, {})
        size = bench.get("size_bytes", "")
        e2e = bench.get("end_to_end_ms", {}).get("median", "")
        inv = bench.get("invoke_ms", {}).get("median", "")
        lines.append(f"| {name} | {100 * acc:.2f}% | {size} | {e2e} | {inv} |")
    if report.get("demo_predictions"):
        lines += ["", "Predictions on held-out clips:", ""]
        lines += [f"- `{Path(p['file']).parent.name}/{Path(p['file']).name}` (truth "
                  f"{p['truth']}): {p['label']} {p['probability']}"
                  for p in report["demo_predictions"]]
    lines += ["", f"Total time {report['seconds']:.0f} s."]
    path = out / "report.md"
    path.write_text("\n".join(lines) + "\n")
    return path


def remove_if_empty(folder: Path) -> None:
    """Remove ``folder`` and its sub-folders when no file is in them."""
    if folder.is_dir() and not any(p.is_file() for p in folder.rglob("*")):
        for sub in sorted(folder.rglob("*"), key=lambda p: len(p.parts), reverse=True):
            sub.rmdir()
        folder.rmdir()


def run_pipeline(config: PipelineConfig) -> int:
    """The pipeline; a run folder it made stays only if something was written into it."""
    if config.demo:
        from train.espeak import espeak

        espeak()  # no synthesiser: stop before anything is made
    elif not config.data_dir.is_dir():
        raise KwsError(f"{config.data_dir}: data folder not found (or use --demo)")
    made = not config.out_dir.exists()
    try:
        return _run_pipeline(config)
    finally:
        if made:
            remove_if_empty(config.out_dir)


def _run_pipeline(config: PipelineConfig) -> int:
    from convert.convert import ConvertConfig, convert_model
    from train.data import load_dataset
    from train.tracking import default_tracking_uri
    from train.train import train

    start = time.perf_counter()
    config.out_dir.mkdir(parents=True, exist_ok=True)
    data_dir, seed = config.data_dir, config.train.data.seed
    if config.demo:
        make_demo_data(data_dir, config.demo_voices, seed)
    tracking_uri = config.train.tracking_uri or default_tracking_uri()

    log(f"training {config.train.arch} on {data_dir} (tracked in {tracking_uri})")
    result = train(replace(config.train, out_dir=config.out_dir / "model",
                           tracking_uri=tracking_uri,
                           run_name=f"pipeline-{config.out_dir.name}"))
    log(f"converting and gating (max drop {config.max_drop} points)")
    converted = convert_model(ConvertConfig(
        data_dir=data_dir, keras_path=result.model_dir / "model.keras",
        out_dir=config.out_dir / "models", max_drop=config.max_drop,
        min_accuracy=config.min_accuracy,
        widen_max_drop=config.demo, calibration=config.calibration,
        clip_percentile=config.clip_percentile, unknown_bias=config.unknown_bias,
        per_tensor=config.per_tensor,
        tracking_uri=tracking_uri, seed=seed))
    comparison = converted.comparison
    report: dict = {
        "data": {"dir": str(data_dir), "demo": config.demo},
        "train": {"run_id": result.run_id, "tracking_uri": tracking_uri,
                  "arch": config.train.arch,
                  "model_dir": str(result.model_dir), "epochs_run": result.epochs_run,
                  "seconds_per_epoch": result.seconds_per_epoch,
                  "test_accuracy": result.test_accuracy, "val_accuracy": result.val_accuracy},
        "convert": {"accuracy": {k: r.accuracy for k, r in comparison.reports.items()},
                    "gate": converted.gate.to_dict(), "gate_message": converted.gate.message(),
                    "models": {k: str(p) for k, p in converted.models.items()},
                    "mlflow_run_id": converted.mlflow_run_id,
                    "registered": (converted.registration.to_text()
                                   if converted.registration else None),
                    "reports": {k: str(p) for k, p in converted.reports.items()}},
    }
    dataset = load_dataset(config.train.data.without_train_only())  # the data folder's own
    report["data"]["counts"] = {s: len(dataset.split(s)) for s in ("train", "val", "test")}
    if not converted.passed:
        report["seconds"] = time.perf_counter() - start
        path = write_report(report, config.out_dir)
        log_to_run(tracking_uri, result.run_id, config.out_dir, dataset)
        print(converted.gate.message())
        print(f"error: the int8 model failed the gate; nothing was shipped. Report: {path}",
              file=sys.stderr)
        return GATE_EXIT_STATUS
    log("benchmarking float32 and int8")
    report["benchmarks"] = run_benchmarks(converted.models, config.out_dir / "benchmarks",
                                          config.bench_runs)
    if config.demo:
        report["demo_predictions"] = demo_predictions(converted.models["int8"], dataset)
    report["seconds"] = time.perf_counter() - start
    path = write_report(report, config.out_dir)
    log_to_run(tracking_uri, result.run_id, config.out_dir, dataset)
    print(path.read_text())
    print(f"MLflow run   : {result.run_id}  (mlflow ui --backend-store-uri {tracking_uri})")
    print(f"models       : {config.out_dir / 'models'}")
    print(f"report       : {path} (+ report.json)")
    return 0


def pipeline_config(args: argparse.Namespace) -> PipelineConfig:
    """The pipeline's settings from its command line."""
    if args.demo == (args.data is not None):
        raise KwsError("give either --data DIR or --demo")
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    out = args.out or Path("runs") / f"pipeline-{'demo' if args.demo else 'data'}-{stamp}"
    batch_size = args.batch_size or (DEMO_BATCH_SIZE if args.demo else
                                     train_default("batch_size"))
    train = TrainConfig(data_config(args, out / DEMO_DATA if args.demo else args.data),
                        **recipe_fields(args), batch_size=batch_size,
                        experiment=args.experiment, tracking_uri=args.tracking_uri)
    return PipelineConfig(
        out, train, demo=args.demo, calibration=args.calibration,
        clip_percentile=args.clip_percentile, unknown_bias=args.unknown_bias,
        per_tensor=args.per_tensor,
        max_drop=args.max_drop,
        min_accuracy=args.min_accuracy, demo_voices=args.demo_voices,
        bench_runs=args.bench_runs)


def cmd_pipeline(args: argparse.Namespace) -> int:
    return run_pipeline(pipeline_config(args))


def add_parser(subparsers) -> None:
    from convert.cli import add_conversion_args, add_gate_args

    default = partial(field_default, PipelineConfig)
    p = subparsers.add_parser(
        "pipeline", help="data -> train -> convert -> gate -> benchmarks -> report",
        description="data -> features -> train (MLflow) -> convert -> gate -> registry -> "
                    "benchmarks -> report, on a Speech Commands folder or on speech it "
                    "generates (--demo).")
    p.add_argument("--data", type=Path, help="Speech Commands folder")
    p.add_argument("--demo", action="store_true",
                   help="make synthetic speech and run on it (offline, a few minutes)")
    add_training_args(p)
    p.add_argument("--batch-size", type=positive_int,
                   help=f"examples per batch ({DEMO_BATCH_SIZE} with --demo, else "
                        f"{train_default('batch_size')})")
    add_conversion_args(p)  # --calibration, --clip-percentile/--no-clip, --unknown-bias
    p.add_argument("--experiment", default=train_default("experiment"),
                   help="MLflow experiment of the training run")
    add_gate_args(p)  # --max-drop, --min-accuracy
    p.add_argument("--out", type=Path, help="output folder (runs/pipeline-<time> if not given)")
    p.add_argument("--tracking-uri",
                   help="MLflow tracking URI (sqlite:///mlflow.db here if not given)")
    p.add_argument("--seed", type=seed_int, default=data_default("seed"),
                   help="seed of data, training and synthesis")
    p.add_argument("--demo-voices", type=positive_int, default=default("demo_voices"),
                   help="demo: clips per word (one voice each)")
    p.add_argument("--bench-runs", type=positive_int, default=default("bench_runs"),
                   help="timed runs per model in the latency benchmark")
    p.set_defaults(func=cmd_pipeline)
