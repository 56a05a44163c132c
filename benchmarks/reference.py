"""The MLPerf Tiny reference KWS model behind its own ``tf.signal`` front-end: the anchor.

The model (``kws_ref_model.tflite``, int8, 49 x 10 MFCC) lives outside the project, in
``../shared/models/mlperf_tiny_kws`` (or ``$KWS_REFERENCE_DIR``); its front-end, from the
reference's training code: 16 kHz, 1 s, peak-normalised waveform, ``tf.signal.stft`` (480-sample
frames, 320 hop, FFT 512, Hann) magnitude, 40 mel bins 20-4000 Hz, ``log(mel + 1e-6)``, the
first 10 ``mfccs_from_log_mel_spectrograms``. It runs through the same TFLite interpreter as
kws-edge's models. Needs TensorFlow (the ``train`` extra).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from edge_runtime.errors import KwsError
from edge_runtime.interpreter import make_interpreter

ROOT = Path(__file__).resolve().parents[1]
LABELS = ("down", "go", "left", "no", "off", "on", "right", "stop", "up", "yes", "_silence_",
          "_unknown_")
SAMPLE_RATE = 16000
CLIP = 16000
INT8_FILE = "kws_ref_model.tflite"
REFERENCE_NAME = "MLPerf Tiny reference (int8)"  # its name in the benchmarks' results
ANCHOR_ROW = "MLPerf Tiny reference (anchor)"  # its row in the experiments' pooled tables


def reference_dir() -> Path | None:
    """Where the reference model is, or None when it is not on this machine."""
    env = os.environ.get("KWS_REFERENCE_DIR")
    path = Path(env) if env else ROOT.parent / "shared" / "models" / "mlperf_tiny_kws"
    return path if (path / INT8_FILE).is_file() else None


def reference_features(waves: np.ndarray) -> np.ndarray:
    """``(N, 16000)`` float waveforms -> ``(N, 49, 10)`` float32 MFCC, as the reference does."""
    x = np.asarray(waves, dtype=np.float32).reshape(-1, CLIP)
    return tf_reference_features(x).numpy().astype(np.float32)


def tf_reference_features(x):
    """The same in TensorFlow ops only (so that a ``tf.function`` can trace it)."""
    import tensorflow as tf

    peak = tf.reduce_max(tf.abs(x), axis=-1, keepdims=True)
    x = x / tf.where(peak > 0, peak, tf.ones_like(peak))
    stft = tf.signal.stft(x, frame_length=480, frame_step=320, fft_length=512,
                          window_fn=tf.signal.hann_window)
    mel_matrix = tf.signal.linear_to_mel_weight_matrix(40, 257, SAMPLE_RATE, 20.0, 4000.0)
    mel = tf.tensordot(tf.abs(stft), mel_matrix, 1)
    return tf.signal.mfccs_from_log_mel_spectrograms(tf.math.log(mel + 1e-6))[..., :10]


class ReferenceModel:
    """The reference int8 model: ``predict_waves`` gives class probabilities per clip."""

    labels = list(LABELS)
    sample_rate = SAMPLE_RATE
    clip_samples = CLIP
    name = "mlperf_tiny_reference"

    def __init__(self, folder: Path | None = None, num_threads: int = 1) -> None:
        folder = folder or reference_dir()
        if folder is None or not (Path(folder) / INT8_FILE).is_file():
            raise KwsError("the MLPerf Tiny reference model is not on this machine "
                           "(../shared/models/mlperf_tiny_kws or $KWS_REFERENCE_DIR)")
        self.path = Path(folder) / INT8_FILE
        self.size_bytes = self.path.stat().st_size
        self.interpreter = make_interpreter(self.path.read_bytes(), num_threads)
        self.interpreter.allocate_tensors()
        self._in = self.interpreter.get_input_details()[0]
        self._out = self.interpreter.get_output_details()[0]

    def predict_features(self, features: np.ndarray) -> np.ndarray:
        """Probabilities for one ``(49, 10)`` MFCC matrix."""
        scale, zero = self._in["quantization"]
        q = np.clip(np.round(features / scale + zero), -128, 127).astype(np.int8)
        self.interpreter.set_tensor(self._in["index"], q.reshape(self._in["shape"]))
        self.interpreter.invoke()
        scale, zero = self._out["quantization"]
        raw = self.interpreter.get_tensor(self._out["index"]).reshape(-1).astype(np.float32)
        return (raw - zero) * scale

    def predict_waves(self, waves: np.ndarray, batch: int = 1024) -> np.ndarray:
        """``(N, len(labels))`` probabilities of ``(N, 16000)`` clips."""
        out = np.zeros((len(waves), len(self.labels)), dtype=np.float32)
        for start in range(0, len(waves), batch):
            for i, f in enumerate(reference_features(waves[start : start + batch])):
                out[start + i] = self.predict_features(f)
        return out
