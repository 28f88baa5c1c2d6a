"""Export sizes and accuracy: lean parts against whole-model parts, and LiteRT quantization.

For each shipped model (`keras_vae.pretrained`), in one run:

1. the SavedModel parts as `keras_vae.export.export_model` writes them (each
   part holds only the variables it reads) beside the baseline, parts that
   track the whole model (what keras_vae wrote before: every part carried
   every weight), with their sizes on disk;
2. the LiteRT files with `quantize="none"`, `"float16"` and `"dynamic_int8"`:
   their sizes and what each costs in accuracy against the Keras model, the
   decoder's largest pixel error over 256 prior codes and the scorer's mean
   and largest absolute error of the negative ELBO (nats) over 256
   binarized MNIST test images.

One table is appended to RESULTS.md. Sizes and errors do not depend on what
else runs on the machine.

    python -m benchmarks.export_sizes
"""

import argparse
import datetime
import os
import pathlib
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np
import tensorflow as tf

from benchmarks import harness
from keras_vae import datasets
from keras_vae import export
from keras_vae import pretrained


def size_mb(path):
    path = pathlib.Path(path)
    files = [path] if path.is_file() else [f for f in path.rglob("*") if f.is_file()]
    return sum(f.stat().st_size for f in files) / 1e6


def whole_model_parts(model, directory, num_samples):
    """The baseline: each part a SavedModel that tracks the whole model (every weight)."""
    parts, _ = export._parts(model, num_samples, 0)
    sizes = {}
    for part, (function, signature) in parts.items():
        archive = keras.export.ExportArchive()
        archive.track(model)
        archive.add_endpoint(export.SIGNATURES[part], function, input_signature=signature)
        path = pathlib.Path(directory) / part
        archive.write_out(str(path), verbose=False)
        sizes[part] = size_mb(path)
    return sizes


def litert_errors(model, paths, codes, images, num_samples):
    """`(decoder's largest pixel error, scorer's mean and largest error in nats)`."""
    decoder = tf.lite.Interpreter(model_path=paths["decoder"]).get_signature_runner()
    decoded = decoder(codes=codes)["images"]
    pixel = float(np.abs(decoded - model.decode(codes)).max())
    scorer = tf.lite.Interpreter(model_path=paths["scorer"]).get_signature_runner()
    scores = np.concatenate([scorer(images=images[i:i + 64])["neg_elbo"]
                             for i in range(0, len(images), 64)])
    error = np.abs(scores - export.scores(model, images, num_samples=num_samples))
    return pixel, float(error.mean()), float(error.max())


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=pretrained.names())
    parser.add_argument("--num-samples", type=int, default=64,
                        help="codes per image of the scorer (export's default)")
    args = parser.parse_args(argv)
    (_, _), (x_test, _) = datasets.load("mnist")
    images = datasets.binarize(x_test[:256], seed=0)
    rows = []
    for name in args.models:
        model = pretrained.load(name)
        codes = model.draw_codes(256, seed=0)
        with tempfile.TemporaryDirectory() as scratch:
            scratch = pathlib.Path(scratch)
            lean = export.export_model(model, scratch / "lean", num_samples=args.num_samples)
            whole = whole_model_parts(model, scratch / "whole", args.num_samples)
            lean_sizes = {part: size_mb(path) for part, path in lean.items()}
            rows.append(f"| {name} | SavedModel, whole model per part (baseline) | "
                        + " | ".join(f"{whole[p]:.2f}" for p in export.PARTS) + " | - | - |")
            rows.append(f"| {name} | SavedModel, each part its own weights | "
                        + " | ".join(f"{lean_sizes[p]:.2f}" for p in export.PARTS)
                        + " | - | - |")
            for quantize in export.QUANTIZATIONS:
                paths = export.export_model(model, scratch / f"lite_{quantize}",
                                            format="litert", num_samples=args.num_samples,
                                            quantize=quantize)
                pixel, mean_nats, max_nats = litert_errors(model, paths, codes, images,
                                                           args.num_samples)
                rows.append(f"| {name} | LiteRT, quantize={quantize} | "
                            + " | ".join(f"{size_mb(paths[p]):.2f}" for p in export.PARTS)
                            + f" | {pixel:.2g} | {mean_nats:.3g} / {max_nats:.3g} |")
    date = datetime.date.today().isoformat()
    harness.append_results(f"""
## Export sizes and LiteRT quantization ({date})

`python -m benchmarks.export_sizes --models {' '.join(args.models)}` on {harness.machine()}.
Sizes in MB on disk (a SavedModel folder's files added up). Errors against the Keras
model in float32: the decoder's largest pixel error over 256 prior codes, and the
scorer's mean / largest absolute error of the negative ELBO over the first 256
binarized MNIST test images (K = {args.num_samples}, the same fixed noise).

| model | parts | decoder MB | encoder MB | scorer MB | decoder max pixel error | scorer error, nats (mean / max) |
| --- | --- | --- | --- | --- | --- | --- |
{chr(10).join(rows)}
""")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
