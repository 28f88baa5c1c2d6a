"""Checks on arguments, labels and image arrays, shared by the loaders and the models.

Every check raises a one-line error that names what was wrong and echoes
what was received, so bad data never trains silently: a `TypeError` for the
wrong type (2.5 where an int is needed, strings as labels) and a
`ValueError` for a wrong value of the right type (0, labels of 0.5, pixels
of 255).
"""

import math

import keras
import numpy as np


def check_int(name, value, minimum=1):
    """Returns `value` as an int if it is an integer >= `minimum`.

    Args:
        name: The argument's name, for the error messages.
        value: The value to check.
        minimum: The smallest value accepted.

    Raises:
        TypeError: `value` is not an int (floats such as 2.0 and bools are refused).
        ValueError: `value` is below `minimum`.
    """
    requirement = "a positive int" if minimum == 1 else f"an int >= {minimum}"
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be {requirement}. Received: {name}={value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be {requirement}. Received: {name}={value!r}")
    return int(value)


def check_number(name, value, minimum=0.0):
    """Returns `value` as a float if it is a finite number >= `minimum`.

    Args:
        name: The argument's name, for the error messages.
        value: The value to check.
        minimum: The smallest value accepted.

    Raises:
        TypeError: `value` is not a number (bools are refused).
        ValueError: `value` is NaN, infinite or below `minimum`.
    """
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name} must be a number. Received: {name}={value!r}")
    if not math.isfinite(value) or value < minimum:
        raise ValueError(
            f"{name} must be finite and >= {minimum:g}. Received: {name}={value!r}")
    return float(value)


def check_labels(labels, num_classes=None, count=None, name="labels"):
    """Returns `labels` as an int64 vector of class indices.

    Float labels are accepted only when every value is a whole number (a
    `keras.datasets` file may store 3.0); 0.5 is refused, never truncated.

    Args:
        labels: Array-like of shape `(N,)` or `(N, 1)`.
        num_classes: Optional; every label must then be below it.
        count: Optional number of labels expected (one per image).
        name: Name used for `labels` in error messages.

    Raises:
        TypeError: `labels` are not numbers (strings, booleans, objects).
        ValueError: not a vector, the wrong count, non-integral, NaN,
            negative, or `>= num_classes` values.
    """
    array = np.asarray(labels)
    if not np.issubdtype(array.dtype, np.number) or np.issubdtype(array.dtype, np.complexfloating):
        raise TypeError(
            f"{name} must hold integer class indices. Received: {name}.dtype={array.dtype}")
    if array.ndim == 2 and array.shape[1] == 1:
        array = array[:, 0]
    if array.ndim != 1:
        raise ValueError(
            f"{name} must be a vector of class indices (not one-hot). "
            f"Received: {name}.shape={array.shape}")
    if count is not None and len(array) != count:
        raise ValueError(
            f"{name} must have one label per image. Received: {len(array)} labels "
            f"for {count} images")
    if not np.issubdtype(array.dtype, np.integer):
        whole = np.isfinite(array) & (array == np.round(array))
        if not np.all(whole):
            bad = array[~whole]
            raise ValueError(
                f"{name} must be whole numbers (class indices). Received: "
                f"{bad.size} non-integral value(s), e.g. {bad[0].item()!r}")
    if array.size and array.min() < 0:
        raise ValueError(
            f"{name} must be class indices >= 0. Received: a label of {array.min().item()!r}")
    if num_classes is not None and array.size and array.max() >= num_classes:
        raise ValueError(
            f"{name} must be in [0, {num_classes}). Received: labels in "
            f"[{array.min().item()!r}, {array.max().item()!r}]")
    return array.astype("int64")


def check_images(x, name="x", image_shape=None):
    """Checks that `x` is a non-empty batch of float images in [0, 1].

    Args:
        x: Array-like of shape `(N, height, width, channels)`.
        name: Name used for `x` in error messages.
        image_shape: Optional `(height, width, channels)` that `x` must match.

    Returns:
        `x` as a NumPy array (not copied when it already is one).

    Raises:
        TypeError: `x` is not numeric.
        ValueError: wrong rank, empty, shape mismatch, values outside [0, 1]
            (for example uint8 pixels 0..255), NaN or infinity.
    """
    array = np.asarray(x)
    if array.dtype.name in ("bfloat16", "float16"):
        # A mixed-precision model's `__call__` casts its inputs to bfloat16 or
        # float16 before `call` checks them; NumPy has no bfloat16 arithmetic.
        array = array.astype("float32")
    if not (np.issubdtype(array.dtype, np.number) or array.dtype == np.bool_):
        raise TypeError(
            f"{name} must be a numeric array of images. "
            f"Received: {name}.dtype={array.dtype}"
        )
    if array.ndim != 4:
        hint = ""
        if array.ndim == 3:
            hint = f" Add a channel axis with {name}[..., None]."
        raise ValueError(
            f"{name} must have rank 4 (batch, height, width, channels). "
            f"Received: {name}.shape={array.shape}.{hint}"
        )
    if array.shape[0] == 0:
        raise ValueError(f"{name} is empty. Received: {name}.shape={array.shape}")
    check_shape_matches(array.shape[1:], image_shape, name)
    check_values(array, name)
    return array


