"""What every keras_vae image model shares: input checks and one public interface.

Every model answers the same calls with the same meaning:

| call | returns |
| --- | --- |
| `encode(x, labels=None)` | `(codes, log_variances)`; an `Autoencoder` gives `(codes, None)` |
| `latent_codes(x, labels=None)` | one deterministic code per image (`encode(...)[0]`) |
| `decode(z, labels=None)` | images in [0, 1] |
| `reconstruct(x, labels=None)` | images decoded from the deterministic codes |
| `sample(n, labels=None, seed=None)` | `n` images decoded from prior draws |

`labels` is the class conditioning. `model.num_classes` says whether a model
takes it: None for an unconditional model, which refuses labels; an int for a
conditional one, which requires them (one int class per image, or a single int
for all). A model without an encoder (`DCGAN`) raises `NotImplementedError`
from `encode`, `latent_codes` and `reconstruct`.

Every batch of `fit`, `evaluate` and `predict`, not only the first one of a
dataset, is checked in the graph to hold finite values in [0, 1] (see
`keras_vae.models.checks.check_batch`).

The file is a little over 300 lines because the interface and the input
checks it runs belong to the one base class; the checks that need no model
live in `checks.py`.
"""

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from keras_vae import priors
from keras_vae import validation
from keras_vae.models import checks
from keras_vae.models.checks import check_batch
from keras_vae.models.checks import short_repr
from keras_vae.validation import check_images
from keras_vae.validation import check_int
from keras_vae.validation import check_shape_matches
from keras_vae.validation import check_values


def first_component(data):
    """Returns the images of a batch given as `x`, `(x,)`, `(x, y)` or `(x, y, w)`."""
    x, _, _ = keras.utils.unpack_x_y_sample_weight(data)
    return x


