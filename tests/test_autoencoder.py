"""The plain autoencoder: same networks, deterministic code, reconstruction loss only."""

import numpy as np
import pytest

import keras_vae
from conftest import run_saving_roundtrip
from keras_vae import models
from keras_vae import networks


def tiny_autoencoder(**kwargs):
    return models.build_autoencoder(latent_dim=4, filters=(8, 16), hidden_units=32,
                                    seed=0, **kwargs)


def test_autoencoder_trains_is_deterministic_and_reloads(mnist_small, tmp_path):
    (x_train, _), (x_test, _) = mnist_small
    autoencoder = tiny_autoencoder()
    autoencoder.compile(optimizer="adam")
    history = autoencoder.fit(x_train, epochs=3, batch_size=64, verbose=0,
                              validation_data=(x_test,))
    assert set(history.history) == {"loss", "val_loss"}
    assert history.history["loss"][-1] < history.history["loss"][0]
    np.testing.assert_array_equal(autoencoder.reconstruct(x_test[:8]),
                                  autoencoder.reconstruct(x_test[:8]))
    codes, log_variances = autoencoder.encode(x_test[:8])
    assert codes.shape == (8, 4) and log_variances is None
    assert autoencoder.sample(5, seed=0).shape == (5, 28, 28, 1)
    mse = keras_vae.evaluation.reconstruction_mse(autoencoder, x_test)
    expected = np.mean(((autoencoder.reconstruct(x_test)).astype("float64") - x_test) ** 2)
    assert mse["mse_per_pixel"] == pytest.approx(expected, rel=1e-6)
    evaluated = autoencoder.evaluate(x_test, verbose=0, return_dict=True)
    assert evaluated["loss"] == pytest.approx(history.history["val_loss"][-1], rel=1e-4)
    run_saving_roundtrip(autoencoder, x_test[:8], tmp_path, check_code="""
        model.fit(x, epochs=1, verbose=0)
    """)


def test_autoencoder_loss_is_the_vae_reconstruction_term_with_the_mean_code(mnist_small):
    (_, _), (x_test, _) = mnist_small
    autoencoder = tiny_autoencoder(likelihood="continuous_bernoulli")
    params = autoencoder.decoder(autoencoder.encoder(x_test[:4]))
    expected = -autoencoder.likelihood_layer.log_prob(params, x_test[:4]).numpy()
    got = autoencoder.compute_reconstruction_loss(x_test[:4]).numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-6)


def test_autoencoder_refuses_a_variational_encoder_and_bad_images():
    encoder = networks.build_encoder(latent_dim=4, filters=(8,), hidden_units=8)
    decoder = networks.build_decoder(latent_dim=4, filters=(8,), hidden_units=8)
    with pytest.raises(ValueError, match="variational=False"):
        models.Autoencoder(encoder, decoder)
    autoencoder = tiny_autoencoder()
    autoencoder.compile(optimizer="adam")
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        autoencoder.fit(np.full((4, 28, 28, 1), 255.0, "float32"), verbose=0)
