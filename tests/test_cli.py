import json
import os
import shutil
import subprocess
import sys

import keras
import numpy as np
import pytest

from conftest import bfloat16_nats_tolerance
from keras_vae import cli
from keras_vae import precision

SMALL = ["--limit", "256", "--epochs", "2", "--latent-dim", "4", "--batch-size", "64",
         "--verbose", "0"]


def _run_cli(args, tmp_path):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    return subprocess.run([sys.executable, "-m", "keras_vae", *args], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=600)


def test_train_end_to_end_in_a_new_process(tmp_path):
    result = _run_cli(["train", *SMALL, "--output", "run"], tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    run = tmp_path / "run"
    for name in cli.RUN_FILES:
        assert (run / name).is_file(), name
    history = json.loads((run / "history.json").read_text())
    assert len(history["loss"]) == 2 and "val_loss" in history
    assert history["val_loss"][1] < history["val_loss"][0]
    lines = (run / "history.csv").read_text().splitlines()
    assert lines[0].startswith("epoch,") and len(lines) == 3
    settings = json.loads((run / "run.json").read_text())
    assert settings["settings"]["latent_dim"] == 4 and settings["train_images"] == 256
    model = keras.models.load_model(run / "model.keras")
    assert model.latent_dim == 4
    for name in ("training_curves.png", "samples.png", "reconstructions.png", "latent.png",
                 "plots/epoch_001.png", "plots/epoch_002.png", "plots/samples_002.png"):
        assert (run / name).read_bytes()[:4] == b"\x89PNG", name
    assert not (run / "manifold.png").exists()  # only for a 2-D latent
    assert not [p for p in run.iterdir() if p.name.startswith(".")]  # no temp files left


def test_console_script_is_installed():
    script = shutil.which("keras-vae", path=os.path.dirname(sys.executable))
    assert script is not None
    result = subprocess.run([script, "train", "--help"], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0
    for flag in ("--dataset", "--epochs", "--batch-size", "--latent-dim", "--beta",
                 "--kl-warmup", "--resume", "--plot-every", "--learning-rate", "--seed", "--output",
                 "--overwrite", "--binarize", "--model", "--likelihood", "--prior", "--lr-schedule",
                 "--limit", "--image-size", "--color-mode", "--verbose"):
        assert flag in result.stdout


def test_existing_run_is_refused_and_left_intact(tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    (run / "model.keras").write_bytes(b"precious")
    (run / "history.json").write_text("{}")
    status = cli.main(["train", *SMALL, "--output", str(run)])
    assert status == 2
    err = capsys.readouterr().err
    assert "already holds a run" in err and "--overwrite" in err and "Traceback" not in err
    assert (run / "model.keras").read_bytes() == b"precious"


def test_overwrite_replaces_a_run(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "model.keras").write_bytes(b"old")
    assert cli.main(["train", *SMALL, "--epochs", "1", "--output", str(run),
                     "--overwrite", "--binarize", "none"]) == 0
    assert keras.models.load_model(run / "model.keras").latent_dim == 4


def test_two_dimensional_latent_writes_a_manifold_and_plot_every(tmp_path):
    run = tmp_path / "run"
    args = ["train", "--limit", "128", "--epochs", "2", "--latent-dim", "2",
            "--plot-every", "2", "--verbose", "0", "--output", str(run)]
    assert cli.main(args) == 0
    assert (run / "manifold.png").is_file()
    assert sorted(p.name for p in (run / "plots").iterdir()) == ["epoch_002.png",
                                                                  "samples_002.png"]
    # --overwrite starts the per-epoch pictures afresh.
    assert cli.main(args[:-2] + ["--plot-every", "0", "--output", str(run),
                                 "--overwrite"]) == 0
    assert list((run / "plots").iterdir()) == []


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--dataset", "imagenet"], "Unknown dataset name"),
        (["--dataset", "missing.npz"], "not found"),
        (["--dataset", "corrupt.npz"], "Could not read"),
    ],
)
def test_bad_dataset_gives_one_line_error(tmp_path, capsys, monkeypatch, extra, message):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "corrupt.npz").write_bytes(b"garbage")
    status = cli.main(["train", *SMALL, "--output", "run", *extra])
    assert status == 2
    err = capsys.readouterr().err
    assert err.startswith("keras-vae: error:") and message in err
    assert "Traceback" not in err
    assert not (tmp_path / "run").exists()


