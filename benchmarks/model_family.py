"""The model family side by side: autoencoder, VAE, beta-VAE, likelihoods, priors, samplers, DCGAN.

Every model has the default networks (conv 32/64, dense 256, latent 32),
Adam 1e-3 (the DCGAN: 2e-4, beta_1 0.5), batch 128, the same epochs and seed,
one after the other in one process. Models with a Bernoulli likelihood (and
the autoencoder and DCGAN) train on dynamically binarized MNIST; the others on
the grey levels, which their likelihoods model. Measured on the MNIST test set:

- MSE per pixel of the reconstruction (posterior mean) against the grey test images;
- test negative log-likelihood, the IWAE bound with K samples, in nats, on the
  binarized test set (Bernoulli) or the grey one (other likelihoods; continuous
  densities are not comparable with the binary NLLs, the discretized logistic's
  8-bit NLL is);
- MNIST-classifier FID of samples (prior, or the ex-post mixture) against the grey
  test images;
- active units (Burda et al.'s criterion) on the test images.

One table is appended to RESULTS.md.

    python -m benchmarks.model_family --epochs 5
"""

import argparse
import dataclasses
import datetime
import os
import time
from collections.abc import Callable

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np

from benchmarks import harness
from keras_vae import datasets
from keras_vae import evaluation
from keras_vae import mixture
from keras_vae import models
from keras_vae import schedules

ADAM = {"learning_rate": schedules.learning_rate(1e-3)}
GAN_ADAM = {"learning_rate": schedules.learning_rate(2e-4), "beta_1": 0.5}


@dataclasses.dataclass
class Spec:
    """One row of the table: how to build the model and what it trains on."""

    name: str
    build: Callable
    binarized: bool = True  # dynamically binarized training images, else grey levels
    adam: dict = dataclasses.field(default_factory=ADAM.copy)
    conditional: bool = False  # trains on the labels too


def specs(seed):
    """Every model in the table, in order."""
    vae = models.build_vae
    return [
        Spec("Autoencoder (Bernoulli)", lambda: models.build_autoencoder(seed=seed)),
        Spec("VAE beta=1 (Bernoulli)", lambda: vae(seed=seed)),
        Spec("beta-VAE beta=0.5", lambda: vae(beta=0.5, seed=seed)),
        Spec("beta-VAE beta=2", lambda: vae(beta=2.0, seed=seed)),
        Spec("beta-VAE beta=4", lambda: vae(beta=4.0, seed=seed)),
        Spec("VAE, mixture-of-Gaussians prior", lambda: vae(prior="mixture", seed=seed)),
        Spec("VAE, VampPrior", lambda: vae(prior="vamp", seed=seed)),
        Spec("VAE, continuous Bernoulli (grey)",
             lambda: vae(likelihood="continuous_bernoulli", seed=seed), binarized=False),
        Spec("VAE, Gaussian global scale (grey)",
             lambda: vae(likelihood="gaussian", seed=seed), binarized=False),
        Spec("VAE, Gaussian per-pixel scale (grey)",
             lambda: vae(likelihood="gaussian_pixel", seed=seed), binarized=False),
        Spec("VAE, discretized logistic (8-bit grey)",
             lambda: vae(likelihood="discretized_logistic", seed=seed), binarized=False),
        Spec("Conditional VAE (Bernoulli)",
             lambda: models.build_conditional_vae(latent_dim=32, seed=seed),
             conditional=True),
        Spec("DCGAN", lambda: models.build_dcgan(seed=seed), adam=GAN_ADAM),
    ]


def train(model, spec, x_train, y_train, args):
    keras.utils.set_random_seed(args.seed)
    model.compile(optimizer=keras.optimizers.Adam(**spec.adam))
    data = datasets.make_dataset(x_train, y_train if spec.conditional else None,
                                 batch_size=128, binarize=spec.binarized, seed=args.seed)
    timer = harness.EpochTimer()
    model.fit(data, epochs=args.epochs, callbacks=[timer], verbose=2)
    return sum(timer.seconds) / 60


def row(name, minutes, measures):
    cells = [name, "-" if minutes is None else f"{minutes:.1f}"]
    for key, form in (("mse", "{:.4f}"), ("nll", "{:.2f}"), ("fid", "{:.2f}"),
                      ("active_units", "{}")):
        value = measures.get(key)
        cells.append("-" if value is None else form.format(value))
    text = "| " + " | ".join(cells) + " |"
    print(text, flush=True)
    return text


