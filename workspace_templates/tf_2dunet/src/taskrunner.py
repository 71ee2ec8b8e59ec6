"""A small 2D U-Net for whole-tumour segmentation, in Keras 3 on TensorFlow (fx's Keras task runner)."""

from __future__ import annotations

from typing import Any

import keras
from keras import layers, ops

from openfl_cli.runners.keras import KerasTaskRunner


@keras.saving.register_keras_serializable(package="fx_2dunet")
def dice_coef(y_true: Any, y_pred: Any, smooth: float = 1.0) -> Any:
    """Soft Dice over each batch: 2|A n B| / (|A| + |B|)."""
    intersection = ops.sum(y_true * y_pred)
    return (2.0 * intersection + smooth) / (ops.sum(y_true) + ops.sum(y_pred) + smooth)


@keras.saving.register_keras_serializable(package="fx_2dunet")
def dice_loss(y_true: Any, y_pred: Any) -> Any:
    return 1.0 - dice_coef(y_true, y_pred)


def conv_block(x: Any, filters: int) -> Any:
    for _ in range(2):
        x = layers.Conv2D(filters, 3, padding="same", activation="relu")(x)
    return x


class TensorFlow2DUNet(KerasTaskRunner):
    """Encoder-decoder with skip connections; `base_filters` and `depth` size it (image sides must divide
    by 2**depth). Validation reports `dice_coef`."""

    loss = staticmethod(dice_loss)
    metrics = (dice_coef,)

    def __init__(self, data_loader: Any = None, base_filters: int = 16, depth: int = 3, **settings: Any):
        self.base_filters, self.depth = int(base_filters), int(depth)
        super().__init__(data_loader, **settings)

    def build_model(self) -> keras.Model:
        shape = self.data_loader.get_feature_shape() if self.data_loader else (128, 128, 1)
        inputs = keras.Input(shape=shape)
        x, skips = inputs, []
        for level in range(self.depth):
            x = conv_block(x, self.base_filters * 2**level)
            skips.append(x)
            x = layers.MaxPooling2D(2)(x)
        x = conv_block(x, self.base_filters * 2**self.depth)
        for level in reversed(range(self.depth)):
            x = layers.Conv2DTranspose(self.base_filters * 2**level, 2, strides=2, padding="same")(x)
            x = conv_block(layers.Concatenate()([x, skips[level]]), self.base_filters * 2**level)
        outputs = layers.Conv2D(1, 1, activation="sigmoid")(x)
        return keras.Model(inputs, outputs)
