"""Test-time shifts (benchmarks.experiments.test_time_shifts) and the shift they use."""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks.experiments.test_time_shifts import compare, main
from train.augment import shift, shifted


def test_shifted_moves_later_or_earlier_and_fills_with_zeros():
    x = np.arange(1, 11, dtype=np.float32)
    assert shifted(x, 3).tolist() == [0, 0, 0, 1, 2, 3, 4, 5, 6, 7]
    assert shifted(x, -3).tolist() == [4, 5, 6, 7, 8, 9, 10, 0, 0, 0]
    assert shifted(x, 0).tolist() == x.tolist()
    assert not shifted(x, 10).any() and not shifted(x, -12).any()
    batch = np.stack([x, 2 * x])
    assert shifted(batch, 2).tolist() == [shifted(x, 2).tolist(), shifted(2 * x, 2).tolist()]


def test_random_shift_is_shifted_by_the_offsets_it_draws():
    x = np.random.default_rng(0).standard_normal((6, 100)).astype(np.float32)
    offsets = np.random.default_rng(5).integers(-20, 21, size=(6, 1))[:, 0]
    out = shift(x, np.random.default_rng(5), 20)
    assert all(np.array_equal(out[i], shifted(x[i], int(k))) for i, k in enumerate(offsets))


@pytest.fixture(scope="module")
def tone_clips():
    """Tone words of 12 'speakers', 4 clips each (one per class)."""
    from tests.tone_streams import TONE_LABELS, tone_clip

    rng = np.random.default_rng(3)
    truths = TONE_LABELS * 12
    waves = np.stack([tone_clip(label, rng) for label in truths])
    speakers = [f"s{i // len(TONE_LABELS)}" for i in range(len(truths))]
    return waves, truths, speakers


def test_each_variant_is_scored_against_one_plain_prediction(tone_model, tone_clips):
    from convert.compare import ClipSet, evaluate_tflite

    waves, truths, speakers = tone_clips
    main_clips = np.arange(len(truths)) < 24
    rows = compare(tone_model, waves, truths, speakers, main_clips,
                   {"same": (0, 0), "gone": (900,)})
    plain, same, gone = rows
    assert plain.name == "plain" and plain.shifts_ms == (0,)
    # the plain row is the runtime's accuracy on the clips
    assert plain.accuracy == evaluate_tflite(tone_model, ClipSet(
        [str(i) for i in range(len(truths))], truths, waves)).accuracy > 0.8
    assert same.accuracy == plain.accuracy and same.difference == 0.0
    assert same.interval == (0.0, 0.0) and not same.qualifies
    # shifted by 0.9 s, most of each tone leaves the clip: clearly worse, and it does not qualify
    assert gone.difference == pytest.approx(gone.accuracy - plain.accuracy)
    assert gone.interval[0] <= gone.difference <= gone.interval[1] < 0 and not gone.qualifies


@pytest.mark.parametrize("argv, message", [
    (["--variant", "T3=-100,zero"], "--variant takes NAME=MS,MS"),
    (["--experiment", "no_such_run"], "no_such_run: no such experiment"),
])
def test_bad_arguments_get_one_line_errors(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and err.count("\n") == 1
