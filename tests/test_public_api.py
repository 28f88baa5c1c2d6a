"""The public API is easy to guess: one import, and `get` that reads names, layers or configs."""

import pkgutil

import keras
import pytest

import keras_vae
from conftest import ROOT
from conftest import run_python
from keras_vae import likelihoods
from keras_vae import priors

NOT_IMPORTED = {"cli", "__main__"}  # the command line is imported on demand


def _public_modules():
    return sorted(module.name for module in pkgutil.iter_modules(keras_vae.__path__)
                  if not module.name.startswith("_") and module.name not in NOT_IMPORTED)


def test_import_keras_vae_exposes_every_public_module():
    modules = _public_modules()
    assert {"anomaly", "augmentation", "mixture", "datasets"} <= set(modules)
    assert set(modules) <= set(keras_vae.__all__)
    # A fresh process: in this one, other tests may have imported the modules.
    result = run_python(f"""
        import keras_vae
        missing = [name for name in {modules!r} if not hasattr(keras_vae, name)]
        assert not missing, missing
        assert keras_vae.__file__.startswith({str(ROOT)!r}), keras_vae.__file__
        print(keras_vae.mixture.ExPostSampler.__name__)
    """, cwd=ROOT)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().endswith("ExPostSampler")


def test_likelihoods_get_takes_a_name_an_instance_or_a_config():
    assert type(likelihoods.get("gaussian_pixel")) is likelihoods.Gaussian
    assert likelihoods.get("gaussian_pixel").per_pixel is True
    layer = likelihoods.Gaussian(per_pixel=True, min_scale=0.01, name="mine")
    assert likelihoods.get(layer) is layer
    restored = likelihoods.get(keras.saving.serialize_keras_object(layer))
    assert type(restored) is likelihoods.Gaussian and restored is not layer
    assert restored.get_config() == layer.get_config()


def test_priors_get_takes_a_name_an_instance_or_a_config():
    assert type(priors.get("mixture", latent_dim=3)) is priors.MixtureOfGaussians
    assert priors.get("normal", 5).latent_dim == 5
    layer = priors.MixtureOfGaussians(latent_dim=3, num_components=4, seed=1, name="mine")
    assert priors.get(layer) is layer
    restored = priors.get(keras.saving.serialize_keras_object(layer))
    assert type(restored) is priors.MixtureOfGaussians and restored is not layer
    assert restored.get_config() == layer.get_config()
    with pytest.raises(ValueError, match="needs image_shape"):
        priors.get("vamp", latent_dim=3)


@pytest.mark.parametrize("get, argument", [
    (likelihoods.get, "likelihood"),
    (lambda identifier: priors.get(identifier, 3, (28, 28, 1)), "prior"),
])
def test_get_refuses_wrong_types_and_values_alike(get, argument):
    for wrong_type in (3, None, ["bernoulli"], keras.layers.Dense(2)):
        with pytest.raises(TypeError, match=rf"^{argument} must be a name, .*Received: "):
            get(wrong_type)
    with pytest.raises(ValueError, match=rf"^{argument} must be one of .*Received: {argument}='poisson'$"):
        get("poisson")
    with pytest.raises(ValueError, match=rf"^{argument} config gives a Dense, not a "):
        get(keras.saving.serialize_keras_object(keras.layers.Dense(2)))
    with pytest.raises(ValueError, match=rf"^{argument} is not a valid Keras config"):
        get({"class_name": "NoSuchLayer", "config": {}})
    with pytest.raises(ValueError, match=rf"^{argument} config must be a Keras config dict with a .class_name."):
        get({"config": {}})


def test_vae_accepts_a_likelihood_config():
    config = keras.saving.serialize_keras_object(likelihoods.Gaussian(min_scale=0.05))
    vae = keras_vae.build_vae(latent_dim=2, filters=(4,), hidden_units=8, likelihood=config)
    assert type(vae.likelihood_layer) is likelihoods.Gaussian
    assert vae.likelihood_layer.min_scale == 0.05
