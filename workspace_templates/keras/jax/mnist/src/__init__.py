"""Keras on JAX: the backend is chosen here, before Keras is first imported, unless KERAS_BACKEND is set."""

import os

os.environ.setdefault("KERAS_BACKEND", "jax")
