"""The speech-embedding teacher: the ONNX embedding, its head, and distillation from it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from edge_runtime.errors import KwsError
from edge_runtime.frontend import EDGE_FRONTEND
from kws.cli import main
from tests.conftest import ROOT, speech_like
from tests.fixtures_data import make_fake_dataset
from train.data import DataConfig, load_dataset, load_waveforms
from train.speech_embedding import EMBEDDING, HeadConfig, SpeechEmbedding, fit_head

TASK = "yes,no,up"


@pytest.fixture(scope="module")
def embed() -> SpeechEmbedding:
    return SpeechEmbedding()


@pytest.fixture(scope="module")
def fake_data(tmp_path_factory) -> Path:
    return make_fake_dataset(tmp_path_factory.mktemp("data") / "sc", ["yes", "no", "up", "cat"],
                             speakers=4, per_speaker=2, with_lists=True)


def test_nine_embeddings_per_clip_each_clip_on_its_own(embed):
    audio = np.stack([speech_like(seed=s) for s in range(3)])
    out = embed(audio)
    assert out.shape == (3, 9, EMBEDDING) and out.dtype == np.float32
    assert np.isfinite(out).all() and not np.allclose(out[0], out[1], atol=1e-3)
    # batch-independent
    np.testing.assert_allclose(embed(audio[1:2])[0], out[1], rtol=1e-3, atol=1e-2)
    with pytest.raises(ValueError, match="need \\(N, >= 0.8 s\\) audio"):
        embed(audio[0])


def test_a_head_on_the_embedding_tells_real_words_of_unseen_speakers_apart(real_data, embed):
    """Trained on ~200 clips of yes / no / up, it labels other speakers' clips of them."""
    dataset = load_dataset(DataConfig(real_data, task="yes,no,up", silence_pct=0,
                                      unknown_pct=0, val_pct=10, test_pct=20))
    index = {label: i for i, label in enumerate(dataset.labels)}

    def split(name):
        examples = dataset.split(name)
        waves = load_waveforms(dataset, examples, 16000, 16000)
        return embed(waves), np.array([index[e.label] for e in examples])

    (x, y), (tx, ty) = split("train"), split("test")
    head = fit_head(x, y, len(dataset.labels), config=HeadConfig(epochs=15))
    probs = head.predict(tx[..., None], verbose=0)
    np.testing.assert_allclose(probs.sum(1), 1.0, atol=1e-5)
    assert len(ty) >= 30 and np.mean(probs.argmax(1) == ty) >= 0.9


def test_fit_head_needs_one_label_per_embedding():
    with pytest.raises(ValueError, match="3 embeddings for 2 labels"):
        fit_head(np.zeros((3, 9, EMBEDDING), np.float32), np.array([0, 1]), 2)


def test_the_teacher_scores_the_audio_the_student_hears(fake_data):
    """Without random augmentation a batch's audio is its rows' clips: the targets are the
    head's probabilities of their embeddings, mixed with the labels by the teacher weight."""
    from train.augment import AugmentConfig
    from train.train import TrainConfig, augmented_batches, load_splits, speech_embedding_teacher

    identity = AugmentConfig(noise=False, shift=False, gain=False, specaugment=False)
    config = TrainConfig(DataConfig(fake_data, task=TASK), batch_size=4, track=False,
                         augment=identity, embedding_teacher=True, teacher_weight=0.6)
    dataset = load_dataset(config.data)
    splits = load_splits(dataset, EDGE_FRONTEND, config)
    teachers = speech_embedding_teacher(splits, dataset, EDGE_FRONTEND, config, None)
    batches = augmented_batches(splits, dataset, EDGE_FRONTEND, config, teachers)
    _, y, _ = batches[0]
    rows = batches.order[:4]
    probs = teachers.models[0].predict(teachers.frontends[0](splits.train_waves[rows])[..., None],
                                       verbose=0)
    hard = np.eye(len(dataset.labels))[splits.train_y[rows]]
    np.testing.assert_allclose(y, 0.4 * hard + 0.6 * probs, atol=1e-5)


