"""Better samples without retraining: a Gaussian mixture fitted to the training codes.

A VAE's aggregate posterior (the codes of the training images) rarely fills
the prior N(0, I) evenly, so prior draws land in holes and decode to blurry
in-betweens. Fitting a mixture of Gaussians to the codes and sampling from it
("ex-post density estimation", Ghosh et al. 2020) avoids the holes; it also
makes a plain autoencoder a generator.

Reference:
    Ghosh et al., "From Variational to Deterministic Autoencoders", 2020,
    https://arxiv.org/abs/1903.12436
"""

import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

from keras_vae.models import base
from keras_vae.validation import check_int

tfd = tfp.distributions


def fit_gaussian_mixture(points, num_components=10, max_iter=200, tol=1e-4, seed=0,
                         reg_covar=1e-6):
    """Fits a full-covariance Gaussian mixture to `points` by expectation-maximisation.

    Initialisation picks `num_components` distinct points as means (k-means++
    style, seeded), the data covariance for every component and equal weights.

    Args:
        points: Array `(N, D)` with at least `num_components` distinct points.
        num_components: Number of components K.
        max_iter: Maximum EM iterations.
        tol: Stop when the mean log-likelihood improves by less than this.
        seed: Seed of the initial means.
        reg_covar: Added to covariance diagonals to keep them positive definite.

    Returns:
        A pair `(mixture, mean_log_likelihood)`: a `tfd.MixtureSameFamily` of
        `tfd.MultivariateNormalTriL` (float32), and the mean log-likelihood
        of `points` under the returned mixture's parameters (float64).
    """
    x = np.asarray(points, dtype="float64")
    if x.ndim != 2 or not np.all(np.isfinite(x)):
        raise ValueError(
            f"points must be a finite (N, D) array. Received: shape {x.shape}")
    k = check_int("num_components", num_components)
    if len(x) < k:
        raise ValueError(
            f"points must number at least num_components={k}. Received: {len(x)} points")
    distinct = len(np.unique(x, axis=0))
    if distinct < k:
        # k-means++ would run out of new points to pick (all distances 0).
        raise ValueError(
            f"points must hold at least num_components={k} distinct points, one "
            f"to start each component. Received: {distinct} distinct points "
            f"among {len(x)}")
    n, d = x.shape
    rng = np.random.default_rng(seed)
    means = [x[rng.integers(n)]]
    for _ in range(1, k):
        distance = np.min([np.sum((x - m) ** 2, axis=1) for m in means], axis=0)
        means.append(x[rng.choice(n, p=distance / distance.sum())])
    means = np.array(means)
    covariances = np.repeat(np.cov(x.T).reshape(1, d, d) + reg_covar * np.eye(d), k, axis=0)
    weights = np.full(k, 1.0 / k)
    previous = -np.inf
    for _ in range(max_iter):
        log_resp, mean_log_likelihood = _expectation(x, means, covariances, weights)
        if mean_log_likelihood - previous < tol:
            break  # the parameters just scored are returned
        previous = mean_log_likelihood
        resp = np.exp(log_resp)
        counts = resp.sum(axis=0) + 1e-10
        weights = counts / n
        means = resp.T @ x / counts[:, None]
        for j in range(k):
            centred = x - means[j]
            covariances[j] = (resp[:, j, None] * centred).T @ centred / counts[j]
            covariances[j] += reg_covar * np.eye(d)
    else:  # max_iter updates: score the last one
        _, mean_log_likelihood = _expectation(x, means, covariances, weights)
    mixture = tfd.MixtureSameFamily(
        mixture_distribution=tfd.Categorical(probs=weights.astype("float32")),
        components_distribution=tfd.MultivariateNormalTriL(
            loc=means.astype("float32"),
            scale_tril=np.linalg.cholesky(covariances).astype("float32")))
    return mixture, mean_log_likelihood


