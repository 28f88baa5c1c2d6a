"""A VAE with two stochastic layers: Burda et al.'s bottom-up two-layer model.

The file is over 300 lines because the model's five distributions, its
loss, its importance weights, its training steps and their documentation
belong to the one class; the small network builder beside it (`build_gaussian_mlp`)
is only used by this model.
"""

import math

import keras
import tensorflow as tf
import tensorflow_probability as tfp
from keras import ops

from keras_vae import likelihoods
from keras_vae import networks
from keras_vae import priors
from keras_vae.layers import Sampling
from keras_vae.models import base
from keras_vae.models.base import ImageModel
from keras_vae.models.checks import short_repr
from keras_vae.models.vae import LOG_VAR_BOUND
from keras_vae.models.vae import VAE
from keras_vae.models.vae import gaussian
from keras_vae.validation import check_int
from keras_vae.validation import check_number

tfd = tfp.distributions


def _two_outputs(model, arg_name, input_dim):
    """Checks `model` maps `(batch, input_dim)` to two `(batch, d)`; returns `d`."""
    if not isinstance(model, keras.Model):
        raise TypeError(f"{arg_name} must be a keras.Model. Received: {arg_name}={model!r}")
    if tuple(model.input_shape[1:]) != (input_dim,):
        raise ValueError(
            f"{arg_name} must take codes of shape (batch, {input_dim}). Received: "
            f"{arg_name} input shape {model.input_shape}")
    outputs = model.output_shape
    if not (isinstance(outputs, (list, tuple)) and len(outputs) == 2
            and isinstance(outputs[0], (list, tuple))
            and tuple(outputs[0]) == tuple(outputs[1]) and len(outputs[0]) == 2):
        raise ValueError(
            f"{arg_name} must output [mean, log_var], each (batch, dim). Received: "
            f"{arg_name} output shape {outputs}")
    return outputs[0][1]