def measure(model, binarized, test, extractor, args):
    x_test, y_test, x_test_binary = test
    labels = None if model.num_classes is None else y_test
    out = {}
    if hasattr(model, "encoder"):  # the DCGAN has no encoder, so nothing to reconstruct
        out["mse"] = evaluation.reconstruction_mse(model, x_test, labels=labels)["mse_per_pixel"]
    generated = model.sample(len(x_test), labels=None if labels is None
                             else np.arange(len(x_test)) % model.num_classes, seed=0)
    if hasattr(model, "posterior") and labels is None:  # a likelihood bound without labels
        nll_images = (x_test_binary if binarized else x_test)[:args.nll_images]
        report = evaluation.likelihood_report(model, nll_images, num_samples=args.num_samples,
                                              verbose=0)
        out["nll"] = report["nll"]
        out["active_units"] = evaluation.active_units(model, x_test)["active_units"]
    out["fid"] = evaluation.fid(x_test, generated, extractor)["value"]
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--num-samples", type=int, default=100)
    parser.add_argument("--nll-images", type=int, default=2000)
    parser.add_argument("--train-images", type=int, default=60000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--only", help="comma-separated substrings of model names to run")
    args = parser.parse_args()

    (x_train, y_train), (x_test, y_test) = datasets.load("mnist")
    x_train, y_train = x_train[:args.train_images], y_train[:args.train_images]
    test = (x_test, y_test, datasets.binarize(x_test, seed=0))
    extractor = evaluation.mnist_classifier_features()
    rows = []
    started = time.perf_counter()
    for spec in specs(args.seed):
        name, binarized = spec.name, spec.binarized
        if args.only and not any(part in name for part in args.only.split(",")):
            continue
        keras.utils.set_random_seed(args.seed)
        model = spec.build()
        minutes = train(model, spec, x_train, y_train, args)
        rows.append(row(name, minutes, measure(model, binarized, test, extractor, args)))
        if name.startswith(("Autoencoder", "VAE beta=1")):
            start = time.perf_counter()
            sampler = mixture.ExPostSampler(model, num_components=10, seed=0).fit(x_train)
            fit_minutes = (time.perf_counter() - start) / 60
            fid = evaluation.fid(x_test, sampler.sample(len(x_test), seed=0), extractor)
            rows.append(row(f"{name.split(' (')[0]} + ex-post 10-component mixture sampler",
                            fit_minutes, {"fid": fid["value"]}))
    total = (time.perf_counter() - started) / 60

    harness.append_results(f"""
## The model family side by side, {datetime.date.today()}

`python -m benchmarks.model_family --epochs {args.epochs} --num-samples {args.num_samples}
--nll-images {args.nll_images}` on {harness.machine()}; {len(x_train):,} training images, seed {args.seed},
{total:.0f} minutes in all. Default networks (conv 32/64, dense 256, latent 32; the DCGAN's
generator `networks.build_generator`, the decoder's shape with batch normalization, its
discriminator conv 64/128), batch 128, Adam 1e-3
(DCGAN 2e-4, beta_1 0.5), {args.epochs} epochs each. Bernoulli models, the autoencoder
and the DCGAN train on dynamically binarized images; the other likelihoods on grey
levels. MSE per pixel of the reconstruction against the 10,000 grey test images. NLL: IWAE
bound, K={args.num_samples}, first {args.nll_images:,} test images (binarized once, seed 0,
for Bernoulli; grey for the others: the Gaussian and continuous-Bernoulli values are
densities, not comparable with the rest; the discretized logistic's is an 8-bit NLL).
MNIST-classifier FID (not comparable with Inception FID) of 10,000 samples against the
grey test images; the conditional VAE's samples cycle through the ten classes. Active
units: posterior-mean variance > 0.01 over the test images. For the ex-post rows, the
minutes are those of fitting the mixture to the 60,000 training codes.

| model | training minutes | MSE | test NLL (nats) | MNIST-classifier FID | active units |
| --- | --- | --- | --- | --- | --- |
{chr(10).join(rows)}
""")


if __name__ == "__main__":
    main()
