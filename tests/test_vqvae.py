"""VectorQuantizer against NumPy references, and the VQVAE with its PixelCNN prior."""

import math

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_vae
from conftest import run_saving_roundtrip
from keras_vae import models
from keras_vae.layers import VectorQuantizer
from keras_vae.models import base
from keras_vae.models.vqvae import build_pixelcnn_prior

K, D = 6, 3


def quantizer_with(codebook, **kwargs):
    layer = VectorQuantizer(codebook.shape[0], codebook.shape[1], seed=0, **kwargs)
    layer.build((None, codebook.shape[1]))
    layer.embeddings.assign(codebook)
    return layer


def numpy_nearest(flat, codebook):
    distances = ((flat[:, None, :] - codebook[None, :, :]) ** 2).sum(-1)
    return distances.argmin(axis=1)


@pytest.fixture
def case():
    rng = np.random.default_rng(0)
    codebook = rng.standard_normal((K, D)).astype("float32")
    inputs = rng.standard_normal((4, 3, 2, D)).astype("float32")
    return codebook, inputs


# ------------------------------------------------------------ the layer's maths


def test_nearest_code_and_lookup_match_numpy(case):
    codebook, inputs = case
    layer = quantizer_with(codebook)
    expected = numpy_nearest(inputs.reshape(-1, D), codebook).reshape(4, 3, 2)
    got = layer.indices(tf.constant(inputs)).numpy()
    assert got.dtype == np.int32 and got.shape == (4, 3, 2)
    np.testing.assert_array_equal(got, expected)
    np.testing.assert_allclose(layer(tf.constant(inputs)).numpy(), codebook[expected],
                               atol=1e-6)
    np.testing.assert_array_equal(layer.lookup(got).numpy(), codebook[expected])


def test_the_straight_through_gradient_is_the_identity(case):
    codebook, inputs = case
    layer = quantizer_with(codebook)
    x = tf.constant(inputs)
    weights = tf.constant(np.random.default_rng(1).standard_normal(inputs.shape), "float32")
    with tf.GradientTape() as tape:
        tape.watch(x)
        quantized = layer.compute_quantization(x)["quantized"]
        objective = tf.reduce_sum(quantized * weights)
    np.testing.assert_allclose(tape.gradient(objective, x).numpy(), weights.numpy(), atol=1e-6)


def test_codebook_and_commitment_losses_match_numpy_and_route_their_gradients(case):
    codebook, inputs = case
    beta = 0.7
    layer = quantizer_with(codebook, beta=beta)
    chosen = codebook[numpy_nearest(inputs.reshape(-1, D), codebook)].reshape(inputs.shape)
    per_image = ((inputs - chosen) ** 2).reshape(4, -1).sum(axis=1)
    x = tf.constant(inputs)
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(x)
        result = layer.compute_quantization(x)
        codebook_loss, commitment_loss = result["codebook_loss"], result["commitment_loss"]
    np.testing.assert_allclose(codebook_loss.numpy(), per_image, rtol=1e-5)
    np.testing.assert_allclose(commitment_loss.numpy(), per_image, rtol=1e-5)
    # The codebook loss moves the codebook only, the commitment loss the encoder only.
    assert tape.gradient(codebook_loss, x) is None
    assert tape.gradient(commitment_loss, layer.embeddings) is None
    np.testing.assert_allclose(tape.gradient(commitment_loss, x).numpy(),
                               2 * (inputs - chosen), rtol=1e-5, atol=1e-6)
    # Calling the layer adds mean(codebook + beta * commitment); a wrong beta would not match.
    layer(x)
    expected = np.mean(per_image + beta * per_image)
    assert float(layer.losses[-1]) == pytest.approx(expected, rel=1e-5)
    assert abs(np.mean(per_image + 0.25 * per_image) - expected) > 1e-3 * expected
    ema = quantizer_with(codebook, beta=beta, ema_decay=0.9)
    ema(x)  # the EMA codebook is not trained by its loss: beta * commitment alone
    assert float(ema.losses[-1]) == pytest.approx(np.mean(beta * per_image), rel=1e-5)


