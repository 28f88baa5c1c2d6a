"""Where `datasets.load` finds data, and the one-line errors it gives when it cannot."""

import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from conftest import ROOT
from conftest import write_npz
from keras_vae import datasets


def _write_image_folder(root, counts=(("cat", 5), ("dog", 5)), size=(12, 10)):
    rng = np.random.default_rng(0)
    for name, count in counts:
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(count):
            pixels = rng.integers(0, 256, size + (3,), dtype=np.uint8)
            tf.io.write_file(str(root / name / f"{i}.png"), tf.io.encode_png(pixels))
    return root


@pytest.fixture
def data_dir(tmp_path, monkeypatch):
    """A KERAS_VAE_DATA_DIR holding a tiny mnist.npz (6 images of 10x12)."""
    folder = tmp_path / "data"
    folder.mkdir()
    write_npz(folder / "mnist.npz")
    monkeypatch.setenv(datasets.DATA_DIR_ENV, str(folder))
    return folder


# ------------------------------------------------------------ names and paths

def test_a_name_is_never_a_folder_of_the_working_directory(data_dir, tmp_path, monkeypatch):
    work = tmp_path / "work"
    _write_image_folder(work / "mnist")
    monkeypatch.chdir(work)
    (x_train, _), _ = datasets.load("mnist")
    assert x_train.shape == (6, 10, 12, 1)  # the data copy, not the folder's 28x28 images
    for spec in ({"path": "mnist"}, {"name": "./mnist"}, {"name": work / "mnist"}):
        (x_train, y_train), (x_test, _) = datasets.load(**spec, image_size=(7, 5))
        assert x_train.shape == (8, 7, 5, 1) and x_test.shape == (2, 7, 5, 1)
    _write_image_folder(work / "faces")
    with pytest.raises(ValueError, match=r"Received: name='faces'\. To load .* path='faces'"):
        datasets.load("faces")


def test_own_npz_names_in_the_data_dir(data_dir):
    write_npz(data_dir / "letters.npz", n=4)
    (x_train, _), (x_test, _) = datasets.load("letters")
    assert x_train.shape == (4, 10, 12, 1) and x_test.shape == (2, 10, 12, 1)


def test_name_and_path_are_not_given_together(data_dir):
    with pytest.raises(ValueError, match="not both. Received: name='mnist', path='x.npz'"):
        datasets.load("mnist", path="x.npz")
    with pytest.raises(TypeError, match="path must be a string or a path. Received: path=3"):
        datasets.load(path=3)
    (x_train, _), _ = datasets.load(path=data_dir / "mnist.npz")
    assert x_train.shape == (6, 10, 12, 1)


def test_data_dirs_holds_the_clones_data_only_in_a_clone(tmp_path, monkeypatch):
    monkeypatch.delenv(datasets.DATA_DIR_ENV, raising=False)
    assert datasets.data_dirs() == [ROOT / "data"]  # these tests run from a clone
    installed = tmp_path / "site-packages"  # a wheel: no setup.cfg beside the package
    (installed / "data").mkdir(parents=True)
    monkeypatch.setattr(datasets, "_SOURCE_ROOT", installed)
    assert datasets.data_dirs() == []
    monkeypatch.setenv(datasets.DATA_DIR_ENV, str(tmp_path))
    assert datasets.data_dirs() == [tmp_path]


def test_a_failed_download_says_how_to_give_a_local_copy(tmp_path, monkeypatch):
    def offline():
        raise Exception(  # what keras.utils.get_file raises without a network
            "URL fetch failure on https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz: "
            "None -- [Errno -2] Name or service not known")

    monkeypatch.setattr(datasets, "data_dirs", lambda: [tmp_path])
    monkeypatch.setattr(keras.datasets.cifar10, "load_data", offline)
    with pytest.raises(OSError) as info:
        datasets.load("cifar10")
    message = str(info.value)
    assert "\n" not in message
    assert f"cifar10.npz in {tmp_path}" in message
    assert "download through keras.datasets failed" in message
    assert "Name or service not known" in message
    assert "set KERAS_VAE_DATA_DIR to a folder holding cifar10.npz" in message


# ------------------------------------------------------------ .npz contents

