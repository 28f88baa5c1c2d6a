"""What `keras-vae explore` shows, computed without a web framework.

`Explorer` holds a model and a little data and answers each panel of the
app (`keras_vae.app`) with NumPy images and a line of text:

- latent sliders: a code built from slider values along the top principal
  directions of the training codes (or along the raw dimensions when the
  latent space is small) and decoded; the sliders can start from the code
  of a test image or of an uploaded one (`slider_start`), and the nearest
  training images of the slider code are a click away;
- a 2-D map of the test codes (`map_figure`: a legend per label, labelled
  axes) by PCA, or by t-SNE or UMAP where scikit-learn or umap-learn is
  installed (`available_projections`); a click picks the nearest test image
  (`nearest_test_image`), shows it, its reconstruction and its nearest
  training images (`nearest_neighbours`), and makes it an end of an
  interpolation; on the PCA map the code under the click is also decoded;
- an interpolation between the codes of two test images, linear or
  spherical (`slerp`);
- the codes of the training and test images as CSV (`codes_csv`);
- the reconstruction, negative ELBO and anomaly score of a drawn or
  uploaded image (the reconstruction error for an `Autoencoder`), the
  score ranked against the test images' (which the model did not train on,
  so a typical new image ranks in the middle rather than above a model's
  fit to its own training images);
- a grid of samples with a seed.

A conditional model takes a class in every panel that decodes; a model
without an encoder (`DCGAN`) offers the sliders over its raw dimensions and
the sample grid only. A model with discrete codes (`VQVAE`, whose codes are
int index maps: `model.code_spec.dtype.is_integer`) has no continuous
latent space to slide, map or interpolate in: those panels raise
`InputProblem` saying so; its code-map panel (`code_map`, `edit_code`)
shows the grid of indices of a test or uploaded image and re-decodes it
after a code is changed, and the draw-or-upload panel (its reconstruction
error), the codes' CSV and the sample grid (its PixelCNN prior) serve it.
Input the app cannot use raises `InputProblem`, whose message the page
shows; a model that computes NaN or infinity raises
`keras_vae.validation.NonFiniteOutputError`, which the page shows too.

The file is over 300 lines: every panel reads the slider axes, map
projections, training codes and reference scores that the constructor
computes once, so they stay together in one class; the maths it relies on
(`slerp`, `nearest_neighbours`, the projections) are functions above it.
"""

import csv
import importlib.util
import io

import numpy as np
import tensorflow as tf
from matplotlib import colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from keras_vae import export
from keras_vae.models import base
from keras_vae.validation import check_finite_output

MAP_WIDTH = 560
"""Width of the latent map image, in pixels."""

MAP_HEIGHT = 440
"""Height of the latent map image, in pixels."""

MAP_AXES = (0.13, 0.11, 0.58, 0.82)
"""Where the map's axes sit in its image (left, bottom, width, height, as fractions).

Fixed, so a click's pixel converts to map coordinates without drawing; the
legend sits to the right of the axes.
"""

MAX_SEED = 2 ** 31 - 1
"""Largest seed of the sample grid (TensorFlow's stateless seeds are int32)."""

SLIDER_RANGE = 4.0
"""The sliders run from -SLIDER_RANGE to SLIDER_RANGE standard deviations."""

MAX_NEIGHBOURS = 16
"""Most nearest training images a panel shows."""

PROJECTIONS = {"PCA": None, "t-SNE": "sklearn", "UMAP": "umap"}
"""The map's 2-D projections and the package each needs (PCA needs NumPy only)."""

INTERPOLATIONS = ("linear", "slerp")
"""The interpolation paths: a straight line, or spherical (`slerp`)."""


class InputProblem(ValueError):
    """Input the app cannot use; the message is shown in the page."""


def to_uint8(image):
    """Returns a model image in [0, 1] `(H, W, C)` as uint8 `(H, W)` or `(H, W, 3)`.

    Raises `NonFiniteOutputError` if the image holds NaN or infinity (a model
    with broken weights), rather than drawing garbage.

    Args:
        image: A float image in [0, 1], `(H, W, C)` (or `(H, W)`).
    """
    image = check_finite_output(np.asarray(image, "float32"), "The decoded image")
    image = np.clip(image, 0.0, 1.0)
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