def numpy_ema(counts, sums, flat, indices, decay, epsilon, k):
    """Razavi et al.'s update (VQ-VAE-2, appendix), with Laplace-smoothed counts."""
    one_hot = np.eye(k)[indices]
    counts = decay * counts + (1 - decay) * one_hot.sum(0)
    sums = decay * sums + (1 - decay) * one_hot.T @ flat
    total = counts.sum()
    smoothed = (counts + epsilon) / (total + k * epsilon) * total
    return counts, sums, sums / smoothed[:, None]


def test_the_ema_codebook_update_matches_numpy(case):
    codebook, inputs = case
    decay, epsilon = 0.9, 1e-3
    layer = quantizer_with(codebook, ema_decay=decay, epsilon=epsilon)
    assert not layer.embeddings.trainable
    flat = inputs.reshape(-1, D).astype("float64")
    # The first update starts the averages from the codebook, with a count of 1 per code.
    indices = numpy_nearest(flat, codebook)
    counts, sums, expected = numpy_ema(np.ones(K), codebook.astype("float64"), flat, indices,
                                       decay, epsilon, K)
    layer(tf.constant(inputs), training=True)
    np.testing.assert_allclose(layer.embeddings.numpy(), expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(layer.ema_counts.numpy(), counts, rtol=1e-6)
    # A later update continues from the stored averages.
    second = inputs[::-1] * 0.5
    flat = second.reshape(-1, D).astype("float64")
    indices = numpy_nearest(flat, expected)
    np.testing.assert_array_equal(layer.indices(tf.constant(second)).numpy().reshape(-1),
                                  indices)
    counts, sums, expected = numpy_ema(counts, sums, flat, indices, decay, epsilon, K)
    layer(tf.constant(second), training=True)
    np.testing.assert_allclose(layer.embeddings.numpy(), expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(layer.ema_sums.numpy(), sums, rtol=1e-5, atol=1e-6)
    # Inference leaves the codebook alone.
    layer(tf.constant(inputs), training=False)
    np.testing.assert_allclose(layer.embeddings.numpy(), expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("ema_decay", [None, 0.99])
def test_codes_unused_for_restart_after_steps_are_restarted_from_the_batch(ema_decay):
    codebook = np.stack([np.zeros(D), np.full(D, 10.0), np.full(D, -10.0)]).astype("float32")
    layer = quantizer_with(codebook, ema_decay=ema_decay, restart_after=2)
    inputs = np.random.default_rng(0).normal(0.0, 0.1, (5, D)).astype("float32")
    layer(tf.constant(inputs), training=True)  # every position picks code 0
    after_one = layer.embeddings.numpy()
    np.testing.assert_allclose(after_one[1:], codebook[1:], atol=1e-5)  # not yet dead
    np.testing.assert_array_equal(layer.unused_steps.numpy(), [0, 1, 1])
    layer(tf.constant(inputs), training=True)
    restarted = layer.embeddings.numpy()[1:]
    for vector in restarted:  # each restarted code is one of the batch's encoder outputs
        assert np.min(np.abs(inputs - vector).max(axis=1)) < 1e-6
    np.testing.assert_array_equal(layer.unused_steps.numpy(), [0, 0, 0])
    # The restarted codes now win positions of the batch.
    assert len(np.unique(layer.indices(tf.constant(inputs)).numpy())) > 1


def test_perplexity_and_usage_of_a_collapsed_and_a_uniform_assignment():
    layer = VectorQuantizer(4, 2)
    perplexity, usage = layer.code_statistics(tf.zeros((8, 3), "int32"))
    assert float(perplexity) == pytest.approx(1.0) and float(usage) == pytest.approx(0.25)
    perplexity, usage = layer.code_statistics(tf.constant(np.arange(12) % 4, "int32"))
    assert float(perplexity) == pytest.approx(4.0, rel=1e-6) and float(usage) == 1.0
    perplexity, _ = layer.code_statistics(tf.constant([0, 0, 0, 1], "int32"))
    p = np.array([0.75, 0.25])
    assert float(perplexity) == pytest.approx(np.exp(-(p * np.log(p)).sum()), rel=1e-6)


@pytest.mark.parametrize("kwargs, message", [
    ({"num_embeddings": 1, "embedding_dim": 2}, "num_embeddings must be an int >= 2. "
                                                 "Received: num_embeddings=1"),
    ({"num_embeddings": 4, "embedding_dim": 0}, "embedding_dim must be an int >= 1"),
    ({"num_embeddings": 4, "embedding_dim": 2, "beta": -1.0}, "Received: beta=-1.0"),
    ({"num_embeddings": 4, "embedding_dim": 2, "ema_decay": 1.0}, "Received: ema_decay=1.0"),
    ({"num_embeddings": 4, "embedding_dim": 2, "restart_after": 0},
     "Received: restart_after=0"),
    ({"num_embeddings": 4, "embedding_dim": 2, "epsilon": 0}, "Received: epsilon=0"),
])
def test_bad_arguments_are_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        VectorQuantizer(**kwargs)


def test_the_layer_refuses_the_wrong_vector_size_and_its_config_round_trips():
    layer = VectorQuantizer(5, 3, beta=0.5, ema_decay=0.95, epsilon=1e-4, restart_after=7,
                            seed=3, name="vq")
    with pytest.raises(ValueError, match="embedding_dim=3. Received: input shape"):
        layer(tf.zeros((2, 4)))
    copy = VectorQuantizer.from_config(layer.get_config())
    for key in ("num_embeddings", "embedding_dim", "beta", "ema_decay", "epsilon",
                "restart_after", "seed"):
        assert getattr(copy, key) == getattr(layer, key), key
    # The same seed gives the same codebook.
    first, second = VectorQuantizer(5, 3, seed=3), VectorQuantizer(5, 3, seed=3)
    first.build((None, 3))
    second.build((None, 3))
    np.testing.assert_array_equal(first.embeddings.numpy(), second.embeddings.numpy())


def test_a_users_own_model_with_the_layer_reloads_in_a_fresh_process(tmp_path):
    keras.utils.set_random_seed(0)
    inputs = keras.Input((8, 8, 1))
    h = keras.layers.Conv2D(3, 2, strides=2, name="encode")(inputs)
    q = VectorQuantizer(6, 3, ema_decay=0.9, restart_after=5, seed=1, name="vq")(h)
    outputs = keras.layers.Conv2DTranspose(1, 2, strides=2, activation="sigmoid")(q)
    model = keras.Model(inputs, outputs)
    model.compile(optimizer="adam", loss="binary_crossentropy")
    x = np.random.default_rng(0).uniform(size=(16, 8, 8, 1)).astype("float32")
    model.fit(x, x, epochs=1, batch_size=8, verbose=0)  # trains with the VQ terms added
    assert len(model.losses) == 1
    codebook = model.get_layer("vq").embeddings.numpy()
    np.save(tmp_path / "codebook.npy", codebook)
    run_saving_roundtrip(model, x, tmp_path, check_code=f"""
        layer = model.get_layer("vq")
        assert type(layer).__name__ == "VectorQuantizer" and layer.ema_decay == 0.9
        assert layer.restart_after == 5 and layer.seed == 1
        np.testing.assert_array_equal(layer.embeddings.numpy(),
                                      np.load({str(tmp_path / "codebook.npy")!r}))
        codes = layer.indices(model.get_layer("encode")(x)).numpy()
        assert codes.shape == (16, 4, 4) and codes.dtype == np.int32
    """)


# ------------------------------------------------------------ the model


def tiny_vqvae(**kwargs):
    keras.utils.set_random_seed(0)
    options = {"num_embeddings": 8, "embedding_dim": 4, "filters": (8, 8),
               "prior_filters": 16, "prior_blocks": 1, "seed": 0}
    return models.build_vqvae(**{**options, **kwargs})


@pytest.fixture(scope="module")
def images(mnist_small):
    (x_train, _), (x_test, _) = mnist_small
    return (x_train[:64] > 0.5).astype("float32"), (x_test[:16] > 0.5).astype("float32")


@pytest.mark.parametrize("ema", [True, False])
def test_fit_reports_every_term_and_the_loss_adds_them(images, ema):
    x, x_test = images
    model = tiny_vqvae(ema=ema, beta=0.5)
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    history = model.fit(x, batch_size=32, epochs=1, verbose=0, validation_data=(x_test,))
    terms = {"loss", "reconstruction_loss", "codebook_loss", "commitment_loss",
             "perplexity", "codebook_usage"}
    assert set(history.history) == terms | {f"val_{k}" for k in terms}
    losses = model.compute_losses(tf.constant(x_test))
    expected = losses["reconstruction_loss"] + 0.5 * losses["commitment_loss"]
    if not ema:
        expected += losses["codebook_loss"]
    np.testing.assert_allclose(losses["loss"], expected, rtol=1e-5)
    # The reconstruction term is the Bernoulli NLL summed over pixels (a NumPy reference).
    codes, _ = model.encode(x_test)
    logits = model.decoder(model.quantizer.lookup(codes)).numpy().reshape(len(x_test), -1)
    t = x_test.reshape(len(x_test), -1)
    nll = np.sum(np.maximum(logits, 0) - logits * t + np.log1p(np.exp(-np.abs(logits))), 1)
    np.testing.assert_allclose(losses["reconstruction_loss"], nll, rtol=1e-4)
    assert model.capabilities == {base.ENCODER, base.LOSSES, base.CODEBOOK}


def test_the_batch_statistics_on_a_collapsed_codebook(images):
    _, x_test = images
    model = tiny_vqvae(ema=False)
    model.quantizer.embeddings.assign(np.zeros((8, 4), "float32"))  # every code the same
    losses = model.compute_losses(tf.constant(x_test))
    np.testing.assert_allclose(losses["perplexity"], np.ones(16), rtol=1e-6)
    np.testing.assert_allclose(losses["codebook_usage"], np.full(16, 1 / 8), rtol=1e-6)


def test_codes_are_index_maps_and_reconstruct_round_trips(images):
    _, x_test = images
    model = tiny_vqvae()
    indices, log_variances = model.encode(x_test)
    assert log_variances is None
    assert indices.shape == (16, 7, 7) and indices.dtype == np.int32
    assert model.latent_dim == 49 and model.code_shape == (7, 7)
    np.testing.assert_allclose(model.reconstruct(x_test), model.decode(indices), atol=1e-6)
    np.testing.assert_allclose(model.decode(indices.reshape(16, 49)), model.decode(indices),
                               atol=1e-6)
    with pytest.raises(ValueError, match="takes no labels|refuses|unconditional"):
        model.encode(x_test[:2], labels=[1, 2])
    with pytest.raises(ValueError, match=r"z must be code maps of shape \(N, 7, 7\)"):
        model.decode(np.zeros((2, 3)))
    with pytest.raises(ValueError, match=r"z must hold code indices, ints in \[0, 8\)"):
        model.decode(np.full((1, 7, 7), 8))
    with pytest.raises(ValueError, match="ints in"):
        model.decode(np.full((1, 49), 0.5))


def test_the_prior_fits_samples_valid_maps_reproducibly_and_scores_in_bits(images, tmp_path):
    x, x_test = images
    model = tiny_vqvae()
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    model.fit(x, batch_size=32, epochs=1, verbose=0)
    assert not model.prior_fitted
    uniform = model.draw_codes(3, seed=1)  # before fit_prior: uniform codes
    assert uniform.shape == (3, 7, 7) and uniform.min() >= 0 and uniform.max() < 8
    weights_before = [w.numpy() for w in model.quantizer.weights]
    history = model.fit_prior(x, epochs=3, batch_size=16, learning_rate=3e-3, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]
    assert model.prior_fitted and not model.prior.trainable
    for before, after in zip(weights_before, model.quantizer.weights):
        np.testing.assert_array_equal(before, after.numpy())  # fit_prior trains the prior only
    codes = model.draw_codes(4, seed=5)
    assert codes.shape == (4, 7, 7) and codes.dtype == np.int32
    assert codes.min() >= 0 and codes.max() < 8
    np.testing.assert_array_equal(codes, model.draw_codes(4, seed=5))
    assert not np.array_equal(codes, model.draw_codes(4, seed=6))
    samples = model.sample(4, seed=5)
    np.testing.assert_allclose(samples, model.decode(codes), atol=1e-6)
    bits = model.prior_nll_bits(x_test)
    assert bits.shape == (16,) and np.all(np.isfinite(bits))
    assert bits.mean() < 49 * math.log2(8)
    # The prior's NLL is the cross-entropy of its logits, in bits (a NumPy reference).
    test_codes, _ = model.encode(x_test[:2])
    logits = model.prior(test_codes).numpy().astype("float64")
    log_p = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    picked = np.take_along_axis(log_p, test_codes[..., None], -1)[..., 0]
    np.testing.assert_allclose(bits[:2], -picked.sum(axis=(1, 2)) / np.log(2), rtol=1e-4)
    # The prior is part of the model: it reloads, fitted, in a fresh process.
    np.save(tmp_path / "codes.npy", codes)
    run_saving_roundtrip(model, x_test, tmp_path, check_code=f"""
        assert model.prior_fitted
        np.testing.assert_array_equal(model.draw_codes(4, seed=5),
                                      np.load({str(tmp_path / "codes.npy")!r}))
    """)


def test_the_pixelcnn_prior_is_autoregressive():
    prior = build_pixelcnn_prior((4, 5), 6, filters=8, residual_blocks=2)
    rng = np.random.default_rng(0)
    codes = rng.integers(0, 6, (1, 4, 5)).astype("int32")
    logits = prior(codes).numpy()
    for position in (0, 7, 19):
        i, j = divmod(position, 5)
        changed = codes.copy()
        changed[0, i, j] = (changed[0, i, j] + 1) % 6
        other = prior(changed).numpy().reshape(20, 6)
        # Positions up to and including the changed one see nothing of it.
        np.testing.assert_allclose(other[:position + 1], logits.reshape(20, 6)[:position + 1],
                                   atol=1e-6)
    changed = codes.copy()
    changed[0, 0, 0] = (changed[0, 0, 0] + 1) % 6
    assert not np.allclose(prior(changed).numpy().reshape(20, 6)[1], logits.reshape(20, 6)[1])


def test_the_builder_names_bad_arguments():
    with pytest.raises(ValueError, match=r"filters must be a non-empty sequence of positive "
                                         r"ints. Received: filters=\(\)"):
        models.build_vqvae(filters=())
    with pytest.raises(ValueError, match="num_embeddings must be an int >= 2"):
        models.build_vqvae(num_embeddings=1)
    assert keras_vae.VectorQuantizer is VectorQuantizer


def test_code_statistics_count_every_position_of_every_image(images):
    _, x_test = images
    model = tiny_vqvae(num_embeddings=16)
    stats = model.code_statistics(x_test, batch_size=5)  # batches of 5, 5, 5 and 1
    # NumPy reference: the nearest codebook vector of each encoder output.
    z_e = model.encoder(x_test).numpy().reshape(-1, 4)
    codes = numpy_nearest(z_e, model.quantizer.embeddings.numpy())
    counts = np.bincount(codes, minlength=16)
    np.testing.assert_array_equal(stats["counts"], counts)
    p = counts[counts > 0] / counts.sum()
    assert stats["perplexity"] == pytest.approx(np.exp(-(p * np.log(p)).sum()), rel=1e-9)
    assert stats["codes_used"] == np.count_nonzero(counts)
    assert stats["fraction_used"] == pytest.approx(np.count_nonzero(counts) / 16)
    assert 1 < stats["perplexity"] < stats["codes_used"] < 16  # neither collapsed nor uniform
    assert stats["positions"] == 49 and stats["num_embeddings"] == 16
    assert stats["code_bits"] == pytest.approx(49 * 4.0)
    # One code for every position: perplexity 1, one code of 16 used.
    model.quantizer.embeddings.assign(np.zeros((16, 4), "float32"))
    collapsed = model.code_statistics(x_test)
    assert collapsed["perplexity"] == pytest.approx(1.0) and collapsed["codes_used"] == 1
    assert collapsed["fraction_used"] == pytest.approx(1 / 16)
    with pytest.raises(ValueError, match="x is empty"):
        model.code_statistics(x_test[:0])


def test_a_model_without_a_codebook_says_so():
    vae = keras_vae.build_vae(latent_dim=2, filters=(4,), hidden_units=8)
    assert not vae.has(base.CODEBOOK)
    for method in (vae.code_statistics, vae.prior_nll_bits):
        with pytest.raises(base.MissingCapabilityError,
                           match="needs a model with a codebook of discrete codes "
                                 r"\(code_statistics\): VAE has none"):
            method(np.zeros((1, 28, 28, 1), "float32"))
