"""The quantisation gate: refuse an int8 model that lost too much accuracy against float32.

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
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

GATE_EXIT_STATUS = 3
DEFAULT_MAX_DROP = 0.5  # percentage points of accuracy, float32 -> int8


@dataclass(frozen=True)
class GateResult:
    """Float32 and int8 accuracy (fractions), the drop in points and the verdict."""

    float_accuracy: float
    int8_accuracy: float
    max_drop: float

    @property
    def drop_points(self) -> float:
        return 100.0 * (self.float_accuracy - self.int8_accuracy)

    @property
    def passed(self) -> bool:
        return self.drop_points <= self.max_drop

    def message(self) -> str:
        verdict = "passed" if self.passed else "FAILED"
        return (f"gate {verdict}: float32 accuracy {100 * self.float_accuracy:.2f}%, "
                f"int8 accuracy {100 * self.int8_accuracy:.2f}%, drop "
                f"{self.drop_points:.2f} points (max {self.max_drop:g})")

    def to_dict(self) -> dict:
        return {**asdict(self), "drop_points": round(self.drop_points, 4), "passed": self.passed}


def check_gate(float_accuracy: float, int8_accuracy: float,
               max_drop: float = DEFAULT_MAX_DROP) -> GateResult:
    return GateResult(float(float_accuracy), float(int8_accuracy), float(max_drop))
