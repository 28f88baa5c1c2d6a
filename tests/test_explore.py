"""`keras-vae explore`: the Explorer's panels, the app through gradio_client and a browser."""

import csv
import importlib.util
import io
import json
import os
import pathlib
import re
import shutil
import signal
import subprocess
import sys

import keras
import numpy as np
import pytest
from PIL import Image

import keras_vae
from conftest import ROOT
from keras_vae import cli
from keras_vae import explorer as explorer_module
from keras_vae import models
from keras_vae.explorer import MAP_HEIGHT
from keras_vae.explorer import MAP_WIDTH
from keras_vae.explorer import SLIDER_RANGE
from keras_vae.explorer import Explorer
from keras_vae.explorer import InputProblem
from keras_vae.explorer import nearest_neighbours
from keras_vae.explorer import slerp
from keras_vae.validation import NonFiniteOutputError

needs_gradio = pytest.mark.skipif(
    importlib.util.find_spec("gradio") is None or importlib.util.find_spec("gradio_client")
    is None, reason="needs the app extra: pip install 'keras_vae[app]'")

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def small_vae(latent_dim=2):
    keras.utils.set_random_seed(0)  # the same initial weights whichever tests ran before
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


def _pixel_of(figure, point):
    """The (column, row) of the map image where matplotlib draws `point`."""
    x, y = figure.axes[0].transData.transform(point)
    return x, MAP_HEIGHT - y


def test_a_click_on_the_map_decodes_the_code_under_it(explorer):
    picture = explorer.map_image()
    assert picture.shape == (MAP_HEIGHT, MAP_WIDTH, 3)
    figure = explorer.map_figure()
    x0, x1, y0, y1 = explorer.map_extent
    # The pixel matplotlib draws a corner of the axes at converts back to that corner.
    for corner in ((x0, y1), (x1, y0), (0.3 * x0 + 0.7 * x1, 0.6 * y0 + 0.4 * y1)):
        column, row = _pixel_of(figure, corner)
        u, v = explorer.map_point(column - 0.5, row - 0.5)
        assert abs(u - corner[0]) < (x1 - x0) / 300 and abs(v - corner[1]) < (y1 - y0) / 300
    with pytest.raises(InputProblem, match="inside the map's axes"):
        explorer.map_point(0, 0)  # the image's corner is outside the axes
    u, v = explorer.map_point(200, 200)
    expected = explorer.model.decode(np.array([[u, v]], "float32"))[0, ..., 0]
    np.testing.assert_array_equal(explorer.decode_point(u, v),
                                  np.round(expected * 255).astype("uint8"))


def test_the_map_has_a_legend_per_label_and_named_axes(explorer, data):
    axis = explorer.map_figure().axes[0]
    legend = [text.get_text() for text in axis.get_legend().get_texts()]
    assert legend == [str(label) for label in np.unique(data[1][1])]
    assert (axis.get_xlabel(), axis.get_ylabel()) == ("z[0]", "z[1]")
    wide = Explorer(small_vae(latent_dim=8), data[0], (data[1][0], None), num_samples=4)
    axis = wide.map_figure().axes[0]
    assert axis.get_legend() is None  # no labels, one colour
    assert re.fullmatch(r"principal direction 1 \(\d+% of the variance\)", axis.get_xlabel())


def test_a_click_selects_the_test_image_drawn_under_it(explorer):
    figure = explorer.map_figure()
    points = explorer.test_points
    for index in (0, 17, 42, 99):
        column, row = _pixel_of(figure, points[index])
        picked = explorer.nearest_test_image(column, row)
        # The point picked is drawn where the click was (duplicates allowed).
        assert np.abs(points[picked] - points[index]).max() < 1e-9 or picked == index
    image, reconstruction, text = explorer.test_image(17)
    np.testing.assert_array_equal(image, np.round(explorer.x_test[17, ..., 0] * 255))
    expected = explorer.model.reconstruct(explorer.x_test[17:18])[0, ..., 0]
    np.testing.assert_array_equal(reconstruction, np.round(expected * 255).astype("uint8"))
    assert text.startswith(f"Test image 17, label {explorer.y_test[17]}")


