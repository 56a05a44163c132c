"""Finds a TFLite interpreter: ai-edge-litert, else tflite-runtime, else TensorFlow.

``KWS_INTERPRETER=litert|tflite_runtime|tensorflow`` forces one. ``KWS_OP_RESOLVER=ref``
selects TFLite's reference kernels: slower, but bit-exact across CPU architectures (the
default optimised/XNNPACK kernels of x86 and arm64 may differ by a few int8 output steps).
"""

from __future__ import annotations

import contextlib
import importlib
import os
import sys
import tempfile

import numpy as np

from edge_runtime.errors import KwsError

_BACKENDS = {
    "litert": "ai_edge_litert.interpreter",
    "tflite_runtime": "tflite_runtime.interpreter",
    "tensorflow": "tensorflow.lite.python.interpreter",
}


def _backend():
    """(name, module) of the first interpreter backend that imports."""
    forced = os.environ.get("KWS_INTERPRETER")
    if forced and forced not in _BACKENDS:
        raise KwsError(f"KWS_INTERPRETER={forced!r}: choose one of {', '.join(_BACKENDS)}")
    names = [forced] if forced else list(_BACKENDS)
    for name in names:
        try:
            module = importlib.import_module(_BACKENDS[name])
        except ImportError:
            continue
        return name, module
    raise KwsError(
        "no TFLite interpreter: pip install 'kws-edge[edge]' (ai-edge-litert)"
        + (f" (KWS_INTERPRETER={forced} is not installed)" if forced else "")
    )


def interpreter_class() -> tuple[str, type]:
    """(backend name, Interpreter class) of the first backend that imports."""
    name, module = _backend()
    return name, module.Interpreter


def _resolver_args(module) -> dict:
    choice = os.environ.get("KWS_OP_RESOLVER", "default")
    if choice == "default":
        return {}
    if choice != "ref":
        raise KwsError(f"KWS_OP_RESOLVER={choice!r}: choose default or ref")
    return {"experimental_op_resolver_type": module.OpResolverType.BUILTIN_REF}


@contextlib.contextmanager
def _without_delegate_banner():
    """Drop the native "INFO: Created TensorFlow Lite XNNPACK delegate" line from stderr
    (it would precede every ``error:`` line); anything else native code prints is kept."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):
        yield
        return
    with tempfile.TemporaryFile() as capture:
        os.dup2(capture.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            for line in capture.read().decode(errors="replace").splitlines():
                if "XNNPACK delegate" not in line:
                    print(line, file=sys.stderr)


def make_interpreter(content: bytes, num_threads: int = 1, name: str = "model"):
    """An allocated interpreter for model bytes; bad bytes raise :class:`KwsError`."""
    _, module = _backend()
    extra = _resolver_args(module)
    try:
        with _without_delegate_banner():
            interpreter = module.Interpreter(model_content=content, num_threads=num_threads,
                                             **extra)
            interpreter.allocate_tensors()
    except (ValueError, RuntimeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise KwsError(f"{name}: not a usable TFLite model ({first})") from None
    return interpreter


def _io_entry(detail: dict) -> dict:
    scale, zero_point = detail.get("quantization", (0.0, 0))
    return {
        "shape": [int(x) for x in detail["shape"]],
        "dtype": np.dtype(detail["dtype"]).name,
        "scale": float(scale),
        "zero_point": int(zero_point),
    }


def describe_io(content: bytes) -> dict:
    """Input and output tensor shape, dtype and quantisation of model bytes."""
    interpreter = make_interpreter(content)
    return {
        "input": _io_entry(interpreter.get_input_details()[0]),
        "output": _io_entry(interpreter.get_output_details()[0]),
    }
