"""One-file ensembles: trained models of one set of mel bands, their predictions averaged.

Models of two families err on different clips (on validation here the mean of a DS-CNN's and
a BC-ResNet's predictions scored 1.5-2 points above either; two DS-CNN runs together about
0.5), but a device runs one file. :func:`merge_models` builds one Keras model whose input is
the members' common log-mel energies (dB): a log-mel member reads them as they are, an MFCC
member through a fixed Dense layer that is the front-end's own orthonormal DCT-II (the MFCC
are the DCT of exactly these log-mel energies). Each member's input normalisation is folded
into that layer (or a fixed per-band scale and shift), the ensemble's own (the first
normalised log-mel member's, else none) leads the model, so that the converter moves it into
the manifest. The output is the mean of the members' softmax outputs (``combine="probabilities"``)
or the softmax of the mean of their logits (``"logits"``: the normalised geometric mean of
their probabilities, high for a keyword only where every member gives it some weight).

Members must share the labels and every front-end setting but ``features`` and ``n_mfcc``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np

from edge_runtime.errors import KwsError
from edge_runtime.frontend import FrontendConfig, dct_matrix
from train.settings import MODEL_FILENAME, ModelSettings

AVERAGE_LAYER = "ensemble_mean"  # the output: the mean probability, or softmax of mean logit
COMBINES = ("probabilities", "logits")


def log_mel_of(frontend: FrontendConfig) -> FrontendConfig:
    """The log-mel front-end whose DCT gives ``frontend``'s MFCC (itself when log-mel)."""
    return replace(frontend, features="log_mel", n_mfcc=FrontendConfig.n_mfcc)


def check_members(settings: Sequence[ModelSettings], folders: Sequence[Path]) -> FrontendConfig:
    """The members' common log-mel front-end; KwsError when they cannot share one input."""
    if len(settings) < 2:
        raise KwsError("an ensemble needs at least 2 models")
    first = settings[0]
    common = log_mel_of(first.frontend)
    for s, folder in zip(settings[1:], folders[1:], strict=True):
        if list(s.labels) != list(first.labels):
            raise KwsError(f"{folder}: labels {s.labels} differ from {folders[0]}'s")
        if log_mel_of(s.frontend) != common:
            raise KwsError(f"{folder}: its mel bands, window or clip differ from "
                           f"{folders[0]}'s: the models cannot share one log-mel input")
    return common


def _norm(stats: dict, n: int) -> tuple[np.ndarray, np.ndarray]:
    """``(mean, std)`` of a ``split_normalization`` result (zeros and ones when empty)."""
    if not stats:
        return np.zeros(n), np.ones(n)
    return np.asarray(stats["mean"], np.float64), np.asarray(stats["std"], np.float64)


def mfcc_layer_weights(frontend: FrontendConfig, inner: dict, outer: dict) -> list[np.ndarray]:
    """Kernel ``(n_mels, n_mfcc)`` and bias of the Dense layer that turns log-mel energies
    normalised by ``outer`` into ``frontend``'s MFCC normalised by ``inner``."""
    dct = dct_matrix(frontend.n_mels, frontend.n_mfcc).astype(np.float64)  # (n_mfcc, n_mels)
    m0, s0 = _norm(outer, frontend.n_mels)
    mu, sigma = _norm(inner, frontend.n_mfcc)
    kernel = (dct * s0[None, :]).T / sigma[None, :]
    bias = (dct @ m0 - mu) / sigma
    return [kernel.astype(np.float32), bias.astype(np.float32)]


