"""Anomaly detection with a trained model: score inputs, threshold, label.

A model of the normal data gives unusual inputs a low likelihood (or a poor
reconstruction). `anomaly_scores` turns that into one number per input,
higher meaning more anomalous:

| score | needs | what it is |
| --- | --- | --- |
| `"neg_elbo"` | a `VAE` | the negative ELBO, averaged over `num_samples` codes |
| `"nll"` | a `VAE` | the importance-weighted negative log-likelihood (K = `num_samples`) |
| `"reconstruction_error"` | a `VAE` or `Autoencoder` | squared error of the reconstruction, summed over pixels |

`AnomalyDetector` picks a threshold on normal data, from a target false-
positive rate or an expected contamination, and labels new inputs;
`roc_auc` and `precision_recall` measure how well a score separates
normal from anomalous inputs. The likelihood scores take the importance
weights from the model (`model.log_weights`, see `keras_vae.evaluation`), so
any model with one, whatever its stochastic layers, is scored the same way.

Beware a known effect: likelihood models can give *higher* likelihood to
simpler out-of-distribution data (Nalisnick et al., "Do Deep Generative
Models Know What They Don't Know?", 2019, https://arxiv.org/abs/1810.09136).
"""

import numpy as np

from keras_vae import evaluation
from keras_vae.models import base
from keras_vae.validation import check_int
from keras_vae.validation import check_number

SCORES = ("neg_elbo", "nll", "reconstruction_error")


def anomaly_scores(model, x, score="neg_elbo", num_samples=100, seed=0, batch_size=256,
                   verbose=0):
    """Returns one anomaly score per input, float64 `(N,)`; higher is more anomalous.

    Args:
        model: A trained `VAE` (any score) or `Autoencoder`
            (`"reconstruction_error"` only).
        x: Images in [0, 1] with the model's image shape.
        score: One of `SCORES`.
        num_samples: Codes per image for `"neg_elbo"` and `"nll"`.
        seed: Seed of those codes.
        batch_size: Images reconstructed at a time.
        verbose: 1 shows a progress bar for the likelihood scores.
    """
    if score not in SCORES:
        raise ValueError(f"score must be one of {list(SCORES)}. Received: score={score!r}")
    check_int("num_samples", num_samples)
    if score == "reconstruction_error":
        return evaluation.reconstruction_errors(model, x, batch_size=batch_size)
    model.require(base.LIKELIHOOD, f"score={score!r} (use score='reconstruction_error')")
    model.check_input(np.asarray(x))
    bounds = evaluation.log_likelihood(model, x, num_samples=num_samples, seed=seed,
                                       verbose=verbose)
    return -bounds["elbo"] if score == "neg_elbo" else -bounds["iwae"]


def _rate(name, value):
    value = check_number(name, value)
    if not 0.0 < value < 1.0:
        raise ValueError(f"{name} must be in (0, 1). Received: {name}={value!r}")
    return value


