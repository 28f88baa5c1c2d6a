"""`keras-vae anomaly MODEL`: score images with a saved model and flag the anomalous ones."""

import csv
import io
import json
import pathlib

from keras_vae.cli import arguments

SCORES = ("neg_elbo", "nll", "reconstruction_error")
"""`keras_vae.anomaly.SCORES`, written out so that building the parser imports no TensorFlow."""


def add_parser(commands):
    """Adds the `anomaly` subcommand to `commands` (an argparse subparsers object)."""
    parser = commands.add_parser(
        "anomaly",
        help="score images with a saved model and flag the anomalous ones",
        description=(
            "Set a threshold on normal images of --reference that the model did not "
            "train on, and score the test split of --data. The threshold images are "
            "the training images the model's run held out (recorded in the run.json "
            "beside a model.keras, or in the pretrained registry), else the last "
            "--validation-split of --reference's test split, which are then not scored. "
            "Prints a JSON summary (threshold, the images it came from, images flagged, "
            "and ROC AUC when --anomalous-classes names the anomalies); --output writes "
            "one CSV row per scored image. Images are loaded at the model's input size."),
        formatter_class=arguments.HelpFormatter,
    )
    parser.add_argument("model", help="path to a saved VAE or Autoencoder (.keras), "
                        "or pretrained:NAME for a model shipped with keras_vae")
    arguments.add_data_arguments(parser, "reference", "mnist",
                                 "normal data: a dataset name or path, as for train",
                                 image_size_default=None, color_mode_default=None)
    parser.add_argument("--data", default=None,
                        help="data to score (its test split); default: --reference")
    parser.add_argument("--score", choices=SCORES, default=None,
                        help="anomaly score (default: neg_elbo for a model with a "
                        "likelihood, reconstruction_error for an autoencoder); the "
                        "likelihood scores need a VAE")
    rates = parser.add_mutually_exclusive_group()
    rates.add_argument("--false-positive-rate", type=arguments.positive_float, default=None,
                       help="fraction of normal images flagged (default 0.05)")
    rates.add_argument("--contamination", type=arguments.positive_float, default=None,
                       help="expected fraction of anomalies in the reference data")
    parser.add_argument("--validation-split", type=arguments.fraction, default=None,
                        help="fraction of --reference's test split (its last images) that "
                        "sets the threshold and is not scored; default: the held-out "
                        "images the model's training recorded, else 0.2")
    parser.add_argument("--num-samples", type=arguments.positive_int, default=100,
                        help="codes per image for neg_elbo and nll")
    parser.add_argument("--binarize", choices=("static", "none"), default="static",
                        help="binarize both sets once with --seed (Bernoulli models)")
    parser.add_argument("--anomalous-classes", type=int, nargs="+", default=None,
                        metavar="CLASS",
                        help="labels of --data that are anomalies, to report ROC AUC, "
                        "precision and recall")
    parser.add_argument("--output", default=None, help="CSV file of per-image scores")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace an existing --output file")
    parser.set_defaults(run=run)


def scores_csv(labels, scores, flagged):
    """Returns the per-image CSV: index, label, score (a plain float) and flagged (0/1).

    Args:
        labels: The images' labels, one int per image.
        scores: Their anomaly scores.
        flagged: 1 for each image flagged as an anomaly, else 0.
    """
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["index", "label", "score", "flagged"])
    for i, (label, score, flag) in enumerate(zip(labels, scores, flagged)):
        writer.writerow([i, int(label), repr(float(score)), int(flag)])
    return buffer.getvalue()


def _score(args, model):
    """The score `model` can give: `--score`, or the best one it has; else raises."""
    from keras_vae.models import base

    kind = type(model).__name__
    if not model.has(base.ENCODER):
        raise ValueError(
            f"{args.model} holds a {kind}, which has no encoder: no --score works with it "
            "(reconstruction_error needs an encoder, neg_elbo and nll a likelihood).")
    score = args.score
    if score is None:
        score = "neg_elbo" if model.has(base.LIKELIHOOD) else "reconstruction_error"
    if score != "reconstruction_error" and not model.has(base.LIKELIHOOD):
        raise ValueError(
            f"--score {score} needs a model with a likelihood; {args.model} holds a {kind}, "
            "which has none: use --score reconstruction_error.")
    return score


