"""Keras vs float32 TFLite vs int8 TFLite on one test set, through the edge runtime's own code.

TFLite models run through :class:`edge_runtime.model.KwsModel` (``predict_samples``: the
front-end and interpreter that run on the device); Keras gets the same front-end's features.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from convert.gate import (
    DEFAULT_MAX_DROP,
    DEFAULT_MIN_ACCURACY,
    GateResult,
    check_gate,
    check_max_drop,
    check_test_size,
)
from edge_runtime.dataset import label_of, test_clips
from edge_runtime.errors import KwsError
from edge_runtime.evaluate import EvalReport
from edge_runtime.frontend import Frontend, FrontendConfig
from edge_runtime.model import KwsModel
from edge_runtime.wav import fit_clip, load_audio


@dataclass
class ClipSet:
    """Clips as fixed-length waveforms at the model's rate, with their true labels."""

    rels: list[str]
    truths: list[str]
    waveforms: np.ndarray  # (N, clip_samples) float32
    skipped: dict[str, int] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.rels)


def folder_test_set(data_dir: str | Path, labels: Sequence[str],
                    config: FrontendConfig) -> ClipSet:
    """``data_dir``'s test split (testing_list.txt, else every clip) for ``labels``."""
    rels, truths, waves, skipped = [], [], [], {}
    for clip in test_clips(data_dir):
        truth = label_of(clip, list(labels))
        if truth is None:
            skipped["no matching label"] = skipped.get("no matching label", 0) + 1
            continue
        try:
            audio = load_audio(clip.path, config.sample_rate)
        except KwsError:
            skipped["unreadable"] = skipped.get("unreadable", 0) + 1
            continue
        rels.append(clip.rel)
        truths.append(truth)
        waves.append(fit_clip(audio.samples, config.clip_samples))
    if not rels:
        raise KwsError(f"{data_dir}: no test clip has one of the model's labels")
    return ClipSet(rels, truths, np.stack(waves).astype(np.float32), skipped)


def report_of(test: ClipSet, labels: Sequence[str], predicted: Sequence[int]) -> EvalReport:
    """An :class:`EvalReport` from predicted class indices, one per test clip."""
    labels = list(labels)
    index = {lab: i for i, lab in enumerate(labels)}
    confusion = np.zeros((len(labels), len(labels)), dtype=np.int64)
    report = EvalReport(labels, confusion, dict(test.skipped))
    for rel, truth, guess in zip(test.rels, test.truths, predicted, strict=True):
        confusion[index[truth], int(guess)] += 1
        report.predictions.append((rel, truth, labels[int(guess)]))
    return report


def evaluate_tflite(model: KwsModel, test: ClipSet) -> EvalReport:
    """Accuracy of a TFLite model, clip by clip through ``KwsModel.predict_samples``."""
    from tqdm import tqdm

    waves = tqdm(test.waveforms, desc=f"evaluate {model.path.name}", unit=" clips",
                 disable=None, leave=False)  # a bar on a terminal only
    predicted = [int(np.argmax(model.predict_samples(w))) for w in waves]
    return report_of(test, model.labels, predicted)


def evaluate_keras(keras_model, labels: Sequence[str], config: FrontendConfig,
                   test: ClipSet, batch: int = 256) -> EvalReport:
    """Accuracy of a Keras model on the edge front-end's features of the test clips."""
    from tqdm import tqdm

    frontend = Frontend(config)
    shape = tuple(keras_model.input_shape[1:])
    predicted: list[int] = []
    for start in tqdm(range(0, len(test), batch), desc="evaluate keras", unit=" batches",
                      disable=None, leave=False):
        features = frontend(test.waveforms[start : start + batch])
        probs = keras_model.predict_on_batch(features.reshape(-1, *shape))
        predicted.extend(int(i) for i in np.argmax(np.asarray(probs), axis=-1))
    return report_of(test, labels, predicted)


