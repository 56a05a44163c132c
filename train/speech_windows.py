"""``_unknown_`` examples made from training speech: what a streaming detector hears between
keywords.

The detector sees 1-s windows of a continuous stream, not isolated words. Two kinds of window
are made per batch from the training split's own waveforms (so every speaker stays in its
split):

* **running speech**: 2-4 non-keyword clips, trimmed to their speech and joined with short
  random gaps, and a random 1-s window of the result (it often cuts words at both edges);
* **cut-off keywords**: a keyword clip of which only its first or last 15-50 % is in the
  window (the stream just started hearing it, or has almost passed it);
* **reversed speech**: a training clip played backwards: a real voice and microphone saying no
  word (clips of words whose reversal sounds like a keyword, ``no`` and ``on``, are left out).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edge_runtime.stream_gen import FRAME


@dataclass(frozen=True)
class SpeechWindowConfig:
    running_speech: float = 0.0  # share of each batch replaced by running-speech windows
    cut_keywords: float = 0.0  # share of each batch replaced by cut-off keywords
    reversed_speech: float = 0.0  # share of each batch replaced by clips played backwards
    reverse_skip: tuple[str, ...] = ("no", "on")  # words whose reversal sounds like a keyword
    words: tuple[int, int] = (2, 4)  # clips joined into one stretch of running speech
    gap_ms: tuple[float, float] = (0.0, 120.0)  # pause between joined clips
    keep: tuple[float, float] = (0.15, 0.5)  # share of a cut-off keyword left in the window
    # running speech draws its clips word first, each word equally likely (False: clip first,
    # so the words with many clips, e.g. bed/cat/happy, make most of it)
    even_words: bool = False
    sample_rate: int = 16000

    def __post_init__(self) -> None:
        for name in ("running_speech", "cut_keywords", "reversed_speech"):
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f"{name} must be within 0-1")
        if self.share > 1:
            raise ValueError("running_speech + cut_keywords + reversed_speech must be at most 1")

    @property
    def share(self) -> float:
        """The share of each batch replaced by windows (all labelled ``_unknown_``)."""
        return self.running_speech + self.cut_keywords + self.reversed_speech

    @property
    def enabled(self) -> bool:
        return self.share > 0


def even_word_probabilities(words: list[str | None]) -> np.ndarray:
    """Drawing probabilities that give every word the same share (``None``: one more word)."""
    names = np.array(["" if w is None else f"w:{w}" for w in words])
    _, inverse, counts = np.unique(names, return_inverse=True, return_counts=True)
    p = 1.0 / counts[inverse]
    return p / p.sum()


def reversible_rows(labels: np.ndarray, names: list[str], config: SpeechWindowConfig,
                    silence: str) -> np.ndarray:
    """Rows (of label indices ``labels`` into ``names``) that may be played backwards: speech,
    and not a word of ``config.reverse_skip``."""
    never = [names.index(x) for x in (silence, *config.reverse_skip) if x in names]
    return np.nonzero(~np.isin(labels, never))[0]


def running_speech(rng: np.random.Generator, waves: np.ndarray, bounds: np.ndarray,
                   pool: np.ndarray, n: int, config: SpeechWindowConfig,
                   pool_p: np.ndarray | None = None) -> np.ndarray:
    """``(n, samples)`` random 1-s windows of non-keyword clips (rows ``pool``, drawn with
    probabilities ``pool_p``, None: alike) joined."""
    samples = waves.shape[1]
    out = np.zeros((n, samples), dtype=np.float32)
    rate = config.sample_rate / 1000
    for i in range(n):
        parts = []
        count = int(rng.integers(config.words[0], config.words[1] + 1))
        for row in rng.choice(pool, size=count, p=pool_p):
            a, b = bounds[row]
            parts.append(waves[row, a:b])
            parts.append(np.zeros(int(rng.uniform(*config.gap_ms) * rate), np.float32))
        joined = np.concatenate(parts[:-1])
        if joined.size <= samples:
            start = int(rng.integers(0, samples - joined.size + 1))
            out[i, start : start + joined.size] = joined
        else:
            start = int(rng.integers(0, joined.size - samples + 1))
            out[i] = joined[start : start + samples]
    return out


def cut_keywords(rng: np.random.Generator, waves: np.ndarray, bounds: np.ndarray,
                 rows: np.ndarray, config: SpeechWindowConfig) -> np.ndarray:
    """The keyword clips ``rows`` with only a part of the word left at a window edge."""
    samples = waves.shape[1]
    out = np.zeros((rows.size, samples), dtype=np.float32)
    for i, row in enumerate(rows):
        a, b = bounds[row]
        keep = max(FRAME, int((b - a) * rng.uniform(*config.keep)))
        if rng.random() < 0.5:  # the word's start, at the window's end
            out[i, samples - keep :] = waves[row, a : a + keep]
        else:  # the word's end, at the window's start
            out[i, :keep] = waves[row, b - keep : b]
    return out


def mix_in(rng: np.random.Generator, batch: np.ndarray, labels: np.ndarray,
           waves: np.ndarray, bounds: np.ndarray, unknown_rows: np.ndarray,
           keyword_rows: np.ndarray, unknown_label: int, config: SpeechWindowConfig,
           unknown_p: np.ndarray | None = None,
           reverse_rows: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Replace random rows of a batch by running-speech, cut-off-keyword and reversed-speech
    windows, labelled ``unknown_label``; ``waves``/``bounds`` are the whole training split,
    ``unknown_p`` the probabilities of drawing each of ``unknown_rows`` (None: alike),
    ``reverse_rows`` the clips that may be played backwards (None: none)."""
    batch, labels = batch.copy(), labels.copy()
    n = batch.shape[0]
    n_speech = rng.binomial(n, config.running_speech) if unknown_rows.size else 0
    n_cut = rng.binomial(n - n_speech, config.cut_keywords) if keyword_rows.size else 0
    n_rev = 0
    if reverse_rows is not None and reverse_rows.size and config.reversed_speech:
        # of the rows left after the other two kinds ((1 - running) * (1 - cut) of the batch
        # on average): a share reversed_speech of the whole batch
        rest = (1.0 - config.running_speech) * (1.0 - config.cut_keywords)
        n_rev = rng.binomial(n - n_speech - n_cut, min(1.0, config.reversed_speech / rest))
    targets = rng.permutation(n)[: n_speech + n_cut + n_rev]
    if n_speech:
        batch[targets[:n_speech]] = running_speech(rng, waves, bounds, unknown_rows, n_speech,
                                                   config, unknown_p)
    if n_cut:
        batch[targets[n_speech : n_speech + n_cut]] = cut_keywords(
            rng, waves, bounds, rng.choice(keyword_rows, size=n_cut), config)
    if n_rev:
        batch[targets[n_speech + n_cut :]] = waves[rng.choice(reverse_rows, size=n_rev), ::-1]
    labels[targets] = unknown_label
    return batch, labels
