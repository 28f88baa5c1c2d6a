"""keras_vae: Variational Autoencoders for Keras 3, taught and usable.

The package runs on Keras's TensorFlow backend; TensorFlow Probability
supplies the distributions. `import keras_vae` imports every public module
(`keras_vae.mixture.ExPostSampler` works without a second import); only the
command line, `keras_vae.cli`, is imported on demand.
"""

__version__ = "0.1.0"

from keras_vae._backend import check_backend

check_backend()

from keras_vae import anomaly  # noqa: E402
from keras_vae import augmentation  # noqa: E402
from keras_vae import callbacks  # noqa: E402
from keras_vae import datasets  # noqa: E402
from keras_vae import evaluation  # noqa: E402
from keras_vae import layers  # noqa: E402
from keras_vae import likelihoods  # noqa: E402
from keras_vae import mixture  # noqa: E402
from keras_vae import models  # noqa: E402
from keras_vae import networks  # noqa: E402
from keras_vae import plotting  # noqa: E402
from keras_vae import priors  # noqa: E402
from keras_vae import saving  # noqa: E402
from keras_vae import validation  # noqa: E402
from keras_vae.layers import Sampling  # noqa: E402
from keras_vae.models.vae import VAE  # noqa: E402
from keras_vae.models.vae import build_vae  # noqa: E402

__all__ = [
    "Sampling",
    "VAE",
    "anomaly",
    "augmentation",
    "build_vae",
    "callbacks",
    "datasets",
    "evaluation",
    "layers",
    "likelihoods",
    "mixture",
    "models",
    "networks",
    "plotting",
    "priors",
    "saving",
    "validation",
]
