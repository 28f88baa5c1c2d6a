"""Trained models shipped with the package: `load(name)` in one call, checksum verified.

The models are package data in `keras_vae/resources/pretrained/` (inside the
wheel, found with `importlib.resources` from any working folder), beside
`registry.json`, which records for each name its file, SHA-256, the command
and commit that trained it, its test negative log-likelihood and its
reconstruction MSE on the first 100 test images, `README.md`, the same
table for people, and `cards/NAME.md`, each model's card (intended use,
training data and its provenance, training, evaluation, limitations,
licence, how to cite), both written from the registry by
`scripts/add_pretrained.py`.

```python
import keras_vae
keras_vae.pretrained.names()                  # the shipped models
model = keras_vae.pretrained.load(name)       # a keras_vae model, its file checked first
keras_vae.pretrained.info(name)["nll"]        # what it was measured at
keras_vae.pretrained.path(name)               # its checked .keras file
print(keras_vae.pretrained.card(name))        # its model card (use, data, limits, licence)
```

A model published elsewhere, at a URL with its SHA-256, is fetched into
Keras's cache and checked (`fetch`, `load_url`); `saving.load_model` takes
`hf://` and the other remote locations Keras reads itself:

```python
model = keras_vae.pretrained.load_url("https://example.org/vae.keras", file_hash="9f2c...")
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
import re
import urllib.parse

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
    gives them), `references` (the papers of its method) and
    `validation_images` (how many of the last training images of `dataset`
    its training held out: never trained on, they set `keras-vae anomaly`'s
    thresholds; 0 or absent if none).

    Args:
        name: A name from `names()`.
        registry: Path of a `registry.json`; None for the shipped one.
    """
    return dict(_entry(name, registry)[1])


def card(name, registry=None):
    """Returns the model card of a shipped model: Markdown text.

    What it is, its intended use, its training data and their provenance,
    how it was trained and evaluated (the numbers of `info(name)`), its
    limitations, its licence and how to cite it.

    Args:
        name: A name from `names()`.
        registry: Path of a `registry.json`; None for the shipped one.

    Raises:
        FileNotFoundError: the card is missing beside the registry.
    """
    registry_path, _ = _entry(name, registry)
    file = registry_path.parent / "cards" / f"{name}.md"
    if not file.is_file():
        raise FileNotFoundError(f"The model card of {name!r}, {file}, is missing.")
    return file.read_text()


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


CACHE_SUBDIR = "keras_vae_models"
"""Where `fetch` keeps downloaded models, inside Keras's cache (`~/.keras` or `KERAS_HOME`)."""


def fetch(url, file_hash, cache_dir=None):
    """Downloads a `.keras` model from `url` into a cache, checked against its SHA-256.

    The file is downloaded once (`keras.utils.get_file`) into
    `CACHE_SUBDIR` of Keras's cache and its SHA-256 checked: a damaged
    cached copy is downloaded again, and a download whose SHA-256 differs is
    refused and not kept, so a tampered or truncated file never loads.

    Args:
        url: Where the model is published (`https://...`, `http://...`, `file://...`).
        file_hash: The SHA-256 its publisher gives, 64 hex digits (the
            argument of `keras.utils.get_file`).
        cache_dir: Folder of the cache; Keras's (`~/.keras`) when None.

    Returns:
        The path of the checked local file.

    Raises:
        ValueError: a malformed `sha256` or `url`, or a download whose
            checksum differs (the message gives both).
        OSError: the download failed (the message names the URL).
    """
    import keras

    if not isinstance(file_hash, str) or not re.fullmatch(r"[0-9a-fA-F]{64}", file_hash):
        raise ValueError("file_hash must be a SHA-256, 64 hex digits. Received: "
                         f"file_hash={file_hash!r}")
    expected = file_hash.lower()
    parsed = urllib.parse.urlparse(str(url))
    if parsed.scheme not in ("http", "https", "file") or not parsed.path:
        raise ValueError(f"url must be an http(s):// or file:// address of a .keras file. "
                         f"Received: url={url!r}")
    basename = pathlib.PurePosixPath(parsed.path).name or "model.keras"
    if not basename.endswith(".keras"):  # keras.saving.load_model reads .keras names only
        basename += ".keras"
    name = f"{expected[:16]}-{basename}"
    if cache_dir is not None:  # Keras falls back to /tmp/.keras for a folder not made yet
        pathlib.Path(cache_dir).mkdir(parents=True, exist_ok=True)
    def download(again):
        try:
            return pathlib.Path(keras.utils.get_file(
                fname=name, origin=str(url), cache_dir=cache_dir, cache_subdir=CACHE_SUBDIR,
                force_download=again))
        except Exception as error:
            raise OSError(f"Could not download {url}: {error}") from error

    local = download(again=False)  # the cached copy, if there is one
    if sha256(local) != expected:  # a damaged cached copy: download it again
        local = download(again=True)
        digest = sha256(local)
        if digest != expected:
            local.unlink(missing_ok=True)
            raise ValueError(f"The file at {url} is not the model whose sha256 is "
                             f"{expected}: its sha256 is {digest}.")
    return pathlib.Path(local)


def load_url(url, file_hash, cache_dir=None):
    """Loads a model published at `url`, after checking its SHA-256 (see `fetch`).

    Args:
        url: Where the model is published.
        file_hash: The SHA-256 its publisher gives, 64 hex digits (the
            argument of `keras.utils.get_file`).
        cache_dir: Folder of the cache; Keras's when None.
    """
    return saving.load_model(fetch(url, file_hash, cache_dir))


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
