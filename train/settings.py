"""The model-settings sidecar: ``model_settings.json`` beside ``model.keras``.

It carries what the converter and the runtime need besides the weights: the architecture,
the label order, the front-end config the model was trained on, the data settings (so the
same splits can be rebuilt, :class:`DataSummary`), the MLflow run and the metrics.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from edge_runtime.errors import KwsError
from edge_runtime.frontend import FrontendConfig
from train.data import DataConfig, Dataset

FILENAME = "model_settings.json"
MODEL_FILENAME = "model.keras"
# the folders of a DataConfig and their names in the file (older files: the same names)
FOLDER_KEYS = {"data_dir": "data_dir", "synth_dir": "synth", "extra_dirs": "extra"}
# split settings added after model files were written: left out at their default, so that an
# earlier file is written again as it was
LATER_DEFAULTS = {"extra_val_pct": 0.0, "extra_train_pct": 100.0, "cv_folds": 0, "cv_fold": 0,
                  "drop_train": None}


@dataclass(frozen=True)
class DataSummary:
    """The data a model was trained on: the :class:`~train.data.DataConfig` (whose split
    settings rebuild the same splits from any copy of the data) and what it gave."""

    config: DataConfig | None = None  # None: not recorded (the defaults)
    split_rule: str | None = None
    totals: dict[str, int] | None = None  # examples per split
    files_sha256: str | None = None  # of the split file list (Dataset.manifest)
    normalized: bool | None = None  # the model normalises its input (None: not recorded)

    @classmethod
    def of(cls, dataset: Dataset, normalized: bool) -> DataSummary:
        manifest = dataset.manifest()
        return cls(dataset.config, manifest["split_rule"], manifest["totals"],
                   manifest["files_sha256"], normalized)

    def split_config(self, data_dir: Path) -> DataConfig:
        """The split settings applied to ``data_dir``, without the training-only folders."""
        return (self.config or DataConfig(data_dir)).without_train_only(data_dir)

    def to_dict(self) -> dict:
        """One flat dict: the split settings, the folders (``data_dir``, ``synth``,
        ``extra``), then what is recorded of the rest."""
        out = {}
        if self.config is not None:
            d = self.config.to_dict()
            out = {k: v for k, v in d.items() if k not in FOLDER_KEYS
                   and not (k in LATER_DEFAULTS and v == LATER_DEFAULTS[k])}
            out.update({name: d[key] for key, name in FOLDER_KEYS.items()})
        rest = {"split_rule": self.split_rule, "totals": self.totals,
                "files_sha256": self.files_sha256, "normalized": self.normalized}
        return {**out, **{k: v for k, v in rest.items() if v is not None}}

    @classmethod
    def from_dict(cls, d: dict | None) -> DataSummary:
        """From :meth:`to_dict` or an older shape: a :meth:`DataConfig.to_dict` (folders
        under ``synth_dir``/``extra_dirs``), or a data set manifest (the settings under
        ``config``); keys left out take the defaults."""
        d = d or {}
        if not isinstance(d, dict):
            raise TypeError(f"data: expected an object, got {type(d).__name__}")
        raw = dict(d.get("config") or d)
        for key, name in FOLDER_KEYS.items():
            if name in raw and key not in raw:
                raw[key] = raw[name]
        config = None
        if set(raw) & set(DataConfig.__dataclass_fields__):
            config = DataConfig.from_dict({**raw, "data_dir": raw.get("data_dir") or "."})
        totals = d.get("totals")
        return cls(config, d.get("split_rule"), None if totals is None else dict(totals),
                   d.get("files_sha256"), d.get("normalized"))


@dataclass
class ModelSettings:
    arch: str
    labels: list[str]
    frontend: FrontendConfig
    run_id: str | None = None
    metrics: dict = field(default_factory=dict)
    data: DataSummary = field(default_factory=DataSummary)

    @property
    def test_accuracy(self) -> float | None:
        return self.metrics.get("test_accuracy")

    def to_dict(self) -> dict:
        return {"arch": self.arch, "labels": list(self.labels),
                "frontend": self.frontend.to_dict(), "run_id": self.run_id,
                "test_accuracy": self.test_accuracy, "metrics": dict(self.metrics),
                "data": self.data.to_dict()}

    @classmethod
    def from_dict(cls, d: dict) -> ModelSettings:
        return cls(arch=d["arch"], labels=list(d["labels"]),
                   frontend=FrontendConfig.from_dict(d["frontend"]), run_id=d.get("run_id"),
                   metrics=dict(d.get("metrics") or {}),
                   data=DataSummary.from_dict(d.get("data")))

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
