"""``ds_cnn_s/m/l``: depthwise-separable CNNs of Hello Edge (Zhang et al. 2017) on 49 x 10 MFCC.

    Conv2D F (10,4) 'same', stride s0 -> BatchNorm -> ReLU -> Dropout 0.2
    n x [DepthwiseConv2D 3x3 'same', stride s_i -> BatchNorm -> ReLU
         -> Conv2D F 1x1 -> BatchNorm -> ReLU]
    Dropout 0.4 -> AveragePooling2D over the whole map -> Flatten -> Dense softmax

All convolutions carry L2 weight decay 1e-4. ``ds_cnn_s`` is the MLPerf Tiny reference
(F=64, s0=(2,2), 4 blocks of stride 1: 24,908 parameters for 12 classes); ``ds_cnn_m``
(F=172) and ``ds_cnn_l`` (F=276, 5 blocks) follow the paper's ARM ML-KWS-for-MCU settings:
first stride (2,1), the first block stride (2,2): 141,224 and 422,844 parameters for 12
classes. BatchNorm momentum is 0.9 (see ``common.BN_MOMENTUM``). ``frontend`` changes only the
features' settings (``ds_cnn_w_8k``: mel bands up to 8 kHz; ``ds_cnn_w_20``: 20 MFCC, the
same parameters on twice the feature map). ``ds_cnn_w_cmn`` first subtracts each
coefficient's mean over the clip (cepstral mean normalisation: invariant to a fixed spectral
tilt of microphone or voice); ``ds_cnn_w_nd`` has no dropout layers, ``ds_cnn_w_hd`` (and
``ds_cnn_w96_hd``) 0.3 and 0.6 instead of 0.2 and 0.4, ``ds_cnn_w96_ld`` 0.1 and 0.2.
``ds_cnn_w96_ld_dil`` dilates the blocks' depthwise convolutions in time (1, 2, 4, 8): the
same parameters and multiply-adds, and each output spans 70 frames instead of 26 (the middle
ones see the whole clip). ``ds_cnn_w96_ld_res`` adds each block's input to its output before
the last ReLU (identity shortcuts, as in ResNet / MobileNetV2): no parameters.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from edge_runtime.frontend import EDGE_FRONTEND, FrontendConfig
from train.models.common import BN_MOMENTUM, FeatureStats, model_input, remove_clip_mean

FRONTEND = EDGE_FRONTEND
WEIGHT_DECAY = 1e-4


@dataclass(frozen=True)
class DsCnnSpec:
    filters: int
    first_stride: tuple[int, int]
    block_strides: tuple[tuple[int, int], ...]
    first_dropout: float = 0.2
    final_dropout: float = 0.4
    clip_mean_removal: bool = False  # each coefficient's mean over the clip subtracted first
    time_dilations: tuple[int, ...] = ()  # per block; () = 1 for every block
    residual: bool = False  # each block's input added before its last ReLU (same shapes only)


SMALL = DsCnnSpec(64, (2, 2), ((1, 1),) * 4)
# wider small nets for the 60 KB int8 budget (trained, 12 classes): 72 filters 49.8 KB;
# 80 filters ~57 KB; 84 would be ~61 KB
WIDE = DsCnnSpec(72, (2, 2), ((1, 1),) * 4)
# the same with cepstral mean normalisation per clip (``ds_cnn_w_cmn``)
WIDE_CMN = replace(WIDE, clip_mean_removal=True)
# the same without its two dropout layers (``ds_cnn_w_nd``): under the training recipe's heavy
# augmentation the net fits only ~88% of its training batches
WIDE_NO_DROPOUT = replace(WIDE, first_dropout=0.0, final_dropout=0.0)
# and with more of it (``ds_cnn_w_hd``): without dropout, _unknown_ recall on unheard speakers fell
WIDE_HIGH_DROPOUT = replace(WIDE, first_dropout=0.3, final_dropout=0.6)
WIDE_80 = DsCnnSpec(80, (2, 2), ((1, 1),) * 4)
# a fifth block and the first one striding in time: each output sees ~460 ms of the clip (most
# of a word) instead of ~280 ms, on 13 time steps instead of 25; 68 filters keep it under
# 60 KB int8 (~56 KB) with about half of ds_cnn_w's multiply-adds (``ds_cnn_w_deep``)
WIDE_DEEP = DsCnnSpec(68, (2, 2), ((2, 1),) + ((1, 1),) * 4)
# with per-tensor int8 weights (convert --per-tensor) 96 filters fit: ~53 KB
WIDE_96 = DsCnnSpec(96, (2, 2), ((1, 1),) * 4)
# and with ``ds_cnn_w_hd``'s dropout (``ds_cnn_w96_hd``)
WIDE_96_HIGH_DROPOUT = replace(WIDE_HIGH_DROPOUT, filters=WIDE_96.filters)
# and with half its dropout (``ds_cnn_w96_ld``): with weight decay, more dropout lost on the
# speaker folds
WIDE_96_LOW_DROPOUT = replace(WIDE_96, first_dropout=0.1, final_dropout=0.2)
# and with its depthwise convolutions dilated in time (``ds_cnn_w96_ld_dil``): each output
# of the last block spans 10 + 2 x 2 x (1+2+4+8) = 70 frames instead of 26 (the middle ones
# the whole clip), so the average pool no longer averages fragments that other words share
WIDE_96_LOW_DROPOUT_DILATED = replace(WIDE_96_LOW_DROPOUT, time_dilations=(1, 2, 4, 8))
# and with identity shortcuts around its blocks (``ds_cnn_w96_ld_res``): no parameters
WIDE_96_LOW_DROPOUT_RESIDUAL = replace(WIDE_96_LOW_DROPOUT, residual=True)
MEDIUM = DsCnnSpec(172, (2, 1), ((2, 2),) + ((1, 1),) * 3)
LARGE = DsCnnSpec(276, (2, 1), ((2, 2),) + ((1, 1),) * 4)


def build(n_labels: int, spec: DsCnnSpec = SMALL, stats: FeatureStats | None = None,
          name: str = "ds_cnn", frontend: FrontendConfig = FRONTEND):
    import keras
    from keras import layers

    decay = keras.regularizers.L2(WEIGHT_DECAY)
    inputs, x = model_input(frontend, stats)
    if spec.clip_mean_removal:
        x = remove_clip_mean(x)
    x = layers.Conv2D(spec.filters, (10, 4), strides=spec.first_stride, padding="same",
                      kernel_regularizer=decay, name="conv0")(x)
    x = layers.BatchNormalization(momentum=BN_MOMENTUM, name="bn0")(x)
    x = layers.ReLU(name="relu0")(x)
    if spec.first_dropout:
        x = layers.Dropout(spec.first_dropout, name="drop0")(x)
    dilations = spec.time_dilations or (1,) * len(spec.block_strides)
    blocks = zip(spec.block_strides, dilations, strict=True)  # one rate per block
    for i, (stride, dilation) in enumerate(blocks, start=1):
        shortcut = x
        x = layers.DepthwiseConv2D(3, strides=stride, padding="same",
                                   dilation_rate=(dilation, 1), depthwise_regularizer=decay,
                                   name=f"dw{i}")(x)
        x = layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"dw{i}_bn")(x)
        x = layers.ReLU(name=f"dw{i}_relu")(x)
        x = layers.Conv2D(spec.filters, 1, kernel_regularizer=decay, name=f"pw{i}")(x)
        x = layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"pw{i}_bn")(x)
        if spec.residual:
            x = layers.Add(name=f"add{i}")([shortcut, x])
        x = layers.ReLU(name=f"pw{i}_relu")(x)
    if spec.final_dropout:
        x = layers.Dropout(spec.final_dropout, name="drop_final")(x)
    x = layers.AveragePooling2D(pool_size=tuple(x.shape[1:3]), name="avg_pool")(x)
    x = layers.Flatten(name="flatten")(x)
    outputs = layers.Dense(n_labels, activation="softmax", name="probabilities")(x)
    return keras.Model(inputs, outputs, name=name)
