"""Training: data -> per-epoch augmented MFCC batches -> Keras model -> model folder + MLflow run.

Each epoch sees fresh augmentation: the training waveforms are shifted, gained and noised
(:func:`train.augment.augment_waveforms`), turned into MFCC by the shared NumPy front-end
and masked (:func:`train.augment.spec_augment`), batch by batch in a ``keras.utils.PyDataset``.
Validation and test features come from the feature cache. The best weights on validation
accuracy are kept, training stops early when validation accuracy stalls, and the model is
reported on the test split. The result is a folder with ``model.keras`` and
``model_settings.json`` (see :mod:`train.settings`), logged to MLflow as ``model_dir``.
"""

from __future__ import annotations

import contextlib
import json
import math
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path

import numpy as np

from edge_runtime.dataset import SILENCE, UNKNOWN
from edge_runtime.errors import KwsError
from edge_runtime.evaluate import EvalReport
from edge_runtime.frontend import Frontend, FrontendConfig
from edge_runtime.stream_gen import speech_bounds
from train import tracking
from train.augment import AugmentConfig, augment_waveforms, mix_up, spec_augment
from train.data import DataConfig, Dataset, load_dataset, load_waveforms
from train.data_checks import check_training_data, write_skipped
from train.distill import Teachers
from train.features import cached_features
from train.hard_negatives import HardNegativeConfig, keyword_score, mine, non_keyword_streams
from train.models import architecture
from train.models.common import FeatureStats
from train.settings import MODEL_FILENAME, DataSummary, ModelSettings
from train.speech_windows import (
    SpeechWindowConfig,
    even_word_probabilities,
    mix_in,
    reversible_rows,
)
from train.vtlp import warp_factors, warped_features
from train.word_classes import (
    class_names,
    label_map,
    merge_words,
    merged_accuracy,
    word_targets,
    word_vocabulary,
)

MODEL_DIR_ARTIFACT = "model_dir"