def test_interpolation_runs_between_two_test_images(explorer):
    strip = explorer.interpolate(3, 7, steps=5)
    assert strip.shape == (28, 28 * 7)
    np.testing.assert_array_equal(strip[:, :28], np.round(explorer.x_test[3, ..., 0] * 255))
    codes = explorer.model.latent_codes(explorer.x_test[[3, 7]])
    middle = explorer.model.decode(codes.mean(0, keepdims=True))[0, ..., 0]
    np.testing.assert_allclose(strip[:, 28 * 3:28 * 4] / 255, middle, atol=1 / 255)
    with pytest.raises(InputProblem, match=r"in \[0, 100\)"):
        explorer.interpolate(0, 100)
    with pytest.raises(InputProblem, match="linear"):
        explorer.interpolate(0, 1, method="cubic")


def test_spherical_interpolation_decodes_the_arc_between_the_codes(explorer):
    strip = explorer.interpolate(3, 7, steps=5, method="slerp")
    codes = explorer.model.latent_codes(explorer.x_test[[3, 7]]).astype("float64")
    path = slerp(codes[0], codes[1], np.linspace(0, 1, 5))
    middle = explorer.model.decode(path[2:3].astype("float32"))[0, ..., 0]
    np.testing.assert_allclose(strip[:, 28 * 3:28 * 4] / 255, middle, atol=1 / 255)
    linear = explorer.interpolate(3, 7, steps=5)
    assert not np.array_equal(strip, linear)  # the arc is not the chord


def _slerp_reference(a, b, weights):
    """Unit-vector slerp as a rotation: cos(t w) a + sin(t w) u, u the unit normal to a in the plane."""
    omega = np.arccos(np.clip(a @ b, -1, 1))
    normal = b - (a @ b) * a
    normal /= np.linalg.norm(normal)
    return np.cos(np.outer(weights, omega)) * a + np.sin(np.outer(weights, omega)) * normal


def test_slerp_is_the_rotation_between_unit_ends():
    rng = np.random.default_rng(0)
    weights = np.linspace(0.0, 1.0, 11)
    for dim in (2, 5, 64):
        a, b = rng.standard_normal((2, dim))
        a /= np.linalg.norm(a)
        b /= np.linalg.norm(b)
        path = slerp(a, b, weights)
        np.testing.assert_allclose(path, _slerp_reference(a, b, weights), atol=1e-12)
        np.testing.assert_allclose(np.linalg.norm(path, axis=1), 1.0, atol=1e-12)
        np.testing.assert_array_equal(path[0], a)  # the ends, exactly
        np.testing.assert_array_equal(path[-1], b)
        # Constant angular speed: equal angles between successive codes.
        steps = np.arccos(np.clip(np.sum(path[1:] * path[:-1], axis=1), -1, 1))
        np.testing.assert_allclose(steps, steps[0], atol=1e-9)
    scaled = slerp(3.0 * a, 0.5 * b, weights)  # other norms: the ends still exact
    np.testing.assert_array_equal(scaled[0], 3.0 * a)
    np.testing.assert_array_equal(scaled[-1], 0.5 * b)
    np.testing.assert_allclose(slerp(a, 2 * a, weights), (1 + weights)[:, None] * a,
                               atol=1e-12)  # one direction: the straight line
    with pytest.raises(ValueError, match="opposite directions"):
        slerp(a, -a, weights)
    with pytest.raises(ValueError, match="zero code"):
        slerp(a, 0 * a, weights)


def test_nearest_neighbours_agree_with_a_brute_force_search():
    from scipy.spatial.distance import cdist

    rng = np.random.default_rng(1)
    codes = rng.standard_normal((300, 5))
    for query in rng.standard_normal((5, 5)):
        indices, distances = nearest_neighbours(codes, query, 7)
        expected = np.argsort(cdist(query[None], codes)[0])[:7]
        np.testing.assert_array_equal(indices, expected)
        np.testing.assert_allclose(distances, cdist(query[None], codes[expected])[0],
                                   rtol=1e-12)
    indices, distances = nearest_neighbours(codes, codes[12], 1)
    assert indices.tolist() == [12] and distances[0] == 0.0
    with pytest.raises(ValueError, match=r"k must be in \[1, 300\]"):
        nearest_neighbours(codes, codes[0], 301)


