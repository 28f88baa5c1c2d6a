"""Anomaly detection, measured: a held-out MNIST digit, and Fashion-MNIST as out-of-distribution.

A VAE and a plain autoencoder (same networks) train on dynamically binarized
MNIST training images of every digit but `--held-out`, less 5,000 of them kept
to set thresholds. Test images are binarized once (seed 0). For each score the
script reports ROC AUC, and precision / recall / F1 at the threshold that flags 5%
of the kept normal images:

1. held-out digit: normal = MNIST test digits other than `--held-out`,
   anomalies = the held-out digit's test images;
2. out-of-distribution: normal = the same normal MNIST test images,
   anomalies = the 10,000 Fashion-MNIST test images (binarized the same way).

One table is appended to RESULTS.md.

    python -m benchmarks.anomaly_detection --epochs 5
"""

import argparse
import datetime
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np

from benchmarks import harness
from keras_vae import anomaly
from keras_vae import datasets
from keras_vae import models
from keras_vae import schedules


def train(model, x, args):
    keras.utils.set_random_seed(args.seed)
    model.compile(optimizer=keras.optimizers.Adam(schedules.learning_rate(1e-3)))
    model.fit(datasets.make_dataset(x, batch_size=128, binarize=True, seed=args.seed),
              epochs=args.epochs, verbose=2)
    return model


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--held-out", type=int, default=9)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--num-samples", type=int, default=100,
                        help="K of the IWAE score (the ELBO score averages the same K)")
    parser.add_argument("--false-positive-rate", type=float, default=0.05)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    started = time.perf_counter()

    (x_train, y_train), (x_test, y_test) = datasets.load("mnist")
    (_, _), (fashion, _) = datasets.load("fashion_mnist")
    normal_train = x_train[y_train != args.held_out]
    rng = np.random.default_rng(args.seed)
    order = rng.permutation(len(normal_train))
    x_fit, x_reference = normal_train[order[5000:]], normal_train[order[:5000]]
    x_reference = datasets.binarize(x_reference, seed=0)
    test = datasets.binarize(x_test, seed=0)
    normal_test, held_out_test = test[y_test != args.held_out], test[y_test == args.held_out]
    fashion = datasets.binarize(fashion, seed=0)

    keras.utils.set_random_seed(args.seed)
    vae = train(models.build_vae(seed=args.seed), x_fit, args)
    keras.utils.set_random_seed(args.seed)
    autoencoder = train(models.build_autoencoder(seed=args.seed), x_fit, args)
    detectors = {
        "VAE negative ELBO": anomaly.AnomalyDetector(vae, "neg_elbo", args.num_samples),
        f"VAE IWAE NLL (K={args.num_samples})": anomaly.AnomalyDetector(
            vae, "nll", args.num_samples),
        "VAE reconstruction error": anomaly.AnomalyDetector(vae, "reconstruction_error"),
        "Autoencoder reconstruction error (baseline)": anomaly.AnomalyDetector(
            autoencoder, "reconstruction_error"),
    }
    rows = []
    for name, detector in detectors.items():
        detector.fit(x_reference, false_positive_rate=args.false_positive_rate)
        normal_scores = detector.score_samples(normal_test)
        cells = [name]
        for anomalies in (held_out_test, fashion):
            scores = np.concatenate([normal_scores, detector.score_samples(anomalies)])
            labels = np.concatenate([np.zeros(len(normal_test)), np.ones(len(anomalies))])
            result = anomaly.precision_recall(scores, labels, detector.threshold)
            cells += [f"{anomaly.roc_auc(scores, labels):.3f}",
                      f"{result['precision']:.3f}", f"{result['recall']:.3f}",
                      f"{result['f1']:.3f}"]
            if anomalies is fashion:
                cells.append(f"{np.mean(normal_scores):.1f} / "
                             f"{np.mean(scores[len(normal_test):]):.1f}")
        cells.append(f"{np.mean(normal_scores > detector.threshold):.3f}")
        row = "| " + " | ".join(cells) + " |"
        print(row, flush=True)
        rows.append(row)
    minutes = (time.perf_counter() - started) / 60

    harness.append_results(f"""
## Anomaly detection: held-out digit {args.held_out} and Fashion-MNIST, {datetime.date.today()}

`python -m benchmarks.anomaly_detection --held-out {args.held_out} --epochs {args.epochs}
--num-samples {args.num_samples}` on {harness.machine()}; {minutes:.0f} minutes in all. Default VAE and an
autoencoder with the same networks, {args.epochs} epochs on {len(x_fit):,} dynamically
binarized MNIST training images without digit {args.held_out}; 5,000 further normal
training images (binarized once) set each threshold at a
{args.false_positive_rate:.0%} false-positive rate. Normal test set: the
{len(normal_test):,} MNIST test images of the other digits; anomalies: the
{len(held_out_test):,} test images of digit {args.held_out}, or the 10,000
Fashion-MNIST test images. All test images binarized once (seed 0). P/R/F1 at the
threshold; "FPR on normal test" is the fraction of normal test images flagged.

| score | digit {args.held_out}: ROC AUC | P | R | F1 | Fashion: ROC AUC | P | R | F1 | mean score normal / Fashion | FPR on normal test |
| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |
{chr(10).join(rows)}
""")


if __name__ == "__main__":
    main()
