"""A small convolutional network for the 8 tissue classes, trained by fx's Keras task runner."""

from __future__ import annotations

import keras

from openfl_cli.runners.keras import KerasTaskRunner

N_CLASSES = 8


class KerasHistologyCNN(KerasTaskRunner):
    """Four conv blocks and global average pooling, sized by the data loader's tiles (150 by default)."""

    def build_model(self) -> keras.Model:
        size = self.data_loader.get_feature_shape() if self.data_loader else (150, 150, 3)
        layers: list[keras.Layer] = [keras.Input(shape=size)]
        for filters in (16, 32, 64, 64):
            layers += [
                keras.layers.Conv2D(filters, 3, padding="same"),
                keras.layers.BatchNormalization(),
                keras.layers.ReLU(),
                keras.layers.MaxPooling2D(2),
            ]
        layers += [
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dropout(0.2),
            keras.layers.Dense(N_CLASSES, activation="softmax"),
        ]
        return keras.Sequential(layers)
