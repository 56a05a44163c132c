"""ReLUs clipped at a calibration percentile and rescaled to ReLU6 before int8 conversion."""

from __future__ import annotations

import numpy as np
import pytest

from convert.clip_activations import chain_layers, clip_to_relu6
from convert.tflite import op_names, to_tflite
from edge_runtime.frontend import EDGE_FRONTEND
from train.models.common import tone_features, trained_looking_batchnorm


@pytest.fixture(scope="module")
def model():
    """ds_cnn_s with random BatchNorm statistics and affine terms (as after training)."""
    import keras

    from train.models import architecture

    keras.utils.set_random_seed(4)
    return trained_looking_batchnorm(architecture("ds_cnn_s").build(12))


@pytest.fixture(scope="module")
def features():
    x = tone_features(EDGE_FRONTEND, n=48)
    return (x - x.mean(axis=(0, 1, 3), keepdims=True)) / x.std(axis=(0, 1, 3), keepdims=True)


def relu_outputs(net, x) -> list[np.ndarray]:
    out = []
    for layer in chain_layers(net):
        x = np.asarray(layer(x, training=False))
        if "relu" in layer.name:
            out.append(x)
    return out


def test_at_the_100th_percentile_the_function_is_unchanged(model, features):
    import keras

    clipped = clip_to_relu6(model, features, 100.0)
    kinds = [type(layer).__name__ for layer in clipped.layers]
    assert "ReLU" not in kinds and kinds.count("Activation") == 9
    np.testing.assert_allclose(clipped.predict(features, verbose=0),
                               model.predict(features, verbose=0), atol=2e-5)
    assert all(isinstance(layer, keras.layers.Layer) for layer in clipped.layers)


def test_each_relu_ends_at_six_and_clips_above_the_percentile(model, features):
    clipped = clip_to_relu6(model, features, 90.0)
    before, after = relu_outputs(model, features), relu_outputs(clipped, features)
    assert len(before) == len(after) == 9
    assert all(a.max() == pytest.approx(6.0) for a in after)
    c = np.percentile(before[0], 90.0)  # later ReLUs read already clipped inputs
    np.testing.assert_allclose(after[0], np.minimum(before[0], c) * 6.0 / c, rtol=1e-4,
                               atol=1e-4)
    assert not np.allclose(clipped.predict(features, verbose=0),
                           model.predict(features, verbose=0), atol=1e-3)


def test_the_clip_is_fused_into_the_convolutions(model, features):
    plain = op_names(to_tflite(model, "int8", features))
    clipped = op_names(to_tflite(clip_to_relu6(model, features), "int8", features))
    assert clipped == plain
    assert {"RELU", "RELU6", "MINIMUM", "MAXIMUM"}.isdisjoint(clipped)


def test_models_that_are_not_chains_are_left_alone(features):
    import keras

    from train.models import architecture

    assert clip_to_relu6(architecture("bc_resnet_1").build(12), np.zeros((1, 49, 40))) is None
    frames, coeffs = EDGE_FRONTEND.feature_shape
    no_bn = keras.Sequential([keras.Input((frames, coeffs, 1)), keras.layers.Conv2D(4, 3),
                              keras.layers.ReLU(), keras.layers.Flatten(),
                              keras.layers.Dense(3)])
    assert clip_to_relu6(no_bn, features) is None
    with pytest.raises(ValueError, match="percentile"):
        clip_to_relu6(no_bn, features, 0.0)


def test_a_model_with_its_input_in_a_list_and_a_word_merge_is_still_a_chain(model, features):
    """``keras.Model([input], ...)`` writes its input as ``[[name, 0, 0]]``; a model trained
    with word classes ends in a merge after the softmax: both are clipped as chains."""
    import keras

    from train.models import architecture
    from train.word_classes import merge_words

    listed = keras.Model([model.inputs[0]], model.outputs[0])
    assert isinstance(listed.get_config()["input_layers"][0], list)
    assert chain_layers(listed) is not None
    keras.utils.set_random_seed(5)
    fine = trained_looking_batchnorm(architecture("ds_cnn_s").build(14))  # 2 word classes
    merged = merge_words(fine, np.array([*range(12), 1, 1]))
    assert chain_layers(merged)[-1].name == "merge_words"
    clipped = clip_to_relu6(merged, features)
    assert clipped is not None and clipped.output_shape == (None, 12)
    np.testing.assert_allclose(clipped.predict(features, verbose=0),
                               merged.predict(features, verbose=0), atol=0.05)


def test_the_chain_after_the_clip_mean_subtraction_is_clipped(features):
    """ds_cnn_w_cmn: the clip-mean subtraction (an average pool and a two-input subtract) is a
    head the chain reads; the chain's ReLUs are clipped, the head copied as it is."""
    import keras

    from convert.clip_activations import split_chain
    from train.models import architecture
    from train.models.common import split_normalization

    keras.utils.set_random_seed(6)
    cmn, _ = split_normalization(trained_looking_batchnorm(architecture("ds_cnn_w_cmn").build(12)))
    head, chain = split_chain(cmn)
    assert [entry["class_name"] for entry in head] == ["AveragePooling2D", "Subtract"]
    assert chain_layers(cmn) is None and type(chain[0]).__name__ == "Conv2D"
    same = clip_to_relu6(cmn, features, 100.0)
    kinds = [type(layer).__name__ for layer in same.layers]
    assert "ReLU" not in kinds and kinds.count("Activation") == 9 and "Subtract" in kinds
    np.testing.assert_allclose(same.predict(features, verbose=0),
                               cmn.predict(features, verbose=0), atol=2e-5)
    clipped = clip_to_relu6(cmn, features)
    assert op_names(to_tflite(clipped, "int8", features)) == op_names(
        to_tflite(cmn, "int8", features))
    offset = features + np.random.default_rng(0).normal(size=(1, 1, features.shape[2], 1))
    np.testing.assert_allclose(clipped.predict(offset, verbose=0),  # still invariant
                               clipped.predict(features, verbose=0), atol=1e-4)
