"""keras_vae.distribute: strategies, the distributed loop, and clusters of worker processes.

The cluster tests start two worker processes on loopback ports chosen free
when the test runs; every wait is bounded, and a test kills what it started
if a bound is passed.
"""

import json
import os
import signal
import subprocess
import sys
import time

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_vae
from conftest import ROOT
from conftest import run_python
from conftest import tiny_vae
from keras_vae import callbacks as vae_callbacks
from keras_vae import cli
from keras_vae import distribute
from keras_vae import saving
from keras_vae.cli import worker_wait
from keras_vae.models.conditional_vae import build_conditional_vae

SMALL = ["--limit", "128", "--latent-dim", "2", "--batch-size", "64", "--verbose", "0"]
WAIT = 300  # seconds any cluster may take (start-up is slow on a shared 2-core machine)


# ----------------------------------------------------------------- helpers

def _start_workers(args_per_worker, tmp_path, prefix="worker"):
    """Starts one `python ARGS` per worker, with its TF_CONFIG; returns the processes."""
    addresses = distribute.loopback_cluster(len(args_per_worker))
    processes = []
    for index, args in enumerate(args_per_worker):
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": str(ROOT),
               "TF_CONFIG": distribute.tf_config(addresses, index)}
        out = open(tmp_path / f"{prefix}{index}.out", "w")
        err = open(tmp_path / f"{prefix}{index}.err", "w")
        processes.append(subprocess.Popen([sys.executable, *args], cwd=tmp_path, env=env,
                                          stdout=out, stderr=err, text=True))
        out.close()
        err.close()
    return processes


def _wait(processes, timeout=WAIT):
    """Waits for every process, killing all of them if `timeout` passes."""
    try:
        return distribute.wait_for_workers(processes, timeout)
    except TimeoutError as error:
        pytest.fail(str(error))


def _output(tmp_path, name):
    return (tmp_path / name).read_text()


def _train_cli(*args):
    return ["-m", "keras_vae", "train", "--strategy", "multi-worker", *SMALL, *args]


# -------------------------------------------------------------- strategies

def test_make_strategy_refuses_unknown_names_and_a_missing_tf_config(monkeypatch):
    with pytest.raises(ValueError, match=r"Received: strategy='ring'"):
        distribute.make_strategy("ring")
    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(ValueError, match="TF_CONFIG environment variable, which is not set"):
        distribute.make_strategy("multi-worker")
    for bad in ("{not json", '{"cluster": {"worker": ["a:1"]}}',
                '{"cluster": {"worker": ["a:1"]}, "task": {"type": "worker", "index": 1}}',
                '{"cluster": {"worker": ["a:1"]}, "task": {"type": "chief", "index": 0}}'):
        with pytest.raises(ValueError, match="TF_CONFIG must be JSON"):
            distribute.cluster_from_environment({"TF_CONFIG": bad})
    config = distribute.tf_config(["h1:2222", "h2:2222"], 1)
    assert distribute.cluster_from_environment({"TF_CONFIG": config}) == {
        "cluster": {"worker": ["h1:2222", "h2:2222"]}, "task": {"type": "worker", "index": 1}}
    with pytest.raises(ValueError, match="Received: index=2"):
        distribute.tf_config(["h1:2222", "h2:2222"], 2)
    default = distribute.make_strategy("none")
    assert default is tf.distribute.get_strategy()
    assert distribute.is_chief(default) and not distribute.needs_custom_loop(default)


def test_loopback_cluster_gives_distinct_free_loopback_ports():
    addresses = distribute.loopback_cluster(3)
    hosts = {address.rsplit(":", 1)[0] for address in addresses}
    ports = {int(address.rsplit(":", 1)[1]) for address in addresses}
    assert hosts == {"127.0.0.1"} and len(ports) == 3 and all(p > 0 for p in ports)


