"""Rows of tests/bad_inputs.md for the command lines: option ranges, files that are not
files, very long audio, file names and list files that are not UTF-8, WAV encodings the
reader refuses, batch predict with a bad file, feature caches and training data.

Each case is run as a user runs it (a fresh process) unless noted.
"""

from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from edge_runtime.manifest import manifest_path_for
from tests.conftest import ROOT
from tests.fixtures_data import make_fake_dataset
from tests.wav_fixtures import wav_bytes

ENV = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "TF_CPP_MIN_LOG_LEVEL": "2"}
GOOD = wav_bytes(0.1 * np.sin(np.arange(16000) / 5.0))


def run(*args, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([str(a) for a in args], capture_output=True, cwd=ROOT, env=ENV,
                          timeout=timeout)


def kws_edge(*args, timeout: float = 120) -> subprocess.CompletedProcess:
    return run(sys.executable, "-m", "edge_runtime.cli", *args, timeout=timeout)


def kws(*args, timeout: float = 300) -> subprocess.CompletedProcess:
    return run(sys.executable, "-m", "kws", *args, timeout=timeout)


def one_error_line(r: subprocess.CompletedProcess, pattern: str) -> str:
    """Exit 2 and exactly one ``error:`` line on stderr matching ``pattern``, no traceback."""
    import re

    err = r.stderr.decode("utf-8", "backslashreplace")
    lines = [x for x in err.splitlines() if x.startswith("error")]  # not TensorFlow's logs
    assert r.returncode == 2, (r.returncode, err[-2000:])
    assert "Traceback" not in err and "RuntimeWarning" not in err, err[-2000:]
    assert len(lines) == 1 and lines[0].startswith("error: "), err[-2000:]
    assert re.search(pattern, lines[0]), (pattern, lines[0])
    return lines[0]


@pytest.fixture(scope="module")
def good_wav(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("wav") / "good.wav"
    path.write_bytes(GOOD)
    return path


# --- numeric options: every one is range-checked -----------------------------------------

# id: (command line after the program, pattern of the error)
OPTIONS = {
    "predict-hop-nan": (["predict", "{wav}", "--hop", "nan"], "--hop: must be within"),
    "predict-hop-inf": (["predict", "{wav}", "--hop", "inf"], "--hop: must be within"),
    "predict-hop-1e308": (["predict", "{wav}", "--hop", "1e308"], "--hop: must be within"),
    "predict-threshold-nan": (["predict", "{wav}", "--threshold", "nan"], "--threshold"),
    "predict-threshold-negative": (["predict", "{wav}", "--threshold=-1"], "--threshold"),
    "predict-threads-50000": (["predict", "{wav}", "--threads", "50000"],
                              "--threads: must be within 1-256"),
    "predict-threads-2-40": (["predict", "{wav}", "--threads", str(2**40)], "--threads"),
    "listen-hop-ms-1e308": (["listen", "--hop-ms", "1e308"], "--hop-ms: must be within"),
    "serve-max-upload-inf": (["serve", "--max-upload-mb", "inf"], "--max-upload-mb"),
    "serve-port-negative": (["serve", "--port=-1"], "--port: must be within 1-65535"),
    "serve-port-99999": (["serve", "--port", "99999"], "--port: must be within 1-65535"),
    "serve-host-999": (["serve", "--host", "999.1.1.1"], "not an IP address or host name"),
}


@pytest.mark.parametrize("case", OPTIONS)
def test_numeric_option_out_of_range(case: str, good_wav) -> None:
    args, pattern = OPTIONS[case]
    r = kws_edge(*(a.format(wav=good_wav) for a in args), timeout=60)
    line = one_error_line(r, pattern)
    assert len(line) < 300  # no dump of the model's bytes


@pytest.mark.parametrize("args", [["train", "--data", "{d}", "--seed=-1"],
                                  ["pipeline", "--demo", "--max-drop", "nan"],
                                  ["data", "info", "--data-dir", "{d}", "--seed", "4294967296"]])
def test_toolchain_seed_and_drop_ranges(args: list[str], tmp_path) -> None:
    """Row seed-negative: a negative seed was a NumPy traceback; NaN drops, bad input."""
    r = kws(*(a.format(d=tmp_path) for a in args))
    one_error_line(r, "--seed: must be within 0-4294967295|--max-drop: must be within 0-100")


@pytest.mark.parametrize("args", [["--cv-folds", "1"], ["--cv-folds", "4", "--cv-fold", "4"],
                                  ["--cv-fold", "1"]])
def test_cross_validation_fold_out_of_range(args: list[str], tmp_path) -> None:
    """Row train-cv-fold: a fold that does not exist is refused before anything is trained."""
    data = make_fake_dataset(tmp_path / "d", ["yes", "no"], speakers=4, per_speaker=2)
    r = kws("train", "--data", data, "--out", tmp_path / "m", "--no-mlflow", *args)
    one_error_line(r, "cv_folds must be 0 \\(off\\) or at least 2|cv_fold must be within|"
                      "cv_fold 1 needs cv_folds")
    assert not (tmp_path / "m" / "model.keras").exists()


def test_a_list_of_clips_to_drop_that_cannot_be_read(tmp_path) -> None:
    """Row train-drop-list: a missing or binary --drop-train file is refused before training."""
    data = make_fake_dataset(tmp_path / "d", ["yes", "no"], speakers=4, per_speaker=2)
    (tmp_path / "binary.txt").write_bytes(b"\xff\xfe\x00bad")
    for name in ("missing.txt", "binary.txt"):
        r = kws("train", "--data", data, "--out", tmp_path / "m", "--no-mlflow",
                "--drop-train", tmp_path / name)
        one_error_line(r, f"{name}: cannot read the list of clips to drop")
    assert not (tmp_path / "m" / "model.keras").exists()


# --- files that are not regular files, audio too long -------------------------------------

def test_fifo_is_refused_not_waited_on(tmp_path) -> None:
    """Row fifo-predict: nobody ever writes to the FIFO; predict must not wait for it."""
    fifo = tmp_path / "clip.wav"
    os.mkfifo(fifo)
    one_error_line(kws_edge("predict", fifo, timeout=60), "not a regular file")


def test_fifo_in_an_evaluate_folder_is_skipped(tmp_path, tiny_models) -> None:
    """Row fifo-in-evaluate-data: the FIFO is counted as unreadable, the rest evaluated."""
    data = make_fake_dataset(tmp_path / "d", ["yes", "no"], speakers=2, per_speaker=1)
    os.mkfifo(data / "yes" / "fifo_nohash_0.wav")
    r = kws_edge("evaluate", "--data", data, "--model", tiny_models["int8"], "--json",
                 timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    assert json.loads(r.stdout)["skipped"]["unreadable"] == 1


def test_dev_zero_is_refused() -> None:
    """Row dev-zero: a device never ends; refused before it is read."""
    one_error_line(kws_edge("predict", "/dev/zero", timeout=60), "not a regular file")


def test_ten_hour_wav_is_refused_before_decoding(tmp_path) -> None:
    """Row ten-hour-wav: 10 h of 16 kHz audio (a sparse 1.15 GB file: no disk used)."""
    path = tmp_path / "ten_hours.wav"
    size = 10 * 3600 * 16000 * 2
    header = struct.pack("<4sI4s4sIHHIIHH4sI", b"RIFF", 36 + size, b"WAVE", b"fmt ", 16, 1, 1,
                         16000, 32000, 2, 16, b"data", size)
    with path.open("wb") as f:
        f.write(header)
        f.truncate(len(header) + size)
    one_error_line(kws_edge("predict", path, timeout=60), r"audio is 10 h long; the limit is 3 h")


# --- names and lists that are not UTF-8 ---------------------------------------------------

def test_non_utf8_file_name_in_predict_and_info(tmp_path, tiny_models) -> None:
    """Row non-utf8-file-name: text output escapes the bytes instead of crashing."""
    folder = Path(os.fsdecode(bytes(tmp_path) + b"/caf\xe9"))
    folder.mkdir()
    wav = folder / os.fsdecode(b"clip\xff.wav")
    wav.write_bytes(GOOD)
    model = folder / "m.tflite"
    shutil.copy(tiny_models["int8"], model)
    shutil.copy(manifest_path_for(tiny_models["int8"]), manifest_path_for(model))
    env = {**ENV, "LC_ALL": "C.UTF-8", "PYTHONIOENCODING": "utf-8"}
    for args in (["predict", wav, "--model", model], ["info", "--model", model]):
        r = subprocess.run([sys.executable, "-m", "edge_runtime.cli", *map(str, args)],
                           capture_output=True, cwd=ROOT, env=env, timeout=60)
        assert r.returncode == 0, r.stderr[-2000:]
        assert b"caf\\udce9" in r.stdout, r.stdout[:300]  # the byte, escaped


def test_non_utf8_testing_list(tmp_path, tiny_models) -> None:
    """Row non-utf8-testing-list: ``kws-edge evaluate`` and ``kws data info`` read a list
    that names a non-UTF-8 file (it matches the file, as the file system spells it)."""
    data = make_fake_dataset(tmp_path / "d", ["yes", "no"], speakers=3, per_speaker=1,
                             with_lists=True)
    odd = data / "yes" / os.fsdecode(b"\xffodd_nohash_0.wav")
    shutil.copy(next((data / "yes").glob("*.wav")), odd)
    with (data / "testing_list.txt").open("ab") as f:
        f.write(b"yes/\xffodd_nohash_0.wav\n")
    r = kws_edge("evaluate", "--data", data, "--model", tiny_models["int8"], "--json")
    assert r.returncode == 0, r.stderr[-2000:]
    listed = sum(1 for line in (data / "testing_list.txt").read_bytes().splitlines() if line)
    assert json.loads(r.stdout)["n"] == listed
    r = kws("data", "info", "--data-dir", data, "--task", "yes,no")
    assert r.returncode == 0, r.stderr[-2000:]
    assert json.loads(r.stdout)["totals"]["test"] >= 1


# --- WAV encodings the reader refuses name the file ---------------------------------------

def _with_bits(data: bytes, tag: int, bits: int) -> bytes:
    out = bytearray(data)
    at = out.index(b"fmt ") + 8
    channels = struct.unpack_from("<H", out, at + 2)[0]
    block = channels * bits // 8
    struct.pack_into("<HHIIHH", out, at, tag, channels, 16000, 16000 * block, block, bits)
    return bytes(out)


ENCODINGS = {
    "float16-wav": (_with_bits(wav_bytes(np.zeros(16000), bits=16), 3, 16),
                    "unsupported float WAV with 16-bit samples"),
    "pcm-64-bit-wav": (_with_bits(wav_bytes(np.zeros(8000), bits=64, fmt="float"), 1, 64),
                       "unsupported PCM WAV with 64-bit samples"),
    "float64-1e300": (wav_bytes(np.full(16000, 1e300), bits=64, fmt="float"),
                      r"float samples reach 1e\+300"),
}


@pytest.mark.parametrize("case", ENCODINGS)
def test_refused_encoding_names_the_file(case: str, tmp_path) -> None:
    data, pattern = ENCODINGS[case]
    path = tmp_path / f"{case}.wav"
    path.write_bytes(data)
    line = one_error_line(kws_edge("predict", path), pattern)  # no RuntimeWarning either
    assert str(path) in line


# --- batch predict: every file gets its answer --------------------------------------------

def test_batch_predict_reports_every_file(tmp_path, good_wav) -> None:
    """Row batch-predict-one-bad: good, bad, good -> two results, one error, exit 2."""
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"not a wav")
    r = kws_edge("predict", good_wav, bad, good_wav, "--json")
    assert r.returncode == 2
    out = json.loads(r.stdout)
    assert [sorted(x)[:2] for x in out] == [["file", "label"], ["error", "file"],
                                           ["file", "label"]]
    assert "not a WAV file" in out[1]["error"]
    assert r.stderr.decode().count("error: ") == 1
    r = kws_edge("predict", good_wav, bad)  # text output: the good file is still labelled
    assert r.returncode == 2 and str(good_wav).encode() in r.stdout


# --- the feature cache and the training data ----------------------------------------------

def test_empty_or_corrupt_feature_cache_is_recomputed(tmp_path) -> None:
    """Row corrupt-feature-cache: an empty and a garbage ``.npy`` are recomputed."""
    from edge_runtime.frontend import EDGE_FRONTEND
    from train.data import DataConfig, load_dataset
    from train.features import cached_features

    data = make_fake_dataset(tmp_path / "d", ["yes", "no"], speakers=2, per_speaker=1)
    dataset = load_dataset(DataConfig(data, task="yes,no"))
    cache = tmp_path / "cache"
    expected = cached_features(dataset, dataset.train, EDGE_FRONTEND, cache)
    (entry,) = cache.glob("*.npy")
    for damage in (b"", b"\x93NUMPY garbage"):
        entry.write_bytes(damage)
        again = cached_features(dataset, dataset.train, EDGE_FRONTEND, cache)
        np.testing.assert_array_equal(again, expected)
        assert entry.stat().st_size > 1000  # rewritten


def test_one_class_training_is_refused(tmp_path) -> None:
    """Row train-one-class: only one label has training examples -> error before training."""
    data = make_fake_dataset(tmp_path / "d", ["yes"], speakers=30, per_speaker=1,
                             with_noise=False)
    r = kws("train", "--data", data, "--task", "yes", "--silence-pct", "0", "--no-mlflow",
            "--out", tmp_path / "out")
    one_error_line(r, "only 1 of .* labels have training examples")
    assert not (tmp_path / "out").exists()


def test_labels_without_examples_and_skipped_clips_are_reported(tmp_path) -> None:
    """Rows train-empty-labels and train-skipped-clips: the warnings ``kws train`` prints
    before training name the empty labels and count the unreadable clips."""
    from train.data import DataConfig, load_dataset
    from train.data_checks import SKIPPED_LIST, check_training_data, write_skipped

    data = make_fake_dataset(tmp_path / "d", ["yes", "no"], speakers=4, per_speaker=2)
    broken = next((data / "no").glob("*.wav"))
    broken.write_bytes(b"RIFF broken")
    dataset = load_dataset(DataConfig(data, task="12"))
    empty, skipped = check_training_data(dataset)
    assert "labels have NO training examples" in empty and "left" in empty and "up" in empty
    assert f"skipped 1 unreadable clips ({broken})" in skipped
    write_skipped(dataset, tmp_path)
    assert (tmp_path / SKIPPED_LIST).read_text().split() == [str(broken)]


@pytest.mark.parametrize("case", ["out-under-a-file", "out-in-proc", "mlflow-in-proc"])
def test_train_checks_the_output_before_training(case: str, tmp_path) -> None:
    """Row train-unwritable-out: refused in seconds, before the data is even loaded."""
    data = make_fake_dataset(tmp_path / "d", ["yes", "no"], speakers=4, per_speaker=2)
    (tmp_path / "file").write_text("x")
    args = {"out-under-a-file": ["--out", tmp_path / "file" / "model", "--no-mlflow"],
            "out-in-proc": ["--out", "/proc/kws-model", "--no-mlflow"],
            "mlflow-in-proc": ["--out", tmp_path / "m", "--tracking-uri",
                               "sqlite:////proc/kws/mlflow.db"]}[case]
    r = kws("train", "--data", data, "--task", "yes,no", "--epochs", "1", *args)
    one_error_line(r, "not writable|not a folder")
    assert b"data:" not in r.stderr  # nothing was loaded, let alone trained


ROWS = (*OPTIONS, "fifo-predict", "fifo-in-evaluate-data", "dev-zero", "ten-hour-wav",
        "non-utf8-file-name", "non-utf8-testing-list", *ENCODINGS, "batch-predict-one-bad",
        "corrupt-feature-cache", "train-one-class", "train-empty-labels",
        "train-skipped-clips", "train-unwritable-out", "long-file-streamed",
        "seed-negative", "train-cv-fold", "train-drop-list")


@pytest.mark.parametrize("rate", [16000, 44100])
def test_long_file_streamed_gives_the_in_memory_answer(rate: int, tmp_path, tiny_models) -> None:
    """Row long-file-streamed: a 150-s file (over STREAM_AFTER_S) is read and scanned in
    blocks; windows, detections and probabilities are those of the whole-file scan."""
    from edge_runtime.model import STREAM_AFTER_S, KwsModel
    from edge_runtime.wav import read_wav, resample

    rng = np.random.default_rng(5)
    t = np.arange(150 * rate) / rate
    x = 0.3 * np.sin(2 * np.pi * 440 * t) * (np.sin(2 * np.pi * 0.2 * t) > 0.5)
    x += 0.01 * rng.standard_normal(t.size)
    path = tmp_path / "long.wav"
    path.write_bytes(wav_bytes(x, rate=rate))
    assert t[-1] > STREAM_AFTER_S
    model = KwsModel(tiny_models["float32"])
    kwargs = {"top_k": 12, "hop_s": 0.37, "threshold": 0.0}
    whole = model.scan(resample(read_wav(path), model.sample_rate).samples, **kwargs)
    streamed = model.classify_file(path, **kwargs)
    tolerance = 0 if rate == model.sample_rate else 1e-4  # soxr in blocks vs at once
    assert [(d.start_s, d.end_s, d.label) for d in streamed.detections] == [
        (d.start_s, d.end_s, d.label) for d in whole.detections]
    for (la, pa), (lb, pb) in zip(streamed.top_k, whole.top_k, strict=True):
        assert la == lb and abs(pa - pb) <= tolerance
