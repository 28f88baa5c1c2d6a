"""The `keras-vae explore` web app: Gradio panels over a `keras_vae.explorer.Explorer`.

Gradio is an optional extra (`pip install 'keras_vae[app]'`); this module
imports it only when an app is built. Every panel is also an API endpoint
(`gradio_client.Client(url).predict(..., api_name="/sample_grid")`):

| endpoint | inputs | output |
| --- | --- | --- |
| `/decode_sliders` | slider values (then the class, conditional models) | image |
| `/decode_point` | map coordinates u, v (then the class) | image |
| `/interpolate` | two test-image indices, steps (then the class) | strip of images |
| `/score_upload` | an image (then the class) | reconstruction, text |
| `/score_drawing` | a drawing (then the class) | reconstruction, text |
| `/sample_grid` | seed (then the class) | 4x4 grid of samples |

Input the app cannot use (a blank drawing, an index out of range) gives a
message in the page; the server keeps running.
"""

import os
import socket

import numpy as np

from keras_vae import _extras
from keras_vae.explorer import MAP_PIXELS
from keras_vae.explorer import InputProblem

IMAGE_HEIGHT = 196
"""Display height of a decoded image, in CSS pixels (the image is the model's size)."""

CSS = """.vae-image img { image-rendering: pixelated; width: 100% !important;
  height: 100% !important; object-fit: contain; }"""
"""Shows the small decoded images enlarged, with sharp pixels."""


def free_port(host="127.0.0.1"):
    """Returns a TCP port free on `host` now."""
    with socket.socket() as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


def require_gradio():
    """Imports and returns gradio, or raises `MissingExtraError` naming the `app` extra."""
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    return _extras.require("gradio", "app", "keras-vae explore")


def _blank(explorer):
    return np.zeros(explorer.image_shape[:2], "uint8")


def build_app(explorer, title="keras_vae explorer"):
    """Returns the Gradio `Blocks` of the app for `explorer` (not launched).

    Args:
        explorer: The `keras_vae.explorer.Explorer` whose panels the app shows.
        title: The page's title.
    """
    gr = require_gradio()
    conditional = explorer.num_classes is not None

    def image(label, **kwargs):
        return gr.Image(label=label, format="png", height=IMAGE_HEIGHT, image_mode=None,
                        interactive=False, elem_classes=["vae-image"], **kwargs)

    def guarded(function, blank_outputs):
        """Shows an `InputProblem` in the page instead of raising it."""

        def run(*args):
            try:
                return function(*args)
            except InputProblem as problem:
                gr.Warning(str(problem))
                return blank_outputs(str(problem))
        return run

    with gr.Blocks(title=title) as app:
        gr.Markdown(f"# {title}\n{type(explorer.model).__name__} with a latent space of "
                    f"{explorer.model.latent_dim} dimensions.")
        classes = []
        if conditional:
            classes = [gr.Dropdown(choices=list(range(explorer.num_classes)), value=0,
                                   label="class", elem_id="class")]

        if explorer.continuous:  # a VQ-VAE's index maps have no sliders or map
            with gr.Tab("Latent sliders"):
                with gr.Row():
                    with gr.Column():
                        sliders = [gr.Slider(-3.0, 3.0, value=0.0, step=0.05, label=name,
                                             elem_id=f"slider-{i}")
                                   for i, name in enumerate(explorer.slider_names)]
                    slider_image = image("decoded", elem_id="slider-image")
            gr.on([slider.change for slider in sliders] + [c.change for c in classes],
                  guarded(lambda *values: explorer.decode_sliders(
                      values[:explorer.num_sliders], *values[explorer.num_sliders:]),
                      lambda _: _blank(explorer)),
                  inputs=sliders + classes, outputs=slider_image, api_name="decode_sliders",
                  trigger_mode="always_last")

        if explorer.encodes:
            if explorer.continuous:
                with gr.Tab("Latent map"):
                    with gr.Row():
                        map_image = gr.Image(value=explorer.map_image(), label="test codes "
                                             "(click to decode)", format="png",
                                             interactive=False, height=MAP_PIXELS,
                                             elem_id="map")
                        with gr.Column():
                            u = gr.Number(value=0.0, label="u")
                            v = gr.Number(value=0.0, label="v")
                            point_button = gr.Button("Decode")
                            point_image = image("decoded point", elem_id="point-image")

                def clicked(event: gr.SelectData):
                    return explorer.map_point(*event.index[:2])

                decode_point = guarded(explorer.decode_point, lambda _: _blank(explorer))
                map_image.select(clicked, None, [u, v], api_name=False).then(
                    decode_point, [u, v] + classes, point_image, api_name=False)
                point_button.click(decode_point, [u, v] + classes, point_image,
                                   api_name="decode_point")

                with gr.Tab("Interpolation"):
                    with gr.Row():
                        first = gr.Number(value=0, precision=0, label="first test image")
                        last = gr.Number(value=1, precision=0, label="last test image")
                        steps = gr.Slider(2, 16, value=8, step=1, label="steps")
                    interpolate_button = gr.Button("Interpolate")
                    strip = gr.Image(label="interpolation", format="png", interactive=False,
                                     image_mode=None, height=IMAGE_HEIGHT // 2,
                                     elem_classes=["vae-image"])
                interpolate_button.click(
                    guarded(explorer.interpolate, lambda _: _blank(explorer)),
                    [first, last, steps] + classes, strip, api_name="interpolate")

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
            def blank_score(text):
                return _blank(explorer), f"**{text}**"

            score_button.click(guarded(explorer.score, blank_score), [drawing] + classes,
                               [reconstruction, score_text], api_name="score_drawing")
            upload.upload(guarded(explorer.score, blank_score), [upload] + classes,
                          [reconstruction, score_text], api_name="score_upload")

        if explorer.variational or not explorer.encodes or not explorer.continuous:
            with gr.Tab("Samples"):
                with gr.Row():
                    seed = gr.Number(value=0, precision=0, label="seed")
                    sample_button = gr.Button("Sample")
                samples = gr.Image(label="samples", format="png", interactive=False,
                                   image_mode=None, height=2 * IMAGE_HEIGHT,
                                   elem_classes=["vae-image"], elem_id="samples")
            sample_button.click(guarded(explorer.sample_grid, lambda _: _blank(explorer)),
                                [seed] + classes, samples, api_name="sample_grid")

        if explorer.continuous:
            app.load(lambda *values: explorer.decode_sliders(
                [0.0] * explorer.num_sliders, *values), classes, slider_image, api_name=False)
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
