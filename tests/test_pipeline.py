"""``kws pipeline`` failures: one error line, status 2, and no empty run folder left behind."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import ROOT
from tests.test_synth import no_espeak_env


def pipeline(*args: str, cwd, env=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "train.cli", "pipeline", *args], cwd=cwd,
                          env=env or no_espeak_env(), capture_output=True, text=True,
                          timeout=600)


def test_demo_without_any_synthesiser_makes_no_run_folder(tmp_path):
    env = {**no_espeak_env(), "KWS_ESPEAK": "binary"}  # the binary alone, and it is missing
    r = pipeline("--demo", cwd=tmp_path, env=env)
    assert r.returncode == 2
    assert r.stderr.startswith("error: espeak-ng not found") and r.stderr.count("\n") == 1
    assert list(tmp_path.iterdir()) == []


def test_a_step_that_fails_removes_the_folder_it_made(tmp_path):
    (tmp_path / "empty").mkdir()
    out = tmp_path / "run"
    r = pipeline("--data", str(tmp_path / "empty"), "--out", str(out),
                 "--tracking-uri", f"sqlite:///{tmp_path / 'mlflow.db'}", cwd=ROOT)
    assert r.returncode == 2 and r.stderr.splitlines()[-1].startswith("error: "), r.stderr
    assert not out.exists()
    r = pipeline("--data", str(tmp_path / "nothing"), "--out", str(out), cwd=ROOT)
    assert r.returncode == 2 and "data folder not found" in r.stderr
    assert not out.exists()


def test_a_folder_given_and_existing_is_kept(tmp_path):
    (tmp_path / "empty").mkdir()
    out = tmp_path / "run"
    out.mkdir()
    r = pipeline("--data", str(tmp_path / "empty"), "--out", str(out),
                 "--tracking-uri", f"sqlite:///{tmp_path / 'mlflow.db'}", cwd=ROOT)
    assert r.returncode == 2 and out.is_dir()
