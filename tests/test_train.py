"""Training end to end on tiny generated data, tracked in MLflow's default SQLite store."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from edge_runtime.frontend import EDGE_FRONTEND
from kws.cli import main
from tests.fixtures_data import make_fake_dataset
from train.data import DataConfig
from train.settings import ModelSettings

ROOT = Path(__file__).resolve().parents[1]
WORDS = ["yes", "no", "up", "cat"]  # task "yes,no,up": cat is _unknown_
TASK = "yes,no,up"


@pytest.fixture(scope="module")
def fake_data(tmp_path_factory) -> Path:
    return make_fake_dataset(tmp_path_factory.mktemp("data") / "sc", WORDS, speakers=4,
                             per_speaker=2, with_lists=True)


@pytest.fixture(scope="module")
def trained(fake_data, tmp_path_factory):
    """One epoch of ds_cnn_s with the default tracking store, in a fresh working directory."""
    from train.train import TrainConfig, train

    work = tmp_path_factory.mktemp("work")
    old = Path.cwd()
    os.chdir(work)
    try:
        result = train(TrainConfig(DataConfig(fake_data, task=TASK), epochs=1, batch_size=8,
                                   normalize=True, cache_dir=work / "cache",
                                   run_name="test-run"))
    finally:
        os.chdir(old)
    return work, result


def client_for(work: Path):
    import mlflow

    return mlflow.MlflowClient(tracking_uri=f"sqlite:///{work / 'mlflow.db'}")


def test_training_writes_a_model_folder_the_converter_can_use(trained, fake_data):
    import keras

    work, result = trained
    assert result.model_dir == Path("runs") / f"ds_cnn_s-{result.run_id[:8]}"
    folder = work / result.model_dir
    settings = ModelSettings.load(folder / "model.keras")
    assert settings.arch == "ds_cnn_s" and settings.frontend == EDGE_FRONTEND
    assert settings.labels == ["_silence_", "_unknown_", "yes", "no", "up"]
    assert settings.run_id == result.run_id
    assert settings.metrics["test_accuracy"] == pytest.approx(result.test_accuracy, abs=1e-6)
    assert settings.data.config.task == TASK and settings.data.normalized is True
    assert settings.data.config == DataConfig(fake_data, task=TASK)
    assert result.epochs_run == 1 and result.seconds_per_epoch > 0
    model = keras.saving.load_model(folder / "model.keras")
    probs = model.predict(np.zeros((3, 49, 10, 1), np.float32), verbose=0)
    assert probs.shape == (3, 5)
    assert result.test_report.n == sum(result.test_report.confusion.sum(axis=1))


def test_the_run_is_in_the_default_sqlite_store_with_everything_logged(trained, fake_data):
    work, result = trained
    assert (work / "mlflow.db").is_file()
    client = client_for(work)
    run = client.get_run(result.run_id)
    assert run.info.status == "FINISHED" and run.info.run_name == "test-run"
    params = run.data.params
    assert params["arch"] == "ds_cnn_s" and params["epochs"] == "1" and params["task"] == TASK
    assert params["frontend.n_mfcc"] == "10" and params["augment.noise"] == "True"
    assert params["normalize"] == "True"
    assert (params["data_dir"], params["val_pct"], params["seed"], params["extra_dirs"]) == (
        str(fake_data), "10.0", "0", "[]")  # the data config's fields, flat
    assert len(params["data.files_sha256"]) == 64
    metrics = run.data.metrics
    assert metrics["test_accuracy"] == pytest.approx(result.test_accuracy, abs=1e-6)
    assert {"loss", "accuracy", "val_loss", "val_accuracy", "epoch_seconds",
            "learning_rate", "best_val_accuracy", "test_accuracy.yes"} <= set(metrics)
    assert [m.step for m in client.get_metric_history(result.run_id, "val_accuracy")] == [0]
    assert run.data.tags["arch"] == "ds_cnn_s"
    assert len(run.data.tags.get("git_commit", "0" * 40)) == 40
    top = {a.path for a in client.list_artifacts(result.run_id)}
    assert {"model_dir", "confusion_matrix.png", "dataset_manifest.json", "frontend.json",
            "labels.json", "model_summary.txt", "test_report.json"} <= top
    inside = {a.path for a in client.list_artifacts(result.run_id, "model_dir")}
    assert inside == {"model_dir/model.keras", "model_dir/model_settings.json"}
    local = Path(client.download_artifacts(result.run_id, "dataset_manifest.json", str(work)))
    manifest = json.loads(local.read_text())
    assert manifest["totals"]["train"] > 0 and manifest["labels"][2:] == ["yes", "no", "up"]
    png = Path(client.download_artifacts(result.run_id, "confusion_matrix.png", str(work)))
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    logged = client.search_logged_models([run.info.experiment_id])
    assert any(m.source_run_id == result.run_id for m in logged)


def test_augmented_batches_are_repeatable_and_fresh_each_epoch(fake_data):
    from train.data import load_dataset
    from train.train import TrainConfig, augmented_batches, load_splits

    config = TrainConfig(DataConfig(fake_data, task=TASK, seed=3), batch_size=4, track=False)
    dataset = load_dataset(config.data)
    splits = load_splits(dataset, EDGE_FRONTEND, config)
    first = augmented_batches(splits, dataset, EDGE_FRONTEND, config)
    again = augmented_batches(splits, dataset, EDGE_FRONTEND, config)
    x0, y0, w0 = first[0]
    x1, y1, w1 = again[0]
    assert x0.shape == (4, 49, 10, 1) and x0.dtype == np.float32
    np.testing.assert_array_equal(x0, x1)
    np.testing.assert_array_equal(y0, y1)
    np.testing.assert_array_equal(w0, np.ones(4, np.float32))  # no balancing asked for
    assert not np.allclose(x0, splits.train_x[first.order[:4]])  # augmented
    first.on_epoch_end()
    assert not np.array_equal(first[0][0], x0)
    assert len(first) == -(-len(splits.train_y) // 4)


def test_mixup_batches_carry_probability_targets_and_mixed_weights(fake_data):
    """The same rows as without mixup, mixed: each target a probability row whose largest
    share is the row's own label, the loss weights mixed from the class weights."""
    from dataclasses import replace

    from train.data import load_dataset
    from train.train import TrainConfig, augmented_batches, class_weights, load_splits

    config = TrainConfig(DataConfig(fake_data, task=TASK, seed=3, train_unknown_pct=100.0),
                         batch_size=8, track=False, augment_copies=1, balance=1.0)
    dataset = load_dataset(config.data)
    splits = load_splits(dataset, EDGE_FRONTEND, config)
    plain = augmented_batches(splits, dataset, EDGE_FRONTEND, config)
    mixed = augmented_batches(splits, dataset, EDGE_FRONTEND, replace(config, mixup=0.4))
    _, y, w = plain[0]
    x, t, wm = mixed[0]
    again = augmented_batches(splits, dataset, EDGE_FRONTEND, replace(config, mixup=0.4))[0]
    np.testing.assert_array_equal(x, again[0])  # repeatable
    n = len(dataset.labels)
    assert t.shape == (8, n) and t.dtype == np.float32
    np.testing.assert_allclose(t.sum(axis=1), 1.0, rtol=1e-6)
    own = t[np.arange(8), y]
    assert np.all(own >= 0.5 - 1e-6) and np.any(own < 0.99)
    weights = class_weights(splits.train_y, n, 1.0)
    np.testing.assert_allclose(w, weights[y], rtol=1e-6)
    # each mixed weight lies between the batch's class weights (exact mixing: test_augment)
    assert np.all(wm >= w.min() - 1e-6) and np.all(wm <= w.max() + 1e-6)


