"""Coverage-guided fuzzing of the WAV reader and the front-end with atheris (libFuzzer).

    .venv/bin/python tests/fuzz_wav.py -max_total_time=60        # fuzz for 60 s
    .venv/bin/python tests/fuzz_wav.py -runs=20000 CORPUS_DIR    # 20,000 inputs, keep a corpus

Every input goes through ``decode_wav``; the only exception allowed is ``KwsError``. What
decodes must be sane (finite mono float32, no more samples than the bytes can hold, a rate in
the supported range), and is then resampled to 16 kHz and fed to the front-end, whose features
must be finite. libFuzzer's own limits catch hangs (``-timeout``, seconds per input) and memory
blow-ups (``-rss_limit_mb``); a seed corpus of valid WAVs of every format and a dictionary of
chunk ids are written to a temporary folder. Crashing inputs are saved by libFuzzer under
``-artifact_prefix`` (default: the temporary folder, printed at the end).
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import atheris  # noqa: E402
import numpy as np  # noqa: E402

with atheris.instrument_imports():
    from edge_runtime import wav
    from edge_runtime.errors import KwsError
    from edge_runtime.frontend import EDGE_FRONTEND, Frontend

FRONTEND = Frontend(EDGE_FRONTEND)
DICTIONARY = ['"RIFF"', '"WAVE"', '"fmt "', '"data"', '"LIST"', '"INFO"', '"\\xfe\\xff"',
              '"\\x01\\x00"', '"\\x03\\x00"', '"\\xff\\xff\\xff\\xff"', '"\\x80\\x3e\\x00\\x00"']
DEFAULT_FLAGS = ["-timeout=10", "-rss_limit_mb=2048", "-max_len=4096"]


def check_one(data: bytes) -> None:
    """The fuzz target: decode, check, resample, front-end, check."""
    try:
        audio = wav.decode_wav(data, "fuzz")
    except KwsError:
        return
    samples = audio.samples
    assert samples.dtype == np.float32 and samples.ndim == 1 and samples.size > 0
    assert samples.size <= len(data), "more samples than bytes"
    assert np.isfinite(samples).all()
    assert wav.MIN_SAMPLE_RATE <= audio.sample_rate <= wav.MAX_SAMPLE_RATE
    resampled = wav.resample(audio, EDGE_FRONTEND.sample_rate).samples
    assert np.isfinite(resampled).all()
    features = FRONTEND(resampled)
    assert np.isfinite(features).all()


def seed_corpus(folder: Path) -> None:
    """Valid WAVs of every format the reader knows (small, so mutations stay fast)."""
    from tests.wav_fixtures import wav_bytes

    tone = 0.5 * np.sin(2 * np.pi * 440 * np.arange(600) / 16000)
    formats = [(8, "pcm"), (16, "pcm"), (24, "pcm"), (32, "pcm"), (32, "float"), (64, "float")]
    for bits, fmt in formats:
        for extensible in (False, True):
            for channels in (1, 2):
                x = tone if channels == 1 else np.stack([tone, -tone], axis=1)
                name = f"{fmt}{bits}_{channels}ch{'_ext' if extensible else ''}.wav"
                (folder / name).write_bytes(wav_bytes(x, 8000, bits, fmt, extensible))
    (folder / "encoded.wav").write_bytes(wav.encode_wav(tone, 16000))


def main(argv: list[str]) -> None:
    work = Path(tempfile.mkdtemp(prefix="fuzz_wav_"))
    seeds = work / "seeds"
    seeds.mkdir()
    seed_corpus(seeds)
    dictionary = work / "wav.dict"
    dictionary.write_text("\n".join(DICTIONARY) + "\n")
    flags = [a for a in argv[1:] if a.startswith("-")]
    corpora = [a for a in argv[1:] if not a.startswith("-")]
    given = {f.split("=", 1)[0] for f in flags}
    extra = [f for f in DEFAULT_FLAGS if f.split("=", 1)[0] not in given]
    if "-artifact_prefix" not in given:
        extra.append(f"-artifact_prefix={work}/")
    if "-dict" not in given:
        extra.append(f"-dict={dictionary}")
    print(f"fuzz_wav: seeds and crash files in {work}", file=sys.stderr)
    atheris.Setup([argv[0], *flags, *extra, *corpora, str(seeds)], check_one)
    atheris.Fuzz()


if __name__ == "__main__":
    main(sys.argv)
