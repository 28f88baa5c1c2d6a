"""keras_vae.pretrained: a registry of shipped models, loaded in one call with a checksum check.

Models are registered with the maintainer's script, scripts/add_pretrained.py.
"""

import hashlib
import json

import keras
import numpy as np
import pytest

import keras_vae
from conftest import tiny_vae
from keras_vae import cli
from keras_vae import precision
from keras_vae import pretrained
from scripts import add_pretrained

SHIPPED = pretrained.names()


@pytest.fixture(scope="module")
def registered(tmp_path_factory, mnist_small):
    """A tiny VAE trained here and registered in a temporary registry."""
    (x_train, _), _ = mnist_small
    folder = tmp_path_factory.mktemp("pretrained")
    keras.utils.set_random_seed(0)
    vae = tiny_vae(seed=0)
    vae.compile(optimizer=keras.optimizers.Adam(3e-3))
    vae.fit(x_train, epochs=1, batch_size=64, verbose=0)
    vae.save(folder / "trained.keras")
    registry = folder / "registry" / "registry.json"
    entry = add_pretrained.add("tiny-vae", folder / "trained.keras",
                               command="pytest tests/test_pretrained.py", commit="0123abc",
                               nll=123.4, nll_num_samples=10, registry=registry, nll_images=64,
                               nll_precision="mixed_bfloat16", description="a tiny test VAE")
    return registry, entry, vae


def test_add_records_checksum_command_and_a_reproducible_mse(registered):
    registry, entry, vae = registered
    file = registry.parent / "tiny-vae.keras"
    assert entry["sha256"] == hashlib.sha256(file.read_bytes()).hexdigest()
    assert entry["file"] == "tiny-vae.keras" and entry["model"] == "VAE"
    assert (entry["command"], entry["commit"], entry["nll"]) == (
        "pytest tests/test_pretrained.py", "0123abc", 123.4)
    assert (entry["nll_images"], entry["nll_precision"], entry["description"]) == (
        64, "mixed_bfloat16", "a tiny test VAE")
    # The MSE on the first 100 MNIST test images, recomputed with NumPy.
    _, (x_test, _) = keras_vae.datasets.load("mnist")
    x = x_test[:100].astype("float64")
    expected = np.mean(np.square(vae.reconstruct(x_test[:100]).astype("float64") - x))
    assert entry["reconstruction_mse"] == pytest.approx(expected, rel=1e-6)
    assert json.loads(registry.read_text())["models"]["tiny-vae"] == entry
    readme = (registry.parent / "README.md").read_text()
    assert all(text in readme for text in (entry["sha256"], "0123abc", "a tiny test VAE",
                                           "123.40 (10, 64, mixed_bfloat16)",
                                           "pytest tests/test_pretrained.py"))


def test_the_registered_file_is_float32_without_an_optimizer(registered, tmp_path):
    """A bf16 checkpoint with its Adam state becomes a float32 model with the same weights."""
    registry, _, _ = registered
    keras.utils.set_random_seed(0)
    with precision.policy_scope("mixed_bfloat16"):
        mixed = tiny_vae(seed=0)
    mixed.compile(optimizer=keras.optimizers.Adam(1e-3))
    x = keras_vae.datasets.binarize(keras_vae.datasets.load("mnist")[1][0][:64], seed=0)
    mixed.fit(x, epochs=1, batch_size=64, verbose=0)
    mixed.save(tmp_path / "checkpoint.keras")
    assert precision.policy_of(keras.models.load_model(tmp_path / "checkpoint.keras")) == (
        "mixed_bfloat16")
    other = tmp_path / "other" / "registry.json"
    add_pretrained.add("mixed", tmp_path / "checkpoint.keras", "cmd", "abc", 100.0,
                       registry=other, nll_precision="mixed_bfloat16")
    shipped = pretrained.load("mixed", registry=other)
    assert precision.policy_of(shipped) == "float32"
    assert getattr(shipped, "optimizer", None) is None
    for ours, theirs in zip(shipped.get_weights(), mixed.get_weights()):
        np.testing.assert_array_equal(ours, theirs)
    checkpoint_bytes = (tmp_path / "checkpoint.keras").stat().st_size
    assert (other.parent / "mixed.keras").stat().st_size < 0.6 * checkpoint_bytes


