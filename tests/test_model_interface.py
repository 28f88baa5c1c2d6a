"""One interface for every model: the same calls mean the same thing on each.

`encode(x, labels=None)`, `latent_codes`, `decode(z, labels=None)`,
`reconstruct(x, labels=None)` and `sample(n, labels=None, seed=None)` on
`VAE`, `HierarchicalVAE`, `Autoencoder`, `ConditionalVAE` and `DCGAN`, and the helpers built on
them working with a conditional VAE when given labels.
"""

import keras
import numpy as np
import pytest

from conftest import float32_batch_tolerance
from conftest import tiny_vae
from keras_vae import anomaly
from keras_vae import augmentation
from keras_vae import callbacks
from keras_vae import evaluation
from keras_vae import mixture
from keras_vae import models
from keras_vae import plotting
from keras_vae.models.vae import LOG_VAR_BOUND

LATENT_DIM = 4


def tiny_cvae():
    return models.build_conditional_vae(latent_dim=LATENT_DIM, filters=(8,), hidden_units=16,
                                        seed=0)


def tiny_autoencoder():
    return models.build_autoencoder(latent_dim=LATENT_DIM, filters=(8,), hidden_units=16,
                                    seed=0)


def tiny_hvae():
    return models.build_hierarchical_vae(latent_dim=LATENT_DIM, bottom_latent_dim=6,
                                         filters=(8,), hidden_units=16,
                                         top_hidden_units=(16,), seed=0)


def tiny_gan():
    return models.build_dcgan(latent_dim=LATENT_DIM, filters=(8, 16), seed=0)


BUILDERS = {"vae": tiny_vae, "autoencoder": tiny_autoencoder, "cvae": tiny_cvae,
            "dcgan": tiny_gan, "hvae": tiny_hvae}
ENCODING = ("vae", "autoencoder", "cvae", "hvae")


@pytest.fixture(scope="module")
def built():
    keras.utils.set_random_seed(0)
    return {name: build() for name, build in BUILDERS.items()}


@pytest.fixture(scope="module")
def data(mnist_small):
    _, (x_test, y_test) = mnist_small
    return x_test[:12], y_test[:12]


def _labels_for(model, y):
    return None if model.num_classes is None else y


def _numpy_posterior(cvae, x, y):
    """q(z|x, y)'s mean and (bounded) log-variance from the encoder, in float64."""
    z_mean, z_log_var = (np.asarray(t, "float64")
                         for t in cvae.encoder([x, np.eye(10, dtype="float32")[y]]))
    return z_mean, LOG_VAR_BOUND * np.tanh(z_log_var / LOG_VAR_BOUND)


def test_num_classes_says_which_models_take_labels(built):
    assert [built[name].num_classes for name in BUILDERS] == [None, None, 10, None, None]


@pytest.mark.parametrize("name", ENCODING)
def test_encode_returns_codes_and_log_variances_on_every_model(built, data, name):
    model = built[name]
    x, y = data
    codes, log_variances = model.encode(x, _labels_for(model, y), batch_size=5)
    assert codes.shape == (12, LATENT_DIM)
    if name == "autoencoder":
        assert log_variances is None  # a point code: no variance
        np.testing.assert_allclose(codes, np.asarray(model.encoder(x)), atol=1e-6)
    else:
        assert log_variances.shape == (12, LATENT_DIM)
    # latent_codes encodes the 12 images in one batch, encode above in batches of 5:
    # the same numbers up to float32 rounding in other batch shapes.
    tolerance = float32_batch_tolerance(model)
    np.testing.assert_allclose(model.latent_codes(x, _labels_for(model, y)), codes,
                               rtol=tolerance, atol=tolerance)


@pytest.mark.parametrize("name", ENCODING)
def test_reconstruct_is_decode_of_latent_codes(built, data, name):
    model = built[name]
    x, y = data
    labels = _labels_for(model, y)
    np.testing.assert_allclose(model.reconstruct(x, labels, batch_size=5),
                               model.decode(model.latent_codes(x, labels), labels),
                               atol=1e-6)


@pytest.mark.parametrize("name", list(BUILDERS))
def test_sample_decodes_prior_draws_reproducibly(built, name):
    model = built[name]
    labels = None if model.num_classes is None else np.arange(5) % 10
    first = model.sample(5, labels=labels, seed=3)
    assert first.shape == (5, 28, 28, 1) and first.min() >= 0 and first.max() <= 1
    np.testing.assert_array_equal(first, model.sample(5, labels=labels, seed=3))
    np.testing.assert_allclose(first, model.decode(model.draw_codes(5, seed=3), labels),
                               atol=1e-6)
    assert not np.allclose(first, model.sample(5, labels=labels, seed=4))


