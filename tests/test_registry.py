"""MLflow Model Registry against a real SQLite store: gated models become versions, the
``champion`` alias moves only to a better version on the same test split, ``kws export`` and
``kws convert --model-uri``."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from convert.convert import ConvertConfig, convert_model
from convert.registry import CHAMPION, registered_name
from edge_runtime.manifest import load_manifest, manifest_path_for
from edge_runtime.model import KwsModel
from tests.model_factory import tiny_keras_model
from tests.test_convert import TASK, kws, trained  # noqa: F401  (a fixture)
from train.settings import ModelSettings

NAME = registered_name(TASK)


def client_of(trained):  # noqa: F811
    from mlflow.tracking import MlflowClient

    return MlflowClient(trained["tracking"], trained["tracking"])


def untrained_folder(trained, root: Path) -> Path:  # noqa: F811
    """A model of the same shape with random weights: a worse model on the same task."""
    settings = ModelSettings.load(trained["folder"])
    folder = root / "untrained"
    folder.mkdir()
    tiny_keras_model(settings.frontend, len(settings.labels)).save(folder / "model.keras")
    shutil.copy(trained["folder"] / "model_settings.json", folder)
    return folder


def convert(trained, folder: Path, out: Path, min_accuracy: float = 0.0,  # noqa: F811
            data: Path | None = None):
    return convert_model(ConvertConfig(
        data_dir=data or trained["data"], keras_path=folder / "model.keras", out_dir=out,
        max_drop=100.0, min_accuracy=min_accuracy, calibration=40,
        tracking_uri=trained["tracking"]))


@pytest.fixture(scope="module")
def history(trained, tmp_path_factory):  # noqa: F811
    """worse model -> v1, trained model -> v2, worse again -> v3, other test split -> v4."""
    root = tmp_path_factory.mktemp("registry")
    worse = untrained_folder(trained, root)
    other_split = root / "data_other_split"  # one test clip fewer
    shutil.copytree(trained["data"], other_split)
    listed = (other_split / "testing_list.txt").read_text().splitlines()
    (other_split / listed[0]).unlink()
    (other_split / "testing_list.txt").write_text("\n".join(listed[1:]) + "\n")
    steps = {}
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)  # MLflow puts a new experiment's artifacts in ./mlruns
        for key, folder, data in (("v1", worse, None), ("v2", trained["folder"], None),
                                  ("v3", worse, None), ("v4", trained["folder"], other_split)):
            steps[key] = convert(trained, folder, root / key, data=data)
        steps["refused"] = convert(trained, trained["folder"], root / "refused",
                                   min_accuracy=100.0)
    steps["root"] = root
    return steps


def test_every_gated_model_is_a_version_with_files_and_tags(history, trained):  # noqa: F811
    client = client_of(trained)
    versions = {int(v.version): v for v in client.search_model_versions(f"name = '{NAME}'")}
    assert sorted(versions) == [1, 2, 3, 4]  # the refused model is not registered
    assert history["refused"].registration is None and not history["refused"].passed
    for key, number in (("v1", 1), ("v2", 2), ("v3", 3), ("v4", 4)):
        result, version = history[key], versions[number]
        assert result.registration.version == number and result.registration.name == NAME
        tags = version.tags
        assert float(tags["int8_accuracy"]) == pytest.approx(
            result.comparison.reports["int8"].accuracy, abs=1e-6)
        assert tags["gate"] == "passed" and int(tags["int8_size_bytes"]) > 0
        assert set(tags) >= {"float32_accuracy", "keras_accuracy", "drop_points",
                             "data_sha256", "test_split_sha256", "float32_size_bytes"}
        assert version.run_id == result.mlflow_run_id
    assert versions[1].tags["test_split_sha256"] == versions[2].tags["test_split_sha256"]
    assert versions[4].tags["test_split_sha256"] != versions[2].tags["test_split_sha256"]
    files = {f.path.rsplit("/", 1)[-1] for f in client.list_artifacts(
        versions[2].run_id, versions[2].source.rsplit("/artifacts/", 1)[-1])}
    assert files >= {"kws_int8.tflite", "kws_float32.tflite", "kws_int8.manifest.json",
                     "kws_float32.manifest.json", "kws_report.md"}


def test_champion_moves_only_to_a_better_version_on_the_same_split(history,
                                                                   trained):  # noqa: F811
    acc = {k: history[k].comparison.reports["int8"].accuracy for k in ("v1", "v2", "v3")}
    assert acc["v2"] > acc["v1"] and acc["v3"] < acc["v2"]  # the trained model is better
    moved = {k: history[k].registration.champion for k in ("v1", "v2", "v3", "v4")}
    assert moved == {"v1": True, "v2": True, "v3": False, "v4": False}
    assert "another test split" in history["v4"].registration.reason
    assert "does not beat version 2" in history["v3"].registration.reason
    assert int(client_of(trained).get_model_version_by_alias(NAME, CHAMPION).version) == 2


def test_export_writes_the_champions_int8_model(history, trained, tmp_path):  # noqa: F811
    uri = f"models:/{NAME}@{CHAMPION}"
    done = kws("export", "--model-uri", uri, "--out", tmp_path / "dev", "--tracking-uri",
               trained["tracking"])
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in (tmp_path / "dev").iterdir()) == [
        "kws_int8.manifest.json", "kws_int8.tflite"]
    shipped = history["v2"].models["int8"]
    assert (tmp_path / "dev" / "kws_int8.tflite").read_bytes() == shipped.read_bytes()
    assert KwsModel(tmp_path / "dev" / "kws_int8.tflite").labels == trained["dataset"].labels
    assert "int8 accuracy" in done.stdout
    # the same files again: fine; another version's over them: refused unless --force
    again = kws("export", "--model-uri", uri, "--out", tmp_path / "dev", "--tracking-uri",
                trained["tracking"])
    assert again.returncode == 0, again.stderr
    other = kws("export", "--model-uri", f"models:/{NAME}/1", "--out", tmp_path / "dev",
                "--tracking-uri", trained["tracking"])
    assert other.returncode == 2 and other.stderr.strip().endswith("give --force")
    assert (tmp_path / "dev" / "kws_int8.tflite").read_bytes() == shipped.read_bytes()
    forced = kws("export", "--model-uri", f"models:/{NAME}/1", "--out", tmp_path / "dev",
                 "--force", "--tracking-uri", trained["tracking"])
    assert forced.returncode == 0, forced.stderr
    assert ((tmp_path / "dev" / "kws_int8.tflite").read_bytes()
            == history["v1"].models["int8"].read_bytes())


@pytest.mark.parametrize("uri, message", [
    (f"models:/{NAME}@nosuch", "not in the registry"),
    ("models:/kws-edge-none/1", "not in the registry"),
    ("models:/", "use models:/NAME/VERSION or models:/NAME@ALIAS"),
])
def test_export_bad_uri_is_one_error_line(trained, tmp_path, uri, message):  # noqa: F811
    done = kws("export", "--model-uri", uri, "--out", tmp_path / "x", "--tracking-uri",
               trained["tracking"])
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and lines[-1].startswith("error: ") and message in lines[-1]
    assert "Traceback" not in done.stderr and not (tmp_path / "x").exists()


def test_convert_from_the_registry(history, trained, tmp_path):  # noqa: F811
    out = tmp_path / "out"
    done = kws("convert", "--model-uri", f"models:/{NAME}@{CHAMPION}", "--data",
               trained["data"], "--out", out, "--calibration", "40", "--max-drop", "100",
               "--no-register", "--tracking-uri", trained["tracking"])
    assert done.returncode == 0, done.stderr
    manifest = load_manifest(manifest_path_for(out / "kws_int8.tflite"))
    assert manifest.source_run_id == history["v2"].mlflow_run_id
    assert manifest.accuracy["int8"] == pytest.approx(
        history["v2"].comparison.reports["int8"].accuracy, abs=1e-6)
    assert "registered" not in done.stdout
    client = client_of(trained)
    assert len(client.search_model_versions(f"name = '{NAME}'")) == 4  # --no-register



def test_convert_prints_a_small_table_and_no_tensorflow_chatter(trained, tmp_path):  # noqa: F811
    done = kws("convert", "--keras", trained["folder"], "--data", trained["data"], "--out",
               tmp_path / "out", "--calibration", "20", "--max-drop", "100", "--no-mlflow")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].split() == ["model", "accuracy", "bytes"]
    assert [x.split()[0] for x in lines[1:4]] == ["keras", "float32", "int8"]
    assert lines[4].endswith("of them") and "test clips" in lines[4]
    assert lines[5] == (f"models: {tmp_path / 'out' / 'kws_float32.tflite'}, "
                        f"{tmp_path / 'out' / 'kws_int8.tflite'}")
    assert "{" not in done.stdout
    assert "TensorSpec" not in done.stderr and "flatbuffer_export" not in done.stderr
    assert len(done.stderr.splitlines()) < 20, done.stderr


def test_captured_output_hides_c_level_chatter_and_replays_it_on_failure(capfd):
    import os

    from convert.tflite import captured_output

    with captured_output():
        print("python chatter")
        os.write(1, b"fd1 chatter\n")
        os.write(2, b"fd2 chatter\n")
    assert capfd.readouterr() == ("", "")
    with pytest.raises(ValueError), captured_output():
        os.write(2, b"the converter's last words\n")
        raise ValueError("conversion failed")
    assert "the converter's last words" in capfd.readouterr().err


def test_captured_output_leaves_log_handlers_made_inside_it_writing_to_stderr(capfd):
    """TensorFlow makes its log handler on first use, inside a conversion: later warnings must
    reach stderr, not the closed temporary file ("--- Logging error ---")."""
    import logging

    from convert.tflite import captured_output

    logger = logging.getLogger("kws-test-made-inside")
    logger.propagate = False
    with captured_output():
        handler = logging.StreamHandler()  # binds to the stderr of the moment
        logger.addHandler(handler)
        logger.warning("inside")
    try:
        logger.warning("after the block")
    finally:
        logger.removeHandler(handler)
    err = capfd.readouterr().err
    assert "after the block" in err and "Logging error" not in err and "inside" not in err
