"""The model wrapper and the kws-edge CLI on small models built here with TF."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from edge_runtime.cli import main
from edge_runtime.errors import KwsError
from edge_runtime.manifest import load_manifest, manifest_path_for
from edge_runtime.model import KwsModel
from edge_runtime.wav import Audio, write_wav
from tests.conftest import ROOT, speech_like
from tests.model_factory import resealed


def run_cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    """Run ``kws-edge`` in a fresh process (as a user would)."""
    return subprocess.run(
        [sys.executable, "-m", "edge_runtime.cli", *map(str, args)],
        capture_output=True, text=True, cwd=ROOT, env={**os.environ, **(env or {})},
        timeout=120,
    )


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("clips") / "speech.wav"
    write_wav(path, speech_like(0.8), 16000)
    return path


@pytest.mark.parametrize("quant", ["float32", "int8"])
def test_model_loads_and_gives_probabilities(tiny_models, quant: str) -> None:
    model = KwsModel(tiny_models[quant])
    probs = model.predict_samples(speech_like())
    assert probs.shape == (12,)
    assert abs(float(probs.sum()) - 1.0) < 0.02
    pred = model.classify(Audio(speech_like(0.5), 16000), top_k=3)
    assert pred.label == pred.top_k[0][0] and len(pred.top_k) == 3
    assert pred.top_k[0][1] >= pred.top_k[1][1] >= pred.top_k[2][1]
    assert set(pred.timings_ms) == {"frontend", "invoke", "total"}


def test_int8_io_is_quantised_and_close_to_float(tiny_models) -> None:
    f32, i8 = KwsModel(tiny_models["float32"]), KwsModel(tiny_models["int8"])
    assert i8.manifest.input["dtype"] == "int8" and i8.manifest.output["dtype"] == "int8"
    assert f32.manifest.input["dtype"] == "float32"
    x = speech_like(seed=4)
    assert np.abs(f32.predict_samples(x) - i8.predict_samples(x)).max() < 0.15


def test_resampled_input_gives_the_same_label(tiny_models) -> None:
    import soxr

    model = KwsModel(tiny_models["float32"])
    x = speech_like()
    x48 = soxr.resample(x, 16000, 48000).astype(np.float32)
    a = model.classify(Audio(x, 16000))
    b = model.classify(Audio(x48, 48000))
    assert a.label == b.label and abs(a.probability - b.probability) < 0.05


def test_long_audio_is_scanned_into_timestamped_windows(tiny_models) -> None:
    model = KwsModel(tiny_models["float32"])
    x = np.concatenate([speech_like(seed=i) for i in range(3)] + [speech_like(0.3)])
    pred = model.classify(Audio(x, 16000), hop_s=0.5, threshold=0.0)
    assert pred.detections is not None
    assert model.window_starts(x.size, 0.5) == [0, 8000, 16000, 24000, 32000, 36800]
    for d in pred.detections:
        assert 0 <= d.start_s < d.end_s <= x.size / 16000 + 1e-9
        assert d.label not in ("_silence_", "_unknown_")


def test_refuses_a_model_whose_hash_does_not_match(tiny_models, tmp_path) -> None:
    model = tmp_path / "m.tflite"
    shutil.copy(tiny_models["int8"], model)
    shutil.copy(manifest_path_for(tiny_models["float32"]), manifest_path_for(model))
    with pytest.raises(KwsError, match="does not match"):
        KwsModel(model)


def test_refuses_input_shape_that_disagrees_with_frontend(tiny_models, tmp_path) -> None:
    model = tmp_path / "m.tflite"
    shutil.copy(tiny_models["int8"], model)
    data = json.loads(manifest_path_for(tiny_models["int8"]).read_text())
    data["frontend"]["n_mfcc"] = 13
    data["frontend"]["n_mels"] = 40
    data = resealed(data)  # an edit the digest does not catch
    manifest_path_for(model).write_text(json.dumps(data))
    with pytest.raises(KwsError, match="does not fit the front-end"):
        KwsModel(model)


def test_manifest_records_what_the_runtime_needs(tiny_models) -> None:
    m = load_manifest(manifest_path_for(tiny_models["int8"]))
    assert m.quantization == "int8" and len(m.labels) == 12
    assert m.size_bytes == tiny_models["int8"].stat().st_size
    assert m.frontend.feature_shape == (49, 10)


def test_cli_predict_json(tiny_models, clip) -> None:
    r = run_cli("predict", clip, "--model", tiny_models["int8"], "--json", "--top-k", "4")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["file"] == str(clip)
    assert out["label"] in load_manifest(manifest_path_for(tiny_models["int8"])).labels
    assert len(out["top_k"]) == 4 and 0 <= out["probability"] <= 1
    assert {"frontend", "invoke", "total"} <= set(out["timings_ms"])


def test_cli_predict_text_and_info(tiny_models, clip, capsys) -> None:
    assert main(["predict", str(clip), "--model", str(tiny_models["float32"])]) == 0
    assert str(clip) in capsys.readouterr().out
    assert main(["info", "--model", str(tiny_models["int8"]), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["quantization"] == "int8" and info["interpreter"] == "litert"


def test_cli_bench(tiny_models, capsys) -> None:
    assert main(["bench", "--model", str(tiny_models["int8"]), "--runs", "20", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["runs"] == 20 and out["end_to_end_ms"]["median"] > 0


def _bad_inputs(tmp_path: Path, tiny_models) -> dict[str, list[str]]:
    junk = tmp_path / "junk.wav"
    junk.write_bytes(b"not audio at all")
    nan = tmp_path / "nan.wav"
    from tests.wav_fixtures import wav_bytes

    nan.write_bytes(wav_bytes(np.array([0.0, np.nan, 0.1]), bits=32, fmt="float"))
    empty = tmp_path / "empty.wav"
    empty.write_bytes(wav_bytes(np.zeros(0)))
    notmodel = tmp_path / "x.tflite"
    notmodel.write_bytes(b"\x00" * 64)
    manifest = json.loads(manifest_path_for(tiny_models["int8"]).read_text())
    manifest["sha256"] = "0" * 64
    manifest_path_for(notmodel).write_text(json.dumps(manifest))
    good = tmp_path / "good.wav"
    write_wav(good, speech_like(), 16000)
    m = str(tiny_models["int8"])
    return {
        "not a WAV": ["predict", str(junk), "--model", m],
        "NaN samples": ["predict", str(nan), "--model", m],
        "empty audio": ["predict", str(empty), "--model", m],
        "missing file": ["predict", str(tmp_path / "none.wav"), "--model", m],
        "missing model": ["predict", str(good), "--model", str(tmp_path / "none.tflite")],
        "hash mismatch": ["predict", str(good), "--model", str(notmodel)],
        "missing folder": ["evaluate", "--data", str(tmp_path / "nodata"), "--model", m],
        "bad option": ["predict", str(good), "--top-k", "zero", "--model", m],
    }


def test_cli_bad_input_is_one_error_line_and_status_2(tiny_models, tmp_path) -> None:
    for case, args in _bad_inputs(tmp_path, tiny_models).items():
        r = run_cli(*args)
        assert r.returncode == 2, (case, r.stdout, r.stderr)
        lines = [x for x in r.stderr.splitlines() if not x.startswith("INFO:")]
        assert len(lines) == 1 and lines[0].startswith("error: "), (case, r.stderr)
        assert "Traceback" not in r.stderr


def test_cli_refuses_a_file_that_is_not_a_model(tmp_path, tiny_models, clip) -> None:
    fake = tmp_path / "fake.tflite"
    fake.write_bytes(b"TFL3" + os.urandom(200))
    manifest = json.loads(manifest_path_for(tiny_models["int8"]).read_text())
    manifest = resealed(manifest, fake.read_bytes())
    manifest_path_for(fake).write_text(json.dumps(manifest))
    r = run_cli("predict", clip, "--model", fake)
    assert r.returncode == 2 and r.stderr.startswith("error: ") and "not a usable" in r.stderr


def test_edge_runtime_imports_without_tensorflow(tiny_models, clip) -> None:
    code = (
        "import sys\n"
        "sys.modules['tensorflow'] = None; sys.modules['librosa'] = None\n"
        "sys.modules['scipy'] = None; sys.modules['mlflow'] = None\n"
        "sys.modules['train'] = None; sys.modules['convert'] = None\n"
        "from edge_runtime.cli import main\n"
        f"rc = main(['predict', {str(clip)!r}, '--model', {str(tiny_models['int8'])!r}])\n"
        "assert rc == 0, rc\n"
        "bad = [m for m in ('tensorflow', 'librosa', 'scipy', 'mlflow') if sys.modules.get(m)]\n"
        "assert not bad, bad\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                       timeout=120)
    assert r.returncode == 0, r.stderr


def _subset(real_data: Path, dest: Path, per_class: int = 4) -> Path:
    for folder in sorted(p for p in real_data.iterdir() if p.is_dir()):
        (dest / folder.name).mkdir(parents=True)
        for wav in sorted(folder.glob("*.wav"))[:per_class]:
            shutil.copy(wav, dest / folder.name / wav.name)
    return dest


def test_predict_and_evaluate_on_real_clips(real_data, tiny_models, tmp_path) -> None:
    data = _subset(real_data, tmp_path / "mini")
    r = run_cli("evaluate", "--data", data, "--model", tiny_models["int8"], "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["n"] == 12 * 4
    assert sum(map(sum, out["confusion"])) == 48
    assert set(out["per_class_accuracy"]) == set(out["labels"])
    assert 0 <= out["accuracy"] <= 1
    wavs = sorted((data / "yes").glob("*.wav"))[:2]
    r = run_cli("predict", *wavs, "--model", tiny_models["int8"], "--json")
    assert r.returncode == 0 and len(json.loads(r.stdout)) == 2


def test_evaluate_uses_testing_list_when_present(tiny_models, tmp_path) -> None:
    for word in ("yes", "no"):
        (tmp_path / word).mkdir()
        for i in range(3):
            write_wav(tmp_path / word / f"spk{i}_nohash_0.wav", speech_like(seed=i), 16000)
    (tmp_path / "testing_list.txt").write_text("yes/spk0_nohash_0.wav\nno/spk1_nohash_0.wav\n")
    from edge_runtime.evaluate import evaluate_model

    report = evaluate_model(KwsModel(tiny_models["float32"]), tmp_path)
    assert report.n == 2
    assert sorted(p[0] for p in report.predictions) == ["no/spk1_nohash_0.wav",
                                                         "yes/spk0_nohash_0.wav"]
