import math

import keras
import numpy as np
import pytest
import scipy.linalg
import scipy.special
import tensorflow as tf
import tensorflow_probability as tfp

from conftest import tiny_vae
from keras_vae import evaluation

tfd = tfp.distributions


@pytest.fixture(autouse=True)
def _seeded_weights():
    """Initial weights of every model built here follow one seed."""
    keras.utils.set_random_seed(0)


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

    def log_weights(self, x, num_samples, seed):
        """`log p(x|z_s) + log p(z_s) - log q(z_s|x)`, `(S, batch)`: what evaluation reduces."""
        posterior = self.posterior(x)
        z = posterior.sample(num_samples, seed=seed)  # (S, batch, latent)
        log_px_z = self.conditional(z).log_prob(x[None])
        return log_px_z + self.prior().log_prob(z) - posterior.log_prob(z)

    def exact_log_px(self, x):
        cov = self.w @ self.w.T + self.noise**2 * np.eye(len(self.b))
        exact = tfd.MultivariateNormalFullCovariance(self.b.astype("float64"), cov)
        return exact.log_prob(np.asarray(x, "float64")).numpy()

    def exact_elbo(self, x):
        """E_q[log p(x|z) + log p(z) - log q(z|x)] in closed form, float64."""
        x = np.asarray(x, "float64")
        w, b = self.w.astype("float64"), self.b.astype("float64")
        mean = (x - b) @ self.post_gain.astype("float64").T + 0.3
        var = (np.sqrt(np.diag(self.post_cov)).astype("float32").astype("float64") * 1.5) ** 2
        data_dim, latent_dim = w.shape
        residual = np.sum((x - mean @ w.T - b) ** 2, axis=1) + np.sum(w**2 * var, axis=1).sum()
        expected_log_lik = (-0.5 * data_dim * np.log(2 * np.pi * self.noise**2)
                            - residual / (2 * self.noise**2))
        expected_log_prior = (-0.5 * latent_dim * np.log(2 * np.pi)
                              - 0.5 * (np.sum(mean**2, axis=1) + var.sum()))
        entropy = 0.5 * np.sum(np.log(2 * np.pi * np.e * var))
        return expected_log_lik + expected_log_prior + entropy


@pytest.fixture(scope="module")
def linear():
    model = LinearGaussian()
    x = np.random.default_rng(1).normal(size=(20, 3)).astype("float32") + model.b
    return model, x


def test_bounds_are_ordered_and_tighten_towards_exact(linear):
    model, _ = linear
    x = np.random.default_rng(2).normal(size=(200, 3)).astype("float32") + model.b
    exact = model.exact_log_px(x)
    # The gap of IWAE_K shrinks like 1/K; 50 copies of each image estimate
    # it to about 0.001 nats at K = 50.
    copies = np.tile(x, (50, 1))
    gaps = []
    for k in (1, 5, 50):
        result = evaluation.log_likelihood(model, copies, num_samples=k, verbose=0)
        gaps.append(float(np.mean(np.tile(exact, 50) - result["iwae"])))
    assert gaps[0] == pytest.approx(np.mean(exact - model.exact_elbo(x)), abs=0.07)
    # 2000 samples in chunks of 600, 600, 600 and 200.
    result = evaluation.log_likelihood(model, x, num_samples=2000, max_decoded=600, verbose=0)
    elbo, iwae = result["elbo"], result["iwae"]
    # The Monte Carlo ELBO's standard error is about 0.04 nats per image.
    np.testing.assert_allclose(elbo, model.exact_elbo(x), atol=0.25)
    assert abs(np.mean(elbo - model.exact_elbo(x))) < 0.02
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


def test_streamed_bounds_equal_a_one_shot_log_mean_exp_of_the_same_samples(linear):
    model, x = linear
    # K = 50 samples in chunks of 16, 16, 16 and 2, one image at a time.
    weights = evaluation.importance_log_weights(model, x, num_samples=50, max_decoded=16,
                                                seed=5)
    assert weights.shape == (20, 50)
    # Every chunk draws its own noise: no weight repeats within an image.
    assert all(len(np.unique(row)) == 50 for row in weights)
    # Spread the weights over many nats, so a running sum that is not
    # rescaled when the maximum moves is far off.
    assert np.ptp(weights, axis=1).min() > 1.0
    result = evaluation.log_likelihood(model, x, num_samples=50, max_decoded=16, seed=5,
                                       verbose=0)
    np.testing.assert_allclose(
        result["iwae"], scipy.special.logsumexp(weights, axis=1) - math.log(50), rtol=1e-12)
    np.testing.assert_allclose(result["elbo"], weights.mean(axis=1), rtol=1e-12)


