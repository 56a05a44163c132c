"""The speech-embedding teacher itself on the validation streams: can any model here reject?

``python -m benchmarks.experiments.teacher_streams [NAME] --out DIR`` builds the teacher of
experiment ``NAME`` (default ``speech_se_150_xv``: a head on Google's speech embedding,
trained on that run's training split, :func:`train.train.speech_embedding_teacher`, the same
seed and so the same head) and scores it on the streams ``benchmarks.rejection --speakers val
--extra ../shared/data/speech_commands_extra --even-words`` builds (validation speakers only),
at the same detector hop and smoothing, one 1-s window per hop (as the MLPerf Tiny reference is
scored). A diagnostic: the teacher is 2.4 MB of float32 ONNX and cannot ship; its figure says
how far a model that knows far more speech gets on these streams. Writes
``teacher_streams.{json,md}`` into ``--out`` (default ``benchmarks/results``).
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import asdict
from pathlib import Path

import numpy as np

from benchmarks.experiments.ship import DATA, EXPERIMENTS, EXTRA, train_config
from benchmarks.rejection import SPLIT, evaluate, make_streams, words_cell
from benchmarks.results_io import RESULTS, write_results
from edge_runtime.detector import DetectorConfig
from edge_runtime.manifest import BACKGROUND_LABELS


class TeacherModel:
    """Teachers of their own front-ends (:class:`train.distill.Teachers`) with what
    ``benchmarks.rejection`` scores 1-s windows through."""

    def __init__(self, teachers, labels: list[str], sample_rate: int, clip_samples: int):
        self.teachers = teachers
        self.labels, self.sample_rate, self.clip_samples = labels, sample_rate, clip_samples

    def predict_waves(self, windows: np.ndarray) -> np.ndarray:
        return self.teachers.probabilities(None, windows)


def teacher_model(name: str) -> TeacherModel:
    """Experiment ``name``'s speech-embedding teacher, built as its training run built it."""
    from train.data import load_dataset
    from train.models import architecture
    from train.train import load_splits, speech_embedding_teacher

    config = train_config(name, EXPERIMENTS[name], DATA)
    frontend = architecture(config.arch).frontend
    dataset = load_dataset(config.data)
    splits = load_splits(dataset, frontend, config)
    teachers = speech_embedding_teacher(splits, dataset, frontend, config, None)
    return TeacherModel(teachers, list(dataset.labels), frontend.sample_rate,
                        frontend.clip_samples)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("name", nargs="?", default="speech_se_150_xv")
    parser.add_argument("--minutes", type=float, default=20.0, help="length of each stream")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    if args.name not in EXPERIMENTS or not EXPERIMENTS[args.name].embedding_teacher:
        print(f"error: {args.name}: not an experiment with a speech-embedding teacher",
              file=sys.stderr)
        return 2
    model = teacher_model(args.name)
    streams_args = argparse.Namespace(data=DATA, split=SPLIT, speakers="val", extra=[EXTRA],
                                      extra_val_pct=EXPERIMENTS[args.name].extra_val_pct,
                                      minutes=args.minutes, even_words=True,
                                      main_keywords=False)
    keywords = tuple(x for x in model.labels if x not in BACKGROUND_LABELS)
    speakers, streams = make_streams(streams_args, keywords)
    config = DetectorConfig()
    result = evaluate(f"speech-embedding teacher of {args.name}", model, streams, config, True)
    result.update(speakers=len(speakers), detector=asdict(config), minutes=args.minutes)
    op = result["operating_point"]
    line = ("no threshold keeps false rejects <= 10%" if op is None else
            f"{op['non_keyword_fa_per_hour']} false accepts per hour at "
            f"{100 * op['false_reject_rate']:.1f}% false rejects (threshold {op['threshold']:.2f}) "
            f"from {op['clips_fired']} recordings")
    markdown = (f"# The speech-embedding teacher of {args.name} on the validation streams\n\n"
                f"{len(speakers)} validation speakers, three {args.minutes:g}-min streams "
                f"(even words), {config.smooth_ms:g} ms smoothing: {line}.\n\nWords behind "
                f"its false accepts: {words_cell(result['operating_point_speakers'])}\n")
    write_results("teacher_streams", result, markdown, args.out)
    print(markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
