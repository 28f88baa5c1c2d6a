"""The model contract: every model class, built small, through every tool.

Each cell either works, checked against the model's own numbers, or raises
the documented one-line `MissingCapabilityError` naming the model class and
what it lacks (see `keras_vae.models.base`). A new model class joins
`BUILDERS` and `CAPABILITIES` below and is then run through every tool.
"""

import importlib.util
import json
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
import tensorflow as tf
from matplotlib.figure import Figure

import keras_vae
from conftest import ROOT
from conftest import bfloat16_nats_tolerance
from conftest import float32_batch_tolerance
from conftest import run_python
from keras_vae import anomaly
from keras_vae import augmentation
from keras_vae import distribute
from keras_vae import evaluation
from keras_vae import export
from keras_vae import mixture
from keras_vae import models
from keras_vae import plotting
from keras_vae import precision
from keras_vae import pretrained
from keras_vae.explorer import Explorer
from keras_vae.explorer import InputProblem
from keras_vae.models import base
from keras_vae.models.base import MissingCapabilityError

LATENT = 3
SMALL = {"filters": (4,), "hidden_units": 8, "seed": 0}

BUILDERS = {
    "vae": lambda: keras_vae.build_vae(latent_dim=LATENT, **SMALL),
    "beta_vae": lambda: keras_vae.build_vae(latent_dim=LATENT, beta=4.0, **SMALL),
    "iwae_vae": lambda: keras_vae.build_vae(latent_dim=LATENT, importance_samples=3, **SMALL),
    "cvae": lambda: models.build_conditional_vae(latent_dim=LATENT, **SMALL),
    "hvae": lambda: models.build_hierarchical_vae(latent_dim=LATENT, bottom_latent_dim=4,
                                                  top_hidden_units=(8,), **SMALL),
    "autoencoder": lambda: models.build_autoencoder(latent_dim=LATENT, **SMALL),
    "dcgan": lambda: models.build_dcgan(latent_dim=LATENT, filters=(4, 8), seed=0),
    "vqvae": lambda: models.build_vqvae(num_embeddings=8, embedding_dim=LATENT, filters=(4, 4),
                                        prior_filters=8, prior_blocks=1, seed=0),
}

VARIATIONAL = {base.ENCODER, base.POSTERIOR, base.LIKELIHOOD, base.LOSSES}
CAPABILITIES = {
    "vae": VARIATIONAL, "beta_vae": VARIATIONAL, "iwae_vae": VARIATIONAL,
    "cvae": VARIATIONAL | {base.LABELS}, "hvae": VARIATIONAL,
    "autoencoder": {base.ENCODER, base.LOSSES}, "dcgan": set(),
    "vqvae": {base.ENCODER, base.LOSSES, base.CODEBOOK},
}
"""What each class declares: written out here, not read from the classes."""

NAMES = list(BUILDERS)


def has(name, capability):
    return capability in CAPABILITIES[name]


def discrete(model):
    """Whether the model's codes are index maps (a VQ-VAE), not points of a continuous space."""
    return model.code_spec.dtype.is_integer


def codes_for(model, n):
    """`n` codes of the model's own kind (`decode` takes them): its prior's draws, seeded."""
    return model.draw_codes(n, seed=0)


@pytest.fixture(scope="module")
def data(mnist_small):
    (x_train, y_train), (x_test, y_test) = mnist_small
    def binary(x):
        return (x > 0.5).astype("float32")

    return (binary(x_train[:64]), y_train[:64]), (binary(x_test[:16]), y_test[:16])


@pytest.fixture(scope="module")
def trained(data):
    """Every model fitted for one epoch on 64 images; `{name: (model, history)}`."""
    (x, y), (x_test, y_test) = data
    result = {}
    for name, build in BUILDERS.items():
        keras.utils.set_random_seed(0)
        model = build()
        model.compile(optimizer=keras.optimizers.Adam(1e-3))
        labelled = has(name, base.LABELS)
        history = model.fit(x, y if labelled else None, batch_size=32, epochs=1, verbose=0,
                            validation_data=(x_test, y_test) if labelled else (x_test,))
        result[name] = (model, history.history)
    return result