class AnomalyDetector:
    """Flags inputs whose score exceeds a threshold set on normal data.

    `fit(x_normal, false_positive_rate=0.05)` sets the threshold at the 95th
    percentile of the normal data's scores, so about 5% of normal inputs are
    flagged. `contamination=0.1` reads the data given to `fit` as holding
    about 10% anomalies and flags its top 10%: the same percentile, another
    meaning.

    Args:
        model: A trained `VAE` or `Autoencoder`.
        score: One of `SCORES` (see `anomaly_scores`).
        num_samples: Codes per image for the likelihood scores.
        seed: Seed of those codes.

    Example:

    ```python
    detector = keras_vae.anomaly.AnomalyDetector(vae, score="neg_elbo")
    detector.fit(x_normal, false_positive_rate=0.05)
    labels = detector.predict(x_new)  # 1 = anomaly
    ```
    """

    def __init__(self, model, score="neg_elbo", num_samples=100, seed=0):
        if score not in SCORES:
            raise ValueError(f"score must be one of {list(SCORES)}. Received: score={score!r}")
        self.model = model
        self.score = score
        self.num_samples = check_int("num_samples", num_samples)
        self.seed = seed
        self.threshold = None

    def score_samples(self, x, verbose=0):
        """Returns the anomaly score of each input (higher: more anomalous).

        Args:
            x: Images in [0, 1] with the model's image shape.
            verbose: 1 shows a progress bar for the likelihood scores.
        """
        return anomaly_scores(self.model, x, self.score, self.num_samples, self.seed,
                              verbose=verbose)

    def fit(self, x, false_positive_rate=None, contamination=None, verbose=0):
        """Sets `threshold` from data `x`; give exactly one of the two rates. Returns self.

        Args:
            x: Images in [0, 1]: normal data, or data with the expected
                `contamination`.
            false_positive_rate: In (0, 1): the share of normal inputs to
                flag; the threshold is the `1 - false_positive_rate` quantile
                of the scores of `x`.
            contamination: In (0, 1): the share of anomalies `x` holds; the
                threshold is the `1 - contamination` quantile of its scores.
            verbose: 1 shows a progress bar for the likelihood scores.
        """
        if (false_positive_rate is None) == (contamination is None):
            raise ValueError(
                "Give exactly one of false_positive_rate and contamination. Received: "
                f"false_positive_rate={false_positive_rate!r}, contamination={contamination!r}")
        rate = (_rate("false_positive_rate", false_positive_rate)
                if contamination is None else _rate("contamination", contamination))
        self.threshold = float(np.quantile(self.score_samples(x, verbose), 1.0 - rate))
        return self

    def predict(self, x, verbose=0):
        """Returns int labels `(N,)`: 1 for an anomaly (score above threshold), 0 otherwise.

        Args:
            x: Images in [0, 1] with the model's image shape.
            verbose: 1 shows a progress bar for the likelihood scores.
        """
        if self.threshold is None:
            raise ValueError("AnomalyDetector is not fitted. Received: call fit(x_normal) first")
        return (self.score_samples(x, verbose) > self.threshold).astype("int64")


def _check_scores_and_labels(scores, labels):
    scores = np.asarray(scores, dtype="float64").ravel()
    labels = np.asarray(labels).ravel()
    if scores.shape != labels.shape:
        raise ValueError(
            f"scores and labels differ in length. Received: {scores.size} scores and "
            f"{labels.size} labels")
    if not np.all(np.isin(labels, (0, 1))):
        raise ValueError(
            f"labels must be 0 (normal) or 1 (anomaly). Received: values {np.unique(labels)}")
    if not np.all(np.isfinite(scores)):
        raise ValueError("scores must be finite. Received: NaN or infinite scores")
    return scores, labels.astype("int64")


def roc_auc(scores, labels):
    """Area under the ROC curve: the chance an anomaly outscores a normal input.

    Computed exactly from ranks (the Mann-Whitney statistic), ties counting
    one half.

    Args:
        scores: Anomaly scores, higher meaning more anomalous.
        labels: 1 for anomalies, 0 for normal inputs; both must occur.
    """
    scores, labels = _check_scores_and_labels(scores, labels)
    positives, negatives = int(labels.sum()), int((1 - labels).sum())
    if not positives or not negatives:
        raise ValueError(
            "roc_auc needs both normal and anomalous inputs. Received: "
            f"{positives} anomalies and {negatives} normal inputs")
    order = np.argsort(scores, kind="mergesort")
    ranks = np.empty(len(scores))
    sorted_scores = scores[order]
    start = 0
    for stop in range(1, len(scores) + 1):
        if stop == len(scores) or sorted_scores[stop] != sorted_scores[start]:
            ranks[order[start:stop]] = (start + stop + 1) / 2.0  # mean 1-based rank of ties
            start = stop
    return float((ranks[labels == 1].sum() - positives * (positives + 1) / 2)
                 / (positives * negatives))


def precision_recall(scores, labels, threshold):
    """Precision, recall and F1 of flagging `scores > threshold` as anomalies.

    Args:
        scores: Anomaly scores, higher meaning more anomalous.
        labels: 1 for anomalies, 0 for normal inputs.
        threshold: Scores strictly above it are flagged.

    Returns:
        A dict with `"precision"`, `"recall"`, `"f1"` (0 where nothing is
        flagged or there is no anomaly) and `"num_flagged"`, the number flagged.
    """
    scores, labels = _check_scores_and_labels(scores, labels)
    flagged = scores > threshold
    true_positives = int(np.sum(flagged & (labels == 1)))
    precision = true_positives / max(int(flagged.sum()), 1)
    recall = true_positives / max(int(labels.sum()), 1)
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1,
            "num_flagged": int(flagged.sum())}
