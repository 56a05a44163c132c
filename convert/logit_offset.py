"""Prior correction: add a constant to a class's logit before conversion.

Training weighs classes against their counts (``--balance``), which lowers the prior of the
large ``_unknown_`` class; adding ``b`` to its logit multiplies its probability by ``e**b``
before the softmax normalises (logit adjustment, Menon et al., ICLR 2021). ``b > 0`` trades
keyword recall for fewer false accepts of other speech; choose ``b`` on validation speakers.
:func:`balanced_offsets` gives the keywords the offsets that undo what is left of their
training counts' prior after the class balance (``-(1 - balance) * log(count / mean)``).
"""

from __future__ import annotations

import math

import numpy as np

from edge_runtime.errors import KwsError

MAX_OFFSET = 10.0


def check_offset(offset: float, what: str = "--unknown-bias") -> float:
    if not math.isfinite(offset) or abs(offset) > MAX_OFFSET:
        raise KwsError(f"{what} must be within -{MAX_OFFSET:g}-{MAX_OFFSET:g}, got {offset}")
    return offset


def balanced_offsets(counts: dict[str, int], power: float) -> dict[str, float]:
    """Offsets ``-power * log(count / geometric mean count)`` for the classes of ``counts``
    (they sum to 0): with ``power = 1 - balance`` they remove the training prior
    ``~ count**(1 - balance)`` that class-balanced training leaves among these classes, as for
    a test set with as many clips of each."""
    if not counts or min(counts.values()) <= 0:
        raise KwsError(f"balanced offsets need a positive count for every class, got {counts}")
    logs = {label: math.log(n) for label, n in counts.items()}
    mean = sum(logs.values()) / len(logs)
    return {label: round(-power * (v - mean), 4) for label, v in logs.items()}


def shift_logit(model, labels: list[str], label: str, offset: float, *,
                member: bool = False) -> None:
    """Add ``offset`` to the logit of class ``label`` (one of the model's ``labels``) in
    ``model``'s last layer (a softmax Dense, in place). A model trained with word classes
    (:mod:`train.word_classes`) gets it on every class merged into ``label``, which multiplies
    their summed probability by ``e**offset`` alike; a one-file ensemble
    (:mod:`train.ensemble`) gets it in each member (``member``: a member combined by its logits
    ends in a linear Dense)."""
    from train.ensemble import members
    from train.models.common import dense_activation
    from train.word_classes import merged_softmax

    if label not in labels:
        raise KwsError(f"cannot shift the {label} logit: the model has no {label} class")
    parts = members(model)
    if parts is not None:
        for part in parts:
            shift_logit(part, labels, label, offset, member=True)
        return
    merged = merged_softmax(model)
    layer, mapping = merged if merged else (model.layers[-1], np.arange(len(labels)))
    allowed = ("softmax", "linear") if member else ("softmax",)
    if dense_activation(layer) not in allowed or not layer.use_bias:
        raise KwsError(f"cannot shift a logit: the model's last layer {layer.name!r} is not "
                       "a softmax Dense (or an ensemble member's logit Dense) with a bias")
    kernel, bias = layer.get_weights()
    bias = np.array(bias, copy=True)
    bias[mapping == list(labels).index(label)] += offset
    layer.set_weights([kernel, bias])
