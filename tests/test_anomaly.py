"""Anomaly scores, thresholds and the ROC/precision measures."""

import keras
import numpy as np
import pytest

from conftest import tiny_vae
from keras_vae import anomaly
from keras_vae import evaluation
from keras_vae import models


@pytest.fixture(autouse=True)
def _seeded_weights():
    """Initial weights of every model built here follow one seed."""
    keras.utils.set_random_seed(0)


def test_roc_auc_matches_pairwise_counting_with_ties():
    rng = np.random.default_rng(0)
    scores = np.round(rng.normal(size=60), 1)  # rounding makes ties
    labels = (rng.random(60) < 0.3).astype(int)
    pos, neg = scores[labels == 1], scores[labels == 0]
    pairs = (pos[:, None] > neg[None, :]) + 0.5 * (pos[:, None] == neg[None, :])
    assert anomaly.roc_auc(scores, labels) == pytest.approx(pairs.mean(), abs=1e-12)


def test_roc_auc_on_separable_and_reversed_cases():
    labels = np.array([0, 0, 0, 1, 1])
    assert anomaly.roc_auc([0.1, 0.2, 0.3, 0.9, 0.8], labels) == 1.0
    assert anomaly.roc_auc([0.9, 0.8, 0.7, 0.1, 0.2], labels) == 0.0
    assert anomaly.roc_auc([1, 1, 1, 1, 1], labels) == 0.5
    with pytest.raises(ValueError, match="both normal and anomalous"):
        anomaly.roc_auc([0.1, 0.2], [0, 0])
    with pytest.raises(ValueError, match="differ in length"):
        anomaly.roc_auc([0.1, 0.2], [0, 1, 1])
    with pytest.raises(ValueError, match="0 \\(normal\\) or 1"):
        anomaly.roc_auc([0.1, 0.2], [0, 2])


def test_precision_recall_counts():
    result = anomaly.precision_recall([0.1, 0.6, 0.7, 0.2, 0.9], [0, 1, 0, 0, 1], 0.5)
    assert result == {"precision": pytest.approx(2 / 3), "recall": 1.0,
                      "f1": pytest.approx(0.8), "num_flagged": 3}


def test_scores_are_per_image_and_agree_with_the_likelihood_bounds(mnist_small):
    (_, _), (x_test, _) = mnist_small
    vae = tiny_vae()
    x = x_test[:12]
    bounds = evaluation.log_likelihood(vae, x, num_samples=16, seed=3, verbose=0)
    np.testing.assert_allclose(anomaly.anomaly_scores(vae, x, "nll", 16, seed=3),
                               -bounds["iwae"])
    np.testing.assert_allclose(anomaly.anomaly_scores(vae, x, "neg_elbo", 16, seed=3),
                               -bounds["elbo"])
    errors = anomaly.anomaly_scores(vae, x, "reconstruction_error")
    expected = ((vae.reconstruct(x) - x) ** 2).reshape(12, -1).sum(axis=1)
    np.testing.assert_allclose(errors, expected, rtol=1e-6)
    with pytest.raises(ValueError, match="score must be one of"):
        anomaly.anomaly_scores(vae, x, "entropy")
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        anomaly.anomaly_scores(vae, x * 255, "neg_elbo")


def test_detector_threshold_follows_the_false_positive_rate(mnist_small):
    (x_train, _), (x_test, _) = mnist_small
    keras.utils.set_random_seed(0)
    autoencoder = models.build_autoencoder(latent_dim=4, filters=(8,), hidden_units=16, seed=0)
    autoencoder.compile(optimizer="adam")
    autoencoder.fit(x_train, epochs=3, batch_size=64, verbose=0)
    detector = anomaly.AnomalyDetector(autoencoder, score="reconstruction_error")
    with pytest.raises(ValueError, match="not fitted"):
        detector.predict(x_test)
    fit_part, held_out = x_train[:384], x_train[384:]
    detector.fit(fit_part, false_positive_rate=0.1)

    def errors(x):  # the reconstruction error, computed here
        return ((autoencoder.reconstruct(x) - x) ** 2).reshape(len(x), -1).sum(axis=1)

    assert detector.threshold == pytest.approx(np.quantile(errors(fit_part), 0.9), rel=1e-6)
    flagged = detector.predict(held_out)
    np.testing.assert_array_equal(flagged, (errors(held_out) > detector.threshold).astype(int))
    # Normal images the threshold never saw: about 10% flagged (binomial
    # standard error 0.027 for 128 images).
    assert flagged.mean() == pytest.approx(0.1, abs=0.08)
    # Inverted images are far from anything seen: every one is flagged.
    assert detector.predict(1.0 - x_test[:20]).mean() == 1.0
    with pytest.raises(ValueError, match="exactly one"):
        detector.fit(x_train, false_positive_rate=0.1, contamination=0.1)
    with pytest.raises(ValueError, match=r"in \(0, 1\)"):
        detector.fit(x_train, contamination=1.5)
    with pytest.raises(NotImplementedError,
                       match="needs a model with a likelihood.*: Autoencoder has none"):
        anomaly.AnomalyDetector(autoencoder, score="nll").score_samples(x_test[:2])
