"""Running-speech, cut-off-keyword and reversed-speech windows, speech bounds, class weights."""

from __future__ import annotations

import numpy as np
import pytest

from edge_runtime.stream_gen import speech_bounds
from train.speech_windows import (
    SpeechWindowConfig,
    cut_keywords,
    even_word_probabilities,
    mix_in,
    reversible_rows,
    running_speech,
)
from train.train import class_weights, folder_weights, word_weights

RATE = 16000


def clips(n: int = 6) -> np.ndarray:
    """1-s clips with a 0.3-s tone burst starting at 0.2 s + 0.1 s per clip."""
    out = np.zeros((n, RATE), dtype=np.float32)
    for i in range(n):
        start = int((0.2 + 0.1 * (i % 5)) * RATE)
        t = np.arange(int(0.3 * RATE)) / RATE
        out[i, start : start + t.size] = 0.5 * np.sin(2 * np.pi * (200 + 50 * i) * t)
    return out


def test_speech_bounds_find_the_burst_to_10_ms():
    waves = clips()
    bounds = speech_bounds(waves)
    for i, (a, b) in enumerate(bounds):
        start = int((0.2 + 0.1 * (i % 5)) * RATE)
        assert abs(a - start) <= 160 and abs(b - (start + int(0.3 * RATE))) <= 160
    silent = speech_bounds(np.zeros((1, RATE), np.float32))
    assert tuple(silent[0]) == (0, RATE)


def test_running_speech_joins_trimmed_clips_without_the_silence_between():
    waves = clips()
    bounds = speech_bounds(waves)
    config = SpeechWindowConfig(running_speech=1.0, words=(4, 4), gap_ms=(0.0, 0.0))
    out = running_speech(np.random.default_rng(0), waves, bounds, np.arange(6), 20, config)
    assert out.shape == (20, RATE)
    # four 0.3-s bursts joined with no gap are 1.2 s: a 1-s window is speech throughout
    active = np.abs(out).reshape(20, 100, 160).max(axis=2) > 0.01
    assert active.mean() > 0.95


def test_cut_keywords_leave_only_part_of_the_word_at_an_edge():
    waves = clips()
    bounds = speech_bounds(waves)
    config = SpeechWindowConfig(cut_keywords=1.0, keep=(0.2, 0.4))
    rows = np.arange(6).repeat(5)
    out = cut_keywords(np.random.default_rng(1), waves, bounds, rows, config)
    for row, window in zip(rows, out, strict=True):
        a, b = bounds[row]
        voiced = np.nonzero(np.abs(window) > 0)[0]
        assert voiced.size <= 0.4 * (b - a) + 160
        assert voiced[0] == 0 or voiced[-1] == RATE - 1  # at the window's start or end


def test_mix_in_relabels_the_replaced_rows_as_unknown():
    waves = clips(10)
    bounds = speech_bounds(waves)
    labels = np.array([1] * 4 + [2] * 6)  # 1 = _unknown_, 2 = a keyword
    config = SpeechWindowConfig(running_speech=0.3, cut_keywords=0.3)
    rng = np.random.default_rng(2)
    batch, y = mix_in(rng, waves, labels, waves, bounds, np.arange(4), np.arange(4, 10), 1,
                      config)
    changed = np.any(batch != waves, axis=1)
    assert changed.any() and (y[changed] == 1).all()
    assert (y[~changed] == labels[~changed]).all()
    again = mix_in(np.random.default_rng(2), waves, labels, waves, bounds, np.arange(4),
                   np.arange(4, 10), 1, config)
    np.testing.assert_array_equal(again[0], batch)  # repeatable for a seed


def test_reversed_speech_plays_allowed_clips_backwards_as_unknown():
    """Rows replaced by reversed speech are pool clips played backwards, labelled _unknown_;
    'no' and 'on' (each the other backwards) and silence never enter the pool."""
    names = ["_silence_", "_unknown_", "no", "on", "yes"]
    labels = np.array([0, 1, 1, 2, 3, 4, 4, 2, 3, 4])
    config = SpeechWindowConfig(reversed_speech=0.5)
    pool = reversible_rows(labels, names, config, "_silence_")
    np.testing.assert_array_equal(pool, [1, 2, 5, 6, 9])
    np.testing.assert_array_equal(
        reversible_rows(labels, names, SpeechWindowConfig(reverse_skip=()), "_silence_"),
        [1, 2, 3, 4, 5, 6, 7, 8, 9])
    waves = clips(10)
    batch_y = np.full(200, 4)
    batch = waves[np.arange(200) % 10]
    out, y = mix_in(np.random.default_rng(5), batch, batch_y, waves, speech_bounds(waves),
                    np.arange(0), np.arange(0), 1, config, reverse_rows=pool)
    changed = np.any(out != batch, axis=1)
    assert 0.35 < changed.mean() < 0.65  # about half the batch
    assert (y[changed] == 1).all() and (y[~changed] == 4).all()
    backwards = waves[pool, ::-1]
    for row in out[changed]:
        assert any(np.array_equal(row, b) for b in backwards)
    # with the other kinds, reversed speech keeps its share of the whole batch
    for mixed in (SpeechWindowConfig(running_speech=0.3, reversed_speech=0.3),
                  SpeechWindowConfig(running_speech=0.2, cut_keywords=0.3, reversed_speech=0.3)):
        shares = []
        for seed in range(20):
            out, y = mix_in(np.random.default_rng(seed), batch, batch_y, waves,
                            speech_bounds(waves), pool, pool, 1, mixed, reverse_rows=pool)
            rev = [any(np.array_equal(r, b) for b in backwards) for r in out]
            shares.append(np.mean(rev))
        assert 0.27 < np.mean(shares) < 0.33


