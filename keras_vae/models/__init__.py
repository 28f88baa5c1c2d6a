"""Models: each a subclassed `keras.Model` trained with `fit`.

- `VAE` (and beta-VAE through its `beta`), with likelihoods and priors by name;
- `ConditionalVAE`, conditioned on a class label;
- `HierarchicalVAE`, two stochastic layers (Burda et al.'s two-layer model);
- `Autoencoder`, the deterministic counterpart;
- `VQVAE`, discrete codes from a learned codebook, with a PixelCNN prior to sample;
- `DCGAN`, the adversarial baseline.

All answer the same calls (see `keras_vae.models.base`): `encode(x, labels=None)`,
`latent_codes`, `decode(z, labels=None)`, `reconstruct(x, labels=None)` and
`sample(n, labels=None, seed=None)`; `num_classes` is None for the models
that take no labels.
"""

from keras_vae.models.autoencoder import Autoencoder
from keras_vae.models.autoencoder import build_autoencoder
from keras_vae.models.conditional_vae import ConditionalVAE
from keras_vae.models.conditional_vae import build_conditional_vae
from keras_vae.models.gan import DCGAN
from keras_vae.models.gan import build_dcgan
from keras_vae.models.hierarchical import HierarchicalVAE
from keras_vae.models.hierarchical import build_hierarchical_vae
from keras_vae.models.vae import VAE
from keras_vae.models.vae import build_vae
from keras_vae.models.vqvae import VQVAE
from keras_vae.models.vqvae import build_vqvae

__all__ = [
    "Autoencoder",
    "ConditionalVAE",
    "DCGAN",
    "HierarchicalVAE",
    "VAE",
    "VQVAE",
    "build_autoencoder",
    "build_conditional_vae",
    "build_dcgan",
    "build_hierarchical_vae",
    "build_vae",
    "build_vqvae",
]