def slerp(first, last, weights):
    """Spherical linear interpolation between two codes, float64 `(len(weights), D)`.

    With `omega` the angle between `first` and `last` (as vectors from the
    origin), the code at weight `t` is

        sin((1 - t) omega) / sin(omega) * first + sin(t omega) / sin(omega) * last,

    so `t = 0` and `t = 1` give the ends exactly, unit-norm ends give a path
    on the unit sphere at a constant angular speed, and the norm of other
    ends varies smoothly between theirs. Under a standard normal prior most
    codes lie near a sphere, where a straight line cuts through the
    improbable middle (White, "Sampling Generative Networks", 2016). Ends
    that point the same way (an angle under 1e-6 radians) are interpolated
    linearly, which is then the same path.

    Args:
        first: The code at `t = 0`, `(D,)`.
        last: The code at `t = 1`, `(D,)`.
        weights: The values of `t`, `(T,)`, usually in [0, 1].

    Returns:
        The codes along the arc, `(T, D)`.

    Raises:
        ValueError: an end is the zero code, or the ends point in opposite
            directions (no single arc joins them).

    Reference:
        Shoemake, "Animating Rotation with Quaternion Curves", SIGGRAPH 1985;
        White, "Sampling Generative Networks", 2016, https://arxiv.org/abs/1609.04468
    """
    first = np.asarray(first, "float64")
    last = np.asarray(last, "float64")
    weights = np.asarray(weights, "float64")[:, None]
    norms = np.linalg.norm(first), np.linalg.norm(last)
    if min(norms) == 0.0:
        raise ValueError("slerp needs two non-zero codes: the angle to the zero code is "
                         f"undefined. Received: codes of norms {norms[0]:.3g} and {norms[1]:.3g}")
    cosine = np.clip(first @ last / (norms[0] * norms[1]), -1.0, 1.0)
    omega = np.arccos(cosine)
    if omega < 1e-6:
        return (1.0 - weights) * first + weights * last
    if np.pi - omega < 1e-6:
        raise ValueError("slerp is undefined for codes that point in opposite directions "
                         f"(no single arc joins them). Received: an angle of {omega:.6f} rad")
    # Coefficients first: sin(omega) / sin(omega) is exactly 1, so the ends come back exactly.
    return (np.sin((1.0 - weights) * omega) / np.sin(omega) * first
            + np.sin(weights * omega) / np.sin(omega) * last)


def nearest_neighbours(codes, query, k):
    """Returns `(indices, distances)` of the `k` rows of `codes` nearest to `query`.

    Nearest by Euclidean distance, closest first (ties by index); exact (a
    brute-force search, fine for the explorer's thousand training codes).

    Args:
        codes: The codes searched, `(N, D)`.
        query: One code, `(D,)`.
        k: How many neighbours (at most N).

    Returns:
        int `(k,)` row indices of `codes` and float64 `(k,)` distances.
    """
    codes = np.asarray(codes, "float64")
    query = np.asarray(query, "float64")
    if codes.ndim != 2 or query.shape != codes.shape[1:]:
        raise ValueError(f"query must be one code of the searched codes' size "
                         f"{codes.shape[1:]}. Received: query.shape={query.shape}")
    if not 1 <= k <= len(codes):
        raise ValueError(f"k must be in [1, {len(codes)}]. Received: k={k}")
    distances = np.sqrt(np.sum((codes - query) ** 2, axis=1))
    order = np.argsort(distances, kind="stable")[:k]
    return order, distances[order]


def available_projections():
    """Returns the names of the map projections usable here: PCA, then t-SNE and UMAP if installed."""
    return [name for name, module in PROJECTIONS.items()
            if module is None or importlib.util.find_spec(module) is not None]