@keras.saving.register_keras_serializable(package="keras_vae")
class HierarchicalVAE(ImageModel):
    """A VAE with two stochastic layers, `x -> z1 -> z2` (Burda et al.'s two-layer model).

    The generative model is `p(z2) p(z1|z2) p(x|z1)` and the inference model
    is bottom-up, `q(z1|x) q(z2|z1)`, each conditional a diagonal Gaussian
    given by a network (Burda, Grosse and Salakhutdinov 2015, section 5: the
    model their IWAE results use). Bottom-up rather than the ladder VAE's
    top-down inference (Sonderby et al. 2016) because every term of the
    bound is then a density of a sample drawn in order, which makes the
    importance weights (`log_weights`) direct and the model small; a ladder
    VAE trains deeper hierarchies better, which two layers do not need.

    The loss is the negative ELBO with single samples `z1 ~ q(z1|x)`,
    `z2 ~ q(z2|z1)` (reparameterized, `keras_vae.Sampling`):
    `-log p(x|z1) + beta * ([log q(z1|x) - log p(z1|z2)] + [log q(z2|z1) - log p(z2)])`,
    both KL terms Monte Carlo estimates. `fit` reports `loss`,
    `reconstruction_loss`, `kl_loss` (the two terms summed) and each term,
    `kl_z1_loss` and `kl_z2_loss`. With `importance_samples = k > 1` the
    loss is the IWAE bound, `-log (1/k) sum_k w_k` per image with
    `log w = log p(x|z1) - beta * (KL terms at that sample)` (the bound at
    `beta = 1`; `beta` below 1 during a KL warm-up weighs the prior less in
    each weight), and the other metrics are averages over the `k` samples.

    The top prior `p(z2)` is any of `keras_vae.priors`. A VampPrior's
    components are `q(z2 | z1 = mean of q(z1|u))` for its pseudo-inputs `u`
    (the mean path through the two encoders).

    The uniform interface (see `keras_vae.models.base`) speaks of the TOP
    layer: `latent_dim` is the size of `z2`; `encode(x)` returns
    `q(z2|z1)`'s mean and log-variance at `z1` = the mean of `q(z1|x)`;
    `decode(z2)` decodes the mean of `p(z1|z2)`; `reconstruct(x)` is
    `decode(latent_codes(x))`; `sample(n, seed=)` decodes draws of `p(z2)`.
    `bottom_latent_dim` is the size of `z1`.

    Args:
        encoder: A model from images to `[z1_mean, z1_log_var]`, each
            `(batch, bottom_latent_dim)`; see `keras_vae.networks.build_encoder`.
        decoder: A model from `z1` to per-pixel likelihood parameters of the
            image shape; see `keras_vae.networks.build_decoder`.
        top_encoder: A model from `z1` to `[z2_mean, z2_log_var]`, q(z2|z1);
            see `build_gaussian_mlp`.
        top_decoder: A model from `z2` to `[z1_mean, z1_log_var]`, p(z1|z2).
        beta: Weight of the KL terms (1.0 gives the ELBO).
        likelihood: p(x|z1): a name from `keras_vae.likelihoods.NAMES` or a
            `keras_vae.likelihoods.Likelihood` layer.
        prior: p(z2): a name from `keras_vae.priors.NAMES` or a
            `keras_vae.priors.Prior` layer.
        importance_samples: k, samples per image of the training objective
            (1: the ELBO; more: the IWAE bound).
        seed: Optional int seeding the sampling noise (and a named prior's
            initial parameters).
        **kwargs: Standard `keras.Model` arguments (`name`...).

    Call arguments:
        inputs: Images in [0, 1] (checked as `predict` checks them).
        training: If True `z1` and `z2` are sampled; otherwise the means
            are used (the output is `reconstruct`'s).

    Returns:
        Decoded images (the likelihood's mean, in [0, 1]), same shape as inputs.

    Example:

    ```python
    import keras, keras_vae
    (x_train, _), (x_test, _) = keras_vae.datasets.load("mnist")
    x_train, x_test = (keras_vae.datasets.binarize(x, seed=0) for x in (x_train, x_test))
    hvae = keras_vae.build_hierarchical_vae(latent_dim=32, bottom_latent_dim=64)
    hvae.compile(optimizer=keras.optimizers.Adam(1e-3))
    hvae.fit(x_train, epochs=5, batch_size=128)
    bounds = keras_vae.evaluation.log_likelihood(hvae, x_test[:100], num_samples=100)
    ```

    Reference:
        Burda, Grosse and Salakhutdinov, "Importance Weighted Autoencoders",
        2015, https://arxiv.org/abs/1509.00519 (the two-layer architecture);
        Sonderby et al., "Ladder Variational Autoencoders", 2016,
        https://arxiv.org/abs/1602.02282 (the top-down alternative).
    """

    capabilities = frozenset({base.ENCODER, base.POSTERIOR, base.LIKELIHOOD, base.LOSSES})
    loss_terms = ("loss", "reconstruction_loss", "kl_loss", "kl_z1_loss", "kl_z2_loss")

    def __init__(self, encoder, decoder, top_encoder, top_decoder, beta=1.0,
                 likelihood="bernoulli", prior="normal", importance_samples=1, seed=None,
                 **kwargs):
        super().__init__(**kwargs)
        for arg_name, model in (("encoder", encoder), ("decoder", decoder)):
            if not isinstance(model, keras.Model):
                raise TypeError(
                    f"{arg_name} must be a keras.Model. Received: {arg_name}={model!r}")
        image_shape, bottom_latent_dim = VAE._check_networks(encoder, decoder)
        latent_dim = _two_outputs(top_encoder, "top_encoder", bottom_latent_dim)
        if _two_outputs(top_decoder, "top_decoder", latent_dim) != bottom_latent_dim:
            raise ValueError(
                f"top_decoder must output [z1_mean, z1_log_var] of size {bottom_latent_dim}, "
                f"the encoder's. Received: top_decoder output shape {top_decoder.output_shape}")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
            raise TypeError(f"seed must be an int or None. Received: seed={seed!r}")
        self.encoder, self.decoder = encoder, decoder
        self.top_encoder, self.top_decoder = top_encoder, top_decoder
        self.image_shape = image_shape
        self.latent_dim = latent_dim
        self.bottom_latent_dim = bottom_latent_dim
        self.importance_samples = check_int("importance_samples", importance_samples)
        self.seed = seed
        self.likelihood_layer = likelihoods.get(likelihood)
        if not self.likelihood_layer.built:  # a deserialized one is built already
            self.likelihood_layer.build((None,) + image_shape)
        self.prior_layer = priors.get(prior, latent_dim, image_shape, seed=seed)
        # Two generators with their own seeds: the same seed would give z1 and
        # z2 the same noise. (seed + 1 is the prior's draws, see _init_sampling.)
        self.sampler = Sampling(seed=seed, name="sampling", dtype="float32")
        self.top_sampler = Sampling(seed=None if seed is None else seed + 2,
                                    name="top_sampling", dtype="float32")
        self.sampler.build([(None, bottom_latent_dim)] * 2)  # see VAE.__init__
        self.top_sampler.build([(None, latent_dim)] * 2)
        self._init_sampling(seed)
        self.beta = self.add_weight(shape=(), initializer=keras.initializers.Constant(
            check_number("beta", beta)), trainable=False, name="beta")
        self._init_loss_trackers()
        self.built = True

    # ----------------------------------------------------------------- maths

    @staticmethod
    def _params(network, inputs, training):
        mean, log_var = network(inputs, training=training)
        log_var = tf.cast(log_var, "float32")
        return tf.cast(mean, "float32"), LOG_VAR_BOUND * tf.tanh(log_var / LOG_VAR_BOUND)

    def bottom_posterior(self, x, training=False):
        """Returns q(z1|x) as a `tfd.MultivariateNormalDiag` (float32).

        Args:
            x: Images in [0, 1], `(N, *image_shape)`.
            training: Keras's `training` flag, passed to the encoder.
        """
        return gaussian(*self._params(self.encoder, tf.cast(x, "float32"), training))

    def top_posterior(self, z1, training=False):
        """Returns q(z2|z1) as a `tfd.MultivariateNormalDiag` (float32).

        Args:
            z1: Bottom codes `(N, bottom_latent_dim)`.
            training: Keras's `training` flag, passed to the top encoder.
        """
        return gaussian(*self._params(self.top_encoder, z1, training))

    def bottom_prior(self, z2, training=False):
        """Returns p(z1|z2) as a `tfd.MultivariateNormalDiag` (float32).

        Args:
            z2: Top codes `(N, latent_dim)`.
            training: Keras's `training` flag, passed to the top decoder.
        """
        return gaussian(*self._params(self.top_decoder, z2, training))

    def prior(self):
        """Returns p(z2), the top prior, as a `tfd` distribution over codes (float32)."""
        return self.prior_layer.distribution(self.encode_tensor)

    def likelihood(self, params):
        """Returns p(x|z1) for decoder outputs `params` (see `keras_vae.likelihoods`)."""
        return self.likelihood_layer.distribution(params)

    def conditional_log_prob(self, z1, x, training=False):
        """Returns log p(x|z1) per image, float32 `(N,)`.

        Args:
            z1: Bottom codes `(N, bottom_latent_dim)`.
            x: Images in [0, 1], `(N, *image_shape)`.
            training: Keras's `training` flag, passed to the decoder.
        """
        return self.likelihood_layer.log_prob(self.decoder(z1, training=training), x)

    def encode_tensor(self, x, condition=None, training=False):
        """The top codes: q(z2|z1)'s mean and log-variance at z1 = the mean of q(z1|x).

        What `encode`, `latent_codes`, `reconstruct` and export's encoder give,
        and what `decode_tensor` takes (see `ImageModel.encode_tensor`).

        Args:
            x: A batch of images in [0, 1], a float tensor.
            condition: Must be None (the model is unconditional).
            training: Keras's `training` flag, passed to the encoder.
        """
        self._check_condition(condition)
        z1_mean, _ = self._params(self.encoder, tf.cast(x, "float32"), training)
        return self._params(self.top_encoder, z1_mean, training)

    def _log_weight_terms(self, x, z1, z2, bottom, training):
        """`(log p(x|z1), log q(z1|x) - log p(z1|z2), log q(z2|z1) - log p(z2))`, each `(N,)`."""
        top = self.top_posterior(z1, training)
        log_px = self.conditional_log_prob(z1, x, training)
        kl_z1 = bottom.log_prob(z1) - self.bottom_prior(z2, training).log_prob(z1)
        kl_z2 = top.log_prob(z2) - self.prior().log_prob(z2)
        return log_px, kl_z1, kl_z2

    def compute_vae_losses(self, x, training=False, condition=None, num_samples=1):
        """Returns per-sample `(reconstruction_loss, kl_loss)`, or their `[k, batch]` pairs.

        One draw `z1 ~ q(z1|x)`, `z2 ~ q(z2|z1)` per image (per sample) with
        the reparameterization trick: `reconstruction_loss = -log p(x|z1)`,
        `kl_loss = [log q(z1|x) - log p(z1|z2)] + [log q(z2|z1) - log p(z2)]`.
        With the default `num_samples=1` both are `(batch,)`, as `VAE`'s
        (which `keras_vae.distribute` relies on); see `compute_hvae_losses`
        for the two KL terms apart.

        Args:
            x: A batch of images in [0, 1], `(batch, *image_shape)`.
            training: Keras's `training` flag, passed to the networks.
            condition: Must be None (the model is unconditional).
            num_samples: Draws per image; above 1 the results are `(k, batch)`.
        """
        reconstruction, kl_z1, kl_z2 = self.compute_hvae_losses(
            x, training, condition, num_samples)
        if num_samples == 1:
            return reconstruction[0], kl_z1[0] + kl_z2[0]
        return reconstruction, kl_z1 + kl_z2

    def compute_hvae_losses(self, x, training=False, condition=None, num_samples=1):
        """Returns `(-log p(x|z1), KL term of z1, KL term of z2)`, each float32 `(k, batch)`.

        The KL terms are the single-sample estimates
        `log q(z1|x) - log p(z1|z2)` and `log q(z2|z1) - log p(z2)` at the
        reparameterized draws (`k = num_samples` per image).

        Args:
            x: A batch of images in [0, 1], `(batch, *image_shape)`.
            training: Keras's `training` flag, passed to the networks.
            condition: Must be None (the model is unconditional).
            num_samples: k, draws per image.
        """
        self._check_condition(condition)
        x = tf.cast(x, "float32")
        z1_mean, z1_log_var = self._params(self.encoder, x, training)
        batch = tf.shape(x)[0]
        if num_samples > 1:
            x, z1_mean, z1_log_var = (base.repeat_batch(t, num_samples)
                                      for t in (x, z1_mean, z1_log_var))
        z1 = self.sampler([z1_mean, z1_log_var])
        z2 = self.top_sampler(list(self._params(self.top_encoder, z1, training)))
        terms = self._log_weight_terms(x, z1, z2, gaussian(z1_mean, z1_log_var), training)
        log_px, kl_z1, kl_z2 = (tf.reshape(t, [num_samples, batch]) for t in terms)
        return -log_px, kl_z1, kl_z2

    def log_weights(self, x, num_samples, seed=None, condition=None, shared_noise=False):
        """Returns log importance weights `log p(x, z1, z2) - log q(z1, z2 | x)`, `[K, batch]`.

        For each image `K = num_samples` draws `z1 ~ q(z1|x)`,
        `z2 ~ q(z2|z1)` give `log p(x|z1) + log p(z1|z2) + log p(z2) -
        log q(z1|x) - log q(z2|z1)`: their log-mean-exp is the IWAE bound
        on `log p(x)` and their mean an estimate of the ELBO (what
        `keras_vae.evaluation.log_likelihood` reduces). The draws are
        stateless, a function of `seed` alone: with
        `s1, s2 = tf.random.experimental.stateless_split(seed, 2)`,
        `z1 = mean1 + exp(log_var1 / 2) * stateless_normal([K, batch, z1 size], s1)`
        and `z2` likewise from `q(z2|z1)` with `s2` (with `shared_noise`, the
        normal draws are `[K, 1, size]`, the same for every image). Usable
        inside `tf.function`.

        Args:
            x: A batch of images in [0, 1], `(batch, *image_shape)`.
            num_samples: S, codes per image (an int, or an int32 scalar tensor).
            seed: The stateless seed of the codes: an int, an int32 pair, or
                None for a pair from the model's seed generator.
            condition: Must be None (the model is unconditional).
            shared_noise: If True, every image uses the same standard normal
                draws (a function of `seed` and `S`): export's scorer.

        Returns:
            A float32 tensor `[num_samples, batch]`.
        """
        self._check_condition(condition)
        if not tf.is_tensor(num_samples):
            check_int("num_samples", num_samples)
        x = tf.cast(x, "float32")
        seeds = base.split_seed(self._seed(seed), 2)
        bottom = self.bottom_posterior(x)
        batch = tf.shape(x)[0]

        def noise(size, seed):
            if shared_noise:  # [K, 1, size], broadcast over the batch
                eps = base.standard_normal([num_samples, 1, size], seed)
                return eps + tf.zeros([num_samples, batch, size])
            return tf.random.stateless_normal([num_samples, batch, size], seed=seed)

        z1 = bottom.mean() + bottom.stddev() * noise(self.bottom_latent_dim, seeds[0])
        flat_z1 = tf.reshape(z1, [-1, self.bottom_latent_dim])
        z2_mean, z2_log_var = self._params(self.top_encoder, flat_z1, False)
        z2 = z2_mean + tf.exp(0.5 * z2_log_var) * tf.reshape(
            noise(self.latent_dim, seeds[1]), [-1, self.latent_dim])
        log_px = tf.reshape(self.conditional_log_prob(flat_z1, base.repeat_batch(x, num_samples)),
                            [num_samples, batch])
        log_q1 = bottom.log_prob(z1)
        log_p1 = tf.reshape(self.bottom_prior(z2).log_prob(flat_z1), [num_samples, batch])
        log_q2 = gaussian(z2_mean, z2_log_var).log_prob(z2)
        log_p2 = self.prior().log_prob(z2)
        return log_px + log_p1 - log_q1 + tf.reshape(log_p2 - log_q2, [num_samples, batch])

    def _check_condition(self, condition):
        if condition is not None:
            raise ValueError(
                "HierarchicalVAE is unconditional and takes no condition. Received: "
                f"condition={short_repr(condition)}")

    # -------------------------------------------------------------- training

    def _loss_per_image(self, reconstruction, kl_z1, kl_z2):
        """`-log mean_k w_k` per image, `(batch,)`; with k = 1, the negative ELBO."""
        negative = reconstruction + self.beta * (kl_z1 + kl_z2)
        if self.importance_samples == 1:
            return negative[0]
        return math.log(self.importance_samples) - tf.reduce_logsumexp(-negative, axis=0)

    def compute_losses(self, x, training=False, condition=None):
        """Returns the training objective per image and its terms (the model contract).

        `loss` is what `fit` minimises the batch mean of (the negative ELBO,
        or with `importance_samples` k > 1 the negative IWAE bound);
        `reconstruction_loss`, `kl_z1_loss`, `kl_z2_loss` (the two KL terms
        of `compute_hvae_losses`) and `kl_loss` (their sum) are averages
        over the k draws. A dict of float32 `(batch,)` tensors.

        Args:
            x: A batch of images in [0, 1], `(batch, *image_shape)`.
            training: Keras's `training` flag, passed to the networks.
            condition: Must be None (the model is unconditional).
        """
        terms = self.compute_hvae_losses(x, training, condition, self.importance_samples)
        reconstruction, kl_z1, kl_z2 = (tf.reduce_mean(t, axis=0) for t in terms)
        return {"loss": self._loss_per_image(*terms), "reconstruction_loss": reconstruction,
                "kl_loss": kl_z1 + kl_z2, "kl_z1_loss": kl_z1, "kl_z2_loss": kl_z2}

    def call(self, inputs, training=False):
        x = tf.cast(self._checked_call_images(inputs), "float32")
        if not training:
            return self.decode_tensor(self.encode_tensor(x)[0])
        z1 = self.sampler(list(self._params(self.encoder, x, True)))
        z2 = self.top_sampler(list(self._params(self.top_encoder, z1, True)))
        return self.decode_tensor(z2, training=True)

    def decode_tensor(self, z, condition=None, training=False):
        """Images from top codes `z`: the likelihood's mean at the mean of p(z1|z2).

        Args:
            z: Top codes z2, a float tensor `(N, latent_dim)`.
            condition: Must be None (the model is unconditional).
            training: Keras's `training` flag, passed to the decoder.
        """
        self._check_condition(condition)
        z1_mean, _ = self._params(self.top_decoder, tf.cast(z, "float32"), training)
        return self.likelihood_layer.mean(self.decoder(z1_mean, training=training))

    # ------------------------------------------------------------ public API
    # encode, latent_codes, decode, reconstruct and sample: see ImageModel.

    # ------------------------------------------------------------- saving

    def _constructor_arguments(self):
        return {
            "encoder": self.encoder,
            "decoder": self.decoder,
            "top_encoder": self.top_encoder,
            "top_decoder": self.top_decoder,
            "beta": float(ops.convert_to_numpy(self.beta)),
            "likelihood": self.likelihood_layer,
            "prior": self.prior_layer,
            "importance_samples": self.importance_samples,
            "seed": self.seed,
        }


