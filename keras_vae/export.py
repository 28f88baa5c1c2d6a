"""Export a trained model's parts for serving: decoder, encoder and anomaly scorer.

Each part becomes its own TensorFlow SavedModel, written by Keras 3's
export machinery (`keras.export.ExportArchive`, what `Model.export` uses)
with one named serving signature, also reachable as `serving_default`:

| part | signature | inputs | outputs |
| --- | --- | --- | --- |
| `decoder` | `decode` | `codes` float32 `(N, latent_dim)` | `images` in [0, 1] |
| `encoder` | `encode` | `images` float32 `(N, H, W, C)` | `mean`, `log_variance` (a VAE); `codes` (an `Autoencoder`) |
| `scorer` | `score` | `images` | `neg_elbo` (a VAE); `reconstruction_error` (an `Autoencoder`) |

A conditional model's signatures take `labels` (int32 `(N,)`) as well. A
model without an encoder (`DCGAN`) exports its decoder only.

The scorer's negative ELBO is a Monte Carlo estimate with fixed noise:
`num_samples` standard normal draws `eps_k` chosen once from `seed` and
shared by every image, so an image's score is the same in any batch and in
every call (`negative_elbo`). `format="onnx"` converts the same functions
with tf2onnx (a part with ops tf2onnx cannot convert, such as the
scorer's TensorFlow Probability ops, is left out with an `ExportWarning`)
and `format="litert"` converts each SavedModel with TensorFlow's LiteRT
(TFLite) converter.

Example:

```python
paths = keras_vae.export.export_model(vae, "served")
scorer = tf.saved_model.load(paths["scorer"])
scores = scorer.signatures["score"](images=tf.constant(x))["neg_elbo"]
```
"""

import pathlib
import shutil
import tempfile
import warnings

import keras
import numpy as np
import tensorflow as tf

from keras_vae import _extras
from keras_vae.validation import check_images
from keras_vae.validation import check_int

FORMATS = ("tf_saved_model", "onnx", "litert")
SIGNATURES = {"decoder": "decode", "encoder": "encode", "scorer": "score"}
"""The part exported and the name of its serving signature."""


class ExportWarning(UserWarning):
    """A part of the model that the chosen format cannot hold was not exported."""


def score_noise(latent_dim, num_samples=64, seed=0):
    """Returns the scorer's fixed standard normal draws, float32 `(num_samples, latent_dim)`.

    Args:
        latent_dim: Size of the latent code.
        num_samples: K, draws per image.
        seed: Seed of the draws, an int >= 0.
    """
    check_int("num_samples", num_samples)
    check_int("seed", seed, minimum=0)
    return tf.random.stateless_normal([num_samples, latent_dim], seed=[seed, 0])


def negative_elbo(model, x, noise, condition=None):
    """Returns `-ELBO(x)` per image, float32 `(N,)`, with the codes `z_k = mu + sigma * eps_k`.

    The estimate is `-(1/K) sum_k [log p(x|z_k) + log p(z_k) - log q(z_k|x)]`
    over the K rows `eps_k` of `noise` (see `score_noise`); it is a
    tensor function, usable inside a `tf.function` and a SavedModel.

    Args:
        model: A `VAE` or `ConditionalVAE`.
        x: Images `(N, H, W, C)` in [0, 1].
        noise: Standard normal draws `(K, latent_dim)`.
        condition: One-hot classes `(N, num_classes)` for a conditional model.
    """
    x = tf.cast(x, "float32")
    mean, log_var = model._encode_tensors(x, False, condition)
    z = mean[None] + tf.exp(0.5 * log_var)[None] * noise[:, None, :]  # (K, N, D)
    samples, batch = tf.shape(noise)[0], tf.shape(x)[0]
    flat_z = tf.reshape(z, [-1, model.latent_dim])
    tiled_x = tf.reshape(tf.tile(x[None], [samples, 1, 1, 1, 1]),
                         tf.concat([[-1], tf.shape(x)[1:]], axis=0))
    if condition is not None:
        condition = tf.reshape(tf.tile(condition[None], [samples, 1, 1]),
                               [-1, model.num_classes])
    log_px_z = tf.reshape(model.conditional_log_prob(flat_z, tiled_x, False, condition),
                          [samples, batch])
    posterior = model._gaussian(mean, log_var)
    log_w = log_px_z + model.prior().log_prob(z) - posterior.log_prob(z)
    return -tf.reduce_mean(log_w, axis=0)


def reconstruction_error(model, x, condition=None):
    """Returns the summed squared error of each image's reconstruction, float32 `(N,)`.

    Args:
        model: An `Autoencoder` (or any model with an encoder).
        x: A batch of images, a tensor.
        condition: The model's condition tensor for a conditional model, else None.
    """
    x = tf.cast(x, "float32")
    codes = _encode(model, x, condition)[0]
    error = tf.square(model._decode_tensor(codes, condition=condition) - x)
    return tf.reduce_sum(tf.reshape(error, [tf.shape(x)[0], -1]), axis=1)


def _encode(model, x, condition):
    """`(codes, log_variances)` tensors; an autoencoder's second entry is None."""
    if hasattr(model, "posterior"):
        return model._encode_tensors(x, False, condition)
    return model.encoder(x, training=False), None


def has_encoder(model):
    """Whether `model` encodes images (a `DCGAN` does not)."""
    try:
        model.latent_codes(np.zeros((1,) + tuple(model.image_shape), "float32"),
                           None if model.num_classes is None else 0)
    except NotImplementedError:
        return False
    return True