def test_the_neighbours_shown_are_the_nearest_training_codes(explorer, data):
    x_train = data[0][0]
    codes = explorer.model.latent_codes(x_train).astype("float64")
    query = explorer.model.latent_codes(explorer.x_test[5:6]).astype("float64")[0]
    expected = np.argsort(np.linalg.norm(codes - query, axis=1), kind="stable")[:4]
    strip, text = explorer.test_neighbours(5, 4)
    tiles = np.round(np.concatenate(list(x_train[expected, ..., 0]), axis=1) * 255)
    np.testing.assert_array_equal(strip, tiles)
    assert text.index(f" {expected[0]} (label") < text.index(f" {expected[1]} (label")
    values, offset, _, _ = explorer.sliders_from_test(5)
    strip_from_sliders, _ = explorer.slider_neighbours(values, 4, offset=offset)
    np.testing.assert_array_equal(strip_from_sliders, strip)
    with pytest.raises(InputProblem, match=r"neighbours must be in \[1, 16\]"):
        explorer.test_neighbours(5, 0)


def test_sliders_start_from_the_code_of_a_test_or_uploaded_image(data):
    model = small_vae(latent_dim=8)
    explorer = Explorer(model, *data, max_sliders=3, num_samples=4)
    code = model.latent_codes(explorer.x_test).astype("float64")[9]
    values, offset, decoded, text = explorer.sliders_from_test(9)
    expected_values = ((code - explorer.slider_center) @ explorer.slider_directions.T
                       / explorer.slider_scales)
    np.testing.assert_allclose(values, expected_values, atol=1e-9)
    np.testing.assert_allclose(explorer.slider_code(values, offset), code, atol=1e-9)
    expected = model.decode(code[None].astype("float32"))[0, ..., 0]
    np.testing.assert_array_equal(decoded, np.round(expected * 255).astype("uint8"))
    assert "test image 9" in text and "held fixed" in text  # 5 of 8 directions hidden
    # A code far along a slider direction: the slider stops at its range, the code is kept.
    far = explorer.slider_center + 10 * SLIDER_RANGE * explorer.slider_scales[0] \
        * explorer.slider_directions[0]
    values, offset = explorer.slider_start(far)
    assert values[0] == SLIDER_RANGE
    np.testing.assert_allclose(explorer.slider_code(values, offset), far, atol=1e-9)
    picture = (explorer.x_test[9, ..., 0] * 255).astype("uint8")
    values_up, offset_up, _, text = explorer.sliders_from_image(picture)
    np.testing.assert_allclose(explorer.slider_code(values_up, offset_up), code, atol=1e-3)
    assert "uploaded image" in text


def test_t_sne_and_umap_are_offered_only_where_installed(explorer, monkeypatch):
    monkeypatch.setitem(explorer_module.PROJECTIONS, "UMAP", "no_such_package_for_umap")
    assert "UMAP" not in explorer_module.available_projections()
    with pytest.raises(InputProblem, match="UMAP needs the no_such_package_for_umap package"):
        explorer.projection("UMAP")
    with pytest.raises(InputProblem, match="projection must be one of"):
        explorer.projection("isomap")


@pytest.mark.parametrize("name, module", [("t-SNE", "sklearn"), ("UMAP", "umap")])
def test_a_nonlinear_map_embeds_the_test_codes_and_a_click_picks_a_point(data, name, module):
    if importlib.util.find_spec(module) is None:
        pytest.skip(f"{name} needs the optional {module} package")
    explorer = Explorer(small_vae(latent_dim=8), *data, num_samples=4)
    points, _, axis_names = explorer.projection(name)
    assert points.shape == (100, 2) and axis_names == (f"{name} 1", f"{name} 2")
    assert np.all(np.isfinite(points)) and points.std(axis=0).min() > 0
    figure = explorer.map_figure(name)
    column, row = _pixel_of(figure, points[30])
    assert np.abs(points[explorer.nearest_test_image(column, row, name)] - points[30]).max() \
        < 1e-9
    assert explorer.map_image(name, selected=30).shape == (MAP_HEIGHT, MAP_WIDTH, 3)


