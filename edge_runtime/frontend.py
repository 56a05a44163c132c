"""The one front-end of kws-edge (MFCC or log-mel), in NumPy: used by training and on the device.

Matches ``librosa.feature.mfcc(..., center=False, htk=False, top_db=None)``: frames of
``n_fft`` samples every ``hop`` samples, a periodic Hann window of ``win_length`` centred in
each frame, rFFT power, a Slaney mel filterbank, ``10*log10(max(power, log_floor))`` and an
orthonormal DCT-II. Output is float32 of shape ``(frames, n_mfcc)``. With
``features="log_mel"`` the DCT is left out: ``(frames, n_mels)`` log-mel energies in dB, as
``librosa.power_to_db(melspectrogram(...), top_db=None)``.
"""

from __future__ import annotations

import hashlib
import json
import math
import threading
from dataclasses import asdict, dataclass, fields
from functools import cached_property

import numpy as np

FEATURE_KINDS = ("mfcc", "log_mel")
# Bounds on the settings, far beyond any keyword front-end, so that a bad manifest cannot
# make the tables or frame buffers allocate gigabytes.
MIN_RATE, MAX_RATE = 1_000, 192_000
MAX_CLIP_MS, MAX_N_FFT, MAX_N_MELS, MAX_FRAMES = 10_000, 8192, 512, 2000


def _type_problems(config) -> list[str]:
    """Fields whose value is not of the declared type: ints are ints (not 512.0, not True),
    floats are finite numbers, strings are strings."""
    problems = []
    for f in fields(config):
        value = getattr(config, f.name)
        number = isinstance(value, (int, float)) and not isinstance(value, bool)
        if f.type == "int" and not (number and isinstance(value, int)):
            problems.append(f"{f.name} must be an integer, got {value!r:.40}")
        elif f.type == "float" and not (number and math.isfinite(value)):
            problems.append(f"{f.name} must be a finite number, got {value!r:.40}")
        elif f.type == "str" and not isinstance(value, str):
            problems.append(f"{f.name} must be a string, got {value!r:.40}")
    return problems


@dataclass(frozen=True)
class FrontendConfig:
    """Settings of the front-end; serialised into every model's manifest."""

    sample_rate: int = 16000
    clip_ms: int = 1000
    window_ms: float = 30.0
    hop_ms: float = 20.0
    n_fft: int = 512
    n_mels: int = 40
    fmin: float = 20.0
    fmax: float = 4000.0
    n_mfcc: int = 10
    log_floor: float = 1e-10
    features: str = "mfcc"  # "mfcc" (n_mfcc coefficients) or "log_mel" (n_mels energies, dB)

    def __post_init__(self) -> None:
        problems = _type_problems(self)
        if problems:
            raise ValueError("bad front-end config: " + "; ".join(problems))
        if not MIN_RATE <= self.sample_rate <= MAX_RATE:
            problems.append(f"sample_rate must be within {MIN_RATE}-{MAX_RATE} Hz")
        if not 0 < self.clip_ms <= MAX_CLIP_MS:
            problems.append(f"clip_ms must be within 1-{MAX_CLIP_MS}")
        if not 0 < self.n_fft <= MAX_N_FFT:
            problems.append(f"n_fft must be within 1-{MAX_N_FFT}")
        if not 0 < self.n_mels <= MAX_N_MELS:
            problems.append(f"n_mels must be within 1-{MAX_N_MELS}")
        if problems:  # the checks below compute with these
            raise ValueError("bad front-end config: " + "; ".join(problems))
        if not 0 < self.win_length <= self.n_fft:
            problems.append("window must be > 0 and fit in n_fft")
        if self.hop_length <= 0:
            problems.append("hop must be > 0")
        if not 0 <= self.fmin < self.fmax <= self.sample_rate / 2:
            problems.append("need 0 <= fmin < fmax <= sample_rate/2")
        if self.features == "mfcc" and not 0 < self.n_mfcc <= self.n_mels:
            problems.append("need 0 < n_mfcc <= n_mels")
        if self.clip_samples < self.n_fft:
            problems.append("clip shorter than one frame")
        if not self.log_floor > 0:
            problems.append("log_floor must be > 0")
        if self.features not in FEATURE_KINDS:
            problems.append(f"features must be one of {', '.join(FEATURE_KINDS)}")
        frames = 1 + (self.clip_samples - self.n_fft) // max(1, self.hop_length)
        if frames > MAX_FRAMES:
            problems.append(f"a clip gives {frames} frames (at most {MAX_FRAMES})")
        if problems:
            raise ValueError("bad front-end config: " + "; ".join(problems))

    @property
    def win_length(self) -> int:
        return round(self.sample_rate * self.window_ms / 1000)

    @property
    def hop_length(self) -> int:
        return round(self.sample_rate * self.hop_ms / 1000)

    @property
    def clip_samples(self) -> int:
        return round(self.sample_rate * self.clip_ms / 1000)

    @property
    def n_frames(self) -> int:
        """Frames in one clip."""
        return frames_in(self.clip_samples, self)

    @property
    def n_features(self) -> int:
        """Values per frame: ``n_mfcc`` coefficients or ``n_mels`` log-mel energies."""
        return self.n_mels if self.features == "log_mel" else self.n_mfcc

    @property
    def feature_shape(self) -> tuple[int, int]:
        return (self.n_frames, self.n_features)

    def describe(self) -> str:
        """E.g. ``49 frames x 10 MFCC`` or ``97 frames x 40 log-mel``."""
        kind = "log-mel" if self.features == "log_mel" else "MFCC"
        return f"{self.n_frames} frames x {self.n_features} {kind}"

    def to_dict(self) -> dict:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict) -> FrontendConfig:
        if not isinstance(data, dict):
            raise ValueError(f"the front-end must be an object, got {type(data).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown front-end settings: {sorted(unknown)}")
        return cls(**data)

    def key(self) -> str:
        """A short stable hash of the settings (for caches)."""
        return hashlib.sha256(self.to_json().encode()).hexdigest()[:16]


