"""The conversion job: a trained Keras model -> float32 + int8 (+ dynamic) TFLite, compared,
gated, with manifests and a report, logged to MLflow.

Files are written to a staging folder first; only a model that passes the gate is moved to
``out_dir/<name>_<quantization>.tflite``; a refused one goes to
``<out_dir>-rejected/<name>-<stamp>/`` beside it, so a failed gate never writes into ``out_dir``.
A model already in ``out_dir`` is only replaced with ``force``, and even then its files are
moved to ``<out_dir>-replaced/<name>-<stamp>/`` first: no conversion loses a model.
"""

from __future__ import annotations

import datetime as dt
import math
import shutil
import sys
import tempfile
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from convert.clip_activations import DEFAULT_PERCENTILE, clip_to_relu6
from convert.compare import ClipSet, Comparison, compare_models, evaluate_keras
from convert.gate import (
    DEFAULT_MAX_DROP,
    DEFAULT_MIN_ACCURACY,
    GateResult,
    check_max_drop,
    check_min_accuracy,
    check_test_size,
    min_test_clips,
)
from convert.logit_offset import check_offset, shift_logit
from convert.registry import Registration, keras_folder, register, test_split_sha256
from convert.report import write_report
from convert.tflite import (
    normalize,
    op_names,
    quantized_tensors,
    to_tflite,
    unfolded_batchnorm,
)
from edge_runtime.dataset import UNKNOWN
from edge_runtime.errors import KwsError
from edge_runtime.manifest import manifest_path_for, write_manifest
from edge_runtime.model import KwsModel

DEFAULT_CALIBRATION = 500
EXPERIMENT = "kws-convert"


@dataclass
class ConvertConfig:
    """What ``kws convert`` does; exactly one of ``keras_path``, ``run_id`` and ``model_uri``
    is set."""

    data_dir: Path
    keras_path: Path | None = None
    run_id: str | None = None
    model_uri: str | None = None  # models:/NAME@ALIAS, runs:/RUN/model_dir, ...
    out_dir: Path = Path("artifacts")
    name: str = "kws"
    max_drop: float = DEFAULT_MAX_DROP
    min_accuracy: float = DEFAULT_MIN_ACCURACY
    force: bool = False  # replace models already in out_dir (they are moved aside first)
    # a test split too small for max_drop raises max_drop to one clip's worth (logged)
    # instead of being refused: for demos on a few hundred generated clips
    widen_max_drop: bool = False
    calibration: int = DEFAULT_CALIBRATION
    # each ReLU clipped at this percentile of its calibration outputs, as a ReLU6 (finer
    # int8 steps; see convert.clip_activations); None: the ReLUs as trained
    clip_percentile: float | None = DEFAULT_PERCENTILE
    # added to the _unknown_ logit before conversion (see convert.logit_offset); 0: as trained
    unknown_bias: float = 0.0
    # (label, offset) pairs added to those classes' logits as well (convert.logit_offset)
    logit_offsets: tuple[tuple[str, float], ...] = ()
    # int8 weights with one scale per tensor instead of per output channel (smaller files for
    # networks of many narrow layers; see convert.tflite.to_tflite)
    per_tensor: bool = False
    dynamic: bool = False
    tracking_uri: str | None = None
    seed: int = 0
    mlflow: bool = True
    register: bool = True  # a model that passes the gate becomes a registry version

    def __post_init__(self) -> None:
        sources = (self.keras_path, self.run_id, self.model_uri)
        if sum(s is not None for s in sources) != 1:
            raise KwsError("give exactly one of --keras PATH, --run RUN_ID and --model-uri URI")
        if self.calibration <= 0:
            raise KwsError("--calibration must be > 0")
        if self.clip_percentile is not None and not 50 <= self.clip_percentile <= 100:
            raise KwsError(f"--clip-percentile must be within 50-100, got "
                           f"{self.clip_percentile}")
        if not self.name or "/" in self.name:
            raise KwsError(f"--name {self.name!r}: need a plain file-name stem")
        self.unknown_bias = check_offset(self.unknown_bias)
        self.logit_offsets = tuple((label, check_offset(b, f"the {label} logit offset"))
                                   for label, b in self.logit_offsets)
        self.max_drop = check_max_drop(self.max_drop)
        self.min_accuracy = check_min_accuracy(self.min_accuracy)

    @property
    def quantizations(self) -> list[str]:
        return ["float32", "int8"] + (["dynamic"] if self.dynamic else [])

    def outputs(self) -> list[str]:
        """The names of the models, manifests and reports written into ``out_dir``."""
        models = [f"{self.name}_{q}.tflite" for q in self.quantizations]
        return [*models, *(m.replace(".tflite", ".manifest.json") for m in models),
                f"{self.name}_report.json", f"{self.name}_report.md"]