def test_load_by_name_gives_the_registered_model(registered, mnist_small):
    registry, entry, vae = registered
    _, (x_test, _) = mnist_small
    assert pretrained.names(registry) == ["tiny-vae"]
    assert pretrained.info("tiny-vae", registry) == entry
    model = pretrained.load("tiny-vae", registry=registry)
    assert type(model) is keras_vae.VAE
    np.testing.assert_allclose(model.reconstruct(x_test[:8]), vae.reconstruct(x_test[:8]),
                               atol=1e-6)
    assert pretrained.reconstruction_mse(model) == pytest.approx(entry["reconstruction_mse"],
                                                                 rel=1e-5)


def test_unknown_names_and_damaged_files_are_one_line_errors(registered, tmp_path):
    registry, _, _ = registered
    with pytest.raises(ValueError, match=r"^Unknown pretrained model\. Received: "
                                         r"name='mnist-best'; known names: tiny-vae$"):
        pretrained.load("mnist-best", registry=registry)
    with pytest.raises(TypeError, match="name must be a string. Received: name=3"):
        pretrained.load(3, registry=registry)
    # A copy of the registry whose file has one byte changed, then none.
    copy = tmp_path / "registry.json"
    copy.write_text(registry.read_text())
    data = bytearray((registry.parent / "tiny-vae.keras").read_bytes())
    data[len(data) // 2] ^= 1
    (tmp_path / "tiny-vae.keras").write_bytes(bytes(data))
    with pytest.raises(ValueError, match="tiny-vae.keras is not the registered model: its "
                                         "sha256 is [0-9a-f]{64}, the registry records") as error:
        pretrained.load("tiny-vae", registry=copy)
    assert "\n" not in str(error.value)
    (tmp_path / "tiny-vae.keras").unlink()
    with pytest.raises(FileNotFoundError, match="registered but its file .* is missing"):
        pretrained.load("tiny-vae", registry=copy)


def test_the_command_line_takes_a_shipped_model_by_name(registered, monkeypatch, capsys):
    registry, entry, _ = registered
    monkeypatch.setattr(pretrained, "REGISTRY_PATH", registry)
    assert pretrained.path("tiny-vae") == registry.parent / entry["file"]
    assert cli.main(["evaluate", "pretrained:tiny-vae", "--limit", "16", "--num-samples", "4",
                     "--fid", "none", "--verbose", "0"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["model"] == "pretrained:tiny-vae" and report["settings"]["num_images"] == 16
    assert cli.main(["evaluate", "pretrained:mnist-best", "--verbose", "0"]) == 2
    error = capsys.readouterr().err.strip()
    assert error == ("keras-vae: error: Unknown pretrained model. Received: "
                     "name='mnist-best'; known names: tiny-vae")


def test_add_refuses_bad_names_and_duplicates(registered):
    registry, _, _ = registered
    model_file = registry.parent / "tiny-vae.keras"
    for bad in ("../escape", "Mnist", ""):
        with pytest.raises(ValueError, match="name must be lower-case"):
            add_pretrained.add(bad, model_file, "cmd", "abc", 1.0, registry=registry)
    with pytest.raises(ValueError, match="'tiny-vae' is registered already"):
        add_pretrained.add("tiny-vae", model_file, "cmd", "abc", 1.0, registry=registry)
    with pytest.raises(TypeError, match="nll must be a number"):
        add_pretrained.add("other", model_file, "cmd", "abc", "low", registry=registry)
    with pytest.raises(ValueError, match="Received: nll_precision='bf16'"):
        add_pretrained.add("other", model_file, "cmd", "abc", 1.0, registry=registry,
                           nll_precision="bf16")
    with pytest.raises(ValueError, match="without '|'.*Received: description='a | b'"):
        add_pretrained.add("other", model_file, "cmd", "abc", 1.0, registry=registry,
                           description="a | b")
    assert pretrained.names(registry) == ["tiny-vae"]


def test_the_script_registers_from_its_command_line(registered, tmp_path, capsys):
    registry, _, _ = registered
    other = tmp_path / "registry.json"
    assert add_pretrained.main([
        "copy", str(registry.parent / "tiny-vae.keras"), "--command", "cmd",
        "--commit", "abc", "--nll", "99.5", "--registry", str(other)]) == 0
    entry = json.loads(capsys.readouterr().out)
    assert pretrained.info("copy", other) == entry and entry["nll"] == 99.5
    assert "| copy | VAE | mnist |" in (tmp_path / "README.md").read_text()


def test_the_installed_package_only_reads_the_registry():
    assert not any(hasattr(pretrained, name)
                   for name in ("add", "write_readme", "readme_text", "portable"))
    assert pretrained.read_registry()[0] == pretrained.REGISTRY_PATH


def test_a_registry_written_before_the_newer_fields_still_makes_its_readme(tmp_path):
    registry = tmp_path / "registry.json"
    registry.write_text(json.dumps({"models": {"old": {
        "file": "old.keras", "sha256": "0" * 64, "model": "VAE", "dataset": "mnist",
        "command": "cmd", "commit": "abc", "nll": 90.0, "nll_num_samples": 1000,
        "reconstruction_mse": 0.01, "mse_images": 100}}}))
    assert "| old | VAE | mnist |  | 90.00 (1000, -, -) | 0.010000 |" in (
        add_pretrained.readme_text(registry))


def test_the_shipped_readme_is_written_from_the_shipped_registry():
    folder = pretrained.REGISTRY_PATH.parent
    assert (folder / "README.md").read_text() == add_pretrained.readme_text()
    for name in SHIPPED:
        entry = pretrained.info(name)
        assert (folder / entry["file"]).is_file()


@pytest.mark.parametrize("name", SHIPPED)
def test_every_shipped_model_has_a_card_that_agrees_with_its_registry_entry(name):
    entry = pretrained.info(name)
    card = pretrained.card(name)
    assert card == add_pretrained.card_text(name, entry)  # written from the registry
    for section in ("## Intended use", "## Training data", "## Training", "## Evaluation",
                    "## Limitations", "## Licence", "## How to cite"):
        assert section in card, section
    assert f"**{entry['nll']:.2f} nats per image**" in card
    assert f"K = {entry['nll_num_samples']} samples on {entry['nll_images']:,} test images" \
        in card
    assert f"--precision {entry['nll_precision']}" in card
    assert entry["sha256"] in card and entry["command"] in card
    assert all(reference in card for reference in entry["references"])
    assert "Apache-2.0" in card and "MNIST" in card


@pytest.mark.parametrize("name", SHIPPED)
def test_every_registry_command_runs_from_a_clone(name):
    """Relative paths only: no folder of the machine that trained the model."""
    command = pretrained.info(name)["command"]
    paths = [word for word in command.replace(";", " ").split() if "/" in word]
    assert paths and not any(word.startswith(("/", "~")) for word in paths), paths
    assert "python -m benchmarks." in command  # the repository's protocol, as the card says


def test_add_writes_the_card_and_a_missing_card_is_one_line(registered):
    registry, entry, _ = registered
    card = registry.parent / "cards" / "tiny-vae.md"
    assert card.read_text() == add_pretrained.card_text("tiny-vae", entry)
    card.unlink()
    with pytest.raises(FileNotFoundError, match="The model card of 'tiny-vae'"):
        pretrained.card("tiny-vae", registry=registry)
    add_pretrained.write_readme(registry)
    assert pretrained.card("tiny-vae", registry=registry).startswith(
        "# Model card: tiny-vae")


@pytest.mark.parametrize("name", SHIPPED or [pytest.param(None, marks=pytest.mark.skip(
    reason="no pretrained model is registered yet (keras_vae/resources/pretrained/"
           "registry.json is empty)"))])
def test_every_shipped_model_loads_and_reproduces_its_recorded_mse(name):
    entry = pretrained.info(name)
    model = pretrained.load(name)
    assert type(model).__name__ == entry["model"]
    assert entry["mse_images"] == pretrained.MSE_IMAGES
    assert pretrained.reconstruction_mse(model, entry["dataset"]) == pytest.approx(
        entry["reconstruction_mse"], rel=1e-4)


@pytest.fixture
def site(tmp_path):
    """A static HTTP server on 127.0.0.1 for `tmp_path / "site"`; yields `(url, requests)`."""
    import functools
    import http.server
    import threading

    folder = tmp_path / "site"
    folder.mkdir()
    requests = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            requests.append(self.path)

    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(Handler, directory=str(folder)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", requests
    finally:
        server.shutdown()
        server.server_close()


def test_a_model_published_at_a_url_is_fetched_once_and_checked(site, tmp_path):
    url, requests = site
    vae = tiny_vae(seed=3)
    vae.save(tmp_path / "site" / "vae.keras")
    digest = hashlib.sha256((tmp_path / "site" / "vae.keras").read_bytes()).hexdigest()
    cache = tmp_path / "cache"
    z = np.random.default_rng(0).standard_normal((3, 4)).astype("float32")
    loaded = pretrained.load_url(f"{url}/vae.keras", digest, cache_dir=cache)
    np.testing.assert_allclose(loaded.decode(z), vae.decode(z), atol=1e-6)
    assert len(requests) == 1
    again = pretrained.fetch(f"{url}/vae.keras", digest.upper(), cache_dir=cache)
    assert len(requests) == 1 and again.parent == cache / pretrained.CACHE_SUBDIR  # cached
    # A damaged cached copy is noticed (its hash) and downloaded again.
    again.write_bytes(again.read_bytes()[:-100])
    assert pretrained.sha256(pretrained.fetch(f"{url}/vae.keras", digest,
                                              cache_dir=cache)) == digest
    assert len(requests) == 2
    # A file that is not the published one is refused and not kept.
    wrong = "0" * 64
    with pytest.raises(ValueError, match=f"is not the model whose sha256 is {wrong}"):
        pretrained.fetch(f"{url}/vae.keras", wrong, cache_dir=cache)
    assert not list((cache / pretrained.CACHE_SUBDIR).glob("0000000000000000-*"))
    # A link whose path does not end in .keras (a download endpoint) still loads.
    (tmp_path / "site" / "download").write_bytes((tmp_path / "site" / "vae.keras").read_bytes())
    linked = pretrained.load_url(f"{url}/download?version=1", digest, cache_dir=cache)
    np.testing.assert_allclose(linked.decode(z), vae.decode(z), atol=1e-6)
    with pytest.raises(OSError, match=f"Could not download {url}/missing.keras"):
        pretrained.fetch(f"{url}/missing.keras", digest, cache_dir=cache)
    for bad, message in (({"file_hash": "abc"}, "file_hash must be a SHA-256"),
                         ({"url": "ftp://x/y.keras"}, "url must be an http")):
        arguments = {"url": f"{url}/vae.keras", "file_hash": digest, **bad}
        with pytest.raises(ValueError, match=message):
            pretrained.fetch(cache_dir=cache, **arguments)


def test_load_model_passes_remote_locations_to_keras(monkeypatch):
    from keras_vae import saving

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # no network here: fail at once
    with pytest.raises(ValueError, match="^Could not load a Keras model from "
                                         "hf://keras-vae/nothing: "):
        saving.load_model("hf://keras-vae/nothing")
    seen = []
    monkeypatch.setattr(keras.saving, "load_model", lambda path: seen.append(path) or "model")
    assert saving.load_model("gs://bucket/vae.keras") == "model"
    assert seen == ["gs://bucket/vae.keras"]