def labels_for(name, y):
    return y if has(name, base.LABELS) else None


def condition_for(model, name, y):
    return model.one_hot(y) if has(name, base.LABELS) else None


# ------------------------------------------------------------ declarations


@pytest.mark.parametrize("name", NAMES)
def test_each_model_declares_its_capabilities(trained, name):
    model, _ = trained[name]
    assert model.capabilities == CAPABILITIES[name]
    assert (model.num_classes is not None) == has(name, base.LABELS)
    for capability in base.CAPABILITIES:
        assert model.has(capability) == has(name, capability)
    with pytest.raises(ValueError, match="capability must be one of"):
        model.has("wings")


@pytest.mark.parametrize("name", NAMES)
def test_compute_losses_gives_every_term_and_fit_reports_their_means(trained, data, name):
    model, history = trained[name]
    (x, y), (x_test, y_test) = data
    if not has(name, base.LOSSES):
        assert set(history) == {"discriminator_loss", "generator_loss",
                                "val_discriminator_loss", "val_generator_loss"}
        with pytest.raises(MissingCapabilityError,
                           match="compute_losses needs a model with a per-image training "
                                 f"objective .*: {type(model).__name__} has none"):
            model.compute_losses(x_test)
        return
    assert model.loss_terms[0] == "loss"
    assert set(history) == set(model.loss_terms) | {f"val_{k}" for k in model.loss_terms}
    losses = model.compute_losses(tf.constant(x_test), training=False,
                                  condition=condition_for(model, name, y_test))
    assert set(losses) == set(model.loss_terms)
    for key, value in losses.items():
        assert value.shape == (len(x_test),) and value.dtype == tf.float32, key
        assert np.all(np.isfinite(value.numpy())), key
    # evaluate reports the batch means of the same per-image tensors (one batch: exact
    # up to float32 rounding; the sampled terms use the model's seeded noise, so only
    # deterministic ones are compared for the variational models).
    evaluated = model.evaluate(x_test, labels_for(name, y_test), batch_size=len(x_test),
                               verbose=0, return_dict=True)
    assert set(evaluated) == set(model.loss_terms)
    if name == "autoencoder":
        assert evaluated["loss"] == pytest.approx(float(np.mean(losses["loss"])), rel=1e-5)
    elif name in ("vae", "beta_vae", "cvae"):
        # The negative ELBO with beta: loss = reconstruction + beta * KL, image by image.
        beta = float(model.beta.numpy())
        np.testing.assert_allclose(
            losses["loss"], losses["reconstruction_loss"] + beta * losses["kl_loss"],
            rtol=1e-5)
    elif name == "hvae":
        np.testing.assert_allclose(losses["kl_loss"],
                                   losses["kl_z1_loss"] + losses["kl_z2_loss"], rtol=1e-5)


# ------------------------------------------------------------ scoring


