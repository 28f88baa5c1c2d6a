"""Image datasets as float32 arrays in [0, 1], and `tf.data` pipelines over them.

`load("NAME")` reads `NAME.npz` from `$KERAS_VAE_DATA_DIR` or, in a clone
of the project, from its `data/` folder (MNIST and Fashion-MNIST are there,
so a clone works offline); other `keras.datasets` names, and MNIST after a
`pip install`, download through `keras.datasets` (cached in
`~/.keras/datasets`). Your own images load by path: an `.npz` file in the
`keras.datasets` layout, or a folder with one sub-folder of images per
class (read by `keras_vae._image_folders`).

A string is a path only when it ends in `.npz`, contains a path separator,
or is passed as `path=`: `load("mnist")` is MNIST even from a folder that
holds a sub-folder named `mnist`.
"""

import os
import pathlib
import zipfile

import keras
import numpy as np
import tensorflow as tf

from keras_vae import _image_folders
from keras_vae.validation import check_images
from keras_vae.validation import check_int
from keras_vae.validation import check_labels

DATA_DIR_ENV = "KERAS_VAE_DATA_DIR"
"""Environment variable naming an extra folder searched first for `NAME.npz`."""

KERAS_DATASETS = ("mnist", "fashion_mnist", "cifar10", "cifar100")
_NPZ_KEYS = ("x_train", "y_train", "x_test", "y_test")
_SOURCE_ROOT = pathlib.Path(__file__).resolve().parent.parent


def data_dirs():
    """Returns the folders searched for `NAME.npz`, in order.

    `$KERAS_VAE_DATA_DIR` when set, then the `data/` folder of the project
    when this package runs from a clone (or an editable install of one); an
    installed wheel has no such folder.
    """
    dirs = []
    if os.environ.get(DATA_DIR_ENV):
        dirs.append(pathlib.Path(os.environ[DATA_DIR_ENV]))
    if (_SOURCE_ROOT / "setup.cfg").is_file() and (_SOURCE_ROOT / "data").is_dir():
        dirs.append(_SOURCE_ROOT / "data")
    return dirs


def _is_path(spec):
    separators = [sep for sep in (os.sep, os.altsep, "/") if sep]
    return spec.endswith(".npz") or any(sep in spec for sep in separators)


def load(name=None, *, path=None, image_size=(28, 28), color_mode="grayscale",
         test_fraction=0.2, seed=0):
    """Loads an image dataset as float32 arrays in [0, 1].

    Args:
        name: A dataset name: `NAME.npz` in a folder of `data_dirs()`, or a
            `keras.datasets` name (`"mnist"`, `"fashion_mnist"`, `"cifar10"`,
            `"cifar100"`), downloaded when there is no copy. A string that
            ends in `.npz` or contains a path separator (`"./faces"`), or an
            `os.PathLike`, is a path instead. Defaults to `"mnist"`.
        path: A path, never a name: an `.npz` file with `x_train`, `y_train`,
            `x_test`, `y_test`, or a folder with one sub-folder of images
            per class. Give `name` or `path`, not both.
        image_size: `(height, width)` images from a folder are resized to.
        color_mode: `"grayscale"` or `"rgb"`, for images from a folder.
        test_fraction: Fraction of a folder's images held out as test set.
        seed: Seed of a folder's shuffle and train/test split.

    Returns:
        `((x_train, y_train), (x_test, y_test))` with images of shape
        `(N, height, width, channels)`, float32 in [0, 1], and int64 labels
        of shape `(N,)`.

    Raises:
        TypeError: `name` or `path` is not a string or path.
        ValueError: unknown name, missing or unreadable file, missing
            arrays, images that are empty or not 8-bit / [0, 1] values,
            labels that are not whole numbers (or not numbers), train and
            test images of different shapes, a folder without images or
            with a file that is not an image.
        OSError: no copy of a `keras.datasets` dataset and its download
            failed (offline), or a class folder that cannot be read.

    Example:

    ```python
    (x_train, y_train), (x_test, y_test) = keras_vae.datasets.load("mnist")
    x_train.shape  # (60000, 28, 28, 1)
    (x, y), _ = keras_vae.datasets.load(path="my_photos", image_size=(64, 64))
    ```
    """
    folder_args = (image_size, color_mode, test_fraction, seed)
    if path is not None:
        if name is not None:
            raise ValueError(
                "Give a dataset name or path=, not both. "
                f"Received: name={name!r}, path={path!r}")
        if not isinstance(path, (str, os.PathLike)):
            raise TypeError(f"path must be a string or a path. Received: path={path!r}")
        return _load_path(os.fspath(path), *folder_args)
    if name is None:
        name = "mnist"
    if isinstance(name, os.PathLike):
        return _load_path(os.fspath(name), *folder_args)
    if not isinstance(name, str):
        raise TypeError(
            f"name must be a dataset name or a path. Received: name={name!r}")
    if _is_path(name):
        return _load_path(name, *folder_args)
    return _load_named(name)


