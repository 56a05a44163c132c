"""The keyword-spotting pipelines users choose between, timed side by side on the same clips.

A pipeline turns a 1-s clip of float samples into a label: a front-end (samples -> the
features its model was trained on), then an interpreter invoke (features -> scores).

* ``kws_edge`` / ``kws_edge_float32``: kws-edge's NumPy front-end + LiteRT (:class:`KwsModel`).
* ``librosa``: ``librosa.feature.mfcc`` with the model's front-end settings (the features the
  shipped model was trained on) + LiteRT on the same model, as the seed project did.
* ``tf_signal``: the MLPerf Tiny reference model behind its own front-end (peak
  normalisation, ``tf.signal`` STFT magnitude, mel, log, MFCC, as its README describes) in a
  ``tf.function`` (a graph, as in its tf.data input pipeline), its model through the TFLite
  interpreter (LiteRT, as kws-edge; TensorFlow's own ``tf.lite.Interpreter`` is deprecated);
  ``tf_signal_eager``: the same front-end called op by op (eager).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edge_runtime.bench import percentiles, test_signal
from edge_runtime.dataset import list_clips
from edge_runtime.model import KwsModel
from edge_runtime.wav import fit_clip, load_audio

REPO = Path(__file__).resolve().parents[1]
DATA_DIR = REPO.parent / "shared" / "data" / "speech_commands_mini"
PARTS = ("frontend", "invoke", "end_to_end")
BLOCK = 25  # runs a pipeline does in a row before the next one takes its turn


def shown(path: Path) -> str:
    """``path`` relative to the repository (or to its parent for ../shared), for results."""
    path = Path(path).resolve()
    for base, prefix in ((REPO, ""), (REPO.parent, "../")):
        if path.is_relative_to(base):
            return prefix + path.relative_to(base).as_posix()
    return path.name


@dataclass
class Pipeline:
    """Samples -> features -> scores; ``invoke_only`` runs the bare interpreter invoke."""

    name: str
    model: str
    frontend: Callable[[np.ndarray], np.ndarray]
    invoke: Callable[[np.ndarray], np.ndarray]
    invoke_only: Callable[[], None]
    labels: list[str]
    description: str
    info: dict = field(default_factory=dict)


def kws_edge_pipeline(name: str, model: KwsModel, description: str) -> Pipeline:
    return Pipeline(name, shown(model.path), model.frontend, model.predict_features,
                    model.interpreter.invoke, model.labels, description)


def librosa_pipeline(model: KwsModel) -> Pipeline:
    from benchmarks.frontend import librosa_mfcc

    config = model.manifest.frontend
    return Pipeline("librosa", shown(model.path), lambda y: librosa_mfcc(y, config),
                    model.predict_features, model.interpreter.invoke, model.labels,
                    f"librosa ({'log-mel' if config.features == 'log_mel' else 'feature.mfcc'}"
                    ": melspectrogram -> power_to_db, top_db=None, same settings as the "
                    "model's front-end: the features it was trained on) + LiteRT, same model "
                    "as kws_edge")


def tf_signal_pipelines(folder: Path, threads: int) -> list[Pipeline]:
    """The MLPerf Tiny reference (:mod:`benchmarks.reference`): its tf.signal front-end as
    a graph (``tf_signal``) and eager (``tf_signal_eager``), and its int8 model."""
    import tensorflow as tf

    from benchmarks.reference import ReferenceModel, reference_features, tf_reference_features

    info = {}
    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
    except RuntimeError:  # TensorFlow already started in this process (e.g. under pytest)
        pass
    info["tf_intra_op_threads"] = tf.config.threading.get_intra_op_parallelism_threads()
    model = ReferenceModel(folder, num_threads=threads)
    graph = tf.function(tf_reference_features,
                        input_signature=[tf.TensorSpec([1, model.clip_samples], tf.float32)])
    what = ("MLPerf Tiny reference DS-CNN (int8) behind its tf.signal front-end "
            "(peak-normalised, |STFT| 480/320/512, 40 mels 20-4000 Hz, log, MFCC 1-10) ")
    interpreter = "; the model through the same TFLite interpreter as kws-edge (LiteRT)"
    return [
        Pipeline("tf_signal", shown(model.path), lambda y: graph(y[None]).numpy()[0],
                 model.predict_features, model.interpreter.invoke, model.labels,
                 what + "in a tf.function (a graph, as in its tf.data input pipeline)"
                 + interpreter, info),
        Pipeline("tf_signal_eager", shown(model.path), lambda y: reference_features(y)[0],
                 model.predict_features, model.interpreter.invoke, model.labels,
                 what + "run eagerly, op by op" + interpreter
                 + "; for information: no target, not plotted",
                 {**info, "informational": True}),
    ]


def load_clips(data: Path | None, per_label: int, model: KwsModel
               ) -> tuple[list[np.ndarray], list[str | None], str]:
    """``per_label`` real clips of every class folder of ``data`` (1 s at the model's rate),
    their labels and a description; a synthetic clip when ``data`` is absent."""
    if data is None:
        return [test_signal(model)], [None], "one synthetic speech-like clip (no data folder)"
    by_label: dict[str, list] = {}
    for clip in list_clips(data):
        by_label.setdefault(clip.path.parent.name, []).append(clip)
    picked = [c for label in sorted(by_label) for c in by_label[label][:per_label]]
    clips = [fit_clip(load_audio(c.path, model.sample_rate).samples, model.clip_samples)
             for c in picked]
    return clips, [c.path.parent.name for c in picked], (
        f"{len(clips)} real clips of {shown(data)} ({per_label} per class folder)")


class Clock:
    """Wall-clock and CPU time (of the whole process, every thread) in ms."""

    def __init__(self) -> None:
        self.wall = time.perf_counter()
        self.cpu = time.process_time()

    def lap(self) -> tuple[float, float]:
        wall, cpu = time.perf_counter(), time.process_time()
        out = ((wall - self.wall) * 1e3, (cpu - self.cpu) * 1e3)
        self.wall, self.cpu = wall, cpu
        return out


def time_pipelines(pipelines: list[Pipeline], clips: list[np.ndarray], runs: int,
                   warmup: int = 20, block: int = BLOCK) -> dict[str, dict[str, list[float]]]:
    """Every timing (ms) of front-end, invoke and end to end (samples -> label), wall clock
    and (``cpu_<part>``) CPU time; CPU time leaves out the time the OS gave other processes.

    The pipelines take turns in blocks of ``block`` clips (in a rotating order), so that
    load from other processes falls on all of them alike while each runs with its own data
    in the caches, as in an application that runs only it.
    """
    times = {p.name: {f"{kind}{part}": [] for part in PARTS for kind in ("", "cpu_")}
             for p in pipelines}
    for b, first in enumerate(range(0, warmup + runs, block)):
        k = b % len(pipelines)
        for p in pipelines[k:] + pipelines[:k]:
            for i in range(first, min(first + block, warmup + runs)):
                y = clips[i % len(clips)]
                clock = Clock()
                features = p.frontend(y)
                front = clock.lap()
                p.labels[int(np.argmax(p.invoke(features)))]
                invoke = clock.lap()
                if i >= warmup:
                    t = times[p.name]
                    for kind, j in (("", 0), ("cpu_", 1)):
                        t[f"{kind}frontend"].append(front[j])
                        t[f"{kind}invoke"].append(invoke[j])
                        t[f"{kind}end_to_end"].append(front[j] + invoke[j])
    return times


def bare_invoke_ms(p: Pipeline, runs: int, warmup: int = 20) -> dict[str, list[float]]:
    """The interpreter's invoke alone (its input tensor already set by an earlier run)."""
    times: dict[str, list[float]] = {"bare_invoke": [], "cpu_bare_invoke": []}
    for i in range(warmup + runs):
        clock = Clock()
        p.invoke_only()
        wall, cpu = clock.lap()
        if i >= warmup:
            times["bare_invoke"].append(wall)
            times["cpu_bare_invoke"].append(cpu)
    return times


def summarise(p: Pipeline, times: dict[str, list[float]], clips: list[np.ndarray],
              truth: list[str | None]) -> dict:
    """The JSON entry of one pipeline: wall-clock medians (``<part>_ms``), p99s, CPU-time
    medians, every percentile, and how many clips it labelled right."""
    stats = {name: percentiles(values) for name, values in times.items()}
    parts = (*PARTS, "bare_invoke")
    predicted = [p.labels[int(np.argmax(p.invoke(p.frontend(y))))] for y in clips]
    known = [(t, q) for t, q in zip(truth, predicted, strict=True) if t is not None]
    return {
        "model": p.model, "description": p.description,
        **{f"{part}_ms": stats[part]["median"] for part in parts},
        "p99_ms": {part: stats[part]["p99"] for part in parts},
        "cpu_ms": {part: stats[f"cpu_{part}"]["median"] for part in parts},
        "percentiles_ms": stats,
        "clips_correct": sum(t == q for t, q in known) if known else None,
        "predicted": predicted, **p.info,
    }
