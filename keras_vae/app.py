"""The `keras-vae explore` web app: Gradio panels over a `keras_vae.explorer.Explorer`.

Gradio is an optional extra (`pip install 'keras_vae[app]'`); this module
imports it only when an app is built. Every panel is also an API endpoint
(`gradio_client.Client(url).predict(..., api_name="/sample_grid")`); the
class comes last wherever a conditional model needs one:

| endpoint | inputs | output |
| --- | --- | --- |
| `/decode_sliders` | slider values (then the class) | image |
| `/sliders_from_test` | a test-image index | slider values, image, text |
| `/sliders_from_upload` | an image (then the class) | slider values, image, text |
| `/slider_neighbours` | slider values, k (then the class) | strip of training images, text |
| `/map` | projection, selected, first and last test image | map image |
| `/select_test_image` | a test-image index, k | image, reconstruction, text, neighbours strip, text |
| `/decode_point` | PCA map coordinates u, v (then the class) | image |
| `/interpolate` | first and last test-image index, steps, `linear` or `slerp` (then the class) | strip |
| `/download_codes` | none | codes.csv |
| `/code_map`, `/code_map_upload` | a test-image index, or an image (VQ-VAE) | image, code grid, decoded image, text |
| `/edit_code` | code grid, row, column, new code (VQ-VAE) | code grid, decoded image, text |
| `/decode_code_map` | code grid (VQ-VAE) | decoded image |
| `/score_upload` | an image (then the class) | reconstruction, text |
| `/score_drawing` | a drawing (then the class) | reconstruction, text |
| `/sample_grid` | seed (then the class) | 4x4 grid of samples |

A click on the map (in the page) picks the nearest test image and runs
`/select_test_image` for it; its buttons make it an interpolation end
(marked A or B on the map) or the sliders' start. A panel appears only
where the model serves it (the explorer's capabilities: no sliders or map
for a VQ-VAE's discrete codes, no code map for continuous ones). Input the
app cannot use (a blank drawing, an index out of range) gives a message in
the page and blank outputs; a model that computes NaN or infinity gives an
error message in the page (`gradio_client` raises it as `AppError`); the
server keeps running.

The file is over 300 lines: one function lays out every panel and
wires its events, as Gradio's `Blocks` is written.
"""

import os
import socket
import tempfile

import numpy as np

from keras_vae import _extras
from keras_vae.explorer import INTERPOLATIONS
from keras_vae.explorer import MAP_HEIGHT
from keras_vae.explorer import MAX_NEIGHBOURS
from keras_vae.explorer import SLIDER_RANGE
from keras_vae.explorer import InputProblem
from keras_vae.explorer import available_projections
from keras_vae.validation import NonFiniteOutputError

IMAGE_HEIGHT = 196
"""Display height of a decoded image, in CSS pixels (the image is the model's size)."""

CSS = """.vae-image img { image-rendering: pixelated; width: 100% !important;
  height: 100% !important; object-fit: contain; }"""
"""Shows the small decoded images enlarged, with sharp pixels."""


def free_port(host="127.0.0.1"):
    """Returns a TCP port free on `host` now.

    Args:
        host: The address the port is free on.
    """
    with socket.socket() as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


def require_gradio():
    """Imports and returns gradio, or raises `MissingExtraError` naming the `app` extra."""
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    return _extras.require("gradio", "app", "keras-vae explore")


def _blank(explorer):
    return np.zeros(explorer.image_shape[:2], "uint8")


def _header(explorer):
    model = explorer.model
    name = type(model).__name__
    if not explorer.encodes:
        return (f"{name} with a latent space of {model.latent_dim} dimensions and no "
                "encoder: slide its latent dimensions or draw samples.")
    if not explorer.continuous:
        h, w = explorer.code_shape
        return (f"{name} with discrete codes: each image is a {h}x{w} map of indices into "
                f"{model.num_codes} codebook vectors. There is no continuous latent space, "
                "so the sliders, the latent map, its nearest neighbours and the "
                "interpolation are not shown: the **Code map** tab shows an image's codes "
                "and re-decodes them after you change one.")
    return f"{name} with a latent space of {model.latent_dim} dimensions."


