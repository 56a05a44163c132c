"""Keras -> float32 / full-int8 TFLite, evaluation through the edge runtime, the accuracy gate."""
