"""Checks on what the models are given in the graph: every batch.

`check_batch` guards each training batch inside the compiled step, where the
Python checks of `keras_vae.validation` (run on arrays and on a dataset's
first batch, class labels included) cannot reach. `batch_checks(False)`
turns it off, to measure what it costs.
"""

import contextlib

import numpy as np
import tensorflow as tf
from tensorflow.python.ops import control_flow_util

_batch_checks_enabled = True
"""Whether steps traced now check every batch; set by `batch_checks` only."""


@contextlib.contextmanager
def batch_checks(enabled):
    """Turns the in-graph check of every batch (`check_batch`) on or off in a `with` block.

    The check is on by default; it costs one fused reduction per batch. The
    setting is read when a model's step is traced, at its first `fit`,
    `evaluate` or `predict`: a model that first trains inside
    `with batch_checks(False):` keeps training unchecked afterwards (its step
    is traced once), and one traced before the block keeps its check. (A
    jit-compiled model, whose dataset's batches are checked in the input
    pipeline instead, reads the setting at each `fit`.) The previous setting
    is restored on exit, also when the block raises. Made for measuring what
    the check costs (benchmarks/throughput.py); without it a batch of 0..255
    values or NaN trains silently.

    Args:
        enabled: True to check every batch, False not to.

    Example:

    ```python
    from keras_vae.models import checks
    vae = keras_vae.build_vae()
    vae.compile(optimizer="adam")
    with checks.batch_checks(False):
        vae.fit(dataset, epochs=1)  # traced, and then trained, unchecked
    ```
    """
    global _batch_checks_enabled
    if not isinstance(enabled, bool):
        raise TypeError(f"enabled must be True or False. Received: enabled={enabled!r}")
    previous, _batch_checks_enabled = _batch_checks_enabled, enabled
    try:
        yield enabled
    finally:
        _batch_checks_enabled = previous


def batch_checks_enabled():
    """Whether a step traced now checks every batch (see `batch_checks`)."""
    return _batch_checks_enabled


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
    (`ImageModel` then checks the dataset's batches instead); inside
    `batch_checks(False)` it returns them unchecked too.

    Args:
        images: A batch of images, a tensor.
        what: What the images are, e.g. "training images": the start of
            the error message.
    """
    if not _batch_checks_enabled or _in_xla():
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
