"""The importance weights on the model (`log_weights`) and the IWAE training objective.

References are float64 NumPy/SciPy: Bernoulli log-probabilities from the
decoder's logits, Gaussian log-densities from `scipy.stats.norm`, the
log-mean-exp from `scipy.special.logsumexp`. The networks themselves are
run by the model; what is checked is the arithmetic around them.
"""

import json
import math

import keras
import numpy as np
import pytest
import scipy.special
import scipy.stats
import tensorflow as tf

import keras_vae
from conftest import ROOT
from conftest import run_saving_roundtrip
from keras_vae import evaluation
from keras_vae import precision


@pytest.fixture(autouse=True)
def _seeded_weights():
    keras.utils.set_random_seed(0)


@pytest.fixture(scope="module")
def binary_images():
    (x, y), _ = keras_vae.datasets.load("mnist")
    return keras_vae.datasets.binarize(x[:256], seed=0), y[:256]


def _tiny(importance_samples=1, beta=1.0, seed=3, conditional=False):
    options = dict(latent_dim=3, filters=(8, 16), hidden_units=32, beta=beta, seed=seed,
                   importance_samples=importance_samples)
    if conditional:
        return keras_vae.models.build_conditional_vae(num_classes=10, **options)
    return keras_vae.build_vae(**options)


def _twin(model, **overrides):
    """A model built as `model` was (same seed, so the same noise), with its weights."""
    twin = _tiny(**overrides)
    twin.set_weights(model.get_weights())
    return twin


def _numpy_log_weights(model, x, z, beta=1.0, labels=None):
    """Float64 `(log p(x|z), log p(z), log q(z|x))` for codes `z` `(S, B, D)`."""
    z = np.asarray(z, "float64")
    samples, batch, _ = z.shape
    mean, log_var = (a.astype("float64") for a in model.encode(x, labels))
    log_q = scipy.stats.norm.logpdf(z, mean, np.exp(0.5 * log_var)).sum(-1)
    log_p_z = scipy.stats.norm.logpdf(z).sum(-1)
    flat_z = z.reshape(samples * batch, -1).astype("float32")
    if labels is None:
        logits = model.decoder(flat_z)
    else:
        one_hot = np.tile(np.eye(10, dtype="float32")[labels], (samples, 1))
        logits = model.decoder([flat_z, one_hot])
    logits = np.asarray(logits, "float64").reshape(samples, batch, -1)
    pixels = np.asarray(x, "float64").reshape(1, batch, -1)
    log_px_z = (pixels * logits - np.logaddexp(0.0, logits)).sum(-1)
    return log_px_z, log_p_z, log_q


# ---------------------------------------------------------- log_weights


@pytest.mark.parametrize("conditional", [False, True])
def test_log_weights_match_numpy_on_the_same_codes(binary_images, conditional):
    x, y = binary_images[0][:6], binary_images[1][:6]
    model = _tiny(conditional=conditional)
    labels = y if conditional else None
    condition = tf.one_hot(y, 10) if conditional else None
    seed = tf.constant([4, 9], "int32")
    log_w = model.log_weights(tf.constant(x), 5, seed, condition=condition)
    assert log_w.dtype == tf.float32 and log_w.shape == (5, 6)
    # The codes the stateless seed gives, drawn again from the same posterior.
    z = model.posterior(tf.constant(x), condition=condition).sample(5, seed=seed)
    log_px_z, log_p_z, log_q = _numpy_log_weights(model, x, z, labels=labels)
    np.testing.assert_allclose(log_w, log_px_z + log_p_z - log_q, rtol=1e-5, atol=1e-3)
    # The same seed gives the same weights; another seed, other weights.
    np.testing.assert_array_equal(log_w, model.log_weights(x, 5, seed, condition=condition))
    other = model.log_weights(x, 5, tf.constant([4, 10], "int32"), condition=condition)
    assert np.abs(np.asarray(other) - np.asarray(log_w)).max() > 0.1


def test_log_weights_run_inside_a_tf_function(binary_images):
    model = _tiny()
    x = tf.constant(binary_images[0][:4])
    seed = tf.constant([1, 2], "int32")
    graph = tf.function(lambda images, s: model.log_weights(images, 3, s))
    np.testing.assert_allclose(graph(x, seed), model.log_weights(x, 3, seed), rtol=1e-6)