DEFAULT_VALIDATION_SPLIT = 0.2
"""Share of --reference's test split that sets the threshold when nothing is recorded."""


def recorded_held_out(model, reference):
    """The training images of `reference` that the model's training held out, or None.

    A `model.keras` that `keras-vae train --validation-images N` wrote has a
    `run.json` beside it recording the run's dataset, `--limit`, `--seed` and
    N: its last N training images were never trained on. A shipped model's
    registry entry records `validation_images` likewise. Nothing is recorded
    for any other file, or when the record is of another dataset.

    Args:
        model: The model argument as given (a path, or `pretrained:NAME`).
        reference: The `--reference` dataset (a name or a path).

    Returns:
        None, or a dict: `dataset`, `images` (N), `limit` and `seed` of the
        training run (the held-out images are the last N of its first
        `limit` training images, split with `seed`), and `record`, where it
        is written.
    """
    text = str(model)
    if text.startswith(arguments.PRETRAINED):
        from keras_vae import pretrained

        name = text[len(arguments.PRETRAINED):]
        entry = pretrained.info(name)
        record = {"dataset": entry["dataset"], "images": int(entry.get("validation_images", 0)),
                  "limit": None, "seed": 0,
                  "record": f"the pretrained registry's entry for {name}"}
    else:
        run_file = pathlib.Path(text).parent / "run.json"
        if pathlib.Path(text).name != "model.keras" or not run_file.is_file():
            return None
        try:
            settings = json.loads(run_file.read_text())["settings"]
            record = {"dataset": str(settings["dataset"]),
                      "images": int(settings.get("validation_images") or 0),
                      "limit": settings.get("limit"), "seed": int(settings.get("seed", 0)),
                      "record": str(run_file)}
        except (OSError, ValueError, KeyError, TypeError):
            return None  # not a run folder's record: nothing is known
    if record["images"] <= 0 or not _same_dataset(record["dataset"], reference):
        return None
    return record


def _same_dataset(recorded, reference):
    if str(recorded) == str(reference):
        return True
    recorded, reference = pathlib.Path(str(recorded)), pathlib.Path(str(reference))
    return recorded.exists() and reference.exists() and recorded.samefile(reference)


def _scores_the_reference(args):
    return args.data is None or _same_dataset(args.data, args.reference)


def _threshold_images(args, image_size, color_mode):
    """Returns `(threshold images, their description for the JSON, (x, y) of --reference)`.

    The threshold images are the held-out training images that the model's
    run recorded (and `(x, y)` the reference's test split), or else the last
    `--validation-split` of the reference's test split (and `(x, y)` the
    rest of it), so that no image both sets the threshold and is scored.
    """
    import argparse

    from keras_vae import datasets

    static = args.binarize == "static"
    recorded = (None if args.validation_split is not None
                else recorded_held_out(args.model, args.reference))
    if recorded is not None:
        as_trained = argparse.Namespace(**{**vars(args), "limit": None,
                                           "seed": recorded["seed"]})
        (x_train, _), test = arguments.load_splits(args.reference, as_trained, image_size,
                                                   color_mode)
        trained_on = len(x_train) if recorded["limit"] is None else min(
            len(x_train), recorded["limit"])
        if recorded["images"] >= trained_on:
            raise ValueError(
                f"{recorded['record']} holds out the last {recorded['images']} of "
                f"{trained_on} training images of {args.reference}, but --reference "
                f"{args.reference} has {len(x_train)} training images; pass "
                "--validation-split to set the threshold on its test split instead.")
        start = trained_on - recorded["images"]
        stop = trained_on if args.limit is None else min(trained_on, start + args.limit)
        x = x_train[start:stop]
        if static:
            x = datasets.binarize(x, seed=args.seed)
        x_test, y_test = test
        if args.limit is not None:
            x_test, y_test = x_test[:args.limit], y_test[:args.limit]
        if static:
            x_test = datasets.binarize(x_test, seed=args.seed)
        described = {"dataset": str(args.reference), "split": "train", "start": start,
                     "stop": stop, "count": int(len(x)),
                     "source": f"held out from the model's training, as {recorded['record']} "
                               "records"}
        return x, described, (x_test, y_test)
    fraction = args.validation_split or DEFAULT_VALIDATION_SPLIT
    _, (x_test, y_test) = arguments.load_splits(args.reference, args, image_size, color_mode,
                                                static)
    count = int(round(fraction * len(x_test)))
    scored_reference = _scores_the_reference(args)
    if count < 1 or (scored_reference and count >= len(x_test)):
        raise ValueError(
            f"--validation-split {fraction} of the {len(x_test)} test images of "
            f"{args.reference} leaves no image to set the threshold"
            + (" or none to score." if scored_reference else ".")
            + f" Received: --validation-split {fraction}")
    start = len(x_test) - count
    described = {"dataset": str(args.reference), "split": "test", "start": start,
                 "stop": len(x_test), "count": count,
                 "source": f"the last {fraction:g} of the test split (--validation-split; the "
                           "model records no held-out training images of "
                           f"{args.reference}), not scored"}
    return x_test[start:], described, (x_test[:start], y_test[:start])