def test_wait_for_workers_returns_statuses_or_kills_all_at_the_deadline():
    quick = [subprocess.Popen([sys.executable, "-c", f"raise SystemExit({code})"])
             for code in (0, 3)]
    assert distribute.wait_for_workers(quick, timeout=60) == [0, 3]
    hung = [subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
            for _ in range(2)]
    started = time.monotonic()
    with pytest.raises(TimeoutError, match="within 2 s"):
        distribute.wait_for_workers(hung, timeout=2)
    assert time.monotonic() - started < 30
    assert [process.returncode for process in hung] == [-signal.SIGKILL] * 2
    with pytest.raises(ValueError, match="Received: timeout=0"):
        distribute.wait_for_workers([], timeout=0)


def test_cli_multi_worker_without_tf_config_is_one_line_and_writes_nothing(
        tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    run = tmp_path / "run"
    assert cli.main(["train", "--strategy", "multi-worker", *SMALL, "--output", str(run)]) == 2
    err = capsys.readouterr().err
    assert "keras-vae: error:" in err and "TF_CONFIG" in err and "Traceback" not in err
    assert not run.exists()


def _start_alone(tmp_path, *flags):
    """Starts worker 0 of a two-worker cluster whose worker 1 never starts."""
    addresses = distribute.loopback_cluster(2)
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": str(ROOT),
           "TF_CONFIG": distribute.tf_config(addresses, 0)}
    with open(tmp_path / "alone.out", "w") as out, open(tmp_path / "alone.err", "w") as err:
        process = subprocess.Popen([sys.executable, *_train_cli(
            "--epochs", "1", "--output", str(tmp_path / "run"), *flags)],
            cwd=tmp_path, env=env, stdout=out, stderr=err)
    return process, addresses


def test_a_worker_whose_peer_never_starts_stops_after_worker_wait_naming_it(tmp_path):
    # Issue 30, Found 1: it waited inside MultiWorkerMirroredStrategy() for ever.
    process, addresses = _start_alone(tmp_path, "--worker-wait", "5")
    assert _wait([process]) == [2]
    [line] = _error_lines(tmp_path, "alone.err")
    assert "did not start within 5 s (--worker-wait)" in line
    assert f"nothing answers at {addresses[1]} (worker 1)" in line
    assert _output(tmp_path, "alone.out") == "" and not (tmp_path / "run").exists()


@pytest.mark.parametrize("signum, status, word", [(signal.SIGTERM, 143, "terminated"),
                                                  (signal.SIGINT, 130, "interrupted")])
def test_sigterm_or_ctrl_c_ends_the_wait_for_a_peer_at_once(tmp_path, signum, status, word):
    # TensorFlow waits for the peer in C++ holding the GIL and takes SIGTERM
    # for its preemption notifier: before, both signals were ignored.
    process, addresses = _start_alone(tmp_path)
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline and process.poll() is None:
        if worker_wait.answers(addresses[0]):  # TensorFlow's server is up: it waits
            break
        time.sleep(0.2)
    assert process.poll() is None, _output(tmp_path, "alone.err")[-3000:]
    time.sleep(1)
    process.send_signal(signum)
    assert _wait([process], timeout=30) == [status]
    err = _output(tmp_path, "alone.err")
    lines = [line for line in err.splitlines() if line.startswith("keras-vae:")]
    assert lines == [f"keras-vae: {word} while waiting for the other workers of the "
                     "multi-worker run to start; nothing was written"], err[-3000:]
    assert "Traceback" not in err
    assert not worker_wait.answers(addresses[0])  # the waiting child is gone too


# ------------------------------------------------- the loop, in one process

def _make(conditional=False, optimizer=None):
    keras.utils.set_random_seed(0)
    if conditional == "hierarchical":
        vae = keras_vae.build_hierarchical_vae(latent_dim=2, bottom_latent_dim=4, filters=(8, 16),
                                               hidden_units=32, top_hidden_units=(16,),
                                               importance_samples=2, seed=0)
    elif conditional:
        vae = build_conditional_vae(num_classes=10, latent_dim=4, filters=(8, 16),
                                    hidden_units=32, seed=0)
    else:
        vae = tiny_vae()
    vae.compile(optimizer=optimizer or keras.optimizers.Adam(1e-3))
    return vae