class _WeightsOnly:
    """A model that is nothing but `log_weights` (as a two-layer model would be to evaluation)."""

    def log_weights(self, x, num_samples, seed):
        del seed
        samples = tf.cast(tf.range(num_samples), "float32")[:, None]
        return -samples - x[None, :, 0]


def test_evaluation_takes_the_weights_from_the_model():
    x = np.array([[0.0], [1.0], [2.0]], "float32")  # log w = -(sample + image) below
    result = evaluation.log_likelihood(_WeightsOnly(), x, num_samples=7, verbose=0)
    log_w = -np.arange(7.0)[:, None] - np.arange(3.0)[None, :]
    np.testing.assert_allclose(result["iwae"],
                               scipy.special.logsumexp(log_w, axis=0) - math.log(7),
                               rtol=1e-6)
    np.testing.assert_allclose(result["elbo"], log_w.mean(axis=0), rtol=1e-6)


def test_anomaly_scores_come_from_log_weights(binary_images):
    model = _tiny()
    x = binary_images[0][:8]
    scores = keras_vae.anomaly.anomaly_scores(model, x, score="nll", num_samples=6, seed=2)
    weights = evaluation.importance_log_weights(model, x, num_samples=6, seed=2)
    np.testing.assert_allclose(
        scores, -(scipy.special.logsumexp(weights, axis=1) - math.log(6)), rtol=1e-6)


# ---------------------------------------------------------- the objective


def test_importance_samples_is_validated_and_kept_in_the_config():
    with pytest.raises(ValueError, match="Received: importance_samples=0"):
        _tiny(importance_samples=0)
    with pytest.raises(TypeError, match="Received: importance_samples=2.0"):
        _tiny(importance_samples=2.0)
    assert _tiny(importance_samples=4).get_config()["importance_samples"] == 4
    conditional = _tiny(importance_samples=3, conditional=True)
    rebuilt = type(conditional).from_config(conditional.get_config())
    assert rebuilt.importance_samples == 3


@pytest.mark.parametrize("beta", [1.0, 0.3])
def test_one_sample_is_exactly_the_elbo_path(binary_images, beta):
    x = binary_images[0][:32]
    model = _tiny(beta=beta)
    reference = _twin(model, beta=beta)
    logs = model.test_step(x)
    reconstruction, kl = reference.compute_vae_losses(x)
    elbo_loss = float(np.mean(reconstruction + beta * kl))
    assert float(logs["loss"]) == pytest.approx(elbo_loss, rel=1e-6)
    # The analytic KL, not the one-code estimate log q - log p, enters the loss.
    assert float(logs["kl_loss"]) == pytest.approx(float(np.mean(kl)), rel=1e-6)


@pytest.mark.parametrize("beta", [1.0, 0.3])
def test_training_loss_is_the_iwae_bound_of_numpy(binary_images, beta):
    k, x = 4, binary_images[0][:16]
    model = _tiny(importance_samples=k, beta=beta)
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    noise = _twin(model, importance_samples=k, beta=beta)  # same seed: the same noise
    logs = model.train_step(x)  # the loss is that of the weights before the update
    mean, log_var = noise.encode(x)
    z = noise.sampler([np.tile(mean, (k, 1)), np.tile(log_var, (k, 1))])
    z = np.asarray(z).reshape(k, len(x), -1)  # code s of image b at s * batch + b
    log_px_z, log_p_z, log_q = _numpy_log_weights(noise, x, z)
    log_w = log_px_z + beta * (log_p_z - log_q)
    bound = scipy.special.logsumexp(log_w, axis=0) - math.log(k)
    assert float(logs["loss"]) == pytest.approx(-bound.mean(), rel=1e-5)
    # The metrics: the ELBO's terms at the first code, with the analytic KL.
    kl = 0.5 * (np.square(mean) + np.exp(log_var) - 1.0 - log_var).sum(-1)
    assert float(logs["reconstruction_loss"]) == pytest.approx(-log_px_z[0].mean(), rel=1e-5)
    assert float(logs["kl_loss"]) == pytest.approx(kl.mean(), rel=1e-4)


def test_the_iwae_bound_is_above_the_elbo(binary_images):
    x = binary_images[0]
    elbo_model = _tiny()
    elbo_model.compile(optimizer=keras.optimizers.Adam(3e-3))
    elbo_model.fit(x, epochs=2, batch_size=64, verbose=0)
    iwae_model = _twin(elbo_model, importance_samples=16)
    elbo_loss = float(elbo_model.test_step(x)["loss"])
    iwae_loss = float(iwae_model.test_step(x)["loss"])
    # Jensen: E[IWAE_16] >= ELBO; the gap on this model is several nats.
    assert elbo_loss - iwae_loss > 1.0


