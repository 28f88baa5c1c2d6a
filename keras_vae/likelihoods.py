"""Pixel likelihoods p(x|z), chosen by name: each turns decoder outputs into a `tfd` distribution.

A decoder emits one unnormalised value per pixel and channel. A likelihood
layer maps those values to a distribution over whole images (an
`tfd.Independent` over height, width and channels) and to the image shown
to users (its mean). Learned scales live in the likelihood layer as weights,
so they train with the model and are saved with it.

| name | data | decoder output | learned weights |
| --- | --- | --- | --- |
| `"bernoulli"` | binary (or binarized) pixels | logits | none |
| `"continuous_bernoulli"` | grey levels in [0, 1] | logits | none |
| `"gaussian"` | grey levels | mean (through a sigmoid) | one log-scale per channel |
| `"gaussian_pixel"` | grey levels | mean (through a sigmoid) | one log-scale per pixel |
| `"discretized_logistic"` | 8-bit images (k/255) | mean (through a sigmoid) | one log-scale per channel |

Log-probabilities are always computed in float32. A layer's `discrete`
attribute says whether its log-probabilities are those of a probability
mass (Bernoulli, discretized logistic) or of a density; only a mass gives
bits per dimension comparable with the literature (see
`keras_vae.evaluation.bits_per_dim_note`).
"""

import keras
import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

from keras_vae import portable
from keras_vae.validation import check_number
from keras_vae.validation import deserialize_config

tfd = tfp.distributions


class Likelihood(keras.layers.Layer):
    """Base class: `distribution(params)` is p(x|z) for decoder outputs `params`.

    Subclasses implement `_pixel_distribution(params)`, a distribution whose
    batch shape is the image batch `(N, height, width, channels)`; this base
    class reinterprets the three image axes as one event. Override `mean` if
    the image to show is not the distribution's mean, and `log_prob` if the
    distribution is not over pixel values in [0, 1].

    Call arguments:
        params: Decoder outputs `(N, height, width, channels)`.

    Returns:
        The mean image, float32 in [0, 1] (`call` is `mean`).
    """

    discrete = False
    """True if `log_prob` is the log of a probability mass (on `in_support` data)."""

    def in_support(self, x):
        """True if images `x` are values this likelihood assigns probability to."""
        x = np.asarray(x)
        return bool(np.all((x >= 0) & (x <= 1)))

    def log_prob(self, params, x):
        """Returns log p(x|z) per image, float32 `(N,)`, for images `x` in [0, 1].

        Args:
            params: Decoder outputs `(N, height, width, channels)`.
            x: Images in [0, 1] of the same shape.
        """
        return self.distribution(params).log_prob(tf.cast(x, "float32"))

    def distribution(self, params):
        """Returns p(x|z) as a distribution over images (event rank 3).

        Its support is the likelihood's own data representation; use
        `log_prob`, which maps images in [0, 1] to it (the discretized
        logistic's levels are 0..255).
        """
        return tfd.Independent(
            self._pixel_distribution(tf.cast(params, "float32")),
            reinterpreted_batch_ndims=3)

    def mean(self, params):
        """Returns the image a decoder output stands for: the distribution's mean."""
        return self._pixel_distribution(tf.cast(params, "float32")).mean()

    def call(self, params):
        return self.mean(params)

    def _pixel_distribution(self, params):
        raise NotImplementedError


@keras.saving.register_keras_serializable(package="keras_vae")
class Bernoulli(Likelihood):
    """Independent Bernoulli pixels on logits: for binary or binarized images.

    The negative log-likelihood is the binary cross-entropy summed over
    pixels. On grey-level data it is not a normalised density (see
    `ContinuousBernoulli`), which is why MNIST is binarized for it.
    """

    discrete = True

    def in_support(self, x):
        x = np.asarray(x)
        return bool(np.all((x == 0) | (x == 1)))

    def log_prob(self, params, x):
        """Returns log p(x|z) per image, float32 `(N,)` (in plain ops inside `plain_ops()`).

        Args:
            params: Decoder outputs (logits) `(N, height, width, channels)`.
            x: Images in [0, 1] of the same shape.
        """
        if portable.active():
            return portable.bernoulli_log_prob(params, x)
        return super().log_prob(params, x)

    def _pixel_distribution(self, params):
        return tfd.Bernoulli(logits=params, dtype=tf.float32)

    def mean(self, params):
        return tf.sigmoid(tf.cast(params, "float32"))


