"""The `keras-vae` command line (also `python -m keras_vae`).

`keras-vae train` trains a VAE (or a conditional VAE) with `model.fit` and
writes the run into an output folder; `keras-vae evaluate MODEL` measures a
saved one; `keras-vae anomaly MODEL` scores and flags images;
`keras-vae augment MODEL` writes labelled synthetic images. Errors in the
user's input are printed as one line, without a traceback, and the command
exits with status 2.
"""

import argparse
import contextlib
import json
import math
import pathlib
import shutil
import sys

import keras
import numpy as np

from keras_vae import anomaly
from keras_vae import augmentation
from keras_vae import callbacks as vae_callbacks
from keras_vae import datasets
from keras_vae import evaluation
from keras_vae import likelihoods
from keras_vae import plotting
from keras_vae import priors
from keras_vae import saving
from keras_vae.models.conditional_vae import ConditionalVAE
from keras_vae.models.conditional_vae import build_conditional_vae
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
    train.add_argument("--model", choices=("vae", "conditional_vae"), default="vae",
                       help="conditional_vae also gives the class label to the encoder "
                       "and decoder (the dataset must have labels)")
    train.add_argument("--likelihood", choices=likelihoods.NAMES, default="bernoulli",
                       help="p(x|z); use --binarize none for the grey-level likelihoods")
    train.add_argument("--prior", choices=priors.NAMES, default="normal",
                       help="p(z): standard normal, learned mixture of Gaussians, VampPrior")
    train.add_argument("--beta", type=_non_negative_float, default=1.0,
                       help="weight of the KL term (1 gives the ELBO)")
    train.add_argument("--kl-warmup", type=_non_negative_int, default=0, metavar="EPOCHS",
                       help="raise beta linearly from 0 to --beta over this many epochs "
                       "(0: no warm-up)")
    train.add_argument("--learning-rate", type=_positive_float, default=1e-3,
                       help="Adam learning rate (the peak, with --lr-schedule cosine)")
    train.add_argument("--lr-schedule", choices=("constant", "cosine"), default="constant",
                       help="cosine: decay the learning rate to 0 over the run "
                       "(Loshchilov and Hutter's cosine schedule, no restarts)")
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
            "bits_per_dim (null, with bits_per_dim_note saying why, unless the likelihood "
            "is a probability mass of the data), mse (per pixel and per image), fid (with "
            "its extractor) and "
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
    _add_anomaly_parser(commands)
    _add_augment_parser(commands)
    return parser


def _add_data_arguments(parser, name, default, help_text):
    parser.add_argument(f"--{name}", default=default, help=help_text)
    parser.add_argument("--image-size", type=_positive_int, nargs=2, default=(28, 28),
                        metavar=("HEIGHT", "WIDTH"),
                        help="size images from a folder are resized to")
    parser.add_argument("--color-mode", choices=("grayscale", "rgb"),
                        default="grayscale", help="channels of images from a folder")
    parser.add_argument("--limit", type=_positive_int, default=None,
                        help="use at most this many images of each split")
    parser.add_argument("--seed", type=int, default=0,
                        help="seed of the binarization and of the random draws")


