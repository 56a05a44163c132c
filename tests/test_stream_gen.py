"""The long-stream generator: labelled times hold the clips' samples, CSV round trip, CLI."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from edge_runtime.errors import KwsError
from edge_runtime.stream_gen import (
    StreamSpec,
    generate,
    read_labels,
    write_labels,
)
from edge_runtime.wav import read_wav, write_wav
from tests.conftest import ROOT

RATE = 16000
LSB = 1.5 / 32768  # one 16-bit step, with room for the write/read scaling


@pytest.fixture(scope="module")
def fake_data(tmp_path_factory) -> Path:
    """A Speech Commands-layout folder of distinct random 'words' (some shorter than 1 s)."""
    root = tmp_path_factory.mktemp("sc")
    rng = np.random.default_rng(0)
    layout = {"yes": ["a_nohash_0", "b_nohash_0"], "no": ["a_nohash_1", "c_nohash_0"],
              "left": ["d_nohash_0"], "_unknown_": ["bed_e_nohash_0", "cat_f_nohash_0"],
              "_silence_": ["0", "1"], "_background_noise_": ["white_noise"]}
    for folder, stems in layout.items():
        (root / folder).mkdir()
        for stem in stems:
            seconds = 3.0 if folder == "_background_noise_" else rng.choice([1.0, 0.8])
            n = round(seconds * RATE)
            level = 0.02 if folder.startswith("_") and folder != "_unknown_" else 0.3
            write_wav(root / folder / f"{stem}.wav", level * rng.uniform(-1, 1, n), RATE)
    return root


def test_labelled_times_hold_the_clip_samples(fake_data, tmp_path) -> None:
    spec = StreamSpec(minutes=0.5, seed=3, keywords=("yes", "no"))
    stream = generate(fake_data, spec)
    wav, csv_path = tmp_path / "s.wav", tmp_path / "s.csv"
    write_wav(wav, stream.samples, RATE)
    write_labels(csv_path, stream.keyword_rows())
    samples = read_wav(wav).samples
    assert samples.size == 30 * RATE
    rows = read_labels(csv_path)
    keywords = [p for p in stream.placements if p.label != "_unknown_"]
    assert len(rows) == len(keywords) >= 3
    assert {p.label for p in stream.placements} == {"yes", "no", "_unknown_"}
    for (start_s, end_s, label), p in zip(rows, keywords, strict=True):
        start, end = round(start_s * RATE), round(end_s * RATE)
        assert (start, end, label) == (p.start, p.end, p.label)
        clip = read_wav(p.source).samples
        assert p.source.parent.name == label and clip.size == end - start
        assert np.abs(samples[start:end] - clip).max() <= LSB
        # and not just any audio: one sample off no longer matches
        assert np.abs(samples[start + 1 : end + 1] - clip).max() > 10 * LSB
    # 'left' is not a chosen keyword, so it may only appear as an unknown word
    for p in stream.placements:
        if p.label == "_unknown_":
            assert p.source.parent.name in ("_unknown_", "left")


def test_words_do_not_overlap_and_keep_their_gaps(fake_data) -> None:
    spec = StreamSpec(minutes=1.0, seed=1, keywords=("yes", "no"), gap_s=(0.5, 1.5))
    stream = generate(fake_data, spec)
    placements = stream.placements
    assert placements[0].start >= 0.5 * RATE - 1
    for a, b in zip(placements, placements[1:], strict=False):
        assert 0.5 * RATE - 1 <= b.start - a.end <= 1.5 * RATE + 1
    assert placements[-1].end <= stream.samples.size
    words = len(placements)
    assert 60 / 2.5 - 2 <= words <= 60 / 1.5 + 1  # 0.8-1 s words, 0.5-1.5 s gaps


def test_the_seed_decides_the_stream(fake_data) -> None:
    spec = StreamSpec(minutes=0.25, seed=7, keywords=("yes", "no"))
    a, b = generate(fake_data, spec), generate(fake_data, spec)
    c = generate(fake_data, StreamSpec(minutes=0.25, seed=8, keywords=("yes", "no")))
    assert np.array_equal(a.samples, b.samples) and a.placements == b.placements
    assert not np.array_equal(a.samples, c.samples)


def test_background_is_at_the_requested_level(fake_data) -> None:
    stream = generate(fake_data, StreamSpec(minutes=0.5, seed=0, keywords=("yes",),
                                            noise_rms=0.01))
    mask = np.ones(stream.samples.size, dtype=bool)
    for p in stream.placements:
        mask[p.start : p.end] = False
    rms = float(np.sqrt(np.mean(np.square(stream.samples[mask], dtype=np.float64))))
    assert 0.005 < rms <= 0.0105


def test_bad_requests_raise(fake_data, tmp_path) -> None:
    with pytest.raises(KwsError, match="no clips for keyword"):
        generate(fake_data, StreamSpec(keywords=("yes", "marvin")))
    with pytest.raises(KwsError, match="minutes"):
        generate(fake_data, StreamSpec(minutes=0))
    with pytest.raises(KwsError, match="data folder not found"):
        generate(tmp_path / "none")
    bad = tmp_path / "bad.csv"
    bad.write_text("start_s,end_s,label\n2.0,1.0,yes\n")
    with pytest.raises(KwsError, match="start_s <= end_s"):
        read_labels(bad)


def run_cli(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "edge_runtime.cli", *map(str, args)],
                          capture_output=True, text=True, cwd=ROOT, timeout=120,
                          env=dict(os.environ))


def test_make_stream_cli(fake_data, tmp_path) -> None:
    wav, csv_path = tmp_path / "long.wav", tmp_path / "long.csv"
    out = run_cli("make-stream", "--data", fake_data, "--out", wav, "--labels", csv_path,
                  "--minutes", "0.5", "--keywords", "yes,no", "--seed", "2")
    assert out.returncode == 0, out.stderr
    assert read_wav(wav).seconds == pytest.approx(30.0)
    rows = read_labels(csv_path)
    assert rows and {r[2] for r in rows} <= {"yes", "no"}
    assert csv_path.read_text().splitlines()[0] == "start_s,end_s,label"
    expected = generate(fake_data, StreamSpec(minutes=0.5, seed=2, keywords=("yes", "no")))
    assert [(round(a * RATE), round(b * RATE), c) for a, b, c in rows] == [
        (p.start, p.end, p.label) for p in expected.placements if p.label != "_unknown_"]
    bad = run_cli("make-stream", "--data", fake_data, "--out", wav, "--labels", csv_path,
                  "--keywords", "yes,sheila")
    assert bad.returncode == 2 and bad.stderr.startswith("error: ") and "sheila" in bad.stderr


def test_real_data_stream_lines_up(real_data, tmp_path) -> None:
    stream = generate(real_data, StreamSpec(minutes=1.0, seed=0))
    wav = tmp_path / "real.wav"
    write_wav(wav, stream.samples, RATE)
    samples = read_wav(wav).samples
    rows = stream.keyword_rows()
    assert len(rows) >= 5
    for p in stream.placements:
        clip = read_wav(p.source).samples
        assert np.abs(samples[p.start : p.end] - clip).max() <= LSB


def test_held_out_speakers_only_and_trimmed_running_speech(fake_data) -> None:
    spec = StreamSpec(minutes=0.5, seed=4, keywords=("yes", "no"), speakers=frozenset({"a"}),
                      keyword_fraction=1.0)
    stream = generate(fake_data, spec)
    assert stream.placements
    assert {p.source.name.split("_")[0] for p in stream.placements} == {"a"}
    others = generate(fake_data, StreamSpec(minutes=0.5, seed=4, keyword_fraction=0.0,
                                            speakers=frozenset({"e", "f"})))
    assert {p.label for p in others.placements} == {"_unknown_"}
    assert not others.keyword_rows()
    joined = generate(fake_data, StreamSpec(minutes=0.5, seed=4, keyword_fraction=0.0,
                                            trim=True, gap_s=(0.0, 0.0)))
    starts = [p.start for p in joined.placements]
    ends = [p.end for p in joined.placements]
    assert starts[1:] == ends[:-1]  # words back to back


def test_speech_bounds_of_a_placed_word() -> None:
    from edge_runtime.stream_gen import speech_bounds

    clip = np.zeros(RATE, np.float32)
    clip[4000:9000] = 0.5
    assert tuple(speech_bounds(clip)[0]) == (4000, 9120)  # 10-ms frames that hold the word


def test_words_of_more_folders_with_their_own_reader(fake_data, tmp_path) -> None:
    from tests.fixtures_data import as_flac, make_fake_dataset
    from train.data import AUDIO_SUFFIXES, load_clip

    extra = as_flac(make_fake_dataset(tmp_path / "extra", ["yes", "happy"], ["x", "y"], 2))
    spec = StreamSpec(minutes=0.5, seed=5, keywords=("yes", "no"))
    stream = generate(fake_data, spec, extra_dirs=(extra,), suffixes=AUDIO_SUFFIXES,
                      load=load_clip)
    sources = {p.source.suffix for p in stream.placements}
    assert sources == {".wav", ".flac"}  # words of both folders
    for p in stream.placements:  # the FLAC words decoded into the stream as they are
        np.testing.assert_array_equal(stream.samples[p.start : p.end],
                                      load_clip(p.source, RATE).samples)
    speakers = frozenset({"x"})  # the extra folder's speaker "x" only
    only_x = generate(fake_data, replace(spec, speakers=speakers, keywords=("yes",)),
                      extra_dirs=(extra,), suffixes=AUDIO_SUFFIXES, load=load_clip)
    assert {p.source.name.split("_")[0] for p in only_x.placements} == {"x"}
    # the background still comes from the main folder alone (not the extra folder's noise
    # files), and the device reader is WAV only
    first = stream.placements[0].start
    np.testing.assert_array_equal(generate(fake_data, spec).samples[:first],
                                  stream.samples[:first])
    with pytest.raises(KwsError, match="no clips"):
        generate(fake_data, spec, extra_dirs=(extra,))


def test_even_words_draws_each_other_word_alike(tmp_path) -> None:
    """One word with nine clips and one with a single clip: drawn by clip the first fills
    ~90% of the other words, drawn evenly by word each about half."""
    rng = np.random.default_rng(1)
    (tmp_path / "yes").mkdir()
    (tmp_path / "_unknown_").mkdir()
    write_wav(tmp_path / "yes" / "a_nohash_0.wav", 0.3 * rng.uniform(-1, 1, RATE), RATE)
    stems = [f"bed_s{i}_nohash_0" for i in range(9)] + ["dog_t_nohash_0"]
    for stem in stems:
        write_wav(tmp_path / "_unknown_" / f"{stem}.wav", 0.3 * rng.uniform(-1, 1, RATE), RATE)

    def dog_share(even: bool) -> float:
        spec = StreamSpec(minutes=2.0, seed=0, keywords=("yes",), keyword_fraction=0.0,
                          gap_s=(0.0, 0.1), even_words=even)
        words = [p.source.name.split("_")[0] for p in generate(tmp_path, spec).placements]
        assert len(words) > 100
        return words.count("dog") / len(words)

    assert dog_share(False) < 0.25
    assert 0.35 < dog_share(True) < 0.65
