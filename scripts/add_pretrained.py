"""Register a trained model as a shipped one (`keras_vae.pretrained`): a maintainer's tool.

Not part of the installed package, which only reads the registry. From the
repository root:

```bash
python -m scripts.add_pretrained mnist-default runs/default/model.keras \\
    --command "keras-vae train ..." --commit $(git rev-parse --short HEAD) \\
    --nll 87.56 --nll-num-samples 5000 --description "the default VAE, 32 epochs"
```

`add` writes `NAME.keras` beside `keras_vae/resources/pretrained/registry.json`
as a portable copy (`portable`: float32 layers, no optimizer), records its
checksum, measures its reconstruction MSE and rewrites the README beside the
registry and each model's card in `cards/NAME.md` (`write_readme`, from
`readme_text` and `card_text`). Every function takes
`registry=`, the path of another `registry.json` (the tests use a temporary
one).
"""

import argparse
import json
import math
import re

from keras_vae import precision
from keras_vae import pretrained
from keras_vae import saving
from keras_vae._version import __version__
from keras_vae.validation import check_int
from keras_vae.validation import check_number

_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]*$")


def add(name, model_path, command, commit, nll, nll_num_samples=5000, dataset="mnist",
        registry=None, overwrite=False, nll_images=10_000, nll_precision="float32",
        description="", references=(), validation_images=0):
    """Registers a trained model: writes a portable copy, records checksum and measurements.

    `NAME.keras` beside the registry gets the model in float32 without its
    optimizer (`portable`): it loads fast on any processor and is a third
    of a checkpoint's size. Its SHA-256 and reconstruction MSE
    (`keras_vae.pretrained.reconstruction_mse`) are measured here; the README beside the registry
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
        references: The papers its method comes from, one string each
            (listed in its card under "How to cite").
        validation_images: How many of the last training images of `dataset`
            its training held out (0: none); `keras-vae anomaly` sets its
            thresholds on them.

    Returns:
        The new entry, a dict (see `keras_vae.pretrained.info`).
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
    check_int("validation_images", validation_images, minimum=0)
    path, models = pretrained.read_registry(registry)
    if name in models and not overwrite:
        raise ValueError(f"{name!r} is registered already; pass overwrite=True to replace "
                         f"it. Received: name={name!r}")
    model = portable(saving.load_model(model_path))
    mse = float(pretrained.reconstruction_mse(model, dataset))  # before any file is written
    target = saving.save_model(model, path.parent / f"{name}.keras")
    models[name] = {
        "file": target.name,
        "sha256": pretrained.sha256(target),
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
        "mse_images": pretrained.MSE_IMAGES,
        "references": [str(reference) for reference in references],
        "validation_images": int(validation_images),
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
    _, models = pretrained.read_registry(registry)
    lines = [
        "# Pretrained keras_vae models",
        "",
        "Package data: `keras_vae.pretrained.load(NAME)` loads a model after checking its "
        "SHA-256;",
        "`keras_vae.pretrained.names()` lists them. This file is written from "
        "`registry.json`",
        "by `scripts/add_pretrained.py` (in the repository); do not edit it by hand.",
        "",
        "NLL: the importance-weighted bound on the test images, nats per image, with K "
        "samples,",
        "computed in the dtype policy shown (`keras-vae evaluate pretrained:NAME "
        "--num-samples K --precision P`",
        "reproduces it on the whole test set).",
        f"MSE: per-pixel reconstruction error on the first {pretrained.MSE_IMAGES} test images "
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


DATASETS = {
    "mnist": (
        "MNIST (LeCun, Cortes and Burges): 70,000 28x28 grey-level images of handwritten "
        "digits, 60,000 for training and 10,000 for testing, in the `mnist.npz` that "
        "`keras.datasets.mnist` downloads (a copy is in the repository's `data/`). The "
        "digits were written by US Census Bureau employees and high-school students (NIST "
        "Special Databases 1 and 3). The training images are binarized on the fly (each "
        "pixel drawn as 1 with its grey level as probability); the test likelihoods use a "
        "static binarization of the test images. MNIST's terms of use are its authors'; "
        "it is commonly distributed under CC BY-SA 3.0."),
}
"""Where each dataset a shipped model was trained on comes from."""

LICENSE = "Apache-2.0"
"""The licence of the shipped weights: the package's (the LICENSE file)."""


