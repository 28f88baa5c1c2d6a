"""HierarchicalVAE: its importance weights and loss against NumPy/SciPy, its objective, saving."""

import json
import math

import keras
import numpy as np
import pytest
import scipy.special
import scipy.stats
import tensorflow as tf

import keras_vae
from conftest import run_saving_roundtrip
from keras_vae import evaluation
from keras_vae import models
from keras_vae.models.vae import LOG_VAR_BOUND

D1, D2 = 6, 4  # sizes of z1 and z2


def tiny_hvae(seed=0, **kwargs):
    """A small two-layer VAE whose posteriors are moved away from its priors."""
    keras.utils.set_random_seed(seed)
    model = models.build_hierarchical_vae(
        latent_dim=D2, bottom_latent_dim=D1, filters=(8,), hidden_units=16,
        top_hidden_units=(16,), seed=seed, **kwargs)
    # Non-zero means and unequal variances: every KL term is a few nats.
    model.encoder.get_layer("z_mean").bias.assign(np.linspace(-1.5, 1.5, D1))
    model.encoder.get_layer("z_log_var").bias.assign(np.linspace(-1.0, 0.5, D1))
    model.top_encoder.get_layer("z_mean").bias.assign(np.linspace(1.0, -2.0, D2))
    model.top_decoder.get_layer("z_log_var").bias.assign(np.linspace(-0.5, 0.8, D1))
    return model


@pytest.fixture(scope="module")
def images(mnist_small):
    (x_train, _), _ = mnist_small
    return keras_vae.datasets.binarize(x_train[:256], seed=0)


def _params(network, inputs):
    mean, log_var = (np.asarray(t, "float64") for t in network(np.asarray(inputs, "float32")))
    return mean, LOG_VAR_BOUND * np.tanh(log_var / LOG_VAR_BOUND)


def _normal_log_pdf(z, mean, log_var):
    return scipy.stats.norm.logpdf(z, mean, np.exp(0.5 * log_var)).sum(axis=-1)


def _prior_log_pdf(model, z2):
    """log p(z2) in float64 for the standard normal and the mixture prior."""
    layer = model.prior_layer
    if isinstance(layer, keras_vae.priors.StandardNormal):
        return scipy.stats.norm.logpdf(z2).sum(axis=-1)
    means = np.asarray(layer.means, "float64")
    log_scales = np.asarray(layer.log_scales, "float64")
    log_mix = scipy.special.log_softmax(np.asarray(layer.logits, "float64"))
    components = np.stack([
        scipy.stats.norm.logpdf(z2, means[c], np.exp(log_scales[c])).sum(axis=-1)
        for c in range(len(means))], axis=-1)
    return scipy.special.logsumexp(components + log_mix, axis=-1)


def _numpy_terms(model, x, eps1, eps2):
    """float64 `(log p(x|z1), log p(z1|z2), log p(z2), log q(z1|x), log q(z2|z1))`, `(K, B)`.

    `z1 = mean1 + exp(log_var1 / 2) * eps1` from the encoder's outputs, and
    `z2` likewise from the top encoder's outputs at `z1`; `eps` are `(K, B, d)`.
    """
    k, b = eps1.shape[:2]
    mean1, log_var1 = _params(model.encoder, x)
    z1 = mean1 + np.exp(0.5 * log_var1) * eps1
    flat_z1 = z1.reshape(k * b, D1)
    mean2, log_var2 = _params(model.top_encoder, flat_z1)
    z2 = mean2 + np.exp(0.5 * log_var2) * eps2.reshape(k * b, D2)
    logits = np.asarray(model.decoder(flat_z1.astype("float32")), "float64")
    tiled_x = np.tile(x, (k, 1, 1, 1)).astype("float64")
    log_px = np.sum(tiled_x * -np.logaddexp(0, -logits) + (1 - tiled_x) * -np.logaddexp(0, logits),
                    axis=(1, 2, 3))
    mean_p1, log_var_p1 = _params(model.top_decoder, z2)
    terms = (log_px, _normal_log_pdf(flat_z1, mean_p1, log_var_p1), _prior_log_pdf(model, z2),
             _normal_log_pdf(z1, mean1, log_var1).reshape(-1),
             _normal_log_pdf(z2, mean2, log_var2))
    return tuple(t.reshape(k, b) for t in terms)


