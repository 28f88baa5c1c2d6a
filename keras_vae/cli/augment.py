"""`keras-vae augment MODEL`: write labelled synthetic images from a saved (conditional) VAE."""

import pathlib

from keras_vae.cli import arguments


def add_parser(commands):
    """Adds the `augment` subcommand to `commands` (an argparse subparsers object)."""
    parser = commands.add_parser(
        "augment",
        help="write labelled synthetic images from a saved (conditional) VAE",
        description=(
            "With a ConditionalVAE, draw --per-class images of every class. With a "
            "VAE, re-decode the training images of --source from codes drawn around "
            "their posteriors, keeping their labels. Writes an .npz with float32 "
            "`images` in [0, 1] and int32 `labels`, and prints a JSON summary."),
        formatter_class=arguments.HelpFormatter,
    )
    parser.add_argument("model", help="path to a saved ConditionalVAE or VAE (.keras), "
                        "or pretrained:NAME for a model shipped with keras_vae")
    parser.add_argument("--output", required=True, help="the .npz file to write")
    parser.add_argument("--per-class", type=arguments.positive_int, default=100,
                        help="images per class (ConditionalVAE)")
    arguments.add_data_arguments(parser, "source", None,
                                 "labelled images to perturb (VAE): a dataset name or path",
                                 image_size_default=None, color_mode_default=None)
    parser.add_argument("--copies", type=arguments.positive_int, default=1,
                        help="new images per source image (VAE)")
    parser.add_argument("--scale", type=arguments.non_negative_float, default=1.0,
                        help="multiplier of the posterior's standard deviation (VAE)")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace an existing --output file")
    parser.set_defaults(run=run)


def run(args):
    """Writes the synthetic images as `args` asks and returns the JSON summary."""
    import numpy as np

    from keras_vae import augmentation
    from keras_vae import saving
    from keras_vae.models import base
    from keras_vae.validation import check_finite_output

    output = pathlib.Path(args.output)
    if output.suffix != ".npz":
        raise ValueError(f"--output must end in .npz. Received: {output}")
    arguments.check_output_file(output, args.overwrite, [args.model])
    model = arguments.load_image_model(args.model)
    if model.num_classes is not None:
        images, labels = augmentation.synthesize(model, args.per_class, seed=args.seed)
        how = {"method": "conditional samples", "per_class": args.per_class}
    else:
        if not model.has(base.POSTERIOR):
            raise ValueError(
                f"{args.model} holds a {type(model).__name__}, which has no Gaussian "
                "posterior to draw codes around: augment needs a ConditionalVAE "
                "(--per-class) or a VAE (--source).")
        if args.source is None:
            raise ValueError(
                f"{args.model} holds an unconditional {type(model).__name__}, which needs "
                "--source: the labelled images whose codes it perturbs.")
        image_size, color_mode = arguments.image_options(args, model)
        (x, y), _ = arguments.load_splits(args.source, args, image_size, color_mode)
        model.check_input(x, name=f"{args.source} images")
        images, labels = augmentation.perturb(model, x, y, copies=args.copies,
                                              scale=args.scale, seed=args.seed)
        how = {"method": "perturbed codes", "source": f"{args.source} train",
               "copies": args.copies, "scale": args.scale}
    check_finite_output(images, "The synthetic images", args.model)
    with saving.atomic_target(output) as target:
        with open(target, "wb") as handle:
            np.savez_compressed(handle, images=images.astype("float32"),
                                labels=labels.astype("int32"))
    counts = np.bincount(labels.astype("int64"))
    return {"output": str(output), "num_images": int(len(images)),
            "images_per_class": {str(c): int(n) for c, n in enumerate(counts) if n},
            **how, "seed": args.seed}
