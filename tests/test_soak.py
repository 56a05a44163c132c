"""The streaming detector over an hour of audio (benchmarks/soak.py), as fast as it runs.

An hour made of one minute repeated 60 times: the first minute gives exactly the events of
the minute run alone, every later minute repeats the second one's events 60 s later (so the
total is known), memory stays flat and per-hop latency does not drift (a leak or work that
grows with the stream would show as a ratio well above 1; the bound is loose on purpose).
"""

from __future__ import annotations

import pytest

from benchmarks.soak import one_minute, run_soak
from edge_runtime.model import KwsModel
from tests.conftest import real_data_dir


@pytest.mark.slow
@pytest.mark.parametrize("source", ["speech", "synthetic"])
def test_one_hour_stream(tiny_models, source: str) -> None:
    data = real_data_dir() if source == "speech" else None
    if source == "speech" and data is None:
        pytest.skip("real speech not found: the synthetic case still runs")
    model = KwsModel(tiny_models["int8"])
    minute, _ = one_minute(model.sample_rate, data)
    result = run_soak(model, minute, minutes=60)
    assert result["hops"] == 36000
    assert result["events_single_minute"] > 0
    assert result["first_minute_matches_single_run"]
    assert result["later_minutes_repeat_exactly"]
    assert result["events_total"] == result["events_expected"]
    assert result["rss_growth_pct"] <= 10, result["rss_kb"]
    assert result["latency_drift_ratio"] < 3, result["hop_ms_median_first_last"]
