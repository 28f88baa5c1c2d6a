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

Log-probabilities are always computed in float32.
"""

import keras
import tensorflow as tf
import tensorflow_probability as tfp

from keras_vae.validation import check_number

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

    def log_prob(self, params, x):
        """Returns log p(x|z) per image, float32 `(N,)`, for images `x` in [0, 1]."""
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

    Reference:
        Loaiza-Ganem and Cunningham, "The continuous Bernoulli: fixing a
        pervasive error in variational autoencoders", 2019,
        https://arxiv.org/abs/1907.06845
    """

    def _pixel_distribution(self, params):
        # Logits are bounded so the normaliser stays accurate in float32.
        return tfd.ContinuousBernoulli(logits=tf.clip_by_value(params, -15.0, 15.0))


class _LearnedScale(Likelihood):
    """A location-scale likelihood: mean `sigmoid(params)`, a learned log-scale."""

    def __init__(self, per_pixel=False, min_scale=1e-3, **kwargs):
        super().__init__(**kwargs)
        self.per_pixel = bool(per_pixel)
        self.min_scale = check_number("min_scale", min_scale)
        if self.min_scale <= 0:
            raise ValueError(
                f"min_scale must be > 0. Received: min_scale={min_scale!r}")

    def build(self, input_shape):
        shape = tuple(input_shape[1:]) if self.per_pixel else (input_shape[-1],)
        self.log_scale = self.add_weight(
            shape=shape, initializer="zeros", name="log_scale", dtype="float32")

    def scale(self):
        """The current scale (float32), per channel or per pixel."""
        return self.min_scale + tf.exp(self.log_scale)

    def mean(self, params):
        return tf.sigmoid(tf.cast(params, "float32"))

    def get_config(self):
        return {**super().get_config(), "per_pixel": self.per_pixel,
                "min_scale": self.min_scale}


@keras.saving.register_keras_serializable(package="keras_vae")
class Gaussian(_LearnedScale):
    """Gaussian pixels: mean `sigmoid(params)`, a learned standard deviation.

    Args:
        per_pixel: False learns one scale per channel (a global variance);
            True learns one per pixel and channel.
        min_scale: Lower bound of the standard deviation, which keeps the
            density finite on pixels that never change (MNIST's border).
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

    Args:
        per_pixel: As for `Gaussian`.
        min_scale: Lower bound of the logistic's scale, in [0, 1] units.

    Reference:
        Salimans et al., "PixelCNN++", 2017, https://arxiv.org/abs/1701.05517
    """

    def _pixel_distribution(self, params):
        # On the 0..255 grid, QuantizedDistribution gives level k the mass of
        # (k - 1, k]; shifting the logistic by -0.5 makes that bin
        # (k - 0.5, k + 0.5] around the mean.
        logistic = tfd.Logistic(loc=255.0 * tf.sigmoid(params) - 0.5,
                                scale=255.0 * self.scale())
        return tfd.QuantizedDistribution(logistic, low=0.0, high=255.0)

    def log_prob(self, params, x):
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
        if "class_name" not in identifier:
            raise ValueError(
                f"likelihood config must be a Keras config dict with a 'class_name'. "
                f"Received: likelihood={identifier!r}")
        try:
            layer = keras.saving.deserialize_keras_object(identifier)
        except (TypeError, ValueError, KeyError) as error:
            raise ValueError(
                f"likelihood is not a valid Keras config ({error}). "
                f"Received: likelihood={identifier!r}") from error
        if not isinstance(layer, Likelihood):
            raise ValueError(
                f"likelihood config gives a {type(layer).__name__}, not a "
                f"keras_vae.likelihoods.Likelihood. Received: likelihood={identifier!r}")
        return layer
    raise TypeError(
        "likelihood must be a name, a keras_vae.likelihoods.Likelihood or its "
        f"Keras config dict. Received: likelihood={identifier!r}")


NAMES = tuple(_NAMES)
