"""The model zoo: parameter counts, shapes, front-ends, the in-model normalisation, settings."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from edge_runtime.errors import KwsError
from edge_runtime.frontend import (
    EDGE_FRONTEND,
    EDGE_LOG_MEL_FRONTEND,
    FINE_HOP_FRONTEND,
    LOG_MEL_FRONTEND,
    MFCC20_FRONTEND,
    SEED_FRONTEND,
    WIDEBAND_FRONTEND,
)
from train.data import DataConfig
from train.models import ARCHITECTURES, FeatureStats, build_model, frontend_for
from train.settings import DataSummary, ModelSettings


def summary_text(model) -> str:
    lines: list[str] = []
    model.summary(print_fn=lambda line, *a, **k: lines.append(line))
    return "\n".join(lines)


def test_seed_cnn_has_the_seed_parameter_count_for_31_classes():
    model = build_model("seed_cnn", 31)
    assert model.count_params() == 2_102_435
    assert "Total params: 2,102,435" in summary_text(model)
    assert model.input_shape == (None, 99, 40, 1)
    assert model.output_shape == (None, 31)


def test_ds_cnn_s_is_the_mlperf_tiny_shape():
    model = build_model("ds_cnn_s", 12)
    assert model.count_params() == 24_908
    assert model.input_shape == (None, 49, 10, 1)
    assert model.output_shape == (None, 12)
    kinds = [type(layer).__name__ for layer in model.layers]
    assert kinds.count("DepthwiseConv2D") == 4
    assert kinds.count("Conv2D") == 5  # the (10,4) stride-2 conv + 4 pointwise convs
    first = next(layer for layer in model.layers if type(layer).__name__ == "Conv2D")
    assert first.kernel_size == (10, 4) and first.strides == (2, 2) and first.filters == 64


@pytest.mark.parametrize(("arch", "filters", "blocks"), [("ds_cnn_m", 172, 4),
                                                         ("ds_cnn_l", 276, 5)])
def test_bigger_ds_cnns(arch, filters, blocks):
    model = build_model(arch, 12)
    depthwise = [la for la in model.layers if type(la).__name__ == "DepthwiseConv2D"]
    assert len(depthwise) == blocks
    assert model.get_layer("conv0").filters == filters
    assert model.count_params() > build_model("ds_cnn_s", 12).count_params()


@pytest.mark.parametrize("arch", sorted(ARCHITECTURES))
def test_each_architecture_declares_the_front_end_its_input_takes(arch):
    config = frontend_for(arch)
    expected = {"seed_cnn": SEED_FRONTEND, "bc_resnet_1": LOG_MEL_FRONTEND,
                "bc_resnet_2": LOG_MEL_FRONTEND, "bc_resnet_2_hs": LOG_MEL_FRONTEND,
                "ds_cnn_w_8k": WIDEBAND_FRONTEND,
                "ds_cnn_w_20": MFCC20_FRONTEND, "ds_cnn_w96_ld_h10": FINE_HOP_FRONTEND,
                "bc_resnet_h12_4k": EDGE_LOG_MEL_FRONTEND,
                "bc_resnet_h12_4k_bnhs": EDGE_LOG_MEL_FRONTEND}.get(arch, EDGE_FRONTEND)
    assert config == expected
    model = build_model(arch, 5)
    assert model.input_shape[1:] == (*config.feature_shape, 1)
    probs = model.predict(np.zeros((2, *config.feature_shape, 1), np.float32), verbose=0)
    assert probs.shape == (2, 5)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)


@pytest.mark.parametrize("arch", ["ds_cnn_w", "ds_cnn_w80", "ds_cnn_w_8k", "ds_cnn_w_20",
                                  "ds_cnn_w_cmn", "ds_cnn_w_deep", "ds_cnn_w_nd",
                                  "ds_cnn_w_hd"])
def test_the_wide_ds_cnns_fit_60_kb_in_int8(arch):
    """With trained-looking BatchNorm terms (an untrained file is smaller: the converter
    shares its identical constant buffers)."""
    from convert.tflite import to_tflite
    from train.models.common import trained_looking_batchnorm

    model = trained_looking_batchnorm(build_model(arch, 12))
    rng = np.random.default_rng(0)
    calib = rng.normal(size=(8, *frontend_for(arch).feature_shape, 1)).astype(np.float32)
    size = len(to_tflite(model, "int8", calib))
    assert 40_000 < size <= 60_000


def test_ds_cnn_w_nd_is_ds_cnn_w_without_dropout():
    """In training mode ``ds_cnn_w`` drops activations at random, ``ds_cnn_w_nd`` does not; with
    ``ds_cnn_w``'s weights it predicts exactly what ``ds_cnn_w`` predicts at inference."""
    x = np.random.default_rng(0).normal(size=(4, 49, 10, 1)).astype(np.float32)
    wide, no_dropout = build_model("ds_cnn_w", 12), build_model("ds_cnn_w_nd", 12)
    assert wide.count_params() == no_dropout.count_params()
    no_dropout.set_weights(wide.get_weights())
    np.testing.assert_allclose(no_dropout.predict(x, verbose=0), wide.predict(x, verbose=0),
                               rtol=1e-5, atol=1e-6)
    assert not np.allclose(wide(x, training=True), wide(x, training=True))
    np.testing.assert_array_equal(no_dropout(x, training=True), no_dropout(x, training=True))


