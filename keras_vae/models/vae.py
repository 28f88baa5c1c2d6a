"""The Variational Autoencoder: a subclassed `keras.Model` trained with `fit`.

The file is over 300 lines because the VAE's distributions, its loss, its
training steps and their documentation belong to the one class.
"""

import keras
import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp
from keras import ops

from keras_vae import likelihoods
from keras_vae import networks
from keras_vae import portable
from keras_vae import priors
from keras_vae.layers import Sampling
from keras_vae.models import base
from keras_vae.models.base import ImageModel
from keras_vae.validation import check_int
from keras_vae.validation import check_number

tfd = tfp.distributions


def gaussian(mean, log_var):
    """A diagonal Gaussian `tfd.MultivariateNormalDiag` from its mean and log-variance.

    Inside `keras_vae.portable.plain_ops()`, the same Gaussian in plain ops
    (`keras_vae.portable.DiagonalGaussian`).

    Args:
        mean: The means, `(..., dim)`.
        log_var: The log-variances, the same shape.
    """
    if portable.active():
        return portable.DiagonalGaussian(mean, tf.exp(0.5 * log_var))
    return tfd.MultivariateNormalDiag(loc=mean, scale_diag=tf.exp(0.5 * log_var))

LOG_VAR_BOUND = 10.0
"""Posterior log-variances are softly bounded to (-10, 10): `10 * tanh(v / 10)`.

Near zero the bound is the identity; far out it keeps `exp(log_var)` finite,
so an extreme encoder output cannot overflow the sampler or the KL term.
"""


