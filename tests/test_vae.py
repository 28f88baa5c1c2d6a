import keras
import numpy as np
import pytest

import keras_vae
from conftest import run_python
from conftest import run_saving_roundtrip
from conftest import tiny_vae
from keras_vae import networks
from keras_vae.models.vae import LOG_VAR_BOUND


def _numpy_kl(z_mean, z_log_var):
    return 0.5 * np.sum(z_mean**2 + np.exp(z_log_var) - z_log_var - 1.0, axis=-1)


def _numpy_bernoulli_nll(x, logits):
    log_p = -np.logaddexp(0.0, -logits)  # log sigmoid(l)
    log_not_p = -np.logaddexp(0.0, logits)  # log (1 - sigmoid(l))
    return -np.sum(x * log_p + (1 - x) * log_not_p, axis=(1, 2, 3))


def _reference_losses(vae, x, seed, beta):
    """Recomputes the per-image losses with NumPy, drawing the same noise."""
    z_mean, z_log_var = (np.asarray(t) for t in vae.encode_tensor(x))
    z = keras_vae.Sampling(seed=seed)([z_mean, z_log_var])
    logits = np.asarray(vae.decoder(z)).astype("float64")
    reconstruction = _numpy_bernoulli_nll(x.astype("float64"), logits)
    kl = _numpy_kl(z_mean.astype("float64"), z_log_var.astype("float64"))
    return reconstruction, kl, reconstruction + beta * kl


def test_kl_matches_numpy_formula(mnist_small):
    (x, _), _ = mnist_small
    vae = tiny_vae(seed=1)
    # Move the posterior away from the prior so the KL is not trivially ~0.
    vae.encoder.get_layer("z_mean").bias.assign(np.linspace(-2, 2, 4))
    vae.encoder.get_layer("z_log_var").bias.assign(np.linspace(-1.5, 1.0, 4))
    _, kl = vae.compute_vae_losses(x[:16])
    z_mean, z_log_var = vae.encode(x[:16])
    np.testing.assert_allclose(kl.numpy(), _numpy_kl(z_mean, z_log_var), rtol=1e-5)
    assert kl.numpy().min() > 0.5


def test_losses_match_hand_computation(mnist_small):
    (x, _), _ = mnist_small
    x = x[:6]
    vae = tiny_vae(seed=3)
    reconstruction, kl = vae.compute_vae_losses(x)
    ref_reconstruction, ref_kl, _ = _reference_losses(vae, x, seed=3, beta=1.0)
    np.testing.assert_allclose(reconstruction.numpy(), ref_reconstruction, rtol=1e-5)
    np.testing.assert_allclose(kl.numpy(), ref_kl, rtol=1e-5, atol=1e-6)
    assert reconstruction.shape == (6,)


def test_evaluate_reports_epoch_means_of_hand_computed_loss(mnist_small):
    (x, _), _ = mnist_small
    x = x[:10]
    vae = tiny_vae(seed=4, beta=0.5)
    vae.compile(optimizer="adam")
    # Two batches of sizes 6 and 4: the logs must average over all 10 images,
    # not report the last batch.
    logs = vae.evaluate(x, batch_size=6, return_dict=True, verbose=0)
    sampler = keras_vae.Sampling(seed=4)
    z_mean, z_log_var = (np.asarray(t) for t in vae.encode_tensor(x))
    eps_batches = [sampler([z_mean[:6], z_log_var[:6]]), sampler([z_mean[6:], z_log_var[6:]])]
    z = np.concatenate([np.asarray(e) for e in eps_batches])
    logits = np.asarray(vae.decoder(z)).astype("float64")
    reconstruction = _numpy_bernoulli_nll(x.astype("float64"), logits)
    kl = _numpy_kl(z_mean.astype("float64"), z_log_var.astype("float64"))
    np.testing.assert_allclose(logs["reconstruction_loss"], reconstruction.mean(), rtol=1e-5)
    np.testing.assert_allclose(logs["kl_loss"], kl.mean(), rtol=1e-5)
    np.testing.assert_allclose(logs["loss"], (reconstruction + 0.5 * kl).mean(), rtol=1e-5)


