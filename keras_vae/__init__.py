"""keras_vae: Variational Autoencoders for Keras 3, taught and usable.

The package runs on Keras's TensorFlow backend; TensorFlow Probability
supplies the distributions. `import keras_vae` imports every public module
(`keras_vae.mixture.ExPostSampler` works without a second import); only the
command line, `keras_vae.cli`, is imported on demand.
"""

__version__ = "0.1.0"

from keras_vae import _backend

# Quiet only when this process is the `keras-vae` command (see the function).
with _backend.quiet_start_up_logs():
    _backend.check_backend()
    from keras_vae import anomaly
    from keras_vae import app
    from keras_vae import augmentation
    from keras_vae import callbacks
    from keras_vae import datasets
    from keras_vae import distribute
    from keras_vae import evaluation
    from keras_vae import explorer
    from keras_vae import export
    from keras_vae import layers
    from keras_vae import likelihoods
    from keras_vae import mixture
    from keras_vae import models
    from keras_vae import networks
    from keras_vae import plotting
    from keras_vae import precision
    from keras_vae import pretrained
    from keras_vae import priors
    from keras_vae import projector
    from keras_vae import saving
    from keras_vae import schedules
    from keras_vae import validation
    from keras_vae.layers import Sampling
    from keras_vae.models.hierarchical import HierarchicalVAE
    from keras_vae.models.hierarchical import build_hierarchical_vae
    from keras_vae.models.vae import VAE
    from keras_vae.models.vae import build_vae

__all__ = [
    "HierarchicalVAE",
    "Sampling",
    "VAE",
    "anomaly",
    "app",
    "augmentation",
    "build_hierarchical_vae",
    "build_vae",
    "callbacks",
    "datasets",
    "distribute",
    "evaluation",
    "explorer",
    "export",
    "layers",
    "likelihoods",
    "mixture",
    "models",
    "networks",
    "plotting",
    "precision",
    "pretrained",
    "priors",
    "projector",
    "saving",
    "schedules",
    "validation",
]
