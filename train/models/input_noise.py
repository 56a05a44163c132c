"""Training-time input noise in front of a model (``ds_cnn_w_qn``): quantisation-robust input.

The int8 model's input is raw MFCC quantised per tensor: its range (about -630..180) gives
steps of ~3.2, coarse for the higher coefficients (std 7-10), which costs about half a point by
itself. Noise of the same size (uniform rounding error: std 3.2/sqrt(12) ~ 0.9) during
training makes the model indifferent to it. The ``GaussianNoise`` layer is active in training
only and converts to nothing. (Normalised input, ``--normalize``, fixed the same problem at
its root and is what the shipped recipe uses.)
"""

from __future__ import annotations

from collections.abc import Callable

STD = 1.0  # in raw MFCC units


def with_input_noise(build: Callable, n_labels: int, stats=None, name: str = "model",
                     std: float = STD):
    """``build``'s model behind a ``GaussianNoise(std)`` layer."""
    import keras

    core = build(n_labels, stats=stats)
    inputs = keras.Input(core.input_shape[1:], name="mfcc")
    noisy = keras.layers.GaussianNoise(std, name="input_noise")(inputs)
    return keras.Model(inputs, core(noisy), name=name)
