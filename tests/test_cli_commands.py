"""The command line as a whole: stdout holds only JSON, models decide image shapes,
user errors are one line and bugs keep their traceback, the README lists the real flags."""

import csv
import json
import os
import pathlib
import re
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from keras_vae import _backend
from keras_vae import cli
from keras_vae import saving
from keras_vae.cli import evaluate
from keras_vae.models.vae import build_vae

REPO = pathlib.Path(__file__).resolve().parent.parent


def _run_cli(args, cwd, quiet=True):
    env = {key: value for key, value in os.environ.items() if key != "TF_CPP_MIN_LOG_LEVEL"}
    if quiet:
        env["TF_CPP_MIN_LOG_LEVEL"] = "2"
    env["PYTHONPATH"] = str(REPO)
    return subprocess.run([sys.executable, "-m", "keras_vae", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def colour_run(tmp_path_factory):
    """A folder of 32x32 RGB images in two classes and a VAE trained on it by the CLI."""
    root = tmp_path_factory.mktemp("colour")
    rng = np.random.default_rng(0)
    for label in ("cats", "dogs"):
        (root / "photos" / label).mkdir(parents=True)
        for i in range(30):
            pixels = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(root / "photos" / label / f"{i}.png")
    status = cli.main(["train", "--dataset", str(root / "photos"), "--image-size", "32", "32",
                       "--color-mode", "rgb", "--binarize", "none",
                       "--likelihood", "continuous_bernoulli", "--epochs", "1",
                       "--latent-dim", "4", "--plot-every", "0", "--verbose", "0",
                       "--output", str(root / "run")])
    assert status == 0
    return root


def test_evaluate_reads_the_image_shape_from_the_model_and_prints_only_json(colour_run):
    result = _run_cli(["evaluate", "run/model.keras", "--dataset", "./photos",
                       "--binarize", "none", "--num-samples", "2", "--verbose", "0"],
                      colour_run)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout)  # nothing but the JSON on stdout
    assert report["settings"]["image_shape"] == [32, 32, 3]
    assert report["settings"]["num_images"] == 12  # 20% of 60 images
    assert np.isfinite(report["neg_elbo"]) and np.isfinite(report["nll"])
    # A continuous density on grey levels has no bits per dimension.
    assert report["bits_per_dim"] is None and report["bits_per_dim_note"]
    # No MNIST classifier for colour images and no Inception weights offline.
    assert report["fid"] is None and report["fid_note"]


def test_evaluate_refuses_flags_that_disagree_with_the_model(colour_run, capsys):
    model = str(colour_run / "run" / "model.keras")
    for flags, message in ((["--image-size", "28", "28"], "takes 32x32 images"),
                           (["--color-mode", "grayscale"], "3-channel (rgb)"),
                           (["--fid", "mnist_classifier"], "needs 28x28x1 images")):
        assert cli.main(["evaluate", model, "--dataset", str(colour_run / "photos"),
                         *flags]) == 2
        err = capsys.readouterr().err
        assert err.startswith("keras-vae: error:") and message in err
        assert err.count("\n") == 1, err


def test_command_line_starts_without_tensorflow_log_lines(tmp_path):
    result = _run_cli(["evaluate", "missing.keras"], tmp_path, quiet=False)
    assert result.returncode == 2
    assert result.stderr == "keras-vae: error: No model file at missing.keras.\n"
    assert result.stdout == ""


@pytest.mark.parametrize("argv, orig_argv, environ, quiet", [
    (["/venv/bin/keras-vae", "train"], ["python", "/venv/bin/keras-vae", "train"], {}, True),
    (["-m", "train"], ["python", "-m", "keras_vae", "train"], {}, True),
    (["/venv/bin/keras-vae", "train", "--verbose", "2"], [], {}, False),
    (["/venv/bin/keras-vae", "train", "--verbose=2"], [], {}, False),
    (["/venv/bin/keras-vae"], [], {"TF_CPP_MIN_LOG_LEVEL": "0"}, False),
    (["script.py"], ["python", "script.py"], {}, False),  # a library import
    (["-c"], ["python", "-c", "import keras_vae"], {}, False),
])
def test_start_up_logs_are_quiet_only_for_the_command(argv, orig_argv, environ, quiet):
    before = dict(environ)
    with _backend.quiet_start_up_logs(argv, orig_argv, environ) as silenced:
        assert silenced is quiet
    assert environ == ({**before, "TF_CPP_MIN_LOG_LEVEL": "3"} if quiet else before)


def test_a_bug_keeps_its_traceback(monkeypatch, tmp_path):
    def broken(args):
        raise KeyError("a bug")

    monkeypatch.setattr(evaluate, "run", broken)
    with pytest.raises(KeyError):
        cli.main(["evaluate", str(tmp_path / "m.keras")])


def test_an_error_raised_while_tracing_is_one_line_without_tensorflows_preamble(
        monkeypatch, tmp_path, capsys):
    """A user error raised inside a tf.function reads "in user code:" first; the cause is last."""
    import tensorflow as tf

    @tf.function
    def traced(x):
        raise ValueError(f"Input 0 of layer 'top_decoder' is incompatible. Received: {x.shape}")

    def run(args):
        return traced(tf.zeros([2, 3]))

    monkeypatch.setattr(evaluate, "run", run)
    assert cli.main(["evaluate", str(tmp_path / "m.keras")]) == 2
    err = capsys.readouterr().err
    assert err == ("keras-vae: error: Input 0 of layer 'top_decoder' is incompatible. "
                   "Received: (2, 3)\n")


@pytest.fixture(scope="module")
def mnist_vae(tmp_path_factory):
    path = tmp_path_factory.mktemp("vae") / "model.keras"
    saving.save_model(build_vae(latent_dim=2, seed=0), path)
    return path


def test_anomaly_scores_are_plain_numbers(mnist_vae, tmp_path):
    scores = tmp_path / "scores.csv"
    assert cli.main(["anomaly", str(mnist_vae), "--limit", "40", "--num-samples", "2",
                     "--output", str(scores)]) == 0
    with open(scores, newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 32  # the last 8 of the 40 set the threshold and are not scored
    values = [float(row["score"]) for row in rows]  # "np.float64(...)" would not parse
    assert all(np.isfinite(values)) and len(set(values)) > 1
    assert all(re.fullmatch(r"-?[0-9.e+-]+", row["score"]) for row in rows)


def test_anomaly_never_overwrites_a_file_or_the_model(mnist_vae, tmp_path, capsys):
    existing = tmp_path / "scores.csv"
    existing.write_text("keep me")
    args = ["anomaly", str(mnist_vae), "--limit", "20", "--num-samples", "2"]
    assert cli.main([*args, "--output", str(existing)]) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert existing.read_text() == "keep me"
    model_bytes = mnist_vae.read_bytes()
    assert cli.main([*args, "--output", str(mnist_vae), "--overwrite"]) == 2
    assert "is the model being read" in capsys.readouterr().err
    assert mnist_vae.read_bytes() == model_bytes
    assert cli.main([*args, "--output", str(existing), "--overwrite"]) == 0
    assert existing.read_text().startswith("index,label,score,flagged\n")


def _readme_flags(command):
    """The flags the README lists for `keras-vae COMMAND`."""
    text = (REPO / "README.md").read_text()
    match = re.search(rf"Flags of `keras-vae {command}`:(.*?)(?:\n\n|$)", text, re.S)
    assert match, f"README has no 'Flags of `keras-vae {command}`:' paragraph"
    return set(re.findall(r"`(--[a-z-]+)", match.group(1)))


@pytest.mark.parametrize("command", ["train", "evaluate", "anomaly", "augment", "explore",
                                     "export"])
def test_readme_lists_the_flags_argparse_has(command):
    parser = cli.build_parser()
    subparsers = next(action for action in parser._actions
                      if action.dest == "command").choices
    flags = {option for action in subparsers[command]._actions
             for option in action.option_strings if option.startswith("--")} - {"--help"}
    assert _readme_flags(command) == flags
