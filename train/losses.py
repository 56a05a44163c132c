"""Training losses beyond Keras' own (imported only when training)."""

from __future__ import annotations

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="kws")
class SmoothedSparseCrossentropy(keras.losses.Loss):
    """Cross-entropy on integer labels with label smoothing: the target is
    ``(1 - smoothing) * one_hot + smoothing / classes`` (Keras' sparse loss has no smoothing);
    with ``focal_gamma`` > 0 the focal loss (Lin et al. 2017): each clip's cross-entropy scaled
    by ``(1 - p_true)**focal_gamma``, so that clips already right weigh little."""

    def __init__(self, smoothing: float, name: str = "smoothed_sparse_crossentropy",
                 focal_gamma: float = 0.0, **kwargs):
        super().__init__(name=name, **kwargs)
        self.smoothing = float(smoothing)
        self.focal_gamma = float(focal_gamma)

    def call(self, y_true, y_pred):
        classes = ops.shape(y_pred)[-1]
        target = ops.one_hot(ops.cast(ops.reshape(y_true, (-1,)), "int32"), classes)
        if self.focal_gamma:  # alpha 1: no class weighting, the scale of cross-entropy
            return keras.losses.categorical_focal_crossentropy(
                target, y_pred, alpha=1.0, gamma=self.focal_gamma, label_smoothing=self.smoothing)
        return keras.losses.categorical_crossentropy(target, y_pred,
                                                     label_smoothing=self.smoothing)

    def get_config(self) -> dict:
        return {**super().get_config(), "smoothing": self.smoothing,
                "focal_gamma": self.focal_gamma}
