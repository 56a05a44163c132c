"""The quantisation gate: refuse an int8 model that lost too much accuracy against float32,
that is useless anyway, or whose test split is too small to tell.

``kws convert`` and ``kws compare`` exit with :data:`GATE_EXIT_STATUS` (3) when it fails, so
CI can tell a refused model (3) from bad input (2) and success (0).

Default 0.5 points. MLPerf Tiny's KWS quality target is 90% top-1 for a reference DS-CNN
that scores about 92% (its int8 file gets 92.4% on speech_commands_mini): the whole chain may
lose ~2 points; quantisation gets a quarter of that. Both accuracies come from the same clips,
so their difference only moves with the clips on which float32 and int8 disagree (1 minus the
agreement rate in the report) and is far less noisy than either accuracy (standard error
0.4-0.5 points at 90% on 4,000-4,900 clips, 1.5 points on 400). On a test split of a few
hundred clips 0.5 points is one or two clips: raise ``--max-drop`` there, or gate with
``kws compare`` on a larger set.

Two more checks keep a useless model out of ``--out``: both accuracies must reach
``--min-accuracy`` (default 50%: the 12-class task's chance level is 8%, MLPerf's target
90%; a float and int8 model that are equally bad pass the drop check), and one clip of the
test split may move the accuracy by at most ``--max-drop`` points (``100 / n``), else the
gate cannot see the drop it is asked to bound (a 2-clip split would pass anything).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from edge_runtime.errors import KwsError

GATE_EXIT_STATUS = 3
DEFAULT_MAX_DROP = 0.5  # percentage points of accuracy, float32 -> int8
DEFAULT_MIN_ACCURACY = 50.0  # percent, for both float32 and int8


def check_max_drop(max_drop: float) -> float:
    """``max_drop`` as a float in [0, 100]; NaN, inf and negative values are bad input."""
    value = float(max_drop)
    if not 0.0 <= value <= 100.0:  # NaN fails too
        raise KwsError(f"--max-drop must be within 0-100 points, got {max_drop}")
    return value


def check_min_accuracy(min_accuracy: float) -> float:
    value = float(min_accuracy)
    if not 0.0 <= value <= 100.0:
        raise KwsError(f"--min-accuracy must be within 0-100 %, got {min_accuracy}")
    return value


def min_test_clips(max_drop: float) -> int:
    """The fewest test clips on which one clip moves the accuracy by <= ``max_drop`` points
    (a zero ``max_drop`` asks as many as the default does)."""
    return math.ceil(100.0 / (max_drop if max_drop > 0 else DEFAULT_MAX_DROP) - 1e-9)


def check_test_size(n: int, max_drop: float) -> None:
    """Refuse a test split too small to measure a ``max_drop``-point drop (bad input)."""
    needed = min_test_clips(max_drop)
    if n < needed:
        raise KwsError(
            f"the test split has {n} clips: one clip is {100 / max(n, 1):.3g} points, more "
            f"than the --max-drop of {max_drop:g} the gate is asked to bound; it needs at "
            f"least {needed} clips (or a larger --max-drop)")


@dataclass(frozen=True)
class GateResult:
    """Float32 and int8 accuracy (fractions), the limits (points, %) and the verdict."""

    float_accuracy: float
    int8_accuracy: float
    max_drop: float
    min_accuracy: float = DEFAULT_MIN_ACCURACY

    @property
    def drop_points(self) -> float:
        return 100.0 * (self.float_accuracy - self.int8_accuracy)

    @property
    def too_inaccurate(self) -> bool:
        return 100.0 * min(self.float_accuracy, self.int8_accuracy) < self.min_accuracy

    @property
    def passed(self) -> bool:
        return self.drop_points <= self.max_drop and not self.too_inaccurate

    def message(self) -> str:
        verdict = "passed" if self.passed else "FAILED"
        text = (f"gate {verdict}: float32 accuracy {100 * self.float_accuracy:.2f}%, "
                f"int8 accuracy {100 * self.int8_accuracy:.2f}%, drop "
                f"{self.drop_points:.2f} points (max {self.max_drop:g})")
        if self.too_inaccurate:
            text += f"; accuracy below the --min-accuracy floor of {self.min_accuracy:g}%"
        return text

    def to_dict(self) -> dict:
        return {**asdict(self), "drop_points": round(self.drop_points, 4), "passed": self.passed}


def check_gate(float_accuracy: float, int8_accuracy: float,
               max_drop: float = DEFAULT_MAX_DROP,
               min_accuracy: float = DEFAULT_MIN_ACCURACY) -> GateResult:
    return GateResult(float(float_accuracy), float(int8_accuracy), check_max_drop(max_drop),
                      check_min_accuracy(min_accuracy))
