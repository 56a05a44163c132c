"""WAV reading with the standard library (``struct``): PCM 8/16/24/32-bit and float32/64.

Multi-channel audio is downmixed, other sample rates are resampled with ``soxr``.
"""

from __future__ import annotations

import mmap
import os
import stat
import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edge_runtime.errors import KwsError

_PCM, _FLOAT, _EXTENSIBLE = 1, 3, 0xFFFE
MAX_CHANNELS = 64
# Below 4 kHz a file holds almost nothing a keyword model can use, and resampling it up to
# the model's rate would multiply its size (a 1 Hz header makes 1 KB of samples 64 MB).
MIN_SAMPLE_RATE = 4_000
MAX_SAMPLE_RATE = 768_000
# Float WAVs hold samples in [-1, 1], with some headroom; beyond this it is not audio (and
# float32 arithmetic such as resampling would overflow to Inf).
MAX_FLOAT_PEAK = 1000.0
# Files read from disk: longer ones are refused before decoding (3 h of 16 kHz audio is
# 690 MB of float32 samples).
MAX_FILE_SECONDS = 3 * 3600.0


@dataclass(frozen=True)
class Audio:
    """Mono float32 samples in [-1, 1] and their sample rate."""

    samples: np.ndarray
    sample_rate: int

    @property
    def seconds(self) -> float:
        return self.samples.size / self.sample_rate


def _chunks(data: bytes):
    """Yield (id, payload offset, declared size) for each RIFF chunk."""
    pos = 12
    while pos + 8 <= len(data):
        cid, size = struct.unpack_from("<4sI", data, pos)
        yield cid, pos + 8, size
        pos += 8 + size + (size & 1)


def _decode(raw: bytes, fmt: int, bits: int, name: str) -> np.ndarray:
    if fmt == _FLOAT:
        if bits not in (32, 64):
            raise KwsError(f"{name}: unsupported float WAV with {bits}-bit samples "
                           "(need 32 or 64)")
        values = np.frombuffer(raw, dtype="<f4" if bits == 32 else "<f8")
        if not np.isfinite(values).all():
            raise KwsError(f"{name}: audio contains NaN or Inf samples")
        peak = float(np.abs(values).max())
        if peak > MAX_FLOAT_PEAK:  # checked before float32 would overflow to Inf
            raise KwsError(f"{name}: float samples reach {peak:.3g} "
                           f"(audio is in [-1, 1]; over {MAX_FLOAT_PEAK:g} is refused)")
        return values.astype(np.float32)
    if bits == 8:
        out = np.frombuffer(raw, dtype=np.uint8).astype(np.float32)
        out -= 128.0
        out /= 128.0
        return out
    if bits == 16:
        out = np.frombuffer(raw, dtype="<i2").astype(np.float32)
        out /= 32768.0  # in place: a long file is not held twice
        return out
    if bits == 24:
        b = np.frombuffer(raw, dtype=np.uint8).reshape(-1, 3).astype(np.int32)
        v = b[:, 0] | (b[:, 1] << 8) | (b[:, 2] << 16)
        v = np.where(v >= 1 << 23, v - (1 << 24), v)
        return v.astype(np.float32) / float(1 << 23)
    if bits == 32:
        return (np.frombuffer(raw, dtype="<i4").astype(np.float64) / 2**31).astype(np.float32)
    raise KwsError(f"{name}: unsupported PCM WAV with {bits}-bit samples (need 8-32)")


@dataclass(frozen=True)
class WavLayout:
    """Where a WAV's samples are and how they are encoded (the header, checked)."""

    fmt: int
    channels: int
    sample_rate: int
    bits: int
    block_align: int
    start: int  # byte offset of the samples
    size: int  # bytes of whole sample frames

    @property
    def seconds(self) -> float:
        return self.size / self.block_align / self.sample_rate

    def decode(self, raw, name: str) -> np.ndarray:
        """Mono float32 samples of ``raw`` (whole frames of this layout)."""
        samples = _decode(raw, self.fmt, self.bits, name).reshape(-1, self.channels)
        if self.channels > 1:
            return samples.mean(axis=1, dtype=np.float32)
        return np.ascontiguousarray(samples[:, 0], dtype=np.float32)