@pytest.mark.parametrize("prior", ["normal", "mixture"])
def test_log_weights_match_scipy_on_the_documented_noise(images, prior):
    model = tiny_hvae(prior=prior)
    x = images[:5]
    seed = tf.constant([5, 7], tf.int32)
    weights = model.log_weights(tf.constant(x), 3, seed)
    assert weights.shape == (3, 5) and weights.dtype == tf.float32
    # The noise the docstring promises, drawn independently here.
    s1, s2 = tf.random.experimental.stateless_split(seed, 2)
    eps1 = tf.random.stateless_normal([3, 5, D1], seed=s1).numpy().astype("float64")
    eps2 = tf.random.stateless_normal([3, 5, D2], seed=s2).numpy().astype("float64")
    log_px, log_p1, log_p2, log_q1, log_q2 = _numpy_terms(model, x, eps1, eps2)
    expected = log_px + log_p1 + log_p2 - log_q1 - log_q2
    np.testing.assert_allclose(weights.numpy(), expected, rtol=1e-5, atol=2e-3)
    # Each term matters at this tolerance (a dropped term fails).
    for term in (log_p1 - log_q1, log_p2 - log_q2):
        assert np.abs(term).min() > 0.1
    # The same in a tf.function, and another seed gives other draws.
    compiled = tf.function(lambda x, s: model.log_weights(x, 3, s))
    np.testing.assert_allclose(compiled(tf.constant(x), seed).numpy(), weights.numpy(),
                               rtol=1e-5, atol=1e-3)
    assert not np.allclose(model.log_weights(x, 3, tf.constant([5, 8])).numpy(), weights)


def test_training_losses_match_scipy_on_the_same_noise(images):
    """The loss's single-sample terms, recomputed at the noise its Sampling layers draw."""
    x = images[:6]
    model = tiny_hvae(seed=3, beta=0.5)
    reconstruction, kl_z1, kl_z2 = (t.numpy()[0] for t in model.compute_hvae_losses(x))
    # A fresh Sampling layer with the model's seed draws the model's first noise.
    eps1 = keras_vae.Sampling(seed=3)([tf.zeros([6, D1]), tf.zeros([6, D1])]).numpy()
    eps2 = keras_vae.Sampling(seed=5)([tf.zeros([6, D2]), tf.zeros([6, D2])]).numpy()
    log_px, log_p1, log_p2, log_q1, log_q2 = (
        t[0] for t in _numpy_terms(model, x, eps1[None].astype("float64"),
                                   eps2[None].astype("float64")))
    np.testing.assert_allclose(reconstruction, -log_px, rtol=1e-5)
    np.testing.assert_allclose(kl_z1, log_q1 - log_p1, rtol=1e-4, atol=2e-3)
    np.testing.assert_allclose(kl_z2, log_q2 - log_p2, rtol=1e-4, atol=2e-3)
    assert min(np.abs(kl_z1).min(), np.abs(kl_z2).min()) > 0.1
    # The total applies beta to both KL terms.
    total = tf.reduce_mean(model._loss_per_image(*(tf.constant(t[None], tf.float32)
                                                 for t in (reconstruction, kl_z1, kl_z2))))
    np.testing.assert_allclose(float(total), np.mean(reconstruction + 0.5 * (kl_z1 + kl_z2)),
                               rtol=1e-6)


def test_mean_log_weight_is_minus_the_loss(images):
    """With beta = 1 the loss is the negative ELBO that log_weights estimates: 4000 draws each."""
    model = tiny_hvae(seed=1)
    n = 4000
    x = np.repeat(images[:1], n, axis=0)
    reconstruction, kl = model.compute_vae_losses(x)
    losses = (reconstruction + kl).numpy().astype("float64")
    log_w = model.log_weights(images[:1], n, tf.constant([1, 1])).numpy()[:, 0].astype("float64")
    tolerance = 4 * math.sqrt(losses.var() / n + log_w.var() / n)
    assert abs(losses.mean() + log_w.mean()) < tolerance
    # A loss without the KL of z1 (or of z2) would be far outside.
    assert tolerance < 0.5 * min(abs(model.compute_hvae_losses(x[:200])[1].numpy().mean()),
                                 abs(model.compute_hvae_losses(x[:200])[2].numpy().mean()))


