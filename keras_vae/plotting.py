"""Pictures of what a VAE has learned, as matplotlib `Figure`s.

Every function is pure: it takes arrays (or a model to decode with) and
returns a new `matplotlib.figure.Figure`, drawn without pyplot, so it works
headless (Agg) and shows inline when it is the last expression of a notebook
cell. Save one with `fig.savefig("name.png")`.

The file is a little over 300 lines because every plot a reader may look
for lives here, each documented in full; a split would scatter them.
"""

import io

import matplotlib
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator

from keras_vae.validation import check_int


def _new_figure(width, height):
    figure = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def _as_images(images, name):
    images = np.asarray(images)
    if images.ndim != 4 or images.shape[-1] not in (1, 3):
        raise ValueError(
            f"{name} must have shape (N, height, width, 1 or 3). "
            f"Received: {name}.shape={images.shape}"
        )
    return images


def _show(axis, image):
    if image.shape[-1] == 1:
        axis.imshow(image[..., 0], cmap="gray", vmin=0.0, vmax=1.0)
    else:
        axis.imshow(np.clip(image, 0.0, 1.0))
    axis.set_xticks([])
    axis.set_yticks([])


def _grid(rows, row_labels=None, col_labels=None, title=None, cell=1.0):
    """Draws a list of image rows; each row is an array (N, H, W, C)."""
    nrows = len(rows)
    ncols = max(len(row) for row in rows)
    figure = _new_figure(cell * ncols + (1.0 if row_labels else 0.0), cell * nrows + 0.4)
    axes = figure.subplots(nrows, ncols, squeeze=False)
    for r, row in enumerate(rows):
        for c in range(ncols):
            axis = axes[r][c]
            if c < len(row):
                _show(axis, row[c])
            else:
                axis.set_axis_off()
        if row_labels:
            axes[r][0].set_ylabel(row_labels[r], rotation=0, ha="right", va="center")
    if col_labels:
        for c, label in enumerate(col_labels):
            axes[0][c].set_title(label, fontsize=8)
    if title:
        figure.suptitle(title)
    return figure


def plot_images(images, ncols=8, title=None):
    """Shows images in a grid of `ncols` columns (one panel per image).

    Args:
        images: Array `(N, height, width, 1 or 3)` in [0, 1].
        ncols: Panels per row.
        title: Optional title.

    Returns:
        A `Figure` with `N` image panels.
    """
    images = _as_images(images, "images")
    check_int("ncols", ncols)
    rows = [images[i:i + ncols] for i in range(0, len(images), ncols)]
    return _grid(rows, title=title)


def plot_reconstructions(originals, reconstructions, title="Originals (top) and reconstructions"):
    """Shows originals above their reconstructions.

    Args:
        originals: Array `(N, height, width, 1 or 3)` in [0, 1].
        reconstructions: Array of the same shape, in [0, 1].
        title: Optional title.

    Returns:
        A `Figure` with two rows of `N` panels.
    """
    originals = _as_images(originals, "originals")
    reconstructions = _as_images(reconstructions, "reconstructions")
    if originals.shape != reconstructions.shape:
        raise ValueError(
            "originals and reconstructions must have the same shape. Received: "
            f"{originals.shape} and {reconstructions.shape}"
        )
    return _grid([originals, reconstructions], row_labels=["input", "output"], title=title)


def plot_samples(model, n=16, seed=0, ncols=8, labels=None):
    """Shows `n` images the model decodes from prior draws (`model.sample`).

    Args:
        model: A model with `sample(n, labels=None, seed=None)`.
        n: Number of images.
        seed: Seed of the prior draws.
        ncols: Panels per row.
        labels: The classes to draw, for a conditional model only (`n`
            ints, or one int for all).

    Returns:
        A `Figure` with `n` image panels.
    """
    return plot_images(model.sample(n, labels=labels, seed=seed), ncols=ncols,
                       title=f"{n} samples from the prior")


