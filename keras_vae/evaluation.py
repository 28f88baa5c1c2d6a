"""How good is a VAE? Reconstruction MSE, log-likelihood bounds and FID.

- `reconstruction_mse` and `reconstruction_errors`: squared error of the
  posterior-mean reconstruction (its mean, and each image's sum).
- `kl_per_dimension` and `active_units`: posterior-collapse diagnostics.
- `log_likelihood`: the ELBO and the importance-weighted bound (IWAE) with
  `K` samples, an estimate of `log p(x)` that tightens as `K` grows; in nats
  and in bits per dimension. Memory does not grow with `K`: samples and
  images are processed in chunks.
- `codebook_report`: for a model with discrete codes (`CODEBOOK`, a `VQVAE`),
  the bits of a code map, the prior's negative log-likelihood of the codes
  in bits, and how the codebook is used (perplexity, fraction used, collapse).
- `frechet_distance` and `fid`: the Frechet distance between Gaussian fits of
  features of real and generated images, with a pluggable feature extractor:
  `mnist_classifier_features()` (shipped, offline; its values are labelled
  "MNIST-classifier FID") or `inception_features()` (ImageNet InceptionV3,
  the standard "FID").
- `precision_recall`: generative precision and recall (Kynkaanniemi et al.
  2019) on the same features.

The likelihood functions take the importance weights from the model: its
`log_weights(x, num_samples, seed)` (every keras_vae model with a
likelihood has one, whatever its number of stochastic layers; see the
model contract in `keras_vae.models.base`). Any other object with that
method is evaluated the same way (see `model_log_weights`).

`likelihood_report` gives bits per dimension only where they mean what the
literature means, a probability mass of the data (`bits_per_dim_note`).

This module is over 300 lines because it is the one place a reader looks
for "how good is the model"; its sample-quality half (from
`gaussian_statistics` on: FID, precision and recall) is the natural split
into a `fid.py` once the classifier's move to package data has landed.
"""

import importlib.resources
import math
import os
import pathlib
import socket

import keras
import numpy as np
import tensorflow as tf

from keras_vae.models import base
from keras_vae.validation import check_images
from keras_vae.validation import check_int

MNIST_CLASSIFIER_PATH = importlib.resources.files("keras_vae") / "resources" / "mnist_classifier.keras"
"""The shipped classifier: package data, found from any working folder after `pip install`."""


def reconstruction_errors(model, x, batch_size=256, labels=None):
    """Squared error of each image's posterior-mean reconstruction, summed over its pixels.

    Args:
        model: A model with `reconstruct` (a `VAE`, `Autoencoder`...).
        x: Images in [0, 1].
        batch_size: Images reconstructed at a time.
        labels: The images' classes, for a `ConditionalVAE` only.

    Returns:
        float64 NumPy `(N,)`. (`keras_vae.export.reconstruction_error` is the
        same sum in TensorFlow ops, for exported graphs.)
    """
    reconstructions = model.reconstruct(x, labels, batch_size=batch_size)  # checks x
    squared = np.square(reconstructions.astype("float64") - np.asarray(x, "float64"))
    return squared.reshape(len(squared), -1).sum(axis=1)


def reconstruction_mse(model, x, batch_size=256, labels=None):
    """Mean squared error between images and their posterior-mean reconstructions.

    Args:
        model: A model with `reconstruct` (a `VAE`, `Autoencoder`...).
        x: Images in [0, 1].
        batch_size: Images reconstructed at a time.
        labels: The images' classes, for a `ConditionalVAE` only.

    Returns:
        A dict with `mse_per_pixel` (mean over pixels and images) and
        `mse_per_image` (summed over pixels, averaged over images).
    """
    per_image = reconstruction_errors(model, x, batch_size, labels)
    pixels = int(np.prod(np.shape(x)[1:]))
    return {"mse_per_pixel": float(per_image.mean() / pixels),
            "mse_per_image": float(per_image.mean())}


