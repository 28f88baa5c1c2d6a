"""`keras-vae explore`: the Explorer's panels, the app through gradio_client and a browser."""

import importlib.util
import json
import os
import pathlib
import re
import shutil
import signal
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

import keras_vae
from conftest import ROOT
from keras_vae import cli
from keras_vae import models
from keras_vae.explorer import MAP_PIXELS
from keras_vae.explorer import Explorer
from keras_vae.explorer import InputProblem

needs_gradio = pytest.mark.skipif(
    importlib.util.find_spec("gradio") is None or importlib.util.find_spec("gradio_client")
    is None, reason="needs the app extra: pip install 'keras_vae[app]'")

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def small_vae(latent_dim=2):
    return keras_vae.build_vae(latent_dim=latent_dim, filters=(4, 8), hidden_units=16,
                               seed=0)


@pytest.fixture(scope="module")
def data(mnist_small):
    (x_train, y_train), (x_test, y_test) = mnist_small
    return (x_train[:200], y_train[:200]), (x_test[:100], y_test[:100])


@pytest.fixture(scope="module")
def explorer(data):
    return Explorer(small_vae(), *data, num_samples=8)


# ------------------------------------------------------------ the Explorer


def test_sliders_follow_the_principal_directions_of_the_training_codes(data):
    model = small_vae(latent_dim=8)
    explorer = Explorer(model, *data, max_sliders=3, num_samples=4)
    codes = model.latent_codes(data[0][0]).astype("float64")
    variances, vectors = np.linalg.eigh(np.cov(codes, rowvar=False))
    top = vectors[:, ::-1][:, :3].T
    assert explorer.num_sliders == 3
    np.testing.assert_allclose(np.abs(explorer.slider_directions @ top.T), np.eye(3), atol=1e-6)
    np.testing.assert_allclose(explorer.slider_scales, np.sqrt(variances[::-1][:3]), atol=2e-6)
    code = explorer.slider_code([1.0, 0.0, -2.0])
    expected = (codes.mean(0) + explorer.slider_scales[0] * explorer.slider_directions[0]
                - 2 * explorer.slider_scales[2] * explorer.slider_directions[2])
    np.testing.assert_allclose(code, expected, atol=1e-9)
    assert explorer.slider_names[0].startswith("principal direction 1")


def test_small_latents_use_raw_dimensions_and_decode_them(explorer):
    assert explorer.slider_names == ["z[0]", "z[1]"]
    image = explorer.decode_sliders([0.5, -1.0])
    expected = explorer.model.decode(np.array([[0.5, -1.0]], "float32"))[0, ..., 0]
    np.testing.assert_array_equal(image, np.round(expected * 255).astype("uint8"))
    with pytest.raises(InputProblem, match="2 slider values"):
        explorer.decode_sliders([0.5])


def test_a_click_on_the_map_decodes_the_code_under_it(explorer):
    picture = explorer.map_image()
    assert picture.shape == (MAP_PIXELS, MAP_PIXELS, 3)
    x0, x1, y0, y1 = explorer.map_extent
    u, v = explorer.map_point(0, 0)  # top-left pixel: smallest u, largest v
    assert x0 < u < x0 + (x1 - x0) / 100 and y1 - (y1 - y0) / 100 < v < y1
    u, v = explorer.map_point(MAP_PIXELS - 1, MAP_PIXELS - 1)
    assert x1 - (x1 - x0) / 100 < u < x1 and y0 < v < y0 + (y1 - y0) / 100
    expected = explorer.model.decode(np.array([[u, v]], "float32"))[0, ..., 0]
    np.testing.assert_array_equal(explorer.decode_point(u, v),
                                  np.round(expected * 255).astype("uint8"))


