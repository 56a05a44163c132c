"""The model zoo: each architecture declares its front-end; ``build_model`` makes a Keras model.

Models take raw ``(frames, n_features, 1)`` float32 features (MFCC or log-mel) from the shared
front-end; with ``stats`` they normalise them per coefficient inside the model (see
``common.model_input``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from edge_runtime.errors import KwsError
from edge_runtime.frontend import (
    FINE_HOP_FRONTEND,
    MFCC20_FRONTEND,
    WIDEBAND_FRONTEND,
    FrontendConfig,
)
from train.models import bc_resnet, ds_cnn, input_noise, seed_cnn
from train.models.common import FeatureStats


@dataclass(frozen=True)
class Architecture:
    name: str
    frontend: FrontendConfig
    build: Callable  # (n_labels, stats=None) -> keras.Model
    description: str


def _ds_cnn(name: str, spec: ds_cnn.DsCnnSpec, description: str,
            frontend: FrontendConfig = ds_cnn.FRONTEND) -> Architecture:
    """A DS-CNN of ``spec`` on ``frontend`` (the edge MFCC front-end unless said)."""
    return Architecture(name, frontend,
                        partial(ds_cnn.build, spec=spec, name=name, frontend=frontend),
                        description)


def _ds_cnn_dropout(name: str, base: str, spec: ds_cnn.DsCnnSpec) -> Architecture:
    """``base`` with ``spec``'s dropout rates (the same parameters)."""
    return _ds_cnn(name, spec, f"{base} with dropout {spec.first_dropout:g} and "
                   f"{spec.final_dropout:g}")


