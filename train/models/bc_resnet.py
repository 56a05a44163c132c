"""``bc_resnet_*``: Broadcasted Residual Learning (Kim et al., Interspeech 2021) on 40 log-mel.

Input ``(49, 40, 1)`` log-mel energies (30 ms window, 20 ms hop: the paper's 10 ms hop doubles
training and inference time for little gain at this size); time is axis 1, frequency axis 2.
A block (``c`` channels, frequency stride ``s``, time dilation ``d``)::

    [transition: Conv 1x1 -> BN -> ReLU]
    f2: DepthwiseConv (1 x 3 over frequency, stride s) -> SubSpectralNorm (5 sub-bands)
    f1: mean over frequency -> DepthwiseConv (3 x 1 over time, dilation d) -> BN -> swish
        -> Conv 1x1 -> SpatialDropout 0.1
    out = ReLU(f2 + f1 broadcast over frequency [+ input, when not a transition])

Network (``base`` channels ``b``): Conv 5x5 (frequency stride 2) 2b -> BN -> ReLU; stages of
2, 2, 4, 4 blocks with b, 1.5b, 2b, 2.5b channels (stages 2 and 3 stride frequency by 2,
dilation 1, 2, 4, 8); DepthwiseConv 5x5 over the last 5 frequency bins -> Conv 1x1 4b -> BN
-> ReLU -> global average -> Dense softmax. ``bc_resnet_1`` (b=8) has ~9k parameters,
``bc_resnet_2`` (b=16) ~30k. ``bc_resnet_h12_4k`` (b=12, half the blocks: 1, 1, 2, 2) reads
the edge set's 4 kHz log-mel, whose DCT are ``ds_cnn_w``'s MFCC, to sit beside it in one
ensemble file (``train.ensemble``): trained, 29.7 KB int8 with per-tensor weights, the pair
64.9 KB; ``bc_resnet_h12_4k_bnhs``, the same with BatchNorm for SubSpectralNorm and
hard-swish, 24.7 KB, the pair 59.9 KB (within 60 KB).
``bc_resnet_2_hs`` is ``bc_resnet_2`` with hard-swish (MobileNetV3) for swish: one int8 op
(HARD_SWISH) instead of LOGISTIC + MUL, which with per-tensor int8 weights brings the file
under 60 KB (58.8 KB, against 60.6 KB with swish).

Built for the int8 converter: SubSpectralNorm is one per-(sub-band, channel) scale and shift
at inference, a ``(1, 1, F, C)`` constant (never a full-size tensor); the broadcast residual is
an ADD with a ``(1, T, 1, C)`` operand; the batch is fixed to 1 at conversion.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from edge_runtime.frontend import EDGE_LOG_MEL_FRONTEND, LOG_MEL_FRONTEND, FrontendConfig
from train.models.common import BN_MOMENTUM, FeatureStats, model_input

FRONTEND = LOG_MEL_FRONTEND
SUBBANDS = 5
STAGE_BLOCKS = (2, 2, 4, 4)
STRIDED_STAGES = (1, 2)
DROPOUT = 0.1
WEIGHT_DECAY = 1e-4


@dataclass(frozen=True)
class BcResNetSpec:
    base: int  # b: stage widths are b, 1.5b, 2b, 2.5b; head 2b; classifier 4b
    frontend: FrontendConfig = field(default=FRONTEND)
    subspectral: bool = True  # SubSpectralNorm after the frequency conv (else BatchNorm)
    activation: str = "swish"  # of the temporal branch: "swish" or "hard_swish"
    stage_blocks: tuple[int, ...] = STAGE_BLOCKS

    @property
    def widths(self) -> tuple[int, ...]:
        b = self.base
        return (2 * b, b, int(1.5 * b), 2 * b, int(2.5 * b), 4 * b)


BC_RESNET_1 = BcResNetSpec(8)
BC_RESNET_2 = BcResNetSpec(16)
BC_RESNET_2_HS = BcResNetSpec(16, activation="hard_swish")
BC_RESNET_H12_4K = BcResNetSpec(12, frontend=EDGE_LOG_MEL_FRONTEND, stage_blocks=(1, 1, 2, 2))
# its SubSpectralNorm constants (one (F, C) scale and shift per block) and swish's two ops cost
# ~5 KB of int8 file: with BatchNorm (folded into the convolution) and hard-swish 24.7 KB
BC_RESNET_H12_4K_BNHS = replace(BC_RESNET_H12_4K, subspectral=False, activation="hard_swish")


def _sub_spectral_norm_class():
    """The Keras layer, defined lazily so that importing this module needs no Keras."""
    import keras
    from keras import ops

    @keras.saving.register_keras_serializable(package="kws_edge")
    class SubSpectralNorm(keras.layers.Layer):
        """BatchNorm with separate statistics per frequency sub-band (axis 2) and channel.

        Training normalises with the batch's moments per (sub-band, channel); inference is
        ``x * scale + shift`` with ``(F, C)`` constants made from the moving statistics.
        """

        def __init__(self, subbands: int = SUBBANDS, momentum: float = BN_MOMENTUM,
                     epsilon: float = 1e-3, **kwargs):
            super().__init__(**kwargs)
            self.subbands, self.momentum, self.epsilon = subbands, momentum, epsilon

        def build(self, input_shape):
            freq, channels = int(input_shape[2]), int(input_shape[3])
            if freq % self.subbands:
                raise ValueError(f"{freq} frequency bins do not split into {self.subbands}")
            shape = (self.subbands, channels)
            self.gamma = self.add_weight(shape=shape, initializer="ones", name="gamma")
            self.beta = self.add_weight(shape=shape, initializer="zeros", name="beta")
            self.moving_mean = self.add_weight(shape=shape, initializer="zeros",
                                               trainable=False, name="moving_mean")
            self.moving_variance = self.add_weight(shape=shape, initializer="ones",
                                                   trainable=False, name="moving_variance")

        def call(self, x, training=None):
            t, f, c = (int(d) for d in x.shape[1:])
            if not training:
                # x * scale[f, c] + shift[f, c], written as a per-channel scale (which the
                # converter folds into the convolution before) times a per-bin ratio near 1:
                # int8 quantises the MUL's constant with one scale, which the raw per-band
                # scales' wide range leaves too coarse (float/int8 agreement 80% -> 96% on
                # training clips for the same trained bc_resnet_1)
                scale = self.gamma * ops.rsqrt(self.moving_variance + self.epsilon)
                shift = self.beta - self.moving_mean * scale
                per_channel = ops.mean(scale, axis=0)
                per_band = f // self.subbands
                ratio = ops.repeat(scale / per_channel, per_band, axis=0)
                return (x * per_channel) * ratio + ops.repeat(shift, per_band, axis=0)
            bands = ops.reshape(x, (-1, t, self.subbands, f // self.subbands, c))
            mean, variance = ops.moments(bands, axes=(0, 1, 3))
            self.moving_mean.assign(self.momentum * self.moving_mean
                                    + (1 - self.momentum) * mean)
            self.moving_variance.assign(self.momentum * self.moving_variance
                                        + (1 - self.momentum) * variance)
            scale = self.gamma * ops.rsqrt(variance + self.epsilon)
            shift = self.beta - mean * scale
            out = bands * scale[:, None, :] + shift[:, None, :]
            return ops.reshape(out, (-1, t, f, c))

        def get_config(self):
            return {**super().get_config(), "subbands": self.subbands,
                    "momentum": self.momentum, "epsilon": self.epsilon}

    return SubSpectralNorm


_SSN = None


def custom_layers() -> dict[str, type]:
    """The Keras classes this file defines, registered (``model.keras`` files name them)."""
    global _SSN
    if _SSN is None:
        _SSN = _sub_spectral_norm_class()
    return {"kws_edge>SubSpectralNorm": _SSN}


def sub_spectral_norm(**kwargs):
    return custom_layers()["kws_edge>SubSpectralNorm"](**kwargs)


def _block(x, channels: int, stride: int, dilation: int, name: str, spec: BcResNetSpec):
    import keras
    from keras import layers

    decay = keras.regularizers.L2(WEIGHT_DECAY)
    transition = int(x.shape[-1]) != channels
    shortcut = x
    if transition:
        x = layers.Conv2D(channels, 1, use_bias=False, kernel_regularizer=decay,
                          name=f"{name}_expand")(x)
        x = layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"{name}_expand_bn")(x)
        x = layers.ReLU(name=f"{name}_expand_relu")(x)
    x = layers.DepthwiseConv2D((1, 3), strides=(1, stride), padding="same", use_bias=False,
                               depthwise_regularizer=decay, name=f"{name}_freq_dw")(x)
    if spec.subspectral:
        f2 = sub_spectral_norm(name=f"{name}_ssn")(x)
    else:
        f2 = layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"{name}_freq_bn")(x)
    f1 = layers.AveragePooling2D((1, int(f2.shape[2])), name=f"{name}_freq_mean")(f2)
    f1 = layers.DepthwiseConv2D((3, 1), dilation_rate=(dilation, 1), padding="same",
                                use_bias=False, depthwise_regularizer=decay,
                                name=f"{name}_time_dw")(f1)
    f1 = layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"{name}_time_bn")(f1)
    f1 = layers.Activation(spec.activation, name=f"{name}_{spec.activation}")(f1)
    f1 = layers.Conv2D(channels, 1, use_bias=False, kernel_regularizer=decay,
                       name=f"{name}_pw")(f1)
    f1 = layers.SpatialDropout2D(DROPOUT, name=f"{name}_drop")(f1)
    out = layers.Add(name=f"{name}_broadcast_add")([f2, f1])
    if not transition:
        out = layers.Add(name=f"{name}_residual")([out, shortcut])
    return layers.ReLU(name=f"{name}_relu")(out)


def build(n_labels: int, spec: BcResNetSpec = BC_RESNET_1, stats: FeatureStats | None = None,
          name: str = "bc_resnet"):
    import keras
    from keras import layers

    decay = keras.regularizers.L2(WEIGHT_DECAY)
    widths = spec.widths
    inputs, x = model_input(spec.frontend, stats)
    x = layers.Conv2D(widths[0], 5, strides=(1, 2), padding="same", use_bias=False,
                      kernel_regularizer=decay, name="head_conv")(x)
    x = layers.BatchNormalization(momentum=BN_MOMENTUM, name="head_bn")(x)
    x = layers.ReLU(name="head_relu")(x)
    for stage, blocks in enumerate(spec.stage_blocks):
        for i in range(blocks):
            stride = 2 if stage in STRIDED_STAGES and i == 0 else 1
            x = _block(x, widths[stage + 1], stride, 2**stage, name=f"s{stage}b{i}",
                       spec=spec)
    x = layers.ZeroPadding2D(((2, 2), (0, 0)), name="tail_pad")(x)
    x = layers.DepthwiseConv2D((5, int(x.shape[2])), use_bias=False,
                               depthwise_regularizer=decay, name="tail_dw")(x)
    x = layers.Conv2D(widths[-1], 1, use_bias=False, kernel_regularizer=decay,
                      name="tail_pw")(x)
    x = layers.BatchNormalization(momentum=BN_MOMENTUM, name="tail_bn")(x)
    x = layers.ReLU(name="tail_relu")(x)
    x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
    outputs = layers.Dense(n_labels, activation="softmax", name="probabilities")(x)
    return keras.Model(inputs, outputs, name=name)