@pytest.mark.parametrize(("base", "variant", "expected"),
                         [("ds_cnn_w", "ds_cnn_w_hd", [0.3, 0.6]),
                          ("ds_cnn_w96", "ds_cnn_w96_hd", [0.3, 0.6]),
                          ("ds_cnn_w96", "ds_cnn_w96_ld", [0.1, 0.2])])
def test_the_dropout_variants_differ_only_in_their_dropout_rates(base, variant, expected):
    """``variant`` drops ``expected`` where ``base`` drops 0.2 / 0.4; with ``base``'s weights
    it predicts exactly what ``base`` predicts at inference."""
    x = np.random.default_rng(0).normal(size=(4, 49, 10, 1)).astype(np.float32)
    plain, other = build_model(base, 12), build_model(variant, 12)

    def rates(model):
        return [layer.rate for layer in model.layers if type(layer).__name__ == "Dropout"]

    assert rates(plain) == [0.2, 0.4]
    assert rates(other) == expected
    assert plain.count_params() == other.count_params()
    other.set_weights(plain.get_weights())
    np.testing.assert_allclose(other.predict(x, verbose=0), plain.predict(x, verbose=0),
                               rtol=1e-5, atol=1e-6)


def test_dilated_depthwise_convolutions_reach_across_the_clip_at_the_same_cost():
    """``ds_cnn_w96_ld_dil`` has ``ds_cnn_w96_ld``'s parameters; a change in the first frames
    reaches the last block's middle time step through it (a 70-frame span: the whole clip),
    not through ``ds_cnn_w96_ld`` (26 frames); its TFLite file keeps the dilation in the
    depthwise op and agrees with Keras."""
    import keras

    from convert.tflite import inspect_interpreter, op_names, to_tflite

    rng = np.random.default_rng(0)
    x = rng.normal(size=(1, 49, 10, 1)).astype(np.float32)
    moved = x.copy()
    moved[:, :4] += 3.0
    reach = {}
    for arch in ("ds_cnn_w96_ld", "ds_cnn_w96_ld_dil"):
        model = build_model(arch, 12)
        last = keras.Model(model.input, model.get_layer("pw4_relu").output)
        diff = np.abs(last.predict(moved, verbose=0) - last.predict(x, verbose=0))[0, 12]
        reach[arch] = float(diff.max())
    assert reach["ds_cnn_w96_ld"] == 0.0 < reach["ds_cnn_w96_ld_dil"]
    plain, dilated = build_model("ds_cnn_w96_ld", 12), build_model("ds_cnn_w96_ld_dil", 12)
    assert plain.count_params() == dilated.count_params()
    assert [dilated.get_layer(f"dw{i}").dilation_rate for i in range(1, 5)] == [
        (1, 1), (2, 1), (4, 1), (8, 1)]
    calib = rng.normal(size=(16, 49, 10, 1)).astype(np.float32)
    flat = to_tflite(dilated, "float32", calib)
    assert "DEPTHWISE_CONV_2D" in op_names(flat) and "SPACE_TO_BATCH_ND" not in op_names(flat)
    interpreter = inspect_interpreter(flat)
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], moved)
    interpreter.invoke()
    got = interpreter.get_tensor(interpreter.get_output_details()[0]["index"])
    np.testing.assert_allclose(got, dilated.predict(moved, verbose=0), rtol=1e-4, atol=1e-5)


