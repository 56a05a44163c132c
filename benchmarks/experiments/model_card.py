"""Write ``artifacts/MODEL_CARD.md`` from measured results only.

``python -m benchmarks.experiments.model_card NAME [--evaluate whole_set.json]`` reads the
experiment's result (``<work>/results/NAME.json``), ``artifacts/split_speakers.json``, the
shipped manifests, the model's ``model_settings.json``, ``benchmarks/results/latency.json`` and
``streaming.json`` (when present) and the ``kws-edge evaluate --json`` output on the whole mini
set (``--evaluate``).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

from benchmarks.experiments.ship import EXPERIMENTS, MAX_DROP, ROOT, WORK, Experiment, earlier_runs
from benchmarks.rejection import sources_cells
from benchmarks.results_io import RESULTS, markdown_table
from edge_runtime.errors import KwsError
from edge_runtime.frontend import FrontendConfig


def se_points(acc: float, n: int) -> float:
    return 100 * math.sqrt(acc * (1 - acc) / n)


def load(path: Path) -> dict | None:
    return json.loads(path.read_text()) if path.is_file() else None


def synth_text(split: dict, exp) -> str:
    """What the synthetic-speech folder holds, from its own manifest."""
    folder = Path(split.get("synth_dir") or "")
    synth = load(folder / "synth_manifest.json") or {}
    made = ", ".join(f"{k} {synth[k]}" for k in ("voices", "per_word", "seed") if k in synth)
    if exp is not None and exp.synth_dir is not None:
        return ("espeak-ng voices made with `kws data synth`: the 10 keywords (40 voices "
                "each) and the 467 everyday non-keywords of `train/vocabulary.py` (4 voices "
                "each)")
    return f"`{folder.name}`, made with `kws data synth` ({made}): the 10 keywords and 10 " \
           "other words"


def anchor_lines() -> list[str]:
    """The shipped model beside the MLPerf Tiny reference, from the benchmark results."""
    acc, rej = load(RESULTS / "accuracy.json"), load(RESULTS / "rejection.json")
    lines = []
    if acc and acc.get("reference"):
        ours, ref = acc["summary"]["int8"], acc["reference"]

        def row(name: str, x: dict, size: int) -> list:
            return [name, f"{100 * x['accuracy']:.2f}", f"{100 * (x['unknown_recall'] or 0):.1f}",
                    f"{x['weakest_keyword']} {100 * x['weakest_keyword_accuracy']:.1f}",
                    f"{size:,}"]

        lines += ["## Beside the MLPerf Tiny reference", "",
                  f"Same {acc['n']} held-out clips (`python -m benchmarks.accuracy`); the "
                  "reference runs through its own `tf.signal` front-end:", "",
                  markdown_table(["model", "accuracy %", "_unknown_ recall %",
                                  "weakest keyword %", "bytes"],
                                 [row("kws-edge int8", ours, acc["size_bytes"]["int8"]),
                                  row("MLPerf Tiny reference int8", ref, ref["bytes"])]), ""]
    if rej:
        rows = []
        for m in rej["models"]:
            op, label = m["operating_point"], "{:.2f}"
            if op is None:  # no threshold reaches 10%: the one with the fewest false rejects
                op = min(m.get("sweep") or [], default=None,
                         key=lambda p: (p["false_reject_rate"], p["non_keyword_fa_per_hour"]))
                label = "none ≤ 10% (fewest at {:.2f})"
            rows.append([m["name"], label.format(op["threshold"]) if op else "—",
                         f"{100 * op['false_reject_rate']:.1f}" if op else "—",
                         op["false_accepts_per_hour"]["other_words"] if op else "—",
                         op["false_accepts_per_hour"]["running_speech"] if op else "—",
                         *sources_cells(m.get("operating_point_speakers"))])
        lines += [f"Streams of held-out speakers (`python -m benchmarks.rejection`, "
                  f"{rej['minutes_per_stream']:g} min each), at the threshold with the fewest "
                  "false accepts for at most 10% false rejects (where none reaches 10%, the one "
                  "with the fewest false rejects). The streams repeat each speaker's few "
                  "non-keyword recordings many times: the interval resamples speakers, and "
                  "the last column says how many recordings the false accepts came from:", "",
                  markdown_table(["model", "threshold", "false rejects %",
                                  "false accepts/h, other words",
                                  "false accepts/h, running speech",
                                  "false accepts/h, 95% interval",
                                  "events: recordings that fired / distinct (top 5's events)"],
                                 rows), ""]
        ours_at = rej["models"][0]["at_default_threshold"]
        if ours_at:
            lines += [f"At the detector threshold {rej['detector']['threshold']:g} with "
                      f"{rej['detector']['smooth_ms']:g} ms smoothing (the "
                      "manifest's `threshold`, chosen on validation speakers' streams; "
                      "`kws-edge listen` and `evaluate-stream` use it unless given "
                      f"`--threshold`): {100 * ours_at['false_reject_rate']:.1f}% false "
                      f"rejects, {ours_at['non_keyword_fa_per_hour']:g} false accepts per hour "
                      "(both non-keyword streams).", ""]
    return lines


def int8_end_to_end_ms(folder: str | None, arch: str, untrained: dict[str, float],
                       runs: int = 200) -> str:
    """Median end-to-end time (front-end + int8 invoke, 1 thread) of a run's int8 file,
    measured now with ``kws-edge bench``'s loop; where the file is gone, the architecture's
    untrained graph from ``benchmarks.architectures`` (marked ``*``), else "n/a"."""
    from edge_runtime.bench import measure
    from edge_runtime.model import KwsModel

    path = None if folder is None else Path(folder) / "kws_int8.tflite"
    if path is not None and path.is_file():
        return f"{measure(KwsModel(path, num_threads=1), runs=runs)['end_to_end_ms']['median']:.2f}"
    return f"{untrained[arch]:.2f}*" if arch in untrained else "n/a"


def untrained_ms() -> tuple[dict[str, float], str]:
    """Each architecture's int8 end-to-end median from ``benchmarks/results/architectures.json``
    (untrained graphs) and when it was measured."""
    data = load(RESULTS / "architectures.json") or {"rows": []}
    ms = {r["arch"]: r["int8"]["end_to_end"] for r in data["rows"] if not r["trained"]}
    return ms, data.get("machine", {}).get("date", "")[:10]


def one_model_on_the_split(r: dict) -> bool:
    """A run of one architecture validated on the fixed split: not a speaker-fold run (its
    validation clips differ), an ensemble or a soup (more than one architecture or run)."""
    exp = EXPERIMENTS.get(r["name"])
    if exp is None:  # committed rows of runs not defined in ship.py: the GPU fold runs
        return "trained_on" not in r
    while exp.model_from in EXPERIMENTS:  # a conversion of another run's model: that run
        exp = EXPERIMENTS[exp.model_from]
    return exp.cv_fold is None and not exp.ensemble and not exp.soup


def comparison_lines(shipped: str) -> list[str]:
    """Each architecture's best run on the same held-out clips (from the experiments of the
    work folder and of the committed table; the shipped run for its own), with the end-to-end
    time of its int8 file measured on this machine where the work folder still holds it, else
    of its architecture's untrained graph (``benchmarks.architectures``)."""
    best: dict[str, dict] = {}
    runs = {**earlier_runs(), **{p.stem: json.loads(p.read_text())
                                 for p in sorted((WORK / "results").glob("*.json"))}}
    for r in sorted(runs.values(), key=lambda r: r["name"] == shipped):  # the shipped run last
        arch = r.get("arch") if one_model_on_the_split(r) else None
        if arch and (arch not in best or r["name"] == shipped
                     or r["val_accuracy"] > best[arch]["val_accuracy"]):
            best[arch] = r
    if len(best) < 2:
        return []
    untrained, when = untrained_ms()
    rows = [[f"`{a}`" + (" (shipped)" if r["name"] == shipped else ""), r["name"],
             f"{100 * r['val_accuracy']:.2f}", f"{100 * r['float32_accuracy']:.2f}",
             f"{100 * r['int8_accuracy']:.2f}", f"{r['int8_bytes']:,}",
             f"{r['float32_bytes']:,}", int8_end_to_end_ms(r.get("folder"), a, untrained)]
            for a, r in sorted(best.items())]
    return ["## Architectures compared", "",
            "Best run (on validation, Keras) of each other architecture (runs of one model on "
            "the fixed split: no speaker-fold runs, ensembles or soups), same held-out test "
            "clips; int8 ms: "
            "median of 200 front-end + invoke runs on one thread on this build machine (as "
            "`kws-edge bench`) of the run's file; * where that file was not kept: the same "
            "architecture untrained, converted alike and timed by `python -m "
            f"benchmarks.architectures` ({when}; an int8 kernel's time does not depend on "
            "the weights, and that run times the shipped file beside its untrained twin):", "",
            markdown_table(["architecture", "run", "val %", "float32 %", "int8 %",
                            "int8 bytes", "float32 bytes", "int8 ms"], rows), ""]