def test_training_reduces_loss_and_logs_all_keys(mnist_small):
    (x, _), (x_test, _) = mnist_small
    keras.utils.set_random_seed(0)
    vae = tiny_vae(seed=0)
    vae.compile(optimizer=keras.optimizers.Adam(3e-3))
    history = vae.fit(x, epochs=4, batch_size=64, validation_data=(x_test,), verbose=0)
    logs = history.history
    expected = {"loss", "reconstruction_loss", "kl_loss",
                "val_loss", "val_reconstruction_loss", "val_kl_loss"}
    assert set(logs) == expected
    assert all(len(values) == 4 for values in logs.values())
    assert logs["loss"][-1] < 0.75 * logs["loss"][0]
    assert logs["val_loss"][-1] < logs["val_loss"][0]
    result = vae.evaluate(x_test, return_dict=True, verbose=0)
    assert set(result) == {"loss", "reconstruction_loss", "kl_loss"}
    # The loss is the negative ELBO: reconstruction + beta * KL, beta = 1.
    np.testing.assert_allclose(
        result["loss"], result["reconstruction_loss"] + result["kl_loss"], rtol=1e-4)


def test_fit_accepts_datasets_with_labels(mnist_small):
    (x, y), _ = mnist_small
    vae = tiny_vae()
    vae.compile(optimizer="adam")
    data = keras_vae.datasets.make_dataset(x[:128], y[:128], batch_size=32, binarize=True, seed=0)
    history = vae.fit(data, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])


def test_beta_is_a_non_trainable_variable_used_by_the_loss(mnist_small):
    (x, _), _ = mnist_small
    vae = tiny_vae(beta=2.0)
    assert float(vae.beta.numpy()) == 2.0
    assert not vae.beta.trainable
    assert all(w is not vae.beta for w in vae.trainable_weights)
    vae.compile(optimizer="adam")
    logs = vae.evaluate(x[:32], return_dict=True, verbose=0)
    np.testing.assert_allclose(
        logs["loss"], logs["reconstruction_loss"] + 2.0 * logs["kl_loss"], rtol=1e-4)
    vae.beta.assign(0.0)  # as a KL schedule would, without recompiling
    logs = vae.evaluate(x[:32], return_dict=True, verbose=0)
    np.testing.assert_allclose(logs["loss"], logs["reconstruction_loss"], rtol=1e-5)


@pytest.mark.parametrize("beta, error", [(-1.0, ValueError), (float("nan"), ValueError),
                                         ("1", TypeError), (True, TypeError)])
def test_bad_beta(beta, error):
    with pytest.raises(error, match="beta"):
        tiny_vae(beta=beta)


def test_mismatched_networks_are_rejected():
    encoder = networks.build_encoder((28, 28, 1), latent_dim=4, filters=(8,), hidden_units=8)
    with pytest.raises(ValueError, match="decoder must take codes of shape"):
        keras_vae.VAE(encoder, networks.build_decoder((28, 28, 1), latent_dim=3))
    with pytest.raises(ValueError, match="decoder must output the encoder's image shape"):
        keras_vae.VAE(encoder, networks.build_decoder((32, 32, 1), latent_dim=4))
    with pytest.raises(TypeError, match="decoder must be a keras.Model"):
        keras_vae.VAE(encoder, "decoder")
    single = keras.Model(encoder.input, encoder.output[0])
    with pytest.raises(ValueError, match=r"encoder must output \[z_mean, z_log_var\]"):
        keras_vae.VAE(single, networks.build_decoder((28, 28, 1), latent_dim=4))


def test_call_is_deterministic_at_inference_and_public_methods(mnist_small):
    (x, _), _ = mnist_small
    vae = tiny_vae(latent_dim=3)
    a = np.asarray(vae(x[:8], training=False))
    b = np.asarray(vae(x[:8]))
    np.testing.assert_array_equal(a, b)
    assert a.shape == (8, 28, 28, 1) and a.min() >= 0 and a.max() <= 1
    assert not np.allclose(np.asarray(vae(x[:8], training=True)), a)
    np.testing.assert_allclose(vae.reconstruct(x[:8]), a, atol=1e-6)
    z_mean, z_log_var = vae.encode(x[:8], batch_size=3)
    assert z_mean.shape == z_log_var.shape == (8, 3)
    np.testing.assert_allclose(vae.decode(z_mean), a, atol=1e-6)
    s1, s2 = vae.sample(5, seed=1), vae.sample(5, seed=1)
    np.testing.assert_array_equal(s1, s2)
    assert s1.shape == (5, 28, 28, 1)
    assert not np.allclose(vae.sample(5), vae.sample(5))
    with pytest.raises(ValueError, match=r"z must have shape \(N, 3\)"):
        vae.decode(np.zeros((2, 4)))
    with pytest.raises(ValueError, match="n must be a positive int"):
        vae.sample(0)


def test_log_variance_is_bounded_for_extreme_encoder_outputs(mnist_small):
    (x, _), _ = mnist_small
    vae = tiny_vae()
    vae.encoder.get_layer("z_log_var").bias.assign(np.full(4, 1e4))
    reconstruction, kl = vae.compute_vae_losses(x[:4])
    assert np.all(np.isfinite(reconstruction.numpy())) and np.all(np.isfinite(kl.numpy()))
    _, z_log_var = vae.encode(x[:4])
    assert np.all(z_log_var <= LOG_VAR_BOUND)


