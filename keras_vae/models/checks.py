"""Checks on what the models are given: class labels, and every batch in the graph.

`check_batch` guards each training batch inside the compiled step, where the
Python checks of `keras_vae.validation` (run on arrays and on a dataset's
first batch) cannot reach.
"""

import numpy as np
import tensorflow as tf
from tensorflow.python.ops import control_flow_util

from keras_vae import validation

_CHECK_BATCHES = True
"""Module-private switch of the in-graph batch check (`check_batch`).

Only for measuring what the check costs (benchmarks/throughput.py): set
`keras_vae.models.checks._CHECK_BATCHES = False` before the model's first
`fit`/`evaluate`/`predict` (the flag is read when the step is traced).
"""


def _in_xla():
    """True while tracing a function that XLA compiles (`jit_compile=True`)."""
    return control_flow_util.GraphOrParentsInXlaContext(tf.compat.v1.get_default_graph())


def check_batch(images, what):
    """Returns `images`, stopping the graph unless all its values are finite and in [0, 1].

    One fused reduction per batch (`all(0 <= x <= 1)`, which NaN and
    infinities fail too); the minimum, maximum and count of non-finite values
    are computed only for the error message, when the check fails. The error
    is an `InvalidArgumentError` whose message starts with `what`, e.g.
    "training images must be finite values in [0, 1]; this batch has min 0
    and max 255 and 0 NaN or infinite value(s)". XLA compiles assertions
    away, so inside a jit-compiled function this returns `images` unchecked
    (`ImageModel` then checks the dataset's batches instead).

    Args:
        images: A batch of images, a tensor.
        what: What the images are, e.g. "training images": the start of
            the error message.
    """
    if not _CHECK_BATCHES or _in_xla():
        return images
    values = tf.cast(images, "float32")
    in_range = tf.reduce_all(tf.logical_and(values >= 0.0, values <= 1.0))

    def fail():
        finite = tf.math.is_finite(values)
        low = tf.reduce_min(tf.where(finite, values, np.inf))
        high = tf.reduce_max(tf.where(finite, values, -np.inf))
        bad = tf.reduce_sum(tf.cast(tf.logical_not(finite), "int32"))
        message = tf.strings.format(
            what + " must be finite values in [0, 1]; this batch has min {} and max {} "
            "and {} NaN or infinite value(s). Scale 8-bit images by 1/255 and look for "
            "NaN in the input pipeline", (low, high, bad))
        with tf.control_dependencies([tf.debugging.Assert(False, [message])]):
            return tf.identity(images)

    return tf.cond(in_range, lambda: tf.identity(images), fail)


def short_repr(value):
    """A short repr for error messages: long arrays are described by their shape."""
    if isinstance(value, (list, tuple, np.ndarray, tf.Tensor)) and np.size(value) > 8:
        return f"an array of shape {np.shape(value)}"
    return repr(value)


def check_labels(labels, num_classes, count=None, name="labels"):
    """Returns `labels` as an int32 NumPy vector of classes in [0, num_classes).

    `validation.check_labels` with `None` refused, as a conditional model needs labels.

    Args:
        labels: Array-like of shape `(N,)` or `(N, 1)`.
        num_classes: Every label must be below it.
        count: Optional number of labels expected (one per image).
        name: Name used for `labels` in error messages.

    Raises:
        TypeError: labels are not numbers.
        ValueError: None, wrong shape, wrong count, non-integral or out of range.
    """
    if labels is None:
        raise ValueError(
            f"A conditional model needs class labels. Received: {name}=None")
    return validation.check_labels(labels, num_classes, count, name).astype("int32")