def build_gaussian_mlp(input_dim, latent_dim, hidden_units=(100, 100), name="gaussian_mlp"):
    """Builds a dense network from codes to a diagonal Gaussian's `[mean, log_var]`.

    The deterministic layers between two stochastic layers of Burda et
    al.'s two-layer model: `tanh` dense layers, then two linear float32 heads.

    Args:
        input_dim: Size of the input codes.
        latent_dim: Size of the Gaussian's codes.
        hidden_units: Widths of the hidden `tanh` layers, a non-empty sequence.
        name: Name of the returned model.

    Returns:
        A `keras.Model` from `(batch, input_dim)` to `[mean, log_var]`, each
        `(batch, latent_dim)`.
    """
    check_int("input_dim", input_dim)
    check_int("latent_dim", latent_dim)
    hidden_units = tuple(hidden_units)
    if not hidden_units:
        raise ValueError(
            f"hidden_units must not be empty. Received: hidden_units={hidden_units!r}")
    inputs = keras.Input(shape=(input_dim,), name="codes")
    x = inputs
    for i, width in enumerate(hidden_units):
        check_int("each entry of hidden_units", width)
        x = keras.layers.Dense(width, activation="tanh", name=f"hidden_{i}")(x)
    mean = keras.layers.Dense(latent_dim, name="z_mean", dtype=networks.FLOAT32)(x)
    log_var = keras.layers.Dense(latent_dim, name="z_log_var", dtype=networks.FLOAT32)(x)
    return keras.Model(inputs, [mean, log_var], name=name)