def test_even_words_give_each_word_the_same_share_of_running_speech():
    """Nine clips of one word and one of another: drawn by clip the lone word's clip makes
    ~10% of the joined clips, drawn evenly by word ~50%."""
    words = ["bed"] * 9 + ["dog"]
    p = even_word_probabilities(words)
    np.testing.assert_allclose([p[:9].sum(), p[9]], [0.5, 0.5])
    np.testing.assert_allclose(even_word_probabilities(["a", None, None]), [0.5, 0.25, 0.25])
    waves = clips(10)  # each clip its own tone: which clips were joined shows in the spectrum
    bounds = speech_bounds(waves)
    config = SpeechWindowConfig(running_speech=1.0, words=(1, 1), gap_ms=(0.0, 0.0))

    def dog_share(pool_p) -> float:
        out = running_speech(np.random.default_rng(3), waves, bounds, np.arange(10), 400,
                             config, pool_p)
        spectrum = np.abs(np.fft.rfft(out, axis=1))  # 1-Hz bins: clip 9's tone is 650 Hz
        return float(np.mean(spectrum[:, 650] > spectrum[:, 200:601].max(axis=1)))

    assert dog_share(None) < 0.2
    assert 0.4 < dog_share(p) < 0.6
    batch, _ = mix_in(np.random.default_rng(4), waves, np.ones(10, int), waves, bounds,
                      np.arange(10), np.arange(0), 1, config, p)
    assert batch.shape == waves.shape


def test_bad_window_config():
    with pytest.raises(ValueError, match="at most 1"):
        SpeechWindowConfig(running_speech=0.7, cut_keywords=0.5)
    with pytest.raises(ValueError, match="at most 1"):
        SpeechWindowConfig(running_speech=0.5, reversed_speech=0.6)
    with pytest.raises(ValueError, match="within 0-1"):
        SpeechWindowConfig(reversed_speech=1.5)
    with pytest.raises(ValueError, match="within 0-1"):
        SpeechWindowConfig(cut_keywords=-0.1)


def test_class_weights_balance_as_asked():
    labels = np.array([0] * 100 + [1] * 25 + [2] * 25)
    none = class_weights(labels, 4, 0.0)
    np.testing.assert_allclose(none[:3], 1.0)
    full = class_weights(labels, 4, 1.0)
    totals = np.bincount(labels, minlength=4) * full
    np.testing.assert_allclose(totals[:3], totals[0])  # each class weighs the same in all
    assert full[3] == 0.0  # a class without examples
    np.testing.assert_allclose((full[labels]).mean(), 1.0)
    half = class_weights(labels, 4, 0.5)
    assert none[0] / none[1] > half[0] / half[1] > full[0] / full[1]


def test_word_weights_level_the_words_of_unknown():
    words = ["bed"] * 90 + ["tree"] * 10 + [None] * 5
    equal = word_weights(words, 1.0)
    np.testing.assert_allclose(equal[-5:], 1.0)  # examples without a word keep weight 1
    np.testing.assert_allclose(equal[:90].sum(), equal[90:100].sum())  # each word the same
    np.testing.assert_allclose(equal[:100].mean(), 1.0)  # the class keeps its total weight
    half = word_weights(words, 0.5)
    assert equal[95] / equal[0] > half[95] / half[0] > 1.0
    np.testing.assert_allclose(word_weights(words, 0.0), 1.0)


def test_folder_weights_weigh_the_main_folder_within_each_class():
    labels = np.array([0] * 6 + [1] * 4 + [2] * 3)
    in_main = np.array([1, 1, 0, 0, 0, 0] + [1, 0, 0, 0] + [0, 0, 0], dtype=bool)
    factors = folder_weights(in_main, labels, 3.0)
    for c in range(3):  # each class keeps its total weight
        np.testing.assert_allclose(factors[labels == c].mean(), 1.0, rtol=1e-6)
    np.testing.assert_allclose(factors[0] / factors[2], 3.0, rtol=1e-6)
    np.testing.assert_allclose(factors[6] / factors[7], 3.0, rtol=1e-6)
    np.testing.assert_allclose(factors[10:], 1.0)  # a class without main clips: unchanged
    np.testing.assert_allclose(folder_weights(in_main, labels, 1.0), 1.0)
