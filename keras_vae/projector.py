"""The files TensorBoard's embedding projector reads: codes, labels and a sprite.

`write_config` writes, into a TensorBoard log folder, the Projector's
configuration, the labels of a fixed set of images (`metadata.tsv`) and a
sprite of the images, so each point is drawn as its digit; the latent codes
are a checkpoint beside them, which `write_checkpoint_index` names as the
latest. The callback `keras_vae.callbacks.EmbeddingProjector` decides when
to write them as a model trains. Open `tensorboard --logdir LOG_DIR`, then
the Projector tab, and pick PCA, t-SNE or UMAP.
"""

import pathlib

import numpy as np
import tensorflow as tf
from tensorboard.plugins import projector

from keras_vae import saving

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


def write_config(log_dir, images, labels=None):
    """Writes the sprite, the labels and the Projector's configuration into `log_dir`.

    The configuration points the Projector at the codes saved under
    `TENSOR_NAME` in the latest checkpoint of `log_dir`.

    Args:
        log_dir: The TensorBoard log folder (created if needed).
        images: Checked images `(N, height, width, channels)` in [0, 1].
        labels: Optional labels `(N,)`, written to `metadata.tsv`; each
            point is coloured by its label.
    """
    log_dir = pathlib.Path(log_dir)
    log_dir.mkdir(parents=True, exist_ok=True)
    (log_dir / "sprite.png").write_bytes(tf.io.encode_png(sprite(images)).numpy())
    config = projector.ProjectorConfig()
    embedding = config.embeddings.add()
    embedding.tensor_name = TENSOR_NAME
    embedding.sprite.image_path = "sprite.png"
    embedding.sprite.single_image_dim.extend([images.shape[2], images.shape[1]])
    if labels is not None:
        saving.write_text(log_dir / "metadata.tsv", "".join(f"{label}\n" for label in labels))
        embedding.metadata_path = "metadata.tsv"
    projector.visualize_embeddings(str(log_dir), config)


def write_checkpoint_index(log_dir, prefix):
    """Writes the `checkpoint` file that tells the Projector the latest codes.

    Args:
        log_dir: The TensorBoard log folder.
        prefix: The checkpoint's prefix inside `log_dir`, e.g. `"latent_codes.ckpt"`.
    """
    saving.write_text(pathlib.Path(log_dir) / "checkpoint",
                      f'model_checkpoint_path: "{prefix}"\n'
                      f'all_model_checkpoint_paths: "{prefix}"\n')