def test_the_codes_download_as_csv(explorer, data):
    rows = list(csv.reader(io.StringIO(explorer.codes_csv())))
    assert rows[0] == ["index", "label", "split", "z0", "z1"]
    assert len(rows) == 1 + 200 + 100
    (x_train, y_train), (x_test, y_test) = data
    assert rows[1][:3] == ["0", str(y_train[0]), "train"]
    assert rows[201][:3] == ["0", str(y_test[0]), "test"]
    codes = np.array([[float(value) for value in row[3:]] for row in rows[1:]])
    expected = explorer.model.latent_codes(np.concatenate([x_train, x_test]))
    np.testing.assert_allclose(codes, expected, rtol=1e-6, atol=1e-9)


def test_a_model_that_computes_nan_is_refused_in_the_page(explorer):
    weight = explorer.model.decoder.trainable_weights[0]
    saved = weight.numpy()
    try:
        weight.assign(np.full_like(saved, np.nan))
        with pytest.raises(NonFiniteOutputError, match="decoded image .* not finite"):
            explorer.decode_sliders([0.0, 0.0])
    finally:
        weight.assign(saved)


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


def test_the_score_ranks_an_image_among_the_held_out_test_images(explorer, data):
    reconstruction, text = explorer.score(data[0][0][0])
    assert reconstruction.shape == (28, 28)
    score = float(re.search(r"negative ELBO: ([\d.]+) nats", text).group(1))
    expected = keras_vae.export.scores(explorer.model, data[0][0][:1], num_samples=8)[0]
    assert score == pytest.approx(expected, abs=0.01)
    # The reference is the 100 test images' scores (not seen in training), not the 200 training
    # images'.
    np.testing.assert_allclose(
        explorer.reference_scores,
        np.sort(keras_vae.export.scores(explorer.model, data[1][0], num_samples=8)), rtol=1e-5)
    rank = np.mean(explorer.reference_scores < expected)
    assert f"higher than {rank:.0%} of 100 test images" in text


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
    linear = _image(client.predict(0, 3, 5, "linear", api_name="/interpolate"))
    assert linear.shape == (28, 28 * 7)
    spherical = _image(client.predict(0, 3, 5, "slerp", api_name="/interpolate"))
    assert spherical.shape == (28, 28 * 7) and not np.array_equal(spherical, linear)
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
def test_the_map_sliders_neighbours_and_codes_endpoints(served, explorer, tmp_path):
    from gradio_client import Client
    from gradio_client import handle_file

    client = Client(served, verbose=False, download_files=str(tmp_path))
    *values, decoded, text = client.predict(3, api_name="/sliders_from_test")
    expected_values, offset = explorer.slider_start(explorer.test_codes[3])
    np.testing.assert_allclose(values, expected_values, atol=1e-9)
    np.testing.assert_array_equal(_image(decoded),
                                  explorer.decode_sliders(expected_values, None, offset))
    assert text.startswith("The sliders start from the code of test image 3")
    digit = (explorer.x_test[4, ..., 0] * 255).astype("uint8")
    Image.fromarray(digit).save(tmp_path / "four.png")
    *values, decoded, text = client.predict(handle_file(str(tmp_path / "four.png")),
                                            api_name="/sliders_from_upload")
    np.testing.assert_allclose(values, explorer.sliders_from_image(digit)[0], atol=1e-9)
    assert "uploaded image" in text
    strip, text = client.predict(0.5, -1.0, 4, api_name="/slider_neighbours")
    np.testing.assert_array_equal(_image(strip),
                                  explorer.slider_neighbours([0.5, -1.0], 4)[0])
    image, reconstruction, text, neighbours, neighbours_text = client.predict(
        17, 4, api_name="/select_test_image")
    np.testing.assert_array_equal(_image(image), explorer.test_image(17)[0])
    np.testing.assert_array_equal(_image(reconstruction), explorer.test_image(17)[1])
    np.testing.assert_array_equal(_image(neighbours), explorer.test_neighbours(17, 4)[0])
    assert text.startswith("Test image 17") and neighbours_text.startswith("Nearest training")
    picture = _image(client.predict("PCA", 17, 1, 2, api_name="/map"))
    assert picture.shape[:2] == (MAP_HEIGHT, MAP_WIDTH)
    np.testing.assert_array_equal(picture[..., :3], explorer.map_image("PCA", 17, 1, 2))
    rows = list(csv.reader(open(client.predict(api_name="/download_codes"), encoding="utf-8")))
    assert rows == list(csv.reader(io.StringIO(explorer.codes_csv())))
    _, _, text, _, _ = client.predict(100, 4, api_name="/select_test_image")
    assert "in [0, 100)" in text  # a message in the page, the server keeps running


