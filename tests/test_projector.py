"""What TensorBoard's Projector reads (`keras_vae.projector`), written as the model trains
(`keras_vae.callbacks.EmbeddingProjector`)."""

import keras
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


def test_the_projector_keeps_one_embedding_per_written_epoch(mnist_small, tmp_path):
    (x_train, _), (x_test, y_test) = mnist_small
    vae = tiny_vae(latent_dim=3)
    vae.compile(optimizer="adam")
    seen = {}

    class Codes(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            seen[epoch + 1] = vae.latent_codes(x_test[:50])

    callback = callbacks.EmbeddingProjector(x_test[:50], tmp_path, labels=y_test[:50],
                                           every=2)
    vae.fit(x_train[:128], epochs=3, batch_size=64, verbose=0, callbacks=[callback, Codes()])
    assert callback.written == [2, 3]  # every 2 epochs, and after the last
    latest = tf.train.latest_checkpoint(str(tmp_path))
    for epoch in (2, 3):  # each written epoch's own codes, not only the last
        np.testing.assert_allclose(tf.train.load_variable(latest, projector.tensor_name(epoch)),
                                   seen[epoch], atol=1e-6)
    assert not np.allclose(seen[2], seen[3])
    config = text_format.Parse((tmp_path / "projector_config.pbtxt").read_text(),
                               tb_projector.ProjectorConfig())
    assert [e.tensor_name for e in config.embeddings] == [projector.tensor_name(2),
                                                          projector.tensor_name(3)]
    embedding = config.embeddings[1]
    assert list(embedding.sprite.single_image_dim) == [28, 28]
    rows = [line.split("\t") for line in
            (tmp_path / embedding.metadata_path).read_text().splitlines()]
    assert rows[0] == ["index", "label", "split", "neg_elbo"]
    assert [row[:3] for row in rows[1:]] == [[str(i), str(label), "test"]
                                             for i, label in enumerate(y_test[:50])]
    scores = keras_vae.export.scores(vae, x_test[:50], num_samples=8)
    np.testing.assert_allclose([float(row[3]) for row in rows[1:]], scores, atol=1e-4)
    sprite = tf.io.decode_png((tmp_path / embedding.sprite.image_path).read_bytes()).numpy()
    assert sprite.shape == (8 * 28, 8 * 28, 3)
    np.testing.assert_array_equal(sprite[28:56, 0:28, 0], np.round(x_test[8, ..., 0] * 255))
    # A resumed run keeps the embeddings written before and adds its own.
    resumed = callbacks.EmbeddingProjector(x_test[:50], tmp_path, labels=y_test[:50])
    vae.fit(x_train[:128], epochs=1, batch_size=64, verbose=0, callbacks=[resumed])
    config = text_format.Parse((tmp_path / "projector_config.pbtxt").read_text(),
                               tb_projector.ProjectorConfig())
    assert [e.tensor_name for e in config.embeddings] == [projector.tensor_name(e)
                                                          for e in (1, 2, 3)]


def test_a_conditional_model_is_encoded_with_the_labels(mnist_small, tmp_path):
    (x_train, y_train), (x_test, y_test) = mnist_small
    model = build_conditional_vae(latent_dim=2, num_classes=10, filters=(4, 8),
                                  hidden_units=16, seed=0)
    model.compile(optimizer="adam")
    callback = callbacks.EmbeddingProjector(x_test[:20], tmp_path, labels=y_test[:20])
    model.fit(x_train[:64], y_train[:64], epochs=1, batch_size=64, verbose=0,
              callbacks=[callback])
    codes = tf.train.load_variable(tf.train.latest_checkpoint(str(tmp_path)),
                                   projector.tensor_name(1))
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
    latest = tf.train.latest_checkpoint(str(output / "projector"))
    codes = tf.train.load_variable(latest, projector.tensor_name(2))
    np.testing.assert_allclose(codes, model.latent_codes(x_test), atol=1e-5)
    assert tf.train.load_variable(latest, projector.tensor_name(1)).shape == codes.shape
    rows = (output / "projector" / "metadata_epoch_002.tsv").read_text().splitlines()
    assert [row.split("\t")[1] for row in rows[1:]] == [str(label) for label in y_test[:64]]
