"""The VQ-VAE against the VAE at equal training minutes, on MNIST and Fashion-MNIST.

For each dataset, the default VAE (`keras-vae train`'s model: conv 32/64,
dense 256, latent 32) and the default VQ-VAE (`build_vqvae`: K=64 codes of
16 dimensions on a 7x7 map, EMA codebook with restarts, its PixelCNN prior)
train for the same minutes of epochs (`harness.EpochTimer`; tracing and
tf.data's idle wait when `fit` ends are not counted), one after the other in
one process, on dynamically binarized training images (Bernoulli
likelihood, batch 128, Adam 1e-3). The VQ-VAE's minutes include its
prior's: `fit` gets `(1 - prior_share)` of them, the PixelCNN's epochs
(`fit_prior`, on the codes of the training images) what `fit` left. A model
stops after the epoch at which one more epoch would pass its budget.
Measured on the test set:

- MSE per pixel of the reconstruction against the grey test images;
- bits of the code per image: `positions x log2 K` for the VQ-VAE (and its
  prior's NLL of the test code maps, bits per map); for the VAE the KL rate,
  the mean `KL(q(z|x) || p(z))` of its loss on the binarized test images, in
  bits;
- MNIST-classifier FID of as many samples as test images (the VQ-VAE's drawn
  from its prior) against the grey test images, and generative precision and
  recall (Kynkaanniemi et al. 2019, k=3) on the same classifier features;
- codebook use on the binarized test images: perplexity, fraction of the
  codes used, and "collapsed" when that fraction is below
  `--collapse-threshold`.

One table is appended to RESULTS.md (`--results` elsewhere), with the
keras.io VQ-VAE example's reported numbers as the outside anchor. The full
run needs the machine alone:

    python -m benchmarks.vqvae_vs_vae --minutes 10

`--smoke` runs the same code on 256 training and 64 test images, one epoch
each, in seconds (the tests run it).
"""

import argparse
import datetime
import math
import os
import pathlib
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np
import tensorflow as tf

from benchmarks import harness
from keras_vae import datasets
from keras_vae import evaluation
from keras_vae import models
from keras_vae import schedules

MAX_EPOCHS = 10_000
"""Epochs asked of `fit`; the time budget stops training long before."""

KERAS_IO_EXAMPLE = "https://keras.io/examples/generative/vq_vae/"
KERAS_IO_RECONSTRUCTION = 0.0444
"""The example's last (30th) epoch: training MSE per pixel divided by the training variance."""
KERAS_IO_PRIOR_NATS = 1.0336
"""The example's PixelCNN, last (30th) epoch: validation cross-entropy, nats per code."""
KERAS_IO_K = 128
KERAS_IO_POSITIONS = 49


def parse_args(argv=None):
    """The benchmark's flags; `--smoke` shrinks the run to seconds."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0,
                        help="training minutes of each model (the VQ-VAE's include its prior)")
    parser.add_argument("--prior-share", type=float, default=0.3,
                        help="share of the VQ-VAE's minutes kept for its prior")
    parser.add_argument("--datasets", nargs="+", default=["mnist", "fashion_mnist"],
                        choices=["mnist", "fashion_mnist"])
    parser.add_argument("--train-images", type=int, default=60000)
    parser.add_argument("--test-images", type=int, default=10000)
    parser.add_argument("--collapse-threshold", type=float,
                        default=evaluation.COLLAPSE_THRESHOLD,
                        help="a codebook using a smaller fraction of its codes is collapsed")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--results", type=pathlib.Path, default=harness.RESULTS,
                        help="the Markdown file the section is appended to")
    parser.add_argument("--smoke", action="store_true",
                        help="256 training and 64 test images, one epoch each: seconds")
    args = parser.parse_args(argv)
    if not 0.0 < args.prior_share < 1.0:
        parser.error(f"--prior-share must be in (0, 1). Received: {args.prior_share}")
    if args.minutes <= 0:
        parser.error(f"--minutes must be positive. Received: {args.minutes}")
    if args.smoke:
        args.minutes, args.train_images, args.test_images = 0.01, 256, 64
    return args


def adam():
    """Adam 1e-3, the command line's default optimizer."""
    return keras.optimizers.Adam(learning_rate=schedules.learning_rate(1e-3))


def timed_fit(fit, minutes):
    """Runs `fit(callbacks)` under an `EpochTimer` budget; returns (epoch minutes, epochs).

    The minutes are those of the epochs: not the tracing before the first
    batch nor tf.data's wait for its autotuner when `fit` deletes its
    iterator (see `keras_vae.datasets.make_dataset`), which is idle time.
    """
    timer = harness.EpochTimer(max_minutes=minutes)
    fit([timer])
    return sum(timer.seconds) / 60, len(timer.seconds)


