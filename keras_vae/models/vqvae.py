"""The VQ-VAE: discrete codes from a learned codebook, and a PixelCNN prior over them."""

import math

import keras
import numpy as np
import tensorflow as tf

from keras_vae import likelihoods
from keras_vae.layers import VectorQuantizer
from keras_vae.models import base
from keras_vae.models.base import ImageModel
from keras_vae.validation import check_int


@keras.saving.register_keras_serializable(package="keras_vae")
class MaskedConv2D(keras.layers.Conv2D):
    """A `Conv2D` that sees only the pixels before the current one (raster order).

    The building block of a PixelCNN: the kernel is multiplied by a mask
    that zeroes the taps below the centre row and right of the centre on
    it. Mask `"A"` (the first layer) also zeroes the centre, so an output
    never sees its own input; mask `"B"` (every later layer) keeps it.

    Args:
        mask_type: `"A"` or `"B"`.
        **kwargs: The arguments of `keras.layers.Conv2D` (`padding="same"`).

    Call arguments:
        inputs: Feature maps `(batch, height, width, channels)`.

    Returns:
        The masked convolution's output, as `Conv2D`'s.

    Reference:
        van den Oord et al., "Pixel Recurrent Neural Networks", 2016,
        https://arxiv.org/abs/1601.06759
    """

    def __init__(self, mask_type, **kwargs):
        super().__init__(**kwargs)
        if mask_type not in ("A", "B"):
            raise ValueError(f"mask_type must be 'A' or 'B'. Received: mask_type={mask_type!r}")
        self.mask_type = mask_type

    def build(self, input_shape):
        super().build(input_shape)
        rows, cols = self.kernel_size
        mask = np.ones(tuple(self.kernel.shape), "float32")
        mask[rows // 2, cols // 2 + (self.mask_type == "B"):] = 0.0
        mask[rows // 2 + 1:] = 0.0
        self.mask = mask

    def convolution_op(self, inputs, kernel):
        return super().convolution_op(inputs, kernel * keras.ops.cast(self.mask, kernel.dtype))

    def get_config(self):
        return {**super().get_config(), "mask_type": self.mask_type}


def build_pixelcnn_prior(code_shape, num_embeddings, filters=64, residual_blocks=2,
                         output_layers=2, name="pixelcnn_prior"):
    """Builds a PixelCNN over code maps: indices in, per-position logits out.

    The PixelCNN of the keras.io VQ-VAE example (masked convolutions and
    residual blocks; not the gated variant): the index map is one-hot
    encoded, a 7x7 convolution with mask "A", `residual_blocks` blocks
    (1x1, masked 3x3 "B", 1x1, each with a ReLU, added to their input),
    `output_layers` masked 1x1 "B" convolutions, and a 1x1 convolution to
    `num_embeddings` logits. Position `(i, j)`'s logits depend only on the
    codes before it in raster order, so `p(codes) = prod p(c_ij | c_<ij)`.

    Args:
        code_shape: `(height, width)` of the code maps.
        num_embeddings: K, the number of codes.
        filters: Width of every hidden layer.
        residual_blocks: Number of residual blocks.
        output_layers: Number of masked 1x1 layers before the logits.
        name: Name of the model.

    Returns:
        A `keras.Model` from int32 `(batch, height, width)` to float32 logits
        `(batch, height, width, num_embeddings)`.

    Reference:
        van den Oord et al., "Conditional Image Generation with PixelCNN
        Decoders", 2016, https://arxiv.org/abs/1606.05328
    """
    code_shape = tuple(code_shape)
    if len(code_shape) != 2 or not all(isinstance(d, int) and d > 0 for d in code_shape):
        raise ValueError(f"code_shape must be (height, width), two positive ints. "
                         f"Received: code_shape={code_shape}")
    check_int("num_embeddings", num_embeddings, minimum=2)
    check_int("filters", filters)
    check_int("residual_blocks", residual_blocks, minimum=0)
    check_int("output_layers", output_layers, minimum=0)
    codes = keras.Input(code_shape, dtype="int32", name="codes")
    x = OneHot(num_embeddings, name="one_hot")(codes)
    x = MaskedConv2D("A", filters=filters, kernel_size=7, padding="same", activation="relu",
                     name="masked_a")(x)
    for block in range(residual_blocks):
        h = keras.layers.Conv2D(filters, 1, activation="relu", name=f"block{block}_in")(x)
        h = MaskedConv2D("B", filters=filters // 2 or 1, kernel_size=3, padding="same",
                         activation="relu", name=f"block{block}_masked")(h)
        h = keras.layers.Conv2D(filters, 1, activation="relu", name=f"block{block}_out")(h)
        x = keras.layers.Add(name=f"block{block}_add")([x, h])
    for layer in range(output_layers):
        x = MaskedConv2D("B", filters=filters, kernel_size=1, activation="relu",
                         name=f"output{layer}")(x)
    logits = keras.layers.Conv2D(num_embeddings, 1, dtype="float32", name="logits")(x)
    return keras.Model(codes, logits, name=name)


@keras.saving.register_keras_serializable(package="keras_vae")
class OneHot(keras.layers.Layer):
    """One-hot encodes int indices: `(batch, ...)` -> float `(batch, ..., depth)`."""

    def __init__(self, depth, **kwargs):
        super().__init__(**kwargs)
        self.depth = check_int("depth", depth)

    def call(self, inputs):
        return tf.one_hot(tf.cast(inputs, "int32"), self.depth, dtype=self.compute_dtype)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape) + (self.depth,)

    def get_config(self):
        return {**super().get_config(), "depth": self.depth}


@keras.saving.register_keras_serializable(package="keras_vae")
class VQVAE(ImageModel):
    """A VQ-VAE: image -> a map of discrete codes -> reconstruction; a PixelCNN prior to sample.

    The encoder gives a map of vectors `z_e` `(h, w, embedding_dim)`; a
    `keras_vae.layers.VectorQuantizer` replaces each by its nearest codebook
    vector, and the decoder renders the quantized map. Training (`fit`,
    through the shared `train_step`) minimises per image

        loss = -log p(x | z_q) + codebook_loss + beta * commitment_loss

    (`-log p(x|z_q)` summed over pixels, as the VAE's reconstruction term;
    with an EMA codebook the codebook loss is reported but left out of
    `loss`, the codebook following its moving average instead). `fit` also
    reports `perplexity` (`exp` of the entropy of the batch's code
    frequencies) and `codebook_usage` (the fraction of the K codes used in
    the batch). Those two are statistics of a batch, not of an image: to
    keep the contract's one Mean tracker per key and the multi-worker
    loop's per-image sums, `compute_losses` gives every image of the batch
    the batch's value, so the epoch figure is the image-weighted mean of
    the batch values (under a distribution strategy, of each replica's
    share of the batch).

    **Codes.** The natural code of a VQ-VAE is its index map, so
    `encode(x)` returns `(indices, None)` with int32 `indices` `(N, h, w)`,
    `decode` takes such maps (or their flattened `(N, h * w)` form), and
    export's decoder takes int32 `codes` `(N, h, w)` (`code_spec`).
    `latent_dim` is `h * w`, the number of codes per image. `reconstruct`
    round-trips through the indices.

    **Prior.** The model holds a PixelCNN over code maps
    (`build_pixelcnn_prior`), trained by `fit_prior(x)` on the codes of
    the training images (`fit` leaves it alone). `sample(n, seed=...)`
    draws code maps from it position by position (ancestral sampling) and
    decodes them; before `fit_prior` has run, `sample` and `draw_codes`
    draw every code uniformly and independently, which decodes to noise
    (`prior_fitted` says which). `prior_nll_bits(x)` is the prior's
    negative log-likelihood of the images' code maps, in bits.

    **Capabilities.** `ENCODER`, `LOSSES` and `CODEBOOK` (`code_statistics`,
    `prior_nll_bits`, `prior_fitted`: what `keras-vae evaluate` reports of
    it). Not `LIKELIHOOD`: `log p(x)` of a VQ-VAE needs the prior over
    codes and a sum over all code maps, and its training loss is no bound
    on it, so the likelihood tools (the IWAE bound, `neg_elbo` anomaly
    scores) raise `MissingCapabilityError`;
    its export scorer gives the reconstruction error. Not `POSTERIOR`: the
    codes are deterministic indices.

    Args:
        encoder: A model from images to `(batch, h, w, embedding_dim)`.
        decoder: A model from `(batch, h, w, embedding_dim)` to per-pixel
            likelihood parameters `(batch, *image_shape)`.
        quantizer: A `keras_vae.layers.VectorQuantizer` of `embedding_dim`.
        likelihood: Name or layer of p(x|z), as for `VAE`.
        prior: A model from int32 code maps `(batch, h, w)` to logits
            `(batch, h, w, K)`; None builds `build_pixelcnn_prior(...)` with
            its defaults.
        seed: Optional int seeding `sample`.
        **kwargs: Standard `keras.Model` arguments.

    Call arguments:
        inputs: Images in [0, 1].

    Returns:
        The reconstructions (the likelihood's mean), same shape as inputs.

    Example:

    ```python
    vqvae = keras_vae.models.build_vqvae((28, 28, 1), num_embeddings=64, embedding_dim=16)
    vqvae.compile(optimizer="adam")
    vqvae.fit(x_train, epochs=5, batch_size=128)
    vqvae.fit_prior(x_train, epochs=10, batch_size=128)
    indices, _ = vqvae.encode(x_test)          # int32 (N, 7, 7)
    images = vqvae.sample(16, seed=0)
    bits = vqvae.prior_nll_bits(x_test).mean()
    ```

    Reference:
        van den Oord et al., "Neural Discrete Representation Learning", 2017,
        https://arxiv.org/abs/1711.00937;
        Razavi et al., "Generating Diverse High-Fidelity Images with
        VQ-VAE-2", 2019, https://arxiv.org/abs/1906.00446
    """

    capabilities = frozenset({base.ENCODER, base.LOSSES, base.CODEBOOK})
    loss_terms = ("loss", "reconstruction_loss", "codebook_loss", "commitment_loss",
                  "perplexity", "codebook_usage")

    def __init__(self, encoder, decoder, quantizer, likelihood="bernoulli", prior=None,
                 seed=None, **kwargs):
        super().__init__(**kwargs)
        for arg_name, model in (("encoder", encoder), ("decoder", decoder)):
            if not isinstance(model, keras.Model):
                raise TypeError(
                    f"{arg_name} must be a keras.Model. Received: {arg_name}={model!r}")
        if not isinstance(quantizer, VectorQuantizer):
            raise TypeError("quantizer must be a keras_vae.layers.VectorQuantizer. "
                            f"Received: quantizer={quantizer!r}")
        code_shape = encoder.output_shape
        if not (isinstance(code_shape, tuple) and len(code_shape) == 4
                and all(isinstance(d, int) for d in code_shape[1:])
                and code_shape[-1] == quantizer.embedding_dim):
            raise ValueError(
                "encoder must output a map (batch, h, w, embedding_dim) with the "
                f"quantizer's embedding_dim={quantizer.embedding_dim}. Received: "
                f"encoder output shape {code_shape}")
        self.image_shape = tuple(encoder.input_shape[1:])
        self.code_shape = tuple(code_shape[1:3])
        self.latent_dim = self.code_shape[0] * self.code_shape[1]
        self.num_embeddings = quantizer.num_embeddings
        if tuple(decoder.input_shape[1:]) != tuple(code_shape[1:]):
            raise ValueError(
                f"decoder must take the encoder's maps {tuple(code_shape[1:])}. "
                f"Received: decoder input shape {decoder.input_shape}")
        if tuple(decoder.output_shape[1:]) != self.image_shape:
            raise ValueError(
                f"decoder must output the encoder's image shape {self.image_shape}. "
                f"Received: decoder output shape {decoder.output_shape}")
        if prior is None:
            prior = build_pixelcnn_prior(self.code_shape, self.num_embeddings)
        if not isinstance(prior, keras.Model) or (
                tuple(prior.output_shape[1:]) != self.code_shape + (self.num_embeddings,)):
            raise ValueError(
                f"prior must be a keras.Model from code maps {self.code_shape} to logits "
                f"{self.code_shape + (self.num_embeddings,)}. Received: prior={prior!r}")
        self.encoder = encoder
        self.decoder = decoder
        self.quantizer = quantizer
        if not quantizer.built:
            quantizer.build((None,) + tuple(code_shape[1:]))
        self.prior = prior
        self.prior.trainable = False  # trained by fit_prior, not by fit
        self.prior_fitted_flag = self.add_weight(
            name="prior_fitted", shape=(), dtype="float32", initializer="zeros",
            trainable=False, autocast=False)
        self.seed = seed
        self.likelihood_layer = likelihoods.get(likelihood)
        if not self.likelihood_layer.built:
            self.likelihood_layer.build((None,) + self.image_shape)
        self._init_sampling(seed)
        self._init_loss_trackers()
        self.built = True

    # ------------------------------------------------------------- contract

    def compute_losses(self, x, training=False, condition=None):
        """Returns the per-image terms of `loss_terms`, float32 `(batch,)` each.

        `reconstruction_loss` is `-log p(x|z_q)` summed over pixels;
        `codebook_loss` and `commitment_loss` are the quantizer's
        (`VectorQuantizer.losses_for`); `loss` adds them as the class
        docstring says. `perplexity` and `codebook_usage` are the batch's
        statistics, repeated for every image (see the class docstring).
        In training an EMA codebook and the dead-code counters are updated.

        Args:
            x: A batch of images in [0, 1], `(batch, *image_shape)`.
            training: Keras's `training` flag; True also updates the quantizer.
            condition: None (a VQ-VAE is unconditional).
        """
        del condition  # A VQ-VAE is unconditional.
        x = tf.cast(x, "float32")
        quantized = self.quantizer.compute_quantization(self.encoder(x, training=training),
                                            training=training)
        params = self.decoder(quantized["quantized"], training=training)
        reconstruction = -self.likelihood_layer.log_prob(params, x)
        commitment = quantized["commitment_loss"]
        codebook = quantized["codebook_loss"]
        loss = reconstruction + self.quantizer.beta * commitment
        if not self.quantizer.ema:
            loss = loss + codebook
        batch = tf.shape(x)[:1]
        return {"loss": loss, "reconstruction_loss": reconstruction,
                "codebook_loss": codebook, "commitment_loss": commitment,
                "perplexity": tf.fill(batch, quantized["perplexity"]),
                "codebook_usage": tf.fill(batch, quantized["usage"])}

    def call(self, inputs, training=False):
        inputs = self._checked_call_images(inputs)
        codes, _ = self.encode_tensor(inputs, training=training)
        return self.decode_tensor(codes, training=training)

    def encode_tensor(self, x, condition=None, training=False):
        """Returns `(indices, None)`: the int32 code map `(N, h, w)` of each image.

        Args:
            x: A batch of images in [0, 1], a float tensor.
            condition: None (a VQ-VAE is unconditional).
            training: Keras's `training` flag, passed to the encoder.
        """
        del condition  # A VQ-VAE is unconditional.
        return self.quantizer.indices(self.encoder(tf.cast(x, "float32"),
                                                   training=training)), None

    def decode_tensor(self, z, condition=None, training=False):
        """Returns the likelihood's mean for code maps `z`, images in [0, 1].

        Args:
            z: Code maps, an int tensor `(N, h, w)` (or flattened `(N, h * w)`).
            condition: None (a VQ-VAE is unconditional).
            training: Keras's `training` flag, passed to the decoder.
        """
        del condition  # A VQ-VAE is unconditional.
        z = tf.reshape(tf.cast(z, "int32"), [-1, *self.code_shape])
        return self.likelihood_layer.mean(self.decoder(self.quantizer.lookup(z),
                                                       training=training))

    @property
    def code_spec(self):
        """Export's decoder input: int32 code maps `(None, h, w)` named `codes`."""
        return tf.TensorSpec([None, *self.code_shape], tf.int32, name="codes")

    @property
    def num_codes(self):
        """K, the codebook size: each position of a code map is an index in `[0, K)`."""
        return self.num_embeddings

    # ------------------------------------------------------------ public API

    def check_codes(self, z):
        """Returns code maps as int32 NumPy `(N, h, w)`, or raises `ValueError`.

        Accepts `(N, h, w)` or the flattened `(N, h * w)`, holding integers
        in `[0, num_embeddings)` (as an int or a float array).
        """
        z = np.asarray(z)
        h, w = self.code_shape
        if z.ndim == 2 and z.shape[1] == h * w:
            z = z.reshape(-1, h, w)
        if z.ndim != 3 or z.shape[1:] != (h, w):
            raise ValueError(f"z must be code maps of shape (N, {h}, {w}) (or (N, {h * w})). "
                             f"Received: z.shape={z.shape}")
        if z.size and (not np.all(np.isfinite(z)) or np.any(z != np.round(z))
                       or z.min() < 0 or z.max() >= self.num_embeddings):
            raise ValueError(f"z must hold code indices, ints in [0, {self.num_embeddings}). "
                             f"Received: values from {z.min()} to {z.max()}")
        return z.astype("int32")

    def encode(self, x, labels=None, batch_size=256):
        """Encodes images to their code maps: `(indices, None)`.

        Args:
            x: Images in [0, 1], shape `(N, *image_shape)`.
            labels: None (a VQ-VAE is unconditional and refuses labels).
            batch_size: Images encoded at a time.

        Returns:
            A pair `(indices, None)`: int32 NumPy `(N, h, w)` code maps, and no
            log-variance (the codes are deterministic).
        """
        codes, _ = super().encode(x, labels, batch_size)
        return codes.reshape((-1, *self.code_shape)).astype("int32"), None

    def sample(self, n, labels=None, seed=None):
        """Generates `n` images by decoding code maps drawn from the prior (`draw_codes`).

        Once `fit_prior` has run, the PixelCNN draws each map position by
        position; before, every code is uniform and independent, which
        decodes to noise.

        Args:
            n: Number of images.
            labels: None (a VQ-VAE is unconditional and refuses labels).
            seed: Optional int; the same seed gives the same images.

        Returns:
            A NumPy array of images, shape `(n, *image_shape)`.
        """
        return super().sample(n, labels, seed)

    @property
    def prior_fitted(self):
        """Whether `fit_prior` has trained the prior (else `sample` draws uniform codes)."""
        return bool(self.prior_fitted_flag.numpy() > 0)

    def fit_prior(self, x, epochs=10, batch_size=128, learning_rate=1e-3,
                  validation_data=None, verbose="auto", callbacks=None):
        """Trains the PixelCNN prior on the code maps of images `x`; returns its History.

        The images are encoded once (`encode`), and the prior is fitted with
        Adam to maximise the likelihood of their code maps (the
        cross-entropy of each position's logits against its code).

        Args:
            x: Training images in [0, 1], `(N, *image_shape)`.
            epochs: Passes over the codes.
            batch_size: Code maps per step.
            learning_rate: Adam's learning rate.
            validation_data: Optional images whose codes' loss is reported
                as `val_loss`.
            verbose: As for `keras.Model.fit`.
            callbacks: Keras callbacks for the prior's `fit` (e.g. a time
                budget), or None.
        """
        check_int("epochs", epochs)
        check_int("batch_size", batch_size)
        codes, _ = self.encode(x)
        validation = None
        if validation_data is not None:
            val_codes, _ = self.encode(validation_data)
            validation = (val_codes, val_codes)
        self.prior.trainable = True
        try:
            self.prior.compile(
                optimizer=keras.optimizers.Adam(learning_rate),
                loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
            history = self.prior.fit(codes, codes, epochs=epochs, batch_size=batch_size,
                                     validation_data=validation, verbose=verbose,
                                     callbacks=callbacks)
        finally:
            self.prior.trainable = False
        self.prior_fitted_flag.assign(1.0)
        return history

    def prior_nll_bits(self, x, batch_size=256):
        """Returns the prior's negative log-likelihood of each image's code map, in bits.

        `-log2 p(c)` for the code map `c` of each image, summed over its
        `h * w` positions, float64 NumPy `(N,)`. Uniform codes would give
        `h * w * log2(num_embeddings)` bits.

        Args:
            x: Images in [0, 1], `(N, *image_shape)`.
            batch_size: Images at a time.
        """
        codes, _ = self.encode(x, batch_size=batch_size)
        result = []
        for start in range(0, len(codes), batch_size):
            batch = tf.constant(codes[start:start + batch_size])
            logits = tf.cast(self.prior(batch, training=False), "float32")
            nats = tf.nn.sparse_softmax_cross_entropy_with_logits(batch, logits)
            result.append(tf.reduce_sum(nats, axis=[1, 2]).numpy() / math.log(2.0))
        return np.concatenate(result).astype("float64") if result else np.zeros(0)

    def code_statistics(self, x, batch_size=256):
        """Returns how images `x` use the codebook: the code frequencies over all positions.

        Unlike `fit`'s `perplexity` and `codebook_usage` (a batch's, averaged
        over batches), these count every position of every image of `x` at
        once, so a code used by one image counts as used.

        Args:
            x: Images in [0, 1], `(N, *image_shape)`, N >= 1.
            batch_size: Images encoded at a time.

        Returns:
            A dict: `num_embeddings` (K), `positions` (`h * w`), `code_bits`
            (`h * w * log2 K`), `codes_used`, `fraction_used` (`codes_used /
            K`), `perplexity` (`exp(-sum_k p_k ln p_k)` of the frequencies
            `p_k`) and `counts` (int64 NumPy `(K,)`).
        """
        codes, _ = self.encode(x, batch_size=batch_size)
        if codes.size == 0:
            raise ValueError(f"x is empty: code statistics need at least one image. "
                             f"Received: x.shape={np.shape(x)}")
        counts = np.bincount(codes.reshape(-1), minlength=self.num_embeddings).astype("int64")
        frequencies = counts[counts > 0] / counts.sum()
        used = int(np.count_nonzero(counts))
        return {"num_embeddings": int(self.num_embeddings), "positions": int(self.latent_dim),
                "code_bits": float(self.latent_dim * math.log2(self.num_embeddings)),
                "codes_used": used, "fraction_used": used / self.num_embeddings,
                "perplexity": float(np.exp(-np.sum(frequencies * np.log(frequencies)))),
                "counts": counts}

    def draw_codes(self, n, seed=None):
        """Returns `n` code maps, int32 NumPy `(n, h, w)`, from the prior.

        Drawn position by position in raster order from the PixelCNN once
        `fit_prior` has trained it; before that, every code is drawn
        uniformly and independently.

        Args:
            n: Number of code maps, a positive int.
            seed: Optional int; the same seed gives the same codes. Without
                it, the model's seed generator gives new codes on each call.
        """
        check_int("n", n)
        seed = self._seed(seed)
        h, w = self.code_shape
        if not self.prior_fitted:
            return tf.random.stateless_uniform(
                (n, h, w), base.stateless_seed(seed), maxval=self.num_embeddings,
                dtype="int32").numpy()
        seeds = base.split_seed(seed, h * w)
        codes = tf.zeros((n, h, w), "int32")
        for position in range(h * w):
            i, j = divmod(position, w)
            logits = self._prior_logits(codes)[:, i, j, :]
            drawn = tf.random.stateless_categorical(logits, 1, seeds[position],
                                                    dtype="int32")[:, 0]
            codes = tf.tensor_scatter_nd_update(
                codes, tf.stack([tf.range(n), tf.fill([n], i), tf.fill([n], j)], axis=1),
                drawn)
        return codes.numpy()

    @tf.function(reduce_retracing=True)
    def _prior_logits(self, codes):
        return tf.cast(self.prior(codes, training=False), "float32")

    # ------------------------------------------------------------- saving

    def _constructor_arguments(self):
        return {"encoder": self.encoder, "decoder": self.decoder, "quantizer": self.quantizer,
                "likelihood": self.likelihood_layer, "prior": self.prior, "seed": self.seed}


def build_vqvae(image_shape=(28, 28, 1), num_embeddings=64, embedding_dim=16,
                filters=(32, 64), likelihood="bernoulli", beta=0.25, ema=True,
                ema_decay=0.99, restart_after=100, prior_filters=64, prior_blocks=2,
                seed=None, name="vqvae"):
    """Builds a `VQVAE` with convolutional networks and a PixelCNN prior.

    The encoder has one stride-2 3x3 convolution (ReLU) per entry of
    `filters` and a 1x1 convolution to `embedding_dim`; the code map is
    the image downsampled `2 ** len(filters)` times (7x7 for 28x28 and two
    filters). The decoder mirrors it with transposed convolutions, a final
    3x3 convolution to the likelihood's parameters, cropped to the image
    size if needed.

    Args:
        image_shape: `(height, width, channels)` of the images.
        num_embeddings: K, the codebook size.
        embedding_dim: D, the size of each codebook vector.
        filters: Widths of the encoder's stride-2 convolutions.
        likelihood: Name or layer of p(x|z), as for `VAE`.
        beta: Weight of the commitment loss.
        ema: Whether the codebook is an exponential moving average
            (Razavi et al.) rather than trained by its loss.
        ema_decay: The EMA's decay, used when `ema` is True.
        restart_after: Training steps a code may go unused before it is
            restarted from an encoder output (None: never).
        prior_filters: Width of the PixelCNN prior.
        prior_blocks: Residual blocks of the PixelCNN prior.
        seed: Optional int seeding the codebook, the restarts and `sample`.
            Other initial weights follow Keras's global seed.
        name: Name of the model.

    Returns:
        An uncompiled `VQVAE`.
    """
    image_shape = tuple(image_shape)
    if len(image_shape) != 3:
        raise ValueError(f"image_shape must be (height, width, channels). "
                         f"Received: image_shape={image_shape}")
    filters = tuple(filters)
    if not filters or not all(isinstance(f, int) and f > 0 for f in filters):
        raise ValueError(f"filters must be a non-empty sequence of positive ints. "
                         f"Received: filters={filters}")
    check_int("embedding_dim", embedding_dim)
    quantizer = VectorQuantizer(num_embeddings, embedding_dim, beta=beta,
                                ema_decay=ema_decay if ema else None,
                                restart_after=restart_after, seed=seed, name="quantizer")
    images = keras.Input(image_shape, name="images")
    x = images
    for index, width in enumerate(filters):
        x = keras.layers.Conv2D(width, 3, strides=2, padding="same", activation="relu",
                                name=f"conv{index}")(x)
    z_e = keras.layers.Conv2D(embedding_dim, 1, name="z_e")(x)
    encoder = keras.Model(images, z_e, name="encoder")
    code_shape = tuple(z_e.shape[1:3])
    codes = keras.Input(code_shape + (embedding_dim,), name="quantized")
    y = keras.layers.Conv2D(filters[-1], 3, padding="same", activation="relu",
                            name="conv_in")(codes)
    for index, width in enumerate(reversed(filters)):
        y = keras.layers.Conv2DTranspose(width, 3, strides=2, padding="same",
                                         activation="relu", name=f"deconv{index}")(y)
    y = keras.layers.Conv2D(image_shape[-1], 3, padding="same", name="logits")(y)
    extra = (y.shape[1] - image_shape[0], y.shape[2] - image_shape[1])
    if extra != (0, 0):
        y = keras.layers.Cropping2D(((0, extra[0]), (0, extra[1])), name="crop")(y)
    decoder = keras.Model(codes, y, name="decoder")
    prior = build_pixelcnn_prior(code_shape, num_embeddings, filters=prior_filters,
                                 residual_blocks=prior_blocks)
    return VQVAE(encoder, decoder, quantizer, likelihood=likelihood, prior=prior, seed=seed,
                 name=name)