@pytest.mark.parametrize("name", ["vae", "autoencoder", "dcgan", "hvae"])
def test_unconditional_models_refuse_labels(built, data, name):
    model = built[name]
    x, y = data
    z = np.zeros((12, LATENT_DIM), "float32")
    calls = [lambda: model.decode(z, y), lambda: model.sample(12, labels=y),
             lambda: model.sample(2, labels=3)]
    if name != "dcgan":
        calls += [lambda: model.encode(x, y), lambda: model.latent_codes(x, y),
                  lambda: model.reconstruct(x, y)]
    for call in calls:
        with pytest.raises(ValueError, match=r"is unconditional and takes no labels\. "
                                             r"Received: labels="):
            call()


def test_conditional_model_requires_labels(built, data):
    cvae = built["cvae"]
    x, _ = data
    z = np.zeros((12, LATENT_DIM), "float32")
    for call in (lambda: cvae.encode(x), lambda: cvae.latent_codes(x),
                 lambda: cvae.decode(z), lambda: cvae.reconstruct(x),
                 lambda: cvae.sample(3)):
        with pytest.raises(ValueError, match=r"ConditionalVAE needs class labels.*"
                                             r"Received: labels=None"):
            call()
    with pytest.raises(ValueError, match="one label per image. Received: 3 labels for 12"):
        cvae.encode(x, [1, 2, 3])
    with pytest.raises(ValueError, match=r"must be in \[0, 10\)"):
        cvae.decode(z[:2], [0, 10])


def test_one_int_label_is_broadcast(built, data):
    cvae = built["cvae"]
    x, _ = data
    np.testing.assert_array_equal(cvae.sample(4, labels=7, seed=1),
                                  cvae.sample(4, labels=[7, 7, 7, 7], seed=1))
    np.testing.assert_array_equal(cvae.encode(x, 2)[0], cvae.encode(x, np.full(12, 2))[0])
    # The label matters: another class gives other images from the same codes.
    assert not np.allclose(cvae.sample(4, labels=1, seed=1), cvae.sample(4, labels=7, seed=1))


def test_the_old_sample_call_gets_a_one_line_hint(built):
    with pytest.raises(TypeError, match=r"n must be an int.*labels=\. Received: n=\[3, 3\]"):
        built["cvae"].sample([3, 3])
    with pytest.raises(ValueError, match="n must be a positive int"):
        built["vae"].sample(0)


def test_dcgan_has_no_encoder(built, data):
    x, _ = data
    for call in (built["dcgan"].encode, built["dcgan"].latent_codes,
                 built["dcgan"].reconstruct):
        with pytest.raises(NotImplementedError, match="an encoder: DCGAN has none"):
            call(x)


@pytest.mark.parametrize("name", ["vae", "autoencoder", "hvae"])
def test_calling_the_model_checks_images_as_predict_does(built, data, name):
    model = built[name]
    x, _ = data
    for bad in ((x * 255).astype("uint8"), x * 255, np.where(x > 0.5, np.nan, x)):
        with pytest.raises(ValueError, match=r"\[0, 1\]|NaN"):
            model(bad)
        with pytest.raises(ValueError, match=r"\[0, 1\]|NaN"):
            model.predict(bad, verbose=0)


def test_calling_a_conditional_vae_checks_images_and_labels(built, data):
    x, y = data
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        built["cvae"]((x * 255, y))
    with pytest.raises(ValueError, match="one label per image"):
        built["cvae"]((x, y[:3]))


# ------------------------------------------------- helpers on a conditional VAE


def test_ex_post_sampler_with_a_conditional_vae(built, mnist_small):
    (x_train, y_train), _ = mnist_small
    cvae = built["cvae"]
    sampler = mixture.ExPostSampler(cvae, num_components=3).fit(x_train[:200], y_train[:200])
    codes = sampler.sample_codes(4, seed=1)
    np.testing.assert_allclose(sampler.sample(4, labels=[1, 2, 3, 4], seed=1),
                               cvae.decode(codes, [1, 2, 3, 4]), atol=1e-6)
    # The mixture is fitted to the posterior means given the labels.
    z_mean, _ = _numpy_posterior(cvae, x_train[:200], y_train[:200])
    _, expected = mixture.fit_gaussian_mixture(z_mean, 3, seed=0)
    assert sampler.mean_log_likelihood == pytest.approx(expected, rel=1e-4)
    with pytest.raises(ValueError, match="needs class labels"):
        mixture.ExPostSampler(cvae, num_components=3).fit(x_train[:200])