def _fit_default(build, x_train, args, minutes):
    """Builds `build(seed=...)`, fits it for `minutes`; returns (model, minutes, epochs)."""
    keras.utils.set_random_seed(args.seed)
    model = build(seed=args.seed)
    model.compile(optimizer=adam())
    data = datasets.make_dataset(x_train, batch_size=128, binarize=True, seed=args.seed)
    minutes, epochs = timed_fit(
        lambda callbacks: model.fit(data, epochs=MAX_EPOCHS, callbacks=callbacks, verbose=2),
        minutes)
    return model, minutes, epochs


def train_vae(x_train, args):
    """The default VAE for `args.minutes`; returns (model, training record)."""
    model, minutes, epochs = _fit_default(models.build_vae, x_train, args, args.minutes)
    return model, {"minutes": minutes, "epochs": epochs}


def train_vqvae(x_train, args):
    """The default VQ-VAE and its prior within `args.minutes`; returns (model, record)."""
    model, minutes, epochs = _fit_default(models.build_vqvae, x_train, args,
                                          args.minutes * (1 - args.prior_share))
    images = datasets.binarize(x_train, seed=args.seed)  # as keras-vae train fits the prior
    prior_minutes, prior_epochs = timed_fit(
        lambda callbacks: model.fit_prior(images, epochs=MAX_EPOCHS, batch_size=128,
                                          verbose=2, callbacks=callbacks),
        max(args.minutes - minutes, 1e-6))
    return model, {"minutes": minutes + prior_minutes, "prior_minutes": prior_minutes,
                   "epochs": epochs, "prior_epochs": prior_epochs}


def kl_rate_bits(model, x, batch_size=500):
    """The VAE's mean KL term per image (its `compute_losses`' `kl_loss`), in bits."""
    total = 0.0
    for start in range(0, len(x), batch_size):
        losses = model.compute_losses(tf.constant(x[start:start + batch_size]))
        total += float(tf.reduce_sum(losses["kl_loss"]))
    return total / len(x) / math.log(2.0)


def sample_quality(model, x_test, extractor, seed):
    """FID, precision and recall of `len(x_test)` samples, on the classifier's features."""
    real = extractor(x_test)
    fake = extractor(model.sample(len(x_test), seed=seed))
    return {"fid": evaluation.frechet_distance(real, fake),
            **evaluation.precision_recall(real, fake, k=3)}


def measure(model, kind, x_test, x_binary, extractor, args):
    """Every column of the table for one trained model."""
    out = {"mse": evaluation.reconstruction_mse(model, x_test)["mse_per_pixel"],
           **sample_quality(model, x_test, extractor, args.seed)}
    if kind == "vqvae":
        codes = evaluation.codebook_report(model, x_binary,
                                           collapse_threshold=args.collapse_threshold)
        out.update(code_bits=codes["code_bits_per_image"], prior_bits=codes["prior_nll_bits"],
                   **{key: codes["codebook"][key]
                      for key in ("perplexity", "fraction_used", "codes_used", "collapsed")})
    else:
        out["code_bits"] = kl_rate_bits(model, x_binary)
    return out


def _cell(value, form):
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "**yes**" if value else "no"
    return form.format(value)


def row(dataset, name, record, measures):
    """One Markdown table row (printed as it is made)."""
    minutes = f"{record['minutes']:.1f}"
    epochs = str(record["epochs"])
    if "prior_minutes" in record:
        minutes += f" ({record['prior_minutes']:.1f})"
        epochs += f" ({record['prior_epochs']})"
    cells = [dataset, name, minutes, epochs]
    for key, form in (("mse", "{:.4f}"), ("code_bits", "{:.1f}"), ("prior_bits", "{:.1f}"),
                      ("fid", "{:.2f}"), ("precision", "{:.3f}"), ("recall", "{:.3f}"),
                      ("perplexity", "{:.1f}"), ("fraction_used", "{:.2f}"),
                      ("collapsed", "{}")):
        cells.append(_cell(measures.get(key), form))
    text = "| " + " | ".join(cells) + " |"
    print(text, flush=True)
    return text