def plot_frames(frames, frame_labels=None, title=None, cell=0.9):
    """Sets frames of the same images side by side: one column per frame.

    Made for pictures of training: the samples that fixed codes decode to
    after each epoch (`keras_vae.callbacks.ReconstructionPlotter` keeps
    them in `sample_frames`), so a row follows one code from left to right.

    Args:
        frames: Array `(F, N, height, width, 1 or 3)` in [0, 1]: F frames of
            the same N images, drawn as F columns of N rows; or a dict
            `{label: images}` (the callback's `{epoch: images}`), whose keys
            label the columns unless `frame_labels` is given.
        frame_labels: Optional list of F column titles (e.g. "epoch 3").
        title: Optional title.
        cell: Size of one image panel, in inches.

    Returns:
        A `Figure` with `N` rows of `F` image panels.

    Example:

    ```python
    plotter = keras_vae.callbacks.ReconstructionPlotter(x_test[:8], "plots", num_samples=8)
    vae.fit(x_train, epochs=5, callbacks=[plotter])
    plot_frames(plotter.sample_frames, title="Fixed codes, epoch by epoch")
    ```
    """
    if isinstance(frames, dict):
        if frame_labels is None:
            frame_labels = [f"epoch {key}" if isinstance(key, (int, np.integer)) else str(key)
                            for key in frames]
        frames = list(frames.values())
    frames = np.asarray(frames)
    if frames.ndim != 5 or frames.shape[0] == 0 or frames.shape[-1] not in (1, 3):
        raise ValueError(
            "frames must have shape (frames, N, height, width, 1 or 3) with at least one "
            f"frame. Received: frames.shape={frames.shape}")
    if frame_labels is not None and len(frame_labels) != len(frames):
        raise ValueError(
            f"frame_labels must have one label per frame. Received: {len(frame_labels)} "
            f"labels for {len(frames)} frames")
    rows = list(frames.transpose(1, 0, 2, 3, 4))
    return _grid(rows, col_labels=None if frame_labels is None else list(frame_labels),
                 title=title, cell=cell)


def _project_2d(z):
    """Returns 2-D coordinates of `z` and the axis labels used."""
    if z.shape[1] == 1:
        return np.concatenate([z, np.zeros_like(z)], axis=1), ("z[0]", "")
    if z.shape[1] == 2:
        return z, ("z[0]", "z[1]")
    centred = z - z.mean(axis=0)
    _, _, components = np.linalg.svd(centred, full_matrices=False)
    points = centred @ components[:2].T
    # Fewer than two codes have fewer than two components: pad with zeros.
    points = np.pad(points, ((0, 0), (0, 2 - points.shape[1])))
    return points, ("PCA 1", "PCA 2")


def plot_latent_scatter(z, labels=None, title=None):
    """Scatters latent codes (for example posterior means), coloured by label.

    With a 2-D latent the two dimensions are shown directly; otherwise the
    codes are projected on their first two principal components and the axes
    say so.

    Args:
        z: Codes of shape `(N, latent_dim)`.
        labels: Optional int labels of length `N`: one colour per class and
            a legend.
        title: Optional title.

    Returns:
        A `Figure` with one panel.
    """
    z = np.asarray(z, dtype="float64")
    if z.ndim != 2 or z.shape[0] == 0:
        raise ValueError(f"z must have shape (N, latent_dim). Received: z.shape={z.shape}")
    points, (xlabel, ylabel) = _project_2d(z)
    figure = _new_figure(5.5, 4.5)
    axis = figure.subplots()
    if labels is None:
        axis.scatter(points[:, 0], points[:, 1], s=4, alpha=0.6)
    else:
        labels = np.asarray(labels).reshape(-1)
        if labels.shape[0] != z.shape[0]:
            raise ValueError(
                f"labels must have one entry per code. Received: {labels.shape[0]} "
                f"labels for {z.shape[0]} codes"
            )
        # Labels are categories: one tab10 colour each and a legend, no colour bar.
        classes, index = np.unique(labels, return_inverse=True)
        colours = matplotlib.colormaps["tab10"](index % 10)
        axis.scatter(points[:, 0], points[:, 1], c=colours, s=4, alpha=0.7)
        handles = [Line2D([], [], marker="o", linestyle="", color=colour)
                   for colour in matplotlib.colormaps["tab10"](np.arange(len(classes)) % 10)]
        axis.legend(handles, [str(c) for c in classes], title="label", fontsize=7,
                    markerscale=0.8, loc="center left", bbox_to_anchor=(1.0, 0.5))
    axis.set_xlabel(xlabel)
    axis.set_ylabel(ylabel)
    axis.set_title(title or ("Latent space" if xlabel.startswith("z") else
                             "Latent space (PCA projection)"))
    return figure


