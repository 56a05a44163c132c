"""The teacher-on-streams diagnostic: its model adapter and its refusals."""

from __future__ import annotations

import numpy as np

from benchmarks.experiments.teacher_streams import TeacherModel, main
from benchmarks.rejection import reference_posteriors
from edge_runtime.detector import DetectorConfig
from tests.conftest import speech_like
from train.distill import Teachers
from train.speech_embedding import HeadConfig, SpeechEmbedding, fit_head

LABELS = ["_silence_", "_unknown_", "yes"]


def test_the_teacher_scores_stream_windows_as_the_reference_is_scored():
    embed = SpeechEmbedding()
    clips = np.stack([speech_like(seed=s) for s in range(6)])
    head = fit_head(embed(clips), np.array([0, 1, 2, 0, 1, 2]), 3, config=HeadConfig(epochs=1))
    model = TeacherModel(Teachers([head], 0.5, [embed]), LABELS, 16000, 16000)
    signal = np.concatenate([speech_like(seconds=1.5, seed=9), np.zeros(8000, np.float32)])
    times, probs = reference_posteriors(model, signal, DetectorConfig())
    assert probs.shape == (len(times), 3) == (11, 3)  # one 1-s window per 100 ms hop
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(times[:2], [0.5, 0.6])


def test_an_experiment_without_the_teacher_is_refused(tmp_path, capsys):
    assert main(["speech_ema_150_xv", "--out", str(tmp_path)]) == 2
    assert main(["no_such_run", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and all(x.startswith("error: ") for x in err)
    assert "not an experiment with a speech-embedding teacher" in err[0]
    assert not any(tmp_path.iterdir())
