"""The `keras-vae` command line (also `python -m keras_vae`).

`keras-vae train` trains a VAE with `model.fit` and writes the run into an
output folder; `keras-vae evaluate MODEL` measures a saved one. Errors in the user's input are printed as one line, without a
traceback, and the command exits with status 2.
"""

import argparse
import contextlib
import json
import math
import pathlib
import shutil
import sys

import keras

from keras_vae import callbacks as vae_callbacks
from keras_vae import datasets
from keras_vae import evaluation
from keras_vae import plotting
from keras_vae import saving
from keras_vae.models.vae import build_vae

RUN_FILES = ("model.keras", "history.csv", "history.json", "run.json")
"""Files whose presence marks a folder as holding a finished run."""


def _number(cast, minimum, strict, description):
    """Returns an argparse `type` accepting finite numbers above `minimum`."""

    def parse(text):
        try:
            value = cast(text)
        except ValueError:
            value = None
        if (value is None or not math.isfinite(value) or value < minimum
                or (strict and value == minimum)):
            raise argparse.ArgumentTypeError(f"expected {description}, received {text!r}")
        return value

    return parse


_positive_int = _number(int, 0, True, "a positive int")
_positive_float = _number(float, 0.0, True, "a positive number")
_non_negative_float = _number(float, 0.0, False, "a number >= 0")
_non_negative_int = _number(int, 0, False, "an int >= 0")


