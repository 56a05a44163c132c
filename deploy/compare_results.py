"""Compares ``kws-edge predict/evaluate --json`` output of two machines (x86 vs arm64).

Labels must be equal and probabilities equal within ``--steps`` output quantisation steps
(int8: the output scale from the model's manifest, 1/256 for a softmax); a label may differ
only where, on either machine, the two labels' probabilities are within that tolerance (a
tie: an exact tie on one machine is broken by class order).
Evaluate reports must agree on the number of clips and on accuracy up to such ties.

    python deploy/compare_results.py --manifest M.manifest.json \
        --predict x86.json arm64.json --evaluate x86_eval.json arm64_eval.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

FLOAT_TOLERANCE = 1e-4  # float32 models: different CPUs may sum in a different order


def load(path: str | Path):
    return json.loads(Path(path).read_text())


def key_of(file: str) -> str:
    """The clip's path from its class folder on (machines see different absolute paths)."""
    parts = Path(file).parts
    return "/".join(parts[-2:])


def tolerance(manifest: dict, steps: float) -> tuple[float, str]:
    out = manifest.get("output", {})
    scale = float(out.get("scale") or 0.0)
    if manifest.get("quantization") == "int8" and scale > 0:
        return steps * scale + 1e-6, f"{steps:g} step(s) of {scale:.6g}"
    return FLOAT_TOLERANCE, f"float tolerance {FLOAT_TOLERANCE:g}"


def compare_predictions(ref: list[dict], got: list[dict], tol: float) -> tuple[list[str], dict]:
    errors: list[str] = []
    ref_by = {key_of(r["file"]): r for r in ref}
    got_by = {key_of(g["file"]): g for g in got}
    if set(ref_by) != set(got_by):
        missing = sorted(set(ref_by) ^ set(got_by))[:5]
        errors.append(f"different clip sets (e.g. {missing})")
    stats = {"clips": 0, "exact": 0, "max_diff": 0.0, "label_ties": 0}
    for key in sorted(set(ref_by) & set(got_by)):
        r, g = ref_by[key], got_by[key]
        stats["clips"] += 1
        rp = {t["label"]: t["probability"] for t in r["top_k"]}
        gp = {t["label"]: t["probability"] for t in g["top_k"]}
        common = set(rp) & set(gp)
        diffs = [abs(rp[lab] - gp[lab]) for lab in common]
        diffs.append(abs(r["probability"] - g["probability"]))
        worst = max(diffs)
        stats["max_diff"] = max(stats["max_diff"], worst)
        if worst == 0 and r["label"] == g["label"]:
            stats["exact"] += 1
        if worst > tol:
            errors.append(f"{key}: probabilities differ by {worst:.6f} (> {tol:.6f})")
        if r["label"] != g["label"]:
            # Acceptable only for a tie: on either side, the other label within tolerance.
            ref_gap = r["probability"] - rp.get(g["label"], -1.0)
            got_gap = g["probability"] - gp.get(r["label"], -1.0)
            if min(ref_gap, got_gap) <= tol:
                stats["label_ties"] += 1
            else:
                errors.append(f"{key}: label {g['label']!r} != {r['label']!r}")
    return errors, stats


def compare_evaluations(ref: dict, got: dict, allowed_flips: int) -> list[str]:
    errors = []
    if ref.get("n") != got.get("n"):
        errors.append(f"evaluate: n {got.get('n')} != {ref.get('n')}")
    n = max(int(ref.get("n") or 0), 1)
    diff = abs(float(ref["accuracy"]) - float(got["accuracy"]))
    if diff > allowed_flips / n + 1e-6:
        errors.append(f"evaluate: accuracy {got['accuracy']} != {ref['accuracy']}")
    if allowed_flips == 0 and ref.get("confusion") != got.get("confusion"):
        errors.append("evaluate: confusion matrices differ")
    return errors


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--manifest", required=True, help="the model's manifest (output scale)")
    ap.add_argument("--predict", nargs=2, metavar=("REF", "GOT"), required=True)
    ap.add_argument("--evaluate", nargs=2, metavar=("REF", "GOT"))
    ap.add_argument("--steps", type=float, default=1.0, help="int8 steps allowed (default 1)")
    ap.add_argument("--info", help="`kws-edge info --json` of the GOT side")
    ap.add_argument("--expect-backend", help="the interpreter the GOT side must have used")
    args = ap.parse_args(argv)

    tol, tol_text = tolerance(load(args.manifest), args.steps)
    ref, got = (load(p) for p in args.predict)
    ref = ref if isinstance(ref, list) else [ref]
    got = got if isinstance(got, list) else [got]
    errors, stats = compare_predictions(ref, got, tol)
    if args.evaluate:
        errors += compare_evaluations(load(args.evaluate[0]), load(args.evaluate[1]),
                                      stats["label_ties"])
    if args.info and args.expect_backend:
        backend = load(args.info).get("interpreter")
        if backend != args.expect_backend:
            errors.append(f"interpreter {backend!r}, expected {args.expect_backend!r}")

    summary = (f"{stats['clips']} clips: {stats['exact']} bit-exact, max |dp| "
               f"{stats['max_diff']:.6f} (allowed {tol_text}), label ties {stats['label_ties']}")
    if args.evaluate:
        summary += (f"; accuracy {load(args.evaluate[0])['accuracy']} (ref) vs "
                    f"{load(args.evaluate[1])['accuracy']}")
    for e in errors[:20]:
        print(f"  MISMATCH {e}", file=sys.stderr)
    print(("OK   " if not errors else "FAIL ") + summary)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
