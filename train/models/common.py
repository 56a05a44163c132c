"""Pieces shared by the architectures: the model input, the fixed feature normalisation and
its removal (for the converter and for ensembles), the clip-mean removal, the classifier's
last layer, and, for untrained models (their size and speed), trained-looking BatchNorm terms
and calibration features of tones."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edge_runtime.frontend import FrontendConfig, mfcc

# Keras' default BatchNorm momentum (0.99) needs several hundred steps before the moving
# statistics used at inference match the batch statistics; on a few thousand clips (30-odd
# steps an epoch) the validation accuracy then stays at chance for many epochs. 0.9 settles
# within one epoch and costs nothing on the full data set.
BN_MOMENTUM = 0.9


@dataclass(frozen=True)
class FeatureStats:
    """Per-coefficient mean and variance of training MFCCs (over examples and frames)."""

    mean: tuple[float, ...]
    variance: tuple[float, ...]

    @classmethod
    def of(cls, features: np.ndarray) -> FeatureStats:
        """Statistics of ``(N, frames, n_mfcc[, 1])`` features."""
        x = np.asarray(features, dtype=np.float64)
        x = x.reshape(-1, x.shape[2] if x.ndim == 4 else x.shape[-1])
        return cls(tuple(float(v) for v in x.mean(axis=0)),
                   tuple(float(max(v, 1e-6)) for v in x.var(axis=0)))

    def to_dict(self) -> dict:
        return {"mean": list(self.mean), "variance": list(self.variance)}


def model_input(frontend: FrontendConfig, stats: FeatureStats | None = None):
    """The ``(frames, n_mfcc, 1)`` float32 input and, with ``stats``, its normalised form.

    The normalisation is a ``keras.layers.Normalization`` with fixed constants (no weights,
    no parameters): ``(x - mean) / sqrt(variance)`` per MFCC coefficient, saved in the model's
    config, so raw front-end features go straight into the model.
    """
    import keras

    inputs = keras.Input((*frontend.feature_shape, 1), name="mfcc")
    if stats is None:
        return inputs, inputs
    if len(stats.mean) != frontend.n_features:
        raise ValueError(f"stats have {len(stats.mean)} coefficients, the front-end "
                         f"{frontend.n_features}")
    norm = keras.layers.Normalization(axis=2, mean=list(stats.mean),
                                      variance=list(stats.variance), name="normalize")
    return inputs, norm(inputs)


def remove_clip_mean(x, name: str = "clip_mean"):
    """``x`` minus each coefficient's mean over the clip's frames (cepstral mean normalisation).

    A microphone or a voice that shifts a coefficient for a whole clip then no longer moves the
    input. Two layers the converter keeps small: an average pool over the frames (one value per
    coefficient and channel) and a broadcast subtraction, both int8 kernels.
    """
    from keras import layers

    mean = layers.AveragePooling2D((int(x.shape[1]), 1), name=name)(x)
    return layers.Subtract(name=f"{name}_removed")([x, mean])


def split_normalization(model) -> tuple[object, dict]:
    """Take a leading per-coefficient ``Normalization`` layer out of a Keras model.

    Returns the rest of the model and ``{"mean": [...], "std": [...]}`` for the manifest (the
    runtime normalises before quantising). Inside an int8 model the normalisation would come
    after the input quantisation, whose one scale must then span raw MFCCs (c0 reaches about
    -600 on silence while the other coefficients stay within +-50) and leaves few steps for
    the small coefficients. Models without such a layer come back unchanged, with ``{}``.
    """
    import keras

    layers = [layer for layer in model.layers if not isinstance(layer, keras.layers.InputLayer)]
    first = layers[0] if layers else None
    if not isinstance(first, keras.layers.Normalization) or first.input is not model.inputs[0]:
        return model, {}
    mean = np.asarray(first.mean, dtype=np.float64).reshape(-1)
    std = np.maximum(np.sqrt(np.asarray(first.variance, dtype=np.float64).reshape(-1)),
                     keras.backend.epsilon())  # as Normalization.call does
    rest = keras.Model(first.output, model.outputs, name=f"{model.name}_without_norm")
    return rest, {"mean": [float(v) for v in mean], "std": [float(v) for v in std]}


def dense_activation(layer) -> str | None:
    """The activation's name of a ``Dense`` layer ("softmax", "linear", ...); None for any other
    layer. A classifier's last layer is a softmax Dense; its logits are that Dense made linear."""
    if layer.__class__.__name__ != "Dense":
        return None
    return getattr(layer.activation, "__name__", None)


def trained_looking_batchnorm(model, seed: int = 0):
    """Give every BatchNorm of ``model`` random statistics and affine terms, as after training
    (all different: the converter shares identical constant buffers), and return it."""
    import keras

    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            n = layer.gamma.shape[0]
            layer.set_weights([rng.uniform(0.5, 2, n), rng.normal(0, 0.5, n),
                               rng.normal(0, 0.5, n), rng.uniform(0.5, 3, n)])
    return model


def tone_features(config: FrontendConfig, n: int = 32, seed: int = 0) -> np.ndarray:
    """``(n, frames, n_features, 1)`` features of ``n`` tones in noise (random pitch and
    levels): calibration data for models that need no real speech (tests, speed)."""
    rng = np.random.default_rng(seed)
    t = np.arange(config.clip_samples) / config.sample_rate
    clips = [
        (rng.uniform(0.01, 0.5) * np.sin(2 * np.pi * rng.uniform(100, 900) * t)
         + rng.uniform(0.001, 0.05) * rng.standard_normal(t.size)).astype(np.float32)
        for _ in range(n)
    ]
    return mfcc(np.stack(clips), config)[..., None]
