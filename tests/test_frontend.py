"""The NumPy front-end: parity with librosa, streaming == batch, config round trip."""

from __future__ import annotations

import json

import numpy as np
import pytest

from benchmarks.frontend import librosa_mfcc
from edge_runtime.frontend import (
    EDGE_FRONTEND,
    LOG_MEL_FRONTEND,
    SEED_FRONTEND,
    WIDEBAND_FRONTEND,
    Frontend,
    FrontendConfig,
    StreamingFrontend,
    frames_in,
    mel_filterbank,
    mfcc,
)
from tests.conftest import speech_like

CONFIGS = {"seed_99x40": SEED_FRONTEND, "edge_49x10": EDGE_FRONTEND,
           "edge_49x10_8k": WIDEBAND_FRONTEND, "log_mel_49x40": LOG_MEL_FRONTEND}


def signals() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(7)
    return {
        "speech_like": speech_like(seed=3),
        "white_noise": (0.1 * rng.standard_normal(16000)).astype(np.float32),
        "quiet_noise": (1e-4 * rng.standard_normal(16000)).astype(np.float32),
        "loud_clipped": np.clip(3 * speech_like(seed=5), -1, 1).astype(np.float32),
    }


@pytest.mark.parametrize("name", CONFIGS)
@pytest.mark.parametrize("signal", signals())
def test_matches_librosa(name: str, signal: str) -> None:
    config = CONFIGS[name]
    y = signals()[signal]
    ours = mfcc(y, config)
    ref = librosa_mfcc(y, config)
    assert ours.dtype == np.float32
    assert ours.shape == ref.shape == config.feature_shape
    assert np.abs(ours - ref).max() <= 1e-3


def test_shapes_of_the_configs() -> None:
    assert SEED_FRONTEND.feature_shape == (99, 40)
    assert EDGE_FRONTEND.feature_shape == (49, 10)
    assert LOG_MEL_FRONTEND.feature_shape == (49, 40)
    assert LOG_MEL_FRONTEND.describe() == "49 frames x 40 log-mel"
    assert (EDGE_FRONTEND.win_length, EDGE_FRONTEND.hop_length) == (480, 320)


def test_real_speech_matches_librosa(real_data) -> None:
    from edge_runtime.wav import read_wav

    for path in sorted((real_data / "yes").glob("*.wav"))[:3]:
        y = read_wav(path).samples
        for config in CONFIGS.values():
            y1 = y[: config.clip_samples]
            assert np.abs(mfcc(y1, config) - librosa_mfcc(y1, config)).max() <= 1e-3


def test_batch_equals_per_clip() -> None:
    clips = np.stack([speech_like(seed=i) for i in range(4)])
    batch = mfcc(clips, EDGE_FRONTEND)
    assert batch.shape == (4, 49, 10)
    for i in range(4):
        np.testing.assert_array_equal(batch[i], mfcc(clips[i], EDGE_FRONTEND))


@pytest.mark.parametrize("name", CONFIGS)
def test_streaming_equals_batch_for_any_chunking(name: str) -> None:
    config = CONFIGS[name]
    rng = np.random.default_rng(11)
    audio = np.concatenate([speech_like(seed=1), signals()["white_noise"],
                            np.zeros(3000, np.float32), speech_like(0.7)])
    expected = Frontend(config)(audio)
    for sizes in (list(rng.integers(1, 50, 40)), list(rng.integers(1, 2000, 200)),
                  [config.hop_length] * 400, [audio.size]):
        stream = StreamingFrontend(config)
        got, pos = [], 0
        for n in sizes:
            got.append(stream.push(audio[pos : pos + n]))
            pos += n
        if pos < audio.size:
            got.append(stream.push(audio[pos:]))
        out = np.concatenate(got)
        assert out.shape == expected.shape
        np.testing.assert_array_equal(out, expected)
        assert stream.frames_done == frames_in(audio.size, config)


def test_streaming_computes_only_new_frames() -> None:
    stream = StreamingFrontend(EDGE_FRONTEND)
    assert stream.push(np.zeros(EDGE_FRONTEND.n_fft - 1, np.float32)).shape == (0, 10)
    assert stream.push(np.zeros(1, np.float32)).shape == (1, 10)
    assert stream.push(np.zeros(EDGE_FRONTEND.hop_length, np.float32)).shape == (1, 10)
    assert stream.push(np.zeros(3 * EDGE_FRONTEND.hop_length, np.float32)).shape == (3, 10)
    stream.reset()
    assert stream.frames_done == 0


def test_streaming_takes_any_real_dtype_and_lists() -> None:
    """Chunks as float32, int16 or a plain list give the frames of the same values in float64."""
    audio = np.round(speech_like(seed=2) * 1000)
    expected = Frontend(EDGE_FRONTEND)(audio.astype(np.float64))
    for chunk_of in (lambda a: a.astype(np.float32), lambda a: a.astype(np.int16),
                     lambda a: a.tolist()):
        stream = StreamingFrontend(EDGE_FRONTEND)
        hop = EDGE_FRONTEND.hop_length
        out = np.concatenate([stream.push(chunk_of(audio[i : i + hop]))
                              for i in range(0, audio.size, hop)])
        np.testing.assert_array_equal(out, expected)


def test_output_is_finite_on_silence_and_short_input() -> None:
    out = mfcc(np.zeros(16000, np.float32), EDGE_FRONTEND)
    assert np.isfinite(out).all()
    assert mfcc(np.zeros(100, np.float32), EDGE_FRONTEND).shape == (0, 10)


def test_config_json_round_trip_and_validation() -> None:
    text = SEED_FRONTEND.to_json()
    assert FrontendConfig.from_dict(json.loads(text)) == SEED_FRONTEND
    assert SEED_FRONTEND.key() != EDGE_FRONTEND.key()
    with pytest.raises(ValueError, match="unknown"):
        FrontendConfig.from_dict({"bogus": 1})
    with pytest.raises(ValueError, match="fmax"):
        FrontendConfig(fmax=9000.0)
    with pytest.raises(ValueError, match="n_fft"):
        FrontendConfig(window_ms=40.0, n_fft=512)
    with pytest.raises(ValueError, match="features"):
        FrontendConfig(features="spectrogram")
    assert FrontendConfig.from_dict(LOG_MEL_FRONTEND.to_dict()) == LOG_MEL_FRONTEND


def test_log_mel_is_the_mfcc_before_its_dct() -> None:
    """An MFCC config and its log-mel twin share everything up to the DCT."""
    from dataclasses import replace

    from edge_runtime.frontend import dct_matrix

    y = speech_like(seed=2)
    mfcc_config = replace(LOG_MEL_FRONTEND, features="mfcc", n_mfcc=13)
    log_mel = mfcc(y, LOG_MEL_FRONTEND).astype(np.float64)
    expected = log_mel @ dct_matrix(40, 13).T.astype(np.float64)
    np.testing.assert_allclose(mfcc(y, mfcc_config), expected, atol=1e-3)


def test_mel_filters_have_no_empty_rows() -> None:
    for config in CONFIGS.values():
        assert (mel_filterbank(config).sum(axis=1) > 0).all()
