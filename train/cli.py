"""``kws train``: the training sub-command of the toolchain (:mod:`kws.cli` adds it)."""

from __future__ import annotations

import argparse
import sys
from functools import partial
from pathlib import Path

from edge_runtime.cmdline import (
    field_default,
    float_range,
    int_range,
    percent,
    positive_float,
    positive_int,
    seed_int,
)
from edge_runtime.errors import KwsError
from train.augment import AugmentConfig
from train.data import DataConfig
from train.ensemble import COMBINES
from train.hard_negatives import HardNegativeConfig
from train.models import ARCHITECTURES, architecture
from train.speech_windows import SpeechWindowConfig
from train.train import TrainConfig
from train.word_classes import MIN_CLIPS

train_default = partial(field_default, TrainConfig)
data_default = partial(field_default, DataConfig)


def arch_name(text: str) -> str:
    """An argparse type: the name of an architecture of the zoo."""
    try:
        architecture(text)
    except KwsError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def add_training_args(p: argparse.ArgumentParser) -> None:
    """The training options of ``kws train`` and ``kws pipeline`` (data, splits, model and
    recipe), with TrainConfig's and DataConfig's defaults."""
    p.add_argument("--arch", type=arch_name, default=train_default("arch"), metavar="ARCH",
                   help=f"architecture: {', '.join(ARCHITECTURES)}")
    p.add_argument("--task", default=data_default("task"),
                   help="'12' (10 words + silence + unknown), 'all' words, or a word list")
    p.add_argument("--epochs", type=positive_int, default=train_default("epochs"),
                   help="training epochs")
    p.add_argument("--lr", type=positive_float, default=train_default("lr"),
                   help="peak learning rate")
    p.add_argument("--patience", type=positive_int, default=train_default("patience"),
                   help="stop after this many epochs without a better validation accuracy")
    p.add_argument("--train-seed", type=seed_int,
                   help="seed of weights, augmentation and batch order (default: --seed); "
                        "the splits stay those of --seed")
    p.add_argument("--label-smoothing", type=float_range(0, 1),
                   default=train_default("label_smoothing"),
                   help="targets (1-S) one-hot + S/classes")
    p.add_argument("--focal-gamma", type=float_range(0, 10),
                   default=train_default("focal_gamma"), metavar="G",
                   help="focal loss: each clip's cross-entropy scaled by (1 - p_true)**G, so "
                        "that clips already right weigh little (e.g. 2; 0: cross-entropy)")
    p.add_argument("--mixup", type=float_range(0, 10), default=train_default("mixup"),
                   metavar="ALPHA",
                   help="mixup within each augmented batch, mixing weight ~ Beta(ALPHA, ALPHA) "
                        "(e.g. 0.2; 0: off)")
    p.add_argument("--ema", type=float_range(0, 0.9999), default=train_default("ema"),
                   help="keep an exponential moving average of the weights with this momentum "
                        "per step (e.g. 0.999; 0: off)")
    p.add_argument("--weight-decay", type=float_range(0, 100),
                   default=train_default("weight_decay"),
                   help="decoupled weight decay (AdamW) of the kernels, scaled by the learning "
                        "rate (e.g. 1.0, the shipped recipe; 0: Adam)")
    p.add_argument("--sgd-momentum", type=float_range(0, 0.999),
                   default=train_default("sgd_momentum"), metavar="M",
                   help="SGD with Nesterov momentum M instead of Adam(W), same schedule and "
                        "decay (its --lr ~100x Adam's, e.g. 0.9 at --lr 0.1; 0: Adam)")
    p.add_argument("--teacher", type=Path, action="append", default=[], metavar="DIR",
                   help="distil from this trained model folder (same labels and audio; its own "
                        "front-end); "
                        "repeatable: the teachers' mean prediction is the soft target")
    p.add_argument("--embedding-teacher", action="store_true",
                   help="one more teacher: a head on Google's speech embedding (openwakeword "
                        "0.4.0's ONNX copy: the toolchain's teacher extra), trained on the "
                        "training split first")
    p.add_argument("--teacher-weight", type=float_range(0, 1),
                   default=train_default("teacher_weight"),
                   help="share of the teachers' prediction in each training target")
    p.add_argument("--synth", type=Path, help="synthetic speech folder (training split only)")
    p.add_argument("--extra", type=Path, action="append", default=[], metavar="DIR",
                   help="more real speech, WAV or FLAC, for the training split only (speakers "
                        "of the validation/test split are dropped); repeatable")
    p.add_argument("--extra-val-pct", type=float_range(0, 99.9),
                   default=data_default("extra_val_pct"), metavar="P",
                   help="validate on P%% of the --extra folders' speakers instead of training "
                        "on them (a larger validation than the --data folder's alone)")
    p.add_argument("--extra-train-pct", type=float_range(0.1, 100),
                   default=data_default("extra_train_pct"), metavar="P",
                   help="train on P%% of the --extra folders' other speakers (a learning curve "
                        "over the number of speakers)")
    p.add_argument("--cv-folds", type=int, default=data_default("cv_folds"), metavar="K",
                   help="cross-validation: the --data folder's training and validation "
                        "speakers in K folds, fold --cv-fold validating (the test split stays)")
    p.add_argument("--cv-fold", type=int, default=data_default("cv_fold"), metavar="k",
                   help="which of the --cv-folds folds validates (0 .. K-1)")
    p.add_argument("--drop-train", type=Path, metavar="FILE",
                   help="clips that never train: a text file of example ids, one per line "
                        "(e.g. from benchmarks.experiments.label_noise); validation and test "
                        "keep them")
    p.add_argument("--train-unknown-pct", type=float_range(0, 1000),
                   help="the training split's --unknown-pct (default: the same)")
    p.add_argument("--balance", type=float_range(0, 1), default=train_default("balance"),
                   help="class loss weights ~ 1/count**BALANCE (0: none, 1: equal classes)")
    p.add_argument("--word-balance", type=float_range(0, 1),
                   default=train_default("word_balance"),
                   help="within _unknown_, weights ~ 1/count(word)**WORD_BALANCE (0: none, "
                        "1: every other word counts the same)")
    p.add_argument("--main-weight", type=float_range(0.01, 100),
                   default=train_default("main_weight"),
                   help="loss weight of the --data folder's clips against the --extra "
                        "folders' clips of the same class (each class keeps its weight before "
                        "--word-balance)")
    for name in ("val", "test", "silence", "unknown"):
        p.add_argument(f"--{name}-pct", type=percent, default=data_default(f"{name}_pct"))
    p.add_argument("--normalize", action="store_true",
                   help="normalise each MFCC coefficient (training mean/variance) in the "
                        "model's first layer")
    p.add_argument("--word-classes", action="store_true",
                   help="train each non-keyword word of the training split (with >= "
                        f"{MIN_CLIPS} clips) as its own class, summed into _unknown_ after "
                        "training")
    g = p.add_argument_group("augmentation")
    g.add_argument("--no-augment", action="store_true", help="no augmentation at all")
    for name in ("noise", "shift", "gain", "specaugment"):
        g.add_argument(f"--no-{name}", action="store_true", help=f"no {name} augmentation")
    g.add_argument("--speed-pct", type=float_range(0, 49.9),
                   default=field_default(AugmentConfig, "speed_pct"),
                   help="play each clip at a random speed within +-P%% (pitch and tempo "
                        "together); 0: off")
    g.add_argument("--vtlp-pct", type=float_range(0, 49.9),
                   default=field_default(AugmentConfig, "vtlp_pct"),
                   help="vocal tract length perturbation: each clip's mel band edges scaled by "
                        "a random factor within +-P%% (the voice changes, the tempo does not); "
                        "0: off")
    g.add_argument("--tempo-pct", type=float_range(0, 49.9),
                   default=field_default(AugmentConfig, "tempo_pct"),
                   help="tempo perturbation: each clip's frames cut at a hop scaled by a random "
                        "factor within +-P%% (said faster or slower, the voice does not "
                        "change); 0: off")
    g.add_argument("--channel-prob", type=float_range(0, 1),
                   default=field_default(AugmentConfig, "channel_prob"),
                   help="share of clips played through a random room (reverberation) and "
                        "microphone (octave-band gains); 0: off")
    for name, what in (("time_masks", "SpecAugment time masks per example"),
                       ("time_mask_frames", "each time mask 0..N frames wide"),
                       ("freq_masks", "SpecAugment frequency masks per example"),
                       ("freq_mask_bins", "each frequency mask 0..N coefficients (or mel "
                                          "bands) wide")):
        g.add_argument(f"--{name.replace('_', '-')}", type=int_range(0, 100), metavar="N",
                       default=field_default(AugmentConfig, name), help=what)
    windows = partial(field_default, SpeechWindowConfig)
    g.add_argument("--running-speech", type=float_range(0, 1), default=windows("running_speech"),
                   help="share of each batch replaced by 1-s windows of joined non-keyword "
                        "clips, labelled _unknown_")
    g.add_argument("--running-speech-even-words", action="store_true",
                   help="draw running speech's clips evenly by word, not by clip (so that a "
                        "few words with many clips do not fill it)")
    g.add_argument("--cut-keywords", type=float_range(0, 1), default=windows("cut_keywords"),
                   help="share of each batch replaced by keywords cut to 15-50%% at a window "
                        "edge, labelled _unknown_")
    g.add_argument("--reversed-speech", type=float_range(0, 1),
                   default=windows("reversed_speech"),
                   help="share of each batch replaced by training clips played backwards "
                        "(not 'no' or 'on': each sounds like the other backwards), labelled "
                        "_unknown_")
    g.add_argument("--augment-copies", type=int, default=train_default("augment_copies"),
                   help="0: augment every batch afresh; N: make N augmented copies once and "
                        "train epoch e on copy e %% N (faster on small CPUs)")


