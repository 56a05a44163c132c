"""Builds small real models for tests: Keras -> float32/int8 TFLite + manifests (needs TF)."""

from __future__ import annotations

from pathlib import Path

from edge_runtime.dataset import SILENCE, UNKNOWN
from edge_runtime.frontend import EDGE_FRONTEND, FrontendConfig
from train.data import STANDARD_WORDS
from train.models.common import tone_features

LABELS = [SILENCE, UNKNOWN, *STANDARD_WORDS]


def tiny_keras_model(config: FrontendConfig, n_labels: int, seed: int = 0):
    import keras

    keras.utils.set_random_seed(seed)
    frames, coeffs = config.feature_shape
    return keras.Sequential([
        keras.Input((frames, coeffs, 1)),
        keras.layers.Conv2D(8, (5, 3), strides=2, padding="same"),
        keras.layers.BatchNormalization(),
        keras.layers.ReLU(),
        keras.layers.GlobalAveragePooling2D(),
        keras.layers.Dense(n_labels, activation="softmax"),
    ])


def build_models(out_dir: Path, config: FrontendConfig = EDGE_FRONTEND,
                 labels: list[str] = LABELS, name: str = "tiny") -> dict[str, Path]:
    """Write ``<name>_float32.tflite`` and ``<name>_int8.tflite`` with manifests."""
    from convert.tflite import to_tflite
    from edge_runtime.manifest import write_manifest

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    model = tiny_keras_model(config, len(labels))
    calib = tone_features(config)
    paths = {}
    for quant in ("float32", "int8"):
        path = out_dir / f"{name}_{quant}.tflite"
        path.write_bytes(to_tflite(model, quant, calib))
        write_manifest(path, labels=list(labels), frontend=config, quantization=quant,
                       arch="tiny_test")
        paths[quant] = path
    return paths


def resealed(manifest: dict, content: bytes | None = None) -> dict:
    """``manifest`` (JSON object) made consistent again after a test edited it: sha256 and
    size of ``content`` when given, and the digest, so that later checks are reached."""
    from edge_runtime.manifest import digest_of, sha256_of

    if content is not None:
        manifest.update(sha256=sha256_of(content), size_bytes=len(content))
    return {**manifest, "digest": digest_of(manifest)}
