import hashlib

import keras
import numpy as np
import pytest
import tensorflow as tf

from conftest import ROOT
from conftest import write_npz
from keras_vae import datasets

SHIPPED = {
    "mnist.npz": "06af5dfe73b70e3bc1c36439982b18a8d76803db9b544f6fdf838a37fbb01b64",
    "fashion_mnist.npz": "5b6d2c4c694a91887af8ab7d039c04f80af3c29378d731c93a538d2e831aa469",
}


@pytest.mark.parametrize("name, digest", sorted(SHIPPED.items()))
def test_shipped_data_matches_its_checksum(name, digest):
    data = (ROOT / "data" / name).read_bytes()
    assert hashlib.sha256(data).hexdigest() == digest
    assert digest in (ROOT / "data" / "README.md").read_text()


def test_load_mnist_from_the_project_copy():
    (x_train, y_train), (x_test, y_test) = datasets.load("mnist")
    assert x_train.shape == (60000, 28, 28, 1) and x_test.shape == (10000, 28, 28, 1)
    assert x_train.dtype == np.float32 and x_test.dtype == np.float32
    assert x_train.min() == 0.0 and x_train.max() == 1.0
    assert list(y_train[:5]) == [5, 0, 4, 1, 9]
    assert y_test.shape == (10000,)


def test_load_fashion_mnist_from_the_project_copy():
    _, (x_test, y_test) = datasets.load("fashion_mnist")
    assert x_test.shape == (10000, 28, 28, 1)
    assert list(y_test[:5]) == [9, 2, 1, 1, 6]


def test_load_user_npz(tmp_path):
    arrays = write_npz(tmp_path / "mine.npz")
    (x_train, y_train), (x_test, _) = datasets.load(str(tmp_path / "mine.npz"))
    assert x_train.shape == (6, 10, 12, 1) and x_test.shape == (3, 10, 12, 1)
    np.testing.assert_allclose(x_train[..., 0], arrays["x_train"] / 255.0, rtol=1e-6)
    np.testing.assert_array_equal(y_train, arrays["y_train"])


def test_data_dir_env_is_searched_first(tmp_path, monkeypatch):
    write_npz(tmp_path / "mnist.npz")
    monkeypatch.setenv(datasets.DATA_DIR_ENV, str(tmp_path))
    (x_train, _), _ = datasets.load("mnist")
    assert x_train.shape == (6, 10, 12, 1)


def test_other_names_fall_back_to_keras_datasets(monkeypatch, tmp_path):
    calls = []

    def fake_load_data():
        calls.append(True)
        rng = np.random.default_rng(1)
        return ((rng.integers(0, 256, (4, 32, 32, 3), dtype=np.uint8), np.zeros((4, 1))),
                (rng.integers(0, 256, (2, 32, 32, 3), dtype=np.uint8), np.ones((2, 1))))

    monkeypatch.setattr(datasets, "data_dirs", lambda: [tmp_path])
    monkeypatch.setattr(keras.datasets.cifar10, "load_data", fake_load_data)
    (x_train, y_train), (x_test, y_test) = datasets.load("cifar10")
    assert calls
    assert x_train.shape == (4, 32, 32, 3) and x_train.dtype == np.float32
    assert y_train.shape == (4,) and list(y_test) == [1, 1]


def test_unknown_name_and_missing_file():
    with pytest.raises(ValueError, match=r"Unknown dataset name.*Received: name='svhn'"):
        datasets.load("svhn")
    with pytest.raises(ValueError, match="not found.*nowhere/x.npz"):
        datasets.load("nowhere/x.npz")
    with pytest.raises(TypeError, match="name must be a dataset name or a path"):
        datasets.load(3)


def test_corrupt_and_incomplete_npz(tmp_path):
    corrupt = tmp_path / "corrupt.npz"
    corrupt.write_bytes(b"this is not a zip archive")
    with pytest.raises(ValueError, match="Could not read .*corrupt.npz"):
        datasets.load(str(corrupt))
    good = tmp_path / "good.npz"
    write_npz(good)
    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(good.read_bytes()[:200])
    with pytest.raises(ValueError, match="truncated.npz"):
        datasets.load(str(truncated))
    write_npz(tmp_path / "partial.npz", y_test=None)
    with pytest.raises(ValueError, match=r"lacks the arrays \['y_test'\]"):
        datasets.load(str(tmp_path / "partial.npz"))
    write_npz(tmp_path / "empty.npz", x_train=np.zeros((0, 5, 5), "uint8"),
               y_train=np.zeros((0,)))
    with pytest.raises(ValueError, match="x_train is empty"):
        datasets.load(str(tmp_path / "empty.npz"))
    write_npz(tmp_path / "scaled.npz", dtype="float32")  # floats 0..255
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        datasets.load(str(tmp_path / "scaled.npz"))


