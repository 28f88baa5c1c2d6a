"""Export a trained model's parts for serving: decoder, encoder and anomaly scorer.

Each part becomes its own TensorFlow SavedModel, written by Keras 3's
export machinery (`keras.export.ExportArchive`, what `Model.export` uses)
with one named serving signature, also reachable as `serving_default`, and
only the variables that part reads (the decoder carries no encoder
weights), so each part can be deployed alone:

| part | signature | inputs | outputs |
| --- | --- | --- | --- |
| `decoder` | `decode` | `codes` float32 `(N, latent_dim)` (a `VQVAE`: int32 `(N, h, w)`) | `images` in [0, 1] |
| `encoder` | `encode` | `images` float32 `(N, H, W, C)` | `mean`, `log_variance` (a VAE); `codes` (an `Autoencoder`) |
| `scorer` | `score` | `images` | `neg_elbo` (a VAE); `reconstruction_error` (an `Autoencoder`) |

(A VAE here is any model with a Gaussian posterior and a likelihood, the
hierarchical one included.)

A conditional model's signatures take `labels` (int32 `(N,)`) as well. A
model without an encoder (`DCGAN`) exports its decoder only, and the
encoder and scorer are reported as not exported. The parts use only the
model's contract (`keras_vae.models.base`): `decode_tensor`,
`encode_tensor` and `log_weights`. The codes are those `encode` gives and
`decode` takes: for a `HierarchicalVAE`, its top codes z2 (the decoder
renders the mean of p(z1|z2)).

The scorer's negative ELBO is a Monte Carlo estimate with fixed noise:
`num_samples` standard normal draws chosen once from `seed` and shared by
every image, so an image's score is the same in any batch and in every
call (`negative_elbo`, the model's `log_weights(..., shared_noise=True)`). `format="onnx"` converts the same functions
with tf2onnx, their batch axis named `batch` (a part with ops tf2onnx
cannot convert, such as the scorer's TensorFlow Probability ops, is left
out with an `ExportWarning`)
and `format="litert"` converts each SavedModel with TensorFlow's LiteRT
(TFLite) converter.

Example:

```python
paths = keras_vae.export.export_model(vae, "served")
scorer = tf.saved_model.load(paths["scorer"])
scores = scorer.signatures["score"](images=tf.constant(x))["neg_elbo"]
```
"""

import json
import os
import pathlib
import shutil
import tempfile
import warnings

import keras
import numpy as np
import tensorflow as tf

from keras_vae import _extras
from keras_vae.folder_lock import FolderLock
from keras_vae.models import base
from keras_vae.validation import check_finite_output
from keras_vae.validation import check_images
from keras_vae.validation import check_int

FORMATS = ("tf_saved_model", "onnx", "litert")
PARTS = ("decoder", "encoder", "scorer")
"""The parts a model can have: every model a decoder, a model with an encoder all three."""

QUANTIZATIONS = ("none", "float16", "dynamic_int8")
"""LiteRT's post-training options: float32 weights, float16 weights, or int8 weights
with float computation (dynamic range); see `export_model`."""
SIGNATURES = {"decoder": "decode", "encoder": "encode", "scorer": "score"}
"""The part exported and the name of its serving signature."""


class ExportWarning(UserWarning):
    """A part of the model that the chosen format cannot hold was not exported."""


class MissingPartError(ValueError):
    """A part asked for by name cannot be exported (the model lacks it, or the format)."""


def _check_parts(parts):
    if isinstance(parts, str):
        parts = [parts]
    parts = list(parts)
    unknown = [part for part in parts if part not in PARTS]
    if unknown or not parts or len(set(parts)) != len(parts):
        raise ValueError(f"parts must name distinct parts of {list(PARTS)}. Received: "
                         f"parts={parts!r}")
    return parts