def add_train_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "train", help="train a model, tracked in MLflow",
        description="Train a keyword-spotting model on a Speech Commands folder. Writes "
                    "model.keras + model_settings.json into --out and logs the run (params, "
                    "per-epoch metrics, model, reports) to MLflow.")
    p.add_argument("--data", type=Path, required=True, help="Speech Commands folder")
    add_training_args(p)
    p.add_argument("--batch-size", type=positive_int, default=train_default("batch_size"))
    p.add_argument("--seed", type=seed_int, default=data_default("seed"))
    p.add_argument("--out", type=Path, help="model folder (default runs/<arch>-<run id>)")
    p.add_argument("--cache-dir", type=Path, help="feature cache folder")
    g = p.add_argument_group("fine-tuning")
    g.add_argument("--init-from", type=Path, metavar="DIR",
                   help="start from this trained model folder's weights (same architecture, "
                        "labels and front-end)")
    g.add_argument("--keep-last", action="store_true",
                   help="keep the last epoch's weights, not the best on validation accuracy")
    mining = partial(field_default, HardNegativeConfig)
    g.add_argument("--hard-negatives-minutes", type=float_range(0, 24 * 60),
                   default=mining("minutes"), metavar="MIN",
                   help="with --init-from: scan MIN minutes each of the training speakers' "
                        "isolated other words and running speech, and add the 1-s windows "
                        "the model takes for a keyword as _unknown_ (0: off)")
    g.add_argument("--hard-negatives-score", type=float_range(0.01, 1),
                   default=mining("min_score"), metavar="P",
                   help="a window is a hard negative when a keyword's posterior reaches P")
    g.add_argument("--hard-negatives-max", type=int, default=mining("max_windows"),
                   metavar="N", help="keep the N highest-scoring hard negatives")
    g.add_argument("--hard-negatives-even-words", action="store_true",
                   help="scan streams whose other words are drawn evenly by word, not by clip "
                        "(so that a few words with many clips do not fill them)")
    g = p.add_argument_group("tracking")
    g.add_argument("--tracking-uri",
                   help="MLflow tracking URI (default sqlite:///mlflow.db in this folder)")
    g.add_argument("--experiment", default=train_default("experiment"),
                   help="MLflow experiment name")
    g.add_argument("--run-name", help="MLflow run name")
    g.add_argument("--no-mlflow", action="store_true", help="do not track the run")
    g.add_argument("--no-log-model", action="store_true",
                   help="do not log the MLflow TensorFlow-flavour model (model_dir still is)")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(func=cmd_train)


