"""``kws convert``: a small trained model -> true float32 + int8 TFLite, gated, logged."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from convert.convert import (
    ConvertConfig,
    convert_model,
    rejected_dir,
    split_clips,
    stratified,
)
from convert.gate import GATE_EXIT_STATUS
from convert.tflite import op_names, quantized_tensors, to_tflite, unfolded_batchnorm
from edge_runtime.errors import KwsError
from edge_runtime.frontend import EDGE_FRONTEND
from edge_runtime.interpreter import make_interpreter
from edge_runtime.manifest import load_manifest, manifest_path_for, sha256_of
from edge_runtime.model import KwsModel
from tests.fixtures_data import make_fake_dataset
from tests.model_factory import tiny_keras_model
from train.models.common import tone_features

ROOT = Path(__file__).resolve().parents[1]

BIN = Path(sys.executable).parent
WORDS = ["yes", "no", "up", "down", "cat", "dog"]
TASK = "yes,no,up,down"


def kws(*args) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / "kws"), *map(str, args)], capture_output=True, text=True,
                          cwd=ROOT, timeout=600)


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> dict:
    """A tiny Conv+BN model trained for a few epochs on generated words, saved as TRAIN does."""
    import keras

    from train.data import DataConfig, load_dataset
    from train.features import cached_features
    from train.settings import DataSummary, ModelSettings

    root = tmp_path_factory.mktemp("convert")
    data = make_fake_dataset(root / "data", WORDS, speakers=8, per_speaker=3, with_lists=True,
                             mini_layout=True)
    dataset = load_dataset(DataConfig(data_dir=data, task=TASK))
    features = {s: cached_features(dataset, dataset.split(s), EDGE_FRONTEND, root / "cache")
                for s in ("train", "test")}
    index = {label: i for i, label in enumerate(dataset.labels)}
    y = np.array([index[e.label] for e in dataset.train])
    model = tiny_keras_model(EDGE_FRONTEND, len(dataset.labels))
    model.compile(optimizer=keras.optimizers.Adam(0.02), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    model.fit(features["train"][..., None], y, epochs=15, batch_size=16, verbose=0)
    folder = root / "model_dir"
    folder.mkdir()
    model.save(folder / "model.keras")
    ModelSettings(arch="tiny_test", labels=list(dataset.labels), frontend=EDGE_FRONTEND,
                  data=DataSummary(dataset.config)).save(folder)
    return {"root": root, "data": data, "folder": folder, "model": model, "dataset": dataset,
            "tracking": f"sqlite:///{root / 'mlflow.db'}"}


@pytest.fixture(scope="module")
def converted(trained):
    config = ConvertConfig(data_dir=trained["data"], keras_path=trained["folder"] / "model.keras",
                           out_dir=trained["root"] / "out", name="kws", max_drop=100.0,
                           min_accuracy=0, calibration=40, tracking_uri=trained["tracking"])
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(trained["root"])  # MLflow puts a new experiment's artifacts in ./mlruns
        return convert_model(config)


def test_files_land_in_out_with_manifests(converted, trained):
    out = trained["root"] / "out"
    assert converted.passed and converted.folder == out
    for quant in ("float32", "int8"):
        path = out / f"kws_{quant}.tflite"
        assert converted.models[quant] == path
        manifest = load_manifest(manifest_path_for(path))
        assert manifest.sha256 == sha256_of(path.read_bytes())
        assert manifest.size_bytes == path.stat().st_size
        assert manifest.quantization == quant
        assert manifest.labels == trained["dataset"].labels
        assert manifest.frontend == EDGE_FRONTEND
        assert manifest.arch == "tiny_test"
        assert set(manifest.accuracy) >= {"keras", "float32", "int8", "n_test"}
    assert not list(out.parent.glob(".*-staging-*")) and not (out / "rejected").exists()
    for kind in ("json", "markdown", "confusion_keras", "confusion_float32", "confusion_int8"):
        assert converted.reports[kind].parent == out and converted.reports[kind].is_file()


def test_float_file_is_true_float32(converted):
    content = converted.models["float32"].read_bytes()
    assert quantized_tensors(content) == []
    interpreter = make_interpreter(content)
    dtypes = {np.dtype(t["dtype"]).name for t in interpreter.get_tensor_details()}
    assert dtypes <= {"float32", "int32"}


def test_int8_file_is_full_integer(converted):
    manifest = load_manifest(manifest_path_for(converted.models["int8"]))
    assert manifest.input["dtype"] == "int8" and manifest.output["dtype"] == "int8"
    assert manifest.input["scale"] > 0 and manifest.output["scale"] > 0
    content = converted.models["int8"].read_bytes()
    assert "CONV_2D" in op_names(content)
    assert {"QUANTIZE", "DEQUANTIZE"}.isdisjoint(op_names(content))


def test_batchnorm_is_folded(converted):
    for path in converted.models.values():
        ops = op_names(path.read_bytes())
        assert unfolded_batchnorm(path.read_bytes()) == []
        assert "MUL" not in ops and "ADD" not in ops


def test_unfolded_batchnorm_is_detected():
    """The check above can fail: a BatchNorm after a ReLU cannot be folded into the conv."""
    import keras

    frames, coeffs = EDGE_FRONTEND.feature_shape
    model = keras.Sequential([
        keras.Input((frames, coeffs, 1)), keras.layers.Conv2D(4, 3), keras.layers.ReLU(),
        keras.layers.BatchNormalization(), keras.layers.GlobalAveragePooling2D(),
        keras.layers.Dense(3)])
    bn = model.layers[2]
    bn.moving_variance.assign(np.full(4, 4.0, np.float32))
    bn.moving_mean.assign(np.full(4, 0.5, np.float32))
    assert unfolded_batchnorm(to_tflite(model, "float32")) != []


def test_frozen_path_agrees_with_from_keras_model(trained):
    model = trained["model"]
    calib = tone_features(EDGE_FRONTEND, n=16)
    for quant in ("float32", "int8"):
        a = make_interpreter(to_tflite(model, quant, calib, method="keras"))
        b = make_interpreter(to_tflite(model, quant, calib, method="frozen"))
        for interpreter in (a, b):
            detail = interpreter.get_input_details()[0]
            x = calib[:1]
            if quant == "int8":
                scale, zero = detail["quantization"]
                x = np.clip(np.round(x / scale + zero), -128, 127).astype(np.int8)
            interpreter.set_tensor(detail["index"], x.reshape(detail["shape"]))
            interpreter.invoke()
        out_a = a.get_tensor(a.get_output_details()[0]["index"]).astype(np.float32)
        out_b = b.get_tensor(b.get_output_details()[0]["index"]).astype(np.float32)
        assert np.allclose(out_a, out_b, atol=1e-4 if quant == "float32" else 2.0)


def test_comparison_is_consistent(converted, trained):
    report = json.loads(converted.reports["json"].read_text())
    manifest = load_manifest(manifest_path_for(converted.models["int8"]))
    for name in ("keras", "float32", "int8"):
        assert report["accuracy"][name] == manifest.accuracy[name]
    assert report["n"] == len(trained["dataset"].test)
    # float32 TFLite reproduces Keras on the same features, clip by clip
    assert report["accuracy"]["float32"] == pytest.approx(report["accuracy"]["keras"],
                                                          abs=1.01 / report["n"])
    drop = 100 * (report["accuracy"]["float32"] - report["accuracy"]["int8"])
    assert report["gate"]["drop_points"] == pytest.approx(drop, abs=1e-3)
    assert report["size_bytes"]["int8"] == converted.models["int8"].stat().st_size
    assert report["accuracy"]["keras"] > 1 / len(trained["dataset"].labels)  # it learned


def test_int8_runs_in_the_edge_runtime_without_tensorflow(converted, trained):
    wav = next((trained["data"] / "yes").glob("*.wav"))
    code = (
        "import sys\n"
        "from edge_runtime.model import KwsModel\n"
        "from edge_runtime.wav import read_wav\n"
        f"m = KwsModel({str(converted.models['int8'])!r})\n"
        f"p = m.predict_samples(read_wav({str(wav)!r}).samples)\n"
        "assert abs(float(p.sum()) - 1) < 0.05, p\n"
        "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules\n"
        "print(m.labels[int(p.argmax())])\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=ROOT, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() in trained["dataset"].labels


def test_logged_to_mlflow(converted, trained):
    from mlflow.tracking import MlflowClient

    client = MlflowClient(trained["tracking"])
    run = client.get_run(converted.mlflow_run_id)
    assert run.data.metrics["convert_int8_accuracy"] == pytest.approx(
        converted.comparison.reports["int8"].accuracy)
    assert run.data.tags["convert.gate"] == "passed"
    names = {Path(f.path).name for f in client.list_artifacts(run.info.run_id, "tflite")}
    assert {"kws_int8.tflite", "kws_float32.tflite", "kws_int8.manifest.json",
            "kws_report.md"} <= names


def test_stratified_calibration_sample():
    labels = ["a"] * 80 + ["b"] * 15 + ["c"] * 5
    picked = stratified(labels, 20, seed=1)
    counts = {c: sum(labels[i] == c for i in picked) for c in "abc"}
    assert len(picked) == 20 and counts == {"a": 16, "b": 3, "c": 1}
    assert picked == stratified(labels, 20, seed=1) != stratified(labels, 20, seed=2)
    assert len(stratified(labels, 2, seed=0)) == 2
    rare = ["a"] * 80 + [f"r{i}" for i in range(19)]  # every rare class still gets one
    assert {rare[i] for i in stratified(rare, 20, seed=0)} == set(rare)
    assert stratified(labels, 500, seed=0) == list(range(100))


@pytest.mark.slow
def test_cli_gate_refuses_and_keeps_out_clean(trained, tmp_path):
    out = tmp_path / "out"
    done = kws("convert", "--keras", trained["folder"], "--data", trained["data"], "--out", out,
               "--calibration", "20", "--max-drop", "100", "--min-accuracy", "100",
               "--tracking-uri", trained["tracking"])
    assert done.returncode == GATE_EXIT_STATUS, done.stderr
    assert "float32 accuracy" in done.stderr and "int8 accuracy" in done.stderr
    assert not out.exists() or not any(out.iterdir())
    rejected = list(rejected_dir(out).glob("kws-*/kws_int8.tflite"))
    assert len(rejected) == 1 and str(rejected[0].parent) in done.stdout
    assert KwsModel(rejected[0]).labels == trained["dataset"].labels


@pytest.mark.slow
def test_cli_converts_from_an_mlflow_run(trained, tmp_path, monkeypatch):
    import mlflow

    monkeypatch.chdir(tmp_path)  # the new experiment's artifacts go to ./mlruns

    mlflow.set_tracking_uri(trained["tracking"])
    mlflow.set_experiment("kws-test")
    with mlflow.start_run() as run:
        mlflow.log_artifacts(str(trained["folder"]), artifact_path="model_dir")
    out = tmp_path / "out"
    done = kws("convert", "--run", run.info.run_id, "--data", trained["data"], "--out", out,
               "--calibration", "20", "--max-drop", "100", "--min-accuracy", "0", "--dynamic",
               "--json",
               "--tracking-uri", trained["tracking"])
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert set(result["accuracy"]) == {"keras", "float32", "int8", "dynamic"}
    for quant in ("float32", "int8", "dynamic"):
        manifest = load_manifest(manifest_path_for(out / f"kws_{quant}.tflite"))
        assert manifest.source_run_id == run.info.run_id
    logged = mlflow.get_run(run.info.run_id)
    assert logged.data.tags["convert.gate"] == "passed"
    assert "convert_dynamic_accuracy" in logged.data.metrics


def test_cli_bad_input_is_one_error_line(tmp_path, trained):
    done = kws("convert", "--keras", tmp_path / "missing.keras", "--data", trained["data"],
               "--no-mlflow", "--out", tmp_path / "out")
    assert done.returncode == 2 and done.stderr.strip().splitlines()[-1].startswith("error: ")
    assert "Traceback" not in done.stderr


def test_normalisation_moves_from_the_model_into_the_manifest(tmp_path):
    """The int8 input then quantises normalised features, not raw MFCCs of wide range."""
    import keras

    from convert.tflite import normalize
    from edge_runtime.manifest import write_manifest
    from train.models.common import FeatureStats, model_input, split_normalization

    feats = tone_features(EDGE_FRONTEND, n=16)
    stats = FeatureStats.of(feats)
    inputs, x = model_input(EDGE_FRONTEND, stats)
    x = keras.layers.Flatten()(x)
    model = keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(x))
    core, norm = split_normalization(model)
    assert len(norm["mean"]) == len(norm["std"]) == EDGE_FRONTEND.n_mfcc
    assert not any(isinstance(layer, keras.layers.Normalization) for layer in core.layers)
    np.testing.assert_allclose(core.predict(normalize(feats, norm), verbose=0),
                               model.predict(feats, verbose=0), atol=1e-5)
    assert split_normalization(core) == (core, {})

    path = tmp_path / "m_float32.tflite"
    path.write_bytes(to_tflite(core, "float32"))
    write_manifest(path, labels=["a", "b", "c"], frontend=EDGE_FRONTEND,
                   quantization="float32", feature_norm=norm)
    runtime = KwsModel(path)
    np.testing.assert_allclose(runtime.predict_features(feats[0, ..., 0]),
                               model.predict(feats[:1], verbose=0)[0], atol=1e-5)


@pytest.mark.slow
def test_force_moves_the_old_model_aside(trained, tmp_path):
    """Row convert-force-moves-old-model-aside (tests/bad_inputs.md): ``--force`` replaces
    the model in ``--out`` only after moving its files to ``<out>-replaced/``."""
    from convert.convert import replaced_dir

    out = tmp_path / "artifacts"
    out.mkdir()
    old = {"kws_int8.tflite": b"the model that shipped before",
           "kws_int8.manifest.json": b"{}", "README.md": b"not ours"}
    for name, content in old.items():
        (out / name).write_bytes(content)
    done = kws("convert", "--keras", trained["folder"], "--data", trained["data"], "--out", out,
               "--calibration", "20", "--max-drop", "100", "--min-accuracy", "0", "--force",
               "--no-mlflow")
    assert done.returncode == 0, done.stderr
    assert KwsModel(out / "kws_int8.tflite").labels == trained["dataset"].labels
    assert (out / "README.md").read_bytes() == b"not ours"
    (backup,) = replaced_dir(out).iterdir()
    assert {p.name: p.read_bytes() for p in backup.iterdir()} == {
        k: v for k, v in old.items() if k != "README.md"}


@pytest.mark.slow
def test_demo_gate_widens_max_drop_to_one_clip(trained, tmp_path, capsys):
    """``widen_max_drop`` (the pipeline's demo): a test split too small for 0.5 points is
    gated at one clip's worth, said on the console, instead of being refused."""
    n_test = len(trained["dataset"].split("test"))
    config = ConvertConfig(data_dir=trained["data"], keras_path=trained["folder"],
                           out_dir=tmp_path / "out", calibration=20, min_accuracy=0,
                           mlflow=False, widen_max_drop=True)
    result = convert_model(config)
    assert result.gate.max_drop == pytest.approx(100 / n_test, abs=0.01)
    assert result.gate.max_drop >= 100 / n_test
    assert f"{n_test} test clips cannot resolve a 0.5-point drop" in capsys.readouterr().err


def test_relus_are_clipped_by_default_and_the_manifest_says_so(converted):
    assert converted.notes["clip_percentile"] == 99.9
    for path in converted.models.values():
        notes = load_manifest(manifest_path_for(path)).notes
        assert notes["clip_percentile"] == 99.9
        assert {"RELU", "RELU6"}.isdisjoint(op_names(path.read_bytes()))  # fused


@pytest.mark.parametrize(("option", "value", "wanted"), [
    *[("--clip-percentile", v, "50-100") for v in ("20", "101", "nan")],
    *[("--unknown-bias", v, "-10-10") for v in ("11", "-10.5", "nan", "inf")]])
def test_cli_option_out_of_range_is_one_error_line(tmp_path, trained, option, value, wanted):
    done = kws("convert", "--keras", trained["folder"], "--data", trained["data"],
               "--no-mlflow", "--out", tmp_path / "out", option, value)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        f"error: kws convert: argument {option}: must be within {wanted}, got {value}"]


