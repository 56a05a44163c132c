"""Activation ranges made for int8: each ReLU clipped at a calibration percentile, as ReLU6.

Full-int8 TFLite quantises an activation tensor with one scale, set by the largest value seen
in calibration. After a ReLU the largest values are rare outliers, 2-3x the 99.9th
percentile, so most values get few int8 steps. A ReLU is positively homogeneous,
``relu(a x) = a relu(x)`` for ``a > 0``: with ``c`` the percentile, the BatchNorm before the
ReLU is scaled by ``a = 6 / c``, the ReLU becomes a ReLU6 (fused into the convolution by the
converter) and the next layer's weights are scaled by ``1 / a``. The float model computes
the same function except above ``c``, where it now clips; the int8 range ends at ``c``.
Only chains (each layer reading the one before, as in DS-CNN) are rewritten, also after a head
of weightless layers that the chain reads (the clip-mean subtraction of ``ds_cnn_w_cmn``).
"""

from __future__ import annotations

import numpy as np

RELU6 = 6.0
DEFAULT_PERCENTILE = 99.9
# layers a scale passes through unchanged on the way to the next weighted layer
PASS_THROUGH = ("Dropout", "AveragePooling2D", "GlobalAveragePooling2D", "Flatten",
                "MaxPooling2D")
WEIGHTED = ("Conv2D", "DepthwiseConv2D", "Dense")


def _map_tensors(arg, fn):
    """A call argument of a graph config (a tensor, a list of them, a constant) with each
    tensor replaced by ``fn(name of the layer that made it)``."""
    if isinstance(arg, dict) and arg.get("class_name") == "__keras_tensor__":
        return fn(arg["config"]["keras_history"][0])
    if isinstance(arg, (list, tuple)):
        return [_map_tensors(a, fn) for a in arg]
    return arg


def _reads(arg) -> list[str]:
    """The names of the layers whose outputs a call argument reads."""
    names: list[str] = []
    _map_tensors(arg, names.append)
    return names


def split_chain(model) -> tuple[list[dict], list] | None:
    """``(head, chain)``: the model as a graph of layers (``head``, their graph-config entries;
    empty when the chain starts at the input) followed by a chain of layers each reading only
    the one before, the last being the output (``chain``, the layers). None when the output
    is not the end of such a chain (several inputs, a layer called twice). Read from the
    model's own graph config: a layer may also belong to other models (``split_normalization``
    makes such a one)."""
    import keras

    layers = [layer for layer in model.layers if not isinstance(layer, keras.layers.InputLayer)]
    if isinstance(model, keras.Sequential):
        return [], layers
    config = model.get_config()
    inputs, outputs = config["input_layers"], config["output_layers"]
    # one input or output is written [name, 0, 0] or [[name, 0, 0]], several [[name, 0, 0], ...]
    if len(inputs) == 1 and isinstance(inputs[0], list):
        inputs = inputs[0]
    entries = config["layers"]
    if not isinstance(inputs[0], str) or entries[0]["name"] != inputs[0]:
        return None
    if any(len(entry["inbound_nodes"]) > 1 for entry in entries):
        return None

    def link(j: int) -> bool:  # entry j reads entry j - 1 alone
        nodes = entries[j]["inbound_nodes"]
        return (len(nodes) == 1 and len(nodes[0]["args"]) == 1
                and _reads(nodes[0]["args"]) == [entries[j - 1]["name"]])

    if outputs not in ([entries[-1]["name"], 0, 0], [[entries[-1]["name"], 0, 0]]):
        return None
    start = len(entries)
    while start > 1 and link(start - 1):
        start -= 1
    if start == len(entries):
        return None
    return entries[1:start], [model.get_layer(entry["name"]) for entry in entries[start:]]


def chain_layers(model) -> list | None:
    """The model's layers (without the input) if each one reads only the one before and the
    last is the output, else None."""
    split = split_chain(model)
    return split[1] if split is not None and not split[0] else None


