"""Checks of a loaded data set before training: labels without examples, skipped clips."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from edge_runtime.errors import KwsError

SKIPPED_LIST = "skipped_files.txt"


def check_training_data(dataset) -> list[str]:
    """Warnings to print before training; raise :class:`KwsError` when fewer than two labels
    have training examples (a one-class model learns nothing)."""
    counts = Counter(e.label for e in dataset.split("train"))
    empty = [label for label in dataset.labels if not counts[label]]
    if len(dataset.labels) - len(empty) < 2:
        have = [label for label in dataset.labels if counts[label]]
        raise KwsError(f"only {len(have)} of {len(dataset.labels)} labels have training "
                       f"examples ({', '.join(have) or 'none'}): a model needs two or more; "
                       "check --data and --task")
    warnings = []
    if empty:
        warnings.append(f"{len(empty)} of {len(dataset.labels)} labels have NO training "
                        f"examples and will never be predicted: {', '.join(empty)}")
    if dataset.skipped_files:
        warnings.append(skipped_message(dataset, f"the full list goes to {SKIPPED_LIST} in "
                                                 "the model folder"))
    return warnings


def skipped_message(dataset, where: str = "") -> str:
    """How many clips the data set skipped as unreadable, the first few, and ``where`` the
    whole list is."""
    files = dataset.skipped_files
    more = f" and {len(files) - 3} more" if len(files) > 3 else ""
    return (f"skipped {len(files)} unreadable clips ({', '.join(files[:3])}{more})"
            + (f"; {where}" if where else ""))


def write_skipped(dataset, folder: Path) -> None:
    """The unreadable clips, one path a line, in ``folder`` (nothing when there are none)."""
    if dataset.skipped_files:
        text = "\n".join(dataset.skipped_files) + "\n"
        (Path(folder) / SKIPPED_LIST).write_text(text, errors="surrogateescape")