def architecture_text(arch: str) -> str:
    """The architecture's one-line description from the model registry."""
    from train.models import ARCHITECTURES

    return ARCHITECTURES[arch].description if arch in ARCHITECTURES else "not in the registry"


def what_it_is_lines(m8: dict, m32: dict, settings: dict, why: str,
                     notes: tuple[str, ...] = ()) -> list[str]:
    """Task, architecture and input, why it was shipped (and ``notes``: its history), and the
    files."""
    fe = FrontendConfig.from_dict(m8["frontend"])
    return [
        "## What it is",
        "",
        f"- Task: 12-class keyword spotting on 1-s clips: {', '.join(m8['labels'])}.",
        f"- Architecture: `{settings['arch']}` ({architecture_text(settings['arch'])}), "
        f"{settings['metrics'].get('params', 'n/a')} parameters; input "
        f"{fe.describe()} from the shared NumPy front-end "
        f"({fe.sample_rate} Hz, {fe.window_ms:g} ms windows, {fe.hop_ms:g} ms "
        "hop)" + ("; normalised per coefficient inside the model." if
                  settings["data"].get("normalized") else "; raw MFCC straight into the first "
                  "convolution (no normalisation layer)."),
        *([f"- Why this one: {why}"] if why else []),
        *(f"- {note}" for note in notes),
        f"- Files: `kws_int8.tflite` ({m8['size_bytes']:,} bytes, full-integer int8, "
        f"sha256 `{m8['sha256'][:16]}…`) — the runtime's default model; `kws_float32.tflite` "
        f"({m32['size_bytes']:,} bytes) for comparison. Manifests beside them.",
        "",
    ]