def _decode_grid(model, codes, nrows, ncols, labels=None):
    images = model.decode(codes, labels)
    return [images[r * ncols:(r + 1) * ncols] for r in range(nrows)]


def plot_latent_manifold(model, n=15, extent=2.5, labels=None):
    """Decodes a regular grid over a 2-D latent plane into one mosaic.

    Args:
        model: A model with `latent_dim == 2` and a `decode` method.
        n: Grid points along each axis.
        extent: The grid spans `[-extent, extent]` in each latent dimension
            (the prior's standard deviations).
        labels: The class to render every code as (one int), for a
            conditional model only.

    Returns:
        A `Figure` with one panel: an `n x n` mosaic of decoded images.
    """
    if model.latent_dim != 2:
        raise ValueError(
            "plot_latent_manifold needs a 2-D latent space. Received: "
            f"latent_dim={model.latent_dim}; use plot_latent_traversal instead"
        )
    axis_values = np.linspace(-extent, extent, n)
    codes = np.array([[x, y] for y in axis_values[::-1] for x in axis_values], "float32")
    images = model.decode(codes, labels)
    height, width, channels = images.shape[1:]
    mosaic = images.reshape(n, n, height, width, channels).transpose(0, 2, 1, 3, 4)
    mosaic = mosaic.reshape(n * height, n * width, channels)
    figure = _new_figure(6, 6)
    axis = figure.subplots()
    _show(axis, mosaic)
    ticks = np.arange(n) * width + width / 2
    labels = [f"{v:.1f}" for v in axis_values]
    axis.set_xticks(ticks, labels, fontsize=6)
    axis.set_yticks(ticks, labels[::-1], fontsize=6)
    axis.set_xlabel("z[0]")
    axis.set_ylabel("z[1]")
    axis.set_title("Decoded latent plane")
    return figure


def plot_interpolation(model, start, end, steps=10, labels=None):
    """Decodes evenly spaced points on the line between two images' latents.

    Args:
        model: A model with `latent_codes` and `decode` methods.
        start: One image `(height, width, channels)`.
        end: Another image of the same shape.
        steps: Points on the line, both ends included.
        labels: For a conditional model only, the classes of `start` and
            `end`, a pair. Each image is encoded with its class, and each
            point is decoded with the class of the nearer end (the first
            half of the row with `start`'s class, the rest with `end`'s).

    Returns:
        A `Figure` with one row of `steps` panels, from `start` to `end`.
    """
    check_int("steps", steps, minimum=2)
    _require_continuous_codes(model, "plot_interpolation")
    pair = np.stack([np.asarray(start), np.asarray(end)])
    z_mean = model.latent_codes(pair, labels)
    weights = np.linspace(0.0, 1.0, steps)[:, None]
    codes = ((1 - weights) * z_mean[0] + weights * z_mean[1]).astype("float32")
    classes = None
    if labels is not None:
        classes = np.where(weights[:, 0] < 0.5, *np.asarray(labels).reshape(2))
    return _grid(_decode_grid(model, codes, 1, steps, classes),
                 col_labels=[f"{w:.2f}" for w in weights[:, 0]],
                 title="Interpolation between two latent codes")