@dataclass
class ConvertResult:
    """Where the files went, the comparison and the gate's verdict."""

    gate: GateResult
    comparison: Comparison
    folder: Path  # out_dir when passed, the rejected folder otherwise
    models: dict[str, Path]  # quantization -> .tflite path (in ``folder``)
    reports: dict[str, Path]
    mlflow_run_id: str | None = None
    notes: dict = field(default_factory=dict)
    registration: Registration | None = None

    @property
    def passed(self) -> bool:
        return self.gate.passed


def rejected_dir(out_dir: Path) -> Path:
    """Where models refused by the gate go: beside ``out_dir``, never inside it."""
    return out_dir.parent / f"{out_dir.name}-rejected"


def replaced_dir(out_dir: Path) -> Path:
    """Where ``--force`` moves the files it replaces: beside ``out_dir``."""
    return out_dir.parent / f"{out_dir.name}-replaced"


def existing_outputs(config: ConvertConfig) -> list[Path]:
    return [config.out_dir / n for n in config.outputs() if (config.out_dir / n).exists()]


def check_no_overwrite(config: ConvertConfig) -> None:
    """Without ``force``, refuse to convert into an ``out_dir`` that holds this model."""
    existing = existing_outputs(config)
    if existing and not config.force:
        raise KwsError(f"{existing[0]} exists: give --force to replace it (the old files are "
                       f"moved to {replaced_dir(config.out_dir)}/), or another --out or --name")


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def tracking_uri(config: ConvertConfig) -> str:
    """``--tracking-uri``, else the training runs' default store (``./mlflow.db``)."""
    from train.tracking import default_tracking_uri

    return config.tracking_uri or default_tracking_uri()


def model_folder(config: ConvertConfig, scratch: Path) -> tuple[Path, str | None]:
    """(the folder holding model.keras + model_settings.json, the MLflow run it came from);
    downloaded for ``--run`` and ``--model-uri``."""
    if config.model_uri is not None:
        return keras_folder(config.model_uri, tracking_uri(config), scratch)
    if config.run_id is not None:
        import mlflow

        try:
            path = mlflow.artifacts.download_artifacts(
                run_id=config.run_id, artifact_path="model_dir",
                tracking_uri=tracking_uri(config), dst_path=str(scratch))
        except Exception as exc:  # mlflow raises MlflowException, OSError, ...
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise KwsError(f"run {config.run_id}: cannot download model_dir ({first})") from None
        return Path(path), config.run_id
    path = Path(config.keras_path)
    folder = path.parent if path.suffix == ".keras" else path
    if not (folder / "model.keras").is_file():
        raise KwsError(f"{path}: no model.keras there")
    return folder, None


def stratified(labels: list[str], n: int, seed: int) -> list[int]:
    """Indices of ``n`` items (all if fewer): each class in proportion to its share (largest
    remainders), at least one per class when ``n`` allows, chosen at random with ``seed``."""
    if n >= len(labels):
        return list(range(len(labels)))
    by_class: dict[str, list[int]] = {}
    for i, label in enumerate(labels):
        by_class.setdefault(label, []).append(i)
    classes = sorted(by_class)
    quota = {c: n * len(by_class[c]) / len(labels) for c in classes}
    take = {c: int(quota[c]) for c in classes}
    by_remainder = sorted(classes, key=lambda c: quota[c] - take[c], reverse=True)
    for c in by_remainder[: n - sum(take.values())]:
        take[c] += 1
    if n >= len(classes):
        for c in classes:
            if take[c] == 0:
                take[max(classes, key=take.__getitem__)] -= 1
                take[c] = 1
    rng = np.random.default_rng(seed)
    chosen = [int(i) for c in classes
              for i in rng.choice(by_class[c], size=take[c], replace=False)]
    return sorted(chosen)