def card_text(name, entry):
    """Returns the model card of one registered model, Markdown, from its registry entry.

    The sections of Hugging Face's and keras-hub's model cards: what it is,
    intended use, training data and its provenance, training, evaluation,
    limitations, licence, how to cite. Every number is the registry's.

    Args:
        name: The model's name.
        entry: Its registry entry (`keras_vae.pretrained.info(name)`).
    """
    images = f"{entry['nll_images']:,}" if "nll_images" in entry else "the"
    dataset = entry["dataset"]
    references = entry.get("references", [])
    lines = [
        f"# Model card: {name}",
        "",
        f"A keras_vae `{entry['model']}` trained on `{dataset}`: "
        f"{entry.get('description', '')}.",
        "",
        "```python",
        "import keras_vae",
        f'model = keras_vae.pretrained.load("{name}")   # its SHA-256 is checked first',
        "```",
        "",
        "## Intended use",
        "",
        "Teaching and research on variational autoencoders: generating, reconstructing and "
        "interpolating handwritten digits, exploring a latent space, and scoring how "
        f"likely a binarized `{dataset}` image is (density estimation, anomaly scores). It "
        "is not meant for decisions about people, for images of another kind or size, or "
        "as a classifier.",
        "",
        "## Training data",
        "",
        DATASETS.get(dataset, f"The `{dataset}` dataset of `keras_vae.datasets.load`."),
        "",
        "## Training",
        "",
        f"- Command (from a clone of the repository, whose `benchmarks/` holds the protocol): "
        f"`{entry['command']}`",
        f"- Code: commit `{entry['commit']}` of keras_vae.",
        *([f"- Held out: the last {entry['validation_images']:,} training images of "
           f"`{dataset}` were never trained on (they chose the epoch); `keras-vae anomaly` "
           "sets its thresholds on them."] if entry.get("validation_images") else []),
        "- The weights are shipped in float32 without the optimizer's state: "
        f"`{entry['file']}`, SHA-256 `{entry['sha256']}`.",
        "",
        "## Evaluation",
        "",
        f"- Test negative log-likelihood: **{entry['nll']:.2f} nats per image**, the "
        f"importance-weighted bound with K = {entry['nll_num_samples']} samples on "
        f"{images} test images, computed in "
        f"{entry.get('nll_precision', 'an unrecorded precision')}; reproduce it with "
        f"`keras-vae evaluate pretrained:{name} --num-samples {entry['nll_num_samples']}"
        f"{' --precision ' + entry['nll_precision'] if 'nll_precision' in entry else ''}`.",
        f"- Reconstruction MSE per pixel on the first {entry.get('mse_images', 100)} test "
        f"images (grey levels): {entry['reconstruction_mse']:.6f}.",
        "",
        "## Limitations",
        "",
        "- It models binarized 28x28 digits: its Bernoulli likelihood is a probability of "
        "binary pixels, not a density of grey levels, and other images are outside what it "
        "learned.",
        "- The negative log-likelihood is an upper bound estimated by sampling, on one "
        "random binarization of the test images: another binarization and seed move it by "
        "about a tenth of a nat (compare the mean of two draws in the description, where "
        "there is one).",
        "- Likelihood models can give *higher* likelihood to simpler out-of-distribution "
        "images (Nalisnick et al., 2019): check an anomaly score on the anomalies you care "
        "about before trusting it.",
        "- Samples are smoother (blurrier) than the training digits, as VAE samples are.",
        "",
        "## Licence",
        "",
        f"The weights are released under the {LICENSE} licence, as keras_vae itself (the "
        "repository's LICENSE file); the training data keep their own terms (above).",
        "",
        "## How to cite",
        "",
        "```bibtex",
        "@software{keras_vae,",
        "  title = {keras_vae: Variational Autoencoders for Keras 3, taught and usable},",
        "  author = {{The keras_vae authors}},",
        "  year = {2026},",
        "  version = {" + __version__ + "},",
        "}",
        "```",
        "",
        "and the papers of its method:",
        "",
    ]
    lines += [f"- {reference}" for reference in references] or [
        "- Kingma and Welling, \"Auto-Encoding Variational Bayes\", 2013, "
        "https://arxiv.org/abs/1312.6114"]
    return "\n".join(lines + [""])


def write_readme(registry=None):
    """Writes `readme_text` to `README.md` beside the registry, and every model's card.

    The cards go to `cards/NAME.md` beside the registry (`card_text`).

    Args:
        registry: Path of a `registry.json`; None for the shipped one.
    """
    path, models = pretrained.read_registry(registry)
    saving.write_text(path.parent / "README.md", readme_text(registry))
    (path.parent / "cards").mkdir(exist_ok=True)
    for name, entry in models.items():
        saving.write_text(path.parent / "cards" / f"{name}.md", card_text(name, entry))


def main(argv=None):
    """Registers the model the command line names; prints its entry as JSON."""
    parser = argparse.ArgumentParser(
        prog="python -m scripts.add_pretrained",
        description="Register a trained model as one shipped with keras_vae.")
    parser.add_argument("name", help="lower-case letters, digits, '.', '_' or '-'")
    parser.add_argument("model", help="the trained .keras file")
    parser.add_argument("--command", required=True, help="the command that trained it")
    parser.add_argument("--commit", required=True, help="the commit of the code that trained it")
    parser.add_argument("--nll", type=float, required=True,
                        help="its test negative log-likelihood, nats per image")
    parser.add_argument("--nll-num-samples", type=int, default=5000, help="K of that bound")
    parser.add_argument("--nll-images", type=int, default=10_000,
                        help="test images the NLL averages")
    parser.add_argument("--nll-precision", default="float32", choices=precision.POLICIES,
                        help="dtype policy the NLL was computed in")
    parser.add_argument("--dataset", default="mnist", help="the dataset it models")
    parser.add_argument("--description", default="", help="one line for the README")
    parser.add_argument("--validation-images", type=int, default=0,
                        help="how many of the last training images its training held out")
    parser.add_argument("--reference", action="append", default=[],
                        help="a paper its method comes from, for its card (repeatable)")
    parser.add_argument("--registry", default=None,
                        help="another registry.json (default: the shipped one)")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace a model registered under NAME")
    args = parser.parse_args(argv)
    entry = add(args.name, args.model, args.command, args.commit, args.nll,
                nll_num_samples=args.nll_num_samples, dataset=args.dataset,
                registry=args.registry, overwrite=args.overwrite, nll_images=args.nll_images,
                nll_precision=args.nll_precision, description=args.description,
                references=args.reference, validation_images=args.validation_images)
    print(json.dumps(entry, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
