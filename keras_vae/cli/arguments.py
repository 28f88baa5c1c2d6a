"""Flags shared by the `keras-vae` subcommands, defined once, and their checks.

Defining the flags imports no TensorFlow; the helpers that load data or
models import what they use.
"""

import argparse
import contextlib
import math
import pathlib
import re

MAX_INT = 2 ** 31 - 1
"""Largest int flag: TensorFlow's shapes and counts are int32 (and NumPy seeds 32-bit)."""


def _number(cast, minimum, strict, description, maximum=None):
    """Returns an argparse `type` accepting finite numbers above `minimum` (and <= `maximum`)."""

    def parse(text):
        try:
            value = cast(text)
        except ValueError:
            value = None
        if (value is None or not math.isfinite(value) or value < minimum
                or (strict and value == minimum)
                or (maximum is not None and value > maximum)):
            raise argparse.ArgumentTypeError(f"expected {description}, received {text!r}")
        return value

    return parse


positive_int = _number(int, 0, True, f"a positive int up to {MAX_INT}", MAX_INT)
positive_float = _number(float, 0.0, True, "a positive number")
non_negative_float = _number(float, 0.0, False, "a number >= 0")
non_negative_int = _number(int, 0, False, f"an int from 0 to {MAX_INT}", MAX_INT)


_up_to_one = _number(float, 0.0, True, "a number in (0, 1)", 1.0)


def fraction(text):
    """argparse `type` for a fraction strictly between 0 and 1 (`--validation-split 0.2`).

    Args:
        text: The flag's value as typed.
    """
    value = _up_to_one(text)
    if value == 1.0:
        raise argparse.ArgumentTypeError(f"expected a number in (0, 1), received {text!r}")
    return value


@contextlib.contextmanager
def memory_for(request):
    """Turns running out of memory in the block into a `ValueError` naming `request`.

    A flag that asks for more memory than the machine has (`--latent-dim
    1000000000`, `--image-size 30000 30000`) is the user's error, reported in
    one line with the flags and the allocation that failed.

    Args:
        request: What was asked, naming the flags, e.g. "--latent-dim 8 with
            28x28x1 images".
    """
    import tensorflow as tf

    try:
        yield
    except (MemoryError, tf.errors.ResourceExhaustedError) as error:
        text = error.message if isinstance(error, tf.errors.OpError) else str(error)
        match = re.search(r"OOM when allocating tensor with shape\s*\[[^\]]*\]", text)
        detail = match.group(0) if match else (text.strip().splitlines() or [""])[0]
        raise ValueError(
            f"Out of memory for {request}: ask for less. Received: "
            f"{type(error).__name__}: {detail or 'no memory left'}") from None

COLOR_MODES = ("grayscale", "rgb")


def add_data_arguments(parser, name="dataset", default="mnist", help_text=None,
                       image_size_default=(28, 28), color_mode_default="grayscale"):
    """Adds the dataset flag `--NAME` with `--image-size`, `--color-mode`, `--limit`, `--seed`.

    Commands that read a saved model pass `image_size_default=None` and
    `color_mode_default=None`: the model's own input shape then decides, and
    a flag that disagrees with it is an error (see `image_options`).

    Args:
        parser: the subcommand's `argparse` parser.
        name: the dataset flag's name, without the leading dashes.
        default: the dataset used when the flag is not given (`None`: none).
        help_text: help of the dataset flag.
        image_size_default: `--image-size` default; `None` to read it from the model.
        color_mode_default: `--color-mode` default; `None` to read it from the model.
    """
    parser.add_argument(
        f"--{name}", default=default,
        help=help_text or "a dataset name (mnist, fashion_mnist, cifar10, cifar100), "
        "a path to an .npz file with x_train/y_train/x_test/y_test, or the path of a "
        "folder (with a separator, e.g. ./photos) with one sub-folder of images per class")
    from_model = " (default: the model's input size)" if image_size_default is None else ""
    parser.add_argument("--image-size", type=positive_int, nargs=2, default=image_size_default,
                        metavar=("HEIGHT", "WIDTH"),
                        help="size images from a folder are resized to" + from_model)
    from_model = " (default: the model's channels)" if color_mode_default is None else ""
    parser.add_argument("--color-mode", choices=COLOR_MODES, default=color_mode_default,
                        help="channels of images from a folder" + from_model)
    parser.add_argument("--limit", type=positive_int, default=None,
                        help="use at most this many images of each split")
    parser.add_argument("--seed", type=non_negative_int, default=0,
                        help="seed of weights, shuffling, binarization and random draws")