def negative_elbo(model, x, num_samples=64, seed=0, condition=None):
    """Returns `-ELBO(x)` per image, float32 `(N,)`, with noise shared by every image.

    `-(1/K) sum_k log w_k` over the model's log importance weights
    (`model.log_weights(x, K, seed, condition, shared_noise=True)`): the K
    standard normal draws are a function of `seed` alone, so an image's
    score is the same in any batch and in every call. A tensor function,
    usable inside a `tf.function` and a SavedModel.

    Args:
        model: A keras_vae model with a likelihood (`VAE`, `ConditionalVAE`,
            `HierarchicalVAE`).
        x: Images `(N, H, W, C)` in [0, 1].
        num_samples: K, draws per image.
        seed: Seed of the draws, an int >= 0.
        condition: One-hot classes `(N, num_classes)` for a conditional model.
    """
    log_w = model.log_weights(x, num_samples, seed, condition, shared_noise=True)
    return -tf.reduce_mean(log_w, axis=0)


def reconstruction_error(model, x, condition=None):
    """Returns the summed squared error of each image's reconstruction, float32 `(N,)`.

    The image decoded from its deterministic code (`encode_tensor`'s first
    output), as `model.reconstruct` gives it.

    Args:
        model: A keras_vae model with an encoder.
        x: A batch of images, a tensor.
        condition: The one-hot classes for a conditional model, else None.
    """
    x = tf.cast(x, "float32")
    codes, _ = model.encode_tensor(x, condition)
    error = tf.square(tf.cast(model.decode_tensor(codes, condition), "float32") - x)
    return tf.reduce_sum(tf.reshape(error, [tf.shape(x)[0], -1]), axis=1)


def score_kind(model):
    """The scorer's output for `model`: `"neg_elbo"`, `"reconstruction_error"` or None.

    The negative ELBO for a model with a likelihood, the reconstruction
    error for one with an encoder alone, None for a model with neither.
    """
    if model.has(base.LIKELIHOOD):
        return "neg_elbo"
    if model.has(base.ENCODER):
        return "reconstruction_error"
    return None


def scores(model, x, labels=None, num_samples=64, seed=0, batch_size=256):
    """Returns the scorer's output for images `x` as float64 NumPy `(N,)`.

    The negative ELBO (`negative_elbo`) for a model with a likelihood, the
    reconstruction error for an `Autoencoder` (see `score_kind`).

    Args:
        model: A keras_vae model with a likelihood or an encoder.
        x: Images in [0, 1] at the model's input shape.
        labels: Their classes, for a conditional model only.
        num_samples: K, codes per image for the negative ELBO.
        seed: Seed of the scorer's draws.
        batch_size: Images scored at a time.

    Raises:
        MissingCapabilityError: the model has neither.
    """
    kind = score_kind(model)
    if kind is None:
        model.require(base.ENCODER, "The anomaly scorer")
    check_int("num_samples", num_samples)
    check_int("seed", seed, minimum=0)
    x = check_images(x, image_shape=model.image_shape)
    labels = model.check_labels(labels, len(x))
    result = []
    for start in range(0, len(x), batch_size):
        batch = tf.constant(x[start:start + batch_size])
        condition = model.one_hot(None if labels is None else labels[start:start + batch_size])
        if kind == "neg_elbo":
            result.append(negative_elbo(model, batch, num_samples, seed, condition).numpy())
        else:
            result.append(reconstruction_error(model, batch, condition).numpy())
    result = np.concatenate(result).astype("float64") if result else np.zeros(0)
    return check_finite_output(result, f"The scorer's {kind}")


