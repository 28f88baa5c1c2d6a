"""Latent priors p(z), chosen by name: standard Gaussian, mixture of Gaussians, VampPrior.

A prior is a layer so its parameters (mixture means, pseudo-inputs) train
with the model and are saved with it. `distribution(encode)` returns the
`tfd` distribution; `encode` is the model's map from images to the
posterior's `(z_mean, z_log_var)`, which only the VampPrior uses.

The VAE computes `KL(q(z|x) || p(z))` analytically when TensorFlow
Probability knows it (the standard Gaussian) and otherwise by Monte Carlo,
`log q(z|x) - log p(z)` at the sampled code (see `kl_divergence`).
"""

import keras
import tensorflow as tf
import tensorflow_probability as tfp

from keras_vae import portable
from keras_vae.validation import check_int
from keras_vae.validation import deserialize_config

tfd = tfp.distributions


def has_analytic_kl(posterior, prior):
    """True if TensorFlow Probability registers an analytic KL for this pair.

    Args:
        posterior: q(z|x), a distribution over codes.
        prior: p(z), a distribution over codes.
    """
    try:
        tfd.kl_divergence(posterior, prior)
    except NotImplementedError:
        return False
    return True


def kl_divergence(posterior, prior, z):
    """Returns `KL(q || p)` per example: analytic if registered, else a 1-sample MC estimate.

    Args:
        posterior: q(z|x), a batch of distributions over codes.
        prior: p(z).
        z: Codes drawn from `posterior` with the reparameterization trick,
            used by the Monte Carlo estimate (unbiased, differentiable).
    """
    try:
        return tfd.kl_divergence(posterior, prior)
    except NotImplementedError:
        return posterior.log_prob(z) - prior.log_prob(z)


class Prior(keras.layers.Layer):
    """Base class: `distribution(encode)` returns p(z) over codes of size `latent_dim`.

    Inside `keras_vae.portable.plain_ops()` the built-in priors return the
    same density in plain ops (`keras_vae.portable`), for export.
    """

    def distribution(self, encode=None):
        raise NotImplementedError

    def call(self, z):
        """Returns log p(z) for codes `z` of shape `(N, latent_dim)`."""
        return self.distribution().log_prob(tf.cast(z, "float32"))


@keras.saving.register_keras_serializable(package="keras_vae")
class StandardNormal(Prior):
    """p(z) = N(0, I); its KL to a diagonal Gaussian posterior is analytic."""

    def __init__(self, latent_dim, **kwargs):
        super().__init__(**kwargs)
        self.latent_dim = check_int("latent_dim", latent_dim)
        self.built = True  # nothing to build: no weights

    def distribution(self, encode=None):
        if portable.active():
            return portable.DiagonalGaussian(tf.zeros([self.latent_dim]),
                                             tf.ones([self.latent_dim]))
        return tfd.MultivariateNormalDiag(loc=tf.zeros([self.latent_dim]))

    def get_config(self):
        return {**super().get_config(), "latent_dim": self.latent_dim}


