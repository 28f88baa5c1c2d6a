"""Trains the default keras_vae model and the Keras-example VAE, then evaluates both.

Both models train with the same loop (`keras_vae.VAE.fit`) on dynamically
binarized MNIST for the same number of epochs. Each is then measured on the
MNIST test set binarized once (seed 0): training images per second, negative
ELBO and the IWAE negative log-likelihood (K importance samples), MSE of
posterior-mean reconstructions, and MNIST-classifier FID of prior samples
against the grey-level test images. One table is appended to RESULTS.md.

    python -m benchmarks.evaluate_models --epochs 20 --num-samples 1000

The 88-nat run of issue #4 (87.85 nats after 12.7 minutes):

    python -m benchmarks.evaluate_models --models default --epochs 32

A time-boxed run of a learned prior, keeping the trained model:

    python -m benchmarks.evaluate_models --models default --prior vamp \
        --epochs 1000 --max-minutes 115 --save /tmp/models
"""

import argparse
import datetime
import os
import pathlib
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras

import keras_vae
from benchmarks import harness
from benchmarks import keras_example
from keras_vae import datasets
from keras_vae import evaluation
from keras_vae import schedules

BATCH_SIZE = 128


def keras_example_vae(seed):
    """The keras.io "Variational AutoEncoder" architecture inside `keras_vae.VAE`."""
    encoder, decoder = keras_example.build_networks((28, 28, 1))
    return keras_vae.VAE(encoder, decoder, seed=seed, name="keras_example_vae")


def measure(name, vae, x_train, x_test_binary, x_test, args):
    keras.utils.set_random_seed(args.seed)
    rate = schedules.learning_rate(
        args.learning_rate, args.lr_schedule, epochs=args.epochs,
        steps_per_epoch=schedules.steps_per_epoch(len(x_train), BATCH_SIZE))
    vae.compile(optimizer=keras.optimizers.Adam(rate))
    timer = harness.EpochTimer(args.max_minutes)
    data = datasets.make_dataset(x_train, batch_size=BATCH_SIZE, binarize=True,
                                 seed=args.seed)
    vae.fit(data, epochs=args.epochs, callbacks=[timer], verbose=2)
    if args.save:
        args.save.mkdir(parents=True, exist_ok=True)
        vae.save(args.save / f"{vae.name}.keras")
    steady = timer.seconds[1:] or timer.seconds
    images_per_second = len(x_train) / statistics.median(steady)
    start = time.perf_counter()
    report = evaluation.likelihood_report(vae, x_test_binary, num_samples=args.num_samples,
                                          seed=0, verbose=1)
    iwae_minutes = (time.perf_counter() - start) / 60
    mse = evaluation.reconstruction_mse(vae, x_test_binary)
    fid = evaluation.fid(x_test, vae.sample(len(x_test), seed=0),
                         evaluation.mnist_classifier_features())
    row = (f"| {name} | {vae.count_params():,} | {len(timer.seconds)} | "
           f"{sum(timer.seconds) / 60:.1f} | {images_per_second:,.0f} | "
           f"{report['neg_elbo']:.2f} | {report['nll']:.2f} | {report['bits_per_dim']:.4f} | "
           f"{mse['mse_per_pixel']:.4f} | {fid['value']:.2f} | {iwae_minutes:.1f} |")
    print(row, flush=True)
    return row


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--max-minutes", type=float,
                        help="stop training before an epoch would end past this budget "
                        "(constant learning rate only)")
    parser.add_argument("--num-samples", type=int, default=1000)
    parser.add_argument("--test-images", type=int, default=10000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    parser.add_argument("--lr-schedule", choices=schedules.NAMES, default="constant")
    parser.add_argument("--models", choices=("both", "default"), default="both")
    parser.add_argument("--prior", choices=keras_vae.priors.NAMES, default="normal",
                        help="prior of the default model")
    parser.add_argument("--save", type=pathlib.Path,
                        help="folder to save each trained model in, before it is evaluated")
    parser.add_argument("--note", default="", help="free text recorded with the results")
    args = parser.parse_args()
    if args.max_minutes is not None and args.lr_schedule != "constant":
        parser.error("--max-minutes needs --lr-schedule constant: a cosine schedule is "
                     "laid out over --epochs")

    (x_train, _), (x_test, _) = datasets.load("mnist")
    x_test = x_test[:args.test_images]
    x_test_binary = datasets.binarize(x_test, seed=0)
    keras.utils.set_random_seed(args.seed)
    prior = "" if args.prior == "normal" else f", {args.prior} prior"
    models = {
        f"keras_vae default (conv 32/64, dense 256, latent 32{prior})":
            keras_vae.build_vae(latent_dim=32, prior=args.prior, seed=args.seed),
    }
    if args.models == "both":
        models["Keras example (conv 32/64, dense 16, latent 2)"] = keras_example_vae(args.seed)
    rows = [measure(name, vae, x_train, x_test_binary, x_test, args)
            for name, vae in models.items()]

    harness.append_results(f"""
## keras_vae default{" vs the Keras example VAE" if args.models == "both" else " model"}, {datetime.date.today()}

`python -m benchmarks.evaluate_models --epochs {args.epochs} --max-minutes {args.max_minutes}
--num-samples {args.num_samples} --test-images {args.test_images}
--learning-rate {args.learning_rate} --lr-schedule {args.lr_schedule} --models {args.models}
--prior {args.prior}`
on {harness.machine()}.
Same loop (`VAE.fit`, Adam {args.learning_rate:g} ({args.lr_schedule}), batch 128,
dynamically binarized training images,
seed {args.seed}). Test set: the first {len(x_test):,} MNIST test images binarized once
(seed 0). NLL is the IWAE bound with K={args.num_samples}, in nats; MSE per pixel of the
posterior-mean reconstruction; MNIST-classifier FID (not comparable with Inception FID) of
{len(x_test):,} prior samples against the grey-level test images. Images/s is the median
over epochs after the first. {args.note}

| model | parameters | epochs | training minutes | train images/s | test neg. ELBO | test NLL (IWAE) | bits/dim | MSE | MNIST-classifier FID | IWAE minutes |
| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |
{chr(10).join(rows)}

For context (published, dynamically binarized MNIST, Burda et al. 2015): single-layer VAE
86.76 nats, two-layer IWAE 82.90 nats.
""")


if __name__ == "__main__":
    main()
