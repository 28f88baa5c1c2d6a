"""The keras.io "Variational AutoEncoder" example, as the benchmarks' baseline.

`build_networks` gives its encoder and decoder (conv 32/64 stride 2, dense 16,
latent 2; the decoder mirrors it with transposed convolutions); `MinimalVAE`
is the example's hand-written `keras.Model` with its own `train_step`. The
decoder outputs logits; `MinimalVAE` applies the example's sigmoid and
binary cross-entropy, while `keras_vae.VAE` uses the logits directly.
"""

import keras
import tensorflow as tf
from keras import ops

from keras_vae import networks


def build_networks(image_shape=(28, 28, 1), latent_dim=2):
    """Returns the example's (encoder, decoder), the decoder emitting logits."""
    encoder = networks.build_encoder(image_shape, latent_dim=latent_dim, filters=(32, 64),
                                     hidden_units=16)
    height, width, channels = image_shape
    z = keras.Input((latent_dim,))
    x = keras.layers.Dense((height // 4) * (width // 4) * 64, activation="relu")(z)
    x = keras.layers.Reshape((height // 4, width // 4, 64))(x)
    x = keras.layers.Conv2DTranspose(64, 3, strides=2, padding="same", activation="relu")(x)
    x = keras.layers.Conv2DTranspose(32, 3, strides=2, padding="same", activation="relu")(x)
    logits = keras.layers.Conv2DTranspose(channels, 3, padding="same")(x)
    return encoder, keras.Model(z, logits, name="decoder")


class MinimalVAE(keras.Model):
    """The keras.io example's training loop, written the way the example writes it."""

    def __init__(self, encoder, decoder, **kwargs):
        super().__init__(**kwargs)
        self.encoder = encoder
        self.decoder = decoder
        self.seed_generator = keras.random.SeedGenerator(0)
        self.total_loss_tracker = keras.metrics.Mean(name="loss")
        self.reconstruction_loss_tracker = keras.metrics.Mean(name="reconstruction_loss")
        self.kl_loss_tracker = keras.metrics.Mean(name="kl_loss")

    @property
    def metrics(self):
        return [self.total_loss_tracker, self.reconstruction_loss_tracker,
                self.kl_loss_tracker]

    def train_step(self, data):
        with tf.GradientTape() as tape:
            # The casts (no-ops in float32) let the loop run under mixed precision.
            z_mean, z_log_var = (ops.cast(t, "float32") for t in self.encoder(data))
            epsilon = keras.random.normal(ops.shape(z_mean), seed=self.seed_generator)
            z = z_mean + ops.exp(0.5 * z_log_var) * epsilon
            reconstruction = ops.sigmoid(ops.cast(self.decoder(z), "float32"))
            reconstruction_loss = ops.mean(ops.sum(
                keras.losses.binary_crossentropy(data, reconstruction), axis=(1, 2)))
            kl_loss = -0.5 * (1 + z_log_var - ops.square(z_mean) - ops.exp(z_log_var))
            kl_loss = ops.mean(ops.sum(kl_loss, axis=1))
            total_loss = reconstruction_loss + kl_loss
        grads = tape.gradient(total_loss, self.trainable_weights)
        self.optimizer.apply_gradients(zip(grads, self.trainable_weights))
        self.total_loss_tracker.update_state(total_loss)
        self.reconstruction_loss_tracker.update_state(reconstruction_loss)
        self.kl_loss_tracker.update_state(kl_loss)
        return {m.name: m.result() for m in self.metrics}


class LayersOnly(keras.Model):
    """The same layers trained with no sampling, likelihood, KL or metrics.

    Its step is forward and backward through the encoder and decoder plus
    Adam's update: the work every VAE loop with these layers must do, so its
    throughput is a ceiling for any such loop, hand-written or library.
    """

    def __init__(self, encoder, decoder, **kwargs):
        super().__init__(**kwargs)
        self.encoder = encoder
        self.decoder = decoder

    def train_step(self, data):
        with tf.GradientTape() as tape:
            z_mean, z_log_var = self.encoder(data)
            loss = ops.mean(self.decoder(z_mean + z_log_var))
        grads = tape.gradient(loss, self.trainable_weights)
        self.optimizer.apply_gradients(zip(grads, self.trainable_weights))
        return {"loss": loss}


def forward_flops(model):
    """Multiply-adds x 2 of one image's forward pass through Dense and conv layers."""
    total = 0
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            total += forward_flops(layer)
        elif isinstance(layer, keras.layers.Dense):
            total += 2 * layer.input.shape[-1] * layer.units
        elif isinstance(layer, keras.layers.Conv2DTranspose):
            _, height, width, channels = layer.input.shape
            kh, kw = layer.kernel_size
            total += 2 * height * width * channels * layer.filters * kh * kw
        elif isinstance(layer, keras.layers.Conv2D):
            _, height, width, _ = layer.output.shape
            kh, kw = layer.kernel_size
            total += 2 * height * width * layer.input.shape[-1] * layer.filters * kh * kw
    return total
