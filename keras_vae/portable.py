"""Log-densities in plain TensorFlow ops, for graphs that leave TensorFlow (ONNX, LiteRT).

TensorFlow Probability's `log_prob` emits two ops that tf2onnx cannot
convert: `BroadcastArgs` (the shape logic of `tfd.MultivariateNormalDiag`)
and `MulNoNan` (`tfd.Bernoulli`). Inside `plain_ops()`, the library builds
its diagonal Gaussians (posteriors, the standard normal prior, p(z1|z2) of
the hierarchical model), its Gaussian mixtures (the mixture and VampPrior
priors) and its Bernoulli likelihood as the small classes below, whose
`log_prob` uses only elementwise ops, sums and a log-sum-exp. The models'
own maths (`log_weights`) runs unchanged on them; export's scorer
(`keras_vae.export.negative_elbo`) is computed this way in every format, so
the SavedModel, ONNX and LiteRT scorers are one implementation. The values
equal TensorFlow Probability's to float32 rounding (tests/test_portable.py).

Outside `plain_ops()` nothing changes: training and evaluation use
`tfd` distributions (analytic KL terms, sampling).

Example:

```python
with keras_vae.portable.plain_ops():
    log_w = vae.log_weights(x, 16, seed=0, shared_noise=True)  # convertible ops only
```
"""

import contextlib
import contextvars
import math

import tensorflow as tf

_PLAIN_OPS = contextvars.ContextVar("keras_vae_plain_ops", default=False)

HALF_LOG_TWO_PI = 0.5 * math.log(2.0 * math.pi)


@contextlib.contextmanager
def plain_ops():
    """Within the block, the library's distributions are the plain-op classes of this module.

    Trace a function inside it (call it inside the block, or enter the
    block inside the function) to get a graph free of TensorFlow
    Probability's ops.
    """
    token = _PLAIN_OPS.set(True)
    try:
        yield
    finally:
        _PLAIN_OPS.reset(token)


def active():
    """True inside `plain_ops()`."""
    return _PLAIN_OPS.get()


class DiagonalGaussian:
    """A batch of Gaussians with diagonal covariance over the last axis.

    Args:
        loc: Means, float32 `(..., dim)`.
        scale: Standard deviations, positive, the same shape.
    """

    def __init__(self, loc, scale):
        self.loc = tf.convert_to_tensor(loc, "float32")
        self.scale = tf.convert_to_tensor(scale, "float32")

    def mean(self):
        """Returns the means."""
        return self.loc

    def stddev(self):
        """Returns the standard deviations."""
        return self.scale

    def log_prob(self, x):
        """Returns `log N(x; loc, diag(scale^2))`, summed over the last axis.

        Args:
            x: Points, broadcastable against `loc`.
        """
        standardized = (tf.cast(x, "float32") - self.loc) / self.scale
        return (tf.reduce_sum(-0.5 * tf.square(standardized) - HALF_LOG_TWO_PI, axis=-1)
                - tf.reduce_sum(tf.math.log(self.scale), axis=-1))


class GaussianMixture:
    """A mixture of diagonal Gaussians: `p(z) = sum_k softmax(logits)_k N(z; loc_k, scale_k^2)`.

    Args:
        logits: Unnormalised log-weights of the components, `(K,)`.
        loc: The components' means, `(K, dim)`.
        scale: Their standard deviations, `(K, dim)`.
    """

    def __init__(self, logits, loc, scale):
        self.logits = tf.convert_to_tensor(logits, "float32")
        self.components = DiagonalGaussian(loc, scale)

    def log_prob(self, x):
        """Returns `log p(x)` for points `x` of shape `(..., dim)`: a log-sum-exp over components.

        Args:
            x: Points `(..., dim)`.
        """
        per_component = self.components.log_prob(tf.cast(x, "float32")[..., None, :])
        return tf.reduce_logsumexp(per_component + tf.nn.log_softmax(self.logits), axis=-1)


def bernoulli_log_prob(logits, x):
    """Returns the log-likelihood of images `x` under Bernoulli pixels with `logits`, per image.

    `sum (1 - x) log(1 - p) + x log p` over height, width and channels, with
    `log p = -softplus(-logits)` and `log(1 - p) = -softplus(logits)`:
    stable at any finite logit (`tfd.Bernoulli`'s formula, with a plain
    product where it uses `MulNoNan`).

    Args:
        logits: Decoder outputs `(N, height, width, channels)`.
        x: Images in [0, 1] of the same shape.
    """
    logits = tf.cast(logits, "float32")
    x = tf.cast(x, "float32")
    per_pixel = -tf.math.softplus(logits) * (1.0 - x) + -tf.math.softplus(-logits) * x
    return tf.reduce_sum(per_pixel, axis=[-3, -2, -1])
