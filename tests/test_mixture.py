"""Ex-post density estimation: EM recovers a known mixture; the sampler decodes its draws."""

import numpy as np
import pytest

from keras_vae import mixture
from conftest import tiny_vae


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


def test_fit_refuses_bad_points():
    with pytest.raises(ValueError, match="at least num_components"):
        mixture.fit_gaussian_mixture(np.zeros((3, 2)), 5)
    with pytest.raises(ValueError, match="finite"):
        mixture.fit_gaussian_mixture(np.full((10, 2), np.nan), 2)


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
    with pytest.raises(TypeError, match="latent_codes"):
        mixture.ExPostSampler(object())