def _load_path(spec, image_size, color_mode, test_fraction, seed):
    path = pathlib.Path(spec)
    if path.is_dir():
        splits = _image_folders.load(path, image_size, color_mode, test_fraction, seed)
        return _to_float_images(splits, source=str(path))
    if not path.exists():
        raise ValueError(f"Dataset file not found. Received: path={spec!r}")
    return load_npz(path)


def _load_named(name):
    searched = data_dirs()
    for folder in searched:
        candidate = folder / f"{name}.npz"
        if candidate.is_file():
            return load_npz(candidate)
    if name not in KERAS_DATASETS:
        hint = ""
        if os.path.exists(name):
            hint = (f" To load the file or folder {name!r} here, pass "
                    f"path={name!r} or {os.path.join('.', name)!r}.")
        raise ValueError(
            f"Unknown dataset name. Expected one of {list(KERAS_DATASETS)}, "
            f"NAME.npz in {DATA_DIR_ENV}, a path to an .npz file, or an image "
            f"folder. Received: name={name!r}.{hint}")
    module = getattr(keras.datasets, name)
    try:
        splits = module.load_data()
    except Exception as error:
        # keras.utils.get_file raises a bare Exception for a failed download,
        # ValueError for a corrupt one; anything else is a bug and stays loud.
        if not (type(error) is Exception or isinstance(error, (OSError, ValueError))):
            raise
        reason = (str(error).strip().splitlines() or [""])[0]
        searched_text = (f"no {name}.npz in " + ", ".join(str(f) for f in searched)
                         if searched else f"{DATA_DIR_ENV} is not set")
        raise OSError(
            f"Found no copy of {name!r} ({searched_text}) and the download "
            f"through keras.datasets failed ({type(error).__name__}: {reason}). "
            f"Offline, give a local copy in the keras.datasets layout: set "
            f"{DATA_DIR_ENV} to a folder holding {name}.npz, or load the file by "
            f"its path (.../{name}.npz).") from error
    return _to_float_images(splits, source=f"keras.datasets.{name}")


def load_npz(path):
    """Loads an `.npz` file in the `keras.datasets` layout (see `load`)."""
    path = pathlib.Path(path)
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {key: archive[key] for key in archive.files}
    except (OSError, EOFError, ValueError, zipfile.BadZipFile) as error:
        raise ValueError(
            f"Could not read {path} as an .npz file (missing, truncated or "
            f"not an archive). Received error: {error}"
        ) from error
    missing = [key for key in _NPZ_KEYS if key not in arrays]
    if missing:
        raise ValueError(
            f"{path} lacks the arrays {missing}; an image .npz needs "
            f"{list(_NPZ_KEYS)}. Received: arrays {sorted(arrays)}"
        )
    splits = ((arrays["x_train"], arrays["y_train"]),
              (arrays["x_test"], arrays["y_test"]))
    return _to_float_images(splits, source=str(path))


def _to_float_images(splits, source):
    """Checks `((x, y), (x, y))` and returns float32 images in [0, 1], int64 labels.

    uint8 images are scaled by 1/255; other dtypes must already be in
    [0, 1], and an error echoes the dtype received.
    """
    result = []
    for split, (x, y) in zip(("train", "test"), splits):
        x = np.asarray(x)
        if x.ndim not in (3, 4):
            raise ValueError(
                f"{source}: x_{split} must hold images, of shape (N, height, width) or "
                f"(N, height, width, channels). Received: x_{split}.shape={x.shape}")
        if x.ndim == 3:
            x = x[..., None]
        try:
            y = check_labels(y, name=f"{source} y_{split}")
        except TypeError as error:  # strings in a file: a bad value of the data
            raise ValueError(str(error)) from None
        if x.shape[0] != y.shape[0]:
            raise ValueError(
                f"{source}: x_{split} and y_{split} differ in length. "
                f"Received: {x.shape[0]} images and {y.shape[0]} labels"
            )
        if x.dtype == np.uint8:
            x = x.astype("float32") / 255.0
        try:
            x = check_images(x, name=f"{source} x_{split}")
        except TypeError as error:
            raise ValueError(str(error)) from None
        result.append((x.astype("float32", copy=False), y))
    (x_train, _), (x_test, _) = result
    if x_train.shape[1:] != x_test.shape[1:]:
        raise ValueError(
            f"{source}: the train and test images differ in shape. Received: "
            f"x_train images of {x_train.shape[1:]}, x_test images of {x_test.shape[1:]}")
    return tuple(result)


