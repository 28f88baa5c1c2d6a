"""benchmarks/likelihood_protocol.py at a tiny size: selection, resume, one test evaluation."""

import json
import math

import keras
import numpy as np
import pytest

from benchmarks import likelihood_protocol
from keras_vae import datasets
from keras_vae import evaluation
from keras_vae import precision
from keras_vae import saving

TINY = ["--train-images", "128", "--validation-images", "64", "--test-images", "24",
        "--latent-dim", "2", "--filters", "4", "--hidden-units", "16", "--batch-size", "64",
        "--test-samples", "6", "3", "--binarization-seeds", "0", "1",
        "--importance-samples", "2", "--validation-samples", "2", "--patience", "5"]


def test_the_module_quotes_its_command_and_has_main():
    assert "python -m benchmarks.likelihood_protocol" in likelihood_protocol.__doc__
    assert callable(likelihood_protocol.main)


def test_a_run_in_two_sittings_selects_on_validation_and_evaluates_the_test_set_once(
        tmp_path, monkeypatch):
    folder, results = tmp_path / "run", tmp_path / "RESULTS.md"
    tested = []
    original = likelihood_protocol.evaluate

    def counting_evaluate(*args):
        tested.append(args)
        return original(*args)

    monkeypatch.setattr(likelihood_protocol, "evaluate", counting_evaluate)
    # The first sitting ends after one epoch (any budget is shorter than two).
    first = likelihood_protocol.main(
        TINY + ["--epochs", "3", "--sitting-minutes", "1e-6", "--output", str(folder),
                "--results", str(results)])
    assert first["epochs"] == 1 and first["stopped"] == likelihood_protocol.SITTING_OVER
    assert not tested and not results.exists() and not first["test"]
    minutes_first = first["training_minutes"]
    state = likelihood_protocol.main(["--output", str(folder), "--resume",
                                      "--results", str(results)])
    assert len(tested) == 1
    assert state["epochs"] == 3 and state["stopped"] == "--epochs 3"
    assert [entry["epoch"] for entry in state["history"]] == [1, 2, 3]
    assert state["training_minutes"] > minutes_first  # the second sitting's added
    assert len(state["commands"]) == 2 and "--resume" in state["commands"][1]

    # The selected model is the epoch with the lowest validation figure.
    figures = [entry["validation"] for entry in state["history"]]
    assert state["best_epoch"] == int(np.argmin(figures)) + 1
    best = saving.load_model(folder / "best.keras")
    assert best.importance_samples == 2
    (x_train, _), (x_test, _) = datasets.load("mnist")
    x_val = datasets.binarize(x_train[-64:], seed=0)
    again = -evaluation.log_likelihood(best, x_val, num_samples=2, seed=0, verbose=0)["iwae"]
    assert float(again.mean()) == pytest.approx(min(figures), rel=1e-6)

    # Test NLL: the same figure keras-vae evaluate --seed S gives, with its standard error.
    for seed in (0, 1):
        for k in (6, 3):
            nll = -evaluation.log_likelihood(best, datasets.binarize(x_test[:24], seed=seed),
                                             num_samples=k, seed=seed, verbose=0)["iwae"]
            entry = state["test"][f"seed {seed}, K {k}"]
            assert entry["nll"] == pytest.approx(nll.mean(), rel=1e-6)
            assert entry["standard_error"] == pytest.approx(
                np.std(nll, ddof=1) / math.sqrt(24), rel=1e-6)
    text = results.read_text()
    assert text.count("| k=2, conv 4, dense 16, latent 2, normal prior | 3 (") == 2
    six = [state["test"][f"seed {seed}, K 6"]["nll"] for seed in (0, 1)]
    assert f"| 24 | 6 | {np.mean(six):.2f} |" in text
    assert f"{max(six) - min(six):.2f} |" in text
    assert json.loads((folder / "state.json").read_text())["test"] == state["test"]

    # A resumed finished run neither trains nor evaluates again.
    likelihood_protocol.main(["--output", str(folder), "--resume", "--results",
                              str(tmp_path / "other.md")])
    assert len(tested) == 2  # called, but every (draw, K) was done
    assert json.loads((folder / "state.json").read_text())["epochs"] == 3

    # A new K on a finished run: only the new (draw, K) are evaluated, the rest kept.
    done = dict(state["test"])
    more = likelihood_protocol.main(["--output", str(folder), "--resume", "--test-samples",
                                     "9", "6", "--results", str(tmp_path / "more.md")])
    assert more["epochs"] == 3 and more["settings"]["test_samples"] == [9, 6]
    assert set(more["test"]) == set(done) | {"seed 0, K 9", "seed 1, K 9"}
    assert all(more["test"][key] == done[key] for key in done)
    nine = -evaluation.log_likelihood(best, datasets.binarize(x_test[:24], seed=1),
                                      num_samples=9, seed=1, verbose=0)["iwae"]
    assert more["test"]["seed 1, K 9"]["nll"] == pytest.approx(nine.mean(), rel=1e-6)
    assert "| 24 | 9 |" in (tmp_path / "more.md").read_text()


