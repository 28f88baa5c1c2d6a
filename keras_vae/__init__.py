"""keras_vae: Variational Autoencoders for Keras 3, taught and usable.

The package runs on Keras's TensorFlow backend; TensorFlow Probability
supplies the distributions. `import keras_vae` imports the models and the
layers, priors and likelihoods they are built from, so that
`keras.models.load_model` finds every keras_vae class of a saved model. The
other public modules are imported on first use, as attributes
(`keras_vae.mixture.ExPostSampler` works without a second import) or with
`from keras_vae import mixture`: the Gradio app, the explorer and the
multi-worker code cost nothing until they are used. The command line,
`keras_vae.cli`, imports TensorFlow only for the subcommand that runs, so
`keras-vae --help` answers at once.
"""

import importlib

from keras_vae import _backend
from keras_vae._version import __version__ as __version__

_MODULES = ("anomaly", "app", "augmentation", "callbacks", "cluster_config", "datasets",
            "distribute", "evaluation", "explorer", "export", "folder_lock", "layers",
            "likelihoods", "mixture", "models", "networks", "plotting", "portable",
            "precision", "pretrained", "priors", "projector", "saving", "schedules",
            "validation")
"""The public modules, each an attribute of the package once asked for."""

_NAMES = {"HierarchicalVAE": "keras_vae.models.hierarchical",
          "build_hierarchical_vae": "keras_vae.models.hierarchical",
          "Sampling": "keras_vae.layers",
          "VAE": "keras_vae.models.vae",
          "VectorQuantizer": "keras_vae.layers",
          "build_vae": "keras_vae.models.vae"}
"""The classes and functions the package itself offers, and the module holding each."""

__all__ = sorted(_MODULES + tuple(_NAMES))


def __getattr__(name):
    """Imports a public module, or the module of a public name, on first use (PEP 562)."""
    if name in _MODULES:
        return importlib.import_module(f"keras_vae.{name}")
    if name in _NAMES:
        value = getattr(importlib.import_module(_NAMES[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'keras_vae' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))


# The `keras-vae` command imports TensorFlow only for the subcommand that runs.
if not _backend.launched_as_command():
    _backend.import_models()
