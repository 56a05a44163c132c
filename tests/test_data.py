"""Data loading: speaker-disjoint splits, tasks, sampling, bad input, feature cache."""

from __future__ import annotations

import math
import os
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from edge_runtime.dataset import SILENCE, UNKNOWN
from edge_runtime.errors import KwsError
from edge_runtime.frontend import EDGE_FRONTEND, Frontend
from edge_runtime.wav import read_wav
from tests.fixtures_data import as_flac, make_fake_dataset, speaker_ids
from train.data import (
    STANDARD_WORDS,
    DataConfig,
    Example,
    cv_fold_of,
    extra_val_speakers,
    load_dataset,
    load_waveforms,
    split_name,
    which_set,
)
from train.features import cached_features

WORDS = ["yes", "no", "up", "bed", "cat"]


@pytest.fixture(scope="module")
def fake(tmp_path_factory) -> Path:
    return make_fake_dataset(tmp_path_factory.mktemp("fake"), WORDS, 40, 2)


def speakers(examples: list[Example]) -> set[str]:
    return {e.speaker for e in examples if e.speaker}


def assert_disjoint(ds) -> None:
    tr, va, te = speakers(ds.train), speakers(ds.val), speakers(ds.test)
    assert tr and va and te
    assert not (tr & va) and not (tr & te) and not (va & te)


def test_hash_split_is_the_documented_rule_and_speaker_disjoint(fake):
    ds = load_dataset(DataConfig(fake))
    assert ds.split_rule == "hash"
    assert_disjoint(ds)
    for name in ("train", "val", "test"):
        for ex in ds.split(name):
            if ex.path is not None:
                assert which_set(ex.speaker, 10, 10) == name
    # the rule itself, on a name computed by hand: sha1 -> int -> percentage
    import hashlib

    pct = (int(hashlib.sha1(b"abc").hexdigest(), 16) % 2**27) * (100.0 / (2**27 - 1))
    assert which_set("abc", pct + 0.001, 0) == "val"
    assert which_set("abc", pct - 0.001, 0.002) == "test"
    assert which_set("abc", 0, pct - 0.001) == "train"


def test_percentages_are_configurable(fake):
    small = load_dataset(DataConfig(fake, val_pct=5, test_pct=5))
    big = load_dataset(DataConfig(fake, val_pct=30, test_pct=30))
    assert len(speakers(big.val)) > len(speakers(small.val))
    assert len(speakers(big.train)) < len(speakers(small.train))
    assert_disjoint(big)


def test_twelve_class_task_samples_unknown_and_silence(fake):
    cfg = DataConfig(fake, unknown_pct=20, silence_pct=15)
    ds = load_dataset(cfg)
    assert ds.labels == [SILENCE, UNKNOWN, *STANDARD_WORDS]
    for name in ("train", "val", "test"):
        part = ds.split(name)
        n = sum(e.label in STANDARD_WORDS for e in part)
        unknown = [e for e in part if e.label == UNKNOWN]
        silence = [e for e in part if e.label == SILENCE]
        pool = [p for w in ("bed", "cat") for p in (fake / w).glob("*.wav")
                if which_set(p.name.split("_nohash_")[0], 10, 10) == name]
        assert len(unknown) == min(math.ceil(n * 0.20), len(pool)) > 0
        assert len(silence) == math.ceil(n * 0.15)
        # no _silence_ clips here: silence is cut from the background noise
        assert all(e.path is None and 0 <= e.noise_index < len(ds.noise) for e in silence)
        assert {e.path.parent.name for e in unknown} <= {"bed", "cat"}
    assert ds.manifest()["counts"]["train"]["down"] == 0  # absent words are empty classes


def test_unknown_sampling_takes_the_percentage(tmp_path):
    root = make_fake_dataset(tmp_path, ["yes", "bed", "cat", "dog"], 30, 2)
    ds = load_dataset(DataConfig(root, unknown_pct=10))
    n = sum(e.label == "yes" for e in ds.train)
    assert sum(e.label == UNKNOWN for e in ds.train) == math.ceil(n * 0.10)
    other = load_dataset(DataConfig(root, unknown_pct=10, seed=1))
    assert ({e.path for e in ds.train if e.label == UNKNOWN}
            != {e.path for e in other.train if e.label == UNKNOWN})


