"""Bad input never trains: each case raises a clear error and leaves weights alone."""

import re

import numpy as np
import pytest
import tensorflow as tf

from conftest import tiny_vae
from keras_vae import validation


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


# ------------------------------------------------ argument and label checks
# Wrong type -> TypeError, wrong value -> ValueError, each naming the argument.


@pytest.mark.parametrize("value", [2.5, 2.0, "3", None, True, np.float32(4)])
def test_check_int_refuses_non_ints_with_a_type_error(value):
    with pytest.raises(TypeError, match=re.escape(f"n must be a positive int. Received: n={value!r}")):
        validation.check_int("n", value)


@pytest.mark.parametrize("value, minimum", [(0, 1), (-3, 1), (1, 2)])
def test_check_int_refuses_small_ints_with_a_value_error(value, minimum):
    with pytest.raises(ValueError, match=rf"Received: n={value}$"):
        validation.check_int("n", value, minimum=minimum)


def test_check_int_and_check_number_accept_numpy_integers():
    assert validation.check_int("n", np.int64(3)) == 3
    assert type(validation.check_int("n", np.int64(3))) is int
    assert validation.check_number("beta", np.int64(2)) == 2.0


def test_check_labels_refuses_non_integral_labels_instead_of_truncating():
    with pytest.raises(ValueError, match=r"labels must be whole numbers.*1 non-integral.*0\.5"):
        validation.check_labels(np.array([0.0, 0.5, 2.0]))
    with pytest.raises(ValueError, match="non-integral"):
        validation.check_labels(np.array([1.0, np.nan]))
    np.testing.assert_array_equal(validation.check_labels(np.array([[3.0], [1.0]])), [3, 1])
    assert validation.check_labels(np.array([3.0, 1.0])).dtype == np.int64


def test_check_labels_refuses_wrong_types_shapes_and_ranges():
    with pytest.raises(TypeError, match=r"integer class indices. Received: y.dtype=<U1"):
        validation.check_labels(np.array(["a", "b"]), name="y")
    with pytest.raises(TypeError, match="integer class indices"):
        validation.check_labels(np.array([True, False]))
    with pytest.raises(ValueError, match=r"not one-hot\). Received: labels.shape=\(2, 3\)"):
        validation.check_labels(np.eye(3)[:2])
    with pytest.raises(ValueError, match="3 labels for 4 images"):
        validation.check_labels([0, 1, 2], count=4)
    with pytest.raises(ValueError, match=r">= 0. Received: a label of -1"):
        validation.check_labels([0, -1])
    with pytest.raises(ValueError, match=r"in \[0, 3\). Received: labels in \[0, 3\]"):
        validation.check_labels([0, 3], num_classes=3)
