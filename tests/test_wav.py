"""The standard-library WAV reader: formats, channels, rates, and bad files."""

from __future__ import annotations

import struct

import numpy as np
import pytest

from edge_runtime.errors import KwsError
from edge_runtime.wav import decode_wav, encode_wav, fit_clip, load_audio, read_wav, resample
from tests.conftest import speech_like
from tests.wav_fixtures import wav_bytes, wav_declaring

TONE = (0.5 * np.sin(2 * np.pi * 440 * np.arange(1600) / 16000)).astype(np.float32)


@pytest.mark.parametrize(
    ("bits", "fmt", "tol"),
    [(8, "pcm", 1 / 100), (16, "pcm", 1e-4), (24, "pcm", 1e-6), (32, "pcm", 1e-8),
     (32, "float", 0), (64, "float", 0)],
)
@pytest.mark.parametrize("extensible", [False, True])
def test_decodes_every_sample_format(bits: int, fmt: str, tol: float, extensible: bool) -> None:
    audio = decode_wav(wav_bytes(TONE, bits=bits, fmt=fmt, extensible=extensible))
    assert audio.sample_rate == 16000
    assert audio.samples.dtype == np.float32
    np.testing.assert_allclose(audio.samples, TONE, atol=tol + 1e-7)


def test_downmixes_channels() -> None:
    stereo = np.stack([TONE, -TONE * 0.5], axis=1)
    audio = decode_wav(wav_bytes(stereo))
    np.testing.assert_allclose(audio.samples, TONE * 0.25, atol=1e-4)


@pytest.mark.parametrize("rate", [8000, 22050, 44100, 48000])
def test_resamples_to_the_model_rate(rate: int) -> None:
    t = np.arange(rate) / rate
    tone = (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    audio = load_audio(wav_bytes(tone, rate=rate), 16000)
    assert audio.sample_rate == 16000 and audio.samples.size == 16000
    spectrum = np.abs(np.fft.rfft(audio.samples))
    assert abs(int(np.argmax(spectrum)) - 440) <= 1  # 1 Hz bins: the tone stays at 440 Hz


def test_resample_is_identity_at_same_rate() -> None:
    audio = decode_wav(wav_bytes(TONE))
    assert resample(audio, 16000) is audio


def test_round_trip_with_encoder(tmp_path) -> None:
    y = speech_like(0.5)
    path = tmp_path / "a.wav"
    path.write_bytes(encode_wav(y, 16000))
    np.testing.assert_allclose(read_wav(path).samples, y, atol=1 / 32767)


def test_fit_clip_pads_at_end_and_cuts() -> None:
    np.testing.assert_array_equal(fit_clip(np.ones(3, np.float32), 5), [1, 1, 1, 0, 0])
    assert fit_clip(np.ones(9, np.float32), 5).size == 5


BAD = {
    "not a wav": (b"hello world, definitely not audio" * 3, "not a WAV"),
    "empty file": (b"", "not a WAV"),
    "truncated header": (wav_bytes(TONE)[:30], "truncated"),
    "truncated data": (wav_bytes(TONE)[:-100], "truncated"),
    "zero samples": (wav_declaring(0, b""), "empty audio"),
    "absurd size": (wav_declaring(0xFFFFFFF0, b"\x00" * 64), "truncated"),
    "nan samples": (wav_bytes(np.array([0.1, np.nan, 0.2]), bits=32, fmt="float"), "NaN"),
    "inf samples": (wav_bytes(np.array([0.1, np.inf]), bits=32, fmt="float"), "NaN or Inf"),
    "12-bit pcm": (wav_bytes(TONE)[:34] + struct.pack("<H", 12) + wav_bytes(TONE)[36:],
                   "inconsistent"),
}


@pytest.mark.parametrize("case", BAD)
def test_bad_files_raise_clear_errors(case: str) -> None:
    data, message = BAD[case]
    with pytest.raises(KwsError, match=message):
        decode_wav(data)


def test_missing_file_and_folder(tmp_path) -> None:
    with pytest.raises(KwsError, match="no such file"):
        read_wav(tmp_path / "nope.wav")
    with pytest.raises(KwsError, match="folder"):
        read_wav(tmp_path)
