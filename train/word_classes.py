"""Non-keyword words as classes of their own during training, merged into ``_unknown_`` after.

One ``_unknown_`` class must score high for every other word (bed, cat, marvin, ...), running
speech and noise-like clips alike: a single linear logit over the pooled features for very
different sounds. With word classes the model learns one class per non-keyword word of the
training split (with at least :data:`MIN_CLIPS` clips) next to the labels; ``_unknown_`` keeps
what has no word class (running-speech windows, hard negatives, rarer words). After training a
fixed ``Dense`` without bias (:func:`merge_words`) sums the probabilities of each word class
into ``_unknown_``, so the saved model has the usual labels and outputs, and
``P(_unknown_)`` is the probability of "any other speech" (a log-sum-exp over its classes'
logits instead of one logit).
"""

from __future__ import annotations

from collections import Counter

import numpy as np

from edge_runtime.dataset import UNKNOWN

MIN_CLIPS = 10  # training clips a word needs for a class of its own
MERGE_LAYER = "merge_words"


def word_vocabulary(words: list[str | None], min_clips: int = MIN_CLIPS) -> list[str]:
    """The words (of ``_unknown_`` training clips; ``None`` for the others) with at least
    ``min_clips`` clips, sorted."""
    counts = Counter(w for w in words if w is not None)
    return sorted(w for w, n in counts.items() if n >= min_clips)


def class_names(labels: list[str], vocabulary: list[str]) -> list[str]:
    """The training classes: the labels, then ``_unknown_/<word>`` for each word."""
    return list(labels) + [f"{UNKNOWN}/{w}" for w in vocabulary]


def label_map(labels: list[str], vocabulary: list[str]) -> np.ndarray:
    """Training class index -> label index: the labels map to themselves, words to
    ``_unknown_``."""
    return np.array(list(range(len(labels))) + [labels.index(UNKNOWN)] * len(vocabulary),
                    dtype=np.int32)


def word_targets(y: np.ndarray, words: list[str | None], vocabulary: list[str],
                 n_labels: int) -> np.ndarray:
    """Label indices ``y`` with each clip whose word is in ``vocabulary`` moved to that word's
    class (``words[i]``: the word of an ``_unknown_`` clip, else None)."""
    index = {w: n_labels + k for k, w in enumerate(vocabulary)}
    out = np.array(y, dtype=np.int32, copy=True)
    for i, word in enumerate(words):
        if word in index:
            out[i] = index[word]
    return out


def merged_accuracy(mapping: np.ndarray, name: str = "accuracy"):
    """A Keras metric: accuracy after merging predicted classes into labels (``mapping``);
    targets may be labels or training classes."""
    import keras
    from keras import ops

    table = np.asarray(mapping, dtype=np.int32)
    merge = np.eye(int(table.max()) + 1, dtype=np.float32)[table]  # (classes, labels)

    class MergedAccuracy(keras.metrics.MeanMetricWrapper):
        def __init__(self):
            def accuracy(y_true, y_pred):
                truth = ops.take(ops.convert_to_tensor(table),
                                 ops.cast(ops.reshape(y_true, (-1,)), "int32"))
                guess = ops.argmax(ops.matmul(y_pred, ops.convert_to_tensor(merge)), axis=-1)
                return ops.cast(ops.equal(truth, ops.cast(guess, "int32")), "float32")

            super().__init__(accuracy, name=name)

    return MergedAccuracy()


def merge_words(model, mapping: np.ndarray):
    """``model`` (softmax over the training classes) followed by a fixed ``Dense`` without
    bias summing the classes' probabilities into their labels (``mapping``)."""
    import keras

    table = np.asarray(mapping)
    n_labels = int(table.max()) + 1
    merge = keras.layers.Dense(n_labels, use_bias=False, trainable=False, name=MERGE_LAYER)
    outputs = merge(model.outputs[0])
    merge.set_weights([np.eye(n_labels, dtype=np.float32)[table]])
    inputs = model.inputs[0] if len(model.inputs) == 1 else model.inputs
    return keras.Model(inputs, outputs, name=model.name)


def merged_softmax(model):
    """``(softmax layer, mapping)`` when ``model`` ends in a :func:`merge_words` layer after a
    softmax ``Dense`` (the mapping read from the merge's kernel), else None."""
    if len(model.layers) < 2 or model.layers[-1].name != MERGE_LAYER:
        return None
    (kernel,) = model.layers[-1].get_weights()
    if not np.all((kernel == 0) | (kernel == 1)) or not np.all(kernel.sum(axis=1) == 1):
        return None
    return model.layers[-2], np.argmax(kernel, axis=1)
