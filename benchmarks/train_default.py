"""Trains the default `keras-vae train` model and records what it reaches.

Runs the command line exactly as a user would (in this process), for the
given numbers of epochs, and appends one row per run to RESULTS.md with the
date, the machine, wall-clock minutes and the final validation losses on the
statically binarized MNIST test set (10,000 images, seed 0).

    .venv/bin/python benchmarks/train_default.py --epochs 10
"""

import argparse
import datetime
import json
import os
import pathlib
import platform
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from keras_vae import cli  # noqa: E402

RESULTS = pathlib.Path(__file__).resolve().parent / "RESULTS.md"
HEADER = """
## Default `keras-vae train` on MNIST

`benchmarks/train_default.py`: default model (conv 32/64 stride 2, dense 256, latent 32),
batch 128, Adam 1e-3, dynamically binarized training images, validation on the test set
binarized once (seed 0). Losses in nats per image; negative ELBO = reconstruction + KL.

| date | machine | epochs | minutes | val negative ELBO | val reconstruction | val KL |
| --- | --- | --- | --- | --- | --- | --- |
"""


def machine():
    return f"{platform.machine()}, {os.cpu_count()} CPU cores, {platform.python_version()}"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, nargs="+", default=[10])
    args = parser.parse_args()
    text = RESULTS.read_text() if RESULTS.exists() else "# Benchmark results\n"
    if "## Default `keras-vae train` on MNIST" not in text:
        text += HEADER
    for epochs in args.epochs:
        with tempfile.TemporaryDirectory() as tmp:
            start = time.perf_counter()
            status = cli.main(["train", "--epochs", str(epochs), "--output", tmp,
                               "--plot-every", "0", "--verbose", "2"])
            minutes = (time.perf_counter() - start) / 60
            if status:
                raise SystemExit(status)
            history = json.loads((pathlib.Path(tmp) / "history.json").read_text())
        row = (f"| {datetime.date.today()} | {machine()} | {epochs} | {minutes:.1f} | "
               f"{history['val_loss'][-1]:.2f} | {history['val_reconstruction_loss'][-1]:.2f} | "
               f"{history['val_kl_loss'][-1]:.2f} |")
        print(row)
        marker = "| --- | --- | --- | --- | --- | --- | --- |\n"
        head, _, tail = text.partition(marker)
        text = head + marker + tail.rstrip("\n") + ("\n" if tail.strip() else "") + row + "\n"
    RESULTS.write_text(text)


if __name__ == "__main__":
    main()