def test_identity_shortcuts_add_no_parameters_and_carry_each_block_s_input():
    """``ds_cnn_w96_ld_res`` has ``ds_cnn_w96_ld``'s parameters; with its pointwise BatchNorms
    zeroed each block passes its input through unchanged (the shortcut alone), so the last
    block's output equals the first conv's after its ReLU; it converts to int8 with ADD ops."""
    import keras

    from convert.tflite import op_names, to_tflite

    plain, res = build_model("ds_cnn_w96_ld", 12), build_model("ds_cnn_w96_ld_res", 12)
    assert plain.count_params() == res.count_params()
    for i in range(1, 5):
        bn = res.get_layer(f"pw{i}_bn")
        gamma, beta, mean, var = bn.get_weights()
        bn.set_weights([np.zeros_like(gamma), np.zeros_like(beta), mean, var])
    x = np.random.default_rng(0).normal(size=(2, 49, 10, 1)).astype(np.float32)
    probe = keras.Model(res.input, [res.get_layer("relu0").output,
                                    res.get_layer("pw4_relu").output])
    first, last = probe.predict(x, verbose=0)
    np.testing.assert_allclose(last, first, atol=1e-6)
    assert first.max() > 0
    calib = np.random.default_rng(1).normal(size=(8, 49, 10, 1)).astype(np.float32)
    assert op_names(to_tflite(res, "int8", calib)).count("ADD") == 4


def test_clip_mean_removal_makes_a_fixed_offset_per_coefficient_invisible():
    """``ds_cnn_w_cmn`` predicts the same when every frame of a clip moves by the same amount per
    coefficient (a microphone's or a voice's fixed tilt); ``ds_cnn_w`` with the same weights
    does not. Both through the int8 kernels as well: pool and subtraction convert."""
    from convert.tflite import inspect_interpreter, op_names, to_tflite

    rng = np.random.default_rng(0)
    feats = (rng.normal(size=(16, 49, 10, 1)) * 30 - 100).astype(np.float32)
    offset = (rng.normal(size=(1, 1, 10, 1)) * 20).astype(np.float32)
    stats = FeatureStats.of(feats)
    weights = None
    moved = {}
    for arch in ("ds_cnn_w_cmn", "ds_cnn_w"):
        model = build_model(arch, 12, stats=stats)
        if weights is None:  # large random weights: outputs that depend on the input
            weights = [rng.normal(size=w.shape).astype(np.float32) * 0.3 if w.ndim > 1 else w
                       for w in model.get_weights()]
        model.set_weights(weights)
        before, after = model.predict(feats, verbose=0), model.predict(feats + offset, verbose=0)
        moved[arch] = float(np.abs(before - after).max())
        if arch == "ds_cnn_w_cmn":
            ops = {type(layer).__name__ for layer in model.layers}
            assert {"AveragePooling2D", "Subtract"} <= ops
            content = to_tflite(model, "int8", feats)
            assert {"AVERAGE_POOL_2D", "SUB"} <= set(op_names(content))
            assert inspect_interpreter(content).get_input_details()[0]["dtype"] == np.int8
    assert moved["ds_cnn_w_cmn"] < 1e-5
    assert moved["ds_cnn_w"] > 1e-2


def test_ds_cnn_w96_fits_60_kb_only_with_per_tensor_weights():
    """One scale per weight tensor is what lets 96 filters fit (per channel they do not)."""
    from convert.tflite import to_tflite
    from train.models.common import trained_looking_batchnorm

    model = trained_looking_batchnorm(build_model("ds_cnn_w96", 12))
    rng = np.random.default_rng(0)
    calib = rng.normal(size=(8, *frontend_for("ds_cnn_w96").feature_shape, 1)).astype(
        np.float32)
    assert len(to_tflite(model, "int8", calib)) > 60_000
    assert 45_000 < len(to_tflite(model, "int8", calib, per_tensor=True)) <= 60_000


def test_unknown_architecture_and_too_few_labels_are_errors():
    with pytest.raises(KwsError, match="unknown architecture 'resnet'"):
        build_model("resnet", 12)
    with pytest.raises(KwsError, match="unknown architecture"):
        frontend_for("nope")
    with pytest.raises(KwsError, match="at least 2 labels"):
        build_model("ds_cnn_s", 1)


