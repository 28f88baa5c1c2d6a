"""Pixel likelihoods: each a normalised distribution with the right log-probabilities."""

import numpy as np
import pytest
import tensorflow as tf

from keras_vae import likelihoods


def _params(shape=(2, 3, 3, 1), seed=0):
    return np.random.default_rng(seed).normal(size=shape).astype("float32")


@pytest.mark.parametrize("name", likelihoods.NAMES)
def test_every_name_gives_per_image_log_probs_and_a_mean_in_range(name):
    layer = likelihoods.get(name)
    params = _params()
    layer.build(params.shape)
    x = np.random.default_rng(1).integers(0, 256, size=params.shape).astype("float32") / 255
    if name == "bernoulli":
        x = np.round(x)
    log_prob = layer.log_prob(params, x).numpy()
    assert log_prob.shape == (2,)
    assert np.all(np.isfinite(log_prob))
    mean = layer.mean(params).numpy()
    assert mean.shape == params.shape and mean.min() >= 0 and mean.max() <= 1
    restored = type(layer).from_config(layer.get_config())
    assert restored.get_config() == layer.get_config()


def test_unknown_name_is_refused():
    with pytest.raises(ValueError, match="likelihood must be one of"):
        likelihoods.get("poisson")


def test_bernoulli_is_binary_cross_entropy_summed_over_pixels():
    params = _params()
    x = (np.random.default_rng(2).random(params.shape) > 0.5).astype("float32")
    p = 1 / (1 + np.exp(-params.astype("float64")))
    expected = (x * np.log(p) + (1 - x) * np.log(1 - p)).reshape(2, -1).sum(axis=1)
    got = likelihoods.Bernoulli().log_prob(params, x).numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-5)


def test_continuous_bernoulli_integrates_to_one_and_has_its_own_mean():
    layer = likelihoods.ContinuousBernoulli()
    grid = np.linspace(0, 1, 20001, dtype="float32")
    for logit in (-3.0, 0.7, 4.0):
        params = np.full((grid.size, 1, 1, 1), logit, "float32")
        density = np.exp(layer.log_prob(params, grid.reshape(-1, 1, 1, 1)).numpy())
        assert np.trapezoid(density, grid) == pytest.approx(1.0, abs=1e-3)
        numeric_mean = np.trapezoid(density * grid, grid)
        mean = float(layer.mean(params[:1]).numpy().ravel()[0])
        assert mean == pytest.approx(numeric_mean, abs=1e-3)
        if logit != 0:
            assert abs(mean - 1 / (1 + np.exp(-logit))) > 0.02


@pytest.mark.parametrize("per_pixel", [False, True])
def test_gaussian_matches_the_normal_formula_with_its_learned_scale(per_pixel):
    layer = likelihoods.Gaussian(per_pixel=per_pixel)
    params = _params()
    layer.build(params.shape)
    assert tuple(layer.log_scale.shape) == ((3, 3, 1) if per_pixel else (1,))
    layer.log_scale.assign(np.full(layer.log_scale.shape, np.log(0.2), "float32"))
    x = np.random.default_rng(3).random(params.shape).astype("float32")
    mean = 1 / (1 + np.exp(-params.astype("float64")))
    scale = 1e-3 + 0.2
    expected = (-0.5 * ((x - mean) / scale) ** 2 - np.log(scale)
                - 0.5 * np.log(2 * np.pi)).reshape(2, -1).sum(axis=1)
    np.testing.assert_allclose(layer.log_prob(params, x).numpy(), expected, rtol=1e-4)


def test_discretized_logistic_is_a_distribution_over_256_levels_peaked_at_the_mean():
    layer = likelihoods.DiscretizedLogistic()
    layer.build((None, 1, 1, 1))
    layer.log_scale.assign([np.log(0.01)])
    levels = np.arange(256, dtype="float32").reshape(-1, 1, 1, 1) / 255
    for mean in (0.0, 0.3, 1.0):
        logit = np.log(mean / (1 - mean)) if 0 < mean < 1 else (-30.0 if mean == 0 else 30.0)
        params = np.full((256, 1, 1, 1), logit, "float32")
        mass = np.exp(layer.log_prob(params, levels).numpy())
        assert mass.sum() == pytest.approx(1.0, abs=1e-4)
        assert int(np.argmax(mass)) == round(255 * mean)


def test_min_scale_must_be_positive():
    with pytest.raises(ValueError, match="min_scale"):
        likelihoods.Gaussian(min_scale=0.0)


def test_log_probs_are_float32_under_a_bfloat16_decoder():
    params = tf.cast(_params(), "bfloat16")
    x = np.full((2, 3, 3, 1), 0.5, "float32")
    assert likelihoods.ContinuousBernoulli().log_prob(params, x).dtype == tf.float32


@pytest.mark.parametrize("name", likelihoods.NAMES)
def test_a_vae_with_each_likelihood_trains_and_reloads_with_its_scales(name, mnist_small,
                                                                      tmp_path):
    import keras

    import keras_vae

    (x_train, _), (x_test, _) = mnist_small
    vae = keras_vae.build_vae(latent_dim=4, filters=(8,), hidden_units=16,
                              likelihood=name, seed=0)
    vae.compile(optimizer="adam")
    history = vae.fit(x_train[:256], epochs=2, batch_size=64, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]
    vae.save(tmp_path / "vae.keras")
    restored = keras.models.load_model(tmp_path / "vae.keras")
    assert type(restored.likelihood_layer) is type(vae.likelihood_layer)
    for before, after in zip(vae.likelihood_layer.weights, restored.likelihood_layer.weights):
        np.testing.assert_array_equal(before.numpy(), after.numpy())
    np.testing.assert_allclose(restored.reconstruct(x_test[:4]), vae.reconstruct(x_test[:4]),
                               atol=1e-6)
