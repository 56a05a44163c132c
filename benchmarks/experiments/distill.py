"""Distillation: an ensemble of trained teachers -> one small student on their soft labels.

``python -m benchmarks.experiments.distill NAME --teachers DIR DIR ...`` trains the student
(``--arch``) on the same speaker split and augmentation as :mod:`benchmarks.experiments.ship`'s
runs. Every augmented training batch goes through the teachers; the student's target is
``alpha * one-hot + (1 - alpha) * mean teacher posterior`` (softened with ``--temperature``).
The best-on-validation student is saved as model.keras + model_settings.json and converted and
scored like the other runs (``<work>/results/NAME.json``), with the teachers' ensemble accuracy
on the same test clips for reference.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

from benchmarks.experiments.ship import (  # noqa: E402
    DATA,
    EXPERIMENTS,
    Experiment,
    convert_and_score,
    log,
    register_wide,
    train_config,
)


def soften(probs: np.ndarray, temperature: float) -> np.ndarray:
    """``softmax(log(p) / T)``: flatter posteriors for T > 1."""
    logits = np.log(np.clip(probs, 1e-8, 1.0)) / temperature
    logits -= logits.max(axis=-1, keepdims=True)
    e = np.exp(logits)
    return e / e.sum(axis=-1, keepdims=True)


def distilled_batches(inner, teachers: list, n_labels: int, alpha: float, temperature: float):
    """Wrap a ``PyDataset`` of (features, labels) into (features, soft targets)."""
    import keras

    class Distilled(keras.utils.PyDataset):
        def __init__(self):
            super().__init__()

        def __len__(self) -> int:
            return len(inner)

        def __getitem__(self, i: int):
            x, y = inner[i]
            soft = np.mean([np.asarray(t.predict_on_batch(x)) for t in teachers], axis=0)
            hard = np.eye(n_labels, dtype=np.float32)[y]
            return x, (alpha * hard + (1 - alpha) * soften(soft, temperature)).astype(
                np.float32)

        def on_epoch_end(self) -> None:
            inner.on_epoch_end()

    return Distilled()


def ensemble_accuracy(teachers: list, x: np.ndarray, y: np.ndarray) -> float:
    probs = np.mean([t.predict(x, batch_size=256, verbose=0) for t in teachers], axis=0)
    return float(np.mean(np.argmax(probs, axis=1) == y))


def distill(name: str, teacher_dirs: list[Path], arch: str, epochs: int, alpha: float,
            temperature: float, data: Path) -> dict:
    import keras

    from train.data import load_dataset
    from train.models import architecture
    from train.models.common import FeatureStats
    from train.settings import MODEL_FILENAME, ModelSettings
    from train.train import augmented_batches, data_summary, epoch_timer, load_splits, report

    register_wide()
    base = EXPERIMENTS["synth"]  # real + synthetic speech, default augmentation
    exp = Experiment(f"distillation: {len(teacher_dirs)}-model ensemble -> {arch}", arch=arch,
                     synth=base.synth, epochs=epochs, augment=base.augment, seed=base.seed)
    config = train_config(name, exp, data)
    spec = architecture(arch)
    dataset = load_dataset(config.data_config())
    splits = load_splits(dataset, spec.frontend, config)
    teachers = [keras.saving.load_model(Path(d) / MODEL_FILENAME, compile=False)
                for d in teacher_dirs]
    teacher_acc = ensemble_accuracy(teachers, splits.test_x, splits.test_y)
    log(f"teacher ensemble: test accuracy {teacher_acc:.4f} (Keras, {len(splits.test_y)} clips)")

    keras.utils.set_random_seed(config.seed)
    n = len(dataset.labels)
    student = spec.build(n, stats=FeatureStats.of(splits.train_x))
    steps = math.ceil(len(splits.train_y) / config.batch_size)
    schedule = keras.optimizers.schedules.CosineDecay(
        config.lr, decay_steps=steps * epochs, alpha=config.min_lr_ratio)
    student.compile(optimizer=keras.optimizers.Adam(schedule),
                    loss="categorical_crossentropy",
                    metrics=[keras.metrics.CategoricalAccuracy(name="accuracy")])
    batches = distilled_batches(augmented_batches(splits, dataset, spec.frontend, config),
                                teachers, n, alpha, temperature)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="kws-distill-") as scratch:
        best = Path(scratch) / "best.weights.h5"
        timer = epoch_timer()
        history = student.fit(
            batches, epochs=epochs, verbose=2,
            validation_data=(splits.val_x, np.eye(n, dtype=np.float32)[splits.val_y]),
            callbacks=[keras.callbacks.ModelCheckpoint(
                best, monitor="val_accuracy", save_best_only=True, save_weights_only=True,
                mode="max"), timer])
        with contextlib.suppress(FileNotFoundError):
            student.load_weights(best)
    minutes = (time.perf_counter() - start) / 60
    val = report(student, splits.val_x, splits.val_y, dataset.labels)
    test = report(student, splits.test_x, splits.test_y, dataset.labels)
    metrics = {"test_accuracy": round(test.accuracy, 6), "val_accuracy": round(val.accuracy, 6),
               "epochs_run": len(history.history["loss"]),
               "params": int(student.count_params())}
    settings = ModelSettings(arch, list(dataset.labels), spec.frontend, metrics=metrics,
                             data=data_summary(dataset, config))
    settings.data["normalized"] = True
    settings.data["distilled_from"] = [str(d) for d in teacher_dirs]
    out = Path(config.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    student.save(out / MODEL_FILENAME)
    settings.save(out)
    log(f"student: val {val.accuracy:.4f} test {test.accuracy:.4f} (Keras)")
    return convert_and_score(name, out, data, {
        "idea": exp.idea + f" (alpha {alpha:g}, T {temperature:g})", "arch": arch,
        "seed": exp.seed, "synth": exp.synth, "epochs_run": metrics["epochs_run"],
        "train_minutes": round(minutes, 2), "val_accuracy": val.accuracy,
        "teachers": [str(d) for d in teacher_dirs], "teacher_ensemble_accuracy": teacher_acc})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("name")
    parser.add_argument("--teachers", type=Path, nargs="+", required=True)
    parser.add_argument("--arch", default="ds_cnn_s")
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--alpha", type=float, default=0.3, help="weight of the hard label")
    parser.add_argument("--temperature", type=float, default=2.0)
    parser.add_argument("--data", type=Path, default=DATA)
    args = parser.parse_args(argv)
    distill(args.name, args.teachers, args.arch, args.epochs, args.alpha, args.temperature,
            args.data)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