@pytest.mark.parametrize("conditional", [False, True, "hierarchical"])
def test_distributed_fit_trains_as_fit_does(mnist_small, conditional):
    """Same seed, same batches: the same history and weights as `fit` (a wrong
    loss scaling, metric average or step order would change them). The
    two-layer model trains its IWAE bound (k = 2); `fit` also logs its two
    KL terms apart."""
    (x, y), (x_test, y_test) = mnist_small
    x, y = x[:256], y[:256]
    labelled = conditional is True
    train = (x, y) if labelled else x
    validation = (x_test[:100], y_test[:100]) if labelled else (x_test[:100],)
    dataset = tf.data.Dataset.from_tensor_slices(train).batch(64)
    reference = _make(conditional)
    expected = reference.fit(dataset.repeat(), epochs=2, steps_per_epoch=4,
                             validation_data=validation, validation_batch_size=32,
                             verbose=0).history
    vae = _make(conditional)
    history = distribute.distributed_fit(
        vae, dataset.repeat(), epochs=2, steps_per_epoch=4, verbose=0,
        validation_data=tf.data.Dataset.from_tensor_slices(validation).batch(32))
    # Every key fit reports, the hierarchical VAE's kl_z1_loss and kl_z2_loss too
    # (the loop once hard-coded three names and lost them).
    assert set(history) == set(expected)
    for key in history:
        np.testing.assert_allclose(history[key], expected[key], rtol=1e-5, err_msg=key)
    for a, b in zip(vae.get_weights(), reference.get_weights()):
        np.testing.assert_allclose(a, b, atol=1e-6)


def test_distributed_fit_refuses_what_it_cannot_train(mnist_small):
    dataset = tf.data.Dataset.from_tensor_slices(mnist_small[0][0][:64]).batch(32).repeat()
    with pytest.raises(ValueError, match="needs a compiled model"):
        distribute.distributed_fit(tiny_vae(), dataset, epochs=1, steps_per_epoch=1)
    classifier = keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Flatten(),
                                   keras.layers.Dense(10)])
    classifier.compile(optimizer="adam", loss="mse")
    with pytest.raises(TypeError, match="Received: model of type Sequential"):
        distribute.distributed_fit(classifier, dataset, epochs=1, steps_per_epoch=1)
    with pytest.raises(ValueError, match="Received: steps_per_epoch=0"):
        distribute.distributed_fit(_make(), dataset, epochs=1, steps_per_epoch=0)


def test_distributed_fit_resumes_from_a_backup_as_if_never_stopped(mnist_small, tmp_path):
    """2 epochs, then a new process-like start from the backup to epoch 4, equals 4 epochs."""
    x = mnist_small[0][0][:192]

    def train(epochs, backup):
        backup.mkdir(exist_ok=True)
        vae = _make()
        # A new dataset for each run, as a new process builds it.
        dataset = tf.data.Dataset.from_tensor_slices(x).shuffle(192, seed=0).batch(64).repeat()
        history = vae_callbacks.HistoryCheckpoint(backup / "history.json")
        callbacks = [history, vae_callbacks.AtomicBackupAndRestore(backup)]
        distribute.distributed_fit(vae, dataset, epochs=epochs, steps_per_epoch=3,
                                   callbacks=callbacks, verbose=0)
        return vae, history.history

    whole, whole_history = train(4, tmp_path / "whole")
    train(2, tmp_path / "parts")
    resumed, resumed_history = train(4, tmp_path / "parts")
    assert len(resumed_history["loss"]) == 4
    np.testing.assert_allclose(resumed_history["loss"], whole_history["loss"], rtol=1e-6)
    for a, b in zip(resumed.get_weights(), whole.get_weights()):
        np.testing.assert_allclose(a, b, atol=1e-6)


def test_distributed_fit_stops_at_a_divergence_with_finite_weights(mnist_small):
    x = mnist_small[0][0][:128]
    vae = _make(optimizer=keras.optimizers.Adam(1e12))
    guard = vae_callbacks.DivergenceGuard(raise_error=False)
    history = distribute.distributed_fit(
        vae, tf.data.Dataset.from_tensor_slices(x).batch(64).repeat(), epochs=5,
        steps_per_epoch=2, callbacks=[guard], verbose=0)
    assert guard.diverged is not None and guard.diverged["epoch"] == 1
    assert len(history["loss"]) == 1  # it stopped in the first epoch
    assert all(np.all(np.isfinite(w)) for w in vae.get_weights())


