import keras
import numpy as np
import pytest

from keras_vae import networks


@pytest.mark.parametrize("image_shape", [(28, 28, 1), (32, 32, 3), (30, 26, 2)])
def test_encoder_decoder_shapes(image_shape):
    encoder = networks.build_encoder(image_shape, latent_dim=5, filters=(4, 8), hidden_units=16)
    decoder = networks.build_decoder(image_shape, latent_dim=5, filters=(4, 8), hidden_units=16)
    x = np.random.default_rng(0).random((3,) + image_shape).astype("float32")
    z_mean, z_log_var = encoder(x)
    assert z_mean.shape == (3, 5) and z_log_var.shape == (3, 5)
    logits = decoder(np.asarray(z_mean))
    assert logits.shape == (3,) + image_shape


def test_widths_are_used():
    encoder = networks.build_encoder((28, 28, 1), latent_dim=3, filters=(6, 10, 12),
                                     hidden_units=20)
    convs = [layer for layer in encoder.layers if layer.name.startswith("conv_")]
    assert [layer.filters for layer in convs] == [6, 10, 12]
    assert encoder.get_layer("hidden").units == 20
    decoder = networks.build_decoder((28, 28, 1), latent_dim=3, filters=(6, 10, 12),
                                     hidden_units=20)
    deconvs = [layer for layer in decoder.layers if layer.name.startswith("deconv_")]
    assert [layer.filters for layer in deconvs] == [12, 10, 6]
    assert decoder.get_layer("z_hidden").units == 20
    # 28 -> 14 -> 7 -> 4, back up to 32 and cropped to 28.
    assert decoder.get_layer("crop").output.shape[1:3] == (28, 28)


@pytest.mark.parametrize("builder", [networks.build_encoder, networks.build_decoder])
@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"latent_dim": 0}, ValueError, "latent_dim must be a positive int. Received: latent_dim=0"),
        ({"latent_dim": 2.5}, TypeError, "latent_dim must be a positive int. Received: latent_dim=2.5"),
        ({"image_shape": (28, 28)}, ValueError, "image_shape must be"),
        ({"image_shape": 28}, TypeError, r"image_shape must be .*Received: image_shape=28$"),
        ({"image_shape": (28, 28.0, 1)}, TypeError, "each entry of image_shape"),
        ({"image_shape": (28, 0, 1)}, ValueError, "image_shape"),
        ({"filters": ()}, ValueError, "filters must not be empty"),
        ({"filters": (8, -1)}, ValueError, "filters"),
        ({"hidden_units": 0}, ValueError, "hidden_units"),
    ],
)
def test_builders_reject_bad_arguments(builder, kwargs, error, match):
    with pytest.raises(error, match=match):
        builder(**kwargs)


@pytest.mark.parametrize("image_shape", [(28, 28, 1), (30, 22, 3)])
def test_generator_and_discriminator_shapes(image_shape):
    generator = networks.build_generator(image_shape, latent_dim=5, filters=(8, 16))
    assert generator.output_shape == (None, *image_shape)
    assert any(isinstance(layer, keras.layers.BatchNormalization) for layer in generator.layers)
    discriminator = networks.build_discriminator(image_shape, filters=(8, 16))
    assert discriminator.output_shape == (None, 1)
    z = np.zeros((3, 5), "float32")
    assert discriminator(generator(z)).shape == (3, 1)
    with pytest.raises(ValueError, match="latent_dim"):
        networks.build_generator(image_shape, latent_dim=0)


def test_gan_hidden_units_add_one_dense_layer_to_each_network():
    """`hidden_units` adds exactly the weights of one dense layer (and the generator's batch norm).

    Counted by hand for 28x28x1 images, widths (32, 64), codes of 16, width 256: the
    smallest feature map is 7 x 7 x 64 = 3,136 values.
    """
    image_shape, latent, filters, hidden, flat = (28, 28, 1), 16, (32, 64), 256, 7 * 7 * 64
    plain_g = networks.build_generator(image_shape, latent, filters)
    wide_g = networks.build_generator(image_shape, latent, filters, hidden_units=hidden)
    # + the hidden dense and its batch norm (4 per unit); the projection's input grows 16 -> 256.
    assert wide_g.count_params() - plain_g.count_params() == (
        latent * hidden + hidden + 4 * hidden + (hidden - latent) * flat)
    plain_d = networks.build_discriminator(image_shape, filters)
    wide_d = networks.build_discriminator(image_shape, filters, hidden_units=hidden)
    # + the hidden dense; the logit's input shrinks 3,136 -> 256.
    assert wide_d.count_params() - plain_d.count_params() == flat * hidden + hidden + hidden - flat
    assert wide_d.get_layer("hidden").units == wide_g.get_layer("hidden").units == hidden
    with pytest.raises(ValueError, match="hidden_units must be a positive int"):
        networks.build_discriminator(image_shape, filters, hidden_units=0)
    with pytest.raises(ValueError, match="hidden_units must be a positive int"):
        networks.build_generator(image_shape, latent, filters, hidden_units=0)


def test_decoder_feature_map_cannot_switch_off():
    """Every position of the first feature map keeps depending on the code.

    Training a 2-D VAE with a ReLU after the projection pushed every channel at
    some 7x7 positions below zero for all codes; the 4x4 pixel block drawn from
    there became the same grey in every decoded image. Pushing the projection's
    biases at one position far negative reproduces that state.
    """
    decoder = networks.build_decoder((28, 28, 1), latent_dim=2, filters=(4, 8), hidden_units=16)
    project = decoder.get_layer("project")
    kernel, bias = project.get_weights()
    bias = bias.reshape(7, 7, 8)
    bias[3, 3, :] = -100.0  # the central position, every channel
    project.set_weights([kernel, bias.reshape(-1)])
    feature_map = keras.Model(decoder.input, decoder.get_layer("reshape").output)
    codes = np.random.default_rng(0).normal(size=(64, 2)).astype("float32")
    features = np.asarray(feature_map(codes))
    assert features.shape == (64, 7, 7, 8)
    # Spread over codes of each position's strongest channel: no position is constant.
    spread = features.std(axis=0).max(axis=-1)
    assert spread.min() > 1e-3, f"positions that ignore z: {np.argwhere(spread <= 1e-3).tolist()}"