@keras.saving.register_keras_serializable(package="keras_vae")
class VAE(ImageModel):
    """A Variational Autoencoder with a diagonal Gaussian posterior.

    Each image `x` is encoded to a Gaussian `q(z|x)` rather than a single
    code. Training maximises the evidence lower bound (ELBO),
    `E_q[log p(x|z)] - beta * KL(q(z|x) || p(z))`, by default with a
    standard Gaussian prior `p(z)` and independent Bernoulli pixels
    `p(x|z)` on the decoder's logits. All distributions and the KL term come
    from TensorFlow Probability: the KL is analytic where TFP knows it (the
    standard Gaussian prior) and a Monte Carlo estimate otherwise. The loss
    reported by `fit` is the negative ELBO per image: `reconstruction_loss`
    (negative log-likelihood summed over pixels) plus `beta * kl_loss` (KL
    summed over latent dimensions), each averaged over the batch.

    With `importance_samples=k > 1` the model trains on the importance-
    weighted bound instead (IWAE, Burda et al. 2015): `k` codes per image and
    the loss `-log (1/k) sum_s w_s` averaged over the batch, with
    `log w_s = log p(x|z_s) + beta * (log p(z_s) - log q(z_s|x))`, a bound
    tighter than the ELBO at `beta = 1` (see `compute_iwae_losses`; the
    `reconstruction_loss` and `kl_loss` metrics are then the ELBO's terms at
    the first code). `k = 1` is the ELBO above, unchanged. `log_weights(x,
    num_samples, seed)` gives the weights `keras_vae.evaluation` reduces.

    Under the model contract (`keras_vae.models.base`) it has an encoder, a
    Gaussian posterior, a likelihood and a per-image objective:
    `compute_losses` returns `loss`, `reconstruction_loss` and `kl_loss`
    per image, and the shared `train_step` minimises the batch mean of
    `loss`.

    `beta` is a non-trainable variable (`vae.beta`), so a callback can change
    it during `fit` without recompiling.

    The public methods are those of every keras_vae model (see
    `keras_vae.models.base`): `encode(x)` returns the posterior's
    `(z_mean, z_log_var)`, `latent_codes(x)` its mean, `decode(z)`,
    `reconstruct(x)` and `sample(n, seed=None)` images. A VAE is
    unconditional (`num_classes` is None) and refuses `labels`.

    Args:
        encoder: A model from images `(batch, height, width, channels)` to
            `[z_mean, z_log_var]`, each `(batch, latent_dim)`; see
            `keras_vae.networks.build_encoder`.
        decoder: A model from codes `(batch, latent_dim)` to per-pixel logits
            of the image shape; see `keras_vae.networks.build_decoder`.
        beta: Weight of the KL term (1.0 gives the ELBO; see beta-VAE).
        likelihood: p(x|z): a name from `keras_vae.likelihoods.NAMES`
            (`"bernoulli"`, `"continuous_bernoulli"`, `"gaussian"`,
            `"gaussian_pixel"`, `"discretized_logistic"`) or a
            `keras_vae.likelihoods.Likelihood` layer.
        prior: p(z): a name from `keras_vae.priors.NAMES` (`"normal"`,
            `"mixture"`, `"vamp"`) or a `keras_vae.priors.Prior` layer.
        seed: Optional int seeding the sampling noise (and a named prior's
            initial parameters).
        importance_samples: k, a positive int: codes per image of the
            training objective (1: the ELBO; more: the IWAE bound).
        **kwargs: Standard `keras.Model` arguments (`name`...).

    Call arguments:
        inputs: Images in [0, 1] (checked as `predict` checks them: other
            values raise an error).
        training: If True the code is sampled from `q(z|x)`; otherwise the
            posterior mean is used, so the output is deterministic.

    Returns:
        The decoded images' mean under the likelihood (in [0, 1]), same
        shape as inputs.

    Example:

    ```python
    import keras, keras_vae
    (x_train, _), (x_test, _) = keras_vae.datasets.load("mnist")
    vae = keras_vae.build_vae(image_shape=(28, 28, 1), latent_dim=16)
    vae.compile(optimizer=keras.optimizers.Adam(1e-3))
    vae.fit(x_train, epochs=5, batch_size=128, validation_data=(x_test,))
    samples = vae.sample(16)
    ```

    Reference:
        Kingma and Welling, "Auto-Encoding Variational Bayes", 2013,
        https://arxiv.org/abs/1312.6114; Burda, Grosse and Salakhutdinov,
        "Importance Weighted Autoencoders", 2015,
        https://arxiv.org/abs/1509.00519
    """

    capabilities = frozenset({base.ENCODER, base.POSTERIOR, base.LIKELIHOOD, base.LOSSES})
    loss_terms = ("loss", "reconstruction_loss", "kl_loss")

    def __init__(self, encoder, decoder, beta=1.0, likelihood="bernoulli",
                 prior="normal", seed=None, importance_samples=1, **kwargs):
        super().__init__(**kwargs)
        for arg_name, model in (("encoder", encoder), ("decoder", decoder)):
            if not isinstance(model, keras.Model):
                raise TypeError(
                    f"{arg_name} must be a keras.Model. Received: "
                    f"{arg_name}={model!r}"
                )
        image_shape, latent_dim = self._check_networks(encoder, decoder)
        beta = check_number("beta", beta)
        self.importance_samples = check_int("importance_samples", importance_samples)
        self.encoder = encoder
        self.decoder = decoder
        self.image_shape = image_shape
        self.latent_dim = latent_dim
        self.seed = seed
        self.likelihood_layer = likelihoods.get(likelihood)
        if not self.likelihood_layer.built:  # a deserialized one is built already
            self.likelihood_layer.build((None,) + image_shape)
        self.prior_layer = priors.get(prior, latent_dim, image_shape, seed=seed)
        # float32 under any dtype policy: the codes keep their precision.
        self.sampler = Sampling(seed=seed, name="sampling", dtype="float32")
        # Built here, so that a symbolic build (fit under a tf.distribute
        # strategy) need not call the model, which a conditional one cannot
        # do from images alone.
        self.sampler.build([(None, latent_dim), (None, latent_dim)])
        self._init_sampling(seed)
        self.beta = self.add_weight(
            shape=(),
            initializer=keras.initializers.Constant(beta),
            trainable=False,
            name="beta",
        )
        self._init_loss_trackers()
        self.built = True

    @staticmethod
    def _check_networks(encoder, decoder):
        image_shape = tuple(encoder.input_shape[1:])
        outputs = encoder.output_shape
        if not (isinstance(outputs, (list, tuple)) and len(outputs) == 2
                and isinstance(outputs[0], (list, tuple))):
            raise ValueError(
                "encoder must output [z_mean, z_log_var]. Received: encoder "
                f"output shape {outputs}"
            )
        mean_shape, log_var_shape = (tuple(s) for s in outputs)
        if mean_shape != log_var_shape or len(mean_shape) != 2:
            raise ValueError(
                "encoder outputs z_mean and z_log_var must both be "
                "(batch, latent_dim). Received: shapes "
                f"{mean_shape} and {log_var_shape}"
            )
        latent_dim = mean_shape[1]
        if tuple(decoder.input_shape[1:]) != (latent_dim,):
            raise ValueError(
                f"decoder must take codes of shape (batch, {latent_dim}) to "
                "match the encoder. Received: decoder input shape "
                f"{decoder.input_shape}"
            )
        if tuple(decoder.output_shape[1:]) != image_shape:
            raise ValueError(
                f"decoder must output the encoder's image shape {image_shape}. "
                f"Received: decoder output shape {decoder.output_shape}"
            )
        return image_shape, latent_dim

    # ----------------------------------------------------------------- maths

    def posterior(self, x, training=False, condition=None):
        """Returns q(z|x) as a `tfd.MultivariateNormalDiag` (float32).

        `condition` (here and below) is the one-hot class of a
        `ConditionalVAE`; a plain VAE takes none.

        Args:
            x: A batch of images in [0, 1], `(N, *image_shape)`.
            training: Keras's `training` flag, passed to the encoder.
            condition: One-hot classes `(N, num_classes)` for a
                `ConditionalVAE`; None for a plain VAE.
        """
        return gaussian(*self.encode_tensor(x, condition, training))

    def prior(self):
        """Returns p(z) as a `tfd` distribution over codes (float32)."""
        return self.prior_layer.distribution(self.encode_tensor)

    @property
    def kl_estimator(self):
        """`"analytic"` if TFP knows KL(q || p) for this prior, else `"monte_carlo"`."""
        posterior = gaussian(tf.zeros([1, self.latent_dim]), tf.zeros([1, self.latent_dim]))
        analytic = priors.has_analytic_kl(posterior, self.prior())
        return "analytic" if analytic else "monte_carlo"

    def likelihood(self, params):
        """Returns p(x|z) for decoder outputs `params` (see `keras_vae.likelihoods`)."""
        return self.likelihood_layer.distribution(params)

    def conditional(self, z, training=False, condition=None):
        """Returns p(x|z) for codes `z` of shape `(N, latent_dim)`.

        Args:
            z: Codes `(N, latent_dim)`.
            training: Keras's `training` flag, passed to the decoder.
            condition: One-hot classes `(N, num_classes)` for a
                `ConditionalVAE`; None for a plain VAE.
        """
        return self.likelihood(self._decoder_params(z, training, condition))

    def conditional_log_prob(self, z, x, training=False, condition=None):
        """Returns log p(x|z) per image, float32 `(N,)`, for codes `z` and images `x`.

        Args:
            z: Codes `(N, latent_dim)`.
            x: Images in [0, 1], `(N, *image_shape)`.
            training: Keras's `training` flag, passed to the decoder.
            condition: One-hot classes `(N, num_classes)` for a
                `ConditionalVAE`; None for a plain VAE.
        """
        return self.likelihood_layer.log_prob(
            self._decoder_params(z, training, condition), x)

    def _decoder_params(self, z, training=False, condition=None):
        del condition  # Used by ConditionalVAE.
        return self.decoder(z, training=training)

    def _encoder_outputs(self, x, training=False, condition=None):
        del condition  # Used by ConditionalVAE.
        return self.encoder(x, training=training)

    def encode_tensor(self, x, condition=None, training=False):
        """Returns the posterior's `(mean, bounded log-variance)`, float32 tensors.

        See `ImageModel.encode_tensor`; the log-variance is bounded by
        `LOG_VAR_BOUND`.

        Args:
            x: A batch of images in [0, 1], a float tensor.
            condition: One-hot classes for a `ConditionalVAE`; None for a plain VAE.
            training: Keras's `training` flag, passed to the encoder.
        """
        z_mean, z_log_var = self._encoder_outputs(x, training, condition)
        z_mean = tf.cast(z_mean, "float32")
        z_log_var = tf.cast(z_log_var, "float32")
        z_log_var = LOG_VAR_BOUND * tf.tanh(z_log_var / LOG_VAR_BOUND)
        return z_mean, z_log_var

    def compute_vae_losses(self, x, training=False, condition=None):
        """Returns per-image `(reconstruction_loss, kl_loss)` for images `x`.

        The reconstruction loss is `-log p(x|z)` for one `z ~ q(z|x)` drawn
        with the reparameterization trick; the KL term is analytic (from
        `tfd.kl_divergence`) when TFP knows it for the prior, otherwise
        `log q(z|x) - log p(z)` at the same `z` (see `kl_estimator`). Both
        have shape `(batch,)`, float32.

        Args:
            x: A batch of images in [0, 1], `(batch, *image_shape)`.
            training: Keras's `training` flag, passed to the encoder and the
                decoder.
            condition: One-hot classes `(batch, num_classes)` for a
                `ConditionalVAE`; None for a plain VAE.
        """
        x = tf.cast(x, "float32")
        z_mean, z_log_var = self.encode_tensor(x, condition, training)
        z = self.sampler([z_mean, z_log_var])
        reconstruction_loss = -self.conditional_log_prob(z, x, training, condition)
        kl_loss = priors.kl_divergence(gaussian(z_mean, z_log_var), self.prior(), z)
        return reconstruction_loss, kl_loss

    def log_weights(self, x, num_samples, seed=None, condition=None, shared_noise=False):
        """Returns the log importance weights of `num_samples` codes per image.

        `log w_s = log p(x|z_s) + log p(z_s) - log q(z_s|x)` with
        `z_s ~ q(z|x)` drawn from the stateless `seed`: the same seed gives
        the same codes (`posterior(x).sample(num_samples, seed=seed)`; with
        `shared_noise`, `z_s = mean + sigma * eps_s` with
        `eps = tf.random.stateless_normal([num_samples, latent_dim], seed)`
        shared by every image). `log mean_s w_s` is the importance-weighted
        bound on `log p(x)` that `keras_vae.evaluation` reduces, `mean_s
        log w_s` an estimate of the ELBO. Deterministic networks
        (`training=False`), usable inside a `tf.function`; `beta` plays no
        part.

        Args:
            x: A batch of images in [0, 1], `(batch, *image_shape)`.
            num_samples: S, codes per image (an int, or an int32 scalar tensor).
            seed: The stateless seed of the codes: an int, an int32 pair, or
                None for a pair from the model's seed generator.
            condition: One-hot classes for a `ConditionalVAE`; None for a plain VAE.
            shared_noise: If True, every image uses the same standard normal
                draws (a function of `seed` and `S`): export's scorer.

        Returns:
            A float32 `tf.Tensor` `(num_samples, batch)`, in nats.
        """
        x = tf.cast(x, "float32")
        posterior = self.posterior(x, condition=condition)
        if shared_noise:
            eps = base.standard_normal([num_samples, self.latent_dim], self._seed(seed))
            z = posterior.mean()[None] + posterior.stddev()[None] * eps[:, None, :]
        else:
            z = posterior.sample(num_samples, seed=base.stateless_seed(self._seed(seed)))
        log_px_z, log_ratio = self._log_weight_terms(z, x, posterior, self.prior(), False,
                                                     condition)
        return log_px_z + log_ratio

    def _log_weight_terms(self, z, x, posterior, prior, training, condition):
        """`(log p(x|z), log p(z) - log q(z|x))`, each `(S, batch)`, for codes `(S, batch, dim)`."""
        num_samples, batch = tf.shape(z)[0], tf.shape(z)[1]
        flat_z = tf.reshape(z, [-1, self.latent_dim])
        if condition is not None:
            condition = base.repeat_batch(condition, num_samples)
        log_px_z = self.conditional_log_prob(flat_z, base.repeat_batch(x, num_samples),
                                             training, condition)
        log_ratio = prior.log_prob(z) - posterior.log_prob(z)
        return tf.reshape(log_px_z, [num_samples, batch]), log_ratio

    def compute_iwae_losses(self, x, training=False, condition=None):
        """Returns per-image `(negative IWAE bound, reconstruction_loss, kl_loss)`.

        Draws `k = importance_samples` codes `z_s ~ q(z|x)` with the
        reparameterization trick and returns
        `-(logsumexp_s log w_s - log k)` with
        `log w_s = log p(x|z_s) + beta * (log p(z_s) - log q(z_s|x))`, in
        float32. At `beta = 1` this is the IWAE bound on `log p(x)`; `beta`
        scales the prior-to-posterior ratio inside each weight, so KL
        warm-up (beta rising from 0) works as for the ELBO, and the loss
        is no bound on `log p(x)` while `beta != 1`. `reconstruction_loss`
        and `kl_loss` are the ELBO's terms at the first code `z_1` (as
        `compute_vae_losses` gives them for one code): what the
        `reconstruction_loss` and `kl_loss` metrics show. All `(batch,)`.

        Args:
            x: A batch of images in [0, 1], `(batch, *image_shape)`.
            training: Keras's `training` flag, passed to the encoder and the
                decoder.
            condition: One-hot classes `(batch, num_classes)` for a
                `ConditionalVAE`; None for a plain VAE.

        Reference:
            Burda, Grosse and Salakhutdinov, "Importance Weighted
            Autoencoders", 2015, https://arxiv.org/abs/1509.00519
        """
        x = tf.cast(x, "float32")
        z_mean, z_log_var = self.encode_tensor(x, condition, training)
        k = self.importance_samples
        z = self.sampler([base.repeat_batch(z_mean, k), base.repeat_batch(z_log_var, k)])
        z = tf.reshape(z, [k, -1, self.latent_dim])
        posterior, prior = gaussian(z_mean, z_log_var), self.prior()
        log_px_z, log_ratio = self._log_weight_terms(z, x, posterior, prior, training,
                                                     condition)
        log_w = log_px_z + tf.cast(self.beta, "float32") * log_ratio
        bound = tf.reduce_logsumexp(log_w, axis=0) - float(np.log(k))
        kl_loss = priors.kl_divergence(posterior, prior, z[0])
        return -bound, -log_px_z[0], kl_loss

    def compute_losses(self, x, training=False, condition=None):
        """Returns the training objective per image: `loss`, `reconstruction_loss`, `kl_loss`.

        With `importance_samples == 1`, `loss` is the negative ELBO
        `reconstruction_loss + beta * kl_loss` (see `compute_vae_losses`);
        with more, the negative IWAE bound (see `compute_iwae_losses`).
        `fit` minimises the mean of `loss` over the batch. A dict of float32
        `(batch,)` tensors (the model contract, `ImageModel.compute_losses`).

        Args:
            x: A batch of images in [0, 1], `(batch, *image_shape)`.
            training: Keras's `training` flag.
            condition: One-hot classes `(batch, num_classes)` for a
                `ConditionalVAE`; None for a plain VAE.
        """
        if self.importance_samples > 1:
            loss, reconstruction_loss, kl_loss = self.compute_iwae_losses(x, training, condition)
        else:
            reconstruction_loss, kl_loss = self.compute_vae_losses(x, training, condition)
            loss = reconstruction_loss + self.beta * kl_loss
        return {"loss": loss, "reconstruction_loss": reconstruction_loss, "kl_loss": kl_loss}

    def call(self, inputs, training=False):
        return self._reconstruct_tensor(self._checked_call_images(inputs), training)

    def _reconstruct_tensor(self, x, training=False, condition=None):
        """The mean image decoded from a posterior draw (training) or the posterior mean."""
        z_mean, z_log_var = self.encode_tensor(x, condition, training)
        z = self.sampler([z_mean, z_log_var]) if training else z_mean
        return self.decode_tensor(z, condition, training)

    def decode_tensor(self, z, condition=None, training=False):
        """Returns the likelihood's mean at codes `z`, images in [0, 1] (see `ImageModel`).

        Args:
            z: Codes, a float tensor `(N, latent_dim)`.
            condition: One-hot classes for a `ConditionalVAE`; None for a plain VAE.
            training: Keras's `training` flag, passed to the decoder.
        """
        return self.likelihood_layer.mean(self._decoder_params(z, training, condition))

    # ------------------------------------------------------------ public API
    # encode, latent_codes, decode, reconstruct and sample: see ImageModel.

    # ------------------------------------------------------------- saving

    def _constructor_arguments(self):
        return {
            "encoder": self.encoder,
            "decoder": self.decoder,
            "beta": float(ops.convert_to_numpy(self.beta)),
            "likelihood": self.likelihood_layer,
            "prior": self.prior_layer,
            "seed": self.seed,
            "importance_samples": self.importance_samples,
        }


