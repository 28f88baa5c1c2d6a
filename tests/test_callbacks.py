import keras
import numpy as np
import pytest
import tensorflow as tf

from conftest import tiny_vae
from keras_vae import callbacks


def _fit(x, epochs, cbs, seed=0):
    keras.utils.set_random_seed(seed)
    vae = tiny_vae(seed=seed)
    vae.compile(optimizer=keras.optimizers.Adam(2e-3))
    history = vae.fit(x, epochs=epochs, batch_size=64, shuffle=False, verbose=0, callbacks=cbs)
    return vae, history.history


def _read_png(path):
    return tf.io.decode_png(path.read_bytes()).numpy()


def test_plotter_writes_distinct_non_blank_pngs(mnist_small, tmp_path):
    (x, _), (x_test, _) = mnist_small
    plotter = callbacks.ReconstructionPlotter(x_test[:6], tmp_path / "plots", num_samples=8)
    _fit(x[:256], 3, [plotter])
    names = sorted(p.name for p in (tmp_path / "plots").iterdir())
    assert names == ["epoch_001.png", "epoch_002.png", "epoch_003.png",
                     "samples_001.png", "samples_002.png", "samples_003.png"]
    first = _read_png(tmp_path / "plots" / "epoch_001.png")
    last = _read_png(tmp_path / "plots" / "epoch_003.png")
    assert first.shape == last.shape and first.shape[0] > 100
    assert first.std() > 10  # not blank
    assert np.mean(first != last) > 0.001  # training changed the reconstructions


def test_plotter_keeps_the_frames_it_draws(mnist_small, tmp_path):
    (x, _), (x_test, _) = mnist_small
    plotter = callbacks.ReconstructionPlotter(x_test[:3], tmp_path, every=2, num_samples=5,
                                              seed=4)
    vae, _ = _fit(x[:128], 4, [plotter])
    assert list(plotter.sample_frames) == [2, 4] and list(plotter.reconstruction_frames) == [2, 4]
    # The fixed codes are the seed's standard normal draws, decoded by the final model last.
    np.testing.assert_array_equal(
        plotter.sample_codes,
        np.random.default_rng(4).standard_normal((5, vae.latent_dim)).astype("float32"))
    np.testing.assert_allclose(plotter.sample_frames[4], vae.decode(plotter.sample_codes),
                               atol=1e-6)
    np.testing.assert_allclose(plotter.reconstruction_frames[4], vae.reconstruct(x_test[:3]),
                               atol=1e-6)
    assert np.abs(plotter.sample_frames[2] - plotter.sample_frames[4]).mean() > 1e-3


def test_plotter_every_n_epochs(mnist_small, tmp_path):
    (x, _), (x_test, _) = mnist_small
    plotter = callbacks.ReconstructionPlotter(x_test[:4], tmp_path, every=2)
    _fit(x[:128], 5, [plotter])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["epoch_002.png", "epoch_004.png"]


def test_plotter_does_not_change_training(mnist_small, tmp_path):
    (x, _), (x_test, _) = mnist_small
    _, without = _fit(x[:256], 2, [])
    plotter = callbacks.ReconstructionPlotter(x_test[:4], tmp_path, num_samples=4)
    _, with_plots = _fit(x[:256], 2, [plotter])
    assert without == with_plots


def test_plotter_writes_tensorboard_images(mnist_small, tmp_path):
    (x, _), (x_test, _) = mnist_small
    plotter = callbacks.ReconstructionPlotter(x_test[:4], log_dir=tmp_path / "logs",
                                              num_samples=4)
    _fit(x[:128], 2, [plotter, keras.callbacks.TensorBoard(tmp_path / "logs")])
    event_files = list((tmp_path / "logs" / "images").glob("events.out.tfevents.*"))
    assert event_files
    tags = set()
    for event in tf.compat.v1.train.summary_iterator(str(event_files[0])):
        for value in event.summary.value:
            tags.add((value.tag, event.step))
    assert {("reconstructions", 1), ("reconstructions", 2), ("samples", 2)} <= tags


