"""Word classes: non-keyword words trained as classes, summed into ``_unknown_`` after."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from edge_runtime.errors import KwsError
from edge_runtime.frontend import EDGE_FRONTEND
from tests.fixtures_data import make_fake_dataset
from train.data import DataConfig
from train.word_classes import (
    class_names,
    label_map,
    merge_words,
    merged_accuracy,
    merged_softmax,
    word_targets,
    word_vocabulary,
)

LABELS = ["_silence_", "_unknown_", "yes", "no"]
TASK = "yes,no"


def test_words_with_enough_clips_become_classes_after_the_labels():
    words = [None, "cat", "bed", "cat", None, "bed", "dog", "cat"]
    vocabulary = word_vocabulary(words, min_clips=2)
    assert vocabulary == ["bed", "cat"]  # dog: one clip, stays _unknown_
    assert class_names(LABELS, vocabulary) == [*LABELS, "_unknown_/bed", "_unknown_/cat"]
    mapping = label_map(LABELS, vocabulary)
    assert mapping.tolist() == [0, 1, 2, 3, 1, 1]
    y = np.array([2, 1, 1, 1, 3, 1, 1, 1])
    assert word_targets(y, words, vocabulary, len(LABELS)).tolist() == [2, 5, 4, 5, 3, 4, 1, 5]
    assert y.tolist() == [2, 1, 1, 1, 3, 1, 1, 1]  # not changed in place


def _tiny_classifier(n_classes: int):
    import keras

    inputs = keras.Input((6,))
    hidden = keras.layers.Dense(8, activation="relu", name="hidden")(inputs)
    outputs = keras.layers.Dense(n_classes, activation="softmax", name="probabilities")(hidden)
    return keras.Model(inputs, outputs)


def test_merging_sums_the_word_probabilities_into_unknown_and_the_bias_scales_them():
    from convert.logit_offset import shift_logit

    mapping = label_map(LABELS, ["bed", "cat"])
    fine = _tiny_classifier(len(mapping))
    x = np.random.default_rng(0).normal(size=(32, 6)).astype(np.float32) * 3
    p = fine.predict(x, verbose=0).astype(np.float64)
    merged = merge_words(fine, mapping)
    q = merged.predict(x, verbose=0).astype(np.float64)
    assert q.shape == (32, len(LABELS))
    np.testing.assert_allclose(q[:, 1], p[:, 1] + p[:, 4] + p[:, 5], rtol=1e-5)
    np.testing.assert_allclose(q[:, [0, 2, 3]], p[:, [0, 2, 3]], rtol=1e-5)
    layer, read = merged_softmax(merged)
    assert layer.name == "probabilities" and read.tolist() == mapping.tolist()
    assert merged_softmax(fine) is None

    shift_logit(merged, LABELS, "_unknown_", 1.0)
    shifted = merged.predict(x, verbose=0).astype(np.float64)
    # every other class's odds against _unknown_ fall by e
    ratio = (q[:, [0, 2, 3]] / q[:, [1]]) / (shifted[:, [0, 2, 3]] / shifted[:, [1]])
    np.testing.assert_allclose(ratio, np.e, rtol=1e-4)
    with pytest.raises(KwsError, match="no _speech_ class"):
        shift_logit(merged, LABELS, "_speech_", 1.0)


def test_merged_accuracy_counts_a_word_class_as_unknown():
    mapping = label_map(LABELS, ["bed", "cat"])
    probs = np.eye(len(mapping), dtype=np.float32)[[4, 5, 2, 1, 3, 0]]
    # truth as labels (validation) or as training classes: the same merged answer
    metric = merged_accuracy(mapping)
    metric.update_state(np.array([1, 1, 2, 3, 3, 1]), probs)
    assert float(metric.result()) == pytest.approx(4 / 6)
    metric = merged_accuracy(mapping)
    metric.update_state(np.array([5, 4, 2, 1, 0, 0]), probs)
    assert float(metric.result()) == pytest.approx(5 / 6)  # only the 3 taken for a 0 fails
    # two word classes outvote a label by their sum, as the merged model's output does
    split = np.array([[0.0, 0.0, 0.4, 0.0, 0.3, 0.3]], dtype=np.float32)
    metric = merged_accuracy(mapping)
    metric.update_state(np.array([1]), split)
    assert float(metric.result()) == 1.0


@pytest.fixture(scope="module")
def word_data(tmp_path_factory) -> Path:
    # 6 training speakers x 3 clips: 18 clips of cat and of bed, enough for a class each
    return make_fake_dataset(tmp_path_factory.mktemp("words") / "sc",
                             ["yes", "no", "cat", "bed"], speakers=8, per_speaker=3,
                             with_lists=True)


def test_training_with_word_classes_saves_a_model_of_the_labels(word_data, tmp_path, capsys):
    """The model trains on the labels plus one class per word, is saved merged (the labels'
    outputs, summing to 1), converts to int8 as the shipped recipe does (normalisation moved
    out, ReLUs clipped, prior correction), and the run's log names the word classes."""
    from convert.convert import ConvertConfig, convert_model
    from edge_runtime.model import KwsModel
    from train.data import load_dataset
    from train.models import load_keras
    from train.train import TrainConfig, load_splits, train

    config = TrainConfig(DataConfig(word_data, task=TASK, train_unknown_pct=100.0),
                         epochs=2, batch_size=8, track=False, out_dir=tmp_path / "model",
                         cache_dir=tmp_path / "cache", word_classes=True, verbose=0,
                         balance=0.5, word_balance=0.5, normalize=True)
    dataset = load_dataset(config.data)
    splits = load_splits(dataset, EDGE_FRONTEND, config)
    n = len(dataset.labels)
    assert splits.classes == [*dataset.labels, "_unknown_/bed", "_unknown_/cat"]
    assert set(splits.train_y.tolist()) >= {n, n + 1}  # cat and bed clips: their classes
    assert n - 1 >= splits.val_y.max()  # validation keeps the labels

    result = train(config)
    assert "word classes: _unknown_/bed, _unknown_/cat" in capsys.readouterr().err
    model = load_keras(result.model_dir)
    assert model.output_shape == (None, len(dataset.labels))
    assert merged_softmax(model) is not None
    assert model.layers[-2].output.shape[-1] == len(dataset.labels) + 2
    out = convert_model(ConvertConfig(data_dir=word_data, keras_path=result.model_dir,
                                      out_dir=tmp_path / "out", max_drop=100.0,
                                      min_accuracy=0, calibration=20, unknown_bias=1.0,
                                      mlflow=False, register=False))
    assert out.notes["clip_percentile"] == 99.9  # still a chain: its ReLUs clipped
    assert out.notes["unknown_bias"] == 1.0
    int8 = KwsModel(out.models["int8"])
    assert int8.labels == list(dataset.labels)
    probs = int8.predict_samples(np.zeros(16000, dtype=np.float32))
    assert probs.shape == (len(dataset.labels),)
    assert abs(float(probs.sum()) - 1.0) < 0.05

    # a fine-tune of the merged model trains its outputs on the labels; the merge stays fixed
    tuned = train(replace(config, word_classes=False, init_from=result.model_dir, epochs=1,
                          out_dir=tmp_path / "tuned"))
    after = load_keras(tuned.model_dir)
    np.testing.assert_array_equal(after.layers[-1].get_weights()[0],
                                  model.layers[-1].get_weights()[0])
    assert any(not np.array_equal(a, b) for a, b in zip(
        after.layers[-2].get_weights(), model.layers[-2].get_weights(), strict=True))