def test_bad_flag_values_are_refused(capsys):
    for args in (["--epochs", "0"], ["--beta", "-1"], ["--learning-rate", "nan"],
                 ["--plot-every", "-1"], ["--kl-warmup", "x"]):
        with pytest.raises(SystemExit) as info:
            cli.main(["train", *args])
        assert info.value.code == 2
        assert "expected a" in capsys.readouterr().err


def test_output_that_is_a_file_is_refused(tmp_path, capsys):
    target = tmp_path / "file"
    target.write_text("x")
    assert cli.main(["train", *SMALL, "--output", str(target)]) == 2
    assert "must be a folder" in capsys.readouterr().err
    assert target.read_text() == "x"


def test_train_on_user_npz_with_colour_images(tmp_path):
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "colour.npz",
             x_train=rng.integers(0, 256, (64, 16, 16, 3), dtype=np.uint8),
             y_train=np.zeros(64), x_test=rng.integers(0, 256, (16, 16, 16, 3), dtype=np.uint8),
             y_test=np.zeros(16))
    status = cli.main(["train", *SMALL, "--dataset", str(tmp_path / "colour.npz"),
                       "--output", str(tmp_path / "run")])
    assert status == 0
    model = keras.models.load_model(tmp_path / "run" / "model.keras")
    assert model.image_shape == (16, 16, 3)


@pytest.mark.parametrize("extra, message", [
    (["--initial-scale", "0.05"], "only ['gaussian', 'gaussian_pixel', 'discretized_logistic'] "
     "have. Received: --likelihood bernoulli --initial-scale 0.05"),
    (["--likelihood", "discretized_logistic", "--binarize", "none", "--initial-scale", "1e-05"],
     "--initial-scale: initial_scale must be greater than min_scale=0.0001"),
])
def test_initial_scale_is_refused_where_it_cannot_apply(tmp_path, capsys, extra, message):
    status = cli.main(["train", *SMALL, "--output", str(tmp_path / "run"), *extra])
    err = capsys.readouterr().err
    assert status == 2 and message in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "run").exists()


def test_initial_scale_starts_the_learned_scale(tmp_path):
    # One step at Adam's learning rate 1e-3 moves log(scale - min_scale) by about 1e-3.
    args = ["train", "--limit", "64", "--epochs", "1", "--batch-size", "64", "--latent-dim", "2",
            "--plot-every", "0", "--verbose", "0", "--no-tensorboard", "--binarize", "none",
            "--likelihood", "discretized_logistic"]
    for scale in ("0.05", None):
        output = tmp_path / f"run{scale}"
        flags = [] if scale is None else ["--initial-scale", scale]
        assert cli.main([*args, *flags, "--output", str(output)]) == 0
        layer = keras.models.load_model(output / "model.keras").likelihood_layer
        start = 1.0 + layer.min_scale if scale is None else float(scale)
        assert np.allclose(layer.scale().numpy(), start, rtol=3e-3), layer.scale().numpy()
        assert json.loads((output / "run.json").read_text())["settings"]["initial_scale"] == (
            None if scale is None else float(scale))


def _history(run):
    return json.loads((run / "history.json").read_text())


def test_same_seed_same_history_different_seed_differs(tmp_path):
    args = ["train", "--limit", "256", "--epochs", "2", "--latent-dim", "4", "--batch-size", "64",
            "--plot-every", "0", "--verbose", "0"]
    assert cli.main(args + ["--output", str(tmp_path / "a")]) == 0
    assert cli.main(args + ["--output", str(tmp_path / "b")]) == 0
    assert cli.main(args + ["--seed", "1", "--output", str(tmp_path / "c")]) == 0
    assert _history(tmp_path / "a") == _history(tmp_path / "b")
    assert _history(tmp_path / "a")["loss"] != _history(tmp_path / "c")["loss"]


def test_interrupted_run_is_refused_without_resume(tmp_path, capsys):
    run = tmp_path / "run"
    (run / cli.BACKUP_DIR).mkdir(parents=True)
    assert cli.main(["train", *SMALL, "--output", str(run)]) == 2
    assert "interrupted run" in capsys.readouterr().err
    assert cli.main(["train", *SMALL, "--output", str(tmp_path / "none"), "--resume"]) == 2
    assert "found no interrupted run" in capsys.readouterr().err
    assert cli.main(["train", *SMALL, "--output", str(run), "--resume", "--overwrite"]) == 2
    assert "pass one" in capsys.readouterr().err


