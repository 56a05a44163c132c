"""Random rooms and microphones: clips played through a synthetic channel.

Each Speech Commands speaker recorded on their own device in their own room, so a new speaker
also brings a new channel. A room is the direct sound followed by an exponentially decaying
noise tail (60 dB down after RT60 seconds, its energy ``drr`` dB under the direct sound's); a
microphone is a linear-phase FIR (``scipy.signal.firwin2``) through random gains at octave
bands. A clip keeps its length, timing and RMS level.
"""

from __future__ import annotations

import numpy as np

from train.levels import row_rms

OCTAVES_HZ = (0.0, 125.0, 250.0, 500.0, 1000.0, 2000.0, 4000.0, 8000.0)
MIC_TAPS = 129  # odd: a type-I FIR, delay (MIC_TAPS - 1) / 2 samples


def room_response(rng: np.random.Generator, sample_rate: int, rt60_s: tuple[float, float],
                  drr_db: tuple[float, float]) -> np.ndarray:
    """Impulse response of a random room: 1 at t=0, then a decaying noise tail."""
    rt60 = rng.uniform(*rt60_s)
    taps = max(1, int(rt60 * sample_rate))
    response = np.zeros(taps)
    response[0] = 1.0
    if taps > 1:
        t = np.arange(1, taps) / sample_rate
        tail = rng.standard_normal(taps - 1) * 10.0 ** (-3.0 * t / rt60)  # -60 dB at rt60
        drr = rng.uniform(*drr_db)
        response[1:] = tail * np.sqrt(10.0 ** (-drr / 10.0) / np.sum(tail**2))
    return response


def microphone_response(rng: np.random.Generator, sample_rate: int, eq_db: float
                        ) -> np.ndarray:
    """A linear-phase FIR of ``MIC_TAPS`` through gains within +-eq_db at octave bands."""
    from scipy.signal import firwin2  # training side only

    nyquist = sample_rate / 2
    freq = np.array([f for f in OCTAVES_HZ if f < nyquist] + [nyquist])
    gains_db = rng.uniform(-eq_db, eq_db, size=freq.size)
    return firwin2(MIC_TAPS, freq, 10.0 ** (gains_db / 20.0), fs=sample_rate)


def through_channel(batch: np.ndarray, rng: np.random.Generator, prob: float,
                    rt60_s: tuple[float, float], drr_db: tuple[float, float], eq_db: float,
                    sample_rate: int) -> np.ndarray:
    """``batch`` ``(N, samples)`` with a share ``prob`` of its rows played through a random
    room (and, with ``eq_db`` > 0, microphone); other rows unchanged, nothing drawn at 0."""
    from scipy.signal import fftconvolve

    out = np.array(batch, dtype=np.float32, copy=True)
    n, samples = out.shape
    if prob <= 0 or n == 0:
        return out
    rows = np.nonzero(rng.random(n) < prob)[0]
    if rows.size == 0:
        return out
    responses = []
    for _ in rows:
        response = room_response(rng, sample_rate, rt60_s, drr_db)
        if eq_db > 0:
            response = np.convolve(response, microphone_response(rng, sample_rate, eq_db))
        responses.append(response)
    stacked = np.zeros((rows.size, max(r.size for r in responses)))
    for i, response in enumerate(responses):
        stacked[i, : response.size] = response
    delay = (MIC_TAPS - 1) // 2 if eq_db > 0 else 0
    played = fftconvolve(out[rows].astype(np.float64), stacked, axes=1)
    played = played[:, delay : delay + samples]
    out[rows] = (played * (row_rms(out[rows]) / np.maximum(row_rms(played), 1e-12))
                 ).astype(np.float32)
    return out