def check_shape_matches(shape, image_shape, name="x"):
    """Raises `ValueError` if image `shape` (no batch axis) differs from `image_shape`.

    Args:
        shape: `(height, width, channels)` of the images given.
        image_shape: `(height, width, channels)` expected, or None to accept
            any shape.
        name: Name used for the images in error messages.
    """
    if image_shape is None:
        return
    shape = tuple(shape)
    expected = tuple(image_shape)
    if shape == expected:
        return
    if shape[:2] == expected[:2]:
        raise ValueError(
            f"{name} has {shape[2]} channel(s) but the model expects "
            f"{expected[2]}. Received: image shape {shape}, expected {expected}"
        )
    raise ValueError(
        f"{name} has the wrong image size for this model. Received: image "
        f"shape {shape}, expected {expected}"
    )


def check_values(array, name="x"):
    """Raises `ValueError` unless every value of `array` is finite and in [0, 1].

    Args:
        array: A NumPy array of pixel values.
        name: Name used for `array` in error messages.
    """
    if np.issubdtype(array.dtype, np.floating) and not np.all(np.isfinite(array)):
        bad = int(np.size(array) - np.count_nonzero(np.isfinite(array)))
        raise ValueError(
            f"{name} contains {bad} NaN or infinite value(s). "
            "Received: non-finite pixels"
        )
    low, high = float(np.min(array)), float(np.max(array))
    if low < 0.0 or high > 1.0:
        hint = ""
        if high > 1.0 and high <= 255.0 and low >= 0.0:
            hint = " Scale 8-bit images to [0, 1] with x.astype('float32') / 255."
        raise ValueError(
            f"{name} must hold pixel values in [0, 1]. Received: values in "
            f"[{low:g}, {high:g}] (dtype {array.dtype}).{hint}"
        )


class NonFiniteOutputError(ArithmeticError):
    """A model computed NaN or infinity: an error of the model (its weights), not a result.

    Raised by `check_finite_output`; the command line reports it in one line.
    """


def check_finite_output(values, quantity, model_name=None):
    """Returns `values` if every one is finite; else raises `NonFiniteOutputError`.

    A model whose weights hold NaN gives NaN scores, images and bounds; they
    are never reported as results (nor blamed on the data).

    Args:
        values: Array-like of what the model computed.
        quantity: What `values` are, for the message (e.g. "neg_elbo").
        model_name: The model's file (or name), for the message; None: "the model".

    Raises:
        NonFiniteOutputError: a value is NaN or infinite.
    """
    array = np.asarray(values, dtype="float64")
    finite = np.isfinite(array)
    if not np.all(finite):
        bad = int(array.size - np.count_nonzero(finite))
        model = "the model" if model_name is None else f"the model {model_name}"
        raise NonFiniteOutputError(
            f"{quantity} computed by {model} is not finite: its weights are broken "
            f"(NaN or infinite), not the data. Received: {bad} NaN or infinite "
            f"value(s) of {array.size}")
    return values


def deserialize_config(name, config, base):
    """Rebuilds a `base` instance from its Keras config dict, for `likelihoods.get`/`priors.get`.

    Args:
        name: the argument's name, for the error messages.
        config: the dict given by the caller.
        base: the class the rebuilt object must be an instance of.

    Raises:
        ValueError: `config` is not a Keras config dict, or gives another class.
    """
    if "class_name" not in config:
        raise ValueError(
            f"{name} config must be a Keras config dict with a 'class_name'. "
            f"Received: {name}={config!r}")
    try:
        layer = keras.saving.deserialize_keras_object(config)
    except (TypeError, ValueError, KeyError) as error:
        raise ValueError(
            f"{name} is not a valid Keras config ({error}). Received: {name}={config!r}"
        ) from error
    if not isinstance(layer, base):
        raise ValueError(
            f"{name} config gives a {type(layer).__name__}, not a "
            f"{base.__module__}.{base.__name__}. Received: {name}={config!r}")
    return layer