def test_unknown_bias_multiplies_the_unknown_odds_and_the_manifest_says_so(trained, converted,
                                                                          tmp_path):
    """``--unknown-bias B`` (prior correction): through the converted float32 file, every
    class's odds against ``_unknown_`` fall by exactly ``e**B``; int8 follows; the manifest
    and the MLflow run record B, and a conversion without it records nothing."""
    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    config = ConvertConfig(data_dir=trained["data"], keras_path=trained["folder"],
                           out_dir=tmp_path / "out", max_drop=100.0, min_accuracy=0,
                           calibration=40, tracking_uri=uri, register=False,
                           unknown_bias=1.5)
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(tmp_path)  # MLflow puts a new experiment's artifacts in ./mlruns
        shifted = convert_model(config)
    tags = MlflowClient(uri).get_run(shifted.mlflow_run_id).data.tags
    assert tags["convert.unknown_bias"] == "1.5"
    labels = trained["dataset"].labels
    unk = labels.index("_unknown_")
    clips = split_clips(trained["dataset"], EDGE_FRONTEND).waveforms

    def probabilities(path: Path) -> np.ndarray:
        model = KwsModel(path)
        return np.stack([model.predict_samples(w) for w in clips]).astype(np.float64)

    before = probabilities(converted.models["float32"])
    after = probabilities(shifted.models["float32"])
    odds = np.log(after / after[:, [unk]]) - np.log(before / before[:, [unk]])
    measurable = (np.minimum(before, after) > 1e-6) & (np.arange(len(labels)) != unk)
    assert measurable.sum() > len(clips)
    np.testing.assert_allclose(odds[measurable], -1.5, atol=1e-3)
    assert (after[:, unk] > before[:, unk]).all()
    int8 = probabilities(shifted.models["int8"])
    assert (int8.argmax(1) == after.argmax(1)).mean() >= 0.9
    for path in shifted.models.values():
        assert load_manifest(manifest_path_for(path)).notes["unknown_bias"] == 1.5
    assert "unknown_bias" not in converted.notes
    # the trained model on disk is untouched: a later conversion starts from it again
    import keras

    from train.models import load_keras

    fresh = load_keras(trained["folder"])
    assert isinstance(fresh.layers[-1], keras.layers.Dense)
    np.testing.assert_array_equal(fresh.layers[-1].get_weights()[1],
                                  trained["model"].layers[-1].get_weights()[1])


