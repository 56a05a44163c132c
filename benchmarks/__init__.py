"""Benchmarks: each writes JSON, a markdown table and plots under benchmarks/results/."""

import train  # noqa: F401  (TensorFlow's CPU kernel switch, set before it loads)
