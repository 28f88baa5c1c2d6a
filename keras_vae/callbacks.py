"""Callbacks: they show a VAE learning, schedule its KL weight and keep its run safe.

Callbacks only decide *when* to draw and *where* to put the pictures; the
drawing itself is done by the pure functions of `keras_vae.plotting`, and the
files of TensorBoard's Projector by `keras_vae.projector`. The others stop a
diverged run (`DivergenceGuard`), keep its history (`HistoryCheckpoint`) and
checkpoint every epoch without ever leaving a half-written file
(`AtomicBackupAndRestore`).
"""

import json
import math
import os
import pathlib
import sys
import time

import keras
import numpy as np
import tensorflow as tf

from keras_vae import evaluation
from keras_vae import plotting
from keras_vae import projector
from keras_vae import saving
from keras_vae.models import base as model_base
from keras_vae.validation import check_images
from keras_vae.validation import check_int
from keras_vae.validation import check_number


class ReconstructionPlotter(keras.callbacks.Callback):
    """Saves, every N epochs, reconstructions of a fixed batch (and samples).

    Reconstructions use the posterior mean, and samples decode a fixed set
    of prior draws chosen once at the start, so successive pictures show
    only what training changed. The callback draws no random numbers from
    the model, so a seeded run has the same history with or without it.

    Files are named `epoch_001.png`, `epoch_002.png`, ... and, with
    `num_samples > 0`, `samples_001.png`, ... inside `output_dir`. The
    images drawn are also kept, `{epoch: images}` in `reconstruction_frames`
    and `sample_frames` (`sample_codes` holds the fixed prior draws), so
    `keras_vae.plotting.plot_frames` can set the epochs side by side.

    Args:
        images: Held-out images `(N, height, width, channels)` in [0, 1];
            keep N small (8 to 16). None draws samples only (for a model
            without an encoder, such as `DCGAN`).
        labels: The images' classes, for a conditional model (one whose
            `num_classes` is set) only; its samples cycle through the classes
            `0, 1, ...`.
        output_dir: Folder for the PNG files, created if needed; None writes
            no files.
        every: Draw every `every` epochs.
        num_samples: Prior samples drawn as well (0 for none).
        seed: Seed of the fixed prior draws.
        show: Also display the figures inline (in a notebook).
        log_dir: Optional TensorBoard log folder; the same grids are written
            there as image summaries (run `images`).

    Example:

    ```python
    plotter = keras_vae.callbacks.ReconstructionPlotter(x_test[:10], "plots",
                                                        num_samples=16)
    vae.fit(x_train, epochs=10, callbacks=[plotter])
    ```
    """

    def __init__(self, images, output_dir=None, every=1, num_samples=0, seed=0,
                 show=False, log_dir=None, labels=None):
        super().__init__()
        if images is None and not num_samples:
            raise ValueError(
                "ReconstructionPlotter needs images to reconstruct or num_samples > 0. "
                "Received: images=None, num_samples=0")
        self.images = None if images is None else check_images(
            images, name="images").astype("float32")
        self.labels = None if labels is None else np.asarray(labels, "int32")
        check_int("every", every)
        check_int("num_samples", num_samples, minimum=0)
        if output_dir is None and not show and log_dir is None:
            raise ValueError(
                "ReconstructionPlotter needs somewhere to put its pictures. Received: "
                "output_dir=None, show=False, log_dir=None")
        self.output_dir = None if output_dir is None else pathlib.Path(output_dir)
        self.every = every
        self.num_samples = num_samples
        self.seed = seed
        self.show = show
        self.log_dir = log_dir
        self.sample_codes = None
        self.reconstruction_frames = {}
        self.sample_frames = {}
        self._writer = None
        self.saved_files = []

    def on_train_begin(self, logs=None):
        if self.output_dir is not None:
            self.output_dir.mkdir(parents=True, exist_ok=True)
        if self.num_samples:
            rng = np.random.default_rng(self.seed)
            self.sample_codes = rng.standard_normal(
                (self.num_samples, self.model.latent_dim)).astype("float32")
        if self.log_dir is not None and self._writer is None:
            self._writer = tf.summary.create_file_writer(str(pathlib.Path(self.log_dir) / "images"))

    def on_epoch_end(self, epoch, logs=None):
        number = epoch + 1
        if number % self.every:
            return
        figures = {}
        if self.images is not None:
            reconstructions = self.model.reconstruct(self.images, self.labels)
            self.reconstruction_frames[number] = reconstructions
            figures["epoch"] = plotting.plot_reconstructions(
                self.images, reconstructions,
                title=f"Epoch {number}: originals (top) and reconstructions")
        if self.sample_codes is not None:
            classes = self.model.num_classes
            labels = None if classes is None else np.arange(self.num_samples) % classes
            samples = self.model.decode(self.sample_codes, labels)
            self.sample_frames[number] = samples
            figures["samples"] = plotting.plot_images(
                samples, title=f"Epoch {number}: prior samples")
        for prefix, figure in figures.items():
            png = plotting.figure_to_png(figure)
            if self.output_dir is not None:
                path = self.output_dir / f"{prefix}_{number:03d}.png"
                path.write_bytes(png)
                self.saved_files.append(path)
            if self._writer is not None:
                name = "reconstructions" if prefix == "epoch" else "samples"
                with self._writer.as_default():
                    tf.summary.image(name, tf.image.decode_png(png)[None], step=number)
            if self.show:
                from IPython.display import display

                display(figure)

    def on_train_end(self, logs=None):
        if self._writer is not None:
            self._writer.flush()


