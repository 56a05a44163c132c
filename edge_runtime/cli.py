"""``kws-edge``: the device-side command line (predict, info, evaluate, bench, …).

Bad input prints one line ``error: …`` on stderr and exits with status 2.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from edge_runtime import listen, serve
from edge_runtime.cmdline import (
    Parser,
    add_model_args,
    float_range,
    int_range,
    load_model,
    print_json,
    run_parser,
)
from edge_runtime.errors import KwsError


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
        if m.threshold is not None:
            print(f"threshold   {m.threshold:g} (the detector's default for this model)")
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
    parser = Parser(prog="kws-edge", description="Keyword spotting on the device.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)

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

    listen.add_parser(sub)
    serve.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    return run_parser(build_parser, argv)


if __name__ == "__main__":
    sys.exit(main())