def test_list_files_decide_the_split(tmp_path):
    root = make_fake_dataset(tmp_path, ["yes", "no"], 6, 2, with_lists=True)
    ds = load_dataset(DataConfig(root, task="all"))
    assert ds.split_rule == "lists"
    test_rel = set((root / "testing_list.txt").read_text().split())
    val_rel = set((root / "validation_list.txt").read_text().split())
    rel = lambda e: f"{e.path.parent.name}/{e.path.name}"  # noqa: E731
    assert {rel(e) for e in ds.test if e.path} == test_rel
    assert {rel(e) for e in ds.val if e.path} == val_rel
    assert not {rel(e) for e in ds.train if e.path} & (test_rel | val_rel)


def test_mini_layout_keeps_unknown_clips_with_their_speaker(tmp_path):
    root = make_fake_dataset(tmp_path, ["yes", "no", "bed", "cat"], 40, 1, with_noise=False,
                             mini_layout=True, silence_clips=40)
    ds = load_dataset(DataConfig(root, unknown_pct=100, silence_pct=100))
    assert_disjoint(ds)
    for name in ("train", "val", "test"):
        part = ds.split(name)
        unknown = [e for e in part if e.label == UNKNOWN]
        assert unknown and all(e.path.parent.name == "_unknown_" for e in unknown)
        # every unknown clip's speaker went where that speaker's keyword clips went
        assert speakers(unknown) <= speakers([e for e in part if e.label in ("yes", "no")])
        silence = [e for e in part if e.label == SILENCE]
        assert silence and all(e.path is not None for e in silence)  # real _silence_ clips
        for e in silence:
            assert which_set(e.path.name, 10, 10) == name  # split by the file name
    # without _background_noise_, the training split's _silence_ clips are the noise
    train_silence = {e.path.parent.name + "/" + e.path.name for e in ds.train
                     if e.label == SILENCE}
    assert len(ds.noise) == len(ds.noise_names) >= len(train_silence) > 0
    assert set(ds.noise_names) >= train_silence
    assert not set(ds.noise_names) & {e.path.parent.name + "/" + e.path.name
                                      for e in ds.val + ds.test if e.path}


def test_one_split_folder_falls_back_to_a_salted_hash(tmp_path):
    # A folder that is one split of a bigger data set (like the canonical test set): with
    # the plain rule every speaker lands in "test", so it is re-split with a salt.
    names = [s for s in (f"{i:08x}" for i in range(3000)) if which_set(s, 10, 10) == "test"]
    root = make_fake_dataset(tmp_path, ["yes", "no"], names[:40], 1)
    ds = load_dataset(DataConfig(root))
    assert ds.split_rule.startswith("hash, salted")
    assert_disjoint(ds)


def test_all_words_task(tmp_path):
    root = make_fake_dataset(tmp_path, ["yes", "no", "marvin"], 30, 1, mini_layout=True,
                             silence_clips=10)
    ds = load_dataset(DataConfig(root, task="all"))
    assert ds.labels == [SILENCE, "marvin", "no", "yes"]  # _unknown_/marvin_* is "marvin"
    assert UNKNOWN not in {e.label for e in ds.train + ds.val + ds.test}
    custom = load_dataset(DataConfig(root, task="yes,marvin"))
    assert custom.labels == [SILENCE, UNKNOWN, "yes", "marvin"]
    assert {e.path.parent.name for e in custom.train if e.label == UNKNOWN} == {"no"}
    with pytest.raises(KwsError, match="no clips of dog"):
        load_dataset(DataConfig(root, task="yes,dog"))


