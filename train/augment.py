"""Data augmentation on batches, vectorised NumPy, deterministic for a given Generator.

Waveforms (``(N, samples)``): speed perturbation (tempo and pitch together, as sox
``speed``), time shift, gain, a random room and microphone (:mod:`train.channel`),
background-noise mixing at a random SNR
(recordings from ``_background_noise_`` or ``_silence_`` clips, else generated white / pink /
brown noise). Features (``(N, frames, n_mfcc)``): SpecAugment time and frequency masks;
mixup of features, targets and loss weights together.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from train.channel import through_channel
from train.levels import row_rms

COLOURS = {"white": 0.0, "pink": 0.5, "brown": 1.0}  # amplitude ~ 1 / f**exponent


@dataclass(frozen=True)
class AugmentConfig:
    noise: bool = True
    noise_prob: float = 0.8  # share of clips that get noise
    noise_snr_db: tuple[float, float] = (5.0, 20.0)  # speech-to-noise ratio range
    noise_colours: tuple[str, ...] = ("white", "pink", "brown")  # used without recordings
    min_level: float = 0.01  # RMS the SNR refers to for (nearly) silent clips
    # each clip played at a random speed within +-speed_pct %: a speaker's pitch, vocal
    # tract and tempo all move together, a cheap stand-in for more speakers (0: off)
    speed_pct: float = 0.0
    # mel band edges scaled by a random factor within +-vtlp_pct % per clip: a speaker's
    # spectral envelope moves, the tempo does not (train.vtlp; 0: off)
    vtlp_pct: float = 0.0
    # frames cut at a hop scaled by a random factor within +-tempo_pct % per clip: the word is
    # said faster or slower, the voice does not change (train.tempo; 0: off)
    tempo_pct: float = 0.0
    shift: bool = True
    shift_ms: float = 100.0  # shift by up to +-shift_ms, zero-filled
    gain: bool = True
    gain_db: float = 6.0  # gain up to +-gain_db
    # share of clips played through a random room (reverberation time rt60_s, direct-to-
    # reverberant ratio drr_db) and microphone (gains within +-eq_db at octave bands; 0: no
    # microphone): each speaker's own room and device, another stand-in for more speakers
    channel_prob: float = 0.0
    rt60_s: tuple[float, float] = (0.1, 0.6)
    drr_db: tuple[float, float] = (3.0, 20.0)
    eq_db: float = 6.0
    specaugment: bool = True
    time_masks: int = 2
    time_mask_frames: int = 5  # each mask is 0..time_mask_frames wide
    freq_masks: int = 1
    freq_mask_bins: int = 2  # each mask is 0..freq_mask_bins coefficients wide
    sample_rate: int = 16000

    def __post_init__(self) -> None:
        unknown = set(self.noise_colours) - set(COLOURS)
        if unknown:
            raise ValueError(f"unknown noise colours {sorted(unknown)}; use {list(COLOURS)}")
        if not 0 <= self.noise_prob <= 1:
            raise ValueError("noise_prob must be within 0-1")
        if self.noise_snr_db[0] > self.noise_snr_db[1]:
            raise ValueError("noise_snr_db must be (low, high)")
        if not 0 <= self.speed_pct < 50:
            raise ValueError(f"speed_pct must be within 0-50 (excluded), got {self.speed_pct}")
        if not 0 <= self.vtlp_pct < 50:
            raise ValueError(f"vtlp_pct must be within 0-50 (excluded), got {self.vtlp_pct}")
        if not 0 <= self.tempo_pct < 50:
            raise ValueError(f"tempo_pct must be within 0-50 (excluded), got {self.tempo_pct}")
        if not 0 <= self.channel_prob <= 1:
            raise ValueError(f"channel_prob must be within 0-1, got {self.channel_prob}")
        if not 0 < self.rt60_s[0] <= self.rt60_s[1] or self.drr_db[0] > self.drr_db[1]:
            raise ValueError("rt60_s must be (low, high) > 0 and drr_db (low, high)")
        if self.eq_db < 0:
            raise ValueError(f"eq_db must be >= 0, got {self.eq_db}")


def coloured_noise(rng: np.random.Generator, n: int, samples: int, colour: str) -> np.ndarray:
    """``(n, samples)`` noise with unit RMS and a 1/f**k amplitude spectrum."""
    white = rng.standard_normal((n, samples))
    exponent = COLOURS[colour]
    if exponent:
        spectrum = np.fft.rfft(white, axis=1)
        scale = np.arange(spectrum.shape[1], dtype=np.float64)
        scale[0] = 1.0
        spectrum /= scale**exponent
        spectrum[:, 0] = 0.0
        white = np.fft.irfft(spectrum, samples, axis=1)
    rms = row_rms(white)
    return (white / np.maximum(rms, 1e-12)).astype(np.float32)


def change_speed(batch: np.ndarray, rng: np.random.Generator, max_pct: float) -> np.ndarray:
    """Each row played at a random speed factor within 1 +- max_pct/100 (resampled by soxr,
    then centred in the original length: cropped when slower, zero-padded when faster)."""
    import soxr  # only here: the rest of augmentation is NumPy alone

    n, length = batch.shape
    factors = 1.0 + rng.uniform(-max_pct, max_pct, size=n) / 100.0
    out = np.zeros_like(batch, dtype=np.float32)
    for i, factor in enumerate(factors):
        played = soxr.resample(batch[i], 1.0, 1.0 / factor).astype(np.float32)
        if played.size >= length:
            start = (played.size - length) // 2
            out[i] = played[start : start + length]
        else:
            start = (length - played.size) // 2
            out[i, start : start + played.size] = played
    return out


def shifted(clip: np.ndarray, samples: int) -> np.ndarray:
    """``clip`` (or each row of a batch) moved ``samples`` later (earlier if negative),
    zero-filled, the same length."""
    out = np.zeros_like(clip, dtype=np.float32)
    length = clip.shape[-1]
    if 0 <= samples < length:
        out[..., samples:] = clip[..., : length - samples]
    elif -length < samples < 0:
        out[..., :samples] = clip[..., -samples:]
    return out


def shift(batch: np.ndarray, rng: np.random.Generator, max_samples: int) -> np.ndarray:
    """Shift each row by a random -max..max samples, filling with zeros."""
    offsets = rng.integers(-max_samples, max_samples + 1, size=(len(batch), 1))
    out = np.zeros_like(batch, dtype=np.float32)
    for i, k in enumerate(offsets[:, 0]):  # slices: no (n, length) index arrays
        out[i] = shifted(batch[i], int(k))
    return out


def noise_cuts(rng: np.random.Generator, noise: list[np.ndarray], n: int, samples: int,
               colours: tuple[str, ...]) -> np.ndarray:
    """``(n, samples)`` unit-RMS noise: random cuts of the recordings, or generated noise."""
    out = np.empty((n, samples), dtype=np.float32)
    if noise:
        source = rng.integers(len(noise), size=n)
        for s in np.unique(source):
            rows = np.nonzero(source == s)[0]
            rec = noise[s]
            if rec.size < samples:
                rec = np.tile(rec, -(-samples // rec.size))
            starts = rng.integers(rec.size - samples + 1, size=rows.size)
            for row, start in zip(rows, starts, strict=True):
                out[row] = rec[start : start + samples]
    else:
        colour = rng.integers(len(colours), size=n)
        for c in np.unique(colour):
            rows = np.nonzero(colour == c)[0]
            out[rows] = coloured_noise(rng, rows.size, samples, colours[c])
    rms = row_rms(out)
    return (out / np.maximum(rms, 1e-12)).astype(np.float32)


def augment_waveforms(batch: np.ndarray, rng: np.random.Generator, noise: list[np.ndarray],
                      config: AugmentConfig) -> np.ndarray:
    """Shifted, gained and noised copies of ``batch`` ``(N, samples)``, clipped to [-1, 1]."""
    out = np.array(batch, dtype=np.float32, copy=True)
    n, samples = out.shape
    if n == 0:
        return out
    if config.speed_pct > 0:
        out = change_speed(out, rng, config.speed_pct)
    if config.shift and config.shift_ms > 0:
        out = shift(out, rng, round(config.sample_rate * config.shift_ms / 1000))
    if config.gain and config.gain_db > 0:
        db = rng.uniform(-config.gain_db, config.gain_db, size=(n, 1))
        out *= (10.0 ** (db / 20.0)).astype(np.float32)
    if config.channel_prob > 0:
        out = through_channel(out, rng, config.channel_prob, config.rt60_s, config.drr_db,
                              config.eq_db, config.sample_rate)
    if config.noise and config.noise_prob > 0:
        rows = np.nonzero(rng.random(n) < config.noise_prob)[0]
        if rows.size:
            cuts = noise_cuts(rng, noise, rows.size, samples, config.noise_colours)
            level = row_rms(out[rows])
            snr = rng.uniform(*config.noise_snr_db, size=(rows.size, 1))
            scale = np.maximum(level, config.min_level) / 10.0 ** (snr / 20.0)
            out[rows] += (cuts * scale).astype(np.float32)
    return np.clip(out, -1.0, 1.0)


def _band_mask(rng: np.random.Generator, n: int, size: int, count: int, width: int
               ) -> np.ndarray:
    """``(n, size)`` bool: ``count`` random bands of 0..width per row."""
    if count <= 0 or width <= 0 or size == 0:
        return np.zeros((n, size), dtype=bool)
    widths = rng.integers(0, min(width, size) + 1, size=(n, count, 1))
    starts = rng.integers(0, size - widths + 1)
    pos = np.arange(size)[None, None, :]
    return ((pos >= starts) & (pos < starts + widths)).any(axis=1)


def spec_augment(features: np.ndarray, rng: np.random.Generator, config: AugmentConfig
                 ) -> np.ndarray:
    """SpecAugment on ``(N, frames, n_mfcc)``: masked cells take the example's mean value of
    that coefficient (MFCCs are not zero-mean, so a zero fill would stand out)."""
    out = np.array(features, dtype=np.float32, copy=True)
    if not config.specaugment or out.shape[0] == 0:
        return out
    n, frames, coeffs = out.shape
    time = _band_mask(rng, n, frames, config.time_masks, config.time_mask_frames)
    freq = _band_mask(rng, n, coeffs, config.freq_masks, config.freq_mask_bins)
    mask = time[:, :, None] | freq[:, None, :]
    mean = out.mean(axis=1, keepdims=True)
    return np.where(mask, mean, out).astype(np.float32)


def mix_up(features: np.ndarray, targets: np.ndarray, weights: np.ndarray,
           rng: np.random.Generator, alpha: float, n_classes: int
           ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mixup (Zhang et al., ICLR 2018) within a batch: example ``i`` becomes
    ``lam * x_i + (1 - lam) * x_j`` for another example ``j`` of the batch, with
    ``lam ~ Beta(alpha, alpha)`` folded to >= 0.5 (each example keeps the larger share), and its
    target (integer labels made one-hot, or probability rows) and loss weight mixed alike."""
    soft = (np.asarray(targets, np.float32) if np.ndim(targets) == 2
            else np.eye(n_classes, dtype=np.float32)[np.asarray(targets)])
    n = len(features)
    lam = rng.beta(alpha, alpha, size=n).astype(np.float32)
    lam = np.maximum(lam, 1.0 - lam)
    other = rng.permutation(n)

    def mix(a: np.ndarray) -> np.ndarray:
        share = lam.reshape((n,) + (1,) * (a.ndim - 1))
        return (share * a + (1.0 - share) * a[other]).astype(np.float32)

    return mix(np.asarray(features, np.float32)), mix(soft), mix(np.asarray(weights, np.float32))
