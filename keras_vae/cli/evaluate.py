"""`keras-vae evaluate MODEL`: likelihood (or code statistics), reconstruction error and FID.

What applies to the model is reported, as its capabilities say: the
likelihood bounds for a model with `LIKELIHOOD` (a VAE), the code bits, the
prior's NLL of the codes and the codebook's use for one with `CODEBOOK` (a
VQ-VAE); the reconstruction error and FID for both.
"""

import sys

from keras_vae import precision
from keras_vae.cli import arguments

FID_CHOICES = ("auto", "mnist_classifier", "inception", "none")


def add_parser(commands):
    """Adds the `evaluate` subcommand to `commands` (an argparse subparsers object)."""
    parser = commands.add_parser(
        "evaluate",
        help="measure a saved VAE or VQ-VAE: negative ELBO, IWAE log-likelihood (VQ-VAE: "
        "code bits, prior NLL, codebook use), MSE and FID",
        description=(
            "Evaluate a saved model on a dataset split and print a JSON object with "
            "neg_elbo and nll (nats per image, nll from the importance-weighted bound), "
            "bits_per_dim (null with a note for continuous densities), mse (per pixel "
            "and per image), fid (with its extractor, or null with the reason) and the "
            "settings used. A VQ-VAE has no likelihood bound: its report gives instead "
            "code_bits_per_image (positions x log2 K), prior_nll_bits (its prior's "
            "-log2 p of the test code maps, per map; null with a note before the prior "
            "is fitted) and codebook (perplexity, fraction of codes used, collapse), and "
            "FID of samples drawn from its prior. Images are loaded at the model's input "
            "size. Progress goes to stderr, the JSON to stdout."),
        formatter_class=arguments.HelpFormatter,
    )
    parser.add_argument("model", help="path to a .keras file written by keras-vae train, "
                        "or pretrained:NAME for a model shipped with keras_vae")
    arguments.add_data_arguments(parser, image_size_default=None, color_mode_default=None)
    parser.add_argument("--split", choices=("test", "train"), default="test",
                        help="which split to evaluate on")
    parser.add_argument("--num-samples", type=arguments.positive_int, default=1000,
                        help="K, importance samples per image for the IWAE bound (a model "
                        "with a likelihood only)")
    parser.add_argument(
        "--binarize", choices=("static", "none"), default="static",
        help="static: binarize the images once with --seed (for the Bernoulli "
        "likelihood, as in the literature); none: use grey levels")
    parser.add_argument(
        "--fid", choices=FID_CHOICES, default="auto",
        help="feature extractor for FID: auto (the shipped MNIST classifier for 28x28x1 "
        "images, else ImageNet InceptionV3 where its weights can be had, else no FID), "
        "mnist_classifier (offline, reported as 'MNIST-classifier FID'), inception, or none")
    parser.add_argument(
        "--precision", choices=precision.CHOICES, default="float32",
        help="format of the evaluation's computations, whatever policy the model was "
        "trained in (default float32, so figures compare across models): a mixed policy "
        "computes the importance-weighted bound faster where the hardware has fast units "
        "for it (auto: only there); the likelihood stays float32")
    parser.add_argument("--verbose", type=int, choices=(0, 1, 2), default=1,
                        help="1 shows progress bars on stderr; 2 also TensorFlow's "
                        "start-up log")
    parser.set_defaults(run=run)


def _fid(choice, model, x, seed, model_name):
    """Returns the FID report of `model`'s samples against `x`, or a reason for none."""
    from keras_vae import evaluation
    from keras_vae.models import base
    from keras_vae.validation import check_finite_output

    if choice == "none":
        return None, "--fid none"
    if len(x) < 2:  # a covariance needs two images
        return None, f"FID needs at least 2 images; {len(x)} evaluated"
    mnist_shaped = tuple(model.image_shape) == evaluation.MNIST_IMAGE_SHAPE
    if choice == "mnist_classifier" or (choice == "auto" and mnist_shaped):
        extractor = evaluation.mnist_classifier_features()
    else:
        try:
            extractor = evaluation.inception_features()
        except RuntimeError as error:
            if choice == "inception":
                raise ValueError(str(error)) from error
            return None, f"no feature extractor: {error}"
    if model.has(base.CODEBOOK) and not model.prior_fitted:
        return None, (f"the {type(model).__name__}'s prior is not fitted: its samples would "
                      "decode uniformly drawn codes")
    samples = check_finite_output(model.sample(len(x), seed=seed), "Samples", model_name)
    report = evaluation.fid(x, samples, extractor)
    check_finite_output(report["value"], "FID", model_name)
    return report, None


