"""TensorBoard's embedding projector for the latent space, updated as a model trains.

`EmbeddingProjector` writes, into a TensorBoard log folder, the latent codes
of a fixed set of images (a checkpoint the Projector reads), their labels
(`metadata.tsv`) and a sprite of the images, so each point is drawn as its
digit. Open `tensorboard --logdir LOG_DIR`, then the Projector tab, and pick
PCA, t-SNE or UMAP.
"""

import pathlib

import keras
import numpy as np
import tensorflow as tf
from tensorboard.plugins import projector

from keras_vae import saving
from keras_vae.validation import check_images
from keras_vae.validation import check_int

TENSOR_NAME = "latent_codes/.ATTRIBUTES/VARIABLE_VALUE"
"""The name of the codes in the checkpoint (what `projector_config.pbtxt` points to)."""

MAX_SPRITE_PIXELS = 8192
"""TensorBoard's largest sprite side, in pixels."""


def sprite(images):
    """Returns the square sprite of `images` `(N, H, W, C)` in [0, 1], uint8 `(S, S, 3)`.

    Images fill the rows of a `ceil(sqrt(N))`-wide grid left to right, the
    order TensorBoard reads them in; empty cells stay black.
    """
    images = np.asarray(images, "float32")
    count, height, width, channels = images.shape
    side = int(np.ceil(np.sqrt(count)))
    if side * max(height, width) > MAX_SPRITE_PIXELS:
        raise ValueError(
            f"images make a sprite over {MAX_SPRITE_PIXELS} pixels wide; give fewer. "
            f"Received: {count} images of {height}x{width}")
    if channels == 1:
        images = np.repeat(images, 3, axis=-1)
    grid = np.zeros((side * side, height, width, 3), "float32")
    grid[:count] = images[..., :3]
    grid = grid.reshape(side, side, height, width, 3).transpose(0, 2, 1, 3, 4)
    return np.round(np.clip(grid, 0, 1) * 255).astype("uint8").reshape(
        side * height, side * width, 3)


class EmbeddingProjector(keras.callbacks.Callback):
    """Writes the latent codes of fixed images for TensorBoard's Projector, every N epochs.

    At the chosen epochs the codes (`model.latent_codes`, the posterior
    means of a VAE) are saved as a checkpoint in `log_dir`; the Projector
    shows the latest one. The labels and the sprite are written once, at
    the start of training.

    Args:
        images: Images `(N, height, width, channels)` in [0, 1]; a few
            hundred to a few thousand.
        log_dir: The TensorBoard log folder (created if needed).
        labels: Optional int labels `(N,)`, written as the metadata each
            point is coloured by; a conditional model also encodes with them.
        every: Write the codes every `every` epochs (and after the last one).

    Example:

    ```python
    projector = keras_vae.projector.EmbeddingProjector(x_test[:1000], "logs",
                                                       labels=y_test[:1000])
    vae.fit(x_train, epochs=10, callbacks=[projector])
    # tensorboard --logdir logs, then the Projector tab
    ```
    """

    def __init__(self, images, log_dir, labels=None, every=1):
        super().__init__()
        self.images = check_images(images, name="images")
        self.labels = None if labels is None else np.asarray(labels)
        if self.labels is not None and self.labels.shape != (len(self.images),):
            raise ValueError(
                f"labels must hold one label per image, shape ({len(self.images)},). "
                f"Received: labels.shape={self.labels.shape}")
        self.log_dir = pathlib.Path(log_dir)
        self.every = check_int("every", every)
        self.checkpoint = None
        self.written = []
        """The epochs (1-based) whose codes were written."""

    def on_train_begin(self, logs=None):
        self.log_dir.mkdir(parents=True, exist_ok=True)
        image = sprite(self.images)
        (self.log_dir / "sprite.png").write_bytes(tf.io.encode_png(image).numpy())
        config = projector.ProjectorConfig()
        embedding = config.embeddings.add()
        embedding.tensor_name = TENSOR_NAME
        embedding.sprite.image_path = "sprite.png"
        embedding.sprite.single_image_dim.extend(
            [self.images.shape[2], self.images.shape[1]])
        if self.labels is not None:
            saving.write_text(self.log_dir / "metadata.tsv",
                              "".join(f"{label}\n" for label in self.labels))
            embedding.metadata_path = "metadata.tsv"
        projector.visualize_embeddings(str(self.log_dir), config)
        self.codes = tf.Variable(self._codes(), name="latent_codes")
        self.checkpoint = tf.train.Checkpoint(latent_codes=self.codes)

    def _codes(self):
        labels = self.labels if self.model.num_classes is not None else None
        return self.model.latent_codes(self.images, labels)

    def on_epoch_end(self, epoch, logs=None):
        last = self.params.get("epochs") == epoch + 1
        if (epoch + 1) % self.every == 0 or last:
            self.codes.assign(self._codes())
            self.checkpoint.write(str(self.log_dir / "latent_codes.ckpt"))
            _write_checkpoint_index(self.log_dir, "latent_codes.ckpt")
            self.written.append(epoch + 1)


def _write_checkpoint_index(log_dir, prefix):
    """Writes the `checkpoint` file that tells the Projector the latest codes."""
    saving.write_text(pathlib.Path(log_dir) / "checkpoint",
                      f'model_checkpoint_path: "{prefix}"\n'
                      f'all_model_checkpoint_paths: "{prefix}"\n')