def keras_io_anchor(mnist_train_variance):
    """The keras.io example's reported numbers, converted to this table's units."""
    mse = ("-" if mnist_train_variance is None
           else f"{KERAS_IO_RECONSTRUCTION * mnist_train_variance:.4f}")
    prior_bits = KERAS_IO_PRIOR_NATS * KERAS_IO_POSITIONS / math.log(2.0)
    code_bits = KERAS_IO_POSITIONS * math.log2(KERAS_IO_K)
    return (f"The outside anchor, the keras.io VQ-VAE example ({KERAS_IO_EXAMPLE}; K=128 "
            "codes of 16 dimensions on a 7x7 map, MSE loss on grey MNIST, 30 epochs, then a "
            "PixelCNN of 128 filters for 30 epochs, on a GPU), reports only training logs: "
            f"a last-epoch reconstruction loss of {KERAS_IO_RECONSTRUCTION} (training MSE per "
            "pixel over the training variance; times MNIST's training variance "
            f"{'measured here' if mnist_train_variance is not None else '(MNIST not run)'}, "
            f"an MSE per pixel of {mse} on training images, not test images) and a PixelCNN "
            f"validation loss of {KERAS_IO_PRIOR_NATS} nats per code ({prior_bits:.1f} bits per "
            f"7x7 code map, of {code_bits:.0f} bits without a prior). It reports no FID, "
            "precision, recall, codebook usage, test-set figure or Fashion-MNIST number.")


def section(args, rows, total_minutes, mnist_variance):
    """The Markdown section RESULTS.md gets."""
    smoke = " (smoke run: sizes too small to mean anything)" if args.smoke else ""
    command = "python -m benchmarks.vqvae_vs_vae " + (
        "--smoke" if args.smoke else
        f"--minutes {args.minutes:g} --prior-share {args.prior_share:g} "
        f"--datasets {' '.join(args.datasets)} --train-images {args.train_images} "
        f"--test-images {args.test_images} --seed {args.seed}")
    return f"""
## VQ-VAE against the VAE at equal training minutes, {datetime.date.today()}{smoke}

`{command}` on {harness.machine()}; {total_minutes:.0f} minutes in all.
{args.train_images:,} training and {args.test_images:,} test images per dataset, seed
{args.seed}, one model after the other in one process. Both models train on dynamically
binarized images with a Bernoulli likelihood, batch 128, Adam 1e-3, each for at most
{args.minutes:g} minutes of epochs (stopping after the epoch at which one more would pass
the budget; tracing and tf.data's idle wait at the end of `fit` are not counted); the
VQ-VAE's minutes include its PixelCNN prior's (in brackets), which gets what its `fit`
left of the budget (at most {1 - args.prior_share:.0%} goes to `fit`).
VAE: the default networks (conv 32/64, dense 256, latent 32). VQ-VAE: `build_vqvae()`'s
defaults (K=64 codes of 16 dimensions on a 7x7 map, EMA codebook with dead-code restarts,
PixelCNN of 64 filters and 2 residual blocks). MSE per pixel: reconstructions of the grey
test images against them. Code bits: 49 x log2 64 = 294 for the VQ-VAE; the VAE's KL
rate (the mean KL term of its loss on the test images binarized once, seed 0) in bits.
Prior NLL: the VQ-VAE prior's -log2 p of the test code maps, bits per map. FID:
MNIST-classifier FID (the shipped digit classifier, for Fashion-MNIST too: not comparable
with Inception FID, nor across datasets) of {args.test_images:,} samples (the VQ-VAE's from
its prior) against the grey test images; precision and recall (Kynkaanniemi et al. 2019,
k=3) on the same features. Perplexity and codes used: over every position of the binarized
test images; "collapsed" when fewer than {args.collapse_threshold:.0%} of the codes are used.

| dataset | model | training minutes (prior) | epochs (prior) | MSE per pixel | code bits per image | prior NLL bits | MNIST-classifier FID | precision | recall | codebook perplexity | fraction of codes used | collapsed |
| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |
{chr(10).join(rows)}

{keras_io_anchor(mnist_variance)}
"""


def main(argv=None):
    """Trains, measures and appends the table; returns the path written."""
    args = parse_args(argv)
    extractor = evaluation.mnist_classifier_features()
    rows = []
    mnist_variance = None
    started = time.perf_counter()
    for name in args.datasets:
        (x_train, _), (x_test, _) = datasets.load(name)
        x_train, x_test = x_train[:args.train_images], x_test[:args.test_images]
        if name == "mnist":
            mnist_variance = float(np.var(x_train.astype("float64")))
        x_binary = datasets.binarize(x_test, seed=0)
        vae, record = train_vae(x_train, args)
        rows.append(row(name, "VAE", record,
                        measure(vae, "vae", x_test, x_binary, extractor, args)))
        vqvae, record = train_vqvae(x_train, args)
        rows.append(row(name, "VQ-VAE + PixelCNN prior", record,
                        measure(vqvae, "vqvae", x_test, x_binary, extractor, args)))
    total = (time.perf_counter() - started) / 60
    return harness.append_results(section(args, rows, total, mnist_variance), args.results)


if __name__ == "__main__":
    main()
