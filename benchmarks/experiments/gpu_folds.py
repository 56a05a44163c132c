"""Speaker-fold runs trained on another machine (a GPU without TensorFlow), scored here.

A fold run of ``ship`` spends ~40 min of 2-core training, most of it in the fit itself; its
augmented copies take a minute. Here the copies, the validation features and the loss weights
of a fold run are made exactly as ``train.train`` makes them and packed (``pack``); any
machine with Keras 3 on JAX (the lent GPU has no TensorFlow) trains several recipes on them at
once (``train``: the fit of ``train.train.fit``, the same schedule, averaged weights,
SpecAugment and batch order); back here each trained model is written as a run folder and
converted and scored as a ``ship`` fold run (``score``), so ``crossval`` pools it.

The copies travel as int8 (per coefficient, 255 steps between the 0.01th and 99.99th
percentiles of the first copy): a fold's five copies of ~11,400 clips take ~26 MB compressed
instead of 110 MB of float32.

    python -m benchmarks.experiments.gpu_folds pack speech_ema_150_xv --folds 0 1 --out .gpu
    KERAS_BACKEND=jax python -m benchmarks.experiments.gpu_folds train \
        .gpu/speech_ema_150_xv_f0.npz ema --out OUT          # there, one process per run
    python -m benchmarks.experiments.gpu_folds score speech_ema_150_xv OUT/ema_f0.weights.h5
    python -m benchmarks.experiments.crossval gpu_ema_speech_ema_150_xv ...
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

from edge_runtime.errors import KwsError

QUANT_PCT = (0.01, 99.99)


@dataclass(frozen=True)
class Recipe:
    """What a device run changes against the packed run's training settings."""

    arch: str = "ds_cnn_w"
    epochs: int | None = None  # None: the packed run's
    label_smoothing: float = 0.0
    mixup: float = 0.0  # Beta(alpha, alpha) of mixup within each batch (train.augment.mix_up)
    seed_offset: int = 0  # added to the packed run's training seed
    ema: float | None = None  # None: the packed run's weight averaging
    clip_percentile: float | None = 99.9  # the conversion here (ship's setting)
    per_tensor: bool = False


RECIPES: dict[str, Recipe] = {
    "ema": Recipe(),  # speech_ema_150_xv as packed
    "ema_s1": Recipe(seed_offset=1),
    "ema_s2": Recipe(seed_offset=2),
    "cmn": Recipe(arch="ds_cnn_w_cmn"),
    "w96": Recipe(arch="ds_cnn_w96", per_tensor=True),
    "e180": Recipe(epochs=180),
    "ls10": Recipe(label_smoothing=0.1),
    "mix20": Recipe(mixup=0.2),
    "dss": Recipe(arch="ds_cnn_s"),
    "probe": Recipe(ema=0.0),  # a quick check that a machine learns (no averaging lag)
}