@pytest.mark.parametrize("name", NAMES)
def test_log_weights_and_the_likelihood_tools(trained, data, name):
    model, _ = trained[name]
    _, (x_test, y_test) = data
    condition = condition_for(model, name, y_test[:4])
    if not has(name, base.LIKELIHOOD):
        with pytest.raises(MissingCapabilityError,
                           match=f"needs a model with a likelihood .*: {type(model).__name__}"):
            model.log_weights(x_test[:4], 5, seed=1)
        with pytest.raises(MissingCapabilityError, match="has none"):
            evaluation.log_likelihood(model, x_test[:4], num_samples=5, verbose=0)
        return
    log_w = model.log_weights(tf.constant(x_test[:4]), 5, seed=1, condition=condition)
    assert log_w.shape == (5, 4) and np.all(np.isfinite(log_w.numpy()))
    # The same seed gives the same codes; another seed, others.
    again = model.log_weights(tf.constant(x_test[:4]), 5, seed=1, condition=condition)
    np.testing.assert_array_equal(log_w.numpy(), again.numpy())
    other = model.log_weights(tf.constant(x_test[:4]), 5, seed=2, condition=condition)
    assert not np.allclose(log_w.numpy(), other.numpy())
    # Shared noise: an image's weights do not depend on the batch it is in.
    shared = model.log_weights(tf.constant(x_test[:4]), 5, seed=1, condition=condition,
                               shared_noise=True).numpy()
    alone = model.log_weights(tf.constant(x_test[2:3]), 5, seed=1,
                              condition=None if condition is None else condition[2:3],
                              shared_noise=True).numpy()
    tolerance = float32_batch_tolerance(model)
    np.testing.assert_allclose(alone[:, 0], shared[:, 2], rtol=tolerance,
                               atol=tolerance * np.abs(shared).max())
    if has(name, base.LABELS):
        return  # evaluation reports unconditional likelihoods only
    # evaluation and anomaly scores reduce exactly these weights.
    bounds = evaluation.log_likelihood(model, x_test[:4], num_samples=5, seed=3, verbose=0)
    weights = evaluation.importance_log_weights(model, x_test[:4], num_samples=5, seed=3)
    np.testing.assert_allclose(bounds["elbo"], weights.mean(axis=1), rtol=1e-6)  # (images, K)
    report = evaluation.likelihood_report(model, x_test[:4], num_samples=5, seed=3, verbose=0)
    assert report["nll"] == pytest.approx(-float(np.mean(bounds["iwae"])), rel=1e-6)
    scores = anomaly.anomaly_scores(model, x_test[:4], "neg_elbo", num_samples=5, seed=3)
    np.testing.assert_allclose(scores, -bounds["elbo"], rtol=1e-6)


@pytest.mark.parametrize("name", NAMES)
def test_reconstruction_scores_augmentation_and_the_mixture_sampler(trained, data, name):
    model, _ = trained[name]
    (x, y), (x_test, y_test) = data
    labels = labels_for(name, y_test[:4])
    if not has(name, base.ENCODER):
        for call in (lambda: model.reconstruct(x_test[:4]),
                     lambda: anomaly.anomaly_scores(model, x_test[:4], "reconstruction_error"),
                     lambda: mixture.ExPostSampler(model)):
            with pytest.raises(MissingCapabilityError, match="an encoder: DCGAN has none"):
                call()
    elif not has(name, base.LABELS):
        reconstructions = model.reconstruct(x_test[:4]).astype("float64")
        expected = np.square(reconstructions - x_test[:4]).reshape(4, -1).sum(axis=1)
        np.testing.assert_allclose(
            anomaly.anomaly_scores(model, x_test[:4], "reconstruction_error"), expected,
            rtol=1e-6)
        if discrete(model):
            with pytest.raises(ValueError, match="codes are discrete indices"):
                mixture.ExPostSampler(model, num_components=2)
        else:
            sampler = mixture.ExPostSampler(model, num_components=2).fit(x)
            assert sampler.sample(3, seed=0).shape == (3, 28, 28, 1)
    if has(name, base.POSTERIOR):
        images, new_labels = augmentation.perturb(model, x_test[:4], y_test[:4], scale=0.0)
        np.testing.assert_allclose(images, model.reconstruct(x_test[:4], labels), atol=1e-5)
        np.testing.assert_array_equal(new_labels, y_test[:4])
    else:
        with pytest.raises(MissingCapabilityError, match="perturb needs a model with a "
                                                         "Gaussian posterior"):
            augmentation.perturb(model, x_test[:4], y_test[:4])
    if has(name, base.LABELS):
        images, new_labels = augmentation.synthesize(model, 2, seed=0)
        np.testing.assert_array_equal(images, model.sample(20, labels=new_labels, seed=0))
    else:
        with pytest.raises(MissingCapabilityError, match="class conditioning"):
            augmentation.synthesize(model, 2)


