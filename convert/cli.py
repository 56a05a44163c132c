"""``kws convert`` and ``kws compare``: added to the ``kws`` command line by ``add_parser``.

Exit status: 0 done, 2 bad input (``error: …``), 3 the int8 model failed the accuracy gate
(``--max-drop`` points of float32 -> int8 accuracy; see :mod:`convert.gate`).
"""

from __future__ import annotations

import argparse
import json
import sys
from functools import partial
from pathlib import Path

from convert.gate import DEFAULT_MAX_DROP, DEFAULT_MIN_ACCURACY, GATE_EXIT_STATUS

GATE_HELP = (f"largest accepted float32 -> int8 accuracy drop in percentage points "
             f"(default {DEFAULT_MAX_DROP}); above it the command exits with status "
             f"{GATE_EXIT_STATUS}")
MIN_ACCURACY_HELP = (f"lowest accepted float32 and int8 accuracy in percent (default "
                     f"{DEFAULT_MIN_ACCURACY:g}); below it the command exits with status "
                     f"{GATE_EXIT_STATUS}")


def _positive_int(text: str) -> int:
    from edge_runtime.cmdline import positive_int

    return positive_int(text)


def _seed(text: str) -> int:
    from edge_runtime.cmdline import seed_int

    return seed_int(text)


def _percent(text: str) -> float:
    from edge_runtime.cmdline import float_range

    return float_range(0, 100)(text)


def add_gate_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--max-drop", type=_percent, default=DEFAULT_MAX_DROP, help=GATE_HELP)
    p.add_argument("--min-accuracy", type=_percent, default=DEFAULT_MIN_ACCURACY,
                   help=MIN_ACCURACY_HELP)


def add_conversion_args(p: argparse.ArgumentParser) -> None:
    """The int8 conversion's options of ``kws convert`` and ``kws pipeline``, with
    :class:`~convert.convert.ConvertConfig`'s defaults."""
    from convert.convert import ConvertConfig
    from convert.logit_offset import MAX_OFFSET
    from edge_runtime.cmdline import field_default, float_range

    default = partial(field_default, ConvertConfig)
    p.add_argument("--calibration", type=_positive_int, default=default("calibration"),
                   help="training examples for int8 calibration (stratified by class)")
    clip = p.add_mutually_exclusive_group()
    clip.add_argument("--clip-percentile", type=float_range(50, 100),
                      default=default("clip_percentile"), metavar="P",
                      help="clip each ReLU at the P-th percentile of its calibration outputs, "
                           "as a rescaled ReLU6: finer int8 steps (default %(default)s)")
    clip.add_argument("--no-clip", dest="clip_percentile", action="store_const", const=None,
                      help="keep the ReLUs as trained")
    p.add_argument("--unknown-bias", type=float_range(-MAX_OFFSET, MAX_OFFSET),
                   default=default("unknown_bias"), metavar="B",
                   help="add B to the _unknown_ logit before conversion (prior correction): "
                        "B > 0 fires less on other speech and misses more keywords; choose "
                        "it on validation speakers (default %(default)s)")
    p.add_argument("--per-tensor", action="store_true",
                   help="int8 weights with one scale per tensor, not per output channel: a "
                        "much smaller file for models of many narrow layers (BC-ResNet); "
                        "check the float32/int8 agreement it keeps")


