"""A distillation teacher on Google's speech embedding, with a head trained on the run's data.

Google's ``speech_embedding`` (Lin et al., "Training Keyword Spotters with Limited and
Synthesized Speech Data", ICASSP 2020) was pre-trained on far more speech than the data here;
openWakeWord 0.4.0 ships it with its log-mel front-end as two ONNX files (the ``teacher`` extra
installs it; later releases download them instead; its README gives the embedding Google's
Apache 2.0 licence, its own wake-word models CC BY-NC-SA, none of which is used here). Every
80 ms it turns the last 775 ms of audio into 96 numbers. A small head on those, trained on the
run's own training split, tells other speech from the keywords far better than a small model
trained on the few clips of each rare word here; as a teacher (:class:`train.distill.Teachers`)
it scores the augmented audio the student trains on. Training side only: the device never sees
it. Distilled into the shipped recipe it did not make a better small model
(benchmarks/results/shipped_model.md, ``speech_se_150_xv``).
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edge_runtime.errors import KwsError

SAMPLE_RATE = 16_000
PAD_S = 0.25  # zeros before and after each 1-s clip: 9 embeddings of it instead of 3
WINDOW, HOP = 76, 8  # the embedding's mel frames (10 ms) and its hop
EMBEDDING = 96
BATCH = 64  # clips per ONNX call


def model_folder() -> Path:
    """openWakeWord's folder of ONNX models (located without importing the package, whose
    wake word models need more than this)."""
    spec = importlib.util.find_spec("openwakeword")
    if spec is None or not spec.submodule_search_locations:
        raise KwsError("the speech-embedding teacher needs openwakeword 0.4.0 (pip install "
                       "-e './toolchain[teacher]')")
    folder = Path(next(iter(spec.submodule_search_locations))) / "resources" / "models"
    if not (folder / "embedding_model.onnx").is_file():
        raise KwsError(f"{folder}: no embedding_model.onnx (openwakeword 0.4.0 ships it; later "
                       "releases download it)")
    return folder


class SpeechEmbedding:
    """``(N, samples)`` float audio at 16 kHz -> ``(N, windows, 96)`` float32 embeddings."""

    def __init__(self, folder: Path | None = None) -> None:
        import onnxruntime as ort

        folder = model_folder() if folder is None else Path(folder)
        options = ort.SessionOptions()
        options.log_severity_level = 3
        self._mel = ort.InferenceSession(str(folder / "melspectrogram.onnx"), options,
                                         providers=["CPUExecutionProvider"])
        self._embed = ort.InferenceSession(str(folder / "embedding_model.onnx"), options,
                                           providers=["CPUExecutionProvider"])

    def __call__(self, audio: np.ndarray) -> np.ndarray:
        audio = np.asarray(audio, dtype=np.float32)
        if audio.ndim != 2 or audio.shape[1] < SAMPLE_RATE * 0.8:
            raise ValueError(f"need (N, >= 0.8 s) audio at {SAMPLE_RATE} Hz, got {audio.shape}")
        pad = round(PAD_S * SAMPLE_RATE)
        out = []
        for start in range(0, len(audio), BATCH):
            # the ONNX front-end takes 16-bit sample values; x / 10 + 2 is openWakeWord's
            # match to Google's own front-end
            x = np.pad(audio[start:start + BATCH], ((0, 0), (pad, pad))) * 32767.0
            mel = self._mel.run(None, {"input": x.astype(np.float32)})[0][:, 0] / 10 + 2
            windows = np.stack([mel[:, i:i + WINDOW]
                                for i in range(0, mel.shape[1] - WINDOW + 1, HOP)], axis=1)
            n, w = windows.shape[:2]
            emb = self._embed.run(None, {"input_1": windows.reshape(n * w, WINDOW, -1, 1)
                                         .astype(np.float32)})[0]
            out.append(emb.reshape(n, w, EMBEDDING))
        return np.concatenate(out).astype(np.float32)


@dataclass(frozen=True)
class HeadConfig:
    """The head on the embeddings: a convolution over time, a dense layer, softmax."""

    filters: int = 128
    units: int = 128
    dropout: float = 0.3
    epochs: int = 40
    batch_size: int = 128
    lr: float = 1e-3


def build_head(windows: int, n_labels: int, stats: tuple[np.ndarray, np.ndarray],
               config: HeadConfig = HeadConfig()):
    """A Keras head ``(windows, 96, 1)`` -> label probabilities; ``stats`` (mean, std) of the
    96 numbers normalise its input."""
    import keras

    mean, std = (np.asarray(s, dtype=np.float32) for s in stats)
    return keras.Sequential([
        keras.Input((windows, EMBEDDING, 1)),
        keras.layers.Reshape((windows, EMBEDDING)),
        keras.layers.Normalization(mean=mean, variance=std ** 2),
        keras.layers.Conv1D(config.filters, 3, activation="relu"),
        keras.layers.Dropout(config.dropout),
        keras.layers.Flatten(),
        keras.layers.Dense(config.units, activation="relu"),
        keras.layers.Dropout(config.dropout),
        keras.layers.Dense(n_labels, activation="softmax"),
    ])


def fit_head(embeddings: np.ndarray, labels: np.ndarray, n_labels: int,
             weights: np.ndarray | None = None, seed: int = 0,
             config: HeadConfig = HeadConfig()):
    """The head trained on ``embeddings`` ``(N, windows, 96)`` and label indices ``labels``
    with per-example loss ``weights`` (None: equal); the last epoch's weights."""
    import keras

    if len(embeddings) != len(labels) or not len(labels):
        raise ValueError(f"{len(embeddings)} embeddings for {len(labels)} labels")
    keras.utils.set_random_seed(seed)
    flat = embeddings.reshape(-1, EMBEDDING)
    head = build_head(embeddings.shape[1], n_labels, (flat.mean(0), flat.std(0) + 1e-6),
                      config)
    head.compile(keras.optimizers.Adam(config.lr),
                 keras.losses.SparseCategoricalCrossentropy(), metrics=["accuracy"])
    head.fit(embeddings[..., None], np.asarray(labels), batch_size=config.batch_size,
             epochs=config.epochs, verbose=0,
             sample_weight=None if weights is None else np.asarray(weights, np.float32))
    return head