def test_synthetic_clips_go_to_training_only(tmp_path, fake):
    voices = ["espeak-en-us", "espeak-en-gb"]
    synth = make_fake_dataset(tmp_path / "synth", ["yes", "hey_pi"], voices, 3, with_noise=False)
    ds = load_dataset(DataConfig(fake, synth_dir=synth, task="all"))
    from_synth = [e for e in ds.train if e.path and synth in e.path.parents]
    assert len(from_synth) == 12
    assert "hey_pi" in ds.labels
    assert not any(e.path and synth in e.path.parents for e in ds.val + ds.test)
    assert ds.manifest()["counts"]["train"]["hey_pi"] == 6


def test_waveforms_have_one_row_per_example(fake):
    ds = load_dataset(DataConfig(fake))
    cut = next(e for e in ds.val if e.path is None)
    examples = ds.val[:5] + [cut, Example(None, SILENCE, None)]
    wav = load_waveforms(ds, examples, 16000, 16000)
    assert wav.shape == (7, 16000) and wav.dtype == np.float32
    assert np.array_equal(wav[0], read_wav(examples[0].path).samples[:16000])
    expected = ds.noise[cut.noise_index][cut.noise_offset:cut.noise_offset + 16000]
    assert np.allclose(wav[5], expected * cut.noise_gain, atol=1e-6)
    assert not wav[6].any()  # digital silence
    half = load_waveforms(ds, examples[:1], 8000, 8000)
    assert half.shape == (1, 8000)


def test_manifest_is_deterministic(fake):
    a = load_dataset(DataConfig(fake)).manifest()
    b = load_dataset(DataConfig(fake)).manifest()
    c = load_dataset(DataConfig(fake, seed=3)).manifest()
    assert a == b
    assert a["files_sha256"] != c["files_sha256"]
    assert a["totals"]["train"] == sum(a["counts"]["train"].values())
    assert a["config"]["data_dir"] == str(fake)