def test_main_folder_clips_weigh_more_in_the_batches(fake_data, tmp_path):
    """With an extra folder and main_weight 3, each class's main-folder clips weigh 3x its
    extra-folder clips in the batches, on top of the class weights."""
    from dataclasses import replace

    from edge_runtime.errors import KwsError
    from train.data import load_dataset
    from train.train import TrainConfig, augmented_batches, class_weights, load_splits

    extra = make_fake_dataset(tmp_path / "extra", ["yes", "no"],
                              [f"e{i:07d}" for i in range(3)], 2)
    data = DataConfig(fake_data, task=TASK, seed=3, train_unknown_pct=100.0,
                      extra_dirs=(extra,))
    config = TrainConfig(data, track=False, augment_copies=1, balance=1.0, main_weight=3.0)
    dataset = load_dataset(data)
    splits = load_splits(dataset, EDGE_FRONTEND, config)
    n = len(splits.train_y)
    batches = augmented_batches(splits, dataset, EDGE_FRONTEND, replace(config, batch_size=n))
    _, y, w = batches[0]
    rows = batches.order[:n]
    from_extra = np.array([extra in dataset.train[r].path.parents if dataset.train[r].path
                           else False for r in rows])
    assert from_extra.any() and (~from_extra).any()
    w = w / class_weights(splits.train_y, len(dataset.labels), 1.0)[y]
    for label in ("yes", "no"):
        k = dataset.labels.index(label)
        main_w, extra_w = w[(y == k) & ~from_extra], w[(y == k) & from_extra]
        np.testing.assert_allclose(main_w / extra_w[0], 3.0, rtol=1e-5)
        np.testing.assert_allclose(w[y == k].mean(), 1.0, rtol=1e-5)  # the class keeps its weight
    np.testing.assert_allclose(w[y == dataset.labels.index("up")], 1.0, rtol=1e-5)
    with pytest.raises(KwsError, match="main_weight"):
        TrainConfig(data, main_weight=0.0).check()