def kl_per_dimension(model, x, batch_size=256, labels=None):
    """Mean KL(q(z_d|x) || N(0, 1)) of each latent dimension over images `x`.

    The analytic Gaussian KL, per dimension, averaged over images: a
    dimension whose KL is near 0 carries no information about `x` (it has
    collapsed to the prior). Measured against N(0, 1) whatever the model's
    prior, so it is the standard collapse diagnostic for the standard prior.

    Args:
        model: A model whose `encode` gives a Gaussian posterior (a `VAE`
            or `ConditionalVAE`).
        x: Images in [0, 1].
        batch_size: Images encoded at a time.
        labels: The images' classes, for a conditional model only.

    Returns:
        A float64 NumPy array `(latent_dim,)` in nats.
    """
    model.require(base.POSTERIOR, "kl_per_dimension")
    z_mean, z_log_var = model.encode(x, labels, batch_size=batch_size)
    z_mean, z_log_var = z_mean.astype("float64"), z_log_var.astype("float64")
    kl = 0.5 * (np.square(z_mean) + np.exp(z_log_var) - 1.0 - z_log_var)
    return kl.mean(axis=0)


def active_units(model, x, threshold=0.01, batch_size=256, labels=None):
    """Counts the latent dimensions in use (Burda et al.'s criterion).

    Dimension `d` is active when `Cov_x(E_q[z_d | x]) > threshold`: its
    posterior mean (an autoencoder's code) moves with the input. Collapsed
    dimensions keep the same posterior for every image.

    Args:
        model: A model with `latent_codes` (a `VAE`, `ConditionalVAE` or
            `Autoencoder`).
        x: Images in [0, 1].
        threshold: Variance above which a dimension is active.
        batch_size: Images encoded at a time.
        labels: The images' classes, for a conditional model only.

    Returns:
        A dict: `active_units` (int) and `variances` (float64 `(latent_dim,)`).
    """
    z_mean = model.latent_codes(x, labels, batch_size=batch_size)
    variances = np.var(z_mean.astype("float64"), axis=0)
    return {"active_units": int(np.sum(variances > threshold)), "variances": variances}