def _parts(model, num_samples, seed):
    """Returns `({part: (function, input_signature)}, {part: why it is missing})`."""
    check_int("num_samples", num_samples)
    check_int("seed", seed, minimum=0)
    conditional = model.has(base.LABELS)
    image_spec = tf.TensorSpec([None, *model.image_shape], tf.float32, name="images")
    code_spec = model.code_spec
    label_spec = [tf.TensorSpec([None], tf.int32, name="labels")] if conditional else []

    def condition_of(labels):
        return model.one_hot(labels[0]) if labels else None

    def decode(codes, *labels):
        return {"images": model.decode_tensor(codes, condition_of(labels))}

    parts = {"decoder": (decode, [code_spec] + label_spec)}
    model_name = type(model).__name__
    if not model.has(base.ENCODER):
        missing = f"{model_name} has no encoder"
        return parts, {"encoder": missing, "scorer": missing}

    def encode(images, *labels):
        codes, log_var = model.encode_tensor(images, condition_of(labels))
        if log_var is None:
            return {"codes": codes}
        return {"mean": codes, "log_variance": log_var}

    def score(images, *labels):
        images = _checked_pixels(images)
        if score_kind(model) == "reconstruction_error":
            values = reconstruction_error(model, images, condition_of(labels))
        else:
            values = negative_elbo(model, images, num_samples, seed, condition_of(labels))
        # LiteRT's converter drops the asserts: there an image outside [0, 1]
        # scores NaN, never a plausible number.
        in_range = tf.reduce_all(tf.reshape((images >= 0.0) & (images <= 1.0),
                                            [tf.shape(images)[0], -1]), axis=1)
        values = tf.where(in_range, values, tf.fill(tf.shape(values), float("nan")))
        return {score_kind(model): values}

    parts["encoder"] = (encode, [image_spec] + label_spec)
    parts["scorer"] = (score, [image_spec] + label_spec)
    return parts, {}


def _checked_pixels(images):
    """`images`, after in-graph asserts that every pixel is in [0, 1] (NaN fails too).

    A scorer given 8-bit pixels (0..255) would return thousands of nats
    without complaint; served, it answers with an InvalidArgumentError instead.
    """
    hint = "images must hold pixel values in [0, 1] (scale 8-bit images by 1/255)"
    checks = [tf.debugging.assert_greater_equal(images, tf.zeros([], images.dtype),
                                                message=hint),
              tf.debugging.assert_less_equal(images, tf.ones([], images.dtype),
                                             message=hint)]
    with tf.control_dependencies(checks):
        return tf.identity(images)


def _write_saved_model(model, path, name, function, signature):
    """Writes one part as a SavedModel holding only the variables its function reads.

    The function is traced first and only the variables of that trace are
    tracked, so the decoder ships without the encoder's weights (and the
    encoder without the decoder's); the model itself is not tracked.
    """
    del model  # The part's own variables come from its trace.
    used = tf.Module(name=f"{name}_variables")
    used.variables_read = list(
        tf.function(function, input_signature=signature).get_concrete_function().variables)
    archive = keras.export.ExportArchive()
    archive.track(used)
    archive.add_endpoint(name, function, input_signature=signature)
    logger = tf.get_logger()  # TensorFlow logs "Assets written to ..." at INFO
    level = logger.level
    logger.setLevel("WARNING")
    try:
        archive.write_out(str(path), verbose=False)
    finally:
        logger.setLevel(level)


def _write_onnx(path, function, signature):
    """Writes the ONNX file; returns None, or why the part cannot be converted."""
    tf2onnx = _extras.require("tf2onnx", "onnx", "--format onnx")
    onnx = _extras.require("onnx", "onnx", "--format onnx")
    traced = tf.function(function, input_signature=signature)
    model_proto, _ = tf2onnx.convert.from_function(traced, input_signature=signature,
                                                   opset=17)
    unknown = sorted({node.op_type for node in model_proto.graph.node
                      if not onnx.defs.has(node.op_type, node.domain)})
    if unknown:
        return (f"tf2onnx cannot convert the TensorFlow ops {unknown}; use "
                "format='tf_saved_model' or 'litert' for it")
    # tf2onnx names an unknown dimension after its graph node ("unk__79"): every
    # input and output here is a batch of images, codes or scores along axis 0.
    for value in list(model_proto.graph.input) + list(model_proto.graph.output):
        dims = value.type.tensor_type.shape.dim
        if dims and not dims[0].HasField("dim_value"):
            dims[0].dim_param = "batch"
    pathlib.Path(path).write_bytes(model_proto.SerializeToString())
    return None


