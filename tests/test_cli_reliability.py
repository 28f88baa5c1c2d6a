"""Issue 30, reliability round three: broken models, user errors and run folders that
stay usable. Each test reproduces one reported case through the command line."""

import json

import numpy as np
import pytest

from keras_vae import cli
from keras_vae import export
from keras_vae import saving
from keras_vae.cli import evaluate
from keras_vae.explorer import Explorer
from keras_vae.models.vae import build_vae
from keras_vae.validation import NonFiniteOutputError


def _strict_json(text):
    """Parses `text` as JSON, refusing NaN and infinities as the JSON standard does."""
    def refuse(constant):
        raise ValueError(f"not strict JSON: {constant}")

    return json.loads(text, parse_constant=refuse)


def _one_line_error(capsys):
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("keras-vae: error: ") and captured.err.count("\n") == 1, (
        captured.err[-3000:])
    return captured.err


def _small_vae():
    return build_vae(latent_dim=2, filters=(4, 8), hidden_units=16, seed=0)


@pytest.fixture(scope="module")
def nan_vae(tmp_path_factory):
    """A VAE whose decoder kernels are NaN, saved to a file."""
    model = _small_vae()
    kernel = model.get_layer("decoder").get_layer("logits").kernel
    kernel.assign(np.full(kernel.shape, np.nan, "float32"))
    path = tmp_path_factory.mktemp("nan") / "broken.keras"
    saving.save_model(model, path)
    return path


@pytest.fixture(scope="module")
def good_vae(tmp_path_factory):
    path = tmp_path_factory.mktemp("good") / "model.keras"
    saving.save_model(_small_vae(), path)
    return path


# ------------------------------------------------------------- A: NaN outputs


@pytest.mark.parametrize("fid", ["none", "auto"])
def test_evaluate_refuses_a_model_that_outputs_nan(nan_vae, capsys, fid):
    assert cli.main(["evaluate", str(nan_vae), "--limit", "20", "--num-samples", "2",
                     "--fid", fid, "--verbose", "0"]) == 2
    err = _one_line_error(capsys)
    assert str(nan_vae) in err and "neg_elbo" in err and "not finite" in err
    assert "images contains" not in err  # the data is not blamed


def test_anomaly_refuses_a_model_that_outputs_nan(nan_vae, tmp_path, capsys):
    output = tmp_path / "scores.csv"
    assert cli.main(["anomaly", str(nan_vae), "--limit", "20", "--num-samples", "2",
                     "--output", str(output)]) == 2
    err = _one_line_error(capsys)
    assert str(nan_vae) in err and "threshold" in err and "not finite" in err
    assert not output.exists()


def test_augment_refuses_a_model_that_outputs_nan(nan_vae, tmp_path, capsys):
    output = tmp_path / "more.npz"
    assert cli.main(["augment", str(nan_vae), "--source", "mnist", "--limit", "8",
                     "--output", str(output)]) == 2
    err = _one_line_error(capsys)
    assert str(nan_vae) in err and "synthetic images" in err
    assert not output.exists()


def test_the_scorer_and_the_explorer_refuse_nan_scores(nan_vae, mnist_small):
    model = saving.load_model(nan_vae)
    (x_train, y_train), (x_test, y_test) = mnist_small
    with pytest.raises(NonFiniteOutputError, match="neg_elbo .* not finite"):
        export.scores(model, x_test[:4], num_samples=2)
    with pytest.raises(NonFiniteOutputError, match="not finite"):
        Explorer(model, (x_train[:16], y_train[:16]), (x_test[:16], y_test[:16]))


def test_json_on_stdout_is_always_strict(good_vae, monkeypatch, capsys):
    assert cli.main(["evaluate", str(good_vae), "--limit", "20", "--num-samples", "2",
                     "--fid", "none", "--verbose", "0"]) == 0
    report = _strict_json(capsys.readouterr().out)
    assert np.isfinite(report["neg_elbo"])

    monkeypatch.setattr(evaluate, "run", lambda args: {"neg_elbo": float("nan")})
    with pytest.raises(ValueError, match="JSON compliant"):  # a bug: loud, never printed
        cli.main(["evaluate", str(good_vae)])
    assert "NaN" not in capsys.readouterr().out