def data_lines(r: dict, split: dict, exp: Experiment | None, mined: int = 0) -> list[str]:
    """The real and synthetic speech the run trained on, and rejection training."""
    lines = [
        "## Data",
        "",
        "- Real speech: `speech_commands_mini` (3,971 one-second clips of Google Speech "
        "Commands v0.02, ~190 speakers, CC BY 4.0; itself a subset of the data set's canonical "
        "test set).",
    ]
    if exp is not None and exp.extra:
        lines.append("- More real speech, training split only: `speech_commands_extra` "
                     "(10,120 FLAC clips of 1,762 other speakers: 8 of the keywords, `bed`/"
                     "`cat`/`happy` and a few other words as `_unknown_`, and the six "
                     "`_background_noise_` recordings used for noise augmentation)"
                     + (f"; {exp.extra_val_pct:g}% of its speakers validate instead of "
                        "training" if exp.extra_val_pct else "") + ".")
    if r.get("synth"):
        lines.append(f"- Synthetic speech (training split only): {synth_text(split, exp)}; "
                     "none of it is in validation or test.")
    if exp is not None and exp.windows.enabled:
        w = exp.windows
        lines.append(f"- Rejection training: {100 * w.running_speech:g}% of each batch is "
                     "1-s windows of running speech (2-4 training-split non-keyword clips "
                     f"joined with 0-120 ms gaps) and {100 * w.cut_keywords:g}% keywords cut "
                     "to 15-50% at a window edge, all labelled `_unknown_`.")
    if exp is not None and exp.hard_negatives.enabled:
        h = exp.hard_negatives
        lines.append(f"- Hard negatives (the fine-tune, see Training): the trained model scanned "
                     f"{h.minutes:g} min each of the training speakers' isolated non-keyword "
                     "words and of the same words joined into running speech"
                     f"{' (other words drawn evenly by word)' if h.even_words else ''}; the "
                     f"{mined:,} 1-s windows ({h.hop_ms:g} ms apart) where a keyword's "
                     f"posterior reached {h.min_score:g} joined the training split as "
                     "`_unknown_`.")
    return lines + [""]


def split_lines(split: dict) -> list[str]:
    """The speaker split: its rule and the speakers on each side."""
    return [
        "## Split (by speaker)",
        "",
        f"- Rule: the data set's speaker-hash rule ({split['rule']}), val "
        f"{split['config']['val_pct']:g}% / test {split['config']['test_pct']:g}% of speakers, "
        f"seed {split['config']['seed']}. On this folder the plain rule puts every speaker "
        "in one split (it is the canonical test set), hence the salt.",
        f"- Speakers: train {split['counts']['train']}, val {split['counts']['val']}, "
        f"test {split['counts']['test']} (no speaker in two splits). The ids and the "
        f"{len(split['test_files'])} held-out test files are in `split_speakers.json`.",
        "",
    ]