def calibration_features(dataset, frontend, n: int, seed: int) -> np.ndarray:
    """``n`` training examples (stratified by class, seeded) through the shared front-end."""
    from train.features import compute_features

    train = dataset.split("train")
    if not train:
        raise KwsError("the training split is empty: nothing to calibrate int8 on")
    picked = [train[i] for i in stratified([e.label for e in train], n, seed)]
    return compute_features(dataset, picked, frontend)


def split_clips(dataset, frontend, split: str = "test") -> ClipSet:
    """The clips of one split (the test split unless told) as waveforms at the front-end's
    rate."""
    from train.data import load_waveforms

    examples = dataset.split(split)
    if not examples:
        raise KwsError(f"the {split} split is empty: nothing to evaluate on")
    waves = load_waveforms(dataset, examples, frontend.sample_rate, frontend.clip_samples)
    return ClipSet([dataset.example_id(e) for e in examples], [e.label for e in examples],
                   waves)


def convert_model(config: ConvertConfig) -> ConvertResult:
    """Convert, evaluate, gate and file a trained model (see the module docstring)."""
    from train.data import load_dataset
    from train.settings import ModelSettings

    check_no_overwrite(config)  # before minutes of work
    from train.writable import check_writable_dir

    for folder in (config.out_dir, config.out_dir.parent):  # staging is made beside --out
        check_writable_dir(folder)
    with tempfile.TemporaryDirectory(prefix="kws-convert-") as scratch:
        folder, from_run = model_folder(config, Path(scratch))
        try:
            settings = ModelSettings.load(folder)
        except FileNotFoundError:
            raise KwsError(f"{folder}: no model_settings.json beside model.keras") from None
        from train.models import load_keras

        keras_model = load_keras(folder)
    source_run = from_run or settings.run_id
    # the training-only folders (synthetic, extra speech) are left out: the test split does
    # not depend on them
    dataset = load_dataset(settings.data.split_config(config.data_dir))
    trained_on = settings.data.files_sha256
    if trained_on and dataset.manifest()["files_sha256"] != trained_on:
        log(f"warning: {config.data_dir} does not give the splits the model was trained on: "
            "its test accuracy may include training clips")
    if list(dataset.labels) != list(settings.labels):
        raise KwsError(f"{config.data_dir}: labels {dataset.labels} differ from the model's "
                       f"{settings.labels}")
    if config.unknown_bias:
        shift_logit(keras_model, settings.labels, UNKNOWN, config.unknown_bias)
        log(f"{UNKNOWN} logit shifted by {config.unknown_bias:+g} (prior correction)")
    for label, offset in config.logit_offsets:
        shift_logit(keras_model, settings.labels, label, offset)
    if config.logit_offsets:
        log("logits shifted (prior correction): " + ", ".join(
            f"{label} {offset:+g}" for label, offset in config.logit_offsets))

    if dataset.skipped_files:
        from train.data_checks import skipped_message

        log("warning: " + skipped_message(dataset))
    n_test = len(dataset.split("test"))
    if config.widen_max_drop and 0 < n_test < min_test_clips(config.max_drop):
        widened = math.ceil(10000 / n_test) / 100  # one clip, in points, rounded up
        log(f"warning: {n_test} test clips cannot resolve a {config.max_drop:g}-point drop: "
            f"gating at {widened:g} points (one clip)")
        config.max_drop = widened
    check_test_size(n_test, config.max_drop)
    log(f"calibration: {config.calibration} training examples, stratified, seed {config.seed}")
    calib = calibration_features(dataset, settings.frontend, config.calibration, config.seed)

    config.out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = config.out_dir.parent / (
        f".{config.out_dir.name}-{config.name}-staging-{uuid.uuid4().hex[:8]}")
    staging.mkdir()
    try:
        result = _convert_into(staging, config, settings, keras_model, dataset, calib,
                               source_run)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    result = _file_away(result, staging, config)
    if config.mlflow:
        result.mlflow_run_id = log_to_mlflow(result, config, source_run)
        if result.passed and config.register:
            result.registration = register(
                result, result.mlflow_run_id, tracking_uri(config), dataset.config.task,
                dataset.manifest()["files_sha256"], test_split_sha256(dataset))
            log(f"registered: {result.registration.to_text()}")
    return result


