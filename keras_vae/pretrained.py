"""Trained models shipped with the package: `load(name)` in one call, checksum verified.

The models are package data in `keras_vae/resources/pretrained/` (inside the
wheel, found with `importlib.resources` from any working folder), beside
`registry.json`, which records for each name its file, SHA-256, the command
and commit that trained it, its test negative log-likelihood and its
reconstruction MSE on the first 100 test images, and `README.md`, the same
table for people (written from the registry by `scripts/add_pretrained.py`).

```python
import keras_vae
keras_vae.pretrained.names()                  # the shipped models
model = keras_vae.pretrained.load(name)       # a keras_vae model, its file checked first
keras_vae.pretrained.info(name)["nll"]        # what it was measured at
keras_vae.pretrained.path(name)               # its checked .keras file
```

This module only reads the registry. A maintainer registers a new model with
the script `scripts/add_pretrained.py` of the repository (not installed),
which writes a portable copy, records its checksum, measures its
reconstruction MSE (`reconstruction_mse`) and rewrites the README.
Every function takes `registry=`, the path of another `registry.json`
(the tests use a temporary one).
"""

import hashlib
import importlib.resources
import json
import pathlib

from keras_vae import datasets
from keras_vae import evaluation
from keras_vae import saving

REGISTRY_PATH = (importlib.resources.files("keras_vae") / "resources" / "pretrained"
                 / "registry.json")
"""The shipped registry: package data, found from any working folder after `pip install`."""

MSE_IMAGES = 100
"""`reconstruction_mse` is measured on this many first test images."""

def read_registry(registry=None):
    """Returns `(path, {name: entry})` of a registry; a missing custom one is empty.

    Args:
        registry: Path of a `registry.json`; None for the shipped one.

    Raises:
        FileNotFoundError: the shipped registry is missing.
        ValueError: the registry is damaged: not JSON, or without a `models`
            object whose entries each name a `file` and its `sha256`.
    """
    path = pathlib.Path(str(REGISTRY_PATH if registry is None else registry))
    if not path.is_file():
        if registry is None:
            raise FileNotFoundError(
                f"The pretrained registry {path} is missing; reinstall keras_vae.")
        return path, {}
    fix = "reinstall keras_vae" if registry is None else "repair or remove it"
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValueError(f"The pretrained registry {path} is damaged ({fix}). Received: "
                         f"not JSON, {error}") from None
    models = data.get("models") if isinstance(data, dict) else None
    if not isinstance(models, dict):
        raise ValueError(f"The pretrained registry {path} is damaged ({fix}). Received: no "
                         "\"models\" object")
    for name, entry in models.items():
        if not (isinstance(entry, dict) and isinstance(entry.get("file"), str)
                and isinstance(entry.get("sha256"), str)):
            raise ValueError(
                f"The pretrained registry {path} is damaged ({fix}). Received: the entry "
                f"{name!r} without a \"file\" and its \"sha256\" (strings): {entry!r:.200}")
    return path, models


def names(registry=None):
    """Returns the names of the registered models, sorted.

    Args:
        registry: Path of a `registry.json`; None for the shipped one.
    """
    return sorted(read_registry(registry)[1])


def _entry(name, registry):
    if not isinstance(name, str):
        raise TypeError(f"name must be a string. Received: name={name!r}")
    path, models = read_registry(registry)
    if name not in models:
        known = ", ".join(sorted(models)) or "none yet"
        raise ValueError(f"Unknown pretrained model. Received: name={name!r}; known names: "
                         f"{known}")
    return path, models[name]


def info(name, registry=None):
    """Returns the registry entry of a model: a dict.

    Its keys: `file`, `sha256`, `model` (the class), `dataset`, `command`,
    `commit`, `description`, `nll` (the importance-weighted bound's negative
    log-likelihood, nats per test image), `nll_num_samples` (its K),
    `nll_images` (test images it averages), `nll_precision` (the dtype
    policy it was computed in: `keras-vae evaluate --precision` that policy
    reproduces it) and `reconstruction_mse` (per pixel, on the first
    `mse_images` test images of `dataset` as `keras_vae.datasets.load`
    gives them).

    Args:
        name: A name from `names()`.
        registry: Path of a `registry.json`; None for the shipped one.
    """
    return dict(_entry(name, registry)[1])


def sha256(path):
    """Returns the hex SHA-256 of the file at `path`."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def path(name, registry=None):
    """Returns the `.keras` file of a shipped model, after checking its SHA-256.

    For tools that take a file (the keras-vae commands that take a model
    also take `pretrained:NAME` itself).

    Args:
        name: A name from `names()`.
        registry: Path of a `registry.json`; None for the shipped one.

    Raises:
        TypeError: `name` is not a string.
        ValueError: an unknown name (the message lists the known ones), or a
            file whose checksum differs from the registered one.
        FileNotFoundError: the registered file is missing.
    """
    registry_path, entry = _entry(name, registry)
    file = registry_path.parent / entry["file"]
    if not file.is_file():
        raise FileNotFoundError(
            f"The pretrained model {name!r} is registered but its file {file} is missing.")
    digest = sha256(file)
    if digest != entry["sha256"]:
        raise ValueError(
            f"{file} is not the registered model: its sha256 is {digest}, the registry "
            f"records {entry['sha256']}; the file is damaged or was replaced. "
            f"Received: name={name!r}")
    return file


def load(name, registry=None):
    """Loads a shipped model after checking its file against the registered SHA-256.

    Args:
        name: A name from `names()`.
        registry: Path of a `registry.json`; None for the shipped one.

    Returns:
        The model (a keras_vae model, e.g. a `VAE` or `HierarchicalVAE`).

    Raises:
        TypeError: `name` is not a string.
        ValueError: an unknown name (the message lists the known ones), or a
            file whose checksum differs from the registered one.
        FileNotFoundError: the registered file is missing.
    """
    return saving.load_model(path(name, registry))


def reconstruction_mse(model, dataset="mnist", count=MSE_IMAGES):
    """Returns the per-pixel reconstruction MSE on the first `count` test images.

    The images are those `keras_vae.datasets.load(dataset)` gives (grey
    levels in [0, 1], not binarized), so the number needs no seed;
    `scripts/add_pretrained.py` records it and the tests check every shipped model reproduces it.

    Args:
        model: A model with `reconstruct`.
        dataset: A dataset name for `keras_vae.datasets.load`.
        count: How many first test images.
    """
    _, (x_test, _) = datasets.load(dataset)
    return evaluation.reconstruction_mse(model, x_test[:count])["mse_per_pixel"]
