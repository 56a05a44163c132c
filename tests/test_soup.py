"""Weight averaging (train.soup) on real Keras models saved and loaded as training does."""

from __future__ import annotations

import numpy as np
import pytest

from edge_runtime.errors import KwsError
from edge_runtime.frontend import EDGE_FRONTEND
from tests.model_factory import LABELS, tiny_keras_model
from train.settings import MODEL_FILENAME, ModelSettings
from train.soup import average_models, soup_weights

pytest.importorskip("keras")


def saved_model(folder, seed: int, labels=LABELS):
    model = tiny_keras_model(EDGE_FRONTEND, len(labels), seed)
    rng = np.random.default_rng(seed)  # every weight set, as after training (variances > 0)
    model.set_weights([rng.uniform(0.5, 2.0, w.shape) for w in model.get_weights()])
    folder.mkdir(parents=True)
    model.save(folder / MODEL_FILENAME)
    ModelSettings("tiny_test", list(labels), EDGE_FRONTEND, run_id=f"run{seed}",
                  metrics={"val_accuracy": 0.5}).save(folder)
    return model


def test_the_soup_is_the_weighted_mean_of_every_weight(tmp_path):
    from train.models import load_keras

    a = saved_model(tmp_path / "a", 0)
    b = saved_model(tmp_path / "b", 1)
    out = average_models([tmp_path / "a", tmp_path / "b"], tmp_path / "soup", [3, 1])
    soup = load_keras(out)
    pairs = list(zip(a.get_weights(), b.get_weights(), soup.get_weights(), strict=True))
    assert len(pairs) == 8  # conv kernel + bias, BatchNorm's four (statistics too), dense two
    for wa, wb, ws in pairs:
        assert not np.allclose(wa, wb)
        np.testing.assert_allclose(ws, 0.75 * wa + 0.25 * wb, rtol=1e-6, atol=1e-7)
    settings = ModelSettings.load(out)
    assert settings.labels == LABELS and settings.arch == "tiny_test"
    assert settings.run_id is None  # not the first ingredient's run
    assert settings.metrics == {"soup_of": [str(tmp_path / "a"), str(tmp_path / "b")],
                                "soup_weights": [0.75, 0.25]}


def test_a_soup_of_one_model_predicts_as_that_model(tmp_path):
    from train.models import load_keras

    a = saved_model(tmp_path / "a", 0)
    soup = load_keras(average_models([tmp_path / "a", tmp_path / "a"], tmp_path / "s"))
    x = np.random.default_rng(0).normal(size=(4, *EDGE_FRONTEND.feature_shape, 1))
    np.testing.assert_allclose(soup.predict(x, verbose=0), a.predict(x, verbose=0), rtol=1e-5)


def test_models_of_other_labels_do_not_mix(tmp_path):
    saved_model(tmp_path / "a", 0)
    saved_model(tmp_path / "b", 1, labels=[*LABELS[:-1], "wow"])
    with pytest.raises(KwsError, match="not averageable"):
        average_models([tmp_path / "a", tmp_path / "b"], tmp_path / "soup")
    assert not (tmp_path / "soup").exists()


@pytest.mark.parametrize("weights", [[1.0], [1.0, -1.0], [0.0, 0.0], [1.0, float("nan")]])
def test_unusable_weights_are_refused(weights):
    with pytest.raises(KwsError):
        soup_weights(2, weights)


def test_weights_are_normalised_and_default_to_uniform():
    np.testing.assert_allclose(soup_weights(4, None), [0.25] * 4)
    np.testing.assert_allclose(soup_weights(2, [1, 3]), [0.25, 0.75])