def quantize(x: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    q = np.rint((x - lo) / (hi - lo) * 255.0) - 128.0
    return np.clip(q, -128, 127).astype(np.int8)


def dequantize(q: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    return ((q.astype(np.float32) + 128.0) / 255.0 * (hi - lo) + lo).astype(np.float32)


def pack(config, out: Path, name: str, fold: int) -> Path:
    """``out``/``name``.npz: the fixed augmented copies (int8), loss weights and validation
    features of a training run with TrainConfig ``config``, exactly as ``train.train`` makes
    them, and the settings its fit needs (``fold``: the speaker fold it validates on)."""
    from train.data import load_dataset
    from train.models import architecture
    from train.models.common import FeatureStats
    from train.train import augmented_batches, load_splits

    if config.teachers or config.word_classes or config.init_from is not None:
        raise KwsError(f"{name}: distillation, word classes and fine-tunes are not packed "
                       "(their targets or starting weights do not travel)")
    frontend = architecture(config.arch).frontend
    dataset = load_dataset(config.data)
    splits = load_splits(dataset, frontend, config)
    batches = augmented_batches(splits, dataset, frontend, config)
    if not batches.copies:
        raise KwsError(f"{name}: no fixed augmented copies to pack (augment_copies is 0)")
    x = np.stack([c[0] for c in batches.copies])
    lo = np.percentile(x[0], QUANT_PCT[0], axis=(0, 1)).astype(np.float32)
    hi = np.maximum(np.percentile(x[0], QUANT_PCT[1], axis=(0, 1)), lo + 1e-6).astype(
        np.float32)
    rows = np.arange(x.shape[1])
    weights = np.stack([batches.example_weights(rows, c[1]) for c in batches.copies])
    settings = {"run": name, "fold": fold, "arch": config.arch, "labels": list(dataset.labels),
                "epochs": config.epochs, "batch_size": config.batch_size, "lr": config.lr,
                "min_lr_ratio": config.min_lr_ratio, "ema": config.ema, "seed": config.seed,
                "augment": asdict(config.augment),
                "stats": FeatureStats.of(splits.train_x).to_dict()}
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{name}.npz"
    np.savez_compressed(path, x=quantize(x, lo, hi), lo=lo, hi=hi,
                        y=np.stack([c[1] for c in batches.copies]).astype(np.int16),
                        w=weights.astype(np.float32),
                        val_x=splits.val_x[..., 0].astype(np.float16),
                        val_y=splits.val_y.astype(np.int16), settings=json.dumps(settings))
    return path


def pack_fold_run(run: str, fold: int, out: Path) -> Path:
    """:func:`pack` for ``ship`` fold run ``run``_f``fold``."""
    from benchmarks.experiments.ship import DATA, EXPERIMENTS, train_config

    name = f"{run}_f{fold}"
    if name not in EXPERIMENTS:
        raise KwsError(f"{name}: not a ship fold run (ship's folds() names them RUN_f<k>)")
    return pack(train_config(name, EXPERIMENTS[name], DATA), out, name, fold)


def train_one(packed: Path, recipe_name: str, out: Path, epochs: int | None = None) -> Path:
    """Train one recipe on one packed fold (any Keras 3 backend); its weights to ``out``
    (``epochs``: fewer than the recipe's, for a quick check of the machine)."""
    import keras

    from train.augment import AugmentConfig
    from train.models import architecture
    from train.models.common import FeatureStats
    from train.train import (
        compile_for_training,
        epoch_batches,
        epoch_timer,
        training_objective,
    )

    recipe = RECIPES[recipe_name]
    data = np.load(packed)
    s = json.loads(str(data["settings"]))
    x, y, w = data["x"], data["y"].astype(np.int32), data["w"]
    lo, hi = data["lo"], data["hi"]
    augment = AugmentConfig(**{k: tuple(v) if isinstance(v, list) else v
                               for k, v in s["augment"].items()})
    seed = s["seed"] + recipe.seed_offset
    epochs = epochs or recipe.epochs or s["epochs"]
    ema = s["ema"] if recipe.ema is None else recipe.ema
    batch = s["batch_size"]
    n = x.shape[1]

    def make(epoch: int, rows: np.ndarray, rng: np.random.Generator):
        c = epoch % x.shape[0]
        return dequantize(x[c, rows], lo, hi), y[c, rows], w[c, rows]

    keras.utils.set_random_seed(seed)
    n_labels = len(s["labels"])
    model = architecture(recipe.arch).build(n_labels,
                                            stats=FeatureStats(**s["stats"]))
    loss, val_y = training_objective(recipe.label_smoothing, recipe.mixup > 0,
                                     data["val_y"].astype(np.int32), n_labels)
    swap = compile_for_training(model, lr=s["lr"], min_lr_ratio=s["min_lr_ratio"],
                                steps=math.ceil(n / batch), epochs=epochs, ema=ema, loss=loss,
                                metric="accuracy")
    out.mkdir(parents=True, exist_ok=True)
    best = out / f"{recipe_name}_f{s['fold']}.weights.h5"
    timer = epoch_timer()
    val = (data["val_x"].astype(np.float32)[..., None], val_y)
    start = time.perf_counter()
    batches = epoch_batches(n, batch, seed, augment, make, mixup=recipe.mixup,
                            n_classes=n_labels)
    history = model.fit(batches, epochs=epochs, validation_data=val, verbose=0, callbacks=[
        *swap, keras.callbacks.ModelCheckpoint(best, monitor="val_accuracy",
                                               save_best_only=True, save_weights_only=True,
                                               mode="max"), timer])
    accs = history.history["val_accuracy"]
    (out / f"{recipe_name}_f{s['fold']}.json").write_text(json.dumps({
        "recipe": recipe_name, "fold": s["fold"], "run": s["run"], "epochs": epochs,
        "best_val_accuracy": max(accs), "best_epoch": int(np.argmax(accs)) + 1,
        "minutes": (time.perf_counter() - start) / 60,
        "median_epoch_s": float(np.median(timer.seconds)), "backend": keras.backend.backend(),
        "stats": s["stats"]}))  # the input normalisation the model was built with
    return best


def weights_name(weights: Path) -> tuple[str, int]:
    """The recipe and fold of ``RECIPE_f<k>.weights.h5`` (as ``train`` names it)."""
    stem = weights.name.removesuffix(".weights.h5")
    recipe, _, fold = stem.rpartition("_f")
    if stem == weights.name or recipe not in RECIPES or not fold.isdigit():
        raise KwsError(f"{weights}: not a RECIPE_f<k>.weights.h5 file of gpu_folds train "
                       f"(recipes: {', '.join(sorted(RECIPES))})")
    return recipe, int(fold)


def idea(base: str, recipe_name: str, info: dict) -> str:
    """The table's description of a run trained elsewhere."""
    changes = {k: v for k, v in asdict(RECIPES[recipe_name]).items()
               if v != getattr(Recipe(), k)}
    return (f"{base}; trained on a GPU (Keras on {info['backend']}, runs side by side; minutes "
            f"there) from its packed copies, recipe {recipe_name}"
            + (f" ({', '.join(f'{k}={v}' for k, v in changes.items())})" if changes else ""))


def score(weights: Path, packed_run: str) -> dict:
    """Write ``weights`` (``RECIPE_f<k>.weights.h5``) as a run folder of ``ship``'s work and
    convert and score it as fold run ``gpu_<RECIPE>_<packed_run>_f<k>``."""
    import benchmarks.experiments.ship as ship
    from train.data import load_dataset
    from train.models import architecture
    from train.models.common import FeatureStats
    from train.settings import MODEL_FILENAME, DataSummary, ModelSettings

    recipe_name, fold = weights_name(weights)
    recipe = RECIPES[recipe_name]
    base = ship.EXPERIMENTS.get(f"{packed_run}_f{fold}")
    if base is None:
        raise KwsError(f"{packed_run}_f{fold}: not a ship fold run (the packed run's name)")
    info = json.loads(weights.with_name(weights.name.replace(".weights.h5", ".json"))
                      .read_text())
    name = f"gpu_{recipe_name}_{packed_run}_f{fold}"
    exp = replace(base, idea=idea(base.idea, recipe_name, info), arch=recipe.arch,
                  clip_percentile=recipe.clip_percentile, per_tensor=recipe.per_tensor,
                  epochs=info["epochs"])
    config = ship.train_config(name, exp, ship.DATA)
    arch = architecture(recipe.arch)
    dataset = load_dataset(config.data)
    if "stats" in info:
        stats = FeatureStats(**info["stats"])
    else:  # weights from before train kept the statistics: those of the fold's training set
        from train.train import load_splits

        stats = FeatureStats.of(load_splits(dataset, arch.frontend,
                                            replace(config, augment=None)).train_x)
    model = arch.build(len(dataset.labels), stats=stats)
    model.load_weights(weights)
    folder = ship.WORK / "models" / name
    folder.mkdir(parents=True, exist_ok=True)
    model.save(folder / MODEL_FILENAME)
    ModelSettings(recipe.arch, list(dataset.labels), arch.frontend,
                  metrics={"val_accuracy": info["best_val_accuracy"],
                           "epochs_run": info["epochs"]},
                  data=DataSummary.of(dataset, normalized=True)).save(folder)
    return ship.convert_and_score(name, folder, ship.DATA, {
        "epochs_run": info["epochs"], "train_minutes": round(info["minutes"], 2),
        "val_accuracy": info["best_val_accuracy"], "trained_on": info["backend"]}, exp)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.experiments.gpu_folds",
                                description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    a = sub.add_parser("pack")
    a.add_argument("run")
    a.add_argument("--folds", type=int, nargs="+", required=True)
    a.add_argument("--out", type=Path, required=True)
    b = sub.add_parser("train")
    b.add_argument("packed", type=Path)
    b.add_argument("recipe", choices=sorted(RECIPES))
    b.add_argument("--out", type=Path, required=True)
    b.add_argument("--epochs", type=int, help="fewer epochs (a quick check)")
    c = sub.add_parser("score")
    c.add_argument("packed_run")
    c.add_argument("weights", type=Path, nargs="+")
    args = p.parse_args(argv)
    try:
        if args.cmd == "pack":
            for k in args.folds:
                print(pack_fold_run(args.run, k, args.out), flush=True)
        elif args.cmd == "train":
            if not args.packed.is_file():
                raise KwsError(f"{args.packed}: no such pack (gpu_folds pack writes them)")
            print(train_one(args.packed, args.recipe, args.out, args.epochs), flush=True)
        else:
            for w in args.weights:
                weights_name(w)  # every name checked before minutes of scoring
                if not w.is_file() or not w.with_name(w.name.replace(".weights.h5",
                                                                     ".json")).is_file():
                    raise KwsError(f"{w}: missing, or without the .json that train writes "
                                   "beside it")
            for w in args.weights:
                score(w, args.packed_run)
    except KwsError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
