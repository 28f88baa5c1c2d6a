"""The conditional VAE: labels in, chosen classes out, clear errors without them."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_vae
from conftest import run_python
from keras_vae import datasets
from keras_vae import models


def tiny_cvae(**kwargs):
    return models.build_conditional_vae(latent_dim=4, filters=(8, 16), hidden_units=32,
                                        seed=0, **kwargs)


def test_conditional_vae_trains_on_images_and_labels(mnist_small):
    (x_train, y_train), (x_test, y_test) = mnist_small
    cvae = tiny_cvae()
    cvae.compile(optimizer="adam")
    history = cvae.fit(x_train, y_train, epochs=3, batch_size=64, verbose=0,
                       validation_data=(x_test, y_test))
    assert history.history["loss"][-1] < history.history["loss"][0]
    assert "val_kl_loss" in history.history
    dataset = tf.data.Dataset.from_tensor_slices((x_test, y_test)).batch(32)
    from_dataset = cvae.evaluate(dataset, verbose=0, return_dict=True)
    assert from_dataset["loss"] == pytest.approx(history.history["val_loss"][-1], rel=0.05)
    assert cvae.sample(3, labels=[3, 3, 7], seed=0).shape == (3, 28, 28, 1)
    z_mean, z_log_var = cvae.encode(x_test[:5], y_test[:5])
    assert z_mean.shape == z_log_var.shape == (5, 4)
    reconstructions = cvae.reconstruct(x_test[:5], y_test[:5])
    np.testing.assert_allclose(reconstructions, cvae.decode(z_mean, y_test[:5]), atol=1e-6)
    mse = keras_vae.evaluation.reconstruction_mse(cvae, x_test, labels=y_test)
    expected = np.mean(((cvae.reconstruct(x_test, y_test)).astype("float64") - x_test) ** 2)
    assert mse["mse_per_pixel"] == pytest.approx(expected, rel=1e-6)


def test_the_label_changes_the_decoded_image(mnist_small):
    cvae = tiny_cvae()
    z = np.zeros((2, 4), "float32")
    images = cvae.decode(z, [1, 8])
    assert np.abs(images[0] - images[1]).max() > 1e-4


def test_missing_or_bad_labels_are_refused(mnist_small):
    (x_train, y_train), _ = mnist_small
    cvae = tiny_cvae()
    cvae.compile(optimizer="adam")
    weights = [w.numpy().copy() for w in cvae.weights]
    with pytest.raises(ValueError, match="needs class labels"):
        cvae.fit(x_train, epochs=1, verbose=0)
    with pytest.raises(ValueError, match=r"must be in \[0, 10\)"):
        cvae.fit(x_train[:4], np.array([0, 1, 2, 10]), verbose=0)
    with pytest.raises(ValueError, match=r"class indices >= 0"):
        cvae.sample(1, labels=[-1])
    with pytest.raises(ValueError, match="one label per image"):
        cvae.fit(x_train[:4], y_train[:3], verbose=0)
    with pytest.raises(ValueError, match="not one-hot"):
        cvae.fit(x_train[:4], np.eye(10)[y_train[:4]], verbose=0)
    with pytest.raises(ValueError, match="must be whole numbers"):
        cvae.sample(1, labels=[0.5])
    with pytest.raises(TypeError, match="integer class indices"):
        cvae.sample(1, labels=["seven"])
    unlabelled = tf.data.Dataset.from_tensor_slices(x_train[:8]).batch(4)
    with pytest.raises(ValueError, match="needs class labels"):
        cvae.fit(unlabelled, verbose=0)
    for before, after in zip(weights, cvae.weights):
        np.testing.assert_array_equal(before, after.numpy())
    with pytest.raises(ValueError, match="VampPrior"):
        tiny_cvae(prior="vamp")


def test_conditional_vae_reloads_in_a_fresh_process(mnist_small, tmp_path):
    (_, _), (x_test, y_test) = mnist_small
    cvae = tiny_cvae(prior="mixture")
    cvae.compile(optimizer="adam")
    cvae.fit(x_test, y_test, epochs=1, verbose=0)
    cvae.save(tmp_path / "cvae.keras")
    np.save(tmp_path / "expected.npy", cvae.reconstruct(x_test[:6], y_test[:6]))
    result = run_python(f"""
        import numpy as np, keras, keras_vae
        model = keras.models.load_model({str(tmp_path / "cvae.keras")!r})
        (_, _), (x, y) = keras_vae.datasets.load("mnist")
        got = model.reconstruct(x[:6], y[:6])
        assert np.abs(got - np.load({str(tmp_path / "expected.npy")!r})).max() < 1e-6
        assert model.num_classes == 10 and type(model.prior_layer).__name__ == "MixtureOfGaussians"
        model.fit(x[:64], y[:64], epochs=1, verbose=0)
        print("CVAE-OK")
    """, cwd=tmp_path)
    assert "CVAE-OK" in result.stdout, result.stderr[-3000:]


def test_samples_of_a_chosen_class_are_recognised_as_that_class():
    keras.utils.set_random_seed(0)
    (x_train, y_train), _ = datasets.load("mnist")
    x, y = datasets.binarize(x_train[:6000], seed=0), y_train[:6000]
    cvae = models.build_conditional_vae(latent_dim=8, filters=(16, 32), hidden_units=128,
                                        seed=0)
    cvae.compile(optimizer="adam")
    cvae.fit(x, y, epochs=4, batch_size=64, verbose=0)
    classifier = keras_vae.saving.load_model(keras_vae.evaluation.MNIST_CLASSIFIER_PATH)
    wanted = np.repeat(np.arange(10), 20)
    predicted = classifier.predict(cvae.sample(len(wanted), labels=wanted, seed=0), verbose=0).argmax(axis=1)
    assert np.mean(predicted == wanted) > 0.7
