"""Long test audio from Speech Commands clips: keywords at known times among other words and
background noise, with a ``start_s,end_s,label`` CSV of where each keyword is (NumPy only).

Word clips are placed as they are (they replace the noise bed where they sit), so the samples
at a labelled time are exactly the clip's samples.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edge_runtime.dataset import NOISE_DIR, SILENCE, UNKNOWN, list_clips
from edge_runtime.errors import KwsError
from edge_runtime.wav import Audio, load_audio

DEFAULT_KEYWORDS = ("yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go")
LABEL_COLUMNS = ("start_s", "end_s", "label")
MAX_MINUTES = 24 * 60


@dataclass(frozen=True)
class StreamSpec:
    """What to generate."""

    minutes: float = 10.0
    seed: int = 0
    keywords: tuple[str, ...] = DEFAULT_KEYWORDS
    sample_rate: int = 16000
    keyword_fraction: float = 0.5  # of the placed words; the rest are other words
    gap_s: tuple[float, float] = (1.0, 3.0)  # silence between words, uniform
    noise_rms: float = 0.01  # level of the background bed
    crossfade_s: float = 0.02  # between background pieces
    speakers: frozenset[str] | None = None  # only these speakers' words (e.g. held-out ones)
    trim: bool = False  # cut each word to its speech (with gap_s near 0: running speech)
    # other words drawn word first, each word equally likely, then one of its clips (False:
    # every clip equally likely, so a word with many clips, e.g. the extra folder's
    # bed/cat/happy, makes most of the stream)
    even_words: bool = False

    def validate(self) -> None:
        if not 0 < self.minutes <= MAX_MINUTES:
            raise KwsError(f"--minutes must be in (0, {MAX_MINUTES}], got {self.minutes:g}")
        if not 4000 <= self.sample_rate <= 192000:
            raise KwsError(f"sample rate must be 4000-192000 Hz, got {self.sample_rate}")
        if not self.keywords:
            raise KwsError("no keywords given")
        if not 0.0 <= self.keyword_fraction <= 1.0:
            raise KwsError("keyword_fraction must be in [0, 1]")
        if not 0.0 <= self.gap_s[0] <= self.gap_s[1] < 3600:
            raise KwsError("need 0 <= minimum gap <= maximum gap")
        if not 0 <= self.noise_rms <= 1:
            raise KwsError(f"noise level must be in [0, 1], got {self.noise_rms:g}")


def non_keyword_specs(seed: int, **common) -> dict[str, StreamSpec]:
    """Streams with no keyword: ``other_words``, isolated non-keyword words 1-3 s apart, and
    ``running_speech``, the same kind of words cut to their speech and joined with 0-100 ms
    gaps (seeds ``seed`` and ``seed + 1``; ``common``: the other StreamSpec fields)."""
    return {
        "other_words": StreamSpec(seed=seed, keyword_fraction=0.0, **common),
        "running_speech": StreamSpec(seed=seed + 1, keyword_fraction=0.0, trim=True,
                                     gap_s=(0.0, 0.1), **common),
    }


FRAME = 160  # 10 ms at 16 kHz: the resolution of speech_bounds


def speech_bounds(waves: np.ndarray, rel_db: float = -30.0) -> np.ndarray:
    """``(N, 2)`` first and last+1 sample of the 10-ms frames within ``rel_db`` of each
    clip's loudest frame (the whole clip when it is silent)."""
    waves = np.atleast_2d(waves)
    n, samples = waves.shape
    frames = samples // FRAME
    energy = np.square(waves[:, : frames * FRAME].astype(np.float64)).reshape(n, frames, FRAME)
    energy = energy.mean(axis=2)
    peak = energy.max(axis=1, keepdims=True)
    loud = (energy >= peak * 10 ** (rel_db / 10)) & (peak > 0)
    first = np.where(loud.any(axis=1), loud.argmax(axis=1), 0)
    last = np.where(loud.any(axis=1), frames - loud[:, ::-1].argmax(axis=1), frames)
    return np.stack([first * FRAME, last * FRAME], axis=1)


@dataclass(frozen=True)
class Placement:
    """One word clip in the stream; ``label`` is the keyword or ``_unknown_``."""

    start: int  # first sample
    end: int  # one past the last sample
    label: str
    source: Path

    def seconds(self, sample_rate: int) -> tuple[float, float]:
        return self.start / sample_rate, self.end / sample_rate


@dataclass
class GeneratedStream:
    samples: np.ndarray
    sample_rate: int
    placements: list[Placement]

    def keyword_rows(self) -> list[tuple[float, float, str]]:
        """``(start_s, end_s, label)`` of every keyword placed."""
        return [(*p.seconds(self.sample_rate), p.label)
                for p in self.placements if p.label != UNKNOWN]