# ---------------------------------------------------------- strategies, CLI

def test_cli_mirrored_trains_on_two_logical_cpus(tmp_path):
    result = run_python(f"""
        import json, tensorflow as tf
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
        from keras_vae import cli
        status = cli.main(["train", "--strategy", "mirrored", *{SMALL!r}, "--epochs", "2",
                           "--plot-every", "1", "--output", "run"])
        assert status == 0, status
        print(json.dumps(json.load(open("run/run.json"))))
    """, cwd=tmp_path, env={"PYTHONPATH": str(ROOT)})
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["strategy"] == "mirrored" and report["replicas"] == 2
    assert np.isfinite(report["final_metrics"]["val_loss"])
    assert (tmp_path / "run" / "model.keras").is_file()
    assert (tmp_path / "run" / "plots" / "epoch_002.png").is_file()


# ------------------------------------------------------ clusters of workers

WORKER_STEPS = """
import json, os, sys
import numpy as np, keras, tensorflow as tf
from keras_vae import datasets, distribute, build_vae

strategy = distribute.make_strategy("multi-worker" if "TF_CONFIG" in os.environ else "none")
with strategy.scope():
    keras.utils.set_random_seed(0)
    vae = build_vae(latent_dim=4, filters=(8, 16), hidden_units=32, seed=0)
    # Near-deterministic codes (the log-variance is bounded near -10, so the
    # posterior std is ~0.007): the replicas' noise draws differ from the single
    # run's, and this keeps that difference small.
    layer = vae.encoder.get_layer("z_log_var")
    layer.kernel.assign(np.zeros(layer.kernel.shape))
    layer.bias.assign(np.full(layer.bias.shape, -30.0))
    vae.compile(optimizer=keras.optimizers.SGD(0.01))
x = datasets.load("mnist")[0][0][:64]
data = tf.data.Dataset.from_tensor_slices(x).batch(16).repeat()
start = [w.copy() for w in vae.get_weights()]
distribute.distributed_fit(vae, data, epochs=1, steps_per_epoch=1, strategy=strategy, verbose=0)
first = [w.copy() for w in vae.get_weights()]
if not distribute.is_chief(strategy):
    # Only here: distributed_fit starts by copying the chief's weights to all.
    vae.decoder.get_layer("logits").bias.assign_add(np.ones(1, "float32"))
distribute.distributed_fit(vae, data, epochs=1, steps_per_epoch=3, strategy=strategy, verbose=0)
np.savez(sys.argv[1], *[w for pair in zip(start, first, vae.get_weights()) for w in pair])
print("chief" if distribute.is_chief(strategy) else "worker", strategy.num_replicas_in_sync)
"""


def _weights(path):
    arrays = np.load(path)
    flat = [arrays[f"arr_{i}"] for i in range(len(arrays.files))]
    return flat[0::3], flat[1::3], flat[2::3]


@pytest.mark.slow
def test_two_workers_take_the_first_step_of_one_and_end_identical(tmp_path):
    """The same global batch of 16 gives the same first step on one process and on two
    workers of 8 images each; after more steps both workers hold the same weights."""
    script = tmp_path / "steps.py"
    script.write_text(WORKER_STEPS)
    single = subprocess.run([sys.executable, str(script), "single.npz"], cwd=tmp_path,
                            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2",
                                 "PYTHONPATH": str(ROOT)},
                            capture_output=True, text=True, timeout=WAIT)
    assert single.returncode == 0, single.stderr[-3000:]
    assert single.stdout.split() == ["chief", "1"]
    workers = _start_workers([[str(script), f"w{i}.npz"] for i in range(2)], tmp_path)
    codes = _wait(workers)
    assert codes == [0, 0], _output(tmp_path, "worker0.err")[-3000:]
    assert _output(tmp_path, "worker0.out").split() == ["chief", "2"]
    assert _output(tmp_path, "worker1.out").split() == ["worker", "2"]

    start, first_single, _ = _weights(tmp_path / "single.npz")
    start_0, first_0, end_0 = _weights(tmp_path / "w0.npz")
    _, first_1, end_1 = _weights(tmp_path / "w1.npz")
    # Summing the replicas' mean losses (no per-replica scaling) would double the
    # step (error 1); averaging twice would halve it (error 0.5). The noise leaves
    # up to ~0.11 on single tensors of the encoder, ~0.002 on the whole step.
    moved, difference = 0.0, 0.0
    for a, a0, s, m in zip(start, start_0, first_single, first_0):
        np.testing.assert_array_equal(a, a0)
        size = np.linalg.norm(s - a)
        if size > 0:
            assert np.linalg.norm((m - a) - (s - a)) / size < 0.15, a.shape
        moved += size ** 2
        difference += np.linalg.norm((m - a) - (s - a)) ** 2
    assert moved > 0 and np.sqrt(difference / moved) < 0.02
    for a, b in zip(first_0, first_1):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(end_0, end_1):  # worker 1 disturbed its weights: the chief's won
        np.testing.assert_array_equal(a, b)
    assert any(not np.array_equal(a, b) for a, b in zip(first_0, end_0))


