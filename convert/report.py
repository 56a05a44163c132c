"""The comparison report: ``<name>_report.json``, ``<name>_report.md``, confusion PNGs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from convert.compare import Comparison


def markdown(comparison: Comparison) -> str:
    """Accuracy, drop, size and per-class accuracy of every model as markdown tables."""
    c = comparison
    names = list(c.reports)
    lines = [
        f"# Model comparison ({c.n} test clips{', ' + c.data if c.data else ''})",
        "",
        "| model | accuracy | drop vs float32 (points) | size (bytes) |",
        "|---|---:|---:|---:|",
    ]
    for name in names:
        size = f"{c.sizes[name]:,}" if name in c.sizes else "n/a"
        lines.append(f"| {name} | {100 * c.reports[name].accuracy:.2f}% | "
                     f"{c.drop_points(name):+.2f} | {size} |")
    lines += [
        "",
        f"Agreement float32 vs int8: {100 * c.agreement_float_int8:.2f}% of clips.",
        "",
        f"**{c.gate.message()}**",
        "",
        "## Per-class accuracy",
        "",
        "| class | clips | " + " | ".join(names) + " |",
        "|---|---:|" + "---:|" * len(names),
    ]
    totals = c.reports[names[0]].confusion.sum(axis=1)
    per_class = {name: c.reports[name].per_class() for name in names}
    for i, label in enumerate(c.labels):
        cells = []
        for name in names:
            acc = per_class[name][label]
            cells.append("n/a" if acc is None else f"{100 * acc:.1f}%")
        lines.append(f"| {label} | {int(totals[i])} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def plot_confusion(confusion: np.ndarray, labels: list[str], title: str, path: Path) -> None:
    """A confusion matrix (rows true, columns predicted, row-normalised colour) as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    totals = confusion.sum(axis=1, keepdims=True)
    share = np.divide(confusion, totals, out=np.zeros(confusion.shape), where=totals > 0)
    size = 1.5 + 0.5 * len(labels)
    fig, ax = plt.subplots(figsize=(size + 1, size))
    image = ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(labels)), labels, rotation=60, ha="right")
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    for i in range(len(labels)):
        for j in range(len(labels)):
            if confusion[i, j]:
                ax.text(j, i, str(confusion[i, j]), ha="center", va="center", fontsize=7,
                        color="white" if share[i, j] > 0.5 else "black")
    fig.colorbar(image, ax=ax, fraction=0.046)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def write_report(comparison: Comparison, out_dir: Path, name: str) -> dict[str, Path]:
    """Write the JSON, markdown and one confusion PNG per model; returns their paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {"json": out_dir / f"{name}_report.json", "markdown": out_dir / f"{name}_report.md"}
    paths["json"].write_text(json.dumps(comparison.to_dict(), indent=2) + "\n")
    paths["markdown"].write_text(markdown(comparison))
    for model, report in comparison.reports.items():
        png = out_dir / f"{name}_confusion_{model}.png"
        accuracy = f"{100 * report.accuracy:.2f}%"
        plot_confusion(report.confusion, comparison.labels, f"{model}: {accuracy}", png)
        paths[f"confusion_{model}"] = png
    return paths
