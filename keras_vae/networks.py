"""Convolutional encoder and decoder builders.

Both return plain functional `keras.Model`s, so they can be inspected with
`summary()`, saved on their own, or swapped for networks of your own: a
`keras_vae.VAE` only needs an encoder that maps images to
`[z_mean, z_log_var]` and a decoder that maps latent codes to per-pixel
likelihood parameters (logits for the default Bernoulli likelihood).

Under a mixed dtype policy (`keras_vae.precision`) the layers that set the
likelihood's precision compute in float32 (`FLOAT32`): the encoder's
heads (the posterior's mean and log-variance) and the decoder's first layer
(which reads the code). They hold a small share of the networks' FLOPs; the
convolutions run in the fast format, the logits' convolution too, its
output cast to float32 (`logits_float32`). A float32 logits convolution,
one output channel at full resolution, took a third of a bfloat16 training
step on an AMX Xeon (oneDNN has no AMX kernel for it in float32), while
computing it in bfloat16 moved a trained model's importance-weighted bound
by 0.004 nats (K=200, 500 test images). The decoder's first layer is named
`z_hidden` (the encoder's `hidden` computes in the policy's format);
`FLOAT32_LAYERS` names them all for `keras_vae.precision.with_policy`.
"""

import math

import keras

from keras_vae.layers import SubpixelConv2DTranspose
from keras_vae.validation import check_int

FLOAT32 = "float32"
"""dtype of the layers that set the likelihood's precision, whatever the global policy."""

FLOAT32_LAYERS = ("code", "z_mean", "z_log_var", "z_and_labels", "z_hidden", "logits_float32")
"""Names of the layers built with `dtype=FLOAT32` (`keras_vae.precision.with_policy` keeps them)."""


def check_image_shape(image_shape):
    """Validates and returns `image_shape` as a tuple `(height, width, channels)`."""
    message = ("image_shape must be (height, width, channels). "
               f"Received: image_shape={image_shape!r}")
    if isinstance(image_shape, str):
        raise TypeError(message)
    try:
        shape = tuple(image_shape)
    except TypeError:
        raise TypeError(message) from None
    if len(shape) != 3:
        raise ValueError(message)
    for dim in shape:
        check_int("each entry of image_shape", dim)
    return shape


def _check_filters(filters):
    filters = tuple(filters)
    if not filters:
        raise ValueError(f"filters must not be empty. Received: filters={filters!r}")
    for width in filters:
        check_int("each entry of filters", width)
    return filters


def _check_arguments(image_shape, latent_dim, filters, hidden_units):
    check_int("latent_dim", latent_dim)
    check_int("hidden_units", hidden_units)
    return check_image_shape(image_shape), _check_filters(filters)


def _downsampled_size(size, num_layers):
    for _ in range(num_layers):
        size = math.ceil(size / 2)
    return size


def build_encoder(
    image_shape=(28, 28, 1),
    latent_dim=32,
    filters=(32, 64),
    hidden_units=256,
    variational=True,
    num_classes=None,
    name="encoder",
):
    """Builds a convolutional encoder mapping images to a diagonal Gaussian.

    Each entry of `filters` adds a 3x3 convolution with stride 2 (halving the
    height and width), followed by a dense layer of `hidden_units` and two
    linear heads for the posterior's mean and log-variance (one head, the
    code, when `variational=False`, as a plain autoencoder needs).

    Args:
        image_shape: `(height, width, channels)` of the input images.
        latent_dim: Size of the latent code.
        filters: Widths of the strided convolutions, first to last.
        hidden_units: Width of the dense layer before the two heads.
        variational: False gives a deterministic encoder with one output.
        num_classes: If set, the encoder takes `[images, one_hot_labels]`
            (a conditional VAE's encoder): the label is broadcast to
            `num_classes` extra image channels.
        name: Name of the returned model.

    Returns:
        A `keras.Model` from images to `[z_mean, z_log_var]`, each of shape
        `(batch_size, latent_dim)`; or to the code alone when
        `variational=False`.

    Example:

    ```python
    encoder = keras_vae.networks.build_encoder((32, 32, 3), latent_dim=16)
    z_mean, z_log_var = encoder(images)
    ```
    """
    image_shape, filters = _check_arguments(image_shape, latent_dim, filters, hidden_units)

    inputs = keras.Input(shape=image_shape, name="images")
    x = inputs
    if num_classes is not None:
        check_int("num_classes", num_classes)
        labels = keras.Input(shape=(num_classes,), name="labels")
        label_map = keras.layers.Reshape((1, 1, num_classes), name="label_pixel")(labels)
        label_map = keras.layers.UpSampling2D(image_shape[:2], name="label_map")(label_map)
        x = keras.layers.Concatenate(name="images_and_labels")([x, label_map])
        inputs = [inputs, labels]
    for i, width in enumerate(filters):
        x = keras.layers.Conv2D(
            width, 3, strides=2, padding="same", activation="relu", name=f"conv_{i}"
        )(x)
    x = keras.layers.Flatten(name="flatten")(x)
    x = keras.layers.Dense(hidden_units, activation="relu", name="hidden")(x)
    if not variational:
        code = keras.layers.Dense(latent_dim, name="code", dtype=FLOAT32)(x)
        return keras.Model(inputs, code, name=name)
    z_mean = keras.layers.Dense(latent_dim, name="z_mean", dtype=FLOAT32)(x)
    z_log_var = keras.layers.Dense(latent_dim, name="z_log_var", dtype=FLOAT32)(x)
    return keras.Model(inputs, [z_mean, z_log_var], name=name)