def test_importance_weighted_objective(images):
    """k > 1: -log mean_k w_k per image (NumPy logsumexp), tighter than the ELBO."""
    model = tiny_hvae(seed=2, importance_samples=5, beta=0.5)
    terms = model.compute_hvae_losses(images[:8], num_samples=5)
    assert all(t.shape == (5, 8) for t in terms)
    reconstruction, kl_z1, kl_z2 = (t.numpy().astype("float64") for t in terms)
    log_w = -(reconstruction + 0.5 * (kl_z1 + kl_z2))
    expected = -np.mean(scipy.special.logsumexp(log_w, axis=0) - math.log(5))
    np.testing.assert_allclose(float(tf.reduce_mean(model._loss_per_image(*terms))), expected, rtol=1e-6)
    # The IWAE bound (beta = 1) from the weights is above the ELBO on average
    # over 64 images, and the 5-sample loss lies near it.
    model.beta.assign(1.0)
    log_w = model.log_weights(images[:64], 5, tf.constant([3, 4])).numpy().astype("float64")
    iwae = scipy.special.logsumexp(log_w, axis=0) - math.log(5)
    assert np.all(iwae >= log_w.mean(axis=0))
    assert iwae.mean() - log_w.mean() > 0.5
    loss = float(tf.reduce_mean(model.compute_losses(np.repeat(images[:64], 8, axis=0))["loss"]))
    assert loss == pytest.approx(-iwae.mean(), abs=0.4 * (iwae.mean() - log_w.mean()))


def test_fit_trains_and_reports_every_metric(images):
    model = tiny_hvae(seed=4, importance_samples=2)
    model.compile(optimizer=keras.optimizers.Adam(3e-3))
    history = model.fit(images, epochs=3, batch_size=64, verbose=0,
                        validation_data=(images[:64],)).history
    assert set(history) == {prefix + name for prefix in ("", "val_") for name in (
        "loss", "reconstruction_loss", "kl_loss", "kl_z1_loss", "kl_z2_loss")}
    assert history["loss"][-1] < history["loss"][0] - 20
    np.testing.assert_allclose(history["kl_loss"],
                               np.add(history["kl_z1_loss"], history["kl_z2_loss"]), rtol=1e-5)


def test_evaluation_log_likelihood_takes_its_weights_from_the_model(images, monkeypatch):
    if not hasattr(models.VAE, "log_weights"):
        # Before the iwae branch: evaluation's weights as that branch computes them.
        monkeypatch.setattr(evaluation, "_log_weights", tf.function(
            lambda model, x, num_samples, seed: model.log_weights(x, num_samples, seed),
            reduce_retracing=True))
    model = tiny_hvae(seed=5)
    x = images[:6]
    result = evaluation.log_likelihood(model, x, num_samples=300, max_decoded=512, verbose=0)
    assert np.all(result["iwae"] >= result["elbo"])
    weights = evaluation.importance_log_weights(model, x, num_samples=300, max_decoded=512)
    np.testing.assert_allclose(result["iwae"],
                               scipy.special.logsumexp(weights, axis=1) - math.log(300),
                               rtol=1e-9)
    # The ELBO is minus the model's loss, up to Monte Carlo error.
    reconstruction, kl = model.compute_vae_losses(np.repeat(x, 300, axis=0))
    loss = (reconstruction + kl).numpy().reshape(300, 6).mean(axis=0)
    np.testing.assert_allclose(result["elbo"], -loss, atol=4 * weights.std(axis=1).max()
                               / math.sqrt(150))


def test_save_load_roundtrip_in_new_process(images, tmp_path):
    model = tiny_hvae(seed=6, prior="mixture", likelihood="gaussian", beta=0.7,
                      importance_samples=3)
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    model.fit(images[:64], epochs=1, batch_size=32, verbose=0)
    x = images[:8]
    np.save(tmp_path / "weights.npy", model.log_weights(x, 4, tf.constant([1, 2])).numpy())
    run_saving_roundtrip(model, x, tmp_path, check_code=f"""
        import tensorflow as tf
        assert type(model).__name__ == "HierarchicalVAE", type(model)
        assert (model.latent_dim, model.bottom_latent_dim) == ({D2}, {D1})
        assert model.importance_samples == 3 and model.seed == 6
        assert abs(float(model.beta.numpy()) - 0.7) < 1e-7
        assert type(model.prior_layer).__name__ == "MixtureOfGaussians"
        assert type(model.likelihood_layer).__name__ == "Gaussian"
        weights = model.log_weights(x, 4, tf.constant([1, 2])).numpy()
        np.testing.assert_allclose(weights, np.load({str(tmp_path / "weights.npy")!r}),
                                   rtol=1e-5)
        assert model.optimizer.iterations.numpy() == 2
    """)


