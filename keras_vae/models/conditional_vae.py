"""The conditional VAE: encoder and decoder both see the class label."""

import keras
import numpy as np
import tensorflow as tf

from keras_vae import networks
from keras_vae import priors
from keras_vae.models.vae import VAE
from keras_vae.validation import check_images


def check_labels(labels, num_classes, count=None, name="labels"):
    """Returns `labels` as an int32 NumPy vector of classes in [0, num_classes).

    Raises:
        TypeError: labels are not integers.
        ValueError: wrong shape, wrong count, or a class out of range.
    """
    if labels is None:
        raise ValueError(
            f"A ConditionalVAE needs class labels. Received: {name}=None; pass "
            "fit(images, labels) or a dataset of (images, labels) pairs")
    array = np.asarray(labels)
    if array.ndim == 2 and array.shape[1] == 1:
        array = array[:, 0]
    if array.ndim != 1:
        raise ValueError(
            f"{name} must be a vector of class indices (not one-hot). "
            f"Received: {name}.shape={array.shape}")
    if not np.issubdtype(array.dtype, np.integer):
        if np.issubdtype(array.dtype, np.floating) and np.all(array == np.round(array)):
            array = array.astype("int64")
        else:
            raise TypeError(
                f"{name} must hold integer class indices. Received: {name}.dtype={array.dtype}")
    if count is not None and len(array) != count:
        raise ValueError(
            f"{name} must have one label per image. Received: {len(array)} labels "
            f"for {count} images")
    if array.size and (array.min() < 0 or array.max() >= num_classes):
        raise ValueError(
            f"{name} must be in [0, {num_classes}). Received: labels in "
            f"[{array.min()}, {array.max()}]")
    return array.astype("int32")


