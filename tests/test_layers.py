import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_vae


def test_sampling_is_exported_at_top_level():
    assert keras_vae.Sampling is keras_vae.layers.Sampling


def test_sampling_matches_requested_gaussian():
    n = 20000
    mean = np.array([1.0, -2.0, 0.0], "float32")
    var = np.array([0.25, 4.0, 1.0], "float32")
    z_mean = np.tile(mean, (n, 1))
    z_log_var = np.tile(np.log(var), (n, 1))
    z = np.asarray(keras_vae.Sampling(seed=7)([z_mean, z_log_var]))
    std = np.sqrt(var)
    # Standard error of the mean is std / sqrt(n) ~ 0.014 * std: 4 of those.
    np.testing.assert_allclose(z.mean(axis=0), mean, atol=0.06 * std.max())
    np.testing.assert_allclose(z.std(axis=0), std, rtol=0.03)
    # Dimensions are independent.
    corr = np.corrcoef(z.T)
    assert np.max(np.abs(corr - np.eye(3))) < 0.05


def test_sampling_is_reparameterized():
    z_mean = tf.Variable([[0.5, -0.5]])
    z_log_var = tf.Variable([[0.2, -1.0]])
    layer = keras_vae.Sampling(seed=3)
    with tf.GradientTape() as tape:
        z = layer([z_mean, z_log_var])
        total = tf.reduce_sum(z)
    d_mean, d_log_var = tape.gradient(total, [z_mean, z_log_var])
    eps = (z.numpy() - z_mean.numpy()) / np.exp(0.5 * z_log_var.numpy())
    np.testing.assert_allclose(d_mean.numpy(), np.ones((1, 2)), rtol=1e-6)
    np.testing.assert_allclose(
        d_log_var.numpy(), 0.5 * np.exp(0.5 * z_log_var.numpy()) * eps, rtol=1e-5
    )


def test_sampling_seed_reproducible_and_distinct():
    inputs = [np.zeros((5, 3), "float32"), np.zeros((5, 3), "float32")]
    a = np.asarray(keras_vae.Sampling(seed=1)(inputs))
    b = np.asarray(keras_vae.Sampling(seed=1)(inputs))
    c = np.asarray(keras_vae.Sampling(seed=2)(inputs))
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)
    layer = keras_vae.Sampling(seed=1)
    assert not np.allclose(np.asarray(layer(inputs)), np.asarray(layer(inputs)))


@pytest.mark.parametrize("latent_dim", [1, 7, 64])
def test_sampling_in_functional_model_any_batch(latent_dim):
    inputs = keras.Input((6,))  # unknown batch dimension
    z_mean = keras.layers.Dense(latent_dim)(inputs)
    z_log_var = keras.layers.Dense(latent_dim)(inputs)
    z = keras_vae.Sampling(seed=0)([z_mean, z_log_var])
    assert tuple(z.shape) == (None, latent_dim)
    model = keras.Model(inputs, z)
    for batch in (1, 5):
        assert model(np.ones((batch, 6), "float32")).shape == (batch, latent_dim)
    # 10 images in batches of 4 end with a partial batch of 2.
    assert model.predict(np.ones((10, 6), "float32"), batch_size=4, verbose=0).shape == (
        10, latent_dim)


def test_sampling_rejects_bad_inputs():
    with pytest.raises(ValueError, match="same shape"):
        keras_vae.Sampling()([np.zeros((2, 3), "float32"), np.zeros((2, 4), "float32")])
    with pytest.raises(ValueError, match=r"\[z_mean, z_log_var\]"):
        keras_vae.Sampling()(np.zeros((2, 3), "float32"))
    with pytest.raises(TypeError, match="seed"):
        keras_vae.Sampling(seed="one")


def test_sampling_config_roundtrip():
    layer = keras_vae.Sampling(seed=11, name="z")
    clone = keras_vae.Sampling.from_config(layer.get_config())
    assert clone.seed == 11 and clone.name == "z"


