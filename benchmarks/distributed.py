"""Multi-worker training: one worker against two local workers, one core each.

    python -m benchmarks.distributed --images 20000 --steps 200

Trains the default VAE (`keras_vae.build_vae()`, 28x28 MNIST, dynamic
binarization, Adam) with `keras_vae.distribute.distributed_fit` under
`MultiWorkerMirroredStrategy`, first in a cluster of one worker, then in a
cluster of two workers on loopback ports, with the same global batch. Every
worker is pinned to its own core (`os.sched_setaffinity`) and runs
TensorFlow with one thread, so that on a 2-core machine the two-worker run
has twice the cores of the one-worker run and no more: the comparison shows
what a second machine (here, a second core) buys, and what the all-reduce
costs.

Reported per cluster (the chief's numbers): images/s (global batch x timed
steps / their seconds, after `--warmup` untimed steps; a step is timed
between the loop's batch hooks, once its losses are on the host), the
median step time, and the all-reduce's share of a step: the median time of
one all-reduce of tensors shaped like the model's gradients (all of them in
one call, as the optimizer makes it), timed alone in the same cluster after
training, divided by the median step time. A one-worker cluster has nothing
to exchange between processes. One table is appended to RESULTS.md.
"""

import argparse
import datetime
import json
import os
import pathlib
import statistics
import subprocess
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import tensorflow as tf

from benchmarks import harness
from keras_vae import datasets
from keras_vae import distribute
from keras_vae.models.vae import build_vae

WORKER_TIMEOUT_SECONDS = 3600
"""The longest one cluster may run before the benchmark kills it."""


class StepTimer(keras.callbacks.Callback):
    """Records each training step's wall-clock seconds in `seconds`."""

    def __init__(self):
        super().__init__()
        self.seconds = []
        self._start = None

    def on_train_batch_begin(self, batch, logs=None):
        self._start = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        self.seconds.append(time.perf_counter() - self._start)


def _time_all_reduce(strategy, variables, repeats):
    """Median seconds of one all-reduce of tensors shaped like `variables`."""
    shapes = [(v.shape, v.dtype) for v in variables]

    @tf.function
    def reduce():
        def replica_fn():
            context = tf.distribute.get_replica_context()
            values = [tf.ones(shape, dtype) for shape, dtype in shapes]
            return context.all_reduce("SUM", values)

        results = strategy.run(replica_fn)
        return tf.add_n([tf.reduce_sum(strategy.experimental_local_results(r)[0])
                         for r in results])

    reduce().numpy()  # traced and warmed up
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        reduce().numpy()
        seconds.append(time.perf_counter() - start)
    return statistics.median(seconds)


def run_worker(args):
    """One worker of a cluster: trains, times, writes its numbers to `args.result`."""
    os.sched_setaffinity(0, {args.core})
    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    strategy = distribute.make_strategy("multi-worker")
    (x_train, _), _ = datasets.load("mnist")
    x = x_train[:args.images]
    with strategy.scope():
        keras.utils.set_random_seed(0)
        vae = build_vae(seed=0)
        vae.compile(optimizer=keras.optimizers.Adam(1e-3))
    data = datasets.make_dataset(x, batch_size=args.batch_size, binarize=True, seed=0)
    timer = StepTimer()
    distribute.distributed_fit(vae, data.repeat(), epochs=1,
                               steps_per_epoch=args.warmup + args.steps,
                               callbacks=[timer], strategy=strategy, verbose=0)
    timed = timer.seconds[args.warmup:]
    step = statistics.median(timed)
    all_reduce = (_time_all_reduce(strategy, vae.trainable_variables, args.steps)
                  if strategy.num_replicas_in_sync > 1 else 0.0)
    result = {"replicas": strategy.num_replicas_in_sync,
              "images_per_second": args.batch_size * len(timed) / sum(timed),
              "step_seconds": step, "all_reduce_seconds": all_reduce,
              "chief": distribute.is_chief(strategy)}
    pathlib.Path(args.result).write_text(json.dumps(result))


def run_cluster(num_workers, args, folder):
    """Starts `num_workers` workers on loopback ports, one core each; returns the chief's result."""
    cores = sorted(os.sched_getaffinity(0))
    if len(cores) < num_workers:
        raise SystemExit(f"{num_workers} workers need {num_workers} cores; "
                         f"this process may use {len(cores)}.")
    addresses = distribute.loopback_cluster(num_workers)
    processes = []
    for index in range(num_workers):
        env = {**os.environ, "TF_CONFIG": distribute.tf_config(addresses, index)}
        command = [sys.executable, "-m", "benchmarks.distributed", "--worker",
                   "--core", str(cores[index]), "--result",
                   str(folder / f"{num_workers}_{index}.json"),
                   "--images", str(args.images), "--batch-size", str(args.batch_size),
                   "--steps", str(args.steps), "--warmup", str(args.warmup)]
        processes.append(subprocess.Popen(command, cwd=harness.ROOT, env=env))
    try:
        statuses = distribute.wait_for_workers(processes, WORKER_TIMEOUT_SECONDS)
    except TimeoutError:
        raise SystemExit(f"the {num_workers}-worker cluster did not finish in time") from None
    if any(statuses):
        raise SystemExit(f"a worker of the {num_workers}-worker cluster failed: "
                         f"exit statuses {statuses}")
    return json.loads((folder / f"{num_workers}_0.json").read_text())


def table(results, batch_size):
    """The Markdown table of `{workers: chief's numbers}`."""
    rows = ["| workers (one core each) | global batch | images/s | step (ms) "
            "| all-reduce (ms) | all-reduce share of a step |",
            "| --- | --- | --- | --- | --- | --- |"]
    base = results[1]["images_per_second"]
    for workers, result in sorted(results.items()):
        speed = result["images_per_second"]
        share = result["all_reduce_seconds"] / result["step_seconds"]
        rows.append(
            f"| {workers} | {batch_size} | {speed:,.0f} ({speed / base:.2f}x) "
            f"| {1000 * result['step_seconds']:.1f} "
            f"| {1000 * result['all_reduce_seconds']:.1f} | {share:.0%} |")
    return "\n".join(rows)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=20000)
    parser.add_argument("--batch-size", type=int, default=128, help="the global batch")
    parser.add_argument("--steps", type=int, default=200, help="timed steps")
    parser.add_argument("--warmup", type=int, default=10, help="untimed steps first")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--core", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--result", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        return run_worker(args)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as folder:
        results = {n: run_cluster(n, args, pathlib.Path(folder)) for n in (1, 2)}
    minutes = (time.perf_counter() - start) / 60
    command = (f"python -m benchmarks.distributed --images {args.images} "
               f"--batch-size {args.batch_size} --steps {args.steps} --warmup {args.warmup}")
    print(table(results, args.batch_size))
    harness.append_results(f"""
## Multi-worker training: one worker against two, one core each, {datetime.date.today()}

`{command}` ({minutes:.1f} minutes) on {harness.machine()}.

The default VAE trained by `keras_vae.distribute.distributed_fit` under
`MultiWorkerMirroredStrategy`, in a cluster of one worker and in one of two workers on
loopback ports, each worker pinned to its own core with one TensorFlow thread; the same
global batch, split between the workers. The all-reduce is timed alone (tensors shaped like
the gradients, one call), in the same cluster, after training.

{table(results, args.batch_size)}
""")


if __name__ == "__main__":
    main()
