"""keras_vae.export and `keras-vae export`: SavedModels that serve what the Keras model computes."""

import importlib.util
import json
import os

import numpy as np
import pytest
import tensorflow as tf

import keras_vae
from conftest import run_python
from keras_vae import cli
from keras_vae import export
from keras_vae import models


def small_vae(latent_dim=2, seed=0):
    model = keras_vae.build_vae(latent_dim=latent_dim, filters=(4, 8), hidden_units=16,
                                seed=seed)
    # Push the posterior means away from the prior's, so the KL part of the
    # negative ELBO is several nats and a scorer that drops it is caught.
    dense = model.encoder.get_layer("z_mean")
    kernel, bias = dense.get_weights()
    dense.set_weights([kernel, bias + 2.0])
    return model


def images(n=5, seed=1):
    return (np.random.RandomState(seed).rand(n, 28, 28, 1) > 0.6).astype("float32")


def numpy_negative_elbo(model, x, num_samples, seed):
    """-ELBO in float64 from the model's encode/decode, Bernoulli likelihood."""
    mean, log_var = (a.astype("float64") for a in model.encode(x))
    # The shared draws VAE.log_weights documents for shared_noise=True.
    eps = tf.random.stateless_normal([num_samples, model.latent_dim], seed=[seed, 0])
    eps = eps.numpy().astype("float64")
    z = mean[None] + np.exp(0.5 * log_var)[None] * eps[:, None]  # (K, N, D)
    p = model.decode(z.reshape(-1, model.latent_dim).astype("float32")).astype("float64")
    p = np.clip(p.reshape((num_samples,) + x.shape), 1e-12, 1 - 1e-12)
    log_px = (x * np.log(p) + (1 - x) * np.log1p(-p)).reshape(num_samples, len(x), -1).sum(-1)
    log_pz = (-0.5 * z ** 2 - 0.5 * np.log(2 * np.pi)).sum(-1)
    log_qz = (-0.5 * eps[:, None] ** 2 - 0.5 * log_var[None]
              - 0.5 * np.log(2 * np.pi)).sum(-1)
    return -(log_px + log_pz - log_qz).mean(axis=0)


def test_negative_elbo_matches_a_numpy_reference_and_the_iwae_estimator():
    model, x = small_vae(), images()
    got = export.scores(model, x, num_samples=64, seed=3)
    np.testing.assert_allclose(got, numpy_negative_elbo(model, x, 64, 3), rtol=2e-6)
    # The same quantity, estimated with other noise by the evaluation module.
    other = keras_vae.anomaly.anomaly_scores(model, x, "neg_elbo", num_samples=400)
    np.testing.assert_allclose(got, other, rtol=2e-3)
    # Shared noise: an image's score does not depend on its batch.
    np.testing.assert_allclose(export.scores(model, x[2:3], num_samples=64, seed=3),
                               got[2:3], rtol=1e-6)


