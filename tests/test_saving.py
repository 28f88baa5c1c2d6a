import json
import zipfile

import numpy as np
import pytest

from conftest import tiny_vae
from keras_vae import saving


def test_write_json_and_history_csv(tmp_path):
    saving.write_json(tmp_path / "a" / "h.json", {"loss": [2.0, 1.0]})
    assert json.loads((tmp_path / "a" / "h.json").read_text()) == {"loss": [2.0, 1.0]}
    saving.write_history_csv(tmp_path / "h.csv", {"loss": [2.0, 1.0], "kl_loss": [0.5, 0.4]})
    assert (tmp_path / "h.csv").read_text().splitlines() == [
        "epoch,kl_loss,loss", "1,0.5,2.0", "2,0.4,1.0"]
    assert oct((tmp_path / "h.csv").stat().st_mode & 0o777) != oct(0o600)


def test_a_crash_while_saving_keeps_the_old_file(tmp_path):
    target = tmp_path / "model.keras"
    vae = tiny_vae()
    saving.save_model(vae, target)
    good = target.read_bytes()

    class Exploding:
        def save(self, path, overwrite=True):
            path.write_bytes(good[: len(good) // 3])  # a partial write, then a crash
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        saving.save_model(Exploding(), target)
    assert target.read_bytes() == good
    assert [p.name for p in tmp_path.iterdir()] == ["model.keras"]  # no temp file left
    assert saving.load_model(target).latent_dim == 4


def test_load_model_names_bad_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="No model file at .*absent.keras"):
        saving.load_model(tmp_path / "absent.keras")
    text = tmp_path / "text.keras"
    text.write_text("not a model")
    with pytest.raises(ValueError, match="text.keras is not a .keras model file"):
        saving.load_model(text)
    good = tmp_path / "good.keras"
    saving.save_model(tiny_vae(), good)
    truncated = tmp_path / "truncated.keras"
    truncated.write_bytes(good.read_bytes()[:-5000])
    with pytest.raises(ValueError, match="truncated.keras"):
        saving.load_model(truncated)
    other = tmp_path / "other.keras"
    with zipfile.ZipFile(other, "w") as archive:
        archive.writestr("hello.txt", "a zip, but no model")
    with pytest.raises(ValueError, match="Could not load a Keras model from .*other.keras"):
        saving.load_model(other)
    np.testing.assert_equal(saving.load_model(good).latent_dim, 4)
