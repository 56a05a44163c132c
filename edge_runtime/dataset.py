"""Speech Commands folder layout: which clips there are, their words and speakers.

Handles the data set itself (``<word>/<speaker>_nohash_<n>.wav``, ``_background_noise_/``,
``testing_list.txt``/``validation_list.txt``) and the canonical test-set layout
(``_silence_/<n>.wav``, ``_unknown_/<word>_<speaker>_nohash_<n>.wav``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from edge_runtime.errors import KwsError

SILENCE = "_silence_"
UNKNOWN = "_unknown_"
NOISE_DIR = "_background_noise_"


@dataclass(frozen=True)
class Clip:
    path: Path
    rel: str  # "<folder>/<file>", as in testing_list.txt
    word: str  # the spoken word, "_silence_" for silence clips
    speaker: str | None  # None for silence clips


def parse_clip(root: Path, path: Path) -> Clip:
    folder = path.parent.name
    stem = path.stem
    rel = f"{folder}/{path.name}"
    if folder == SILENCE:
        return Clip(path, rel, SILENCE, None)
    head = stem.split("_nohash_")[0] if "_nohash_" in stem else stem
    if folder == UNKNOWN and "_" in head:
        word, speaker = head.rsplit("_", 1)
        return Clip(path, rel, word, speaker)
    return Clip(path, rel, folder, head)


def list_clips(root: str | Path, suffixes: tuple[str, ...] = (".wav",)) -> list[Clip]:
    """Every clip under ``root`` (sorted), background-noise recordings excluded.

    The device reads WAV only; training also lists FLAC (``suffixes=(".wav", ".flac")``).
    """
    root = Path(root)
    if not root.is_dir():
        raise KwsError(f"{root}: data folder not found")
    clips = [
        parse_clip(root, p)
        for p in sorted(q for s in suffixes for q in root.glob(f"*/*{s}"))
        if p.parent.name != NOISE_DIR and not p.parent.name.startswith(".")
    ]
    if not clips:
        kinds = "/".join(s.lstrip(".") for s in suffixes)
        raise KwsError(f"{root}: no clips (<label>/<name>.{kinds}) in the data folder")
    return clips


def read_list(root: str | Path, name: str) -> set[str] | None:
    """The entries of ``validation_list.txt``/``testing_list.txt``, or None when absent."""
    path = Path(root) / name
    if not path.is_file():
        return None
    # file names are bytes: undecodable ones match the surrogate-escaped names that
    # the file system gives (os.fsdecode)
    text = path.read_bytes().decode("utf-8", "surrogateescape")
    return {line.strip() for line in text.splitlines() if line.strip()}


def test_clips(root: str | Path) -> list[Clip]:
    """The test split when ``testing_list.txt`` exists, else every clip in the folder."""
    clips = list_clips(root)
    listed = read_list(root, "testing_list.txt")
    if listed is None:
        return clips
    return [c for c in clips if c.rel in listed]


def label_of(clip: Clip, labels: list[str]) -> str | None:
    """The model label a clip should get, or None if the model cannot name it."""
    if clip.word in labels:
        return clip.word
    if clip.word != SILENCE and UNKNOWN in labels:
        return UNKNOWN
    return None
