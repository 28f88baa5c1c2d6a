"""Reads a folder with one sub-folder of images per class (for `datasets.load`).

`keras.utils.image_dataset_from_directory` does the decoding; this module
first counts what the folder holds, so that every problem gets one line
that says what was found: no class folders, too few images for the split, a
class folder that cannot be read (refused: its class would silently lose
its images), and a file that is not a valid image (named). The images found
per class go to stderr.
"""

import contextlib
import io
import os
import re
import sys

import keras
import numpy as np
import tensorflow as tf

from keras_vae.validation import check_int
from keras_vae.validation import check_number

IMAGE_EXTENSIONS = (".bmp", ".gif", ".jpeg", ".jpg", ".png")
"""The files `keras.utils.image_dataset_from_directory` reads (case-insensitive)."""
COLOR_MODES = ("grayscale", "rgb", "rgba")


def load(path, image_size, color_mode, test_fraction, seed):
    """Returns `((x_train, y_train), (x_test, y_test))`, images float32 in [0, 1].

    Raises:
        TypeError: an argument of the wrong type.
        ValueError: `test_fraction` outside (0, 1), an unknown `color_mode`,
            no class folders, no images, too few images for the split, or a
            file that does not decode as an image.
        OSError: a folder that cannot be read.
    """
    _check_arguments(image_size, color_mode, test_fraction)
    counts, loose, others = count_images(path)
    total = sum(counts.values())
    num_test = int(test_fraction * total)  # as keras splits
    _check_counts(path, counts, loose, others, test_fraction, num_test)
    shown = ", ".join(f"{name} {count}" for name, count in list(counts.items())[:20])
    more = f", ... ({len(counts) - 20} more)" if len(counts) > 20 else ""
    ignored = f"; {loose} image(s) directly in the folder ignored (no class)" if loose else ""
    print(f"keras_vae: {path}: {total} images in {len(counts)} classes ({shown}{more}); "
          f"{total - num_test} for training, {num_test} for test{ignored}",
          file=sys.stderr)
    # TensorFlow decodes a GIF to 3 channels only, even a grey one: with GIFs
    # in the folder, grayscale images are read as rgb and converted here.
    decode_mode = "rgb" if color_mode == "grayscale" and _has_gif(path) else color_mode
    try:
        with contextlib.redirect_stdout(io.StringIO()):  # keras prints the split sizes
            train, test = keras.utils.image_dataset_from_directory(
                path, labels="inferred", label_mode="int", color_mode=decode_mode,
                image_size=tuple(image_size), batch_size=256, shuffle=True, seed=seed,
                validation_split=test_fraction, subset="both", verbose=False)
    except ValueError as error:
        raise ValueError(
            f"Could not load images from the folder {path}. Received error: {error}"
        ) from error
    splits = []
    for dataset in (train, test):
        try:
            batches = [(x.numpy(), y.numpy()) for x, y in dataset]
        except tf.errors.OpError as error:  # a file that cannot be read or decoded
            _raise_for_undecodable(train.file_paths + test.file_paths, decode_mode, error)
            raise
        if decode_mode != color_mode:
            batches = [(tf.image.rgb_to_grayscale(x).numpy(), y) for x, y in batches]
        splits.append((np.concatenate([x for x, _ in batches]) / 255.0,
                       np.concatenate([y for _, y in batches])))
    return tuple(splits)


def _has_gif(path):
    """Whether a file under `path` is a GIF (by its extension)."""
    return any(name.lower().endswith(".gif") for _, _, files in os.walk(path)
               for name in files)


def _check_arguments(image_size, color_mode, test_fraction):
    if check_number("test_fraction", test_fraction) >= 1.0 or test_fraction <= 0.0:
        raise ValueError(
            f"test_fraction must be in (0, 1). Received: test_fraction={test_fraction!r}")
    if not isinstance(color_mode, str):
        raise TypeError(f"color_mode must be a string. Received: color_mode={color_mode!r}")
    if color_mode not in COLOR_MODES:
        raise ValueError(
            f"color_mode must be one of {list(COLOR_MODES)}. Received: color_mode={color_mode!r}")
    if isinstance(image_size, str) or not hasattr(image_size, "__len__"):
        raise TypeError(
            f"image_size must be (height, width). Received: image_size={image_size!r}")
    if len(image_size) != 2:
        raise ValueError(
            f"image_size must be (height, width). Received: image_size={image_size!r}")
    for size in image_size:
        check_int("each entry of image_size", size)


