"""Tone 'words' for streaming tests: clips, long streams with known keyword times, a small
model trained on them, and the ``kws-edge`` command runner the streaming tests share."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from tests.conftest import ROOT

RATE = 16000
TONE_LABELS = ["_silence_", "_unknown_", "yes", "no"]
TONES = {"yes": 440.0, "no": 1500.0}


def tone_clip(label: str, rng: np.random.Generator, seconds: float = 1.0) -> np.ndarray:
    """A made-up 'word' per class: a 0.6-s tone burst (keywords), a rising chirp (unknown)
    or quiet noise (silence), placed at a random offset in the clip."""
    n = round(seconds * RATE)
    x = 0.003 * rng.standard_normal(n)
    if label != "_silence_":
        length = round(0.6 * RATE)
        start = int(rng.integers(0, n - length + 1))
        envelope = np.hanning(length)
        t = np.arange(length) / RATE
        if label == "_unknown_":
            f0 = rng.uniform(2000, 2400)
            burst = 0.4 * np.sin(2 * np.pi * (f0 * t + 1000 * t**2))
        else:
            f = TONES[label] * rng.uniform(0.97, 1.03)
            burst = 0.4 * np.sin(2 * np.pi * f * t)
        x[start : start + length] += envelope * burst
    return x.astype(np.float32)


def train_tone_model(out_dir: Path) -> Path:
    """A small Keras model trained 6 epochs (~1 s) on tone clips -> float32 TFLite + manifest."""
    import keras

    from convert.tflite import to_tflite
    from edge_runtime.frontend import EDGE_FRONTEND, mfcc
    from edge_runtime.manifest import write_manifest
    from tests.model_factory import tiny_keras_model

    rng = np.random.default_rng(0)
    ys = np.repeat(np.arange(len(TONE_LABELS)), 60)
    x = mfcc(np.stack([tone_clip(TONE_LABELS[y], rng) for y in ys]), EDGE_FRONTEND)[..., None]
    model = tiny_keras_model(EDGE_FRONTEND, len(TONE_LABELS))
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="sparse_categorical_crossentropy")
    model.fit(x, ys, epochs=6, batch_size=16, verbose=0, shuffle=True)
    path = out_dir / "tones_float32.tflite"
    path.write_bytes(to_tflite(model, "float32", x[:32]))
    write_manifest(path, labels=TONE_LABELS, frontend=EDGE_FRONTEND, quantization="float32",
                   arch="tiny_test_tones")
    return path


def keyword_stream(seed: int = 0, n_words: int = 12):
    """Tone 'words' (keywords and unknown) at known times with quiet noise between."""
    rng = np.random.default_rng(seed)
    parts, rows, pos = [], [], 0
    for i in range(n_words):
        label = ["yes", "no", "_unknown_"][i % 3]
        gap = (0.003 * rng.standard_normal(int(rng.integers(RATE, 2 * RATE)))).astype(np.float32)
        parts += [gap, tone_clip(label, rng)]
        pos += gap.size
        if label != "_unknown_":
            rows.append((pos / RATE, (pos + RATE) / RATE, label))
        pos += RATE
    return np.concatenate(parts), rows


def error_lines(stderr: str) -> list[str]:
    """stderr without the interpreter's own INFO log lines."""
    return [x for x in stderr.strip().splitlines() if not x.startswith("INFO:")]


def run_cli(*args, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "edge_runtime.cli", *map(str, args)],
                          capture_output=True, text=True, cwd=ROOT, timeout=timeout,
                          env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
