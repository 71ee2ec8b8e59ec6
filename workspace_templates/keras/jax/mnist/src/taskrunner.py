"""A small convolutional network for MNIST, trained by fx's Keras task runner."""

from __future__ import annotations

import keras

from openfl_cli.runners.keras import KerasTaskRunner


class KerasCNN(KerasTaskRunner):
    """Two convolutions and two dense layers; Adam, cross-entropy and accuracy come from the base runner."""

    def build_model(self) -> keras.Model:
        return keras.Sequential(
            [
                keras.Input(shape=(28, 28, 1)),
                keras.layers.Conv2D(16, 3, activation="relu"),
                keras.layers.MaxPooling2D(2),
                keras.layers.Conv2D(32, 3, activation="relu"),
                keras.layers.MaxPooling2D(2),
                keras.layers.Flatten(),
                keras.layers.Dense(64, activation="relu"),
                keras.layers.Dense(10, activation="softmax"),
            ]
        )