class LatentDiagnostics(keras.callbacks.Callback):
    """Logs posterior-collapse diagnostics at the end of every N epochs.

    On a fixed set of images it computes the number of active units
    (`evaluation.active_units`) and the KL of each latent dimension
    (`evaluation.kl_per_dimension`). `active_units` is added to the logs
    (so to the History, the progress bar and TensorBoard when this callback
    comes before the TensorBoard callback); the per-dimension KL, a vector,
    is kept in `kl_history` (one row per measured epoch, with `epochs`).

    Args:
        images: Held-out images, a few hundred.
        every: Measure every `every` epochs.
        threshold: Active-unit threshold on the variance of posterior means.
        labels: The images' classes, for a conditional model only.

    Example:

    ```python
    diagnostics = keras_vae.callbacks.LatentDiagnostics(x_test[:500])
    vae.fit(x_train, epochs=10, callbacks=[diagnostics])
    diagnostics.kl_history[-1]  # nats per latent dimension
    ```
    """

    def __init__(self, images, every=1, threshold=0.01, labels=None):
        super().__init__()
        self.images = check_images(images, name="images").astype("float32")
        self.labels = labels
        self.every = check_int("every", every)
        self.threshold = check_number("threshold", threshold)
        self.epochs = []
        self.kl_history = []

    def on_epoch_end(self, epoch, logs=None):
        if (epoch + 1) % self.every:
            return
        units = evaluation.active_units(self.model, self.images, self.threshold,
                                        labels=self.labels)
        self.epochs.append(epoch + 1)
        self.kl_history.append(
            evaluation.kl_per_dimension(self.model, self.images, labels=self.labels))
        if logs is not None:
            logs["active_units"] = units["active_units"]


class KLSchedule(keras.callbacks.Callback):
    """Base class: sets `model.beta` from `value(t)` during training.

    `t` counts epochs (from 0) when `unit="epoch"`, or optimizer steps (from
    the optimizer's iteration count, so a resumed run continues its
    schedule) when `unit="step"`. The current value is written into the logs
    as `beta`, so it shows in the progress bar, the history and TensorBoard
    (place the schedule before a `TensorBoard` callback in the list).
    """

    def __init__(self, unit="epoch"):
        super().__init__()
        if unit not in ("epoch", "step"):
            raise ValueError(f"unit must be 'epoch' or 'step'. Received: unit={unit!r}")
        self.unit = unit
        self._step = 0
        self._beta = None

    def value(self, t):
        """Returns beta at time `t`; implemented by subclasses."""
        raise NotImplementedError

    def _set(self, t):
        # Kept on the host so that logging it needs no read from the device.
        self._beta = float(self.value(t))
        self.model.beta.assign(self._beta)

    def on_train_begin(self, logs=None):
        if not hasattr(self.model, "beta"):
            raise TypeError(
                f"{type(self).__name__} needs a model with a `beta` variable (such as "
                f"keras_vae.VAE). Received: {type(self.model).__name__}")
        self._step = int(keras.ops.convert_to_numpy(self.model.optimizer.iterations))

    def on_epoch_begin(self, epoch, logs=None):
        if self.unit == "epoch":
            self._set(epoch)

    def on_train_batch_begin(self, batch, logs=None):
        if self.unit == "step":
            self._set(self._step)
            self._step += 1

    def on_train_batch_end(self, batch, logs=None):
        if logs is not None:
            logs["beta"] = self._beta

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["beta"] = self._beta