def test_interpolation_runs_between_two_test_images(explorer):
    strip = explorer.interpolate(3, 7, steps=5)
    assert strip.shape == (28, 28 * 7)
    np.testing.assert_array_equal(strip[:, :28], np.round(explorer.x_test[3, ..., 0] * 255))
    codes = explorer.model.latent_codes(explorer.x_test[[3, 7]])
    middle = explorer.model.decode(codes.mean(0, keepdims=True))[0, ..., 0]
    np.testing.assert_allclose(strip[:, 28 * 3:28 * 4] / 255, middle, atol=1 / 255)
    with pytest.raises(InputProblem, match=r"in \[0, 100\)"):
        explorer.interpolate(0, 100)


def test_drawings_are_prepared_like_the_training_images(explorer):
    light = np.full((56, 56, 3), 255, "uint8")
    light[10:40, 20:30] = 0  # a dark stroke on white, twice the model's size
    x, notes = explorer.prepare(light)
    assert x.shape == (1, 28, 28, 1)
    assert x[0, 12, 12, 0] > 0.9 and x[0, 0, 0, 0] < 0.01  # inverted: white on black
    assert notes == ["inverted (light background) to match the training images",
                     "resized from 56x56 to 28x28"]
    stroke = np.zeros((28, 28, 4), "uint8")
    stroke[5:20, 10:14] = 255  # white ink on a transparent canvas
    x, notes = explorer.prepare({"composite": stroke, "layers": []})
    assert notes == [] and x[0, 10, 12, 0] == 1.0 and x[0, 0, 0, 0] == 0.0
    for blank in (None, {"composite": None}, np.zeros((28, 28), "uint8")):
        with pytest.raises(InputProblem, match="blank|No image"):
            explorer.prepare(blank)


def test_the_score_ranks_an_image_among_the_training_images(explorer, data):
    reconstruction, text = explorer.score(data[0][0][0])
    assert reconstruction.shape == (28, 28)
    score = float(re.search(r"negative ELBO: ([\d.]+) nats", text).group(1))
    expected = keras_vae.export.scores(explorer.model, data[0][0][:1], num_samples=8)[0]
    assert score == pytest.approx(expected, abs=0.01)
    rank = np.mean(explorer.reference_scores < expected)
    assert f"higher than {rank:.0%} of 200 training images" in text


def test_a_conditional_model_decodes_the_class_picked(data):
    model = models.build_conditional_vae(latent_dim=2, num_classes=10, filters=(4, 8),
                                         hidden_units=16, seed=0)
    explorer = Explorer(model, *data, num_samples=4)
    assert not np.array_equal(explorer.sample_grid(0, 1), explorer.sample_grid(0, 2))
    np.testing.assert_array_equal(explorer.sample_grid(0, 3), explorer.sample_grid(0, 3))
    with pytest.raises(InputProblem, match=r"class must be in \[0, 10\)"):
        explorer.decode_sliders([0.0, 0.0], 10)


def test_a_model_without_an_encoder_offers_sliders_and_samples(data):
    explorer = Explorer(models.build_dcgan(latent_dim=3, filters=(4, 8), seed=0), *data)
    assert not explorer.encodes and explorer.num_sliders == 3
    assert explorer.sample_grid(1).shape == (112, 112)


# ------------------------------------------------------------------ the app


@pytest.fixture(scope="module")
def served(explorer):
    if importlib.util.find_spec("gradio") is None:
        pytest.skip("needs the app extra: pip install 'keras_vae[app]'")
    from keras_vae import app as web_app

    app = web_app.build_app(explorer)
    url = web_app.launch(app)
    yield url
    app.close()


def _image(path):
    return np.asarray(Image.open(path))