@needs_gradio
def test_a_model_that_outputs_nan_gets_an_error_in_the_page(served, explorer):
    from gradio_client import Client
    from gradio_client.exceptions import AppError

    client = Client(served, verbose=False)
    weight = explorer.model.decoder.trainable_weights[0]
    saved = weight.numpy()
    try:
        weight.assign(np.full_like(saved, np.nan))
        with pytest.raises(AppError, match="decoded image .* not finite"):
            client.predict(0.0, 0.0, api_name="/decode_sliders")
    finally:
        weight.assign(saved)
    assert _image(client.predict(0.0, 0.0, api_name="/decode_sliders")).shape == (28, 28)


def small_vqvae():
    return models.build_vqvae((28, 28, 1), num_embeddings=8, embedding_dim=4, filters=(4, 8),
                              prior_filters=8, prior_blocks=1, seed=0)


@pytest.fixture(scope="module")
def vq_explorer(data):
    (x_train, y_train), (x_test, y_test) = data
    model = small_vqvae()
    model.compile(optimizer="adam")
    model.fit(x_train, epochs=1, batch_size=50, verbose=0)  # a few codes in use
    return Explorer(model, (x_train[:64], y_train[:64]), (x_test[:32], y_test[:32]),
                    num_samples=4)


def test_a_vq_vae_code_map_is_shown_edited_and_re_decoded(vq_explorer):
    model = vq_explorer.model
    image, codes, decoded, text = vq_explorer.code_map(3)
    np.testing.assert_array_equal(codes, model.encode(vq_explorer.x_test[3:4])[0][0])
    np.testing.assert_array_equal(decoded, np.round(model.decode(codes[None])[0, ..., 0] * 255))
    assert "7x7 map of indices into 8 codebook vectors" in text
    new = (codes[2, 3] + 1) % 8
    edited, redecoded, text = vq_explorer.edit_code(codes, 2, 3, new)
    changed = np.argwhere(edited != codes)
    assert changed.tolist() == [[2, 3]] and edited[2, 3] == new
    expected = model.decode(edited[None])[0, ..., 0]
    np.testing.assert_array_equal(redecoded, np.round(expected * 255).astype("uint8"))
    assert not np.array_equal(redecoded, decoded)  # another codebook vector, another image
    assert text == f"Code at row 2, column 3 changed from {codes[2, 3]} to {new}."
    for row, column, code, message in ((7, 0, 0, r"row must be an int in \[0, 7\)"),
                                       (0, 0, 8, r"code must be an int in \[0, 8\)"),
                                       (0, 0, 1.5, "code must be an int")):
        with pytest.raises(InputProblem, match=message):
            vq_explorer.edit_code(codes, row, column, code)
    with pytest.raises(InputProblem, match="not one the model decodes"):
        vq_explorer.decode_code_map(codes[:3])
    picture = (vq_explorer.x_test[3, ..., 0] * 255).astype("uint8")
    _, uploaded_codes, _, _ = vq_explorer.code_map_of_image(picture)
    np.testing.assert_array_equal(uploaded_codes, codes)
    rows = list(csv.reader(io.StringIO(vq_explorer.codes_csv())))
    assert rows[0][:5] == ["index", "label", "split", "code_0_0", "code_0_1"]
    assert rows[65 + 3][3:] == [str(c) for c in codes.ravel()]  # header, 64 train, test 3


