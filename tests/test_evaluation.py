import math

import numpy as np
import pytest
import scipy.linalg
import tensorflow as tf
import tensorflow_probability as tfp

from conftest import tiny_vae
from keras_vae import evaluation

tfd = tfp.distributions


class LinearGaussian:
    """p(z) = N(0, I), p(x|z) = N(W z + b, s^2 I): log p(x) is exact.

    The posterior q(z|x) is the exact one with its mean shifted and its
    scale widened, so that the ELBO is strictly below log p(x).
    """

    def __init__(self, latent_dim=2, data_dim=3, noise=0.5, seed=0):
        rng = np.random.default_rng(seed)
        self.w = rng.normal(size=(data_dim, latent_dim)).astype("float32")
        self.b = rng.normal(size=data_dim).astype("float32")
        self.noise = noise
        self.latent_dim = latent_dim
        precision = np.eye(latent_dim) + self.w.T @ self.w / noise**2
        self.post_cov = np.linalg.inv(precision)
        self.post_gain = (self.post_cov @ self.w.T / noise**2).astype("float32")

    def prior(self):
        return tfd.MultivariateNormalDiag(loc=tf.zeros(self.latent_dim))

    def conditional(self, z):
        return tfd.MultivariateNormalDiag(loc=tf.matmul(z, self.w.T) + self.b,
                                          scale_diag=tf.fill([3], self.noise))

    def conditional_log_prob(self, z, x):
        return self.conditional(z).log_prob(x)

    def posterior(self, x):
        mean = tf.matmul(x - self.b, self.post_gain.T) + 0.3
        scale = np.sqrt(np.diag(self.post_cov)).astype("float32") * 1.5
        return tfd.MultivariateNormalDiag(loc=mean, scale_diag=scale)

    def exact_log_px(self, x):
        cov = self.w @ self.w.T + self.noise**2 * np.eye(len(self.b))
        exact = tfd.MultivariateNormalFullCovariance(self.b.astype("float64"), cov)
        return exact.log_prob(np.asarray(x, "float64")).numpy()


@pytest.fixture(scope="module")
def linear():
    model = LinearGaussian()
    x = np.random.default_rng(1).normal(size=(20, 3)).astype("float32") + model.b
    return model, x


def test_bounds_are_ordered_and_tighten_towards_exact(linear):
    model, _ = linear
    x = np.random.default_rng(2).normal(size=(200, 3)).astype("float32") + model.b
    exact = model.exact_log_px(x)
    gaps = []
    for k in (1, 5, 50):
        result = evaluation.log_likelihood(model, x, num_samples=k, verbose=0)
        gaps.append(float(np.mean(exact - result["iwae"])))
    result = evaluation.log_likelihood(model, x, num_samples=2000, verbose=0)
    elbo, iwae = result["elbo"], result["iwae"]
    assert np.all(elbo < iwae)  # Jensen, on the same samples
    assert np.all(elbo < exact)
    # IWAE is a lower bound in expectation; one estimate may exceed it by noise.
    assert abs(np.mean(exact - iwae)) < 0.01  # K=2000: within 0.01 nats on average
    assert np.all(iwae <= exact + 0.1)
    assert gaps[0] > 0.5  # the shifted posterior makes the ELBO visibly loose
    assert gaps[0] > 5 * gaps[1] > 25 * gaps[2] > 0  # tightens with K


def test_single_sample_bound_matches_elbo_in_expectation(linear):
    model, x = linear
    many = evaluation.log_likelihood(model, x, num_samples=4000, verbose=0)["elbo"]
    # IWAE_1 of 500 copies of each image: each copy draws its own sample.
    copies = np.tile(x, (500, 1))
    one = evaluation.log_likelihood(model, copies, num_samples=1, verbose=0)["iwae"]
    one = one.reshape(500, len(x)).mean(axis=0)
    np.testing.assert_allclose(one, many, atol=0.3)
    assert abs(one.mean() - many.mean()) < 0.06


def test_chunking_gives_identical_samples_for_fixed_chunks(linear):
    model, x = linear
    small = evaluation.log_likelihood(model, x, num_samples=64, max_decoded=16, verbose=0)
    large = evaluation.log_likelihood(model, x, num_samples=64, max_decoded=16, verbose=0)
    np.testing.assert_array_equal(small["iwae"], large["iwae"])
    # Different chunking draws other samples but estimates the same thing.
    other = evaluation.log_likelihood(model, x, num_samples=64, max_decoded=4096, verbose=0)
    assert abs(other["iwae"].mean() - small["iwae"].mean()) < 0.1


