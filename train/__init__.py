"""kws-edge training toolchain: data, features, augmentation, synthetic speech, models."""
