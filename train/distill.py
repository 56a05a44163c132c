"""Distillation: the training targets mix the true label with an ensemble's predictions.

Trained models of the same labels and front-end (the *teachers*) score each training batch
as the student sees it before SpecAugment; the target becomes
``(1 - weight) * one_hot(label) + weight * mean(teacher probabilities)``. An ensemble of a
few runs of one recipe is better than any of them (the runs' errors differ by seed): the
averaged probabilities carry that into one small model.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edge_runtime.errors import KwsError
from edge_runtime.frontend import FrontendConfig
from train.models import load_keras
from train.settings import ModelSettings

PREDICT_BATCH = 1000


@dataclass
class Teachers:
    models: list  # Keras models
    weight: float  # share of the teachers' probabilities in the target

    @classmethod
    def load(cls, folders: tuple[Path, ...], weight: float, labels: list[str],
             frontend: FrontendConfig) -> Teachers:
        """The models of ``folders``; KwsError unless each has ``labels`` and ``frontend``."""
        models = []
        for folder in folders:
            try:
                settings = ModelSettings.load(folder)
            except FileNotFoundError:
                raise KwsError(f"{folder}: no trained model there (model_settings.json)"
                               ) from None
            if list(settings.labels) != list(labels):
                raise KwsError(f"teacher {folder}: labels {settings.labels} differ from the "
                               f"data's {labels}")
            if settings.frontend != frontend:
                raise KwsError(f"teacher {folder}: front-end {settings.frontend.describe()} "
                               f"differs from the student's {frontend.describe()}")
            models.append(load_keras(folder))
        return cls(models, weight)

    def probabilities(self, features: np.ndarray) -> np.ndarray:
        """The teachers' mean probabilities ``(N, labels)`` for features ``(N, T, F, 1)``."""
        out = [m.predict(features, batch_size=PREDICT_BATCH, verbose=0) for m in self.models]
        return np.mean(np.asarray(out, dtype=np.float64), axis=0)

    def targets(self, features: np.ndarray, labels: np.ndarray, n_labels: int) -> np.ndarray:
        """Soft targets ``(N, n_labels)`` float32 for label indices ``labels``."""
        hard = np.eye(n_labels)[labels]
        if not len(labels):
            return hard.astype(np.float32)
        soft = self.probabilities(features)
        return ((1.0 - self.weight) * hard + self.weight * soft).astype(np.float32)
