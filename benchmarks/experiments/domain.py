"""The main and extra folders' recordings side by side, and a model's validation accuracy on
each under input gains (``python -m benchmarks.experiments.domain``).

``speech_commands_mini`` (whose speakers are tested) is Speech Commands v0.02; the extra folder
is mostly v0.01. Per keyword: the median and 10th/90th percentiles of each clip's RMS and peak
level (dBFS) and spectral centroid (Hz). Then the model's accuracy on the validation split of
``ship``'s recipe, main and extra parts apart, with every clip scaled by each gain and clipped to
full scale, as a microphone set louder or quieter would give it.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from benchmarks.results_io import markdown_table

STATS = ("rms_dbfs", "peak_dbfs", "centroid_hz")
KEYWORDS = ("yes", "no", "up", "down", "left", "right", "stop", "go")  # in both folders
GAINS_DB = (-12.0, -6.0, 0.0, 6.0)


def clip_levels(samples: np.ndarray, sample_rate: int) -> tuple[float, float, float]:
    """RMS and peak level in dBFS and the spectral centroid in Hz of one clip."""
    from train.levels import row_rms

    x = np.asarray(samples, dtype=np.float64)
    power = np.abs(np.fft.rfft(x)) ** 2
    freqs = np.fft.rfftfreq(x.size, 1.0 / sample_rate)
    return (float(20 * np.log10(row_rms(x[None])[0, 0] + 1e-9)),
            float(20 * np.log10(np.abs(x).max() + 1e-9)),
            float((power * freqs).sum() / max(power.sum(), 1e-20)))


def folder_levels(folder: Path, words: tuple[str, ...], per_word: int, seed: int = 0) -> dict:
    """Per word: clips measured (up to ``per_word``, drawn at random) and each statistic's
    median, 10th and 90th percentile."""
    from train.data import read_clip

    rng = np.random.default_rng(seed)
    out = {}
    for word in words:
        files = sorted(p for p in (folder / word).glob("*")
                       if p.suffix.lower() in (".wav", ".flac"))
        if len(files) > per_word:
            files = [files[i] for i in sorted(rng.choice(len(files), per_word, replace=False))]
        if not files:
            continue
        clips = [read_clip(p) for p in files]
        values = np.array([clip_levels(a.samples, a.sample_rate) for a in clips])
        out[word] = {"clips": len(files), **{
            name: {q: round(float(np.percentile(values[:, i], p)), 2)
                   for q, p in (("median", 50), ("p10", 10), ("p90", 90))}
            for i, name in enumerate(STATS)}}
    return out


def accuracy_under_gains(model_path: Path, recipe: str, gains: tuple[float, ...]) -> dict:
    """``{part: {"clips": n, "accuracy": {gain: %}}}`` on the validation split of ``ship``'s
    ``recipe``, its main and extra folders' clips apart."""
    from benchmarks.experiments import ship
    from edge_runtime.model import KwsModel
    from train.data import load_dataset, load_waveforms

    dataset = load_dataset(ship.train_config(recipe, ship.EXPERIMENTS[recipe], ship.DATA).data)
    model = KwsModel(model_path)
    parts: dict[str, list] = {"main": [], "extra": []}
    for e in dataset.val:
        in_extra = e.path is not None and e.path.is_relative_to(ship.EXTRA)
        parts["extra" if in_extra else "main"].append(e)
    out = {}
    for part, examples in parts.items():
        waves = load_waveforms(dataset, examples, model.sample_rate, model.clip_samples)
        truth = np.array([model.labels.index(e.label) for e in examples])
        accuracy = {}
        for gain in gains:
            scaled = np.clip(waves * 10.0 ** (gain / 20.0), -1.0, 1.0)
            guess = np.array([np.argmax(model.predict_samples(w)) for w in scaled])
            accuracy[f"{gain:+g}"] = round(100.0 * float(np.mean(guess == truth)), 2)
        out[part] = {"clips": len(examples), "accuracy": accuracy}
    return out


def tables(levels: dict, gains: dict) -> str:
    def cell(s: dict) -> str:
        return f"{s['median']:g} ({s['p10']:g} to {s['p90']:g})"

    rows = [[word, folder, v["clips"], *(cell(v[n]) for n in STATS)]
            for word in KEYWORDS for folder, by_word in levels.items()
            if (v := by_word.get(word))]
    first = markdown_table(["word", "folder", "clips", "RMS dBFS", "peak dBFS", "centroid Hz"],
                           rows)
    steps = list(next(iter(gains.values()))["accuracy"])
    second = markdown_table(["validation part", "clips", *(f"{g} dB" for g in steps)],
                            [[part, v["clips"], *v["accuracy"].values()]
                             for part, v in gains.items()])
    return f"{first}\n\n{second}"


def main(argv: list[str] | None = None) -> int:
    from benchmarks.experiments import ship

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", type=Path, default=ship.ROOT / "artifacts" / "kws_int8.tflite")
    parser.add_argument("--recipe", default="speech_ema_150_xv",
                        help="the ship recipe whose validation split is scored")
    parser.add_argument("--per-word", type=int, default=300, help="clips measured per word")
    parser.add_argument("--gains", type=float, nargs="+", default=list(GAINS_DB))
    parser.add_argument("--json", action="store_true", help="print the JSON object")
    args = parser.parse_args(argv)
    levels = {name: folder_levels(folder, KEYWORDS, args.per_word)
              for name, folder in (("main", ship.DATA), ("extra", ship.EXTRA))}
    gains = accuracy_under_gains(args.model, args.recipe, tuple(args.gains))
    result = {"levels": levels, "accuracy_under_gains": gains, "recipe": args.recipe}
    print(json.dumps(result, indent=2) if args.json else tables(levels, gains))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