def _write_litert(model, path, name, function, signature, quantize="none"):
    with tempfile.TemporaryDirectory() as scratch:
        _write_saved_model(model, scratch, name, function, signature)
        converter = tf.lite.TFLiteConverter.from_saved_model(scratch, signature_keys=[name])
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS,
                                               tf.lite.OpsSet.SELECT_TF_OPS]
        if quantize != "none":
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
        if quantize == "float16":
            converter.target_spec.supported_types = [tf.float16]
        pathlib.Path(path).write_bytes(converter.convert())


def export_model(model, directory, format="tf_saved_model", num_samples=64, seed=0,
                 overwrite=False, parts=None, quantize="none"):
    """Exports the decoder, encoder and scorer of `model` into `directory`.

    Every part is written into a scratch folder inside `directory` first
    and moved into place once all of them are written, so a failure while
    the parts are built leaves `directory` as it was (and a new one is
    removed again). The folder's lock (`keras_vae.folder_lock`) is held
    meanwhile, so a second export into it is refused, and an export killed
    while it moved its parts in is undone by the next one (`recover_export`).

    Args:
        model: A keras_vae model: every model has a decoder; a model with an
            encoder (`VAE`, `ConditionalVAE`, `HierarchicalVAE`,
            `Autoencoder`) also gets an encoder and a scorer; a `DCGAN` its
            decoder alone.
        directory: Folder receiving one entry per part: `decoder/`,
            `encoder/`, `scorer/` (SavedModels), or `decoder.onnx` ... or
            `decoder.tflite` ...
        format: One of `FORMATS`.
        num_samples: Codes per image of the scorer's negative ELBO.
        seed: Seed of the scorer's fixed noise.
        overwrite: Replace the parts already in `directory`.
        parts: The parts to export, from `PARTS`; None for every part the
            model has. A part asked for by name that the model lacks or the
            format cannot hold is an error, and then nothing is written.
        quantize: With `format="litert"`, one of `QUANTIZATIONS`: `"float16"`
            halves the decoder's and encoder's files, `"dynamic_int8"` quarters
            them (benchmarks/RESULTS.md gives what each costs in accuracy). The
            scorer is always written in float32: quantized, its negative ELBO
            was off by hundreds of nats (float16) or a third of a nat (int8).

    Returns:
        A dict `{part: path}` of the files or folders written. A part that
        the model lacks (a DCGAN's encoder and scorer) or that the format
        cannot hold (with ONNX, a scorer whose likelihood uses TensorFlow
        Probability ops that tf2onnx does not convert) is left out with an
        `ExportWarning` saying why.

    Raises:
        ValueError: an unknown format, or parts exist and not `overwrite`.
        keras_vae.folder_lock.FolderBusyError: another process exports into
            `directory`.
        ImportError: the format needs a package that is not installed
            (`keras_vae._extras.MissingExtraError`, naming the extra).
    """
    if format not in FORMATS:
        raise ValueError(f"format must be one of {list(FORMATS)}. Received: format={format!r}")
    if quantize not in QUANTIZATIONS:
        raise ValueError(f"quantize must be one of {list(QUANTIZATIONS)}. Received: "
                         f"quantize={quantize!r}")
    if quantize != "none" and format != "litert":
        raise ValueError(f"quantize applies to format='litert' only. Received: "
                         f"quantize={quantize!r} with format={format!r}")
    requested = None if parts is None else _check_parts(parts)
    parts, unavailable = _parts(model, num_samples, seed)
    if requested is not None:
        for part in requested:
            if part in unavailable:
                raise MissingPartError(f"The {part} cannot be exported: {unavailable[part]}.")
        parts = {part: parts[part] for part in requested}
        unavailable = {}
    if format == "onnx":
        _extras.require("tf2onnx", "onnx", "--format onnx")
    directory = pathlib.Path(directory)
    suffix = {"tf_saved_model": "", "onnx": ".onnx", "litert": ".tflite"}[format]
    names = {part: f"{part}{suffix}" for part in parts}
    if directory.exists() and not directory.is_dir():
        raise FileExistsError(f"The output must be a folder. Received: {directory} is a file")
    for part, why in unavailable.items():
        warnings.warn(f"The {part} was not exported: {why}.", ExportWarning, stacklevel=2)
    created = not directory.exists()
    lock = FolderLock(directory)  # a second export into the folder is refused meanwhile
    lock.acquire()
    finished = False
    try:
        recover_export(directory)
        existing = [str(directory / name) for name in names.values()
                    if (directory / name).exists()]
        if existing and not overwrite:
            raise FileExistsError(f"{existing[0]} exists. Pass overwrite=True (--overwrite) "
                                  "to replace it.")
        # The scratch folder is inside `directory`: the same filesystem (a mount point
        # works), and no write access to its parent is needed.
        scratch = pathlib.Path(tempfile.mkdtemp(prefix=SCRATCH_PREFIX, dir=directory))
        (scratch / "new").mkdir()
        built = {}
        for part, (function, signature) in parts.items():
            path = scratch / "new" / names[part]
            if format == "tf_saved_model":
                _write_saved_model(model, path, SIGNATURES[part], function, signature)
            elif format == "onnx":
                problem = _write_onnx(path, function, signature)
                if problem is not None and requested is not None:
                    raise MissingPartError(f"The {part} cannot be exported: {problem}.")
                if problem is not None:
                    warnings.warn(f"The {part} was not exported: {problem}.", ExportWarning,
                                  stacklevel=2)
                    continue
            else:
                # The scorer stays float32: its log-likelihood does not survive float16
                # (benchmarks/RESULTS.md, "Export sizes and LiteRT quantization").
                _write_litert(model, path, SIGNATURES[part], function, signature,
                              "none" if part == "scorer" else quantize)
            built[part] = names[part]
        _commit(directory, scratch, list(built.values()))
        finished = True
        return {part: str(directory / name) for part, name in built.items()}
    finally:
        recover_export(directory)  # no scratch left; the old parts back if _commit failed
        lock.release()
        if created and not finished and not any(directory.iterdir()):
            directory.rmdir()  # a failed export into a new folder leaves no folder


