"""model_settings.json's data summary (typed, and the shapes of earlier files) and the configs
that the command lines take their defaults from."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from edge_runtime.cmdline import field_default
from edge_runtime.frontend import EDGE_FRONTEND
from train.data import DataConfig
from train.settings import DataSummary, ModelSettings

# model_settings.json's "data" as training wrote it before the summary was typed (a run of
# benchmarks.experiments.ship, ds_norm)
FLAT = {
    "task": "12", "val_pct": 10.0, "test_pct": 20.0, "silence_pct": 10.0, "unknown_pct": 10.0,
    "seed": 0, "train_unknown_pct": 100.0, "data_dir": "/data/speech_commands_mini",
    "synth": None, "extra": ["/data/speech_commands_extra"],
    "split_rule": "hash, salted with 'kws-edge/'; extra folders: training split only, minus "
                  "speakers of val/test",
    "totals": {"train": 12862, "val": 410, "test": 809},
    "files_sha256": "3feb54322df6867b813900ba51f44e4f831156777c77c0f4177f7403f376bc94",
    "normalized": True,
}


def test_the_flat_shape_of_earlier_files_loads_and_is_written_again_as_it_was(tmp_path):
    summary = DataSummary.from_dict(FLAT)
    assert summary.config == DataConfig(Path("/data/speech_commands_mini"), val_pct=10.0,
                                        test_pct=20.0, train_unknown_pct=100.0,
                                        extra_dirs=(Path("/data/speech_commands_extra"),))
    assert summary.totals == FLAT["totals"] and summary.normalized is True
    assert summary.files_sha256 == FLAT["files_sha256"]
    assert json.dumps(summary.to_dict()) == json.dumps(FLAT)  # the same keys, in order
    settings = ModelSettings("ds_cnn_s", ["_silence_", "_unknown_", "yes"], EDGE_FRONTEND,
                             data=summary)
    path = settings.save(tmp_path)
    assert json.loads(path.read_text())["data"] == FLAT
    assert ModelSettings.load(tmp_path) == settings


@pytest.mark.parametrize("raw, config", [
    # the first trainer's: no extra folders, no training unknown share, no "normalized"
    ({"task": "yes,no", "val_pct": 10.0, "test_pct": 10.0, "silence_pct": 10.0,
      "unknown_pct": 10.0, "seed": 3, "data_dir": "/d", "synth": "/s", "split_rule": "lists",
      "totals": {"train": 5, "val": 1, "test": 1}, "files_sha256": "0" * 64},
     DataConfig(Path("/d"), task="yes,no", seed=3, synth_dir=Path("/s"))),
    # a DataConfig.to_dict() (what the converter's tests wrote)
    (DataConfig(Path("/d"), task="yes,no", silence_pct=50, extra_dirs=(Path("/e"),)).to_dict(),
     DataConfig(Path("/d"), task="yes,no", silence_pct=50, extra_dirs=(Path("/e"),))),
    # a data set manifest: the settings under "config"
    ({"data_dir": "/d", "config": DataConfig(Path("/d"), unknown_pct=30).to_dict(),
      "split_rule": "hash", "totals": {"train": 5, "val": 1, "test": 1},
      "files_sha256": "1" * 64},
     DataConfig(Path("/d"), unknown_pct=30)),
    # only some settings: the others are the defaults
    ({"task": "12", "seed": 2}, DataConfig(Path("."), seed=2)),
])
def test_earlier_shapes_load(raw, config):
    summary = DataSummary.from_dict(raw)
    assert summary.config == config
    assert summary.normalized is raw.get("normalized")
    assert summary.files_sha256 == raw.get("files_sha256")
    assert DataSummary.from_dict(summary.to_dict()) == summary


def test_nothing_recorded_is_the_defaults_and_stays_empty(tmp_path):
    for empty in (None, {}):
        assert DataSummary.from_dict(empty) == DataSummary()
    assert DataSummary().to_dict() == {}
    assert DataSummary().split_config(tmp_path) == DataConfig(tmp_path)
    raw = {"arch": "ds_cnn_s", "labels": ["yes"], "frontend": EDGE_FRONTEND.to_dict()}
    assert ModelSettings.from_dict(raw).data == DataSummary()  # no "data" at all


def test_the_split_config_leaves_the_training_only_folders_out(tmp_path):
    summary = DataSummary(DataConfig(Path("/elsewhere"), task="yes", val_pct=5.0, seed=4,
                                     synth_dir=Path("/s"), extra_dirs=(Path("/e"),),
                                     train_unknown_pct=50.0))
    assert summary.split_config(tmp_path) == DataConfig(tmp_path, task="yes", val_pct=5.0,
                                                        seed=4, train_unknown_pct=50.0)


def test_extra_validation_speakers_are_recorded_when_set():
    config = DataConfig(Path("/d"), extra_dirs=(Path("/e"),), extra_val_pct=10.0)
    written = DataSummary(config).to_dict()
    assert written["extra_val_pct"] == 10.0
    assert DataSummary.from_dict(written).config == config
    assert "extra_val_pct" not in DataSummary(DataConfig(Path("/d"))).to_dict()  # as before


def test_a_summary_that_is_not_an_object_is_a_bad_settings_file(tmp_path):
    from edge_runtime.errors import KwsError

    raw = {"arch": "ds_cnn_s", "labels": ["yes"], "frontend": EDGE_FRONTEND.to_dict(),
           "data": "12"}
    (tmp_path / "model_settings.json").write_text(json.dumps(raw))
    with pytest.raises(KwsError, match="not a valid model settings file"):
        ModelSettings.load(tmp_path)


def test_training_params_keep_their_flat_names():
    from train.train import TrainConfig

    config = TrainConfig(DataConfig("/d", task="yes,no", synth_dir="/s", seed=7,
                                    extra_dirs=("/e",)), epochs=3, out_dir=Path("/o"))
    params = config.to_params()
    assert set(params) == {
        "data_dir", "arch", "task", "epochs", "batch_size", "lr", "min_lr_ratio", "patience",
        "seed", "synth_dir", "val_pct", "test_pct", "silence_pct", "unknown_pct", "extra_dirs",
        "train_unknown_pct", "extra_val_pct", "extra_train_pct", "cv_folds", "cv_fold",
        "drop_train", "balance", "word_balance", "main_weight",
        "train_seed",
        "label_smoothing", "focal_gamma", "mixup", "ema", "weight_decay", "sgd_momentum",
        "teachers",
        "teacher_weight",
        "embedding_teacher",
        "augment", "augment_copies",
        "speech_windows", "normalize", "word_classes", "out_dir", "cache_dir", "track",
        "tracking_uri",
        "experiment", "run_name", "log_keras_model", "verbose", "keep_last", "init_from",
        "hard_negatives"}
    assert params["hard_negatives"]["minutes"] == 0.0 and params["init_from"] is None
    assert (params["data_dir"], params["synth_dir"], params["extra_dirs"]) == ("/d", "/s", ["/e"])
    assert (params["task"], params["seed"], params["epochs"], params["out_dir"]) == \
        ("yes,no", 7, 3, "/o")


def test_field_default_reads_defaults_and_factories():
    from train.train import TrainConfig

    assert field_default(DataConfig, "val_pct") == 10.0
    assert field_default(TrainConfig, "speech_windows") == TrainConfig(
        DataConfig(".")).speech_windows
    with pytest.raises(TypeError, match="no default"):
        field_default(TrainConfig, "data")


def test_command_line_defaults_are_the_configs_defaults(tmp_path, monkeypatch):
    from kws import pipeline
    from kws.cli import build_parser
    from train.cli import train_config
    from train.train import TrainConfig

    args = build_parser().parse_args(["train", "--data", str(tmp_path)])
    assert train_config(args) == TrainConfig(DataConfig(tmp_path))
    seen: list[pipeline.PipelineConfig] = []
    monkeypatch.setattr(pipeline, "run_pipeline", seen.append)
    args = build_parser().parse_args(["pipeline", "--data", str(tmp_path)])
    args.func(args)
    (config,) = seen
    assert config == pipeline.PipelineConfig(config.out_dir, TrainConfig(DataConfig(tmp_path)))
