"""The version of keras_vae, readable without importing TensorFlow (`keras-vae --version`)."""

__version__ = "0.1.0"
