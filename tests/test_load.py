"""The server under load (benchmarks/load.py): 2,000 requests from 50 concurrent clients.

Asserts the invariants, not the latency: no 5xx, every valid upload answered with the label
a direct KwsModel gives, every invalid one a 4xx JSON error, server memory flat after warm-up.
"""

from __future__ import annotations

import pytest

from benchmarks.load import LoadConfig, run_load
from tests.test_bad_inputs import build_tone_models


@pytest.mark.slow
def test_server_under_load(tmp_path) -> None:
    pytest.importorskip("waitress", reason="the server needs waitress (kws-edge[serve])")
    pytest.importorskip("requests")
    model = build_tone_models(tmp_path / "models")["int8"]
    result = run_load(LoadConfig(model=model, requests=2000, clients=50, timeout_s=30))
    assert result["requests"] == 2000
    assert result["server_errors_5xx"] == 0, result["failure_examples"]
    assert result["wrong_answers"] == 0, result["failure_examples"]
    counts = result["status_counts"]
    assert counts.get("200", 0) > 1000 and sum(v for k, v in counts.items()
                                               if k.startswith("4")) > 300, counts
    assert result["server_alive_at_end"] and result["server_tracebacks"] == 0
    assert result["rss_growth_pct"] <= 10, result["rss_kb"]
