"""Priors: the analytic KL where TFP knows it, an unbiased Monte Carlo KL otherwise."""

import keras
import numpy as np
import pytest
import scipy.special
import scipy.stats
import tensorflow as tf
import tensorflow_probability as tfp

import keras_vae
from conftest import run_saving_roundtrip
from keras_vae import priors

tfd = tfp.distributions


@pytest.fixture(autouse=True)
def _seeded_weights():
    """Initial weights of every model built here follow one seed."""
    keras.utils.set_random_seed(0)


def _numpy_diagonal_mixture_log_prob(z, log_weights, means, scales):
    """log sum_k w_k prod_d N(z_d | mean_kd, scale_kd^2), float64, `(N,)`."""
    z = np.asarray(z, "float64")[:, None, :]
    component = scipy.stats.norm.logpdf(z, means.astype("float64"),
                                        scales.astype("float64")).sum(axis=-1)
    return scipy.special.logsumexp(component + log_weights, axis=1)


def _posterior(seed=0, batch=3, dim=4):
    rng = np.random.default_rng(seed)
    return tfd.MultivariateNormalDiag(
        loc=rng.normal(size=(batch, dim)).astype("float32"),
        scale_diag=rng.uniform(0.3, 1.5, size=(batch, dim)).astype("float32"))


def test_standard_normal_kl_is_analytic_and_matches_the_formula():
    posterior = _posterior()
    prior = priors.StandardNormal(4).distribution()
    assert priors.has_analytic_kl(posterior, prior)
    mean, scale = posterior.loc.numpy(), posterior.stddev().numpy()
    expected = 0.5 * np.sum(mean**2 + scale**2 - 1 - 2 * np.log(scale), axis=1)
    got = priors.kl_divergence(posterior, prior, posterior.sample(seed=1)).numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-5)


def test_mixture_prior_uses_monte_carlo_kl_which_is_unbiased():
    # A one-component mixture at N(0, I) is the standard normal, whose KL is exact.
    layer = priors.MixtureOfGaussians(4, num_components=1)
    layer.means.assign(np.zeros((1, 4), "float32"))
    posterior = _posterior()
    prior = layer.distribution()
    assert not priors.has_analytic_kl(posterior, prior)
    z = posterior.sample(20000, seed=tf.constant([3, 4]))
    estimates = priors.kl_divergence(posterior, prior, z).numpy().mean(axis=0)
    exact = tfd.kl_divergence(posterior, priors.StandardNormal(4).distribution()).numpy()
    np.testing.assert_allclose(estimates, exact, atol=0.05)


def test_mixture_prior_log_prob_matches_a_scipy_mixture():
    layer = priors.MixtureOfGaussians(3, num_components=4, seed=0)
    rng = np.random.default_rng(5)
    means = rng.normal(size=(4, 3)).astype("float32")
    log_scales = rng.uniform(-1.0, 0.5, size=(4, 3)).astype("float32")
    logits = rng.normal(size=4).astype("float32")
    layer.means.assign(means)
    layer.log_scales.assign(log_scales)
    layer.logits.assign(logits)
    z = rng.normal(size=(6, 3)).astype("float32") * 2
    log_weights = logits.astype("float64") - scipy.special.logsumexp(logits.astype("float64"))
    expected = _numpy_diagonal_mixture_log_prob(z, log_weights, means, np.exp(log_scales))
    np.testing.assert_allclose(layer(z).numpy(), expected, rtol=1e-5)
    np.testing.assert_allclose(layer.distribution().log_prob(z).numpy(), expected, rtol=1e-5)


def test_vamp_prior_is_the_mean_of_the_pseudo_inputs_posteriors():
    vae = keras_vae.build_vae(latent_dim=3, filters=(4,), hidden_units=8, prior="vamp", seed=0)
    assert vae.kl_estimator == "monte_carlo"
    # Narrow components, so a wrong scale (e.g. exp(log_var)) would show.
    vae.encoder.get_layer("z_log_var").bias.assign(np.full(3, -1.5, "float32"))
    z = np.random.default_rng(0).normal(size=(5, 3)).astype("float32")
    pseudo = scipy.special.expit(vae.prior_layer.pseudo_inputs.numpy().astype("float64"))
    z_mean, z_log_var = vae.encode(pseudo.astype("float32"))
    k = vae.prior_layer.num_pseudo_inputs
    expected = _numpy_diagonal_mixture_log_prob(z, np.full(k, -np.log(k)), z_mean,
                                                np.exp(0.5 * z_log_var.astype("float64")))
    np.testing.assert_allclose(vae.prior().log_prob(z).numpy(), expected, rtol=1e-5)
    with pytest.raises(ValueError, match="depends on the encoder"):
        vae.prior_layer(z)


def test_unknown_prior_is_refused():
    with pytest.raises(ValueError, match="prior must be one of"):
        keras_vae.build_vae(prior="laplace")


@pytest.mark.parametrize("prior", ["mixture", "vamp"])
def test_vae_with_a_learned_prior_trains_samples_and_reloads(prior, mnist_small, tmp_path):
    (x_train, _), (x_test, _) = mnist_small
    vae = keras_vae.build_vae(latent_dim=4, filters=(8, 16), hidden_units=32,
                              prior=prior, seed=0)
    vae.compile(optimizer="adam")
    history = vae.fit(x_train, epochs=3, batch_size=64, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]
    before = [w.numpy().copy() for w in vae.prior_layer.weights]
    assert any(not np.allclose(b, 0) for b in before)
    samples = vae.sample(6, seed=1)
    assert samples.shape == (6, 28, 28, 1)
    np.testing.assert_array_equal(samples, vae.sample(6, seed=1))
    run_saving_roundtrip(vae, x_test[:8], tmp_path, check_code=f"""
        assert type(model.prior_layer).__name__ == {type(vae.prior_layer).__name__!r}
        assert model.kl_estimator == "monte_carlo"
    """)
