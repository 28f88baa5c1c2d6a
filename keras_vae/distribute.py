"""Training on several devices or machines with TensorFlow's `tf.distribute`.

- `make_strategy(name)`: `"none"` (the default strategy, one device),
  `"mirrored"` (`MirroredStrategy` over every local GPU, or over the logical
  CPUs when there is no GPU) or `"multi-worker"` (`MultiWorkerMirroredStrategy`,
  the cluster read from the `TF_CONFIG` environment variable).
- `is_chief(strategy)`: whether this process writes the run's files.
- `tf_config(workers, index)` and `loopback_cluster(n)`: the `TF_CONFIG` of
  a worker, and a cluster of `n` workers on this machine (to try it out);
  `wait_for_workers(processes, timeout)` waits for such workers, bounded.
- `start_together(strategy, failed, settings)`: every worker stops when one
  cannot start, or when they were started with different settings.
- `needs_custom_loop(strategy)`: whether `model.fit` fails under the strategy.
- `distributed_fit(model, dataset, ...)`: a VAE's training loop written with
  `strategy.run`, for the strategies under which `fit` fails.

Batch size, learning rate and loss scaling. The batch size is the *global*
batch: every step trains on `batch_size` images split across all replicas
(`batch_size / replicas` each; `tf.distribute` splits each batch of the
dataset). Each replica's loss is the sum of its images' losses divided by the
number of images in the global batch, so the gradients, which the optimizer
sums over replicas, are those of the mean loss over the global batch: the
same number whatever the number of replicas, and the learning rate needs no
change when replicas are added. (`VAE.train_step`, which `fit` runs, divides
its per-replica mean by the number of replicas, which is the same for equal
shares.) To use more replicas at the same speed per replica, raise the
global batch with them; the learning rate then stays a choice of its own.

Reference: the TensorFlow guide "Custom training with tf.distribute.Strategy",
https://www.tensorflow.org/tutorials/distribute/custom_training

Length: about 530 lines, half of them docstrings. The strategies and the loop
that one of them needs are one concept (training under `tf.distribute`); the
module shrinks by half when `distributed_fit` can go (see its docstring).
"""

import hashlib
import json
import re
import socket
import subprocess
import time

import keras
import numpy as np
import tensorflow as tf

from keras_vae.cluster_config import cluster_from_environment
from keras_vae.cluster_config import tf_config  # noqa: F401
from keras_vae.models import base
from keras_vae.models.checks import check_batch
from keras_vae.validation import check_int

STRATEGIES = ("none", "mirrored", "multi-worker")
"""Names `make_strategy` (and `keras-vae train --strategy`) accepts."""

COLLECTIVE_TIMEOUT_SECONDS = 600.0
"""Default time a multi-worker collective may wait for the other workers.

Long enough for the chief to write its plots and checkpoint at the end of an
epoch while the others wait; a worker that dies is detected at once (its
connection is reset), this bound is for one that stops answering.
"""

LOST_WORKER_ERRORS = (tf.errors.UnavailableError, tf.errors.DeadlineExceededError,
                      tf.errors.AbortedError, tf.errors.CancelledError)
"""What a collective raises when another worker stops or cannot be reached."""


class WorkerLostError(RuntimeError):
    """Raised when another worker of a multi-worker run stops or cannot be reached."""