def test_chunk_seeds_stay_int32_and_distinct_for_any_run_size():
    # A counter `first_image * K + first_sample` leaves int32 past 2**31: with
    # K = 2**20 samples, image 4096 wraps onto image 0.
    keys = [(0, 0), (0, 16), (16, 0), (4096, 0), (10**7, 10**6), (10**7, 10**6 + 4096)]
    seeds = [evaluation._chunk_seed(3, *key) for key in keys]
    assert all(seed.dtype == tf.int32 and seed.shape == (2,) for seed in seeds)
    assert len({tuple(seed.numpy()) for seed in seeds}) == len(keys)
    np.testing.assert_array_equal(seeds[4], evaluation._chunk_seed(3, 10**7, 10**6))


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
    report = evaluation.likelihood_report(vae, x, num_samples=20, seed=2, verbose=0)
    bounds = evaluation.log_likelihood(vae, x, num_samples=20, seed=2, verbose=0)
    assert report["nll"] == pytest.approx(-bounds["iwae"].mean(), rel=1e-12)
    assert report["neg_elbo"] == pytest.approx(-bounds["elbo"].mean(), rel=1e-12)
    np.testing.assert_allclose(report["bits_per_dim"], report["nll"] / (784 * math.log(2)))
    assert report["bits_per_dim_note"] is None
    assert report["num_images"] == 8 and report["num_samples"] == 20
    mse = evaluation.reconstruction_mse(vae, x)
    reconstructions = vae.reconstruct(x)
    np.testing.assert_allclose(mse["mse_per_pixel"], np.mean((reconstructions - x) ** 2),
                               rtol=1e-5)
    np.testing.assert_allclose(mse["mse_per_image"], mse["mse_per_pixel"] * 784, rtol=1e-5)
    # Per image: the NumPy sum, and the exported graph's TensorFlow twin, agree with it.
    errors = evaluation.reconstruction_errors(vae, x, batch_size=3)
    np.testing.assert_allclose(errors, ((reconstructions - x) ** 2).reshape(8, -1).sum(axis=1),
                               rtol=1e-5)
    from keras_vae import export
    np.testing.assert_allclose(export.reconstruction_error(vae, tf.constant(x)).numpy(), errors,
                               rtol=1e-5)


def test_log_likelihood_rejects_bad_arguments(linear):
    model, x = linear
    with pytest.raises(ValueError, match="num_samples must be a positive int"):
        evaluation.log_likelihood(model, x, num_samples=0)
    with pytest.raises(ValueError, match="x is empty"):
        evaluation.log_likelihood(model, x[:0])
    with pytest.raises(ValueError, match=r"seed must be an int >= 0. Received: seed=-1"):
        evaluation.importance_log_weights(model, x, seed=-1)


def test_bits_per_dim_only_for_a_probability_mass_of_the_data(mnist_small, linear):
    from keras_vae import build_vae

    _, (x_test, _) = mnist_small
    grey = x_test[:4]
    binary = (grey > 0.5).astype("float32")
    cases = [("bernoulli", binary, True), ("bernoulli", grey, False),
             ("discretized_logistic", grey, True),
             ("discretized_logistic", grey + 0.3 / 255 * (grey < 0.5), False),
             ("continuous_bernoulli", grey, False), ("gaussian", grey, False)]
    for likelihood, x, counted in cases:
        vae = build_vae(latent_dim=2, filters=(4,), hidden_units=8, likelihood=likelihood)
        report = evaluation.likelihood_report(vae, x, num_samples=2, verbose=0)
        assert (report["bits_per_dim"] is not None) == counted, likelihood
        assert (report["bits_per_dim_note"] is None) == counted, likelihood
        if not counted:
            assert "bits per dimension are reported only for a probability mass" in (
                report["bits_per_dim_note"])
    model, x = linear
    report = evaluation.likelihood_report(model, x, num_samples=2, verbose=0)
    assert report["bits_per_dim"] is None
    assert "LinearGaussian without a likelihood_layer" in report["bits_per_dim_note"]


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