def build_parser():
    """Returns the `argparse` parser of the `keras-vae` command."""
    parser = argparse.ArgumentParser(
        prog="keras-vae",
        description="Train and use Variational Autoencoders built with Keras 3.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    train = commands.add_parser(
        "train",
        help="train a convolutional VAE and write the run to a folder",
        description=(
            "Train a convolutional VAE with model.fit on a dataset (the shipped "
            "MNIST by default) and write model.keras, history.csv, "
            "history.json and run.json into the output folder."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    train.add_argument(
        "--dataset", default="mnist",
        help="a keras.datasets name (mnist, fashion_mnist, cifar10, cifar100), "
        "a path to an .npz file with x_train/y_train/x_test/y_test, or a folder "
        "with one sub-folder of images per class")
    train.add_argument("--epochs", type=_positive_int, default=10,
                       help="passes over the training images")
    train.add_argument("--batch-size", type=_positive_int, default=128,
                       help="images per training step")
    train.add_argument("--latent-dim", type=_positive_int, default=32,
                       help="size of the latent code z")
    train.add_argument("--beta", type=_non_negative_float, default=1.0,
                       help="weight of the KL term (1 gives the ELBO)")
    train.add_argument("--kl-warmup", type=_non_negative_int, default=0, metavar="EPOCHS",
                       help="raise beta linearly from 0 to --beta over this many epochs "
                       "(0: no warm-up)")
    train.add_argument("--learning-rate", type=_positive_float, default=1e-3,
                       help="Adam learning rate")
    train.add_argument("--seed", type=int, default=0,
                       help="seed of weights, shuffling, binarization and sampling")
    train.add_argument("--output", default="runs/vae",
                       help="folder the run is written to")
    train.add_argument("--overwrite", action="store_true",
                       help="replace a run already in the output folder")
    train.add_argument("--resume", action="store_true",
                       help="continue the interrupted run in the output folder from its "
                       "last completed epoch, with that run's settings (other flags "
                       "but --verbose are ignored)")
    train.add_argument(
        "--binarize", choices=("dynamic", "none"), default="dynamic",
        help="dynamic: resample every training pixel as Bernoulli(intensity) "
        "each time it is seen, and binarize the test images once with --seed "
        "(the standard for the Bernoulli likelihood); none: train on grey levels")
    train.add_argument("--limit", type=_positive_int, default=None,
                       help="use at most this many training and test images")
    train.add_argument("--image-size", type=_positive_int, nargs=2, default=(28, 28),
                       metavar=("HEIGHT", "WIDTH"),
                       help="size images from a folder are resized to")
    train.add_argument("--color-mode", choices=("grayscale", "rgb"),
                       default="grayscale", help="channels of images from a folder")
    train.add_argument("--plot-every", type=_non_negative_int, default=1, metavar="N",
                       help="save reconstruction and sample grids into OUTPUT/plots "
                       "every N epochs (0: none)")
    train.add_argument("--verbose", type=int, choices=(0, 1, 2), default=1,
                       help="Keras fit verbosity: 0 silent, 1 progress bar, 2 a line per epoch")
    train.set_defaults(run=_train)

    evaluate = commands.add_parser(
        "evaluate",
        help="measure a saved VAE: negative ELBO, IWAE log-likelihood, MSE and FID",
        description=(
            "Evaluate a saved model on a dataset split and print a JSON object with "
            "neg_elbo and nll (nats per image, nll from the importance-weighted bound), "
            "bits_per_dim, mse (per pixel and per image), fid (with its extractor) and "
            "the settings used. Progress goes to stderr, the JSON to stdout."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    evaluate.add_argument("model", help="path to a .keras file written by keras-vae train")
    evaluate.add_argument("--dataset", default="mnist",
                          help="dataset name or path, as for train")
    evaluate.add_argument("--split", choices=("test", "train"), default="test",
                          help="which split to evaluate on")
    evaluate.add_argument("--num-samples", type=_positive_int, default=1000,
                          help="K, importance samples per image for the IWAE bound")
    evaluate.add_argument("--limit", type=_positive_int, default=None,
                          help="evaluate at most this many images")
    evaluate.add_argument(
        "--binarize", choices=("static", "none"), default="static",
        help="static: binarize the images once with --seed (for the Bernoulli "
        "likelihood, as in the literature); none: use grey levels")
    evaluate.add_argument("--seed", type=int, default=0,
                          help="seed of the binarization, the importance samples and "
                          "the generated images")
    evaluate.add_argument(
        "--fid", choices=("mnist_classifier", "inception", "none"),
        default="mnist_classifier",
        help="feature extractor for FID: the shipped MNIST classifier (offline, reported "
        "as 'MNIST-classifier FID'), ImageNet InceptionV3 (needs its weights), or none")
    evaluate.add_argument("--image-size", type=_positive_int, nargs=2, default=(28, 28),
                          metavar=("HEIGHT", "WIDTH"),
                          help="size images from a folder are resized to")
    evaluate.add_argument("--color-mode", choices=("grayscale", "rgb"),
                          default="grayscale", help="channels of images from a folder")
    evaluate.add_argument("--verbose", type=int, choices=(0, 1), default=1,
                          help="1 shows progress bars on stderr")
    evaluate.set_defaults(run=_evaluate)
    return parser


BACKUP_DIR = "backup"
"""Sub-folder holding an unfinished run's checkpoint, history and settings."""

_STORED_SETTINGS = ("dataset", "epochs", "batch_size", "latent_dim", "beta", "kl_warmup",
                    "learning_rate", "seed", "binarize", "limit", "image_size",
                    "color_mode", "plot_every")


def check_output_folder(output, overwrite):
    """Raises `FileExistsError` if `output` holds a run and `overwrite` is False."""
    output = pathlib.Path(output)
    if output.exists() and not output.is_dir():
        raise FileExistsError(f"--output must be a folder. Received: {output} is a file")
    if overwrite:
        return
    existing = [name for name in RUN_FILES if (output / name).exists()]
    if existing:
        raise FileExistsError(
            f"The output folder {output} already holds a run ({', '.join(existing)}). "
            "Pass --overwrite to replace it, or choose another --output."
        )
    if (output / BACKUP_DIR).exists():
        raise FileExistsError(
            f"The output folder {output} holds an interrupted run ({BACKUP_DIR}/). "
            "Pass --resume to continue it, --overwrite to start again, or choose "
            "another --output."
        )


def _resume_settings(args):
    """Returns `args` with the settings stored by the interrupted run."""
    if args.overwrite:
        raise ValueError("--resume continues a run and --overwrite replaces it: pass one.")
    path = pathlib.Path(args.output) / BACKUP_DIR / "settings.json"
    if not path.is_file():
        raise FileNotFoundError(
            f"--resume found no interrupted run in {args.output}. Received: no {path}")
    try:
        stored = json.loads(path.read_text())
    except ValueError as error:
        raise ValueError(f"{path} is not valid JSON. Received error: {error}") from error
    missing = [key for key in _STORED_SETTINGS if key not in stored]
    if missing:
        raise ValueError(f"{path} lacks the settings {missing}.")
    print(f"keras-vae: resuming the run in {args.output} with its stored settings",
          file=sys.stderr)
    return argparse.Namespace(**{**vars(args), **{k: stored[k] for k in _STORED_SETTINGS}})


def _train(args):
    if args.resume:
        args = _resume_settings(args)
    else:
        check_output_folder(args.output, args.overwrite)

    (x_train, _), (x_test, y_test) = datasets.load(
        args.dataset, image_size=args.image_size, color_mode=args.color_mode,
        seed=args.seed,
    )
    if args.limit is not None:
        x_train, x_test, y_test = x_train[:args.limit], x_test[:args.limit], y_test[:args.limit]
    dynamic = args.binarize == "dynamic"
    if dynamic:
        x_test = datasets.binarize(x_test, seed=args.seed)
    train_data = datasets.make_dataset(
        x_train, batch_size=args.batch_size, binarize=dynamic, seed=args.seed
    )

    output = pathlib.Path(args.output)
    backup = output / BACKUP_DIR
    if not args.resume:
        # Only reached with --overwrite, or when no run is there.
        shutil.rmtree(backup, ignore_errors=True)
        for stale in (output / "plots").glob("*_[0-9][0-9][0-9].png"):
            stale.unlink()
        saving.write_json(backup / "settings.json",
                          {key: getattr(args, key) for key in _STORED_SETTINGS})

    keras.utils.set_random_seed(args.seed)
    vae = build_vae(
        image_shape=x_train.shape[1:], latent_dim=args.latent_dim,
        beta=args.beta, seed=args.seed,
    )
    vae.compile(optimizer=keras.optimizers.Adam(args.learning_rate))
    history = vae_callbacks.HistoryCheckpoint(backup / "history.json")
    guard = vae_callbacks.DivergenceGuard(raise_error=False)
    # At each epoch's end the pictures and the history are written before the
    # checkpoint, so a crash in between makes the resumed run redo (and
    # rewrite) that epoch rather than skip its pictures.
    callbacks = []
    if args.kl_warmup:
        callbacks.append(vae_callbacks.LinearKLWarmup(target=args.beta, length=args.kl_warmup))
    if args.plot_every:
        callbacks.append(vae_callbacks.ReconstructionPlotter(
            x_test[:10], output / "plots", every=args.plot_every, num_samples=16,
            seed=args.seed))
    callbacks += [
        history,
        keras.callbacks.BackupAndRestore(backup, double_checkpoint=True,
                                         delete_checkpoint=False),
        guard,
    ]
    vae.fit(
        train_data, epochs=args.epochs,
        validation_data=(x_test,), validation_batch_size=256,
        callbacks=callbacks, verbose=args.verbose,
    )
    if guard.diverged is not None:
        saving.save_model(vae, output / "last_good.keras")
        shutil.rmtree(backup, ignore_errors=True)  # it may hold the diverged epoch
        raise vae_callbacks.TrainingDivergedError(
            f"{guard.message()} The last good model is in {output / 'last_good.keras'}; "
            "no model.keras was written.")

    logs = history.history
    saving.save_model(vae, output / "model.keras")
    _save_final_pictures(vae, logs, x_test, y_test, output, args.seed)
    saving.write_history_csv(output / "history.csv", logs)
    saving.write_json(output / "history.json", logs)
    final = {key: values[-1] for key, values in logs.items()}
    saving.write_json(output / "run.json", {
        "settings": {key: getattr(args, key) for key in _STORED_SETTINGS},
        "train_images": int(x_train.shape[0]),
        "test_images": int(x_test.shape[0]),
        "image_shape": list(x_train.shape[1:]),
        "final_metrics": final,
    })
    shutil.rmtree(backup)
    print(json.dumps({"output": str(output), **final}, indent=2))
    return 0


def _evaluate(args):
    model = saving.load_model(args.model)
    if not all(hasattr(model, name) for name in ("posterior", "conditional_log_prob", "sample")):
        raise ValueError(
            f"{args.model} holds a {type(model).__name__}, not a keras_vae VAE; "
            "evaluate needs posterior(), conditional_log_prob() and sample().")
    train, test = datasets.load(args.dataset, image_size=args.image_size,
                                color_mode=args.color_mode, seed=args.seed)
    x = (test if args.split == "test" else train)[0]
    if args.limit is not None:
        x = x[:args.limit]
    model.check_input(x, name=f"{args.dataset} {args.split} images")
    data = datasets.binarize(x, seed=args.seed) if args.binarize == "static" else x
    report = {
        "model": str(args.model),
        "settings": {"dataset": args.dataset, "split": args.split,
                     "num_images": int(len(x)), "num_samples": args.num_samples,
                     "binarization": (f"static, seed {args.seed}"
                                      if args.binarize == "static" else "none"),
                     "seed": args.seed},
    }
    with contextlib.redirect_stdout(sys.stderr):
        likelihood = evaluation.likelihood_report(
            model, data, num_samples=args.num_samples, seed=args.seed,
            verbose=args.verbose)
        report.update({key: likelihood[key] for key in ("neg_elbo", "nll", "bits_per_dim")})
        report["mse"] = evaluation.reconstruction_mse(model, data)
        if args.fid == "none":
            report["fid"] = None
        else:
            extractor = (evaluation.mnist_classifier_features() if args.fid == "mnist_classifier"
                         else evaluation.inception_features())
            generated = model.sample(len(x), seed=args.seed)
            report["fid"] = evaluation.fid(x, generated, extractor)
    print(json.dumps(report, indent=2))
    return 0


def _save_final_pictures(vae, history, x_test, y_test, output, seed):
    """Writes training curves, samples, reconstructions and the latent space."""
    figures = {
        "training_curves.png": plotting.plot_history(history),
        "samples.png": plotting.plot_samples(vae, n=32, seed=seed),
        "reconstructions.png": plotting.plot_reconstructions(
            x_test[:10], vae.reconstruct(x_test[:10])),
        "latent.png": plotting.plot_latent_scatter(
            vae.encode(x_test[:2000])[0], y_test[:2000]),
    }
    if vae.latent_dim == 2:
        figures["manifold.png"] = plotting.plot_latent_manifold(vae)
    for name, figure in figures.items():
        figure.savefig(output / name, dpi=100)


def main(argv=None):
    """Runs the command line; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.run(args)
    except (ValueError, TypeError, OSError, RuntimeError) as error:
        print(f"keras-vae: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
