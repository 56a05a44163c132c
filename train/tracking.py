"""MLflow for training runs: where runs go, a run that ends KILLED on SIGTERM, what is logged.

The default store is an embedded SQLite file, ``mlflow.db`` in the working directory (no
server needed; artifacts go to ``./mlruns``); ``--tracking-uri`` points at a server instead.
"""

from __future__ import annotations

import contextlib
import fcntl
import io
import signal
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np

DEFAULT_EXPERIMENT = "kws-edge"
MAX_PARAM_CHARS = 6000  # MLflow's limit on one parameter value


class RunKilled(KeyboardInterrupt):
    """Raised in the main thread by SIGTERM while a run is open (the run ends KILLED)."""

    def __init__(self, signum: int):
        super().__init__(f"killed by signal {signum}")
        self.signum = signum


def default_tracking_uri() -> str:
    return f"sqlite:///{(Path.cwd() / 'mlflow.db').resolve()}"


@contextlib.contextmanager
def store_lock(tracking_uri: str) -> Iterator[None]:
    """An exclusive lock on a SQLite store's file while its tables and experiment may be
    created: MLflow does both unguarded, and two runs started together on a new store fail
    ("table ... already exists"). SQLite's own locks are separate (fcntl, not flock)."""
    if not tracking_uri.startswith("sqlite:///"):
        yield
        return
    path = Path(tracking_uri[len("sqlite:///"):])
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "ab") as handle:  # an empty file is an empty SQLite database
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def git_commit(folder: Path | None = None) -> tuple[str, bool] | None:
    """(commit, has uncommitted changes) of the git checkout holding ``folder``, or None."""
    cwd = str(folder or Path(__file__).resolve().parent)
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True,
                                text=True, timeout=10, check=True).stdout.strip()
        status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                                cwd=cwd, capture_output=True, text=True, timeout=10,
                                check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return (commit, bool(status.strip())) if commit else None


class _Termination:
    """SIGTERM state: the signal seen, and whether it may only be recorded for now."""

    signum: int | None = None
    deferred: bool = False


_TERM = _Termination()


def _on_sigterm(signum, frame) -> None:
    _TERM.signum = signum
    if not _TERM.deferred:
        raise RunKilled(signum)


@contextlib.contextmanager
def sigterm_deferred() -> Iterator[None]:
    """Inside, SIGTERM only sets a flag (Keras training stops at the end of the batch, see
    :func:`stop_on_sigterm`); on leaving, a recorded SIGTERM raises :class:`RunKilled`.

    Raising inside ``model.fit`` instead would leave tf.data's generator thread waiting
    for the interpreter, and the process would hang at exit.
    """
    _TERM.deferred = True
    try:
        yield
    finally:
        _TERM.deferred = False
    if _TERM.signum is not None:
        raise RunKilled(_TERM.signum)


def stop_on_sigterm():
    """A Keras callback that ends training after the batch in which SIGTERM came."""
    import keras

    class StopOnSigterm(keras.callbacks.Callback):
        def _check(self, batch, logs=None):
            if _TERM.signum is not None:
                self.model.stop_training = True

        on_train_batch_end = on_test_batch_end = _check

    return StopOnSigterm()


@contextlib.contextmanager
def tracked_run(tracking_uri: str | None, experiment: str, run_name: str | None = None,
                tags: dict | None = None) -> Iterator:
    """An MLflow run: FINISHED on success, FAILED on an error, KILLED on Ctrl-C or SIGTERM."""
    import mlflow

    previous_uri = mlflow.get_tracking_uri()
    uri = tracking_uri or default_tracking_uri()
    mlflow.set_tracking_uri(uri)
    try:
        with store_lock(uri):
            found = mlflow.get_experiment_by_name(experiment)
            experiment_id = (found.experiment_id if found
                             else mlflow.create_experiment(experiment))
        tags = dict(tags or {})
        commit = git_commit()
        if commit:
            tags["git_commit"], dirty = commit
            tags["git_dirty"] = str(dirty).lower()
        main = threading.current_thread() is threading.main_thread()
        previous_handler = None
        _TERM.signum = None
        with mlflow.start_run(experiment_id=experiment_id, run_name=run_name,
                              tags=tags) as run:
            if main:
                previous_handler = signal.signal(signal.SIGTERM, _on_sigterm)
            try:
                yield run
            except KeyboardInterrupt:  # includes RunKilled
                mlflow.end_run(status="KILLED")
                raise
            finally:
                if main:
                    signal.signal(signal.SIGTERM, previous_handler)
    finally:
        mlflow.set_tracking_uri(previous_uri)


def flatten(params: dict, prefix: str = "") -> dict[str, str]:
    """Nested dicts as ``a.b`` keys with string values MLflow accepts."""
    out: dict[str, str] = {}
    for key, value in params.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(flatten(value, f"{name}."))
        else:
            out[name] = str(value)[:MAX_PARAM_CHARS]
    return out


def log_params(params: dict) -> None:
    import mlflow

    flat = flatten(params)
    items = list(flat.items())
    for start in range(0, len(items), 100):  # MLflow takes at most 100 per call
        mlflow.log_params(dict(items[start : start + 100]))


def epoch_logger():
    """A Keras callback logging every epoch's metrics (all scalars in its logs) and rate."""
    import keras
    import mlflow

    class EpochLogger(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            metrics = {k: float(v) for k, v in (logs or {}).items() if np.ndim(v) == 0}
            with contextlib.suppress(TypeError, ValueError, AttributeError):
                metrics["learning_rate"] = float(self.model.optimizer.learning_rate)
            mlflow.log_metrics(metrics, step=epoch)

    return EpochLogger()


def model_summary(model) -> str:
    buffer = io.StringIO()
    model.summary(print_fn=lambda line, *args, **kwargs: buffer.write(line + "\n"),
                  line_length=100)
    return buffer.getvalue()


def confusion_figure(confusion: np.ndarray, labels: list[str], title: str):
    """A matplotlib figure of the confusion matrix (rows true, columns predicted)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(labels)
    size = max(4.0, 0.45 * n + 2)
    fig, ax = plt.subplots(figsize=(size, size))
    shown = confusion / np.maximum(confusion.sum(axis=1, keepdims=True), 1)
    ax.imshow(shown, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(n), labels, rotation=90)
    ax.set_yticks(range(n), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    if n <= 40:
        for i in range(n):
            for j in range(n):
                if confusion[i, j]:
                    ax.text(j, i, str(int(confusion[i, j])), ha="center", va="center",
                            fontsize=7, color="white" if shown[i, j] > 0.5 else "black")
    fig.tight_layout()
    return fig


def log_model(model, example: np.ndarray, name: str = "model") -> None:
    """The Keras model in MLflow's TensorFlow flavour, with a signature inferred from
    ``example`` inputs (requirements are given, not inferred: that would reload the model)."""
    from importlib import metadata

    import keras
    import mlflow
    import tensorflow as tf

    dist = "tensorflow"
    for candidate in ("tensorflow-cpu", "tensorflow"):
        try:
            metadata.version(candidate)
            dist = candidate
            break
        except metadata.PackageNotFoundError:
            continue
    from mlflow.models import infer_signature

    signature = infer_signature(example, model.predict(example, verbose=0))
    mlflow.tensorflow.log_model(model, name=name, signature=signature, pip_requirements=[
        f"{dist}=={tf.__version__}", f"keras=={keras.__version__}"])