def test_precision_builds_the_model_in_the_policy_and_labels_the_row(tmp_path):
    state = likelihood_protocol.main(
        TINY + ["--epochs", "1", "--precision", "mixed_bfloat16", "--output",
                str(tmp_path / "run"), "--results", str(tmp_path / "RESULTS.md")])
    assert keras.config.dtype_policy().name == "float32"
    best = saving.load_model(tmp_path / "run" / "best.keras")
    assert best.decoder.get_layer("deconv_0").compute_dtype == "bfloat16"
    assert best.encoder.get_layer("z_log_var").compute_dtype == "float32"
    assert state["settings"]["precision"] == "mixed_bfloat16"
    assert "latent 2, normal prior, mixed_bfloat16 | 1 (1) |" in (
        tmp_path / "RESULTS.md").read_text()


def test_eval_precision_computes_the_test_bounds_in_a_copy_and_keeps_the_others(tmp_path):
    folder = tmp_path / "run"
    trained = likelihood_protocol.main(
        TINY + ["--epochs", "1", "--output", str(folder), "--results", str(tmp_path / "a.md")])
    done = dict(trained["test"])
    state = likelihood_protocol.main(["--output", str(folder), "--resume", "--eval-precision",
                                      "mixed_bfloat16", "--results", str(tmp_path / "b.md")])
    assert state["epochs"] == 1 and state["settings"]["precision"] == "float32"
    fast_keys = {f"seed {seed}, K {k}, mixed_bfloat16" for seed in (0, 1) for k in (6, 3)}
    assert set(state["test"]) == set(done) | fast_keys
    assert all(state["test"][key] == done[key] for key in done)  # float32's kept
    best = saving.load_model(folder / "best.keras")
    copy = precision.with_policy(best, "mixed_bfloat16")
    (_, _), (x_test, _) = datasets.load("mnist")
    for seed in (0, 1):
        x = datasets.binarize(x_test[:24], seed=seed)
        for k in (6, 3):
            entry = state["test"][f"seed {seed}, K {k}, mixed_bfloat16"]
            assert entry["precision"] == "mixed_bfloat16"
            nll = -evaluation.log_likelihood(copy, x, num_samples=k, seed=seed, verbose=0)["iwae"]
            assert entry["nll"] == pytest.approx(nll.mean(), rel=1e-6)
            # The same weights, noise and images: within bfloat16's rounding, not equal.
            single = done[f"seed {seed}, K {k}"]["nll"]
            assert entry["nll"] != single and abs(entry["nll"] - single) < 0.5
    assert "normal prior; test bounds by a mixed_bfloat16 copy of its weights | 1 (1) |" in (
        tmp_path / "b.md").read_text()
    assert "copy" not in (tmp_path / "a.md").read_text()


def test_two_stochastic_layers_with_a_kl_warm_up(tmp_path):
    """--model hierarchical trains a HierarchicalVAE; --warmup-epochs sets beta per epoch."""
    folder, results = tmp_path / "run", tmp_path / "RESULTS.md"
    first = likelihood_protocol.main(
        TINY + ["--model", "hierarchical", "--bottom-latent-dim", "3", "--top-hidden-units",
                "8", "--warmup-epochs", "2", "--epochs", "3", "--sitting-minutes", "1e-6",
                "--output", str(folder)])
    assert first["epochs"] == 1  # the warm-up goes on in the next sitting
    state = likelihood_protocol.main(["--output", str(folder), "--resume",
                                      "--results", str(results)])
    best = saving.load_model(folder / "best.keras")
    assert type(best).__name__ == "HierarchicalVAE"
    assert best.top_encoder.get_layer("hidden_0").units == 8
    assert [entry["beta"] for entry in state["history"]] == [0.0, 0.5, 1.0]
    (_, _), (x_test, _) = datasets.load("mnist")
    nll = -evaluation.log_likelihood(best, datasets.binarize(x_test[:24], seed=1),
                                     num_samples=6, seed=1, verbose=0)["iwae"]
    assert state["test"]["seed 1, K 6"]["nll"] == pytest.approx(nll.mean(), rel=1e-6)
    assert ("| two stochastic layers (z1 3, z2 2, tanh 8), k=2, conv 4, dense 16, normal "
            "prior, KL warm-up 2 epochs | 3 (") in results.read_text()