@keras.saving.register_keras_serializable(package="keras_vae")
class ContinuousBernoulli(Likelihood):
    """The continuous Bernoulli on logits: a proper density for pixels in [0, 1].

    It adds the normaliser the Bernoulli lacks on grey levels; its mean is
    not the sigmoid of the logits (it is pulled towards 0.5), and `mean`
    returns the true mean.

    The logits are softly bounded to (-15, 15) by `15 * softsign(l / 15)`:
    the identity near 0, and a gradient `1 / (1 + |l| / 15)^2` that stays
    positive, so a decoder output far beyond the bound is still pulled
    back. The bound caps the density at about 15 per pixel, so a model
    cannot gain without limit by pushing the exact 0 and 1 pixels of MNIST
    to infinite logits. (TFP's normaliser is accurate in float32 at any
    logit; the bound is not needed for accuracy.)

    Reference:
        Loaiza-Ganem and Cunningham, "The continuous Bernoulli: fixing a
        pervasive error in variational autoencoders", 2019,
        https://arxiv.org/abs/1907.06845
    """

    logit_bound = 15.0

    def _pixel_distribution(self, params):
        bound = self.logit_bound
        return tfd.ContinuousBernoulli(logits=bound * tf.nn.softsign(params / bound))


class _LearnedScale(Likelihood):
    """A location-scale likelihood: mean `sigmoid(params)`, a learned log-scale.

    The scale is `min_scale + exp(log_scale)`. `log_scale` starts at 0 (a
    scale of `1 + min_scale`) unless `initial_scale` is given. Adam moves
    `log_scale` by about its learning rate per step, so from a scale of 1
    down to 0.02 takes some 4,000 steps at 1e-3; a short run starts better
    near the scale it will reach.
    """

    def __init__(self, per_pixel=False, min_scale=1e-3, initial_scale=None, **kwargs):
        super().__init__(**kwargs)
        self.per_pixel = bool(per_pixel)
        self.min_scale = check_number("min_scale", min_scale)
        if self.min_scale <= 0:
            raise ValueError(
                f"min_scale must be > 0. Received: min_scale={min_scale!r}")
        if initial_scale is not None:
            initial_scale = check_number("initial_scale", initial_scale)
            if not initial_scale > self.min_scale:
                raise ValueError(
                    f"initial_scale must be greater than min_scale={self.min_scale!r}. "
                    f"Received: initial_scale={initial_scale!r}")
        self.initial_scale = initial_scale

    def build(self, input_shape):
        shape = tuple(input_shape[1:]) if self.per_pixel else (input_shape[-1],)
        start = 0.0 if self.initial_scale is None else np.log(self.initial_scale - self.min_scale)
        self.log_scale = self.add_weight(
            shape=shape, initializer=keras.initializers.Constant(start), name="log_scale",
            dtype="float32")

    def scale(self):
        """The current scale (float32), per channel or per pixel."""
        return self.min_scale + tf.exp(self.log_scale)

    def mean(self, params):
        return tf.sigmoid(tf.cast(params, "float32"))

    def get_config(self):
        return {**super().get_config(), "per_pixel": self.per_pixel,
                "min_scale": self.min_scale, "initial_scale": self.initial_scale}


@keras.saving.register_keras_serializable(package="keras_vae")
class Gaussian(_LearnedScale):
    """Gaussian pixels: mean `sigmoid(params)`, a learned standard deviation.

    Args:
        per_pixel: False learns one scale per channel (a global variance);
            True learns one per pixel and channel.
        min_scale: Lower bound of the standard deviation, which keeps the
            density finite on pixels that never change (MNIST's border).
        initial_scale: The standard deviation training starts from (greater
            than `min_scale`); None starts from `1 + min_scale`.
    """

    def _pixel_distribution(self, params):
        return tfd.Normal(loc=tf.sigmoid(params), scale=self.scale())