def build_vae(
    image_shape=(28, 28, 1),
    latent_dim=32,
    filters=(32, 64),
    hidden_units=256,
    beta=1.0,
    likelihood="bernoulli",
    prior="normal",
    seed=None,
    importance_samples=1,
    name="vae",
):
    """Builds a `VAE` with the convolutional networks of `keras_vae.networks`.

    Args:
        image_shape: `(height, width, channels)` of the images.
        latent_dim: Size of the latent code.
        filters: Widths of the encoder's stride-2 convolutions.
        hidden_units: Width of the dense layer in encoder and decoder.
        beta: Weight of the KL term.
        likelihood: Name or layer of p(x|z) (see `VAE`).
        prior: Name or layer of p(z) (see `VAE`).
        seed: Optional int seeding the sampling noise. Initial weights
            follow Keras's global seed (`keras.utils.set_random_seed`).
        importance_samples: k, codes per image of the training objective
            (1: the ELBO; more: the IWAE bound, see `VAE`).
        name: Name of the model.

    Returns:
        An uncompiled `VAE`.
    """
    encoder = networks.build_encoder(image_shape, latent_dim, filters, hidden_units)
    decoder = networks.build_decoder(image_shape, latent_dim, filters, hidden_units)
    return VAE(encoder, decoder, beta=beta, likelihood=likelihood, prior=prior,
               seed=seed, importance_samples=importance_samples, name=name)
