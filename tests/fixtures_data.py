"""Tiny Speech-Commands-layout folders of synthetic WAVs, for tests of data, training, convert.

``make_fake_dataset(root, ["yes", "no"], speakers=6, per_speaker=2)`` writes
``root/yes/<speaker>_nohash_<n>.wav`` etc. Each word is a distinct, learnable sound (its own
pitch glide and formant-like harmonics), each speaker shifts the pitch a little, and every clip
gets a little noise, so a small model can learn the words.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from edge_runtime.wav import read_wav, write_wav

RATE = 16000
NOISE_FILES = ("white_noise.wav", "pink_noise.wav")
STANDARD = ("yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go")


def speaker_ids(count: int) -> list[str]:
    """Speech-Commands-like speaker ids (8 hex digits), stable for a given count."""
    return [hashlib.sha1(f"speaker{i}".encode()).hexdigest()[:8] for i in range(count)]


def word_sound(word: str, speaker: str, n: int, rate: int = RATE, seconds: float = 1.0
               ) -> np.ndarray:
    """One clip: a word-specific voiced sound, centred, with speaker pitch and some noise."""
    wseed = int(hashlib.sha1(word.encode()).hexdigest()[:8], 16)
    sseed = int(hashlib.sha1(f"{speaker}/{n}".encode()).hexdigest()[:8], 16)
    w, s = np.random.default_rng(wseed), np.random.default_rng(sseed)
    total = int(seconds * rate)
    length = int(total * w.uniform(0.35, 0.6))
    t = np.arange(length) / rate
    f0 = w.uniform(100, 260) * s.uniform(0.85, 1.15)
    glide = f0 * (1 + w.uniform(-0.4, 0.4) * t / t[-1])
    phase = 2 * np.pi * np.cumsum(glide) / rate
    gains = w.uniform(0, 1, 12) ** 2
    voice = sum(g * np.sin(k * phase) for k, g in enumerate(gains, start=1))
    voice *= np.sin(np.pi * t / t[-1]) ** 2
    voice = 0.5 * voice / (np.abs(voice).max() + 1e-9) * s.uniform(0.5, 1.0)
    out = 0.003 * s.standard_normal(total)
    start = (total - length) // 2 + int(s.integers(-rate // 20, rate // 20))
    start = min(max(start, 0), total - length)
    out[start : start + length] += voice
    return out.astype(np.float32)


def _noise(kind: str, samples: int, seed: int) -> np.ndarray:
    x = np.random.default_rng(seed).standard_normal(samples)
    if kind == "pink":
        spec = np.fft.rfft(x)
        spec[1:] /= np.sqrt(np.arange(1, spec.size))
        x = np.fft.irfft(spec, samples)
    return (0.3 * x / np.abs(x).max()).astype(np.float32)


def make_fake_dataset(
    root: str | Path,
    words: Sequence[str],
    speakers: int | Sequence[str],
    per_speaker: int,
    with_lists: bool = False,
    with_noise: bool = True,
    *,
    mini_layout: bool = False,
    silence_clips: int = 0,
    noise_seconds: float = 3.0,
    rate: int = RATE,
) -> Path:
    """Write a Speech-Commands-layout folder of 1 s clips and return its path.

    ``with_lists``: write ``validation_list.txt`` (second-to-last speaker) and
    ``testing_list.txt`` (last speaker). ``with_noise``: two recordings in
    ``_background_noise_/``. ``mini_layout``: the canonical test-set layout of
    speech_commands_mini: words outside the 10 standard ones go to
    ``_unknown_/<word>_<speaker>_nohash_<n>.wav`` and ``silence_clips`` noise clips to
    ``_silence_/<n>.wav``.
    """
    root = Path(root)
    ids = speaker_ids(speakers) if isinstance(speakers, int) else list(speakers)
    val_rel, test_rel = [], []
    for word in words:
        unknown = mini_layout and word not in STANDARD
        folder = root / ("_unknown_" if unknown else word)
        folder.mkdir(parents=True, exist_ok=True)
        for si, spk in enumerate(ids):
            for n in range(per_speaker):
                name = f"{word}_{spk}_nohash_{n}.wav" if unknown else f"{spk}_nohash_{n}.wav"
                write_wav(folder / name, word_sound(word, spk, n, rate), rate)
                rel = f"{folder.name}/{name}"
                if with_lists and si == len(ids) - 1:
                    test_rel.append(rel)
                elif with_lists and si == len(ids) - 2:
                    val_rel.append(rel)
    if silence_clips:
        (root / "_silence_").mkdir(parents=True, exist_ok=True)
        for i in range(silence_clips):
            clip = _noise("pink" if i % 2 else "white", rate, 1000 + i) * (0.05 + 0.1 * (i % 3))
            write_wav(root / "_silence_" / f"{i}.wav", clip, rate)
    if with_noise:
        (root / "_background_noise_").mkdir(parents=True, exist_ok=True)
        for i, name in enumerate(NOISE_FILES):
            kind = name.split("_")[0]
            write_wav(root / "_background_noise_" / name,
                      _noise(kind, int(noise_seconds * rate), i), rate)
    if with_lists:
        (root / "validation_list.txt").write_text("".join(f"{r}\n" for r in val_rel))
        (root / "testing_list.txt").write_text("".join(f"{r}\n" for r in test_rel))
    return root


def as_flac(folder: Path) -> Path:
    """Re-encode every WAV under ``folder`` as FLAC (16-bit, like speech_commands_extra)."""
    import soundfile

    for wav in sorted(folder.rglob("*.wav")):
        audio = read_wav(wav)
        soundfile.write(wav.with_suffix(".flac"), audio.samples, audio.sample_rate,
                        subtype="PCM_16")
        wav.unlink()
    return folder