ARCHITECTURES: dict[str, Architecture] = {
    "seed_cnn": Architecture("seed_cnn", seed_cnn.FRONTEND, seed_cnn.build,
                             "the seed's CNN, 99x40 MFCC, ~2.1M parameters"),
    "ds_cnn_s": _ds_cnn("ds_cnn_s", ds_cnn.SMALL,
                        "DS-CNN small (MLPerf Tiny), 49x10 MFCC, ~25k parameters"),
    "ds_cnn_m": _ds_cnn("ds_cnn_m", ds_cnn.MEDIUM,
                        "DS-CNN medium (Hello Edge), 49x10 MFCC, 172 filters"),
    "ds_cnn_l": _ds_cnn("ds_cnn_l", ds_cnn.LARGE,
                        "DS-CNN large (Hello Edge), 49x10 MFCC, 276 filters, 5 blocks"),
    "ds_cnn_w": _ds_cnn("ds_cnn_w", ds_cnn.WIDE,
                        f"DS-CNN small with {ds_cnn.WIDE.filters} filters (~50 KB int8)"),
    "ds_cnn_w_cmn": _ds_cnn("ds_cnn_w_cmn", ds_cnn.WIDE_CMN,
                            "ds_cnn_w with each MFCC's mean over the clip subtracted before the "
                            "first convolution (cepstral mean normalisation)"),
    "ds_cnn_w_nd": _ds_cnn("ds_cnn_w_nd", ds_cnn.WIDE_NO_DROPOUT,
                           "ds_cnn_w without its dropout layers"),
    "ds_cnn_w_hd": _ds_cnn_dropout("ds_cnn_w_hd", "ds_cnn_w", ds_cnn.WIDE_HIGH_DROPOUT),
    "ds_cnn_w_8k": _ds_cnn("ds_cnn_w_8k", ds_cnn.WIDE,
                           f"ds_cnn_w on 49x10 MFCC of mel bands up to 8 kHz "
                           f"({ds_cnn.WIDE.filters} filters)", WIDEBAND_FRONTEND),
    "ds_cnn_w_20": _ds_cnn("ds_cnn_w_20", ds_cnn.WIDE,
                           f"ds_cnn_w on 49x20 MFCC ({ds_cnn.WIDE.filters} filters)",
                           MFCC20_FRONTEND),
    "ds_cnn_w80": _ds_cnn("ds_cnn_w80", ds_cnn.WIDE_80,
                          f"DS-CNN small with {ds_cnn.WIDE_80.filters} filters (~57 KB int8)"),
    "ds_cnn_w_deep": _ds_cnn("ds_cnn_w_deep", ds_cnn.WIDE_DEEP,
                             f"DS-CNN of {len(ds_cnn.WIDE_DEEP.block_strides)} blocks, the first "
                             f"striding in time ({ds_cnn.WIDE_DEEP.filters} filters, ~56 KB "
                             "int8)"),
    "ds_cnn_w96": _ds_cnn("ds_cnn_w96", ds_cnn.WIDE_96,
                          f"DS-CNN small with {ds_cnn.WIDE_96.filters} filters (~53 KB int8 with "
                          "per-tensor weights, convert --per-tensor)"),
    "ds_cnn_w96_hd": _ds_cnn_dropout("ds_cnn_w96_hd", "ds_cnn_w96",
                                     ds_cnn.WIDE_96_HIGH_DROPOUT),
    "ds_cnn_w96_ld": _ds_cnn_dropout("ds_cnn_w96_ld", "ds_cnn_w96", ds_cnn.WIDE_96_LOW_DROPOUT),
    "ds_cnn_w96_ld_dil": _ds_cnn("ds_cnn_w96_ld_dil", ds_cnn.WIDE_96_LOW_DROPOUT_DILATED,
                                 "ds_cnn_w96_ld with its depthwise convolutions dilated in time "
                                 "by 1, 2, 4, 8 (each output spans 70 frames, not 26)"),
    "ds_cnn_w96_ld_h10": _ds_cnn("ds_cnn_w96_ld_h10", ds_cnn.WIDE_96_LOW_DROPOUT,
                                 "ds_cnn_w96_ld on 97x10 MFCC (10 ms hop): twice the frames "
                                 "and multiply-adds", FINE_HOP_FRONTEND),
    "ds_cnn_w96_ld_res": _ds_cnn("ds_cnn_w96_ld_res", ds_cnn.WIDE_96_LOW_DROPOUT_RESIDUAL,
                                 "ds_cnn_w96_ld with identity shortcuts around its four blocks"),
    "ds_cnn_w_qn": Architecture(
        "ds_cnn_w_qn", ds_cnn.FRONTEND,
        partial(input_noise.with_input_noise,
                partial(ds_cnn.build, spec=ds_cnn.WIDE, name="ds_cnn_w"), name="ds_cnn_w_qn"),
        f"ds_cnn_w trained with input noise (std {input_noise.STD:g})"),
    "bc_resnet_1": Architecture("bc_resnet_1", bc_resnet.FRONTEND,
                                partial(bc_resnet.build, spec=bc_resnet.BC_RESNET_1,
                                        name="bc_resnet_1"),
                                "BC-ResNet-1 (Kim et al. 2021), 49x40 log-mel, ~12k parameters"),
    "bc_resnet_2": Architecture("bc_resnet_2", bc_resnet.FRONTEND,
                                partial(bc_resnet.build, spec=bc_resnet.BC_RESNET_2,
                                        name="bc_resnet_2"),
                                "BC-ResNet-2 (Kim et al. 2021), 49x40 log-mel, ~32k parameters"),
    "bc_resnet_2_hs": Architecture("bc_resnet_2_hs", bc_resnet.FRONTEND,
                                   partial(bc_resnet.build, spec=bc_resnet.BC_RESNET_2_HS,
                                           name="bc_resnet_2_hs"),
                                   "BC-ResNet-2 with hard-swish, 49x40 log-mel, ~32k parameters "
                                   "(under 60 KB with per-tensor int8 weights)"),
    "bc_resnet_h12_4k": Architecture("bc_resnet_h12_4k", bc_resnet.BC_RESNET_H12_4K.frontend,
                                     partial(bc_resnet.build, spec=bc_resnet.BC_RESNET_H12_4K,
                                             name="bc_resnet_h12_4k"),
                                     "BC-ResNet, 12 base channels, blocks 1-1-2-2, 49x40 "
                                     "log-mel up to 4 kHz, ~13k parameters (an ensemble member "
                                     "beside ds_cnn_w)"),
    "bc_resnet_h12_4k_bnhs": Architecture(
        "bc_resnet_h12_4k_bnhs", bc_resnet.BC_RESNET_H12_4K_BNHS.frontend,
        partial(bc_resnet.build, spec=bc_resnet.BC_RESNET_H12_4K_BNHS,
                name="bc_resnet_h12_4k_bnhs"),
        "bc_resnet_h12_4k with BatchNorm for SubSpectralNorm and hard-swish (~25 KB int8 with "
        "per-tensor weights: fits beside ds_cnn_w in 60 KB)"),
}


def architecture(arch: str) -> Architecture:
    try:
        return ARCHITECTURES[arch]
    except KeyError:
        raise KwsError(f"unknown architecture {arch!r} (choose from "
                       f"{', '.join(ARCHITECTURES)})") from None


def frontend_for(arch: str) -> FrontendConfig:
    return architecture(arch).frontend


def custom_objects() -> dict[str, type]:
    """Every custom Keras layer of the zoo, registered: call before loading a ``.keras`` file."""
    return dict(bc_resnet.custom_layers())


def load_keras(folder: Path):
    """The Keras model ``folder/model.keras`` (uncompiled); KwsError when it cannot load."""
    import keras

    try:
        return keras.saving.load_model(folder / "model.keras", compile=False,
                                       custom_objects=custom_objects())
    except (ValueError, OSError, TypeError) as exc:
        raise KwsError(f"{folder / 'model.keras'}: cannot load ({exc})") from None


def build_model(arch: str, n_labels: int, stats: FeatureStats | None = None):
    """A fresh Keras model of ``arch`` with ``n_labels`` softmax outputs."""
    if n_labels < 2:
        raise KwsError(f"need at least 2 labels, got {n_labels}")
    return architecture(arch).build(n_labels, stats=stats)


__all__ = ["ARCHITECTURES", "Architecture", "FeatureStats", "architecture", "build_model",
           "custom_objects", "frontend_for", "load_keras"]