def add_ensemble_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "ensemble", help="put trained models into one model that averages their predictions",
        description="Merge trained models (kws train folders) of one set of mel bands, MFCC "
                    "or log-mel, into one Keras model on their common log-mel input (MFCC by "
                    "a fixed DCT layer) whose output is the mean of theirs; convert it as any "
                    "trained model.")
    p.add_argument("models", nargs="+", type=Path, metavar="MODEL_DIR",
                   help="trained model folders (model.keras + model_settings.json), 2 or more")
    p.add_argument("--out", type=Path, required=True, help="folder for the merged model")
    p.add_argument("--combine", choices=COMBINES, default=COMBINES[0],
                   help="average the members' probabilities, or their logits (the softmax "
                        "of which is the normalised geometric mean of their probabilities)")
    p.set_defaults(func=cmd_ensemble)


def cmd_ensemble(args: argparse.Namespace) -> int:
    from train.ensemble import merge_models
    from train.settings import FILENAME, MODEL_FILENAME

    for folder in args.models:
        if not (folder / MODEL_FILENAME).is_file() or not (folder / FILENAME).is_file():
            raise KwsError(f"{folder}: not a trained model folder ({MODEL_FILENAME} and "
                           f"{FILENAME})")
    if (args.out / MODEL_FILENAME).exists():
        raise KwsError(f"{args.out / MODEL_FILENAME} exists: choose another --out")
    print(merge_models(args.models, args.out, args.combine))
    return 0