def build_decoder(
    image_shape=(28, 28, 1),
    latent_dim=32,
    filters=(32, 64),
    hidden_units=256,
    num_classes=None,
    name="decoder",
):
    """Builds a convolutional decoder mapping latent codes to pixel logits.

    The mirror image of `build_encoder` with the same arguments: a dense
    layer, a linear projection reshaped to the encoder's last feature map, one stride-2
    transposed convolution per entry of `filters` (in reverse order;
    `keras_vae.layers.SubpixelConv2DTranspose`, which evaluates 2.5x as fast
    in bfloat16 on an AMX CPU and is `Conv2DTranspose` otherwise), and a
    final 3x3 convolution with one output per channel. When the image size is
    not a multiple of `2 ** len(filters)` the output is cropped to size.

    Args:
        image_shape: `(height, width, channels)` of the images to produce.
        latent_dim: Size of the latent code.
        filters: Widths of the encoder's convolutions (used in reverse).
        hidden_units: Width of the first dense layer.
        num_classes: If set, the decoder takes `[z, one_hot_labels]` (a
            conditional VAE's decoder), concatenated before the first layer.
        name: Name of the returned model.

    Returns:
        A `keras.Model` from codes of shape `(batch_size, latent_dim)` to
        unnormalised per-pixel parameters (logits) of shape
        `(batch_size, *image_shape)`.
    """
    image_shape, filters = _check_arguments(image_shape, latent_dim, filters, hidden_units)

    height, width, channels = image_shape
    start_h = _downsampled_size(height, len(filters))
    start_w = _downsampled_size(width, len(filters))

    inputs = keras.Input(shape=(latent_dim,), name="z")
    x = inputs
    if num_classes is not None:
        check_int("num_classes", num_classes)
        labels = keras.Input(shape=(num_classes,), name="labels")
        x = keras.layers.Concatenate(name="z_and_labels", dtype=FLOAT32)([x, labels])
        inputs = [inputs, labels]
    x = keras.layers.Dense(hidden_units, activation="relu", name="z_hidden", dtype=FLOAT32)(x)
    # Linear on purpose: with a ReLU here, training kills every channel at
    # some positions of the first feature map (with a 2-D code, over half of
    # the units), and the pixels drawn from there no longer depend on z.
    x = keras.layers.Dense(start_h * start_w * filters[-1], name="project")(x)
    x = keras.layers.Reshape((start_h, start_w, filters[-1]), name="reshape")(x)
    for i, width_i in enumerate(reversed(filters)):
        x = SubpixelConv2DTranspose(
            width_i,
            3,
            strides=2,
            padding="same",
            activation="relu",
            name=f"deconv_{i}",
        )(x)
    out_h = start_h * 2 ** len(filters)
    out_w = start_w * 2 ** len(filters)
    if (out_h, out_w) != (height, width):
        x = keras.layers.Cropping2D(
            ((0, out_h - height), (0, out_w - width)), name="crop"
        )(x)
    logits = keras.layers.Conv2D(channels, 3, padding="same", name="logits")(x)
    # A no-op in float32, built under every policy so that a copy into another policy
    # (`keras_vae.precision.with_policy`) casts its logits to float32 as well.
    logits = keras.layers.Activation("linear", dtype=FLOAT32, name="logits_float32")(logits)
    return keras.Model(inputs, logits, name=name)