@keras.saving.register_keras_serializable(package="keras_vae")
class DiscretizedLogistic(_LearnedScale):
    """A logistic discretized to the 256 levels of 8-bit images (x = k / 255).

    Each pixel gets the logistic's probability mass of its bin, with the
    first and last bins open-ended, so log-probabilities are those of
    discrete data and bits per dimension are comparable with the
    literature on 8-bit images. Images are rounded to the nearest level.

    The scale's lower bound is 1e-4 (0.0255 levels): a confident model
    puts all but `2 * sigmoid(-19.6)` (about 6e-9) of a pixel's mass on
    its level, so the negative log-likelihood of a perfect model goes to
    0 nats, as for any discrete distribution. (A bound of 1e-3, with the
    sigmoid-bounded mean, kept at least 0.13 nats on each pixel at 0 or
    1: a floor of about 125 nats per MNIST image under any model.)

    Args:
        per_pixel: As for `Gaussian`.
        min_scale: Lower bound of the logistic's scale, in [0, 1] units.
        initial_scale: The scale training starts from, in [0, 1] units
            (greater than `min_scale`); None starts from `1 + min_scale`,
            which spreads each pixel over all 256 levels and takes thousands
            of steps to shrink (0.05, about 13 levels, suits a short run).

    Reference:
        Salimans et al., "PixelCNN++", 2017, https://arxiv.org/abs/1701.05517
    """

    discrete = True

    def __init__(self, per_pixel=False, min_scale=1e-4, initial_scale=None, **kwargs):
        super().__init__(per_pixel=per_pixel, min_scale=min_scale, initial_scale=initial_scale,
                         **kwargs)

    def in_support(self, x):
        levels = 255.0 * np.asarray(x, dtype="float64")
        return super().in_support(x) and bool(np.all(np.abs(levels - np.round(levels)) < 1e-3))

    def _pixel_distribution(self, params):
        # On the 0..255 grid, QuantizedDistribution gives level k the mass of
        # (k - 1, k]; shifting the logistic by -0.5 makes that bin
        # (k - 0.5, k + 0.5] around the mean.
        logistic = tfd.Logistic(loc=255.0 * tf.sigmoid(params) - 0.5,
                                scale=255.0 * self.scale())
        return tfd.QuantizedDistribution(logistic, low=0.0, high=255.0)

    def log_prob(self, params, x):
        """Returns log p(x|z) per image, float32 `(N,)`: the mass of `x`'s 8-bit levels.

        Args:
            params: Decoder outputs `(N, height, width, channels)`.
            x: Images in [0, 1] of the same shape, rounded to the nearest
                level `k / 255`.
        """
        return self.distribution(params).log_prob(tf.round(255.0 * tf.cast(x, "float32")))


_NAMES = {
    "bernoulli": lambda: Bernoulli(name="bernoulli"),
    "continuous_bernoulli": lambda: ContinuousBernoulli(name="continuous_bernoulli"),
    "gaussian": lambda: Gaussian(name="gaussian"),
    "gaussian_pixel": lambda: Gaussian(per_pixel=True, name="gaussian_pixel"),
    "discretized_logistic": lambda: DiscretizedLogistic(name="discretized_logistic"),
}


def get(identifier):
    """Returns a likelihood layer from a name, a `Likelihood` or its Keras config.

    Args:
        identifier: A name in `NAMES` (a new layer), a `Likelihood` instance
            (returned as is), or the dict `keras.saving.serialize_keras_object`
            gives for one (deserialized).

    Raises:
        TypeError: `identifier` is none of these types.
        ValueError: an unknown name, or a dict that is not a likelihood's config.
    """
    if isinstance(identifier, Likelihood):
        return identifier
    if isinstance(identifier, str):
        if identifier in _NAMES:
            return _NAMES[identifier]()
        raise ValueError(
            f"likelihood must be one of {list(_NAMES)} (or a Likelihood, or its config). "
            f"Received: likelihood={identifier!r}")
    if isinstance(identifier, dict):
        return deserialize_config("likelihood", identifier, Likelihood)
    raise TypeError(
        "likelihood must be a name, a keras_vae.likelihoods.Likelihood or its "
        f"Keras config dict. Received: likelihood={identifier!r}")


NAMES = tuple(_NAMES)
