"""Keras 3 -> TFLite: a true float32 model and a full-integer int8 model."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

QUANTIZATIONS = ("float32", "int8", "dynamic")


def to_tflite(model, quantization: str = "float32",
              representative: Iterable[np.ndarray] | None = None) -> bytes:
    """Convert a Keras 3 model (``from_keras_model``, which freezes the weights).

    ``float32`` sets no optimisation flag at all; ``int8`` is full-integer (int8 input
    and output, ``TFLITE_BUILTINS_INT8`` only) calibrated on ``representative`` feature
    matrices; ``dynamic`` is dynamic-range weight quantisation.
    """
    import tensorflow as tf

    if quantization not in QUANTIZATIONS:
        raise ValueError(f"quantization must be one of {QUANTIZATIONS}")
    shape = [1, *model.input_shape[1:]]
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    if quantization == "dynamic":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    elif quantization == "int8":
        if representative is None:
            raise ValueError("int8 conversion needs representative data")
        samples = [np.asarray(x, dtype=np.float32).reshape(shape) for x in representative]
        if not samples:
            raise ValueError("int8 conversion needs at least one representative sample")
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = lambda: ([s] for s in samples)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = tf.int8
        converter.inference_output_type = tf.int8
    return converter.convert()