def prepared_for_tflite(keras_model, calib: np.ndarray, clip_percentile: float | None,
                        say=log) -> tuple[object, dict, np.ndarray, bool]:
    """What the converter does to a trained model before TFLite: the leading feature
    normalisation taken out (it goes into the manifest as ``feature_norm``, and the calibration
    features are normalised) and, with ``clip_percentile``, each ReLU clipped as a rescaled
    ReLU6. Returns the model to convert, ``feature_norm``, the calibration features and
    whether the ReLUs were clipped."""
    from train.models.common import split_normalization

    core, feature_norm = split_normalization(keras_model)
    if feature_norm:
        say("normalisation layer moved out of the model into the manifest (feature_norm)")
        calib = normalize(calib, feature_norm)
    if clip_percentile is None:
        return core, feature_norm, calib, False
    clipped = clip_to_relu6(core, calib, clip_percentile)
    if clipped is None:
        say("ReLUs not clipped: the model is not a chain of layers (after a weightless "
            "head at most) with a ReLU after a BatchNorm; converted as trained")
        return core, feature_norm, calib, False
    say(f"ReLUs clipped at the {clip_percentile:g}th percentile of their calibration outputs "
        "(ReLU6, rescaled)")
    return clipped, feature_norm, calib, True


def _convert_into(staging: Path, config: ConvertConfig, settings, keras_model, dataset,
                  calib: np.ndarray, source_run: str | None) -> ConvertResult:
    quantizations = config.quantizations
    paths: dict[str, Path] = {}
    notes: dict = {"calibration_examples": int(len(calib)), "calibration_seed": config.seed}
    if config.unknown_bias:
        notes["unknown_bias"] = config.unknown_bias
    if config.logit_offsets:
        notes["logit_offsets"] = dict(config.logit_offsets)
    if config.per_tensor:
        notes["per_tensor_weights"] = True
    core, feature_norm, calib, clipped = prepared_for_tflite(keras_model, calib,
                                                             config.clip_percentile)
    if clipped:
        notes["clip_percentile"] = config.clip_percentile
    from tqdm import tqdm

    for quant in tqdm(quantizations, desc="convert", unit=" models", disable=None, leave=False):
        log(f"converting to {quant}")
        content = to_tflite(core, quant, calib if quant == "int8" else None,
                            per_tensor=config.per_tensor)
        unfolded = unfolded_batchnorm(content)
        if unfolded:
            raise RuntimeError(f"{quant}: BatchNorm not folded into {unfolded}")
        if quant == "float32" and quantized_tensors(content):
            raise RuntimeError("the float32 model has quantised tensors")
        path = staging / f"{config.name}_{quant}.tflite"
        path.write_bytes(content)
        paths[quant] = path
        notes[f"ops_{quant}"] = op_names(content)
    manifest_fields = {"labels": list(settings.labels), "frontend": settings.frontend,
                       "arch": settings.arch, "source_run_id": source_run,
                       "feature_norm": feature_norm}
    for quant, path in paths.items():
        write_manifest(path, quantization=quant, **manifest_fields)

    test = split_clips(dataset, settings.frontend)
    log(f"evaluating keras on {len(test)} test clips")
    keras_report = evaluate_keras(keras_model, settings.labels, settings.frontend, test)
    models = {quant: KwsModel(path) for quant, path in paths.items()}
    comparison = compare_models(models, test, config.max_drop, extra={"keras": keras_report},
                                progress=log, min_accuracy=config.min_accuracy)
    comparison.data = str(config.data_dir)
    accuracy = {name: round(r.accuracy, 6) for name, r in comparison.reports.items()}
    accuracy["n_test"] = comparison.n
    for quant, path in paths.items():
        write_manifest(path, quantization=quant, accuracy=accuracy,
                       notes={**notes, "ops": notes[f"ops_{quant}"],
                              "gate": comparison.gate.to_dict()}, **manifest_fields)
    reports = write_report(comparison, staging, config.name)
    return ConvertResult(comparison.gate, comparison, staging, paths, reports, notes=notes)