def test_feature_stats_are_per_coefficient():
    rng = np.random.default_rng(0)
    feats = rng.normal(size=(50, 49, 10)) * np.arange(1, 11) + np.arange(10) * 100
    stats = FeatureStats.of(feats[..., None])
    np.testing.assert_allclose(stats.mean, feats.reshape(-1, 10).mean(axis=0))
    np.testing.assert_allclose(stats.variance, feats.reshape(-1, 10).var(axis=0))


def test_normalisation_layer_adds_no_parameters_and_survives_saving(tmp_path):
    import keras

    rng = np.random.default_rng(1)
    feats = (rng.normal(size=(20, 49, 10, 1)) * 30 - 200).astype(np.float32)
    stats = FeatureStats.of(feats)
    model = build_model("ds_cnn_s", 12, stats=stats)
    assert model.count_params() == 24_908
    first = keras.Model(model.input, model.get_layer("normalize").output)
    expected = (feats[..., 0] - np.array(stats.mean)) / np.sqrt(np.array(stats.variance))
    np.testing.assert_allclose(first.predict(feats, verbose=0)[..., 0], expected, atol=1e-4)
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras")
    np.testing.assert_allclose(loaded.predict(feats, verbose=0), model.predict(feats, verbose=0),
                               atol=1e-6)


def test_model_settings_round_trip(tmp_path):
    settings = ModelSettings("ds_cnn_s", ["_silence_", "_unknown_", "yes"], EDGE_FRONTEND,
                             run_id="abc", metrics={"test_accuracy": 0.5},
                             data=DataSummary(DataConfig(Path("sc"), extra_dirs=(Path("x"),)),
                                              "hash", {"train": 8, "val": 1, "test": 1},
                                              "ab" * 32, normalized=True))
    path = settings.save(tmp_path)
    raw = json.loads(path.read_text())
    assert raw["frontend"] == EDGE_FRONTEND.to_dict() and raw["test_accuracy"] == 0.5
    for where in (tmp_path, tmp_path / "model.keras", path):
        assert ModelSettings.load(where) == settings
    with pytest.raises(FileNotFoundError):
        ModelSettings.load(tmp_path / "missing")
    path.write_text("{not json")
    with pytest.raises(KwsError, match="not a valid model settings file"):
        ModelSettings.load(tmp_path)


def test_bc_resnet_is_the_published_block_structure():
    model = build_model("bc_resnet_1", 12)
    assert model.input_shape == (None, 49, 40, 1) and model.output_shape == (None, 12)
    kinds = [type(layer).__name__ for layer in model.layers]
    assert kinds.count("SubSpectralNorm") == 12  # one per block: stages of 2, 2, 4, 4
    freq_convs = [la for la in model.layers if la.name.endswith("_freq_dw")]
    time_convs = [la for la in model.layers if la.name.endswith("_time_dw")]
    assert {la.kernel_size for la in freq_convs} == {(1, 3)}
    assert {la.kernel_size for la in time_convs} == {(3, 1)}
    assert sorted({la.dilation_rate[0] for la in time_convs}) == [1, 2, 4, 8]
    # frequency 40 -> 20 (head) -> 10 -> 5 (stages 2 and 3), time untouched
    assert model.get_layer("s3b3_relu").output.shape[1:3] == (49, 5)
    assert model.count_params() < build_model("bc_resnet_2", 12).count_params() < 40_000


def test_sub_spectral_norm_normalises_each_sub_band_and_survives_saving(tmp_path):
    import keras

    from train.models.bc_resnet import sub_spectral_norm

    rng = np.random.default_rng(0)
    # every sub-band (4 bins of 20) gets its own offset and scale
    x = rng.normal(size=(64, 7, 20, 3)) * np.repeat(np.arange(1, 6), 4)[None, None, :, None]
    x = (x + np.repeat(np.arange(5) * 10.0, 4)[None, None, :, None]).astype(np.float32)
    layer = sub_spectral_norm(momentum=0.0)
    out = np.asarray(layer(x, training=True))
    bands = out.reshape(64, 7, 5, 4, 3)
    np.testing.assert_allclose(bands.mean(axis=(0, 1, 3)), 0.0, atol=1e-4)
    np.testing.assert_allclose(bands.var(axis=(0, 1, 3)), 1.0, atol=1e-2)
    # momentum 0: the moving statistics are this batch's, so inference gives the same
    np.testing.assert_allclose(np.asarray(layer(x, training=False)), out, atol=1e-3)
    inputs = keras.Input((7, 20, 3))
    model = keras.Model(inputs, layer(inputs))
    model.save(tmp_path / "ssn.keras")
    loaded = keras.saving.load_model(tmp_path / "ssn.keras")
    np.testing.assert_allclose(loaded.predict(x, verbose=0), out, atol=1e-3)


