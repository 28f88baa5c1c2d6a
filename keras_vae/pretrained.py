"""Trained models shipped with the package: `load(name)` in one call, checksum verified.

The models are package data in `keras_vae/resources/pretrained/` (inside the
wheel, found with `importlib.resources` from any working folder), beside
`registry.json`, which records for each name its file, SHA-256, the command
and commit that trained it, its test negative log-likelihood and its
reconstruction MSE on the first 100 test images, and `README.md`, the same
table for people (written from the registry by `write_readme`).

```python
import keras_vae
keras_vae.pretrained.names()                  # the shipped models
model = keras_vae.pretrained.load(name)       # a keras_vae model, its file checked first
keras_vae.pretrained.info(name)["nll"]        # what it was measured at
keras_vae.pretrained.path(name)               # its checked .keras file
```

A new model is registered with `add(name, "runs/x/model.keras", command=...,
commit=..., nll=...)`, which writes a portable copy (`portable`: float32
layers, no optimizer), records its checksum, measures its reconstruction MSE
(`reconstruction_mse`) and rewrites the README.
Every function takes `registry=`, the path of another `registry.json`
(the tests use a temporary one).
"""

import hashlib
import importlib.resources
import json
import math
import pathlib
import re

from keras_vae import datasets
from keras_vae import evaluation
from keras_vae import precision
from keras_vae import saving
from keras_vae.validation import check_int
from keras_vae.validation import check_number

REGISTRY_PATH = (importlib.resources.files("keras_vae") / "resources" / "pretrained"
                 / "registry.json")
"""The shipped registry: package data, found from any working folder after `pip install`."""

MSE_IMAGES = 100
"""`reconstruction_mse` is measured on this many first test images."""

_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]*$")


def _registry_path(registry):
    return pathlib.Path(str(REGISTRY_PATH if registry is None else registry))


def _read(registry):
    """Returns `(path, {name: entry})` of a registry; a missing custom one is empty."""
    path = _registry_path(registry)
    if not path.is_file():
        if registry is None:
            raise FileNotFoundError(
                f"The pretrained registry {path} is missing; reinstall keras_vae.")
        return path, {}
    models = json.loads(path.read_text())["models"]
    return path, models


def names(registry=None):
    """Returns the names of the registered models, sorted.

    Args:
        registry: Path of a `registry.json`; None for the shipped one.
    """
    return sorted(_read(registry)[1])


