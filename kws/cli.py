"""``kws``: the toolchain command line (data, train, ensemble, convert, compare, export,
pipeline).

It needs the training extras (TensorFlow, MLflow, librosa, …); without them it says so in one
``error:`` line with exit status 2, as it does for any bad input.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Sequence

from edge_runtime.cmdline import Parser, run_parser

# import names of the training extras (pyproject's toolchain [train])
TRAINING_MODULES = ("tensorflow", "mlflow", "librosa", "matplotlib", "tqdm", "requests")
INSTALL_HINT = 'pip install -e "./toolchain[train]" in a kws-edge checkout'


def missing_training_modules() -> list[str]:
    return [name for name in TRAINING_MODULES if importlib.util.find_spec(name) is None]


def build_parser() -> Parser:
    from convert import cli as convert_cli
    from convert import registry
    from kws import pipeline
    from train import cli as train_cli
    from train import data_cli

    parser = Parser(prog="kws", description="kws-edge toolchain: data, training, conversion.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    for add in (data_cli.add_data_parser, train_cli.add_train_parser,
                train_cli.add_ensemble_parser, convert_cli.add_parser, registry.add_parser,
                pipeline.add_parser):  # in help order
        add(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    missing = missing_training_modules()
    if missing:
        print(f"error: kws needs the training extras ({', '.join(missing)} not installed): "
              f"{INSTALL_HINT}", file=sys.stderr)
        return 2
    return run_parser(build_parser, argv)


if __name__ == "__main__":
    sys.exit(main())