def data_config(args: argparse.Namespace, data_dir: Path) -> DataConfig:
    """The data and split options of :func:`add_training_args`, on ``data_dir``."""
    return DataConfig(data_dir, task=args.task, val_pct=args.val_pct, test_pct=args.test_pct,
                      silence_pct=args.silence_pct, unknown_pct=args.unknown_pct,
                      synth_dir=args.synth, seed=args.seed, extra_dirs=tuple(args.extra),
                      train_unknown_pct=args.train_unknown_pct,
                      extra_val_pct=args.extra_val_pct,
                      extra_train_pct=args.extra_train_pct, cv_folds=args.cv_folds,
                      cv_fold=args.cv_fold, drop_train=args.drop_train)


def recipe_fields(args: argparse.Namespace) -> dict:
    """The :class:`TrainConfig` fields that :func:`add_training_args` sets (the recipe)."""
    augment = None if args.no_augment else AugmentConfig(
        noise=not args.no_noise, shift=not args.no_shift, gain=not args.no_gain,
        specaugment=not args.no_specaugment, speed_pct=args.speed_pct,
        vtlp_pct=args.vtlp_pct, tempo_pct=args.tempo_pct, channel_prob=args.channel_prob,
        time_masks=args.time_masks, time_mask_frames=args.time_mask_frames,
        freq_masks=args.freq_masks, freq_mask_bins=args.freq_mask_bins)
    try:
        windows = SpeechWindowConfig(running_speech=args.running_speech,
                                     cut_keywords=args.cut_keywords,
                                     reversed_speech=args.reversed_speech,
                                     even_words=args.running_speech_even_words)
    except ValueError as exc:
        raise KwsError(str(exc)) from None
    return dict(arch=args.arch, epochs=args.epochs, lr=args.lr, patience=args.patience,
                balance=args.balance, word_balance=args.word_balance,
                main_weight=args.main_weight,
                train_seed=args.train_seed, label_smoothing=args.label_smoothing,
                focal_gamma=args.focal_gamma,
                mixup=args.mixup, ema=args.ema, weight_decay=args.weight_decay,
                sgd_momentum=args.sgd_momentum,
                teachers=tuple(args.teacher), teacher_weight=args.teacher_weight,
                embedding_teacher=args.embedding_teacher,
                speech_windows=windows, augment_copies=args.augment_copies, augment=augment,
                normalize=args.normalize, word_classes=args.word_classes)


def train_config(args: argparse.Namespace) -> TrainConfig:
    try:
        mining = HardNegativeConfig(minutes=args.hard_negatives_minutes,
                                    min_score=args.hard_negatives_score,
                                    max_windows=args.hard_negatives_max,
                                    even_words=args.hard_negatives_even_words)
    except ValueError as exc:
        raise KwsError(str(exc)) from None
    return TrainConfig(
        data_config(args, args.data), **recipe_fields(args), batch_size=args.batch_size,
        out_dir=args.out, cache_dir=args.cache_dir,
        track=not args.no_mlflow, tracking_uri=args.tracking_uri,
        experiment=args.experiment, run_name=args.run_name,
        log_keras_model=not args.no_log_model, init_from=args.init_from,
        keep_last=args.keep_last, hard_negatives=mining)


def cmd_train(args: argparse.Namespace) -> int:
    from train.tracking import RunKilled
    from train.train import result_json, train

    config = train_config(args)
    config.check()  # bad input before the slow imports and data loading
    try:
        result = train(config)
    except RunKilled as exc:
        print(f"error: {exc}; the MLflow run is marked KILLED", file=sys.stderr)
        return 128 + exc.signum
    if args.json:
        print(result_json(result))
    else:
        print(f"{result.model_dir}  test accuracy {100 * result.test_accuracy:.2f}%  "
              f"run {result.run_id or '-'}")
    return 0