# The seed project's 99 x 40 MFCC (20 ms window, 10 ms hop) and the edge/MLPerf Tiny
# 49 x 10 MFCC (30 ms window, 20 ms hop).
SEED_FRONTEND = FrontendConfig(
    window_ms=20.0, hop_ms=10.0, n_fft=320, n_mels=40, fmin=20.0, fmax=8000.0, n_mfcc=40
)
EDGE_FRONTEND = FrontendConfig()
# The same 49 x 10 MFCC with the mel bands spread up to 8 kHz, the whole band of 16 kHz audio
# (the edge set stops at 4 kHz, below most of the energy of /s/, /f/ and /t/): same compute.
WIDEBAND_FRONTEND = FrontendConfig(fmax=8000.0)
# The edge set with 20 MFCC instead of 10: a finer spectral envelope, the same 4 kHz band.
MFCC20_FRONTEND = FrontendConfig(n_mfcc=20)
# The edge set at a 10 ms hop: twice the frames (97 x 10), onsets placed twice as finely.
FINE_HOP_FRONTEND = FrontendConfig(hop_ms=10.0)
# BC-ResNet's 40 log-mel energies (Kim et al. 2021: 30 ms window, 20 Hz-8 kHz) with a 20 ms
# hop instead of the paper's 10 ms: 49 frames as in MLPerf Tiny, half the compute.
LOG_MEL_FRONTEND = FrontendConfig(window_ms=30.0, hop_ms=20.0, n_fft=512, n_mels=40,
                                  fmin=20.0, fmax=8000.0, features="log_mel")
# The edge set's own 40 log-mel energies (20 Hz-4 kHz), of which its MFCC are the DCT: a
# log-mel model on these and an MFCC model on EDGE_FRONTEND share one input (train.ensemble).
EDGE_LOG_MEL_FRONTEND = FrontendConfig(features="log_mel")


_FFT_HAS_OUT = np.lib.NumpyVersion(np.__version__) >= "2.0.0"
_FLUSH_TO_ZERO = 1e-6


def frames_in(n_samples: int, config: FrontendConfig) -> int:
    """How many whole frames ``n_samples`` of audio give."""
    if n_samples < config.n_fft:
        return 0
    return 1 + (n_samples - config.n_fft) // config.hop_length


def _hz_to_mel(hz: np.ndarray) -> np.ndarray:
    """Slaney mel scale: linear below 1 kHz, logarithmic above."""
    hz = np.asarray(hz, dtype=np.float64)
    f_sp = 200.0 / 3
    min_log_mel = 1000.0 / f_sp
    logstep = np.log(6.4) / 27.0
    return np.where(
        hz >= 1000.0, min_log_mel + np.log(np.maximum(hz, 1e-12) / 1000.0) / logstep, hz / f_sp
    )


def _mel_to_hz(mel: np.ndarray) -> np.ndarray:
    mel = np.asarray(mel, dtype=np.float64)
    f_sp = 200.0 / 3
    min_log_mel = 1000.0 / f_sp
    logstep = np.log(6.4) / 27.0
    return np.where(mel >= min_log_mel, 1000.0 * np.exp(logstep * (mel - min_log_mel)), f_sp * mel)


