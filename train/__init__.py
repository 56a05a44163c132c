"""kws-edge training toolchain: data, features, augmentation, synthetic speech, models."""

import os

# TensorFlow turns its oneDNN CPU kernels on by default only where the CPU has AVX-512 features;
# without them its own depthwise convolution refuses unequal strides ("only supports equal length
# strides"), which BC-ResNet's frequency-wise convolutions use (strides (1, 2)): on an AVX2-only
# CPU training and converting BC-ResNet failed. Set before TensorFlow loads (convert, benchmarks
# and the tests import this package first); TF_ENABLE_ONEDNN_OPTS=0 in the environment still wins.
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")