def _nonlinear_projection(name, codes, seed):
    """Returns `codes` `(N, D)` embedded in 2-D by t-SNE (scikit-learn) or UMAP (umap-learn)."""
    codes = np.asarray(codes, "float64")
    if name == "t-SNE":
        from sklearn.manifold import TSNE

        perplexity = min(30.0, (len(codes) - 1) / 3.0)
        embedding = TSNE(n_components=2, perplexity=perplexity, init="pca",
                         random_state=seed).fit_transform(codes)
    else:
        import umap

        embedding = umap.UMAP(n_components=2, n_neighbors=min(15, len(codes) - 1),
                              random_state=seed, n_jobs=1).fit_transform(codes)
    return np.asarray(embedding, "float64")


class Explorer:
    """The computations behind each panel of `keras-vae explore`.

    Args:
        model: A keras_vae model.
        train: `(x, y)` training images (and labels, or None); their codes
            set the slider directions, are the nearest neighbours searched
            and go into the CSV.
        test: `(x, y)` test images drawn on the map and interpolated; their
            scores rank an image's.
        max_sliders: Raw dimensions are used as sliders up to this latent
            size; above it, the top `max_sliders` principal directions.
        num_samples: Codes per image of the negative ELBO.
        seed: Seed of the negative ELBO's noise and of t-SNE and UMAP.
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
        self.x_train, self.y_train = train
        self.x_test, self.y_test = test
        if len(self.x_train) < 2 or len(self.x_test) < 2:
            raise ValueError(
                "Explorer needs at least 2 training and 2 test images. Received: "
                f"{len(self.x_train)} training and {len(self.x_test)} test images")
        latent_dim = model.latent_dim
        self.dark_background = bool(np.mean(_border(self.x_train)) < 0.5)
        self._projections = {}
        if not self.encodes:
            self._set_sliders(np.zeros(latent_dim), np.eye(latent_dim)[:max_sliders],
                              np.ones(min(latent_dim, max_sliders)), raw=True)
            return
        self.train_codes = self._codes(self.x_train, self.y_train)
        self.test_codes = self._codes(self.x_test, self.y_test)
        check_finite_output(self.train_codes, "The training images' codes")
        if not self.continuous:  # no sliders, no map: see the module docstring
            self.code_shape = tuple(model.code_spec.shape[1:])
            self._set_sliders(np.zeros(0), np.zeros((0, latent_dim)), np.zeros(0), raw=True)
            self.reference_scores = np.sort(self.scores(self.x_test, self.y_test))
            return
        codes = self.train_codes
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
            names = ("z[0]", "z[1]")
        else:
            self.map_center, self.map_axes = center, directions[:2]
            names = tuple(f"principal direction {i + 1} ({explained[i]:.0%} of the variance)"
                          for i in range(2))
        self._store_projection("PCA", (self.test_codes - self.map_center) @ self.map_axes.T,
                               names)
        self.reference_scores = np.sort(self.scores(self.x_test, self.y_test))

    # ------------------------------------------------------------ helpers

    def _codes(self, x, y):
        """The deterministic codes of images `x`, float64 `(N, D)` (flattened index maps)."""
        codes = self.model.latent_codes(x, self._labels(y))
        return np.asarray(codes).reshape(len(codes), -1).astype("float64")

    def _set_sliders(self, center, directions, scales, raw, explained=None):
        self.slider_center = np.asarray(center, "float64")
        self.slider_directions = np.asarray(directions, "float64")
        self.slider_scales = np.asarray(scales, "float64")
        if raw:
            self.slider_names = [f"z[{i}]" for i in range(len(directions))]
        else:
            self.slider_names = [f"principal direction {i + 1} ({share:.0%} of the variance)"
                                 for i, share in enumerate(explained)]

    def _store_projection(self, name, points, axis_names):
        low = np.percentile(points, 1, axis=0)
        high = np.percentile(points, 99, axis=0)
        pad = 0.1 * (high - low) + 1e-3
        extent = (low[0] - pad[0], high[0] + pad[0], low[1] - pad[1], high[1] + pad[1])
        self._projections[name] = (np.asarray(points, "float64"), extent, axis_names)

    @property
    def num_sliders(self):
        """How many latent sliders the model gets."""
        return len(self.slider_directions)

    @property
    def test_points(self):
        """The test codes on the PCA map, `(N, 2)`."""
        return self.projection("PCA")[0]

    @property
    def map_extent(self):
        """`(u_min, u_max, v_min, v_max)` of the PCA map."""
        return self.projection("PCA")[1]

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

    def _label_text(self, labels, index):
        return "" if labels is None else f", label {int(labels[index])}"

    def scores(self, x, y=None):
        """Negative ELBO (VAE) or reconstruction error (Autoencoder) of images `x`.

        Args:
            x: Images in [0, 1] at the model's input shape.
            y: Their classes, for a conditional model only.
        """
        return export.scores(self.model, x, self._labels(y), num_samples=self.num_samples,
                             seed=self.seed)

    def _require_encoder(self, what):
        if not self.encodes:
            raise InputProblem(f"This model ({type(self.model).__name__}) has no encoder: "
                               f"it cannot {what}.")

    def _require_continuous(self, what):
        if not self.continuous:
            raise InputProblem(
                f"This model ({type(self.model).__name__}) has discrete codes (index maps), "
                f"no continuous latent space: it cannot {what}. Use the code map, samples "
                "and draw-or-upload panels.")

    def _require_discrete(self, what):
        if self.continuous or not self.encodes:
            raise InputProblem(
                f"This model ({type(self.model).__name__}) has no discrete code maps: "
                f"it cannot {what}. Use the latent sliders and the map.")

    def _test_index(self, index, name):
        try:
            index = int(index)
        except (TypeError, ValueError, OverflowError):
            raise InputProblem(f"{name} must be an int. Received: {index!r}") from None
        if not 0 <= index < len(self.x_test):
            raise InputProblem(
                f"{name} must be in [0, {len(self.x_test)}). Received: {index}")
        return index

    def _check_k(self, k):
        try:
            k = int(k)
        except (TypeError, ValueError, OverflowError):
            raise InputProblem(f"The number of neighbours must be an int. Received: {k!r}") from None
        limit = min(MAX_NEIGHBOURS, len(self.x_train))
        if not 1 <= k <= limit:
            raise InputProblem(f"The number of neighbours must be in [1, {limit}]. "
                               f"Received: {k}")
        return k

    # ------------------------------------------------------------ sliders

    def slider_code(self, values, offset=None):
        """Returns the code `(latent_dim,)` that slider `values` (in standard deviations) pick.

        Args:
            values: One value per slider.
            offset: The part of a start code the sliders do not span
                (`slider_start`'s second output); None: zero.
        """
        self._require_continuous("decode slider values")
        values = np.asarray(values, "float64")
        if values.shape != (self.num_sliders,):
            raise InputProblem(
                f"Expected {self.num_sliders} slider values. Received: {values.shape[0]}")
        code = self.slider_center + (values * self.slider_scales) @ self.slider_directions
        return code if offset is None else code + np.asarray(offset, "float64")

    def slider_start(self, code):
        """Returns `(values, offset)`: slider positions that give `code` back exactly.

        `values` are the code's coordinates along the slider directions, in
        standard deviations, clipped to `SLIDER_RANGE`; `offset` is what the
        sliders do not show (the other directions, and what was clipped), so
        `slider_code(values, offset)` equals `code`.

        Args:
            code: A code `(latent_dim,)`.
        """
        code = np.asarray(code, "float64")
        centred = code - self.slider_center
        values = (centred @ self.slider_directions.T) / self.slider_scales
        values = np.clip(values, -SLIDER_RANGE, SLIDER_RANGE)
        return values, code - self.slider_code(values)

    def decode_sliders(self, values, label=None, offset=None):
        """Returns the image decoded from slider `values`, uint8.

        Args:
            values: One value per slider, in standard deviations along its direction.
            label: The class to decode as, for a conditional model only.
            offset: Added to the code (`slider_start`); None: zero.
        """
        return to_uint8(self._decode(self.slider_code(values, offset)[None], label)[0])

    def _start_text(self, source, values, offset):
        text = f"The sliders start from the code of {source}"
        clipped = np.abs(values) >= SLIDER_RANGE
        hidden = float(np.linalg.norm(offset))
        if hidden > 1e-6:
            text += (f"; what the sliders do not span (norm {hidden:.3g}"
                     + (", including values clipped at the sliders' range" if clipped.any()
                        else "") + ") is held fixed")
        return text + "."

    def sliders_from_test(self, index):
        """Returns `(values, offset, decoded uint8, text)`: sliders at test image `index`'s code.

        Args:
            index: Index of a test image.
        """
        self._require_encoder("encode a test image for the sliders")
        self._require_continuous("start sliders from an image")
        index = self._test_index(index, "The test image")
        values, offset = self.slider_start(self.test_codes[index])
        label = None if self.num_classes is None else int(self.y_test[index])
        decoded = self.decode_sliders(values, label, offset)
        source = f"test image {index}{self._label_text(self.y_test, index)}"
        return values, offset, decoded, self._start_text(source, values, offset)

    def sliders_from_image(self, image, label=None):
        """Returns `(values, offset, decoded uint8, text)`: sliders at an uploaded image's code.

        Args:
            image: The uploaded image (resized and converted as `prepare` does).
            label: Its class, for a conditional model only.
        """
        self._require_encoder("encode an uploaded image for the sliders")
        self._require_continuous("start sliders from an image")
        x, notes = self.prepare(image)
        label = self._check_class(label)
        code = self._codes(x, None if label is None else [label])[0]
        values, offset = self.slider_start(code)
        text = self._start_text("the uploaded image", values, offset)
        if notes:
            text += " Note: the image was " + " and ".join(notes) + "."
        return values, offset, self.decode_sliders(values, label, offset), text

    def slider_neighbours(self, values, k=8, label=None, offset=None):
        """Returns `(strip uint8, text)`: the `k` training images nearest the slider code.

        Args:
            values: One value per slider.
            k: How many neighbours.
            label: Unused by the search (codes are compared whatever their class);
                checked like the other panels' class.
            offset: As for `slider_code`.
        """
        self._require_encoder("search training codes")
        self._check_class(label)
        return self._neighbour_strip(self.slider_code(values, offset), k)

    def _neighbour_strip(self, code, k):
        k = self._check_k(k)
        indices, distances = nearest_neighbours(self.train_codes, code, k)
        strip = to_uint8(tile(self.x_train[indices], k))
        described = "; ".join(
            f"{i}" + ("" if self.y_train is None else f" (label {int(self.y_train[i])})")
            + f" at {d:.3g}" for i, d in zip(indices, distances))
        return strip, ("Nearest training images by Euclidean distance in code space "
                       f"(index at distance): {described}.")

    # ---------------------------------------------------------------- map

    def projection(self, name="PCA"):
        """Returns `(points (N, 2), extent, axis_names)` of the test codes under projection `name`.

        PCA (the top two principal directions of the training codes; the
        codes themselves when the latent space has 2 dimensions) is computed
        at construction; t-SNE and UMAP, where installed, on first use and
        kept (both embed the test codes alone, seeded by `seed`).

        Args:
            name: One of `available_projections()`.
        """
        self._require_encoder("map the test images")
        self._require_continuous("map the test images")
        if name not in self._projections:
            available = available_projections()
            if name not in available:
                hint = (f" ({name} needs the {PROJECTIONS[name]} package)"
                        if name in PROJECTIONS else "")
                raise InputProblem(f"The projection must be one of {available}{hint}. "
                                   f"Received: {name!r}")
            points = _nonlinear_projection(name, self.test_codes, self.seed)
            self._store_projection(name, points, (f"{name} 1", f"{name} 2"))
        return self._projections[name]

    def map_figure(self, projection="PCA", selected=None, first=None, last=None):
        """Returns the map of the test codes as a matplotlib `Figure`, `MAP_WIDTH x MAP_HEIGHT`.

        One colour and one legend entry per label (one colour, no legend,
        without labels), the axes named after the projection's directions;
        the selected test image is ringed, the interpolation ends marked A
        and B.

        Args:
            projection: One of `available_projections()`.
            selected: Index of the test image to ring, or None.
            first: Index of the interpolation's first test image (A), or None.
            last: Index of its last test image (B), or None.
        """
        points, extent, axis_names = self.projection(projection)
        figure = Figure(figsize=(MAP_WIDTH / 100, MAP_HEIGHT / 100), dpi=100)
        FigureCanvasAgg(figure)
        axis = figure.add_axes(MAP_AXES)
        if self.y_test is None:
            axis.scatter(points[:, 0], points[:, 1], s=4, color="tab:blue")
        else:
            labels = np.asarray(self.y_test)
            classes = np.unique(labels)
            palette = colormaps["tab10" if len(classes) <= 10 else "tab20"]
            for position, value in enumerate(classes):
                mine = labels == value
                axis.scatter(points[mine, 0], points[mine, 1], s=4, label=str(value),
                             color=palette(position % palette.N))
            axis.legend(title="label", loc="center left", bbox_to_anchor=(1.02, 0.5),
                        markerscale=3, fontsize=8, title_fontsize=8, frameon=False)
        for index, mark in ((selected, None), (first, "A"), (last, "B")):
            if index is None:
                continue
            index = self._test_index(index, "A marked test image")
            axis.scatter(*points[index], s=90, facecolors="none", edgecolors="black",
                         linewidths=1.5)
            if mark:
                axis.annotate(mark, points[index], xytext=(6, 6), textcoords="offset points",
                              fontsize=11, fontweight="bold")
        axis.set_xlim(extent[0], extent[1])
        axis.set_ylim(extent[2], extent[3])
        axis.set_xlabel(axis_names[0], fontsize=8)
        axis.set_ylabel(axis_names[1], fontsize=8)
        axis.tick_params(labelsize=7)
        axis.set_title(f"{len(points)} test codes, {projection} (click a point)", fontsize=9)
        return figure

    def map_image(self, projection="PCA", selected=None, first=None, last=None):
        """Returns `map_figure(...)` drawn, uint8 `(MAP_HEIGHT, MAP_WIDTH, 3)`.

        Args:
            projection: One of `available_projections()`.
            selected: Index of the test image to ring, or None.
            first: Index of the interpolation's first test image, or None.
            last: Index of its last test image, or None.
        """
        figure = self.map_figure(projection, selected, first, last)
        figure.canvas.draw()
        return np.asarray(figure.canvas.buffer_rgba())[..., :3].copy()

    def map_point(self, column, row, projection="PCA"):
        """Returns the map coordinates `(u, v)` of pixel `(column, row)` of `map_image`.

        Args:
            column: The pixel's column in the map image (from the left).
            row: The pixel's row in the map image (from the top).
            projection: The projection the map shows.
        """
        _, (x0, x1, y0, y1), _ = self.projection(projection)
        left, bottom, width, height = MAP_AXES
        across = ((column + 0.5) / MAP_WIDTH - left) / width
        up = (1.0 - (row + 0.5) / MAP_HEIGHT - bottom) / height
        slack = (2.0 / (MAP_WIDTH * width), 2.0 / (MAP_HEIGHT * height))  # two pixels
        if not (-slack[0] <= across <= 1.0 + slack[0] and -slack[1] <= up <= 1.0 + slack[1]):
            raise InputProblem(f"Click inside the map's axes. Received: pixel ({column}, {row})")
        across, up = np.clip([across, up], 0.0, 1.0)
        return float(x0 + across * (x1 - x0)), float(y0 + up * (y1 - y0))

    def nearest_test_image(self, column, row, projection="PCA"):
        """Returns the index of the test image drawn nearest to pixel `(column, row)` of the map.

        Distances are measured on the picture (each axis scaled by its extent).

        Args:
            column: The pixel's column in the map image (from the left).
            row: The pixel's row in the map image (from the top).
            projection: The projection the map shows.
        """
        u, v = self.map_point(column, row, projection)
        points, (x0, x1, y0, y1), _ = self.projection(projection)
        scale = np.array([(x1 - x0) / MAP_AXES[2], (y1 - y0) / MAP_AXES[3]])
        return int(nearest_neighbours(points / scale, np.array([u, v]) / scale, 1)[0][0])

    def decode_point(self, u, v, label=None):
        """Returns the image decoded from PCA map coordinates `(u, v)`, uint8.

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

    def test_image(self, index):
        """Returns `(image uint8, reconstruction uint8, text)` of test image `index`.

        Args:
            index: Index of a test image (`nearest_test_image` of a click).
        """
        self._require_encoder("reconstruct a test image")
        index = self._test_index(index, "The test image")
        labels = None if self.num_classes is None else self.y_test[index:index + 1]
        reconstruction = self.model.reconstruct(self.x_test[index:index + 1], labels)[0]
        text = f"Test image {index}{self._label_text(self.y_test, index)}"
        if self.continuous:
            u, v = self.test_points[index]
            text += f", at ({u:.3g}, {v:.3g}) on the PCA map"
        return to_uint8(self.x_test[index]), to_uint8(reconstruction), text + "."

    def test_neighbours(self, index, k=8):
        """Returns `(strip uint8, text)`: the `k` training images nearest test image `index`'s code.

        Args:
            index: Index of a test image.
            k: How many neighbours (at most `MAX_NEIGHBOURS`).
        """
        self._require_encoder("search training codes")
        self._require_continuous("search training codes by distance")
        index = self._test_index(index, "The test image")
        return self._neighbour_strip(self.test_codes[index], k)

    # ------------------------------------------------------- interpolation

    def interpolate(self, first, last, steps=8, label=None, method="linear"):
        """Returns a strip: test image `first`, `steps` decoded codes, test image `last`.

        Args:
            first: Index of the test image the strip starts from.
            last: Index of the test image it ends at.
            steps: Decoded codes between them (clipped to 2..32).
            label: The class to decode as, for a conditional model only.
            method: `"linear"` or `"slerp"` (spherical, see `slerp`).
        """
        self._require_encoder("encode the ends of an interpolation")
        self._require_continuous("interpolate between codes")
        first = self._test_index(first, "The first image")
        last = self._test_index(last, "The last image")
        if method not in INTERPOLATIONS:
            raise InputProblem(f"The interpolation must be one of {list(INTERPOLATIONS)}. "
                               f"Received: {method!r}")
        steps = max(2, min(int(steps), 32))
        ends = self.x_test[[first, last]]
        codes = self.test_codes[[first, last]]
        weights = np.linspace(0.0, 1.0, steps)
        if method == "linear":
            path = (1 - weights[:, None]) * codes[0] + weights[:, None] * codes[1]
        else:
            try:
                path = slerp(codes[0], codes[1], weights)
            except ValueError as error:
                raise InputProblem(str(error)) from None
        images = self._decode(path, label)
        return to_uint8(tile(np.concatenate([ends[:1], images, ends[1:]]), steps + 2))

    # --------------------------------------------------------------- codes

    def codes_csv(self):
        """Returns the codes of the training and test images as CSV text.

        Columns `index` (within its split), `label` (empty without labels),
        `split` (`train` or `test`), then one column per code dimension:
        `z0, z1, ...` for continuous codes, `code_R_C` (the index at row R,
        column C of the map) for discrete ones.
        """
        self._require_encoder("encode images to codes")
        if self.continuous:
            names = [f"z{i}" for i in range(self.train_codes.shape[1])]
        else:
            names = [f"code_{r}_{c}" for r in range(self.code_shape[0])
                     for c in range(self.code_shape[1])]
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(["index", "label", "split"] + names)
        for split, codes, labels in (("train", self.train_codes, self.y_train),
                                     ("test", self.test_codes, self.y_test)):
            for index, code in enumerate(codes):
                label = "" if labels is None else int(labels[index])
                values = ([f"{value:.7g}" for value in code] if self.continuous
                          else [str(int(value)) for value in code])
                writer.writerow([index, label, split] + values)
        return out.getvalue()

    # ------------------------------------------------------------ code map

    def _check_code_map(self, codes):
        if codes is None:
            raise InputProblem("No code map: show the code map of an image first.")
        try:
            codes = np.asarray(codes, "float64")
            return self.model.check_codes(codes[None])[0]
        except (TypeError, ValueError) as error:
            raise InputProblem(f"The code map is not one the model decodes: {error}") from None

    def decode_code_map(self, codes):
        """Returns the image decoded from one code map `(h, w)` of indices, uint8.

        Args:
            codes: A grid of code indices, ints in `[0, model.num_codes)`.
        """
        self._require_discrete("decode a code map")
        return to_uint8(self.model.decode(self._check_code_map(codes)[None])[0])

    def _code_map_of(self, x):
        codes = self.model.latent_codes(x)[0].reshape(self.code_shape)
        return codes.astype("int64"), self.decode_code_map(codes)

    def code_map(self, index):
        """Returns `(image, codes, decoded, text)` for test image `index`.

        `codes` is its map of indices, int `(h, w)`; `decoded` the image
        decoded from it (its reconstruction), uint8 like `image`.

        Args:
            index: Index of a test image.
        """
        self._require_discrete("show a code map")
        index = self._test_index(index, "The test image")
        codes, decoded = self._code_map_of(self.x_test[index:index + 1])
        text = (f"Test image {index}{self._label_text(self.y_test, index)}: "
                f"{self._code_map_text(codes)}")
        return to_uint8(self.x_test[index]), codes, decoded, text

    def code_map_of_image(self, image):
        """Returns `(image, codes, decoded, text)` for an uploaded image, as `code_map` does.

        Args:
            image: The uploaded image (resized and converted as `prepare` does).
        """
        self._require_discrete("show a code map")
        x, notes = self.prepare(image)
        codes, decoded = self._code_map_of(x)
        text = f"The uploaded image: {self._code_map_text(codes)}"
        if notes:
            text += " Note: the image was " + " and ".join(notes) + "."
        return to_uint8(x[0]), codes, decoded, text

    def _code_map_text(self, codes):
        h, w = self.code_shape
        return (f"a {h}x{w} map of indices into {self.model.num_codes} codebook vectors "
                f"({len(np.unique(codes))} distinct). Change a code to see it re-decoded.")

    def edit_code(self, codes, row, column, code):
        """Returns `(codes, decoded uint8, text)` with the code at `(row, column)` set to `code`.

        Args:
            codes: The current code map `(h, w)`.
            row: The row of the code to change.
            column: Its column.
            code: The new index, in `[0, model.num_codes)`.
        """
        self._require_discrete("change a code")
        codes = self._check_code_map(codes).astype("int64")
        h, w = self.code_shape
        values = {}
        for name, value, limit in (("row", row, h), ("column", column, w),
                                   ("code", code, self.model.num_codes)):
            try:
                value = float(value)
            except (TypeError, ValueError):
                raise InputProblem(f"The {name} must be an int. Received: {value!r}") from None
            if not (value.is_integer() and 0 <= value < limit):
                raise InputProblem(f"The {name} must be an int in [0, {limit}). "
                                   f"Received: {value:g}")
            values[name] = int(value)
        old = int(codes[values["row"], values["column"]])
        codes[values["row"], values["column"]] = values["code"]
        text = (f"Code at row {values['row']}, column {values['column']} changed from "
                f"{old} to {values['code']}.")
        return codes, self.decode_code_map(codes), text

    # ------------------------------------------------------ draw or upload

    def prepare(self, image):
        """Returns `(x, notes)`: an uploaded or drawn image as one model input `(1, H, W, C)`.

        Accepts a NumPy image (grey, RGB or RGBA, uint8 or float) or the
        dict of a drawing (its `composite`). Transparent pixels take the
        colour opposite the opaque ones (the ink); a light background is
        inverted when the training images have a dark one; another size is
        resized. Raises `InputProblem` for a missing or blank image.

        Args:
            image: The image, or the drawing's dict.
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
            background = 0.0 if ink.size and ink.mean() > 0.5 else 1.0
            image = image[..., :3] * alpha + background * (1.0 - alpha)
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
                f"{len(self.reference_scores)} test images")
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