@keras.saving.register_keras_serializable(package="keras_vae")
class ConditionalVAE(VAE):
    """A VAE whose encoder and decoder are both given the image's class.

    It models `p(x|y)`: `q(z|x, y)`, `p(x|z, y)` and the prior `p(z)`. With
    the label given to the decoder, the code only has to carry what the
    label does not (style, slant, thickness), so `sample(labels)` draws
    images of the chosen classes and `decode(z, labels)` renders one style
    as every class. Training data are `(images, labels)` with integer labels
    in `[0, num_classes)`.

    Args:
        encoder: A model from `[images, one_hot_labels]` to
            `[z_mean, z_log_var]`; see `networks.build_encoder(num_classes=...)`.
        decoder: A model from `[z, one_hot_labels]` to per-pixel likelihood
            parameters; see `networks.build_decoder(num_classes=...)`.
        beta, likelihood, prior, seed: As for `VAE` (the VampPrior needs an
            unconditional encoder and is refused).

    Call arguments:
        inputs: A pair `(images, labels)`.

    Example:

    ```python
    (x_train, y_train), _ = keras_vae.datasets.load("mnist")
    cvae = keras_vae.models.build_conditional_vae(num_classes=10, latent_dim=8)
    cvae.compile(optimizer="adam")
    cvae.fit(x_train, y_train, epochs=5, batch_size=128)
    sevens = cvae.sample([7] * 16)
    ```

    Reference:
        Sohn, Lee and Yan, "Learning Structured Output Representation using
        Deep Conditional Generative Models", 2015.
    """

    def __init__(self, encoder, decoder, beta=1.0, likelihood="bernoulli",
                 prior="normal", seed=None, **kwargs):
        if prior == "vamp" or isinstance(prior, priors.VampPrior):
            raise ValueError(
                "ConditionalVAE does not support the VampPrior (its pseudo-inputs "
                "would need labels). Received: prior='vamp'")
        super().__init__(encoder, decoder, beta=beta, likelihood=likelihood,
                         prior=prior, seed=seed, **kwargs)

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
        """Returns float32 one-hot rows for integer `labels`, checked in the graph."""
        labels = tf.cast(tf.reshape(labels, [-1]), "int32")
        tf.debugging.assert_non_negative(labels, message="labels must be >= 0")
        tf.debugging.assert_less(
            labels, self.num_classes, message=f"labels must be < {self.num_classes}")
        return tf.one_hot(labels, self.num_classes)

    def _require(self, condition):
        if condition is None:
            raise ValueError(
                "A ConditionalVAE needs the one-hot class of each image. Received: "
                "condition=None")
        return condition

    def _encoder_outputs(self, x, training=False, condition=None):
        return self.encoder([x, self._require(condition)], training=training)

    def _decoder_params(self, z, training=False, condition=None):
        return self.decoder([z, self._require(condition)], training=training)

    def _unpack(self, data):
        x, y, _ = keras.utils.unpack_x_y_sample_weight(data)
        if y is None:
            raise ValueError(
                "A ConditionalVAE needs class labels. Received: batches without "
                "labels; pass fit(images, labels) or a dataset of (images, labels)")
        return x, self.one_hot(y)

    def call(self, inputs, training=False):
        if not (isinstance(inputs, (tuple, list)) and len(inputs) == 2):
            raise ValueError(
                "A ConditionalVAE is called on (images, labels). Received: "
                f"{type(inputs).__name__}")
        x, labels = inputs
        return self._reconstruct_tensor(x, training, self.one_hot(labels))

    def predict_step(self, data):
        # Arrays given as predict((images, labels)) arrive as one x; a dataset
        # of (images, labels) pairs arrives as x and y.
        x, y, _ = keras.utils.unpack_x_y_sample_weight(data)
        return self(x if y is None else (x, y), training=False)

    # ------------------------------------------------------ input validation

    def check_input(self, data, name="x", labels=None):
        """Checks images and their labels (given as `(x, labels)` or `labels=`)."""
        if data is None:
            return
        if isinstance(data, tf.data.Dataset):
            first = self._check_dataset(data, name)
            _, y, _ = keras.utils.unpack_x_y_sample_weight(first)
            check_labels(None if y is None else np.asarray(y), self.num_classes,
                         name=f"{name} (first batch labels)")
            return
        if isinstance(data, tuple):
            data, labels, _ = keras.utils.unpack_x_y_sample_weight(data)
        x = check_images(data, name=name, image_shape=self.image_shape)
        check_labels(labels, self.num_classes, count=len(x))

    def _check_x_y(self, x, y, name="x"):
        if isinstance(x, tf.data.Dataset):
            self.check_input(x, name)
        else:
            self.check_input(x, name, labels=y)

    # ------------------------------------------------------------ public API

    def encode(self, x, labels, batch_size=256):
        """Encodes images of the given classes to `(z_mean, z_log_var)` NumPy arrays."""
        x = check_images(x, image_shape=self.image_shape)
        labels = check_labels(labels, self.num_classes, count=len(x))
        return self._encode_batches(x, labels, batch_size)

    def decode(self, z, labels, batch_size=256):
        """Decodes codes as images of the given classes, NumPy `(N, *image_shape)`."""
        z = self.check_codes(z)
        labels = check_labels(labels, self.num_classes, count=len(z))
        images = [
            np.asarray(self._decode_tensor(
                tf.constant(z[start:start + batch_size]), False,
                self.one_hot(labels[start:start + batch_size])))
            for start in range(0, len(z), batch_size)
        ]
        return np.concatenate(images)

    def reconstruct(self, x, labels, batch_size=256):
        """Reconstructs images of known classes through the posterior mean."""
        labels = check_labels(labels, self.num_classes, count=len(np.asarray(x)))
        return self.predict((x, labels), batch_size=batch_size, verbose=0)

    def sample(self, labels, seed=None):
        """Generates one image of each class in `labels` (prior codes, given classes).

        Args:
            labels: Integer classes, one per image wanted.
            seed: Optional int; the same seed gives the same images.

        Returns:
            A NumPy array of images, shape `(len(labels), *image_shape)`.
        """
        labels = check_labels(labels, self.num_classes)
        if not len(labels):
            raise ValueError("labels must not be empty. Received: labels=[]")
        return self.decode(self.draw_codes(len(labels), seed), labels)


def build_conditional_vae(image_shape=(28, 28, 1), num_classes=10, latent_dim=16,
                          filters=(32, 64), hidden_units=256, beta=1.0,
                          likelihood="bernoulli", prior="normal", seed=None,
                          name="conditional_vae"):
    """Builds a `ConditionalVAE` with the networks of `keras_vae.networks`."""
    encoder = networks.build_encoder(image_shape, latent_dim, filters, hidden_units,
                                     num_classes=num_classes)
    decoder = networks.build_decoder(image_shape, latent_dim, filters, hidden_units,
                                     num_classes=num_classes)
    return ConditionalVAE(encoder, decoder, beta=beta, likelihood=likelihood,
                          prior=prior, seed=seed, name=name)