def binarize(x, seed=0):
    """Returns a fixed binarization of `x`: each pixel is Bernoulli(intensity).

    Used for test sets, which are binarized once with a fixed seed so that
    evaluations are comparable.

    Args:
        x: Float images in [0, 1] of shape `(N, height, width, channels)`.
        seed: Seed of the NumPy generator that draws the pixels.

    Returns:
        float32 images of `x`'s shape, every pixel 0 or 1.
    """
    x = check_images(x)
    rng = np.random.default_rng(seed)
    return (rng.random(x.shape, dtype=np.float32) < x).astype("float32")


def make_dataset(x, y=None, *, batch_size=128, shuffle=True, binarize=False,
                 seed=None, drop_remainder=False):
    """Builds a shuffled, batched, prefetched `tf.data.Dataset` of images.

    The dataset is finite (one pass over `x` per iteration) and keeps
    tf.data's default options, autotuner included: it sizes the prefetch
    buffer and the binarization's parallelism for the machine at hand.

    Train it through one iterator, not one per epoch. Deleting an autotuned
    iterator waits, idle, for the autotuner's thread to wake, and that thread
    sleeps twice as long after each of its passes, from 10 ms up to 60 s (the
    waits observed end 2.55, 5.11 and 40.95 s into the iterator's life). When
    Keras replaced the iterator at every epoch of the default model on 60,000
    MNIST images, most epochs began with about 15 s of idle CPU (41 s instead
    of 26 s). keras_vae models' `fit` avoids it: it repeats a finite dataset
    and sets `steps_per_epoch` to its length, the same epochs through one
    iterator, deleted (one wait) when `fit` returns. With a plain Keras model
    do the same: `model.fit(dataset.repeat(), steps_per_epoch=len(dataset))`.
    `python -m benchmarks.input_pipeline` measures the ways side by side.

    Args:
        x: Float images in [0, 1] of shape `(N, height, width, channels)`.
        y: Optional labels of length `N`; elements are then `(images, labels)`.
        batch_size: Images per batch.
        shuffle: Whether to reshuffle the images on every pass.
        binarize: If True, every pixel is resampled as Bernoulli(intensity)
            each time it is seen ("dynamic binarization"), inside the graph.
        seed: Seed of the shuffle and the binarization noise.
        drop_remainder: Whether to drop a last, smaller batch.

    Returns:
        A `tf.data.Dataset` yielding `images` or `(images, labels)`.
    """
    x = check_images(x)
    check_int("batch_size", batch_size)
    tensors = x.astype("float32", copy=False)
    if y is not None:
        y = np.asarray(y)
        if y.shape[0] != x.shape[0]:
            raise ValueError(
                f"x and y differ in length. Received: {x.shape[0]} images and "
                f"{y.shape[0]} labels"
            )
        tensors = (tensors, y)
    dataset = tf.data.Dataset.from_tensor_slices(tensors)
    if shuffle:
        dataset = dataset.shuffle(x.shape[0], seed=seed, reshuffle_each_iteration=True)
    dataset = dataset.batch(batch_size, drop_remainder=drop_remainder)
    if binarize:
        noise_seeds = tf.data.Dataset.random(
            seed=seed, rerandomize_each_iteration=True
        ).batch(2)
        dataset = tf.data.Dataset.zip(dataset, noise_seeds).map(
            _binarize_batch, num_parallel_calls=tf.data.AUTOTUNE
        )
    return dataset.prefetch(tf.data.AUTOTUNE)


def _binarize_batch(batch, noise_seed):
    images = batch[0] if isinstance(batch, tuple) else batch
    noise = tf.random.stateless_uniform(tf.shape(images), seed=noise_seed)
    binary = tf.cast(noise < images, images.dtype)
    return (binary,) + batch[1:] if isinstance(batch, tuple) else binary