def _code_frame(codes):
    """A code map as the DataFrame the code grid shows (columns named by index)."""
    import pandas

    codes = np.asarray(codes)
    return pandas.DataFrame(codes, columns=[str(c) for c in range(codes.shape[1])])


def build_app(explorer, title="keras_vae explorer"):
    """Returns the Gradio `Blocks` of the app for `explorer` (not launched).

    Args:
        explorer: The `keras_vae.explorer.Explorer` whose panels the app shows.
        title: The page's title.
    """
    gr = require_gradio()
    conditional = explorer.num_classes is not None
    blank = _blank(explorer)

    def image(label, height=IMAGE_HEIGHT, **kwargs):
        """An output image drawn pixelated (a decoded image, a strip, the sample grid)."""
        return gr.Image(label=label, format="png", height=height, image_mode=None,
                        interactive=False, elem_classes=["vae-image"], **kwargs)

    def guarded(function, blank_outputs):
        """Shows an `InputProblem` in the page (blank outputs) and a NaN output as an error."""

        def run(*args):
            try:
                return function(*args)
            except InputProblem as problem:
                gr.Warning(str(problem))
                return blank_outputs(str(problem))
            except NonFiniteOutputError as error:
                raise gr.Error(str(error)) from None
        return run

    def blank_with_text(count_images):
        return lambda text: (blank,) * count_images + (f"**{text}**",)

    with gr.Blocks(title=title) as app:
        gr.Markdown(f"# {title}\n{_header(explorer)}")
        classes = []
        if conditional:
            classes = [gr.Dropdown(choices=list(range(explorer.num_classes)), value=0,
                                   label="class", elem_id="class")]

        def label_of(values):
            """The class among a handler's trailing inputs, or None without one."""
            return values[0] if values else None

        if explorer.continuous:  # a VQ-VAE's index maps have no sliders or map
            offset = gr.State(None)
            with gr.Tab("Latent sliders"):
                with gr.Row():
                    with gr.Column():
                        sliders = [gr.Slider(-SLIDER_RANGE, SLIDER_RANGE, value=0.0, step=0.05,
                                             label=name, elem_id=f"slider-{i}")
                                   for i, name in enumerate(explorer.slider_names)]
                        reset_button = gr.Button("Back to the centre")
                    with gr.Column():
                        slider_image = image("decoded", elem_id="slider-image")
                        slider_text = gr.Markdown(elem_id="slider-text")
                if explorer.encodes:
                    with gr.Row():
                        start_index = gr.Number(value=0, precision=0, label="test image")
                        start_button = gr.Button("Start the sliders from this test image")
                        start_upload = gr.Image(label="or from an uploaded image",
                                                type="numpy", sources=["upload"],
                                                image_mode=None, height=IMAGE_HEIGHT)
                    with gr.Row():
                        slider_k = gr.Slider(1, MAX_NEIGHBOURS, value=8, step=1,
                                             label="neighbours")
                        slider_neighbours_button = gr.Button("Nearest training images")
                    slider_strip = image("nearest training images", IMAGE_HEIGHT // 2)
                    slider_strip_text = gr.Markdown()
            count = explorer.num_sliders

            def decode_sliders(*values):
                return explorer.decode_sliders(values[:count], label_of(values[count:-1]),
                                               values[-1])

            gr.on([slider.change for slider in sliders] + [c.change for c in classes],
                  guarded(decode_sliders, lambda _: blank),
                  inputs=sliders + classes + [offset], outputs=slider_image,
                  api_name="decode_sliders", trigger_mode="always_last")
            reset_button.click(lambda: [0.0] * count + [None, ""], None,
                               sliders + [offset, slider_text], api_name=False)
            app.load(lambda *values: explorer.decode_sliders(
                [0.0] * count, label_of(values)), classes, slider_image, api_name=False)

            def blank_start(with_class):
                return lambda text: ([gr.update()] * count
                                     + ([gr.update()] if with_class and conditional else [])
                                     + [gr.update(), blank, f"**{text}**"])

        if explorer.encodes and explorer.continuous:
            def from_test(index):
                values, start, decoded, text = explorer.sliders_from_test(index)
                label = [int(explorer.y_test[int(index)])] if conditional else []
                return [float(v) for v in values] + label + [start, decoded, text]

            start_outputs = sliders + classes + [offset, slider_image, slider_text]
            start_button.click(guarded(from_test, blank_start(True)), [start_index],
                               start_outputs, api_name="sliders_from_test")

            def from_upload(picture, *label):
                values, start, decoded, text = explorer.sliders_from_image(
                    picture, label_of(label))
                return [float(v) for v in values] + [start, decoded, text]

            start_upload.upload(guarded(from_upload, blank_start(False)),
                                [start_upload] + classes,
                                sliders + [offset, slider_image, slider_text],
                                api_name="sliders_from_upload")

            def neighbours_of_sliders(*values):
                return explorer.slider_neighbours(values[:count], values[count],
                                                  label_of(values[count + 1:-1]), values[-1])

            slider_neighbours_button.click(
                guarded(neighbours_of_sliders, blank_with_text(1)),
                sliders + [slider_k] + classes + [offset], [slider_strip, slider_strip_text],
                api_name="slider_neighbours")

            with gr.Tab("Latent map"):
                with gr.Row():
                    with gr.Column(scale=3):
                        projection = gr.Radio(available_projections(), value="PCA",
                                              label="projection (t-SNE and UMAP appear when "
                                              "scikit-learn or umap-learn is installed)")
                        map_image = gr.Image(value=explorer.map_image(), format="png",
                                             label="test codes (click a point)",
                                             interactive=False, height=MAP_HEIGHT,
                                             elem_id="map")
                        with gr.Row():
                            download_button = gr.Button("Download the codes (CSV)")
                            codes_file = gr.File(label="codes.csv", interactive=False)
                    with gr.Column(scale=2):
                        selected = gr.Number(value=0, precision=0, label="selected test image",
                                             elem_id="selected")
                        with gr.Row():
                            selected_image = image("test image", elem_id="selected-image")
                            selected_reconstruction = image("reconstruction")
                        selected_text = gr.Markdown(elem_id="selected-text")
                        with gr.Row():
                            first_button = gr.Button("Interpolate from here (A)")
                            last_button = gr.Button("Interpolate to here (B)")
                            slider_start_button = gr.Button("Start the sliders here")
                        k = gr.Slider(1, MAX_NEIGHBOURS, value=8, step=1, label="neighbours")
                        neighbour_strip = image("nearest training images", IMAGE_HEIGHT // 2)
                        neighbour_text = gr.Markdown()
                        with gr.Accordion("Decode a point of the PCA map", open=False):
                            with gr.Row():
                                u = gr.Number(value=0.0, label="u")
                                v = gr.Number(value=0.0, label="v")
                                point_button = gr.Button("Decode")
                            point_image = image("decoded point", elem_id="point-image")

            with gr.Tab("Interpolation"):
                gr.Markdown("Pick the ends on the **Latent map** tab (a click, then *A* or "
                            "*B*), or type test-image indices.")
                with gr.Row():
                    first = gr.Number(value=0, precision=0, label="first test image (A)",
                                      elem_id="first")
                    last = gr.Number(value=1, precision=0, label="last test image (B)",
                                     elem_id="last")
                    steps = gr.Slider(2, 16, value=8, step=1, label="steps")
                    method = gr.Radio(list(INTERPOLATIONS), value="linear",
                                      label="path (slerp: along the sphere)")
                interpolate_button = gr.Button("Interpolate")
                strip = image("interpolation", IMAGE_HEIGHT // 2)

            def interpolate(first_index, last_index, step_count, path, *label):
                return explorer.interpolate(first_index, last_index, step_count,
                                            label_of(label), method=path)

            interpolate_button.click(guarded(interpolate, lambda _: blank),
                                     [first, last, steps, method] + classes, strip,
                                     api_name="interpolate")

            def draw_map(name, chosen, a, b):
                return explorer.map_image(name, chosen, a, b)

            map_inputs = [projection, selected, first, last]
            guarded_map = guarded(draw_map, lambda _: gr.update())
            projection.change(guarded_map, map_inputs, map_image, api_name="map")

            def show(index, count_k):
                image_, reconstruction, text = explorer.test_image(index)
                neighbours, neighbours_text = explorer.test_neighbours(index, count_k)
                return image_, reconstruction, text, neighbours, neighbours_text

            show_outputs = [selected_image, selected_reconstruction, selected_text,
                            neighbour_strip, neighbour_text]
            guarded_show = guarded(show, lambda text: (blank, blank, f"**{text}**", blank, ""))

            def clicked(name, event: gr.SelectData):  # not guarded: Gradio reads the hint
                column, row = event.index[:2]
                try:
                    index = explorer.nearest_test_image(column, row, name)
                    if name != "PCA":
                        return index, gr.update(), gr.update()
                    return (index,) + explorer.map_point(column, row, name)
                except InputProblem as problem:
                    gr.Warning(str(problem))
                    return (gr.update(),) * 3

            decode_point = guarded(lambda *args: explorer.decode_point(
                args[0], args[1], label_of(args[2:])), lambda _: blank)
            map_image.select(clicked, [projection],
                             [selected, u, v], api_name=False).then(
                guarded_show, [selected, k], show_outputs, api_name=False).then(
                guarded_map, map_inputs, map_image, api_name=False).then(
                decode_point, [u, v] + classes, point_image, api_name=False)
            gr.on([selected.submit, k.release], guarded_show, [selected, k], show_outputs,
                  api_name="select_test_image")
            point_button.click(decode_point, [u, v] + classes, point_image,
                               api_name="decode_point")
            for button, end in ((first_button, first), (last_button, last)):
                button.click(lambda index: index, selected, end, api_name=False).then(
                    guarded_map, map_inputs, map_image, api_name=False)
            slider_start_button.click(guarded(from_test, blank_start(True)), [selected],
                                      start_outputs, api_name=False)
            app.load(guarded_show, [selected, k], show_outputs, api_name=False)

        if explorer.encodes and not explorer.continuous:
            h, w = explorer.code_shape
            with gr.Tab("Code map"):
                with gr.Row():
                    code_index = gr.Number(value=0, precision=0, label="test image")
                    code_button = gr.Button("Show its code map")
                    code_upload = gr.Image(label="or upload an image", type="numpy",
                                           sources=["upload"], image_mode=None,
                                           height=IMAGE_HEIGHT)
                with gr.Row():
                    code_image = image("image", elem_id="code-image")
                    code_grid = gr.Dataframe(
                        headers=[str(c) for c in range(w)], datatype="number", type="numpy",
                        row_count=h, column_count=w, interactive=True, elem_id="code-grid",
                        label=f"code map (row x column; edit a cell, indices in "
                        f"[0, {explorer.model.num_codes}))")
                    code_decoded = image("decoded from the codes", elem_id="code-decoded")
                code_text = gr.Markdown(elem_id="code-text")
                with gr.Row():
                    edit_row = gr.Number(value=0, precision=0, label="row")
                    edit_column = gr.Number(value=0, precision=0, label="column")
                    edit_value = gr.Number(value=0, precision=0, label="new code")
                    edit_button = gr.Button("Change the code")

            def code_map(index):
                picture, codes, decoded, text = explorer.code_map(index)
                return picture, _code_frame(codes), decoded, text

            def code_map_upload(picture):
                picture, codes, decoded, text = explorer.code_map_of_image(picture)
                return picture, _code_frame(codes), decoded, text

            def edit(codes, row, column, value):
                codes, decoded, text = explorer.edit_code(codes, row, column, value)
                return _code_frame(codes), decoded, text

            def blank_code_map(text):
                return blank, gr.update(), blank, f"**{text}**"

            code_outputs = [code_image, code_grid, code_decoded, code_text]
            code_button.click(guarded(code_map, blank_code_map), code_index, code_outputs,
                              api_name="code_map")
            code_upload.upload(guarded(code_map_upload, blank_code_map), code_upload,
                               code_outputs, api_name="code_map_upload")
            edit_button.click(guarded(edit, lambda text: (gr.update(), gr.update(), f"**{text}**")),
                              [code_grid, edit_row, edit_column, edit_value],
                              [code_grid, code_decoded, code_text], api_name="edit_code")
            code_grid.input(guarded(explorer.decode_code_map, lambda _: blank), code_grid,
                            code_decoded, api_name="decode_code_map")
            app.load(guarded(code_map, blank_code_map), code_index, code_outputs,
                     api_name=False)
            with gr.Row():
                download_button = gr.Button("Download the codes (CSV)")
                codes_file = gr.File(label="codes.csv", interactive=False)

        if explorer.encodes:
            def download_codes():
                folder = tempfile.mkdtemp(prefix="keras_vae_codes_")
                path = os.path.join(folder, "codes.csv")
                with open(path, "w", encoding="utf-8") as file:
                    file.write(explorer.codes_csv())
                return path

            download_button.click(guarded(download_codes, lambda _: None), None, codes_file,
                                  api_name="download_codes")

            with gr.Tab("Draw or upload"):
                with gr.Row():
                    drawing = gr.Sketchpad(
                        label="draw", canvas_size=(280, 280), type="numpy",
                        image_mode="RGBA", elem_id="drawing",
                        brush=gr.Brush(colors=["#000000"], default_color="#000000",
                                       default_size=18))
                    upload = gr.Image(label="or upload", type="numpy", sources=["upload"],
                                      image_mode=None)
                    with gr.Column():
                        reconstruction = image("reconstruction", elem_id="reconstruction")
                        score_text = gr.Markdown(elem_id="score")
                score_button = gr.Button("Score the drawing")

            score_button.click(guarded(explorer.score, blank_with_text(1)), [drawing] + classes,
                               [reconstruction, score_text], api_name="score_drawing")
            upload.upload(guarded(explorer.score, blank_with_text(1)), [upload] + classes,
                          [reconstruction, score_text], api_name="score_upload")

        if explorer.variational or not explorer.encodes or not explorer.continuous:
            with gr.Tab("Samples"):
                with gr.Row():
                    seed = gr.Number(value=0, precision=0, label="seed")
                    sample_button = gr.Button("Sample")
                samples = image("samples", 2 * IMAGE_HEIGHT, elem_id="samples")
            sample_button.click(guarded(explorer.sample_grid, lambda _: blank),
                                [seed] + classes, samples, api_name="sample_grid")
    return app


def check_host(host):
    """Raises `ValueError` unless `host` is an address to listen on.

    Gradio reads an empty `server_name` as "not given" and then listens where
    `GRADIO_SERVER_NAME` says (0.0.0.0: every interface) while the URL
    printed says localhost; an empty host is refused instead.
    """
    if not isinstance(host, str) or not host.strip():
        raise ValueError("--host must be an address to listen on (127.0.0.1 for this "
                         f"machine, 0.0.0.0 for the network). Received: --host {host!r}")


def launch(app, host="127.0.0.1", port=None):
    """Starts `app` on `host:port` (a free port if None) without blocking; returns its URL.

    Args:
        app: The Gradio `Blocks` from `build_app`.
        host: The address to listen on (loopback by default).
        port: The port; None picks a free one.
    """
    require_gradio()
    check_host(host)
    port = free_port(host) if port is None else port
    _, url, _ = app.launch(server_name=host, server_port=port, prevent_thread_lock=True,
                           quiet=True, share=False, ssr_mode=False, inbrowser=False,
                           css=CSS)
    return url