def test_vae_likelihood_report_and_mse(mnist_small):
    _, (x_test, _) = mnist_small
    x = (x_test[:8] > 0.5).astype("float32")
    vae = tiny_vae()
    report = evaluation.likelihood_report(vae, x, num_samples=20, verbose=0)
    assert report["nll"] <= report["neg_elbo"] + 1e-3
    np.testing.assert_allclose(report["bits_per_dim"], report["nll"] / (784 * math.log(2)))
    assert report["num_images"] == 8 and report["num_samples"] == 20
    mse = evaluation.reconstruction_mse(vae, x)
    reconstructions = vae.reconstruct(x)
    np.testing.assert_allclose(mse["mse_per_pixel"], np.mean((reconstructions - x) ** 2),
                               rtol=1e-5)
    np.testing.assert_allclose(mse["mse_per_image"], mse["mse_per_pixel"] * 784, rtol=1e-5)


def test_log_likelihood_rejects_bad_arguments(linear):
    model, x = linear
    with pytest.raises(ValueError, match="num_samples must be a positive int"):
        evaluation.log_likelihood(model, x, num_samples=0)
    with pytest.raises(ValueError, match="x is empty"):
        evaluation.log_likelihood(model, x[:0])


def _scipy_frechet(a, b):
    mu1, mu2 = a.mean(0), b.mean(0)
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    covmean = scipy.linalg.sqrtm(s1 @ s2).real
    return float(np.sum((mu1 - mu2) ** 2) + np.trace(s1 + s2 - 2 * covmean))


def test_frechet_distance_matches_scipy_reference():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(500, 16))
    b = rng.normal(size=(400, 16)) @ rng.normal(size=(16, 16)) * 0.3 + 0.5
    np.testing.assert_allclose(evaluation.frechet_distance(a, b), _scipy_frechet(a, b),
                               rtol=1e-6)


def test_frechet_distance_zero_for_identical_and_grows_with_shift():
    rng = np.random.default_rng(1)
    a = rng.normal(size=(300, 8))
    assert evaluation.frechet_distance(a, a) == pytest.approx(0.0, abs=1e-8)
    distances = [evaluation.frechet_distance(a, a + shift) for shift in (0.5, 1.0, 2.0)]
    np.testing.assert_allclose(distances, [8 * 0.25, 8 * 1.0, 8 * 4.0], rtol=1e-6)
    with pytest.raises(ValueError, match="N >= 2"):
        evaluation.frechet_distance(a[:1], a)


def test_mnist_classifier_fid_is_labelled_and_discriminates(mnist_small):
    (x_train, _), (x_test, _) = mnist_small
    extractor = evaluation.mnist_classifier_features()
    assert extractor.label == "MNIST-classifier FID"
    same = evaluation.fid(x_train[:256], x_test[:128], extractor)
    noise = np.random.default_rng(0).random((128, 28, 28, 1)).astype("float32")
    different = evaluation.fid(x_train[:256], noise, extractor)
    assert same["label"] == "MNIST-classifier FID" and same["extractor"] == "mnist_classifier"
    assert different["value"] > 5 * same["value"]


def test_inception_without_weights_or_network_fails_clearly(monkeypatch, tmp_path):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))

    def offline(*args, **kwargs):
        raise OSError("network is unreachable")

    monkeypatch.setattr(evaluation.keras.applications, "InceptionV3", offline)
    with pytest.raises(RuntimeError, match="InceptionV3 ImageNet weights .* could not be "
                                           "downloaded.*mnist_classifier_features"):
        evaluation.inception_features(timeout=1.0)


def test_kl_per_dimension_and_active_units_see_a_collapsed_dimension(mnist_small):
    (_, _), (x_test, _) = mnist_small
    vae = tiny_vae(latent_dim=4)
    head = vae.encoder.get_layer("z_mean")
    kernel, bias = head.get_weights()
    kernel[:, 1] = 0.0  # dimension 1's posterior mean no longer depends on x
    bias[1] = 0.0
    head.set_weights([kernel, bias])
    z_mean, z_log_var = vae.encode(x_test)
    expected = 0.5 * (z_mean**2 + np.exp(z_log_var) - 1 - z_log_var).mean(axis=0)
    np.testing.assert_allclose(evaluation.kl_per_dimension(vae, x_test), expected, rtol=1e-5)
    units = evaluation.active_units(vae, x_test, threshold=1e-6)
    assert units["variances"][1] == pytest.approx(0.0, abs=1e-12)
    assert units["active_units"] == 3


@pytest.mark.parametrize("options", [{"prior": "mixture"}, {"likelihood": "discretized_logistic"}])
def test_likelihood_bounds_work_for_other_priors_and_likelihoods(options, mnist_small):
    from keras_vae import build_vae

    (_, _), (x_test, _) = mnist_small
    vae = build_vae(latent_dim=4, filters=(8,), hidden_units=16, seed=0, **options)
    result = evaluation.log_likelihood(vae, x_test[:16], num_samples=64, verbose=0)
    assert np.all(np.isfinite(result["iwae"]))
    assert np.all(result["iwae"] >= result["elbo"] - 1e-3)
    reconstruction, kl = vae.compute_vae_losses(x_test[:16])
    assert -result["elbo"].mean() == pytest.approx(
        float(np.mean(reconstruction + kl)), rel=0.05)