def test_frechet_distance_of_one_feature_is_the_closed_form():
    rng = np.random.default_rng(2)
    a = rng.normal(1.0, 2.0, size=(400, 1))
    b = rng.normal(-1.0, 0.5, size=(300, 1))
    # In one dimension: (m_a - m_b)^2 + (s_a - s_b)^2.
    expected = (a.mean() - b.mean()) ** 2 + (a.std(ddof=1) - b.std(ddof=1)) ** 2
    assert evaluation.frechet_distance(a, b) == pytest.approx(expected, rel=1e-10)
    mean, cov = evaluation.gaussian_statistics(a)
    assert mean.shape == (1,) and cov.shape == (1, 1)
    assert evaluation.frechet_distance_from_statistics(0.0, 4.0, 1.0, 1.0) == pytest.approx(2.0)


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
    z_mean, z_log_var = (v.astype("float64") for v in vae.encode(x_test))
    posterior = tfd.Normal(z_mean, np.exp(0.5 * z_log_var))
    standard = tfd.Normal(np.float64(0.0), np.float64(1.0))
    expected = tfd.kl_divergence(posterior, standard).numpy().mean(axis=0)
    np.testing.assert_allclose(evaluation.kl_per_dimension(vae, x_test), expected,
                               rtol=1e-9, atol=1e-12)
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
    reconstruction, kl = vae.compute_vae_losses(x_test[:16])
    assert -result["elbo"].mean() == pytest.approx(
        float(np.mean(reconstruction + kl)), rel=0.05)


# ------------------------------------------------------------ precision and recall


def brute_force_precision_recall(real, fake, k):
    """Kynkaanniemi et al.'s definitions, one point at a time with Euclidean norms."""
    def radii(points):
        return [sorted(np.linalg.norm(p - q) for j, q in enumerate(points) if j != i)[k - 1]
                for i, p in enumerate(points)]

    def covered(points, manifold):
        balls = list(zip(manifold, radii(manifold)))
        return np.mean([any(np.linalg.norm(p - m) <= r for m, r in balls) for p in points])

    return {"precision": covered(fake, real), "recall": covered(real, fake)}


@pytest.mark.parametrize("k", [1, 3])
def test_precision_recall_matches_a_brute_force_reference(k):
    rng = np.random.default_rng(0)
    real = rng.normal(size=(40, 5))
    # Samples that cover part of the data (a shifted, narrower cloud) and add outliers.
    fake = np.concatenate([rng.normal(0.8, 0.6, size=(30, 5)), rng.normal(4.0, 1.0, (5, 5))])
    expected = brute_force_precision_recall(real, fake, k)
    assert 0 < expected["precision"] < 1 and 0 < expected["recall"] < 1
    result = evaluation.precision_recall(real, fake, k=k)
    assert set(result) == {"precision", "recall"}
    assert result["precision"] == pytest.approx(expected["precision"], abs=1e-12)
    assert result["recall"] == pytest.approx(expected["recall"], abs=1e-12)


def test_precision_recall_of_a_hand_worked_case_and_in_blocks(monkeypatch):
    real = np.array([[0.0], [1.0], [2.0], [10.0]])
    fake = np.array([[2.5], [5.0], [100.0], [101.0]])
    # k=1 radii: real 1, 1, 1, 8; fake 2.5, 2.5, 1, 1. Fake 2.5 and 5 lie in real
    # balls, 100 and 101 do not; real 0 is on the boundary of fake 2.5's ball
    # (inside), 1 and 2 inside, 10 outside every fake ball.
    assert evaluation.precision_recall(real, fake, k=1) == {"precision": 0.5, "recall": 0.75}
    # The self-distance is not a neighbour: with k=1 counting it, every radius would be 0.
    rng = np.random.default_rng(1)
    real, fake = rng.normal(size=(23, 3)), rng.normal(0.5, 1.0, size=(19, 3))
    whole = evaluation.precision_recall(real, fake)
    monkeypatch.setattr(evaluation, "_DISTANCE_ROWS", 4)  # distances in blocks of 4 rows
    assert evaluation.precision_recall(real, fake) == whole
    assert whole == pytest.approx(brute_force_precision_recall(real, fake, 3))


