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


@keras.saving.register_keras_serializable(package="keras_vae")
class VectorQuantizer(keras.layers.Layer):
    """Replaces each vector by its nearest codebook entry, with a straight-through gradient.

    The bottleneck of a VQ-VAE. The last axis of the input holds vectors of
    `embedding_dim`; each is replaced by the nearest of `num_embeddings`
    codebook vectors `e_k` (squared Euclidean distance), so a code map is a
    grid of integer indices. The lookup has no gradient, so the output is
    written `z_e + stop_gradient(e_k - z_e)`: its value is `e_k`, its
    gradient with respect to `z_e` the identity (the straight-through
    estimator). Two terms train the rest, per image and summed over every
    position and dimension of its code map (the `||.||^2` of the paper):

    - the codebook loss `||stop_gradient(z_e) - e_k||^2`, which moves the
      codebook towards the encoder outputs;
    - the commitment loss `||z_e - stop_gradient(e_k)||^2`, which keeps the
      encoder close to its codes; it enters the objective times `beta`.

    With `ema_decay` set the codebook is not trained by gradients but is the
    exponential moving average of the encoder outputs assigned to each code
    (Razavi et al. 2019, appendix; the counts are Laplace-smoothed with
    `epsilon` so that an unused code does not divide by zero); the codebook
    loss is then still reported but should not be minimised. With
    `restart_after` set, a code unused for that many training calls in a
    row is re-initialised to a random encoder output of the current batch
    (a dead-code restart). Under a `tf.distribute` strategy the EMA
    statistics, the codebook and the counters are averaged over the
    replicas when assigned (their variables aggregate by mean), so each
    replica's restart vector is averaged too.

    Three ways to use it:

    - `compute_quantization(inputs, training)` returns everything as a dict:
      `"quantized"` (straight-through), `"indices"` (int32, the input's
      shape without its last axis), `"codebook_loss"` and
      `"commitment_loss"` (float32 `(batch,)`), `"perplexity"` and
      `"usage"` (float32 scalars: `exp` of the entropy of the batch's code
      frequencies, and the fraction of codes used in the batch). This is
      what `keras_vae.models.VQVAE` calls.
    - Calling the layer returns the quantized tensor and adds the batch mean
      of `codebook_loss + beta * commitment_loss` with `add_loss` (without
      the codebook term under EMA), so a user's own functional or
      subclassed model trained with `fit` gets the VQ terms in its loss.
    - `indices(inputs)` gives the code indices, `lookup(indices)` the
      codebook vectors of an index map, and `losses_for(inputs, indices)`
      the two per-image terms.

    Args:
        num_embeddings: K, the number of codebook vectors, an int >= 2.
        embedding_dim: D, the size of each vector (the input's last axis).
        beta: Weight of the commitment loss, a float >= 0 (0.25 in the paper).
        ema_decay: None to learn the codebook by gradient, or the decay of
            its exponential moving average, a float in (0, 1) such as 0.99.
        epsilon: The Laplace smoothing of the EMA cluster counts.
        restart_after: None, or the number of consecutive training calls a
            code may go unused before it is restarted, an int >= 1.
        seed: Optional int seeding the codebook's initialisation and the
            restarts (`keras.random.SeedGenerator`).
        **kwargs: Standard `keras.layers.Layer` arguments.

    Call arguments:
        inputs: Encoder outputs `(batch, ..., embedding_dim)`.
        training: Whether to update the EMA codebook and the restart counters.

    Returns:
        The quantized tensor, the same shape as `inputs` (float32).

    Example:

    ```python
    import keras, keras_vae
    inputs = keras.Input((28, 28, 1))
    h = keras.layers.Conv2D(16, 4, strides=4, name="encode")(inputs)  # (7, 7, 16)
    quantizer = keras_vae.layers.VectorQuantizer(64, 16, ema_decay=0.99, seed=0)
    q = quantizer(h)                                           # adds the VQ losses
    outputs = keras.layers.Conv2DTranspose(1, 4, strides=4, activation="sigmoid")(q)
    model = keras.Model(inputs, outputs)
    model.compile("adam", loss="binary_crossentropy")
    codes = quantizer.indices(model.get_layer("encode")(x))  # int32 (N, 7, 7)
    ```

    Reference:
        van den Oord et al., "Neural Discrete Representation Learning", 2017,
        https://arxiv.org/abs/1711.00937;
        Razavi et al., "Generating Diverse High-Fidelity Images with
        VQ-VAE-2", 2019, https://arxiv.org/abs/1906.00446
    """

    def __init__(self, num_embeddings, embedding_dim, beta=0.25, ema_decay=None,
                 epsilon=1e-5, restart_after=None, seed=None, **kwargs):
        super().__init__(**kwargs)
        for arg_name, value, minimum in (("num_embeddings", num_embeddings, 2),
                                         ("embedding_dim", embedding_dim, 1)):
            if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
                raise ValueError(f"{arg_name} must be an int >= {minimum}. "
                                 f"Received: {arg_name}={value!r}")
        if isinstance(beta, bool) or not isinstance(beta, (int, float)) or not beta >= 0:
            raise ValueError(f"beta must be a float >= 0. Received: beta={beta!r}")
        if ema_decay is not None and (isinstance(ema_decay, bool)
                                      or not isinstance(ema_decay, (int, float))
                                      or not 0 < ema_decay < 1):
            raise ValueError("ema_decay must be None or a float in (0, 1). "
                             f"Received: ema_decay={ema_decay!r}")
        if isinstance(epsilon, bool) or not isinstance(epsilon, (int, float)) or not epsilon > 0:
            raise ValueError(f"epsilon must be a float > 0. Received: epsilon={epsilon!r}")
        if restart_after is not None and (isinstance(restart_after, bool)
                                          or not isinstance(restart_after, int)
                                          or restart_after < 1):
            raise ValueError("restart_after must be None or an int >= 1. "
                             f"Received: restart_after={restart_after!r}")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
            raise TypeError(f"seed must be an int or None. Received: seed={seed!r}")
        self.num_embeddings = num_embeddings
        self.embedding_dim = embedding_dim
        self.beta = float(beta)
        self.ema_decay = None if ema_decay is None else float(ema_decay)
        self.epsilon = float(epsilon)
        self.restart_after = restart_after
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed, name="seed_generator")

    @property
    def ema(self):
        """Whether the codebook is an exponential moving average (`ema_decay` is set)."""
        return self.ema_decay is not None

    def build(self, input_shape=None):
        if input_shape is not None and input_shape[-1] != self.embedding_dim:
            raise ValueError(
                f"VectorQuantizer expects inputs whose last axis is embedding_dim="
                f"{self.embedding_dim}. Received: input shape {tuple(input_shape)}")
        shape = (self.num_embeddings, self.embedding_dim)
        self.embeddings = self.add_weight(
            name="embeddings", shape=shape, dtype="float32", trainable=not self.ema,
            initializer=keras.initializers.VarianceScaling(distribution="uniform",
                                                           seed=self.seed),
            autocast=False)
        if self.ema:
            self.ema_counts = self.add_weight(
                name="ema_counts", shape=(self.num_embeddings,), dtype="float32",
                initializer="zeros", trainable=False, aggregation="mean", autocast=False)
            self.ema_sums = self.add_weight(
                name="ema_sums", shape=shape, dtype="float32", initializer="zeros",
                trainable=False, aggregation="mean", autocast=False)
            self.ema_initialized = self.add_weight(
                name="ema_initialized", shape=(), dtype="float32", initializer="zeros",
                trainable=False, aggregation="mean", autocast=False)
        if self.restart_after is not None:
            self.unused_steps = self.add_weight(
                name="unused_steps", shape=(self.num_embeddings,), dtype="float32",
                initializer="zeros", trainable=False, aggregation="mean", autocast=False)
        self.built = True

    # ------------------------------------------------------------ the maths

    def _flat(self, inputs):
        inputs = tf.cast(inputs, "float32")
        if inputs.shape.rank is not None and inputs.shape[-1] != self.embedding_dim:
            raise ValueError(
                f"VectorQuantizer expects inputs whose last axis is embedding_dim="
                f"{self.embedding_dim}. Received: inputs.shape={tuple(inputs.shape)}")
        return inputs, tf.reshape(inputs, [-1, self.embedding_dim])

    def _nearest(self, flat):
        """Index of the nearest codebook vector of each row of `flat`, int32."""
        distances = (tf.reduce_sum(tf.square(flat), axis=1, keepdims=True)
                     - 2.0 * tf.matmul(flat, self.embeddings, transpose_b=True)
                     + tf.reduce_sum(tf.square(self.embeddings), axis=1)[None, :])
        return tf.argmin(distances, axis=1, output_type=tf.int32)

    def indices(self, inputs):
        """Returns the index of the nearest codebook vector at every position, int32.

        Args:
            inputs: Encoder outputs `(batch, ..., embedding_dim)`.

        Returns:
            An int32 tensor of shape `inputs.shape[:-1]`.
        """
        if not self.built:
            self.build(tuple(inputs.shape))
        inputs, flat = self._flat(inputs)
        return tf.reshape(self._nearest(flat), tf.shape(inputs)[:-1])

    def lookup(self, indices):
        """Returns the codebook vectors of an index map, float32 `(*indices.shape, embedding_dim)`."""
        if not self.built:
            self.build()
        return tf.gather(self.embeddings, tf.cast(indices, "int32"))

    def losses_for(self, inputs, indices):
        """Returns `(codebook_loss, commitment_loss)` per image, float32 `(batch,)`.

        `codebook_loss = ||stop_gradient(z_e) - e||^2` and
        `commitment_loss = ||z_e - stop_gradient(e)||^2`, each summed over
        the positions and dimensions of an image's code map; the
        objective adds `codebook_loss + beta * commitment_loss` (or
        `beta * commitment_loss` alone with an EMA codebook).

        Args:
            inputs: Encoder outputs `z_e`, `(batch, ..., embedding_dim)`.
            indices: Their code indices (`indices(inputs)`), `inputs.shape[:-1]`.
        """
        inputs = tf.cast(inputs, "float32")
        codes = self.lookup(indices)
        batch = tf.shape(inputs)[0]

        def per_image(squares):
            return tf.reduce_sum(tf.reshape(squares, [batch, -1]), axis=1)

        codebook = per_image(tf.square(tf.stop_gradient(inputs) - codes))
        commitment = per_image(tf.square(inputs - tf.stop_gradient(codes)))
        return codebook, commitment

    def code_statistics(self, indices):
        """Returns `(perplexity, usage)` of a batch's codes, float32 scalars.

        `perplexity = exp(-sum_k p_k log p_k)` over the codes' frequencies
        `p_k` in the batch (1 when every position has the same code, K when
        the codes are used equally); `usage` is the fraction of the K codes
        used at least once.
        """
        counts = tf.math.bincount(tf.reshape(tf.cast(indices, "int32"), [-1]),
                                  minlength=self.num_embeddings,
                                  maxlength=self.num_embeddings, dtype=tf.float32)
        probabilities = counts / tf.maximum(tf.reduce_sum(counts), 1.0)
        entropy = -tf.reduce_sum(tf.math.multiply_no_nan(
            tf.math.log(probabilities), probabilities))
        usage = tf.reduce_mean(tf.cast(counts > 0, "float32"))
        return tf.exp(entropy), usage

    def _update(self, flat, indices):
        """The training-time updates: the EMA codebook, then dead-code restarts."""
        one_hot = tf.one_hot(indices, self.num_embeddings, dtype="float32")  # (n, K)
        counts = tf.reduce_sum(one_hot, axis=0)
        if self.ema:
            decay = self.ema_decay
            sums = tf.matmul(one_hot, flat, transpose_a=True)  # (K, D)
            # The first update starts the averages from the codebook itself
            # (count 1 per code), so that unused codes keep their vectors.
            first = tf.equal(self.ema_initialized, 0.0)
            old_counts = tf.where(first, tf.ones_like(counts), self.ema_counts)
            old_sums = tf.where(first, self.embeddings, self.ema_sums)
            new_counts = decay * old_counts + (1.0 - decay) * counts
            new_sums = decay * old_sums + (1.0 - decay) * sums
            total = tf.reduce_sum(new_counts)
            smoothed = ((new_counts + self.epsilon)
                        / (total + self.num_embeddings * self.epsilon) * total)
            self.ema_counts.assign(new_counts)
            self.ema_sums.assign(new_sums)
            self.ema_initialized.assign(1.0)
            self.embeddings.assign(new_sums / smoothed[:, None])
        if self.restart_after is not None:
            unused = tf.where(counts > 0, tf.zeros_like(counts), self.unused_steps + 1.0)
            dead = unused >= float(self.restart_after)
            picks = keras.random.randint((self.num_embeddings,), 0, tf.shape(flat)[0],
                                         seed=self.seed_generator, dtype="int32")
            fresh = tf.gather(flat, picks)
            self.embeddings.assign(tf.where(dead[:, None], fresh, self.embeddings))
            if self.ema:
                self.ema_sums.assign(tf.where(dead[:, None], fresh, self.ema_sums))
                self.ema_counts.assign(tf.where(dead, tf.ones_like(counts), self.ema_counts))
            self.unused_steps.assign(tf.where(dead, tf.zeros_like(unused), unused))

    def compute_quantization(self, inputs, training=False):
        """Quantizes `inputs`; returns the dict of the class docstring.

        In training (`training=True`) the EMA codebook and the restart
        counters are updated after the nearest codes are found, so the
        returned codes and losses are those of the codebook before the update.

        Args:
            inputs: Encoder outputs `(batch, ..., embedding_dim)`.
            training: Whether to update the EMA codebook and the restart counters.
        """
        if not self.built:
            self.build(tuple(inputs.shape))
        inputs, flat = self._flat(inputs)
        flat_indices = self._nearest(flat)
        indices = tf.reshape(flat_indices, tf.shape(inputs)[:-1])
        codes = self.lookup(indices)
        codebook_loss, commitment_loss = self.losses_for(inputs, indices)
        perplexity, usage = self.code_statistics(flat_indices)
        quantized = inputs + tf.stop_gradient(codes - inputs)
        if training and (self.ema or self.restart_after is not None):
            self._update(tf.stop_gradient(flat), flat_indices)
        return {"quantized": quantized, "indices": indices, "codebook_loss": codebook_loss,
                "commitment_loss": commitment_loss, "perplexity": perplexity, "usage": usage}

    def call(self, inputs, training=False):
        result = self.compute_quantization(inputs, training=training)
        codebook = 0.0 if self.ema else result["codebook_loss"]
        self.add_loss(tf.reduce_mean(codebook + self.beta * result["commitment_loss"]))
        return result["quantized"]

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        config = super().get_config()
        config.update({"num_embeddings": self.num_embeddings,
                       "embedding_dim": self.embedding_dim, "beta": self.beta,
                       "ema_decay": self.ema_decay, "epsilon": self.epsilon,
                       "restart_after": self.restart_after, "seed": self.seed})
        return config
