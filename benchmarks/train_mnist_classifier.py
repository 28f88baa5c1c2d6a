"""Trains the small MNIST classifier behind "MNIST-classifier FID".

Writes `keras_vae/resources/mnist_classifier.keras` (package data, no
optimizer state) and prints its test accuracy. The classifier sees
grey-level and dynamically binarized training images, so its features
describe both kinds of image.

    python -m benchmarks.train_mnist_classifier
"""

import os
import pathlib

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np

from keras_vae import datasets
from keras_vae import evaluation
from keras_vae import saving

EPOCHS = 4


def main():
    keras.utils.set_random_seed(0)
    (x_train, y_train), (x_test, y_test) = datasets.load("mnist")
    binary = datasets.binarize(x_train, seed=0)
    x = np.concatenate([x_train, binary])
    y = np.concatenate([y_train, y_train])
    classifier = evaluation.build_mnist_classifier()
    classifier.compile(optimizer=keras.optimizers.Adam(1e-3),
                       loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                       metrics=["accuracy"])
    classifier.fit(x, y, epochs=EPOCHS, batch_size=128, validation_data=(x_test, y_test),
                   verbose=2)
    _, accuracy = classifier.evaluate(x_test, y_test, verbose=0)
    _, binary_accuracy = classifier.evaluate(datasets.binarize(x_test, seed=0), y_test,
                                             verbose=0)
    print(f"test accuracy: {accuracy:.4f} (grey), {binary_accuracy:.4f} (binarized)")
    clean = evaluation.build_mnist_classifier()  # same weights, no optimizer state
    clean.set_weights(classifier.get_weights())
    path = pathlib.Path(str(evaluation.MNIST_CLASSIFIER_PATH))  # in this clone's keras_vae/
    saving.save_model(clean, path)
    print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB)")


if __name__ == "__main__":
    main()
