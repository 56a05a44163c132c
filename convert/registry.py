"""MLflow Model Registry: where gated models live, and ``kws export``.

Every model that passes the gate becomes a version of the registered model ``kws-edge-<task>``
(``kws-edge-12`` for the 12-class task). Its artifacts are the int8 and float32 ``.tflite``
files, their manifests and the comparison report; its tags hold the accuracies, drop, sizes,
gate result and data digests. The alias ``champion`` moves only to a version whose int8
accuracy beats the current champion's on the same test split (same ``test_split_sha256``).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import re
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from edge_runtime.errors import KwsError
from edge_runtime.manifest import manifest_path_for

CHAMPION = "champion"
PREFIX = "kws-edge"
MODEL_URI_RE = re.compile(
    r"models:/(?P<name>[^/@]+)(?:/(?P<version>\d+|latest)|@(?P<alias>[\w-]+))")


def registered_name(task: str) -> str:
    """``kws-edge-12`` for task ``12``; ``kws-edge-yes-no`` for ``yes,no``."""
    return f"{PREFIX}-{re.sub(r'[^A-Za-z0-9]+', '-', task).strip('-')}"


def test_split_sha256(dataset) -> str:
    """Which clips (and labels) the test split holds: equal digests, comparable accuracies."""
    lines = sorted(f"{e.label}\t{dataset.example_id(e)}" for e in dataset.split("test"))
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()


@contextlib.contextmanager
def mlflow_store(tracking_uri: str) -> Iterator:
    """An ``MlflowClient`` on ``tracking_uri`` (tracking and registry), URIs restored after."""
    import mlflow
    from mlflow.tracking import MlflowClient

    before = mlflow.get_tracking_uri(), mlflow.get_registry_uri()
    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_registry_uri(tracking_uri)
    try:
        yield MlflowClient(tracking_uri, tracking_uri)
    finally:
        mlflow.set_tracking_uri(before[0])
        mlflow.set_registry_uri(before[1])


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


@dataclass(frozen=True)
class Registration:
    name: str
    version: int
    champion: bool  # the alias moved to this version
    reason: str

    def to_text(self) -> str:
        moved = "now champion" if self.champion else "champion unchanged"
        return f"{self.name} version {self.version} ({moved}: {self.reason})"


def _decide(client, name: str, tags: dict[str, str]) -> tuple[bool, str]:
    from mlflow.exceptions import MlflowException

    try:
        champ = client.get_model_version_by_alias(name, CHAMPION)
    except MlflowException:
        return True, "the first gated version"
    old = champ.tags
    if old.get("test_split_sha256") != tags["test_split_sha256"]:
        return False, (f"version {champ.version} was tested on another test split: "
                       "not comparable")
    new_acc, old_acc = float(tags["int8_accuracy"]), float(old.get("int8_accuracy", "nan"))
    verdict = "beats" if new_acc > old_acc else "does not beat"
    return new_acc > old_acc, (f"int8 {100 * new_acc:.2f}% {verdict} version {champ.version}'s "
                               f"{100 * old_acc:.2f}%")


def register(result, run_id: str, tracking_uri: str, task: str, data_sha256: str,
             test_sha256: str) -> Registration:
    """File a gated conversion (``convert.convert.ConvertResult``) as a new version."""
    from mlflow.exceptions import MlflowException

    if not result.passed:
        raise KwsError("only a model that passed the gate is registered")
    c = result.comparison
    name = registered_name(task)
    tags = {f"{k}_accuracy": f"{r.accuracy:.6f}" for k, r in c.reports.items()}
    tags.update({f"{k}_size_bytes": str(v) for k, v in c.sizes.items()})
    tags.update({"drop_points": f"{result.gate.drop_points:.4f}", "gate": "passed",
                 "max_drop": str(result.gate.max_drop), "n_test": str(c.n),
                 "data_sha256": data_sha256, "test_split_sha256": test_sha256, "task": task})
    files = [*result.models.values(), *map(manifest_path_for, result.models.values()),
             *result.reports.values()]
    folder = f"registry/{uuid.uuid4().hex[:12]}"  # one folder per version: never overwritten
    with mlflow_store(tracking_uri) as client:
        for path in files:
            client.log_artifact(run_id, str(path), artifact_path=folder)
        source = f"{client.get_run(run_id).info.artifact_uri.rstrip('/')}/{folder}"
        with contextlib.suppress(MlflowException):  # it exists already
            client.create_registered_model(
                name, description=f"kws-edge models for task {task!r}, gated int8 TFLite")
        version = client.create_model_version(name, source, run_id=run_id, tags=tags)
        move, reason = _decide(client, name, tags)
        if move:
            client.set_registered_model_alias(name, CHAMPION, version.version)
    return Registration(name, int(version.version), move, reason)


def resolve_version(client, uri: str):
    """The ``ModelVersion`` behind ``models:/NAME/VERSION``, ``/latest`` or ``@ALIAS``."""
    from mlflow.exceptions import MlflowException

    match = MODEL_URI_RE.fullmatch(uri)
    if not match:
        raise KwsError(f"{uri!r}: use models:/NAME/VERSION or models:/NAME@ALIAS")
    name = match["name"]
    try:
        if match["alias"]:
            return client.get_model_version_by_alias(name, match["alias"])
        if match["version"] == "latest":
            versions = client.search_model_versions(f"name = '{name}'")
            if not versions:
                raise KwsError(f"{uri}: {name} has no versions")
            return max(versions, key=lambda v: int(v.version))
        return client.get_model_version(name, match["version"])
    except MlflowException as exc:
        raise KwsError(f"{uri}: not in the registry ({_first_line(exc)})") from None


def download(uri: str, tracking_uri: str, dst: Path) -> Path:
    """Download ``uri`` (``models:/…``, ``runs:/…`` or another artifact URI) into ``dst``."""
    import mlflow

    with mlflow_store(tracking_uri) as client:
        if uri.startswith("models:/"):
            resolve_version(client, uri)  # a clear error for a wrong name/alias
        try:
            return Path(mlflow.artifacts.download_artifacts(artifact_uri=uri,
                                                            dst_path=str(dst)))
        except Exception as exc:  # MlflowException, OSError, ...
            raise KwsError(f"{uri}: cannot download ({_first_line(exc)})") from None


def keras_folder(uri: str, tracking_uri: str, dst: Path) -> tuple[Path, str | None]:
    """(folder with model.keras + model_settings.json, its training run id) for ``--model-uri``.

    A registry version holds TFLite files; its Keras model is the ``model_dir`` of its run.
    """
    from train.train import MODEL_DIR_ARTIFACT

    run_id = None
    if uri.startswith("models:/"):
        with mlflow_store(tracking_uri) as client:
            run_id = resolve_version(client, uri).run_id
        if not run_id:
            raise KwsError(f"{uri}: the version names no run to take the Keras model from")
        uri = f"runs:/{run_id}/{MODEL_DIR_ARTIFACT}"
    path = download(uri, tracking_uri, dst)
    for folder in (path, path / MODEL_DIR_ARTIFACT):
        if (folder / "model.keras").is_file():
            return folder, run_id
    raise KwsError(f"{uri}: no model.keras there")


def export(uri: str, tracking_uri: str, out: Path, force: bool = False) -> dict:
    """Write the version's int8 model and manifest (what a device needs) into ``out``."""
    from edge_runtime.model import KwsModel

    with tempfile.TemporaryDirectory(prefix="kws-export-") as scratch:
        folder = download(uri, tracking_uri, Path(scratch))
        found = sorted(folder.glob("*_int8.tflite"))
        if len(found) != 1 or not manifest_path_for(found[0]).is_file():
            raise KwsError(f"{uri}: expected one *_int8.tflite with its manifest, found "
                           f"{[p.name for p in found]}")
        model = KwsModel(found[0])  # checks the manifest (hash, size) and loads the model
        files = [found[0], manifest_path_for(found[0])]
        targets = [out / p.name for p in files]
        for src, dst in zip(files, targets, strict=True):
            if dst.exists() and not force and dst.read_bytes() != src.read_bytes():
                raise KwsError(f"{dst} exists and differs: remove it or give --force")
        out.mkdir(parents=True, exist_ok=True)
        for src, dst in zip(files, targets, strict=True):
            shutil.copyfile(src, dst)
        accuracy = (model.manifest.accuracy or {}).get("int8")
    return {"model": str(targets[0]), "manifest": str(targets[1]), "labels": model.labels,
            "int8_accuracy": accuracy}


def cmd_export(args: argparse.Namespace) -> int:
    from train.tracking import default_tracking_uri

    done = export(args.model_uri, args.tracking_uri or default_tracking_uri(), args.out,
                  args.force)
    accuracy = done["int8_accuracy"]
    print(f"{done['model']} (+ {Path(done['manifest']).name}) from {args.model_uri}"
          + (f": int8 accuracy {100 * accuracy:.2f}%" if accuracy is not None else ""))
    return 0


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "export", help="write a registered model's int8 TFLite + manifest for a device",
        description="Download an int8 model and its manifest from the MLflow Model Registry "
                    "(e.g. models:/kws-edge-12@champion) into a folder a device reads.")
    p.add_argument("--model-uri", required=True,
                   help="models:/NAME@ALIAS, models:/NAME/VERSION or an artifact URI")
    p.add_argument("--out", type=Path, required=True, help="folder to write into")
    p.add_argument("--force", action="store_true", help="replace differing files in --out")
    p.add_argument("--tracking-uri", help="MLflow tracking URI (sqlite ./mlflow.db if not given)")
    p.set_defaults(func=cmd_export)