def test_training_with_mixup_learns_from_soft_targets(fake_data, tmp_path):
    """The same seed with and without mixup: both train (soft targets need the categorical
    loss and one-hot validation labels), to different weights."""
    plain, _ = _weights_after(fake_data, tmp_path / "plain", epochs=1, train_seed=0)
    mixed, settings = _weights_after(fake_data, tmp_path / "mix", epochs=1, train_seed=0,
                                     mixup=0.4)
    assert all(np.isfinite(v).all() for v in mixed)
    assert 0 <= settings.metrics["val_accuracy"] <= 1 and settings.metrics["epochs_run"] == 1
    assert any(not np.allclose(a, b) for a, b in zip(plain, mixed, strict=True))


def test_augmented_copies_rotate_and_balance_weights_follow_the_labels(fake_data):
    from dataclasses import replace

    from train.data import load_dataset
    from train.train import (
        TrainConfig,
        augmented_batches,
        class_weights,
        load_splits,
        word_weights,
    )

    config = TrainConfig(DataConfig(fake_data, task=TASK, seed=3, train_unknown_pct=100.0),
                         batch_size=4, track=False, augment_copies=2, balance=1.0,
                         word_balance=1.0)
    dataset = load_dataset(config.data)
    unknown = [e for e in dataset.train if e.word]
    assert unknown and {e.label for e in unknown} == {"_unknown_"}
    unknown[0].word = "rare"  # one word with one clip among the others: factors differ
    splits = load_splits(dataset, EDGE_FRONTEND, config)
    batches = augmented_batches(splits, dataset, EDGE_FRONTEND,
                                replace(config, augment=replace(config.augment,
                                                                specaugment=False)))
    rows = batches.order[:4]
    x0, y0, w0 = batches[0]
    expected = class_weights(splits.train_y, len(dataset.labels), 1.0)
    words = [e.word for e in dataset.train]
    assert len(set(word_weights(words, 1.0))) > 2
    np.testing.assert_allclose(w0, expected[y0] * word_weights(words, 1.0)[rows], rtol=1e-6)
    seen = [x0]
    for _ in range(2):
        batches.on_epoch_end()
        batches.order[:4] = rows  # the same rows again, from the next copies
        seen.append(batches[0][0])
    assert not np.array_equal(seen[0], seen[1])  # epoch 1: the other copy
    np.testing.assert_array_equal(seen[0], seen[2])  # epoch 2: the first copy again


