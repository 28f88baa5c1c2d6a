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
                                 "--lr-schedule", "cosine", "--validation-images", "56"])):
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
    assert vae.optimizer.iterations.numpy() == 4  # 200 images (56 held out), batch 64
    assert (runs / "cvae" / "samples.png").read_bytes()[:4] == b"\x89PNG"


def test_anomaly_prints_a_summary_and_writes_scores(runs, tmp_path):
    result = _run_cli(["anomaly", str(runs / "vae" / "model.keras"), "--limit", "200",
                       "--num-samples", "4", "--false-positive-rate", "0.1",
                       "--anomalous-classes", "9", "--output", "scores.csv"], tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout)
    assert report["num_images"] == 200 and report["settings"]["false_positive_rate"] == 0.1
    # The threshold comes from the 56 training images the run held out (of its first
    # 256), as its run.json records; all 200 test images are scored.
    held_out = report["threshold_images"]
    assert {key: held_out[key] for key in ("dataset", "split", "start", "stop", "count")} == {
        "dataset": "mnist", "split": "train", "start": 200, "stop": 256, "count": 56}
    assert str(runs / "vae" / "run.json") in held_out["source"]
    assert report["settings"]["validation_split"] is None
    assert "flagged" not in report  # one key for the count: num_flagged
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


def _overfit_vae(x_train):
    """A dense VAE that overfits 300 binarized MNIST digits in a few seconds."""
    keras.utils.set_random_seed(0)
    images = keras.Input((28, 28, 1))
    hidden = keras.layers.Dense(256, activation="relu")(keras.layers.Flatten()(images))
    encoder = keras.Model(images, [keras.layers.Dense(8)(hidden), keras.layers.Dense(8)(hidden)],
                          name="encoder")
    codes = keras.Input((8,))
    logits = keras.layers.Dense(784)(keras.layers.Dense(256, activation="relu")(codes))
    decoder = keras.Model(codes, keras.layers.Reshape((28, 28, 1))(logits), name="decoder")
    vae = models.VAE(encoder, decoder, seed=0)
    vae.compile(optimizer=keras.optimizers.Adam(3e-3))
    vae.fit(x_train, epochs=12, batch_size=32, verbose=0)
    return vae


def test_anomaly_threshold_on_unseen_images_flags_the_requested_share(tmp_path, capsys):
    """The false-positive rate on unseen normal digits is the one asked for.

    A model that overfits its training digits scores them better than digits
    it never saw, so a threshold set on its training images flags far more
    than 5% of new normal images. With no held-out images recorded beside
    the model, `anomaly` sets it on the last 20% of the test split (500 of
    2,500 images) and scores the other 2,000. The share of those flagged
    then differs from 0.05 by the threshold's sampling error and the
    binomial error of the count: standard deviation
    sqrt(0.05 * 0.95 * (1/500 + 1/2000)) = 0.011; we allow three.
    """
    from keras_vae import anomaly
    from keras_vae import datasets

    (x_train, _), (x_test, _) = datasets.load("mnist")
    train = datasets.binarize(x_train[:300], seed=0)
    vae = _overfit_vae(train)
    path = tmp_path / "overfit.keras"
    vae.save(path)
    assert cli.main(["anomaly", str(path), "--limit", "2500", "--num-samples", "4",
                     "--output", str(tmp_path / "scores.csv")]) == 0
    report = json.loads(capsys.readouterr().out)
    held_out = report["threshold_images"]
    assert {key: held_out[key] for key in ("dataset", "split", "start", "stop", "count")} == {
        "dataset": "mnist", "split": "test", "start": 2000, "stop": 2500, "count": 500}
    assert report["settings"]["validation_split"] == 0.2 and report["num_images"] == 2000
    tolerance = 3 * np.sqrt(0.05 * 0.95 * (1 / 500 + 1 / 2000))
    assert abs(report["fraction_flagged"] - 0.05) < tolerance
    # The threshold is the 95th percentile of the held-out images' scores (the test
    # split binarized once with --seed 0, as the command reads it), computed here.
    test = datasets.binarize(x_test[:2500], seed=0)
    detector = anomaly.AnomalyDetector(vae, "neg_elbo", num_samples=4, seed=0)
    held_scores = detector.score_samples(test[2000:])
    assert report["threshold"] == pytest.approx(np.quantile(held_scores, 0.95), rel=1e-6)
    # A threshold on the training images, the old way, misses the target by far.
    scores = np.array([float(line.split(",")[2]) for line in
                       (tmp_path / "scores.csv").read_text().splitlines()[1:]])
    naive = detector.fit(train, false_positive_rate=0.05).threshold
    assert np.mean(scores > naive) > 0.05 + tolerance


def test_anomaly_finds_the_held_out_images_a_model_records():
    from keras_vae.cli import anomaly as anomaly_command

    record = anomaly_command.recorded_held_out("pretrained:mnist-default", "mnist")
    assert record["images"] == 10_000 and record["limit"] is None
    assert "mnist-default" in record["record"]
    # Held out of MNIST: nothing is known about another reference.
    assert anomaly_command.recorded_held_out("pretrained:mnist-best", "fashion_mnist") is None
    assert anomaly_command.recorded_held_out("elsewhere/model.keras", "mnist") is None


def test_anomaly_validation_split_errors_are_one_line(runs, capsys):
    vae = str(runs / "vae" / "model.keras")
    assert cli.main(["anomaly", vae, "--limit", "3", "--validation-split", "0.1"]) == 2
    err = capsys.readouterr().err
    assert "leaves no image to set the threshold" in err and err.count("\n") == 1, err
    with pytest.raises(SystemExit):
        cli.main(["anomaly", vae, "--validation-split", "1"])
    assert "expected a number in (0, 1), received '1'" in capsys.readouterr().err