def make_strategy(name="none", devices=None, timeout_seconds=COLLECTIVE_TIMEOUT_SECONDS):
    """Returns the `tf.distribute.Strategy` called `name`.

    Create it before TensorFlow runs anything else (`MultiWorkerMirroredStrategy`
    must be), and build and compile the model inside its `scope()`.

    Args:
        name: `"none"`, `"mirrored"` or `"multi-worker"` (see the module docstring).
        devices: For `"mirrored"`: the devices to use; by default every GPU,
            or, without GPUs, every logical CPU (one unless
            `tf.config.set_logical_device_configuration` made more).
        timeout_seconds: For `"multi-worker"`: the longest a collective waits
            for the other workers before failing; None waits forever.

    Returns:
        A `tf.distribute.Strategy`.

    Example:

    ```python
    strategy = keras_vae.distribute.make_strategy("mirrored")
    with strategy.scope():
        vae = keras_vae.build_vae()
        vae.compile(optimizer=keras.optimizers.Adam(1e-3))
    vae.fit(dataset.repeat(), epochs=10, steps_per_epoch=len(dataset))
    ```
    """
    if name not in STRATEGIES:
        raise ValueError(
            f"strategy must be one of {', '.join(STRATEGIES)}. Received: strategy={name!r}")
    if name == "none":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        if devices is None:
            gpus = tf.config.list_logical_devices("GPU")
            devices = [d.name for d in gpus or tf.config.list_logical_devices("CPU")]
        return tf.distribute.MirroredStrategy(devices)
    cluster_from_environment()
    if timeout_seconds is not None and not timeout_seconds > 0:
        raise ValueError("timeout_seconds must be positive or None. "
                         f"Received: timeout_seconds={timeout_seconds}")
    options = tf.distribute.experimental.CommunicationOptions(timeout_seconds=timeout_seconds)
    return tf.distribute.MultiWorkerMirroredStrategy(communication_options=options)


