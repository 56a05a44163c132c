"""Training clips whose label a head on Google's speech embedding doubts, cross-fitted by speaker.

Every clip that can train (the training and validation speakers of both folders, never the
test split) is embedded once (:class:`train.speech_embedding.SpeechEmbedding`); the speakers
fall into ``folds`` groups (salted hash) and each group's clips are scored by a head
(:func:`train.speech_embedding.fit_head`) trained on the other groups', class-balanced as the
recipes. A clip is flagged when that out-of-fold head gives its own label less than
``below``: mostly hard examples, some wrong labels (benchmarks/results/shipped_model.md,
"Label noise, probed"). The list feeds ``DataConfig.drop_train`` (``kws train --drop-train``),
which keeps those clips out of training only.

``python -m benchmarks.experiments.label_noise OUT.txt`` writes the flagged example ids for
``ship``'s data (the mini set, the extra folder) and prints what they are.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from edge_runtime.errors import KwsError
from train.data import DataConfig, load_dataset, load_waveforms, name_hash
from train.speech_embedding import SAMPLE_RATE, HeadConfig, SpeechEmbedding, fit_head

SALT = "kws-edge/label-noise/"  # which fold a speaker's clips are scored in


@dataclass(frozen=True)
class Flagged:
    """The flagged example ids with the label each had, out of ``scored`` clips."""

    ids: list[str]
    labels: list[str]
    probabilities: list[float]  # the out-of-fold head's probability of the clip's own label
    scored: int
    out_of_fold_accuracy: float


def flag_clips(config: DataConfig, folds: int = 4, below: float = 0.05, balance: float = 0.5,
               seed: int = 0, epochs: int = 40) -> Flagged:
    """The clips of ``config``'s training and validation splits (every unknown word taken)
    whose own label an out-of-fold head gives less than ``below``."""
    from train.train import class_weights  # TensorFlow: loaded only when flagging

    if folds < 2:
        raise KwsError(f"folds must be at least 2, got {folds}")
    dataset = load_dataset(replace(config, unknown_pct=100.0, train_unknown_pct=100.0,
                                   silence_pct=0.0, drop_train=None, cv_folds=0, cv_fold=0))
    examples = [e for s in ("train", "val") for e in dataset.split(s) if e.path is not None]
    index = {label: i for i, label in enumerate(dataset.labels)}
    y = np.array([index[e.label] for e in examples])
    group = np.array([name_hash(e.speaker or dataset.example_id(e), SALT) % folds
                      for e in examples])
    x = SpeechEmbedding()(load_waveforms(dataset, examples, SAMPLE_RATE, SAMPLE_RATE))
    own = np.zeros(len(examples))
    correct = 0
    for k in range(folds):
        train, score = group != k, group == k
        weights = class_weights(y[train], len(dataset.labels), balance)[y[train]]
        head = fit_head(x[train], y[train], len(dataset.labels), weights, seed,
                        HeadConfig(epochs=epochs))
        probs = head.predict(x[score][..., None], verbose=0, batch_size=256)
        own[score] = probs[np.arange(len(probs)), y[score]]
        correct += int(np.sum(probs.argmax(1) == y[score]))
    rows = np.nonzero(own < below)[0]
    return Flagged([dataset.example_id(examples[i]) for i in rows],
                   [examples[i].label for i in rows], [float(own[i]) for i in rows],
                   len(examples), correct / len(examples))


def main(argv: list[str] | None = None) -> int:
    from benchmarks.experiments.ship import DATA, EXTRA, TEST_PCT, VAL_PCT

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("out", type=Path, help="text file of flagged example ids")
    p.add_argument("--below", type=float, default=0.05)
    p.add_argument("--folds", type=int, default=4)
    args = p.parse_args(argv)
    start = time.perf_counter()
    try:
        flagged = flag_clips(DataConfig(DATA, val_pct=VAL_PCT, test_pct=TEST_PCT,
                                        extra_dirs=(EXTRA,)), args.folds, args.below)
    except KwsError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    header = (f"# {len(flagged.ids)} of {flagged.scored} clips that can train, given below "
              f"{args.below:g} for their own label by a head on Google's speech embedding, "
              f"cross-fitted over {args.folds} speaker folds (out-of-fold accuracy "
              f"{flagged.out_of_fold_accuracy:.4f}); benchmarks/experiments/label_noise.py\n")
    args.out.write_text(header + "".join(f"{i}\n" for i in sorted(flagged.ids)),
                        encoding="utf-8")
    print(header.strip())
    print("by label:", dict(Counter(flagged.labels).most_common()))
    print("main folder:", sum(not i.startswith("extra:") for i in flagged.ids),
          f"({time.perf_counter() - start:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
