"""Size and speed of every architecture of the zoo as full-int8 (and float32) TFLite.

``python -m benchmarks.architectures [--arch A ...] [--runs N] [--json]`` builds each
architecture of ``train.models`` for the 12 labels, gives its BatchNorms trained-looking terms
(an untrained file is smaller: the converter shares identical constants), converts it as
``kws convert`` does (feature normalisation into the manifest, ReLUs clipped, batch 1) on
synthetic calibration features, and times ``kws-edge bench``'s loop (front-end + invoke, one
interpreter thread) on both files, all in one run. An int8 kernel's time does not depend on
the weights' values, so this is each architecture's speed without a trained run: the shipped
file is timed in the same run beside its untrained twin to show it. Accuracy needs training:
see ``benchmarks/results/shipped_model.md``. Writes benchmarks/results/architectures.{json,md,png}.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

from benchmarks.results_io import RESULTS, markdown_table, publish  # noqa: E402
from edge_runtime.bench import measure  # noqa: E402
from edge_runtime.dataset import SILENCE, UNKNOWN  # noqa: E402
from edge_runtime.errors import KwsError  # noqa: E402
from edge_runtime.manifest import write_manifest  # noqa: E402
from edge_runtime.model import KwsModel  # noqa: E402
from train.data import STANDARD_WORDS  # noqa: E402

SHIPPED = Path(__file__).resolve().parents[1] / "artifacts" / "kws_int8.tflite"
LABELS = (SILENCE, UNKNOWN, *STANDARD_WORDS)  # the 12-label task the models ship for
QUANTIZATIONS = ("float32", "int8")


def build_files(arch: str, out_dir: Path, calibration: int = 64,
                per_tensor: bool = False) -> dict:
    """Write ``<arch>_float32.tflite`` and ``<arch>_int8.tflite`` (with manifests) of an
    untrained ``arch`` into ``out_dir`` (int8 weights per channel, or with ``per_tensor`` one
    scale per tensor, as ``kws convert --per-tensor``); returns the parameter count and the
    file paths."""
    from convert.clip_activations import DEFAULT_PERCENTILE
    from convert.convert import prepared_for_tflite
    from convert.tflite import op_names, to_tflite
    from train.models import build_model, frontend_for
    from train.models.common import FeatureStats, tone_features, trained_looking_batchnorm

    frontend = frontend_for(arch)
    calib = tone_features(frontend, n=calibration)
    model = trained_looking_batchnorm(build_model(arch, len(LABELS), FeatureStats.of(calib)))
    core, feature_norm, calib, clipped = prepared_for_tflite(model, calib, DEFAULT_PERCENTILE,
                                                             say=lambda _msg: None)
    files = {}
    for quant in QUANTIZATIONS:
        content = to_tflite(core, quant, calib if quant == "int8" else None,
                            per_tensor=per_tensor and quant == "int8")
        path = out_dir / f"{arch}_{quant}.tflite"
        path.write_bytes(content)
        write_manifest(path, labels=list(LABELS), frontend=frontend, quantization=quant,
                       arch=arch, feature_norm=feature_norm)
        files[quant] = {"path": path, "ops": sorted(set(op_names(content)))}
    return {"params": int(model.count_params()), "relus_clipped": clipped, "files": files}


def timed(model: KwsModel, runs: int) -> dict:
    """Size and medians (ms) of the front-end, the invoke and both."""
    t = measure(model, runs=runs)
    return {"bytes": model.path.stat().st_size,
            **{k: t[f"{k}_ms"]["median"] for k in ("frontend", "invoke", "end_to_end")}}


def run(archs: list[str], runs: int, shipped: Path | None = SHIPPED,
        per_tensor: bool = False) -> dict:
    from train.models import ARCHITECTURES

    unknown = [a for a in archs if a not in ARCHITECTURES]
    if unknown:
        raise KwsError(f"unknown architecture(s) {', '.join(unknown)} (choose from "
                       f"{', '.join(ARCHITECTURES)})")
    rows = []
    with tempfile.TemporaryDirectory(prefix="kws-arch-") as tmp:
        for arch in archs:
            print(f"{arch}: building and converting", file=sys.stderr)
            built = build_files(arch, Path(tmp), per_tensor=per_tensor)
            rows.append({"arch": arch, "trained": False, "params": built["params"],
                         "relus_clipped": built["relus_clipped"],
                         "int8_ops": built["files"]["int8"]["ops"],
                         **{q: timed(KwsModel(built["files"][q]["path"], num_threads=1), runs)
                            for q in QUANTIZATIONS}})
    if shipped is not None and shipped.is_file():
        model = KwsModel(shipped, num_threads=1)
        rows.append({"arch": model.manifest.arch, "trained": True, "file": str(shipped),
                     "int8": timed(model, runs)})
    return {"runs": runs, "threads": 1, "labels": len(LABELS), "per_tensor": per_tensor,
            "rows": rows}


def plot(data: dict, out: Path) -> None:
    """int8 size (against the 60 KB budget) and int8 end-to-end time of each row."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = data["rows"]
    names = [r["arch"] + (" (shipped)" if r["trained"] else "") for r in rows]
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 0.35 * len(rows) + 1.5), sharey=True)
    left.barh(names, [r["int8"]["bytes"] / 1000 for r in rows])
    left.axvline(60, color="red", linestyle="--", label="60 KB budget")
    left.set_xscale("log")
    left.set_xlabel("int8 file (KB, log scale)")
    left.legend(loc="lower right")
    right.barh(names, [r["int8"]["end_to_end"] for r in rows])
    right.set_xlabel(f"int8 end to end (ms, median of {data['runs']}, 1 thread)")
    left.invert_yaxis()
    for ax in (left, right):
        ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


