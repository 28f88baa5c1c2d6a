"""Layers that VAEs are made of, reusable in any Keras model."""

import keras
import tensorflow as tf
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


_ELEMENTWISE_ACTIVATIONS = ("linear", "relu", "sigmoid", "tanh", "elu", "selu", "gelu",
                            "silu", "leaky_relu", "softplus")
"""Activations that act pixel by pixel, so they commute with `depth_to_space`."""


def _phase_taps(kernel_size, stride, pad_before):
    """Kernel taps of a strided transposed convolution, phase by phase.

    Output pixel `o = stride * m + a` (phase `a`) sums `in[m + d] * w[k]` over
    the taps `k` with `stride * (m + d) + k - pad_before = o`. Returns the
    offsets `d` every phase uses (`range(low, high + 1)`) and a table
    `taps[a][d - low]`: the tap `k`, or `kernel_size` (a zero tap) where the
    phase has none at that offset.
    """
    offsets = {}
    for a in range(stride):
        for k in range(kernel_size):
            if (a + pad_before - k) % stride == 0:
                offsets[(a, (a + pad_before - k) // stride)] = k
    low = min(d for _, d in offsets)
    high = max(d for _, d in offsets)
    taps = [[offsets.get((a, d), kernel_size) for d in range(low, high + 1)]
            for a in range(stride)]
    return low, high, taps


@keras.saving.register_keras_serializable(package="keras_vae")
class SubpixelConv2DTranspose(keras.layers.Conv2DTranspose):
    """`keras.layers.Conv2DTranspose` that evaluates in bfloat16 as a sub-pixel convolution.

    The same layer (arguments, weights, outputs to rounding). When it runs
    in bfloat16 outside training, it computes another way, exact in
    arithmetic: a stride-`s` transposed convolution with "same" padding
    equals an ordinary convolution with `s * s` times the filters followed
    by `depth_to_space(s)` (the sub-pixel convolution of Shi et al., 2016).
    The ordinary convolution takes the bias and the activation into its
    oneDNN kernel, where the transposed one leaves them to separate
    element-wise passes over its large output, which took about 70% of
    keras_vae's bfloat16 decoder on an AMX Xeon. Measured there
    (`python -m benchmarks.throughput --subpixel`, `benchmarks/RESULTS.md`):
    the importance-weighted bound of the default model evaluated 2.4x as
    fast in bfloat16; but float32 ran 0.76x as fast (evaluation) and 0.68x
    (training), and bfloat16 training 0.04x (its backward pass, not
    investigated further). So training,
    float32 and float16 keep `Conv2DTranspose`'s own computation, and so do
    the configurations the sub-pixel form does not cover (dilation, unequal
    strides, "valid" padding, `output_padding`, channels first, an
    activation that is not pixel by pixel).

    Args: those of `keras.layers.Conv2DTranspose`.

    Call arguments:
        inputs: Images `(batch, height, width, channels)`.
        training: Keras's flag; True keeps `Conv2DTranspose`'s computation.

    Example:

    ```python
    import keras, keras_vae
    inputs = keras.Input((7, 7, 64))
    x = keras_vae.layers.SubpixelConv2DTranspose(32, 3, strides=2, padding="same",
                                                 activation="relu")(inputs)
    model = keras.Model(inputs, x)  # outputs (None, 14, 14, 32)
    ```

    Reference:
        Shi et al., "Real-Time Single Image and Video Super-Resolution Using
        an Efficient Sub-Pixel Convolutional Neural Network", 2016,
        https://arxiv.org/abs/1609.05158
    """

    def _subpixel_plan(self):
        stride = self.strides[0]
        elementwise = any(self.activation is keras.activations.get(name)
                          for name in _ELEMENTWISE_ACTIVATIONS)
        if (self.padding != "same" or self.data_format != "channels_last"
                or self.strides[0] != self.strides[1] or stride < 2
                or self.kernel_size[0] != self.kernel_size[1]
                or tuple(self.dilation_rate) != (1, 1) or self.output_padding is not None
                or not elementwise):
            return None
        size = self.kernel_size[0]
        return stride, _phase_taps(size, stride, max(size - stride, 0) // 2)

    def call(self, inputs, training=None):
        plan = self._subpixel_plan()
        if plan is None or training or self.compute_dtype != "bfloat16":
            return super().call(inputs)
        return self._subpixel_call(inputs, plan)

    def _subpixel_call(self, inputs, plan):
        """The sub-pixel computation, in the layer's compute dtype."""
        stride, (low, high, taps) = plan
        kernel = ops.cast(self.kernel, self.compute_dtype)  # (k, k, filters, in)
        kernel = tf.transpose(kernel, [0, 1, 3, 2])
        kernel = tf.pad(kernel, [[0, 1], [0, 1], [0, 0], [0, 0]])  # the zero tap
        blocks = [tf.gather(tf.gather(kernel, taps[a], axis=0), taps[b], axis=1)
                  for a in range(stride) for b in range(stride)]
        outputs = tf.nn.conv2d(inputs, tf.concat(blocks, axis=-1), 1,
                               padding=[[0, 0], [-low, high], [-low, high], [0, 0]])
        if self.use_bias:
            outputs = tf.nn.bias_add(outputs, tf.tile(ops.cast(self.bias, self.compute_dtype),
                                                      [stride * stride]))
        if self.activation is not None:
            outputs = self.activation(outputs)
        return tf.nn.depth_to_space(outputs, stride)
