"""Refuse to load on a Keras backend other than TensorFlow.

TensorFlow Probability, which supplies every distribution in keras_vae, only
works with TensorFlow tensors, so the whole package needs Keras's TensorFlow
backend. Failing at import time with a clear message is kinder than failing
deep inside the first training step.
"""

import os

_REQUIRED_BACKEND = "tensorflow"


def check_backend():
    """Raises `ImportError` unless Keras runs on the TensorFlow backend."""
    requested = os.environ.get("KERAS_BACKEND")
    if requested is not None and requested != _REQUIRED_BACKEND:
        raise ImportError(
            "keras_vae needs Keras's TensorFlow backend because it uses "
            "TensorFlow Probability. Received: KERAS_BACKEND="
            f"{requested!r}. Unset it or set KERAS_BACKEND=tensorflow."
        )
    import keras

    active = keras.backend.backend()
    if active != _REQUIRED_BACKEND:
        raise ImportError(
            "keras_vae needs Keras's TensorFlow backend because it uses "
            f"TensorFlow Probability. Received: backend={active!r} (from "
            "~/.keras/keras.json). Set KERAS_BACKEND=tensorflow."
        )