def test_collapse_diagnostics_with_a_conditional_vae(built, data):
    cvae = built["cvae"]
    x, y = data
    cvae.encoder.get_layer("z_mean").bias.assign(np.linspace(-1, 1, LATENT_DIM))
    z_mean, z_log_var = _numpy_posterior(cvae, x, y)
    expected_kl = (0.5 * (z_mean**2 + np.exp(z_log_var) - 1 - z_log_var)).mean(axis=0)
    np.testing.assert_allclose(evaluation.kl_per_dimension(cvae, x, labels=y), expected_kl,
                               rtol=1e-5)
    units = evaluation.active_units(cvae, x, threshold=0.0, labels=y)
    np.testing.assert_allclose(units["variances"], z_mean.var(axis=0), rtol=1e-5)
    with pytest.raises(models.base.MissingCapabilityError,
                       match="kl_per_dimension needs a model with a Gaussian posterior.*: "
                             "Autoencoder has none"):
        evaluation.kl_per_dimension(built["autoencoder"], x)


def test_latent_diagnostics_callback_with_a_conditional_vae(mnist_small):
    (x_train, y_train), (x_test, y_test) = mnist_small
    cvae = tiny_cvae()
    cvae.compile(optimizer="adam")
    diagnostics = callbacks.LatentDiagnostics(x_test[:64], labels=y_test[:64])
    history = cvae.fit(x_train[:128], y_train[:128], epochs=1, verbose=0,
                       callbacks=[diagnostics])
    np.testing.assert_allclose(
        diagnostics.kl_history[-1],
        evaluation.kl_per_dimension(cvae, x_test[:64], labels=y_test[:64]), rtol=1e-6)
    assert history.history["active_units"] == [
        evaluation.active_units(cvae, x_test[:64], labels=y_test[:64])["active_units"]]


def _panel_images(figure):
    return [axis.images[0].get_array() for axis in figure.axes if axis.images]


def test_interpolation_and_traversal_plots_with_a_conditional_vae(built, data):
    cvae = built["cvae"]
    x, y = data
    labels = (int(y[0]), int(y[1]))
    assert labels[0] != labels[1]
    panels = _panel_images(plotting.plot_interpolation(cvae, x[0], x[1], steps=5,
                                                       labels=labels))
    assert len(panels) == 5
    # The ends are the two images' reconstructions, each with its own class.
    ends = cvae.reconstruct(x[:2], labels)
    np.testing.assert_allclose(panels[0], ends[0, ..., 0], atol=1e-6)
    np.testing.assert_allclose(panels[-1], ends[1, ..., 0], atol=1e-6)
    traversal = _panel_images(plotting.plot_latent_traversal(cvae, x[0], dims=[1],
                                                             values=[-1.0, 2.0], labels=5))
    code = cvae.latent_codes(x[:1], 5)
    codes = np.repeat(code, 2, axis=0)
    codes[:, 1] = [-1.0, 2.0]
    np.testing.assert_allclose(np.stack(traversal), cvae.decode(codes, 5)[..., 0], atol=1e-6)
    samples = _panel_images(plotting.plot_samples(cvae, n=3, seed=2, labels=[4, 5, 6]))
    np.testing.assert_allclose(np.stack(samples),
                               cvae.sample(3, labels=[4, 5, 6], seed=2)[..., 0], atol=1e-6)


def test_latent_scatter_of_a_conditional_vae(built, data):
    cvae = built["cvae"]
    x, y = data
    figure = plotting.plot_latent_scatter(cvae.latent_codes(x, y), y)
    assert len(figure.axes[0].collections[0].get_offsets()) == 12


def test_perturb_with_a_conditional_vae_uses_the_labels_as_classes(built, data):
    cvae = built["cvae"]
    x, y = data
    images, labels = augmentation.perturb(cvae, x[:4], y[:4], scale=0.0)
    np.testing.assert_allclose(images, cvae.reconstruct(x[:4], y[:4]), atol=1e-6)
    np.testing.assert_array_equal(labels, y[:4])
    with pytest.raises(models.base.MissingCapabilityError,
                       match="perturb needs a model with a Gaussian posterior"):
        augmentation.perturb(built["autoencoder"], x[:4], y[:4])


def test_anomaly_scores_refuse_a_conditional_vae_without_labels_in_one_line(built, data):
    x, _ = data
    for score in ("reconstruction_error", "neg_elbo"):
        with pytest.raises(ValueError, match="ConditionalVAE needs class labels") as error:
            anomaly.anomaly_scores(built["cvae"], x, score, num_samples=2)
        assert "\n" not in str(error.value)
