"""`keras-vae anomaly MODEL`: score images with a saved model and flag the anomalous ones."""

import csv
import io

from keras_vae.cli import arguments

SCORES = ("neg_elbo", "nll", "reconstruction_error")
"""`keras_vae.anomaly.SCORES`, written out so that building the parser imports no TensorFlow."""


def add_parser(commands):
    """Adds the `anomaly` subcommand to `commands` (an argparse subparsers object)."""
    parser = commands.add_parser(
        "anomaly",
        help="score images with a saved model and flag the anomalous ones",
        description=(
            "Set a threshold on the training split of --reference (normal data) and "
            "score the test split of --data. Prints a JSON summary (threshold, images "
            "flagged, and ROC AUC when --anomalous-classes names the anomalies); "
            "--output writes one CSV row per scored image. Images are loaded at the "
            "model's input size."),
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
    static = args.binarize == "static"
    (reference, _), (x, y) = arguments.load_splits(args.reference, args, image_size,
                                                    color_mode, static)
    data_name = args.reference if args.data is None else args.data
    if args.data is not None:  # another dataset to score: its test split
        _, (x, y) = arguments.load_splits(args.data, args, image_size, color_mode, static)
    if args.contamination is not None:
        rate = {"contamination": args.contamination}
    else:
        rate = {"false_positive_rate": args.false_positive_rate or 0.05}
    detector = anomaly.AnomalyDetector(model, score=score,
                                       num_samples=args.num_samples, seed=args.seed)
    detector.fit(reference, **rate)
    check_finite_output(detector.threshold,
                        f"The threshold ({score} of the --reference images)", args.model)
    scores = check_finite_output(detector.score_samples(x),
                                 f"{score} of the scored images", args.model)
    flagged = scores > detector.threshold
    report = {
        "model": str(args.model), "score": score, "threshold": float(detector.threshold),
        "num_images": int(len(x)), "num_flagged": int(flagged.sum()),
        "fraction_flagged": float(flagged.mean()),
        "settings": {"reference": f"{args.reference} train", "data": f"{data_name} test",
                     **rate, "num_samples": args.num_samples,
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
