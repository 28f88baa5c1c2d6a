"""What TensorBoard's Projector reads (`keras_vae.projector`), written as the model trains
(`keras_vae.callbacks.EmbeddingProjector`)."""

import numpy as np
import pytest
import tensorflow as tf
from google.protobuf import text_format
from tensorboard.plugins import projector as tb_projector

import keras_vae
from conftest import tiny_vae
from keras_vae import callbacks
from keras_vae import projector
from keras_vae.models import build_conditional_vae


def test_sprite_tiles_images_row_by_row_in_a_square():
    images = np.random.RandomState(0).rand(5, 3, 2, 1).astype("float32")
    picture = projector.sprite(images)
    assert picture.shape == (9, 6, 3)  # a 3x3 grid of 3x2 images
    np.testing.assert_array_equal(picture[3:6, 0:2, 0], np.round(images[3, ..., 0] * 255))
    np.testing.assert_array_equal(picture[0:3, 4:6, 1], np.round(images[2, ..., 0] * 255))
    assert picture[6:, 2:].max() == 0  # empty cells stay black


def test_the_projector_reads_the_codes_of_the_last_written_epoch(mnist_small, tmp_path):
    (x_train, _), (x_test, y_test) = mnist_small
    vae = tiny_vae(latent_dim=3)
    vae.compile(optimizer="adam")
    callback = callbacks.EmbeddingProjector(x_test[:50], tmp_path, labels=y_test[:50],
                                           every=2)
    vae.fit(x_train[:128], epochs=3, batch_size=64, verbose=0, callbacks=[callback])
    assert callback.written == [2, 3]  # every 2 epochs, and after the last
    latest = tf.train.latest_checkpoint(str(tmp_path))
    codes = tf.train.load_variable(latest, projector.TENSOR_NAME)
    np.testing.assert_allclose(codes, vae.latent_codes(x_test[:50]), atol=1e-6)
    config = text_format.Parse((tmp_path / "projector_config.pbtxt").read_text(),
                               tb_projector.ProjectorConfig())
    (embedding,) = config.embeddings
    assert embedding.tensor_name == projector.TENSOR_NAME
    assert list(embedding.sprite.single_image_dim) == [28, 28]
    labels = (tmp_path / embedding.metadata_path).read_text().split()
    assert labels == [str(label) for label in y_test[:50]]
    sprite = tf.io.decode_png((tmp_path / embedding.sprite.image_path).read_bytes()).numpy()
    assert sprite.shape == (8 * 28, 8 * 28, 3)
    np.testing.assert_array_equal(sprite[28:56, 0:28, 0], np.round(x_test[8, ..., 0] * 255))


def test_a_conditional_model_is_encoded_with_the_labels(mnist_small, tmp_path):
    (x_train, y_train), (x_test, y_test) = mnist_small
    model = build_conditional_vae(latent_dim=2, num_classes=10, filters=(4, 8),
                                  hidden_units=16, seed=0)
    model.compile(optimizer="adam")
    callback = callbacks.EmbeddingProjector(x_test[:20], tmp_path, labels=y_test[:20])
    model.fit(x_train[:64], y_train[:64], epochs=1, batch_size=64, verbose=0,
              callbacks=[callback])
    codes = tf.train.load_variable(tf.train.latest_checkpoint(str(tmp_path)),
                                   projector.TENSOR_NAME)
    np.testing.assert_allclose(codes, model.latent_codes(x_test[:20], y_test[:20]), atol=1e-6)


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="one label per image"):
        callbacks.EmbeddingProjector(np.zeros((3, 28, 28, 1)), "logs", labels=[1, 2])
    with pytest.raises(ValueError, match="every"):
        callbacks.EmbeddingProjector(np.zeros((3, 28, 28, 1)), "logs", every=0)
    assert keras_vae.projector is projector


def test_train_writes_the_projector_files_with_its_flag(tmp_path, capsys):
    from keras_vae import cli
    from keras_vae import datasets

    output = tmp_path / "run"
    assert cli.main(["train", "--limit", "64", "--epochs", "2", "--latent-dim", "2",
                     "--batch-size", "32", "--projector-every", "1", "--plot-every", "0",
                     "--verbose", "0", "--output", str(output)]) == 0
    capsys.readouterr()
    model = keras_vae.saving.load_model(output / "model.keras")
    _, (x_test, y_test) = datasets.load("mnist")
    x_test = datasets.binarize(x_test[:64], seed=0)  # the run's test images
    codes = tf.train.load_variable(tf.train.latest_checkpoint(str(output / "projector")),
                                   projector.TENSOR_NAME)
    np.testing.assert_allclose(codes, model.latent_codes(x_test), atol=1e-5)
    labels = (output / "projector" / "metadata.tsv").read_text().split()
    assert labels == [str(label) for label in y_test[:64]]