def _write_image_folder(root, classes=("cat", "dog"), per_class=5, size=(20, 16)):
    rng = np.random.default_rng(0)
    for name in classes:
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            pixels = rng.integers(0, 256, size + (3,), dtype=np.uint8)
            tf.io.write_file(str(root / name / f"{i}.png"), tf.io.encode_png(pixels))


def test_load_image_folder(tmp_path):
    _write_image_folder(tmp_path / "images")
    (x_train, y_train), (x_test, y_test) = datasets.load(
        str(tmp_path / "images"), image_size=(14, 12), color_mode="rgb", test_fraction=0.2)
    assert x_train.shape == (8, 14, 12, 3) and x_test.shape == (2, 14, 12, 3)
    assert x_train.dtype == np.float32 and 0 <= x_train.min() and x_train.max() <= 1
    assert sorted(set(np.concatenate([y_train, y_test]))) == [0, 1]
    (gray, _), _ = datasets.load(str(tmp_path / "images"))
    assert gray.shape[1:] == (28, 28, 1)


def test_empty_image_folder(tmp_path):
    (tmp_path / "nothing" / "a").mkdir(parents=True)
    with pytest.raises(ValueError, match="Could not load images from the folder"):
        datasets.load(str(tmp_path / "nothing"))


def _images(n=64):
    return np.random.default_rng(0).random((n, 4, 4, 1)).astype("float32")


def test_make_dataset_batches_shuffles_and_keeps_labels():
    x = _images(10)
    y = np.arange(10)
    batches = list(datasets.make_dataset(x, y, batch_size=4, seed=0))
    assert [b[0].shape[0] for b in batches] == [4, 4, 2]
    labels = np.concatenate([b[1].numpy() for b in batches])
    assert sorted(labels) == list(range(10)) and list(labels) != list(range(10))
    images = np.concatenate([b[0].numpy() for b in batches])
    np.testing.assert_array_equal(images, x[labels])
    dropped = list(datasets.make_dataset(x, batch_size=4, drop_remainder=True))
    assert len(dropped) == 2


def test_make_dataset_leaves_the_autotuner_on():
    # Turning it off for everyone hid a per-epoch pause on a 2-core CPU and
    # took autotuning from GPU users; fit's single iterator removes the pause.
    for binarize in (False, True):
        dataset = datasets.make_dataset(_images(10), batch_size=4, binarize=binarize)
        assert dataset.options().autotune.enabled is not False


def test_repeating_reshuffles_and_rebinarizes_every_pass():
    # fit trains a repeated dataset (one iterator); each pass must still be a
    # fresh epoch: a new order and new binarization noise.
    x = np.full((40, 4, 4, 1), 0.5, "float32")
    dataset = datasets.make_dataset(x, np.arange(40), batch_size=16, binarize=True, seed=1)
    assert len(dataset) == 3
    batches = list(dataset.repeat().take(6))
    passes = [[np.concatenate([b[k].numpy() for b in part]) for k in (0, 1)]
              for part in (batches[:3], batches[3:])]
    (images_1, labels_1), (images_2, labels_2) = passes
    assert sorted(labels_1) == sorted(labels_2) == list(range(40))
    assert list(labels_1) != list(labels_2)
    changed = np.mean(images_1[np.argsort(labels_1)] != images_2[np.argsort(labels_2)])
    assert 0.4 < changed < 0.6  # independent Bernoulli(0.5) pixels differ half the time