# ------------------------------------------------------------ export


def _load_litert(path):
    interpreter = tf.lite.Interpreter(model_path=str(path))
    return interpreter.get_signature_runner()


@pytest.mark.parametrize("name", NAMES)
def test_export_serves_what_the_model_computes(trained, data, name, tmp_path):
    model, _ = trained[name]
    _, (x_test, y_test) = data
    x, labels = x_test[:3], labels_for(name, y_test[:3])
    extra = {} if labels is None else {"labels": tf.constant(labels, tf.int32)}
    z = codes_for(model, 3)
    formats = ["tf_saved_model", "litert"]
    for format in formats:
        with pytest.warns(export.ExportWarning) if not has(name, base.ENCODER) else _nothing():
            paths = export.export_model(model, tmp_path / format, format=format,
                                        num_samples=4, seed=1)
        expected_parts = {"decoder"} | ({"encoder", "scorer"}
                                        if has(name, base.ENCODER) else set())
        assert set(paths) == expected_parts
        assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []
        run = {}
        for part, path in paths.items():
            if format == "tf_saved_model":
                run[part] = tf.saved_model.load(path).signatures[export.SIGNATURES[part]]
            else:
                runner = _load_litert(path)
                run[part] = lambda runner=runner, **inputs: runner(**{
                    key: np.asarray(value) for key, value in inputs.items()})
        decoded = run["decoder"](codes=tf.constant(z), **extra)["images"]
        np.testing.assert_allclose(decoded, model.decode(z, labels), atol=1e-5)
        if not has(name, base.ENCODER):
            continue
        encoded = run["encoder"](images=tf.constant(x), **extra)
        codes, log_var = model.encode(x, labels)
        np.testing.assert_allclose(encoded["mean" if log_var is not None else "codes"], codes,
                                   atol=1e-5)
        score_key = export.score_kind(model)
        got = np.asarray(run["scorer"](images=tf.constant(x), **extra)[score_key])
        np.testing.assert_allclose(got, export.scores(model, x, labels, num_samples=4, seed=1),
                                   rtol=1e-4, atol=1e-3)


class _nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


@pytest.mark.skipif(importlib.util.find_spec("tf2onnx") is None
                    or importlib.util.find_spec("onnxruntime") is None,
                    reason="needs the onnx extra: pip install 'keras_vae[onnx]'")
@pytest.mark.parametrize("name", ["vae", "autoencoder", "dcgan"])
def test_onnx_export_serves_the_decoder(trained, name, tmp_path):
    import onnxruntime
    model, _ = trained[name]
    paths = export.export_model(model, tmp_path, format="onnx")
    z = np.random.default_rng(0).standard_normal((3, LATENT)).astype("float32")
    session = onnxruntime.InferenceSession(paths["decoder"])
    assert session.get_inputs()[0].shape[0] == "batch"  # not tf2onnx's "unk__79"
    assert session.get_outputs()[0].shape[0] == "batch"
    (decoded,) = session.run(None, {session.get_inputs()[0].name: z})
    np.testing.assert_allclose(decoded, model.decode(z), atol=1e-5)


# ------------------------------------------------------------ explorer, precision, plots