@pytest.mark.slow
def test_two_workers_train_and_only_the_chief_writes(tmp_path):
    workers = _start_workers(
        [_train_cli("--epochs", "2", "--plot-every", "1", "--output", str(tmp_path / name))
         for name in ("chief_run", "worker_run")], tmp_path)
    codes = _wait(workers)
    assert codes == [0, 0], (_output(tmp_path, "worker0.err")[-3000:]
                             + _output(tmp_path, "worker1.err")[-3000:])
    chief = json.loads(_output(tmp_path, "worker0.out"))
    worker = json.loads(_output(tmp_path, "worker1.out"))
    assert chief["output"] == str(tmp_path / "chief_run") and worker["output"] is None
    # Both took the same steps: the losses, all-reduced, are the same numbers.
    assert chief["loss"] == worker["loss"] and chief["val_loss"] == worker["val_loss"]
    run = tmp_path / "chief_run"
    for name in cli.RUN_FILES:
        assert (run / name).is_file(), name
    assert sorted(p.name for p in (run / "plots").iterdir()) == [
        "epoch_001.png", "epoch_002.png", "samples_001.png", "samples_002.png"]
    assert len(json.loads((run / "history.json").read_text())["loss"]) == 2
    report = json.loads((run / "run.json").read_text())
    assert report["strategy"] == "multi-worker" and report["replicas"] == 2
    assert not (tmp_path / "worker_run").exists()
    assert not (run / cli.BACKUP_DIR).exists()
    model = saving.load_model(run / "model.keras")  # a model like any other
    assert model.latent_dim == 2
    assert all(np.all(np.isfinite(w)) for w in model.get_weights())


def _error_lines(tmp_path, name):
    """The `keras-vae: error:` lines of a worker's stderr; fails on a traceback."""
    err = _output(tmp_path, name)
    assert "Traceback" not in err, err[-3000:]
    return [line for line in err.splitlines() if line.startswith("keras-vae: error:")]


