"""Accuracy, per-class accuracy and confusion matrix of a model on a Speech Commands folder."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edge_runtime.dataset import Clip, label_of, test_clips
from edge_runtime.errors import KwsError
from edge_runtime.model import KwsModel
from edge_runtime.wav import load_audio


@dataclass
class EvalReport:
    labels: list[str]
    confusion: np.ndarray  # rows: true label, columns: predicted label
    skipped: dict[str, int] = field(default_factory=dict)
    predictions: list[tuple[str, str, str]] = field(default_factory=list)  # rel, true, predicted

    @property
    def n(self) -> int:
        return int(self.confusion.sum())

    @property
    def accuracy(self) -> float:
        return float(np.trace(self.confusion) / max(1, self.n))

    def per_class(self) -> dict[str, float | None]:
        totals = self.confusion.sum(axis=1)
        return {
            lab: (float(self.confusion[i, i] / totals[i]) if totals[i] else None)
            for i, lab in enumerate(self.labels)
        }

    def to_dict(self) -> dict:
        return {
            "n": self.n,
            "accuracy": round(self.accuracy, 6),
            "per_class_accuracy": {
                k: (None if v is None else round(v, 6)) for k, v in self.per_class().items()
            },
            "labels": self.labels,
            "confusion": self.confusion.tolist(),
            "skipped": self.skipped,
        }

    def to_text(self) -> str:
        lines = [f"accuracy {self.accuracy:.4f} on {self.n} clips"]
        if self.skipped:
            lines.append("skipped: " + ", ".join(f"{k} {v}" for k, v in self.skipped.items()))
        width = max(len(x) for x in self.labels) + 1
        lines.append("per class:")
        for lab, acc in self.per_class().items():
            lines.append(f"  {lab:<{width}} " + ("n/a" if acc is None else f"{acc:.3f}"))
        lines.append("confusion (rows true, columns predicted):")
        lines.append(" " * (width + 2) + " ".join(f"{x[:5]:>5}" for x in self.labels))
        for lab, row in zip(self.labels, self.confusion, strict=True):
            lines.append(f"  {lab:<{width}} " + " ".join(f"{v:>5}" for v in row))
        return "\n".join(lines)


def evaluate_clips(
    clips: Iterable[Clip],
    labels: list[str],
    sample_rate: int,
    predict: Callable[[np.ndarray], np.ndarray],
) -> EvalReport:
    """Run ``predict`` (samples -> probabilities) over clips; unreadable clips are counted."""
    index = {lab: i for i, lab in enumerate(labels)}
    confusion = np.zeros((len(labels), len(labels)), dtype=np.int64)
    report = EvalReport(labels, confusion)
    for clip in clips:
        truth = label_of(clip, labels)
        if truth is None:
            report.skipped["no matching label"] = report.skipped.get("no matching label", 0) + 1
            continue
        try:
            audio = load_audio(clip.path, sample_rate)
        except KwsError:
            report.skipped["unreadable"] = report.skipped.get("unreadable", 0) + 1
            continue
        guess = labels[int(np.argmax(predict(audio.samples)))]
        confusion[index[truth], index[guess]] += 1
        report.predictions.append((clip.rel, truth, guess))
    if report.n == 0:
        raise KwsError("no clip could be evaluated (none readable with a matching label)")
    return report


def evaluate_model(model: KwsModel, data: str | Path) -> EvalReport:
    """Evaluate on ``data``'s test split (or every clip when it has no testing_list.txt)."""
    return evaluate_clips(test_clips(data), model.labels, model.sample_rate, model.predict_samples)