def test_a_cosine_learning_rate_reaches_zero_at_the_last_epoch(tmp_path):
    folder = tmp_path / "run"
    state = likelihood_protocol.main(
        TINY + ["--lr-schedule", "cosine", "--learning-rate", "0.01", "--epochs", "2",
                "--sitting-minutes", "1e-6", "--output", str(folder)])
    assert state["epochs"] == 1  # a sitting of one epoch: half way, the rate is 0.005
    half = saving.load_model(folder / "last.keras").optimizer
    assert float(half.learning_rate) == pytest.approx(0.005, rel=1e-4)
    likelihood_protocol.main(["--output", str(folder), "--resume", "--results",
                              str(tmp_path / "RESULTS.md")])
    assert float(saving.load_model(folder / "last.keras").optimizer.learning_rate) == (
        pytest.approx(0.0, abs=1e-9))
    assert "cosine learning rate over 2 epochs | 2 (" in (tmp_path / "RESULTS.md").read_text()


def test_a_run_recorded_before_the_model_options_resumes_as_a_vae(tmp_path):
    folder = tmp_path / "run"
    likelihood_protocol.main(TINY + ["--epochs", "2", "--sitting-minutes", "1e-6",
                                     "--output", str(folder)])
    record = json.loads((folder / "state.json").read_text())
    for name in ("model", "bottom_latent_dim", "top_hidden_units", "warmup_epochs",
                 "lr_schedule", "precision", "eval_precision"):
        del record["settings"][name]
    (folder / "state.json").write_text(json.dumps(record))
    state = likelihood_protocol.main(["--output", str(folder), "--resume", "--results",
                                      str(tmp_path / "RESULTS.md")])
    assert state["epochs"] == 2 and state["settings"]["model"] == "vae"
    assert "| k=2, conv 4, dense 16, latent 2, normal prior | 2 (" in (
        tmp_path / "RESULTS.md").read_text()


@pytest.mark.parametrize("flags, message", [
    (["--top-hidden-units", "8", "0"], "--top-hidden-units must be positive. Received: [8, 0]"),
    (["--warmup-epochs", "3", "--epochs", "3"], "fewer than --epochs (3). Received: 3"),
    (["--warmup-epochs", "-1"], "Received: -1"),
])
def test_bad_model_options_are_refused_before_the_folder_is_used(tmp_path, capsys, flags,
                                                                  message):
    with pytest.raises(SystemExit):
        likelihood_protocol.main(TINY + flags + ["--output", str(tmp_path / "run")])
    assert message in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_it_refuses_a_used_folder_and_overlapping_splits(tmp_path):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "x").write_text("")
    with pytest.raises(SystemExit):
        likelihood_protocol.main(TINY + ["--output", str(tmp_path / "run")])
    with pytest.raises(ValueError, match="Received: --train-images 60000"):
        likelihood_protocol.main(TINY + ["--train-images", "60000",
                                         "--output", str(tmp_path / "new")])


def test_patience_stops_training_after_the_best_epoch(tmp_path, monkeypatch):
    # Validation figures that only get worse after the first epoch.
    figures = iter([10.0, 11.0, 12.0, 13.0])
    monkeypatch.setattr(likelihood_protocol.evaluation, "log_likelihood",
                        lambda *args, **kwargs: {"iwae": np.array([-next(figures)])})
    keras.utils.set_random_seed(0)
    folder = tmp_path / "run"
    args = TINY + ["--epochs", "10", "--patience", "2", "--output", str(folder)]
    parsed = likelihood_protocol._parser().parse_args(args)
    state = {"settings": {key: getattr(parsed, key) for key in likelihood_protocol.SETTINGS},
             "commands": [], "epochs": 0, "best_epoch": 0, "best_validation": None,
             "training_minutes": 0.0, "history": [], "test": {}, "stopped": None}
    folder.mkdir()
    x_train, x_val, _ = likelihood_protocol._load_data(state["settings"])
    state = likelihood_protocol.train(folder, state, x_train, x_val, None)
    assert state["epochs"] == 3 and state["best_epoch"] == 1
    assert state["stopped"] == "no better validation figure for 2 epochs"
