"""The manifest that travels beside every model: ``X.tflite`` -> ``X.manifest.json``.

Every field is checked for type and range on load, and ``digest`` (written with the manifest)
binds the model's sha256, the front-end, the labels and the feature normalisation together:
a hand-edited label order, front-end or normalisation is refused, not silently used. The
digest catches edits and mix-ups, not forgery (anyone can recompute it).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

from edge_runtime.errors import KwsError
from edge_runtime.frontend import FrontendConfig
from edge_runtime.interpreter import describe_io

FORMAT = "kws-edge/manifest"
VERSION = 1
BACKGROUND_LABELS = ("_silence_", "_unknown_")
MAX_MANIFEST_BYTES = 1 << 20
MAX_LABELS = 1000
MAX_DEPTH = 32  # nesting of JSON objects and lists
MAX_NORM = 1e6  # |mean| and std bounds of feature_norm (MFCCs are within a few hundred)
# field -> accepted types (JSON null only where None is listed)
FIELD_TYPES = {"labels": list, "quantization": str, "sha256": str, "size_bytes": int,
               "input": dict, "output": dict, "arch": str, "accuracy": dict,
               "source_run_id": (str, type(None)), "created": str, "notes": dict,
               "feature_norm": dict, "digest": str, "threshold": (float, int, type(None))}


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
    # the streaming detector's threshold chosen for this model (on validation streams); the
    # detector's own default when None. A recommendation, outside the digest: users may edit it.
    threshold: float | None = None
    # sha256 over the model's sha256, front-end, labels and feature_norm (see ``digest_of``)
    digest: str = ""

    def to_dict(self) -> dict:
        data = asdict(self)
        data["frontend"] = self.frontend.to_dict()
        return {"format": FORMAT, "version": VERSION, **data}

    @classmethod
    def from_dict(cls, data: dict, name: str = "manifest") -> Manifest:
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise KwsError(f"{name}: not a kws-edge manifest (format is not {FORMAT!r})")
        if data.get("version") != VERSION or isinstance(data.get("version"), bool):
            raise KwsError(f"{name}: manifest version {data.get('version')!r:.40} is not "
                           f"{VERSION}")
        body = {k: v for k, v in data.items() if k not in ("format", "version")}
        try:
            _check_types(body)
            body["frontend"] = FrontendConfig.from_dict(body["frontend"])
            manifest = cls(**body)
        except (KeyError, TypeError, ValueError) as exc:
            raise KwsError(f"{name}: bad manifest ({exc})") from None
        labels = manifest.labels
        if not (labels and all(isinstance(x, str) and x for x in labels)
                and len(set(labels)) == len(labels) <= MAX_LABELS):
            raise KwsError(f"{name}: manifest has no labels (need a list of 1-{MAX_LABELS} "
                           "distinct non-empty strings)")
        if manifest.size_bytes < 0:
            raise KwsError(f"{name}: bad manifest (size_bytes < 0)")
        if manifest.threshold is not None and not 0.0 <= manifest.threshold <= 1.0:
            raise KwsError(f"{name}: bad manifest (threshold must be within 0-1, got "
                           f"{manifest.threshold!r:.40})")
        _check_norm(manifest.feature_norm, manifest.frontend.n_features, name)
        for key in ("sha256", "digest"):
            if not _is_hex64(getattr(manifest, key)):
                raise KwsError(f"{name}: bad manifest ({key} is not 64 lowercase hex digits"
                               + ("; re-write it with kws convert" if key == "digest" else "")
                               + ")")
        if manifest.digest != digest_of(data):
            raise KwsError(f"{name}: manifest digest does not match its sha256, front-end, "
                           "labels and feature_norm: the manifest was edited or mixed up")
        return manifest


def _check_types(body: dict) -> None:
    for key, types in FIELD_TYPES.items():
        if key in body and (not isinstance(body[key], types) or isinstance(body[key], bool)):
            raise TypeError(f"{key} must be {_type_names(types)}, got {body[key]!r:.40}")


def _type_names(types) -> str:
    names = {list: "a list", str: "a string", int: "an integer", dict: "an object",
             type(None): "null", float: "a number"}
    named = [names[t] for t in (types if isinstance(types, tuple) else (types,))]
    if "a number" in named:  # an integer is a number too
        named.remove("an integer")
    return " or ".join(named)


def _check_norm(norm: dict, n_features: int, name: str) -> None:
    """feature_norm is {} or {"mean": [n_features numbers], "std": [n_features numbers > 0]}."""
    if not norm:
        return

    def numbers(key: str, low: float) -> bool:
        values = norm.get(key)
        return (isinstance(values, list) and len(values) == n_features
                and all(isinstance(v, (int, float)) and not isinstance(v, bool)
                        and math.isfinite(v) and low <= v <= MAX_NORM for v in values))

    if not (set(norm) == {"mean", "std"} and numbers("mean", -MAX_NORM)
            and numbers("std", 1 / MAX_NORM)):
        raise KwsError(f"{name}: bad manifest (feature_norm needs mean and std lists of "
                       f"{n_features} finite numbers, {1 / MAX_NORM:g} <= std <= {MAX_NORM:g})")


def _is_hex64(value) -> bool:
    return (isinstance(value, str) and len(value) == 64
            and all(c in "0123456789abcdef" for c in value))


def digest_of(data: dict) -> str:
    """The digest of a manifest's JSON object: sha256 of its sha256, front-end, labels and
    feature_norm as stored (a front-end setting added later with a default keeps old
    manifests valid)."""
    bound = {k: data.get(k) for k in ("sha256", "frontend", "labels", "feature_norm")}
    text = json.dumps(bound, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(text.encode()).hexdigest()


def manifest_path_for(model_path: str | Path) -> Path:
    model_path = Path(model_path)
    return model_path.with_name(model_path.stem + ".manifest.json")


def sha256_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _refuse_constant(name: str):
    raise ValueError(f"{name} is not a number JSON allows")


def parse_manifest(text: bytes | str, name: str = "manifest") -> Manifest:
    """A manifest from JSON text; NaN/Infinity, huge numbers and deep nesting are refused."""
    if len(text) > MAX_MANIFEST_BYTES:
        raise KwsError(f"{name}: manifest larger than {MAX_MANIFEST_BYTES >> 20} MB")
    try:
        data = json.loads(text, parse_constant=_refuse_constant)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:  # JSONDecodeError too
        detail = "nested too deeply" if isinstance(exc, RecursionError) else str(exc)[:200]
        raise KwsError(f"{name}: unreadable manifest ({detail})") from None
    if _depth(data) > MAX_DEPTH:
        raise KwsError(f"{name}: unreadable manifest (nested more than {MAX_DEPTH} levels)")
    return Manifest.from_dict(data, name)


def _depth(data) -> int:
    """How deeply JSON objects and lists nest in ``data`` (without recursion)."""
    deepest, todo = 0, [(data, 1)]
    while todo:
        item, level = todo.pop()
        if isinstance(item, (dict, list)):
            deepest = max(deepest, level)
            todo.extend((v, level + 1) for v in (item.values() if isinstance(item, dict)
                                                 else item))
    return deepest


def load_manifest(path: str | Path) -> Manifest:
    path = Path(path)
    try:
        if not path.is_file() and path.exists():
            raise KwsError(f"{path}: manifest is not a regular file")
        with path.open("rb") as f:
            text = f.read(MAX_MANIFEST_BYTES + 1)
    except FileNotFoundError:
        raise KwsError(f"{path}: manifest not found (every model needs one beside it)") from None
    except OSError as exc:
        raise KwsError(f"{path}: unreadable manifest ({exc.strerror})") from None
    return parse_manifest(text, str(path))


def write_manifest(model_path: str | Path, **fields) -> Manifest:
    """Write the manifest of ``model_path``; size, hash, I/O and date are read off the file."""
    model_path = Path(model_path)
    content = model_path.read_bytes()
    io = describe_io(content)
    fields.setdefault("created", dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"))
    manifest = Manifest(
        sha256=sha256_of(content), size_bytes=len(content), input=io["input"], output=io["output"],
        **fields,
    )
    return save_manifest(manifest, manifest_path_for(model_path))


def save_manifest(manifest: Manifest, path: Path) -> Manifest:
    """Write ``manifest`` (with its digest computed now) as JSON to ``path``."""
    data = manifest.to_dict()
    data["digest"] = manifest.digest = digest_of(data)
    path.write_text(json.dumps(data, indent=2, allow_nan=False) + "\n")
    return manifest


def reseal(path: str | Path) -> Manifest:
    """Re-write a manifest of the format before ``digest`` with its digest (for shipped
    models; ``kws convert`` writes it itself): ``python -c "from edge_runtime.manifest
    import reseal; reseal('artifacts/kws_int8.manifest.json')"``."""
    path = Path(path)
    data = json.loads(path.read_text())
    data["digest"] = digest_of(data)
    return save_manifest(parse_manifest(json.dumps(data), str(path)), path)
