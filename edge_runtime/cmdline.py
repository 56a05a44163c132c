"""Command-line plumbing shared by ``kws-edge`` and the ``kws`` toolchain: the parser that
turns usage errors into one ``error:`` line, argument types with ranges, the model options,
and the runner that maps :class:`~edge_runtime.errors.KwsError` to exit status 2.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from edge_runtime.errors import KwsError


class Parser(argparse.ArgumentParser):
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


positive_float = float_range(0, above=True)
percent = float_range(0, 100)


def field_default(cls: type, name: str) -> Any:
    """The default of field ``name`` of dataclass ``cls``: command-line defaults are the
    configs' own, declared once."""
    f = cls.__dataclass_fields__[name]
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    raise TypeError(f"{cls.__name__}.{name} has no default")


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
