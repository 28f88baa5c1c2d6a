"""Input pipeline: epoch times and idle seconds, before and after the single-iterator fix.

The default VAE (the `keras-vae train` model: conv 32/64, dense 256, latent
32; Adam 1e-3, batch 128) trains on dynamically binarized MNIST from
`datasets.make_dataset`, three ways, each in a fresh process, one after the
other:

1. before: tf.data's autotuner off (what `make_dataset` did until now), and
   Keras's own `fit`, which makes a new iterator every epoch;
2. after: autotuner on (`make_dataset` now), keras_vae's `fit`, which trains
   a finite dataset through one iterator for all epochs;
3. autotuner on with a new iterator every epoch: the pause the autotuner
   switch was hiding (deleting an autotuned iterator waits for the
   autotuner's thread to wake).

Reported per arm: each epoch's seconds, their median after the first, the
seconds in which the process was idle (under 5% of one core in a 1-s sample;
idle seconds stay visible on a shared machine, timings do not) per epoch, and
the wait between the last epoch's end and `fit` returning. One table is
appended to RESULTS.md. At 60,000 images and 5 epochs it takes about
10 minutes on a quiet 2-core machine:

    python -m benchmarks.input_pipeline --images 60000 --epochs 5
"""

import argparse
import datetime
import json
import os
import statistics
import subprocess
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import tensorflow as tf

from benchmarks import harness
from keras_vae import datasets
from keras_vae import schedules
from keras_vae.models.vae import build_vae

ARMS = {
    "before": ("off", "new iterator each epoch (Keras's `fit`)"),
    "after": ("on", "one iterator for all epochs (keras_vae's `fit`)"),
    "per_epoch": ("on", "new iterator each epoch (Keras's `fit`)"),
}
"""Arm name -> (tf.data autotuner, how `fit` iterates)."""


def run_arm(arm, args):
    """Trains one arm in this process; returns its measurements as a dict."""
    autotune, _ = ARMS[arm]
    (x_train, _), _ = datasets.load("mnist")
    x = x_train[:args.images]
    data = datasets.make_dataset(x, batch_size=args.batch_size, binarize=True, seed=args.seed)
    if autotune == "off":
        options = tf.data.Options()
        options.autotune.enabled = False
        data = data.with_options(options)
    keras.utils.set_random_seed(args.seed)
    vae = build_vae(seed=args.seed)
    vae.compile(optimizer=keras.optimizers.Adam(schedules.learning_rate(1e-3)))
    # keras_vae's fit keeps one iterator; keras.Model.fit is Keras's own,
    # which makes a new iterator every epoch (the behaviour before the fix).
    fit = vae.fit if arm == "after" else lambda *a, **k: keras.Model.fit(vae, *a, **k)
    timer = harness.EpochTimer()
    with harness.ProcessCpu(interval=1.0) as cpu:
        fit(data, epochs=args.epochs, callbacks=[timer], verbose=0, shuffle=False)
        returned = time.perf_counter()
    ends = [start + seconds for start, seconds in zip(timer.starts, timer.seconds)]
    return {
        "seconds": timer.seconds,
        "idle": [cpu.idle_seconds(start, end) for start, end in zip(timer.starts, ends)],
        "return_wait": returned - ends[-1],
        "return_idle": cpu.idle_seconds(ends[-1], returned),
    }


def run_in_new_process(arm, args):
    """Runs one arm in a fresh Python process (no state shared between arms)."""
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks.input_pipeline", "--arm", arm,
         "--images", str(args.images), "--epochs", str(args.epochs),
         "--batch-size", str(args.batch_size), "--seed", str(args.seed)],
        cwd=harness.ROOT, capture_output=True, text=True, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def row(arm, result):
    autotune, iteration = ARMS[arm]
    seconds, idle = result["seconds"], result["idle"]
    steady = seconds[1:] or seconds
    cells = [arm, autotune, iteration, " / ".join(f"{s:.1f}" for s in seconds),
             f"{statistics.median(steady):.1f}", " / ".join(f"{s:.0f}" for s in idle),
             f"{sum(idle[1:]):.0f}", f"{result['return_wait']:.1f} ({result['return_idle']:.0f})"]
    return "| " + " | ".join(cells) + " |"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=60000)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--arms", nargs="+", choices=ARMS, default=list(ARMS))
    parser.add_argument("--arm", choices=ARMS, help="run one arm here; print JSON")
    parser.add_argument("--results", help="file to append to (default benchmarks/RESULTS.md)")
    args = parser.parse_args()
    if args.arm:
        print(json.dumps(run_arm(args.arm, args)))
        return

    started = time.perf_counter()
    rows = []
    for arm in args.arms:
        rows.append(row(arm, run_in_new_process(arm, args)))
        print(rows[-1], flush=True)
    minutes = (time.perf_counter() - started) / 60
    harness.append_results(f"""
## Input pipeline: the autotuner switch against one iterator per fit, {datetime.date.today()}

`python -m benchmarks.input_pipeline --images {args.images} --epochs {args.epochs}
--batch-size {args.batch_size} --seed {args.seed}` on {harness.machine()};
{minutes:.0f} minutes in all. The default VAE (conv 32/64, dense 256, latent 32), Adam 1e-3,
dynamically binarized MNIST from `datasets.make_dataset`, {args.images:,} images, each arm in
a fresh process. Idle: seconds of each epoch in 1-s samples where the process used under 5%
of one core. "After fit" is the wait from the last epoch's end to `fit` returning (idle
seconds in brackets): keras_vae's `fit` deletes its one iterator there.

| arm | autotuner | iteration | epoch seconds | median s, epochs 2+ | idle s per epoch | idle s, epochs 2+ | after fit: s (idle) |
| --- | --- | --- | --- | --- | --- | --- | --- |
{chr(10).join(rows)}
""", args.results)


if __name__ == "__main__":
    main()