def add_parser(subparsers) -> None:
    """Add the ``convert`` and ``compare`` sub-commands."""
    from convert.convert import ConvertConfig
    from edge_runtime.cmdline import field_default

    default = partial(field_default, ConvertConfig)
    p = subparsers.add_parser(
        "convert", help="Keras -> float32 + int8 TFLite, compared and gated",
        description="Convert a trained model to a true float32 and a full-integer int8 "
                    f"TFLite file with manifests and a comparison report. {GATE_HELP}.")
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--run", metavar="RUN_ID", help="MLflow run that logged model_dir")
    source.add_argument("--keras", type=Path, metavar="PATH",
                        help="model.keras (or its folder, with model_settings.json)")
    source.add_argument("--model-uri", metavar="URI",
                        help="a registered model (models:/kws-edge-12@champion: the Keras "
                             "model of its run) or an artifact URI holding model.keras")
    p.add_argument("--data", type=Path, required=True, help="Speech Commands folder")
    add_gate_args(p)
    add_conversion_args(p)
    p.add_argument("--out", type=Path, default=default("out_dir"), help="output folder")
    p.add_argument("--force", action="store_true",
                   help="replace a model of the same --name in --out (its files are moved "
                        "to <out>-replaced/ first)")
    p.add_argument("--name", default=default("name"), help="file stem: <name>_int8.tflite, ...")
    p.add_argument("--dynamic", action="store_true", help="also a dynamic-range model")
    p.add_argument("--seed", type=_seed, default=default("seed"),
                   help="seed of the calibration sample")
    p.add_argument("--tracking-uri", help="MLflow tracking URI (default: sqlite ./mlflow.db)")
    p.add_argument("--no-mlflow", action="store_true", help="do not log to MLflow")
    p.add_argument("--no-register", action="store_true",
                   help="do not add a passing model to the MLflow Model Registry")
    p.add_argument("--json", action="store_true", help="print the comparison as JSON")
    p.set_defaults(func=cmd_convert)

    p = subparsers.add_parser(
        "compare", help="float32 vs int8 TFLite on a test split, gated",
        description="Compare a float32 and an int8 TFLite model (with manifests) on DIR's "
                    "test split (testing_list.txt, else every clip) through the edge "
                    f"runtime. {GATE_HELP}.")
    p.add_argument("--float", dest="float_model", type=Path, required=True, metavar="A.tflite")
    p.add_argument("--int8", dest="int8_model", type=Path, required=True, metavar="B.tflite")
    p.add_argument("--data", type=Path, required=True, help="Speech Commands folder")
    add_gate_args(p)
    p.add_argument("--out", type=Path, help="write the report (JSON, markdown, PNGs) here")
    p.add_argument("--name", default="compare", help="report file stem")
    p.add_argument("--json", action="store_true", help="print the comparison as JSON")
    p.set_defaults(func=cmd_compare)


def _summary(comparison) -> str:
    lines = [f"{'model':<8} {'accuracy':>9} {'bytes':>10}"]
    for name, report in comparison.reports.items():
        size = comparison.sizes.get(name)
        lines.append(f"{name:<8} {100 * report.accuracy:8.2f}% "
                     + (f"{size:>10,}" if size else f"{'':>10}"))
    lines.append(f"{comparison.n} test clips; float32 and int8 agree on "
                 f"{100 * comparison.agreement_float_int8:.2f}% of them")
    return "\n".join(lines)


def _finish(comparison, as_json: bool, extra: dict) -> int:
    gate = comparison.gate
    if as_json:
        print(json.dumps({**extra, **comparison.to_dict()}, indent=2))
    else:
        print(_summary(comparison))
        for key, value in extra.items():
            shown = ", ".join(map(str, value.values())) if isinstance(value, dict) else value
            print(f"{key}: {shown}")
    if not gate.passed:
        print(gate.message(), file=sys.stderr)
        return GATE_EXIT_STATUS
    if not as_json:
        print(gate.message())
    return 0


def cmd_convert(args: argparse.Namespace) -> int:
    from convert.convert import ConvertConfig, convert_model

    config = ConvertConfig(
        data_dir=args.data, keras_path=args.keras, run_id=args.run, model_uri=args.model_uri,
        out_dir=args.out, register=not args.no_register, name=args.name,
        max_drop=args.max_drop, min_accuracy=args.min_accuracy, force=args.force,
        calibration=args.calibration, clip_percentile=args.clip_percentile,
        unknown_bias=args.unknown_bias, per_tensor=args.per_tensor, dynamic=args.dynamic,
        tracking_uri=args.tracking_uri,
        seed=args.seed, mlflow=not args.no_mlflow)
    result = convert_model(config)
    where = "models" if result.passed else "REJECTED models (beside --out, not in it)"
    extra = {where: {k: str(p) for k, p in result.models.items()},
             "report": str(result.reports["markdown"])}
    if result.mlflow_run_id:
        extra["mlflow_run_id"] = result.mlflow_run_id
    if result.registration:
        extra["registered"] = result.registration.to_text()
    return _finish(result.comparison, args.json, extra)


def cmd_compare(args: argparse.Namespace) -> int:
    from convert.compare import compare_files

    comparison = compare_files(args.float_model, args.int8_model, args.data, args.max_drop,
                               progress=lambda m: print(m, file=sys.stderr, flush=True),
                               min_accuracy=args.min_accuracy)
    extra = {}
    if args.out:
        from convert.report import write_report

        reports = write_report(comparison, args.out, args.name)
        extra["report"] = str(reports["markdown"])
    return _finish(comparison, args.json, extra)