def accuracy_lines(r: dict, split: dict, labels: list[str]) -> list[str]:
    """Held-out accuracy of Keras, float32 and int8, the int8 gate, and per class."""
    n = r["n_test"]
    f32, i8 = r["float32_accuracy"], r["int8_accuracy"]
    classes = [[lb, f"{100 * r['per_class_float32'][lb]:.1f}",
                f"{100 * r['per_class_int8'][lb]:.1f}"] for lb in labels]
    return [
        "## Accuracy on held-out speakers",
        "",
        f"{n} test clips from the {split['counts']['test']} held-out speakers, scored through "
        "the edge runtime (front-end + TFLite interpreter). Standard error = "
        "sqrt(p(1-p)/n).",
        "",
        markdown_table(["model", "accuracy %", "s.e. (pt)", "bytes"], [
            ["Keras (float)", f"{100 * r['keras_accuracy']:.2f}",
             f"{se_points(r['keras_accuracy'], n):.1f}", "—"],
            ["float32 TFLite", f"{100 * f32:.2f}", f"{se_points(f32, n):.1f}",
             f"{r['float32_bytes']:,}"],
            ["int8 TFLite", f"{100 * i8:.2f}", f"{se_points(i8, n):.1f}",
             f"{r['int8_bytes']:,}"],
        ]),
        "",
        f"int8 drop against float32: {r['drop_points']:+.2f} points (gate: at most "
        f"{MAX_DROP:g}; {'passed' if r['gate_passed'] else 'FAILED'}).",
        "",
        "Per class (held-out test clips):",
        "",
        markdown_table(["class", "float32 %", "int8 %"], classes),
        "",
    ]


def whole_set_lines(evaluate: dict, split: dict) -> list[str]:
    """``kws-edge evaluate`` on the whole mini set, with why it overstates accuracy."""
    return [
        "## Whole mini set (`kws-edge evaluate`)",
        "",
        f"`kws-edge evaluate --data speech_commands_mini` scores the int8 model at "
        f"{100 * evaluate['accuracy']:.2f}% on all {evaluate['n']:,} clips — this INCLUDES the "
        f"{split['counts']['train']} training and {split['counts']['val']} validation "
        "speakers, so it overstates accuracy on new voices; the held-out figure above is "
        "the honest one. (For orientation only, the data README says the MLPerf Tiny "
        "reference DS-CNN, trained on ~85,000 clips of other speakers, gets 92.4% on these "
        "3,971 clips.)",
        "",
    ]


def speed_lines(latency: dict | None, streaming: dict | None) -> list[str]:
    """Latency and streaming figures of this build machine (none without results)."""
    if not (latency or streaming):
        return []
    lines = ["## Speed (this build machine)", ""]
    if latency:
        mach = latency["machine"]
        rows = []
        for q in ("float32", "int8"):
            t = latency.get(q)
            if t:
                rows.append([q, t["frontend_ms"]["median"], t["invoke_ms"]["median"],
                             t["end_to_end_ms"]["median"], t["end_to_end_ms"]["p99"],
                             t["cold_start_s"], t["peak_rss_mb"]])
        lines += [f"`python -m benchmarks.latency` on {mach['cpu']} ({mach['cores']} "
                  f"cores), 1 interpreter thread, medians of {latency['runs']} runs:", "",
                  markdown_table(["model", "front-end ms", "invoke ms", "end-to-end ms",
                                  "e2e p99 ms", "cold start s", "peak RSS MB"], rows), ""]
    if streaming:
        hop = streaming.get("hop_latency_ms") or {}
        lines += [f"Streaming (`python -m benchmarks.streaming`): real-time factor "
                  f"{streaming['rtf']:.5f} over {streaming['audio_seconds']:g} s in "
                  f"{streaming['chunk_ms']:g} ms chunks; per-hop latency median "
                  f"{hop.get('median')} ms, p99 {hop.get('p99')} ms.", ""]
    return lines