@dataclass
class TrainConfig:
    data: DataConfig  # the data, its splits and sampling; its seed seeds training too
    arch: str = "ds_cnn_s"
    epochs: int = 40
    batch_size: int = 100
    lr: float = 1e-3  # peak learning rate of a cosine decay over all epochs
    min_lr_ratio: float = 0.05  # the decay ends at lr * min_lr_ratio
    patience: int = 10  # epochs without a better validation accuracy before stopping
    # keep the last epoch's weights, not the best on validation accuracy (a fine-tune toward
    # what validation accuracy does not measure, e.g. hard negatives)
    keep_last: bool = False
    balance: float = 0.0  # loss weight of a class ~ 1 / count**balance (0: none, 1: equal)
    # within _unknown_, an example's weight ~ 1 / count(its word)**word_balance: the few
    # words with thousands of clips (bed, cat, happy) stop drowning the many rare ones
    word_balance: float = 0.0
    # loss weight of the main data folder's clips against the extra (and synthetic) folders'
    # clips of the same class, each class keeping its total weight before the word balance
    # (whose factors then apply on top, so _unknown_'s total can move): the main folder's speakers
    # are the ones tested (speech_commands_mini is Speech Commands v0.02; the extra folder is
    # mostly v0.01, ~5 dB quieter, with a higher spectral centroid)
    main_weight: float = 1.0
    # seed of the weights, augmentation and batch order (None: the data's seed); another
    # training seed keeps the same splits, so runs differing only in it stay comparable
    train_seed: int | None = None
    label_smoothing: float = 0.0  # targets (1 - s) one-hot + s / classes
    # > 0: focal loss, each clip's cross-entropy scaled by (1 - p_true)**focal_gamma (0: off)
    focal_gamma: float = 0.0
    # mixup within each augmented batch: lam ~ Beta(mixup, mixup) (train.augment.mix_up; 0: off)
    mixup: float = 0.0
    # momentum of an exponential moving average of the weights, updated every step; the
    # average is what is validated, checkpointed and kept (0: off)
    ema: float = 0.0
    # decoupled weight decay (AdamW) of the kernels, not of biases or BatchNorm, scaled by the
    # learning-rate schedule: each step multiplies a kernel by 1 - lr * weight_decay (0: Adam)
    weight_decay: float = 0.0
    # > 0: SGD with this Nesterov momentum instead of Adam(W), on the same schedule and decay
    # (its peak lr is ~100x Adam's: e.g. 0.9 at lr 0.1)
    sgd_momentum: float = 0.0
    # distillation: model folders of trained teachers (same labels and front-end) whose mean
    # prediction makes teacher_weight of each training target (see train.distill)
    teachers: tuple[Path, ...] = ()
    teacher_weight: float = 0.5
    # one more teacher: a head on Google's speech embedding, trained here on the training split
    # (train.speech_embedding; needs the teacher extra and augmentation)
    embedding_teacher: bool = False
    augment: AugmentConfig | None = field(default_factory=AugmentConfig)  # None: off
    # 0: every batch is augmented afresh; N: N augmented copies of the training split are
    # made once and epoch e trains on copy e % N (SpecAugment stays fresh): several times
    # faster on a small CPU, where making the batches costs more than the training step
    augment_copies: int = 0
    speech_windows: SpeechWindowConfig = field(default_factory=SpeechWindowConfig)
    # fine-tuning: a trained model folder (same architecture, labels and front-end) whose
    # weights training starts from (None: fresh weights)
    init_from: Path | None = None
    # _unknown_ windows mined by the init_from model from the training speakers' non-keyword
    # streams and added to the training split (see train.hard_negatives)
    hard_negatives: HardNegativeConfig = field(default_factory=HardNegativeConfig)
    normalize: bool = False  # per-coefficient normalisation as the model's first layer
    # each non-keyword word of the training split its own class, merged into _unknown_ after
    # training (see train.word_classes)
    word_classes: bool = False
    out_dir: Path | None = None  # default runs/<arch>-<run id>
    cache_dir: Path | None = None  # feature cache (default: train.features' own)
    track: bool = True
    tracking_uri: str | None = None  # default sqlite:///mlflow.db in the working directory
    experiment: str = tracking.DEFAULT_EXPERIMENT
    run_name: str | None = None
    log_keras_model: bool = True  # also log the model in MLflow's TensorFlow flavour
    verbose: int | None = None  # Keras fit verbosity (default: bar on a terminal, else lines)

    def check(self) -> None:
        architecture(self.arch)
        if self.epochs <= 0 or self.batch_size <= 0 or self.patience <= 0:
            raise KwsError("epochs, batch size and patience must be > 0")
        if not self.lr > 0 or not 0 <= self.min_lr_ratio <= 1:
            raise KwsError("need lr > 0 and 0 <= min_lr_ratio <= 1")
        if self.augment_copies < 0:
            raise KwsError(f"augment_copies must be >= 0, got {self.augment_copies}")
        for name in ("balance", "word_balance", "label_smoothing", "teacher_weight"):
            if not 0 <= getattr(self, name) <= 1:
                raise KwsError(f"{name} must be within 0-1, got {getattr(self, name)}")
        if not 0 <= self.mixup <= 10:
            raise KwsError(f"mixup must be within 0-10, got {self.mixup}")
        if not 0 < self.main_weight <= 100:
            raise KwsError(f"main_weight must be within 0-100 (0 excluded), got "
                           f"{self.main_weight}")
        if self.mixup and (self.augment is None or self.word_classes):
            raise KwsError("mixup mixes augmented batches of the trained classes: not without "
                           "augmentation or with word classes")
        if not 0 <= self.weight_decay or self.lr * self.weight_decay >= 1:
            raise KwsError(f"weight_decay must be >= 0 with lr x weight_decay < 1 (a step would "
                           f"zero or flip a kernel), got {self.weight_decay} at lr {self.lr}")
        if not 0 <= self.focal_gamma <= 10:
            raise KwsError(f"focal_gamma must be within 0-10, got {self.focal_gamma}")
        if not 0 <= self.sgd_momentum < 1:
            raise KwsError(f"sgd_momentum must be within 0-1 (1 excluded), got "
                           f"{self.sgd_momentum}")
        if not 0 <= self.ema < 1:
            raise KwsError(f"ema must be within 0-1 (excluded), got {self.ema}")
        if self.train_seed is not None and not 0 <= self.train_seed < 2**32:
            raise KwsError(f"train_seed must be within 0-{2**32 - 1}, got {self.train_seed}")
        if self.speech_windows.enabled and self.augment is None:
            raise KwsError("speech windows are made during augmentation: augmentation is off")
        if self.hard_negatives.enabled and (self.init_from is None or self.augment is None):
            raise KwsError("hard negatives are mined by a trained model (init_from) and join "
                           "the augmented training waveforms (augmentation on)")
        if self.embedding_teacher:
            if self.augment is None:
                raise KwsError("the speech-embedding teacher hears the training audio: train "
                               "with augmentation")
            from train.speech_embedding import model_folder

            model_folder()  # installed, before any training
        if self.word_classes and (self.teachers or self.embedding_teacher
                                  or self.init_from is not None):
            raise KwsError("word classes train a fresh model on hard targets: not with "
                           "teachers or init_from")
        if self.init_from is not None and not (Path(self.init_from) / MODEL_FILENAME).is_file():
            raise KwsError(f"{self.init_from}: no {MODEL_FILENAME} there (init_from)")
        data = self.data.data_dir
        if not data.is_dir():
            raise KwsError(f"{data}: no such data folder")
        if not any(data.iterdir()):
            raise KwsError(f"{data}: the data folder is empty")
        if self.data.synth_dir is not None and not self.data.synth_dir.is_dir():
            raise KwsError(f"{self.data.synth_dir}: no such synthetic-speech folder")
        for extra in self.data.extra_dirs:
            if not extra.is_dir():
                raise KwsError(f"{extra}: no such extra data folder")
        for teacher in self.teachers:
            if not (Path(teacher) / MODEL_FILENAME).is_file():
                raise KwsError(f"{teacher}: no {MODEL_FILENAME} there (teacher)")
        from train.writable import check_tracking_store, check_writable_dir

        check_writable_dir(Path(self.out_dir or "runs"))  # before hours of training
        if self.track:
            check_tracking_store(self.tracking_uri or tracking.default_tracking_uri())

    @property
    def seed(self) -> int:
        """The training seed: ``train_seed``, else the data's seed."""
        return self.data.seed if self.train_seed is None else self.train_seed

    def to_params(self) -> dict:
        """The MLflow params: the data config's fields, flat, then the others."""
        out = self.data.to_dict()
        for f in fields(self):
            if f.name not in ("data", "augment", "speech_windows", "hard_negatives"):
                value = getattr(self, f.name)
                if isinstance(value, tuple):
                    value = [str(v) for v in value]
                out[f.name] = str(value) if isinstance(value, Path) else value
        out["augment"] = asdict(self.augment) if self.augment else "off"
        out["speech_windows"] = asdict(self.speech_windows)
        out["hard_negatives"] = asdict(self.hard_negatives)
        return out


