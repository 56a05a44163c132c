"""What an install puts on a machine: the device distribution holds ``edge_runtime`` and the
shipped model only; the toolchain (``toolchain/pyproject.toml``) without its training extras
refuses in one line. Real installs into a fresh venv (pip fetches numpy, soxr, ai-edge-litert
from the index or its cache)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

import pytest

from tests.conftest import ROOT

SOURCES = ("pyproject.toml", "README.md", "edge_runtime", "artifacts", "toolchain", "kws",
           "train", "convert", "benchmarks")
TOOLCHAIN_PACKAGES = {"kws", "train", "convert", "benchmarks", "artifacts"}


def copy_sources(dest: Path) -> Path:
    """The files a build reads, without caches or build leftovers of the checkout."""
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info", "build", "results")
    dest.mkdir(parents=True)
    for name in SOURCES:
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, dest / name, ignore=ignore)
        else:
            shutil.copy2(src, dest / name)
    return dest


def pip(python: Path, *args: str) -> None:
    done = subprocess.run([str(python), "-m", "pip", "install", "-q",
                           "--disable-pip-version-check", *args],
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]


@pytest.mark.slow
def test_device_install_holds_edge_runtime_and_the_model_only(tmp_path):
    src = copy_sources(tmp_path / "src")
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    python, bin_dir = env_dir / "bin" / "python", env_dir / "bin"
    pip(python, f"{src}[edge]")
    site = Path(subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True, text=True, check=True).stdout.strip())
    top = {p.name for p in site.iterdir()}
    assert "edge_runtime" in top
    assert not TOOLCHAIN_PACKAGES & top, TOOLCHAIN_PACKAGES & top
    assert (bin_dir / "kws-edge").is_file() and not (bin_dir / "kws").exists()
    info = subprocess.run([str(bin_dir / "kws-edge"), "info", "--json"], capture_output=True,
                          text=True, timeout=120, cwd=tmp_path)
    assert info.returncode == 0, info.stderr
    model = Path(json.loads(info.stdout)["model"])
    assert model.parent == site / "edge_runtime" / "shipped"
    assert model.read_bytes() == (ROOT / "artifacts" / "kws_int8.tflite").read_bytes()

    # the toolchain beside it, without the training extras: one error line, status 2
    pip(python, str(src / "toolchain"))
    assert {"kws", "train", "convert", "benchmarks"} <= {p.name for p in site.iterdir()}
    r = subprocess.run([str(bin_dir / "kws"), "train", "--data", str(tmp_path)],
                       capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr.startswith("error: kws needs the training extras (tensorflow")
    assert r.stderr.count("\n") == 1, r.stderr


def test_this_checkout_runs_the_shipped_model_from_artifacts():
    """In the repository (editable install) the package data is the artifacts/ folder."""
    from edge_runtime.paths import default_model

    assert default_model().resolve() == (ROOT / "artifacts" / "kws_int8.tflite").resolve()
    assert sysconfig.get_paths()["purelib"] not in str(default_model().resolve())
    assert sys.modules["edge_runtime.shipped"].__file__.startswith(str(ROOT))