@pytest.mark.parametrize(("args", "message"), [
    (["--arch", "resnet"], "unknown architecture 'resnet'"),
    (["--epochs", "0"], "argument --epochs: must be > 0"),
    (["--balance", "2"], "argument --balance: must be within 0-1"),
    (["--word-balance", "-1"], "argument --word-balance: must be within 0-1"),
    (["--running-speech", "0.8", "--cut-keywords", "0.5"], "at most 1"),
    (["--reversed-speech", "0.6", "--running-speech", "0.5"], "at most 1"),
    (["--augment-copies", "-1"], "augment_copies must be >= 0"),
    (["--label-smoothing", "1.5"], "argument --label-smoothing: must be within 0-1"),
    (["--ema", "1"], "argument --ema: must be within 0-0.9999"),
    (["--weight-decay", "-0.01"], "argument --weight-decay: must be within 0-100"),
    (["--weight-decay", "20", "--lr", "0.05"], "lr x weight_decay < 1"),
    (["--sgd-momentum", "1"], "argument --sgd-momentum: must be within 0-0.999"),
    (["--focal-gamma", "-1"], "argument --focal-gamma: must be within 0-10"),
    (["--train-seed", "-3"], "argument --train-seed"),
    (["--speed-pct", "60"], "argument --speed-pct: must be within 0-49.9"),
    (["--channel-prob", "1.5"], "argument --channel-prob: must be within 0-1"),
    (["--freq-mask-bins", "-1"], "argument --freq-mask-bins"),
    (["--extra", "/nonexistent/x"], "/nonexistent/x: no such extra data folder"),
    (["--extra-val-pct", "100"], "argument --extra-val-pct: must be within 0-99.9"),
    (["--extra-val-pct", "10"], "extra_val_pct needs extra folders"),
    (["--running-speech", "0.2", "--no-augment"], "augmentation is off"),
    (["--hard-negatives-minutes", "5"], "init_from"),
    (["--init-from", "/nonexistent/m"], "/nonexistent/m: no model.keras there"),
    (["--hard-negatives-max", "-1"], "max_windows >= 0"),
    (["--hard-negatives-score", "0"], "argument --hard-negatives-score: must be within"),
    (["--mixup", "-0.1"], "argument --mixup: must be within 0-10"),
    (["--mixup", "0.2", "--no-augment"], "mixup mixes augmented batches"),
    (["--mixup", "0.2", "--word-classes"], "mixup mixes augmented batches"),
])
def test_bad_arguments_exit_2_with_one_error_line(fake_data, capsys, args, message):
    assert main(["train", "--data", str(fake_data), *args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and message in err[0]


def test_reversed_speech_reaches_the_batches_as_unknown(fake_data, tmp_path):
    """``--reversed-speech 1`` replaces every row of a batch by a clip played backwards,
    labelled _unknown_; the rows are no training clip as it was recorded."""
    from dataclasses import replace

    from kws.cli import build_parser
    from train.cli import train_config
    from train.data import load_dataset
    from train.speech_windows import SpeechWindowConfig
    from train.train import TrainConfig, augmented_batches, load_splits

    args = build_parser().parse_args(["train", "--data", str(tmp_path),
                                      "--reversed-speech", "0.05"])
    assert train_config(args).speech_windows.reversed_speech == 0.05
    config = TrainConfig(DataConfig(fake_data, task=TASK, seed=3, train_unknown_pct=100.0),
                         batch_size=8, track=False, augment_copies=1)
    dataset = load_dataset(config.data)
    splits = load_splits(dataset, EDGE_FRONTEND, config)
    plain = augmented_batches(splits, dataset, EDGE_FRONTEND, config)
    backwards = augmented_batches(splits, dataset, EDGE_FRONTEND, replace(
        config, speech_windows=SpeechWindowConfig(reversed_speech=1.0)))
    unknown = dataset.labels.index("_unknown_")
    _, y_plain, _ = plain[0]
    x, y, _ = backwards[0]
    assert (y_plain != unknown).any() and (y == unknown).all()
    assert not np.allclose(x, plain[0][0])


def test_speed_and_channel_reach_the_augmentation_config(tmp_path):
    from kws.cli import build_parser
    from train.cli import train_config

    args = build_parser().parse_args(["train", "--data", str(tmp_path), "--speed-pct", "12.5",
                                      "--channel-prob", "0.25"])
    assert train_config(args).augment.speed_pct == 12.5
    assert train_config(args).augment.channel_prob == 0.25
    args = build_parser().parse_args(["train", "--data", str(tmp_path), "--vtlp-pct", "8"])
    assert train_config(args).augment.vtlp_pct == 8.0
    args = build_parser().parse_args(["train", "--data", str(tmp_path), "--tempo-pct", "7"])
    assert train_config(args).augment.tempo_pct == 7.0


def test_vtlp_warps_the_batches_features_only(fake_data):
    """With ``vtlp_pct`` the same rows, labels and waveform augmentation, other features."""
    from dataclasses import replace

    from train.data import load_dataset
    from train.train import TrainConfig, augmented_batches, load_splits

    config = TrainConfig(DataConfig(fake_data, task=TASK, seed=3), batch_size=8, track=False)
    dataset = load_dataset(config.data)
    splits = load_splits(dataset, EDGE_FRONTEND, config)
    no_spec = replace(config.augment, specaugment=False)
    plain = augmented_batches(splits, dataset, EDGE_FRONTEND, replace(config, augment=no_spec))
    warped = augmented_batches(splits, dataset, EDGE_FRONTEND,
                               replace(config, augment=replace(no_spec, vtlp_pct=10.0)))
    (x, y, w), (xv, yv, wv) = plain[0], warped[0]
    np.testing.assert_array_equal(y, yv)
    np.testing.assert_array_equal(w, wv)
    differ = ~np.isclose(x, xv).reshape(len(x), -1).all(axis=1)
    assert differ.sum() >= len(x) // 2  # factors of exactly 1.0 leave a clip as it was


def test_tempo_changes_the_batches_features_only(fake_data):
    """With ``tempo_pct`` the same rows, labels and weights, other features (with VTLP as
    well: other features than either alone)."""
    from dataclasses import replace

    from train.data import load_dataset
    from train.train import TrainConfig, augmented_batches, load_splits

    config = TrainConfig(DataConfig(fake_data, task=TASK, seed=3), batch_size=8, track=False)
    dataset = load_dataset(config.data)
    splits = load_splits(dataset, EDGE_FRONTEND, config)
    no_spec = replace(config.augment, specaugment=False)

    def first_batch(**augment):
        batches = augmented_batches(splits, dataset, EDGE_FRONTEND,
                                    replace(config, augment=replace(no_spec, **augment)))
        return batches[0]

    (x, y, w), (xt, yt, wt) = first_batch(), first_batch(tempo_pct=10.0)
    np.testing.assert_array_equal(y, yt)
    np.testing.assert_array_equal(w, wt)
    differ = ~np.isclose(x, xt).reshape(len(x), -1).all(axis=1)
    assert differ.sum() >= len(x) // 2  # rates of exactly 1.0 leave a clip as it was
    both = first_batch(vtlp_pct=10.0, tempo_pct=10.0)
    np.testing.assert_array_equal(y, both[1])
    assert not np.allclose(both[0], first_batch(vtlp_pct=10.0)[0])
    assert not np.allclose(both[0], xt)


def test_specaugment_mask_sizes_reach_the_augmentation_config(tmp_path):
    """Masks sized for 40 log-mel bands (the BC-ResNet recipes) instead of 10 MFCC."""
    from kws.cli import build_parser
    from train.augment import AugmentConfig
    from train.cli import train_config

    args = build_parser().parse_args(["train", "--data", str(tmp_path), "--time-masks", "3",
                                      "--time-mask-frames", "6", "--freq-masks", "2",
                                      "--freq-mask-bins", "4"])
    augment = train_config(args).augment
    assert (augment.time_masks, augment.time_mask_frames, augment.freq_masks,
            augment.freq_mask_bins) == (3, 6, 2, 4)
    default = train_config(build_parser().parse_args(["train", "--data", str(tmp_path)]))
    assert default.augment == AugmentConfig()


def test_fine_tuning_options_reach_the_training_config(tmp_path):
    from kws.cli import build_parser
    from train.cli import train_config

    args = build_parser().parse_args([
        "train", "--data", str(tmp_path), "--init-from", str(tmp_path / "m"), "--keep-last",
        "--hard-negatives-minutes", "12", "--hard-negatives-score", "0.4",
        "--hard-negatives-max", "900", "--hard-negatives-even-words"])
    config = train_config(args)
    assert config.init_from == tmp_path / "m" and config.keep_last
    assert (config.hard_negatives.minutes, config.hard_negatives.min_score,
            config.hard_negatives.max_windows, config.hard_negatives.even_words) == (
        12.0, 0.4, 900, True)


def test_extra_val_pct_reaches_the_data_config(tmp_path):
    from kws.cli import build_parser
    from train.cli import train_config

    args = build_parser().parse_args(["train", "--data", str(tmp_path), "--extra",
                                      str(tmp_path), "--extra-val-pct", "12.5"])
    assert train_config(args).data.extra_val_pct == 12.5


def test_pipeline_passes_extra_val_pct_to_the_data(fake_data, tmp_path, capsys):
    assert main(["pipeline", "--data", str(fake_data), "--out", str(tmp_path / "p"),
                 "--extra-val-pct", "10"]) == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        "error: extra_val_pct needs extra folders (--extra) to take speakers from")


def test_missing_or_empty_data_folder_exits_2(tmp_path, capsys):
    assert main(["train", "--data", str(tmp_path / "nope")]) == 2
    assert capsys.readouterr().err.strip() == f"error: {tmp_path / 'nope'}: no such data folder"
    (tmp_path / "empty").mkdir()
    assert main(["train", "--data", str(tmp_path / "empty")]) == 2
    assert "the data folder is empty" in capsys.readouterr().err


def test_a_data_folder_without_a_validation_split_is_an_error(tmp_path, capsys):
    data = make_fake_dataset(tmp_path / "one", ["yes", "no"], speakers=1, per_speaker=2,
                             with_noise=False)
    assert main(["train", "--data", str(data), "--task", "yes,no", "--no-mlflow"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "split is empty" in err[0]


RACE = """
import sys, time
import mlflow  # noqa: F401  (imported before the start line, so both runs start together)
from train.tracking import tracked_run
time.sleep(max(0.0, float(sys.argv[2]) - time.time()))
with tracked_run(sys.argv[1], "race", run_name=sys.argv[3]) as run:
    print(run.info.run_id)
"""


def test_two_runs_started_together_on_a_new_store(tmp_path):
    """MLflow creates a new SQLite store's tables (and an experiment) unguarded: without the
    store lock the second of two runs started together failed ("table ... already exists")."""
    uri = f"sqlite:///{tmp_path / 'new' / 'mlflow.db'}"
    start = time.time() + 15
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    procs = [subprocess.Popen([sys.executable, "-c", RACE, uri, str(start), f"run{i}"],
                              cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for i in range(3)]
    outs = [proc.communicate(timeout=120) for proc in procs]
    assert [proc.returncode for proc in procs] == [0, 0, 0], [err[-500:] for _, err in outs]
    with sqlite3.connect(tmp_path / "new" / "mlflow.db") as db:
        names = db.execute("SELECT r.name FROM runs r JOIN experiments e "
                           "ON r.experiment_id = e.experiment_id WHERE e.name = 'race'")
        assert sorted(row[0] for row in names) == ["run0", "run1", "run2"]


@pytest.mark.slow
def test_sigterm_marks_the_run_killed(fake_data, tmp_path):
    """A real ``kws train`` process, terminated mid-training, leaves a KILLED run."""
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "TF_CPP_MIN_LOG_LEVEL": "2"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "kws", "train", "--data", str(fake_data), "--task", TASK,
         "--epochs", "500", "--patience", "500", "--batch-size", "4", "--no-log-model",
         "--cache-dir", str(tmp_path / "cache")],
        cwd=tmp_path, env={**env, "PYTHONPATH": str(ROOT)}, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True)
    db = tmp_path / "mlflow.db"
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and proc.poll() is None:
            if db.is_file():
                with sqlite3.connect(db) as con:
                    try:
                        n = con.execute("select count(*) from metrics where key='val_accuracy'"
                                        ).fetchone()[0]
                    except sqlite3.OperationalError:
                        n = 0
                if n >= 2:
                    break
            time.sleep(0.5)
        assert proc.poll() is None, proc.communicate()[1][-2000:]
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 128 + signal.SIGTERM, err[-2000:]
    assert "the MLflow run is marked KILLED" in err
    runs = client_for(tmp_path).search_runs(
        [e.experiment_id for e in client_for(tmp_path).search_experiments()])
    assert [r.info.status for r in runs] == ["KILLED"]


def test_label_smoothing_loss_matches_the_smoothed_targets():
    from train.losses import SmoothedSparseCrossentropy

    probs = np.array([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8]], np.float32)
    labels = np.array([0, 1])
    s = 0.3
    target = (1 - s) * np.eye(3)[labels] + s / 3
    expected = -(target * np.log(probs)).sum(axis=1).mean()
    got = float(SmoothedSparseCrossentropy(s)(labels[:, None], probs))
    assert got == pytest.approx(expected, rel=1e-5)
    plain = -np.log(probs[[0, 1], labels]).mean()
    assert float(SmoothedSparseCrossentropy(0.0)(labels, probs)) == pytest.approx(plain, rel=1e-5)


def test_focal_loss_scales_each_clips_crossentropy_by_its_error():
    """Focal loss is ``-(1 - p_true)**gamma * log p_true`` per clip, the same on integer labels
    and on one-hot rows (the soft-target path of teachers and mixup)."""
    from train.losses import SmoothedSparseCrossentropy
    from train.train import training_objective

    probs = np.array([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8], [0.5, 0.3, 0.2]], np.float32)
    labels = np.array([0, 1, 2])
    p_true = probs[np.arange(3), labels]
    expected = (-(1 - p_true) ** 2 * np.log(p_true)).mean()
    sparse, val_y = training_objective(0.0, False, labels, 3, focal_gamma=2.0)
    assert isinstance(sparse, SmoothedSparseCrossentropy) and val_y is labels
    assert float(sparse(labels[:, None], probs)) == pytest.approx(expected, rel=1e-5)
    soft, val_soft = training_objective(0.0, True, labels, 3, focal_gamma=2.0)
    assert np.array_equal(val_soft, np.eye(3)[labels])
    assert float(soft(np.eye(3, dtype=np.float32)[labels], probs)) == pytest.approx(expected,
                                                                                  rel=1e-5)
    # the clip already right (p 0.7) keeps 0.3^2 of its cross-entropy, the worst (p 0.1) 0.9^2
    plain = SmoothedSparseCrossentropy(0.0)
    for k, kept in ((0, 0.09), (1, 0.81)):
        assert float(sparse(labels[k:k + 1], probs[k:k + 1])) == pytest.approx(
            kept * float(plain(labels[k:k + 1], probs[k:k + 1])), rel=1e-5)
    assert training_objective(0.0, False, labels, 3)[0] == "sparse_categorical_crossentropy"