def _entry(name, registry):
    if not isinstance(name, str):
        raise TypeError(f"name must be a string. Received: name={name!r}")
    path, models = _read(registry)
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
    levels in [0, 1], not binarized), so the number needs no seed; `add`
    records it and the tests check every shipped model reproduces it.

    Args:
        model: A model with `reconstruct`.
        dataset: A dataset name for `keras_vae.datasets.load`.
        count: How many first test images.
    """
    _, (x_test, _) = datasets.load(dataset)
    return evaluation.reconstruction_mse(model, x_test[:count])["mse_per_pixel"]


def add(name, model_path, command, commit, nll, nll_num_samples=5000, dataset="mnist",
        registry=None, overwrite=False, nll_images=10_000, nll_precision="float32",
        description=""):
    """Registers a trained model: writes a portable copy, records checksum and measurements.

    `NAME.keras` beside the registry gets the model in float32 without its
    optimizer (`portable`): it loads fast on any processor and is a third
    of a checkpoint's size. Its SHA-256 and reconstruction MSE
    (`reconstruction_mse`) are measured here; the README beside the registry
    is rewritten (`write_readme`).

    Args:
        name: The model's name: lower-case letters, digits, `.`, `_`, `-`.
        model_path: The `.keras` file, e.g. `runs/x/model.keras`, in any
            dtype policy, with or without its optimizer.
        command: The command that trained it (one line).
        commit: The git commit of the code that trained it.
        nll: Its test negative log-likelihood, nats per image (the
            importance-weighted bound; e.g. `keras-vae evaluate`'s `nll`).
        nll_num_samples: K of that bound.
        dataset: The dataset it models, for `keras_vae.datasets.load`.
        registry: Path of a `registry.json` (created if missing); None for
            the shipped one.
        overwrite: Replace a model already registered under `name`.
        nll_images: How many test images `nll` averages.
        nll_precision: The dtype policy `nll` was computed in.
        description: One line saying what the model is and how it was
            trained (shown in the README).

    Returns:
        The new entry, a dict (see `info`).
    """
    if not isinstance(name, str) or not _NAME.match(name):
        raise ValueError("name must be lower-case letters, digits, '.', '_' or '-'. "
                         f"Received: name={name!r}")
    nll = check_number("nll", nll, minimum=-math.inf)
    if nll_precision not in precision.POLICIES:
        raise ValueError(f"nll_precision must be one of {precision.POLICIES}. "
                         f"Received: nll_precision={nll_precision!r}")
    if not isinstance(description, str) or "|" in description or "\n" in description:
        raise ValueError("description must be one line of text without '|' (it is a table "
                         f"cell). Received: description={description!r}")
    check_int("nll_num_samples", nll_num_samples)
    check_int("nll_images", nll_images)
    path, models = _read(registry)
    if name in models and not overwrite:
        raise ValueError(f"{name!r} is registered already; pass overwrite=True to replace "
                         f"it. Received: name={name!r}")
    model = portable(saving.load_model(model_path))
    mse = float(reconstruction_mse(model, dataset))  # before any file is written
    target = saving.save_model(model, path.parent / f"{name}.keras")
    models[name] = {
        "file": target.name,
        "sha256": sha256(target),
        "model": type(model).__name__,
        "dataset": dataset,
        "command": str(command),
        "commit": str(commit),
        "description": str(description),
        "nll": nll,
        "nll_num_samples": int(nll_num_samples),
        "nll_images": int(nll_images),
        "nll_precision": str(nll_precision),
        "reconstruction_mse": mse,
        "mse_images": MSE_IMAGES,
    }
    saving.write_json(path, {"models": dict(sorted(models.items()))})
    write_readme(registry)
    return dict(models[name])


def portable(model):
    """Returns a copy of `model` to ship: float32 layers, the same weights, no optimizer.

    Args:
        model: A built Keras model (compiled or not, in any dtype policy).
    """
    def uncompiled(node, scope):
        if not scope:  # the model itself
            node.pop("compile_config", None)
        return node

    with precision.policy_scope("float32"):
        return saving.rebuild(precision.with_policy(model, "float32"), uncompiled)


def readme_text(registry=None):
    """Returns the README the registry's folder should hold: one row per model.

    Args:
        registry: Path of a `registry.json`; None for the shipped one.
    """
    _, models = _read(registry)
    lines = [
        "# Pretrained keras_vae models",
        "",
        "Package data: `keras_vae.pretrained.load(NAME)` loads a model after checking its "
        "SHA-256;",
        "`keras_vae.pretrained.names()` lists them. This file is written from "
        "`registry.json`",
        "by `keras_vae.pretrained.write_readme()` (`add` calls it); do not edit it by hand.",
        "",
        "NLL: the importance-weighted bound on the test images, nats per image, with K "
        "samples,",
        "computed in the dtype policy shown (`keras-vae evaluate pretrained:NAME "
        "--num-samples K --precision P`",
        "reproduces it on the whole test set).",
        f"MSE: per-pixel reconstruction error on the first {MSE_IMAGES} test images "
        "(grey levels).",
        "",
    ]
    if not models:
        return "\n".join(lines + ["No models are shipped yet.", ""])
    lines += ["| name | model | dataset | what it is | NLL (K, test images, policy) | MSE | "
              "sha256 | commit | command |",
              "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for name, entry in sorted(models.items()):
        images = f"{entry['nll_images']:,}" if "nll_images" in entry else "-"
        lines.append(
            f"| {name} | {entry['model']} | {entry['dataset']} | "
            f"{entry.get('description', '')} | {entry['nll']:.2f} ({entry['nll_num_samples']}, "
            f"{images}, {entry.get('nll_precision', '-')}) | "  # '-': not recorded (older)
            f"{entry['reconstruction_mse']:.6f} | "
            f"`{entry['sha256']}` | `{entry['commit']}` | `{entry['command']}` |")
    return "\n".join(lines + [""])


def write_readme(registry=None):
    """Writes `readme_text` to `README.md` beside the registry.

    Args:
        registry: Path of a `registry.json`; None for the shipped one.
    """
    saving.write_text(_registry_path(registry).parent / "README.md", readme_text(registry))