def test_plotter_shows_figures_inline(mnist_small, monkeypatch):
    import IPython.display

    (x, _), (x_test, _) = mnist_small
    shown = []
    monkeypatch.setattr(IPython.display, "display", shown.append)
    plotter = callbacks.ReconstructionPlotter(x_test[:4], show=True, num_samples=4)
    _fit(x[:64], 2, [plotter])
    assert len(shown) == 4 and plotter.saved_files == []
    assert [len(f.axes) for f in shown] == [8, 4, 8, 4]


def test_beta_reaches_tensorboard_when_schedule_comes_first(mnist_small, tmp_path):
    (x, _), _ = mnist_small
    logs = tmp_path / "logs"
    _fit(x[:64], 2, [callbacks.LinearKLWarmup(length=2), keras.callbacks.TensorBoard(logs)])
    tags = set()
    for path in (logs / "train").glob("events.out.tfevents.*"):
        for event in tf.compat.v1.train.summary_iterator(str(path)):
            tags.update(value.tag for value in event.summary.value)
    assert "epoch_beta" in tags


def test_backup_and_restore_resumes_weights_optimizer_and_beta(mnist_small, tmp_path):
    """The documented Python way to resume: keras.callbacks.BackupAndRestore."""
    (x, _), _ = mnist_small

    class Crash(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 1:
                raise KeyboardInterrupt

    backup = keras.callbacks.BackupAndRestore(tmp_path / "backup")
    schedule = callbacks.LinearKLWarmup(length=4)
    vae = tiny_vae()
    vae.compile(optimizer="adam")
    with pytest.raises(KeyboardInterrupt):
        vae.fit(x[:128], epochs=4, batch_size=64, verbose=0,
                callbacks=[schedule, backup, Crash()])
    saved = [w.copy() for w in vae.get_weights()]

    fresh = tiny_vae()
    fresh.compile(optimizer="adam")
    seen = {}

    class Probe(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            if not seen:
                seen["epoch"] = epoch
                seen["iterations"] = int(self.model.optimizer.iterations.numpy())
                seen["weights"] = [w.copy() for w in self.model.get_weights()]

    history = fresh.fit(x[:128], epochs=4, batch_size=64, verbose=0,
                        callbacks=[Probe(), schedule, backup])
    assert seen["epoch"] == 2 and seen["iterations"] == 4  # 2 epochs of 2 steps
    for before, after in zip(saved, seen["weights"]):
        np.testing.assert_array_equal(before, after)
    assert history.history["beta"] == [0.5, 0.75]


def test_plotter_rejects_bad_arguments(mnist_small):
    _, (x_test, _) = mnist_small
    with pytest.raises(ValueError, match="somewhere to put"):
        callbacks.ReconstructionPlotter(x_test[:2])
    with pytest.raises(ValueError, match="every must be a positive int"):
        callbacks.ReconstructionPlotter(x_test[:2], "out", every=0)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        callbacks.ReconstructionPlotter(x_test[:2] * 255, "out")


def test_linear_warmup_values():
    schedule = callbacks.LinearKLWarmup(target=2.0, length=4)
    assert [schedule.value(t) for t in range(6)] == [0.0, 0.5, 1.0, 1.5, 2.0, 2.0]


def test_cyclical_values():
    schedule = callbacks.CyclicalKLAnnealing(target=1.0, total=8, cycles=2, ratio=0.5)
    assert [schedule.value(t) for t in range(10)] == [0.0, 0.5, 1.0, 1.0, 0.0, 0.5, 1.0,
                                                      1.0, 1.0, 1.0]


def test_epoch_schedule_sets_beta_and_logs_it(mnist_small):
    (x, _), _ = mnist_small
    schedule = callbacks.LinearKLWarmup(target=1.0, length=4)
    vae, history = _fit(x[:128], 3, [schedule])
    assert history["beta"] == [0.0, 0.25, 0.5]
    assert float(vae.beta.numpy()) == 0.5
    # In epoch 1 (beta = 0) the loss is the reconstruction term alone.
    np.testing.assert_allclose(history["loss"][0], history["reconstruction_loss"][0],
                               rtol=1e-5)


def test_step_schedule_follows_optimizer_steps(mnist_small):
    (x, _), _ = mnist_small
    schedule = callbacks.CyclicalKLAnnealing(target=1.0, total=8, cycles=2, ratio=0.5,
                                             unit="step")
    seen = []

    class Spy(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            seen.append(logs["beta"])

    # 128 images in batches of 64: 2 steps an epoch, 3 epochs.
    _, history = _fit(x[:128], 3, [schedule, Spy()])
    assert seen == [0.0, 0.5, 1.0, 1.0, 0.0, 0.5]
    assert history["beta"] == [0.5, 1.0, 0.5]


def test_schedule_needs_a_beta_variable(mnist_small):
    (x, _), _ = mnist_small
    model = keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Flatten(),
                              keras.layers.Dense(1)])
    model.compile(optimizer="adam", loss="mse")
    with pytest.raises(TypeError, match="needs a model with a `beta` variable"):
        model.fit(x[:8], np.zeros(8), verbose=0, callbacks=[callbacks.LinearKLWarmup()])


@pytest.mark.parametrize("kwargs, match", [({"length": 0}, "length"),
                                           ({"target": -1.0}, "target"),
                                           ({"unit": "batch"}, "unit")])
def test_warmup_rejects_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        callbacks.LinearKLWarmup(**kwargs)


def test_cyclical_rejects_bad_ratio():
    with pytest.raises(ValueError, match="ratio"):
        callbacks.CyclicalKLAnnealing(ratio=0)


def test_divergence_guard_stops_and_restores_last_good_weights(mnist_small):
    (x, _), _ = mnist_small
    keras.utils.set_random_seed(0)
    vae = tiny_vae()
    vae.compile(optimizer=keras.optimizers.Adam(1e-3))
    vae.fit(x[:128], epochs=1, batch_size=64, verbose=0)
    good = [w.copy() for w in vae.get_weights()]
    # A huge learning rate blows the weights up within a few steps.
    vae.compile(optimizer=keras.optimizers.SGD(1e12))
    guard = callbacks.DivergenceGuard()
    with pytest.raises(callbacks.TrainingDivergedError, match="Training diverged at epoch 1"):
        vae.fit(x[:256], epochs=3, batch_size=32, verbose=0, callbacks=[guard])
    assert guard.good_epoch == 0 and guard.diverged["metric"].endswith("loss")
    for before, after in zip(good, vae.get_weights()):
        np.testing.assert_array_equal(before, after)
    assert "the weights it started with were restored" in guard.message()


def test_divergence_guard_keeps_weights_of_last_finite_epoch(mnist_small):
    (x, _), _ = mnist_small
    vae = tiny_vae()
    vae.compile(optimizer="adam")

    class PoisonAtEpoch2(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            if epoch == 1:
                self.model.encoder.get_layer("z_mean").bias.assign(
                    np.full(4, np.nan, "float32"))

    snapshots = []

    class Snapshot(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            snapshots.append([w.copy() for w in self.model.get_weights()])

    guard = callbacks.DivergenceGuard(raise_error=False)
    history = vae.fit(x[:128], epochs=4, batch_size=64, verbose=0,
                      callbacks=[Snapshot(), PoisonAtEpoch2(), guard])
    assert guard.diverged["epoch"] == 2 and guard.good_epoch == 1
    assert len(history.history["loss"]) == 2  # stopped in epoch 2
    for before, after in zip(snapshots[0], vae.get_weights()):
        np.testing.assert_array_equal(before, after)
    assert all(np.all(np.isfinite(w)) for w in vae.get_weights())


def test_history_checkpoint_writes_each_epoch_and_truncates_on_resume(mnist_small, tmp_path):
    (x, _), _ = mnist_small
    path = tmp_path / "history.json"
    checkpoint = callbacks.HistoryCheckpoint(path)
    vae, _ = _fit(x[:128], 3, [checkpoint])
    import json
    stored = json.loads(path.read_text())
    assert len(stored["loss"]) == 3 and stored == checkpoint.history
    # A resumed fit that starts at epoch 2 drops the stored third epoch.
    resumed = callbacks.HistoryCheckpoint(path)
    vae.fit(x[:128], epochs=4, initial_epoch=2, batch_size=64, verbose=0,
            callbacks=[resumed])
    assert len(resumed.history["loss"]) == 4
    assert resumed.history["loss"][:2] == stored["loss"][:2]
    path.write_text("{broken")
    with pytest.raises(ValueError, match="history.json is not valid JSON"):
        vae.fit(x[:64], epochs=1, verbose=0, callbacks=[callbacks.HistoryCheckpoint(path)])


def test_latent_diagnostics_log_active_units_and_kl_per_dimension(mnist_small):
    (x, _), (x_test, _) = mnist_small
    diagnostics = callbacks.LatentDiagnostics(x_test, every=2)
    vae, history = _fit(x[:256], 4, [diagnostics])
    assert diagnostics.epochs == [2, 4]
    assert len(history["active_units"]) == 2
    from keras_vae import evaluation

    assert history["active_units"][-1] == evaluation.active_units(vae, x_test)["active_units"]
    np.testing.assert_allclose(diagnostics.kl_history[-1],
                               evaluation.kl_per_dimension(vae, x_test), rtol=1e-6)
    assert diagnostics.kl_history[-1].shape == (4,)


def test_plotter_reconstructs_and_samples_a_conditional_vae(mnist_small, tmp_path):
    from keras_vae import models

    (x, y), (x_test, y_test) = mnist_small
    cvae = models.build_conditional_vae(latent_dim=4, filters=(8,), hidden_units=16, seed=0)
    cvae.compile(optimizer="adam")
    plotter = callbacks.ReconstructionPlotter(x_test[:4], tmp_path, labels=y_test[:4],
                                              num_samples=10)
    cvae.fit(x[:128], y[:128], epochs=1, verbose=0, callbacks=[plotter])
    assert sorted(p.name for p in plotter.saved_files) == ["epoch_001.png", "samples_001.png"]
    with pytest.raises(ValueError, match="num_samples > 0"):
        callbacks.ReconstructionPlotter(None, tmp_path)


def test_atomic_backup_moves_a_truncated_metadata_file_aside_and_starts_again(
        mnist_small, tmp_path, capsys):
    """Its docstring's promise for any unreadable checkpoint; a truncated
    training_metadata.json used to raise out of on_train_begin."""
    (x, _), _ = mnist_small
    backup = tmp_path / "backup"
    vae = tiny_vae()
    vae.compile(optimizer="adam")
    vae.fit(x[:64], epochs=1, batch_size=64, verbose=0,
            callbacks=[callbacks.AtomicBackupAndRestore(backup)])
    metadata = backup / "training_metadata.json"
    truncated = metadata.read_text()[:7]  # cut short, as a full disk leaves it
    metadata.write_text(truncated)
    fresh = tiny_vae()
    fresh.compile(optimizer="adam")
    history = fresh.fit(x[:64], epochs=2, batch_size=64, verbose=0,
                        callbacks=[callbacks.AtomicBackupAndRestore(backup)])
    assert len(history.history["loss"]) == 2  # from the first epoch again
    (aside,) = backup.glob("unreadable-checkpoint-*")
    assert (aside / "training_metadata.json").read_text() == truncated
    assert (aside / "latest.weights.h5").is_file()
    notes = [line for line in capsys.readouterr().err.splitlines() if "cannot be read" in line]
    assert len(notes) == 1 and str(metadata) in notes[0] and str(aside) in notes[0]