def parse_wav(data, name: str = "input", max_seconds: float | None = None) -> WavLayout:
    """Check a WAV's header (``data``: bytes, or a memory map of the file); raise
    :class:`KwsError` if bad or longer than ``max_seconds``. Nothing is decoded."""
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise KwsError(f"{name}: not a WAV file (no RIFF/WAVE header)")
    fmt_chunk = None
    data_chunk = None
    for cid, start, size in _chunks(data):
        if cid == b"fmt ":
            if size < 16 or start + 16 > len(data):
                raise KwsError(f"{name}: truncated WAV header")
            fmt_chunk = struct.unpack_from("<HHIIHH", data, start) + (start, size)
        elif cid == b"data":
            if start + size > len(data):
                raise KwsError(
                    f"{name}: truncated WAV data (header declares {size} bytes, "
                    f"file has {len(data) - start})"
                )
            data_chunk = (start, size)
            break
    if fmt_chunk is None:
        raise KwsError(f"{name}: truncated WAV header (no fmt chunk)")
    if data_chunk is None:
        raise KwsError(f"{name}: truncated WAV (no data chunk)")
    fmt, channels, rate, _, block_align, bits, fmt_start, fmt_size = fmt_chunk
    if fmt == _EXTENSIBLE:
        if fmt_size < 40:
            raise KwsError(f"{name}: truncated WAV header (extensible format)")
        fmt = struct.unpack_from("<H", data, fmt_start + 24)[0]
    if fmt not in (_PCM, _FLOAT):
        raise KwsError(f"{name}: unsupported WAV encoding (format tag {fmt}); need PCM or float")
    if not 0 < channels <= MAX_CHANNELS:
        raise KwsError(f"{name}: WAV declares {channels} channels")
    if not MIN_SAMPLE_RATE <= rate <= MAX_SAMPLE_RATE:
        raise KwsError(
            f"{name}: WAV declares sample rate {rate} Hz "
            f"(supported: {MIN_SAMPLE_RATE}-{MAX_SAMPLE_RATE} Hz)"
        )
    if bits <= 0 or bits % 8 or block_align != channels * bits // 8:
        raise KwsError(f"{name}: inconsistent WAV header ({bits} bits, block {block_align})")
    start, size = data_chunk
    size -= size % block_align
    if size == 0:
        raise KwsError(f"{name}: empty audio (no samples)")
    layout = WavLayout(fmt, channels, int(rate), bits, block_align, start, size)
    if max_seconds is not None and layout.seconds > max_seconds:
        raise KwsError(f"{name}: audio is {layout.seconds / 3600:.3g} h long; the limit is "
                       f"{max_seconds / 3600:g} h (split the file)")
    return layout


def decode_wav(data: bytes, name: str = "input", max_seconds: float | None = None) -> Audio:
    """Parse WAV bytes into mono float32 :class:`Audio`; raise :class:`KwsError` if bad
    (or longer than ``max_seconds``, checked before anything is decoded)."""
    w = parse_wav(data, name, max_seconds)
    return Audio(w.decode(memoryview(data)[w.start : w.start + w.size], name), w.sample_rate)


def _map(path: Path):
    """The file's bytes, memory-mapped (pages are read only where they are used)."""
    try:
        check_regular_file(path)
        with path.open("rb") as f:
            size = os.fstat(f.fileno()).st_size
            return mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) if size else b""
    except FileNotFoundError:
        raise KwsError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise KwsError(f"{path}: is a folder, not a WAV file") from None
    except OSError as exc:
        raise KwsError(f"{path}: cannot read ({exc.strerror})") from None