def _expectation(x, means, covariances, weights):
    """Returns log responsibilities `(N, K)` and the mean log-likelihood of `x`."""
    log_joint = _component_log_densities(x, means, covariances) + np.log(weights)
    log_norm = np.logaddexp.reduce(log_joint, axis=1, keepdims=True)
    return log_joint - log_norm, float(log_norm.mean())


def _component_log_densities(x, means, covariances):
    """log N(x | mean_j, cov_j) for every point and component, `(N, K)`."""
    n, d = x.shape
    out = np.empty((n, len(means)))
    for j, (mean, cov) in enumerate(zip(means, covariances)):
        chol = np.linalg.cholesky(cov)
        solved = np.linalg.solve(chol, (x - mean).T)
        out[:, j] = (-0.5 * np.sum(solved ** 2, axis=0) - np.log(np.diag(chol)).sum()
                     - 0.5 * d * np.log(2 * np.pi))
    return out


class ExPostSampler:
    """Samples a trained model through a Gaussian mixture fitted to its codes.

    Works with any keras_vae model with an encoder: a `VAE` (its posterior
    means are the codes), an `Autoencoder`, or a `ConditionalVAE` given the
    training images' labels in `fit` and the classes to draw in `sample`.

    Args:
        model: The trained model.
        num_components: Components of the mixture.
        seed: Seed of the fit and of the draws (`sample(n)` without a seed
            gives new images on each call, the same sequence each run).

    Example:

    ```python
    sampler = keras_vae.mixture.ExPostSampler(vae, num_components=10).fit(x_train)
    images = sampler.sample(64)
    ```
    """

    def __init__(self, model, num_components=10, seed=0):
        if not isinstance(model, base.ImageModel):
            raise TypeError(
                "model must be a keras_vae model with an encoder (a VAE or an "
                f"Autoencoder). Received: {type(model).__name__}")
        model.require(base.ENCODER, "ExPostSampler")
        if model.code_spec.dtype.is_integer:
            raise ValueError(
                f"ExPostSampler fits a Gaussian mixture to continuous codes; {type(model).__name__}'s "
                "codes are discrete indices: sample it with its own prior "
                f"(fit_prior, then sample). Received: model={type(model).__name__}")
        self.model = model
        self.num_components = check_int("num_components", num_components)
        self.seed = seed
        self.mixture = None
        self.mean_log_likelihood = None
        self._draws = 0

    def fit(self, images, labels=None, batch_size=256):
        """Encodes `images` and fits the mixture to their codes; returns self.

        Args:
            images: Training images in [0, 1] with the model's image shape.
            labels: The images' classes, for a conditional model only.
            batch_size: Images encoded at a time.
        """
        codes = self.model.latent_codes(images, labels, batch_size=batch_size)
        self.mixture, self.mean_log_likelihood = fit_gaussian_mixture(
            codes, self.num_components, seed=self.seed)
        return self

    def sample_codes(self, n, seed=None):
        """Returns `n` codes drawn from the fitted mixture, NumPy `(n, latent_dim)`.

        Args:
            n: Number of codes, a positive int.
            seed: Seed of these draws (the same seed, the same codes). None
                draws new codes on each call, from the sampler's `seed` and
                a call counter, so a run repeats its sequence.
        """
        if self.mixture is None:
            raise ValueError("ExPostSampler is not fitted. Received: call fit(images) first")
        check_int("n", n)
        if seed is None:  # a new stateless seed per call: new codes, reproducibly
            seed, self._draws = (self.seed, self._draws), self._draws + 1
        else:
            seed = (seed, 0)
        return self.mixture.sample(n, seed=tf.constant(seed, "int32")).numpy()

    def sample(self, n, labels=None, seed=None):
        """Generates `n` images by decoding mixture draws, NumPy `(n, *image_shape)`.

        Args:
            n: Number of images, a positive int.
            labels: The classes to draw, for a conditional model only: `n`
                ints, or one int for all.
            seed: Seed of the codes, as for `sample_codes`.
        """
        return self.model.decode(self.sample_codes(n, seed), labels)
