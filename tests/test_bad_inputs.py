"""Every row of tests/bad_inputs.md: what each bad (or unusual) input gets.

Bad input: the CLI prints one ``error: …`` line and exits 2, the server answers a 4xx JSON
``{"error": …}``; never a traceback, never a label. Valid but unusual input (other sample
formats, channels, rates, one hour of audio) gets the same answer as the plain 16-bit mono
16 kHz version of the clip. The model is a small one trained here on tones (one pitch per
keyword, noise bursts for ``_unknown_``), so its labels mean something.

Cases already covered elsewhere are referenced, not repeated: tests/test_wav.py (decoding of
every format, resampling, the reader's own error messages), tests/test_runtime.py (missing
file/model/folder, bad option, sha256 mismatch, a random ``TFL3`` file, input shape vs
front-end in process), tests/test_fuzz.py (giant declared sizes, memory, fuzzing).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from edge_runtime.errors import KwsError
from edge_runtime.frontend import EDGE_FRONTEND, FrontendConfig, mfcc
from edge_runtime.manifest import manifest_path_for, sha256_of
from edge_runtime.model import KwsModel
from edge_runtime.wav import decode_wav, encode_wav
from tests.conftest import ROOT, free_port
from tests.model_factory import LABELS, resealed
from tests.wav_fixtures import wav_bytes, wav_declaring

TABLE = Path(__file__).with_name("bad_inputs.md")
# INFO lines that libraries log (MLflow: "2026/01/01 12:00:00 INFO mlflow...: ...")
LIBRARY_LOG = re.compile(r"^\d{4}/\d\d/\d\d \d\d:\d\d:\d\d INFO ")
ENV = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "TF_CPP_MIN_LOG_LEVEL": "2"}


# --- a model whose labels mean something ------------------------------------------------------

def tone_clip(label: int, rng: np.random.Generator,
              config: FrontendConfig = EDGE_FRONTEND) -> np.ndarray:
    """One clip of class ``label`` of the tone task: ``_silence_`` is faint noise,
    ``_unknown_`` a noise burst, keyword k a tone of 250 * 1.25**k Hz (+ 2nd harmonic)."""
    n, rate = config.clip_samples, config.sample_rate
    t = np.arange(n) / rate
    x = rng.uniform(0.001, 0.01) * rng.standard_normal(n)
    if label == 0:
        return x.astype(np.float32)
    length = int(rng.uniform(0.4, 0.8) * n)
    start = int(rng.integers(0, n - length))
    envelope = np.zeros(n)
    envelope[start : start + length] = np.sin(np.pi * np.arange(length) / length) ** 2
    if label == 1:
        sound = rng.standard_normal(n)
    else:
        f = 250 * 1.25 ** (label - 2)
        sound = np.sin(2 * np.pi * f * t) + 0.3 * np.sin(4 * np.pi * f * t + 1)
    return (x + rng.uniform(0.1, 0.6) * envelope * sound).astype(np.float32)


def build_tone_models(out_dir: Path, seed: int = 0) -> dict[str, Path]:
    """float32 + int8 models (with manifests) trained for a few seconds on the tone task."""
    import keras

    from convert.tflite import to_tflite
    from edge_runtime.manifest import write_manifest

    rng = np.random.default_rng(seed)
    y = np.repeat(np.arange(len(LABELS)), 150)
    x = mfcc(np.stack([tone_clip(int(i), rng) for i in y]), EDGE_FRONTEND)[..., None]
    keras.utils.set_random_seed(seed)
    model = keras.Sequential([
        keras.Input(x.shape[1:]),
        keras.layers.Conv2D(16, (5, 3), strides=2, padding="same"),
        keras.layers.BatchNormalization(),
        keras.layers.ReLU(),
        keras.layers.GlobalAveragePooling2D(),
        keras.layers.Dense(len(LABELS), activation="softmax"),
    ])
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="sparse_categorical_crossentropy")
    model.fit(x, y, epochs=20, batch_size=64, verbose=0)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {}
    for quant in ("float32", "int8"):
        path = out_dir / f"tone_{quant}.tflite"
        path.write_bytes(to_tflite(model, quant, x[::10]))
        write_manifest(path, labels=list(LABELS), frontend=EDGE_FRONTEND, quantization=quant,
                       arch="tone_test")
        paths[quant] = path
    return paths


@pytest.fixture(scope="module")
def tone_models(tmp_path_factory) -> dict[str, Path]:
    return build_tone_models(tmp_path_factory.mktemp("tone_models"))


def clip_of(label: str, seed: int = 7) -> np.ndarray:
    return tone_clip(LABELS.index(label), np.random.default_rng(seed))


def run(*args, timeout: float = 300) -> subprocess.CompletedProcess:
    """A command in a fresh process, as a user runs it."""
    return subprocess.run([str(a) for a in args], capture_output=True, text=True, cwd=ROOT,
                          env=ENV, timeout=timeout)


def kws_edge(*args) -> subprocess.CompletedProcess:
    return run(sys.executable, "-m", "edge_runtime.cli", *args)


def assert_one_error_line(r: subprocess.CompletedProcess, pattern: str) -> None:
    """Exit 2, one ``error:`` line matching ``pattern``, no traceback, nothing on stdout."""
    lines = [x for x in r.stderr.splitlines() if x.strip() and not x.startswith("INFO:")
             and not LIBRARY_LOG.match(x)]
    assert r.returncode == 2, (r.returncode, r.stdout[-500:], r.stderr[-2000:])
    assert "Traceback" not in r.stderr
    assert len(lines) == 1 and lines[0].startswith("error: "), r.stderr
    assert re.search(pattern, lines[0]), (pattern, lines[0])
    assert r.stdout.strip() == ""


# --- bad WAV input: CLI and server --------------------------------------------------------------

TONE = clip_of("up")
GOOD = wav_bytes(TONE)


def _with_fmt(**fields) -> bytes:
    """GOOD with fmt fields replaced (tag, channels, rate, byte_rate, block, bits)."""
    data = bytearray(GOOD)
    at = data.index(b"fmt ") + 8
    names = ("tag", "channels", "rate", "byte_rate", "block", "bits")
    values = dict(zip(names, struct.unpack_from("<HHIIHH", data, at), strict=True))
    values.update(fields)
    struct.pack_into("<HHIIHH", data, at, *(values[n] for n in names))
    return bytes(data)


# id: (bytes, message pattern of the CLI error and of the server's JSON error)
BAD_WAVS = {
    "non-wav-bytes": (b"ID3\x03\x00 an mp3, or any other file" * 4, "not a WAV file"),
    "zero-byte-file": (b"", "not a WAV file"),
    "truncated-header": (GOOD[:30], "truncated WAV header"),
    "truncated-data": (GOOD[:-1000], "truncated WAV data"),
    "zero-length-audio": (wav_declaring(0), "empty audio"),
    "absurd-data-size": (wav_declaring(0xFFFFFFF0, b"\x00" * 64), "truncated WAV data"),
    "absurd-channels": (_with_fmt(channels=65535, block=2 * 65535 & 0xFFFF),
                        "declares 65535 channels"),
    "absurd-sample-rate": (_with_fmt(rate=4_000_000_000), "sample rate 4000000000 Hz"),
    "sample-rate-1hz": (_with_fmt(rate=1), "sample rate 1 Hz"),
    "zero-bit-samples": (_with_fmt(bits=0, block=0), "inconsistent WAV header"),
    "12-bit-samples": (_with_fmt(bits=12), "inconsistent WAV header"),
    "unsupported-encoding": (_with_fmt(tag=6), "unsupported WAV encoding .format tag 6"),
    "nan-samples": (wav_bytes(np.where(np.arange(TONE.size) == 500, np.nan, TONE), bits=32,
                              fmt="float"), "NaN or Inf"),
    "inf-samples": (wav_bytes(np.where(np.arange(TONE.size) == 9, -np.inf, TONE), bits=64,
                              fmt="float"), "NaN or Inf"),
    "huge-float-samples": (wav_bytes(TONE * 1e30, bits=32, fmt="float"), "float samples reach"),
}


@pytest.fixture(scope="module")
def bad_wav_files(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("bad_wavs")
    paths = {}
    for case, (data, _) in BAD_WAVS.items():
        paths[case] = folder / f"{case}.wav"
        paths[case].write_bytes(data)
    return paths


@pytest.mark.parametrize("case", BAD_WAVS)
def test_cli_bad_wav(case: str, bad_wav_files, tone_models) -> None:
    r = kws_edge("predict", bad_wav_files[case], "--model", tone_models["int8"])
    assert_one_error_line(r, BAD_WAVS[case][1])


@pytest.fixture(scope="module")
def client(tone_models):
    pytest.importorskip("flask", reason="the server needs flask (kws-edge[serve])")
    from edge_runtime.serve import create_app

    app = create_app(KwsModel(tone_models["int8"]))
    return app.test_client()


def assert_json_error(response, status: int, pattern: str) -> None:
    assert response.status_code == status, (response.status_code, response.get_data()[:300])
    assert response.is_json, response.get_data()[:300]
    body = response.get_json()
    assert set(body) == {"error"} and re.search(pattern, body["error"]), body


@pytest.mark.parametrize("case", BAD_WAVS)
@pytest.mark.parametrize("how", ["multipart", "raw"])
def test_server_bad_wav(case: str, how: str, client) -> None:
    data, pattern = BAD_WAVS[case]
    if case == "zero-byte-file":
        pattern = "empty upload"
    if how == "multipart":
        import io

        r = client.post("/api/predict", data={"file": (io.BytesIO(data), "x.wav")},
                        content_type="multipart/form-data")
    else:
        r = client.post("/api/predict", data=data, content_type="audio/wav")
    assert_json_error(r, 400, pattern)


def test_server_request_errors(client) -> None:
    """Rows server-wrong-content-type, server-no-file-field, server-bad-top-k,
    server-too-long-audio, server-upload-too-large."""
    import io

    assert_json_error(client.post("/api/predict", data=GOOD, content_type="text/plain"),
                      415, "unsupported content type")
    assert_json_error(client.post("/api/predict", data={"other": (io.BytesIO(GOOD), "x.wav")},
                                  content_type="multipart/form-data"), 400, "no file")
    assert_json_error(client.post("/api/predict?top_k=zero", data=GOOD,
                                  content_type="audio/wav"), 400, "top_k")
    long_8bit = wav_bytes(np.zeros(8000 * 90), rate=8000, bits=8)  # 90 s in 0.7 MB
    assert_json_error(client.post("/api/predict", data=long_8bit, content_type="audio/wav"),
                      400, "audio too long")
    big = wav_bytes(np.zeros(16000 * 70))  # 2.2 MB: over the 2 MB default
    assert_json_error(client.post("/api/predict", data=big, content_type="audio/wav"),
                      413, "upload too large")


# --- valid but unusual WAVs: the same answer as 16-bit mono 16 kHz -----------------------------

def _resampled(x: np.ndarray, rate: int) -> np.ndarray:
    import soxr

    return soxr.resample(x, 16000, rate, quality="HQ")


# id: (bytes from a clip, tolerance on every probability vs the reference). 8 kHz audio has
# nothing above ~3.6 kHz (soxr's anti-alias band), where the front-end's top mel band
# (3.6-4 kHz) looks: the label holds, but a quiet clip's probabilities move by up to 0.2.
UNUSUAL = {
    "pcm-8-bit": (lambda x: wav_bytes(x, bits=8), 0.02),
    "pcm-24-bit": (lambda x: wav_bytes(x, bits=24), 0.01),
    "pcm-24-bit-extensible": (lambda x: wav_bytes(x, bits=24, extensible=True), 0.01),
    "pcm-32-bit": (lambda x: wav_bytes(x, bits=32), 0.01),
    "float-32": (lambda x: wav_bytes(x, bits=32, fmt="float"), 0.01),
    "float-64-extensible": (lambda x: wav_bytes(x, bits=64, fmt="float", extensible=True), 0.01),
    "stereo": (lambda x: wav_bytes(np.stack([x, x], axis=1)), 0.01),
    "six-channels": (lambda x: wav_bytes(np.stack([x] * 6, axis=1), bits=24), 0.01),
    "rate-8k": (lambda x: wav_bytes(_resampled(x, 8000), rate=8000), 0.25),
    "rate-44k1": (lambda x: wav_bytes(_resampled(x, 44100), rate=44100), 0.01),
    "rate-48k": (lambda x: wav_bytes(_resampled(x, 48000), rate=48000), 0.01),
}
UNUSUAL_LABELS = ("up", "go", "_unknown_")


@pytest.fixture(scope="module")
def unusual_files(tmp_path_factory) -> dict[tuple[str, str], Path]:
    folder = tmp_path_factory.mktemp("unusual")
    paths = {}
    for label in UNUSUAL_LABELS:
        x = clip_of(label)
        paths[label, "reference"] = folder / f"{label}_reference.wav"
        paths[label, "reference"].write_bytes(wav_bytes(x))
        for case, (make, _) in UNUSUAL.items():
            paths[label, case] = folder / f"{label}_{case}.wav"
            paths[label, case].write_bytes(make(x))
    return paths


def _probabilities(result: dict) -> dict[str, float]:
    return {row["label"]: row["probability"] for row in result["top_k"]}


@pytest.mark.parametrize("quant", ["float32", "int8"])
def test_unusual_formats_give_the_reference_answer(quant: str, tone_models,
                                                   unusual_files) -> None:
    """All UNUSUAL rows through ``kws-edge predict --json`` (one process for all files)."""
    keys = list(unusual_files)
    r = kws_edge("predict", *(unusual_files[k] for k in keys), "--model", tone_models[quant],
                 "--json", "--top-k", len(LABELS))
    assert r.returncode == 0, r.stderr
    results = dict(zip(keys, json.loads(r.stdout), strict=True))
    for label in UNUSUAL_LABELS:
        reference = results[label, "reference"]
        assert reference["label"] == label, reference  # the tone model knows its clips
        ref_probs = _probabilities(reference)
        for case, (_, tolerance) in UNUSUAL.items():
            got = results[label, case]
            assert got["label"] == label, (label, case, got["top_k"][:3])
            probs = _probabilities(got)
            worst = max(abs(probs[k] - ref_probs[k]) for k in LABELS)
            # int8 output steps are 1/256: allow a few steps more
            assert worst <= tolerance + (4 / 256 if quant == "int8" else 0), (label, case, worst)


def test_unusual_formats_through_the_server(client, unusual_files) -> None:
    for (label, case), path in unusual_files.items():
        r = client.post("/api/predict", data=path.read_bytes(), content_type="audio/wav")
        assert r.status_code == 200, (case, r.get_json())
        assert r.get_json()["label"] == label, (label, case, r.get_json()["top_k"][:3])


def test_one_hour_file(tmp_path, tone_models) -> None:
    """Row one-hour-audio: one ``go`` clip at 30:00 in an hour of faint noise is found there,
    and nothing else is (the file is 115 MB; the whole hour is scanned in 1-s windows, read
    block by block in bounded memory)."""
    rate = 16000
    rng = np.random.default_rng(3)
    hour = (0.003 * rng.standard_normal(3600 * rate)).astype(np.float32)
    at = 1800 * rate
    hour[at : at + rate] = clip_of("go")
    path = tmp_path / "hour.wav"
    path.write_bytes(encode_wav(hour, rate))
    del hour
    # peak resident memory of this process (VmHWM; ru_maxrss would carry pytest's over exec)
    measured = ("import re, sys; from edge_runtime.cli import main; rc = main(sys.argv[1:]);"
                " status = open('/proc/self/status').read();"
                " print(re.search(r'VmHWM:\\s+(\\d+)', status)[1], file=sys.stderr);"
                " sys.exit(rc)")
    r = run(sys.executable, "-c", measured, "predict", path, "--model", tone_models["int8"],
            "--json")
    assert r.returncode == 0, r.stderr[-2000:]
    peak_mb = int(r.stderr.split()[-1]) / 1024
    # read and scanned block by block: the 115 MB file is never held (its float32 samples
    # would be 230 MB; reading it whole took 729 MB)
    assert peak_mb < 150, peak_mb
    out = json.loads(r.stdout)
    assert out["label"] == "go"
    assert out["detections"], out
    for d in out["detections"]:
        assert d["label"] == "go" and 1799.0 <= d["start_s"] and d["end_s"] <= 1802.0, d


# --- bad models: predict and serve both refuse them -------------------------------------------

def _model_case(folder: Path, source: Path, case: str) -> Path:
    """A broken copy of ``source`` (model + manifest) for row ``case``."""
    model = folder / case / source.name
    model.parent.mkdir()
    content = source.read_bytes()
    manifest = json.loads(manifest_path_for(source).read_text())
    if case == "tflite-all-zeros":
        content = b"\x00" * 4096
    elif case == "tflite-text-file":
        content = b"this is not a model\n" * 20
    elif case == "tflite-truncated":
        content = content[: len(content) // 2]
    elif case == "tflite-bytes-flipped":
        flipped = bytearray(content)
        for i in range(64, len(flipped), 97):
            flipped[i] ^= 0xFF
        content = bytes(flipped)
    model.write_bytes(content)
    path = manifest_path_for(model)
    if case == "manifest-missing":
        return model
    if case == "manifest-not-json":
        path.write_text("{labels: yes, no")
        return model
    if case == "manifest-foreign":  # another tool's metadata
        manifest = {"name": "kws", "version": "1.0", "labels": LABELS, "input": [1, 49, 10]}
    elif case == "manifest-wrong-sha256":
        manifest["sha256"] = sha256_of(b"another model")
    elif case == "manifest-sha256-not-a-string":
        manifest["sha256"] = None
    elif case == "manifest-labels-not-a-list":
        manifest["labels"] = "yes,no"
    elif case == "manifest-bad-frontend":
        manifest["frontend"]["n_mfcc"] = 80
    elif case == "manifest-unknown-frontend-key":
        manifest["frontend"]["pre_emphasis"] = 0.97
    elif case == "manifest-version-2":
        manifest["version"] = 2
    elif case == "input-shape-vs-frontend":
        manifest["frontend"].update(n_mfcc=13, n_mels=40)
    elif case == "outputs-vs-labels":
        manifest["labels"] = LABELS[:-1]
    elif case in MANIFEST_EDITS:
        manifest = MANIFEST_EDITS[case](manifest)
    if case.startswith("tflite-"):  # a manifest that matches, so the model itself is tried
        manifest = resealed(manifest, content)
    elif case not in UNSEALED and isinstance(manifest, dict):  # the row's check is reached
        manifest = resealed(manifest)
    path.write_text(manifest if isinstance(manifest, str) else json.dumps(manifest))
    return model


def _edit(**fields):
    """A manifest edit: top-level ``fields``; ``frontend.X`` keys edit the front-end."""
    def apply(manifest: dict) -> dict:
        for key, value in fields.items():
            if key.startswith("frontend_"):
                manifest["frontend"][key[len("frontend_"):]] = value
            else:
                manifest[key] = value
        return manifest
    return apply


def _nested(depth: int) -> dict:
    notes: dict = {}
    for _ in range(depth):
        notes = {"x": notes}
    return notes


def _as_text(replace: tuple[str, str], **fields):
    """An edit of the manifest's JSON text (for what ``json.dumps`` would not write), after
    setting ``fields`` and sealing it."""
    def apply(manifest: dict) -> str:
        text = json.dumps(resealed({**manifest, **fields}))
        assert replace[0] in text
        return text.replace(*replace)
    return apply


NORM = {"mean": [0.0] * 10, "std": [1.0] * 10}
# id: the edit; the digest is re-computed after it unless the id is in UNSEALED
MANIFEST_EDITS = {
    "manifest-labels-reordered": lambda m: {**m, "labels": m["labels"][::-1]},
    "manifest-frontend-edited": _edit(frontend_fmin=300.0),
    "manifest-norm-edited": _edit(feature_norm={"mean": [5.0] * 10, "std": [1.0] * 10}),
    "manifest-no-digest": lambda m: {k: v for k, v in m.items() if k != "digest"},
    "manifest-norm-nan": _as_text(('"mean": [0.0', '"mean": [NaN'), feature_norm=NORM),
    "manifest-norm-inf-std": _as_text(('"std": [1.0', '"std": [Infinity'), feature_norm=NORM),
    "manifest-norm-null": _edit(feature_norm={"mean": [None] * 10, "std": [1.0] * 10}),
    "manifest-norm-strings": _edit(feature_norm={"mean": ["0"] * 10, "std": [1.0] * 10}),
    "manifest-norm-tiny-std": _edit(feature_norm={"mean": [0.0] * 10, "std": [1e-300] * 10}),
    "manifest-n-fft-float": _edit(frontend_n_fft=512.0),
    "manifest-n-mels-1e9": _edit(frontend_n_mels=10**9),
    "manifest-sample-rate-bool": _edit(frontend_sample_rate=True),
    "manifest-log-floor-nan": _as_text(('"log_floor": 1e-10', '"log_floor": NaN')),
    "manifest-labels-duplicated": lambda m: {**m, "labels": ["yes"] * len(m["labels"])},
    "manifest-size-bytes-string": _edit(size_bytes="51200"),
    "manifest-size-bytes-wrong": lambda m: {**m, "size_bytes": m["size_bytes"] + 1},
    "manifest-deeply-nested": _as_text(('"notes": {}',
                                        '"notes": {"x": ' + "[" * 100_000 + "]" * 100_000 + "}")),
    "manifest-nested-40-levels": _edit(notes=_nested(40)),
    "manifest-huge-integer": _as_text(('"size_bytes": ', '"size_bytes": ' + "9" * 5000)),
    "manifest-frontend-not-object": _edit(frontend=[1, 2, 3]),
    "manifest-threshold-over-1": _edit(threshold=1.5),
    "manifest-threshold-string": _edit(threshold="0.8"),
}
UNSEALED = {"manifest-missing", "manifest-not-json", "manifest-foreign",
            "manifest-labels-reordered", "manifest-frontend-edited", "manifest-norm-edited",
            "manifest-no-digest"}


BAD_MODELS = {
    "tflite-all-zeros": "not a usable TFLite model",
    "tflite-text-file": "not a usable TFLite model",
    "tflite-truncated": "not a usable TFLite model",
    "tflite-bytes-flipped": "not a usable TFLite model",
    "manifest-missing": "manifest not found",
    "manifest-not-json": "unreadable manifest",
    "manifest-foreign": "not a kws-edge manifest",
    "manifest-wrong-sha256": "does not match its manifest",
    "manifest-sha256-not-a-string": "sha256 must be a string, got None",
    "manifest-labels-not-a-list": "labels must be a list",
    "manifest-bad-frontend": "bad manifest .*n_mfcc",
    "manifest-unknown-frontend-key": "bad manifest .*pre_emphasis",
    "manifest-version-2": "version 2",
    "input-shape-vs-frontend": "does not fit the front-end",
    "outputs-vs-labels": "12 outputs but its manifest 11 labels",
    "manifest-labels-reordered": "digest does not match",
    "manifest-frontend-edited": "digest does not match",
    "manifest-norm-edited": "digest does not match",
    "manifest-no-digest": "digest is not 64 lowercase hex digits",
    "manifest-norm-nan": "unreadable manifest .NaN is not a number",
    "manifest-norm-inf-std": "unreadable manifest .Infinity is not a number",
    "manifest-norm-null": "feature_norm needs mean and std lists",
    "manifest-norm-strings": "feature_norm needs mean and std lists",
    "manifest-norm-tiny-std": "feature_norm needs .*1e-06 <= std",
    "manifest-n-fft-float": "n_fft must be an integer, got 512.0",
    "manifest-n-mels-1e9": "n_mels must be within 1-512",
    "manifest-sample-rate-bool": "sample_rate must be an integer, got True",
    "manifest-log-floor-nan": "unreadable manifest .NaN is not a number",
    "manifest-labels-duplicated": "distinct",
    "manifest-size-bytes-string": "size_bytes must be an integer",
    "manifest-size-bytes-wrong": "51201|bytes but its manifest says",
    "manifest-deeply-nested": "unreadable manifest .nested too deeply",
    "manifest-nested-40-levels": "unreadable manifest .nested more than 32 levels",
    "manifest-huge-integer": "unreadable manifest .Exceeds the limit",
    "manifest-frontend-not-object": "the front-end must be an object",
    "manifest-threshold-over-1": "threshold must be within 0-1, got 1.5",
    "manifest-threshold-string": "threshold must be a number or null, got '0.8'",
}


@pytest.mark.parametrize("case", BAD_MODELS)
def test_bad_model(case: str, tone_models, tmp_path) -> None:
    """``kws-edge predict`` and ``kws-edge serve`` both refuse the model before any work."""
    model = _model_case(tmp_path, tone_models["int8"], case)
    with pytest.raises(KwsError, match=BAD_MODELS[case]):
        KwsModel(model)
    wav = tmp_path / "good.wav"
    wav.write_bytes(GOOD)
    assert_one_error_line(kws_edge("predict", wav, "--model", model), BAD_MODELS[case])
    if case in ("tflite-truncated", "manifest-foreign"):  # one of each kind is enough
        r = kws_edge("serve", "--model", model, "--port", free_port())
        assert_one_error_line(r, BAD_MODELS[case])


# --- the toolchain -----------------------------------------------------------------------------

def test_convert_with_a_run_id_that_does_not_exist(tmp_path) -> None:
    """Row convert-unknown-run: ``kws convert --run deadbeef…`` against a real (empty) store."""
    pytest.importorskip("mlflow")
    data = tmp_path / "data"
    data.mkdir()
    out = tmp_path / "artifacts"
    r = run(sys.executable, "-m", "kws", "convert", "--run", "deadbeef" * 4,
            "--data", data, "--out", out, "--tracking-uri", f"sqlite:///{tmp_path}/mlflow.db")
    assert_one_error_line(r, "deadbeef")
    assert not out.exists() or not any(out.iterdir())


def test_data_folder_with_mixed_sample_rates(tmp_path) -> None:
    """Row mixed-sample-rates: clips (and background noise) at 8, 16, 22.05, 44.1 and 48 kHz
    in one folder are resampled to the front-end rate by train/data.py; each example loads
    like its 16 kHz twin."""
    import soxr

    from tests.fixtures_data import make_fake_dataset, word_sound
    from train.data import DataConfig, load_dataset, load_waveforms

    words = ["yes", "no"]
    root = make_fake_dataset(tmp_path / "d16", words, speakers=6, per_speaker=1)
    mixed = tmp_path / "mixed"
    shutil.copytree(root, mixed)
    rates = [8000, 16000, 22050, 44100, 48000]
    paths = sorted(p for w in words for p in (mixed / w).glob("*.wav"))
    for i, path in enumerate(paths):
        rate = rates[i % len(rates)]
        speaker, _, n = path.stem.split("_")
        path.write_bytes(wav_bytes(word_sound(path.parent.name, speaker, int(n), rate=rate),
                                   rate=rate))
    noise = sorted((mixed / "_background_noise_").glob("*.wav"))[0]
    x = decode_wav(noise.read_bytes()).samples
    noise.write_bytes(wav_bytes(soxr.resample(x, 16000, 44100), rate=44100, bits=24))
    config = EDGE_FRONTEND
    settings = {"task": "yes,no", "silence_pct": 50, "unknown_pct": 0}
    a = load_dataset(DataConfig(root, **settings))
    b = load_dataset(DataConfig(mixed, **settings))
    assert not any(b.skipped.values()) and not b.skipped_files, b.skipped
    assert [len(n) for n in a.noise] == [len(n) for n in b.noise]
    for split in ("train", "val", "test"):
        ea, eb = getattr(a, split), getattr(b, split)
        assert [e.label for e in ea] == [e.label for e in eb]
        wa = load_waveforms(a, ea, config.sample_rate, config.clip_samples)
        wb = load_waveforms(b, eb, config.sample_rate, config.clip_samples)
        for x, y in zip(wa, wb, strict=True):
            # the same sound synthesised (or resampled) at another rate: features agree
            fx, fy = mfcc(x, config), mfcc(y, config)
            assert np.corrcoef(fx.ravel(), fy.ravel())[0, 1] > 0.98


# --- the table and the tests agree --------------------------------------------------------------

SERVER_ROWS = ("server-wrong-content-type", "server-no-file-field", "server-bad-top-k",
               "server-too-long-audio", "server-upload-too-large")
# convert-force-moves-old-model-aside: tests/test_convert.py (it needs a trained model)
OTHER_ROWS = ("one-hour-audio", "convert-unknown-run", "mixed-sample-rates",
              "convert-force-moves-old-model-aside")


def test_table_lists_exactly_the_cases_tested() -> None:
    from tests import test_bad_inputs_cli, test_bad_inputs_server, test_bad_inputs_toolchain

    ids = set(re.findall(r"^\| `([a-z0-9-]+)` \|", TABLE.read_text(), flags=re.M))
    tested = {*BAD_WAVS, *UNUSUAL, *BAD_MODELS, *SERVER_ROWS, *OTHER_ROWS,
              *test_bad_inputs_cli.ROWS, *test_bad_inputs_server.ROWS,
              *test_bad_inputs_toolchain.ROWS}
    assert ids == tested, {"not in table": tested - ids, "not tested": ids - tested}