def training_lines(name: str, r: dict, exp: Experiment | None) -> list[str]:
    """The recipe (with its augmentation) and the command that reproduces the run."""
    epochs = exp.epochs if exp else r.get("epochs_run")
    base = exp.model_from if exp else None  # a conversion of another run's trained model
    idea = EXPERIMENTS[base].idea if base else r["idea"]
    reproduce = (f"run {base}` then `python -m benchmarks.experiments.ship score {name}"
                 if base else f"run {name}")
    start = EXPERIMENTS[exp.init_from] if exp and exp.init_from else None  # a fine-tune's
    if start is not None:
        idea, epochs = start.idea, start.epochs
        reproduce = f"run {exp.init_from} {base or name}" + (
            f"` then `python -m benchmarks.experiments.ship score {name}" if base else "")
    aug = exp.augment if exp else None
    augment = ("" if aug is None else
               f"; augmentation: time shift ±{aug.shift_ms:g} ms, gain ±{aug.gain_db:g} dB, "
               f"background noise at {aug.noise_snr_db[0]:g}-{aug.noise_snr_db[1]:g} dB SNR on "
               f"{100 * aug.noise_prob:g}% of clips, " + (
                   f"SpecAugment {aug.time_masks} time masks (≤{aug.time_mask_frames} frames) "
                   f"+ {aug.freq_masks} frequency masks (≤{aug.freq_mask_bins} coefficients)"
                   if aug.specaugment else "no SpecAugment"))
    trainer = start or exp
    optimizer = (f"SGD (Nesterov momentum {trainer.sgd_momentum:g})"
                 if trainer and trainer.sgd_momentum else "Adam")
    return [
        "## Training",
        "",
        f"- Recipe: {idea}{augment}; up to {epochs} epochs, batch "
        f"{trainer.batch_size if trainer else 100}, {optimizer} with cosine decay "
        f"from {trainer.lr if trainer else 1e-3:g}, best epoch on validation kept"
        + ("" if start is None else
           f"; then fine-tuned {exp.epochs} epochs from those weights (cosine decay from "
           f"{exp.lr:g}, the " + ("last" if exp.keep_last else "best") + " epoch kept"
           + (", the hard negatives added" if exp.hard_negatives.enabled else "") + ")")
        + " (validation accuracy "
        f"{100 * r['val_accuracy']:.2f}%" + (
            f" on {r['n_val_all']:,} clips: the main folder's {r['n_val_main']} and "
            f"{r['n_val_extra']} of the extra folder's held-out speakers"
            if r.get("n_val_extra") else "")
        + (f"; {100 * r['val_all_int8_accuracy']:.2f}% int8 through the runtime after the "
           "prior correction below" if r.get("unknown_bias") else "")
        + f"), seed {r['seed']}"
        + (f"; the weights averaged over steps (EMA, momentum {exp.ema:g})"
           if exp and exp.ema else "")
        + (f"; focal loss (gamma {exp.focal_gamma:g}) instead of cross-entropy"
           if exp and exp.focal_gamma else "")
        + (f"; decoupled weight decay {exp.weight_decay:g} of the kernels ("
           + ("" if exp.sgd_momentum else "AdamW: ") + "each step "
           "multiplies them by 1 - learning rate x decay; not biases or BatchNorm)"
           if exp and exp.weight_decay else "")
        + f". int8 calibration: {r.get('calibration', 500)} stratified training examples"
        + (f"; ReLUs clipped at the {r['clip_percentile']:g}th percentile of their "
           "calibration outputs (rescaled ReLU6, see the README's conversion section)"
           if r.get("clip_percentile") else "")
        + (f"; the `_unknown_` logit raised by {r['unknown_bias']:g} before conversion (prior "
           "correction chosen on the validation speakers)" if r.get("unknown_bias") else "")
        + ".",
        f"- Reproduce: `python -m benchmarks.experiments.ship {reproduce}`"
        + "; the experiments and what each idea bought are in "
        "`benchmarks/results/shipped_model.md`. With the package's own commands (on any "
        "Speech Commands copy): the README's `kws train` + `kws convert`, or one "
        "`kws pipeline`, under \"Data and training\".",
        "",
    ]