def test_saved_models_reload_in_a_fresh_process_and_match_the_model(tmp_path):
    model, x = small_vae(), images()
    z = np.random.RandomState(2).randn(4, 2).astype("float32")
    paths = export.export_model(model, tmp_path / "served", num_samples=16, seed=1)
    assert set(paths) == {"decoder", "encoder", "scorer"}
    np.savez(tmp_path / "inputs.npz", x=x, z=z)
    # The serving process imports TensorFlow only: no keras_vae, no Keras model.
    result = run_python(f"""
        import numpy as np, tensorflow as tf
        inputs = np.load({str(tmp_path / "inputs.npz")!r})
        paths = {json.dumps(paths)}
        out = {{}}
        decoder = tf.saved_model.load(paths["decoder"])
        assert set(decoder.signatures) == {{"decode", "serving_default"}}
        out["counts"] = tf.constant([
            len([name for name, _ in tf.train.list_variables(paths[part] + "/variables/variables")
                 if name.endswith("VARIABLE_VALUE")])
            for part in ("decoder", "encoder", "scorer")])
        out["images"] = decoder.signatures["decode"](codes=tf.constant(inputs["z"]))["images"]
        encoder = tf.saved_model.load(paths["encoder"])
        encoded = encoder.signatures["encode"](images=tf.constant(inputs["x"]))
        out["mean"], out["log_variance"] = encoded["mean"], encoded["log_variance"]
        scorer = tf.saved_model.load(paths["scorer"])
        out["neg_elbo"] = scorer.signatures["serving_default"](
            images=tf.constant(inputs["x"]))["neg_elbo"]
        np.savez({str(tmp_path / "outputs.npz")!r}, **{{k: v.numpy() for k, v in out.items()}})
        import sys
        print("keras_vae" in sys.modules)
    """, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip() == "False"
    out = np.load(tmp_path / "outputs.npz")
    # Each part holds only the weights it reads: the decoder's and the encoder's apart,
    # both in the scorer (the likelihood needs the decoder, the posterior the encoder).
    decoder_weights, encoder_weights = len(model.decoder.weights), len(model.encoder.weights)
    assert list(out["counts"]) == [decoder_weights, encoder_weights,
                                   decoder_weights + encoder_weights]
    np.testing.assert_allclose(out["images"], model.decode(z), atol=1e-6)
    mean, log_var = model.encode(x)
    np.testing.assert_allclose(out["mean"], mean, atol=1e-6)
    np.testing.assert_allclose(out["log_variance"], log_var, atol=1e-6)
    np.testing.assert_allclose(out["neg_elbo"], export.scores(model, x, num_samples=16, seed=1),
                               rtol=1e-6)
    np.testing.assert_allclose(out["neg_elbo"], numpy_negative_elbo(model, x, 16, 1), rtol=2e-6)


def test_a_conditional_models_signatures_take_labels(tmp_path):
    model = models.build_conditional_vae(latent_dim=2, num_classes=3, filters=(4, 8),
                                         hidden_units=16, seed=0)
    x, labels = images(4), np.array([0, 2, 1, 2], "int32")
    z = np.random.RandomState(3).randn(4, 2).astype("float32")
    paths = export.export_model(model, tmp_path, num_samples=8)
    decode = tf.saved_model.load(paths["decoder"]).signatures["decode"]
    got = decode(codes=tf.constant(z), labels=tf.constant(labels))["images"].numpy()
    np.testing.assert_allclose(got, model.decode(z, labels), atol=1e-6)
    assert np.abs(got - model.decode(z, np.zeros(4, "int32"))).max() > 1e-4
    encode = tf.saved_model.load(paths["encoder"]).signatures["encode"]
    mean = encode(images=tf.constant(x), labels=tf.constant(labels))["mean"].numpy()
    np.testing.assert_allclose(mean, model.encode(x, labels)[0], atol=1e-6)
    score = tf.saved_model.load(paths["scorer"]).signatures["score"]
    got = score(images=tf.constant(x), labels=tf.constant(labels))["neg_elbo"].numpy()
    np.testing.assert_allclose(got, export.scores(model, x, labels, num_samples=8), rtol=1e-6)


def test_an_autoencoder_exports_codes_and_a_reconstruction_error(tmp_path):
    model = models.build_autoencoder(latent_dim=3, filters=(4, 8), hidden_units=16)
    x = images(3)
    paths = export.export_model(model, tmp_path)
    codes = tf.saved_model.load(paths["encoder"]).signatures["encode"](
        images=tf.constant(x))
    assert set(codes) == {"codes"}
    np.testing.assert_allclose(codes["codes"].numpy(), model.latent_codes(x), atol=1e-6)
    error = tf.saved_model.load(paths["scorer"]).signatures["score"](
        images=tf.constant(x))["reconstruction_error"].numpy()
    expected = ((model.reconstruct(x).astype("float64") - x) ** 2).reshape(3, -1).sum(1)
    np.testing.assert_allclose(error, expected, rtol=1e-5)


def test_a_gan_exports_its_decoder_only(tmp_path):
    model = models.build_dcgan(latent_dim=4, filters=(4, 8), seed=0)
    with pytest.warns(export.ExportWarning) as caught:
        assert set(export.export_model(model, tmp_path)) == {"decoder"}
    assert sorted(str(w.message) for w in caught) == [
        "The encoder was not exported: DCGAN has no encoder.",
        "The scorer was not exported: DCGAN has no encoder."]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["decoder"]  # no scratch left


def test_a_failed_export_leaves_the_folder_as_it_was(tmp_path, monkeypatch):
    """Every part is built aside first: a failure on the last part writes nothing."""
    model = small_vae()
    (tmp_path / "served").mkdir()
    (tmp_path / "served" / "notes.txt").write_text("mine")
    original = export._write_saved_model

    def fail_on_the_scorer(model, path, name, function, signature):
        if name == "score":
            raise OSError("No space left on device")
        return original(model, path, name, function, signature)

    monkeypatch.setattr(export, "_write_saved_model", fail_on_the_scorer)
    with pytest.raises(OSError, match="No space left"):
        export.export_model(model, tmp_path / "served")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["served"]
    assert sorted(p.name for p in (tmp_path / "served").iterdir()) == ["notes.txt"]
    with pytest.raises(OSError, match="No space left"):
        export.export_model(model, tmp_path / "new")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["served"]  # no "new", no scratch
    # The scratch folder is inside the target (the same filesystem, so a mount point
    # works, and the parent need not be writable), and it is gone afterwards.
    monkeypatch.setattr(export, "_write_saved_model", original)
    scratch_dirs = []
    real_mkdtemp = export.tempfile.mkdtemp
    monkeypatch.setattr(export.tempfile, "mkdtemp", lambda **kwargs: (
        scratch_dirs.append(kwargs.get("dir")) or real_mkdtemp(**kwargs)))
    assert set(export.export_model(model, tmp_path / "served", parts=["decoder"])) == {
        "decoder"}
    assert scratch_dirs == [tmp_path / "served"]
    assert sorted(p.name for p in (tmp_path / "served").iterdir()) == ["decoder", "notes.txt"]


class _Killed(BaseException):
    """Stands for SIGKILL: nothing after it runs, not even `finally` clean-ups of _commit."""


def _fake_export(folder, names, text):
    for name in names:
        (folder / name).mkdir(parents=True)
        (folder / name / "saved_model.pb").write_text(text)


def _contents(folder):
    return {p.name: (p / "saved_model.pb").read_text() for p in folder.iterdir()
            if not p.name.startswith(".")}


@pytest.mark.parametrize("renames_before_kill", range(7))
def test_an_export_killed_while_moving_parts_in_is_undone_by_the_next(
        tmp_path, monkeypatch, renames_before_kill):
    """Issue 30, Found 4: SIGKILL during `export --overwrite` left encoder/ and scorer/
    and no decoder. At every point of the renames, the next export's recovery gives back
    the previous export whole (the scorer is new: it did not exist before)."""
    folder = tmp_path / "served"
    _fake_export(folder, ["decoder", "encoder"], "old")
    scratch = folder / (export.SCRATCH_PREFIX + "x")
    _fake_export(scratch / "new", ["decoder", "encoder", "scorer"], "new")
    real_rename, count = type(folder).rename, [0]

    def rename_then_maybe_die(self, target):
        if count[0] == renames_before_kill:
            raise _Killed
        count[0] += 1
        return real_rename(self, target)

    monkeypatch.setattr(type(folder), "rename", rename_then_maybe_die)
    try:
        export._commit(folder, scratch, ["decoder", "encoder", "scorer"])
        killed = False
    except _Killed:
        killed = True
    monkeypatch.setattr(type(folder), "rename", real_rename)
    assert killed == (renames_before_kill < 5)  # 2 old parts out + 3 new parts in
    export.recover_export(folder)
    expected = ({"decoder": "old", "encoder": "old"} if killed
                else {"decoder": "new", "encoder": "new", "scorer": "new"})
    assert _contents(folder) == expected
    assert sorted(p.name for p in folder.iterdir()) == sorted(expected)  # no scratch left


def test_a_second_export_into_a_folder_in_use_is_refused_in_one_line(tmp_path, capsys):
    """Issue 30, Found 4: two concurrent exports into one folder both exited 0, mixing
    the decoder of one model with the encoder and scorer of the other."""
    from keras_vae.folder_lock import FolderLock

    model_path = tmp_path / "model.keras"
    keras_vae.saving.save_model(small_vae(), model_path)
    with FolderLock(tmp_path / "served"):
        assert cli.main(["export", str(model_path), "--output",
                         str(tmp_path / "served")]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.count("\n") == 1
    assert captured.err.startswith(f"keras-vae: error: {tmp_path / 'served'} is in use by "
                                   f"another keras-vae process (pid {os.getpid()})")
    assert list((tmp_path / "served").iterdir()) == []


def test_existing_parts_are_kept_unless_overwrite(tmp_path):
    model = small_vae()
    export.export_model(model, tmp_path)
    with pytest.raises(FileExistsError, match="overwrite"):
        export.export_model(model, tmp_path)
    export.export_model(model, tmp_path, overwrite=True)
    with pytest.raises(ValueError, match="format must be one of"):
        export.export_model(model, tmp_path, format="pickle")


def test_onnx_without_tf2onnx_is_a_one_line_error_naming_the_extra(tmp_path, capsys,
                                                                    monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "tf2onnx", None)  # as if it were not installed
    path = tmp_path / "model.keras"
    small_vae().save(path)
    assert cli.main(["export", str(path), "--output", str(tmp_path / "out"),
                     "--format", "onnx"]) == 2
    error = capsys.readouterr().err.strip()
    assert error.count("\n") == 0
    assert "tf2onnx" in error and "keras_vae[onnx]" in error


@pytest.mark.skipif(importlib.util.find_spec("tf2onnx") is None
                    or importlib.util.find_spec("onnxruntime") is None,
                    reason="needs tf2onnx and onnxruntime (pip install 'keras_vae[onnx]')")
def test_onnx_decoder_runs_in_onnxruntime(tmp_path):
    import onnxruntime

    model = small_vae()
    # The Bernoulli scorer's TFP ops (BroadcastArgs, MulNoNan) have no ONNX
    # conversion: the scorer is left out, with a warning naming them.
    with pytest.warns(export.ExportWarning, match="scorer was not exported.*BroadcastArgs"):
        paths = export.export_model(model, tmp_path, format="onnx")
    assert set(paths) == {"decoder", "encoder"}
    assert not (tmp_path / "scorer.onnx").exists()
    z = np.random.RandomState(4).randn(3, 2).astype("float32")
    session = onnxruntime.InferenceSession(paths["decoder"])
    (got,) = session.run(None, {session.get_inputs()[0].name: z})
    np.testing.assert_allclose(got, model.decode(z), atol=1e-5)
    session = onnxruntime.InferenceSession(paths["encoder"])
    x = images(3)
    names = [output.name for output in session.get_outputs()]
    got = dict(zip(names, session.run(None, {session.get_inputs()[0].name: x})))
    assert sorted(got) == ["log_variance", "mean"], names
    np.testing.assert_allclose(got["mean"], model.encode(x)[0], atol=1e-5)


@pytest.mark.slow
def test_litert_decoder_matches_the_model(tmp_path):
    model = small_vae()
    paths = export.export_model(model, tmp_path, format="litert")
    assert set(paths) == {"decoder", "encoder", "scorer"}
    interpreter = tf.lite.Interpreter(model_path=paths["decoder"])
    runner = interpreter.get_signature_runner("decode")
    z = np.random.RandomState(5).randn(1, 2).astype("float32")
    np.testing.assert_allclose(runner(codes=z)["images"], model.decode(z), atol=1e-5)


def test_cli_export_prints_the_parts_and_refuses_other_models(tmp_path, capsys):
    path = tmp_path / "model.keras"
    small_vae().save(path)
    assert cli.main(["export", str(path), "--output", str(tmp_path / "out"),
                     "--num-samples", "4"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert {part: entry["signature"] for part, entry in report["parts"].items()} == {
        "decoder": "decode", "encoder": "encode", "scorer": "score"}
    assert (tmp_path / "out" / "scorer" / "saved_model.pb").exists()
    import keras

    other = tmp_path / "other.keras"
    keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)]).save(other)
    assert cli.main(["export", str(other), "--output", str(tmp_path / "o2")]) == 2
    assert "not a keras_vae model" in capsys.readouterr().err


def test_parts_named_are_exported_or_the_command_fails_writing_nothing(tmp_path, capsys):
    vae = small_vae()
    assert set(export.export_model(vae, tmp_path / "one", parts=["decoder"])) == {"decoder"}
    assert sorted(p.name for p in (tmp_path / "one").iterdir()) == ["decoder"]
    gan = models.build_dcgan(latent_dim=4, filters=(4, 8), seed=0)
    with pytest.raises(export.MissingPartError,
                       match="The encoder cannot be exported: DCGAN has no encoder"):
        export.export_model(gan, tmp_path / "gan", parts=["decoder", "encoder"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["one"]  # nothing written
    for bad in (["decoder", "decoder"], [], ["weights"]):
        with pytest.raises(ValueError, match="parts must name distinct parts"):
            export.export_model(vae, tmp_path / "bad", parts=bad)
    path = tmp_path / "gan.keras"
    gan.save(path)
    capsys.readouterr()
    assert cli.main(["export", str(path), "--output", str(tmp_path / "served"),
                     "--parts", "encoder"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err == ("keras-vae: error: The encoder cannot be exported: DCGAN "
                                 "has no encoder.\n")
    assert not (tmp_path / "served").exists()


@pytest.mark.slow
def test_litert_quantization_makes_smaller_files_that_stay_close(tmp_path):
    model = keras_vae.build_vae(latent_dim=4, filters=(8, 16), hidden_units=64, seed=0)
    z = np.random.RandomState(5).randn(8, 4).astype("float32")
    sizes, decoded = {}, {}
    x = images(4)
    for quantize in export.QUANTIZATIONS:
        paths = export.export_model(model, tmp_path / quantize, format="litert",
                                    parts=["decoder", "scorer"], quantize=quantize,
                                    num_samples=8)
        sizes[quantize] = (tmp_path / quantize / "decoder.tflite").stat().st_size
        runner = tf.lite.Interpreter(model_path=paths["decoder"]).get_signature_runner()
        decoded[quantize] = runner(codes=z)["images"]
        # The scorer is never quantized: the float32 negative ELBO whatever --quantize says.
        scorer = tf.lite.Interpreter(model_path=paths["scorer"]).get_signature_runner()
        np.testing.assert_allclose(scorer(images=x)["neg_elbo"],
                                   export.scores(model, x, num_samples=8), rtol=1e-5)
    # float16 halves the weights and int8 quarters them (the graph itself stays).
    assert sizes["float16"] < 0.7 * sizes["none"] and sizes["dynamic_int8"] < sizes["float16"]
    expected = model.decode(z)
    np.testing.assert_allclose(decoded["none"], expected, atol=1e-5)
    assert 0 < np.abs(decoded["float16"] - expected).max() < 1e-2
    assert 0 < np.abs(decoded["dynamic_int8"] - expected).max() < 0.1
    with pytest.raises(ValueError, match="quantize applies to format='litert' only"):
        export.export_model(model, tmp_path / "x", quantize="float16")
