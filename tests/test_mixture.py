"""Ex-post density estimation: EM recovers a known mixture; the sampler decodes its draws."""

import keras
import numpy as np
import pytest
import scipy.special
import scipy.stats

from conftest import tiny_vae
from keras_vae import mixture


@pytest.fixture(autouse=True)
def _seeded_weights():
    """Initial weights of every model built here follow one seed."""
    keras.utils.set_random_seed(0)


def _scipy_mean_log_likelihood(fitted, points):
    """Mean log-density of `points` under a fitted mixture's parameters, in float64."""
    weights = fitted.mixture_distribution.probs_parameter().numpy().astype("float64")
    means = fitted.components_distribution.mean().numpy().astype("float64")
    covariances = fitted.components_distribution.covariance().numpy().astype("float64")
    log_densities = np.stack([scipy.stats.multivariate_normal(m, c).logpdf(points)
                              for m, c in zip(means, covariances)], axis=1)
    return scipy.special.logsumexp(log_densities + np.log(weights), axis=1).mean()


def test_em_recovers_the_means_weights_and_covariances_of_a_known_mixture():
    rng = np.random.default_rng(0)
    a = rng.multivariate_normal([-4, 0], [[1.0, 0.5], [0.5, 1.0]], size=3000)
    b = rng.multivariate_normal([4, 3], [[0.3, 0.0], [0.0, 2.0]], size=1000)
    fitted, mean_log_likelihood = mixture.fit_gaussian_mixture(np.vstack([a, b]), 2, seed=0)
    means = fitted.components_distribution.mean().numpy()
    order = np.argsort(means[:, 0])
    np.testing.assert_allclose(means[order], [[-4, 0], [4, 3]], atol=0.1)
    weights = fitted.mixture_distribution.probs_parameter().numpy()[order]
    np.testing.assert_allclose(weights, [0.75, 0.25], atol=0.02)
    covariances = fitted.components_distribution.covariance().numpy()[order]
    np.testing.assert_allclose(covariances[0], [[1.0, 0.5], [0.5, 1.0]], atol=0.1)
    np.testing.assert_allclose(covariances[1], [[0.3, 0.0], [0.0, 2.0]], atol=0.15)
    # One Gaussian fits these two clusters worse than the mixture does.
    _, single = mixture.fit_gaussian_mixture(np.vstack([a, b]), 1)
    assert mean_log_likelihood > single + 0.5


@pytest.mark.parametrize("max_iter", [1, 2, 200])
def test_reported_log_likelihood_is_that_of_the_returned_mixture(max_iter):
    rng = np.random.default_rng(1)
    points = np.vstack([rng.normal(-3, 1, size=(300, 2)), rng.normal(2, 0.5, size=(200, 2))])
    fitted, mean_log_likelihood = mixture.fit_gaussian_mixture(points, 3, max_iter=max_iter)
    # The returned parameters are float32; the reference reads them back.
    assert mean_log_likelihood == pytest.approx(_scipy_mean_log_likelihood(fitted, points),
                                                abs=1e-4)


def test_fit_refuses_bad_points():
    with pytest.raises(ValueError, match="at least num_components"):
        mixture.fit_gaussian_mixture(np.zeros((3, 2)), 5)
    with pytest.raises(ValueError, match="finite"):
        mixture.fit_gaussian_mixture(np.full((10, 2), np.nan), 2)
    # Enough points but too few distinct ones to start 4 components.
    repeated = np.repeat([[0.0, 0.0], [1.0, 1.0], [2.0, 0.5]], 5, axis=0)
    with pytest.raises(ValueError, match="at least num_components=4 distinct points.*"
                                         "Received: 3 distinct points among 15"):
        mixture.fit_gaussian_mixture(repeated, 4)


def test_ex_post_sampler_decodes_mixture_draws(mnist_small):
    (x_train, _), _ = mnist_small
    vae = tiny_vae()
    sampler = mixture.ExPostSampler(vae, num_components=3)
    with pytest.raises(ValueError, match="not fitted"):
        sampler.sample(2)
    sampler.fit(x_train)
    codes = sampler.sample_codes(4, seed=1)
    np.testing.assert_array_equal(codes, sampler.sample_codes(4, seed=1))
    assert not np.allclose(sampler.sample_codes(4), sampler.sample_codes(4))
    np.testing.assert_allclose(sampler.sample(4, seed=1), vae.decode(codes), atol=1e-6)
    with pytest.raises(TypeError, match="keras_vae model with an encoder.*Received: object"):
        mixture.ExPostSampler(object())