def replay_head(model, head: list[dict], x):
    """Copies of the ``head`` layers of ``model`` (see :func:`split_chain`) applied to ``x``,
    their weights copied; the head's output."""
    tensors = {model.get_config()["layers"][0]["name"]: x}
    for entry in head:
        layer = model.get_layer(entry["name"])
        new = layer.__class__.from_config(layer.get_config())
        x = tensors[entry["name"]] = new(*_map_tensors(entry["inbound_nodes"][0]["args"],
                                                       tensors.__getitem__))
        new.set_weights(layer.get_weights())
    return x


def _kind(layer) -> str:
    return type(layer).__name__


def relu_sites(layers: list) -> list[tuple[int, int, int]]:
    """``(batchnorm, relu, next weighted layer)`` indices for every plain ReLU after a
    BatchNorm that reaches a weighted layer through pass-through layers only."""
    sites = []
    for i, layer in enumerate(layers):
        plain = (_kind(layer) == "ReLU" and layer.max_value is None
                 and not layer.negative_slope and not layer.threshold)
        before = layers[i - 1] if i else None
        if not plain or _kind(before) != "BatchNormalization" or not (before.scale
                                                                      and before.center):
            continue
        j = i + 1
        while j < len(layers) and _kind(layers[j]) in PASS_THROUGH:
            j += 1
        if j < len(layers) and _kind(layers[j]) in WEIGHTED:
            sites.append((i - 1, i, j))
    return sites


def clip_points(layers: list, relus: set[int], features: np.ndarray,
                percentile: float) -> dict[int, float]:
    """The ``percentile`` of each listed ReLU's outputs on ``features`` (inference mode)."""
    points, x = {}, np.asarray(features, np.float32)
    for i, layer in enumerate(layers):
        x = np.asarray(layer(x, training=False))
        if i in relus:
            c = float(np.percentile(x, percentile))
            points[i] = c if c > 1e-6 else RELU6  # a ReLU that never fires: left as it is
    return points


def clip_to_relu6(model, features: np.ndarray, percentile: float = DEFAULT_PERCENTILE):
    """A copy of ``model`` with its ReLUs clipped at ``percentile`` of their outputs on
    ``features`` and rescaled to ReLU6 (module docstring); None when ``model`` is not a chain
    after a weightless head or has no ReLU after a BatchNorm there."""
    import keras

    if not 0 < percentile <= 100:
        raise ValueError(f"percentile must be within 0-100, got {percentile}")
    split = split_chain(model)
    # a head with weights (a residual network's blocks) is left as it is: only a weightless
    # one such as the clip-mean subtraction is copied in front of the clipped chain
    if split is None or any(model.get_layer(entry["name"]).weights for entry in split[0]):
        return None
    head, layers = split
    sites = relu_sites(layers)
    if not sites:
        return None
    relus = {relu for _, relu, _ in sites}
    features = np.asarray(features, np.float32).reshape(-1, *model.inputs[0].shape[1:])
    x = inputs = keras.Input(batch_shape=model.inputs[0].shape, dtype="float32")
    if head:  # e.g. the clip-mean subtraction: the chain reads its output
        x = replay_head(model, head, inputs)
        features = np.asarray(keras.Model(inputs, x)(features, training=False))
    points = clip_points(layers, relus, features, percentile)
    copies = []
    for i, layer in enumerate(layers):
        new = (keras.layers.Activation("relu6", name=f"{layer.name}6") if i in relus
               else layer.__class__.from_config(layer.get_config()))
        x = new(x)
        new.set_weights(layer.get_weights())
        copies.append(new)
    for bn, relu, following in sites:
        a = RELU6 / points[relu]
        gamma, beta, mean, variance = copies[bn].get_weights()
        copies[bn].set_weights([gamma * a, beta * a, mean, variance])
        kernel, *rest = copies[following].get_weights()
        copies[following].set_weights([kernel / a, *rest])
    return keras.Model(inputs, x, name=f"{model.name}_relu6")