def test_precision_recall_names_bad_features():
    good = np.zeros((5, 2))
    with pytest.raises(ValueError, match=r"real_features must have shape \(N, F\) with N > "
                                         r"k=3. Received: real_features.shape=\(3, 2\)"):
        evaluation.precision_recall(np.zeros((3, 2)), good)
    with pytest.raises(ValueError, match="the same number of features. Received: 2 and 4"):
        evaluation.precision_recall(good, np.zeros((5, 4)))
    with pytest.raises(ValueError, match="fake_features must be finite"):
        evaluation.precision_recall(good, np.full((5, 2), np.nan))
    with pytest.raises(ValueError, match="k must be a positive int. Received: k=0"):
        evaluation.precision_recall(good, good, k=0)


# ------------------------------------------------------------ discrete codes


def test_codebook_report_of_a_vqvae_before_and_after_its_prior(mnist_small):
    from keras_vae import models

    (x_train, _), (x_test, _) = mnist_small
    x, x_test = (x_train[:64] > 0.5).astype("float32"), (x_test[:12] > 0.5).astype("float32")
    model = models.build_vqvae(num_embeddings=8, embedding_dim=3, filters=(4, 4),
                               prior_filters=8, prior_blocks=1, seed=0)
    before = evaluation.codebook_report(model, x_test)
    assert before["prior_nll_bits"] is None
    assert "prior over code maps has not been fitted" in before["prior_nll_bits_note"]
    model.fit_prior(x, epochs=1, batch_size=32, verbose=0)
    report = evaluation.codebook_report(model, x_test, batch_size=5)
    assert report["prior_nll_bits_note"] is None
    # NumPy reference: the prior's log-softmax at each test code, summed, in bits.
    codes, _ = model.encode(x_test)
    logits = model.prior(codes).numpy().astype("float64")
    log_p = logits - scipy.special.logsumexp(logits, axis=-1, keepdims=True)
    picked = np.take_along_axis(log_p, codes[..., None], -1)[..., 0]
    expected = float(np.mean(-picked.sum(axis=(1, 2)) / np.log(2)))
    assert report["prior_nll_bits"] == pytest.approx(expected, rel=1e-4)
    assert report["code_bits_per_image"] == pytest.approx(49 * 3.0)
    counts = np.bincount(codes.reshape(-1), minlength=8)
    p = counts[counts > 0] / counts.sum()
    assert report["codebook"] == {
        "num_embeddings": 8, "positions": 49, "codes_used": int(np.count_nonzero(counts)),
        "fraction_used": pytest.approx(np.count_nonzero(counts) / 8),
        "perplexity": pytest.approx(np.exp(-(p * np.log(p)).sum())),
        "collapsed": bool(np.count_nonzero(counts) / 8 < 0.25), "collapse_threshold": 0.25}
    # A codebook of one repeated vector is reported collapsed.
    model.quantizer.embeddings.assign(np.zeros((8, 3), "float32"))
    collapsed = evaluation.codebook_report(model, x_test)["codebook"]
    assert collapsed["collapsed"] and collapsed["fraction_used"] == 1 / 8
    assert not evaluation.codebook_report(model, x_test, collapse_threshold=0.1)[
        "codebook"]["collapsed"]
    with pytest.raises(ValueError, match="collapse_threshold must be a fraction in"):
        evaluation.codebook_report(model, x_test, collapse_threshold=2)
    with pytest.raises(evaluation.base.MissingCapabilityError, match="VAE has none"):
        evaluation.codebook_report(tiny_vae(), x_test)


def test_precision_recall_tells_a_collapsed_sampler_from_a_blurred_one():
    rng = np.random.default_rng(0)
    real = rng.normal(size=(400, 2))
    collapsed = real[:5].repeat(40, axis=0) + 1e-3 * rng.normal(size=(200, 2))  # five real images
    blurred = 3.0 * rng.normal(size=(400, 2))                                   # wider than the data
    few = evaluation.precision_recall(real, collapsed, k=3)
    wide = evaluation.precision_recall(real, blurred, k=3)
    same = evaluation.precision_recall(real, real.copy(), k=3)
    assert few["precision"] == 1.0 and few["recall"] < 0.1
    assert wide["recall"] > 0.95 and wide["precision"] < 0.6
    assert same == {"precision": 1.0, "recall": 1.0}
