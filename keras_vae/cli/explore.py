"""`keras-vae explore MODEL`: a local web app to play with a saved model's latent space.

The app (`keras_vae.app`, built with Gradio, the `app` extra) runs until
interrupted (Ctrl+C). Its URL is printed on stderr as soon as it serves;
once stopped, the command prints its JSON summary on stdout.
"""

import sys
import time

from keras_vae.cli import arguments

TRAIN_IMAGES = 1000
"""Training images whose codes set the sliders, are searched for nearest neighbours and
go into the codes' CSV, and whose scores rank an image."""

TEST_IMAGES = 2000
"""Test images drawn on the map."""


def add_parser(commands):
    """Adds the `explore` subcommand to `commands` (an argparse subparsers object)."""
    parser = commands.add_parser(
        "explore",
        help="explore a saved model in the browser (a local Gradio app)",
        description=(
            "Serve a web app on --host:--port with latent sliders (from the centre, a "
            "test image or an uploaded one), a map of the test codes (PCA, or t-SNE/UMAP "
            "where installed) whose clicks show a test image and its nearest training "
            "images, linear or spherical interpolation between points of the map, the "
            "codes as CSV, a VQ-VAE's editable code map, draw-or-upload scoring and a "
            "sample grid, until "
            "interrupted (Ctrl+C). The URL is printed on stderr; the JSON summary on "
            "stdout when the app stops. Needs the app extra: pip install "
            "'keras_vae[app]'."),
        formatter_class=arguments.HelpFormatter,
    )
    parser.add_argument("model", help="path to a saved keras_vae model (.keras), "
                        "or pretrained:NAME for a model shipped with keras_vae")
    arguments.add_data_arguments(parser, "dataset", "mnist",
                                 "the images the app shows: a dataset name or path, as "
                                 "for train", image_size_default=None,
                                 color_mode_default=None)
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to serve on (the default is reachable from this "
                        "machine only)")
    parser.add_argument("--port", type=arguments.non_negative_int, default=7860,
                        help="port to serve on (0: any free port)")
    parser.set_defaults(run=run)


def start(args):
    """Builds and launches the app; returns `(app, url)` without blocking."""
    from keras_vae import app as web_app
    from keras_vae.explorer import Explorer

    web_app.require_gradio()  # a missing extra fails before any work
    web_app.check_host(args.host)
    model = arguments.load_image_model(args.model)
    image_size, color_mode = arguments.image_options(args, model)
    (x_train, y_train), (x_test, y_test) = arguments.load_splits(
        args.dataset, args, image_size, color_mode)
    if len(x_train) < 2 or len(x_test) < 2:
        limit = "" if args.limit is None else f" with --limit {args.limit}"
        raise ValueError(
            f"explore needs at least 2 training and 2 test images (their codes set the "
            f"sliders and the map). Received: {len(x_train)} training and {len(x_test)} "
            f"test images of --dataset {args.dataset}{limit}")
    if model.num_classes is not None and (y_train is None or y_test is None):
        raise ValueError(f"{args.model} is conditional: --dataset needs labels.")
    explorer = Explorer(model, (x_train[:TRAIN_IMAGES], _first(y_train, TRAIN_IMAGES)),
                        (x_test[:TEST_IMAGES], _first(y_test, TEST_IMAGES)), seed=args.seed)
    app = web_app.build_app(explorer, title=f"keras_vae explorer: {args.model}")
    url = web_app.launch(app, args.host, args.port or None)
    return app, url


def _first(labels, count):
    return None if labels is None else labels[:count]


def run(args):
    """Serves the app until interrupted; returns the JSON summary."""
    app, url = start(args)
    print(f"keras-vae explore: serving {args.model} at {url} (Ctrl+C to stop)",
          file=sys.stderr, flush=True)
    started = time.monotonic()
    try:
        while True:
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        app.close()
    return {"model": str(args.model), "url": url,
            "served_seconds": round(time.monotonic() - started, 1)}