def test_logit_offsets_move_each_named_class_s_odds_and_the_manifest_says_so(trained,
                                                                           converted, tmp_path):
    """``logit_offsets`` (keyword prior correction): through the converted float32 file the
    odds of each named class against every other class move by exactly ``e**offset``, the
    classes not named keep their odds among themselves, and the manifests record the offsets."""
    labels = list(trained["dataset"].labels)
    first, second = labels[0], labels[1]
    config = ConvertConfig(data_dir=trained["data"], keras_path=trained["folder"],
                           out_dir=tmp_path / "out", max_drop=100.0, min_accuracy=0,
                           calibration=40, mlflow=False,
                           logit_offsets=((first, 0.7), (second, -0.4)))
    shifted = convert_model(config)
    clips = split_clips(trained["dataset"], EDGE_FRONTEND).waveforms

    def log_probabilities(path: Path) -> np.ndarray:
        model = KwsModel(path)
        return np.log(np.stack([model.predict_samples(w) for w in clips]).astype(np.float64))

    moved = log_probabilities(shifted.models["float32"]) - log_probabilities(
        converted.models["float32"])
    rest = moved[:, 2:]
    np.testing.assert_allclose(rest - rest[:, [0]], 0.0, atol=1e-3)
    np.testing.assert_allclose(moved[:, 0] - rest[:, 0], 0.7, atol=1e-3)
    np.testing.assert_allclose(moved[:, 1] - rest[:, 0], -0.4, atol=1e-3)
    for path in shifted.models.values():
        notes = load_manifest(manifest_path_for(path)).notes
        assert notes["logit_offsets"] == {first: 0.7, second: -0.4}
    with pytest.raises(KwsError, match="has no nope class"):
        convert_model(replace(config, out_dir=tmp_path / "again", logit_offsets=(("nope", 1.0),)))