def build_discriminator(image_shape=(28, 28, 1), filters=(64, 128), dropout=0.3,
                        hidden_units=None, name="discriminator"):
    """Builds a GAN discriminator: images to one logit, "this image is real".

    Each entry of `filters` adds a 4x4 convolution with stride 2 and a leaky
    ReLU (slope 0.2), as in DCGAN; dropout before the final linear layer
    keeps the discriminator from overpowering a small generator.

    Args:
        image_shape: `(height, width, channels)` of the images.
        filters: Widths of the strided convolutions.
        dropout: Dropout rate before the output (0 for none).
        hidden_units: None, or the width of a dense layer (leaky ReLU) between
            the convolutions and the output, as the VAE encoder's
            `hidden_units`: with the generator's, it gives a GAN about the
            weights of a VAE of the same widths.
        name: Name of the returned model.

    Returns:
        A `keras.Model` from images to logits of shape `(batch_size, 1)`.
    """
    image_shape = check_image_shape(image_shape)
    filters = _check_filters(filters)
    if hidden_units is not None:
        check_int("hidden_units", hidden_units)
    inputs = keras.Input(shape=image_shape, name="images")
    x = inputs
    for i, width in enumerate(filters):
        x = keras.layers.Conv2D(width, 4, strides=2, padding="same", name=f"conv_{i}")(x)
        x = keras.layers.LeakyReLU(0.2, name=f"leaky_relu_{i}")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    if hidden_units is not None:
        x = keras.layers.Dense(hidden_units, name="hidden")(x)
        x = keras.layers.LeakyReLU(0.2, name="leaky_relu_hidden")(x)
    x = keras.layers.Dropout(dropout, name="dropout")(x)
    logits = keras.layers.Dense(1, name="logit")(x)
    return keras.Model(inputs, logits, name=name)


def build_generator(image_shape=(28, 28, 1), latent_dim=32, filters=(64, 128),
                    hidden_units=None, name="generator"):
    """Builds a DCGAN generator: codes to pixel logits, with batch normalization.

    The decoder's shape (a dense projection to the smallest feature map, then
    one stride-2 transposed convolution per entry of `filters`, in reverse),
    with the DCGAN recipe that makes adversarial training stable: batch
    normalization and leaky ReLUs after every layer but the last, and 4x4
    kernels.

    Args:
        image_shape: `(height, width, channels)` of the images to produce.
        latent_dim: Size of the codes.
        filters: Widths of the transposed convolutions, last to first.
        hidden_units: None, or the width of a dense layer (batch
            normalization, leaky ReLU) before the projection, as the VAE
            decoder's `hidden_units`.
        name: Name of the returned model.

    Returns:
        A `keras.Model` from codes `(batch_size, latent_dim)` to logits
        `(batch_size, *image_shape)`; images are their sigmoid.

    Reference:
        Radford, Metz and Chintala, 2015, https://arxiv.org/abs/1511.06434
    """
    check_int("latent_dim", latent_dim)
    image_shape = check_image_shape(image_shape)
    filters = _check_filters(filters)
    if hidden_units is not None:
        check_int("hidden_units", hidden_units)
    height, width, channels = image_shape
    start_h = _downsampled_size(height, len(filters))
    start_w = _downsampled_size(width, len(filters))

    def normalize(x, label):
        x = keras.layers.BatchNormalization(momentum=0.9, name=f"batch_norm_{label}")(x)
        return keras.layers.LeakyReLU(0.2, name=f"leaky_relu_{label}")(x)

    inputs = keras.Input(shape=(latent_dim,), name="z")
    x = inputs
    if hidden_units is not None:
        x = normalize(keras.layers.Dense(hidden_units, name="hidden")(x), "hidden")
    x = keras.layers.Dense(start_h * start_w * filters[-1], name="project")(x)
    x = normalize(x, "project")
    x = keras.layers.Reshape((start_h, start_w, filters[-1]), name="reshape")(x)
    for i, width_i in enumerate(reversed(filters)):
        x = keras.layers.Conv2DTranspose(width_i, 4, strides=2, padding="same",
                                         name=f"deconv_{i}")(x)
        x = normalize(x, i)
    out_h, out_w = start_h * 2 ** len(filters), start_w * 2 ** len(filters)
    if (out_h, out_w) != (height, width):
        x = keras.layers.Cropping2D(((0, out_h - height), (0, out_w - width)), name="crop")(x)
    logits = keras.layers.Conv2D(channels, 5, padding="same", name="logits")(x)
    return keras.Model(inputs, logits, name=name)
