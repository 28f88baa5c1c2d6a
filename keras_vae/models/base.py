"""What every keras_vae image model shares: input checks, decoding and sampling."""

import keras
import numpy as np
import tensorflow as tf
from keras import ops

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

    Subclasses set `image_shape` and `latent_dim` and implement
    `_decode_tensor(z)` (codes to images in [0, 1]). This class checks the
    images given to `fit`, `evaluate` and `predict` (a clear error instead of
    training on garbage) and provides `decode`, `sample` and `reconstruct`.
    """

    def _init_sampling(self, seed):
        self.prior_seed_generator = keras.random.SeedGenerator(
            None if seed is None else seed + 1, name="prior_seed_generator")

    # ------------------------------------------------------ input validation

    def check_input(self, data, name="x"):
        """Raises a clear error if `data` cannot be images for this model.

        Accepts what `fit`, `evaluate` and `predict` accept: an array, a
        tuple `(x, ...)`, or a `tf.data.Dataset`. Arrays are checked in full;
        a dataset's element spec and its first batch are checked.
        """
        if data is None:
            return
        if isinstance(data, tf.data.Dataset):
            self._check_dataset(data, name)
            return
        if isinstance(data, tuple):
            data = first_component(data)
        if isinstance(data, (np.ndarray, tf.Tensor, list)):
            check_images(data, name=name, image_shape=self.image_shape)

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

    def _check_x_y(self, x, y, name="x"):
        """Checks the `x` (and, in a conditional model, `y`) given to fit or evaluate."""
        del y  # Only conditional models use targets.
        self.check_input(x, name)

    def fit(self, x=None, y=None, *args, validation_data=None, **kwargs):
        self._check_x_y(x, y)
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
        return super().fit(x, y, *args, validation_data=validation_data, **kwargs)

    def evaluate(self, x=None, y=None, *args, **kwargs):
        self._check_x_y(x, y)
        return super().evaluate(x, y, *args, **kwargs)

    def predict(self, x, *args, **kwargs):
        self.check_input(x, "x")
        return super().predict(x, *args, **kwargs)

    # ------------------------------------------------------------ public API

    def check_codes(self, z):
        """Returns codes `z` as float32 NumPy `(N, latent_dim)`, or raises `ValueError`."""
        z = np.asarray(z, dtype="float32")
        if z.ndim != 2 or z.shape[1] != self.latent_dim:
            raise ValueError(
                f"z must have shape (N, {self.latent_dim}). Received: z.shape={z.shape}"
            )
        return z

    def decode(self, z, batch_size=256):
        """Decodes latent codes to images (the likelihood's mean, in [0, 1]).

        Args:
            z: Codes of shape `(N, latent_dim)`.
            batch_size: Codes decoded at a time.

        Returns:
            A NumPy array of images, shape `(N, *image_shape)`.
        """
        z = self.check_codes(z)
        images = [
            np.asarray(self._decode_tensor(z[start:start + batch_size]))
            for start in range(0, z.shape[0], batch_size)
        ]
        return np.concatenate(images) if images else np.zeros(
            (0,) + self.image_shape, "float32")

    def latent_codes(self, x, batch_size=256):
        """Returns one deterministic code per image, NumPy `(N, latent_dim)`.

        The posterior mean for a VAE, the code itself for an autoencoder.
        """
        codes = self.encode(x, batch_size=batch_size)
        return codes[0] if isinstance(codes, tuple) else codes

    def reconstruct(self, x, batch_size=256):
        """Reconstructs images through the code (the posterior mean: deterministic).

        Returns:
            A NumPy array of the same shape as `x`.
        """
        return self.predict(x, batch_size=batch_size, verbose=0)

    def draw_codes(self, n, seed=None):
        """Returns `n` codes from N(0, I) as float32 NumPy `(n, latent_dim)`."""
        check_int("n", n)
        z = keras.random.normal(
            (n, self.latent_dim),
            seed=self.prior_seed_generator if seed is None else seed,
        )
        return ops.convert_to_numpy(z)

    def sample(self, n, seed=None):
        """Generates `n` new images by decoding draws from the prior (see `draw_codes`).

        Args:
            n: Number of images.
            seed: Optional int; the same seed gives the same images. Without
                it, successive calls give new images.

        Returns:
            A NumPy array of images, shape `(n, *image_shape)`.
        """
        return self.decode(self.draw_codes(n, seed))

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
