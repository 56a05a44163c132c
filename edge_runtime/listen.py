"""``kws-edge listen``, ``evaluate-stream`` and ``make-stream``: streaming detection.

Nothing heavy is imported here at import time (``kws-edge`` loads this module for every
command); ``sounddevice`` and ``matplotlib`` are imported only when used.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import replace
from functools import partial
from pathlib import Path

from edge_runtime.cmdline import field_default, float_range

_ms = float_range(0, 3_600_000, unit=" ms")  # up to an hour
_seconds = float_range(0, unit=" s")
_probability = float_range(0, 1)
_timeout = float_range(0, above=True, unit=" s")


def _retries(text: str) -> int:
    if not (text.isdigit() and int(text) <= 10):
        raise argparse.ArgumentTypeError(f"must be a whole number within 0-10, got {text}")
    return int(text)


def _device(text: str) -> int | str:
    return int(text) if text.lstrip("-").isdigit() else text


def _add_detector_args(p: argparse.ArgumentParser) -> None:
    from edge_runtime.cmdline import add_model_args
    from edge_runtime.detector import DetectorConfig

    default = partial(field_default, DetectorConfig)
    add_model_args(p)
    p.add_argument("--hop-ms", type=_ms, default=default("hop_ms"),
                   help="run the model every HOP ms (a multiple of the front-end hop)")
    p.add_argument("--smooth-ms", type=_ms, default=default("smooth_ms"),
                   help="average the posteriors of the last SMOOTH ms")
    p.add_argument("--threshold", type=_probability, default=None,
                   help="smoothed probability that fires a keyword (default: the threshold in "
                        f"the model's manifest, else {default('threshold'):g})")
    p.add_argument("--refractory-ms", type=_ms, default=default("refractory_ms"),
                   help="no further event for this long after one")
    p.add_argument("--json", action="store_true", help="JSON output")


def _detector_config(args: argparse.Namespace, model):
    from edge_runtime.detector import DetectorConfig

    return DetectorConfig(hop_ms=args.hop_ms, smooth_ms=args.smooth_ms,
                          threshold=_threshold(args, model), refractory_ms=args.refractory_ms)


def _threshold(args: argparse.Namespace, model) -> float:
    """--threshold, else the model's own (its manifest), else the detector's default."""
    from edge_runtime.detector import model_threshold

    return model_threshold(model) if args.threshold is None else args.threshold


def _keywords(text: str) -> tuple[str, ...]:
    words = tuple(w.strip() for w in text.split(",") if w.strip())
    if not words or len(set(words)) != len(words):
        raise argparse.ArgumentTypeError("give distinct comma-separated keywords")
    return words


def _keyword_threshold(text: str) -> tuple[str, float]:
    word, sep, value = text.partition("=")
    if not sep or not word.strip():
        raise argparse.ArgumentTypeError(f"{text!r}: use WORD=PROBABILITY, e.g. yes=0.9")
    return word.strip(), _probability(value)


def _listen_config(args: argparse.Namespace, model):
    return replace(_detector_config(args, model), keywords=args.keywords,
                   thresholds=tuple(args.keyword_threshold))


def _actions(args: argparse.Namespace, model_path: str):
    import logging

    from edge_runtime.actions import ActionConfig, Actions

    logging.basicConfig(format="kws-edge listen: %(message)s", level=logging.WARNING)
    return Actions(ActionConfig(exec_cmd=args.exec_cmd, exec_timeout_s=args.exec_timeout,
                                post_url=args.post, post_timeout_s=args.post_timeout,
                                post_retries=args.post_retries,
                                min_interval_s=args.action_interval), model_path)


def cmd_listen(args: argparse.Namespace) -> int:
    from edge_runtime.audio_source import file_source, microphone_source
    from edge_runtime.cmdline import load_model
    from edge_runtime.detector import StreamingDetector, chunk_samples, run_detector

    model = load_model(args)
    config = _listen_config(args, model)
    detector = StreamingDetector(model, config)
    actions = _actions(args, str(model.path))
    chunk = chunk_samples(config, model.sample_rate)
    if args.input is not None:
        source = file_source(args.input, model.sample_rate, chunk, realtime=not args.fast)
    else:
        source = microphone_source(model.sample_rate, chunk, args.device, args.seconds)
        if not args.json:
            print(f"listening ({', '.join(x for x in model.labels if not x.startswith('_'))}); "
                  "Ctrl-C stops", file=sys.stderr)

    def show(event) -> None:
        actions.on_event(event)
        print(json.dumps(event.to_dict()) if args.json else event.to_text(), flush=True)

    try:
        run_detector(detector, source, show)
    except BrokenPipeError:  # e.g. piped into `head`: the reader has what it wanted
        sys.stdout = open(os.devnull, "w")  # silence the flush at exit
    except KeyboardInterrupt:
        pass
    finally:
        actions.close()
    return 0


def cmd_evaluate_stream(args: argparse.Namespace) -> int:
    from edge_runtime.cmdline import load_model, print_json
    from edge_runtime.errors import KwsError
    from edge_runtime.stream_gen import read_labels
    from edge_runtime.stream_score import evaluate_stream
    from edge_runtime.wav import load_audio

    model = load_model(args)
    config = _detector_config(args, model)
    config.validate(model.manifest.frontend)
    if args.plot is not None:
        import importlib.util

        if importlib.util.find_spec("matplotlib") is None:
            raise KwsError("--plot needs matplotlib, which is not installed")
    rows = read_labels(args.labels)
    audio = load_audio(args.audio, model.sample_rate)
    result = evaluate_stream(model, audio.samples, rows, config, args.tolerance_ms / 1000.0)
    if args.plot is not None:
        from edge_runtime.stream_plot import plot_sweep

        plot_sweep(result, args.plot)
    if args.json:
        data = {"model": str(model.path), "audio": str(args.audio), **result.to_dict()}
        if not args.events:
            data.pop("events")
        print_json(data)
    else:
        print(result.to_text())
        if args.events:
            print()
            for event in result.events:
                print(event.to_text())
    return 0


def cmd_make_stream(args: argparse.Namespace) -> int:
    from edge_runtime.errors import KwsError
    from edge_runtime.stream_gen import DEFAULT_KEYWORDS, StreamSpec, generate, write_labels
    from edge_runtime.wav import write_wav

    keywords = (DEFAULT_KEYWORDS if args.keywords is None
                else tuple(k.strip() for k in args.keywords.split(",") if k.strip()))
    if len(set(keywords)) != len(keywords):
        raise KwsError("--keywords lists a word twice")
    spec = StreamSpec(minutes=args.minutes, seed=args.seed, keywords=keywords,
                      sample_rate=args.rate, noise_rms=args.noise_rms)
    stream = generate(args.data, spec)
    rows = stream.keyword_rows()
    write_wav(args.out, stream.samples, stream.sample_rate)
    write_labels(args.labels, rows)
    print(f"{args.out}: {stream.samples.size / stream.sample_rate / 60:.1f} min, "
          f"{len(rows)} keywords and {len(stream.placements) - len(rows)} other words; "
          f"labels in {args.labels}")
    return 0


def add_parser(subparsers) -> None:
    from edge_runtime.actions import ActionConfig
    from edge_runtime.cmdline import positive_int, seed_int
    from edge_runtime.stream_gen import StreamSpec

    action, spec = partial(field_default, ActionConfig), partial(field_default, StreamSpec)
    p = subparsers.add_parser("listen", help="detect keywords in a live or recorded stream")
    _add_detector_args(p)
    p.add_argument("--device", type=_device, default=None,
                   help="input device number or name (see python -m sounddevice)")
    p.add_argument("--input", type=Path, default=None,
                   help="stream this WAV file instead of the microphone")
    p.add_argument("--fast", action="store_true",
                   help="with --input: as fast as possible instead of in real time")
    p.add_argument("--seconds", type=_seconds, default=None,
                   help="stop the microphone after this many seconds")
    g = p.add_argument_group("which keywords")
    g.add_argument("--keywords", type=_keywords, default=None,
                   help="comma-separated keywords to listen for (default: all of the model's)")
    g.add_argument("--keyword-threshold", type=_keyword_threshold, action="append", default=[],
                   metavar="WORD=P", help="threshold for one keyword (repeatable)")
    g = p.add_argument_group("acting on a detection")
    g.add_argument("--exec", dest="exec_cmd", metavar="CMD", default=None,
                   help="run CMD per detection (split like a shell, not run by one) with "
                        "KWS_LABEL, KWS_PROBABILITY, KWS_TIME_S, KWS_TIMESTAMP, KWS_MODEL set")
    g.add_argument("--exec-timeout", type=_timeout, default=action("exec_timeout_s"),
                   help="kill the command after this many seconds")
    g.add_argument("--post", metavar="URL", default=None,
                   help="POST each detection as JSON to URL")
    g.add_argument("--post-timeout", type=_timeout, default=action("post_timeout_s"),
                   help="seconds per try")
    g.add_argument("--post-retries", type=_retries, default=action("post_retries"),
                   help="tries after a failed post (network error or HTTP 5xx)")
    g.add_argument("--action-interval", type=_seconds, default=action("min_interval_s"),
                   help="run each action at most once per this many seconds of audio")
    p.set_defaults(func=cmd_listen)

    p = subparsers.add_parser("evaluate-stream",
                              help="hits, misses and false accepts per hour on long audio")
    p.add_argument("--audio", type=Path, required=True, help="long WAV recording")
    p.add_argument("--labels", type=Path, required=True, help="CSV start_s,end_s,label")
    _add_detector_args(p)
    p.add_argument("--tolerance-ms", type=_ms, default=500.0,
                   help="an event may lie this far outside its keyword's span")
    p.add_argument("--plot", type=Path, default=None, help="write a DET-style PNG")
    p.add_argument("--events", action="store_true", help="also list the events")
    p.set_defaults(func=cmd_evaluate_stream)

    p = subparsers.add_parser("make-stream",
                              help="long test audio with keywords at known times")
    p.add_argument("--data", type=Path, required=True, help="Speech Commands layout folder")
    p.add_argument("--out", type=Path, required=True, help="WAV to write")
    p.add_argument("--labels", type=Path, required=True, help="CSV to write")
    p.add_argument("--minutes", type=float, default=spec("minutes"))
    p.add_argument("--seed", type=seed_int, default=spec("seed"))
    p.add_argument("--keywords", default=None,
                   help="comma-separated keywords (default: the ten Speech Commands ones)")
    p.add_argument("--rate", type=positive_int, default=spec("sample_rate"),
                   help="sample rate of the WAV")
    p.add_argument("--noise-rms", type=float, default=spec("noise_rms"),
                   help="background noise level")
    p.set_defaults(func=cmd_make_stream)
