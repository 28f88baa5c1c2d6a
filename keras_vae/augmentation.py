"""Data augmentation with generative models: labelled synthetic images for a classifier.

Two sources of extra labelled images:

- `synthesize(cvae, ...)`: a `ConditionalVAE` draws new images of chosen
  classes from its prior;
- `perturb(vae, x, y, ...)`: a `VAE` (trained on labelled or unlabelled
  images) or a `ConditionalVAE` re-decodes real labelled images from codes
  drawn around their posterior, keeping each image's label.

`augmented_dataset` mixes real and synthetic images into one shuffled
`tf.data.Dataset` of `(images, labels)` that `classifier.fit` takes.
"""

import numpy as np
import tensorflow as tf

from keras_vae.models import base
from keras_vae.validation import check_images
from keras_vae.validation import check_int
from keras_vae.validation import check_labels
from keras_vae.validation import check_number


def synthesize(cvae, per_class, seed=0, classes=None):
    """Generates `per_class` images of every class with a conditional VAE.

    Args:
        cvae: A trained conditional model (its `num_classes` set), such as
            a `ConditionalVAE`.
        per_class: Images per class.
        seed: Seed of the prior draws.
        classes: Classes to generate (default: all `cvae.num_classes`).

    Returns:
        `(images, labels)`: float32 images `(n, *image_shape)` (the
        likelihood's mean) and int32 labels `(n,)`, grouped by class.
    """
    cvae.require(base.LABELS, "synthesize (use perturb() with a VAE)")
    check_int("per_class", per_class)
    classes = np.arange(cvae.num_classes) if classes is None else check_labels(
        classes, cvae.num_classes, name="classes")
    labels = np.repeat(classes, per_class).astype("int32")
    return cvae.sample(len(labels), labels=labels, seed=seed), labels


def perturb(vae, x, y, copies=1, scale=1.0, seed=0):
    """New versions of labelled images: decode codes drawn around each one's posterior.

    Each image `x_i` gives `copies` images decoded from
    `z = mean_i + scale * std_i * eps`, `eps ~ N(0, I)`, labelled `y_i`.
    `scale=1` samples the posterior itself; larger values vary more.

    Args:
        vae: A trained `VAE`, or a `ConditionalVAE` (then `y` are the
            classes it encodes and decodes each image with).
        x: Images in [0, 1].
        y: Their labels (any values for an unconditional VAE; copied to the
            new images).
        copies: New images per input image.
        scale: Multiplier of the posterior's standard deviation.
        seed: Seed of `eps`.

    Returns:
        `(images, labels)` with `copies * len(x)` entries.
    """
    vae.require(base.POSTERIOR, "perturb")
    x = check_images(x, image_shape=vae.image_shape)
    y = np.asarray(y)
    if len(y) != len(x):
        raise ValueError(
            f"x and y differ in length. Received: {len(x)} images and {len(y)} labels")
    check_int("copies", copies)
    scale = check_number("scale", scale)
    labels = None if vae.num_classes is None else y
    z_mean, z_log_var = vae.encode(x, labels)
    rng = np.random.default_rng(seed)
    z_mean, std = np.tile(z_mean, (copies, 1)), np.tile(np.exp(0.5 * z_log_var), (copies, 1))
    z = z_mean + scale * std * rng.standard_normal(z_mean.shape).astype("float32")
    new_labels = np.tile(y, copies)
    return vae.decode(z, None if labels is None else new_labels), new_labels


def augmented_dataset(x, y, synthetic, batch_size=64, seed=0):
    """Returns a shuffled `tf.data.Dataset` of real and synthetic `(images, labels)` batches.

    Args:
        x, y: The real labelled images.
        synthetic: `(images, labels)` from `synthesize` or `perturb` (may be
            None for the real images alone).
        batch_size: Images per batch.
        seed: Seed of the shuffle (reshuffled every epoch).
    """
    x = check_images(x)
    y = np.asarray(y)
    if synthetic is not None:
        extra_x = check_images(synthetic[0], name="synthetic images", image_shape=x.shape[1:])
        extra_y = np.asarray(synthetic[1])
        if len(extra_x) != len(extra_y):
            raise ValueError(
                "synthetic images and labels differ in length. Received: "
                f"{len(extra_x)} images and {len(extra_y)} labels")
        x = np.concatenate([x, extra_x.astype(x.dtype)])
        y = np.concatenate([y, extra_y.astype(y.dtype)])
    dataset = tf.data.Dataset.from_tensor_slices((x.astype("float32"), y))
    dataset = dataset.shuffle(len(x), seed=seed, reshuffle_each_iteration=True)
    return dataset.batch(check_int("batch_size", batch_size)).prefetch(tf.data.AUTOTUNE)
