"""The manifest that travels beside every model: ``X.tflite`` -> ``X.manifest.json``."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from edge_runtime.errors import KwsError
from edge_runtime.frontend import FrontendConfig

FORMAT = "kws-edge/manifest"
VERSION = 1
BACKGROUND_LABELS = ("_silence_", "_unknown_")


@dataclass
class Manifest:
    """What the runtime needs to use a model, and where the model came from."""

    labels: list[str]
    frontend: FrontendConfig
    quantization: str
    sha256: str
    size_bytes: int
    input: dict = field(default_factory=dict)
    output: dict = field(default_factory=dict)
    arch: str = ""
    accuracy: dict = field(default_factory=dict)
    source_run_id: str | None = None
    created: str = ""
    notes: dict = field(default_factory=dict)
    # Per-coefficient normalisation applied to the features before the model's (quantised)
    # input: {"mean": [n_mfcc], "std": [n_mfcc]}; empty when the model takes raw MFCCs.
    feature_norm: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        data = asdict(self)
        data["frontend"] = self.frontend.to_dict()
        return {"format": FORMAT, "version": VERSION, **data}

    @classmethod
    def from_dict(cls, data: dict, name: str = "manifest") -> Manifest:
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise KwsError(f"{name}: not a kws-edge manifest (format is not {FORMAT!r})")
        if data.get("version") != VERSION:
            raise KwsError(f"{name}: manifest version {data.get('version')!r} is not {VERSION}")
        body = {k: v for k, v in data.items() if k not in ("format", "version")}
        try:
            body["frontend"] = FrontendConfig.from_dict(body["frontend"])
            manifest = cls(**body)
        except (KeyError, TypeError, ValueError) as exc:
            raise KwsError(f"{name}: bad manifest ({exc})") from None
        labels = manifest.labels
        if not isinstance(labels, list) or not labels or not all(isinstance(x, str)
                                                                 for x in labels):
            raise KwsError(f"{name}: manifest has no labels (need a list of strings)")
        norm = manifest.feature_norm
        if norm and not (isinstance(norm, dict) and set(norm) == {"mean", "std"}
                         and all(isinstance(norm[k], list) and len(norm[k])
                                 == manifest.frontend.n_features for k in norm)
                         and all(v > 0 for v in norm["std"])):
            raise KwsError(f"{name}: bad manifest (feature_norm needs mean and std lists of "
                           f"{manifest.frontend.n_features} values, std > 0)")
        if not (isinstance(manifest.sha256, str) and len(manifest.sha256) == 64
                and all(c in "0123456789abcdef" for c in manifest.sha256)):
            raise KwsError(f"{name}: bad manifest (sha256 is not 64 lowercase hex digits)")
        return manifest


def manifest_path_for(model_path: str | Path) -> Path:
    model_path = Path(model_path)
    return model_path.with_name(model_path.stem + ".manifest.json")


def sha256_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def load_manifest(path: str | Path) -> Manifest:
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise KwsError(f"{path}: manifest not found (every model needs one beside it)") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise KwsError(f"{path}: unreadable manifest ({exc})") from None
    return Manifest.from_dict(data, str(path))


def write_manifest(model_path: str | Path, **fields) -> Manifest:
    """Write the manifest of ``model_path``; size, hash, I/O and date are read off the file."""
    from edge_runtime.model import describe_io

    model_path = Path(model_path)
    content = model_path.read_bytes()
    io = describe_io(content)
    fields.setdefault("created", dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"))
    manifest = Manifest(
        sha256=sha256_of(content), size_bytes=len(content), input=io["input"], output=io["output"],
        **fields,
    )
    manifest_path_for(model_path).write_text(json.dumps(manifest.to_dict(), indent=2) + "\n")
    return manifest