def test_huge_learning_rate_stops_with_a_clear_message(tmp_path, capsys):
    run = tmp_path / "run"
    status = cli.main(["train", *SMALL, "--learning-rate", "1e12", "--output", str(run)])
    assert status == 2
    err = capsys.readouterr().err
    assert "Training diverged at epoch 1" in err and "Traceback" not in err
    assert not (run / "model.keras").exists()
    model = keras.models.load_model(run / "last_good.keras")
    assert all(np.all(np.isfinite(w)) for w in model.get_weights())
    assert not (run / cli.BACKUP_DIR).exists()


def test_resume_after_sigkill(tmp_path):
    """Kills a training process mid-run and resumes it to the planned end."""
    import signal
    import time

    args = ["train", "--limit", "1024", "--epochs", "6", "--latent-dim", "4", "--batch-size",
            "32", "--kl-warmup", "4", "--verbose", "0"]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    process = subprocess.Popen([sys.executable, "-m", "keras_vae", *args, "--output", "run"],
                               cwd=tmp_path, env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, text=True)
    stored = tmp_path / "run" / cli.BACKUP_DIR / "history.json"
    deadline = time.time() + 300
    while time.time() < deadline and process.poll() is None:
        if stored.exists() and len(json.loads(stored.read_text()).get("loss", [])) >= 2:
            break
        time.sleep(0.05)
    assert process.poll() is None, "training finished before it could be interrupted"
    process.send_signal(signal.SIGKILL)
    process.wait()
    before = json.loads(stored.read_text())
    # Epochs whose weights were checkpointed (the history may hold one more).
    metadata = tmp_path / "run" / cli.BACKUP_DIR / "training_metadata.json"
    done = json.loads(metadata.read_text())["epoch"]
    assert 1 <= done < 6 and len(before["loss"]) in (done, done + 1)
    assert not (tmp_path / "run" / "model.keras").exists()

    result = _run_cli([*args, "--output", "run", "--resume"], tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    resumed = _history(tmp_path / "run")
    assert len(resumed["loss"]) == 6
    assert resumed["loss"][:done] == before["loss"][:done]
    # The KL warm-up continued where it was: beta = min(1, epoch / 4).
    assert resumed["beta"] == [0.0, 0.25, 0.5, 0.75, 1.0, 1.0]
    # Only the epochs after the interruption were trained again.
    plots = sorted(p.name for p in (tmp_path / "run" / "plots").glob("epoch_*.png"))
    assert plots == [f"epoch_{i:03d}.png" for i in range(1, 7)]

    straight = _run_cli([*args, "--output", "straight"], tmp_path)
    assert straight.returncode == 0, straight.stderr[-3000:]
    reference = _history(tmp_path / "straight")
    # The first resumed epoch starts from the checkpoint (a restart from scratch would be
    # near epoch 1's loss); it is close to, not bit-identical with, the uninterrupted run.
    assert abs(resumed["val_loss"][done] - reference["val_loss"][done]) < (
        0.02 * reference["val_loss"][done])
    assert resumed["val_loss"][-1] < resumed["val_loss"][0]
    assert not (tmp_path / "run" / cli.BACKUP_DIR).exists()


def test_evaluate_prints_json_report(tmp_path, capsys):
    run = tmp_path / "run"
    assert cli.main(["train", *SMALL, "--plot-every", "0", "--output", str(run)]) == 0
    capsys.readouterr()
    status = cli.main(["evaluate", str(run / "model.keras"), "--num-samples", "8",
                       "--limit", "64", "--verbose", "0"])
    assert status == 0
    report = json.loads(capsys.readouterr().out)
    for key in ("neg_elbo", "nll", "bits_per_dim", "mse", "fid", "settings"):
        assert key in report
    # Bernoulli on binary pixels is a probability mass: bits = nats / (784 ln 2).
    assert report["bits_per_dim"] == pytest.approx(report["nll"] / (784 * np.log(2)),
                                                   rel=1e-6)
    assert report["fid"]["label"] == "MNIST-classifier FID"
    assert report["fid"]["extractor"] == "mnist_classifier" and report["fid"]["value"] > 0
    assert report["settings"] == {"dataset": "mnist", "split": "test", "num_images": 64,
                                  "num_samples": 8, "binarization": "static, seed 0",
                                  "image_shape": [28, 28, 1], "seed": 0,
                                  "precision": {"policy": "float32",
                                                "reason": "float32 was requested",
                                                "saved_policy": "float32"}}
    assert report["hardware"] == json.loads(json.dumps(precision.describe_hardware()))
    assert set(report["mse"]) == {"mse_per_pixel", "mse_per_image"}
    # The same weights evaluated in bfloat16: the same noise, the bound within 0.1 nats
    # on bfloat16 hardware, one bfloat16 rounding of it where TensorFlow emulates it.
    assert cli.main(["evaluate", str(run / "model.keras"), "--num-samples", "8",
                     "--limit", "64", "--verbose", "0", "--fid", "none",
                     "--precision", "mixed_bfloat16"]) == 0
    captured = capsys.readouterr()
    fast = json.loads(captured.out)
    assert captured.err.strip() == "keras-vae: precision mixed_bfloat16 was requested"
    assert fast["settings"]["precision"]["policy"] == "mixed_bfloat16"
    assert fast["nll"] != report["nll"]
    assert abs(fast["nll"] - report["nll"]) < bfloat16_nats_tolerance(report["nll"])


def test_evaluate_names_a_bad_model_file(tmp_path, capsys):
    bad = tmp_path / "broken.keras"
    bad.write_bytes(b"PK\x03\x04 truncated")
    assert cli.main(["evaluate", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "broken.keras" in err and "Traceback" not in err


def test_evaluate_refuses_a_model_that_is_not_a_vae(tmp_path, capsys):
    encoder = keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Flatten(),
                                keras.layers.Dense(2)])
    encoder.save(tmp_path / "plain.keras")
    assert cli.main(["evaluate", str(tmp_path / "plain.keras")]) == 2
    assert "not a keras_vae model" in capsys.readouterr().err


def _strict_json(text):
    """The report parsed as strict JSON: NaN or Infinity fails the test."""
    return json.loads(text, parse_constant=lambda token: pytest.fail(f"not JSON: {token}"))


def _evaluation_images(mnist_small, limit):
    """The MNIST test images keras-vae evaluate scores with --limit and seed 0 (static)."""
    from keras_vae import datasets

    return datasets.binarize(mnist_small[1][0][:limit], seed=0)


def test_evaluate_reports_what_applies_to_a_vqvae(tmp_path, capsys, mnist_small):
    from keras_vae import evaluation
    from keras_vae import models

    keras.utils.set_random_seed(0)
    x = (mnist_small[0][0][:64] > 0.5).astype("float32")  # the tiny model's training images
    model = models.build_vqvae(num_embeddings=8, embedding_dim=4, filters=(8, 8),
                               prior_filters=16, prior_blocks=1, seed=0)
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    model.fit(x, batch_size=32, epochs=1, verbose=0)
    model.save(tmp_path / "unfitted.keras")
    model.fit_prior(x, epochs=2, batch_size=32, verbose=0)
    model.save(tmp_path / "vq.keras")
    capsys.readouterr()

    args = ["--limit", "32", "--verbose", "0", "--fid", "mnist_classifier"]
    assert cli.main(["evaluate", str(tmp_path / "vq.keras"), *args]) == 0
    out, err = capsys.readouterr()
    report = _strict_json(out)
    assert err == ""
    assert list(report) == ["model", "settings", "hardware", "code_bits_per_image",
                            "prior_nll_bits", "prior_nll_bits_note", "codebook",
                            "not_reported", "mse", "fid"]
    assert "num_samples" not in report["settings"] and report["settings"]["num_images"] == 32
    assert report["not_reported"] == ["neg_elbo, nll and bits_per_dim: VQVAE has no "
                                      "likelihood bound (log_weights)"]
    # Independent references in NumPy, from the saved weights.
    data = _evaluation_images(mnist_small, 32)
    model = keras.models.load_model(tmp_path / "vq.keras")
    codebook = model.quantizer.embeddings.numpy().astype("float64")
    z_e = model.encoder(data).numpy().reshape(-1, 4).astype("float64")
    codes = ((z_e[:, None, :] - codebook[None]) ** 2).sum(-1).argmin(1).reshape(32, 7, 7)
    logits = model.decoder(codebook[codes].astype("float32")).numpy().astype("float64")
    reconstructions = 1 / (1 + np.exp(-logits))
    squared = (reconstructions - data) ** 2
    assert report["mse"]["mse_per_pixel"] == pytest.approx(squared.mean(), rel=1e-4)
    assert report["mse"]["mse_per_image"] == pytest.approx(squared.sum() / 32, rel=1e-4)
    prior_logits = model.prior(codes.astype("int32")).numpy().astype("float64")
    log_p = prior_logits - np.log(np.exp(prior_logits).sum(-1, keepdims=True))
    picked = np.take_along_axis(log_p, codes[..., None], -1)[..., 0]
    assert report["prior_nll_bits"] == pytest.approx(
        np.mean(-picked.sum(axis=(1, 2)) / np.log(2)), rel=1e-4)
    assert report["prior_nll_bits_note"] is None
    assert report["code_bits_per_image"] == pytest.approx(49 * np.log2(8))
    counts = np.bincount(codes.reshape(-1), minlength=8)
    p = counts[counts > 0] / counts.sum()
    book = report["codebook"]
    assert book["perplexity"] == pytest.approx(np.exp(-(p * np.log(p)).sum()), rel=1e-9)
    assert book["codes_used"] == np.count_nonzero(counts)
    assert book["fraction_used"] == pytest.approx(np.count_nonzero(counts) / 8)
    assert book["collapsed"] == (np.count_nonzero(counts) / 8 < book["collapse_threshold"])
    # FID of 32 samples drawn from the prior (seed 0): tr (s1 s2)^(1/2) is the sum of the
    # square roots of the eigenvalues of s1 s2 (real and >= 0 for covariances).
    extractor = evaluation.mnist_classifier_features()
    real = extractor(mnist_small[1][0][:32]).astype("float64")
    fake = extractor(model.sample(32, seed=0)).astype("float64")
    m1, m2 = real.mean(0), fake.mean(0)
    s1, s2 = np.cov(real, rowvar=False), np.cov(fake, rowvar=False)
    root_trace = np.sqrt(np.clip(np.linalg.eigvals(s1 @ s2).real, 0, None)).sum()
    expected = np.sum((m1 - m2) ** 2) + np.trace(s1) + np.trace(s2) - 2 * root_trace
    assert report["fid"]["label"] == "MNIST-classifier FID"
    assert report["fid"]["value"] == pytest.approx(expected, rel=1e-3)
    assert report["fid"]["num_generated"] == 32

    # Before its prior is fitted: no prior NLL and no FID, each with the reason.
    assert cli.main(["evaluate", str(tmp_path / "unfitted.keras"), *args]) == 0
    unfitted = _strict_json(capsys.readouterr().out)
    assert unfitted["prior_nll_bits"] is None and unfitted["fid"] is None
    assert "prior over code maps has not been fitted" in unfitted["prior_nll_bits_note"]
    assert "prior is not fitted" in unfitted["fid_note"]


def test_evaluate_report_of_a_vae_keeps_its_keys_and_values(tmp_path, capsys, mnist_small):
    from conftest import tiny_vae
    from keras_vae import evaluation

    keras.utils.set_random_seed(0)
    model = tiny_vae()
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    model.fit((mnist_small[0][0][:64] > 0.5).astype("float32"), batch_size=32, epochs=1,
              verbose=0)
    model.save(tmp_path / "vae.keras")
    capsys.readouterr()
    assert cli.main(["evaluate", str(tmp_path / "vae.keras"), "--limit", "16",
                     "--num-samples", "4", "--fid", "none", "--verbose", "0"]) == 0
    report = _strict_json(capsys.readouterr().out)
    # The keys, in the order they had before VQ-VAEs were evaluated.
    assert list(report) == ["model", "settings", "hardware", "neg_elbo", "nll",
                            "bits_per_dim", "bits_per_dim_note", "mse", "fid", "fid_note"]
    assert list(report["settings"]) == ["dataset", "split", "num_images", "num_samples",
                                        "binarization", "image_shape", "seed", "precision"]
    data = _evaluation_images(mnist_small, 16)
    model = keras.models.load_model(tmp_path / "vae.keras")
    expected = evaluation.likelihood_report(model, data, num_samples=4, seed=0, verbose=0)
    for key in ("neg_elbo", "nll", "bits_per_dim", "bits_per_dim_note"):
        assert report[key] == expected[key], key
    assert report["mse"] == evaluation.reconstruction_mse(model, data)
    assert report["fid"] is None and report["fid_note"] == "--fid none"


def test_train_a_vqvae_with_its_prior(tmp_path, capsys):
    run = tmp_path / "run"
    status = cli.main(["train", "--model", "vqvae", "--limit", "64", "--epochs", "1",
                       "--batch-size", "32", "--num-embeddings", "8", "--embedding-dim", "4",
                       "--prior-epochs", "1", "--plot-every", "0", "--verbose", "0",
                       "--output", str(run)])
    out, err = capsys.readouterr()
    assert status == 0, err
    summary = json.loads(out)
    for key in ("loss", "reconstruction_loss", "codebook_loss", "commitment_loss",
                "perplexity", "codebook_usage"):
        assert np.isfinite(summary[key]) and np.isfinite(summary[f"val_{key}"]), key
    assert 0 < summary["prior_nll_bits"] < 49 * 3 + 1
    report = json.loads((run / "run.json").read_text())
    assert report["settings"]["num_embeddings"] == 8 and report["settings"]["prior_epochs"] == 1
    assert report["prior"]["epochs"] == 1
    assert report["prior"]["nll_bits"] == pytest.approx(summary["prior_nll_bits"])
    assert not (run / "latent.png").exists() and (run / "samples.png").is_file()
    model = keras.models.load_model(run / "model.keras")
    assert type(model).__name__ == "VQVAE" and model.num_embeddings == 8 and model.prior_fitted
    # The VAEs' flags are refused in one line.
    status = cli.main(["train", "--model", "vqvae", "--kl-warmup", "2", "--limit", "64",
                       "--verbose", "0", "--output", str(tmp_path / "other")])
    out, err = capsys.readouterr()
    assert status == 2 and out == "" and err.count("\n") == 1
    assert "--kl-warmup applies to the VAEs" in err and "Received: --kl-warmup 2" in err


def _tensorboard_tags(folder):
    """`{tag: steps}` of the summaries in a TensorBoard run folder (TensorBoard's reader)."""
    from tensorboard.backend.event_processing import event_accumulator

    accumulator = event_accumulator.EventAccumulator(
        str(folder), size_guidance={event_accumulator.TENSORS: 0})
    accumulator.Reload()
    return {tag: [event.step for event in accumulator.Tensors(tag)]
            for tag in accumulator.Tags()["tensors"]}


def test_train_writes_tensorboard_logs_and_a_log_file_without_control_characters(tmp_path):
    result = _run_cli(["train", *SMALL, "--verbose", "1", "--kl-warmup", "2",
                       "--output", "run"], tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    # stderr is a pipe here, as a log file would be: one line per epoch, no redrawn bar.
    assert "\r" not in result.stderr and "\x1b[" not in result.stderr
    assert result.stderr.count("4/4 - ") == 2, result.stderr[-2000:]  # 4 steps an epoch
    logs = tmp_path / "run" / "logs"
    train = _tensorboard_tags(logs / "train")
    for tag in ("epoch_loss", "epoch_reconstruction_loss", "epoch_kl_loss",
                "epoch_learning_rate", "epoch_beta"):
        assert train.get(tag) == [0, 1], (tag, sorted(train))
    validation = _tensorboard_tags(logs / "validation")
    for tag in ("epoch_loss", "epoch_reconstruction_loss", "epoch_kl_loss"):
        assert validation.get(tag) == [0, 1], (tag, sorted(validation))
    images = _tensorboard_tags(logs / "images")
    assert images == {"reconstructions": [1, 2], "samples": [1, 2]}
    # The KL weight logged is the warm-up's: 0 then 0.5 of the target 1.
    history = json.loads((tmp_path / "run" / "history.json").read_text())
    assert history["beta"] == [0.0, 0.5]


def test_no_tensorboard_writes_no_logs(tmp_path):
    assert cli.main(["train", *SMALL, "--epochs", "1", "--plot-every", "0",
                     "--no-tensorboard", "--output", str(tmp_path / "run")]) == 0
    assert not (tmp_path / "run" / "logs").exists()


def test_fit_verbosity_keeps_the_bar_for_a_terminal_only():
    from keras_vae.cli import train

    class Stream:
        def __init__(self, tty):
            self.tty = tty

        def isatty(self):
            return self.tty

    assert train.fit_verbosity(1, Stream(True)) == 1
    assert train.fit_verbosity(1, Stream(False)) == 2
    assert [train.fit_verbosity(v, Stream(False)) for v in (0, 2)] == [0, 2]