def agreement(a: EvalReport, b: EvalReport) -> float:
    """Fraction of clips on which two models predict the same label."""
    same = sum(pa[2] == pb[2] for pa, pb in zip(a.predictions, b.predictions, strict=True))
    return same / max(1, len(a.predictions))


@dataclass
class Comparison:
    """Reports of several models on one test set, and the float32 -> int8 gate."""

    labels: list[str]
    reports: dict[str, EvalReport]  # "keras", "float32", "int8", "dynamic"
    sizes: dict[str, int]  # bytes of each file
    gate: GateResult
    data: str = ""
    models: dict[str, str] = field(default_factory=dict)  # name -> path

    @property
    def n(self) -> int:
        return self.reports["int8"].n

    @property
    def agreement_float_int8(self) -> float:
        return agreement(self.reports["float32"], self.reports["int8"])

    def drop_points(self, name: str) -> float:
        """Accuracy lost by ``name`` against the float32 TFLite model, in points."""
        return 100.0 * (self.reports["float32"].accuracy - self.reports[name].accuracy)

    def to_dict(self) -> dict:
        return {
            "data": self.data,
            "n": self.n,
            "labels": self.labels,
            "models": self.models,
            "accuracy": {k: round(r.accuracy, 6) for k, r in self.reports.items()},
            "drop_points_vs_float32": {k: round(self.drop_points(k), 4) for k in self.reports},
            "agreement_float32_int8": round(self.agreement_float_int8, 6),
            "size_bytes": self.sizes,
            "gate": self.gate.to_dict(),
            "reports": {k: r.to_dict() for k, r in self.reports.items()},
        }


def check_compatible(models: dict[str, KwsModel]) -> list[str]:
    """The labels of ``models`` (float32, int8, ...), which must agree with their front-ends."""
    for needed in ("float32", "int8"):
        if needed not in models:
            raise KwsError(f"the comparison needs a {needed} model")
    labels = models["float32"].labels
    for model in models.values():
        if model.labels != labels:
            raise KwsError(f"{model.path}: labels differ from the float32 model's")
        if model.manifest.frontend != models["float32"].manifest.frontend:
            raise KwsError(f"{model.path}: front-end differs from the float32 model's")
    return labels


def compare_models(models: dict[str, KwsModel], test: ClipSet,
                   max_drop: float = DEFAULT_MAX_DROP,
                   extra: dict[str, EvalReport] | None = None,
                   progress: Callable[[str], None] | None = None,
                   min_accuracy: float = DEFAULT_MIN_ACCURACY) -> Comparison:
    """Evaluate TFLite ``models`` (must hold "float32" and "int8") and gate the int8 drop.

    ``extra`` reports (e.g. "keras") come first in the comparison.
    """
    labels = check_compatible(models)
    reports = dict(extra or {})
    for name, model in models.items():
        if progress:
            progress(f"evaluating {name} ({model.path.name}) on {len(test)} clips")
        reports[name] = evaluate_tflite(model, test)
    gate = check_gate(reports["float32"].accuracy, reports["int8"].accuracy, max_drop,
                      min_accuracy)
    sizes = {name: model.manifest.size_bytes for name, model in models.items()}
    paths = {name: str(model.path) for name, model in models.items()}
    return Comparison(labels, reports, sizes, gate, models=paths)


def compare_files(float_path: Path, int8_path: Path, data_dir: Path,
                  max_drop: float = DEFAULT_MAX_DROP,
                  progress: Callable[[str], None] | None = None,
                  min_accuracy: float = DEFAULT_MIN_ACCURACY) -> Comparison:
    """``kws compare``: two TFLite files on ``data_dir``'s test split (no Keras)."""
    check_max_drop(max_drop)
    models = {"float32": KwsModel(float_path), "int8": KwsModel(int8_path)}
    check_compatible(models)
    test = folder_test_set(data_dir, models["float32"].labels, models["float32"].manifest.frontend)
    check_test_size(len(test), max_drop)  # the gate must be able to see the drop
    comparison = compare_models(models, test, max_drop, progress=progress,
                                min_accuracy=min_accuracy)
    comparison.data = str(data_dir)
    return comparison
