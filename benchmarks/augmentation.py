"""Data augmentation, measured: a small classifier on few labels, with and without VAE images.

For each labels-per-class setting and seed, a labelled subset of MNIST is drawn
and the small CNN of `evaluation.build_mnist_classifier` trains for the same
number of optimizer steps (Adam 1e-3, batch 64) on:

1. the real labelled images alone;
2. real + conditional-VAE samples: a `ConditionalVAE` trained on the labelled
   subset only (what a purely supervised user has), `--synthetic-per-class`
   samples per class;
3. real + perturbed codes: a `VAE` trained once on the 60,000 unlabelled MNIST
   training images re-decodes every labelled image `--copies` times from codes
   drawn from its posterior (semi-supervised: it uses the unlabelled images).

Test accuracy on the 10,000 MNIST test images, mean and standard deviation over
seeds. One table is appended to RESULTS.md.

    python -m benchmarks.augmentation --seeds 0 1 2
"""

import argparse
import datetime
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np

from benchmarks import harness
from keras_vae import augmentation
from keras_vae import datasets
from keras_vae import evaluation
from keras_vae import models
from keras_vae import schedules

ADAM_RATE = schedules.learning_rate(1e-3)


def labelled_subset(x, y, per_class, seed):
    rng = np.random.default_rng(seed)
    index = np.concatenate([rng.choice(np.flatnonzero(y == c), per_class, replace=False)
                            for c in range(10)])
    return x[index], y[index]


def classifier_accuracy(dataset, steps, x_test, y_test, seed):
    keras.utils.set_random_seed(seed)
    classifier = evaluation.build_mnist_classifier()
    classifier.compile(optimizer=keras.optimizers.Adam(ADAM_RATE),
                       loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                       metrics=["accuracy"])
    classifier.fit(dataset.repeat(), steps_per_epoch=steps, epochs=1, verbose=0,
                   shuffle=False)  # the dataset shuffles itself
    return classifier.evaluate(x_test, y_test, verbose=0, return_dict=True)["accuracy"]


def train_cvae(x, y, steps, seed):
    keras.utils.set_random_seed(seed)
    cvae = models.build_conditional_vae(latent_dim=8, seed=seed)
    cvae.compile(optimizer=keras.optimizers.Adam(ADAM_RATE))
    data = datasets.make_dataset(x, y, batch_size=64, binarize=True, seed=seed)
    cvae.fit(data.repeat(), steps_per_epoch=steps, epochs=1, verbose=0)
    return cvae


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-class", type=int, nargs="+", default=[10, 100])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--classifier-steps", type=int, default=1000)
    parser.add_argument("--cvae-steps", type=int, default=2000)
    parser.add_argument("--vae-epochs", type=int, default=5)
    parser.add_argument("--synthetic-per-class", type=int, default=500)
    parser.add_argument("--copies", type=int, default=10)
    args = parser.parse_args()
    started = time.perf_counter()

    (x_train, y_train), (x_test, y_test) = datasets.load("mnist")
    keras.utils.set_random_seed(0)
    vae = models.build_vae(seed=0)
    vae.compile(optimizer=keras.optimizers.Adam(ADAM_RATE))
    vae.fit(datasets.make_dataset(x_train, batch_size=128, binarize=True, seed=0),
            epochs=args.vae_epochs, verbose=2)

    rows = []
    for per_class in args.per_class:
        accuracies = {"real images only": [], "+ conditional VAE samples": [],
                      "+ perturbed codes (VAE on unlabelled images)": []}
        for seed in args.seeds:
            x, y = labelled_subset(x_train, y_train, per_class, seed)
            cvae = train_cvae(x, y, args.cvae_steps, seed)
            sources = {
                "real images only": None,
                "+ conditional VAE samples": augmentation.synthesize(
                    cvae, args.synthetic_per_class, seed=seed),
                "+ perturbed codes (VAE on unlabelled images)": augmentation.perturb(
                    vae, x, y, copies=args.copies, seed=seed),
            }
            for name, synthetic in sources.items():
                data = augmentation.augmented_dataset(x, y, synthetic, batch_size=64,
                                                      seed=seed)
                accuracy = classifier_accuracy(data, args.classifier_steps, x_test, y_test,
                                               seed)
                accuracies[name].append(accuracy)
                print(per_class, seed, name, f"{accuracy:.4f}", flush=True)
        for name, values in accuracies.items():
            values = np.array(values)
            row = (f"| {per_class} | {name} | {100 * values.mean():.2f} | "
                   f"{100 * values.std(ddof=1) if len(values) > 1 else 0:.2f} | "
                   f"{', '.join(f'{100 * v:.1f}' for v in values)} |")
            print(row, flush=True)
            rows.append(row)
    minutes = (time.perf_counter() - started) / 60

    harness.append_results(f"""
## Data augmentation with few labels, {datetime.date.today()}

`python -m benchmarks.augmentation --per-class {' '.join(map(str, args.per_class))} --seeds
{' '.join(map(str, args.seeds))}` on {harness.machine()}; {minutes:.0f} minutes in all. Classifier: the small CNN
of `evaluation.build_mnist_classifier`, {args.classifier_steps} Adam steps of 64 images in
every arm. Conditional VAE (latent 8): {args.cvae_steps} steps on the labelled images
alone, {args.synthetic_per_class} samples per class. Perturbed codes: the default VAE,
{args.vae_epochs} epochs on the 60,000 MNIST training images without their labels,
{args.copies} posterior draws per labelled image. The labelled subset and the seeds of
every model change with the seed. Test accuracy on the 10,000 MNIST test images (%).

| labels per class | training data | mean accuracy | std over seeds | per seed |
| --- | --- | --- | --- | --- |
{chr(10).join(rows)}
""")


if __name__ == "__main__":
    main()
