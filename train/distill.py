"""Distillation: the training targets mix the true label with an ensemble's predictions.

Trained models of the same labels (the *teachers*) score each training batch as the student
hears it before SpecAugment (a teacher of another front-end, e.g. a log-mel BC-ResNet for an
MFCC DS-CNN, computes its own features of the same augmented audio); the target becomes
``(1 - weight) * one_hot(label) + weight * mean(teacher probabilities)``. An ensemble of a
few runs is better than any of them (their errors differ; runs of two model families differ
the most), and the averaged probabilities are meant to carry that into one small model. On
the data here they did not (teachers trained on the student's own clips: see
benchmarks/results/shipped_model.md, ``distill_5``, ``distill_x_150_xv``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edge_runtime.errors import KwsError
from edge_runtime.frontend import Frontend, FrontendConfig
from train.models import load_keras
from train.settings import ModelSettings

PREDICT_BATCH = 1000


@dataclass
class Teachers:
    models: list  # Keras models
    weight: float  # share of the teachers' probabilities in the target
    # each model's front-end (audio -> its input, e.g. a Frontend or a
    # train.speech_embedding.SpeechEmbedding); None where it is the student's (it reads the
    # student's features)
    frontends: list[Callable[[np.ndarray], np.ndarray] | None]

    @classmethod
    def load(cls, folders: tuple[Path, ...], weight: float, labels: list[str],
             frontend: FrontendConfig) -> Teachers:
        """The models of ``folders``; KwsError unless each has ``labels`` and a front-end of
        the student's audio (``frontend``'s sample rate and clip length)."""
        models, frontends = [], []
        for folder in folders:
            try:
                settings = ModelSettings.load(folder)
            except FileNotFoundError:
                raise KwsError(f"{folder}: no trained model there (model_settings.json)"
                               ) from None
            if list(settings.labels) != list(labels):
                raise KwsError(f"teacher {folder}: labels {settings.labels} differ from the "
                               f"data's {labels}")
            theirs = settings.frontend
            if (theirs.sample_rate, theirs.clip_ms) != (frontend.sample_rate, frontend.clip_ms):
                raise KwsError(f"teacher {folder}: front-end {theirs.describe()} hears other "
                               f"audio than the student's {frontend.describe()}")
            models.append(load_keras(folder))
            frontends.append(None if theirs == frontend else Frontend(theirs))
        return cls(models, weight, frontends)

    @property
    def need_audio(self) -> bool:
        """Whether a teacher computes its own features (it needs the training audio)."""
        return any(f is not None for f in self.frontends)

    def probabilities(self, features: np.ndarray | None,
                      audio: np.ndarray | None = None) -> np.ndarray:
        """The teachers' mean probabilities ``(N, labels)`` for the student's features
        ``(N, T, F, 1)`` of ``audio`` ``(N, samples)`` (features are needed only by a teacher
        of the student's front-end, audio only by one of another front-end)."""
        out = []
        for model, own in zip(self.models, self.frontends, strict=True):
            if own is not None:
                if audio is None:
                    raise ValueError("a teacher of another front-end needs the audio")
                x = own(audio)[..., None].astype(np.float32)
            else:
                x = features
            out.append(model.predict(x, batch_size=PREDICT_BATCH, verbose=0))
        return np.mean(np.asarray(out, dtype=np.float64), axis=0)

    def targets(self, features: np.ndarray, labels: np.ndarray, n_labels: int,
                audio: np.ndarray | None = None) -> np.ndarray:
        """Soft targets ``(N, n_labels)`` float32 for label indices ``labels`` (``audio``:
        as for ``probabilities``)."""
        hard = np.eye(n_labels)[labels]
        if not len(labels):
            return hard.astype(np.float32)
        soft = self.probabilities(features, audio)
        return ((1.0 - self.weight) * hard + self.weight * soft).astype(np.float32)