class LinearKLWarmup(KLSchedule):
    """Raises beta linearly from 0 to `target` over `length` epochs or steps.

    `beta(t) = target * min(1, t / length)`: 0 at the start, `target` from
    `t = length` on. Warm-up lets the decoder learn to use the code before
    the KL term pulls the posterior to the prior, a common cure for
    posterior collapse.

    Args:
        target: Final beta.
        length: Epochs (or steps) the warm-up lasts.
        unit: `"epoch"` or `"step"`.

    Reference:
        Bowman et al., "Generating Sentences from a Continuous Space", 2016,
        https://arxiv.org/abs/1511.06349
    """

    def __init__(self, target=1.0, length=10, unit="epoch"):
        super().__init__(unit=unit)
        check_int("length", length)
        self.target = check_number("target", target)
        self.length = length

    def value(self, t):
        return self.target * min(1.0, t / self.length)


class CyclicalKLAnnealing(KLSchedule):
    """Repeats a linear warm-up in cycles.

    The time axis `[0, total)` is cut into `cycles` equal cycles; within
    each, beta rises linearly from 0 to `target` over the first `ratio` of
    the cycle and stays at `target` for the rest. After `total`, beta stays
    at `target`.

    Args:
        target: Peak beta.
        total: Epochs (or steps) covered by all the cycles.
        cycles: Number of cycles.
        ratio: Fraction of each cycle spent increasing beta, in (0, 1].
        unit: `"epoch"` or `"step"`.

    Reference:
        Fu et al., "Cyclical Annealing Schedule: A Simple Approach to
        Mitigating KL Vanishing", 2019, https://arxiv.org/abs/1903.10145
    """

    def __init__(self, target=1.0, total=20, cycles=4, ratio=0.5, unit="epoch"):
        super().__init__(unit=unit)
        check_int("total", total)
        check_int("cycles", cycles)
        if not (isinstance(ratio, (int, float)) and 0 < ratio <= 1):
            raise ValueError(f"ratio must be in (0, 1]. Received: ratio={ratio!r}")
        self.target = check_number("target", target)
        self.total = total
        self.cycles = cycles
        self.ratio = float(ratio)

    def value(self, t):
        if t >= self.total:
            return self.target
        period = self.total / self.cycles
        phase = (t % period) / period
        return self.target * min(1.0, phase / self.ratio)


class TrainingDivergedError(RuntimeError):
    """Raised when a run is stopped by `DivergenceGuard`."""


class DivergenceGuard(keras.callbacks.Callback):
    """Stops training at the first non-finite loss and restores good weights.

    After every batch the training loss is checked, and after every epoch
    the validation losses too. At the first NaN or infinity, training stops
    and the model's weights are reset to those at the end of the last epoch
    whose losses were all finite (or to the initial weights), so that no NaN
    weights are ever saved. `diverged` then describes where it happened; with
    `raise_error=True` (the default) `fit` ends with `TrainingDivergedError`.

    Args:
        raise_error: Raise `TrainingDivergedError` at the end of training
            after a divergence, instead of returning quietly.
    """

    def __init__(self, raise_error=True):
        super().__init__()
        self.raise_error = raise_error
        self.diverged = None
        self.good_epoch = 0
        self._good_weights = None

    def on_train_begin(self, logs=None):
        self.diverged = None
        self.good_epoch = 0
        self._good_weights = self.model.get_weights()

    def _check(self, logs, epoch, batch):
        if self.diverged is not None or not logs:
            return
        for key, value in logs.items():
            if key.endswith("loss") and not math.isfinite(float(value)):
                self.diverged = {"epoch": epoch + 1, "batch": batch, "metric": key,
                                 "value": float(value)}
                self.model.set_weights(self._good_weights)
                self.model.stop_training = True
                return

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        self._check(logs, self._epoch, batch + 1)

    def on_epoch_end(self, epoch, logs=None):
        self._check(logs, epoch, None)
        if self.diverged is None:
            self._good_weights = self.model.get_weights()
            self.good_epoch = epoch + 1

    def on_train_end(self, logs=None):
        if self.diverged is not None and self.raise_error:
            raise TrainingDivergedError(self.message())

    def message(self):
        """Describes the divergence (or returns None if there was none)."""
        if self.diverged is None:
            return None
        where = f"epoch {self.diverged['epoch']}"
        if self.diverged["batch"] is not None:
            where += f", batch {self.diverged['batch']}"
        kept = (f"the weights after epoch {self.good_epoch}" if self.good_epoch
                else "the weights it started with")
        return (f"Training diverged at {where}: {self.diverged['metric']}="
                f"{self.diverged['value']}. Training stopped and {kept} were restored. "
                "Try a lower learning rate.")