@pytest.mark.parametrize("name", NAMES)
def test_every_explorer_endpoint_answers_or_says_why_not(trained, data, name):
    model, _ = trained[name]
    (x, y), (x_test, y_test) = data
    conditional = has(name, base.LABELS)
    explorer = Explorer(model, (x, y if conditional else None),
                        (x_test, y_test if conditional else None), num_samples=4)
    label = 3 if conditional else None
    assert (model.num_codes is None) == (not discrete(model))
    if has(name, base.ENCODER):  # the codes' CSV: a header and one row per image
        assert explorer.codes_csv().count("\n") == 1 + len(x) + len(x_test)
    if discrete(model):
        for call in (lambda: explorer.decode_sliders([]), explorer.map_image,
                     lambda: explorer.interpolate(0, 1), lambda: explorer.decode_point(0.0, 0.0),
                     lambda: explorer.test_neighbours(0), lambda: explorer.sliders_from_test(0)):
            with pytest.raises(InputProblem, match="VQVAE\\) has discrete codes"):
                call()
        _, codes, decoded, _ = explorer.code_map(0)
        assert codes.shape == tuple(model.code_spec.shape[1:]) and decoded.dtype == np.uint8
        assert explorer.edit_code(codes, 0, 0, model.num_codes - 1)[0][0, 0] == model.num_codes - 1
        assert explorer.sample_grid(seed=1).shape[:2] == (112, 112)
        reconstruction, text = explorer.score((x_test[0, ..., 0] * 255).astype("uint8"))
        assert reconstruction.dtype == np.uint8
        assert text.startswith(f"reconstruction error: {explorer.scores(x_test[:1])[0]:.2f}")
        return
    assert explorer.decode_sliders([0.0] * explorer.num_sliders, label).dtype == np.uint8
    assert explorer.sample_grid(seed=1, label=label).shape[:2] == (112, 112)  # 4 x 4 of 28
    drawing = (x_test[0, ..., 0] * 255).astype("uint8")
    if not has(name, base.ENCODER):
        for call in (explorer.map_image, lambda: explorer.interpolate(0, 1, label=label),
                     lambda: explorer.decode_point(0.0, 0.0),
                     lambda: explorer.score(drawing)):
            with pytest.raises(InputProblem, match="DCGAN\\) has no encoder"):
                call()
        return
    assert explorer.map_image().shape[-1] == 3
    u, v = explorer.map_point(200, 200)
    assert explorer.decode_point(u, v, label).dtype == np.uint8
    assert explorer.interpolate(0, 1, steps=3, label=label).dtype == np.uint8
    assert explorer.interpolate(0, 1, steps=3, label=label, method="slerp").dtype == np.uint8
    assert explorer.test_neighbours(0, 3)[0].shape == (28, 3 * 28)
    values, offset, _, _ = explorer.sliders_from_test(0)
    np.testing.assert_allclose(explorer.slider_code(values, offset), explorer.test_codes[0],
                               atol=1e-6)
    with pytest.raises(InputProblem, match="has no discrete code maps"):
        explorer.code_map(0)
    reconstruction, text = explorer.score(drawing, label)
    score = explorer.scores(x_test[:1], None if label is None else [label])[0]
    assert f"{score:.2f}" in text
    unit = " nats" if has(name, base.LIKELIHOOD) else ""
    assert text.startswith(("negative ELBO: " if unit else "reconstruction error: ")
                           + f"{score:.2f}{unit}")


@pytest.mark.parametrize("name", NAMES)
def test_a_bfloat16_copy_computes_the_same_numbers(trained, data, name):
    model, _ = trained[name]
    _, (x_test, y_test) = data
    copy = precision.with_policy(model, "mixed_bfloat16")
    assert type(copy) is type(model) and copy.capabilities == model.capabilities
    z = codes_for(model, 4)
    labels = labels_for(name, y_test[:4])
    np.testing.assert_allclose(copy.decode(z, labels), model.decode(z, labels), atol=0.05)
    if has(name, base.LIKELIHOOD) and not has(name, base.LABELS):
        ours = evaluation.log_likelihood(model, x_test[:4], num_samples=4, verbose=0)["iwae"]
        theirs = evaluation.log_likelihood(copy, x_test[:4], num_samples=4, verbose=0)["iwae"]
        assert abs(ours.mean() - theirs.mean()) < bfloat16_nats_tolerance(ours.mean())