def test_vamp_prior_uses_the_mean_path_through_both_encoders(images):
    model = tiny_hvae(seed=7, prior="vamp")
    pseudo = tf.sigmoid(model.prior_layer.pseudo_inputs).numpy()
    mean1, _ = _params(model.encoder, pseudo)
    mean2, log_var2 = _params(model.top_encoder, mean1)
    z2 = np.random.default_rng(0).normal(size=(5, D2))
    components = np.stack([_normal_log_pdf(z2, m, v) for m, v in zip(mean2, log_var2)], -1)
    expected = scipy.special.logsumexp(components, axis=-1) - math.log(len(pseudo))
    np.testing.assert_allclose(model.prior().log_prob(z2.astype("float32")).numpy(), expected,
                               rtol=1e-5)


def test_constructor_and_log_weights_refuse_bad_arguments():
    model = tiny_hvae()
    with pytest.raises(ValueError, match="importance_samples must be a positive int. "
                                         "Received: importance_samples=0"):
        models.HierarchicalVAE(model.encoder, model.decoder, model.top_encoder,
                               model.top_decoder, importance_samples=0)
    with pytest.raises(TypeError, match="top_encoder must be a keras.Model"):
        models.HierarchicalVAE(model.encoder, model.decoder, "mlp", model.top_decoder)
    with pytest.raises(ValueError, match=r"top_encoder must take codes of shape \(batch, 6\)"):
        models.HierarchicalVAE(model.encoder, model.decoder, model.top_decoder,
                               model.top_decoder)
    wrong = models.hierarchical.build_gaussian_mlp(D2, 3, (8,))
    with pytest.raises(ValueError, match="top_decoder must output .* of size 6"):
        models.HierarchicalVAE(model.encoder, model.decoder, model.top_encoder, wrong)
    with pytest.raises(ValueError, match="takes no condition. Received: condition="):
        model.log_weights(np.zeros((1, 28, 28, 1), "float32"), 2, tf.constant([0, 0]),
                          condition=np.eye(10)[:1])
    with pytest.raises(ValueError, match="hidden_units must not be empty"):
        models.hierarchical.build_gaussian_mlp(4, 2, ())


@pytest.mark.slow
def test_cli_trains_and_evaluates_an_hvae(tmp_path, monkeypatch, capsys):
    from keras_vae import cli  # the command line is imported on demand

    if not hasattr(models.VAE, "log_weights"):
        # Before the iwae branch: evaluation's weights as that branch computes them.
        monkeypatch.setattr(evaluation, "_log_weights", tf.function(
            lambda model, x, num_samples, seed: model.log_weights(x, num_samples, seed),
            reduce_retracing=True))
    run = tmp_path / "run"
    assert cli.main(["train", "--model", "hvae", "--prior", "mixture", "--limit", "128",
                     "--epochs", "1", "--latent-dim", "3", "--batch-size", "64",
                     "--plot-every", "0", "--verbose", "0", "--output", str(run)]) == 0
    model = keras_vae.saving.load_model(run / "model.keras")
    assert type(model) is models.HierarchicalVAE
    assert (model.latent_dim, model.bottom_latent_dim) == (3, 64)
    assert type(model.prior_layer) is keras_vae.priors.MixtureOfGaussians
    assert json.loads((run / "run.json").read_text())["settings"]["model"] == "hvae"
    capsys.readouterr()
    assert cli.main(["evaluate", str(run / "model.keras"), "--limit", "16", "--num-samples",
                     "4", "--fid", "none", "--verbose", "0"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["nll"] <= report["neg_elbo"] and np.isfinite(report["nll"])
    assert report["bits_per_dim"] == pytest.approx(report["nll"] / (784 * math.log(2)))


@pytest.mark.skipif(not hasattr(models.VAE, "log_weights"),
                    reason="anomaly scores take their weights from model.log_weights once the "
                           "iwae branch is merged")
def test_anomaly_likelihood_scores_of_an_hvae(images):
    model = tiny_hvae(seed=8)
    x = images[:6]
    scores = keras_vae.anomaly.anomaly_scores(model, x, "nll", num_samples=50, seed=1)
    bounds = evaluation.log_likelihood(model, x, num_samples=50, seed=1, verbose=0)
    np.testing.assert_allclose(scores, -bounds["iwae"], rtol=1e-12)
    elbo = keras_vae.anomaly.anomaly_scores(model, x, "neg_elbo", num_samples=50, seed=1)
    assert np.all(elbo >= scores)