@pytest.mark.slow
def test_when_one_worker_cannot_start_every_worker_stops_with_one_line(tmp_path):
    # The chief refuses its folder (it holds a finished run; no --overwrite).
    # Before start_together the other worker waited in its first collective
    # for the chief, which had gone, and ended in a timeout's traceback.
    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "run.json").write_text("{}")
    workers = _start_workers(
        [_train_cli("--epochs", "1", "--output", str(taken)),
         _train_cli("--epochs", "1", "--output", str(tmp_path / "unused"))], tmp_path)
    assert _wait(workers) == [2, 2]
    [chief_line] = _error_lines(tmp_path, "worker0.err")
    [worker_line] = _error_lines(tmp_path, "worker1.err")
    assert f"The output folder {taken} already holds a run (run.json)" in chief_line
    assert "1 other worker(s) of the cluster stopped before training" in worker_line
    assert _output(tmp_path, "worker0.out") == _output(tmp_path, "worker1.out") == ""
    assert [p.name for p in taken.iterdir()] == ["run.json"]
    assert (taken / "run.json").read_text() == "{}"
    assert not (tmp_path / "unused").exists()

    # The other way round: the worker's own flags are wrong (it would have no
    # training images left); the chief stops before it touches its folder.
    workers = _start_workers(
        [_train_cli("--epochs", "1", "--output", str(tmp_path / "fresh")),
         _train_cli("--epochs", "1", "--validation-images", "128", "--output",
                    str(tmp_path / "unused"))], tmp_path, prefix="second")
    assert _wait(workers) == [2, 2]
    [chief_line] = _error_lines(tmp_path, "second0.err")
    [worker_line] = _error_lines(tmp_path, "second1.err")
    assert "1 other worker(s) of the cluster stopped before training" in chief_line
    assert "--validation-images must leave training images: mnist has 128." in worker_line
    assert not (tmp_path / "fresh").exists()

    # Started with other flags (a worker resumed with only --resume would be):
    # both would build different models and wait for each other forever.
    workers = _start_workers(
        [_train_cli("--epochs", "1", "--output", str(tmp_path / "fresh")),
         _train_cli("--epochs", "2", "--output", str(tmp_path / "unused"))], tmp_path,
        prefix="third")
    assert _wait(workers) == [2, 2]
    for name in ("third0.err", "third1.err"):
        [line] = _error_lines(tmp_path, name)
        assert "the workers of the cluster were started with different training settings" in line
    assert not (tmp_path / "fresh").exists()

    # The chief fails after the exchange (its --output's parent is a file, which
    # only creating the folder finds): the other worker, waiting for the chief's
    # first optimizer values, stops with one line too.
    (tmp_path / "a_file").write_text("")
    workers = _start_workers(
        [_train_cli("--epochs", "1", "--output", str(tmp_path / "a_file" / "run")),
         _train_cli("--epochs", "1", "--output", str(tmp_path / "unused"))], tmp_path,
        prefix="fourth")
    assert _wait(workers) == [2, 2]
    [chief_line] = _error_lines(tmp_path, "fourth0.err")
    [worker_line] = _error_lines(tmp_path, "fourth1.err")
    assert "Not a directory" in chief_line
    assert "Another worker stopped or cannot be reached before training" in worker_line
    assert "{{" not in worker_line  # TensorFlow's op-and-device prefix is dropped


@pytest.mark.slow
def test_a_killed_worker_stops_the_chief_and_resume_continues(tmp_path):
    epochs = "40"
    args = [_train_cli("--epochs", epochs, "--plot-every", "0", "--output",
                       str(tmp_path / name)) for name in ("chief_run", "worker_run")]
    chief, worker = _start_workers(args, tmp_path)
    metadata = tmp_path / "chief_run" / cli.BACKUP_DIR / "training_metadata.json"
    deadline = time.time() + WAIT
    while time.time() < deadline and chief.poll() is None and not metadata.exists():
        time.sleep(0.05)
    if chief.poll() is not None or worker.poll() is not None or not metadata.exists():
        _wait([chief, worker], timeout=1)
        pytest.fail("no epoch was checkpointed while both workers ran: "
                    + _output(tmp_path, "worker0.err")[-3000:])
    worker.send_signal(signal.SIGKILL)
    killed_at = time.time()
    assert _wait([chief, worker], timeout=120) == [2, -signal.SIGKILL]
    assert time.time() - killed_at < 120
    err = _output(tmp_path, "worker0.err")
    lines = [line for line in err.splitlines() if line.startswith("keras-vae: error:")]
    assert len(lines) == 1 and "Traceback" not in err, err[-3000:]
    assert "Another worker stopped or cannot be reached" in lines[0]
    assert "{{" not in lines[0]
    assert "--resume" in lines[0]
    done = json.loads(metadata.read_text())["epoch"]
    assert 1 <= done < int(epochs)
    assert not (tmp_path / "chief_run" / "model.keras").exists()

    resumed = _start_workers([[*a, "--resume"] for a in args], tmp_path, prefix="resumed")
    codes = _wait(resumed)
    assert codes == [0, 0], _output(tmp_path, "resumed0.err")[-3000:]
    assert "resuming the run" in _output(tmp_path, "resumed0.err")
    history = json.loads((tmp_path / "chief_run" / "history.json").read_text())
    assert len(history["loss"]) == int(epochs)
    assert (tmp_path / "chief_run" / "model.keras").is_file()
    assert not (tmp_path / "worker_run").exists()
