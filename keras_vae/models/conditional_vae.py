"""The conditional VAE: encoder and decoder both see the class label."""

import keras
import tensorflow as tf

from keras_vae import networks
from keras_vae import priors
from keras_vae.models import base
from keras_vae.models.vae import VAE


@keras.saving.register_keras_serializable(package="keras_vae")
class ConditionalVAE(VAE):
    """A VAE whose encoder and decoder are both given the image's class.

    It models `p(x|y)`: `q(z|x, y)`, `p(x|z, y)` and the prior `p(z)`. With
    the label given to the decoder, the code only has to carry what the
    label does not (style, slant, thickness), so `sample(n, labels=...)`
    draws images of the chosen classes and `decode(z, labels)` renders one
    style as every class. Training data are `(images, labels)` with integer
    labels in `[0, num_classes)`.

    Its public methods are those of every keras_vae model, with `labels`
    required: `encode(x, labels)` returns `(z_mean, z_log_var)`,
    `latent_codes(x, labels)`, `decode(z, labels)`, `reconstruct(x, labels)`
    and `sample(n, labels, seed=None)`. `labels` holds one int class per
    image, or is one int for all of them (`sample(16, labels=7)`).

    Args:
        encoder: A model from `[images, one_hot_labels]` to
            `[z_mean, z_log_var]`; see `networks.build_encoder(num_classes=...)`.
        decoder: A model from `[z, one_hot_labels]` to per-pixel likelihood
            parameters; see `networks.build_decoder(num_classes=...)`.
        beta, likelihood, prior, seed, importance_samples: As for `VAE` (the
            VampPrior needs an unconditional encoder and is refused).

    Call arguments:
        inputs: A pair `(images, labels)`.

    Example:

    ```python
    (x_train, y_train), _ = keras_vae.datasets.load("mnist")
    cvae = keras_vae.models.build_conditional_vae(num_classes=10, latent_dim=8)
    cvae.compile(optimizer="adam")
    cvae.fit(x_train, y_train, epochs=5, batch_size=128)
    sevens = cvae.sample(16, labels=7)
    ```

    Reference:
        Sohn, Lee and Yan, "Learning Structured Output Representation using
        Deep Conditional Generative Models", 2015.
    """

    capabilities = VAE.capabilities | {base.LABELS}

    def __init__(self, encoder, decoder, beta=1.0, likelihood="bernoulli",
                 prior="normal", seed=None, importance_samples=1, **kwargs):
        if prior == "vamp" or isinstance(prior, priors.VampPrior):
            raise ValueError(
                "ConditionalVAE does not support the VampPrior (its pseudo-inputs "
                "would need labels). Received: prior='vamp'")
        super().__init__(encoder, decoder, beta=beta, likelihood=likelihood,
                         prior=prior, seed=seed, importance_samples=importance_samples,
                         **kwargs)

    def _check_networks(self, encoder, decoder):
        shapes = encoder.input_shape
        if not (isinstance(shapes, list) and len(shapes) == 2):
            raise ValueError(
                "encoder must take [images, one_hot_labels]; build it with "
                "networks.build_encoder(..., num_classes=N). Received: encoder "
                f"input shape {shapes}")
        image_shape, label_shape = tuple(shapes[0][1:]), tuple(shapes[1][1:])
        self.num_classes = label_shape[0]
        mean_shape, _ = (tuple(s) for s in encoder.output_shape)
        latent_dim = mean_shape[1]
        expected = [(latent_dim,), label_shape]
        got = [tuple(s[1:]) for s in decoder.input_shape] if isinstance(
            decoder.input_shape, list) else [tuple(decoder.input_shape[1:])]
        if got != expected:
            raise ValueError(
                f"decoder must take [z, one_hot_labels] of shapes {expected}. "
                f"Received: decoder input shape {decoder.input_shape}")
        if tuple(decoder.output_shape[1:]) != image_shape:
            raise ValueError(
                f"decoder must output the encoder's image shape {image_shape}. "
                f"Received: decoder output shape {decoder.output_shape}")
        return image_shape, latent_dim

    # ----------------------------------------------------------------- maths

    def one_hot(self, labels):
        """Returns float32 one-hot rows for integer `labels`, checked in the graph (None: None)."""
        if labels is None:
            return None
        labels = tf.cast(tf.reshape(labels, [-1]), "int32")
        tf.debugging.assert_non_negative(labels, message="labels must be >= 0")
        tf.debugging.assert_less(
            labels, self.num_classes, message=f"labels must be < {self.num_classes}")
        return tf.one_hot(labels, self.num_classes)

    def _require(self, condition):
        if condition is None:
            raise ValueError(
                "ConditionalVAE needs the one-hot class of each image. Received: "
                "condition=None")
        return condition

    def _encoder_outputs(self, x, training=False, condition=None):
        return self.encoder([x, self._require(condition)], training=training)

    def _decoder_params(self, z, training=False, condition=None):
        return self.decoder([z, self._require(condition)], training=training)

    def unpack(self, data):
        x, y, _ = keras.utils.unpack_x_y_sample_weight(data)
        if y is None:
            raise ValueError(
                "ConditionalVAE needs class labels. Received: batches without "
                "labels; pass fit(images, labels) or a dataset of (images, labels)")
        return x, self.one_hot(y)

    def call(self, inputs, training=False):
        if not (isinstance(inputs, (tuple, list)) and len(inputs) == 2):
            raise ValueError(
                "A ConditionalVAE is called on (images, labels). Received: "
                f"{type(inputs).__name__}")
        x, labels = inputs
        x = self._checked_call_images(x, labels)
        return self._reconstruct_tensor(x, training, self.one_hot(labels))

    def predict_step(self, data):
        # Arrays given as predict((images, labels)) arrive as one x; a dataset
        # of (images, labels) pairs arrives as x and y.
        x, y, _ = keras.utils.unpack_x_y_sample_weight(data)
        return self(x if y is None else (x, y), training=False)


def build_conditional_vae(image_shape=(28, 28, 1), num_classes=10, latent_dim=16,
                          filters=(32, 64), hidden_units=256, beta=1.0,
                          likelihood="bernoulli", prior="normal", seed=None,
                          importance_samples=1, name="conditional_vae"):
    """Builds a `ConditionalVAE` with the networks of `keras_vae.networks`.

    Args:
        image_shape: `(height, width, channels)` of the images.
        num_classes: Number of classes; labels are ints in
            `[0, num_classes)`.
        latent_dim: Size of the latent code.
        filters: Widths of the encoder's stride-2 convolutions.
        hidden_units: Width of the dense layer in encoder and decoder.
        beta: Weight of the KL term.
        likelihood: Name or layer of p(x|z) (see `VAE`).
        prior: Name or layer of p(z) (see `VAE`; the VampPrior is refused).
        seed: Optional int seeding the sampling noise. Initial weights
            follow Keras's global seed (`keras.utils.set_random_seed`).
        importance_samples: Codes per image of the training objective (see
            `VAE`).
        name: Name of the model.

    Returns:
        An uncompiled `ConditionalVAE`.
    """
    encoder = networks.build_encoder(image_shape, latent_dim, filters, hidden_units,
                                     num_classes=num_classes)
    decoder = networks.build_decoder(image_shape, latent_dim, filters, hidden_units,
                                     num_classes=num_classes)
    return ConditionalVAE(encoder, decoder, beta=beta, likelihood=likelihood,
                          prior=prior, seed=seed, importance_samples=importance_samples,
                          name=name)