def run(args):
    """Evaluates the model as `args` asks and returns the JSON report."""
    from keras_vae import datasets
    from keras_vae import evaluation
    from keras_vae.models import base
    from keras_vae.validation import check_finite_output

    model = arguments.load_image_model(args.model)
    has_likelihood = model.has(base.LIKELIHOOD)
    has_codebook = model.has(base.CODEBOOK)
    if not has_codebook:
        model.require(base.LIKELIHOOD, f"keras-vae evaluate ({args.model})")
    if model.has(base.LABELS):
        raise ValueError(
            f"{args.model} holds a {type(model).__name__}, which takes labels; keras-vae "
            "evaluate needs an unconditional model (a likelihood bound without labels).")
    image_size, color_mode = arguments.image_options(args, model)
    mnist_shaped = tuple(model.image_shape) == evaluation.MNIST_IMAGE_SHAPE
    if args.fid == "mnist_classifier" and not mnist_shaped:
        raise ValueError(
            "--fid mnist_classifier needs 28x28x1 images. Received: a model of "
            f"{'x'.join(map(str, model.image_shape))} images; use --fid auto or inception.")
    train, test = arguments.load_splits(args.dataset, args, image_size, color_mode)
    x = (test if args.split == "test" else train)[0]
    model.check_input(x, name=f"{args.dataset} {args.split} images")
    data = x if args.binarize == "none" else datasets.binarize(x, seed=args.seed)
    policy, reason = precision.resolve(args.precision)
    if args.precision != "float32":  # the default goes unsaid
        print(f"keras-vae: precision {reason}", file=sys.stderr)
    saved_policy = precision.policy_of(model)  # None: its layers compute in several
    if saved_policy != policy:  # e.g. a model trained in mixed_bfloat16, evaluated in float32
        model = precision.with_policy(model, policy)
    settings = {"dataset": args.dataset, "split": args.split, "num_images": int(len(x)),
                "num_samples": args.num_samples,
                "binarization": arguments.binarization_note(args),
                "image_shape": list(model.image_shape), "seed": args.seed,
                "precision": {"policy": policy, "reason": reason,
                              "saved_policy": saved_policy}}
    if not has_likelihood:
        del settings["num_samples"]  # importance samples of a bound it does not have
    report = {"model": str(args.model), "settings": settings,
              "hardware": precision.describe_hardware()}
    if has_likelihood:
        likelihood = evaluation.likelihood_report(
            model, data, num_samples=args.num_samples, seed=args.seed, verbose=args.verbose)
        for quantity in ("neg_elbo", "nll"):
            check_finite_output(likelihood[quantity], quantity, args.model)
        report.update({key: value for key, value in likelihood.items()
                       if key not in ("num_samples", "num_images")})
    if has_codebook:
        codes = evaluation.codebook_report(model, data)
        for quantity in ("code_bits_per_image", "prior_nll_bits"):
            if codes[quantity] is not None:
                check_finite_output(codes[quantity], quantity, args.model)
        check_finite_output(codes["codebook"]["perplexity"], "perplexity", args.model)
        report.update(codes)
    if not has_likelihood:
        report["not_reported"] = [
            f"neg_elbo, nll and bits_per_dim: {type(model).__name__} has no likelihood "
            "bound (log_weights)"]
    report["mse"] = evaluation.reconstruction_mse(model, data)
    for quantity, value in report["mse"].items():
        check_finite_output(value, quantity, args.model)
    report["fid"], note = _fid(args.fid, model, x, args.seed, args.model)
    if note is not None:
        report["fid_note"] = note
    return report