def count_images(path):
    """Returns `({class: images}, images outside class folders, other files)`.

    Class folders are the non-hidden sub-folders, in sorted order (keras's
    label order); images are counted in them recursively.

    Raises:
        OSError: `path` or a class folder (or a folder in it) cannot be read.
    """
    counts, loose, others = {}, 0, 0
    for entry in sorted(_listdir(path)):
        full = os.path.join(path, entry)
        if os.path.isdir(full):
            if not entry.startswith("."):
                counts[entry], more_others = _count_class(full, path)
                others += more_others
        elif entry.lower().endswith(IMAGE_EXTENSIONS):
            loose += 1
        else:
            others += 1
    return counts, loose, others


def _listdir(path):
    try:
        return os.listdir(path)
    except OSError as error:
        raise type(error)(
            f"Cannot read the image folder {path}. Received error: {error}") from error


def _count_class(folder, root):
    def refuse(error):
        raise type(error)(
            f"Cannot read {error.filename or folder}, inside the class folder {folder}: "
            f"its images would be left out of the class. Fix its permissions or "
            f"move it out of {root}. Received error: {error.strerror or error}") from error

    images = others = 0
    for _, _, files in os.walk(folder, onerror=refuse):
        for name in files:
            if name.lower().endswith(IMAGE_EXTENSIONS):
                images += 1
            else:
                others += 1
    return images, others


def _check_counts(path, counts, loose, others, test_fraction, num_test):
    extensions = ", ".join(IMAGE_EXTENSIONS)
    total = sum(counts.values())
    if not counts:
        if loose:
            raise ValueError(
                f"Could not load images from the folder {path}: it has no class "
                "sub-folders, and it needs one "
                f"sub-folder of images per class (for a single class, move the "
                f"images into {os.path.join(path, 'images')}). Received: {loose} "
                "image(s) directly in the folder and no sub-folder")
        raise ValueError(
            f"Could not load images from the folder {path}: it holds no images "
            f"({extensions}) and no class sub-folders. Received: {others} other file(s)")
    if total == 0:
        raise ValueError(
            f"Could not load images from the folder {path}: it has {len(counts)} "
            "class sub-folder(s) but no "
            f"images ({extensions}) in them. Received: {others} other file(s)"
            + (f" and {loose} image(s) outside the class folders" if loose else ""))
    if num_test < 1 or num_test >= total:
        per_class = ", ".join(f"{name} {count}" for name, count in counts.items())
        raise ValueError(
            f"Could not load images from the folder {path}: too few images to hold out "
            f"test_fraction={test_fraction} of them: {total} image(s) ({per_class}) "
            f"give {total - num_test} for training and {num_test} for test. Add "
            "images or change test_fraction")


def _raise_for_undecodable(file_paths, color_mode, error):
    """Raises a `ValueError` naming the first file that cannot be read as an image."""
    channels = {"grayscale": 1, "rgb": 3, "rgba": 4}[color_mode]
    bad = []
    for file_path in file_paths:
        try:
            tf.io.decode_image(tf.io.read_file(file_path), channels=channels,
                               expand_animations=False)
        except tf.errors.OpError as file_error:
            reason = file_error.message.splitlines()[0]
            reason = re.sub(r"\{\{.*?\}\}|\[Op:.*$", "", reason).strip()  # TF's decorations
            bad.append((file_path, reason))
    if bad:
        more = f" (and {len(bad) - 1} more file(s))" if len(bad) > 1 else ""
        raise ValueError(
            f"{bad[0][0]}{more} is not a valid image: it is unreadable, corrupt or not in the "
            "format its extension says. Remove or replace it. Received error: "
            f"{bad[0][1]}") from error