def _add_anomaly_parser(commands):
    parser = commands.add_parser(
        "anomaly",
        help="score images with a saved model and flag the anomalous ones",
        description=(
            "Set a threshold on the training split of --reference (normal data) and "
            "score the test split of --data. Prints a JSON summary (threshold, images "
            "flagged, and ROC AUC when --anomalous-classes names the anomalies); "
            "--output writes one CSV row per scored image."),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("model", help="path to a saved VAE or Autoencoder (.keras)")
    _add_data_arguments(parser, "reference", "mnist",
                        "normal data: a dataset name or path, as for train")
    parser.add_argument("--data", default=None,
                        help="data to score (its test split); default: --reference")
    parser.add_argument("--score", choices=anomaly.SCORES, default="neg_elbo",
                        help="anomaly score; the likelihood scores need a VAE")
    rates = parser.add_mutually_exclusive_group()
    rates.add_argument("--false-positive-rate", type=_positive_float, default=None,
                       help="fraction of normal images flagged (default 0.05)")
    rates.add_argument("--contamination", type=_positive_float, default=None,
                       help="expected fraction of anomalies in the reference data")
    parser.add_argument("--num-samples", type=_positive_int, default=100,
                        help="codes per image for neg_elbo and nll")
    parser.add_argument("--binarize", choices=("static", "none"), default="static",
                        help="binarize both sets once with --seed (Bernoulli models)")
    parser.add_argument("--anomalous-classes", type=int, nargs="+", default=None,
                        metavar="CLASS",
                        help="labels of --data that are anomalies, to report ROC AUC, "
                        "precision and recall")
    parser.add_argument("--output", default=None, help="CSV file of per-image scores")
    parser.set_defaults(run=_anomaly)


def _add_augment_parser(commands):
    parser = commands.add_parser(
        "augment",
        help="write labelled synthetic images from a saved (conditional) VAE",
        description=(
            "With a ConditionalVAE, draw --per-class images of every class. With a "
            "VAE, re-decode the training images of --source from codes drawn around "
            "their posteriors, keeping their labels. Writes an .npz with float32 "
            "`images` in [0, 1] and int32 `labels`, and prints a JSON summary."),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("model", help="path to a saved ConditionalVAE or VAE (.keras)")
    parser.add_argument("--output", required=True, help="the .npz file to write")
    parser.add_argument("--per-class", type=_positive_int, default=100,
                        help="images per class (ConditionalVAE)")
    _add_data_arguments(parser, "source", None,
                        "labelled images to perturb (VAE): a dataset name or path")
    parser.add_argument("--copies", type=_positive_int, default=1,
                        help="new images per source image (VAE)")
    parser.add_argument("--scale", type=_non_negative_float, default=1.0,
                        help="multiplier of the posterior's standard deviation (VAE)")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace an existing --output file")
    parser.set_defaults(run=_augment)


BACKUP_DIR = "backup"
"""Sub-folder holding an unfinished run's checkpoint, history and settings."""

_STORED_SETTINGS = ("dataset", "model", "likelihood", "prior", "epochs", "batch_size",
                    "latent_dim", "beta", "kl_warmup", "learning_rate", "lr_schedule", "seed",
                    "binarize",
                    "limit", "image_size", "color_mode", "plot_every")
_SETTING_DEFAULTS = {"model": "vae", "likelihood": "bernoulli", "prior": "normal",
                     "lr_schedule": "constant"}
"""Settings added after runs were first stored, with the values those runs used."""


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
    stored = {**_SETTING_DEFAULTS, **stored}
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

    (x_train, y_train), (x_test, y_test) = datasets.load(
        args.dataset, image_size=args.image_size, color_mode=args.color_mode,
        seed=args.seed,
    )
    if args.limit is not None:
        x_train, y_train = x_train[:args.limit], y_train[:args.limit]
        x_test, y_test = x_test[:args.limit], y_test[:args.limit]
    conditional = args.model == "conditional_vae"
    dynamic = args.binarize == "dynamic"
    if dynamic:
        x_test = datasets.binarize(x_test, seed=args.seed)
    train_data = datasets.make_dataset(
        x_train, y_train if conditional else None, batch_size=args.batch_size,
        binarize=dynamic, seed=args.seed
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
    options = {"image_shape": x_train.shape[1:], "latent_dim": args.latent_dim,
               "beta": args.beta, "likelihood": args.likelihood, "prior": args.prior,
               "seed": args.seed}
    if conditional:
        vae = build_conditional_vae(num_classes=int(y_train.max()) + 1, **options)
    else:
        vae = build_vae(**options)
    learning_rate = args.learning_rate
    if args.lr_schedule == "cosine":
        steps = args.epochs * math.ceil(len(x_train) / args.batch_size)
        learning_rate = keras.optimizers.schedules.CosineDecay(args.learning_rate, steps)
    vae.compile(optimizer=keras.optimizers.Adam(learning_rate))
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
            seed=args.seed, labels=y_test[:10] if conditional else None))
    callbacks += [
        history,
        keras.callbacks.BackupAndRestore(backup, double_checkpoint=True,
                                         delete_checkpoint=False),
        guard,
    ]
    vae.fit(
        train_data, epochs=args.epochs,
        validation_data=(x_test, y_test) if conditional else (x_test,),
        validation_batch_size=256,
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
        report.update({key: likelihood[key] for key in ("neg_elbo", "nll", "bits_per_dim",
                                                        "bits_per_dim_note")})
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


def _load_split(name, args, split):
    """Returns `(x, y)` of one split of a dataset, limited and binarized as asked."""
    train, test = datasets.load(name, image_size=args.image_size,
                                color_mode=args.color_mode, seed=args.seed)
    x, y = train if split == "train" else test
    if args.limit is not None:
        x, y = x[:args.limit], y[:args.limit]
    if getattr(args, "binarize", "none") == "static":
        x = datasets.binarize(x, seed=args.seed)
    return x, y


def _anomaly(args):
    model = saving.load_model(args.model)
    if isinstance(model, ConditionalVAE) or not hasattr(model, "reconstruct"):
        raise ValueError(
            f"{args.model} holds a {type(model).__name__}; anomaly needs a VAE or an "
            "Autoencoder.")
    reference, _ = _load_split(args.reference, args, "train")
    data_name = args.reference if args.data is None else args.data
    x, y = _load_split(data_name, args, "test")
    if args.contamination is not None:
        rate = {"contamination": args.contamination}
    else:
        rate = {"false_positive_rate": args.false_positive_rate or 0.05}
    detector = anomaly.AnomalyDetector(model, score=args.score,
                                       num_samples=args.num_samples, seed=args.seed)
    with contextlib.redirect_stdout(sys.stderr):
        detector.fit(reference, **rate)
        scores = detector.score_samples(x)
    flagged = scores > detector.threshold
    report = {
        "model": str(args.model), "score": args.score, "threshold": detector.threshold,
        "num_images": int(len(x)), "num_flagged": int(flagged.sum()),
        "fraction_flagged": float(flagged.mean()),
        "settings": {"reference": f"{args.reference} train", "data": f"{data_name} test",
                     **rate, "num_samples": args.num_samples,
                     "binarization": (f"static, seed {args.seed}"
                                      if args.binarize == "static" else "none"),
                     "limit": args.limit},
    }
    if args.anomalous_classes is not None:
        truth = np.isin(y, args.anomalous_classes).astype("int64")
        report["anomalous_classes"] = args.anomalous_classes
        report["roc_auc"] = anomaly.roc_auc(scores, truth)
        report.update(anomaly.precision_recall(scores, truth, detector.threshold))
    if args.output is not None:
        lines = ["index,label,score,flagged"] + [
            f"{i},{int(label)},{score!r},{int(flag)}"
            for i, (label, score, flag) in enumerate(zip(y, scores, flagged))]
        saving.write_text(args.output, "\n".join(lines) + "\n")
        report["output"] = str(args.output)
    print(json.dumps(report, indent=2))
    return 0


def _augment(args):
    output = pathlib.Path(args.output)
    if output.suffix != ".npz":
        raise ValueError(f"--output must end in .npz. Received: {output}")
    if output.exists() and not args.overwrite:
        raise FileExistsError(f"{output} exists. Pass --overwrite to replace it.")
    model = saving.load_model(args.model)
    if isinstance(model, ConditionalVAE):
        images, labels = augmentation.synthesize(model, args.per_class, seed=args.seed)
        how = {"method": "conditional samples", "per_class": args.per_class}
    elif hasattr(model, "posterior"):
        if args.source is None:
            raise ValueError(
                f"{args.model} holds a VAE, which needs --source: the labelled images "
                "whose codes it perturbs.")
        x, y = _load_split(args.source, args, "train")
        model.check_input(x, name=f"{args.source} images")
        images, labels = augmentation.perturb(model, x, y, copies=args.copies,
                                              scale=args.scale, seed=args.seed)
        how = {"method": "perturbed codes", "source": f"{args.source} train",
               "copies": args.copies, "scale": args.scale}
    else:
        raise ValueError(
            f"{args.model} holds a {type(model).__name__}; augment needs a "
            "ConditionalVAE or a VAE.")
    with saving.atomic_target(output) as target:
        with open(target, "wb") as handle:
            np.savez_compressed(handle, images=images.astype("float32"),
                                labels=labels.astype("int32"))
    counts = np.bincount(labels.astype("int64"))
    print(json.dumps({"output": str(output), "num_images": int(len(images)),
                      "images_per_class": {str(c): int(n) for c, n in enumerate(counts) if n},
                      **how, "seed": args.seed}, indent=2))
    return 0


def _save_final_pictures(vae, history, x_test, y_test, output, seed):
    """Writes training curves, samples, reconstructions and the latent space."""
    conditional = isinstance(vae, ConditionalVAE)

    def labels(n):  # the extra argument a conditional model's methods take
        return (y_test[:n],) if conditional else ()

    if conditional:
        samples = plotting.plot_images(
            vae.sample(np.arange(32) % vae.num_classes, seed=seed),
            title="32 samples from the prior, classes 0, 1, ... in turn")
    else:
        samples = plotting.plot_samples(vae, n=32, seed=seed)
    figures = {
        "training_curves.png": plotting.plot_history(history),
        "samples.png": samples,
        "reconstructions.png": plotting.plot_reconstructions(
            x_test[:10], vae.reconstruct(x_test[:10], *labels(10))),
        "latent.png": plotting.plot_latent_scatter(
            vae.encode(x_test[:2000], *labels(2000))[0], y_test[:2000]),
    }
    if vae.latent_dim == 2 and not conditional:
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