def test_npz_labels_must_be_whole_numbers(tmp_path):
    path = tmp_path / "half.npz"
    write_npz(path, y_train=np.array([0.0, 0.5, 1.0, 2.0, 1.0, 0.0]))
    with pytest.raises(ValueError, match=r"half.npz y_train must be whole numbers.*e\.g\. 0\.5"):
        datasets.load(path=path)
    write_npz(path, y_train=np.array([[0.0], [2.0], [1.0], [2.0], [1.0], [0.0]]))
    (_, y_train), _ = datasets.load(path=path)
    assert y_train.dtype == np.int64 and list(y_train) == [0, 2, 1, 2, 1, 0]


def test_npz_image_errors_echo_the_dtype_received(tmp_path):
    path = tmp_path / "wide.npz"
    write_npz(path, dtype="int64")
    with pytest.raises(ValueError, match=r"wide.npz x_train must hold pixel values in \[0, 1\]"
                                         r".*\(dtype int64\)"):
        datasets.load(path=path)


# ------------------------------------------------------------ image folders

def test_folder_counts_go_to_stderr(tmp_path, capsys):
    _write_image_folder(tmp_path / "pets", counts=(("cat", 6), ("dog", 4)))
    datasets.load(path=tmp_path / "pets", image_size=(6, 5))
    captured = capsys.readouterr()
    assert "10 images in 2 classes (cat 6, dog 4); 8 for training, 2 for test" in captured.err
    assert captured.out == ""  # keras's "Using 8 files for training." is not printed


def test_a_corrupt_image_is_named(tmp_path):
    folder = _write_image_folder(tmp_path / "pets")
    (folder / "dog" / "broken.png").write_bytes(b"not a png at all")
    with pytest.raises(ValueError, match=r"dog/broken.png is not a valid image.*"
                                         r"Received error: .*image"):
        datasets.load(path=folder, image_size=(6, 5))


def test_too_few_images_say_what_was_found(tmp_path):
    folder = _write_image_folder(tmp_path / "few", counts=(("a", 2), ("b", 1)))
    with pytest.raises(ValueError, match=r"too few images.*test_fraction=0.2.*3 image\(s\) "
                                         r"\(a 2, b 1\) give 3 for training and 0 for test"):
        datasets.load(path=folder)


def test_images_without_class_folders_say_what_was_found(tmp_path):
    folder = _write_image_folder(tmp_path / "flat", counts=(("tmp", 4),))
    for image in (folder / "tmp").iterdir():
        image.rename(folder / image.name)
    (folder / "tmp").rmdir()
    with pytest.raises(ValueError, match=r"no class sub-folders.*Received: 4 image\(s\) "
                                         "directly in the folder"):
        datasets.load(path=folder)


def test_an_unreadable_class_folder_is_refused(tmp_path, monkeypatch):
    folder = _write_image_folder(tmp_path / "pets")
    unreadable = str(folder / "dog")
    real_scandir = os.scandir

    def scandir(path="."):  # chmod cannot stop root, who runs these tests in CI
        if os.fspath(path) == unreadable:
            raise PermissionError(13, "Permission denied", unreadable)
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    with pytest.raises(PermissionError, match=r"Cannot read .*pets/dog, inside the class "
                                              r"folder .*Permission denied"):
        datasets.load(path=folder)


@pytest.mark.parametrize("kwargs, error, match", [
    ({"test_fraction": "0.2"}, TypeError, r"test_fraction must be a number. Received: test_fraction='0.2'"),
    ({"test_fraction": 1.0}, ValueError, r"test_fraction must be in \(0, 1\). Received: test_fraction=1.0"),
    ({"color_mode": "colour"}, ValueError, r"color_mode must be one of .*Received: color_mode='colour'"),
    ({"color_mode": 3}, TypeError, "color_mode must be a string"),
    ({"image_size": 28}, TypeError, r"image_size must be \(height, width\). Received: image_size=28"),
    ({"image_size": (28,)}, ValueError, r"image_size must be \(height, width\)"),
    ({"image_size": (28.0, 28)}, TypeError, "each entry of image_size must be a positive int"),
])
def test_folder_arguments_wrong_type_or_value(tmp_path, kwargs, error, match):
    folder = _write_image_folder(tmp_path / "pets")
    with pytest.raises(error, match=match):
        datasets.load(path=folder, **kwargs)


def test_a_bug_inside_keras_datasets_is_not_reported_as_a_failed_download(tmp_path, monkeypatch):
    def broken():
        raise AttributeError("'NoneType' object has no attribute 'read'")

    monkeypatch.setattr(datasets, "data_dirs", lambda: [])
    monkeypatch.setattr(keras.datasets.cifar10, "load_data", broken)
    with pytest.raises(AttributeError, match="NoneType"):
        datasets.load("cifar10")
