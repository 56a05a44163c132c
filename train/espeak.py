"""espeak-ng for the synthetic speech: its C library through ctypes, or the ``espeak-ng`` binary.

The library comes from the ``espeakng-loader`` wheel (PyPI: ``libespeak-ng.so`` with its voice
data), so ``pip`` alone makes ``make demo`` work; the system binary (``apt-get install
espeak-ng``) is the alternative. ``KWS_ESPEAK=library|binary`` picks one; by default the
library is used when the wheel is installed, else the binary.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import struct
import subprocess
import threading
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from edge_runtime.errors import KwsError
from edge_runtime.wav import decode_wav

INSTALL_HINT = "pip install espeakng-loader (or apt-get install espeak-ng)"
# speak_lib.h
_AUDIO_OUTPUT_SYNCHRONOUS = 2
_RATE, _PITCH = 1, 3  # espeak_PARAMETER
_CHARS_UTF8, _ENDPAUSE = 1, 0x1000  # synthesis flags (the binary passes ENDPAUSE too)
_POS_CHARACTER = 1


class _Voice(ctypes.Structure):
    _fields_ = [("name", ctypes.c_char_p), ("languages", ctypes.c_char_p),
                ("identifier", ctypes.c_char_p), ("gender", ctypes.c_ubyte),
                ("age", ctypes.c_ubyte), ("variant", ctypes.c_ubyte), ("xx1", ctypes.c_ubyte),
                ("score", ctypes.c_int), ("spare", ctypes.c_void_p)]


_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int,
                             ctypes.c_void_p)


@dataclass(frozen=True)
class Voices:
    accents: frozenset[str]  # language names usable with -v, e.g. "en-gb-scotland"
    variants: frozenset[str]  # variant names after "+", e.g. "f3", "klatt"


class EspeakLibrary:
    """libespeak-ng from the ``espeakng-loader`` wheel, synchronous mode, one call at a time."""

    name = "library"

    def __init__(self) -> None:
        import espeakng_loader

        self._lib = ctypes.CDLL(espeakng_loader.get_library_path())
        lib = self._lib
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p,
                                          ctypes.c_int]
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetVoiceByProperties.argtypes = [ctypes.c_void_p]
        lib.espeak_ng_SetRandSeed.argtypes = [ctypes.c_long]
        lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        lib.espeak_Synth.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint,
                                     ctypes.c_int, ctypes.c_uint, ctypes.c_uint,
                                     ctypes.c_void_p, ctypes.c_void_p]
        lib.espeak_SetSynthCallback.argtypes = [_CALLBACK]
        lib.espeak_ListVoices.argtypes = [ctypes.c_void_p]
        lib.espeak_ListVoices.restype = ctypes.POINTER(ctypes.POINTER(_Voice))
        lib.espeak_Info.argtypes = [ctypes.c_void_p]
        lib.espeak_Info.restype = ctypes.c_char_p
        data = espeakng_loader.get_data_path().encode()
        self.sample_rate = lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0, data, 0)
        if self.sample_rate <= 0:
            raise KwsError(f"libespeak-ng could not load its data from {data.decode()}")
        self.version = lib.espeak_Info(None).decode()
        self._chunks: list[np.ndarray] = []
        self._callback = _CALLBACK(self._collect)  # kept referenced while the library lives
        lib.espeak_SetSynthCallback(self._callback)
        self._lock = threading.Lock()

    def _collect(self, wav, count: int, _events) -> int:
        if wav and count > 0:
            self._chunks.append(np.ctypeslib.as_array(wav, shape=(count,)).copy())
        return 0

    def voices(self) -> Voices:
        accents, variants = set(), set()
        with self._lock:
            spec = _Voice(languages=b"variant")
            for listed, spec_ptr in ((accents, None), (variants, ctypes.byref(spec))):
                table = self._lib.espeak_ListVoices(spec_ptr)
                i = 0
                while table[i]:
                    voice = table[i].contents
                    ident = voice.identifier.decode()
                    if spec_ptr is None:  # languages: a priority byte, then the name
                        listed.add(ctypes.string_at(voice.languages)[1:].decode())
                    elif ident.startswith("!v/"):
                        listed.add(ident.removeprefix("!v/"))
                    i += 1
        return Voices(frozenset(accents), frozenset(variants))

    def _set_voice(self, voice: str) -> None:
        """A voice file name, else a language with an optional +variant (as ``espeak-ng -v``)."""
        if self._lib.espeak_SetVoiceByName(voice.encode()) == 0:
            return
        spec = _Voice(languages=voice.encode())
        if self._lib.espeak_SetVoiceByProperties(ctypes.byref(spec)) != 0:
            raise KwsError(f"espeak-ng: unknown voice {voice!r}")

    def speak(self, text: str, voice: str, pitch: int, rate: int) -> tuple[np.ndarray, int]:
        raw = text.encode()
        with self._lock:
            self._chunks = []
            self._lib.espeak_ng_SetRandSeed(1)  # the same clip for the same call
            self._set_voice(voice)
            self._lib.espeak_SetParameter(_RATE, rate, 0)
            self._lib.espeak_SetParameter(_PITCH, pitch, 0)
            status = self._lib.espeak_Synth(raw, len(raw) + 1, 0, _POS_CHARACTER, 0,
                                            _CHARS_UTF8 | _ENDPAUSE, None, None)
            chunks, self._chunks = self._chunks, []
        if status != 0 or not chunks:
            raise KwsError(f"espeak-ng (library) failed for voice {voice!r} (status {status})")
        return np.concatenate(chunks).astype(np.float32) / 32768.0, self.sample_rate


def _fix_stream_header(wav: bytes) -> bytes:
    """espeak-ng --stdout streams: its header declares a huge size; set the real sizes."""
    pos = wav.find(b"data", 12)
    if pos < 0:
        return wav
    head = bytearray(wav[: pos + 8])
    struct.pack_into("<I", head, 4, len(wav) - 8)
    struct.pack_into("<I", head, pos + 4, len(wav) - pos - 8)
    return bytes(head) + wav[pos + 8 :]


class EspeakBinary:
    """The system ``espeak-ng`` program, one process per clip."""

    name = "binary"

    def __init__(self) -> None:
        path = shutil.which("espeak-ng")
        if path is None:
            raise KwsError(f"espeak-ng not found: {INSTALL_HINT}")
        self.path = path
        self.version = self._run("--version").split("  ")[0].strip()

    def _run(self, *args: str) -> str:
        return subprocess.run([self.path, *args], capture_output=True, text=True,
                              check=True).stdout

    def voices(self) -> Voices:
        accents = [line.split()[1] for line in self._run("--voices").splitlines()[1:]
                   if len(line.split()) > 1]
        variants = [line.split()[-1].removeprefix("!v/")
                    for line in self._run("--voices=variant").splitlines()[1:] if line.split()]
        return Voices(frozenset(accents), frozenset(variants))

    def speak(self, text: str, voice: str, pitch: int, rate: int) -> tuple[np.ndarray, int]:
        cmd = [self.path, "-v", voice, "-p", str(pitch), "-s", str(rate), "--stdout", text]
        proc = subprocess.run(cmd, capture_output=True, check=False)
        if proc.returncode != 0 or not proc.stdout:
            raise KwsError(f"espeak-ng failed for voice {voice!r}: "
                           f"{proc.stderr.decode(errors='replace').strip()[:200]}")
        audio = decode_wav(_fix_stream_header(proc.stdout), f"espeak-ng {voice}")
        return audio.samples, audio.sample_rate


Espeak = EspeakLibrary | EspeakBinary


def library_available() -> bool:
    try:
        import espeakng_loader  # noqa: F401
    except ImportError:
        return False
    return True


def espeak_kind() -> str:
    """``$KWS_ESPEAK`` (library|binary), else the library when its wheel is installed."""
    kind = os.environ.get("KWS_ESPEAK") or ("library" if library_available() else "binary")
    if kind not in ("library", "binary"):
        raise KwsError(f"KWS_ESPEAK={kind!r}: use library or binary")
    return kind


def espeak() -> Espeak:
    """The synthesiser ``espeak_kind()`` names (one instance per kind and process)."""
    return _espeak(espeak_kind())


@lru_cache(maxsize=2)
def _espeak(kind: str) -> Espeak:
    if kind == "binary":
        return EspeakBinary()
    if not library_available():
        raise KwsError("the espeak-ng library needs the espeakng-loader package "
                       "(pip install espeakng-loader)")
    return EspeakLibrary()


@lru_cache(maxsize=2)
def _voices(kind: str) -> Voices:
    return _espeak(kind).voices()


def espeak_voices() -> Voices:
    return _voices(espeak_kind())