def table(data: dict) -> str:
    out = []
    for r in data["rows"]:
        f32 = r.get("float32")
        name = f"`{r['arch']}`" + (" (the shipped file, trained)" if r["trained"] else "")
        out.append([name, f"{r['params']:,}" if "params" in r else "—",
                    f"{r['int8']['bytes']:,}", f"{r['int8']['frontend']:.3f}",
                    f"{r['int8']['invoke']:.3f}", f"{r['int8']['end_to_end']:.3f}",
                    f"{f32['bytes']:,}" if f32 else "—",
                    f"{f32['end_to_end']:.3f}" if f32 else "—"])
    return markdown_table(["architecture", "parameters", "int8 bytes", "front-end ms",
                           "int8 invoke ms", "int8 end-to-end ms", "float32 bytes",
                           "float32 end-to-end ms"], out)


def markdown(data: dict) -> str:
    return (f"# Architectures: size and speed\n\nEach architecture of `train.models` for "
            f"{data['labels']} labels, untrained (BatchNorm terms made trained-looking), "
            "converted as `kws convert` converts (ReLUs clipped, batch 1, full int8 on "
            "synthetic calibration features); medians of "
            f"{data['runs']} front-end + invoke runs on {data['threads']} interpreter thread, "
            "all in one run (`python -m benchmarks.architectures`). An int8 kernel's time "
            "does not depend on the weights' values: the shipped file, trained, is timed "
            "beside its untrained twin. "
            + ("One int8 scale per weight tensor throughout (`--per-tensor`, as `kws convert "
               "--per-tensor`). " if data.get("per_tensor") else
               "Per-channel weights throughout (`ds_cnn_w96` and the hard-swish BC-ResNets "
               "ship with `--per-tensor`, which makes them smaller, not faster). ")
            + "Accuracy needs training: `benchmarks/results/shipped_model.md`.\n\n"
            + table(data) + "\n")


def main(argv: list[str] | None = None) -> int:
    from train.models import ARCHITECTURES

    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--arch", action="append", metavar="ARCH",
                        help="architecture (repeatable; default: all of them)")
    parser.add_argument("--runs", type=int, default=200, help="timed runs per file")
    parser.add_argument("--per-tensor", action="store_true",
                        help="int8 weights with one scale per tensor (as kws convert "
                        "--per-tensor), not per output channel")
    parser.add_argument("--no-shipped", action="store_true",
                        help="leave out the shipped file")
    parser.add_argument("--out", type=Path, help="results folder (default: benchmarks/results)")
    parser.add_argument("--json", action="store_true", help="print the JSON, not the table")
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error("--runs must be >= 1")
    try:
        data = run(args.arch or list(ARCHITECTURES), args.runs,
                   None if args.no_shipped else SHIPPED, args.per_tensor)
    except KwsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    out = args.out or RESULTS
    out.mkdir(parents=True, exist_ok=True)
    plot(data, out / "architectures.png")
    return publish("architectures", data, markdown(data), table(data), args.json, out)


if __name__ == "__main__":
    raise SystemExit(main())