def test_balanced_offsets_undo_the_prior_the_class_balance_leaves():
    """Offsets ``-power * log(count / geometric mean)``: zero in sum, the rarer class raised;
    with power ``1 - balance`` a class of 4x the clips is lowered by ``(1 - balance) log 4``
    against the other."""
    from convert.logit_offset import balanced_offsets

    offsets = balanced_offsets({"up": 400, "off": 100}, 0.5)
    assert offsets["off"] > 0 > offsets["up"]
    assert offsets["off"] - offsets["up"] == pytest.approx(0.5 * np.log(4), abs=1e-3)
    assert sum(offsets.values()) == pytest.approx(0.0, abs=1e-3)
    assert balanced_offsets({"a": 7, "b": 7, "c": 7}, 1.0) == {"a": 0.0, "b": 0.0, "c": 0.0}
    with pytest.raises(KwsError, match="positive count"):
        balanced_offsets({"a": 3, "b": 0}, 0.5)


def weight_scales(content: bytes) -> list[int]:
    """How many quantisation scales each int8 constant (weight) tensor of a model has."""
    from convert.tflite import inspect_interpreter

    interpreter = inspect_interpreter(content)
    ops = interpreter._get_ops_details()
    constants = ({i for op in ops for i in op["inputs"]} - {o for op in ops for o in op["outputs"]}
                 - {d["index"] for d in interpreter.get_input_details()})
    return [len(t["quantization_parameters"]["scales"]) for t in interpreter.get_tensor_details()
            if t["index"] in constants and np.dtype(t["dtype"]) == np.int8]


