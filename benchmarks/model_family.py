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

    .venv/bin/python benchmarks/model_family.py --epochs 5
"""

import argparse
import datetime
import os
import pathlib
import platform
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from keras_vae import datasets  # noqa: E402
from keras_vae import evaluation  # noqa: E402
from keras_vae import mixture  # noqa: E402
from keras_vae import models  # noqa: E402

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from evaluate_models import EpochTimer  # noqa: E402

RESULTS = pathlib.Path(__file__).resolve().parent / "RESULTS.md"
GAN_OPTIMIZER = {"learning_rate": 2e-4, "beta_1": 0.5}


def specs(seed):
    """(name, builder, binarized training data?) of every model in the table."""
    vae = models.build_vae
    return [
        ("Autoencoder (Bernoulli)", lambda: models.build_autoencoder(seed=seed), True),
        ("VAE beta=1 (Bernoulli)", lambda: vae(seed=seed), True),
        ("beta-VAE beta=0.5", lambda: vae(beta=0.5, seed=seed), True),
        ("beta-VAE beta=2", lambda: vae(beta=2.0, seed=seed), True),
        ("beta-VAE beta=4", lambda: vae(beta=4.0, seed=seed), True),
        ("VAE, mixture-of-Gaussians prior", lambda: vae(prior="mixture", seed=seed), True),
        ("VAE, VampPrior", lambda: vae(prior="vamp", seed=seed), True),
        ("VAE, continuous Bernoulli (grey)",
         lambda: vae(likelihood="continuous_bernoulli", seed=seed), False),
        ("VAE, Gaussian global scale (grey)", lambda: vae(likelihood="gaussian", seed=seed),
         False),
        ("VAE, Gaussian per-pixel scale (grey)",
         lambda: vae(likelihood="gaussian_pixel", seed=seed), False),
        ("VAE, discretized logistic (8-bit grey)",
         lambda: vae(likelihood="discretized_logistic", seed=seed), False),
        ("Conditional VAE (Bernoulli)", lambda: models.build_conditional_vae(
            latent_dim=32, seed=seed), True),
        ("DCGAN", lambda: models.build_dcgan(seed=seed), True),
    ]


def train(model, x_train, y_train, binarized, args):
    keras.utils.set_random_seed(args.seed)
    if isinstance(model, models.DCGAN):
        model.compile(optimizer=keras.optimizers.Adam(**GAN_OPTIMIZER))
    else:
        model.compile(optimizer=keras.optimizers.Adam(1e-3))
    labels = y_train if isinstance(model, models.ConditionalVAE) else None
    data = datasets.make_dataset(x_train, labels, batch_size=128, binarize=binarized,
                                 seed=args.seed)
    timer = EpochTimer()
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
    samples_n = len(x_test)
    out = {}
    if isinstance(model, models.DCGAN):
        generated = model.sample(samples_n, seed=0)
    elif isinstance(model, models.ConditionalVAE):
        out["mse"] = evaluation.reconstruction_mse(model, x_test, labels=y_test)["mse_per_pixel"]
        generated = model.sample(np.arange(samples_n) % 10, seed=0)
    else:
        out["mse"] = evaluation.reconstruction_mse(model, x_test)["mse_per_pixel"]
        generated = model.sample(samples_n, seed=0)
    if isinstance(model, models.VAE) and not isinstance(model, models.ConditionalVAE):
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
    for name, build, binarized in specs(args.seed):
        if args.only and not any(part in name for part in args.only.split(",")):
            continue
        keras.utils.set_random_seed(args.seed)
        model = build()
        minutes = train(model, x_train, y_train, binarized, args)
        rows.append(row(name, minutes, measure(model, binarized, test, extractor, args)))
        if name.startswith(("Autoencoder", "VAE beta=1")):
            start = time.perf_counter()
            sampler = mixture.ExPostSampler(model, num_components=10, seed=0).fit(x_train)
            fit_minutes = (time.perf_counter() - start) / 60
            fid = evaluation.fid(x_test, sampler.sample(len(x_test), seed=0), extractor)
            rows.append(row(f"{name.split(' (')[0]} + ex-post 10-component mixture sampler",
                            fit_minutes, {"fid": fid["value"]}))
    total = (time.perf_counter() - started) / 60

    text = RESULTS.read_text() if RESULTS.exists() else "# Benchmark results\n"
    text += f"""
## The model family side by side, {datetime.date.today()}

`benchmarks/model_family.py --epochs {args.epochs} --num-samples {args.num_samples}
--nll-images {args.nll_images}` on {platform.machine()}, {os.cpu_count()} CPU cores,
Python {platform.python_version()}; {len(x_train):,} training images, seed {args.seed},
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
"""
    RESULTS.write_text(text)


if __name__ == "__main__":
    main()
