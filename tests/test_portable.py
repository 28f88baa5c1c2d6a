"""keras_vae.portable: plain-op log-densities equal to TensorFlow Probability's."""

import keras
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp

import keras_vae
from keras_vae import export
from keras_vae import portable

tfd = tfp.distributions


def _normal(shape, seed, scale=1.0):
    return (scale * np.random.RandomState(seed).randn(*shape)).astype("float32")


def test_diagonal_gaussian_equals_tfp_and_a_numpy_formula():
    loc, x = _normal((3, 5), 0), _normal((4, 3, 5), 1, 3.0)  # x broadcasts over a leading axis
    scale = np.exp(_normal((3, 5), 2)).astype("float32")
    got = portable.DiagonalGaussian(loc, scale).log_prob(x).numpy()
    expected = tfd.MultivariateNormalDiag(loc, scale).log_prob(x).numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-6)
    z = (x.astype("float64") - loc) / scale
    numpy = (-0.5 * z ** 2 - 0.5 * np.log(2 * np.pi) - np.log(scale.astype("float64"))).sum(-1)
    np.testing.assert_allclose(got, numpy, rtol=1e-5)
    gaussian = portable.DiagonalGaussian(loc, scale)
    np.testing.assert_array_equal(gaussian.mean(), loc)
    np.testing.assert_array_equal(gaussian.stddev(), scale)


def test_gaussian_mixture_equals_tfps_mixture_same_family():
    logits, loc = _normal((4,), 3), _normal((4, 2), 4)
    scale = np.exp(0.5 * _normal((4, 2), 5)).astype("float32")
    x = _normal((6, 7, 2), 6, 2.0)
    got = portable.GaussianMixture(logits, loc, scale).log_prob(x).numpy()
    expected = tfd.MixtureSameFamily(tfd.Categorical(logits=logits),
                                     tfd.MultivariateNormalDiag(loc, scale)).log_prob(x)
    np.testing.assert_allclose(got, expected.numpy(), rtol=1e-6)


def test_bernoulli_log_prob_equals_tfp_on_binary_and_grey_pixels():
    logits = _normal((3, 4, 5, 2), 7, 20.0)  # saturated logits too
    rng = np.random.RandomState(8)
    for x in ((rng.rand(3, 4, 5, 2) > 0.5).astype("float32"),
              rng.rand(3, 4, 5, 2).astype("float32")):
        got = portable.bernoulli_log_prob(logits, x).numpy()
        expected = tfd.Independent(tfd.Bernoulli(logits=logits, dtype=tf.float32),
                                   reinterpreted_batch_ndims=3).log_prob(x).numpy()
        np.testing.assert_allclose(got, expected, rtol=1e-6)


def test_plain_ops_is_scoped_and_swaps_the_librarys_distributions():
    vae = keras_vae.build_vae(latent_dim=2, filters=(4,), hidden_units=8, seed=0)
    assert not portable.active()
    with portable.plain_ops():
        assert portable.active()
        with portable.plain_ops():
            pass
        assert portable.active()  # a nested block leaves the outer one on
        assert isinstance(vae.prior(), portable.DiagonalGaussian)
    assert not portable.active()
    assert isinstance(vae.prior(), tfd.MultivariateNormalDiag)


@pytest.mark.parametrize("kind", ["vae", "mixture", "gaussian", "hierarchical_vamp"])
def test_the_scorer_equals_the_tfp_log_weights(kind):
    """export's negative ELBO (plain ops) against the model's log_weights in TFP."""
    keras.utils.set_random_seed(0)
    small = {"filters": (4, 8), "hidden_units": 16, "seed": 0}
    if kind == "hierarchical_vamp":  # mnist-best's kind: two layers, a VampPrior
        model = keras_vae.build_hierarchical_vae(latent_dim=2, bottom_latent_dim=4,
                                                 top_hidden_units=(8,), prior="vamp", **small)
    elif kind == "mixture":
        model = keras_vae.build_vae(latent_dim=2, prior="mixture", **small)
    elif kind == "gaussian":
        model = keras_vae.build_vae(latent_dim=2, likelihood="gaussian", **small)
    else:  # mnist-default's kind: Bernoulli pixels, a standard normal prior
        model = keras_vae.build_vae(latent_dim=2, **small)
    x = (np.random.RandomState(1).rand(5, 28, 28, 1) > 0.6).astype("float32")
    tfp_values = -tf.reduce_mean(
        model.log_weights(tf.constant(x), 8, 3, shared_noise=True), axis=0).numpy()
    plain = export.negative_elbo(model, tf.constant(x), num_samples=8, seed=3).numpy()
    assert np.all(np.abs(tfp_values) > 10)  # nats: a dropped term would show
    np.testing.assert_allclose(plain, tfp_values, rtol=1e-6)
