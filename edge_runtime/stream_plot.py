"""A DET-style PNG of a stream evaluation's threshold sweep (``evaluate-stream --plot``).

Kept apart from the detector and its scoring: only ``--plot`` imports this module, and
``matplotlib`` is imported when the plot is drawn, never on the device's listening path.
"""

from __future__ import annotations

from pathlib import Path

from edge_runtime.errors import KwsError
from edge_runtime.stream_score import StreamEvaluation


def plot_sweep(evaluation: StreamEvaluation, path: str | Path) -> None:
    """A DET-style plot (false-reject rate against false accepts per hour) as PNG."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise KwsError("--plot needs matplotlib (pip install matplotlib)") from None
    xs = [s.false_accepts_per_hour for s in evaluation.sweep]
    ys = [s.false_reject_rate for s in evaluation.sweep]
    fig, ax = plt.subplots(figsize=(6, 4.5))
    ax.plot(xs, ys, marker="o")
    for s, x, y in zip(evaluation.sweep, xs, ys, strict=True):
        ax.annotate(f"{s.threshold:g}", (x, y), textcoords="offset points", xytext=(4, 4),
                    fontsize=7)
    ax.set_xlabel("false accepts per hour")
    ax.set_ylabel("false-reject rate")
    ax.set_title(f"Streaming detection, {evaluation.seconds / 60:.1f} min")
    ax.grid(True, alpha=0.3)
    fig.tight_layout()
    try:
        fig.savefig(path, dpi=120)
    except OSError as exc:
        raise KwsError(f"{path}: cannot write the plot ({exc.strerror or exc})") from None
    finally:
        plt.close(fig)