def test_word_classes_refuse_teachers_and_fine_tuning(word_data, tmp_path):
    from train.train import TrainConfig

    for option in ({"init_from": tmp_path}, {"teachers": (tmp_path,)}):
        config = TrainConfig(DataConfig(word_data, task=TASK), word_classes=True, track=False,
                             **option)
        with pytest.raises(KwsError, match="word classes"):
            config.check()


def test_word_classes_keep_the_labels_class_and_word_weights(word_data, tmp_path):
    """A word-class target weighs as its label's class (``--balance``) times its word's factor
    (``--word-balance``), exactly as the same clip weighs without word classes."""
    from train.data import load_dataset
    from train.train import TrainConfig, augmented_batches, load_splits

    weights = {}
    for on in (False, True):
        config = TrainConfig(DataConfig(word_data, task=TASK, train_unknown_pct=100.0),
                             batch_size=1000, track=False, cache_dir=tmp_path / "cache",
                             augment_copies=1, balance=1.0, word_balance=1.0,
                             word_classes=on)
        dataset = load_dataset(config.data)
        splits = load_splits(dataset, EDGE_FRONTEND, config)
        batches = augmented_batches(splits, dataset, EDGE_FRONTEND, config)
        _, y, w = batches[0]
        assert (y.max() >= len(dataset.labels)) == on  # the one batch holds every clip
        weights[on] = (splits.label_map[y], w)
    np.testing.assert_array_equal(weights[True][0], weights[False][0])
    np.testing.assert_allclose(weights[True][1], weights[False][1], rtol=1e-6)