def loopback_cluster(num_workers):
    """Returns `num_workers` addresses `127.0.0.1:PORT` on ports free right now.

    For a cluster of processes on this machine (tests, benchmarks). The
    ports are free when chosen; start the workers soon after.
    """
    check_int("num_workers", num_workers)
    sockets = []
    try:
        for _ in range(num_workers):
            sockets.append(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            sockets[-1].bind(("127.0.0.1", 0))
        return [f"127.0.0.1:{sock.getsockname()[1]}" for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def wait_for_workers(processes, timeout):
    """Waits for worker processes to stop; kills all of them if one outlives `timeout`.

    A worker of a multi-worker cluster waits for the others at every
    collective, so one that hangs would hold the rest: a launcher of local
    workers (a test, a benchmark) bounds its wait with this.

    Args:
        processes: `subprocess.Popen` objects, one per worker.
        timeout: Seconds all of them together may take, a number > 0.

    Returns:
        Their exit statuses, in order.

    Raises:
        TimeoutError: a process still ran when `timeout` passed; every
            process has been killed (and reaped) by then.
    """
    if not isinstance(timeout, (int, float)) or isinstance(timeout, bool) or timeout <= 0:
        raise ValueError(f"timeout must be a number of seconds > 0. Received: timeout={timeout!r}")
    deadline = time.monotonic() + timeout
    try:
        for process in processes:
            process.wait(timeout=max(0.01, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        for process in processes:
            process.kill()
            process.wait()
        raise TimeoutError(f"the workers did not stop by themselves within {timeout} s") from None
    return [process.returncode for process in processes]


def is_chief(strategy=None):
    """Whether this process is the one that writes the run (the chief).

    One process without a cluster is its own chief; in a cluster it is the
    task of type `chief`, or worker 0 when there is none (TensorFlow's rule).
    """
    strategy = strategy or tf.distribute.get_strategy()
    return bool(strategy.extended.should_checkpoint)


def start_together(strategy, failed=False, settings=None):
    """Lets every worker of a cluster know whether all of them can start alike.

    Every worker calls it once, after its checks and before it builds the
    model: with `failed=True` where its checks raised (it then re-raises its
    own error, which names the problem), with `failed=False` elsewhere. A
    worker whose checks passed stops when another one failed, instead of
    waiting in its first collective for a worker that is gone (which ended in
    a timeout's traceback). With `settings`, the workers also check that they
    will train the same model the same way: a worker started with other flags
    would build other variables and wait in a collective that never matches.
    Without a multi-worker cluster it does nothing.

    The exchange is one collective, bounded by the strategy's timeout
    (`COLLECTIVE_TIMEOUT_SECONDS` from `make_strategy`): a worker that reaches
    it that much later than the others makes them fail as unreachable.

    Args:
        strategy: The run's strategy.
        failed: Whether this worker's checks raised.
        settings: A JSON-serializable description of what this worker will
            train (`keras-vae train`: its stored settings), or None.

    Raises:
        WorkerLostError: on a worker whose checks passed, when another one's
            failed or it cannot be reached.
        ValueError: on every worker, when their `settings` differ.
    """
    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return
    local = len(strategy.extended.worker_devices)
    workers = strategy.num_replicas_in_sync // local
    if workers == 1:
        return
    # A 20-bit digest: n * sum(d^2) - sum(d)^2 (zero when all are equal) stays
    # exact in float64 for any cluster size TensorFlow runs.
    text = json.dumps(settings, sort_keys=True, default=str)
    digest = float(int(hashlib.sha256(text.encode()).hexdigest()[:5], 16))
    mine = tf.constant([1.0 if failed else 0.0, digest, digest * digest], "float64")

    @tf.function
    def exchange():
        def replica_fn():  # the first replica of each worker speaks for it
            context = tf.distribute.get_replica_context()
            first = tf.equal(context.replica_id_in_sync_group % local, 0)
            return context.all_reduce("SUM", tf.where(first, mine, tf.zeros_like(mine)))

        return strategy.experimental_local_results(strategy.run(replica_fn))[0]

    try:
        failures, total, squares = (float(value) for value in exchange().numpy())
    except Exception as error:
        if failed:
            return  # its own error says more than the exchange's
        if isinstance(error, LOST_WORKER_ERRORS):
            raise _lost_before_training(error) from error
        raise
    if failed:
        return
    if failures > 0:
        raise WorkerLostError(
            f"{failures:.0f} other worker(s) of the cluster stopped before training (their "
            "own output says why); this worker stops too, having written nothing.")
    if workers * squares != total * total:
        raise ValueError(
            "the workers of the cluster were started with different training settings; "
            "start every worker with the same flags (with --resume, the flags the run was "
            "started with: only the chief reads the stored ones).")


def needs_custom_loop(strategy):
    """Whether `model.fit` fails under `strategy` (then use `distributed_fit`).

    Keras 3's `fit` fails under `MultiWorkerMirroredStrategy` (keras#20585,
    tensorflow#72388: "Invalid reduction dimension 0 for input with 0
    dimensions" in the metrics' reduction); it works under the others.
    """
    return isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)


def distributed_fit(model, dataset, *, epochs, steps_per_epoch, validation_data=None,
                    callbacks=None, strategy=None, verbose=1):
    """Trains a VAE with a custom loop under any `tf.distribute` strategy.

    Why it exists: Keras 3's `fit` fails under `MultiWorkerMirroredStrategy`
    (keras#20585, tensorflow#72388). It can go when those are fixed: then
    `needs_custom_loop` returns False and `fit` takes over, unchanged.

    It keeps what `fit` gives that matters: the same losses (the history has
    every key of the model's `loss_terms` and its `val_` version, means over
    images: `kl_z1_loss` and `kl_z2_loss` too for a `HierarchicalVAE`), and
    the same callback hooks with the same logs, so
    `HistoryCheckpoint`, `ReconstructionPlotter`, `BackupAndRestore`,
    `DivergenceGuard` and the KL schedules work as under `fit`. Give the
    callbacks that write files to the chief only (`is_chief`). After the
    callbacks' `on_train_begin` (where `BackupAndRestore` restores the chief's
    checkpoint), every variable of the model and its optimizer, and the epoch
    to start from, are copied from the chief to every worker.

    Args:
        model: A keras_vae model with `compute_losses` (the `LOSSES`
            capability), built and compiled inside `strategy.scope()`.
        dataset: A repeating `tf.data.Dataset` of *global* batches (images, or
            `(images, labels)` for a conditional VAE), the same on every
            worker; epoch `k` starts at its batch `k * steps_per_epoch`, and a
            restored run skips the epochs it trained. Each global batch is
            split between the replicas.
        epochs: The epoch to stop after.
        steps_per_epoch: Global batches per epoch.
        validation_data: Optional finite dataset of global batches, evaluated
            after every epoch.
        callbacks: Keras callbacks.
        strategy: The strategy; by default the one the model was built under.
            Under `MultiWorkerMirroredStrategy` the model's `predict` (and
            `reconstruct`, `sample`, ...) then runs on each process alone.
        verbose: 0 silent; otherwise one line per epoch.

    Returns:
        The history: a dict of lists, one entry per epoch trained here.

    Raises:
        WorkerLostError: when another worker stops or cannot be reached.
    """
    strategy = strategy or model.distribute_strategy
    check_int("epochs", epochs, minimum=1)
    check_int("steps_per_epoch", steps_per_epoch, minimum=1)
    if not isinstance(model, base.ImageModel):
        raise TypeError("distributed_fit trains keras_vae models. Received: model of type "
                        f"{type(model).__name__}")
    model.require(base.LOSSES, "distributed_fit")
    if getattr(model, "optimizer", None) is None:
        raise ValueError("distributed_fit needs a compiled model. Received: a model "
                         "without an optimizer; call model.compile(optimizer=...) first")
    try:  # under a cluster, the chief sends every new variable's first value
        with strategy.scope():
            if not model.optimizer.built:
                model.optimizer.build(model.trainable_variables)
    except LOST_WORKER_ERRORS as error:
        raise _lost_before_training(error) from error
    if needs_custom_loop(strategy):
        # Keras's `predict` under this strategy runs collectives, which every
        # worker would have to join; the chief's pictures (in callbacks and
        # after training, when the other workers may be gone) predict alone.
        model._distribute_strategy = None
        model.predict_function = None
    callback_list = keras.callbacks.CallbackList(
        callbacks, model=model, epochs=epochs, steps=steps_per_epoch, verbose=0)
    model.stop_training = False
    model._initial_epoch = None  # BackupAndRestore sets it when it restores
    history, epoch = {}, 0
    try:
        callback_list.on_train_begin()
        initial_epoch = _copy_from_chief(strategy, model, model._initial_epoch or 0)
        train_step = _train_step_function(model, strategy)
        evaluate_step = _evaluate_step_function(model, strategy)
        iterator = iter(strategy.experimental_distribute_dataset(
            _shard_by_data(dataset.skip(initial_epoch * steps_per_epoch))))
        logs = {}
        for epoch in range(initial_epoch, epochs):
            callback_list.on_epoch_begin(epoch)
            totals = np.zeros(len(model.loss_terms) + 1)
            for step in range(steps_per_epoch):
                callback_list.on_train_batch_begin(step)
                totals += train_step(iterator).numpy()
                logs = _mean_logs(model, totals)
                callback_list.on_train_batch_end(step, logs)
                if model.stop_training:
                    break
            logs = _mean_logs(model, totals)
            if validation_data is not None:
                validation = _evaluate(model, evaluate_step, strategy, validation_data)
                logs.update({f"val_{key}": value for key, value in validation.items()})
            callback_list.on_epoch_end(epoch, logs)
            for key, value in logs.items():
                history.setdefault(key, []).append(float(value))
            if verbose:
                print(f"Epoch {epoch + 1}/{epochs}: " + ", ".join(
                    f"{key}={float(value):.4f}" for key, value in logs.items()), flush=True)
            if model.stop_training:
                break
        callback_list.on_train_end(logs)
    except LOST_WORKER_ERRORS as error:
        raise WorkerLostError(
            f"Another worker stopped or cannot be reached (epoch {epoch + 1}): "
            f"{_cause(error)}. Restart every worker; a run with a backup "
            "(keras-vae train --resume) continues from its last completed epoch.") from error
    return history


def _lost_before_training(error):
    return WorkerLostError(f"Another worker stopped or cannot be reached before training: "
                           f"{_cause(error)}. Restart every worker.")


def _cause(error):
    """The line of a collective's error that says why it was aborted.

    TensorFlow's `{{function_node ...}}` prefix (which op, on which device) is
    dropped.
    """
    lines = [line.strip() for line in str(getattr(error, "message", error)).splitlines()]
    for line in lines:
        if "aborted by" in line or "Connection" in line or "timed out" in line.lower():
            return re.sub(r"^\{\{.*?\}\}\s*", "", line).rstrip(".")
    return type(error).__name__


def _shard_by_data(dataset):
    """Splits each global batch between the workers (not whole batches or files)."""
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = (
        tf.data.experimental.AutoShardPolicy.DATA)
    return dataset.with_options(options)


def _mean_logs(model, totals):
    """Turns the summed losses of `model.loss_terms` and the image count into means."""
    count = max(totals[-1], 1.0)
    return {name: total / count for name, total in zip(model.loss_terms, totals)}


def _summed_losses(model, x, condition, training):
    """Returns the replica's `(per-image losses, [sums of each loss term, images])`."""
    losses = model.compute_losses(x, training, condition)
    per_image = losses["loss"]
    count = tf.cast(tf.shape(per_image)[0], "float32")
    sums = [tf.reduce_sum(losses[name]) for name in model.loss_terms]
    return per_image, tf.stack(sums + [count])


def _train_step_function(model, strategy):
    """Returns a `tf.function` running one global step; it returns the global sums."""

    def replica_step(data):
        x, condition = model.unpack(data)
        x = check_batch(x, "training images")
        with tf.GradientTape() as tape:
            per_image, sums = _summed_losses(model, x, condition, training=True)
            # The mean over the global batch: this replica's sum over the
            # images of the whole batch. The optimizer sums the replicas'
            # gradients, which then are the gradients of that mean.
            images = tf.distribute.get_replica_context().all_reduce("SUM", sums[-1])
            loss = tf.reduce_sum(per_image) / tf.maximum(images, 1.0)
            scaled_loss = model.optimizer.scale_loss(loss)
        gradients = tape.gradient(scaled_loss, model.trainable_variables)
        model.optimizer.apply_gradients(zip(gradients, model.trainable_variables))
        return sums

    @tf.function
    def step(iterator):
        sums = strategy.run(replica_step, args=(next(iterator),))
        return strategy.reduce("SUM", sums, axis=None)

    return step


def _evaluate_step_function(model, strategy):
    """Returns a `tf.function` evaluating one global batch; it returns the global sums."""

    def replica_step(data):
        x, condition = model.unpack(data)
        x = check_batch(x, "evaluation images")
        return _summed_losses(model, x, condition, training=False)[1]

    @tf.function(reduce_retracing=True)
    def step(data):
        return strategy.reduce("SUM", strategy.run(replica_step, args=(data,)), axis=None)

    return step


def _evaluate(model, step, strategy, dataset):
    """Returns the mean validation losses over `dataset` (on every worker)."""
    totals = np.zeros(len(model.loss_terms) + 1)
    for data in strategy.experimental_distribute_dataset(_shard_by_data(dataset)):
        totals += step(data).numpy()
    return _mean_logs(model, totals)


def _copy_from_chief(strategy, model, epoch):
    """Gives every replica the chief's variables; returns the chief's `epoch`.

    The chief may have restored a checkpoint that the other workers do not
    have. Replica 0 is on the chief; an all-reduce in which only it
    contributes copies its values to all. Integer variables (the optimizer's
    step count, the random-number states) travel as float64, exact below 2**53.
    """
    if not needs_custom_loop(strategy) or strategy.num_replicas_in_sync == 1:
        return epoch
    variables = list({id(v): v for v in model.variables + model.optimizer.variables}.values())
    epoch_variable = tf.constant(float(epoch), "float64")

    @tf.function
    def gather():
        def replica_fn():
            context = tf.distribute.get_replica_context()
            first = tf.equal(context.replica_id_in_sync_group, 0)
            values = [tf.cast(tf.convert_to_tensor(v), "float64") for v in variables]
            values.append(epoch_variable)
            return [context.all_reduce("SUM", tf.where(first, value, tf.zeros_like(value)))
                    for value in values]

        return strategy.run(replica_fn)

    values = [strategy.experimental_local_results(value)[0] for value in gather()]
    for variable, value in zip(variables, values):
        variable.assign(tf.cast(value, variable.dtype))
    return int(values[-1].numpy())

