"""Hard-negative mining: window features, selection, and fine-tuning on what was mined."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from edge_runtime.errors import KwsError
from edge_runtime.frontend import EDGE_FRONTEND, Frontend
from tests.fixtures_data import make_fake_dataset
from train.data import DataConfig
from train.hard_negatives import HardNegativeConfig, keyword_score, mine, windows_scoring
from train.speech_windows import SpeechWindowConfig

RATE = EDGE_FRONTEND.sample_rate
TASK = "yes,no,up"


def burst_stream(seconds: float = 6.0, at: float = 3.0) -> np.ndarray:
    """Quiet noise with a 0.3-s tone burst starting at ``at`` seconds."""
    rng = np.random.default_rng(0)
    out = (0.001 * rng.standard_normal(int(seconds * RATE))).astype(np.float32)
    t = np.arange(int(0.3 * RATE)) / RATE
    start = int(at * RATE)
    out[start : start + t.size] += 0.5 * np.sin(2 * np.pi * 440 * t)
    return out


def loudness(feats: np.ndarray) -> np.ndarray:
    """A window's score: the largest first cepstral coefficient (energy) of its frames."""
    return feats[..., 0].max(axis=1)


def test_each_window_scores_the_features_the_window_alone_gives():
    stream = burst_stream()
    seen = []

    def record(feats: np.ndarray) -> np.ndarray:
        seen.append(feats)
        return loudness(feats)

    hop_ms = 2000 * EDGE_FRONTEND.hop_length / RATE  # two front-end hops
    starts, scores = windows_scoring(stream, EDGE_FRONTEND, hop_ms, record, batch=7)
    assert np.all(np.diff(starts) == 2 * EDGE_FRONTEND.hop_length)
    feats = np.concatenate(seen)
    assert feats.shape == (starts.size, *EDGE_FRONTEND.feature_shape)
    alone = Frontend(EDGE_FRONTEND)(np.stack([stream[s : s + RATE] for s in starts[::9]]))
    np.testing.assert_allclose(feats[::9], alone, rtol=1e-5, atol=1e-4)
    assert scores.shape == starts.shape


def test_mine_keeps_the_highest_scoring_windows_over_the_threshold():
    stream = burst_stream()
    _, scores = windows_scoring(stream, EDGE_FRONTEND, 20.0, loudness)
    threshold = float(np.median(scores) + 0.5 * (scores.max() - np.median(scores)))
    config = HardNegativeConfig(minutes=1.0, hop_ms=20.0, min_score=1.0, max_windows=1000)
    shifted = lambda f: loudness(f) - threshold + 1.0  # noqa: E731 (the threshold at 1.0)
    every, reached = mine([stream, stream[::-1].copy()], EDGE_FRONTEND, shifted, config)
    assert len(every) == reached == 2 * int((scores >= threshold).sum()) > 0
    for window in every:  # each holds (part of) the tone: in the stream or its reverse
        assert np.abs(window).max() > 0.1
    capped, reached = mine([stream], EDGE_FRONTEND, shifted, HardNegativeConfig(
        minutes=1.0, hop_ms=20.0, min_score=1.0, max_windows=3))
    assert len(capped) == 3 and reached == len(every) // 2
    loudest = max(Frontend(EDGE_FRONTEND)(w[None])[0, :, 0].max() for w in every)
    assert Frontend(EDGE_FRONTEND)(capped[:1])[0, :, 0].max() == pytest.approx(loudest, rel=1e-5)


def test_keyword_score_ignores_silence_and_unknown():
    labels = ["_silence_", "_unknown_", "yes", "no"]
    probs = np.array([[0.7, 0.2, 0.06, 0.04], [0.1, 0.1, 0.2, 0.6]], dtype=np.float32)
    score = keyword_score(lambda x: probs[: len(x)], labels)
    np.testing.assert_allclose(score(np.zeros((2, 1))), [0.06, 0.6])


@pytest.fixture(scope="module")
def fake_data(tmp_path_factory) -> Path:
    return make_fake_dataset(tmp_path_factory.mktemp("data") / "sc", ["yes", "no", "up", "cat"],
                             speakers=4, per_speaker=2, with_lists=True)


def test_fine_tuning_starts_from_the_model_and_trains_on_what_it_mined(fake_data, tmp_path):
    import keras

    from train.train import TrainConfig, train

    def config(out: str, **options) -> TrainConfig:
        return TrainConfig(DataConfig(fake_data, task=TASK), epochs=1, batch_size=4,
                           track=False, out_dir=tmp_path / out, cache_dir=tmp_path / "cache",
                           verbose=0, **options)

    base = train(config("base"))
    # mined from even-word streams, with running speech drawn evenly by word too
    tuned = train(config("tuned", init_from=base.model_dir, lr=1e-9,
                         hard_negatives=HardNegativeConfig(minutes=0.2, min_score=0.01,
                                                           even_words=True),
                         speech_windows=SpeechWindowConfig(running_speech=0.25,
                                                           even_words=True)))
    settings = json.loads((tuned.model_dir / "model_settings.json").read_text())
    assert settings["metrics"]["hard_negatives"] > 0  # windows mined and trained on
    weights = [keras.saving.load_model(r.model_dir / "model.keras", compile=False)
               .trainable_variables for r in (base, tuned)]
    for a, b in zip(*weights, strict=True):  # a learning rate of 1e-9 moved nothing
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=1e-6)


def test_hard_negatives_need_a_trained_model_of_the_same_labels(fake_data, tmp_path):
    from train.train import TrainConfig, train

    mining = HardNegativeConfig(minutes=0.2)
    with pytest.raises(KwsError, match="init_from"):
        TrainConfig(DataConfig(fake_data, task=TASK), hard_negatives=mining, track=False,
                    out_dir=tmp_path).check()
    base = train(TrainConfig(DataConfig(fake_data, task=TASK), epochs=1, batch_size=4,
                             track=False, out_dir=tmp_path / "base", verbose=0,
                             cache_dir=tmp_path / "cache"))
    with pytest.raises(KwsError, match="other labels"):
        train(TrainConfig(DataConfig(fake_data, task="yes,no"), epochs=1, batch_size=4,
                          track=False, out_dir=tmp_path / "other", verbose=0,
                          cache_dir=tmp_path / "cache", init_from=base.model_dir))