def scores(model, x, labels=None, num_samples=64, seed=0, batch_size=256):
    """Returns the scorer's output for images `x` as float64 NumPy `(N,)`.

    The negative ELBO (`negative_elbo`, with `score_noise(num_samples, seed)`)
    for a VAE, the reconstruction error for an `Autoencoder`.

    Args:
        model: A keras_vae VAE, ConditionalVAE or Autoencoder.
        x: Images in [0, 1] at the model's input shape.
        labels: Their classes, for a conditional model only.
        num_samples: K, codes per image for the negative ELBO.
        seed: Seed of the scorer's draws (`score_noise`).
        batch_size: Images scored at a time.
    """
    x = check_images(x, image_shape=model.image_shape)
    labels = model.check_labels(labels, len(x))
    noise = score_noise(model.latent_dim, num_samples, seed)
    result = []
    for start in range(0, len(x), batch_size):
        batch = tf.constant(x[start:start + batch_size])
        condition = model._condition(None if labels is None
                                     else labels[start:start + batch_size])
        if hasattr(model, "posterior"):
            result.append(negative_elbo(model, batch, noise, condition).numpy())
        else:
            result.append(reconstruction_error(model, batch, condition).numpy())
    return np.concatenate(result).astype("float64") if result else np.zeros(0)


def _parts(model, num_samples, seed):
    """Returns `{part: (function, input_signature)}` of the parts `model` has."""
    conditional = model.num_classes is not None
    image_spec = tf.TensorSpec([None, *model.image_shape], tf.float32, name="images")
    code_spec = tf.TensorSpec([None, model.latent_dim], tf.float32, name="codes")
    label_spec = [tf.TensorSpec([None], tf.int32, name="labels")] if conditional else []

    def condition_of(labels):
        return model._condition(labels[0]) if labels else None

    def decode(codes, *labels):
        return {"images": model._decode_tensor(codes, condition=condition_of(labels))}

    parts = {"decoder": (decode, [code_spec] + label_spec)}
    if not has_encoder(model):
        return parts
    variational = hasattr(model, "posterior")
    noise = score_noise(model.latent_dim, num_samples, seed)

    def encode(images, *labels):
        codes, log_var = _encode(model, images, condition_of(labels))
        if not variational:
            return {"codes": codes}
        return {"mean": codes, "log_variance": log_var}

    def score(images, *labels):
        if not variational:
            return {"reconstruction_error": reconstruction_error(
                model, images, condition_of(labels))}
        return {"neg_elbo": negative_elbo(model, images, noise, condition_of(labels))}

    parts["encoder"] = (encode, [image_spec] + label_spec)
    parts["scorer"] = (score, [image_spec] + label_spec)
    return parts


def _write_saved_model(model, path, name, function, signature):
    archive = keras.export.ExportArchive()
    archive.track(model)
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
    pathlib.Path(path).write_bytes(model_proto.SerializeToString())
    return None


def _write_litert(model, path, name, function, signature):
    with tempfile.TemporaryDirectory() as scratch:
        _write_saved_model(model, scratch, name, function, signature)
        converter = tf.lite.TFLiteConverter.from_saved_model(scratch, signature_keys=[name])
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS,
                                               tf.lite.OpsSet.SELECT_TF_OPS]
        pathlib.Path(path).write_bytes(converter.convert())


def export_model(model, directory, format="tf_saved_model", num_samples=64, seed=0,
                 overwrite=False):
    """Exports the decoder, encoder and scorer of `model` into `directory`.

    Args:
        model: A keras_vae model (`VAE`, `ConditionalVAE`, `Autoencoder`, or
            `DCGAN` for the decoder alone).
        directory: Folder receiving one entry per part: `decoder/`,
            `encoder/`, `scorer/` (SavedModels), or `decoder.onnx` ... or
            `decoder.tflite` ...
        format: One of `FORMATS`.
        num_samples: Codes per image of the scorer's negative ELBO.
        seed: Seed of the scorer's fixed noise.
        overwrite: Replace the parts already in `directory`.

    Returns:
        A dict `{part: path}` of the files or folders written. A part the
        format cannot hold is left out with an `ExportWarning` saying why
        (with ONNX, a scorer whose likelihood uses TensorFlow Probability
        ops that tf2onnx does not convert).

    Raises:
        ValueError: an unknown format, or parts exist and not `overwrite`.
        ImportError: the format needs a package that is not installed
            (`keras_vae._extras.MissingExtraError`, naming the extra).
    """
    if format not in FORMATS:
        raise ValueError(f"format must be one of {list(FORMATS)}. Received: format={format!r}")
    parts = _parts(model, num_samples, seed)
    if format == "onnx":
        _extras.require("tf2onnx", "onnx", "--format onnx")
    directory = pathlib.Path(directory)
    suffix = {"tf_saved_model": "", "onnx": ".onnx", "litert": ".tflite"}[format]
    paths = {part: directory / f"{part}{suffix}" for part in parts}
    existing = [str(path) for path in paths.values() if path.exists()]
    if existing and not overwrite:
        raise FileExistsError(f"{existing[0]} exists. Pass overwrite=True (--overwrite) "
                              "to replace it.")
    directory.mkdir(parents=True, exist_ok=True)
    written = {}
    for part, (function, signature) in parts.items():
        path = paths[part]
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()
        if format == "tf_saved_model":
            _write_saved_model(model, path, SIGNATURES[part], function, signature)
        elif format == "onnx":
            problem = _write_onnx(path, function, signature)
            if problem is not None:
                warnings.warn(f"The {part} was not exported: {problem}.", ExportWarning,
                              stacklevel=2)
                continue
        else:
            _write_litert(model, path, SIGNATURES[part], function, signature)
        written[part] = str(path)
    return written
