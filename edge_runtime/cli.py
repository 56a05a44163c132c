"""``kws-edge``: the device-side command line (predict, info, evaluate, bench, …).

Bad input prints one line ``error: …`` on stderr and exits with status 2.
"""

from __future__ import annotations

import argparse
import importlib
import json
import math
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from edge_runtime.errors import KwsError

# (module, function) pairs that add their own sub-commands: ``function(subparsers)``.
COMMAND_MODULES = (("edge_runtime.listen", "add_parser"), ("edge_runtime.serve", "add_parser"))


class _Parser(argparse.ArgumentParser):
    """argparse that reports usage errors as one ``error:`` line with status 2, and whose
    help texts show the defaults (:class:`DefaultsFormatter`)."""

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("formatter_class", DefaultsFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> None:  # type: ignore[override]
        raise KwsError(f"{self.prog}: {message}")


MAX_INT = 2**31 - 1
MAX_THREADS = 256  # TFLite segfaults on tens of thousands; no device has more cores


def int_range(low: int, high: int = MAX_INT) -> Callable[[str], int]:
    """An argparse type for an integer in ``[low, high]``."""

    if high != MAX_INT:
        wanted = f"within {low}-{high}"
    else:
        wanted = "> 0" if low == 1 else f">= {low}"

    def parse(text: str) -> int:
        value = int(text)
        if value > high and high == MAX_INT:
            raise argparse.ArgumentTypeError(f"must be <= {high}, got {text:.30}")
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be {wanted}, got {text:.30}")
        return value

    parse.__name__ = "integer"  # argparse: "invalid integer value: 'x'"
    return parse


positive_int = int_range(1)
seed_int = int_range(0, 2**32 - 1)  # what NumPy and Keras seed generators take


def float_range(low: float, high: float | None = None, *, above: bool = False,
                unit: str = "") -> Callable[[str], float]:
    """An argparse type for a float in ``[low, high]`` (``(low, …`` with ``above``)."""
    if high is not None:
        wanted = f"within {low:g}-{high:g}{unit}"
    else:
        wanted = f"{'>' if above else '>='} {low:g}{unit}"

    def parse(text: str) -> float:
        value = float(text)
        inside = (value > low if above else value >= low) and (high is None or value <= high)
        if not inside or not math.isfinite(value):  # NaN fails both comparisons
            raise argparse.ArgumentTypeError(f"must be {wanted}, got {text}")
        return value

    parse.__name__ = "number"
    return parse


class DefaultsFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Help texts that end with their default, unless it is None, False or empty (or the
    text names it already)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        if (default is None or default is False or default in ([], "") or "%(default)" in text
                or "(default" in text or default is argparse.SUPPRESS):
            return text
        return f"{text} (default: %(default)s)".lstrip()


def add_model_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", type=Path, help="a .tflite model (default: the shipped one)")
    parser.add_argument("--threads", type=int_range(1, MAX_THREADS), default=1,
                        help=f"interpreter threads (1-{MAX_THREADS})")


def load_model(args: argparse.Namespace):
    from edge_runtime.model import KwsModel
    from edge_runtime.paths import default_model

    return KwsModel(args.model or default_model(), num_threads=args.threads)


def print_json(data) -> None:
    print(json.dumps(data, indent=2))


def cmd_predict(args: argparse.Namespace) -> int:
    """Label each file; with several files a bad one is reported (``error:`` on stderr, an
    ``{"file", "error"}`` entry in ``--json``) and the others still are, exit status 2."""
    model = load_model(args)
    results, failed = [], 0
    for path in args.files:
        try:
            pred = model.classify_file(path, top_k=args.top_k, hop_s=args.hop,
                                       threshold=args.threshold)
        except KwsError as exc:
            if len(args.files) == 1:  # one bad file: one error line, nothing on stdout
                raise
            failed += 1
            print(f"error: {exc}", file=sys.stderr, flush=True)
            results.append({"file": str(path), "error": str(exc)})
            continue
        results.append({"file": str(path), **pred.to_dict()})
        if not args.json:
            top = ", ".join(f"{lab} {p:.3f}" for lab, p in pred.top_k)
            t = pred.timings_ms
            print(f"{path}: {pred.label} {pred.probability:.3f}  [top: {top}]  "
                  f"(frontend {t['frontend']:.2f} ms, invoke {t['invoke']:.2f} ms, "
                  f"total {t['total']:.2f} ms)")
            for d in pred.detections or []:
                print(f"  {d.start_s:8.2f}-{d.end_s:8.2f} s  {d.label} {d.probability:.3f}")
    if args.json:
        print_json(results if len(results) > 1 else results[0])
    return 2 if failed else 0


def cmd_info(args: argparse.Namespace) -> int:
    from edge_runtime.interpreter import interpreter_class

    model = load_model(args)
    info = {"model": str(model.path), "interpreter": interpreter_class()[0],
            **model.manifest.to_dict()}
    if args.json:
        print_json(info)
    else:
        m = model.manifest
        fe = m.frontend
        print(f"model       {model.path} ({m.size_bytes:,} bytes, {m.quantization})")
        print(f"arch        {m.arch or 'n/a'}   created {m.created or 'n/a'}")
        print(f"labels      {', '.join(m.labels)}")
        print(f"front-end   {fe.describe()}, {fe.window_ms:g} ms window, "
              f"{fe.hop_ms:g} ms hop, {fe.sample_rate} Hz")
        print(f"input       {m.input}")
        print(f"output      {m.output}")
        print(f"accuracy    {m.accuracy or 'n/a'}")
        print(f"interpreter {info['interpreter']}   sha256 {m.sha256}")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from edge_runtime.evaluate import evaluate_model

    model = load_model(args)
    report = evaluate_model(model, args.data)
    if args.json:
        print_json({"model": str(model.path), "data": str(args.data), **report.to_dict()})
    else:
        print(report.to_text())
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    from edge_runtime.bench import measure

    model = load_model(args)
    result = {"model": str(model.path), "threads": args.threads,
              **measure(model, runs=args.runs)}
    if args.json:
        print_json(result)
    else:
        for key in ("frontend_ms", "invoke_ms", "end_to_end_ms"):
            r = result[key]
            print(f"{key:<14} median {r['median']:.3f}  p90 {r['p90']:.3f}  p99 {r['p99']:.3f}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="kws-edge", description="Keyword spotting on the device.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    p = sub.add_parser("predict", help="label WAV files")
    p.add_argument("files", nargs="+", type=Path)
    add_model_args(p)
    p.add_argument("--json", action="store_true")
    p.add_argument("--top-k", type=int_range(1, 1000), default=3)
    p.add_argument("--hop", type=float_range(0.01, 60, unit=" s"), default=0.5,
                   help="window hop in s for long files (0.01-60)")
    p.add_argument("--threshold", type=float_range(0, 1), default=0.5,
                   help="probability for a detection in long files (0-1)")
    p.set_defaults(func=cmd_predict)

    p = sub.add_parser("info", help="show the model and its manifest")
    add_model_args(p)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_info)

    p = sub.add_parser("evaluate", help="accuracy on a Speech Commands folder")
    p.add_argument("--data", type=Path, required=True)
    add_model_args(p)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("bench", help="latency on this device")
    add_model_args(p)
    p.add_argument("--runs", type=int_range(1, 1_000_000), default=200)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_bench)

    add_module_commands(sub, COMMAND_MODULES)
    return parser


def add_module_commands(subparsers, modules: Sequence[tuple[str, str]]) -> None:
    """Let each ``(module, function)`` add its sub-commands; modules not present are skipped."""
    for name, function in modules:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:
                continue
            raise
        getattr(module, function)(subparsers)


def run(func: Callable[[], int]) -> int:
    """Run a command; bad input becomes one ``error:`` line and status 2."""
    for stream in (sys.stdout, sys.stderr):  # file names that are not valid UTF-8
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")
    try:
        return func()
    except KwsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # output piped into e.g. `head`, which stopped reading
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except OSError as exc:
        print(f"error: {exc.filename or ''}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


def run_parser(build: Callable[[], argparse.ArgumentParser],
               argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` with the parser ``build`` makes and run the chosen sub-command."""

    def go() -> int:
        args = build().parse_args(argv)
        return args.func(args)

    return run(go)


def main(argv: Sequence[str] | None = None) -> int:
    return run_parser(build_parser, argv)


if __name__ == "__main__":
    sys.exit(main())
