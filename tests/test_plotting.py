import matplotlib
import numpy as np
import pytest
from matplotlib.figure import Figure

from conftest import tiny_vae
from keras_vae import plotting


def _images(n, shape=(28, 28, 1), seed=0):
    return np.random.default_rng(seed).random((n,) + shape).astype("float32")


def _image_panels(figure):
    return [axis for axis in figure.axes if axis.images]


def test_plot_images_has_one_panel_per_image():
    figure = plotting.plot_images(_images(10), ncols=4)
    assert isinstance(figure, Figure)
    assert len(_image_panels(figure)) == 10
    colour = plotting.plot_images(_images(3, (8, 8, 3)))
    assert len(_image_panels(colour)) == 3
    with pytest.raises(ValueError, match="images must have shape"):
        plotting.plot_images(np.zeros((2, 8, 8)))


def test_plot_reconstructions_two_rows():
    x = _images(5)
    figure = plotting.plot_reconstructions(x, 1 - x)
    assert len(_image_panels(figure)) == 10
    with pytest.raises(ValueError, match="same shape"):
        plotting.plot_reconstructions(x, x[:4])


def test_png_is_a_real_non_blank_image():
    png = plotting.figure_to_png(plotting.plot_images(_images(4)))
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 2000


@pytest.fixture(scope="module")
def vae2():
    return tiny_vae(latent_dim=2)


def test_model_plots(vae2):
    x = _images(2)
    assert len(_image_panels(plotting.plot_samples(vae2, n=6))) == 6
    assert len(_image_panels(plotting.plot_interpolation(vae2, x[0], x[1], steps=7))) == 7
    traversal = plotting.plot_latent_traversal(vae2, x[0], values=[-2, 0, 2])
    assert len(_image_panels(traversal)) == 2 * 3
    manifold = plotting.plot_latent_manifold(vae2, n=5)
    panels = _image_panels(manifold)
    assert len(panels) == 1
    assert panels[0].images[0].get_array().shape == (5 * 28, 5 * 28)


def test_manifold_needs_2d_latent():
    with pytest.raises(ValueError, match="needs a 2-D latent space.*latent_dim=4"):
        plotting.plot_latent_manifold(tiny_vae(latent_dim=4))


def test_traversal_rejects_bad_dims(vae2):
    with pytest.raises(ValueError, match=r"dims must be in \[0, 2\)"):
        plotting.plot_latent_traversal(vae2, _images(1)[0], dims=[3])


def test_latent_scatter_direct_and_projected():
    rng = np.random.default_rng(0)
    figure = plotting.plot_latent_scatter(rng.normal(size=(50, 2)), labels=np.arange(50) % 3)
    axis = figure.axes[0]
    assert axis.get_xlabel() == "z[0]" and axis.get_ylabel() == "z[1]"
    assert len(axis.collections[0].get_offsets()) == 50
    # Labels are categories: a legend entry per class in tab10 colours, no colour bar.
    assert len(figure.axes) == 1
    legend = axis.get_legend()
    assert [text.get_text() for text in legend.get_texts()] == ["0", "1", "2"]
    tab10 = matplotlib.colormaps["tab10"].colors
    np.testing.assert_allclose(axis.collections[0].get_facecolors()[:3, :3], tab10[:3])
    projected = plotting.plot_latent_scatter(rng.normal(size=(50, 6)))
    assert projected.axes[0].get_xlabel() == "PCA 1"
    assert "PCA" in projected.axes[0].get_title()
    # The projection keeps the direction of largest spread.
    z = np.zeros((40, 3))
    z[:, 2] = np.linspace(-5, 5, 40)
    offsets = plotting.plot_latent_scatter(z).axes[0].collections[0].get_offsets()
    np.testing.assert_allclose(np.abs(offsets[:, 0]), np.abs(z[:, 2]), atol=1e-9)
    with pytest.raises(ValueError, match="one entry per code"):
        plotting.plot_latent_scatter(rng.normal(size=(5, 2)), labels=[1, 2])


def test_plot_frames_puts_each_frame_in_its_column():
    frames = np.stack([_images(3, (6, 6, 1), seed=seed) for seed in range(4)])  # 4 frames of 3
    figure = plotting.plot_frames(frames, frame_labels=["a", "b", "c", "d"], title="strip")
    panels = _image_panels(figure)
    assert len(panels) == 12 and figure._suptitle.get_text() == "strip"
    for index, axis in enumerate(panels):  # row-major: row = image, column = frame
        row, column = divmod(index, 4)
        np.testing.assert_array_equal(axis.images[0].get_array(), frames[column, row, ..., 0])
    assert [axis.get_title() for axis in panels[:4]] == ["a", "b", "c", "d"]
    # The callback's {epoch: images} dict labels the columns by epoch, in its order.
    by_epoch = plotting.plot_frames({2: frames[0], 5: frames[1]})
    panels = _image_panels(by_epoch)
    assert [axis.get_title() for axis in panels[:2]] == ["epoch 2", "epoch 5"]
    np.testing.assert_array_equal(panels[1].images[0].get_array(), frames[1, 0, ..., 0])
    with pytest.raises(ValueError, match=r"frames must have shape .* Received: frames.shape=\(3, 6, 6, 1\)"):
        plotting.plot_frames(frames[0])
    with pytest.raises(ValueError, match="one label per frame. Received: 2 labels for 4 frames"):
        plotting.plot_frames(frames, frame_labels=["a", "b"])


def test_plot_history_panels_and_lines():
    history = {"loss": [3, 2], "val_loss": [3.5, 2.5], "reconstruction_loss": [2, 1.5],
               "val_reconstruction_loss": [2.5, 2], "kl_loss": [1, 0.5]}
    figure = plotting.plot_history(history)
    assert len(figure.axes) == 3
    assert [len(axis.lines) for axis in figure.axes] == [2, 2, 1]
    np.testing.assert_array_equal(figure.axes[0].lines[1].get_ydata(), [3.5, 2.5])
    with pytest.raises(ValueError, match="none of the keys"):
        plotting.plot_history({"accuracy": [1]})


@pytest.mark.parametrize("betas, title", [
    (None, "Loss (reconstruction + beta x KL)"),
    ([0.5, 1.0], "Loss (reconstruction + beta x KL)"),
    ([1.0, 1.0], "Loss (negative ELBO, beta = 1)"),
])
def test_plot_history_calls_the_loss_the_negative_elbo_only_at_beta_one(betas, title):
    """Issue 33, Found 3: a panel titled "negative ELBO" showed the beta-weighted loss."""
    history = {"loss": [3, 2], "reconstruction_loss": [2, 1.5], "kl_loss": [2, 1]}
    if betas is not None:
        history["beta"] = betas
    figure = plotting.plot_history(history)
    assert figure.axes[0].get_title() == title
    assert [axis.get_ylabel() for axis in figure.axes] == ["nats per image"] * 3
