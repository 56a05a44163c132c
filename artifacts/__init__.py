"""The shipped model (package data): ``kws_int8.tflite`` and its manifest and card."""