class HistoryCheckpoint(keras.callbacks.Callback):
    """Keeps the logs of every finished epoch in a JSON file, for resuming.

    The file (a dict of lists, like `History.history`) is rewritten
    atomically at the end of every epoch. When training starts at epoch `k`
    (after `keras.callbacks.BackupAndRestore` restored a run), the entries of
    epochs `k + 1` and later are dropped first, so the file always matches
    the restored weights. `history` holds the full record of the run.

    Args:
        path: The JSON file.
    """

    def __init__(self, path):
        super().__init__()
        self.path = pathlib.Path(path)
        self.history = {}
        self._started = False

    def on_train_begin(self, logs=None):
        self._started = False
        self.history = {}
        if self.path.exists():
            try:
                self.history = json.loads(self.path.read_text())
            except ValueError as error:
                raise ValueError(
                    f"The history file {self.path} is not valid JSON. Received error: {error}"
                ) from error

    def on_epoch_begin(self, epoch, logs=None):
        if not self._started:
            self._started = True
            self.history = {key: values[:epoch] for key, values in self.history.items()}

    def on_epoch_end(self, epoch, logs=None):
        for key, value in (logs or {}).items():
            self.history.setdefault(key, []).append(float(value))
        saving.write_json(self.path, self.history)


class EmbeddingProjector(keras.callbacks.Callback):
    """Writes the latent codes of fixed images for TensorBoard's Projector, every N epochs.

    At the chosen epochs the codes (`model.latent_codes`, the posterior
    means of a VAE) are added to a checkpoint in `log_dir` as a new
    embedding, `epoch_001`, `epoch_002`, ...: the Projector lists one per
    written epoch, so the same images can be followed as training goes on
    (a resumed run keeps the embeddings written before). Each has a metadata
    table: the image's `index`, its `label` (if given), its `split` and, for
    a model with a likelihood, its `neg_elbo` at that epoch (export's
    scorer: `num_samples` codes with fixed noise). The sprite is written
    once, at the start of training (see `keras_vae.projector`).

    Args:
        images: Images `(N, height, width, channels)` in [0, 1]; a few
            hundred to a few thousand.
        log_dir: The TensorBoard log folder (created if needed).
        labels: Optional int labels `(N,)`, written as metadata each point
            can be coloured by; a conditional model also encodes with them.
        every: Write the codes every `every` epochs (and after the last one).
        split: What the images are, the `split` column (e.g. `"test"`).
        num_samples: Codes per image of the `neg_elbo` column.

    Example:

    ```python
    projector = keras_vae.callbacks.EmbeddingProjector(x_test[:1000], "logs",
                                                       labels=y_test[:1000])
    vae.fit(x_train, epochs=10, callbacks=[projector])
    # tensorboard --logdir logs, then the Projector tab
    ```
    """

    def __init__(self, images, log_dir, labels=None, every=1, split="test", num_samples=8):
        super().__init__()
        self.images = check_images(images, name="images")
        self.labels = None if labels is None else np.asarray(labels)
        if self.labels is not None and self.labels.shape != (len(self.images),):
            raise ValueError(
                f"labels must hold one label per image, shape ({len(self.images)},). "
                f"Received: labels.shape={self.labels.shape}")
        self.log_dir = pathlib.Path(log_dir)
        self.every = check_int("every", every)
        self.split = str(split)
        self.num_samples = check_int("num_samples", num_samples)
        self.codes = {}
        """`{epoch: tf.Variable}` of the codes written, this run's and a resumed run's."""
        self.written = []
        """The epochs (1-based) whose codes this run wrote."""

    def on_train_begin(self, logs=None):
        projector.write_sprite(self.log_dir, self.images)
        latest = tf.train.latest_checkpoint(str(self.log_dir))
        if latest is not None:  # a resumed run keeps the epochs written before
            for name, _ in tf.train.list_variables(latest):
                if name.startswith("epoch_") and name.endswith("/.ATTRIBUTES/VARIABLE_VALUE"):
                    epoch = int(name.split("/")[0][len("epoch_"):])
                    self.codes[epoch] = tf.Variable(tf.train.load_variable(latest, name))

    def _labels_for_model(self):
        return self.labels if self.model.num_classes is not None else None

    def _metadata(self):
        columns = {"index": list(range(len(self.images)))}
        if self.labels is not None:
            columns["label"] = self.labels.tolist()
        columns["split"] = [self.split] * len(self.images)
        if self.model.has(model_base.LIKELIHOOD):
            from keras_vae import export

            columns["neg_elbo"] = export.scores(self.model, self.images,
                                                self._labels_for_model(),
                                                num_samples=self.num_samples).tolist()
        return columns

    def on_epoch_end(self, epoch, logs=None):
        number = epoch + 1
        last = self.params.get("epochs") == number
        if number % self.every and not last:
            return
        self.codes[number] = tf.Variable(
            self.model.latent_codes(self.images, self._labels_for_model()))
        name = projector.embedding_name(number)
        projector.write_metadata(self.log_dir / f"metadata_{name}.tsv", self._metadata())
        checkpoint = tf.train.Checkpoint(**{projector.embedding_name(e): v
                                            for e, v in sorted(self.codes.items())})
        checkpoint.write(str(self.log_dir / projector.CHECKPOINT))
        projector.write_config(
            self.log_dir, self.images.shape[1:],
            [(projector.tensor_name(e), f"metadata_{projector.embedding_name(e)}.tsv")
             for e in sorted(self.codes)])
        projector.write_checkpoint_index(self.log_dir, projector.CHECKPOINT)
        self.written.append(number)


