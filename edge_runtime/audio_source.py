"""Where the detector's audio comes from: an array, a WAV file or a microphone, in chunks.

Each source yields mono float32 chunks at the model's sample rate. ``sounddevice`` (extra
``[mic]``) is imported only when a microphone is opened.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from edge_runtime.errors import KwsError
from edge_runtime.wav import load_audio


def array_source(samples: np.ndarray, chunk: int, sample_rate: int,
                 realtime: bool = False) -> Iterator[np.ndarray]:
    """Yield ``chunk``-sample pieces; with ``realtime`` paced like a live microphone."""
    t0 = time.monotonic()
    for start in range(0, samples.size, chunk):
        if realtime:
            delay = t0 + (start + chunk) / sample_rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        yield samples[start : start + chunk]


def file_source(path: str | Path, sample_rate: int, chunk: int,
                realtime: bool = False) -> Iterator[np.ndarray]:
    """A WAV file (resampled to ``sample_rate``) in chunks."""
    audio = load_audio(path, sample_rate)
    return array_source(audio.samples, chunk, sample_rate, realtime)


def microphone_source(sample_rate: int, chunk: int, device: int | str | None = None,
                      seconds: float | None = None) -> Iterator[np.ndarray]:
    """Mono chunks from a microphone (``sounddevice``), resampled when the device cannot
    record at ``sample_rate``; stops after ``seconds`` if given.

    The device is checked and opened here, so a missing library or device raises
    :class:`KwsError` at once rather than on the first chunk.
    """
    try:
        import sounddevice as sd
    except ImportError:
        raise KwsError("microphone capture needs sounddevice: install kws-edge[mic]") from None
    except OSError as exc:  # sounddevice is there but the PortAudio library is not
        raise KwsError(f"microphone capture needs PortAudio ({exc})") from None
    import queue

    try:
        sd.check_input_settings(device=device, channels=1, samplerate=sample_rate)
        rate = sample_rate
    except (sd.PortAudioError, ValueError):
        try:
            rate = int(sd.query_devices(device, "input")["default_samplerate"])
        except (sd.PortAudioError, ValueError) as exc:
            raise KwsError(f"no usable input device {device!r}: {exc}") from None
    blocks: queue.Queue[np.ndarray] = queue.Queue()

    def callback(indata, frames, time_info, status) -> None:
        blocks.put(indata[:, 0].copy())

    try:
        stream = sd.InputStream(device=device, channels=1, samplerate=rate, dtype="float32",
                                blocksize=round(chunk * rate / sample_rate), callback=callback)
    except (sd.PortAudioError, ValueError) as exc:
        raise KwsError(f"cannot open input device {device!r}: {exc}") from None
    resampler = None
    if rate != sample_rate:
        import soxr

        resampler = soxr.ResampleStream(rate, sample_rate, 1, dtype="float32")

    def chunks() -> Iterator[np.ndarray]:
        total = 0
        limit = None if seconds is None else round(seconds * sample_rate)
        with stream:
            while limit is None or total < limit:
                samples = blocks.get()
                if resampler is not None:
                    samples = resampler.resample_chunk(samples)
                total += samples.size
                yield samples

    return chunks()