def test_fit_iterates_a_dataset_once_for_all_epochs(monkeypatch):
    from conftest import tiny_vae

    iterators = []
    original = tf.data.Dataset.__iter__

    def counting_iter(dataset):
        iterators.append(dataset.cardinality().numpy())
        return original(dataset)

    monkeypatch.setattr(tf.data.Dataset, "__iter__", counting_iter)
    model = tiny_vae()
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    steps = []
    record = keras.callbacks.LambdaCallback(
        on_epoch_begin=lambda epoch, logs: steps.append(0),
        on_train_batch_end=lambda batch, logs: steps.__setitem__(-1, steps[-1] + 1))
    x = _images(80)
    x = np.repeat(np.repeat(x, 7, axis=1), 7, axis=2)  # 28x28, as tiny_vae expects
    history = model.fit(datasets.make_dataset(x, batch_size=32, seed=0), epochs=3,
                        verbose=0, callbacks=[record])
    assert steps == [3, 3, 3] and len(history.history["loss"]) == 3
    # One iterator over the repeated (infinite) dataset, none over the 3-batch
    # dataset itself (Keras alone makes 2 of those per epoch); the input
    # check's look at the first batch iterates a 1-batch dataset.
    assert iterators.count(tf.data.INFINITE_CARDINALITY) == 1, iterators
    assert iterators.count(3) == 0, iterators


def test_dynamic_binarization():
    x = np.full((400, 4, 4, 1), 0.3, "float32")
    dataset = datasets.make_dataset(x, batch_size=100, binarize=True, seed=1, shuffle=False)
    first = np.concatenate([b.numpy() for b in dataset])
    second = np.concatenate([b.numpy() for b in dataset])
    assert set(np.unique(first)) == {0.0, 1.0}
    assert abs(first.mean() - 0.3) < 0.02
    assert not np.array_equal(first, second)  # resampled on every pass
    again = np.concatenate([b.numpy() for b in datasets.make_dataset(
        x, batch_size=100, binarize=True, seed=1, shuffle=False)])
    np.testing.assert_array_equal(first, again)  # reproducible with the seed
    with_labels = next(iter(datasets.make_dataset(x, np.arange(400), batch_size=8,
                                                  binarize=True, seed=1)))
    assert with_labels[1].shape == (8,)


def test_static_binarization_is_fixed_by_seed():
    x = _images()
    a, b = datasets.binarize(x, seed=3), datasets.binarize(x, seed=3)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, datasets.binarize(x, seed=4))
    assert set(np.unique(a)) <= {0.0, 1.0}


def test_make_dataset_rejects_bad_input():
    with pytest.raises(ValueError, match="batch_size must be a positive int"):
        datasets.make_dataset(_images(), batch_size=0)
    with pytest.raises(ValueError, match="differ in length"):
        datasets.make_dataset(_images(8), np.arange(3))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        datasets.make_dataset(_images() * 255)


# ------------------------------------------- binarization: P(pixel = 1) = intensity


def _intensity_grid(copies):
    """`copies` images of 4x4 pixels with intensities 0, 1/15, ..., 1 (none at 0.5)."""
    intensities = np.linspace(0.0, 1.0, 16, dtype="float32")
    return intensities, np.tile(intensities.reshape(1, 4, 4, 1), (copies, 1, 1, 1))


def _assert_pixel_frequencies_match_intensities(binary, intensities):
    assert set(np.unique(binary)) <= {0.0, 1.0}
    frequency = binary.reshape(len(binary), -1).mean(axis=0)
    # Pixels at 0 and 1 are always 0 and 1.
    assert frequency[0] == 0.0 and frequency[-1] == 1.0
    # Elsewhere within 4.5 binomial standard errors (at most 0.008 for 4000 draws);
    # a probability of x / 2 or 1 - x misses by 0.03 or more on most pixels.
    stderr = np.sqrt(intensities * (1 - intensities) / len(binary))
    np.testing.assert_array_less(np.abs(frequency - intensities)[1:-1], 4.5 * stderr[1:-1])


def test_static_binarization_draws_each_pixel_with_probability_its_intensity():
    intensities, x = _intensity_grid(4000)
    _assert_pixel_frequencies_match_intensities(datasets.binarize(x, seed=0), intensities)


def test_dynamic_binarization_draws_each_pixel_with_probability_its_intensity():
    intensities, x = _intensity_grid(4000)
    dataset = datasets.make_dataset(x, batch_size=500, binarize=True, seed=0, shuffle=False)
    binary = np.concatenate([batch.numpy() for batch in dataset])
    _assert_pixel_frequencies_match_intensities(binary, intensities)
