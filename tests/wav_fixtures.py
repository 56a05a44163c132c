"""WAV bytes of every kind the reader must handle, written with the standard library."""

from __future__ import annotations

import struct

import numpy as np


def wav_bytes(samples: np.ndarray, rate: int = 16000, bits: int = 16, fmt: str = "pcm",
              extensible: bool = False) -> bytes:
    """Encode ``samples`` (frames x channels, or mono) in [-1, 1] as a WAV file."""
    x = np.asarray(samples, dtype=np.float64)
    if x.ndim == 1:
        x = x[:, None]
    channels = x.shape[1]
    if fmt == "float":
        raw = x.astype("<f4" if bits == 32 else "<f8").tobytes()
        tag = 3
    elif bits == 8:
        raw = np.clip(np.round(x * 127 + 128), 0, 255).astype(np.uint8).tobytes()
        tag = 1
    elif bits == 24:
        v = np.clip(np.round(x * (2**23 - 1)), -(2**23), 2**23 - 1).astype("<i4")
        raw = v.view(np.uint8).reshape(-1, 4)[:, :3].tobytes()
        tag = 1
    else:
        dtype = {16: "<i2", 32: "<i4"}[bits]
        scale = 2 ** (bits - 1) - 1
        raw = np.clip(np.round(x * scale), -scale - 1, scale).astype(dtype).tobytes()
        tag = 1
    block = channels * bits // 8
    if extensible:
        guid = struct.pack("<H", tag) + b"\x00\x00\x00\x00\x10\x00\x80\x00\x00\xaa\x00\x38\x9b\x71"
        fmt_body = struct.pack("<HHIIHHHHI", 0xFFFE, channels, rate, rate * block, block, bits,
                               22, bits, 0) + guid
    else:
        fmt_body = struct.pack("<HHIIHH", tag, channels, rate, rate * block, block, bits)
    chunks = (b"fmt " + struct.pack("<I", len(fmt_body)) + fmt_body
              + b"LIST" + struct.pack("<I", 4) + b"INFO"
              + b"data" + struct.pack("<I", len(raw)) + raw)
    return b"RIFF" + struct.pack("<I", 4 + len(chunks)) + b"WAVE" + chunks


def wav_declaring(data_size: int, body: bytes = b"") -> bytes:
    """A 16-bit mono 16 kHz WAV whose ``data`` chunk declares ``data_size`` bytes and holds
    ``body`` (to test empty, truncated and absurd sizes)."""
    fmt = struct.pack("<HHIIHH", 1, 1, 16000, 32000, 2, 16)
    return (b"RIFF" + struct.pack("<I", 36 + len(body)) + b"WAVE" + b"fmt "
            + struct.pack("<I", 16) + fmt + b"data" + struct.pack("<I", data_size) + body)
