"""Hard negatives: the 1-s windows of the training speakers' own non-keyword speech that a
trained model still takes for a keyword.

A streaming detector hears every 1-s window of a stream, not centred words. Random running-
speech windows (:mod:`train.speech_windows`) teach that only on average; here a trained model
scans long streams of the training split's speakers with no keyword in them (isolated other
words, and the same words joined into running speech: the rejection benchmark's
:func:`edge_runtime.stream_gen.non_keyword_specs`), and the
windows where a keyword's posterior reaches ``min_score`` become ``_unknown_`` examples for
fine-tuning that model (``TrainConfig.init_from``). Every speaker stays in its split.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from edge_runtime.frontend import FrontendConfig, StreamingFrontend
from edge_runtime.manifest import BACKGROUND_LABELS
from edge_runtime.stream_gen import generate, non_keyword_specs
from train.data import AUDIO_SUFFIXES, Dataset, load_clip


@dataclass(frozen=True)
class HardNegativeConfig:
    minutes: float = 0.0  # of each of the two non-keyword streams scanned (0: off)
    hop_ms: float = 20.0  # between the windows scored (rounded to front-end hops)
    min_score: float = 0.5  # a window whose top keyword posterior reaches this is kept
    max_windows: int = 4000  # the highest-scoring ones when more reach min_score
    seed: int = 0  # of the streams
    # the streams' other words drawn evenly by word (StreamSpec.even_words), not by clip
    even_words: bool = False

    def __post_init__(self) -> None:
        if self.minutes < 0 or self.hop_ms <= 0 or self.max_windows < 0:
            raise ValueError("need minutes >= 0, hop_ms > 0 and max_windows >= 0")
        if not 0 < self.min_score <= 1:
            raise ValueError(f"min_score must be within 0-1, got {self.min_score:g}")

    @property
    def enabled(self) -> bool:
        return self.minutes > 0 and self.max_windows > 0


def non_keyword_streams(dataset: Dataset, config: HardNegativeConfig, sample_rate: int
                        ) -> list[np.ndarray]:
    """The training speakers' isolated other words and running speech, ``minutes`` each."""
    speakers = frozenset(e.speaker for e in dataset.split("train") if e.speaker)
    keywords = tuple(x for x in dataset.labels if x not in BACKGROUND_LABELS)
    data = dataset.config
    specs = non_keyword_specs(config.seed, minutes=config.minutes, speakers=speakers,
                              keywords=keywords, sample_rate=sample_rate,
                              even_words=config.even_words)
    return [generate(data.data_dir, spec, extra_dirs=data.extra_dirs, suffixes=AUDIO_SUFFIXES,
                     load=load_clip).samples for spec in specs.values()]


def windows_scoring(samples: np.ndarray, frontend: FrontendConfig, hop_ms: float,
                    score: Callable[[np.ndarray], np.ndarray], batch: int = 2000
                    ) -> tuple[np.ndarray, np.ndarray]:
    """First samples and scores of every 1-s window of ``samples`` ``hop_ms`` apart; the
    stream's features are computed once, in pieces, and each window's are its frames' (exactly
    what the window alone gives). ``score`` maps ``(n, frames, features)`` to ``(n,)``."""
    hop_frames = max(1, round(hop_ms * frontend.sample_rate / 1000 / frontend.hop_length))
    streaming, step = StreamingFrontend(frontend), 60 * frontend.sample_rate
    feats = np.concatenate([streaming.push(samples[i : i + step])
                            for i in range(0, samples.size, step)])
    frames = frontend.feature_shape[0]
    firsts = np.arange(0, feats.shape[0] - frames + 1, hop_frames)
    view = np.lib.stride_tricks.sliding_window_view(feats, frames, axis=0)  # (T, F, frames)
    scores = np.concatenate([
        score(np.swapaxes(view[firsts[i : i + batch]], 1, 2))
        for i in range(0, firsts.size, batch)]) if firsts.size else np.zeros(0)
    return firsts * frontend.hop_length, scores


def keyword_score(predict: Callable[[np.ndarray], np.ndarray], labels: list[str]
                  ) -> Callable[[np.ndarray], np.ndarray]:
    """A window's score: its highest keyword posterior under ``predict``."""
    columns = [i for i, x in enumerate(labels) if x not in BACKGROUND_LABELS]
    return lambda feats: predict(feats)[:, columns].max(axis=1)


def mine(streams: list[np.ndarray], frontend: FrontendConfig,
         score: Callable[[np.ndarray], np.ndarray], config: HardNegativeConfig
         ) -> tuple[np.ndarray, int]:
    """``(n, clip_samples)`` waveforms of the windows scoring ``min_score`` or more, the
    highest ``max_windows`` of them, over all ``streams``; and how many scored so."""
    kept: list[tuple[float, np.ndarray, int]] = []
    for samples in streams:
        starts, scores = windows_scoring(samples, frontend, config.hop_ms, score)
        hits = np.flatnonzero(scores >= config.min_score)
        kept.extend((float(scores[i]), samples, int(starts[i])) for i in hits)
    kept.sort(key=lambda k: -k[0])
    n = frontend.clip_samples
    out = np.zeros((min(len(kept), config.max_windows), n), dtype=np.float32)
    for row, (_, samples, start) in enumerate(kept[: config.max_windows]):
        out[row] = samples[start : start + n]
    return out, len(kept)
