"""Property-based tests (hypothesis) and a short atheris run of the WAV reader and front-end.

The reader may only ever raise ``KwsError``, must answer every input quickly (hypothesis
``deadline``), must not allocate what a header merely declares, and decodes what
``tests.wav_fixtures.wav_bytes`` writes in any format. The front-end gives finite features
of the right shape for any finite input.
"""

from __future__ import annotations

import json
import shutil
import struct
import subprocess
import sys
import tracemalloc
from datetime import timedelta

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from edge_runtime.errors import KwsError
from edge_runtime.frontend import (
    EDGE_FRONTEND,
    SEED_FRONTEND,
    Frontend,
    StreamingFrontend,
    frames_in,
)
from edge_runtime.wav import MAX_SAMPLE_RATE, MIN_SAMPLE_RATE, decode_wav, encode_wav
from tests.conftest import ROOT
from tests.wav_fixtures import wav_bytes

FAST = settings(max_examples=300, deadline=timedelta(milliseconds=500),
                suppress_health_check=[HealthCheck.too_slow])
FORMATS = [(8, "pcm"), (16, "pcm"), (24, "pcm"), (32, "pcm"), (32, "float"), (64, "float")]
# wav_bytes writes 8-bit as x*127+128 and the reader divides by 128: up to 1/128 + 1/256 off.
TOLERANCE = {(8, "pcm"): 1.5 / 128, (16, "pcm"): 1e-4, (24, "pcm"): 1e-6, (32, "pcm"): 1e-6,
             (32, "float"): 1e-6, (64, "float"): 1e-6}


def decode_or_kws_error(data: bytes):
    """decode_wav's answer, or None when it refused with KwsError (anything else fails)."""
    try:
        audio = decode_wav(data)
    except KwsError as exc:
        assert str(exc).startswith("input: ") and "\n" not in str(exc)
        return None
    assert audio.samples.dtype == np.float32 and audio.samples.ndim == 1
    assert 0 < audio.samples.size <= len(data)
    assert np.isfinite(audio.samples).all()
    assert MIN_SAMPLE_RATE <= audio.sample_rate <= MAX_SAMPLE_RATE
    return audio


@FAST
@given(st.binary(max_size=2048))
def test_arbitrary_bytes_give_audio_or_kws_error(data: bytes) -> None:
    decode_or_kws_error(data)


@FAST
@given(st.binary(max_size=512))
def test_arbitrary_bytes_after_a_riff_header(body: bytes) -> None:
    decode_or_kws_error(b"RIFF" + struct.pack("<I", len(body) + 4) + b"WAVE" + body)


u16 = st.integers(0, 0xFFFF)
u32 = st.integers(0, 0xFFFFFFFF)


