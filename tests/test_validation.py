"""Bad input never trains: each case raises a clear error and leaves weights alone."""

import numpy as np
import pytest
import tensorflow as tf

from conftest import tiny_vae


def _weights(model):
    return [w.copy() for w in model.get_weights()]


@pytest.fixture
def compiled_vae():
    vae = tiny_vae()
    vae.compile(optimizer="adam")
    return vae


def _images(shape=(8, 28, 28, 1)):
    return np.random.default_rng(0).random(shape).astype("float32")


@pytest.mark.parametrize(
    "x, error, match",
    [
        (_images((8, 28, 28)), ValueError, r"rank 4.*Received: x.shape=\(8, 28, 28\).*channel axis"),
        (_images((8, 32, 32, 1)), ValueError, r"wrong image size.*\(32, 32, 1\), expected \(28, 28, 1\)"),
        (_images((8, 28, 28, 3)), ValueError, r"3 channel\(s\) but the model expects 1"),
        ((_images() * 255).astype("uint8"), ValueError, r"\[0, 1\].*dtype uint8.*/ 255"),
        (_images() * 255, ValueError, r"values in \[0.0275417, 254.999\]"),
        (np.where(_images() > 0.5, np.nan, 0.2).astype("float32"), ValueError, "NaN or infinite"),
        (np.full((8, 28, 28, 1), np.inf, "float32"), ValueError, "NaN or infinite"),
        (np.zeros((0, 28, 28, 1), "float32"), ValueError, "x is empty"),
        (np.array([["a"]]), TypeError, "numeric array"),
    ],
)
def test_fit_refuses_bad_images(compiled_vae, x, error, match):
    before = _weights(compiled_vae)
    with pytest.raises(error, match=match):
        compiled_vae.fit(x, epochs=1, verbose=0)
    for old, new in zip(before, compiled_vae.get_weights()):
        np.testing.assert_array_equal(old, new)


def test_validation_data_evaluate_and_predict_are_checked(compiled_vae):
    bad = _images() * 255
    with pytest.raises(ValueError, match="validation_data must hold pixel values"):
        compiled_vae.fit(_images(), validation_data=(bad,), epochs=1, verbose=0)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        compiled_vae.evaluate(bad, verbose=0)
    with pytest.raises(ValueError, match="wrong image size"):
        compiled_vae.predict(_images((2, 14, 14, 1)), verbose=0)
    with pytest.raises(ValueError, match="wrong image size"):
        compiled_vae.encode(_images((2, 14, 14, 1)))


def test_datasets_are_checked(compiled_vae):
    unbatched = tf.data.Dataset.from_tensor_slices(_images())
    with pytest.raises(ValueError, match="rank 4.*batch the dataset first"):
        compiled_vae.fit(unbatched, epochs=1, verbose=0)
    wrong_size = tf.data.Dataset.from_tensor_slices(_images((8, 14, 14, 1))).batch(4)
    with pytest.raises(ValueError, match="wrong image size"):
        compiled_vae.fit(wrong_size, epochs=1, verbose=0)
    scaled = tf.data.Dataset.from_tensor_slices(_images() * 255).batch(4)
    with pytest.raises(ValueError, match=r"first batch\) must hold pixel values in \[0, 1\]"):
        compiled_vae.fit(scaled, epochs=1, verbose=0)
    empty = tf.data.Dataset.from_tensor_slices(_images()).batch(4).take(0)
    with pytest.raises(ValueError, match="x is empty"):
        compiled_vae.fit(empty, epochs=1, verbose=0)
    with_labels = tf.data.Dataset.from_tensor_slices((_images(), np.arange(8))).batch(4)
    compiled_vae.fit(with_labels, epochs=1, verbose=0)  # labels are ignored