@pytest.mark.parametrize("name", NAMES)
def test_the_plotting_helpers_draw_every_model(trained, data, name):
    model, _ = trained[name]
    _, (x_test, y_test) = data
    labels = labels_for(name, y_test[:2])
    assert isinstance(plotting.plot_samples(model, n=4, labels=None if labels is None else 1),
                      Figure)
    if has(name, base.ENCODER):
        figure = plotting.plot_reconstructions(x_test[:2], model.reconstruct(x_test[:2], labels))
        assert isinstance(figure, Figure)
        if discrete(model):
            with pytest.raises(ValueError, match="codes are discrete indices"):
                plotting.plot_interpolation(model, x_test[0], x_test[1], steps=3)
            return
        figure = plotting.plot_interpolation(model, x_test[0], x_test[1], steps=3,
                                             labels=labels)
        assert len(figure.axes) == 3


# ------------------------------------------------------------ training elsewhere


@pytest.mark.parametrize("name", NAMES)
def test_the_multi_worker_loop_reports_the_same_keys_as_fit(trained, data, name):
    model, history = trained[name]
    (x, y), (x_test, y_test) = data
    keras.utils.set_random_seed(0)
    fresh = BUILDERS[name]()
    fresh.compile(optimizer=keras.optimizers.Adam(1e-3))
    labelled = has(name, base.LABELS)
    batches = tf.data.Dataset.from_tensor_slices((x, y) if labelled else x).batch(32)
    validation = tf.data.Dataset.from_tensor_slices(
        (x_test, y_test) if labelled else x_test).batch(8)
    if not has(name, base.LOSSES):
        with pytest.raises(MissingCapabilityError, match="distributed_fit needs a model "
                                                         "with a per-image training objective"):
            distribute.distributed_fit(fresh, batches.repeat(), epochs=1, steps_per_epoch=2)
        return
    logged = distribute.distributed_fit(fresh, batches.repeat(), epochs=1, steps_per_epoch=2,
                                        validation_data=validation, verbose=0)
    assert set(logged) == set(history)


SAVED = textwrap.dedent("""
    import json, sys
    import numpy as np
    import keras, keras_vae
    report = {}
    for name, path in json.loads(sys.argv[1]).items():
        model = keras.saving.load_model(path)
        z = np.load(path + ".z.npy")
        labels = None if model.num_classes is None else np.arange(len(z)) % 10
        report[name] = {"type": type(model).__name__, "decoded": model.decode(z, labels).tolist(),
                        "capabilities": sorted(model.capabilities)}
    print(json.dumps(report))
""")


