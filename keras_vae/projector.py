"""The files TensorBoard's embedding projector reads: codes, labels and a sprite.

`write_config` writes, into a TensorBoard log folder, the Projector's
configuration with one embedding per written epoch (`epoch_001`, ...: the
codes of the same images as training went on), `write_metadata` a table per
epoch (index, label, split, and the negative ELBO where the model has a
likelihood), and `write_sprite` a sprite of the images, so each point is
drawn as its digit; the codes of every written epoch are one checkpoint
beside them, which `write_checkpoint_index` names as the latest. The
callback `keras_vae.callbacks.EmbeddingProjector` decides when to write them
as a model trains. Open `tensorboard --logdir LOG_DIR`, then
the Projector tab, and pick PCA, t-SNE or UMAP.
"""

import pathlib

import numpy as np
import tensorflow as tf
from tensorboard.plugins import projector

from keras_vae import saving

CHECKPOINT = "latent_codes.ckpt"
"""The checkpoint's prefix inside the log folder: one variable of codes per written epoch."""


def embedding_name(epoch):
    """The name of epoch `epoch`'s codes (1-based): `epoch_003`, shown in the Projector's list."""
    return f"epoch_{epoch:03d}"


def tensor_name(epoch):
    """The name of epoch `epoch`'s codes in the checkpoint (what the configuration points to)."""
    return f"{embedding_name(epoch)}/.ATTRIBUTES/VARIABLE_VALUE"


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


def write_sprite(log_dir, images):
    """Writes `sprite.png` of `images` (see `sprite`) into `log_dir` (created if needed).

    Args:
        log_dir: The TensorBoard log folder.
        images: Checked images `(N, height, width, channels)` in [0, 1].
    """
    log_dir = pathlib.Path(log_dir)
    log_dir.mkdir(parents=True, exist_ok=True)
    (log_dir / "sprite.png").write_bytes(tf.io.encode_png(sprite(images)).numpy())


def write_metadata(path, columns):
    """Writes a Projector metadata file: a header row, then one row per point.

    Args:
        path: The `.tsv` file to write.
        columns: `{name: values}`, each with one value per point (index,
            label, split, negative ELBO ...); the Projector colours and
            searches by any of them.
    """
    names = list(columns)
    rows = zip(*(columns[name] for name in names))
    text = "\t".join(names) + "\n" + "".join(
        "\t".join(_cell(value) for value in row) + "\n" for row in rows)
    saving.write_text(path, text)


def _cell(value):
    if isinstance(value, (float, np.floating)):
        return f"{float(value):.4f}"
    return str(value).replace("\t", " ").replace("\n", " ")


def write_config(log_dir, image_shape, embeddings):
    """Writes the Projector's configuration: one embedding per written epoch.

    Every embedding shares the sprite (`write_sprite`) and has its own
    metadata file, and names its codes in the latest checkpoint of `log_dir`.

    Args:
        log_dir: The TensorBoard log folder.
        image_shape: `(height, width, channels)` of the images.
        embeddings: `(tensor_name, metadata file name)` pairs, in the
            order the Projector lists them.
    """
    config = projector.ProjectorConfig()
    for name, metadata in embeddings:
        embedding = config.embeddings.add()
        embedding.tensor_name = name
        embedding.metadata_path = metadata
        embedding.sprite.image_path = "sprite.png"
        embedding.sprite.single_image_dim.extend([image_shape[1], image_shape[0]])
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
