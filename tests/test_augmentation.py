"""Synthetic labelled images from a conditional VAE or from perturbed codes."""

import numpy as np
import pytest

from conftest import tiny_vae
from keras_vae import augmentation
from keras_vae import models


def test_synthesize_gives_per_class_images_and_labels():
    cvae = models.build_conditional_vae(latent_dim=4, filters=(8,), hidden_units=16, seed=0)
    images, labels = augmentation.synthesize(cvae, per_class=3, seed=1)
    assert images.shape == (30, 28, 28, 1) and labels.shape == (30,)
    np.testing.assert_array_equal(labels, np.repeat(np.arange(10), 3))
    np.testing.assert_array_equal(images, augmentation.synthesize(cvae, 3, seed=1)[0])
    some, some_labels = augmentation.synthesize(cvae, 2, classes=[4, 9])
    np.testing.assert_array_equal(some_labels, [4, 4, 9, 9])
    with pytest.raises(ValueError, match=r"must be in \[0, 10\)"):
        augmentation.synthesize(cvae, 2, classes=[12])
    with pytest.raises(NotImplementedError,
                       match="synthesize .*needs a model with class conditioning: VAE has none"):
        augmentation.synthesize(tiny_vae(), 2)


def test_perturb_keeps_labels_and_scale_zero_is_the_reconstruction(mnist_small):
    (_, _), (x_test, y_test) = mnist_small
    vae = tiny_vae()
    images, labels = augmentation.perturb(vae, x_test[:5], y_test[:5], copies=2, seed=0)
    assert images.shape == (10, 28, 28, 1)
    np.testing.assert_array_equal(labels, np.tile(y_test[:5], 2))
    assert not np.allclose(images[:5], images[5:])
    same, _ = augmentation.perturb(vae, x_test[:5], y_test[:5], scale=0.0)
    np.testing.assert_allclose(same, vae.reconstruct(x_test[:5]), atol=1e-6)
    with pytest.raises(ValueError, match="differ in length"):
        augmentation.perturb(vae, x_test[:5], y_test[:4])


def test_augmented_dataset_mixes_real_and_synthetic(mnist_small):
    (_, _), (x_test, y_test) = mnist_small
    synthetic = (np.zeros((6, 28, 28, 1), "float32"), np.full(6, 3))
    dataset = augmentation.augmented_dataset(x_test[:10], y_test[:10], synthetic,
                                             batch_size=4)
    xs, ys = zip(*[(x.numpy(), y.numpy()) for x, y in dataset])
    xs, ys = np.concatenate(xs), np.concatenate(ys)
    assert len(xs) == 16
    assert sorted(ys.tolist()) == sorted(y_test[:10].tolist() + [3] * 6)
    assert int(np.sum(xs.reshape(16, -1).max(axis=1) == 0)) == 6
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        augmentation.augmented_dataset(x_test[:4], y_test[:4], (synthetic[0] + 2, synthetic[1]))