def image_options(args, model):
    """Returns `(image_size, color_mode)` for loading data for a saved `model`.

    Flags left unset take the model's input shape; a flag that disagrees
    with it raises `ValueError` naming both.

    Args:
        args: The parsed flags, with `image_size` and `color_mode`.
        model: The loaded model; its `image_shape` decides.
    """
    height, width, channels = model.image_shape
    if channels not in (1, 3):
        raise ValueError(
            f"The model takes images with {channels} channels; keras-vae reads only "
            "grayscale (1) or rgb (3) images.")
    color_mode = COLOR_MODES[0] if channels == 1 else COLOR_MODES[1]
    if args.image_size is not None and tuple(args.image_size) != (height, width):
        raise ValueError(
            f"--image-size {args.image_size[0]} {args.image_size[1]} disagrees with the "
            f"model, which takes {height}x{width} images. Leave the flag out to use the "
            "model's size.")
    if args.color_mode is not None and args.color_mode != color_mode:
        raise ValueError(
            f"--color-mode {args.color_mode} disagrees with the model, which takes "
            f"{channels}-channel ({color_mode}) images. Leave the flag out to use the "
            "model's channels.")
    return (height, width), color_mode


def load_splits(name, args, image_size, color_mode, binarize=False):
    """Returns `((x_train, y_train), (x_test, y_test))` from one read of a dataset.

    Each split is limited and binarized as asked; reading once means an
    image folder is decoded (and its class counts printed) once.

    Args:
        name: dataset name or path (see `datasets.load`).
        args: the parsed flags (`limit` and `seed` are read).
        image_size: `(height, width)` images from a folder are resized to.
        color_mode: "grayscale" or "rgb".
        binarize: binarize the images once with `args.seed`.
    """
    from keras_vae import datasets

    splits = []
    with memory_for(f"--image-size {image_size[0]} {image_size[1]} ({color_mode})"):
        loaded = datasets.load(name, image_size=image_size, color_mode=color_mode,
                               seed=args.seed)
    for x, y in loaded:
        if args.limit is not None:
            x, y = x[:args.limit], y[:args.limit]
        if binarize:
            x = datasets.binarize(x, seed=args.seed)
        splits.append((x, y))
    return tuple(splits)


def binarization_note(args):
    """Describes the test-time binarization asked for, for the JSON reports."""
    return f"static, seed {args.seed}" if args.binarize == "static" else "none"


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """argparse's defaults in `--help`, except where a flag's help already says its default.

    A help that explains its default ("default 0.05", "default: the model's
    input size") would otherwise read "(default 0.05) (default: None)".
    """

    def _get_help_string(self, action):
        if "default" in (action.help or ""):
            return action.help
        return super()._get_help_string(action)


PRETRAINED = "pretrained:"
"""Prefix of a model argument naming a shipped model (`pretrained:mnist-default`)."""


def load_image_model(path):
    """Loads a saved keras_vae model, refusing any other Keras model in one line.

    `path` is a `.keras` file, or `pretrained:NAME` for a model shipped with
    keras_vae (`keras_vae.pretrained.names()`).
    """
    from keras_vae import pretrained
    from keras_vae import saving
    from keras_vae.models.base import ImageModel

    if str(path).startswith(PRETRAINED):
        path = pretrained.path(str(path)[len(PRETRAINED):])
    model = saving.load_model(path)
    if not isinstance(model, ImageModel):
        raise ValueError(
            f"{path} holds a {type(model).__name__}, not a keras_vae model (VAE, "
            "ConditionalVAE, Autoencoder or DCGAN).")
    return model


def check_output_file(output, overwrite, inputs):
    """Refuses an `output` that exists (unless `overwrite`) or that is one of `inputs`.

    Args:
        output: the file the command will write.
        overwrite: whether an existing file may be replaced.
        inputs: files the command reads, never to be written over.
    """
    output = pathlib.Path(output)
    for source in inputs:
        if output.exists() and pathlib.Path(source).exists() and output.samefile(source):
            raise ValueError(f"--output {output} is the model being read; choose another file.")
    if output.is_dir():
        raise IsADirectoryError(f"--output must be a file. Received: {output} is a folder")
    if output.exists() and not overwrite:
        raise FileExistsError(f"{output} exists. Pass --overwrite to replace it.")