def test_user_model_with_sampling_saves_and_loads(tmp_path):
    inputs = keras.Input((4,))
    z_mean = keras.layers.Dense(2, name="mean")(inputs)
    z_log_var = keras.layers.Dense(2, name="log_var")(inputs)
    z = keras_vae.Sampling(seed=5, name="sampling")([z_mean, z_log_var])
    outputs = keras.layers.Dense(1)(z)
    model = keras.Model(inputs, [outputs, z_mean])
    x = np.random.default_rng(0).normal(size=(8, 4)).astype("float32")
    path = tmp_path / "user.keras"
    model.save(path)
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "mean.npy", np.asarray(model(x)[1]))
    from conftest import run_python
    result = run_python(f"""
        import numpy as np, keras, keras_vae
        model = keras.models.load_model({str(path)!r})
        layer = model.get_layer("sampling")
        assert isinstance(layer, keras_vae.Sampling) and layer.seed == 5
        x = np.load({str(tmp_path / "x.npy")!r})
        out, mean = model(x)
        assert np.max(np.abs(np.asarray(mean) - np.load({str(tmp_path / "mean.npy")!r}))) < 1e-6
        print("LOADED")
    """, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "LOADED" in result.stdout


def test_public_modules_are_reachable_from_the_package(tmp_path):
    from conftest import run_python
    result = run_python("""
        import keras_vae
        for name in keras_vae.__all__:
            assert getattr(keras_vae, name) is not None, name
        keras_vae.callbacks.LinearKLWarmup, keras_vae.evaluation.log_likelihood
        keras_vae.plotting.plot_history, keras_vae.saving.load_model
        print("PUBLIC-OK")
    """, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "PUBLIC-OK" in result.stdout


# ------------------------------------------------------- SubpixelConv2DTranspose


@pytest.mark.parametrize("kernel_size, strides, activation, height, width, use_bias", [
    (3, 2, "relu", 7, 7, True),     # keras_vae's decoder
    (4, 2, None, 5, 6, True),       # the GAN generator's, rectangular
    (5, 3, "tanh", 4, 3, True),
    (1, 2, "sigmoid", 3, 3, True),  # phases with no tap at all
    (2, 3, "relu", 4, 5, True),     # a kernel smaller than the stride
    (3, 2, "elu", 6, 4, False),     # no bias
])
def test_the_subpixel_computation_equals_keras_conv2d_transpose(
        kernel_size, strides, activation, height, width, use_bias):
    """In float32, where rounding is small: the sub-pixel maths, values and gradients."""
    options = {"filters": 5, "kernel_size": kernel_size, "strides": strides, "padding": "same",
               "activation": activation, "use_bias": use_bias}
    reference = keras.layers.Conv2DTranspose(**options)
    layer = keras_vae.layers.SubpixelConv2DTranspose(**options)
    x = tf.constant(np.random.default_rng(0).standard_normal((3, height, width, 4)), "float32")
    reference.build(x.shape)
    layer.build(x.shape)
    rng = np.random.default_rng(1)
    weights = [rng.standard_normal(w.shape).astype("float32") for w in reference.weights]
    reference.set_weights(weights)
    layer.set_weights(weights)
    plan = layer._subpixel_plan()
    assert plan is not None
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(x)
        expected, got = reference(x), layer._subpixel_call(x, plan)
        expected_sum, got_sum = tf.reduce_sum(expected ** 2), tf.reduce_sum(got ** 2)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)
    for ours, theirs in ((x, x), (layer.kernel, reference.kernel)):
        np.testing.assert_allclose(tape.gradient(got_sum, ours),
                                   tape.gradient(expected_sum, theirs), rtol=1e-4, atol=1e-4)
    np.testing.assert_array_equal(layer(x), reference(x))  # float32 runs Keras's own


@pytest.mark.parametrize("options", [
    {"padding": "valid", "strides": 2}, {"padding": "same", "strides": 1},
    {"padding": "same", "strides": 2, "activation": "softmax"},
    {"padding": "same", "strides": (2, 1)}, {"padding": "same", "strides": 2,
                                             "output_padding": 1}])
def test_configurations_the_subpixel_form_does_not_cover_keep_keras_computation(options):
    assert keras_vae.layers.SubpixelConv2DTranspose(4, 3, **options)._subpixel_plan() is None


def test_an_activation_is_recognised_by_what_it_is_not_by_its_name():
    """A function of the user's named `relu` that mixes channels must not pass as Keras's."""
    def relu(x):
        return keras.activations.softmax(x)  # across channels: not pixel by pixel

    layer = keras_vae.layers.SubpixelConv2DTranspose(4, 3, strides=2, padding="same",
                                                     activation=relu)
    assert layer._subpixel_plan() is None
    keras_relu = keras_vae.layers.SubpixelConv2DTranspose(4, 3, strides=2, padding="same",
                                                          activation=keras.activations.relu)
    assert keras_relu._subpixel_plan() is not None


def test_in_bfloat16_inference_is_subpixel_training_is_keras_and_it_saves(tmp_path):
    inputs = keras.Input((7, 7, 8))
    layer = keras_vae.layers.SubpixelConv2DTranspose(4, 3, strides=2, padding="same",
                                                     activation="relu", dtype="mixed_bfloat16")
    model = keras.Model(inputs, layer(inputs))
    x = np.random.default_rng(0).standard_normal((2, 7, 7, 8)).astype("float32")
    y = model(x)
    assert y.dtype == tf.bfloat16 and tuple(y.shape) == (2, 14, 14, 4)
    bf16_x = tf.cast(x, "bfloat16")
    np.testing.assert_array_equal(y, layer._subpixel_call(bf16_x, layer._subpixel_plan()))
    keras_way = keras.layers.Conv2DTranspose(4, 3, strides=2, padding="same", activation="relu",
                                             dtype="mixed_bfloat16")
    keras_way.build((None, 7, 7, 8))
    keras_way.set_weights(layer.get_weights())
    np.testing.assert_array_equal(model(x, training=True), keras_way(x))
    # The two computations agree to bfloat16 rounding.
    np.testing.assert_allclose(tf.cast(y, "float32"), tf.cast(keras_way(x), "float32"),
                               rtol=0.05, atol=0.05)
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras")
    assert type(loaded.layers[1]) is keras_vae.layers.SubpixelConv2DTranspose
    np.testing.assert_array_equal(loaded(x), y)