@keras.saving.register_keras_serializable(package="keras_vae")
class MixtureOfGaussians(Prior):
    """A learned mixture of diagonal Gaussians, trained with the VAE.

    Means start spread out (standard normal draws, fixed by `seed`), scales
    at 1 and weights equal. The KL term is estimated by Monte Carlo.

    Args:
        latent_dim: Size of the codes.
        num_components: Number of mixture components.
        seed: Seed of the initial means.
    """

    def __init__(self, latent_dim, num_components=10, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.latent_dim = check_int("latent_dim", latent_dim)
        self.num_components = check_int("num_components", num_components)
        self.seed = seed
        self.means = self.add_weight(
            shape=(self.num_components, self.latent_dim),
            initializer=keras.initializers.RandomNormal(seed=seed),
            name="means", dtype="float32")
        self.log_scales = self.add_weight(
            shape=(self.num_components, self.latent_dim), initializer="zeros",
            name="log_scales", dtype="float32")
        self.logits = self.add_weight(
            shape=(self.num_components,), initializer="zeros", name="logits",
            dtype="float32")

    def distribution(self, encode=None):
        if portable.active():
            return portable.GaussianMixture(self.logits, self.means, tf.exp(self.log_scales))
        return tfd.MixtureSameFamily(
            mixture_distribution=tfd.Categorical(logits=self.logits),
            components_distribution=tfd.MultivariateNormalDiag(
                loc=self.means, scale_diag=tf.exp(self.log_scales)))

    def get_config(self):
        return {**super().get_config(), "latent_dim": self.latent_dim,
                "num_components": self.num_components, "seed": self.seed}


@keras.saving.register_keras_serializable(package="keras_vae")
class VampPrior(Prior):
    """The VampPrior: the mixture of the posteriors of learned pseudo-inputs.

    `p(z) = (1/K) sum_k q(z | u_k)`, where the pseudo-images `u_k` are
    weights (pixels `sigmoid(u)`, starting near grey) trained with the
    model. The KL term is estimated by Monte Carlo.

    Args:
        image_shape: `(height, width, channels)` of the pseudo-inputs.
        num_pseudo_inputs: K.
        seed: Seed of the pseudo-inputs' initial values.

    Reference:
        Tomczak and Welling, "VAE with a VampPrior", 2018,
        https://arxiv.org/abs/1705.07120
    """

    def __init__(self, image_shape, num_pseudo_inputs=100, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.image_shape = tuple(int(d) for d in image_shape)
        self.num_pseudo_inputs = check_int("num_pseudo_inputs", num_pseudo_inputs)
        self.seed = seed
        self.pseudo_inputs = self.add_weight(
            shape=(self.num_pseudo_inputs,) + self.image_shape,
            initializer=keras.initializers.RandomNormal(stddev=0.1, seed=seed),
            name="pseudo_inputs", dtype="float32")

    def distribution(self, encode=None):
        if encode is None:
            raise ValueError(
                "VampPrior.distribution needs the model's encoder. Received: "
                "encode=None; use model.prior() instead")
        z_mean, z_log_var = encode(tf.sigmoid(self.pseudo_inputs))
        if portable.active():
            return portable.GaussianMixture(tf.zeros([self.num_pseudo_inputs]), z_mean,
                                            tf.exp(0.5 * z_log_var))
        return tfd.MixtureSameFamily(
            mixture_distribution=tfd.Categorical(
                logits=tf.zeros([self.num_pseudo_inputs])),
            components_distribution=tfd.MultivariateNormalDiag(
                loc=z_mean, scale_diag=tf.exp(0.5 * z_log_var)))

    def call(self, z):
        raise ValueError(
            "A VampPrior's density depends on the encoder. Received: a direct "
            "call; use model.prior().log_prob(z)")

    def get_config(self):
        return {**super().get_config(), "image_shape": self.image_shape,
                "num_pseudo_inputs": self.num_pseudo_inputs, "seed": self.seed}


NAMES = ("normal", "mixture", "vamp")


def get(identifier, latent_dim=None, image_shape=None, seed=None):
    """Returns a prior layer from a name, a `Prior` or its Keras config.

    Args:
        identifier: A name in `NAMES` (a new layer, built from the other
            arguments), a `Prior` instance (returned as is), or the dict
            `keras.saving.serialize_keras_object` gives for one (deserialized).
        latent_dim: Size of the codes, for `"normal"` and `"mixture"`.
        image_shape: `(height, width, channels)`, for `"vamp"`.
        seed: Seed of a new prior's initial parameters.

    Raises:
        TypeError: `identifier` is none of these types.
        ValueError: an unknown name, or a dict that is not a prior's config.
    """
    if isinstance(identifier, Prior):
        return identifier
    if isinstance(identifier, str):
        if identifier == "normal":
            return StandardNormal(latent_dim, name="prior")
        if identifier == "mixture":
            return MixtureOfGaussians(latent_dim, seed=seed, name="prior")
        if identifier == "vamp":
            if image_shape is None:
                raise ValueError("prior='vamp' needs image_shape. Received: image_shape=None")
            return VampPrior(image_shape, seed=seed, name="prior")
        raise ValueError(
            f"prior must be one of {list(NAMES)} (or a Prior, or its config). "
            f"Received: prior={identifier!r}")
    if isinstance(identifier, dict):
        return deserialize_config("prior", identifier, Prior)
    raise TypeError(
        "prior must be a name, a keras_vae.priors.Prior or its Keras config "
        f"dict. Received: prior={identifier!r}")