SCRATCH_PREFIX = ".export-"
"""Name start of the scratch folders an export builds its parts in, inside its output."""

_COMMITTING = "committing.json"
_DONE = "done"


def _commit(directory, scratch, names):
    """Moves the built parts `names` from `scratch/new` into `directory`.

    The old parts move to `scratch/old` first. A journal written before the
    first rename (`committing.json`) and a mark after the last (`done`) let
    `recover_export` put the old parts back after a kill in between.
    """
    existed = [name for name in names if (directory / name).exists()]
    journal = scratch / (_COMMITTING + ".tmp")
    journal.write_text(json.dumps({"names": names, "existed": existed}))
    os.replace(journal, scratch / _COMMITTING)
    (scratch / "old").mkdir()
    for name in names:
        if name in existed:
            (directory / name).rename(scratch / "old" / name)
        (scratch / "new" / name).rename(directory / name)
    (scratch / _DONE).touch()


def recover_export(directory):
    """Restores the previous export after one killed while it moved its parts in.

    Called by `export_model` (holding the folder's lock) before it writes:
    every scratch folder an export left is removed, and where the kill fell
    between the first and the last part's rename, the parts already moved
    in are taken out and the old ones put back, so the folder holds the
    previous export again, never a mix of two.

    Args:
        directory: An export's output folder.
    """
    directory = pathlib.Path(directory)
    for scratch in directory.glob(SCRATCH_PREFIX + "*"):
        journal = scratch / _COMMITTING
        if journal.exists() and not (scratch / _DONE).exists():
            record = json.loads(journal.read_text())
            for name in record["names"]:
                target, old = directory / name, scratch / "old" / name
                moved_in = not (scratch / "new" / name).exists()
                if moved_in and target.exists():
                    _remove(target)
                if old.exists():
                    old.rename(target)
        shutil.rmtree(scratch, ignore_errors=True)


def _remove(path):
    if path.is_dir():
        shutil.rmtree(path)
    else:
        path.unlink()