# Jaitly & Hinton's warp boundary, as a share of Nyquist: frequencies below it (scaled by
# min(alpha, 1) / alpha) move by the factor alpha, those above it less, so Nyquist stays put
WARP_BOUNDARY = 0.6


def warp_hz(hz: np.ndarray, alpha: float, nyquist: float) -> np.ndarray:
    """Piecewise-linear vocal tract length warp of frequencies ``hz``: ``alpha * hz`` up to
    the boundary, then a straight line to ``nyquist`` (which maps onto itself). ``alpha`` 1
    returns ``hz`` exactly (above the boundary ``nyquist - (nyquist - hz)`` is exact)."""
    hz = np.asarray(hz, dtype=np.float64)
    bend = WARP_BOUNDARY * nyquist * min(alpha, 1.0)  # where the boundary lands
    cut = bend / alpha
    return np.where(hz <= cut, alpha * hz,
                    nyquist - (nyquist - bend) / (nyquist - cut) * (nyquist - hz))


def mel_filterbank(config: FrontendConfig, warp: float = 1.0) -> np.ndarray:
    """Slaney-normalised triangular filters, shape ``(n_mels, n_fft // 2 + 1)``; ``warp``
    moves every filter's edges by :func:`warp_hz` (training's vocal tract length perturbation;
    edges below 0.6 x Nyquist x min(warp, 1) / warp, all of a 4 kHz front-end's at 16 kHz for
    warps up to 1.2, simply scale by it)."""
    fft_hz = np.fft.rfftfreq(config.n_fft, d=1.0 / config.sample_rate)
    edges = warp_hz(_mel_to_hz(
        np.linspace(_hz_to_mel(config.fmin), _hz_to_mel(config.fmax), config.n_mels + 2)
    ), warp, config.sample_rate / 2)
    widths = np.diff(edges)
    ramps = edges[:, None] - fft_hz[None, :]
    lower = -ramps[:-2] / widths[:-1, None]
    upper = ramps[2:] / widths[1:, None]
    weights = np.maximum(0.0, np.minimum(lower, upper))
    weights *= (2.0 / (edges[2:] - edges[:-2]))[:, None]
    return weights.astype(np.float32)


def dct_matrix(n_in: int, n_out: int) -> np.ndarray:
    """Orthonormal DCT-II as a ``(n_out, n_in)`` matrix."""
    n = np.arange(n_in)
    k = np.arange(n_out)[:, None]
    basis = np.cos(np.pi / n_in * (n + 0.5) * k) * np.sqrt(2.0 / n_in)
    basis[0] /= np.sqrt(2.0)
    return basis.astype(np.float32)