def stream_wav(path: str | Path, block_seconds: float = 10.0,
               max_seconds: float | None = MAX_FILE_SECONDS
               ) -> tuple[WavLayout, Iterator[np.ndarray]]:
    """The checked header of a WAV file and its mono float32 samples in blocks of
    ``block_seconds``, read one at a time: memory does not grow with the file."""
    path = Path(path)
    layout = parse_wav(_map(path), str(path), max_seconds)
    step = max(1, round(block_seconds * layout.sample_rate)) * layout.block_align

    def blocks() -> Iterator[np.ndarray]:
        with path.open("rb") as f:
            f.seek(layout.start)
            left = layout.size
            while left > 0:
                raw = f.read(min(step, left))
                raw = raw[: len(raw) - len(raw) % layout.block_align]
                if not raw:
                    raise KwsError(f"{path}: the file got shorter while it was read")
                left -= len(raw)
                yield layout.decode(raw, str(path))

    return layout, blocks()


def resample_blocks(blocks: Iterable[np.ndarray], rate: int,
                    sample_rate: int) -> Iterator[np.ndarray]:
    """Blocks at ``rate`` -> blocks at ``sample_rate`` (soxr, streaming, same quality as
    :func:`resample`)."""
    if rate == sample_rate:
        yield from blocks
        return
    import soxr

    stream = soxr.ResampleStream(rate, sample_rate, 1, dtype="float32", quality="HQ")
    for block in blocks:
        yield stream.resample_chunk(block)
    yield stream.resample_chunk(np.zeros(0, np.float32), last=True)


def read_wav(path: str | Path, max_seconds: float | None = MAX_FILE_SECONDS) -> Audio:
    """Read a WAV file (memory-mapped); missing, unreadable or non-regular files (FIFOs,
    devices) and files longer than ``max_seconds`` raise :class:`KwsError`."""
    return decode_wav(_map(Path(path)), str(path), max_seconds)


def check_regular_file(path: Path) -> None:
    """Refuse FIFOs, sockets and devices before opening them (a FIFO blocks forever)."""
    mode = path.stat().st_mode
    if stat.S_ISDIR(mode):
        raise IsADirectoryError(path)
    if not stat.S_ISREG(mode):
        raise KwsError(f"{path}: not a regular file (a FIFO, socket or device)")


def resample(audio: Audio, sample_rate: int) -> Audio:
    """Resample with soxr (high quality) when the rate differs."""
    if audio.sample_rate == sample_rate:
        return audio
    import soxr

    out = soxr.resample(audio.samples, audio.sample_rate, sample_rate, quality="HQ")
    return Audio(np.asarray(out, dtype=np.float32), sample_rate)


def load_audio(source: str | Path | bytes, sample_rate: int) -> Audio:
    """Read a WAV path or WAV bytes as mono float32 at ``sample_rate``."""
    audio = decode_wav(source) if isinstance(source, bytes) else read_wav(source)
    return resample(audio, sample_rate)


def fit_clip(samples: np.ndarray, length: int) -> np.ndarray:
    """Zero-pad a short clip at the end (as Speech Commands does) or cut a long one."""
    if samples.size >= length:
        return samples[:length]
    return np.pad(samples, (0, length - samples.size))


def encode_wav(samples: np.ndarray, sample_rate: int) -> bytes:
    """16-bit PCM mono WAV bytes (for fixtures, generators and the synthetic speech)."""
    pcm = np.clip(np.round(np.asarray(samples) * 32767.0), -32768, 32767).astype("<i2").tobytes()
    header = struct.pack(
        "<4sI4s4sIHHIIHH4sI",
        b"RIFF", 36 + len(pcm), b"WAVE", b"fmt ", 16, _PCM, 1,
        sample_rate, sample_rate * 2, 2, 16, b"data", len(pcm),
    )
    return header + pcm


def write_wav(path: str | Path, samples: np.ndarray, sample_rate: int) -> None:
    Path(path).write_bytes(encode_wav(samples, sample_rate))
