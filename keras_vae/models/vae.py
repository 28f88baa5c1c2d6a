"""The Variational Autoencoder: a subclassed `keras.Model` trained with `fit`."""

import keras
import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp
from keras import ops

from keras_vae import networks
from keras_vae.layers import Sampling
from keras_vae.validation import check_images
from keras_vae.validation import check_int
from keras_vae.validation import check_number
from keras_vae.validation import check_shape_matches
from keras_vae.validation import check_values

tfd = tfp.distributions

LOG_VAR_BOUND = 10.0
"""Posterior log-variances are softly bounded to (-10, 10): `10 * tanh(v / 10)`.

Near zero the bound is the identity; far out it keeps `exp(log_var)` finite,
so an extreme encoder output cannot overflow the sampler or the KL term.
"""


def _first_component(data):
    """Returns the images of a batch given as `x`, `(x,)`, `(x, y)` or `(x, y, w)`."""
    x, _, _ = keras.utils.unpack_x_y_sample_weight(data)
    return x


@keras.saving.register_keras_serializable(package="keras_vae")
class VAE(keras.Model):
    """A Variational Autoencoder with a diagonal Gaussian posterior.

    Each image `x` is encoded to a Gaussian `q(z|x)` rather than a single
    code. Training maximises the evidence lower bound (ELBO),
    `E_q[log p(x|z)] - beta * KL(q(z|x) || p(z))`, with a standard Gaussian
    prior `p(z)` and, by default, independent Bernoulli pixels `p(x|z)` on
    the decoder's logits. All distributions and the KL term come from
    TensorFlow Probability. The loss reported by `fit` is the negative ELBO
    per image: `reconstruction_loss` (negative log-likelihood summed over
    pixels) plus `beta * kl_loss` (KL summed over latent dimensions), each
    averaged over the batch.

    `beta` is a non-trainable variable (`vae.beta`), so a callback can change
    it during `fit` without recompiling.

    Args:
        encoder: A model from images `(batch, height, width, channels)` to
            `[z_mean, z_log_var]`, each `(batch, latent_dim)`; see
            `keras_vae.networks.build_encoder`.
        decoder: A model from codes `(batch, latent_dim)` to per-pixel logits
            of the image shape; see `keras_vae.networks.build_decoder`.
        beta: Weight of the KL term (1.0 gives the ELBO; see beta-VAE).
        seed: Optional int seeding the sampling noise.
        **kwargs: Standard `keras.Model` arguments (`name`...).

    Call arguments:
        inputs: Images in [0, 1].
        training: If True the code is sampled from `q(z|x)`; otherwise the
            posterior mean is used, so the output is deterministic.

    Returns:
        The decoded images' mean (pixel probabilities), same shape as inputs.

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
        https://arxiv.org/abs/1312.6114
    """

    def __init__(self, encoder, decoder, beta=1.0, seed=None, **kwargs):
        super().__init__(**kwargs)
        for arg_name, model in (("encoder", encoder), ("decoder", decoder)):
            if not isinstance(model, keras.Model):
                raise TypeError(
                    f"{arg_name} must be a keras.Model. Received: "
                    f"{arg_name}={model!r}"
                )
        image_shape, latent_dim = self._check_networks(encoder, decoder)
        beta = check_number("beta", beta)
        self.encoder = encoder
        self.decoder = decoder
        self.image_shape = image_shape
        self.latent_dim = latent_dim
        self.seed = seed
        self.sampler = Sampling(seed=seed, name="sampling")
        self.prior_seed_generator = keras.random.SeedGenerator(
            None if seed is None else seed + 1, name="prior_seed_generator"
        )
        self.beta = self.add_weight(
            shape=(),
            initializer=keras.initializers.Constant(beta),
            trainable=False,
            name="beta",
        )
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.reconstruction_loss_tracker = keras.metrics.Mean(
            name="reconstruction_loss"
        )
        self.kl_loss_tracker = keras.metrics.Mean(name="kl_loss")
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

    @property
    def metrics(self):
        return [
            self.loss_tracker,
            self.reconstruction_loss_tracker,
            self.kl_loss_tracker,
        ]

    # ----------------------------------------------------------------- maths

    def posterior(self, x, training=False):
        """Returns q(z|x) as a `tfd.MultivariateNormalDiag` (float32)."""
        return self._gaussian(*self._encode_tensors(x, training=training))

    @staticmethod
    def _gaussian(z_mean, z_log_var):
        return tfd.MultivariateNormalDiag(loc=z_mean, scale_diag=tf.exp(0.5 * z_log_var))

    def prior(self):
        """Returns p(z), a standard `tfd.MultivariateNormalDiag`."""
        return tfd.MultivariateNormalDiag(loc=tf.zeros([self.latent_dim]))

    def likelihood(self, logits):
        """Returns p(x|z): independent Bernoulli pixels on the decoder's logits."""
        logits = tf.cast(logits, "float32")
        return tfd.Independent(
            tfd.Bernoulli(logits=logits, dtype=tf.float32),
            reinterpreted_batch_ndims=3,
        )

    def conditional(self, z, training=False):
        """Returns p(x|z) for codes `z` of shape `(N, latent_dim)`."""
        return self.likelihood(self.decoder(z, training=training))

    def _encode_tensors(self, x, training=False):
        z_mean, z_log_var = self.encoder(x, training=training)
        z_mean = tf.cast(z_mean, "float32")
        z_log_var = tf.cast(z_log_var, "float32")
        z_log_var = LOG_VAR_BOUND * tf.tanh(z_log_var / LOG_VAR_BOUND)
        return z_mean, z_log_var

    def compute_vae_losses(self, x, training=False):
        """Returns per-image `(reconstruction_loss, kl_loss)` for images `x`.

        The reconstruction loss is `-log p(x|z)` for one `z ~ q(z|x)` drawn
        with the reparameterization trick; the KL term is analytic, from
        `tfd.kl_divergence`. Both have shape `(batch,)`, float32.
        """
        x = tf.cast(x, "float32")
        z_mean, z_log_var = self._encode_tensors(x, training=training)
        z = self.sampler([z_mean, z_log_var])
        reconstruction_loss = -self.conditional(z, training=training).log_prob(x)
        kl_loss = tfd.kl_divergence(self._gaussian(z_mean, z_log_var), self.prior())
        return reconstruction_loss, kl_loss

    def _total_loss(self, reconstruction_loss, kl_loss):
        return tf.reduce_mean(reconstruction_loss + self.beta * kl_loss)

    def _update_metrics(self, loss, reconstruction_loss, kl_loss):
        batch = tf.shape(reconstruction_loss)[0]
        self.loss_tracker.update_state(loss, sample_weight=batch)
        self.reconstruction_loss_tracker.update_state(reconstruction_loss)
        self.kl_loss_tracker.update_state(kl_loss)
        return {metric.name: metric.result() for metric in self.metrics}

    def train_step(self, data):
        x = _first_component(data)
        with tf.GradientTape() as tape:
            reconstruction_loss, kl_loss = self.compute_vae_losses(x, training=True)
            loss = self._total_loss(reconstruction_loss, kl_loss)
            # Gradients are summed over replicas under tf.distribute, so the
            # per-replica mean is divided by the number of replicas.
            replicas = tf.distribute.get_strategy().num_replicas_in_sync
            scaled_loss = self.optimizer.scale_loss(loss / replicas)
        gradients = tape.gradient(scaled_loss, self.trainable_weights)
        self.optimizer.apply_gradients(zip(gradients, self.trainable_weights))
        return self._update_metrics(loss, reconstruction_loss, kl_loss)

    def test_step(self, data):
        x = _first_component(data)
        reconstruction_loss, kl_loss = self.compute_vae_losses(x, training=False)
        loss = self._total_loss(reconstruction_loss, kl_loss)
        return self._update_metrics(loss, reconstruction_loss, kl_loss)

    def call(self, inputs, training=False):
        z_mean, z_log_var = self._encode_tensors(inputs, training=training)
        z = self.sampler([z_mean, z_log_var]) if training else z_mean
        return self._mean_image(self.decoder(z, training=training))

    @staticmethod
    def _mean_image(logits):
        return tf.sigmoid(tf.cast(logits, "float32"))

    # ------------------------------------------------------ input validation

    def check_input(self, data, name="x"):
        """Raises a clear error if `data` cannot be images for this model.

        Accepts what `fit`, `evaluate` and `predict` accept: an array, a
        tuple `(x, ...)`, or a `tf.data.Dataset`. Arrays are checked in full;
        a dataset's element spec and its first batch are checked.
        """
        if data is None:
            return
        if isinstance(data, tf.data.Dataset):
            self._check_dataset(data, name)
            return
        if isinstance(data, tuple):
            data = _first_component(data)
        if isinstance(data, (np.ndarray, tf.Tensor, list)):
            check_images(data, name=name, image_shape=self.image_shape)

    def _check_dataset(self, dataset, name):
        spec = _first_component(dataset.element_spec)
        if not isinstance(spec, tf.TensorSpec):
            raise TypeError(
                f"{name} must yield image tensors. Received: element_spec={spec}"
            )
        if spec.shape.rank is not None and spec.shape.rank != 4:
            raise ValueError(
                f"{name} must yield batches of rank 4 (batch, height, width, "
                f"channels); batch the dataset first. Received: element "
                f"shape {spec.shape}"
            )
        if spec.shape.rank == 4 and None not in spec.shape[1:]:
            check_shape_matches(spec.shape[1:], self.image_shape, name)
        first = next(iter(dataset.take(1)), None)
        if first is None:
            raise ValueError(f"{name} is empty. Received: a dataset with no batches")
        check_values(np.asarray(_first_component(first)), name=f"{name} (first batch)")

    def fit(self, x=None, y=None, *args, validation_data=None, **kwargs):
        self.check_input(x, "x")
        if validation_data is not None:
            self.check_input(validation_data, "validation_data")
        if isinstance(x, tf.data.Dataset):
            # A dataset carries its own shuffling (see datasets.make_dataset);
            # this silences Keras's warning that `shuffle=True` is ignored.
            kwargs.setdefault("shuffle", False)
        return super().fit(x, y, *args, validation_data=validation_data, **kwargs)

    def evaluate(self, x=None, y=None, *args, **kwargs):
        self.check_input(x, "x")
        return super().evaluate(x, y, *args, **kwargs)

    def predict(self, x, *args, **kwargs):
        self.check_input(x, "x")
        return super().predict(x, *args, **kwargs)

    # ------------------------------------------------------------ public API

    def encode(self, x, batch_size=256):
        """Encodes images to the posterior's parameters.

        Args:
            x: Images in [0, 1], shape `(N, *image_shape)`.
            batch_size: Images encoded at a time.

        Returns:
            A pair of NumPy arrays `(z_mean, z_log_var)`, each `(N, latent_dim)`.
        """
        x = check_images(x, image_shape=self.image_shape)
        means, log_vars = [], []
        for start in range(0, x.shape[0], batch_size):
            z_mean, z_log_var = self._encode_tensors(x[start:start + batch_size])
            means.append(z_mean.numpy())
            log_vars.append(z_log_var.numpy())
        return np.concatenate(means), np.concatenate(log_vars)

    def decode(self, z, batch_size=256):
        """Decodes latent codes to images (the likelihood's mean, in [0, 1]).

        Args:
            z: Codes of shape `(N, latent_dim)`.
            batch_size: Codes decoded at a time.

        Returns:
            A NumPy array of images, shape `(N, *image_shape)`.
        """
        z = np.asarray(z, dtype="float32")
        if z.ndim != 2 or z.shape[1] != self.latent_dim:
            raise ValueError(
                f"z must have shape (N, {self.latent_dim}). Received: z.shape={z.shape}"
            )
        images = [
            self._mean_image(self.decoder(z[start:start + batch_size])).numpy()
            for start in range(0, z.shape[0], batch_size)
        ]
        return np.concatenate(images) if images else np.zeros(
            (0,) + self.image_shape, "float32")

    def reconstruct(self, x, batch_size=256):
        """Reconstructs images through the posterior mean (deterministic).

        Returns:
            A NumPy array of the same shape as `x`.
        """
        return self.predict(x, batch_size=batch_size, verbose=0)

    def sample(self, n, seed=None):
        """Generates `n` new images by decoding draws from the prior N(0, I).

        Args:
            n: Number of images.
            seed: Optional int; the same seed gives the same images. Without
                it, successive calls give new images.

        Returns:
            A NumPy array of images, shape `(n, *image_shape)`.
        """
        check_int("n", n)
        z = keras.random.normal(
            (n, self.latent_dim),
            seed=self.prior_seed_generator if seed is None else seed,
        )
        return self.decode(ops.convert_to_numpy(z))

    # ------------------------------------------------------------- saving

    def get_config(self):
        return {
            "name": self.name,
            "trainable": self.trainable,
            "encoder": keras.saving.serialize_keras_object(self.encoder),
            "decoder": keras.saving.serialize_keras_object(self.decoder),
            "beta": float(ops.convert_to_numpy(self.beta)),
            "seed": self.seed,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["encoder"] = keras.saving.deserialize_keras_object(config["encoder"])
        config["decoder"] = keras.saving.deserialize_keras_object(config["decoder"])
        return cls(**config)


def build_vae(
    image_shape=(28, 28, 1),
    latent_dim=32,
    filters=(32, 64),
    hidden_units=256,
    beta=1.0,
    seed=None,
    name="vae",
):
    """Builds a `VAE` with the convolutional networks of `keras_vae.networks`.

    Args:
        image_shape: `(height, width, channels)` of the images.
        latent_dim: Size of the latent code.
        filters: Widths of the encoder's stride-2 convolutions.
        hidden_units: Width of the dense layer in encoder and decoder.
        beta: Weight of the KL term.
        seed: Optional int seeding the sampling noise. Initial weights
            follow Keras's global seed (`keras.utils.set_random_seed`).
        name: Name of the model.

    Returns:
        An uncompiled `VAE`.
    """
    encoder = networks.build_encoder(image_shape, latent_dim, filters, hidden_units)
    decoder = networks.build_decoder(image_shape, latent_dim, filters, hidden_units)
    return VAE(encoder, decoder, beta=beta, seed=seed, name=name)