def _chunk_sizes(num_samples, max_decoded):
    samples_per_chunk = min(num_samples, max_decoded)
    images_per_batch = max(1, max_decoded // samples_per_chunk)
    return samples_per_chunk, images_per_batch


@tf.function(reduce_retracing=True)
def _log_weights(model, x, num_samples, seed):
    """The model's log importance weights `(num_samples, batch)`, traced once per model and S."""
    return model_log_weights(model, x, num_samples, seed)


def model_log_weights(model, x, num_samples, seed):
    """Returns `model.log_weights(x, num_samples, seed)`, float32 `(num_samples, batch)`.

    Every keras_vae model with a likelihood computes its own weights (one
    stochastic layer or several: the weights are its business, see
    `keras_vae.models.base`); so does any other object with that method
    (the tests' linear-Gaussian reference model). The estimators check first
    that a keras_vae model has a likelihood (`MissingCapabilityError`).

    Args:
        model: The model.
        x: A batch of images (or other data) `(batch, ...)`.
        num_samples: S, codes per image.
        seed: A stateless int32 seed `(2,)`.
    """
    return model.log_weights(x, num_samples, seed)


def _chunk_seed(seed, first_image, first_sample):
    """The stateless seed of one chunk: an int32 pair hashed from three counters.

    A hash, rather than a counter such as `first_image * K + first_sample`,
    stays in int32 for any number of images and samples and gives every
    chunk its own noise.
    """
    state = np.random.SeedSequence([seed, first_image, first_sample]).generate_state(2)
    return tf.constant(state.view(np.int32))


def _log_weight_chunks(model, batch, first_image, num_samples, samples_per_chunk, seed):
    """Yields float64 log-weights `(samples, images)` of one image batch, chunk by chunk."""
    batch = tf.constant(batch)
    for chunk_start in range(0, num_samples, samples_per_chunk):
        count = min(samples_per_chunk, num_samples - chunk_start)
        chunk_seed = _chunk_seed(seed, first_image, chunk_start)
        yield _log_weights(model, batch, count, chunk_seed).numpy().astype("float64")


def _check_estimator_arguments(model, x, num_samples, max_decoded, seed):
    if isinstance(model, base.ImageModel):
        model.require(base.LIKELIHOOD, "A likelihood bound")
    check_int("num_samples", num_samples)
    check_int("max_decoded", max_decoded)
    check_int("seed", seed, minimum=0)
    x = np.asarray(x, dtype="float32")
    if x.shape[0] == 0:
        raise ValueError(f"x is empty. Received: x.shape={x.shape}")
    return x


def importance_log_weights(model, x, num_samples=100, max_decoded=4096, seed=0):
    """Returns the log importance weights `log w_k` that `log_likelihood` reduces.

    The samples `log_likelihood` draws with the same arguments, all held in
    memory: for looking at the weights of a few images (their spread, the
    effective sample size).

    Args:
        model: A model with `log_weights(x, num_samples, seed)` (a keras_vae
            model with a likelihood; see `model_log_weights`).
        x: Images (or other data) `(N, ...)`.
        num_samples: K, importance samples per image.
        max_decoded: Most decoder evaluations held in memory at once; sets
            the chunk sizes over images and samples, and with them which
            noise each sample gets (keep it equal to `log_likelihood`'s to
            get its samples).
        seed: Seed of the importance samples, an int >= 0.

    Returns:
        A float64 array `(N, num_samples)`.
    """
    x = _check_estimator_arguments(model, x, num_samples, max_decoded, seed)
    samples_per_chunk, images_per_batch = _chunk_sizes(num_samples, max_decoded)
    weights = np.empty((len(x), num_samples))
    for start in range(0, len(x), images_per_batch):
        batch = x[start:start + images_per_batch]
        chunks = _log_weight_chunks(model, batch, start, num_samples, samples_per_chunk, seed)
        weights[start:start + len(batch)] = np.concatenate(list(chunks)).T
    return weights


def log_likelihood(model, x, num_samples=1000, max_decoded=4096, seed=0, verbose=1):
    """Estimates per-image `log p(x)` with the importance-weighted bound.

    For each image, `K = num_samples` codes `z_k ~ q(z|x)` give weights
    `w_k = p(x|z_k) p(z) / q(z_k|x)`. Then `log (1/K) sum_k w_k` is the
    IWAE bound (Burda et al. 2015): a lower bound on `log p(x)` that
    tightens as K grows, with `E[IWAE_1] = ELBO`. The mean of `log w_k` over
    the same samples estimates the ELBO. The log-mean-exp is streamed over
    chunks of samples (a running maximum and a rescaled running sum);
    `importance_log_weights` returns the same weights whole.

    Args:
        model: A model with `log_weights(x, num_samples, seed)` (a keras_vae
            model with a likelihood; see `model_log_weights`).
        x: Images (or other data) `(N, ...)`.
        num_samples: K, importance samples per image.
        max_decoded: Most decoder evaluations held in memory at once; sets
            the chunk sizes over images and samples (memory is independent
            of K).
        seed: Seed of the importance samples, an int >= 0.
        verbose: 1 shows a progress bar.

    Returns:
        A dict of float64 arrays of shape `(N,)`: `iwae` (log p(x) bound) and
        `elbo`, in nats.

    Reference:
        Burda, Grosse and Salakhutdinov, "Importance Weighted Autoencoders",
        2015, https://arxiv.org/abs/1509.00519
    """
    x = _check_estimator_arguments(model, x, num_samples, max_decoded, seed)
    samples_per_chunk, images_per_batch = _chunk_sizes(num_samples, max_decoded)
    iwae = np.empty(len(x))
    elbo = np.empty(len(x))
    progress = keras.utils.Progbar(len(x), verbose=verbose, unit_name="image")
    for start in range(0, len(x), images_per_batch):
        batch = x[start:start + images_per_batch]
        running_max = np.full(len(batch), -np.inf)
        running_sum = np.zeros(len(batch))
        total = np.zeros(len(batch))
        for log_w in _log_weight_chunks(model, batch, start, num_samples, samples_per_chunk,
                                        seed):
            total += log_w.sum(axis=0)
            new_max = np.maximum(running_max, log_w.max(axis=0))
            running_sum = (running_sum * np.exp(running_max - new_max)
                           + np.exp(log_w - new_max).sum(axis=0))
            running_max = new_max
        stop = start + len(batch)
        iwae[start:stop] = running_max + np.log(running_sum) - math.log(num_samples)
        elbo[start:stop] = total / num_samples
        progress.update(stop)
    return {"iwae": iwae, "elbo": elbo}


_BITS_PER_DIM_NOTE = (
    "bits per dimension are reported only for a probability mass: a likelihood "
    "with discrete = True on data in its support (Bernoulli on binary pixels, "
    "discretized_logistic on 8-bit levels). Received: {reason}")


def bits_per_dim_note(model, x):
    """Returns None if `model`'s log p(x) is a log-probability of `x`, else why not.

    Bits per dimension compare with the literature only for a probability
    mass (a discrete likelihood on data in its support); a continuous
    density's "bits" depend on the units of `x` and can be negative.

    Args:
        model: The model whose log-likelihood is reported; its
            `likelihood_layer`, if any, says whether it is discrete.
        x: The images the log-likelihood is computed on (checked against the
            likelihood's support).
    """
    layer = getattr(model, "likelihood_layer", None)
    if layer is None:
        reason = f"a {type(model).__name__} without a likelihood_layer"
    elif not layer.discrete:
        reason = f"the continuous density {type(layer).__name__}"
    elif not layer.in_support(x):
        reason = f"{type(layer).__name__} on data outside its support (e.g. grey levels)"
    else:
        return None
    return _BITS_PER_DIM_NOTE.format(reason=reason)


def likelihood_report(model, x, num_samples=1000, seed=0, verbose=1):
    """Summarises `log_likelihood` as test-set numbers.

    Args:
        model: A model with `log_weights(x, num_samples, seed)` (or see
            `model_log_weights`), and a `likelihood_layer` for bits per
            dimension.
        x: Test images (or other data) `(N, ...)`.
        num_samples: K, importance samples per image.
        seed: Seed of the importance samples, an int >= 0.
        verbose: 1 shows a progress bar.

    Returns:
        A dict with `neg_elbo` and `nll` (nats per image), `bits_per_dim`
        (the IWAE bound's NLL divided by `ln 2` and the number of values per
        image; None unless the likelihood is a probability mass of `x`),
        `bits_per_dim_note` (None, or why there are no bits per dimension),
        `num_samples` and `num_images`.
    """
    result = log_likelihood(model, x, num_samples=num_samples, seed=seed, verbose=verbose)
    nll = float(-result["iwae"].mean())
    dims = int(np.prod(np.asarray(x).shape[1:]))
    note = bits_per_dim_note(model, x)
    return {
        "neg_elbo": float(-result["elbo"].mean()),
        "nll": nll,
        "bits_per_dim": None if note else nll / (dims * math.log(2.0)),
        "bits_per_dim_note": note,
        "num_samples": num_samples,
        "num_images": int(len(x)),
    }


# ---------------------------------------------------------------- discrete codes

COLLAPSE_THRESHOLD = 0.25
"""`codebook_report` calls a codebook collapsed when fewer than this fraction of its codes is used."""


def codebook_report(model, x, batch_size=256, collapse_threshold=COLLAPSE_THRESHOLD):
    """Summarises a discrete-code model on images `x`: code bits, prior NLL, codebook use.

    Args:
        model: A model with `CODEBOOK` (a `VQVAE`).
        x: Images in [0, 1], `(N, *image_shape)`, N >= 1.
        batch_size: Images encoded at a time.
        collapse_threshold: `collapsed` is True when the fraction of codes
            used on `x` is below it.

    Returns:
        A dict: `code_bits_per_image` (`positions * log2 K`, the bits of a
        code map written without a prior); `prior_nll_bits` (the mean over
        images of the prior's `-log2 p(code map)`, or None when the model's
        prior has not been fitted) and `prior_nll_bits_note` (None, or why
        there is none); `codebook`: `num_embeddings`, `positions`,
        `codes_used`, `fraction_used`, `perplexity`, `collapsed` and
        `collapse_threshold`.

    Raises:
        MissingCapabilityError: the model has no `CODEBOOK`.
    """
    model.require(base.CODEBOOK, "codebook_report")
    if not 0.0 <= collapse_threshold <= 1.0:
        raise ValueError(f"collapse_threshold must be a fraction in [0, 1]. Received: "
                         f"collapse_threshold={collapse_threshold!r}")
    stats = model.code_statistics(x, batch_size=batch_size)
    if model.prior_fitted:
        nll, note = float(np.mean(model.prior_nll_bits(x, batch_size=batch_size))), None
    else:
        nll, note = None, (f"the {type(model).__name__}'s prior over code maps has not been "
                           "fitted (fit_prior, or keras-vae train --prior-epochs)")
    codebook = {key: stats[key] for key in ("num_embeddings", "positions", "codes_used",
                                            "fraction_used", "perplexity")}
    codebook["collapsed"] = bool(stats["fraction_used"] < collapse_threshold)
    codebook["collapse_threshold"] = float(collapse_threshold)
    return {"code_bits_per_image": stats["code_bits"], "prior_nll_bits": nll,
            "prior_nll_bits_note": note, "codebook": codebook}


# ---------------------------------------------------------------- FID


def gaussian_statistics(features):
    """Returns the mean and covariance of features `(N, F)`, in float64."""
    features = np.asarray(features, dtype="float64")
    if features.ndim != 2 or features.shape[0] < 2:
        raise ValueError(
            "features must have shape (N, F) with N >= 2. "
            f"Received: features.shape={features.shape}"
        )
    # np.cov returns a 0-d array for one feature; keep it (F, F).
    return features.mean(axis=0), np.atleast_2d(np.cov(features, rowvar=False))


def _sqrt_psd(matrix):
    values, vectors = np.linalg.eigh((matrix + matrix.T) / 2)
    return (vectors * np.sqrt(np.clip(values, 0.0, None))) @ vectors.T


def frechet_distance_from_statistics(mean_a, cov_a, mean_b, cov_b):
    """Frechet distance between N(mean_a, cov_a) and N(mean_b, cov_b).

    `|mean_a - mean_b|^2 + tr(cov_a + cov_b - 2 (cov_a cov_b)^(1/2))`. The
    trace of the matrix square root is computed from the eigenvalues of the
    symmetric `cov_a^(1/2) cov_b cov_a^(1/2)`, which is exact and stable.

    Args:
        mean_a: Mean `(F,)` of the first Gaussian.
        cov_a: Covariance `(F, F)` of the first Gaussian.
        mean_b: Mean `(F,)` of the second Gaussian.
        cov_b: Covariance `(F, F)` of the second Gaussian.

    Returns:
        The distance, a float >= 0 (rounding below zero is clipped).
    """
    cov_a = np.atleast_2d(np.asarray(cov_a, dtype="float64"))
    cov_b = np.atleast_2d(np.asarray(cov_b, dtype="float64"))
    root_a = _sqrt_psd(cov_a)
    middle = root_a @ cov_b @ root_a
    eigenvalues = np.linalg.eigvalsh((middle + middle.T) / 2)
    trace_sqrt = np.sqrt(np.clip(eigenvalues, 0.0, None)).sum()
    diff = (np.atleast_1d(np.asarray(mean_a, dtype="float64"))
            - np.atleast_1d(np.asarray(mean_b, dtype="float64")))
    value = diff @ diff + np.trace(cov_a) + np.trace(cov_b) - 2.0 * trace_sqrt
    return float(max(value, 0.0))


def frechet_distance(features_a, features_b):
    """Frechet distance between Gaussian fits of two feature sets `(N, F)`.

    Args:
        features_a: The first set's features `(N, F)`, N >= 2.
        features_b: The second set's features `(M, F)`, M >= 2.
    """
    return frechet_distance_from_statistics(
        *gaussian_statistics(features_a), *gaussian_statistics(features_b))


class FeatureExtractor:
    """Maps images to feature vectors for FID.

    Args:
        model: A Keras model from images to features `(N, F)`.
        name: The extractor's name, reported beside every FID value.
        label: What the FID is called, e.g. "MNIST-classifier FID".
        preprocess: Optional function applied to each image batch first.
    """

    def __init__(self, model, name, label, preprocess=None):
        self.model = model
        self.name = name
        self.label = label
        self.preprocess = preprocess

    def __call__(self, images, batch_size=256):
        images = check_images(images, name="images")
        outputs = []
        for start in range(0, len(images), batch_size):
            batch = images[start:start + batch_size]
            if self.preprocess is not None:
                batch = self.preprocess(batch)
            outputs.append(np.asarray(self.model(batch, training=False)))
        return np.concatenate(outputs).reshape(len(images), -1)


MNIST_IMAGE_SHAPE = (28, 28, 1)
"""The image shape the MNIST classifier (MNIST-classifier FID) reads."""


def build_mnist_classifier():
    """The small CNN behind "MNIST-classifier FID"; its `features` layer is used."""
    inputs = keras.Input(MNIST_IMAGE_SHAPE, name="images")
    x = keras.layers.Conv2D(32, 3, strides=2, padding="same", activation="relu",
                            name="conv_0")(inputs)
    x = keras.layers.Conv2D(64, 3, strides=2, padding="same", activation="relu",
                            name="conv_1")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    x = keras.layers.Dense(128, activation="relu", name="features")(x)
    outputs = keras.layers.Dense(10, name="logits")(x)
    return keras.Model(inputs, outputs, name="mnist_classifier")


def mnist_classifier_features(path=None):
    """The shipped MNIST classifier's 128 penultimate features, for 28x28x1 images.

    Trained by `benchmarks/train_mnist_classifier.py`. FID values computed
    with it are labelled "MNIST-classifier FID": they measure the same
    thing as Inception FID but on another scale, and are not comparable
    with published FID numbers. `path` defaults to the copy shipped inside
    the package (`MNIST_CLASSIFIER_PATH`).
    """
    from keras_vae.saving import load_model

    resource = MNIST_CLASSIFIER_PATH if path is None else pathlib.Path(path)
    with importlib.resources.as_file(resource) as file:  # a real file, even from a zip
        classifier = load_model(file)
    features = keras.Model(classifier.input, classifier.get_layer("features").output)
    return FeatureExtractor(features, name="mnist_classifier", label="MNIST-classifier FID")


INCEPTION_WEIGHTS = "inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5"


def inception_features(timeout=30.0):
    """ImageNet InceptionV3 pool features (2048) for the standard FID.

    Uses the Keras cache (`~/.keras/models/`) when the weights are there and
    downloads them otherwise. Without them and without a network, raises a
    `RuntimeError` within `timeout` seconds rather than hanging.
    Grey images are repeated to three channels; all are resized to 299x299.
    """
    cache = pathlib.Path(os.environ.get("KERAS_HOME", pathlib.Path.home() / ".keras"))
    cached = (cache / "models" / INCEPTION_WEIGHTS).is_file()
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(timeout)
    try:
        model = keras.applications.InceptionV3(include_top=False, weights="imagenet",
                                               pooling="avg", input_shape=(299, 299, 3))
    except Exception as error:
        where = "in the Keras cache" if cached else (
            f"in {cache / 'models'} and could not be downloaded")
        raise RuntimeError(
            f"The InceptionV3 ImageNet weights ({INCEPTION_WEIGHTS}) are not {where}. "
            "Copy them there on a machine with internet, or use "
            "mnist_classifier_features() offline. Received error: "
            f"{type(error).__name__}: {error}"
        ) from error
    finally:
        socket.setdefaulttimeout(previous)

    def preprocess(images):
        images = tf.convert_to_tensor(images)
        if images.shape[-1] == 1:
            images = tf.repeat(images, 3, axis=-1)
        images = tf.image.resize(images, (299, 299))
        return images * 2.0 - 1.0

    return FeatureExtractor(model, name="inception_v3", label="FID", preprocess=preprocess)


def fid(real_images, generated_images, extractor, batch_size=256):
    """Frechet distance between features of real and generated images.

    Args:
        real_images: Real images in [0, 1], at least two.
        generated_images: Generated images in [0, 1], at least two.
        extractor: A `FeatureExtractor`, e.g. `mnist_classifier_features()`
            or `inception_features()`.
        batch_size: Images passed through the extractor at a time.

    Returns:
        A dict with `value`, `label` (what to call it, e.g. "MNIST-classifier
        FID"), `extractor` (its name) and the image counts.
    """
    value = frechet_distance(extractor(real_images, batch_size),
                             extractor(generated_images, batch_size))
    return {"value": value, "label": extractor.label, "extractor": extractor.name,
            "num_real": int(len(real_images)), "num_generated": int(len(generated_images))}


# ---------------------------------------------------------------- precision and recall

_DISTANCE_ROWS = 512
"""Rows of a pairwise-distance block: 512 x 10,000 float64 distances are 41 MB."""


def _check_features(features, name, k):
    features = np.asarray(features, dtype="float64")
    if features.ndim != 2 or features.shape[0] <= k:
        raise ValueError(f"{name} must have shape (N, F) with N > k={k}. Received: "
                         f"{name}.shape={features.shape}")
    if not np.all(np.isfinite(features)):
        raise ValueError(f"{name} must be finite. Received: {name} with "
                         f"{int(np.sum(~np.isfinite(features)))} NaN or infinite values")
    return features


def _squared_distances(a, b, b_norms):
    """Squared Euclidean distances `(len(a), len(b))`, clipped at 0 (rounding)."""
    distances = np.sum(a * a, axis=1)[:, None] + b_norms[None, :] - 2.0 * (a @ b.T)
    return np.maximum(distances, 0.0, out=distances)


def _kth_neighbour_radii(features, k):
    """Squared distance of each point to its k-th nearest other point of the same set."""
    norms = np.sum(features * features, axis=1)
    radii = np.empty(len(features))
    for start in range(0, len(features), _DISTANCE_ROWS):
        block = _squared_distances(features[start:start + _DISTANCE_ROWS], features, norms)
        rows = np.arange(len(block))
        block[rows, start + rows] = 0.0  # the point itself: sorted first, then k neighbours
        radii[start:start + len(block)] = np.partition(block, k, axis=1)[:, k]
    return radii


def _fraction_inside(points, manifold, radii):
    """Fraction of `points` within the radius of at least one point of `manifold`."""
    norms = np.sum(manifold * manifold, axis=1)
    inside = 0
    for start in range(0, len(points), _DISTANCE_ROWS):
        block = _squared_distances(points[start:start + _DISTANCE_ROWS], manifold, norms)
        inside += int(np.count_nonzero(np.any(block <= radii[None, :], axis=1)))
    return inside / len(points)


def precision_recall(real_features, fake_features, k=3):
    """Generative precision and recall of features (Kynkaanniemi et al. 2019).

    Each set's manifold is the union of balls around its points, each ball's
    radius the distance to the point's k-th nearest neighbour in its own set
    (itself excluded). Precision is the fraction of generated points inside
    the real manifold (how many samples look real); recall the fraction of
    real points inside the generated manifold (how much of the data the
    samples cover). A point on a ball's boundary is inside.

    Args:
        real_features: Features of real images `(N, F)`, N > k (e.g. from
            `mnist_classifier_features()`).
        fake_features: Features of generated images `(M, F)`, M > k.
        k: The neighbour that sets each radius, an int >= 1 (the paper's 3).

    Returns:
        `{"precision": float, "recall": float}`, each in [0, 1].

    Reference:
        Kynkaanniemi, Karras, Laine, Lehtinen and Aila, "Improved Precision
        and Recall Metric for Assessing Generative Models", NeurIPS 2019,
        https://arxiv.org/abs/1904.06991
    """
    check_int("k", k)
    real = _check_features(real_features, "real_features", k)
    fake = _check_features(fake_features, "fake_features", k)
    if real.shape[1] != fake.shape[1]:
        raise ValueError(f"real_features and fake_features must have the same number of "
                         f"features. Received: {real.shape[1]} and {fake.shape[1]}")
    return {"precision": _fraction_inside(fake, real, _kth_neighbour_radii(real, k)),
            "recall": _fraction_inside(real, fake, _kth_neighbour_radii(fake, k))}