def test_per_tensor_weights_have_one_scale_each_and_the_manifest_says_so(trained, converted,
                                                                         tmp_path):
    """``kws convert --per-tensor``: every int8 weight tensor has one scale (the default
    file has per-channel ones), the file is smaller, it still agrees with float32, and the
    manifest and report record the choice."""
    out = tmp_path / "out"
    done = kws("convert", "--keras", trained["folder"], "--data", trained["data"],
               "--no-mlflow", "--out", out, "--max-drop", "100", "--calibration", "40",
               "--per-tensor")
    assert done.returncode == 0, done.stderr[-2000:]
    per_tensor = (out / "kws_int8.tflite").read_bytes()
    per_channel = converted.models["int8"].read_bytes()
    assert max(weight_scales(per_channel)) > 1
    assert weight_scales(per_tensor) and set(weight_scales(per_tensor)) == {1}
    assert len(per_tensor) < len(per_channel)
    assert op_names(per_tensor) == op_names(per_channel)
    assert load_manifest(out / "kws_int8.manifest.json").notes["per_tensor_weights"] is True
    assert "per_tensor_weights" not in converted.notes
    clips = split_clips(trained["dataset"], EDGE_FRONTEND).waveforms
    floats, ints = KwsModel(converted.models["float32"]), KwsModel(out / "kws_int8.tflite")
    agree = np.mean([floats.predict_samples(w).argmax() == ints.predict_samples(w).argmax()
                     for w in clips])
    assert agree >= 0.9