def test_every_model_reloads_in_a_fresh_process(trained, tmp_path):
    paths, expected = {}, {}
    for name, (model, _) in trained.items():
        z = codes_for(model, 2)
        path = str(tmp_path / f"{name}.keras")
        model.save(path)
        np.save(path + ".z.npy", z)
        paths[name] = path
        labels = None if model.num_classes is None else np.arange(len(z)) % 10
        expected[name] = model.decode(z, labels)
    script = tmp_path / "reload.py"
    script.write_text(SAVED)
    result = subprocess.run([sys.executable, str(script), json.dumps(paths)], cwd=tmp_path,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    for name, (model, _) in trained.items():
        assert report[name]["type"] == type(model).__name__
        assert set(report[name]["capabilities"]) == CAPABILITIES[name]
        np.testing.assert_allclose(report[name]["decoded"], expected[name], atol=1e-6,
                                   err_msg=name)


MIRRORED = textwrap.dedent("""
    import json
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    import keras, numpy as np, keras_vae
    from keras_vae import models
    import test_contract as contract
    (x, y), _ = keras_vae.datasets.load("mnist")
    x, y = (x[:64] > 0.5).astype("float32"), y[:64]
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    report = {}
    for name, build in contract.BUILDERS.items():
        keras.utils.set_random_seed(0)
        with strategy.scope():
            model = build()
            model.compile(optimizer=keras.optimizers.Adam(1e-3))
        labelled = model.num_classes is not None
        history = model.fit(x, y if labelled else None, batch_size=32, epochs=1, verbose=0)
        report[name] = {key: [float(v) for v in values]
                        for key, values in history.history.items()}
    print(json.dumps(report))
""")


def test_every_model_fits_mirrored_on_two_logical_cpus(trained, tmp_path):
    result = run_python(MIRRORED, cwd=ROOT / "tests", timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    for name, (_, history) in trained.items():
        train_keys = {key for key in history if not key.startswith("val_")}
        assert set(report[name]) == train_keys, name
        assert all(np.isfinite(value) for values in report[name].values() for value in values)


# ------------------------------------------------------------ shipped models


@pytest.mark.slow
@pytest.mark.parametrize("name", pretrained.names())
def test_every_shipped_model_exports_and_explores(name, mnist_small, tmp_path):
    model = pretrained.load(name)
    (x_train, _), (x_test, y_test) = mnist_small
    x = (x_test[:3] > 0.5).astype("float32")
    paths = export.export_model(model, tmp_path / "served", num_samples=4)
    assert set(paths) == {"decoder", "encoder", "scorer"}
    scorer = tf.saved_model.load(paths["scorer"]).signatures["score"]
    np.testing.assert_allclose(scorer(images=tf.constant(x))["neg_elbo"],
                               export.scores(model, x, num_samples=4), rtol=1e-4)
    decoder = tf.saved_model.load(paths["decoder"]).signatures["decode"]
    codes = model.latent_codes(x)
    # The exported decoder takes the codes encode gives: it round-trips as reconstruct does.
    np.testing.assert_allclose(decoder(codes=tf.constant(codes))["images"],
                               model.reconstruct(x), atol=1e-5)
    explorer = Explorer(model, (x_train[:64], None), (x_test[:32], y_test[:32]), num_samples=4)
    assert explorer.map_image().shape[-1] == 3
    _, text = explorer.score((x_test[0, ..., 0] * 255).astype("uint8"))
    assert text.startswith("negative ELBO: ")
    assert explorer.interpolate(0, 1, steps=3).dtype == np.uint8


# ------------------------------------------------------------ the command line


@pytest.mark.parametrize("name", NAMES)
def test_the_commands_serve_every_model_or_say_what_it_lacks(trained, name, tmp_path, capsys):
    from keras_vae import cli
    model, _ = trained[name]
    path = str(tmp_path / f"{name}.keras")
    model.save(path)
    capsys.readouterr()
    status = cli.main(["evaluate", path, "--limit", "8", "--num-samples", "2", "--fid", "none",
                       "--verbose", "0"])
    out, err = capsys.readouterr()
    if has(name, base.LIKELIHOOD) and not has(name, base.LABELS):
        assert status == 0, err
        report = json.loads(out, parse_constant=lambda token: pytest.fail(token))
        assert report["nll"] > 0
    elif has(name, base.CODEBOOK):  # code statistics instead of a likelihood bound
        assert status == 0, err
        report = json.loads(out, parse_constant=lambda token: pytest.fail(token))
        assert report["code_bits_per_image"] > 0 and "nll" not in report
        assert report["prior_nll_bits"] is None  # fit, not fit_prior, has run
    else:
        assert status == 2 and out == "" and err.count("\n") == 1, err
        lacks = ("takes labels" if has(name, base.LABELS)
                 else f"needs a model with a likelihood (log_weights): {type(model).__name__} "
                      "has none")
        assert err.startswith("keras-vae: error: ") and lacks in err, err
    status = cli.main(["export", path, "--output", str(tmp_path / "served")])
    out, err = capsys.readouterr()
    assert status == 0, err
    report = json.loads(out)
    if has(name, base.ENCODER):
        assert set(report["parts"]) == {"decoder", "encoder", "scorer"}
        assert report["not_exported"] == []
    else:
        assert set(report["parts"]) == {"decoder"}
        assert report["not_exported"] == ["The encoder was not exported: DCGAN has no encoder.",
                                          "The scorer was not exported: DCGAN has no encoder."]
