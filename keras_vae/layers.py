"""Layers that VAEs are made of, reusable in any Keras model."""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="keras_vae")
class Sampling(keras.layers.Layer):
    """Draws `z ~ N(z_mean, exp(z_log_var))` with the reparameterization trick.

    A VAE's encoder predicts a Gaussian per input rather than a single code.
    Sampling from that Gaussian directly would block gradients, so the sample
    is written as a deterministic function of the parameters and independent
    noise: `z = z_mean + exp(z_log_var / 2) * eps` with `eps ~ N(0, I)`.
    Gradients then flow into `z_mean` and `z_log_var` through ordinary
    arithmetic.

    The layer samples in both training and inference; use `z_mean` itself
    where a deterministic code is wanted. It works for any batch size
    (including an unknown one) and any latent size.

    Args:
        seed: Optional int seeding the layer's `keras.random.SeedGenerator`,
            so that a model built twice with the same seed draws the same noise.
        **kwargs: Standard `keras.layers.Layer` arguments (`name`, `dtype`...).

    Call arguments:
        inputs: A list `[z_mean, z_log_var]` of two tensors of the same shape
            `(batch_size, ..., latent_dim)`.

    Returns:
        A tensor of the same shape as `z_mean`.

    Example:

    ```python
    import keras, keras_vae
    inputs = keras.Input((8,))
    z_mean = keras.layers.Dense(2)(inputs)
    z_log_var = keras.layers.Dense(2)(inputs)
    z = keras_vae.Sampling(seed=1)([z_mean, z_log_var])
    model = keras.Model(inputs, z)
    ```

    Reference:
        Kingma and Welling, "Auto-Encoding Variational Bayes", 2013,
        https://arxiv.org/abs/1312.6114
    """

    def __init__(self, seed=None, **kwargs):
        super().__init__(**kwargs)
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
            raise TypeError(f"seed must be an int or None. Received: seed={seed!r}")
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed, name="seed_generator")

    def _split_inputs(self, inputs):
        if not isinstance(inputs, (list, tuple)) or len(inputs) != 2:
            raise ValueError(
                "Sampling expects a list [z_mean, z_log_var] of two tensors. "
                f"Received: inputs={inputs!r}"
            )
        return inputs

    def build(self, input_shape):
        shapes = self._split_inputs(input_shape)
        if not all(isinstance(shape, (list, tuple)) for shape in shapes):
            raise ValueError(
                "Sampling expects a list [z_mean, z_log_var] of two tensors. "
                f"Received: one input of shape {tuple(input_shape)}"
            )
        mean_shape, log_var_shape = shapes
        if tuple(mean_shape) != tuple(log_var_shape):
            raise ValueError(
                "z_mean and z_log_var must have the same shape. Received: "
                f"z_mean.shape={tuple(mean_shape)}, "
                f"z_log_var.shape={tuple(log_var_shape)}"
            )
        self.built = True

    def call(self, inputs):
        z_mean, z_log_var = self._split_inputs(inputs)
        eps = keras.random.normal(
            ops.shape(z_mean), dtype=z_mean.dtype, seed=self.seed_generator
        )
        return z_mean + ops.exp(0.5 * z_log_var) * eps

    def compute_output_shape(self, input_shape):
        return tuple(self._split_inputs(input_shape)[0])

    def get_config(self):
        config = super().get_config()
        config["seed"] = self.seed
        return config