@needs_gradio
def test_the_vq_vae_app_serves_its_code_map(vq_explorer, tmp_path):
    from gradio_client import Client

    from keras_vae import app as web_app

    app = web_app.build_app(vq_explorer)
    url = web_app.launch(app)
    try:
        client = Client(url, verbose=False, download_files=str(tmp_path))
        endpoints = client.view_api(print_info=False, return_format="dict")["named_endpoints"]
        assert {"/code_map", "/code_map_upload", "/edit_code", "/decode_code_map",
                "/download_codes", "/sample_grid", "/score_upload"} <= set(endpoints)
        assert not {"/decode_sliders", "/map", "/interpolate"} & set(endpoints)
        image, grid, decoded, text = client.predict(3, api_name="/code_map")
        codes = np.array(grid["data"])
        np.testing.assert_array_equal(codes, vq_explorer.code_map(3)[1])
        np.testing.assert_array_equal(_image(decoded), vq_explorer.code_map(3)[2])
        new = int((codes[4, 1] + 1) % 8)
        grid, decoded, text = client.predict(grid, 4, 1, new, api_name="/edit_code")
        edited = codes.copy()
        edited[4, 1] = new
        np.testing.assert_array_equal(np.array(grid["data"]), edited)
        np.testing.assert_array_equal(_image(decoded), vq_explorer.decode_code_map(edited))
        np.testing.assert_array_equal(
            _image(client.predict(grid, api_name="/decode_code_map")),
            vq_explorer.decode_code_map(edited))
        _, _, text = client.predict(grid, 4, 1, 99, api_name="/edit_code")
        assert "code must be an int in [0, 8)" in text
        rows = list(csv.reader(open(client.predict(api_name="/download_codes"),
                                    encoding="utf-8")))
        assert len(rows) == 1 + 64 + 32 and rows[1][2] == "train"
    finally:
        app.close()


@needs_gradio
@pytest.mark.skipif(CHROMIUM is None, reason="no Chromium installed (Debian package "
                    "`chromium`; .ci/run installs it)")
def test_a_browser_moves_a_slider_and_clicks_a_point_of_the_map(served, explorer, tmp_path):
    playwright = pytest.importorskip("playwright.sync_api")
    # The test image drawn farthest from every other one: a click on it picks it alone.
    figure = explorer.map_figure()
    pixels = np.array([_pixel_of(figure, point) for point in explorer.test_points])
    gaps = np.linalg.norm(pixels[:, None] - pixels[None], axis=-1) + np.eye(len(pixels)) * 1e9
    inside = ((pixels[:, 0] > 90) & (pixels[:, 0] < 390) & (pixels[:, 1] > 50)
              & (pixels[:, 1] < 380))
    target = int(np.argmax(np.where(inside, gaps.min(axis=1), -1)))
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
            page.get_by_role("tab", name="Latent map").click()
            picture = page.locator("#map img")
            picture.wait_for(timeout=30_000)
            box = picture.bounding_box()
            scale = min(box["width"] / MAP_WIDTH, box["height"] / MAP_HEIGHT)  # contained
            left = (box["width"] - MAP_WIDTH * scale) / 2
            top = (box["height"] - MAP_HEIGHT * scale) / 2
            column, row = pixels[target]
            picture.click(position={"x": left + column * scale, "y": top + row * scale})
            page.wait_for_function(
                "(wanted) => { const text = document.querySelector('#selected-text');"
                " return text && text.innerText.startsWith(wanted); }",
                arg=f"Test image {target},", timeout=30_000)
            page.screenshot(path=str(tmp_path / "explore.png"), full_page=True)
        finally:
            browser.close()
    assert Image.open(tmp_path / "explore.png").size[0] > 0


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