@dataclass
class TrainResult:
    run_id: str | None
    model_dir: Path
    test_accuracy: float
    val_accuracy: float
    epochs_run: int
    seconds_per_epoch: float  # median wall time of an epoch (the first one also traces)
    test_report: EvalReport | None = None


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


@dataclass
class Splits:
    """Features (N, frames, n_mfcc, 1) and label indices of the splits; train waveforms.
    ``train_y`` holds training classes (:mod:`train.word_classes`: labels, then words),
    ``label_map`` their labels; the other splits hold labels."""

    train_x: np.ndarray
    train_y: np.ndarray
    val_x: np.ndarray
    val_y: np.ndarray
    test_x: np.ndarray
    test_y: np.ndarray
    train_waves: np.ndarray | None  # None when training without augmentation
    label_map: np.ndarray  # training class -> label index
    classes: list[str]  # the training classes' names

    @property
    def word_classes(self) -> bool:
        """Whether training has classes beyond the labels (word classes)."""
        return len(self.label_map) > int(self.label_map.max()) + 1


def load_splits(dataset: Dataset, frontend: FrontendConfig, config: TrainConfig) -> Splits:
    index = {label: i for i, label in enumerate(dataset.labels)}
    out = {}
    for name in ("train", "val", "test"):
        examples = dataset.split(name)
        feats = cached_features(dataset, examples, frontend, config.cache_dir)
        out[f"{name}_x"] = feats[..., None]
        out[f"{name}_y"] = np.array([index[e.label] for e in examples], dtype=np.int32)
    waves = None
    if config.augment is not None:
        waves = load_waveforms(dataset, dataset.split("train"), frontend.sample_rate,
                               frontend.clip_samples)
    vocabulary = []
    if config.word_classes:
        words = [e.word if e.label == UNKNOWN else None for e in dataset.split("train")]
        vocabulary = word_vocabulary(words)
        out["train_y"] = word_targets(out["train_y"], words, vocabulary, len(dataset.labels))
    return Splits(train_waves=waves, label_map=label_map(dataset.labels, vocabulary),
                  classes=class_names(dataset.labels, vocabulary), **out)


def starting_model(config: TrainConfig, labels: list[str], frontend: FrontendConfig):
    """The ``init_from`` model, checked to have this run's labels and front-end."""
    from train.models import load_keras

    folder = Path(config.init_from)
    settings = ModelSettings.load(folder)
    if settings.arch != config.arch or list(settings.labels) != list(labels) \
            or settings.frontend != frontend:
        raise KwsError(f"{folder}: a {settings.arch} model for other labels or another "
                       f"front-end than this run's {config.arch} (init_from)")
    log(f"weights from {folder / MODEL_FILENAME}")
    return load_keras(folder)