def test_bad_data_folders(tmp_path):
    with pytest.raises(KwsError, match="not found"):
        load_dataset(DataConfig(tmp_path / "missing"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(KwsError, match="no clips"):
        load_dataset(DataConfig(tmp_path / "empty"))
    root = make_fake_dataset(tmp_path / "d", ["yes", "no"], 4, 1)
    (root / "left").mkdir()
    with pytest.raises(KwsError, match="left: label folder has no clips"):
        load_dataset(DataConfig(root))
    with pytest.raises(KwsError, match="val_pct"):
        load_dataset(DataConfig(root, val_pct=60, test_pct=50))


def test_unreadable_clips_are_skipped_and_counted(tmp_path):
    root = make_fake_dataset(tmp_path, ["yes", "no"], 10, 1)
    bad = sorted((root / "yes").glob("*.wav"))[:3]
    for path in bad:
        path.write_bytes(b"not a wav at all")
    ds = load_dataset(DataConfig(root, task="all"))
    assert ds.skipped["unreadable"] == 3
    assert set(ds.skipped_files) == {str(p) for p in bad}
    used = {e.path for e in ds.train + ds.val + ds.test}
    assert not used & set(bad)
    for path in root.glob("*/*.wav"):
        if path.parent.name != "_background_noise_":
            path.write_bytes(b"RIFF")
    with pytest.raises(KwsError, match="none of the 20 clips is readable audio"):
        load_dataset(DataConfig(root))


def test_split_name_of_each_layout(tmp_path):
    from edge_runtime.dataset import parse_clip

    assert split_name(parse_clip(tmp_path, tmp_path / "yes" / "ab12_nohash_3.wav")) == "ab12"
    unknown = parse_clip(tmp_path, tmp_path / "_unknown_" / "bed_ab12_nohash_0.wav")
    assert split_name(unknown) == "ab12"
    assert split_name(parse_clip(tmp_path, tmp_path / "_silence_" / "17.wav")) == "17.wav"


def test_feature_cache_is_reused_and_keyed(tmp_path, fake):
    ds = load_dataset(DataConfig(fake))
    examples = ds.val
    cache = tmp_path / "cache"
    first = cached_features(ds, examples, EDGE_FRONTEND, cache)
    direct = Frontend(EDGE_FRONTEND)(load_waveforms(ds, examples, 16000, 16000))
    assert first.shape == (len(examples), *EDGE_FRONTEND.feature_shape)
    assert np.array_equal(first, direct)
    entries = list(cache.glob("*.npy"))
    assert len(entries) == 1
    stamp = entries[0].stat().st_mtime_ns
    again = cached_features(ds, examples[::-1], EDGE_FRONTEND, cache)  # order-independent key
    assert np.array_equal(again, first[::-1])
    assert list(cache.glob("*.npy")) == entries and entries[0].stat().st_mtime_ns == stamp
    # a changed file gives a new entry
    clip = next(e.path for e in examples if e.path is not None)
    os.utime(clip, ns=(clip.stat().st_atime_ns, clip.stat().st_mtime_ns + 10**9))
    cached_features(ds, examples, EDGE_FRONTEND, cache)
    assert len(list(cache.glob("*.npy"))) == 2


def test_feature_cache_dir_from_environment(tmp_path, fake, monkeypatch):
    monkeypatch.setenv("KWS_CACHE_DIR", str(tmp_path / "env-cache"))
    ds = load_dataset(DataConfig(fake))
    cached_features(ds, ds.test[:4], EDGE_FRONTEND)
    assert len(list((tmp_path / "env-cache").glob("*.npy"))) == 1


@pytest.mark.data
def test_real_mini_set_splits_by_speaker(real_data):
    ds = load_dataset(DataConfig(real_data))
    assert_disjoint(ds)
    assert ds.skipped.get("unreadable", 0) == 0
    for name in ("train", "val", "test"):
        assert {e.label for e in ds.split(name)} == set(ds.labels)
    assert sum(len(ds.split(s)) for s in ("train", "val", "test")) > 3500


def test_fixture_speaker_ids_are_stable():
    assert speaker_ids(3) == speaker_ids(3) and len(set(speaker_ids(50))) == 50


def test_extra_flac_folder_joins_training_only_and_keeps_speakers_disjoint(tmp_path, fake):
    base = load_dataset(DataConfig(fake))
    held_out = sorted(speakers(base.val) | speakers(base.test))[:3]
    new = [f"e{i:07d}" for i in range(5)]
    extra = as_flac(make_fake_dataset(tmp_path / "extra", ["yes", "left", "happy"],
                                      new + held_out, 1))
    assert not list(extra.rglob("*.wav")) and list(extra.rglob("*.flac"))
    ds = load_dataset(DataConfig(fake, extra_dirs=(extra,)))
    from_extra = [e for e in ds.train if e.path and extra in e.path.parents]
    assert {e.speaker for e in from_extra} <= set(new)  # held-out speakers' clips dropped
    assert {e.label for e in from_extra} >= {"yes", "left"}
    assert ds.skipped["speaker_in_eval_split"] == 3 * len(held_out)
    assert not any(e.path and extra in e.path.parents for e in ds.val + ds.test)
    assert [ds.example_id(e) for e in ds.val + ds.test] == [
        base.example_id(e) for e in base.val + base.test]  # extra data never moves the split
    assert_disjoint(ds)
    assert "extra folders" in ds.split_rule
    assert ds.manifest()["extra_dirs"] == [str(extra)]
    assert any(n.endswith(".flac") for n in ds.noise_names)  # FLAC background noise read
    wave = load_waveforms(ds, from_extra[:1], 16000, 16000)[0]
    original = word_sound_of(from_extra[0])
    np.testing.assert_allclose(wave, original, atol=2 / 32768)


def test_extra_val_pct_moves_a_share_of_extra_speakers_into_validation(tmp_path, fake):
    base = load_dataset(DataConfig(fake))
    new = [f"e{i:07d}" for i in range(40)]
    extra = make_fake_dataset(tmp_path / "extra", ["yes", "left", "happy"], new, 2)
    cfg = DataConfig(fake, extra_dirs=(extra,), extra_val_pct=25.0)
    ds = load_dataset(cfg)

    def from_extra(examples: list[Example]) -> list[Example]:
        return [e for e in examples if e.path and extra in e.path.parents]

    val_speakers, train_speakers = speakers(from_extra(ds.val)), speakers(from_extra(ds.train))
    assert 4 <= len(val_speakers) <= 18 and val_speakers | train_speakers == set(new)
    assert not val_speakers & train_speakers  # a speaker's clips all go one way
    assert_disjoint(ds)
    assert [ds.example_id(e) for e in ds.val[:len(base.val)]] == [
        base.example_id(e) for e in base.val]  # the main folder's validation unchanged
    assert [ds.example_id(e) for e in ds.test] == [base.example_id(e) for e in base.test]
    added = ds.val[len(base.val):]
    keywords = [e for e in added if e.label in ("yes", "left")]
    assert {e.speaker for e in keywords} == val_speakers
    assert extra_val_speakers(extra, 25.0) == val_speakers  # what the streams benchmark uses
    assert sum(e.label == UNKNOWN for e in added) == math.ceil(len(keywords) * 0.1)
    assert all(e.path and extra in e.path.parents for e in added)  # no silence: main folder's
    assert "extra folders" in ds.split_rule and "25% of their speakers" in ds.split_rule
    again = load_dataset(cfg)
    assert [again.example_id(e) for e in again.val] == [ds.example_id(e) for e in ds.val]
    assert cfg.without_train_only() == DataConfig(fake)  # the test split's settings alone
    for bad, message in ((100.0, "extra_val_pct"), (-1.0, "extra_val_pct")):
        with pytest.raises(KwsError, match=message):
            load_dataset(DataConfig(fake, extra_dirs=(extra,), extra_val_pct=bad))
    with pytest.raises(KwsError, match="needs extra folders"):
        load_dataset(DataConfig(fake, extra_val_pct=10.0))


def test_extra_train_pct_trains_on_a_share_of_the_other_extra_speakers(tmp_path, fake):
    new = [f"e{i:07d}" for i in range(60)]
    extra = make_fake_dataset(tmp_path / "extra", ["yes", "left", "happy"], new, 2)

    def extra_speakers(examples: list[Example]) -> set[str]:
        return speakers([e for e in examples if e.path and extra in e.path.parents])

    full = load_dataset(DataConfig(fake, extra_dirs=(extra,), extra_val_pct=20.0))
    half = load_dataset(DataConfig(fake, extra_dirs=(extra,), extra_val_pct=20.0,
                                   extra_train_pct=50.0))
    assert_disjoint(half)
    # validation and test are untouched; a subset of the training speakers trains, all their
    # clips, and which ones does not depend on the validation share
    assert [half.example_id(e) for e in half.val] == [full.example_id(e) for e in full.val]
    assert [half.example_id(e) for e in half.test] == [full.example_id(e) for e in full.test]
    kept, before = extra_speakers(half.train), extra_speakers(full.train)
    assert kept < before and 0.25 * len(before) <= len(kept) <= 0.75 * len(before)
    def keyword_clips(examples: list[Example]) -> Counter:
        return Counter(e.speaker for e in examples if e.speaker in kept and e.label != UNKNOWN)

    assert keyword_clips(half.train) == keyword_clips(full.train)  # each kept speaker whole
    no_val = load_dataset(DataConfig(fake, extra_dirs=(extra,), extra_train_pct=50.0))
    assert kept <= extra_speakers(no_val.train)
    assert extra_speakers(no_val.train) - kept <= extra_speakers(full.val)
    assert "50% of the extra folders' other speakers train" in half.split_rule
    assert "other speakers train" not in full.split_rule
    for bad in (0.0, 100.5):
        with pytest.raises(KwsError, match="extra_train_pct"):
            load_dataset(DataConfig(fake, extra_dirs=(extra,), extra_train_pct=bad))
    with pytest.raises(KwsError, match="extra_train_pct needs extra folders"):
        load_dataset(DataConfig(fake, extra_train_pct=50.0))


def test_listed_clips_never_train_and_validation_and_test_keep_theirs(tmp_path, fake):
    extra = make_fake_dataset(tmp_path / "extra", ["yes", "happy"],
                              [f"e{i:07d}" for i in range(10)], 2)
    full = load_dataset(DataConfig(fake, extra_dirs=(extra,)))
    # keyword clips (the sampled unknown clips follow the keyword count)
    ids = [full.example_id(e) for e in full.train if e.path is not None and e.label != UNKNOWN]
    main_ids = [i for i in ids if not i.startswith("extra:")]
    listed = main_ids[:3] + [i for i in ids if i.startswith("extra:extra/")][:2]
    listed += [full.example_id(full.test[0]), full.example_id(full.val[0])]
    drop = tmp_path / "drop.txt"
    drop.write_text("# flagged\n\n" + "\n".join(listed) + "\n")
    dropped = load_dataset(DataConfig(fake, extra_dirs=(extra,), drop_train=drop))
    left = {dropped.example_id(e) for e in dropped.train}
    assert not left & set(listed) and set(ids) - set(listed) <= left
    assert dropped.skipped["dropped_from_training"] == 5
    for split in ("val", "test"):  # untouched, the listed ones included
        assert ([dropped.example_id(e) for e in dropped.split(split)]
                == [full.example_id(e) for e in full.split(split)])
    assert "7 listed clips never train (drop.txt)" in dropped.split_rule
    assert dropped.config.without_train_only().drop_train is None
    with pytest.raises(KwsError, match="cannot read the list of clips to drop"):
        load_dataset(DataConfig(fake, drop_train=tmp_path / "missing.txt"))


def test_cv_folds_rotate_validation_over_the_main_folder_speakers(fake):
    base = load_dataset(DataConfig(fake))
    pool = speakers(base.train) | speakers(base.val)
    folds = [load_dataset(DataConfig(fake, cv_folds=4, cv_fold=k)) for k in range(4)]
    seen: set[str] = set()
    for k, ds in enumerate(folds):
        assert_disjoint(ds)
        assert [ds.example_id(e) for e in ds.test] == [base.example_id(e) for e in base.test]
        val = speakers(ds.val)
        assert not val & seen  # each speaker validates in one fold only
        seen |= val
        assert speakers(ds.train) == pool - val  # the other folds train
        assert all(cv_fold_of(ex.speaker, 4) == k for ex in ds.val if ex.speaker)
        assert "4 folds" in ds.split_rule and f"fold {k} validates" in ds.split_rule
    assert seen == pool and all(speakers(ds.val) for ds in folds)
    again = load_dataset(DataConfig(fake, cv_folds=4, cv_fold=2))
    assert [again.example_id(e) for e in again.val] == [folds[2].example_id(e)
                                                        for e in folds[2].val]
    for bad, message in (({"cv_folds": 1}, "cv_folds"), ({"cv_folds": -2}, "cv_folds"),
                         ({"cv_folds": 3, "cv_fold": 3}, "cv_fold must be within 0-2"),
                         ({"cv_fold": 1}, "needs cv_folds")):
        with pytest.raises(KwsError, match=message):
            load_dataset(DataConfig(fake, **bad))


def word_sound_of(example: Example) -> np.ndarray:
    from tests.fixtures_data import word_sound

    return word_sound(example.label, example.speaker, 0)


def test_training_unknown_percentage_is_separate_from_val_and_test(fake):
    ds = load_dataset(DataConfig(fake, train_unknown_pct=1000.0))
    base = load_dataset(DataConfig(fake))
    pool = [e for e in ds.train if e.label == UNKNOWN]
    assert len(pool) > sum(e.label == UNKNOWN for e in base.train)
    assert [ds.example_id(e) for e in ds.test] == [base.example_id(e) for e in base.test]
    with pytest.raises(KwsError, match="train_unknown_pct"):
        load_dataset(DataConfig(fake, train_unknown_pct=-1.0))
    with pytest.raises(KwsError, match="no such data folder"):
        load_dataset(DataConfig(fake, extra_dirs=(fake / "missing",)))