def _weights_after(fake_data, work: Path, epochs: int = 2,
                   **options) -> tuple[list[np.ndarray], ModelSettings]:
    import keras

    from train.train import TrainConfig, train

    result = train(TrainConfig(DataConfig(fake_data, task=TASK), epochs=epochs, batch_size=4,
                               lr=0.01, track=False, out_dir=work, cache_dir=work / "cache",
                               **options))
    model = keras.saving.load_model(result.model_dir / "model.keras", compile=False)
    return ([np.asarray(v) for v in model.trainable_variables],
            ModelSettings.load(result.model_dir))


def test_train_seed_changes_the_weights_not_the_splits(fake_data, tmp_path):
    base, settings = _weights_after(fake_data, tmp_path / "a", train_seed=1)
    other, other_settings = _weights_after(fake_data, tmp_path / "b", train_seed=2)
    assert settings.data.files_sha256 == other_settings.data.files_sha256
    assert settings.data.totals == other_settings.data.totals
    assert any(not np.allclose(a, b) for a, b in zip(base, other, strict=True))


def test_ema_keeps_the_average_of_the_weights(fake_data, tmp_path):
    """With a momentum near 1 the kept average stays near the weights after the first step
    (Adam moves every weight by ~lr there), however far training then took them."""
    import keras

    from train.models import architecture

    plain, settings = _weights_after(fake_data, tmp_path / "plain", epochs=8, train_seed=0)
    averaged, _ = _weights_after(fake_data, tmp_path / "ema", epochs=8, train_seed=0,
                                 ema=0.9999)
    keras.utils.set_random_seed(0)  # the seed train() sets: the same initial weights
    model = architecture("ds_cnn_s").build(len(settings.labels))
    initial = [np.asarray(v) for v in model.trainable_variables]

    def moved(weights):
        assert [w.shape for w in weights] == [i.shape for i in initial]
        return sum(float(np.abs(w - i).sum()) for w, i in zip(weights, initial, strict=True))

    assert moved(averaged) < 0.4 * moved(plain)  # measured: 227 against 876


