"""What `keras-vae explore` shows, computed without a web framework.

`Explorer` holds a model and a little data and answers each panel of the
app (`keras_vae.app`) with NumPy images and a line of text:

- latent sliders: a code built from slider values along the top principal
  directions of the training codes (or along the raw dimensions when the
  latent space is small) and decoded;
- a 2-D map of the test codes coloured by label, and the code of a point of
  that map decoded;
- an interpolation between the codes of two test images;
- the reconstruction, negative ELBO and anomaly score of a drawn or
  uploaded image (the reconstruction error for an `Autoencoder`), the
  score ranked against training images;
- a grid of samples with a seed.

A conditional model takes a class in every panel that decodes; a model
without an encoder (`DCGAN`) offers the sliders over its raw dimensions and
the sample grid only. A model with discrete codes (`VQVAE`, whose codes are
int index maps: `model.code_spec.dtype.is_integer`) has no continuous
latent space to slide, map or interpolate in: those panels raise
`InputProblem` saying so, and the draw-or-upload panel (its reconstruction
error) and the sample grid (its PixelCNN prior) serve it. Input the app
cannot use raises `InputProblem`, whose message the page shows.

The file is a little over 300 lines: every panel reads the slider axes, map
extent and reference scores that the constructor computes once, so they
stay together in one class.
"""

import numpy as np
import tensorflow as tf
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from keras_vae import export
from keras_vae.models import base

MAP_PIXELS = 400
"""Width and height of the latent map, in pixels."""


MAX_SEED = 2 ** 31 - 1
"""Largest seed of the sample grid (TensorFlow's stateless seeds are int32)."""


class InputProblem(ValueError):
    """Input the app cannot use; the message is shown in the page."""


def to_uint8(image):
    """Returns a model image in [0, 1] `(H, W, C)` as uint8 `(H, W)` or `(H, W, 3)`."""
    image = np.clip(np.asarray(image, "float32"), 0.0, 1.0)
    if image.ndim == 3 and image.shape[-1] == 1:
        image = image[..., 0]
    return np.round(image * 255).astype("uint8")