def test_save_load_roundtrip_in_new_process(mnist_small, tmp_path):
    (x, _), _ = mnist_small
    vae = tiny_vae(seed=2, beta=0.7)
    vae.compile(optimizer=keras.optimizers.Adam(1e-3))
    vae.fit(x[:128], epochs=1, batch_size=32, verbose=0)
    np.save(tmp_path / "train.npy", x[:64])
    run_saving_roundtrip(vae, x[:16], tmp_path, check_code=f"""
        assert type(model).__name__ == "VAE", type(model)
        assert abs(float(model.beta.numpy()) - 0.7) < 1e-7
        assert model.seed == 2 and model.latent_dim == 4
        assert model.optimizer.iterations.numpy() == 4
        history = model.fit(np.load({str(tmp_path / "train.npy")!r}), epochs=1,
                            batch_size=32, verbose=0)
        assert np.isfinite(history.history["loss"][0])
        assert model.optimizer.iterations.numpy() == 6
    """)


def test_encoder_and_decoder_roundtrip_alone(mnist_small, tmp_path):
    (x, _), _ = mnist_small
    vae = tiny_vae()
    encoder_dir = tmp_path / "encoder"
    encoder_dir.mkdir()
    decoder_dir = tmp_path / "decoder"
    decoder_dir.mkdir()

    path = encoder_dir / "encoder.keras"
    vae.encoder.save(path)
    np.save(encoder_dir / "x.npy", x[:8])
    np.save(encoder_dir / "mean.npy", np.asarray(vae.encoder(x[:8])[0]))
    result = run_python(f"""
        import numpy as np, keras, keras_vae
        encoder = keras.models.load_model({str(path)!r})
        got = np.asarray(encoder(np.load({str(encoder_dir / "x.npy")!r}))[0])
        assert np.max(np.abs(got - np.load({str(encoder_dir / "mean.npy")!r}))) <= 1e-6
        print("OK")
    """, cwd=tmp_path)
    assert result.returncode == 0 and "OK" in result.stdout, result.stderr[-2000:]
    z = np.random.default_rng(0).normal(size=(8, 4)).astype("float32")
    run_saving_roundtrip(vae.decoder, z, decoder_dir)


def test_backend_other_than_tensorflow_is_refused(tmp_path):
    result = run_python("import keras_vae", cwd=tmp_path, env={"KERAS_BACKEND": "jax"})
    assert result.returncode != 0
    assert "KERAS_BACKEND='jax'" in result.stderr
    assert "TensorFlow backend" in result.stderr


def test_fit_logs_the_image_weighted_mean_over_an_uneven_last_batch(mnist_small):
    (x, _), _ = mnist_small
    # Five digits, then three blank images, which cost far fewer nats.
    x = np.concatenate([x[:5], np.zeros_like(x[:3])])
    keras.utils.set_random_seed(0)
    vae = tiny_vae(seed=5, beta=0.5)
    vae.decoder.get_layer("logits").bias.assign([-3.0])  # dark pixels are likely
    # A zero learning rate keeps the weights, so both batches see the same model.
    vae.compile(optimizer=keras.optimizers.SGD(learning_rate=0.0))
    logs = vae.fit(x, batch_size=5, epochs=1, shuffle=False, verbose=0).history
    # The same noise as train_step: one draw of 5 codes, then one of 3.
    sampler = keras_vae.Sampling(seed=5)
    z_mean, z_log_var = (np.asarray(t) for t in vae.encode_tensor(x))
    z = np.concatenate([np.asarray(sampler([z_mean[:5], z_log_var[:5]])),
                        np.asarray(sampler([z_mean[5:], z_log_var[5:]]))])
    logits = np.asarray(vae.decoder(z)).astype("float64")
    reconstruction = _numpy_bernoulli_nll(x.astype("float64"), logits)
    kl = _numpy_kl(z_mean.astype("float64"), z_log_var.astype("float64"))
    loss = reconstruction + 0.5 * kl
    np.testing.assert_allclose(logs["loss"][0], loss.mean(), rtol=1e-5)
    np.testing.assert_allclose(logs["reconstruction_loss"][0], reconstruction.mean(), rtol=1e-5)
    np.testing.assert_allclose(logs["kl_loss"][0], kl.mean(), rtol=1e-5)
    # The mean of the two batch means (5 and 3 images) is measurably different.
    batch_means = (loss[:5].mean() + loss[5:].mean()) / 2
    assert abs(batch_means - loss.mean()) > 0.1 * loss.mean()
