"""Image datasets as float32 arrays in [0, 1], and `tf.data` pipelines over them.

`load("mnist")` reads the copy shipped in the project's `data/` folder, so
everything works offline. Other `keras.datasets` names use a `data/` copy
when there is one and otherwise `keras.datasets` (which downloads on a
machine with internet). A path loads your own images: an `.npz` file in the
`keras.datasets` layout, or a folder with one sub-folder of images per class.
"""

import os
import pathlib
import zipfile

import keras
import numpy as np
import tensorflow as tf

from keras_vae.validation import check_images
from keras_vae.validation import check_int

DATA_DIR_ENV = "KERAS_VAE_DATA_DIR"
"""Environment variable naming an extra folder searched first for `NAME.npz`."""

KERAS_DATASETS = ("mnist", "fashion_mnist", "cifar10", "cifar100")
_NPZ_KEYS = ("x_train", "y_train", "x_test", "y_test")


def data_dirs():
    """Returns the folders searched for `NAME.npz`, in order.

    `$KERAS_VAE_DATA_DIR` when set, then the `data/` folder of the source tree
    this package was installed from (present in a clone or editable install).
    """
    dirs = []
    if os.environ.get(DATA_DIR_ENV):
        dirs.append(pathlib.Path(os.environ[DATA_DIR_ENV]))
    dirs.append(pathlib.Path(__file__).resolve().parent.parent / "data")
    return dirs


def _is_path(spec):
    spec = str(spec)
    return spec.endswith(".npz") or os.sep in spec or os.path.exists(spec)


def load(name="mnist", *, image_size=(28, 28), color_mode="grayscale",
         test_fraction=0.2, seed=0):
    """Loads an image dataset as float32 arrays in [0, 1].

    Args:
        name: A `keras.datasets` name (`"mnist"`, `"fashion_mnist"`,
            `"cifar10"`, `"cifar100"`), or a path to an `.npz` file with
            `x_train`, `y_train`, `x_test`, `y_test`, or a path to a folder
            with one sub-folder of images per class.
        image_size: `(height, width)` images from a folder are resized to.
        color_mode: `"grayscale"` or `"rgb"`, for images from a folder.
        test_fraction: Fraction of a folder's images held out as test set.
        seed: Seed of a folder's shuffle and train/test split.

    Returns:
        `((x_train, y_train), (x_test, y_test))` with images of shape
        `(N, height, width, channels)`, float32 in [0, 1], and int labels of
        shape `(N,)`.

    Raises:
        ValueError: unknown name, missing or unreadable file, missing arrays,
            or images that are empty or not 8-bit / [0, 1] values.

    Example:

    ```python
    (x_train, y_train), (x_test, y_test) = keras_vae.datasets.load("mnist")
    x_train.shape  # (60000, 28, 28, 1)
    ```
    """
    spec = os.fspath(name) if isinstance(name, os.PathLike) else name
    if not isinstance(spec, str):
        raise TypeError(
            f"name must be a dataset name or a path. Received: name={name!r}"
        )
    if _is_path(spec):
        path = pathlib.Path(spec)
        if path.is_dir():
            return _load_image_folder(path, image_size, color_mode,
                                      test_fraction, seed)
        if not path.exists():
            raise ValueError(f"Dataset file not found. Received: path={spec!r}")
        return load_npz(path)
    if spec not in KERAS_DATASETS:
        raise ValueError(
            f"Unknown dataset name. Expected one of {list(KERAS_DATASETS)}, "
            f"a path to an .npz file, or an image folder. Received: name={spec!r}"
        )
    for folder in data_dirs():
        candidate = folder / f"{spec}.npz"
        if candidate.is_file():
            return load_npz(candidate)
    module = getattr(keras.datasets, spec)
    return _to_float_images(module.load_data(), source=f"keras.datasets.{spec}")


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
    result = []
    for split, (x, y) in zip(("train", "test"), splits):
        x = np.asarray(x)
        y = np.asarray(y).reshape(-1)
        if x.ndim == 3:
            x = x[..., None]
        if x.shape[0] != y.shape[0]:
            raise ValueError(
                f"{source}: x_{split} and y_{split} differ in length. "
                f"Received: {x.shape[0]} images and {y.shape[0]} labels"
            )
        if x.dtype == np.uint8:
            x = x.astype("float32") / 255.0
        x = check_images(x.astype("float32", copy=False), name=f"{source} x_{split}")
        result.append((x, y.astype("int64")))
    return tuple(result)


def _load_image_folder(path, image_size, color_mode, test_fraction, seed):
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(
            f"test_fraction must be in (0, 1). Received: test_fraction={test_fraction!r}"
        )
    try:
        train, test = keras.utils.image_dataset_from_directory(
            path,
            labels="inferred",
            label_mode="int",
            color_mode=color_mode,
            image_size=tuple(image_size),
            batch_size=256,
            shuffle=True,
            seed=seed,
            validation_split=test_fraction,
            subset="both",
            verbose=False,
        )
    except ValueError as error:
        raise ValueError(
            f"Could not load images from the folder {path}. Received error: {error}"
        ) from error
    splits = []
    for dataset in (train, test):
        xs, ys = [], []
        for x, y in dataset:
            xs.append(x.numpy())
            ys.append(y.numpy())
        if not xs:
            raise ValueError(
                f"The folder {path} gave no images for one of the splits "
                f"(test_fraction={test_fraction}). Received: too few images"
            )
        splits.append((np.concatenate(xs) / 255.0, np.concatenate(ys)))
    return _to_float_images(splits, source=str(path))


def binarize(x, seed=0):
    """Returns a fixed binarization of `x`: each pixel is Bernoulli(intensity).

    Used for test sets, which are binarized once with a fixed seed so that
    evaluations are comparable.
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