def add_hard_negatives(splits: Splits, dataset: Dataset, frontend: FrontendConfig,
                       config: HardNegativeConfig, model) -> int:
    """Mine hard negatives with ``model`` and append them to the training split as
    ``_unknown_`` examples (waveforms and features); returns how many."""
    start = time.perf_counter()
    streams = non_keyword_streams(dataset, config, frontend.sample_rate)
    score = keyword_score(lambda x: model.predict(x[..., None], batch_size=1000, verbose=0),
                          dataset.labels)
    windows, reached = mine(streams, frontend, score, config)
    feats = Frontend(frontend)(windows)[..., None]
    splits.train_waves = np.concatenate([splits.train_waves, windows])
    splits.train_x = np.concatenate([splits.train_x, feats])
    splits.train_y = np.concatenate([
        splits.train_y, np.full(len(windows), dataset.labels.index(UNKNOWN), np.int32)])
    log(f"hard negatives: {len(windows)} of the {reached} windows scoring >= "
        f"{config.min_score:g} on {2 * config.minutes:g} min of the training speakers' "
        f"non-keyword streams ({time.perf_counter() - start:.0f} s)")
    return len(windows)


def class_weights(labels: np.ndarray, n_labels: int, power: float) -> np.ndarray:
    """Per-class loss weights ``~ 1 / count**power``, averaging 1 over the examples."""
    counts = np.bincount(labels, minlength=n_labels).astype(np.float64)
    weights = np.where(counts > 0, np.maximum(counts, 1.0) ** -power, 0.0)
    return (weights * len(labels) / max(float(np.dot(weights, counts)), 1e-12)).astype(
        np.float32)


def word_weights(words: list[str | None], power: float) -> np.ndarray:
    """Per-example factors ``~ 1 / count(word)**power`` averaging 1 over the examples that
    have a word (:func:`class_weights` with the words as classes); 1 for those without
    (``None``)."""
    out = np.ones(len(words), dtype=np.float32)
    named = [i for i, w in enumerate(words) if w is not None]
    if named:
        vocabulary = {w: k for k, w in enumerate(sorted({words[i] for i in named}))}
        ids = np.array([vocabulary[words[i]] for i in named])
        out[named] = class_weights(ids, len(vocabulary), power)[ids]
    return out


def folder_weights(in_main: np.ndarray, labels: np.ndarray, weight: float) -> np.ndarray:
    """Per-example factors: ``weight`` for the main folder's examples (``in_main``), 1 for the
    others, scaled so that each class's examples still average 1 (the class balance holds)."""
    raw = np.where(in_main, weight, 1.0)
    sums = np.bincount(labels, weights=raw)
    counts = np.bincount(labels)
    return (raw * counts[labels] / sums[labels]).astype(np.float32)


def speech_embedding_teacher(splits: Splits, dataset: Dataset, frontend: FrontendConfig,
                             config: TrainConfig, teachers: Teachers | None) -> Teachers:
    """``teachers`` (None: none yet) plus a head on Google's speech embedding, trained on the
    training clips as they are and one augmented copy of them, class-balanced as the student."""
    from train.speech_embedding import SAMPLE_RATE, SpeechEmbedding, fit_head

    if frontend.sample_rate != SAMPLE_RATE:
        raise KwsError(f"the speech-embedding teacher hears {SAMPLE_RATE} Hz audio, the model "
                       f"{frontend.sample_rate} Hz")
    start = time.perf_counter()
    embed = SpeechEmbedding()
    y = splits.label_map[splits.train_y]
    augment = replace(config.augment, sample_rate=frontend.sample_rate)
    noisy = augment_waveforms(splits.train_waves, np.random.default_rng([config.seed, 2**31]),
                              dataset.noise, augment)
    x = np.concatenate([embed(splits.train_waves), embed(noisy)])
    weights = class_weights(y, len(dataset.labels), config.balance)[y]
    head = fit_head(x, np.tile(y, 2), len(dataset.labels), np.tile(weights, 2), config.seed)
    own = Teachers([head], config.teacher_weight, [embed])
    val = load_waveforms(dataset, dataset.split("val"), frontend.sample_rate,
                         frontend.clip_samples)
    accuracy = float(np.mean(own.probabilities(None, val).argmax(1) == splits.val_y))
    log(f"speech-embedding teacher: validation accuracy {accuracy:.4f} "
        f"({time.perf_counter() - start:.0f} s)")
    if teachers is None:
        return own
    return Teachers(teachers.models + own.models, teachers.weight,
                    teachers.frontends + own.frontends)


