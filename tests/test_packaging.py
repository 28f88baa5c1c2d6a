"""keras_vae works after a normal (non-editable) `pip install` of its wheel, from any folder.

The wheel is built from a copy of the files setuptools reads (so no `build/`
folder lands in the clone), installed with `--target` into a temporary
folder and run with `PYTHONPATH` from an unrelated working folder; every
process checks that it imported the installed copy, not the clone.
"""

import os
import shutil
import subprocess
import sys
import zipfile

import pytest

from conftest import ROOT
from conftest import run_python

BUILD_FILES = ("setup.cfg", "pyproject.toml", "README.md", "LICENSE")


def _pip(*args, cwd):
    result = subprocess.run([sys.executable, "-m", "pip", *args, "--no-deps", "--no-index",
                             "--no-build-isolation", "--quiet"],
                            cwd=cwd, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """Builds the wheel and installs it; returns `(wheel, site folder)`."""
    tmp = tmp_path_factory.mktemp("wheel")
    source = tmp / "source"
    shutil.copytree(ROOT / "keras_vae", source / "keras_vae",
                    ignore=shutil.ignore_patterns("__pycache__"))
    for name in BUILD_FILES:
        shutil.copy(ROOT / name, source / name)
    _pip("wheel", "--wheel-dir", str(tmp / "dist"), ".", cwd=source)
    (wheel,) = (tmp / "dist").glob("keras_vae-*.whl")
    _pip("install", "--target", str(tmp / "site"), str(wheel), cwd=tmp)
    return wheel, tmp / "site"


def _offline_env(site, tmp_path):
    env = {key: value for key, value in os.environ.items()
           if key.lower() not in ("no_proxy", "keras_vae_data_dir")}
    unreachable = "http://127.0.0.1:9"  # the discard port: every download fails at once
    env.update({"PYTHONPATH": str(site), "KERAS_HOME": str(tmp_path / "keras_home"),
                "http_proxy": unreachable, "https_proxy": unreachable,
                "HTTP_PROXY": unreachable, "HTTPS_PROXY": unreachable})
    return env


@pytest.mark.slow
def test_the_wheel_ships_the_classifier_and_the_entry_point(installed):
    wheel, _ = installed
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        entry_points = archive.read("keras_vae-0.1.0.dist-info/entry_points.txt").decode()
    assert "keras_vae/resources/mnist_classifier.keras" in names
    assert {"keras_vae/resources/pretrained/registry.json",
            "keras_vae/resources/pretrained/README.md"} <= names
    assert not any(name.startswith(("data/", "tests/")) for name in names)
    assert "keras-vae = keras_vae.cli:main" in entry_points
    # The licence and the model cards travel with the wheel, and its metadata says so.
    assert {"keras_vae/resources/pretrained/cards/mnist-best.md",
            "keras_vae/resources/pretrained/cards/mnist-default.md"} <= names
    assert any(name.startswith("keras_vae-0.1.0.dist-info/") and name.endswith("LICENSE")
               for name in names), sorted(n for n in names if "dist-info" in n)
    with zipfile.ZipFile(wheel) as archive:
        metadata = archive.read("keras_vae-0.1.0.dist-info/METADATA").decode()
    assert "Apache-2.0" in metadata and "Author: The keras_vae authors" in metadata
    assert "Classifier: Programming Language :: Python :: 3.11" in metadata
    assert "Provides-Extra: app" in metadata and "Provides-Extra: dev" in metadata


def test_the_extras_hold_only_what_they_need():
    """Test tools (playwright, pytest, ruff) are in dev, never in a user's extra."""
    import configparser

    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg")
    extras = {name: {line.split(">")[0].split("=")[0].strip() for line in value.splitlines()
                     if line.strip()}
              for name, value in config["options.extras_require"].items()}
    assert extras["app"] == {"gradio", "gradio_client"}
    assert extras["onnx"] == {"tf2onnx", "onnxruntime"}
    assert {"pytest", "ruff", "playwright"} <= extras["dev"]
    # The suite exercises every export format and the explorer: dev holds both extras.
    assert extras["app"] | extras["onnx"] <= extras["dev"]
    assert (ROOT / "LICENSE").read_text().lstrip().startswith("Apache License")


@pytest.mark.slow
def test_installed_package_loads_data_and_evaluates_from_another_folder(installed, tmp_path):
    _, site = installed
    work = tmp_path / "work"
    (work / "mnist" / "digits").mkdir(parents=True)  # a folder named like the dataset
    env = _offline_env(site, tmp_path)
    result = run_python(f"""
        import os
        import keras_vae
        from keras_vae import datasets, evaluation

        assert keras_vae.__file__.startswith({str(site)!r}), keras_vae.__file__
        assert str(evaluation.MNIST_CLASSIFIER_PATH).startswith({str(site)!r})
        assert evaluation.MNIST_CLASSIFIER_PATH.is_file()
        assert datasets.data_dirs() == [], datasets.data_dirs()  # no <site>/../data
        try:
            datasets.load("mnist")  # no copy, no network, and not the ./mnist folder
        except OSError as error:
            print("OFFLINE:", error)
        else:
            raise AssertionError("loaded MNIST without a copy or a network")
        os.environ[datasets.DATA_DIR_ENV] = {str(ROOT / "data")!r}
        (x_train, _), (x_test, _) = datasets.load("mnist")
        assert x_train.shape == (60000, 28, 28, 1) and x_test.shape == (10000, 28, 28, 1)
        vae = keras_vae.build_vae(latent_dim=2, filters=(4,), hidden_units=8, seed=0)
        vae.save("model.keras")
    """, cwd=work, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    (offline,) = [line for line in result.stdout.splitlines() if line.startswith("OFFLINE:")]
    assert "download through keras.datasets failed" in offline
    assert "set KERAS_VAE_DATA_DIR to a folder holding mnist.npz" in offline

    env["KERAS_VAE_DATA_DIR"] = str(ROOT / "data")
    command = [sys.executable, "-c",
               "import runpy, keras_vae; "
               f"assert keras_vae.__file__.startswith({str(site)!r}), keras_vae.__file__; "
               "runpy.run_module('keras_vae', run_name='__main__')",
               "evaluate", "model.keras", "--limit", "20", "--num-samples", "2"]
    result = subprocess.run(command, cwd=work, env=env, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "MNIST-classifier FID" in result.stdout  # the default FID, by the shipped classifier


@pytest.mark.slow
def test_the_installed_package_reads_its_pretrained_registry(installed, tmp_path):
    _, site = installed
    result = run_python(f"""
        import keras_vae
        from keras_vae import pretrained

        assert keras_vae.__file__.startswith({str(site)!r}), keras_vae.__file__
        assert str(pretrained.REGISTRY_PATH).startswith({str(site)!r})
        for name in pretrained.names():  # every shipped file is in the wheel, unchanged
            pretrained.load(name)
        print("NAMES", pretrained.names())
    """, cwd=tmp_path, env=_offline_env(site, tmp_path))
    assert result.returncode == 0, result.stderr[-3000:]
    assert "NAMES" in result.stdout