def test_kws_train_distils_from_the_speech_embedding_and_records_it(fake_data, tmp_path,
                                                                    capsys):
    out = tmp_path / "student"
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    assert main(["train", "--data", str(fake_data), "--task", TASK, "--epochs", "1",
                 "--embedding-teacher", "--out", str(out), "--tracking-uri", uri,
                 "--no-log-model", "--cache-dir", str(tmp_path / "cache"), "--json"]) == 0
    captured = capsys.readouterr()
    result = json.loads(captured.out)
    assert (out / "model.keras").is_file()
    assert "speech-embedding teacher: validation accuracy" in captured.err

    import mlflow

    params = mlflow.MlflowClient(tracking_uri=uri).get_run(result["run_id"]).data.params
    assert params["embedding_teacher"] == "True"


@pytest.mark.parametrize("resources", [False, True])
def test_kws_train_says_in_one_line_when_the_embedding_is_missing(fake_data, tmp_path,
                                                                 resources):
    """Without openwakeword, or with a release that does not ship the ONNX models."""
    fake = tmp_path / "site"
    if resources:
        (fake / "openwakeword" / "resources" / "models").mkdir(parents=True)
        (fake / "openwakeword" / "__init__.py").write_text("")
    # None in sys.modules: not installed; a folder first on the path: another release
    hide = ("sys.path.insert(0, sys.argv[1])" if resources
            else "sys.modules['openwakeword'] = None")
    code = f"import sys; {hide}; from kws.cli import main; sys.exit(main(sys.argv[2:]))"
    done = subprocess.run([sys.executable, "-c", code, str(fake), "train", "--data",
                           str(fake_data), "--task", TASK, "--no-mlflow",
                           "--embedding-teacher", "--out", str(tmp_path / "s")],
                          capture_output=True, text=True, cwd=ROOT, timeout=300)
    err = [line for line in done.stderr.splitlines() if line.startswith("error")]
    assert done.returncode == 2 and len(err) == 1, done.stderr
    assert ("no embedding_model.onnx" if resources else "needs openwakeword 0.4.0") in err[0]
    assert not (tmp_path / "s").exists()


def test_the_speech_embedding_teacher_needs_augmented_training(fake_data, tmp_path):
    from train.train import TrainConfig, train

    with pytest.raises(KwsError, match="speech-embedding teacher hears the training audio"):
        train(TrainConfig(DataConfig(fake_data, task=TASK), epochs=1, track=False,
                          out_dir=tmp_path / "s", verbose=0, augment=None,
                          embedding_teacher=True))


def test_the_speech_embedding_teacher_hears_16_khz_only(fake_data):
    from dataclasses import replace

    from train.train import TrainConfig, load_splits, speech_embedding_teacher

    config = TrainConfig(DataConfig(fake_data, task=TASK), track=False, embedding_teacher=True)
    dataset = load_dataset(config.data)
    splits = load_splits(dataset, EDGE_FRONTEND, config)
    with pytest.raises(KwsError, match="hears 16000 Hz audio, the model 8000 Hz"):
        speech_embedding_teacher(splits, dataset, replace(EDGE_FRONTEND, sample_rate=8000),
                                 config, None)


def test_clips_filed_under_the_wrong_word_are_flagged(real_data, tmp_path):
    """Ten `no` clips filed under `yes` among ~1,000 real clips: the out-of-fold head doubts
    them, and few of the others."""
    from benchmarks.experiments.label_noise import flag_clips

    root = tmp_path / "sc"
    moved = sorted((real_data / "no").glob("*.wav"))[::30][:10]
    for word in ("yes", "no", "up"):
        (root / word).mkdir(parents=True)
        for clip in (real_data / word).glob("*.wav"):
            if clip not in moved:
                (root / word / clip.name).symlink_to(clip)
    planted = set()
    for i, clip in enumerate(moved):  # the same speaker, an utterance number no clip has
        name = f"{clip.name.split('_nohash_')[0]}_nohash_{50 + i}.wav"
        (root / "yes" / name).symlink_to(clip)
        planted.add(f"yes/{name}")
    config = DataConfig(root, task="yes,no,up", silence_pct=0, unknown_pct=0, val_pct=10,
                        test_pct=20)
    flagged = flag_clips(config, epochs=15)
    split = load_dataset(config)
    test = {split.example_id(e) for e in split.test}
    assert not set(flagged.ids) & test  # test clips are never scored
    assert flagged.out_of_fold_accuracy > 0.85 and flagged.scored > 500
    assert len(set(flagged.ids) & (planted - test)) >= 0.7 * len(planted - test)
    assert len(set(flagged.ids) - planted) <= 0.03 * flagged.scored
    assert all(p < 0.05 for p in flagged.probabilities)