@pytest.mark.slow
def test_bc_resnet_1_converts_to_a_small_full_int8_model():
    from convert.tflite import op_names, quantized_tensors, to_tflite, unfolded_batchnorm

    model = build_model("bc_resnet_1", 12)
    rng = np.random.default_rng(3)
    calib = rng.normal(size=(8, 49, 40, 1)).astype(np.float32)
    content = to_tflite(model, "int8", calib)
    assert len(content) <= 60_000
    assert unfolded_batchnorm(content) == []
    ops = set(op_names(content))
    assert {"CONV_2D", "DEPTHWISE_CONV_2D", "MUL", "ADD"} <= ops
    assert not ops & {"QUANTIZE", "DEQUANTIZE", "RESHAPE", "TILE", "BROADCAST_TO"}
    from convert.tflite import inspect_interpreter

    interpreter = inspect_interpreter(content)
    float_tensors = [t for t in interpreter.get_tensor_details()
                     if np.dtype(t["dtype"]) == np.float32]
    assert float_tensors == []  # every op runs on the int8 kernels
    assert len(quantized_tensors(content)) > 0


@pytest.mark.slow
def test_per_tensor_weights_shrink_bc_resnet_2_by_a_third():
    """Most of a per-channel BC-ResNet-2 file is quantisation parameters (a float scale and
    an int64 zero point per channel of ~240 tensors): with one scale per weight tensor the
    file shrinks by over a third, with the same int8 ops. Weights drawn at random (positive
    variances), so that no two constants are alike and shared, as in a trained model."""
    from convert.tflite import op_names, to_tflite

    model, calib = varied_weights(build_model("bc_resnet_2", 12))
    per_channel = to_tflite(model, "int8", calib)
    per_tensor = to_tflite(model, "int8", calib, per_tensor=True)
    assert len(per_tensor) < 2 / 3 * len(per_channel)
    assert op_names(per_tensor) == op_names(per_channel)


@pytest.mark.slow
def test_bc_resnet_2_with_hard_swish_fits_60_kb_with_per_tensor_weights():
    """Hard-swish is one int8 op where swish is two (LOGISTIC, MUL): with per-tensor weights
    that brings BC-ResNet-2, whose swish file is ~60.6 KB, under the 60 KB budget."""
    from convert.tflite import op_names, to_tflite

    model, calib = varied_weights(build_model("bc_resnet_2_hs", 12))
    content = to_tflite(model, "int8", calib, per_tensor=True)
    assert len(content) <= 60_000
    ops = op_names(content)
    assert ops.count("HARD_SWISH") == 12 and "LOGISTIC" not in ops
    assert model.count_params() == build_model("bc_resnet_2", 12).count_params()


def varied_weights(model):
    """``model`` with random weights (positive variances), so that no two constants are alike
    and shared, as in a trained model, and int8 calibration features."""
    rng = np.random.default_rng(4)
    model.set_weights([np.abs(w) + 0.5 if "variance" in v.path else rng.normal(size=w.shape)
                       * 0.1 for v, w in zip(model.weights, model.get_weights(), strict=True)])
    return model, rng.normal(size=(8, *model.input_shape[1:])).astype(np.float32)


def test_a_saved_bc_resnet_loads_in_a_fresh_process(tmp_path):
    import subprocess
    import sys

    from tests.conftest import ROOT

    model = build_model("bc_resnet_1", 4)
    model.save(tmp_path / "model.keras")
    code = ("import sys; from pathlib import Path; from train.models import load_keras; "
            "m = load_keras(Path(sys.argv[1])); print(m.count_params())")
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path)], cwd=ROOT,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == str(model.count_params())