@st.composite
def wav_headers(draw) -> bytes:
    """Chunk structures with every header field drawn, plausible or not."""
    tag = draw(st.sampled_from([1, 3, 0xFFFE, 0, 2, 0x55]) | u16)
    channels = draw(st.sampled_from([1, 2, 6, 0, 65]) | u16)
    rate = draw(st.sampled_from([8000, 16000, 44100, 1, 0, 10**6]) | u32)
    bits = draw(st.sampled_from([8, 16, 24, 32, 64, 0, 12, 7]) | u16)
    block = draw(st.sampled_from([channels * bits // 8 & 0xFFFF, 0, 1]) | u16)
    fmt = struct.pack("<HHIIHH", tag, channels, rate, rate * max(block, 1) & 0xFFFFFFFF,
                      block, bits)
    if draw(st.booleans()):  # a WAVE_FORMAT_EXTENSIBLE tail with some sub-format
        fmt += struct.pack("<HHIH", 22, bits, 0, draw(u16)) + b"\x00" * 14
    fmt = fmt[: draw(st.integers(0, len(fmt)))] if draw(st.booleans()) else fmt
    fmt_size = draw(st.sampled_from([len(fmt), 16, 40, 0xFFFFFFFF]) | u32)
    payload = draw(st.binary(max_size=256))
    data_size = draw(st.sampled_from([len(payload), 0, 0xFFFFFFFF, 0x7FFFFFFF]) | u32)
    chunks = [b"fmt " + struct.pack("<I", fmt_size) + fmt,
              b"data" + struct.pack("<I", data_size) + payload]
    if draw(st.booleans()):
        chunks.insert(draw(st.integers(0, 2)), b"LIST" + struct.pack("<I", draw(u32)) + b"INFO")
    if draw(st.booleans()):
        chunks.reverse()
    body = b"WAVE" + b"".join(chunks)
    return b"RIFF" + struct.pack("<I", draw(st.sampled_from([len(body), 0, 0xFFFFFFFF]))) + body


@FAST
@given(wav_headers())
def test_any_header_fields_give_audio_or_kws_error(data: bytes) -> None:
    decode_or_kws_error(data)


@pytest.mark.parametrize("field", ["data", "fmt ", "LIST", "RIFF"])
def test_declared_giant_sizes_are_not_allocated(field: str) -> None:
    body = np.zeros(1000, np.int16).tobytes()
    fmt = b"fmt " + struct.pack("<IHHIIHH", 16, 1, 1, 16000, 32000, 2, 16)
    sizes = {k: None for k in ("data", "fmt ", "LIST", "RIFF")}
    sizes[field] = 0xFFFFFFF0
    riff_size = sizes["RIFF"] or 4 + len(fmt) + 12 + 8 + len(body)
    data = (b"RIFF" + struct.pack("<I", riff_size) + b"WAVE"
            + (fmt if field != "fmt " else b"fmt " + struct.pack("<I", sizes["fmt "]) + fmt[8:])
            + b"LIST" + struct.pack("<I", sizes["LIST"] or 4) + b"INFO"
            + b"data" + struct.pack("<I", sizes["data"] or len(body)) + body)
    tracemalloc.start()
    try:
        audio = decode_or_kws_error(data)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1_000_000, f"decode_wav allocated {peak:,} bytes for a {len(data):,}-byte file"
    if field == "RIFF":  # the RIFF size is not needed to read the chunks
        assert audio is not None and audio.samples.size == 1000
    else:
        assert audio is None


@settings(max_examples=150, deadline=timedelta(seconds=2))
@given(
    st.sampled_from(FORMATS),
    st.integers(1, 3),
    st.sampled_from([8000, 16000, 22050, 44100, 48000]),
    st.booleans(),
    hnp.arrays(np.float64, st.integers(1, 2000), elements=st.floats(-1, 1)),
)
def test_every_format_round_trips(fmt, channels: int, rate: int, extensible: bool,
                                  x: np.ndarray) -> None:
    bits, kind = fmt
    frames = np.stack([x * (1 - 0.3 * c) for c in range(channels)], axis=1)
    audio = decode_wav(wav_bytes(frames, rate, bits, kind, extensible))
    assert audio.sample_rate == rate and audio.samples.size == x.size
    np.testing.assert_allclose(audio.samples, frames.mean(axis=1),
                               atol=TOLERANCE[fmt] + 1e-6, rtol=0)


@given(hnp.arrays(np.float64, st.integers(1, 2000), elements=st.floats(-1, 1)))
@settings(max_examples=100, deadline=timedelta(seconds=1))
def test_encode_wav_round_trips_within_one_step(x: np.ndarray) -> None:
    np.testing.assert_allclose(decode_wav(encode_wav(x, 16000)).samples, x, atol=2 / 32767)


finite32 = st.floats(-1e3, 1e3, width=32)
extreme32 = st.floats(width=32, allow_nan=False, allow_infinity=False) | st.sampled_from(
    [0.0, -0.0, 1e-45, -1e-45, 1e-38, 3.4e38, -3.4e38, 1.0, -1.0])


@pytest.mark.parametrize("config", [EDGE_FRONTEND, SEED_FRONTEND], ids=["edge", "seed"])
@settings(max_examples=60, deadline=timedelta(seconds=2))
@given(x=hnp.arrays(np.float32, st.integers(0, 20000), elements=finite32))
def test_frontend_is_finite_for_any_finite_input(config, x: np.ndarray) -> None:
    features = Frontend(config)(x)
    assert features.shape == (frames_in(x.size, config), config.n_mfcc)
    assert features.dtype == np.float32 and np.isfinite(features).all()


@settings(max_examples=60, deadline=timedelta(seconds=2))
@given(x=hnp.arrays(np.float32, st.integers(0, 5000), elements=extreme32))
def test_frontend_is_finite_for_extreme_values(x: np.ndarray) -> None:
    features = Frontend(EDGE_FRONTEND)(x)
    assert features.shape == (frames_in(x.size, EDGE_FRONTEND), EDGE_FRONTEND.n_mfcc)
    assert np.isfinite(features).all()


@settings(max_examples=40, deadline=timedelta(seconds=2))
@given(
    x=hnp.arrays(np.float32, st.integers(0, 6000), elements=extreme32),
    cuts=st.lists(st.integers(0, 6000), max_size=8),
)
def test_streaming_is_finite_and_equals_batch_for_extreme_values(x: np.ndarray,
                                                                 cuts: list[int]) -> None:
    """Equal to float rounding: on silence the exact answer 0 comes out as +-1e-13 noise
    that depends on how many frames BLAS multiplies at once (1 frame: gemv, more: gemm)."""
    stream = StreamingFrontend(EDGE_FRONTEND)
    edges = [0, *sorted(c for c in cuts if c <= x.size), x.size]
    parts = [stream.push(x[a:b]) for a, b in zip(edges[:-1], edges[1:], strict=True)]
    streamed = np.concatenate(parts) if parts else np.zeros((0, EDGE_FRONTEND.n_mfcc))
    batch = Frontend(EDGE_FRONTEND)(x)
    assert np.isfinite(streamed).all()
    np.testing.assert_allclose(streamed, batch, rtol=1e-6, atol=1e-9)


@pytest.mark.skipif(shutil.which("true") is None, reason="needs a POSIX shell")
def test_atheris_fuzzing_finds_nothing(tmp_path) -> None:
    """100,000 coverage-guided inputs (or 20 s) through tests/fuzz_wav.py. Started through
    benchmarks/child_usage.py: a child's peak RSS on Linux starts at the RSS of the process it
    was spawned from, and this test process may hold GBs of TensorFlow by now, which libFuzzer's
    -rss_limit_mb would count as the fuzzer's own."""
    pytest.importorskip("atheris", reason="atheris not installed: pip install atheris")
    r = subprocess.run(
        [sys.executable, "-S", str(ROOT / "benchmarks" / "child_usage.py"), sys.executable,
         str(ROOT / "tests" / "fuzz_wav.py"), "-runs=100000", "-max_total_time=20",
         f"-artifact_prefix={tmp_path}/", "-seed=1"],
        capture_output=True, text=True, cwd=tmp_path, timeout=120,
    )
    usage = json.loads(r.stdout)
    crashes = [*tmp_path.glob("crash-*"), *tmp_path.glob("timeout-*"), *tmp_path.glob("oom-*")]
    assert r.returncode == 0 and usage["status"] == 0 and not crashes, r.stderr[-3000:]
    assert usage["maxrss_kb"] < 2048 * 1024  # the fuzzer's own memory: fuzz_wav.py's -rss_limit_mb
    assert "Done " in r.stderr