@pytest.mark.parametrize("keep_last", [False, True])
def test_training_keeps_the_best_epoch_or_the_last(fake_data, tmp_path, keep_last):
    """From the second epoch on, a callback makes the model answer a class no validation
    clip has: the first epoch stays the best, and the last differs from it."""
    import keras

    from train.data import load_dataset
    from train.models import architecture
    from train.train import TrainConfig, fit, load_splits

    config = TrainConfig(DataConfig(fake_data, task=TASK), epochs=3, batch_size=4, lr=1e-9,
                         track=False, cache_dir=tmp_path / "cache", keep_last=keep_last,
                         patience=3, verbose=0)
    arch = architecture(config.arch)
    dataset = load_dataset(config.data)
    splits = load_splits(dataset, arch.frontend, config)
    splits.val_y[:] = 0
    n = len(dataset.labels)

    class WrongAfterFirst(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            if epoch >= 1:
                out = next(layer for layer in reversed(self.model.layers)
                           if getattr(layer, "bias", None) is not None
                           and tuple(layer.bias.shape) == (n,))
                out.bias.assign(np.eye(n, dtype=np.float32)[1] * 1e3)

        def on_train_end(self, logs=None):
            self.weights = [np.array(v) for v in self.model.weights]

    last = WrongAfterFirst()
    keras.utils.set_random_seed(0)
    model = arch.build(n)
    fit(model, splits, dataset, arch.frontend, config, tmp_path, [last])
    first = arch.build(n)
    first.load_weights(tmp_path / "best.weights.h5")
    kept = [np.array(v) for v in model.weights]
    expected = last.weights if keep_last else [np.array(v) for v in first.weights]
    assert any(not np.array_equal(a, np.array(b)) for a, b in zip(last.weights, first.weights,
                                                                  strict=True))
    for a, b in zip(kept, expected, strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize(("weight_decay", "sgd_momentum"), [(0.0, 0.0), (0.5, 0.0), (0.5, 0.9)])
def test_weight_decay_shrinks_kernels_only(weight_decay, sgd_momentum):
    """A step with zero gradients moves no weight under Adam; with decay (AdamW, or SGD) it
    multiplies each kernel by 1 - lr * weight_decay and leaves biases and BatchNorm's scale and
    shift alone."""
    import keras

    from train.models import architecture
    from train.train import NO_DECAY, compile_for_training

    keras.utils.set_random_seed(0)
    model = architecture("ds_cnn_s").build(12)
    compile_for_training(model, lr=0.01, min_lr_ratio=1.0, steps=10, epochs=1, ema=0.0,
                         loss="sparse_categorical_crossentropy", metric="accuracy",
                         weight_decay=weight_decay, sgd_momentum=sgd_momentum)
    before = {v.path: np.asarray(v) for v in model.trainable_variables}
    model.optimizer.apply_gradients(
        [(keras.ops.zeros_like(v), v) for v in model.trainable_variables])
    kernels = 0
    for v in model.trainable_variables:
        decayed = not any(n in v.name for n in NO_DECAY)
        kernels += decayed
        factor = 1 - 0.01 * weight_decay if decayed else 1.0
        np.testing.assert_allclose(np.asarray(v), before[v.path] * factor, rtol=1e-6)
    assert kernels >= 5  # the convolutions' and the dense layer's kernels were checked


def test_sgd_momentum_trains_with_nesterov_sgd_not_adam():
    """With ``sgd_momentum`` the step is Nesterov SGD's: the first moves a weight by
    -(1 + momentum) * lr * gradient (Adam's by ~-lr * sign), the second adds the momentum."""
    import keras

    from train.models import architecture
    from train.train import compile_for_training

    keras.utils.set_random_seed(0)
    model = architecture("ds_cnn_s").build(12)
    compile_for_training(model, lr=0.1, min_lr_ratio=1.0, steps=10, epochs=1, ema=0.0,
                         loss="sparse_categorical_crossentropy", metric="accuracy",
                         sgd_momentum=0.9)
    assert isinstance(model.optimizer, keras.optimizers.SGD) and model.optimizer.nesterov
    v = model.trainable_variables[0]
    start = np.asarray(v).copy()
    grad = np.full(v.shape, 0.01, np.float32)
    model.optimizer.apply_gradients([(keras.ops.convert_to_tensor(grad), v)])
    np.testing.assert_allclose(np.asarray(v), start - 1.9 * 0.1 * grad, rtol=1e-5, atol=1e-7)
    model.optimizer.apply_gradients([(keras.ops.convert_to_tensor(grad), v)])
    # m1 = -lr g, m2 = 0.9 m1 - lr g = -1.9 lr g; step 2 = 0.9 m2 - lr g = -2.71 lr g
    np.testing.assert_allclose(np.asarray(v), start - (1.9 + 2.71) * 0.1 * grad, rtol=1e-5,
                               atol=1e-7)