class ImageModel(keras.Model):
    """Base class of the models: images in [0, 1] and a latent code of `latent_dim`.

    Subclasses set `image_shape` and `latent_dim` (and `num_classes` if they
    are conditional), implement `_decode_tensor(z, condition=None)` (codes to
    images in [0, 1]) and, if they have an encoder,
    `_encode_arrays(x, labels, batch_size)`. This class checks the images
    given to `fit`, `evaluate` and `predict` (a clear error instead of
    training on garbage) and provides the public interface described in the
    module docstring.
    """

    num_classes = None
    """None for an unconditional model; the number of classes of a conditional one."""

    def _init_sampling(self, seed):
        self.prior_seed_generator = keras.random.SeedGenerator(
            None if seed is None else seed + 1, name="prior_seed_generator")

    # ------------------------------------------------------ input validation

    def check_labels(self, labels, count, name="labels"):
        """Returns checked int32 labels of length `count`, or None for an unconditional model.

        A conditional model requires `labels`: one int class per image, or a
        single int broadcast to all `count` images. An unconditional model
        refuses them.

        Args:
            labels: Int classes `(count,)` or `(count, 1)`, one int for all,
                or None.
            count: The number of images the labels go with.
            name: Name used for `labels` in error messages.

        Raises:
            ValueError: labels given to an unconditional model, missing for
                a conditional one, or of the wrong length or range.
            TypeError: labels are not integer classes.
        """
        model = type(self).__name__
        if self.num_classes is None:
            if labels is not None:
                raise ValueError(
                    f"{model} is unconditional and takes no labels. Received: "
                    f"{name}={short_repr(labels)}")
            return None
        if labels is None:
            raise ValueError(
                f"{model} needs class labels: {name} must hold one int in "
                f"[0, {self.num_classes}) per image, or one int for all. Received: {name}=None")
        if isinstance(labels, (int, np.integer)) and not isinstance(labels, bool):
            labels = np.full(count, labels)
        return validation.check_labels(labels, self.num_classes, count=count,
                                       name=name).astype("int32")

    def check_input(self, data, name="x", labels=None):
        """Raises a clear error if `data` cannot be images (and labels) for this model.

        Accepts what `fit`, `evaluate` and `predict` accept: an array, a
        tuple `(x, ...)`, or a `tf.data.Dataset`. Arrays are checked in full;
        a dataset's element spec and its first batch are checked (later
        batches are checked in the graph, see `check_batch`). A conditional
        model's labels come from `labels`, the tuple's second entry or the
        dataset's; an unconditional model ignores labels there, as `fit` does.

        Args:
            data: Images `(N, *image_shape)` in [0, 1], a tuple `(x, ...)`,
                a `tf.data.Dataset` of batches, or None (nothing to check).
            name: Name used for `data` in error messages.
            labels: The images' classes, for a conditional model given
                arrays; they take precedence over the tuple's second entry.
        """
        if data is None:
            return
        if isinstance(data, tf.data.Dataset):
            first = self._check_dataset(data, name)
            if self.num_classes is not None:
                _, y, _ = keras.utils.unpack_x_y_sample_weight(first)
                if y is None:
                    raise ValueError(
                        f"{type(self).__name__} needs class labels. Received: {name} "
                        "yields batches without labels; give (images, labels) batches")
                validation.check_labels(np.asarray(y), self.num_classes,
                                        name=f"{name} (first batch labels)")
            return
        if isinstance(data, tuple):
            data, tuple_labels, _ = keras.utils.unpack_x_y_sample_weight(data)
            labels = tuple_labels if labels is None else labels
        if isinstance(data, (np.ndarray, tf.Tensor, list)):
            x = check_images(data, name=name, image_shape=self.image_shape)
            if self.num_classes is None:
                return
            if labels is None:
                raise ValueError(
                    f"{type(self).__name__} needs class labels. Received: {name} without "
                    "labels; pass images and labels, as in fit(x, y) or (x, y) pairs")
            validation.check_labels(labels, self.num_classes, count=len(x),
                                    name="labels" if name == "x" else f"{name} labels")

    def _check_dataset(self, dataset, name):
        spec = first_component(dataset.element_spec)
        if not isinstance(spec, tf.TensorSpec):
            raise TypeError(
                f"{name} must yield image tensors. Received: element_spec={spec}"
            )
        if spec.shape.rank is not None and spec.shape.rank != 4:
            raise ValueError(
                f"{name} must yield batches of rank 4 (batch, height, width, "
                f"channels); batch the dataset first. Received: element "
                f"shape {spec.shape}"
            )
        if spec.shape.rank == 4 and None not in spec.shape[1:]:
            check_shape_matches(spec.shape[1:], self.image_shape, name)
        first = next(iter(dataset.take(1)), None)
        if first is None:
            raise ValueError(f"{name} is empty. Received: a dataset with no batches")
        check_values(np.asarray(first_component(first)), name=f"{name} (first batch)")
        return first

    def _checked_call_images(self, images, labels=None):
        """`call`'s images: checked in full when eager (as `predict` does), else in the graph."""
        if tf.executing_eagerly():
            self.check_input(images, labels=labels)
            return images
        return check_batch(images, "images given to the model")

    def _checked_dataset(self, data, what):
        """A jit-compiled step checks nothing (XLA drops asserts): check the dataset's batches."""
        if not (checks.batch_checks_enabled() and isinstance(data, tf.data.Dataset)
                and self.jit_compile):
            return data

        def check(*element):
            if len(element) == 1:
                return check_batch(element[0], what)
            return (check_batch(element[0], what),) + element[1:]

        return data.map(check)

    def fit(self, x=None, y=None, *args, validation_data=None, **kwargs):
        self.check_input(x, "x", labels=None if isinstance(x, tf.data.Dataset) else y)
        if validation_data is not None:
            self.check_input(validation_data, "validation_data")
        if isinstance(x, tf.data.Dataset) and not args and not kwargs.get("steps_per_epoch"):
            # The same epochs through one iterator: Keras would make one per
            # epoch, and deleting each waits on tf.data's autotuner (idle
            # seconds as epochs begin; see datasets.make_dataset).
            batches = int(x.cardinality())
            if batches > 0:
                x, kwargs["steps_per_epoch"] = x.repeat(), batches
        if isinstance(x, tf.data.Dataset):
            # A dataset carries its own shuffling (see datasets.make_dataset);
            # this silences Keras's warning that `shuffle=True` is ignored.
            kwargs.setdefault("shuffle", False)
        return super().fit(
            self._checked_dataset(x, "training images"), y, *args,
            validation_data=self._checked_dataset(validation_data, "evaluation images"),
            **kwargs)

    def evaluate(self, x=None, y=None, *args, **kwargs):
        self.check_input(x, "x", labels=None if isinstance(x, tf.data.Dataset) else y)
        return super().evaluate(self._checked_dataset(x, "evaluation images"), y,
                                *args, **kwargs)

    def predict(self, x, *args, **kwargs):
        self.check_input(x, "x")
        return super().predict(x, *args, **kwargs)

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        """Keras's build from a first batch, without averaging it over replicas.

        Under a `tf.distribute` strategy Keras 3 (up to 3.15 at least) builds
        the model from the first batch reduced by a MEAN over the replicas,
        which fails ("Inputs to operation AddN ... must have the same size
        and shape") whenever that batch splits unevenly: `evaluate` on 25
        images over 2 replicas, say. Only the batch's shapes and dtypes are
        used, so the first replica's share serves as well. Remove when
        Keras's own method reads one replica's values.
        """
        strategy = self._distribute_strategy
        if strategy is None or iterator is None:
            return super()._maybe_symbolic_build(iterator, data_batch)
        for _, _, batches in iterator:
            data_batch = tf.nest.map_structure(
                lambda value: strategy.experimental_local_results(value)[0]
                if isinstance(value, tf.distribute.DistributedValues) else value,
                next(batches))
            break
        with strategy.scope():
            self._symbolic_build(data_batch=data_batch)

    # ------------------------------------------------------------ public API

    def check_codes(self, z):
        """Returns codes `z` as float32 NumPy `(N, latent_dim)`, or raises `ValueError`."""
        z = np.asarray(z, dtype="float32")
        if z.ndim != 2 or z.shape[1] != self.latent_dim:
            raise ValueError(
                f"z must have shape (N, {self.latent_dim}). Received: z.shape={z.shape}"
            )
        return z

    def _unpack(self, data):
        """Returns `(images, condition)` of a batch; an unconditional model has no condition."""
        return first_component(data), None

    def _condition(self, labels):
        """One-hot rows for checked int `labels`, or None for an unconditional model."""
        return None if labels is None else tf.one_hot(labels, self.num_classes)

    def encode(self, x, labels=None, batch_size=256):
        """Encodes images to codes: the same pair `(codes, log_variances)` on every model.

        Args:
            x: Images in [0, 1], shape `(N, *image_shape)`.
            labels: The images' classes, for a conditional model only (one
                int per image, or one int for all); see `num_classes`.
            batch_size: Images encoded at a time.

        Returns:
            A pair of NumPy arrays `(codes, log_variances)`, each `(N, latent_dim)`:
            the posterior mean and log-variance for a VAE. A deterministic
            encoder (`Autoencoder`) has no variance and returns `(codes, None)`.
        """
        x = check_images(x, image_shape=self.image_shape)
        return self._encode_arrays(x, self.check_labels(labels, len(x)), batch_size)

    def _encode_arrays(self, x, labels, batch_size):
        """`(means, log_vars)` of the posterior, batch by batch (VAE-like models)."""
        means, log_vars = [], []
        for start in range(0, x.shape[0], batch_size):
            stop = start + batch_size
            condition = self._condition(None if labels is None else labels[start:stop])
            z_mean, z_log_var = self._encode_tensors(
                tf.convert_to_tensor(x[start:stop]), False, condition)
            means.append(z_mean.numpy())
            log_vars.append(z_log_var.numpy())
        return np.concatenate(means), np.concatenate(log_vars)

    def latent_codes(self, x, labels=None, batch_size=256):
        """Returns one deterministic code per image, NumPy `(N, latent_dim)`.

        The posterior mean for a VAE, the code itself for an autoencoder
        (`encode(x, labels)[0]`).

        Args:
            x: Images in [0, 1], shape `(N, *image_shape)`.
            labels: The images' classes, for a conditional model only (one
                int per image, or one int for all).
            batch_size: Images encoded at a time.
        """
        return self.encode(x, labels, batch_size=batch_size)[0]

    def decode(self, z, labels=None, batch_size=256):
        """Decodes latent codes to images (the likelihood's mean, in [0, 1]).

        Args:
            z: Codes of shape `(N, latent_dim)`.
            labels: The classes to render, for a conditional model only (one
                int per code, or one int for all).
            batch_size: Codes decoded at a time.

        Returns:
            A NumPy array of images, shape `(N, *image_shape)`.
        """
        z = self.check_codes(z)
        labels = self.check_labels(labels, len(z))
        images = [
            np.asarray(self._decode_tensor(
                tf.constant(z[start:start + batch_size]),
                condition=self._condition(None if labels is None
                                          else labels[start:start + batch_size])))
            for start in range(0, z.shape[0], batch_size)
        ]
        return np.concatenate(images) if images else np.zeros(
            (0,) + self.image_shape, "float32")

    def reconstruct(self, x, labels=None, batch_size=256):
        """Reconstructs images through their deterministic codes (the posterior mean).

        Args:
            x: Images in [0, 1], shape `(N, *image_shape)`.
            labels: The images' classes, for a conditional model only.
            batch_size: Images reconstructed at a time.

        Returns:
            A NumPy array of the same shape as `x`.
        """
        x = check_images(x, image_shape=self.image_shape)
        labels = self.check_labels(labels, len(x))
        inputs = x if labels is None else (x, labels)
        return self.predict(inputs, batch_size=batch_size, verbose=0)

    def draw_codes(self, n, seed=None):
        """Returns `n` codes drawn from the prior, float32 NumPy `(n, latent_dim)`.

        N(0, I) unless the model has a learned prior (a `prior_layer` other
        than `keras_vae.priors.StandardNormal`), which is then sampled.

        Args:
            n: Number of codes, a positive int.
            seed: Optional int; the same seed gives the same codes. Without
                it, the model's seed generator gives new codes on each call.
        """
        check_int("n", n)
        prior_layer = getattr(self, "prior_layer", None)
        if prior_layer is not None and not isinstance(prior_layer, priors.StandardNormal):
            seed = self.prior_seed_generator.next() if seed is None else tf.constant([seed, 0])
            return self.prior().sample(n, seed=tf.cast(seed, "int32")).numpy()
        z = keras.random.normal(
            (n, self.latent_dim),
            seed=self.prior_seed_generator if seed is None else seed,
        )
        return ops.convert_to_numpy(z)

    def sample(self, n, labels=None, seed=None):
        """Generates `n` new images by decoding draws from the prior (see `draw_codes`).

        Args:
            n: Number of images.
            labels: The classes to generate, for a conditional model only:
                `n` ints, or one int for all `n` images.
            seed: Optional int; the same seed gives the same images. Without
                it, successive calls give new images.

        Returns:
            A NumPy array of images, shape `(n, *image_shape)`.
        """
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)):
            hint = "; give the classes as labels=" if np.ndim(n) else ""
            raise TypeError(f"n must be an int, the number of images{hint}. Received: "
                            f"n={short_repr(n)}")
        check_int("n", n)
        labels = self.check_labels(labels, n)
        return self.decode(self.draw_codes(n, seed), labels)

    # ------------------------------------------------------------- saving

    def _constructor_arguments(self):
        """Returns `{argument: value}` that rebuild the model (Keras objects as such)."""
        raise NotImplementedError

    def get_config(self):
        config = {"name": self.name, "trainable": self.trainable}
        for key, value in self._constructor_arguments().items():
            if isinstance(value, keras.layers.Layer):
                value = keras.saving.serialize_keras_object(value)
            config[key] = value
        return config

    @classmethod
    def from_config(cls, config):
        config = {
            key: keras.saving.deserialize_keras_object(value)
            if isinstance(value, dict) and "class_name" in value else value
            for key, value in config.items()
        }
        return cls(**config)