def limits_lines(r: dict, split: dict, exp: Experiment | None) -> list[str]:
    """What the model is not good at, from its own figures."""
    n, i8 = r["n_test"], r["int8_accuracy"]
    unknown = r["per_class_int8"].get("_unknown_")
    weakest = min((lb for lb in r["per_class_int8"] if lb not in ("_unknown_", "_silence_")),
                  key=lambda lb: r["per_class_int8"][lb])
    return [
        "## Limits",
        "",
        f"- Trained on {split['counts']['train']} real speakers of the mini set"
        + (" (a few thousand clips)" if not (exp and exp.extra) else
           " and 1,762 of `speech_commands_extra` (~13,000 real clips)" if not exp.extra_val_pct
           else f" and those of `speech_commands_extra` but the {exp.extra_val_pct:g}% that "
           "validate (~12,000 real clips)") + ": "
        "accuracy on new voices, accents, children, far-field or noisy rooms is lower "
        f"than on clean close-talk clips; the held-out figure has a ±{se_points(i8, n):.1f} "
        "point standard error.",
        "- English only; ten fixed keywords. "
        f"{100 * unknown:.0f}% of held-out `_unknown_` clips are recognised as such: use the "
        "streaming detector's threshold and smoothing on live audio. Weakest keyword: "
        f"`{weakest}` "
        f"({100 * r['per_class_int8'][weakest]:.0f}%).",
        "- One-second clips; for live audio use the streaming detector and tune its threshold "
        "(`kws-edge evaluate-stream`).",
        "- Not comparable with published Speech Commands figures (different, far larger "
        "training set and a different test set).",
        "",
    ]


def reproduction_line(r: dict, m8: dict) -> list[str]:
    """Whether the run this card is made from converted to the shipped int8 file byte for
    byte (the run's files are its reproduction when the shipped file came from an earlier
    one)."""
    folder = r.get("folder")
    path = None if folder is None else Path(folder) / "kws_int8.tflite"
    if path is None or not path.is_file():
        return []
    from edge_runtime.manifest import manifest_path_for, sha256_of

    made = json.loads(manifest_path_for(path).read_text()).get("created", "")[:10]
    digest = sha256_of(path.read_bytes())
    return [f"This card's run (`{r['name']}`, converted {made}) made "
            + ("the shipped int8 file byte for byte (same sha256)." if digest == m8["sha256"]
               else f"an int8 file other than the shipped one (sha256 `{digest[:16]}…`).")]


def card(name: str, artifacts: Path, evaluate: dict | None, why: str = "",
         notes: tuple[str, ...] = ()) -> str:
    """The card of experiment ``name`` shipped in ``artifacts``, section by section."""
    results = WORK / "results" / f"{name}.json"
    if not results.is_file():
        raise KwsError(f"{results}: no such file (run `ship run {name}` first)")
    r = json.loads(results.read_text())
    split = json.loads((artifacts / "split_speakers.json").read_text())
    m8 = json.loads((artifacts / "kws_int8.manifest.json").read_text())
    m32 = json.loads((artifacts / "kws_float32.manifest.json").read_text())
    # results rows copied from the committed table have no model_dir: the run's own folder
    model_settings = Path(r.get("model_dir") or WORK / "models" / name) / "model_settings.json"
    if not model_settings.is_file():
        raise KwsError(f"{model_settings}: the trained model of {name} is not here (its "
                       "settings describe the card's model)")
    settings = json.loads(model_settings.read_text())
    latency, streaming = load(RESULTS / "latency.json"), load(RESULTS / "streaming.json")
    exp = EXPERIMENTS.get(name)
    lines = ["# Model card: kws-edge shipped keyword spotter (`kws_int8.tflite`)", ""]
    lines += what_it_is_lines(m8, m32, settings, why, (*notes, *reproduction_line(r, m8)))
    lines += data_lines(r, split, exp, settings.get("metrics", {}).get("hard_negatives", 0))
    lines += split_lines(split)
    lines += accuracy_lines(r, split, m8["labels"])
    lines += anchor_lines() + comparison_lines(name)
    if evaluate is not None:
        lines += whole_set_lines(evaluate, split)
    lines += speed_lines(latency, streaming)
    lines += training_lines(name, r, exp)
    lines += limits_lines(r, split, exp)
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("name")
    parser.add_argument("--evaluate", type=Path, help="kws-edge evaluate --json output")
    parser.add_argument("--artifacts", type=Path, default=ROOT / "artifacts")
    parser.add_argument("--why", default="", help="one line: why this run was shipped")
    parser.add_argument("--note", action="append", default=[],
                        help="one more line of the file's history (repeatable)")
    args = parser.parse_args(argv)
    evaluate = load(args.evaluate) if args.evaluate else None
    try:
        text = card(args.name, args.artifacts, evaluate, args.why, tuple(args.note))
    except KwsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    (args.artifacts / "MODEL_CARD.md").write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