def _member_input(x, s: ModelSettings, inner: dict, outer: dict, index: int):
    """The tensor member ``index`` reads, made from the ensemble's (normalised) log-mel."""
    import keras
    from keras import layers

    frames, n_mels = s.frontend.n_frames, s.frontend.n_mels
    if s.frontend.features == "mfcc":
        y = layers.Reshape((frames, n_mels), name=f"member{index}_frames")(x)
        dense = layers.Dense(s.frontend.n_mfcc, trainable=False, name=f"member{index}_dct")
        y = dense(y)
        dense.set_weights(mfcc_layer_weights(s.frontend, inner, outer))
        return layers.Reshape((frames, s.frontend.n_mfcc, 1), name=f"member{index}_mfcc")(y)
    m0, s0 = _norm(outer, n_mels)
    mu, sigma = _norm(inner, n_mels)
    if np.allclose(m0, mu) and np.allclose(s0, sigma):
        return x
    # (x * s0 + m0 - mu) / sigma, as a fixed Normalization: (x - mean) / sqrt(variance)
    return keras.layers.Normalization(axis=2, mean=list((mu - m0) / s0),
                                      variance=list((sigma / s0) ** 2),
                                      name=f"member{index}_normalize")(x)


def logits_of(member, name: str):
    """``member`` (a loaded model ending in a softmax Dense) with its logits as output."""
    import keras

    from train.models.common import dense_activation

    last = member.layers[-1]
    if dense_activation(last) != "softmax":
        raise KwsError(f"{name}: its last layer {last.name!r} is not a softmax Dense: "
                       "no logits to average")
    dense = keras.layers.Dense(last.units, name=f"{last.name}_logits")
    out = dense(last.input)
    dense.set_weights(last.get_weights())
    return keras.Model(member.inputs[0], out, name=member.name)


def merge_models(folders: Sequence[Path], out_dir: Path,
                 combine: str = "probabilities") -> Path:
    """Write the one-file ensemble of the models in ``folders`` (``model.keras`` +
    ``model_settings.json`` each) to ``out_dir``; returns ``out_dir``."""
    import keras

    from train.models import load_keras
    from train.models.common import split_normalization

    if combine not in COMBINES:
        raise KwsError(f"combine must be one of {', '.join(COMBINES)}, got {combine!r}")
    folders = [Path(f) for f in folders]
    settings = [ModelSettings.load(f) for f in folders]
    frontend = check_members(settings, folders)
    loaded = [load_keras(f) for f in folders]
    if combine == "logits":
        loaded = [logits_of(m, str(f)) for m, f in zip(loaded, folders, strict=True)]
    cores, norms = zip(*(split_normalization(m) for m in loaded), strict=True)
    outer = next((n for s, n in zip(settings, norms, strict=True)
                  if s.frontend.features == "log_mel" and n), {})
    inputs = keras.Input((*frontend.feature_shape, 1), name="log_mel")
    x = inputs
    if outer:
        x = keras.layers.Normalization(axis=2, mean=outer["mean"],
                                       variance=list(np.square(outer["std"])),
                                       name="normalize")(inputs)
    outputs = []
    for i, (s, core, inner) in enumerate(zip(settings, cores, norms, strict=True)):
        member = keras.Model(core.inputs[0], core.outputs[0], name=f"member{i}_{s.arch}")
        outputs.append(member(_member_input(x, s, inner, outer, i)))
    if combine == "logits":
        mean = keras.layers.Average(name="ensemble_logit_mean")(outputs)
        out = keras.layers.Softmax(name=AVERAGE_LAYER)(mean)
    else:
        out = keras.layers.Average(name=AVERAGE_LAYER)(outputs)
    model = keras.Model(inputs, out, name="ensemble")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save(out_dir / MODEL_FILENAME)
    data = replace(settings[0].data, normalized=bool(outer))
    ModelSettings("+".join(s.arch for s in settings), list(settings[0].labels), frontend,
                  metrics={"ensemble_of": [str(f) for f in folders], "ensemble_combine": combine},
                  data=data).save(out_dir)
    return out_dir


def members(model) -> list | None:
    """The member models of a :func:`merge_models` ensemble (None: not an ensemble)."""
    last = model.layers[-1]
    if last.name != AVERAGE_LAYER:
        return None
    import keras

    return [layer for layer in model.layers if isinstance(layer, keras.Model)]
