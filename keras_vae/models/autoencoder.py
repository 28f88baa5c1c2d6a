"""The plain autoencoder: the same networks as the VAE with a deterministic code."""

import keras
import tensorflow as tf

from keras_vae import likelihoods
from keras_vae import networks
from keras_vae.models import base
from keras_vae.models.base import ImageModel


@keras.saving.register_keras_serializable(package="keras_vae")
class Autoencoder(ImageModel):
    """A deterministic autoencoder: image -> one code -> reconstruction.

    It is a `keras_vae.VAE` with the randomness and the KL term taken out:
    the encoder gives a single code per image (a point, not a distribution),
    and training minimises the reconstruction loss alone, `-log p(x|z)`
    summed over pixels (binary cross-entropy for the default Bernoulli
    likelihood, the VAE's reconstruction term). Nothing shapes the code
    space, so `sample`, which decodes draws from N(0, I) as a VAE does,
    shows what that costs: codes away from the training codes decode to
    noise. Fit a density to the codes (`keras_vae.mixture.ExPostSampler`)
    to sample from an autoencoder properly.

    Its public methods are those of every keras_vae model (see
    `keras_vae.models.base`). The code is a point, so `encode(x)` returns
    `(codes, None)`: the codes and no log-variance; `latent_codes(x)` returns
    the codes alone. An autoencoder is unconditional (`num_classes` is None)
    and refuses `labels`.

    Args:
        encoder: A model from images to codes `(batch, latent_dim)`; see
            `keras_vae.networks.build_encoder(..., variational=False)`.
        decoder: A model from codes to per-pixel likelihood parameters.
        likelihood: Name or layer of p(x|z), as for `VAE`.
        seed: Optional int seeding `sample`.
        **kwargs: Standard `keras.Model` arguments.

    Call arguments:
        inputs: Images in [0, 1].

    Returns:
        The reconstructions (the likelihood's mean), same shape as inputs.

    Example:

    ```python
    autoencoder = keras_vae.models.build_autoencoder((28, 28, 1), latent_dim=16)
    autoencoder.compile(optimizer="adam")
    autoencoder.fit(x_train, epochs=5, batch_size=128)
    codes = autoencoder.latent_codes(x_test)
    ```
    """

    capabilities = frozenset({base.ENCODER, base.LOSSES})
    loss_terms = ("loss",)

    def __init__(self, encoder, decoder, likelihood="bernoulli", seed=None, **kwargs):
        super().__init__(**kwargs)
        for arg_name, model in (("encoder", encoder), ("decoder", decoder)):
            if not isinstance(model, keras.Model):
                raise TypeError(
                    f"{arg_name} must be a keras.Model. Received: {arg_name}={model!r}")
        code_shape = encoder.output_shape
        if not (isinstance(code_shape, tuple) and len(code_shape) == 2
                and isinstance(code_shape[1], int)):
            raise ValueError(
                "encoder must output one code of shape (batch, latent_dim); build it "
                "with networks.build_encoder(..., variational=False). Received: "
                f"encoder output shape {code_shape}")
        self.image_shape = tuple(encoder.input_shape[1:])
        self.latent_dim = code_shape[1]
        if tuple(decoder.input_shape[1:]) != (self.latent_dim,):
            raise ValueError(
                f"decoder must take codes of shape (batch, {self.latent_dim}). "
                f"Received: decoder input shape {decoder.input_shape}")
        if tuple(decoder.output_shape[1:]) != self.image_shape:
            raise ValueError(
                f"decoder must output the encoder's image shape {self.image_shape}. "
                f"Received: decoder output shape {decoder.output_shape}")
        self.encoder = encoder
        self.decoder = decoder
        self.seed = seed
        self.likelihood_layer = likelihoods.get(likelihood)
        if not self.likelihood_layer.built:  # a deserialized one is built already
            self.likelihood_layer.build((None,) + self.image_shape)
        self._init_sampling(seed)
        self._init_loss_trackers()
        self.built = True

    def compute_reconstruction_loss(self, x, training=False):
        """Returns `-log p(x|z)` per image, `z` the deterministic code, float32 `(batch,)`.

        Args:
            x: A batch of images in [0, 1], `(batch, *image_shape)`.
            training: Keras's `training` flag, passed to the encoder and the
                decoder.
        """
        x = tf.cast(x, "float32")
        params = self.decoder(self.encoder(x, training=training), training=training)
        return -self.likelihood_layer.log_prob(params, x)

    def compute_losses(self, x, training=False, condition=None):
        """Returns `{"loss": -log p(x|z)}` per image (the model contract; see `compute_reconstruction_loss`).

        Args:
            x: A batch of images in [0, 1], `(batch, *image_shape)`.
            training: Keras's `training` flag, passed to the networks.
            condition: Must be None (the model is unconditional).
        """
        del condition  # An autoencoder is unconditional.
        return {"loss": self.compute_reconstruction_loss(x, training)}

    def call(self, inputs, training=False):
        inputs = self._checked_call_images(inputs)
        params = self.decoder(self.encoder(inputs, training=training), training=training)
        return self.likelihood_layer.mean(params)

    def encode_tensor(self, x, condition=None, training=False):
        """Returns `(codes, None)`: a point code has no log-variance (see `ImageModel`).

        Args:
            x: A batch of images in [0, 1], a float tensor.
            condition: Must be None (the model is unconditional).
            training: Keras's `training` flag, passed to the encoder.
        """
        del condition  # An autoencoder is unconditional.
        return self.encoder(x, training=training), None

    def decode_tensor(self, z, condition=None, training=False):
        """Returns the likelihood's mean at codes `z`, images in [0, 1] (see `ImageModel`).

        Args:
            z: Codes, a float tensor `(N, latent_dim)`.
            condition: Must be None (the model is unconditional).
            training: Keras's `training` flag, passed to the decoder.
        """
        del condition  # An autoencoder is unconditional.
        return self.likelihood_layer.mean(self.decoder(z, training=training))

    def _constructor_arguments(self):
        return {"encoder": self.encoder, "decoder": self.decoder,
                "likelihood": self.likelihood_layer, "seed": self.seed}


def build_autoencoder(image_shape=(28, 28, 1), latent_dim=32, filters=(32, 64),
                      hidden_units=256, likelihood="bernoulli", seed=None,
                      name="autoencoder"):
    """Builds an `Autoencoder` with the VAE's networks (see `build_vae`).

    Args:
        image_shape: `(height, width, channels)` of the images.
        latent_dim: Size of the code.
        filters: Widths of the encoder's stride-2 convolutions.
        hidden_units: Width of the dense layer in encoder and decoder.
        likelihood: Name or layer of p(x|z), as for `VAE`.
        seed: Optional int seeding `sample`. Initial weights follow Keras's
            global seed (`keras.utils.set_random_seed`).
        name: Name of the model.

    Returns:
        An uncompiled `Autoencoder`.
    """
    encoder = networks.build_encoder(image_shape, latent_dim, filters, hidden_units,
                                     variational=False)
    decoder = networks.build_decoder(image_shape, latent_dim, filters, hidden_units)
    return Autoencoder(encoder, decoder, likelihood=likelihood, seed=seed, name=name)
