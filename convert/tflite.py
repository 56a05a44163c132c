"""Keras 3 -> TFLite: a true float32 model, a full-integer int8 model, optionally dynamic-range.

Also reads converted bytes back (op list, tensor types) to check what the converter made:
``quantized_tensors`` must be empty for the float32 file, ``unfolded_batchnorm`` empty for all.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import tempfile
from collections.abc import Iterable, Iterator
from typing import TextIO

import numpy as np

QUANTIZATIONS = ("float32", "int8", "dynamic")
METHODS = ("auto", "keras", "frozen")
_QUANTIZED_DTYPES = (np.int8, np.uint8, np.int16)


def normalize(features: np.ndarray, norm: dict) -> np.ndarray:
    """Apply a ``split_normalization`` result to ``(..., frames, n_mfcc[, 1])`` features."""
    if not norm:
        return features
    x = np.asarray(features, dtype=np.float32)
    shape = (-1, 1) if x.shape[-1] == 1 and x.ndim == 4 else (-1,)
    mean = np.asarray(norm["mean"], np.float32).reshape(shape)
    std = np.asarray(norm["std"], np.float32).reshape(shape)
    return (x - mean) / std


def to_tflite(model, quantization: str = "float32",
              representative: Iterable[np.ndarray] | None = None,
              method: str = "auto", per_tensor: bool = False) -> bytes:
    """Convert a Keras 3 model to TFLite bytes.

    ``float32`` sets no optimisation flag at all; ``int8`` is full-integer (int8 input
    and output, ``TFLITE_BUILTINS_INT8`` only) calibrated on ``representative`` feature
    matrices; ``dynamic`` is dynamic-range weight quantisation. Weights are quantised per
    output channel or, with ``per_tensor``, with one scale per tensor: a per-channel tensor
    stores a float scale and an int64 zero point for each channel, which in a network of
    many narrow layers (BC-ResNet) is most of the file.

    The input has batch size 1. ``method``: ``keras`` uses ``from_keras_model`` (which
    freezes the weights); ``frozen`` traces the model into a concrete function and folds
    its variables into constants first (a resource variable left in the graph breaks int8
    calibration with READ_VARIABLE); ``auto`` tries ``keras``, then ``frozen``.
    """
    import tensorflow as tf

    if quantization not in QUANTIZATIONS:
        raise ValueError(f"quantization must be one of {QUANTIZATIONS}")
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}")
    shape = [1, *model.input_shape[1:]]
    samples = None
    if quantization == "int8":
        if representative is None:
            raise ValueError("int8 conversion needs representative data")
        samples = [np.asarray(x, dtype=np.float32).reshape(shape) for x in representative]
        if not samples:
            raise ValueError("int8 conversion needs at least one representative sample")

    def convert(converter) -> bytes:
        if quantization == "dynamic":
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
        elif quantization == "int8":
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
            converter.representative_dataset = lambda: ([s] for s in samples)
            converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
            converter.inference_input_type = tf.int8
            converter.inference_output_type = tf.int8
        if per_tensor and quantization != "float32":
            converter._experimental_disable_per_channel = True  # no public switch (TF 2.21)
        return strip_names(converter.convert())

    # Keras' export prints its endpoints and TensorFlow's converter logs from C++: both are
    # kept out of the terminal, and shown only when the conversion fails
    if method in ("auto", "keras"):
        try:
            with captured_output(replay=method == "keras"):
                return convert(tf.lite.TFLiteConverter.from_keras_model(_batch_one(model)))
        except Exception as exc:  # the converter raises many types; retry once, frozen
            if method == "keras":
                raise
            print(f"from_keras_model failed ({type(exc).__name__}): retrying with frozen "
                  "variables", file=sys.stderr)
    with captured_output():
        return convert(_frozen_converter(model, shape))


def strip_names(content: bytes) -> bytes:
    """The model without tensor names, descriptions and signatures (the runtime uses none).

    The converter names every tensor after the fused Keras ops, often hundreds of bytes each:
    on a ~12k-parameter model with ~200 tensors that is a fifth of the file.
    """
    from tensorflow.lite.tools import flatbuffer_utils

    model = flatbuffer_utils.read_model_from_bytearray(bytearray(content))
    flatbuffer_utils.strip_strings(model)
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))


@contextlib.contextmanager
def captured_output(tail_lines: int = 40, replay: bool = True) -> Iterator[None]:
    """Send stdout and stderr, Python's and the C libraries' (file descriptors 1 and 2), to a
    temporary file; if the block raises (and ``replay``), print its last lines to stderr.

    Log handlers created inside the block (TensorFlow's, on its first conversion) write to the
    temporary file's stream; they are pointed back at stderr when it closes.
    """
    sys.stdout.flush()
    sys.stderr.flush()
    with tempfile.TemporaryFile() as sink, open(os.dup(sink.fileno()), "w") as text:
        saved = [os.dup(1), os.dup(2)]
        failed = False
        try:
            os.dup2(sink.fileno(), 1)
            os.dup2(sink.fileno(), 2)
            with contextlib.redirect_stdout(text), contextlib.redirect_stderr(text):
                yield
        except BaseException:
            failed = True
            raise
        finally:
            text.flush()
            _reattach_log_handlers(text, sys.stderr)
            for fd, copy in zip((1, 2), saved, strict=True):
                os.dup2(copy, fd)
                os.close(copy)
            if failed and replay:
                sink.seek(0)
                lines = sink.read().decode(errors="replace").splitlines()[-tail_lines:]
                print("\n".join(lines), file=sys.stderr)


def _reattach_log_handlers(old: object, new: TextIO) -> None:
    """Every logging stream handler writing to ``old`` writes to ``new`` instead."""
    loggers = [logging.getLogger(), *(logger for logger in logging.Logger.manager.loggerDict
                                      .values() if isinstance(logger, logging.Logger))]
    for logger in loggers:
        for handler in logger.handlers:
            if isinstance(handler, logging.StreamHandler) and handler.stream is old:
                handler.setStream(new)


def _batch_one(model):
    """The model behind a batch-1 input: a static graph (no SHAPE/PACK/RESHAPE for the
    batch dimension), as microcontroller runtimes want it."""
    import keras

    x = keras.Input(batch_shape=(1, *model.input_shape[1:]), dtype="float32")
    return keras.Model(x, model(x))


def _frozen_converter(model, shape: list[int]):
    """A converter for the model traced at ``shape`` with every variable made a constant."""
    import tensorflow as tf
    from tensorflow.python.framework.convert_to_constants import (
        convert_variables_to_constants_v2,
    )

    function = tf.function(lambda x: model(x, training=False))
    concrete = function.get_concrete_function(tf.TensorSpec(shape, tf.float32))
    frozen = convert_variables_to_constants_v2(concrete)
    return tf.lite.TFLiteConverter.from_concrete_functions([frozen])


def inspect_interpreter(content: bytes):
    """An interpreter without the default (XNNPACK) delegate, so ops and tensors stay visible."""
    from edge_runtime.errors import KwsError
    from edge_runtime.interpreter import interpreter_class

    _, cls = interpreter_class()
    resolver = sys.modules[cls.__module__].OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
    try:
        interpreter = cls(model_content=content, experimental_op_resolver_type=resolver)
        interpreter.allocate_tensors()
    except (ValueError, RuntimeError) as exc:
        raise KwsError(f"not a usable TFLite model ({exc})") from None
    return interpreter


def op_names(content: bytes) -> list[str]:
    """The builtin ops of a model, in execution order (e.g. ``CONV_2D``)."""
    return [op["op_name"] for op in inspect_interpreter(content)._get_ops_details()]


def quantized_tensors(content: bytes) -> list[str]:
    """Names of tensors stored as int8/uint8/int16 or carrying quantisation parameters."""
    names = []
    for t in inspect_interpreter(content).get_tensor_details():
        scales = t.get("quantization_parameters", {}).get("scales", np.zeros(0))
        if np.dtype(t["dtype"]).type in _QUANTIZED_DTYPES or np.size(scales) > 0:
            names.append(t["name"])
    return names


def unfolded_batchnorm(content: bytes) -> list[str]:
    """Layers whose output is scaled or shifted by a per-channel constant (MUL/ADD): an
    unfolded BatchNorm.

    A folded BatchNorm leaves nothing after the convolution; an ADD of two computed tensors
    (a residual connection) is not counted, nor is a constant that varies along another axis
    than the channels (e.g. SubSpectralNorm's per-sub-band scale, which no kernel can hold).
    """
    interpreter = inspect_interpreter(content)
    ops = interpreter._get_ops_details()
    shapes = {int(t["index"]): tuple(t["shape"]) for t in interpreter.get_tensor_details()}

    def per_channel(index: int) -> bool:
        return all(d == 1 for d in shapes.get(index, ())[:-1])

    produced = {int(t) for op in ops for t in op["outputs"]}
    computed = produced | {int(d["index"]) for d in interpreter.get_input_details()}
    consumers: dict[int, list[dict]] = {}
    for op in ops:
        for t in op["inputs"]:
            consumers.setdefault(int(t), []).append(op)
    found = []
    for op in ops:
        if op["op_name"] not in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED"):
            continue
        for out in op["outputs"]:
            for user in consumers.get(int(out), []):
                others = [int(t) for t in user["inputs"] if int(t) != int(out) and t >= 0]
                constants = [t for t in others if t not in computed]
                if user["op_name"] in ("MUL", "ADD") and any(map(per_channel, constants)):
                    found.append(f"{op['op_name']}#{op['index']} -> {user['op_name']}")
    return found