def _file_away(result: ConvertResult, staging: Path, config: ConvertConfig) -> ConvertResult:
    """Move staged files into ``out_dir`` (gate passed) or ``<out_dir>-rejected/…``."""
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    if result.passed:
        target = config.out_dir
        target.mkdir(parents=True, exist_ok=True)
        _move_aside(sorted(target / p.name for p in staging.iterdir()), config, staging, stamp)
        for item in sorted(staging.iterdir()):
            item.replace(target / item.name)
        staging.rmdir()
    else:
        target = (rejected_dir(config.out_dir)
                  / f"{config.name}-{stamp}-{staging.name[-8:]}")
        target.parent.mkdir(parents=True, exist_ok=True)
        staging.replace(target)

    def moved(p: Path) -> Path:
        return target / p.name

    result.folder = target
    result.models = {k: moved(p) for k, p in result.models.items()}
    result.reports = {k: moved(p) for k, p in result.reports.items()}
    return result


def _move_aside(targets: list[Path], config: ConvertConfig, staging: Path, stamp: str) -> None:
    """Move the files about to be replaced to ``replaced_dir`` (only with ``force``)."""
    existing = [p for p in targets if p.exists()]
    if not existing:
        return
    if not config.force:  # appeared while converting
        raise KwsError(f"{existing[0]} appeared while converting: the new files are left in "
                       f"{staging}; give --force to replace it")
    backup = replaced_dir(config.out_dir) / f"{config.name}-{stamp}-{staging.name[-8:]}"
    backup.mkdir(parents=True)
    for path in existing:
        path.replace(backup / path.name)
    log(f"replaced files moved to {backup}")


def log_to_mlflow(result: ConvertResult, config: ConvertConfig, source_run: str | None) -> str:
    """Log metrics, tags and files into the source run (or a new ``kws-convert`` run)."""
    import mlflow
    from mlflow.exceptions import MlflowException

    mlflow.set_tracking_uri(tracking_uri(config))
    run_id = None
    if source_run:
        try:
            run_id = mlflow.get_run(source_run).info.run_id
        except MlflowException:
            if config.run_id:
                raise KwsError(f"run {source_run}: not found in the tracking store") from None
            log(f"run {source_run} is not in this tracking store: logging to a new run "
                f"in experiment {EXPERIMENT!r}")
    if run_id is None:
        mlflow.set_experiment(EXPERIMENT)
    c = result.comparison
    with mlflow.start_run(run_id=run_id) as run:
        metrics = {f"convert_{k}_accuracy": r.accuracy for k, r in c.reports.items()}
        metrics.update({f"convert_{k}_size_bytes": float(v) for k, v in c.sizes.items()})
        metrics["convert_drop_points"] = result.gate.drop_points
        metrics["convert_agreement_float32_int8"] = c.agreement_float_int8
        mlflow.log_metrics(metrics)
        mlflow.set_tags({
            "convert.gate": "passed" if result.passed else "failed",
            "convert.max_drop": str(config.max_drop),
            "convert.calibration": str(config.calibration),
            "convert.unknown_bias": str(config.unknown_bias),
            "convert.logit_offsets": str(dict(config.logit_offsets)),
            "convert.per_tensor": str(config.per_tensor),
            "convert.source_run_id": source_run or "",
            "convert.folder": str(result.folder),
        })
        files = [*result.models.values(), *map(manifest_path_for, result.models.values()),
                 *result.reports.values()]
        artifact_path = "tflite" if result.passed else "tflite_rejected"
        for path in files:
            mlflow.log_artifact(str(path), artifact_path=artifact_path)
        if run_id is None and config.keras_path is not None:  # so the run can be reconverted
            from train.train import MODEL_DIR_ARTIFACT

            keras = Path(config.keras_path)
            mlflow.log_artifacts(str(keras.parent if keras.suffix == ".keras" else keras),
                                 artifact_path=MODEL_DIR_ARTIFACT)
        return run.info.run_id