def test_an_iwae_model_fits_and_reloads(binary_images, tmp_path, monkeypatch):
    monkeypatch.setenv("PYTHONPATH", str(ROOT))  # this checkout's keras_vae in the new process
    x = binary_images[0][:128]
    model = _tiny(importance_samples=3)
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    history = model.fit(x, epochs=2, batch_size=64, validation_data=(x[:64],), verbose=0)
    assert set(history.history) >= {"loss", "reconstruction_loss", "kl_loss", "val_loss"}
    assert history.history["loss"][1] < history.history["loss"][0]
    run_saving_roundtrip(model, x[:4], tmp_path, check_code="""
        assert model.importance_samples == 3, model.importance_samples
    """)


def test_a_mixed_precision_iwae_loss_is_float32(binary_images):
    with precision.policy_scope("mixed_bfloat16"):
        model = _tiny(importance_samples=3)
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    per_image, reconstruction, kl = model.compute_iwae_losses(binary_images[0][:8], True)
    assert per_image.dtype == reconstruction.dtype == kl.dtype == tf.float32
    logs = model.train_step(binary_images[0][:8])
    assert logs["loss"].dtype == tf.float32 and np.isfinite(float(logs["loss"]))


def test_distributed_fit_trains_the_iwae_objective_as_fit_does(binary_images):
    dataset = tf.data.Dataset.from_tensor_slices(binary_images[0][:128]).batch(64)
    histories = []
    for loop in ("fit", "distributed_fit"):
        keras.utils.set_random_seed(0)
        model = _tiny(importance_samples=3)
        model.compile(optimizer=keras.optimizers.Adam(1e-3))
        if loop == "fit":
            histories.append(model.fit(dataset.repeat(), epochs=1, steps_per_epoch=2,
                                       verbose=0).history)
        else:
            histories.append(keras_vae.distribute.distributed_fit(
                model, dataset.repeat(), epochs=1, steps_per_epoch=2, verbose=0))
    for key in ("loss", "reconstruction_loss", "kl_loss"):
        np.testing.assert_allclose(histories[1][key], histories[0][key], rtol=1e-5,
                                   err_msg=key)


# ---------------------------------------------------------------- CLI


def test_cli_trains_iwae_and_validates_on_held_out_training_images(tmp_path, monkeypatch):
    from keras_vae import cli
    from keras_vae.models.base import ImageModel

    seen = {}
    original_fit = ImageModel.fit

    def recording_fit(self, x=None, *args, validation_data=None, **kwargs):
        seen["validation"], seen["steps"] = validation_data, kwargs.get("steps_per_epoch")
        return original_fit(self, x, *args, validation_data=validation_data, **kwargs)

    monkeypatch.setattr(ImageModel, "fit", recording_fit)
    run = tmp_path / "run"
    status = cli.main(["train", "--limit", "256", "--epochs", "1", "--latent-dim", "3",
                       "--batch-size", "64", "--verbose", "0", "--plot-every", "0",
                       "--importance-samples", "2", "--validation-images", "64",
                       "--output", str(run)])
    assert status == 0
    (x_train, _), _ = keras_vae.datasets.load("mnist")
    # The last 64 of the 256 training images, binarized once with the seed; 192 train.
    np.testing.assert_array_equal(seen["validation"][0],
                                  keras_vae.datasets.binarize(x_train[192:256], seed=0))
    assert seen["steps"] == 3
    record = json.loads((run / "run.json").read_text())
    assert record["settings"]["importance_samples"] == 2
    assert record["settings"]["validation_images"] == 64
    assert record["train_images"] == 192
    assert record["validation"] == {"images": 64, "source": "the last 64 training images"}
    assert "val_loss" in json.loads((run / "history.json").read_text())
    assert keras.models.load_model(run / "model.keras").importance_samples == 2


def test_cli_refuses_a_validation_set_that_leaves_no_training_images(tmp_path, capsys):
    from keras_vae import cli

    status = cli.main(["train", "--limit", "100", "--epochs", "1", "--verbose", "0",
                       "--validation-images", "100", "--output", str(tmp_path / "run")])
    assert status == 2
    assert "Received: --validation-images 100" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()
