"""A small DCGAN: the adversarial baseline the VAE is compared against."""

import keras
import tensorflow as tf

from keras_vae import networks
from keras_vae.models import base
from keras_vae.models.base import ImageModel
from keras_vae.models.base import first_component
from keras_vae.models.checks import check_batch


@keras.saving.register_keras_serializable(package="keras_vae")
class DCGAN(ImageModel):
    """A deep convolutional GAN with its own `train_step`.

    The generator maps codes `z ~ N(0, I)` to pixel logits (the VAE's
    decoder shape with batch normalization, `networks.build_generator`);
    images are their sigmoid. The discriminator maps
    images to one logit, "real". Each step updates the discriminator on a
    real and a generated batch, then the generator with the non-saturating
    loss (`-log D(G(z))`). There is no encoder, so no reconstruction and no
    likelihood: a GAN is judged by its samples only (FID).

    Of the interface every keras_vae model shares (see
    `keras_vae.models.base`) it has `decode(z)` and `sample(n, seed=None)`;
    `encode`, `latent_codes` and `reconstruct` raise `MissingCapabilityError`
    (a `NotImplementedError`): under the model contract it declares no
    capability (no encoder, no likelihood, and an adversarial step of its own
    instead of `compute_losses`).
    It is unconditional (`num_classes` is None) and refuses `labels`.

    Compile with one optimizer for the generator (`optimizer`) and,
    optionally, another for the discriminator (`discriminator_optimizer`,
    by default a copy of the first's configuration).

    Args:
        generator: A model from codes `(batch, latent_dim)` to pixel logits.
        discriminator: A model from images to one logit `(batch, 1)`.
        seed: Optional int seeding the codes drawn while training and sampling.
        **kwargs: Standard `keras.Model` arguments.

    Call arguments:
        inputs: Codes `(batch, latent_dim)`.

    Returns:
        Generated images in [0, 1].

    Example:

    ```python
    gan = keras_vae.models.build_dcgan((28, 28, 1), latent_dim=32)
    gan.compile(optimizer=keras.optimizers.Adam(2e-4, beta_1=0.5))
    gan.fit(x_train, epochs=5, batch_size=128)
    images = gan.sample(16)
    ```

    Reference:
        Radford, Metz and Chintala, "Unsupervised Representation Learning
        with Deep Convolutional Generative Adversarial Networks", 2015,
        https://arxiv.org/abs/1511.06434
    """

    capabilities = frozenset()

    def __init__(self, generator, discriminator, seed=None, **kwargs):
        super().__init__(**kwargs)
        for arg_name, model in (("generator", generator), ("discriminator", discriminator)):
            if not isinstance(model, keras.Model):
                raise TypeError(
                    f"{arg_name} must be a keras.Model. Received: {arg_name}={model!r}")
        self.image_shape = tuple(generator.output_shape[1:])
        self.latent_dim = generator.input_shape[1]
        if tuple(discriminator.input_shape[1:]) != self.image_shape:
            raise ValueError(
                f"discriminator must take the generator's images {self.image_shape}. "
                f"Received: discriminator input shape {discriminator.input_shape}")
        if tuple(discriminator.output_shape[1:]) != (1,):
            raise ValueError(
                "discriminator must output one logit per image, (batch, 1). "
                f"Received: discriminator output shape {discriminator.output_shape}")
        self.generator = generator
        self.discriminator = discriminator
        self.seed = seed
        self.noise_seed_generator = keras.random.SeedGenerator(seed, name="noise")
        self._init_sampling(seed)
        self.discriminator_loss_tracker = keras.metrics.Mean(name="discriminator_loss")
        self.generator_loss_tracker = keras.metrics.Mean(name="generator_loss")
        self.discriminator_optimizer = None
        self.built = True

    def compile(self, optimizer="adam", discriminator_optimizer=None, **kwargs):
        super().compile(optimizer=optimizer, **kwargs)
        if discriminator_optimizer is None:
            discriminator_optimizer = self.optimizer.from_config(self.optimizer.get_config())
        self.discriminator_optimizer = keras.optimizers.get(discriminator_optimizer)
        # Built now, each for its network (and, under a tf.distribute strategy, in
        # its scope): an optimizer built lazily inside the distributed step fails
        # ("You must feed a value for placeholder tensor ...").
        self.optimizer.build(self.generator.trainable_variables)
        self.discriminator_optimizer.build(self.discriminator.trainable_variables)

    def get_compile_config(self):
        if not self.compiled:  # as Keras's own: nothing to restore
            return None
        return {
            "optimizer": keras.saving.serialize_keras_object(self.optimizer),
            "discriminator_optimizer": keras.saving.serialize_keras_object(
                self.discriminator_optimizer),
        }

    def compile_from_config(self, config):
        # compile builds both optimizers, so the saved states can be loaded into them.
        self.compile(**{key: keras.saving.deserialize_keras_object(value)
                        for key, value in config.items()})

    @property
    def metrics(self):
        return [self.discriminator_loss_tracker, self.generator_loss_tracker]

    @staticmethod
    def _cross_entropy(logits, label):
        logits = tf.cast(logits, "float32")
        return tf.nn.sigmoid_cross_entropy_with_logits(
            labels=tf.fill(tf.shape(logits), label), logits=logits)

    @staticmethod
    def _apply(optimizer, tape, scaled_loss, weights):
        optimizer.apply_gradients(zip(tape.gradient(scaled_loss, weights), weights))

    def train_step(self, data):
        real = tf.cast(check_batch(first_component(data), "training images"), "float32")
        batch = tf.shape(real)[0]
        z = keras.random.normal((batch, self.latent_dim), seed=self.noise_seed_generator)
        with tf.GradientTape() as tape:
            fake = self(z, training=True)
            discriminator_loss = tf.reduce_mean(
                self._cross_entropy(self.discriminator(real, training=True), 1.0)
                + self._cross_entropy(self.discriminator(fake, training=True), 0.0))
            scaled = base.replica_scaled_loss(self.discriminator_optimizer, discriminator_loss)
        self._apply(self.discriminator_optimizer, tape, scaled,
                    self.discriminator.trainable_weights)
        z = keras.random.normal((batch, self.latent_dim), seed=self.noise_seed_generator)
        with tf.GradientTape() as tape:
            generator_loss = tf.reduce_mean(self._cross_entropy(
                self.discriminator(self(z, training=True), training=True), 1.0))
            scaled = base.replica_scaled_loss(self.optimizer, generator_loss)
        self._apply(self.optimizer, tape, scaled, self.generator.trainable_weights)
        self.discriminator_loss_tracker.update_state(discriminator_loss, sample_weight=batch)
        self.generator_loss_tracker.update_state(generator_loss, sample_weight=batch)
        return {m.name: m.result() for m in self.metrics}

    def test_step(self, data):
        real = tf.cast(check_batch(first_component(data), "evaluation images"), "float32")
        batch = tf.shape(real)[0]
        z = keras.random.normal((batch, self.latent_dim), seed=self.noise_seed_generator)
        fake = self(z)
        discriminator_loss = tf.reduce_mean(
            self._cross_entropy(self.discriminator(real), 1.0)
            + self._cross_entropy(self.discriminator(fake), 0.0))
        generator_loss = tf.reduce_mean(self._cross_entropy(self.discriminator(fake), 1.0))
        self.discriminator_loss_tracker.update_state(discriminator_loss, sample_weight=batch)
        self.generator_loss_tracker.update_state(generator_loss, sample_weight=batch)
        return {m.name: m.result() for m in self.metrics}

    def call(self, inputs, training=False):
        return tf.sigmoid(tf.cast(self.generator(inputs, training=training), "float32"))

    def decode_tensor(self, z, condition=None, training=False):
        """Returns the generator's images in [0, 1] for codes `z` (see `ImageModel`).

        Args:
            z: Codes, a float tensor `(N, latent_dim)`.
            condition: Must be None (the model is unconditional).
            training: Keras's `training` flag, passed to the decoder.
        """
        del condition  # A DCGAN is unconditional.
        return self(z, training=training)

    def predict(self, x, *args, **kwargs):
        """Generates images from codes `x` `(N, latent_dim)`."""
        return keras.Model.predict(self, self.check_codes(x), *args, **kwargs)

    def _constructor_arguments(self):
        return {"generator": self.generator, "discriminator": self.discriminator,
                "seed": self.seed}


def build_dcgan(image_shape=(28, 28, 1), latent_dim=32, filters=(64, 128), seed=None,
                hidden_units=None, name="dcgan"):
    """Builds a `DCGAN` from `networks.build_generator` and `networks.build_discriminator`.

    Args:
        image_shape: `(height, width, channels)` of the images.
        latent_dim: Size of the generator's codes.
        filters: Widths of the discriminator's strided convolutions; the
            generator's transposed convolutions use them in reverse.
        seed: Optional int seeding the codes drawn while training and
            sampling. Initial weights follow Keras's global seed
            (`keras.utils.set_random_seed`).
        hidden_units: None (the DCGAN recipe), or the width of a dense
            hidden layer in both networks, as a VAE's `hidden_units`; with
            the VAE's widths it gives the GAN about the VAE's weights.
        name: Name of the model.

    Returns:
        An uncompiled `DCGAN`.
    """
    generator = networks.build_generator(image_shape, latent_dim, filters, hidden_units)
    discriminator = networks.build_discriminator(image_shape, filters,
                                                 hidden_units=hidden_units)
    return DCGAN(generator, discriminator, seed=seed, name=name)