def build_hierarchical_vae(
    image_shape=(28, 28, 1),
    latent_dim=32,
    bottom_latent_dim=64,
    filters=(32, 64),
    hidden_units=256,
    top_hidden_units=(100, 100),
    beta=1.0,
    likelihood="bernoulli",
    prior="normal",
    importance_samples=1,
    seed=None,
    name="hierarchical_vae",
):
    """Builds a `HierarchicalVAE`: the convolutional networks of `keras_vae.networks` for
    `x <-> z1` and `build_gaussian_mlp` networks for `z1 <-> z2`.

    Args:
        image_shape: `(height, width, channels)` of the images.
        latent_dim: Size of the top code `z2`.
        bottom_latent_dim: Size of the bottom code `z1`.
        filters: Widths of the encoder's stride-2 convolutions.
        hidden_units: Width of the dense layer of the convolutional networks.
        top_hidden_units: Widths of the `tanh` layers between `z1` and `z2`.
        beta: Weight of the KL terms.
        likelihood: Name or layer of p(x|z1) (see `HierarchicalVAE`).
        prior: Name or layer of p(z2) (see `HierarchicalVAE`).
        importance_samples: k of the training objective (1: the ELBO).
        seed: Optional int seeding the sampling noise. Initial weights
            follow Keras's global seed (`keras.utils.set_random_seed`).
        name: Name of the model.

    Returns:
        An uncompiled `HierarchicalVAE`.
    """
    check_int("latent_dim", latent_dim)
    check_int("bottom_latent_dim", bottom_latent_dim)
    return HierarchicalVAE(
        networks.build_encoder(image_shape, bottom_latent_dim, filters, hidden_units),
        networks.build_decoder(image_shape, bottom_latent_dim, filters, hidden_units),
        build_gaussian_mlp(bottom_latent_dim, latent_dim, top_hidden_units,
                           name="top_encoder"),
        build_gaussian_mlp(latent_dim, bottom_latent_dim, top_hidden_units,
                           name="top_decoder"),
        beta=beta, likelihood=likelihood, prior=prior,
        importance_samples=importance_samples, seed=seed, name=name)
