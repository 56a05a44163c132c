"""The OpenAPI description matches the server: routes, and schemathesis against a live one."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from edge_runtime.model import KwsModel

pytest.importorskip("flask", reason="Flask is not installed (extra [serve])")
yaml = pytest.importorskip("yaml", reason="PyYAML is not installed")

from edge_runtime.serve import OPENAPI_PATH, create_app  # noqa: E402
from tests.test_serve import running_server  # noqa: E402

# Any bytes are a schema-valid binary body, but only a WAV can be classified: those bodies
# get the documented 400, which the positive-data check must accept for this operation.
SCHEMATHESIS_CONFIG = """
[[operations]]
include-path = "/api/predict"
checks.positive_data_acceptance.expected-statuses = ["2xx", "400"]
"""


def test_every_api_route_is_documented(tiny_models) -> None:
    spec = yaml.safe_load(OPENAPI_PATH.read_text())
    assert spec["openapi"].startswith("3.")
    app = create_app(KwsModel(tiny_models["float32"]))
    served = {
        (rule.rule, method.lower())
        for rule in app.url_map.iter_rules()
        if rule.rule.startswith("/api/")
        for method in rule.methods - {"HEAD", "OPTIONS"}
    }
    documented = {(path, method) for path, ops in spec["paths"].items() for method in ops}
    assert served == documented


@pytest.mark.slow
def test_schemathesis_finds_no_failures(tiny_models, tmp_path) -> None:
    cli = shutil.which("schemathesis", path=str(Path(sys.executable).parent))
    if cli is None:
        pytest.skip("schemathesis is not installed (pip install schemathesis)")
    config = tmp_path / "schemathesis.toml"
    config.write_text(SCHEMATHESIS_CONFIG)
    with running_server(tiny_models["int8"]) as url:
        out = subprocess.run(
            [cli, "--config-file", str(config), "run", f"{url}/api/openapi.yaml",
             "--checks", "all", "--max-examples", "30", "--workers", "1", "--seed", "1"],
            capture_output=True, text=True, cwd=tmp_path, timeout=300,
        )
    report = out.stdout + out.stderr
    assert out.returncode == 0, report
    assert "Tested: 3" in report and " passed" in report, report
