"""Pixel likelihoods: each a normalised distribution with the right log-probabilities."""

import keras
import numpy as np
import pytest
import scipy.special
import tensorflow as tf

from keras_vae import likelihoods


@pytest.fixture(autouse=True)
def _seeded_weights():
    """Initial weights of every model built here follow one seed."""
    keras.utils.set_random_seed(0)


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


def _continuous_bernoulli_reference(params, x):
    """log p(x) in float64 at logits 15 * softsign(params / 15), and d log p / d params."""
    params = np.asarray(params, "float64")
    x = np.asarray(x, "float64")
    logit = 15.0 * params / (15.0 + np.abs(params))
    # log C(l) = log(l / tanh(l / 2)), which is log 2 at l = 0.
    safe = np.where(logit == 0, 1.0, logit)
    log_norm = np.where(logit == 0, np.log(2.0), np.log(safe / np.tanh(safe / 2)))
    log_prob = x * logit - np.logaddexp(0.0, logit) + log_norm
    d_log_norm = np.where(logit == 0, 0.0, 1 / safe - 1 / np.sinh(safe))
    d_logit = x - scipy.special.expit(logit) + d_log_norm
    return log_prob, d_logit / (1.0 + np.abs(params) / 15.0) ** 2


def test_continuous_bernoulli_bound_is_soft_accurate_and_keeps_a_gradient():
    values = np.array([-1e4, -200.0, -20.0, -15.0, -3.0, 0.0, 0.7, 4.0, 15.0, 16.0, 50.0,
                       200.0, 1e4], "float32")
    grid = np.array([0.0, 0.02, 0.3, 0.5, 0.97, 1.0], "float32")
    params = np.repeat(values, grid.size).reshape(-1, 1, 1, 1)
    x = np.tile(grid, values.size).reshape(-1, 1, 1, 1)
    expected, expected_grad = _continuous_bernoulli_reference(params, x)
    variable = tf.Variable(params)
    with tf.GradientTape() as tape:
        log_prob = likelihoods.ContinuousBernoulli().log_prob(variable, x)
    grad = tape.gradient(log_prob, variable).numpy()
    np.testing.assert_allclose(log_prob.numpy(), expected.ravel(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(grad, expected_grad, rtol=1e-3, atol=1e-12)
    # Beyond the old hard clip at +-15 the gradient is not 0.
    beyond = np.abs(params.ravel()) > 15
    assert np.all(np.abs(grad.ravel()[beyond]) > 0)


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
    for mean in (0.0, 0.2, 1.0):  # levels 0, 51 and 255 (0.3 is level 76.5, a tie)
        logit = np.log(mean / (1 - mean)) if 0 < mean < 1 else (-30.0 if mean == 0 else 30.0)
        params = np.full((256, 1, 1, 1), logit, "float32")
        mass = np.exp(layer.log_prob(params, levels).numpy())
        assert mass.sum() == pytest.approx(1.0, abs=1e-4)
        assert int(np.argmax(mass)) == round(255 * mean)


def _logistic_level_masses(mean_level, scale_levels):
    """Masses of levels 0..255 in float64: sigmoid differences, open edge bins."""
    edges = (np.arange(-1, 256) + 0.5 - mean_level) / scale_levels
    cdf = scipy.special.expit(edges)
    cdf[0], cdf[-1] = 0.0, 1.0
    return np.diff(cdf)


@pytest.mark.parametrize("mean_level, log_scale", [(100.5, np.log(0.004)), (2.0, np.log(0.02)),
                                                   (254.3, np.log(0.01))])
def test_discretized_logistic_masses_are_sigmoid_differences(mean_level, log_scale):
    layer = likelihoods.DiscretizedLogistic()
    layer.build((None, 1, 1, 1))
    layer.log_scale.assign([log_scale])
    levels = np.arange(256, dtype="float32").reshape(-1, 1, 1, 1) / 255
    mean = mean_level / 255
    params = np.full((256, 1, 1, 1), np.log(mean / (1 - mean)), "float32")
    got = np.exp(layer.log_prob(params, levels).numpy().astype("float64"))
    expected = _logistic_level_masses(mean_level, 255 * (1e-4 + np.exp(log_scale)))
    np.testing.assert_allclose(got, expected, rtol=2e-3, atol=1e-7)
    if mean_level == 100.5:  # a mean between two levels splits its mass evenly
        assert got[100] == pytest.approx(got[101], rel=1e-3) and got[100] > 0.1


def test_discretized_logistic_lets_a_confident_model_approach_zero_nats(mnist_small):
    _, (x_test, _) = mnist_small
    x = x_test[:4]
    levels = np.round(255 * x.astype("float64"))
    # The decoder output for each pixel's own level (edges far out).
    clipped = np.clip(levels / 255, 1e-12, 1 - 1e-12)
    params = np.log(clipped / (1 - clipped)).astype("float32")
    layer = likelihoods.DiscretizedLogistic()
    layer.build(params.shape)
    layer.log_scale.assign([-30.0])  # the scale at its lower bound
    nll = -layer.log_prob(params, x).numpy()
    # The old bound (1e-3) kept about 125 nats per MNIST image under any model.
    assert np.all(nll < 1e-3)
    assert np.all(nll >= 0)


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


@pytest.mark.parametrize("layer_class, min_scale", [(likelihoods.Gaussian, 1e-3),
                                                    (likelihoods.DiscretizedLogistic, 1e-4)])
def test_initial_scale_sets_the_starting_scale_and_survives_the_config(layer_class, min_scale):
    default = layer_class()
    default.build((None, 2, 2, 3))
    np.testing.assert_allclose(default.scale().numpy(), [1 + min_scale] * 3, rtol=1e-6)
    layer = layer_class(per_pixel=True, initial_scale=0.05)
    layer.build((None, 2, 2, 3))
    np.testing.assert_allclose(layer.scale().numpy(), np.full((2, 2, 3), 0.05), rtol=1e-5)
    copy = layer_class.from_config(layer.get_config())
    copy.build((None, 2, 2, 3))
    np.testing.assert_allclose(copy.scale().numpy(), np.full((2, 2, 3), 0.05), rtol=1e-5)


@pytest.mark.parametrize("initial_scale", [1e-4, 0.0, -1.0])
def test_initial_scale_at_or_below_the_bound_is_refused(initial_scale):
    with pytest.raises(ValueError, match="initial_scale"):
        likelihoods.DiscretizedLogistic(initial_scale=initial_scale)
