"""`keras-vae export MODEL`: write the decoder, encoder and anomaly scorer for serving."""

import sys
import warnings

from keras_vae.cli import arguments

FORMATS = ("tf_saved_model", "onnx", "litert")
"""`keras_vae.export.FORMATS`, written out so that building the parser imports no TensorFlow."""

PARTS = ("decoder", "encoder", "scorer")
"""`keras_vae.export.PARTS`, written out likewise."""

QUANTIZATIONS = ("none", "float16", "dynamic_int8")
"""`keras_vae.export.QUANTIZATIONS`, written out likewise."""


def add_parser(commands):
    """Adds the `export` subcommand to `commands` (an argparse subparsers object)."""
    parser = commands.add_parser(
        "export",
        help="export the decoder, encoder and anomaly scorer of a saved model for serving",
        description=(
            "Write the decoder (codes -> images), the encoder (images -> posterior mean "
            "and log-variance) and the anomaly scorer (images -> negative ELBO) of a "
            "saved model into --output, each as a TensorFlow SavedModel with a named "
            "serving signature (decode, encode, score); a conditional model's signatures "
            "also take labels. --format onnx needs tf2onnx. Prints a JSON summary."),
        formatter_class=arguments.HelpFormatter,
    )
    parser.add_argument("model", help="path to a saved keras_vae model (.keras), "
                        "or pretrained:NAME for a model shipped with keras_vae")
    parser.add_argument("--output", default="exported",
                        help="folder receiving decoder, encoder and scorer")
    parser.add_argument("--format", choices=FORMATS, default="tf_saved_model",
                        help="SavedModel folders, .onnx files (tf2onnx) or .tflite files "
                        "(LiteRT; each carries a 'keras_vae' metadata entry describing it)")
    parser.add_argument("--num-samples", type=arguments.positive_int, default=64,
                        help="codes per image of the scorer's negative ELBO")
    parser.add_argument("--seed", type=arguments.non_negative_int, default=0,
                        help="seed of the scorer's fixed noise")
    parser.add_argument("--parts", nargs="+", choices=PARTS, default=None,
                        help="the parts to export (default: every part the model has; a "
                        "part named here that cannot be exported fails the command and "
                        "nothing is written)")
    parser.add_argument("--quantize", choices=QUANTIZATIONS, default="none",
                        help="with --format litert: float16 weights or dynamic-range int8 "
                        "weights, for a smaller file")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace parts already in --output")
    parser.set_defaults(run=run)


def run(args):
    """Exports the parts of the model as `args` asks and returns the JSON summary."""
    from keras_vae import export

    model = arguments.load_image_model(args.model)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", export.ExportWarning)
        paths = export.export_model(model, args.output, format=args.format,
                                    num_samples=args.num_samples, seed=args.seed,
                                    overwrite=args.overwrite, parts=args.parts,
                                    quantize=args.quantize)
    skipped = [str(warning.message) for warning in caught
               if issubclass(warning.category, export.ExportWarning)]
    for message in skipped:
        print(f"keras-vae export: {message}", file=sys.stderr)
    return {
        "model": str(args.model), "format": args.format, "output": str(args.output),
        "parts": {part: {"path": path, "signature": export.SIGNATURES[part]}
                  for part, path in paths.items()},
        "conditional": model.num_classes is not None,
        "scorer_num_samples": args.num_samples, "seed": args.seed,
        "quantize": args.quantize,
        "not_exported": skipped,
    }