def _require_continuous_codes(model, what):
    """Raises `ValueError` for a model whose codes are discrete indices (a `VQVAE`)."""
    if model.code_spec.dtype.is_integer:
        raise ValueError(
            f"{what} moves along continuous codes; {type(model).__name__}'s codes are "
            f"discrete indices (code maps). Received: model={type(model).__name__}")


TRAVERSAL_VALUES = tuple(np.linspace(-3, 3, 9))
"""The default values of `plot_latent_traversal`: -3 to 3 in 9 steps."""


def plot_latent_traversal(model, image, dims=None, values=TRAVERSAL_VALUES, labels=None):
    """Varies one latent dimension at a time around an image's code.

    Args:
        model: A model with `latent_codes`, `decode` and `latent_dim`.
        image: One image `(height, width, channels)` whose posterior mean is
            the starting code.
        dims: Latent dimensions to vary (default: all, at most 16).
        values: Values each dimension is set to, one column each
            (default `TRAVERSAL_VALUES`).
        labels: The image's class (one int), for a conditional model only;
            every code is decoded as that class.

    Returns:
        A `Figure` with one row per dimension and one column per value.
    """
    _require_continuous_codes(model, "plot_latent_traversal")
    z_mean = model.latent_codes(np.asarray(image)[None], labels)
    dims = list(range(min(model.latent_dim, 16))) if dims is None else list(dims)
    for dim in dims:
        if not 0 <= dim < model.latent_dim:
            raise ValueError(
                f"dims must be in [0, {model.latent_dim}). Received: dims={dims}")
    values = np.asarray(values, dtype="float32")
    codes = np.repeat(z_mean, len(dims) * len(values), axis=0)
    for r, dim in enumerate(dims):
        codes[r * len(values):(r + 1) * len(values), dim] = values
    return _grid(_decode_grid(model, codes, len(dims), len(values), labels),
                 row_labels=[f"z[{d}]" for d in dims],
                 col_labels=[f"{v:+.1f}" for v in values],
                 title="Latent traversal")


_CURVES = (("loss", "Loss (reconstruction + beta x KL)"),
           ("reconstruction_loss", "Reconstruction"),
           ("kl_loss", "KL divergence (the rate)"))


def plot_history(history):
    """Plots loss, reconstruction and KL per epoch, train and validation.

    The loss panel is titled the negative ELBO only when the history's
    `beta` (logged by the KL schedules) was 1 at every epoch; otherwise it
    is the beta-weighted training loss, which is not a bound on log p(x).

    Args:
        history: A `keras.callbacks.History` or its `.history` dict.

    Returns:
        A `Figure` with one panel per curve found (at most three).
    """
    logs = getattr(history, "history", history)
    labels = dict(_CURVES)
    if "beta" in logs and all(float(beta) == 1.0 for beta in logs["beta"]):
        labels["loss"] = "Loss (negative ELBO, beta = 1)"
    curves = [(key, labels[key]) for key, _ in _CURVES if key in logs]
    if not curves:
        raise ValueError(
            "history has none of the keys loss, reconstruction_loss, kl_loss. "
            f"Received: keys {sorted(logs)}"
        )
    figure = _new_figure(4 * len(curves), 3.2)
    axes = figure.subplots(1, len(curves), squeeze=False)[0]
    for axis, (key, label) in zip(axes, curves):
        epochs = np.arange(1, len(logs[key]) + 1)
        axis.plot(epochs, logs[key], marker="o", label="train")
        if f"val_{key}" in logs:
            axis.plot(epochs, logs[f"val_{key}"], marker="o", label="validation")
        axis.set_title(label)
        axis.set_xlabel("epoch")
        if "kl_loss" in logs:  # a VAE's terms are nats per image
            axis.set_ylabel("nats per image")
        axis.xaxis.set_major_locator(MaxNLocator(integer=True))
        axis.legend()
    return figure


def figure_to_png(figure):
    """Returns the PNG bytes of a figure (for files and TensorBoard)."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    return buffer.getvalue()
