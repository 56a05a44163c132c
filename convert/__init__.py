"""Keras -> float32 / full-int8 TFLite, evaluation through the edge runtime, the accuracy gate."""

import train  # noqa: F401  (TensorFlow's CPU kernel switch, set before it loads)