def run(args):
    """Scores the images as `args` asks and returns the JSON summary."""
    import numpy as np

    from keras_vae import anomaly
    from keras_vae import saving
    from keras_vae.validation import check_finite_output

    if args.output is not None:
        arguments.check_output_file(args.output, args.overwrite, [args.model])
    model = arguments.load_image_model(args.model)
    if model.num_classes is not None:
        raise ValueError(
            f"{args.model} holds a conditional {type(model).__name__}; anomaly scores "
            "images without labels and needs an unconditional VAE or Autoencoder.")
    score = _score(args, model)
    image_size, color_mode = arguments.image_options(args, model)
    reference, threshold_images, (x, y) = _threshold_images(args, image_size, color_mode)
    data_name = args.reference if args.data is None else args.data
    if not _scores_the_reference(args):  # another dataset to score: its test split
        _, (x, y) = arguments.load_splits(args.data, args, image_size, color_mode,
                                          args.binarize == "static")
    if args.contamination is not None:
        rate = {"contamination": args.contamination}
    else:
        rate = {"false_positive_rate": args.false_positive_rate or 0.05}
    detector = anomaly.AnomalyDetector(model, score=score,
                                       num_samples=args.num_samples, seed=args.seed)
    detector.fit(reference, **rate)
    check_finite_output(detector.threshold,
                        f"The threshold ({score} of the held-out --reference images)",
                        args.model)
    scores = check_finite_output(detector.score_samples(x),
                                 f"{score} of the scored images", args.model)
    flagged = scores > detector.threshold
    report = {
        "model": str(args.model), "score": score, "threshold": float(detector.threshold),
        "threshold_images": threshold_images,
        "num_images": int(len(x)), "num_flagged": int(flagged.sum()),
        "fraction_flagged": float(flagged.mean()),
        "settings": {"reference": str(args.reference), "data": f"{data_name} test",
                     **rate, "validation_split": (
                         None if threshold_images["split"] == "train"
                         else args.validation_split or DEFAULT_VALIDATION_SPLIT),
                     "num_samples": args.num_samples,
                     "binarization": arguments.binarization_note(args),
                     "limit": args.limit},
    }
    if args.anomalous_classes is not None:
        truth = np.isin(y, args.anomalous_classes).astype("int64")
        report["anomalous_classes"] = args.anomalous_classes
        report["roc_auc"] = anomaly.roc_auc(scores, truth)
        report.update(anomaly.precision_recall(scores, truth, detector.threshold))
    if args.output is not None:
        saving.write_text(args.output, scores_csv(y, scores, flagged))
        report["output"] = str(args.output)
    return report
