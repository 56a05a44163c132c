"""The model-settings sidecar: ``model_settings.json`` beside ``model.keras``.

It carries what the converter and the runtime need besides the weights: the architecture,
the label order, the front-end config the model was trained on, the data settings (so the
same splits can be rebuilt), the MLflow run and the metrics.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from edge_runtime.errors import KwsError
from edge_runtime.frontend import FrontendConfig

FILENAME = "model_settings.json"
MODEL_FILENAME = "model.keras"


@dataclass
class ModelSettings:
    arch: str
    labels: list[str]
    frontend: FrontendConfig
    run_id: str | None = None
    metrics: dict = field(default_factory=dict)
    data: dict = field(default_factory=dict)

    @property
    def test_accuracy(self) -> float | None:
        return self.metrics.get("test_accuracy")

    def to_dict(self) -> dict:
        return {"arch": self.arch, "labels": list(self.labels),
                "frontend": self.frontend.to_dict(), "run_id": self.run_id,
                "test_accuracy": self.test_accuracy, "metrics": dict(self.metrics),
                "data": dict(self.data)}

    @classmethod
    def from_dict(cls, d: dict) -> ModelSettings:
        return cls(arch=d["arch"], labels=list(d["labels"]),
                   frontend=FrontendConfig.from_dict(d["frontend"]), run_id=d.get("run_id"),
                   metrics=dict(d.get("metrics") or {}), data=dict(d.get("data") or {}))

    def save(self, folder: str | Path) -> Path:
        path = Path(folder) / FILENAME
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_dict(), indent=2) + "\n")
        return path

    @classmethod
    def load(cls, path: str | Path) -> ModelSettings:
        """From a model folder, its ``model.keras`` or the JSON file itself.

        A missing file raises FileNotFoundError; an unreadable one KwsError.
        """
        path = Path(path)
        if path.is_dir():
            path = path / FILENAME
        elif path.suffix == ".keras":
            path = path.with_name(FILENAME)
        text = path.read_text()
        try:
            return cls.from_dict(json.loads(text))
        except (ValueError, KeyError, TypeError) as exc:
            raise KwsError(f"{path}: not a valid model settings file ({exc})") from None