def _noise_bed(sources: list[Path], n: int, spec: StreamSpec, rng: np.random.Generator,
               load: Callable[[Path, int], Audio]) -> np.ndarray:
    """``n`` samples of background: random noise pieces at ``noise_rms``, cross-faded."""
    rate = spec.sample_rate
    if not sources or spec.noise_rms == 0:
        return (spec.noise_rms * rng.standard_normal(n)).astype(np.float32)
    fade = max(1, round(spec.crossfade_s * rate))
    ramp = np.linspace(0.0, 1.0, fade, dtype=np.float32)
    bed = np.zeros(n + fade, dtype=np.float32)
    cache: dict[Path, np.ndarray] = {}
    pos = 0
    while pos < n:
        path = sources[rng.integers(len(sources))]
        if path not in cache:
            cache[path] = load(path, rate).samples
        piece = cache[path]
        if piece.size > 2 * rate:  # long noise recordings: a random 1-2 s cut
            length = int(rng.integers(rate, 2 * rate))
            start = int(rng.integers(piece.size - length))
            piece = piece[start : start + length]
        if piece.size < 4 * fade:  # too short to cross-fade: repeat it
            piece = np.resize(piece, 4 * fade)
        rms = float(np.sqrt(np.mean(np.square(piece, dtype=np.float64))))
        piece = piece * np.float32(min(1.0, spec.noise_rms / rms) if rms > 0 else 0.0)
        piece[:fade] *= ramp
        piece[-fade:] *= ramp[::-1]
        take = min(piece.size, bed.size - pos)
        bed[pos : pos + take] += piece[:take]
        pos += piece.size - fade
    return bed[:n]


def generate(data_dir: str | Path, spec: StreamSpec = StreamSpec(), *,
             extra_dirs: Sequence[str | Path] = (), suffixes: tuple[str, ...] = (".wav",),
             load: Callable[[Path, int], Audio] = load_audio) -> GeneratedStream:
    """Build the stream from the clips under ``data_dir`` (Speech Commands layout) and
    ``extra_dirs`` (their words only: the background comes from ``data_dir``). The device
    reads WAV; a caller with a FLAC reader passes it as ``load`` with ``suffixes``."""
    spec.validate()
    data_dir = Path(data_dir)
    clips = [c for d in (data_dir, *map(Path, extra_dirs)) for c in list_clips(d, suffixes)
             if d == data_dir or c.word != SILENCE]
    keywords = set(spec.keywords)
    by_keyword: dict[str, list[Path]] = {k: [] for k in spec.keywords}
    others: list[Path] = []
    other_words: list[str] = []
    noise: list[Path] = sorted((data_dir / NOISE_DIR).glob("*.wav"))
    for clip in clips:
        if clip.word == SILENCE:
            noise.append(clip.path)
        elif spec.speakers is not None and clip.speaker not in spec.speakers:
            continue
        elif clip.word in keywords and clip.path.parent.name != UNKNOWN:
            by_keyword[clip.word].append(clip.path)
        else:
            others.append(clip.path)
            other_words.append(clip.word)
    missing = [k for k, paths in by_keyword.items() if not paths]
    if missing and spec.keyword_fraction > 0:
        raise KwsError(f"{data_dir}: no clips for keyword(s) {', '.join(missing)}")
    by_word = _group(others, other_words) if spec.even_words else None
    rng = np.random.default_rng(spec.seed)
    rate = spec.sample_rate
    n = round(spec.minutes * 60 * rate)
    samples = _noise_bed(noise, n, spec, rng, load)
    placements: list[Placement] = []
    pos = round(rng.uniform(*spec.gap_s) * rate)
    while True:
        if not others or rng.random() < spec.keyword_fraction:
            label = spec.keywords[rng.integers(len(spec.keywords))]
            pool = by_keyword[label]
        else:
            label, pool = UNKNOWN, others
            if by_word is not None:
                pool = by_word[rng.integers(len(by_word))]
        path = pool[rng.integers(len(pool))]
        clip = load(path, rate).samples
        if spec.trim:
            start, end = speech_bounds(clip)[0]
            clip = clip[start:end]
        if pos + clip.size > n:
            break
        samples[pos : pos + clip.size] = clip
        placements.append(Placement(pos, pos + clip.size, label, path))
        pos += clip.size + round(rng.uniform(*spec.gap_s) * rate)
    return GeneratedStream(samples, rate, placements)


def _group(paths: list[Path], words: list[str]) -> list[list[Path]]:
    """``paths`` grouped by their word (words in sorted order)."""
    groups: dict[str, list[Path]] = {}
    for path, word in zip(paths, words, strict=True):
        groups.setdefault(word, []).append(path)
    return [groups[w] for w in sorted(groups)]


def write_labels(path: str | Path, rows: list[tuple[float, float, str]]) -> None:
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(LABEL_COLUMNS)
        for start, end, label in rows:
            writer.writerow([f"{start:.6f}", f"{end:.6f}", label])


def read_labels(path: str | Path) -> list[tuple[float, float, str]]:
    """Rows of a ``start_s,end_s,label`` CSV; raise :class:`KwsError` if malformed."""
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise KwsError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise KwsError(f"{path}: cannot read labels ({exc})") from None
    reader = csv.DictReader(text.splitlines())
    if tuple(reader.fieldnames or ()) != LABEL_COLUMNS:
        raise KwsError(f"{path}: expected the header {','.join(LABEL_COLUMNS)}")
    rows = []
    for line, row in enumerate(reader, start=2):
        try:
            start, end, label = float(row["start_s"]), float(row["end_s"]), row["label"].strip()
        except (TypeError, ValueError, AttributeError):
            raise KwsError(f"{path}:{line}: bad row {row}") from None
        if not (0 <= start <= end) or not label:
            raise KwsError(f"{path}:{line}: need 0 <= start_s <= end_s and a label")
        rows.append((start, end, label))
    return rows