class AtomicBackupAndRestore(keras.callbacks.BackupAndRestore):
    """`BackupAndRestore` whose checkpoints are never half-written.

    Keras writes `latest.weights.h5` in place, so a crash or a full disk
    during a save leaves a truncated file that cannot be restored (and h5py
    can crash the process while cleaning up). This subclass writes the weights
    through `keras_vae.saving.save_weights` (scratch file, then rename) and the
    epoch number after them, so the folder always holds the last complete
    checkpoint. A checkpoint that still cannot be read (one written by an
    older version, or for other settings) is never deleted: it is moved to a
    new folder `unreadable-checkpoint-<time>` in `aside_dir`, one line on
    stderr says where, and training restarts from the first epoch.

    Args:
        backup_dir: the folder of the checkpoint.
        aside_dir: the folder receiving an unreadable checkpoint's folder
            (default: `backup_dir`; `keras-vae train` gives the run folder,
            which outlives `backup/`).
    """

    def __init__(self, backup_dir, aside_dir=None):
        super().__init__(str(backup_dir), delete_checkpoint=False)
        self.aside_dir = pathlib.Path(backup_dir if aside_dir is None else aside_dir)

    def _seed_states(self):
        """The model's random-number states, which `save_weights` leaves out."""
        return {variable.path: variable for variable in self.model.variables
                if "seed_generator_state" in variable.path}

    def _save_model(self):
        saving.save_weights(self.model, self._weights_path)
        # The noise states go with the epoch, so a resumed run draws the same
        # reparameterization noise as one that was never interrupted.
        states = {path: variable.numpy().tolist()
                  for path, variable in self._seed_states().items()}
        saving.write_json(self._training_metadata_path,
                          {"epoch": self._current_epoch, "batch": self._last_batch_seen,
                           "seed_states": states})

    def _load_model(self):
        metadata = pathlib.Path(self._training_metadata_path)
        try:
            stored = saving.read_json(metadata) if metadata.exists() else {}  # names the file
            super()._load_model()
            for path, variable in self._seed_states().items():
                if path in stored.get("seed_states", {}):
                    variable.assign(stored["seed_states"][path])
        except (OSError, ValueError) as error:
            aside = self._move_aside()
            print(f"keras-vae: the checkpoint in {self.backup_dir} cannot be read "
                  f"({(str(error).strip().splitlines() or [type(error).__name__])[0]}); "
                  f"it was moved to {aside}; starting again from the first epoch.",
                  file=sys.stderr)
            self.model._initial_epoch = 0

    def _move_aside(self):
        """Moves the checkpoint's files into a new `unreadable-checkpoint-<time>` folder."""
        stamp = time.strftime("%Y%m%d-%H%M%S")
        aside = self.aside_dir / f"unreadable-checkpoint-{stamp}"
        number = 1
        while aside.exists():
            number += 1
            aside = self.aside_dir / f"unreadable-checkpoint-{stamp}-{number}"
        aside.mkdir(parents=True)
        for path in map(pathlib.Path, (self._weights_path, self._training_metadata_path)):
            if path.exists():
                os.replace(path, aside / path.name)
        return aside