def augmented_batches(splits: Splits, dataset: Dataset, frontend: FrontendConfig,
                      config: TrainConfig, teachers: Teachers | None = None):
    """A ``keras.utils.PyDataset`` of augmented training batches, reshuffled per epoch, with
    per-example loss weights (class balance) and the speech windows mixed in; made afresh for
    every batch or, with ``augment_copies``, taken from copies made once.

    Batch ``i`` of epoch ``e`` draws its randomness from ``default_rng([seed, e, i])``, so a
    run is repeatable whatever order Keras asks for batches in.
    """
    augment = replace(config.augment, sample_rate=frontend.sample_rate)
    windows = replace(config.speech_windows, sample_rate=frontend.sample_rate)
    compute = Frontend(frontend)
    labels = dataset.labels
    unknown = labels.index(UNKNOWN) if UNKNOWN in labels else -1
    bounds = unknown_rows = keyword_rows = unknown_p = reverse_rows = None
    train_labels = splits.label_map[splits.train_y]  # word classes -> _unknown_
    words = [e.word if e.label == UNKNOWN else None for e in dataset.split("train")]
    words += [None] * (len(splits.train_y) - len(words))  # hard negatives: no word
    if windows.enabled and unknown >= 0:
        bounds = speech_bounds(splits.train_waves)
        unknown_rows = np.nonzero(train_labels == unknown)[0]
        not_keywords = [labels.index(x) for x in (SILENCE, UNKNOWN) if x in labels]
        keyword_rows = np.nonzero(~np.isin(train_labels, not_keywords))[0]
        if windows.even_words:
            unknown_p = even_word_probabilities([words[i] for i in unknown_rows])
        reverse_rows = reversible_rows(train_labels, labels, windows, SILENCE)
    expected = train_labels.copy()
    if bounds is not None:  # the windows' share of each batch counts as unknown examples
        share = windows.share
        expected = np.concatenate([expected, np.full(round(share * len(expected)), unknown)])
    weights = class_weights(expected, len(labels), config.balance)
    per_clip = word_weights(words, config.word_balance)
    if config.main_weight != 1.0:
        main = dataset.config.data_dir
        in_main = [e.path is not None and e.path.is_relative_to(main)
                   for e in dataset.split("train")]
        in_main += [False] * (len(train_labels) - len(in_main))  # hard negatives
        per_clip = per_clip * folder_weights(np.array(in_main), train_labels,
                                             config.main_weight)

    def example_weights(rows: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Class weight times the clip's own factor (word balance, main folder weight; a
        speech window mixed in over a keyword clip gets factor 1; over an ``_unknown_`` clip,
        that clip's factor)."""
        return weights[splits.label_map[y]] * np.where(y == splits.train_y[rows],
                                                       per_clip[rows], 1.0)

    def augmented_rows(rows: np.ndarray, rng: np.random.Generator):
        """Features (before SpecAugment), labels and the teachers' targets (None without
        teachers) of augmented training rows."""
        waves, y = splits.train_waves[rows], splits.train_y[rows]
        if bounds is not None:
            waves, y = mix_in(rng, waves, y, splits.train_waves, bounds, unknown_rows,
                              keyword_rows, unknown, windows, unknown_p, reverse_rows)
        waves = augment_waveforms(waves, rng, dataset.noise, augment)
        if augment.vtlp_pct > 0 or augment.tempo_pct > 0:
            n = len(waves)
            alpha = (warp_factors(rng, n, augment.vtlp_pct) if augment.vtlp_pct > 0
                     else np.ones(n))
            rate = warp_factors(rng, n, augment.tempo_pct) if augment.tempo_pct > 0 else None
            feats = warped_features(waves, frontend, alpha, rate)
        else:
            feats = compute(waves)
        # the teachers score what the student hears, before SpecAugment
        soft = None if teachers is None else teachers.targets(feats[..., None], y, len(labels),
                                                              waves)
        return feats, y, soft

    copies = []  # with augment_copies: fixed augmented copies of the whole training split
    for c in range(config.augment_copies):
        feats = np.empty((len(splits.train_y), *frontend.feature_shape), dtype=np.float32)
        ys = np.empty(len(splits.train_y), dtype=splits.train_y.dtype)
        soft = None if teachers is None else np.empty((len(ys), len(labels)), np.float32)
        for start in range(0, len(ys), config.batch_size):
            rows = np.arange(start, min(start + config.batch_size, len(ys)))
            rng = np.random.default_rng([config.seed, c, start, 2**30])
            feats[rows], ys[rows], targets = augmented_rows(rows, rng)
            if soft is not None:
                soft[rows] = targets
        copies.append((feats, ys, soft))
        log(f"augmented copy {c + 1}/{config.augment_copies} of the training split ready")

    def make(epoch: int, rows: np.ndarray, rng: np.random.Generator):
        if copies:
            table, labels_of, soft = copies[epoch % len(copies)]
            feats, y = table[rows], labels_of[rows]
            target = y if soft is None else soft[rows]
        else:
            feats, y, soft = augmented_rows(rows, rng)
            target = y if soft is None else soft
        return feats, target, example_weights(rows, y).astype(np.float32)

    batches = epoch_batches(len(splits.train_y), config.batch_size, config.seed, augment, make,
                            mixup=config.mixup, n_classes=len(labels))
    # for training elsewhere from the same examples (benchmarks.experiments.gpu_folds)
    batches.copies, batches.example_weights = copies, example_weights
    return batches


def epoch_batches(n: int, batch_size: int, seed: int, augment: AugmentConfig, make,
                  mixup: float = 0.0, n_classes: int = 0):
    """A ``keras.utils.PyDataset`` over ``n`` training rows in a new order each epoch;
    ``make(epoch, rows, rng)`` gives a batch's features, targets and loss weights, then (with
    ``mixup`` > 0) mixup into probability targets over ``n_classes``, then SpecAugment. Batch
    ``i`` of epoch ``e`` draws from ``default_rng([seed, e, i])``."""
    import keras

    class EpochBatches(keras.utils.PyDataset):
        def __init__(self):
            super().__init__()
            self.epoch = 0
            self.order = self._order()

        def _order(self) -> np.ndarray:
            rng = np.random.default_rng([seed, self.epoch, 2**31 - 1])
            return rng.permutation(n)

        def __len__(self) -> int:
            return math.ceil(n / batch_size)

        def __getitem__(self, i: int):
            rows = self.order[i * batch_size : (i + 1) * batch_size]
            rng = np.random.default_rng([seed, self.epoch, i])
            feats, target, weights = make(self.epoch, rows, rng)
            if mixup:
                feats, target, weights = mix_up(feats, target, weights, rng, mixup, n_classes)
            return spec_augment(feats, rng, augment)[..., None], target, weights

        def on_epoch_end(self) -> None:
            self.epoch += 1
            self.order = self._order()

    return EpochBatches()


# what weight decay leaves alone, matched in variable names: biases and BatchNorm's scale and
# shift
NO_DECAY = ("bias", "gamma", "beta")


def compile_for_training(model, *, lr: float, min_lr_ratio: float, steps: int, epochs: int,
                         ema: float, loss, metric, weight_decay: float = 0.0,
                         sgd_momentum: float = 0.0) -> list:
    """Compile with Adam, or SGD with Nesterov momentum ``sgd_momentum`` when that is > 0,
    on a cosine decay over all ``steps * epochs`` steps, the kernels (only) decayed by
    ``weight_decay`` (decoupled: AdamW), with averaged weights when ``ema`` > 0; returns the
    callbacks that swap those in (before any checkpoint, so that it saves them)."""
    import keras

    schedule = keras.optimizers.schedules.CosineDecay(lr, decay_steps=steps * epochs,
                                                      alpha=min_lr_ratio)
    common = {"use_ema": ema > 0, "ema_momentum": ema or 0.99,
              "weight_decay": weight_decay or None}
    if sgd_momentum:
        optimizer = keras.optimizers.SGD(schedule, momentum=sgd_momentum, nesterov=True,
                                         **common)
    elif weight_decay:
        optimizer = keras.optimizers.AdamW(schedule, **common)
    else:
        optimizer = keras.optimizers.Adam(schedule, **common)
    if weight_decay:
        optimizer.exclude_from_weight_decay(var_names=list(NO_DECAY))
    model.compile(optimizer=optimizer, loss=loss, metrics=[metric])
    return [keras.callbacks.SwapEMAWeights(swap_on_epoch=True)] if ema else []


def training_objective(label_smoothing: float, soft: bool, val_y: np.ndarray, n_labels: int,
                       focal_gamma: float = 0.0):
    """The loss and the validation targets: with probability targets (``soft``: teachers,
    mixup) a loss on those and ``val_y`` one-hot, else one on the integer labels; with
    ``label_smoothing`` either way, focal (``focal_gamma`` > 0) or cross-entropy."""
    import keras

    from train.losses import SmoothedSparseCrossentropy

    if soft:
        loss = (keras.losses.CategoricalFocalCrossentropy(
                    alpha=1.0, gamma=focal_gamma, label_smoothing=label_smoothing)
                if focal_gamma else
                keras.losses.CategoricalCrossentropy(label_smoothing=label_smoothing))
        return loss, np.eye(n_labels, dtype=np.float32)[val_y]
    if label_smoothing or focal_gamma:
        return SmoothedSparseCrossentropy(label_smoothing, focal_gamma=focal_gamma), val_y
    return "sparse_categorical_crossentropy", val_y


def fit(model, splits: Splits, dataset: Dataset, frontend: FrontendConfig,
        config: TrainConfig, scratch: Path, extra_callbacks: list,
        teachers: Teachers | None = None) -> tuple[int, list[float]]:
    """Train with early stopping; leaves the best-on-validation weights in ``model``. With
    ``teachers`` the targets are soft (probability vectors), validation's one-hot."""
    import keras

    steps = math.ceil(len(splits.train_y) / config.batch_size)
    n_labels = len(dataset.labels)
    loss, val_y = training_objective(config.label_smoothing,
                                     teachers is not None or config.mixup > 0, splits.val_y,
                                     n_labels, config.focal_gamma)
    # the averaged weights are swapped in for validation and at each epoch's end, so the
    # checkpoint holds them (the callback must come before ModelCheckpoint)
    swap = compile_for_training(
        model, lr=config.lr, min_lr_ratio=config.min_lr_ratio, steps=steps,
        epochs=config.epochs, ema=config.ema, loss=loss, weight_decay=config.weight_decay,
        sgd_momentum=config.sgd_momentum,
        metric=merged_accuracy(splits.label_map) if splits.word_classes else "accuracy")
    best = scratch / "best.weights.h5"
    timer = epoch_timer()
    callbacks = [
        *swap,
        keras.callbacks.ModelCheckpoint(best, monitor="val_accuracy", save_best_only=True,
                                        save_weights_only=True, mode="max"),
        keras.callbacks.EarlyStopping(monitor="val_accuracy", patience=config.patience,
                                      mode="max"),
        timer, *extra_callbacks,
    ]
    verbose = config.verbose if config.verbose is not None else (
        1 if sys.stdout.isatty() else 2)
    if config.augment is not None:
        train_data = augmented_batches(splits, dataset, frontend, config, teachers)
        extra = {}
    else:
        train_data = splits.train_x
        y = splits.train_y if teachers is None else teachers.targets(
            splits.train_x, splits.train_y, n_labels)
        extra = {"y": y, "batch_size": config.batch_size, "shuffle": True}
    history = model.fit(train_data, **extra, epochs=config.epochs,
                        validation_data=(splits.val_x, val_y), callbacks=callbacks,
                        verbose=verbose)
    if best.is_file() and not config.keep_last:
        model.load_weights(best)
    return len(history.history.get("loss", [])), timer.seconds


def epoch_timer():
    """A Keras callback timing each epoch (training plus validation): ``.seconds``, and
    ``epoch_seconds`` in the epoch's logs for the callbacks after it."""
    import keras

    class EpochTimer(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.seconds: list[float] = []

        def on_epoch_begin(self, epoch, logs=None):
            self._start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            self.seconds.append(time.perf_counter() - self._start)
            if logs is not None:
                logs["epoch_seconds"] = self.seconds[-1]

    return EpochTimer()


def report(model, x: np.ndarray, y: np.ndarray, labels: list[str]) -> EvalReport:
    probs = model.predict(x, batch_size=256, verbose=0)
    guess = np.argmax(probs, axis=1)
    confusion = np.zeros((len(labels), len(labels)), dtype=np.int64)
    np.add.at(confusion, (y, guess), 1)
    return EvalReport(list(labels), confusion)


def train(config: TrainConfig) -> TrainResult:
    """Train ``config.arch`` on ``config.data``; see the module docstring."""
    config.check()
    import keras


    arch = architecture(config.arch)
    frontend = arch.frontend
    dataset = load_dataset(config.data)
    for name in ("train", "val", "test"):
        if not dataset.split(name):
            raise KwsError(f"{config.data.data_dir}: the {name} split is empty (too few "
                           "speakers or clips; add data or change the split percentages)")
    manifest = dataset.manifest()
    log(f"data: {len(dataset.labels)} labels, "
        + ", ".join(f"{s} {len(dataset.split(s))}" for s in ("train", "val", "test"))
        + f" examples (split: {dataset.split_rule})")
    for warning in check_training_data(dataset):
        log(f"warning: {warning}")
    start = time.perf_counter()
    splits = load_splits(dataset, frontend, config)
    log(f"features: {frontend.describe()} in "
        f"{time.perf_counter() - start:.1f} s")

    teachers = None
    if config.teachers:
        teachers = Teachers.load(config.teachers, config.teacher_weight, dataset.labels,
                                 frontend)
        if teachers.need_audio and config.augment is None:
            raise KwsError("a teacher of another front-end hears the training audio: train "
                           "with augmentation")
        log(f"distillation: {len(config.teachers)} teachers, weight {config.teacher_weight:g}")
    if config.embedding_teacher:
        teachers = speech_embedding_teacher(splits, dataset, frontend, config, teachers)
    keras.utils.set_random_seed(config.seed)
    stats = FeatureStats.of(splits.train_x) if config.normalize else None
    mined = 0
    if splits.word_classes:
        log(f"word classes: {', '.join(splits.classes[len(dataset.labels):])}")
    if config.init_from is None:
        model = arch.build(len(splits.classes), stats=stats)
    else:
        model = starting_model(config, dataset.labels, frontend)
        if config.hard_negatives.enabled:
            mined = add_hard_negatives(splits, dataset, frontend, config.hard_negatives, model)

    if config.track:
        run_context = tracking.tracked_run(config.tracking_uri, config.experiment,
                                           config.run_name, tags={"arch": config.arch})
    else:
        run_context = contextlib.nullcontext()
    with run_context as run, tempfile.TemporaryDirectory(prefix="kws-train-") as scratch:
        run_id = run.info.run_id if run is not None else None
        stamp = run_id[:8] if run_id else time.strftime("%Y%m%d-%H%M%S")
        out_dir = Path(config.out_dir or Path("runs") / f"{config.arch}-{stamp}")
        callbacks = []
        if run is not None:
            tracking.log_params({**config.to_params(), "frontend": frontend.to_dict(),
                                 "n_labels": len(dataset.labels),
                                 "params": model.count_params(),
                                 "data.totals": manifest["totals"],
                                 "data.files_sha256": manifest["files_sha256"]})
            callbacks.append(tracking.epoch_logger())
            callbacks.append(tracking.stop_on_sigterm())
        with (tracking.sigterm_deferred() if run is not None else contextlib.nullcontext(),
              contextlib.redirect_stdout(sys.stderr)):  # Keras progress is not the result
            epochs_run, seconds = fit(model, splits, dataset, frontend, config,
                                      Path(scratch), callbacks, teachers)
        if splits.word_classes:
            model = merge_words(model, splits.label_map)
        val_report = report(model, splits.val_x, splits.val_y, dataset.labels)
        test_report = report(model, splits.test_x, splits.test_y, dataset.labels)
        per_epoch = float(np.median(seconds)) if seconds else 0.0
        metrics = {"test_accuracy": round(test_report.accuracy, 6),
                   "val_accuracy": round(val_report.accuracy, 6),
                   "epochs_run": epochs_run, "seconds_per_epoch": round(per_epoch, 3),
                   "params": int(model.count_params())}
        if mined:
            metrics["hard_negatives"] = mined
        settings = ModelSettings(config.arch, list(dataset.labels), frontend, run_id=run_id,
                                 metrics=metrics,
                                 data=DataSummary.of(dataset, normalized=stats is not None))
        out_dir.mkdir(parents=True, exist_ok=True)
        model.save(out_dir / MODEL_FILENAME)
        settings.save(out_dir)
        write_skipped(dataset, out_dir)
        log(f"test split: {test_report.to_text()}")
        log(f"model: {out_dir / MODEL_FILENAME} (val {val_report.accuracy:.4f}, test "
            f"{test_report.accuracy:.4f}, {epochs_run} epochs, {per_epoch:.1f} s/epoch)")
        if run is not None:
            log_run(model, settings, manifest, test_report, out_dir, config,
                    example=splits.test_x[:2])
    return TrainResult(run_id, out_dir, test_report.accuracy, val_report.accuracy,
                       epochs_run, per_epoch, test_report)


def log_run(model, settings: ModelSettings, manifest: dict, test_report: EvalReport,
            out_dir: Path, config: TrainConfig, example: np.ndarray) -> None:
    """Final metrics, the model folder, the Keras model and the reports into the open run."""
    import matplotlib.pyplot as plt
    import mlflow

    # the per-epoch curve is "val_accuracy"; the kept (best) epoch's value gets its own name
    mlflow.log_metrics({("best_val_accuracy" if k == "val_accuracy" else k): float(v)
                        for k, v in settings.metrics.items()})
    mlflow.log_metrics({f"test_accuracy.{label}": acc
                        for label, acc in test_report.per_class().items() if acc is not None})
    mlflow.log_artifacts(str(out_dir), artifact_path=MODEL_DIR_ARTIFACT)
    mlflow.log_dict(settings.frontend.to_dict(), "frontend.json")
    mlflow.log_dict({"labels": list(settings.labels)}, "labels.json")
    mlflow.log_dict(manifest, "dataset_manifest.json")
    mlflow.log_dict(test_report.to_dict(), "test_report.json")
    mlflow.log_text(tracking.model_summary(model), "model_summary.txt")
    fig = tracking.confusion_figure(
        test_report.confusion, list(settings.labels),
        f"{settings.arch}: test accuracy {100 * test_report.accuracy:.1f}%")
    mlflow.log_figure(fig, "confusion_matrix.png")
    plt.close(fig)
    if config.log_keras_model:
        tracking.log_model(model, example)


def result_json(result: TrainResult) -> str:
    return json.dumps({"run_id": result.run_id, "model_dir": str(result.model_dir),
                       "test_accuracy": result.test_accuracy,
                       "val_accuracy": result.val_accuracy, "epochs_run": result.epochs_run,
                       "seconds_per_epoch": result.seconds_per_epoch}, indent=2)
