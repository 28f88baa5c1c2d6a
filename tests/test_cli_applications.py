"""The command line's conditional training, `anomaly` and `augment` commands."""

import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest

from keras_vae import cli
from keras_vae import models

SMALL = ["--limit", "256", "--epochs", "1", "--latent-dim", "4", "--batch-size", "64",
         "--verbose", "0", "--plot-every", "0"]


def _run_cli(args, cwd):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    return subprocess.run([sys.executable, "-m", "keras_vae", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A conditional VAE and a VAE with a mixture prior, trained by the CLI."""
    root = tmp_path_factory.mktemp("runs")
    for name, extra in (("cvae", ["--model", "conditional_vae"]),
                        ("vae", ["--prior", "mixture", "--likelihood", "bernoulli",
                                 "--lr-schedule", "cosine"])):
        result = _run_cli(["train", *SMALL, *extra, "--output", name], root)
        assert result.returncode == 0, result.stderr[-3000:]
    return root


def test_train_builds_the_model_likelihood_and_prior_asked_for(runs):
    cvae = keras.models.load_model(runs / "cvae" / "model.keras")
    assert isinstance(cvae, models.ConditionalVAE) and cvae.num_classes == 10
    vae = keras.models.load_model(runs / "vae" / "model.keras")
    assert type(vae.prior_layer).__name__ == "MixtureOfGaussians"
    settings = json.loads((runs / "cvae" / "run.json").read_text())["settings"]
    assert settings["model"] == "conditional_vae" and settings["prior"] == "normal"
    assert float(cvae.optimizer.learning_rate) == pytest.approx(1e-3)
    # The cosine schedule has decayed to 0 by the last step of the run.
    assert float(vae.optimizer.learning_rate) < 1e-8
    assert vae.optimizer.iterations.numpy() == 4  # 256 images, batch 64, 1 epoch
    assert (runs / "cvae" / "samples.png").read_bytes()[:4] == b"\x89PNG"


def test_anomaly_prints_a_summary_and_writes_scores(runs, tmp_path):
    result = _run_cli(["anomaly", str(runs / "vae" / "model.keras"), "--limit", "200",
                       "--num-samples", "4", "--false-positive-rate", "0.1",
                       "--anomalous-classes", "9", "--output", "scores.csv"], tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout)
    assert report["num_images"] == 200 and report["settings"]["false_positive_rate"] == 0.1
    assert 0.0 <= report["roc_auc"] <= 1.0 and "precision" in report
    lines = (tmp_path / "scores.csv").read_text().splitlines()
    assert lines[0] == "index,label,score,flagged" and len(lines) == 201
    flagged = sum(int(line.split(",")[3]) for line in lines[1:])
    assert flagged == report["num_flagged"]


def test_anomaly_on_fashion_with_a_reconstruction_score(runs, tmp_path):
    result = _run_cli(["anomaly", str(runs / "vae" / "model.keras"), "--data", "fashion_mnist",
                       "--limit", "100", "--score", "reconstruction_error",
                       "--contamination", "0.2"], tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout)
    assert report["settings"]["data"] == "fashion_mnist test"
    assert report["settings"]["contamination"] == 0.2


def test_augment_with_a_conditional_vae_and_with_a_vae(runs, tmp_path):
    result = _run_cli(["augment", str(runs / "cvae" / "model.keras"), "--per-class", "3",
                       "--output", "synthetic.npz"], tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    with np.load(tmp_path / "synthetic.npz") as data:
        assert data["images"].shape == (30, 28, 28, 1) and data["images"].dtype == np.float32
        np.testing.assert_array_equal(data["labels"], np.repeat(np.arange(10), 3))
    assert json.loads(result.stdout)["images_per_class"]["7"] == 3
    refused = _run_cli(["augment", str(runs / "cvae" / "model.keras"),
                        "--output", "synthetic.npz"], tmp_path)
    assert refused.returncode == 2 and "--overwrite" in refused.stderr
    result = _run_cli(["augment", str(runs / "vae" / "model.keras"), "--source", "mnist",
                       "--limit", "20", "--copies", "2", "--output", "perturbed.npz"], tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    with np.load(tmp_path / "perturbed.npz") as data:
        assert data["images"].shape == (40, 28, 28, 1)


def test_application_errors_are_one_line(runs, tmp_path, capsys):
    vae = str(runs / "vae" / "model.keras")
    cvae = str(runs / "cvae" / "model.keras")
    cases = [
        (["augment", vae, "--output", "x.npz"], "needs --source"),
        (["augment", cvae, "--output", "x.txt"], "must end in .npz"),
        (["anomaly", cvae], "anomaly scores images without labels"),
        (["anomaly", vae, "--false-positive-rate", "1.5", "--limit", "50",
          "--num-samples", "2"], "must be in (0, 1)"),
    ]
    for args, message in cases:
        assert cli.main(args) == 2
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1, err
    for command in ("anomaly", "augment"):
        with pytest.raises(SystemExit) as exit_info:
            cli.main([command, "--help"])
        assert exit_info.value.code == 0
