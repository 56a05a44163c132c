"""Speech Commands for training: speaker-disjoint splits and the 12-class / all-words tasks.

Reads the data set's layout (v0.01, v0.02) and the canonical test-set layout of
speech_commands_mini (``_silence_/``, ``_unknown_/<word>_<speaker>_nohash_<n>.wav``) with
:func:`edge_runtime.dataset.list_clips`, WAV or FLAC. Splits come from ``validation_list.txt``
/ ``testing_list.txt`` when present, else from the data set's speaker-hash rule. Extra folders
(``extra_dirs``) add training examples: their clips of speakers who are in the validation
or test split are dropped, so every split stays speaker-disjoint; ``extra_val_pct`` of their
speakers (salted hash) validate instead of training, for a validation of more speakers than the
main folder can spare, and ``extra_train_pct`` of the rest train (another salted hash: a
learning curve over the number of speakers). ``cv_folds`` > 0 re-splits the main folder's
training and validation speakers into that many folds (salted hash), fold ``cv_fold``
validating: cross-validation on the main folder's own speakers, the test split unchanged.
Unknown and silence examples are sampled per split as TensorFlow's
``speech_commands/input_data.py`` does.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from edge_runtime.dataset import NOISE_DIR, SILENCE, UNKNOWN, Clip, list_clips, read_list
from edge_runtime.errors import KwsError
from edge_runtime.wav import Audio, fit_clip, read_wav, resample

STANDARD_WORDS = ["yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go"]
MAX_NUM_WAVS_PER_CLASS = 2**27 - 1  # ~134M, the constant of the data set's split rule
NOISE_RATE = 16000  # background noise is kept at this rate
VAL_LIST, TEST_LIST = "validation_list.txt", "testing_list.txt"
SPLITS = ("train", "val", "test")
IO_THREADS = 4
SPLIT_SALT = "kws-edge/"  # used only when the plain rule leaves a split empty (see load_dataset)
EXTRA_VAL_SALT = "kws-edge/extra-val/"  # which extra folders' speakers validate
EXTRA_TRAIN_SALT = "kws-edge/extra-train/"  # which of the others train (extra_train_pct)
CV_SALT = "kws-edge/cv/"  # which fold a main-folder speaker falls in (cv_folds)
AUDIO_SUFFIXES = (".wav", ".flac")  # training reads FLAC too (soundfile); the device WAV only


@dataclass(frozen=True)
class DataConfig:
    """Where the data is and how to split and sample it."""

    data_dir: Path
    task: str = "12"  # "12", "all", or a comma-separated word list (+ _silence_, _unknown_)
    val_pct: float = 10.0
    test_pct: float = 10.0
    silence_pct: float = 10.0
    unknown_pct: float = 10.0
    synth_dir: Path | None = None  # synthetic clips: added to the training split only
    seed: int = 0
    extra_dirs: tuple[Path, ...] = ()  # more real speech: added to the training split only
    train_unknown_pct: float | None = None  # the training split's unknown_pct (None: same)
    extra_val_pct: float = 0.0  # share of the extra folders' speakers that validate, not train
    extra_train_pct: float = 100.0  # share of the extra folders' other speakers that train
    cv_folds: int = 0  # > 0: the main folder's train+val speakers in this many folds ...
    cv_fold: int = 0  # ... of which this one validates (the test split never changes)
    # a text file of example ids (Dataset.example_id, one per line, "#" comments): these
    # clips never train (validation and test keep them)
    drop_train: Path | None = None

    def __post_init__(self) -> None:  # folders given as strings become paths
        set_field = object.__setattr__  # frozen
        set_field(self, "data_dir", Path(self.data_dir))
        set_field(self, "synth_dir", None if self.synth_dir is None else Path(self.synth_dir))
        set_field(self, "extra_dirs", tuple(map(Path, self.extra_dirs)))
        set_field(self, "drop_train", None if self.drop_train is None else Path(self.drop_train))

    def to_dict(self) -> dict:
        d = asdict(self)
        d["data_dir"] = str(self.data_dir)
        d["synth_dir"] = None if self.synth_dir is None else str(self.synth_dir)
        d["extra_dirs"] = [str(p) for p in self.extra_dirs]
        d["drop_train"] = None if self.drop_train is None else str(self.drop_train)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> DataConfig:
        """From :meth:`to_dict`; other keys are ignored, missing ones take the defaults."""
        return cls(**{k: v for k, v in d.items() if k in cls.__dataclass_fields__})

    def without_train_only(self, data_dir: Path | None = None) -> DataConfig:
        """These split settings without the folders that add training examples and without
        ``drop_train`` (they never change the test split; validation loses their
        ``extra_val_pct`` speakers), on ``data_dir`` if given."""
        return replace(self, data_dir=self.data_dir if data_dir is None else Path(data_dir),
                       synth_dir=None, extra_dirs=(), extra_val_pct=0.0, drop_train=None)

    def unknown_pct_of(self, split: str) -> float:
        if split == "train" and self.train_unknown_pct is not None:
            return self.train_unknown_pct
        return self.unknown_pct

    @property
    def train_only_dirs(self) -> tuple[Path, ...]:
        """Folders that add training examples only (extra speech, then synthetic speech)."""
        return self.extra_dirs + ((self.synth_dir,) if self.synth_dir is not None else ())


@dataclass
class Example:
    """One training example: a clip, or (path None) a silence cut from background noise."""

    path: Path | None
    label: str
    speaker: str | None
    noise_index: int = -1  # path None: index into Dataset.noise (-1: digital silence)
    noise_offset: int = 0  # path None: first sample of the cut, at NOISE_RATE
    noise_gain: float = 1.0  # path None: volume of the cut
    word: str | None = None  # _unknown_ examples: the word actually spoken


@dataclass
class Dataset:
    labels: list[str]
    train: list[Example]
    val: list[Example]
    test: list[Example]
    noise: list[np.ndarray]  # background noise at NOISE_RATE (may be empty)
    skipped: dict[str, int]  # e.g. {"unreadable": 3}
    config: DataConfig | None = None
    noise_names: list[str] = field(default_factory=list)
    skipped_files: list[str] = field(default_factory=list)
    split_rule: str = "hash"  # "lists", "hash", or the salted hash for one-split folders

    def split(self, name: str) -> list[Example]:
        if name not in SPLITS:
            raise KwsError(f"unknown split {name!r} (choose from {', '.join(SPLITS)})")
        return getattr(self, name)

    def example_id(self, ex: Example) -> str:
        """A stable name for an example: its path under the data folder, or its noise cut."""
        if ex.path is None:
            if ex.noise_index < 0:
                return "silence:zeros"
            name = self.noise_names[ex.noise_index] if self.noise_names else ex.noise_index
            return f"noise:{name}:{ex.noise_offset}:{ex.noise_gain:.6f}"
        return path_id(ex.path, self.config)

    def manifest(self) -> dict:
        """Counts per split and class, a sha256 of the split file list, folder and config."""
        counts = {s: dict(Counter(e.label for e in self.split(s))) for s in SPLITS}
        lines = sorted(f"{s}\t{e.label}\t{self.example_id(e)}" for s in SPLITS
                       for e in self.split(s))
        digest = hashlib.sha256("\n".join(lines).encode("utf-8", "surrogateescape")).hexdigest()
        cfg = self.config
        return {
            "data_dir": None if cfg is None else str(cfg.data_dir),
            "extra_dirs": [] if cfg is None else [str(d) for d in cfg.extra_dirs],
            "config": None if cfg is None else cfg.to_dict(),
            "labels": list(self.labels),
            "split_rule": self.split_rule,
            "counts": {s: {lb: counts[s].get(lb, 0) for lb in self.labels} for s in SPLITS},
            "totals": {s: len(self.split(s)) for s in SPLITS},
            "speakers": {s: len({e.speaker for e in self.split(s) if e.speaker}) for s in SPLITS},
            "files_sha256": digest,
            "noise": list(self.noise_names),
            "skipped": dict(self.skipped),
        }


def path_id(path: Path, config: DataConfig | None) -> str:
    """A clip's stable name: its path under the folder it came from, prefixed ``synth:`` or
    ``extra:<folder name>/`` for the training-only folders (:meth:`Dataset.example_id`)."""
    bases = [("", config and config.data_dir), ("synth:", config and config.synth_dir)] + [
        (f"extra:{Path(d).name}/", d) for d in (config.extra_dirs if config else ())]
    for prefix, base in bases:
        if base:
            try:
                return prefix + path.relative_to(base).as_posix()
            except ValueError:
                pass
    return str(path)


def read_drop_list(path: Path) -> frozenset[str]:
    """The example ids of a ``drop_train`` file (blank lines and ``#`` comments skipped)."""
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise KwsError(f"{path}: cannot read the list of clips to drop ({e})") from None
    return frozenset(line.strip() for line in lines
                     if line.strip() and not line.lstrip().startswith("#"))


def name_hash(name: str, salt: str = "") -> int:
    """SHA-1 of ``salt + name`` as an integer: what the split rules deal speakers by."""
    return int(hashlib.sha1((salt + name).encode("utf-8", "surrogateescape")).hexdigest(), 16)


def which_set(hash_name: str, val_pct: float, test_pct: float, salt: str = "") -> str:
    """The data set's documented split rule on a name (``"train"``, ``"val"`` or ``"test"``)."""
    value = name_hash(hash_name, salt) % (MAX_NUM_WAVS_PER_CLASS + 1)
    pct = value * (100.0 / MAX_NUM_WAVS_PER_CLASS)
    if pct < val_pct:
        return "val"
    if pct < val_pct + test_pct:
        return "test"
    return "train"


def split_name(clip: Clip) -> str:
    """What the split rule hashes: the speaker, or the file name for speaker-less clips."""
    if clip.word == SILENCE or clip.speaker is None:
        return clip.path.name
    if clip.path.parent.name == UNKNOWN:
        return clip.speaker  # <word>_<speaker>_nohash_n: keep with the speaker's keywords
    return re.sub(r"_nohash_.*$", "", clip.path.name)


def cv_fold_of(name: str, folds: int) -> int:
    """The fold (0 .. ``folds``-1) of a clip's :func:`split_name` (its speaker, mostly)."""
    return name_hash(name, CV_SALT) % folds


def _in_speaker_share(clip: Clip, pct: float, salt: str, speakerless: bool) -> bool:
    """Whether an extra folder's clip is one of ``pct`` % of its speakers (salted hash);
    ``speakerless``: the answer for clips without a speaker (and silence)."""
    if clip.speaker is None or clip.word == SILENCE:
        return speakerless
    return which_set(clip.speaker, pct, 0.0, salt) == "val"


def _extra_split(clip: Clip, val_pct: float) -> str:
    """``"val"`` for the extra folders' clips of ``val_pct`` % of their speakers, else
    ``"train"`` (speaker-less clips always train)."""
    return "val" if _in_speaker_share(clip, val_pct, EXTRA_VAL_SALT, False) else "train"


def extra_val_speakers(folder: str | Path, val_pct: float) -> frozenset[str]:
    """The speakers of training-only ``folder`` who validate at ``extra_val_pct`` = ``val_pct``
    (so never train): a model's validation speakers beyond its main folder's."""
    return frozenset(c.speaker for c in list_clips(folder, AUDIO_SUFFIXES)
                     if _extra_split(c, val_pct) == "val")


def _split(clips: list[Clip], rule) -> dict[str, list[Clip]]:
    by_split: dict[str, list[Clip]] = {s: [] for s in SPLITS}
    for clip in clips:
        by_split[rule(clip)].append(clip)
    return by_split


def _lopsided(by_split: dict[str, list[Clip]], config: DataConfig) -> bool:
    """True when a split that should get speakers got none although others have many."""
    speakers = {s: {c.speaker for c in by_split[s] if c.speaker} for s in SPLITS}
    wanted = {"train": 100 - config.val_pct - config.test_pct, "val": config.val_pct,
              "test": config.test_pct}
    return (sum(map(len, speakers.values())) >= 20
            and any(wanted[s] > 0 and not speakers[s] for s in SPLITS))


def _check_config(config: DataConfig) -> None:
    for name in ("val_pct", "test_pct", "silence_pct", "unknown_pct"):
        if not 0 <= getattr(config, name) <= 100:
            raise KwsError(f"{name} must be within 0-100, got {getattr(config, name)}")
    if not 0 <= config.extra_val_pct < 100:
        raise KwsError(f"extra_val_pct must be within 0-100 (excluded), got "
                       f"{config.extra_val_pct}")
    if config.train_unknown_pct is not None and not 0 <= config.train_unknown_pct <= 1000:
        raise KwsError(f"train_unknown_pct must be within 0-1000, got {config.train_unknown_pct}")
    if not 0 < config.extra_train_pct <= 100:
        raise KwsError(f"extra_train_pct must be within 0-100 (0 excluded), got "
                       f"{config.extra_train_pct}")
    if config.extra_train_pct < 100 and not config.extra_dirs:
        raise KwsError("extra_train_pct needs extra folders (--extra) to take speakers from")
    if config.extra_val_pct > 0 and not config.extra_dirs:
        raise KwsError("extra_val_pct needs extra folders (--extra) to take speakers from")
    for folder in config.extra_dirs:
        if not Path(folder).is_dir():
            raise KwsError(f"{folder}: no such data folder")
    if config.val_pct + config.test_pct >= 100:
        raise KwsError("val_pct + test_pct must be below 100 (nothing left to train on)")
    if config.cv_folds == 1 or config.cv_folds < 0:
        raise KwsError(f"cv_folds must be 0 (off) or at least 2, got {config.cv_folds}")
    if not config.cv_folds and config.cv_fold:
        raise KwsError(f"cv_fold {config.cv_fold} needs cv_folds (the number of folds)")
    if config.cv_folds and not 0 <= config.cv_fold < config.cv_folds:
        raise KwsError(f"cv_fold must be within 0-{config.cv_folds - 1}, got {config.cv_fold}")


def read_clip(path: Path) -> Audio:
    """A WAV (the runtime's reader) or FLAC (soundfile) file as mono float32."""
    if path.suffix.lower() != ".flac":
        return read_wav(path)
    import soundfile

    try:
        samples, rate = soundfile.read(path, dtype="float32", always_2d=True)
    except (RuntimeError, OSError) as exc:  # soundfile.LibsndfileError is a RuntimeError
        raise KwsError(f"{path}: cannot read FLAC ({exc})") from None
    return Audio(np.ascontiguousarray(samples.mean(axis=1), dtype=np.float32), int(rate))


def load_clip(path: Path, sample_rate: int) -> Audio:
    """:func:`read_clip` resampled to ``sample_rate``."""
    return resample(read_clip(path), sample_rate)


def _readable(path: Path) -> bool:
    try:
        read_clip(path)
    except KwsError:
        return False
    return True


def _usable_clips(root: Path, skipped: Counter, skipped_files: list[str]) -> list[Clip]:
    """Every readable clip under ``root``; empty label folders and all-unreadable are errors."""
    clips = list_clips(root, AUDIO_SUFFIXES)
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        if folder.name == NOISE_DIR or folder.name.startswith("."):
            continue
        if not any(f.suffix in AUDIO_SUFFIXES for f in folder.iterdir()):
            raise KwsError(f"{folder}: label folder has no clips (.wav/.flac files)")
    with ThreadPoolExecutor(IO_THREADS) as pool:
        ok = list(pool.map(_readable, (c.path for c in clips)))
    bad = [c for c, good in zip(clips, ok, strict=True) if not good]
    if len(bad) == len(clips):
        raise KwsError(f"{root}: none of the {len(clips)} clips is readable audio")
    skipped["unreadable"] += len(bad)
    skipped_files.extend(str(c.path) for c in bad)
    return [c for c, good in zip(clips, ok, strict=True) if good]


def _load_noise(roots: list[Path], skipped: Counter) -> tuple[list[np.ndarray], list[str]]:
    """The background-noise recordings (at least one second each) at NOISE_RATE."""
    noise, names = [], []
    paths = sorted(p for root in roots for s in AUDIO_SUFFIXES
                   for p in (root / NOISE_DIR).glob(f"*{s}"))
    for path in paths:
        try:
            samples = load_clip(path, NOISE_RATE).samples
        except KwsError:
            skipped["noise_unreadable"] += 1
            continue
        if samples.size < NOISE_RATE:
            skipped["noise_too_short"] += 1
            continue
        noise.append(samples)
        names.append(path.name)
    return noise, names


def task_words(task: str, present: set[str]) -> tuple[list[str], bool]:
    """The keyword classes of a task and whether it has an ``_unknown_`` class."""
    if task == "12":
        words, with_unknown = list(STANDARD_WORDS), True
    elif task == "all":
        words, with_unknown = sorted(present), False
    else:
        words = [w.strip() for w in task.split(",") if w.strip()]
        with_unknown = True
        if not words or len(set(words)) != len(words):
            raise KwsError(f"task {task!r}: give '12', 'all' or distinct comma-separated words")
    if not set(words) & present:
        raise KwsError(f"task {task!r}: the data holds no clips of its words")
    missing = [w for w in words if w not in present]
    if task != "12" and missing:
        raise KwsError(f"task {task!r}: no clips of {', '.join(missing)}")
    return words, with_unknown


def _sample(rng: np.random.Generator, items: list, n: int) -> list:
    if n >= len(items):
        return list(items)
    return [items[i] for i in sorted(rng.choice(len(items), size=n, replace=False))]


def _silence(rng: np.random.Generator, pool: list[Clip], noise: list[np.ndarray], n: int
             ) -> list[Example]:
    """``n`` silence examples: real ``_silence_`` clips if any, else cuts of noise, else zeros."""
    if pool:
        return [Example(c.path, SILENCE, None) for c in _sample(rng, pool, n)]
    out = []
    for _ in range(n):
        if not noise:
            out.append(Example(None, SILENCE, None))
            continue
        i = int(rng.integers(len(noise)))
        offset = int(rng.integers(noise[i].size - NOISE_RATE + 1))
        out.append(Example(None, SILENCE, None, i, offset, float(rng.uniform(0.0, 1.0))))
    return out


def load_dataset(config: DataConfig) -> Dataset:
    """List, check and split the data; sample unknown and silence examples per split."""
    _check_config(config)
    root = Path(config.data_dir)
    skipped: Counter = Counter()
    skipped_files: list[str] = []
    clips = _usable_clips(root, skipped, skipped_files)
    val_list, test_list = read_list(root, VAL_LIST), read_list(root, TEST_LIST)
    use_lists = val_list is not None or test_list is not None
    if use_lists:
        rule = "lists"
        by_split = _split(clips, lambda c: "test" if c.rel in (test_list or ()) else
                          "val" if c.rel in (val_list or ()) else "train")
    else:
        rule = "hash"
        by_split = _split(clips, lambda c: which_set(split_name(c), config.val_pct,
                                                      config.test_pct))
        if _lopsided(by_split, config):
            # The folder is itself one split of the data set (e.g. the canonical test set that
            # speech_commands_mini comes from): the plain rule puts every speaker in one split.
            rule = f"hash, salted with {SPLIT_SALT!r}"
            by_split = _split(clips, lambda c: which_set(split_name(c), config.val_pct,
                                                          config.test_pct, SPLIT_SALT))
    if config.cv_folds:
        pool, by_split["train"], by_split["val"] = by_split["train"] + by_split["val"], [], []
        for clip in pool:
            fold = cv_fold_of(split_name(clip), config.cv_folds)
            by_split["val" if fold == config.cv_fold else "train"].append(clip)
        rule += (f"; train and val speakers re-split into {config.cv_folds} folds (hash salted "
                 f"with {CV_SALT!r}), fold {config.cv_fold} validates")
    eval_speakers = {c.speaker for s in ("val", "test") for c in by_split[s] if c.speaker}
    extra_val: list[Clip] = []  # validated apart: the main folder's val split stays as it is
    for folder in config.train_only_dirs:  # the main folder's val/test speakers are dropped
        extra = _usable_clips(folder, skipped, skipped_files)
        kept = [c for c in extra if c.speaker is None or c.speaker not in eval_speakers]
        if len(kept) < len(extra):
            skipped["speaker_in_eval_split"] += len(extra) - len(kept)
        if folder in config.extra_dirs and config.extra_val_pct > 0:
            held = _split(kept, lambda c: _extra_split(c, config.extra_val_pct))
            kept, extra_val = held["train"], extra_val + held["val"]
        if folder in config.extra_dirs and config.extra_train_pct < 100:
            sampled = [c for c in kept if _in_speaker_share(c, config.extra_train_pct,
                                                            EXTRA_TRAIN_SALT, True)]
            skipped["extra_speaker_not_sampled"] += len(kept) - len(sampled)
            kept = sampled
        by_split["train"] += kept
    if config.drop_train is not None:
        dropped = read_drop_list(config.drop_train)
        kept = [c for c in by_split["train"] if path_id(c.path, config) not in dropped]
        skipped["dropped_from_training"] = len(by_split["train"]) - len(kept)
        by_split["train"] = kept
        rule += f"; {len(dropped)} listed clips never train ({config.drop_train.name})"
    if config.extra_dirs:
        rule += ("; extra folders: training split only, minus speakers of val/test"
                 if config.extra_val_pct == 0 else
                 f"; extra folders: training split minus speakers of val/test, but "
                 f"{config.extra_val_pct:g}% of their speakers (hash salted with "
                 f"{EXTRA_VAL_SALT!r}) validate")
        if config.extra_train_pct < 100:
            rule += (f"; {config.extra_train_pct:g}% of the extra folders' other speakers "
                     f"train (hash salted with {EXTRA_TRAIN_SALT!r})")
    noise, noise_names = _load_noise([root], skipped)
    own_noise = len(noise)  # validation and test silence come from the main folder alone
    more = _load_noise(list(map(Path, config.extra_dirs)), skipped)
    noise, noise_names = noise + more[0], noise_names + more[1]
    if not noise:  # no _background_noise_: the training split's _silence_ clips are the noise
        silent = [c for c in by_split["train"] if c.word == SILENCE]
        noise = [fit_clip(load_clip(c.path, NOISE_RATE).samples, NOISE_RATE) for c in silent]
        noise_names = [c.rel for c in silent]
        own_noise = len(noise)

    present = {c.word for c in clips + by_split["train"] if c.word != SILENCE}
    words, with_unknown = task_words(config.task, present)
    has_silence = config.silence_pct > 0
    labels = ([SILENCE] if has_silence or with_unknown else []) + (
        [UNKNOWN] if with_unknown else []) + words
    wanted = set(words)

    def examples(rng: np.random.Generator, part: list[Clip], unknown_pct: float,
                 silence_pct: float, noise: list[np.ndarray]) -> list[Example]:
        keep = [Example(c.path, c.word, c.speaker) for c in part if c.word in wanted]
        n = len(keep)
        if with_unknown:
            pool = [c for c in part if c.word not in wanted and c.word != SILENCE]
            keep += [Example(c.path, UNKNOWN, c.speaker, word=c.word)
                     for c in _sample(rng, pool, math.ceil(n * unknown_pct / 100))]
        if SILENCE in labels:
            pool = [c for c in part if c.word == SILENCE]
            keep += _silence(rng, pool, noise, math.ceil(n * silence_pct / 100))
        return keep

    # one generator per split: what the training side holds (extra folders, its unknown
    # percentage) never changes which unknown and silence clips validation and test get
    splits = {name: examples(np.random.default_rng([config.seed, index]), by_split[name],
                             config.unknown_pct_of(name), config.silence_pct,
                             noise if name == "train" else noise[:own_noise])
              for index, name in enumerate(SPLITS)}
    if extra_val:  # words and unknown words as the main folder's validation (which holds the
        # silence examples), with a generator of its own
        splits["val"] += examples(np.random.default_rng([config.seed, len(SPLITS)]),
                                  extra_val, config.unknown_pct, 0.0, [])
    return Dataset(labels, splits["train"], splits["val"], splits["test"], noise,
                   dict(skipped), config, noise_names, skipped_files,
                   rule)


def example_waveform(dataset: Dataset, ex: Example, sample_rate: int, clip_samples: int
                     ) -> np.ndarray:
    """One example as ``clip_samples`` float32 samples at ``sample_rate``."""
    if ex.path is not None:
        return fit_clip(load_clip(ex.path, sample_rate).samples, clip_samples)
    if ex.noise_index < 0:
        return np.zeros(clip_samples, dtype=np.float32)
    n = math.ceil(clip_samples * NOISE_RATE / sample_rate)
    cut = dataset.noise[ex.noise_index][ex.noise_offset : ex.noise_offset + n] * ex.noise_gain
    cut = resample(Audio(cut.astype(np.float32), NOISE_RATE), sample_rate).samples
    return fit_clip(cut, clip_samples)


def load_waveforms(dataset: Dataset, examples: list[Example], sample_rate: int,
                   clip_samples: int) -> np.ndarray:
    """``(len(examples), clip_samples)`` float32 waveforms, in the order given."""
    out = np.zeros((len(examples), clip_samples), dtype=np.float32)

    def fill(i: int) -> None:
        out[i] = example_waveform(dataset, examples[i], sample_rate, clip_samples)

    with ThreadPoolExecutor(IO_THREADS) as pool:
        list(pool.map(fill, range(len(examples))))
    return out
