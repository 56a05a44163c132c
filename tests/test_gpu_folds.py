"""Fold runs trained elsewhere: the packed copies are the training run's own, and a packed run
trains to a weights file that a model of its architecture loads."""

from __future__ import annotations

import json

import numpy as np
import pytest

from benchmarks.experiments.gpu_folds import (
    RECIPES,
    dequantize,
    main,
    pack,
    quantize,
    train_one,
)
from edge_runtime.frontend import EDGE_FRONTEND
from tests.fixtures_data import make_fake_dataset
from train.data import DataConfig

TASK = "yes,no,up"


@pytest.fixture(scope="module")
def config(tmp_path_factory):
    from train.train import TrainConfig

    data = make_fake_dataset(tmp_path_factory.mktemp("data") / "sc", ["yes", "no", "up", "cat"],
                             speakers=4, per_speaker=2, with_lists=True)
    return TrainConfig(DataConfig(data, task=TASK, seed=3, train_unknown_pct=100.0),
                       arch="ds_cnn_w", epochs=3, batch_size=4, track=False, augment_copies=2,
                       balance=0.5, ema=0.9, normalize=True,
                       cache_dir=tmp_path_factory.mktemp("cache"))


def test_int8_rounding_stays_within_half_a_step():
    rng = np.random.default_rng(0)
    x = rng.normal(0, 30, size=(500, 49, 10)).astype(np.float32)
    lo, hi = np.percentile(x, 0.01, axis=(0, 1)), np.percentile(x, 99.99, axis=(0, 1))
    back = dequantize(quantize(x, lo, hi), lo, hi)
    inside = (x >= lo) & (x <= hi)
    step = (hi - lo) / 255
    assert np.all(np.abs(back - x)[inside] <= np.broadcast_to(step / 2 + 1e-4, x.shape)[inside])
    assert np.all(back >= lo - 1e-4) and np.all(back <= hi + 1e-4)  # outliers clipped


def test_the_pack_holds_the_runs_own_copies_weights_and_validation(config, tmp_path):
    from train.data import load_dataset
    from train.train import augmented_batches, load_splits

    path = pack(config, tmp_path, "run_f0", 0)
    data = np.load(path)
    dataset = load_dataset(config.data)
    splits = load_splits(dataset, EDGE_FRONTEND, config)
    batches = augmented_batches(splits, dataset, EDGE_FRONTEND, config)
    assert data["x"].shape == (2, len(splits.train_y), 49, 10) and data["x"].dtype == np.int8
    for c, (feats, ys, _) in enumerate(batches.copies):
        np.testing.assert_array_equal(data["y"][c], ys)
        np.testing.assert_allclose(data["w"][c], batches.example_weights(
            np.arange(len(ys)), ys), rtol=1e-6)
        step = (data["hi"] - data["lo"]) / 255
        inside = (feats >= data["lo"]) & (feats <= data["hi"])
        err = np.abs(dequantize(data["x"][c], data["lo"], data["hi"]) - feats)
        assert np.all(err[inside] <= np.broadcast_to(step / 2 + 1e-3, err.shape)[inside])
    np.testing.assert_allclose(data["val_x"], splits.val_x[..., 0], rtol=1e-3, atol=1e-2)
    settings = json.loads(str(data["settings"]))
    assert settings["labels"] == list(dataset.labels) and settings["ema"] == 0.9
    assert settings["stats"]["mean"] and settings["fold"] == 0


def test_a_packed_run_trains_and_its_weights_load_into_the_architecture(config, tmp_path,
                                                                        capsys):
    from train.models import architecture
    from train.models.common import FeatureStats

    path = pack(config, tmp_path, "run_f1", 1)
    assert main(["train", str(path), "ema", "--out", str(tmp_path / "w"), "--epochs",
                 "2"]) == 0
    weights = tmp_path / "w" / "ema_f1.weights.h5"
    assert capsys.readouterr().out.strip() == str(weights)
    info = json.loads((tmp_path / "w" / "ema_f1.json").read_text())
    assert info["epochs"] == 2 and 1 <= info["best_epoch"] <= 2
    assert 0 <= info["best_val_accuracy"] <= 1
    settings = json.loads(str(np.load(path)["settings"]))
    assert info["stats"] == settings["stats"]  # score builds the model with them
    model = architecture("ds_cnn_w").build(len(settings["labels"]),
                                           stats=FeatureStats(**info["stats"]))
    before = [w.copy() for w in model.get_weights()]
    model.load_weights(weights)
    assert any(not np.array_equal(a, b) for a, b in zip(before, model.get_weights(),
                                                        strict=True))
    # another recipe from the same pack: another architecture's weights
    other = train_one(path, "dss", tmp_path / "w", epochs=1)
    small = architecture(RECIPES["dss"].arch).build(len(settings["labels"]),
                                                    stats=FeatureStats(**settings["stats"]))
    small.load_weights(other)
    assert small.count_params() < model.count_params()


def test_a_mixup_recipe_trains_on_the_packed_copies_mixed(config, tmp_path):
    """The same pack, seed and epoch with and without mixup: different weights, both load."""
    from train.models import architecture
    from train.models.common import FeatureStats

    path = pack(config, tmp_path, "run_f0", 0)
    settings = json.loads(str(np.load(path)["settings"]))
    got = []
    for recipe in ("ema", "mix20"):
        model = architecture("ds_cnn_w").build(len(settings["labels"]),
                                               stats=FeatureStats(**settings["stats"]))
        model.load_weights(train_one(path, recipe, tmp_path / "w", epochs=1))
        got.append(model.get_weights())
    assert RECIPES["mix20"].mixup == 0.2
    assert any(not np.allclose(a, b) for a, b in zip(*got, strict=True))


def test_a_run_without_fixed_copies_cannot_be_packed(config, tmp_path):
    from dataclasses import replace

    from edge_runtime.errors import KwsError

    with pytest.raises(KwsError, match="no fixed augmented copies"):
        pack(replace(config, augment_copies=0), tmp_path, "run_f0", 0)
    with pytest.raises(KwsError, match="not packed"):
        pack(replace(config, word_classes=True), tmp_path, "run_f0", 0)


def test_bad_inputs_are_one_line_errors(tmp_path, capsys):
    assert main(["train", str(tmp_path / "none.npz"), "ema", "--out", str(tmp_path)]) == 2
    assert capsys.readouterr().err.startswith("error: ")
    (tmp_path / "ema_fx.weights.h5").write_bytes(b"")
    assert main(["score", "speech_ema_150_xv", str(tmp_path / "ema_fx.weights.h5")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "RECIPE_f<k>.weights.h5" in err
    (tmp_path / "ema_f0.weights.h5").write_bytes(b"")  # no .json beside it
    assert main(["score", "speech_ema_150_xv", str(tmp_path / "ema_f0.weights.h5")]) == 2
    assert "without the .json" in capsys.readouterr().err
    assert main(["pack", "no_such_run", "--folds", "0", "--out", str(tmp_path)]) == 2
    assert capsys.readouterr().err.count("\n") == 1