def tile(images, ncols):
    """Tiles images `(N, H, W, C)` into rows of `ncols`, returns `(rows*H, ncols*W, C)`.

    Args:
        images: Images `(N, H, W, C)`.
        ncols: Images per row; the last row is padded with zeros.
    """
    images = np.asarray(images)
    rows = -(-len(images) // ncols)
    padded = np.zeros((rows * ncols,) + images.shape[1:], images.dtype)
    padded[:len(images)] = images
    height, width, channels = images.shape[1:]
    grid = padded.reshape(rows, ncols, height, width, channels).transpose(0, 2, 1, 3, 4)
    return grid.reshape(rows * height, ncols * width, channels)


class Explorer:
    """The computations behind each panel of `keras-vae explore`.

    Args:
        model: A keras_vae model.
        train: `(x, y)` training images (and labels, or None); their codes
            set the slider directions and their scores the anomaly ranking.
        test: `(x, y)` test images drawn on the map and interpolated.
        max_sliders: Raw dimensions are used as sliders up to this latent
            size; above it, the top `max_sliders` principal directions.
        num_samples: Codes per image of the negative ELBO.
        seed: Seed of the negative ELBO's noise.
    """

    def __init__(self, model, train, test, max_sliders=6, num_samples=32, seed=0):
        self.model = model
        self.num_classes = model.num_classes
        self.encodes = model.has(base.ENCODER)
        self.variational = model.has(base.POSTERIOR)  # codes shaped like the prior's
        self.continuous = not model.code_spec.dtype.is_integer
        self.score_name = export.score_kind(model)
        self.num_samples = num_samples
        self.seed = seed
        self.image_shape = tuple(model.image_shape)
        x_train, y_train = train
        self.x_test, self.y_test = test
        if len(x_train) < 2 or len(self.x_test) < 2:
            raise ValueError(
                "Explorer needs at least 2 training and 2 test images. Received: "
                f"{len(x_train)} training and {len(self.x_test)} test images")
        latent_dim = model.latent_dim
        self.dark_background = bool(np.mean(_border(x_train)) < 0.5) if len(x_train) else True
        if not self.encodes:
            self._set_sliders(np.zeros(latent_dim), np.eye(latent_dim)[:max_sliders],
                              np.ones(min(latent_dim, max_sliders)), raw=True)
            return
        if not self.continuous:  # no sliders, no map: see the module docstring
            self._set_sliders(np.zeros(0), np.zeros((0, latent_dim)), np.zeros(0), raw=True)
            self.reference_scores = np.sort(self.scores(x_train, y_train))
            return
        codes = model.latent_codes(x_train, self._labels(y_train))
        center, directions, scales, explained = _principal_axes(codes)
        if latent_dim <= max_sliders:
            if self.variational:  # the prior N(0, I) sets the range
                self._set_sliders(np.zeros(latent_dim), np.eye(latent_dim),
                                  np.ones(latent_dim), raw=True)
            else:
                self._set_sliders(codes.mean(0), np.eye(latent_dim), codes.std(0) + 1e-6,
                                  raw=True)
        else:
            self._set_sliders(center, directions[:max_sliders], scales[:max_sliders],
                              raw=False, explained=explained[:max_sliders])
        if latent_dim == 2:
            self.map_center, self.map_axes = np.zeros(2), np.eye(2)
        else:
            self.map_center, self.map_axes = center, directions[:2]
        self.test_points = (model.latent_codes(self.x_test, self._labels(self.y_test))
                            - self.map_center) @ self.map_axes.T
        low = np.percentile(self.test_points, 1, axis=0)
        high = np.percentile(self.test_points, 99, axis=0)
        pad = 0.1 * (high - low) + 1e-3
        self.map_extent = (low[0] - pad[0], high[0] + pad[0], low[1] - pad[1], high[1] + pad[1])
        self.reference_scores = np.sort(self.scores(x_train, y_train))

    # ------------------------------------------------------------ helpers

    def _set_sliders(self, center, directions, scales, raw, explained=None):
        self.slider_center = np.asarray(center, "float64")
        self.slider_directions = np.asarray(directions, "float64")
        self.slider_scales = np.asarray(scales, "float64")
        if raw:
            self.slider_names = [f"z[{i}]" for i in range(len(directions))]
        else:
            self.slider_names = [f"principal direction {i + 1} ({share:.0%} of the variance)"
                                 for i, share in enumerate(explained)]

    @property
    def num_sliders(self):
        return len(self.slider_directions)

    def _labels(self, labels, count=None):
        """The labels a model method takes: the classes, or None if unconditional."""
        if self.num_classes is None:
            return None
        if labels is None:
            raise InputProblem("This conditional model needs a class: pick one.")
        labels = np.asarray(labels).astype("int64")
        return labels if count is None else np.broadcast_to(labels, (count,))

    def _check_class(self, label):
        if self.num_classes is None:
            return None
        try:
            label = int(label)
        except (TypeError, ValueError):
            raise InputProblem(f"The class must be an int. Received: {label!r}") from None
        if not 0 <= label < self.num_classes:
            raise InputProblem(
                f"The class must be in [0, {self.num_classes}). Received: {label}")
        return label

    def _decode(self, codes, label):
        label = self._check_class(label)
        labels = None if label is None else np.full(len(codes), label)
        return self.model.decode(np.asarray(codes, "float32"), labels)

    def scores(self, x, y=None):
        """Negative ELBO (VAE) or reconstruction error (Autoencoder) of images `x`.

        Args:
            x: Images in [0, 1] at the model's input shape.
            y: Their classes, for a conditional model only.
        """
        return export.scores(self.model, x, self._labels(y), num_samples=self.num_samples,
                             seed=self.seed)

    # ------------------------------------------------------------- panels

    def slider_code(self, values):
        """Returns the code `(latent_dim,)` that slider `values` (in standard deviations) pick."""
        self._require_continuous("decode slider values")
        values = np.asarray(values, "float64")
        if values.shape != (self.num_sliders,):
            raise InputProblem(
                f"Expected {self.num_sliders} slider values. Received: {values.shape[0]}")
        return self.slider_center + (values * self.slider_scales) @ self.slider_directions

    def decode_sliders(self, values, label=None):
        """Returns the image decoded from slider `values`, uint8.

        Args:
            values: One value per slider, in standard deviations along its direction.
            label: The class to decode as, for a conditional model only.
        """
        return to_uint8(self._decode(self.slider_code(values)[None], label)[0])

    def _require_encoder(self, what):
        if not self.encodes:
            raise InputProblem(f"This model ({type(self.model).__name__}) has no encoder: "
                               f"it cannot {what}.")

    def _require_continuous(self, what):
        if not self.continuous:
            raise InputProblem(
                f"This model ({type(self.model).__name__}) has discrete codes (index maps), "
                f"no continuous latent space: it cannot {what}. Use the samples and the "
                "draw-or-upload panels.")

    def map_image(self):
        """Returns the map of the test codes coloured by label, uint8 `(MAP_PIXELS, MAP_PIXELS, 3)`."""
        self._require_encoder("map the test images")
        self._require_continuous("map the test images")
        figure = Figure(figsize=(4, 4), dpi=MAP_PIXELS / 4)
        canvas = FigureCanvasAgg(figure)
        axis = figure.add_axes([0, 0, 1, 1])
        # Coloured by label where there are labels, in one colour otherwise.
        colours = ({} if self.y_test is None else
                   {"c": np.asarray(self.y_test) % 10, "cmap": "tab10", "vmin": 0, "vmax": 9})
        axis.scatter(self.test_points[:, 0], self.test_points[:, 1], s=4, **colours)
        axis.set_xlim(self.map_extent[0], self.map_extent[1])
        axis.set_ylim(self.map_extent[2], self.map_extent[3])
        axis.set_axis_off()
        canvas.draw()
        return np.asarray(canvas.buffer_rgba())[..., :3].copy()

    def map_point(self, column, row):
        """Returns the map coordinates `(u, v)` of pixel `(column, row)` of `map_image`.

        Args:
            column: The pixel's column in the map image (from the left).
            row: The pixel's row in the map image (from the top).
        """
        self._require_encoder("map the test images")
        self._require_continuous("map the test images")
        x0, x1, y0, y1 = self.map_extent
        u = x0 + (column + 0.5) / MAP_PIXELS * (x1 - x0)
        v = y1 - (row + 0.5) / MAP_PIXELS * (y1 - y0)
        return float(u), float(v)

    def decode_point(self, u, v, label=None):
        """Returns the image decoded from map coordinates `(u, v)`, uint8.

        Args:
            u: The horizontal map coordinate.
            v: The vertical map coordinate.
            label: The class to decode as, for a conditional model only.
        """
        self._require_encoder("map the test images")
        self._require_continuous("map the test images")
        if u is None or v is None or not np.isfinite([u, v]).all():
            raise InputProblem(f"Give two finite map coordinates. Received: u={u}, v={v}")
        code = self.map_center + np.array([u, v]) @ self.map_axes
        return to_uint8(self._decode(code[None], label)[0])

    def _test_index(self, index, name):
        try:
            index = int(index)
        except (TypeError, ValueError):
            raise InputProblem(f"{name} must be an int. Received: {index!r}") from None
        if not 0 <= index < len(self.x_test):
            raise InputProblem(
                f"{name} must be in [0, {len(self.x_test)}). Received: {index}")
        return index

    def interpolate(self, first, last, steps=8, label=None):
        """Returns a strip: test image `first`, `steps` decoded codes, test image `last`.

        Args:
            first: Index of the test image the strip starts from.
            last: Index of the test image it ends at.
            steps: Decoded codes between them (clipped to 2..32).
            label: The class to decode as, for a conditional model only.
        """
        self._require_encoder("encode the ends of an interpolation")
        self._require_continuous("interpolate between codes")
        first = self._test_index(first, "The first image")
        last = self._test_index(last, "The last image")
        steps = max(2, min(int(steps), 32))
        ends = self.x_test[[first, last]]
        labels = None if self.y_test is None else self.y_test[[first, last]]
        codes = self.model.latent_codes(ends, self._labels(labels))
        weights = np.linspace(0.0, 1.0, steps)[:, None]
        images = self._decode((1 - weights) * codes[0] + weights * codes[1], label)
        return to_uint8(tile(np.concatenate([ends[:1], images, ends[1:]]), steps + 2))

    def prepare(self, image):
        """Returns `(x, notes)`: an uploaded or drawn image as one model input `(1, H, W, C)`.

        Accepts a NumPy image (grey, RGB or RGBA, uint8 or float) or the
        dict of a drawing (its `composite`). Transparent pixels take the
        colour opposite the opaque ones (the ink); a light background is inverted when the training images have
        a dark one; another size is resized. Raises `InputProblem` for a
        missing or blank image.
        """
        if isinstance(image, dict):
            image = image.get("composite")
        if image is None:
            raise InputProblem("No image: draw a digit or upload an image first.")
        image = np.asarray(image)
        if image.dtype == np.uint8:
            image = image.astype("float32") / 255.0
        image = np.asarray(image, "float32")
        if image.ndim == 2:
            image = image[..., None]
        if image.ndim != 3 or image.shape[-1] not in (1, 3, 4) or 0 in image.shape:
            raise InputProblem(f"Expected a grey, RGB or RGBA image. Received an array of "
                               f"shape {image.shape}")
        notes = []
        if image.shape[-1] == 4:  # transparent pixels: the colour opposite the ink's
            alpha = image[..., 3:]
            ink = image[..., :3][alpha[..., 0] > 0.5]
            base = 0.0 if ink.size and ink.mean() > 0.5 else 1.0
            image = image[..., :3] * alpha + base * (1.0 - alpha)
        channels = self.image_shape[-1]
        if channels == 1 and image.shape[-1] == 3:
            image = image.mean(axis=-1, keepdims=True)
        elif channels == 3 and image.shape[-1] == 1:
            image = np.repeat(image, 3, axis=-1)
        if float(image.max() - image.min()) < 1e-3:
            raise InputProblem("The image is blank: draw or upload something first.")
        if self.dark_background and np.mean(_border(image[None])) > 0.5:
            image = 1.0 - image
            notes.append("inverted (light background) to match the training images")
        height, width = self.image_shape[:2]
        if image.shape[:2] != (height, width):
            notes.append(f"resized from {image.shape[0]}x{image.shape[1]} to "
                         f"{height}x{width}")
            image = tf.image.resize(image, (height, width), antialias=True).numpy()
        return np.clip(image, 0.0, 1.0)[None], notes

    def score(self, image, label=None):
        """Returns `(reconstruction uint8, text)` for a drawn or uploaded image.

        Args:
            image: The drawn or uploaded image (resized and converted as needed).
            label: Its class, for a conditional model only.
        """
        x, notes = self.prepare(image)
        self._require_encoder("reconstruct images")
        label = self._check_class(label)
        labels = None if label is None else [label]
        reconstruction = self.model.reconstruct(x, labels)[0]
        score = float(self.scores(x, labels)[0])
        rank = np.searchsorted(self.reference_scores, score) / len(self.reference_scores)
        likelihood = self.score_name == "neg_elbo"
        name = "negative ELBO" if likelihood else "reconstruction error"
        unit = " nats" if likelihood else ""
        text = (f"{name}: {score:.2f}{unit}. Anomaly score: higher than {rank:.0%} of "
                f"{len(self.reference_scores)} training images")
        text += " (unusual)." if rank > 0.95 else "."
        if notes:
            text += " Note: the image was " + " and ".join(notes) + "."
        return to_uint8(reconstruction), text

    def sample_grid(self, seed=0, label=None, n=16):
        """Returns `n` samples drawn with `seed`, tiled 4 per row, uint8.

        Args:
            seed: Seed of the prior draws, an int >= 0.
            label: The class to draw, for a conditional model only.
            n: How many samples.
        """
        try:
            seed = int(seed)
        except (TypeError, ValueError, OverflowError):  # OverflowError: inf
            raise InputProblem(f"The seed must be an int. Received: {seed!r}") from None
        if not 0 <= seed <= MAX_SEED:
            raise InputProblem(f"The seed must be an int from 0 to {MAX_SEED}. "
                               f"Received: {seed:.6g}")
        label = self._check_class(label)
        images = self.model.sample(n, None if label is None else label, seed=seed)
        return to_uint8(tile(images, 4))


def _border(x):
    """The pixels of the one-pixel frame of images `(N, H, W, C)`."""
    x = np.asarray(x)
    return np.concatenate([x[:, 0].ravel(), x[:, -1].ravel(),
                           x[:, :, 0].ravel(), x[:, :, -1].ravel()])


def _principal_axes(codes):
    """Returns `(center, directions, scales, explained)` of `codes` `(N, D)` (PCA by SVD)."""
    codes = np.asarray(codes, "float64")
    center = codes.mean(axis=0)
    _, singular, directions = np.linalg.svd(codes - center, full_matrices=False)
    variances = singular ** 2 / max(len(codes) - 1, 1)
    explained = variances / max(variances.sum(), 1e-12)
    return center, directions, np.sqrt(variances) + 1e-6, explained
