"""Models: each a subclassed `keras.Model` trained with `fit`."""

from keras_vae.models.vae import VAE
from keras_vae.models.vae import build_vae

__all__ = ["VAE", "build_vae"]
