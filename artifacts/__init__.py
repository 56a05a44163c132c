"""The shipped model: ``kws_int8.tflite``, its manifest and card; installed as the package
data ``edge_runtime.shipped`` (see pyproject.toml)."""
