"""Distillation: soft targets from trained teachers, checked on tiny generated data."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from edge_runtime.errors import KwsError
from edge_runtime.frontend import EDGE_FRONTEND, Frontend
from kws.cli import main
from tests.fixtures_data import make_fake_dataset
from train.data import DataConfig, load_dataset
from train.distill import Teachers

TASK = "yes,no,up"


@pytest.fixture(scope="module")
def fake_data(tmp_path_factory) -> Path:
    return make_fake_dataset(tmp_path_factory.mktemp("data") / "sc", ["yes", "no", "up", "cat"],
                             speakers=4, per_speaker=2, with_lists=True)


@pytest.fixture(scope="module")
def teacher(fake_data, tmp_path_factory) -> Path:
    """A model folder trained 2 epochs (not tracked)."""
    from train.train import TrainConfig, train

    out = tmp_path_factory.mktemp("teacher") / "model"
    train(TrainConfig(DataConfig(fake_data, task=TASK), epochs=2, batch_size=8, track=False,
                      out_dir=out, verbose=0))
    return out


@pytest.fixture(scope="module")
def log_mel_teacher(fake_data, tmp_path_factory) -> Path:
    """A BC-ResNet (40 log-mel bands: another front-end than the student's MFCC) trained 1
    epoch (not tracked)."""
    from train.train import TrainConfig, train

    out = tmp_path_factory.mktemp("teacher") / "bc"
    train(TrainConfig(DataConfig(fake_data, task=TASK), arch="bc_resnet_1", epochs=1,
                      batch_size=8, track=False, out_dir=out, verbose=0))
    return out


def first_batches(fake_data: Path, teacher: Path, weight: float, augment, copies: int = 0):
    """Training batches of 4 with ``teacher`` (weight ``weight``), the teachers, the splits,
    and batch 0 of the same batches without a teacher."""
    from train.train import TrainConfig, augmented_batches, load_splits

    config = TrainConfig(DataConfig(fake_data, task=TASK), batch_size=4, track=False,
                         augment=augment, augment_copies=copies)
    dataset = load_dataset(config.data)
    splits = load_splits(dataset, EDGE_FRONTEND, config)
    teachers = Teachers.load((teacher,), weight, dataset.labels, EDGE_FRONTEND)
    batches = augmented_batches(splits, dataset, EDGE_FRONTEND, config, teachers)
    return batches, teachers, splits, augmented_batches(splits, dataset, EDGE_FRONTEND,
                                                         config)[0]


def labels_of(fake_data: Path) -> list[str]:
    return load_dataset(DataConfig(fake_data, task=TASK)).labels


def test_targets_mix_the_true_label_with_the_teachers_mean(fake_data, teacher):
    labels = labels_of(fake_data)
    feats = np.random.default_rng(0).standard_normal((6, 49, 10, 1)).astype(np.float32)
    y = np.array([0, 1, 2, 3, 4, 2])
    one = Teachers.load((teacher,), 0.3, labels, EDGE_FRONTEND)
    probs = np.asarray(one.models[0](feats, training=False))
    expected = 0.7 * np.eye(5)[y] + 0.3 * probs
    np.testing.assert_allclose(one.targets(feats, y, 5), expected, atol=1e-6)
    two = Teachers.load((teacher, teacher), 0.3, labels, EDGE_FRONTEND)  # the mean of equals
    np.testing.assert_allclose(two.targets(feats, y, 5), expected, atol=1e-6)
    assert np.allclose(one.targets(feats, y, 5).sum(axis=1), 1.0, atol=1e-5)
    np.testing.assert_array_equal(replace(one, weight=0.0).targets(feats, y, 5), np.eye(5)[y])
    assert not np.allclose(probs, np.eye(5)[y], atol=0.05)  # the teacher is not one-hot


def test_teachers_must_share_labels_and_audio(fake_data, teacher, tmp_path):
    labels = labels_of(fake_data)
    with pytest.raises(KwsError, match="labels .* differ from the data's"):
        Teachers.load((teacher,), 0.5, labels[:-1], EDGE_FRONTEND)
    with pytest.raises(KwsError, match="front-end .* hears other audio than the student's"):
        Teachers.load((teacher,), 0.5, labels, replace(EDGE_FRONTEND, sample_rate=8000))
    with pytest.raises(KwsError, match="front-end .* hears other audio than the student's"):
        Teachers.load((teacher,), 0.5, labels, replace(EDGE_FRONTEND, clip_ms=800))
    with pytest.raises(KwsError, match="no trained model there"):
        Teachers.load((tmp_path,), 0.5, labels, EDGE_FRONTEND)


@pytest.mark.parametrize("copies", [0, 1])  # fresh batches; copies scored once
def test_training_batches_carry_the_teachers_targets_of_what_the_student_sees(fake_data,
                                                                              teacher, copies):
    from train.augment import AugmentConfig

    batches, teachers, _, plain = first_batches(fake_data, teacher, 0.6,
                                                AugmentConfig(specaugment=False), copies)
    x, y, w = batches[0]
    plain_x, plain_y, plain_w = plain
    np.testing.assert_array_equal(x, plain_x)  # the same examples and weights ...
    np.testing.assert_array_equal(w, plain_w)
    assert y.shape == (4, 5) and y.dtype == np.float32  # ... with soft targets
    np.testing.assert_allclose(y, teachers.targets(x, plain_y, 5), atol=1e-6)


def test_a_teacher_of_another_front_end_scores_its_own_features_of_the_audio(
        fake_data, teacher, log_mel_teacher):
    from train.models import load_keras
    from train.settings import ModelSettings

    labels = labels_of(fake_data)
    audio = np.random.default_rng(1).uniform(-0.3, 0.3, (5, 16000))
    feats = Frontend(EDGE_FRONTEND)(audio)[..., None].astype(np.float32)
    y = np.array([0, 1, 2, 3, 4])
    both = Teachers.load((teacher, log_mel_teacher), 0.4, labels, EDGE_FRONTEND)
    assert both.need_audio and not Teachers.load((teacher,), 0.4, labels,
                                                 EDGE_FRONTEND).need_audio
    own = ModelSettings.load(log_mel_teacher).frontend
    assert own.features == "log_mel" and own != EDGE_FRONTEND
    mel = Frontend(own)(audio)[..., None].astype(np.float32)
    probs = [np.asarray(load_keras(teacher)(feats, training=False)),
             np.asarray(load_keras(log_mel_teacher)(mel, training=False))]
    expected = 0.6 * np.eye(5)[y] + 0.4 * np.mean(probs, axis=0)
    np.testing.assert_allclose(both.targets(feats, y, 5, audio), expected, atol=1e-5)
    with pytest.raises(ValueError, match="needs the audio"):
        both.targets(feats, y, 5)


def test_training_batches_carry_a_log_mel_teachers_targets_of_the_augmented_audio(
        fake_data, log_mel_teacher):
    """Without random augmentation the audio of a batch is its rows' clips: the log-mel
    teacher's targets of batch 0 are its prediction for them, and the features the MFCC
    student sees are the ones it sees without a teacher."""
    from train.augment import AugmentConfig

    identity = AugmentConfig(noise=False, shift=False, gain=False, specaugment=False)
    batches, teachers, splits, plain = first_batches(fake_data, log_mel_teacher, 1.0, identity)
    x, y, _ = batches[0]
    plain_x = plain[0]
    np.testing.assert_array_equal(x, plain_x)
    rows = batches.order[:4]
    mel = teachers.frontends[0](splits.train_waves[rows])[..., None].astype(np.float32)
    np.testing.assert_allclose(y, np.asarray(teachers.models[0](mel, training=False)),
                               atol=1e-5)


def test_a_teacher_of_another_front_end_needs_augmented_training(fake_data, log_mel_teacher,
                                                                  tmp_path):
    from train.train import TrainConfig, train

    with pytest.raises(KwsError, match="hears the training audio: train with augmentation"):
        train(TrainConfig(DataConfig(fake_data, task=TASK), epochs=1, batch_size=8,
                          track=False, out_dir=tmp_path / "s", verbose=0, augment=None,
                          teachers=(log_mel_teacher,)))


def test_kws_train_distils_and_records_its_teachers(fake_data, teacher, tmp_path, capsys):
    out = tmp_path / "student"
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    assert main(["train", "--data", str(fake_data), "--task", TASK, "--epochs", "1",
                 "--teacher", str(teacher), "--teacher", str(teacher), "--teacher-weight",
                 "0.7", "--out", str(out), "--tracking-uri", uri, "--no-log-model",
                 "--cache-dir", str(tmp_path / "cache"), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert (out / "model.keras").is_file() and 0 <= result["val_accuracy"] <= 1

    import mlflow

    params = mlflow.MlflowClient(tracking_uri=uri).get_run(result["run_id"]).data.params
    assert params["teachers"] == str([str(teacher), str(teacher)])
    assert params["teacher_weight"] == "0.7"


@pytest.mark.parametrize(("args", "message"), [
    (["--teacher", "/nonexistent/t"], "/nonexistent/t: no model.keras there (teacher)"),
    (["--teacher-weight", "1.5"], "argument --teacher-weight: must be within 0-1"),
])
def test_bad_teachers_exit_2_with_one_error_line(fake_data, capsys, args, message):
    assert main(["train", "--data", str(fake_data), "--task", TASK, "--no-mlflow", *args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and message in err[0]


def test_a_teacher_of_other_labels_is_refused_before_training(fake_data, teacher, tmp_path,
                                                             capsys):
    other = tmp_path / "other"
    shutil.copytree(teacher, other)
    settings = json.loads((other / "model_settings.json").read_text())
    settings["labels"] = settings["labels"][:-1] + ["down"]
    (other / "model_settings.json").write_text(json.dumps(settings))
    assert main(["train", "--data", str(fake_data), "--task", TASK, "--no-mlflow",
                 "--teacher", str(other), "--out", str(tmp_path / "s")]) == 2
    err = [x for x in capsys.readouterr().err.strip().splitlines() if x.startswith("error")]
    assert len(err) == 1 and err[0].startswith(f"error: teacher {other}: labels ")
    assert not (tmp_path / "s").exists()