@needs_gradio
def test_every_endpoint_returns_an_image_of_the_right_shape(served, tmp_path):
    from gradio_client import Client
    from gradio_client import handle_file

    client = Client(served, verbose=False, download_files=str(tmp_path))
    assert _image(client.predict(0.5, -1.0, api_name="/decode_sliders")).shape == (28, 28)
    assert _image(client.predict(0.1, 0.2, api_name="/decode_point")).shape == (28, 28)
    assert _image(client.predict(0, 3, 5, api_name="/interpolate")).shape == (28, 28 * 7)
    grid = _image(client.predict(7, api_name="/sample_grid"))
    assert grid.shape == (112, 112)
    np.testing.assert_array_equal(_image(client.predict(7, api_name="/sample_grid")), grid)
    assert not np.array_equal(_image(client.predict(8, api_name="/sample_grid")), grid)
    upload = tmp_path / "digit.png"
    Image.fromarray(np.full((40, 40), 255, "uint8")).save(tmp_path / "blank.png")
    digit = np.zeros((40, 40), "uint8")
    digit[8:32, 16:24] = 255
    Image.fromarray(digit).save(upload)
    reconstruction, text = client.predict(handle_file(str(upload)), api_name="/score_upload")
    assert _image(reconstruction).shape == (28, 28)
    assert "negative ELBO" in text and "resized from 40x40 to 28x28" in text
    _, text = client.predict(handle_file(str(tmp_path / "blank.png")),
                             api_name="/score_upload")
    assert "blank" in text
    drawing = {"background": None, "layers": [], "composite": handle_file(str(upload))}
    reconstruction, text = client.predict(drawing, api_name="/score_drawing")
    assert _image(reconstruction).shape == (28, 28) and "negative ELBO" in text
    # The server survived the bad input.
    assert _image(client.predict(0.0, 0.0, api_name="/decode_sliders")).shape == (28, 28)


@needs_gradio
@pytest.mark.skipif(CHROMIUM is None, reason="no Chromium installed (Debian package "
                    "`chromium`; .ci/run installs it)")
def test_a_browser_moves_a_slider_and_sees_the_image_change(served, tmp_path):
    playwright = pytest.importorskip("playwright.sync_api")
    with playwright.sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            page = browser.new_page()
            page.goto(served)
            image = page.locator("#slider-image img")
            image.wait_for(timeout=60_000)
            before = image.get_attribute("src")
            number = page.locator("#slider-0 input[type=number]")
            number.fill("2.5")
            number.press("Enter")
            page.wait_for_function(
                "(before) => { const image = document.querySelector('#slider-image img');"
                " return image && image.src !== before; }", arg=before, timeout=30_000)
            page.screenshot(path=str(tmp_path / "explore.png"), full_page=True)
        finally:
            browser.close()
    assert (tmp_path / "explore.png").stat().st_size > 0


# -------------------------------------------------------------- the command


@needs_gradio
def test_the_command_serves_until_interrupted(tmp_path):
    from gradio_client import Client

    path = tmp_path / "model.keras"
    small_vae().save(path)
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen(
        [sys.executable, "-m", "keras_vae", "explore", str(path), "--limit", "100",
         "--port", "0"], cwd=tmp_path, env=env, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True)
    try:
        url = None
        for line in process.stderr:
            match = re.search(r"serving .* at (http://127\.0\.0\.1:\d+/)", line)
            if match:
                url = match.group(1)
                break
        assert url is not None, "no URL printed"
        client = Client(url, verbose=False, download_files=str(tmp_path))
        assert _image(client.predict(1, api_name="/sample_grid")).shape == (112, 112)
        process.send_signal(signal.SIGINT)
        out, _ = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0
    assert json.loads(out)["url"] == url


def test_the_command_refuses_a_model_that_is_not_a_keras_vae_model(tmp_path, capsys):
    import keras

    other = tmp_path / "other.keras"
    keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)]).save(other)
    assert cli.main(["explore", str(other)]) == 2
    assert "not a keras_vae model" in capsys.readouterr().err


def test_without_gradio_the_command_names_the_extra(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "gradio", None)  # makes `import gradio` fail
    assert cli.main(["explore", str(pathlib.Path(tmp_path) / "model.keras")]) == 2
    error = capsys.readouterr().err.strip()
    assert error.count("\n") == 0 and "keras_vae[app]" in error
