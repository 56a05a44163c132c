"""One-file ensembles (train.ensemble) of real Keras models saved and loaded as training does:
the merged model, fed the common log-mel, predicts the mean of what each member predicts on
its own front-end's features of the same audio, in Keras and as a converted TFLite file."""

from __future__ import annotations

import numpy as np
import pytest

from edge_runtime.errors import KwsError
from edge_runtime.frontend import (
    EDGE_FRONTEND,
    EDGE_LOG_MEL_FRONTEND,
    WIDEBAND_FRONTEND,
    Frontend,
    FrontendConfig,
)
from tests.model_factory import LABELS
from train.ensemble import log_mel_of, merge_models
from train.models.common import FeatureStats, model_input
from train.settings import MODEL_FILENAME, DataSummary, ModelSettings

pytest.importorskip("keras")


def clips(n: int = 6, seed: int = 0) -> np.ndarray:
    """Tones in noise of different loudness: one second each."""
    rng = np.random.default_rng(seed)
    t = np.arange(EDGE_FRONTEND.clip_samples) / EDGE_FRONTEND.sample_rate
    return np.stack([rng.uniform(0.01, 0.5) * np.sin(2 * np.pi * rng.uniform(100, 3000) * t)
                     + rng.uniform(0.001, 0.05) * rng.standard_normal(t.size)
                     for _ in range(n)]).astype(np.float32)


def saved_member(folder, frontend: FrontendConfig, seed: int, normalized: bool = True,
                 labels=LABELS):
    """A small trained-looking model on ``frontend`` (normalising its input with statistics
    of real features when ``normalized``), saved with its settings; returns the model."""
    import keras

    keras.utils.set_random_seed(seed)
    feats = Frontend(frontend)(clips(8, seed + 10))
    stats = FeatureStats.of(feats) if normalized else None
    inputs, x = model_input(frontend, stats)
    x = keras.layers.Conv2D(8, (5, 3), strides=2, padding="same", activation="relu")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    model = keras.Model(inputs, keras.layers.Dense(len(labels), activation="softmax",
                                                   name="probabilities")(x))
    rng = np.random.default_rng(seed)  # weights far from the initial ones
    model.set_weights([rng.normal(0, 0.5, w.shape) for w in model.get_weights()])
    folder.mkdir(parents=True)
    model.save(folder / MODEL_FILENAME)
    ModelSettings(f"tiny_{frontend.features}", list(labels), frontend, run_id=f"run{seed}",
                  data=DataSummary(normalized=normalized)).save(folder)
    return model