class Frontend:
    """Computes MFCCs for one :class:`FrontendConfig`; tables are built once."""

    # Reused per thread for inputs up to this many frames: fresh arrays of this size (> 128 KiB)
    # come from mmap, and their page faults cost more than the FFT itself.
    MAX_BUFFERED_FRAMES = 1024

    def __init__(self, config: FrontendConfig = EDGE_FRONTEND) -> None:
        self.config = config
        self._local = threading.local()

    def _buffers(self, shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray] | None:
        """Per-thread work arrays for windowed frames and their spectrum, or None."""
        if not _FFT_HAS_OUT or math.prod(shape[:-1]) > self.MAX_BUFFERED_FRAMES:
            return None
        cached = getattr(self._local, "buffers", None)
        if cached is None or cached[0].shape != shape:
            spectrum_shape = shape[:-1] + (self.config.n_fft // 2 + 1,)
            cached = (np.empty(shape), np.empty(spectrum_shape, dtype=np.complex128))
            self._local.buffers = cached
        return cached

    @cached_property
    def _window(self) -> np.ndarray:
        c = self.config
        n = np.arange(c.win_length)
        hann = 0.5 - 0.5 * np.cos(2.0 * np.pi * n / c.win_length)  # periodic Hann
        left = (c.n_fft - c.win_length) // 2
        window = np.zeros(c.n_fft, dtype=np.float64)
        window[left : left + c.win_length] = hann
        return window

    def filterbank(self) -> np.ndarray:
        """The mel filters (``mel_filterbank``) this front-end applies."""
        return mel_filterbank(self.config)

    # Everything runs in float64 (NumPy's float64 FFT is ~4x faster than its float32 one)
    # and is rounded to float32 at the end, so that a frame's features do not depend on how
    # many frames BLAS multiplies at once: streaming and batch give the same float32 frames.
    @cached_property
    def _bins(self) -> slice:
        """The FFT bins that some mel filter uses (fmax is often far below Nyquist)."""
        used = np.nonzero(self.filterbank().any(axis=0))[0]
        return slice(int(used[0]), int(used[-1]) + 1)

    @cached_property
    def _mel_t(self) -> np.ndarray:
        weights = self.filterbank()[:, self._bins]
        return np.ascontiguousarray(weights.T, dtype=np.float64)

    @cached_property
    def _dct_t(self) -> np.ndarray:
        """The DCT with the dB scale (x10) folded in."""
        c = self.config
        return np.ascontiguousarray(10.0 * dct_matrix(c.n_mels, c.n_mfcc).T, dtype=np.float64)

    def frames(self, audio: np.ndarray) -> np.ndarray:
        """Overlapping frames of the last axis: ``(..., frames, n_fft)`` (a read-only view)."""
        c = self.config
        audio = np.asarray(audio)
        if audio.ndim == 1 and c.n_fft <= audio.size < c.n_fft + c.hop_length:  # one frame
            view = audio[None, : c.n_fft]
            view.flags.writeable = False
            return view
        audio = np.ascontiguousarray(audio)
        step = audio.itemsize
        view = np.ndarray(
            audio.shape[:-1] + (frames_in(audio.shape[-1], c), c.n_fft),
            dtype=audio.dtype,
            buffer=audio,
            strides=audio.strides[:-1] + (step * c.hop_length, step),
        )
        view.flags.writeable = False
        return view

    def features_of_frames(self, frames: np.ndarray) -> np.ndarray:
        """Features of already-cut frames ``(..., n_fft)`` -> ``(..., n_features)``."""
        buffers = self._buffers(frames.shape)
        if buffers is None:
            spectrum = np.fft.rfft(frames * self._window, axis=-1)
        else:
            windowed, spectrum = buffers
            np.multiply(frames, self._window, out=windowed)
            np.fft.rfft(windowed, axis=-1, out=spectrum)
        spectrum = spectrum[..., self._bins]
        power = np.square(spectrum.real)
        power += np.square(spectrum.imag)
        mel = power @ self._mel_t
        np.maximum(mel, self.config.log_floor, out=mel)
        log_mel = np.log10(mel, out=mel)
        if self.config.features == "log_mel":
            log_mel *= 10.0
            return log_mel.astype(np.float32)
        features = log_mel @ self._dct_t
        # Where the DCT cancels to ~0 (e.g. a flat log spectrum on silence) the float64
        # rounding noise left (~1e-13) would differ between BLAS kernels: flush it to 0.
        features[np.abs(features) < _FLUSH_TO_ZERO] = 0.0
        return features.astype(np.float32)

    def __call__(self, audio: np.ndarray) -> np.ndarray:
        """Features of audio ``(..., samples)`` in [-1, 1] -> ``(..., frames, n_features)``."""
        audio = np.asarray(audio, dtype=np.float64)
        if audio.shape[-1] < self.config.n_fft:
            shape = audio.shape[:-1] + (0, self.config.n_features)
            return np.zeros(shape, dtype=np.float32)
        return self.features_of_frames(self.frames(audio))


def mfcc(audio: np.ndarray, config: FrontendConfig = EDGE_FRONTEND) -> np.ndarray:
    """MFCCs of ``audio`` (one clip or a batch) with ``config``."""
    return Frontend(config)(audio)


class StreamingFrontend:
    """Feeds audio in chunks of any size; returns only the new frames.

    The frames returned over a stream are exactly those that :class:`Frontend` gives for
    the whole audio at once.
    """

    def __init__(self, config: FrontendConfig = EDGE_FRONTEND) -> None:
        self.config = config
        self._frontend = Frontend(config)
        self.reset()

    def reset(self) -> None:
        self._pending = np.zeros(0, dtype=np.float64)
        self.frames_done = 0

    def push(self, chunk: np.ndarray) -> np.ndarray:
        """Add samples; return the ``(k, n_features)`` frames they completed (k may be 0)."""
        chunk = np.asarray(chunk).reshape(-1)
        if chunk.dtype.kind not in "fiu":
            chunk = chunk.astype(np.float64)  # bool, object: as np.asarray(dtype=float) would
        pending = np.concatenate((self._pending, chunk), dtype=np.float64)
        n_new = frames_in(pending.size, self.config)
        if n_new == 0:
            self._pending = pending
            return np.zeros((0, self.config.n_features), dtype=np.float32)
        features = self._frontend.features_of_frames(self._frontend.frames(pending))
        self._pending = pending[n_new * self.config.hop_length :]
        self.frames_done += n_new
        return features
