"""``seed_cnn``: the seed project's CNN on 99 x 40 MFCC (2,102,435 parameters for 31 classes).

Recipe (the only one of 256 plausible variants -- kernel 3/5, same/valid padding, BatchNorm on
input/convolutions/dense layers, conv bias, pooling after the last block, Flatten vs global
pooling -- whose count is 2,102,435 for 31 classes):

    Input 99x40x1 -> BatchNorm
    4 x [Conv2D 3x3 'same' (32, 64, 128, 256) -> BatchNorm -> ReLU -> MaxPool 2x2 -> Dropout]
        (99x40 -> 49x20 -> 24x10 -> 12x5 -> 6x2)
    Flatten (6*2*256 = 3072) -> Dense 512 ReLU -> Dropout -> Dense 256 ReLU -> Dropout
    Dense n_labels softmax

Parameters: input BN 4 + convs 387,840 + conv BNs 1,920 + dense 1,573,376 + 131,328
+ 257 * n_labels.
"""

from __future__ import annotations

from edge_runtime.frontend import SEED_FRONTEND
from train.models.common import BN_MOMENTUM, FeatureStats, model_input

FRONTEND = SEED_FRONTEND
FILTERS = (32, 64, 128, 256)
# The seed's dropout rates (0.2 after each block, 0.5 after each dense layer) kept this net at
# chance: on 512 training clips, 12 epochs of Adam at 1e-3 reached 16% training accuracy
# with them, 40% with the dense ones at 0, 87% with none (2026-12-01). Augmentation and
# BatchNorm regularise it instead; the layers stay (rate 0), so the structure is the seed's.
CONV_DROPOUT = 0.0
DENSE_DROPOUT = 0.0


def build(n_labels: int, stats: FeatureStats | None = None):
    import keras
    from keras import layers

    inputs, x = model_input(FRONTEND, stats)
    x = layers.BatchNormalization(momentum=BN_MOMENTUM, name="input_bn")(x)
    for i, filters in enumerate(FILTERS):
        x = layers.Conv2D(filters, 3, padding="same", name=f"conv{i}")(x)
        x = layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"bn{i}")(x)
        x = layers.ReLU(name=f"relu{i}")(x)
        x = layers.MaxPooling2D(2, name=f"pool{i}")(x)
        x = layers.Dropout(CONV_DROPOUT, name=f"drop{i}")(x)
    x = layers.Flatten(name="flatten")(x)
    for units in (512, 256):
        x = layers.Dense(units, activation="relu", name=f"dense{units}")(x)
        x = layers.Dropout(DENSE_DROPOUT, name=f"drop_dense{units}")(x)
    outputs = layers.Dense(n_labels, activation="softmax", name="probabilities")(x)
    return keras.Model(inputs, outputs, name="seed_cnn")
