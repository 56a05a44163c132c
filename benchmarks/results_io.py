"""Writing benchmark results: JSON + markdown under ``benchmarks/results/``."""

from __future__ import annotations

import json
import os
import platform
import subprocess
from datetime import datetime, timezone
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
ROOT = RESULTS.parents[1]


def relative_paths(value):
    """``value`` with every absolute path made relative to the repository (``../x`` beside
    it, else the file name): results files are committed, the machine's paths are not."""
    if isinstance(value, dict):
        return {k: relative_paths(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [relative_paths(v) for v in value]
    if isinstance(value, str) and value.startswith("/") and "\n" not in value:
        path = Path(value)
        for base, prefix in ((ROOT, ""), (ROOT.parent, "../")):
            if path.is_relative_to(base):
                return prefix + path.relative_to(base).as_posix()
        return path.name
    return value


def machine() -> dict:
    """What the figures were measured on."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "arch": platform.machine(),
        "python": platform.python_version(),
        "os": platform.platform(terse=True),
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


def git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                             text=True, cwd=Path(__file__).parent, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def markdown_table(header: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def write_results(name: str, data: dict, markdown: str, out_dir: Path = RESULTS) -> dict:
    """Save ``<name>.json`` and ``<name>.md``; returns the data with machine info added."""
    out_dir.mkdir(parents=True, exist_ok=True)
    data = relative_paths({**data, "machine": machine(), "commit": git_commit()})
    (out_dir / f"{name}.json").write_text(json.dumps(data, indent=2) + "\n")
    m = data["machine"]
    footer = (f"\n\nMeasured {m['date']} on {m['cpu']} ({m['cores']} cores, {m['arch']}), "
              f"Python {m['python']}, commit {data['commit']}.\n")
    (out_dir / f"{name}.md").write_text(markdown.rstrip() + footer)
    return data


def publish(name: str, data: dict, markdown: str, table: str, as_json: bool,
            out_dir: Path = RESULTS) -> int:
    """Save the results (:func:`write_results`) and print them: the JSON with ``as_json``,
    else the table. Returns the exit status 0."""
    data = write_results(name, data, markdown, out_dir)
    print(json.dumps(data, indent=2) if as_json else table)
    return 0