def test_shift_logit_refuses_a_model_without_a_softmax_dense_last_or_the_class():
    import keras

    from convert.logit_offset import shift_logit
    from edge_runtime.errors import KwsError

    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation="relu")])
    with pytest.raises(KwsError, match="not a softmax Dense"):
        shift_logit(model, ["yes", "no", "_unknown_"], "_unknown_", 1.0)
    linear = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    with pytest.raises(KwsError, match="not a softmax Dense"):  # logits: only in an ensemble
        shift_logit(linear, ["yes", "no", "_unknown_"], "_unknown_", 1.0)
    shift_logit(linear, ["yes", "no", "_unknown_"], "_unknown_", 1.0, member=True)
    np.testing.assert_allclose(linear.layers[-1].get_weights()[1], [0, 0, 1])
    softmax = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation="softmax")])
    before = softmax.layers[-1].get_weights()[1].copy()
    with pytest.raises(KwsError, match="has no _unknown_ class"):
        shift_logit(softmax, ["yes", "no", "up"], "_unknown_", 1.0)
    np.testing.assert_array_equal(softmax.layers[-1].get_weights()[1], before)  # untouched


def test_a_model_whose_relus_sit_in_a_residual_block_is_converted_unclipped_and_says_so(
        trained, tmp_path, capsys):
    """A ReLU whose output feeds two layers (a residual add) cannot be rescaled into one next
    layer: the ReLUs stay as trained, the console says so and the manifest names no clip
    percentile."""
    import keras

    from train.settings import ModelSettings

    frames, coeffs = EDGE_FRONTEND.feature_shape
    inputs = keras.Input((frames, coeffs, 1))
    x = keras.layers.Conv2D(8, (5, 3), strides=2, padding="same")(inputs)
    x = keras.layers.ReLU()(keras.layers.BatchNormalization()(x))
    x = keras.layers.Add()([x, keras.layers.Conv2D(8, 3, padding="same")(x)])
    x = keras.layers.GlobalAveragePooling2D()(x)
    n_labels = len(trained["dataset"].labels)
    model = keras.Model(inputs, keras.layers.Dense(n_labels, activation="softmax")(x))
    folder = tmp_path / "model_dir"
    folder.mkdir()
    model.save(folder / "model.keras")
    settings = ModelSettings.load(trained["folder"])
    ModelSettings(arch="tiny_residual_test", labels=settings.labels, frontend=settings.frontend,
                  data=settings.data).save(folder)
    result = convert_model(ConvertConfig(
        data_dir=trained["data"], keras_path=folder, out_dir=tmp_path / "out", calibration=20,
        max_drop=100.0, min_accuracy=0, mlflow=False))
    assert "ReLUs not clipped: the model is not a chain of layers" in capsys.readouterr().err
    assert "clip_percentile" not in result.notes
    assert "clip_percentile" not in load_manifest(manifest_path_for(result.models["int8"])).notes