def member_mean(models, frontends, audio, combine: str = "probabilities") -> np.ndarray:
    """The mean of the members' probabilities, or (``logits``) their normalised geometric
    mean, which is the softmax of the mean of their logits."""
    import keras

    inputs = [Frontend(f)(audio)[..., None] for f in frontends]
    if combine == "probabilities":
        return np.mean([m.predict(x, verbose=0) for m, x in zip(models, inputs, strict=True)],
                       axis=0)
    logits = []
    for m, x in zip(models, inputs, strict=True):  # the last Dense's input, times its weights
        kernel, bias = m.layers[-1].get_weights()
        hidden = keras.Model(m.inputs[0], m.layers[-1].input).predict(x, verbose=0)
        logits.append(hidden.astype(np.float64) @ kernel + bias)
    mean = np.mean(logits, axis=0)
    e = np.exp(mean - mean.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


@pytest.mark.parametrize("combine", ["probabilities", "logits"])
@pytest.mark.parametrize("normalized", [(True, True, True), (False, False, True),
                                        (False, True, False)])
def test_the_ensemble_predicts_the_mean_of_its_members(tmp_path, normalized, combine):
    from train.models import load_keras

    # an MFCC member and two log-mel members (other statistics): the DCT layer, the ensemble's
    # own normalisation and a member's re-normalisation are all used in the first case
    frontends = [EDGE_FRONTEND, EDGE_LOG_MEL_FRONTEND, EDGE_LOG_MEL_FRONTEND]
    folders = [tmp_path / f"m{i}" for i in range(3)]
    models = [saved_member(folder, f, i, norm)
              for i, (folder, f, norm) in enumerate(zip(folders, frontends, normalized,
                                                        strict=True))]
    out = merge_models(folders, tmp_path / "ens", combine)
    ensemble = load_keras(out)
    audio = clips(6)
    expected = member_mean(models, frontends, audio, combine)
    got = ensemble.predict(Frontend(EDGE_LOG_MEL_FRONTEND)(audio)[..., None], verbose=0)
    assert not np.allclose(expected, expected[:1])  # the clips are told apart
    np.testing.assert_allclose(got, expected, rtol=1e-3, atol=1e-5)
    settings = ModelSettings.load(out)
    assert settings.frontend == EDGE_LOG_MEL_FRONTEND and settings.labels == LABELS
    assert settings.arch == "tiny_mfcc+tiny_log_mel+tiny_log_mel"
    assert settings.data.normalized is any(normalized[1:])
    assert settings.metrics == {"ensemble_of": [str(f) for f in folders],
                                "ensemble_combine": combine}
    if combine == "logits":  # not the arithmetic mean
        assert not np.allclose(got, member_mean(models, frontends, audio), atol=1e-3)


@pytest.mark.parametrize("combine", ["probabilities", "logits"])
def test_the_converted_ensemble_predicts_as_in_keras(tmp_path, combine):
    """Through the converter's path: the leading normalisation moves into the manifest, the
    float32 file predicts as Keras, the int8 file mostly agrees with it."""
    from convert.tflite import normalize, to_tflite
    from edge_runtime.manifest import write_manifest
    from edge_runtime.model import KwsModel
    from train.models import load_keras
    from train.models.common import split_normalization

    folders = [tmp_path / "mfcc", tmp_path / "log_mel"]
    saved_member(folders[0], EDGE_FRONTEND, 0)
    saved_member(folders[1], EDGE_LOG_MEL_FRONTEND, 1)
    ensemble = load_keras(merge_models(folders, tmp_path / "ens", combine))
    core, norm = split_normalization(ensemble)
    assert len(norm["mean"]) == EDGE_LOG_MEL_FRONTEND.n_mels
    feats = Frontend(EDGE_LOG_MEL_FRONTEND)(clips(40, 3))
    keras_probs = ensemble.predict(feats[..., None], verbose=0)
    calib = normalize(feats[..., None], norm)
    preds = {}
    for quant in ("float32", "int8"):
        path = tmp_path / f"ens_{quant}.tflite"
        path.write_bytes(to_tflite(core, quant, calib if quant == "int8" else None,
                                   per_tensor=True))
        write_manifest(path, labels=LABELS, frontend=EDGE_LOG_MEL_FRONTEND,
                       quantization=quant, arch="ensemble", feature_norm=norm)
        model = KwsModel(path)
        preds[quant] = np.stack([model.predict_features(f) for f in feats])
    np.testing.assert_allclose(preds["float32"], keras_probs, rtol=1e-3, atol=1e-5)
    agree = np.mean(preds["int8"].argmax(1) == keras_probs.argmax(1))
    assert agree >= 0.9, agree


@pytest.mark.parametrize("combine", ["probabilities", "logits"])
def test_an_unknown_bias_shifts_every_member(tmp_path, combine):
    from convert.logit_offset import shift_logit
    from train.models import load_keras

    folders = [tmp_path / "mfcc", tmp_path / "log_mel"]
    saved_member(folders[0], EDGE_FRONTEND, 0)
    saved_member(folders[1], EDGE_LOG_MEL_FRONTEND, 1)
    out = merge_models(folders, tmp_path / "ens", combine)
    ensemble = load_keras(out)
    x = Frontend(EDGE_LOG_MEL_FRONTEND)(clips(4))[..., None]
    before = ensemble.predict(x, verbose=0)
    shift_logit(ensemble, LABELS, "_unknown_", 1.0)
    members = [load_keras(f) for f in folders]
    for m in members:
        shift_logit(m, LABELS, "_unknown_", 1.0)
    expected = member_mean(members, [EDGE_FRONTEND, EDGE_LOG_MEL_FRONTEND], clips(4), combine)
    after = ensemble.predict(x, verbose=0)
    assert np.all(after[:, 1] > before[:, 1])
    np.testing.assert_allclose(after, expected, rtol=1e-3, atol=1e-5)


def test_models_that_cannot_share_one_input_are_refused(tmp_path):
    saved_member(tmp_path / "edge", EDGE_FRONTEND, 0)
    saved_member(tmp_path / "wide", WIDEBAND_FRONTEND, 1)  # mel bands up to 8 kHz
    saved_member(tmp_path / "other", EDGE_LOG_MEL_FRONTEND, 2, labels=[*LABELS[:-1], "wow"])
    with pytest.raises(KwsError, match="cannot share one log-mel input"):
        merge_models([tmp_path / "edge", tmp_path / "wide"], tmp_path / "a")
    with pytest.raises(KwsError, match="labels"):
        merge_models([tmp_path / "edge", tmp_path / "other"], tmp_path / "b")
    with pytest.raises(KwsError, match="at least 2"):
        merge_models([tmp_path / "edge"], tmp_path / "c")
    with pytest.raises(KwsError, match="combine must be one of"):
        merge_models([tmp_path / "edge", tmp_path / "edge"], tmp_path / "d", "median")
    assert not any((tmp_path / n).exists() for n in "abcd")


def test_the_mfcc_are_the_dct_of_the_log_mel():
    """What the ensemble's DCT layer relies on: the front-end's MFCC are the orthonormal
    DCT-II of its log-mel energies in dB, the first n_mfcc coefficients."""
    from edge_runtime.frontend import dct_matrix

    assert log_mel_of(EDGE_FRONTEND) == EDGE_LOG_MEL_FRONTEND
    audio = clips(3)
    log_mel = Frontend(EDGE_LOG_MEL_FRONTEND)(audio).astype(np.float64)
    mfcc = Frontend(EDGE_FRONTEND)(audio)
    np.testing.assert_allclose(log_mel @ dct_matrix(40, 10).T, mfcc, rtol=1e-4, atol=1e-3)


def test_kws_ensemble_merges_folders_and_refuses_bad_input(tmp_path, capsys):
    from kws.cli import main
    from train.models import load_keras

    folders = [tmp_path / "mfcc", tmp_path / "log_mel"]
    models = [saved_member(folders[0], EDGE_FRONTEND, 0),
              saved_member(folders[1], EDGE_LOG_MEL_FRONTEND, 1)]
    out = tmp_path / "ens"
    assert main(["ensemble", *map(str, folders), "--out", str(out)]) == 0
    assert capsys.readouterr().out.strip() == str(out)
    x = Frontend(EDGE_LOG_MEL_FRONTEND)(clips(3))[..., None]
    np.testing.assert_allclose(
        load_keras(out).predict(x, verbose=0),
        member_mean(models, [EDGE_FRONTEND, EDGE_LOG_MEL_FRONTEND], clips(3)),
        rtol=1e-3, atol=1e-5)
    before = (out / MODEL_FILENAME).read_bytes()
    saved_member(tmp_path / "wide", WIDEBAND_FRONTEND, 2)
    for argv, message in (
            ([*map(str, folders), "--out", str(out)], "exists"),  # never overwritten
            ([str(folders[0]), str(tmp_path / "none"), "--out", str(tmp_path / "o1")],
             "not a trained model folder"),
            ([str(folders[0]), str(tmp_path / "wide"), "--out", str(tmp_path / "o2")],
             "cannot share one log-mel input")):
        assert main(["ensemble", *argv]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("error: ") and message in err and "\n" not in err
    assert (out / MODEL_FILENAME).read_bytes() == before
    assert not (tmp_path / "o1").exists() and not (tmp_path / "o2").exists()


@pytest.mark.slow
@pytest.mark.parametrize("member, fits", [("bc_resnet_h12_4k_bnhs", True),
                                          ("bc_resnet_h12_4k", False)])
def test_the_shipped_ds_cnn_and_a_small_bc_resnet_fit_60_kb_in_one_int8_file(tmp_path, member,
                                                                             fits):
    """ds_cnn_w (per-tensor int8 weights) beside the BatchNorm/hard-swish BC-ResNet fits the
    60 KB budget as one file; with SubSpectralNorm and swish it does not. Weights drawn at
    random, so that no two constants are alike and shared, as in a trained model."""
    from convert.tflite import to_tflite
    from tests.test_models import varied_weights
    from train.models import build_model, frontend_for, load_keras
    from train.models.common import split_normalization

    folders = []
    for arch in ("ds_cnn_w", member):
        frontend = frontend_for(arch)
        stats = FeatureStats.of(Frontend(frontend)(clips(4)))
        model, _ = varied_weights(build_model(arch, len(LABELS), stats=stats))
        folders.append(tmp_path / arch)
        folders[-1].mkdir()
        model.save(folders[-1] / MODEL_FILENAME)
        ModelSettings(arch, LABELS, frontend, data=DataSummary(normalized=True)).save(
            folders[-1])
    core, _ = split_normalization(load_keras(merge_models(folders, tmp_path / "ens")))
    calib = np.random.default_rng(0).normal(size=(8, 49, 40, 1)).astype(np.float32)
    size = len(to_tflite(core, "int8", calib, per_tensor=True))
    assert (size <= 60_000) is fits, size
