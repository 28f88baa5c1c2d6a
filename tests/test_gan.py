"""The DCGAN baseline: its own train_step, two optimizers, samples, saving."""

import keras
import numpy as np
import pytest

from conftest import run_python
from keras_vae import callbacks
from keras_vae import models
from keras_vae import networks


def tiny_gan():
    return models.build_dcgan(latent_dim=8, filters=(8, 16), seed=0)


def test_dcgan_trains_both_networks_and_samples(mnist_small, tmp_path):
    (x_train, _), _ = mnist_small
    gan = tiny_gan()
    gan.compile(optimizer=keras.optimizers.Adam(2e-4, beta_1=0.5))
    generator_before = [w.numpy().copy() for w in gan.generator.weights]
    discriminator_before = [w.numpy().copy() for w in gan.discriminator.weights]
    plotter = callbacks.ReconstructionPlotter(None, tmp_path, num_samples=8)
    history = gan.fit(x_train, epochs=2, batch_size=64, verbose=0, callbacks=[plotter])
    assert set(history.history) == {"discriminator_loss", "generator_loss"}
    assert all(np.isfinite(v).all() for v in history.history.values())
    assert any(not np.allclose(b, a.numpy())
               for b, a in zip(generator_before, gan.generator.weights))
    assert any(not np.allclose(b, a.numpy())
               for b, a in zip(discriminator_before, gan.discriminator.weights))
    assert gan.discriminator_optimizer is not gan.optimizer
    evaluated = gan.evaluate(x_train[:128], verbose=0, return_dict=True)
    assert set(evaluated) == {"discriminator_loss", "generator_loss"}
    assert all(np.isfinite(v) for v in evaluated.values())
    assert sorted(p.name for p in plotter.saved_files) == ["samples_001.png", "samples_002.png"]
    samples = gan.sample(6, seed=3)
    assert samples.shape == (6, 28, 28, 1) and 0 <= samples.min() and samples.max() <= 1
    np.testing.assert_array_equal(samples, gan.sample(6, seed=3))
    assert gan.predict(np.zeros((2, 8), "float32"), verbose=0).shape == (2, 28, 28, 1)
    with pytest.raises(NotImplementedError, match="needs a model with an encoder: DCGAN has none"):
        gan.reconstruct(x_train[:2])


def test_dcgan_reloads_with_both_optimizers_and_keeps_training(mnist_small, tmp_path):
    (x_train, _), _ = mnist_small
    gan = tiny_gan()
    gan.compile(optimizer=keras.optimizers.Adam(2e-4, beta_1=0.5))
    gan.fit(x_train[:128], epochs=1, batch_size=64, verbose=0)
    gan.save(tmp_path / "gan.keras")
    z = np.random.default_rng(0).normal(size=(4, 8)).astype("float32")
    np.save(tmp_path / "expected.npy", gan.decode(z))
    np.save(tmp_path / "z.npy", z)
    result = run_python(f"""
        import warnings
        warnings.simplefilter("error", UserWarning)
        import numpy as np, keras, keras_vae
        gan = keras.models.load_model({str(tmp_path / "gan.keras")!r})
        got = gan.decode(np.load({str(tmp_path / "z.npy")!r}))
        assert np.abs(got - np.load({str(tmp_path / "expected.npy")!r})).max() < 1e-6
        assert gan.optimizer.iterations.numpy() == 2
        assert gan.discriminator_optimizer.iterations.numpy() == 2
        assert gan.discriminator_optimizer.learning_rate.numpy() == np.float32(2e-4)
        (x, _), _ = keras_vae.datasets.load("mnist")
        gan.fit(x[:64], epochs=1, verbose=0)
        print("GAN-OK")
    """, cwd=tmp_path)
    assert "GAN-OK" in result.stdout, result.stderr[-3000:]


def test_dcgan_refuses_mismatched_networks():
    generator = networks.build_decoder(latent_dim=8, filters=(8,), hidden_units=8)
    with pytest.raises(ValueError, match="discriminator must take"):
        models.DCGAN(generator, networks.build_discriminator((32, 32, 1), filters=(8,)))
    encoder = networks.build_encoder(latent_dim=8, filters=(8,), hidden_units=8)
    with pytest.raises(ValueError, match="one logit per image"):
        models.DCGAN(generator, encoder)
