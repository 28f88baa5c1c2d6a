"""Trains the default `keras-vae train` model and records what it reaches.

Runs the command line exactly as a user would (in this process), for the
given numbers of epochs, and appends a table to RESULTS.md with one row per
run: the date, wall-clock minutes and the final validation losses on the
statically binarized MNIST test set (10,000 images, seed 0).

    python -m benchmarks.train_default --epochs 10
"""

import argparse
import datetime
import json
import os
import pathlib
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from benchmarks import harness
from keras_vae import cli


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, nargs="+", default=[10])
    args = parser.parse_args()
    rows = []
    for epochs in args.epochs:
        with tempfile.TemporaryDirectory() as tmp:
            start = time.perf_counter()
            status = cli.main(["train", "--epochs", str(epochs), "--output", tmp,
                               "--plot-every", "0", "--verbose", "2"])
            minutes = (time.perf_counter() - start) / 60
            if status:
                raise SystemExit(status)
            history = json.loads((pathlib.Path(tmp) / "history.json").read_text())
        rows.append(f"| {datetime.date.today()} | {epochs} | {minutes:.1f} | "
                    f"{history['val_loss'][-1]:.2f} | "
                    f"{history['val_reconstruction_loss'][-1]:.2f} | "
                    f"{history['val_kl_loss'][-1]:.2f} |")
        print(rows[-1], flush=True)
    harness.append_results(f"""
## Default `keras-vae train` on MNIST, {datetime.date.today()}

`python -m benchmarks.train_default --epochs {' '.join(map(str, args.epochs))}` on
{harness.machine()}: default model (conv 32/64 stride 2, dense 256, latent 32), batch 128,
Adam 1e-3, dynamically binarized training images, validation on the test set binarized once
(seed 0). Losses in nats per image; negative ELBO = reconstruction + KL.

| date | epochs | minutes | val negative ELBO | val reconstruction | val KL |
| --- | --- | --- | --- | --- | --- |
{chr(10).join(rows)}
""")


if __name__ == "__main__":
    main()
