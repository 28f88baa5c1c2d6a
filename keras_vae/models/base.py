"""What every keras_vae image model shares: one contract, input checks and one interface.

**The contract.** A model states what it has in `capabilities` (a frozenset
of `ENCODER`, `POSTERIOR`, `LIKELIHOOD`, `LOSSES`, `LABELS`, `CODEBOOK`) and
computes its own maths; every tool (evaluation, anomaly scores, export, the explorer,
the multi-worker loop) asks the model and never probes it or calls a
private method:

- `compute_losses(x, training, condition)` (needs `LOSSES`): a dict of
  per-image float32 `(batch,)` tensors, `"loss"` (what `fit` minimises the
  batch mean of) and the named terms of `loss_terms`.
- `log_weights(x, num_samples, seed, condition, shared_noise)` (needs
  `LIKELIHOOD`): `(num_samples, batch)` log importance weights, whose
  log-mean-exp bounds `log p(x)`.
- `encode_tensor(x, condition)` (needs `ENCODER`): `(codes, log_variances)`
  tensors (`log_variances` None without `POSTERIOR`).
- `decode_tensor(z, condition)`: images in [0, 1], a tensor.
- `code_statistics(x)` and `prior_nll_bits(x)` (need `CODEBOOK`): how the
  images use the codebook (perplexity, fraction of codes used, bits of a
  code map), and the prior's `-log2 p(code map)` of each image; with them
  `prior_fitted`, whether that prior was trained.

The one `train_step` and `test_step` here minimise the batch mean of
`compute_losses(...)["loss"]` and report the mean of every key of
`loss_terms` (the metrics are made from those keys); `keras_vae.distribute`
trains with the same method. A model trained otherwise (the adversarial
`DCGAN`) lacks `LOSSES` and keeps its own step. A tool that cannot serve a
model calls `model.require(capability, purpose)`, which raises
`MissingCapabilityError` (a `NotImplementedError`) in one line naming the
model class and what it lacks. To add a model: subclass `ImageModel`,
declare `capabilities` and `loss_terms`, call `_init_loss_trackers()` in
`__init__`, and implement the methods of the table that its capabilities
promise (plus `_constructor_arguments` for saving); the contract tests
(tests/test_contract.py) then run it through every tool.

**The public interface.** Every model answers the same calls with the same meaning:

| call | returns |
| --- | --- |
| `encode(x, labels=None)` | `(codes, log_variances)`; an `Autoencoder` gives `(codes, None)` |
| `latent_codes(x, labels=None)` | one deterministic code per image (`encode(...)[0]`) |
| `decode(z, labels=None)` | images in [0, 1] |
| `reconstruct(x, labels=None)` | images decoded from the deterministic codes |
| `sample(n, labels=None, seed=None)` | `n` images decoded from prior draws |

`labels` is the class conditioning (`condition`, in the tensor methods above,
is its one-hot form: `model.one_hot(labels)`). `model.num_classes` says whether a model
takes it: None for an unconditional model, which refuses labels; an int for a
conditional one, which requires them (one int class per image, or a single int
for all). A model without an encoder (`DCGAN`) raises `MissingCapabilityError`
from `encode`, `latent_codes` and `reconstruct`.

Every batch of `fit`, `evaluate` and `predict`, not only the first one of a
dataset, is checked in the graph to hold finite values in [0, 1] (see
`keras_vae.models.checks.check_batch`).

The file is over 300 lines because the contract, the interface and the
input checks it runs belong to the one base class; the checks that need no
model live in `checks.py`.
"""

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from keras_vae import priors
from keras_vae import validation
from keras_vae.models import checks
from keras_vae.models.checks import check_batch
from keras_vae.models.checks import short_repr
from keras_vae.validation import check_images
from keras_vae.validation import check_int
from keras_vae.validation import check_shape_matches
from keras_vae.validation import check_values

ENCODER = "encoder"
"""Encodes images to codes: `encode`, `latent_codes`, `reconstruct`, `encode_tensor`."""

POSTERIOR = "posterior"
"""Its codes are Gaussian, `q(z|x)`: `encode` gives log-variances beside the means."""

LIKELIHOOD = "likelihood"
"""Scores images under a density: `log_weights`, an importance-weighted bound on `log p(x)`."""

LOSSES = "losses"
"""Trains on one per-image objective, `compute_losses` (the shared `train_step`)."""

LABELS = "labels"
"""Conditioned on a class: `num_classes` is an int and every call takes labels."""

CODEBOOK = "codebook"
"""Codes are indices into a codebook, with a prior over code maps: `code_statistics`,
`prior_nll_bits`, and `prior_fitted` (whether that prior was trained)."""

CAPABILITIES = {
    ENCODER: "an encoder",
    POSTERIOR: "a Gaussian posterior q(z|x)",
    LIKELIHOOD: "a likelihood (log_weights)",
    LOSSES: "a per-image training objective (compute_losses)",
    LABELS: "class conditioning",
    CODEBOOK: "a codebook of discrete codes (code_statistics)",
}
"""Every capability a model can declare, and how an error message names it."""


class MissingCapabilityError(NotImplementedError):
    """A tool was asked to do with a model what the model cannot do (see `ImageModel.require`)."""


def repeat_batch(tensor, times):
    """`times` copies of a batch stacked along the batch axis: `(times * batch, ...)`.

    Row `s * batch + i` is row `i`: the layout of `(times, batch, ...)`
    draws flattened, as the models' importance weights use it.

    Args:
        tensor: A batch, `(batch, ...)`.
        times: How many copies, an int or an int32 scalar tensor.
    """
    tiled = tf.tile(tensor[None], [times] + [1] * len(tensor.shape))
    return tf.reshape(tiled, tf.concat([[-1], tf.shape(tensor)[1:]], axis=0))


def replica_scaled_loss(optimizer, loss):
    """The loss a replica differentiates: `loss / replicas`, scaled for mixed precision.

    tf.distribute sums the replicas' gradients, so each replica's batch mean
    is divided by their number to give the gradient of the global mean;
    `optimizer.scale_loss` applies float16's loss scaling (a no-op otherwise).

    Args:
        optimizer: The Keras optimizer that applies the gradients.
        loss: The replica's batch-mean loss, a scalar tensor.
    """
    replicas = tf.distribute.get_strategy().num_replicas_in_sync
    return optimizer.scale_loss(loss / replicas)


def stateless_seed(seed):
    """An int32 `(2,)` stateless seed from an int, or a seed tensor as it is."""
    if isinstance(seed, (int, np.integer)) and not isinstance(seed, bool):
        return tf.constant([int(seed), 0], "int32")
    return tf.cast(seed, "int32")  # a tensor or a NumPy pair


def standard_normal(shape, seed):
    """`tf.random.stateless_normal(shape, seed)`, a constant of any graph when it can be.

    With a Python `shape` and an int (or NumPy) `seed`, the draws are
    computed eagerly, outside any function being traced, so an exported
    graph holds them as a constant and needs no random-number op (LiteRT's
    builtins have none).

    Args:
        shape: The draws' shape, a list of ints (or of tensors).
        seed: An int, a stateless int32 pair, or a seed tensor.
    """
    static = not tf.is_tensor(seed) and all(isinstance(d, (int, np.integer)) for d in shape)
    if static:
        with tf.init_scope():
            return tf.random.stateless_normal(shape, seed=stateless_seed(seed))
    return tf.random.stateless_normal(shape, seed=stateless_seed(seed))


def split_seed(seed, count):
    """`count` stateless seeds from one (`stateless_split`), NumPy when `seed` is an int.

    Args:
        seed: An int, a stateless int32 pair, or a seed tensor.
        count: How many seeds, an int.
    """
    if tf.is_tensor(seed):
        return tf.random.experimental.stateless_split(tf.cast(seed, "int32"), count)
    with tf.init_scope():
        return tf.random.experimental.stateless_split(stateless_seed(seed), count).numpy()


def first_component(data):
    """Returns the images of a batch given as `x`, `(x,)`, `(x, y)` or `(x, y, w)`."""
    x, _, _ = keras.utils.unpack_x_y_sample_weight(data)
    return x


class ImageModel(keras.Model):
    """Base class of the models: images in [0, 1] and a latent code of `latent_dim`.

    Subclasses set `image_shape` and `latent_dim` (and `num_classes` if they
    are conditional), declare `capabilities` and `loss_terms`, and implement
    the contract's methods their capabilities promise (see the module
    docstring): `decode_tensor` always, `encode_tensor` with an encoder,
    `compute_losses` and `log_weights` with a likelihood. This class checks
    the images given to `fit`, `evaluate` and `predict` (a clear error
    instead of training on garbage), runs the shared `train_step` and
    `test_step`, and provides the public interface of the module docstring.
    """

    num_classes = None
    """None for an unconditional model; the number of classes of a conditional one."""

    capabilities = frozenset()
    """What the model has, from `CAPABILITIES`; each class declares its own."""

    loss_terms = ()
    """The keys of `compute_losses` (`"loss"` first): the metrics `fit` reports."""

    def has(self, capability):
        """Whether the model has `capability`, one of `CAPABILITIES`."""
        if capability not in CAPABILITIES:
            raise ValueError(f"capability must be one of {sorted(CAPABILITIES)}. Received: "
                             f"capability={capability!r}")
        return capability in self.capabilities

    def require(self, capability, purpose):
        """Raises `MissingCapabilityError` unless the model has `capability`.

        Args:
            capability: One of `CAPABILITIES`.
            purpose: What needs it, the start of the message, e.g.
                `"keras-vae evaluate"` or `"export's scorer"`.
        """
        if not self.has(capability):
            raise MissingCapabilityError(
                f"{purpose} needs a model with {CAPABILITIES[capability]}: "
                f"{type(self).__name__} has none")

    def _init_sampling(self, seed):
        self.prior_seed_generator = keras.random.SeedGenerator(
            None if seed is None else seed + 1, name="prior_seed_generator")

    # ------------------------------------------------------ input validation

    def check_labels(self, labels, count, name="labels"):
        """Returns checked int32 labels of length `count`, or None for an unconditional model.

        A conditional model requires `labels`: one int class per image, or a
        single int broadcast to all `count` images. An unconditional model
        refuses them.

        Args:
            labels: Int classes `(count,)` or `(count, 1)`, one int for all,
                or None.
            count: The number of images the labels go with.
            name: Name used for `labels` in error messages.

        Raises:
            ValueError: labels given to an unconditional model, missing for
                a conditional one, or of the wrong length or range.
            TypeError: labels are not integer classes.
        """
        model = type(self).__name__
        if self.num_classes is None:
            if labels is not None:
                raise ValueError(
                    f"{model} is unconditional and takes no labels. Received: "
                    f"{name}={short_repr(labels)}")
            return None
        if labels is None:
            raise ValueError(
                f"{model} needs class labels: {name} must hold one int in "
                f"[0, {self.num_classes}) per image, or one int for all. Received: {name}=None")
        if isinstance(labels, (int, np.integer)) and not isinstance(labels, bool):
            labels = np.full(count, labels)
        return validation.check_labels(labels, self.num_classes, count=count,
                                       name=name).astype("int32")

    def check_input(self, data, name="x", labels=None):
        """Raises a clear error if `data` cannot be images (and labels) for this model.

        Accepts what `fit`, `evaluate` and `predict` accept: an array, a
        tuple `(x, ...)`, or a `tf.data.Dataset`. Arrays are checked in full;
        a dataset's element spec and its first batch are checked (later
        batches are checked in the graph, see `check_batch`). A conditional
        model's labels come from `labels`, the tuple's second entry or the
        dataset's; an unconditional model ignores labels there, as `fit` does.

        Args:
            data: Images `(N, *image_shape)` in [0, 1], a tuple `(x, ...)`,
                a `tf.data.Dataset` of batches, or None (nothing to check).
            name: Name used for `data` in error messages.
            labels: The images' classes, for a conditional model given
                arrays; they take precedence over the tuple's second entry.
        """
        if data is None:
            return
        if isinstance(data, tf.data.Dataset):
            first = self._check_dataset(data, name)
            if self.num_classes is not None:
                _, y, _ = keras.utils.unpack_x_y_sample_weight(first)
                if y is None:
                    raise ValueError(
                        f"{type(self).__name__} needs class labels. Received: {name} "
                        "yields batches without labels; give (images, labels) batches")
                validation.check_labels(np.asarray(y), self.num_classes,
                                        name=f"{name} (first batch labels)")
            return
        if isinstance(data, tuple):
            data, tuple_labels, _ = keras.utils.unpack_x_y_sample_weight(data)
            labels = tuple_labels if labels is None else labels
        if isinstance(data, (np.ndarray, tf.Tensor, list)):
            x = check_images(data, name=name, image_shape=self.image_shape)
            if self.num_classes is None:
                return
            if labels is None:
                raise ValueError(
                    f"{type(self).__name__} needs class labels. Received: {name} without "
                    "labels; pass images and labels, as in fit(x, y) or (x, y) pairs")
            validation.check_labels(labels, self.num_classes, count=len(x),
                                    name="labels" if name == "x" else f"{name} labels")

    def _check_dataset(self, dataset, name):
        spec = first_component(dataset.element_spec)
        if not isinstance(spec, tf.TensorSpec):
            raise TypeError(
                f"{name} must yield image tensors. Received: element_spec={spec}"
            )
        if spec.shape.rank is not None and spec.shape.rank != 4:
            raise ValueError(
                f"{name} must yield batches of rank 4 (batch, height, width, "
                f"channels); batch the dataset first. Received: element "
                f"shape {spec.shape}"
            )
        if spec.shape.rank == 4 and None not in spec.shape[1:]:
            check_shape_matches(spec.shape[1:], self.image_shape, name)
        first = next(iter(dataset.take(1)), None)
        if first is None:
            raise ValueError(f"{name} is empty. Received: a dataset with no batches")
        check_values(np.asarray(first_component(first)), name=f"{name} (first batch)")
        return first

    def _checked_call_images(self, images, labels=None):
        """`call`'s images: checked in full when eager (as `predict` does), else in the graph."""
        if tf.executing_eagerly():
            self.check_input(images, labels=labels)
            return images
        return check_batch(images, "images given to the model")

    def _checked_dataset(self, data, what):
        """A jit-compiled step checks nothing (XLA drops asserts): check the dataset's batches."""
        if not (checks.batch_checks_enabled() and isinstance(data, tf.data.Dataset)
                and self.jit_compile):
            return data

        def check(*element):
            if len(element) == 1:
                return check_batch(element[0], what)
            return (check_batch(element[0], what),) + element[1:]

        return data.map(check)

    def fit(self, x=None, y=None, *args, validation_data=None, **kwargs):
        self.check_input(x, "x", labels=None if isinstance(x, tf.data.Dataset) else y)
        if validation_data is not None:
            self.check_input(validation_data, "validation_data")
        if isinstance(x, tf.data.Dataset) and not args and not kwargs.get("steps_per_epoch"):
            # The same epochs through one iterator: Keras would make one per
            # epoch, and deleting each waits on tf.data's autotuner (idle
            # seconds as epochs begin; see datasets.make_dataset).
            batches = int(x.cardinality())
            if batches > 0:
                x, kwargs["steps_per_epoch"] = x.repeat(), batches
        if isinstance(x, tf.data.Dataset):
            # A dataset carries its own shuffling (see datasets.make_dataset);
            # this silences Keras's warning that `shuffle=True` is ignored.
            kwargs.setdefault("shuffle", False)
        return super().fit(
            self._checked_dataset(x, "training images"), y, *args,
            validation_data=self._checked_dataset(validation_data, "evaluation images"),
            **kwargs)

    def evaluate(self, x=None, y=None, *args, **kwargs):
        self.check_input(x, "x", labels=None if isinstance(x, tf.data.Dataset) else y)
        return super().evaluate(self._checked_dataset(x, "evaluation images"), y,
                                *args, **kwargs)

    def predict(self, x, *args, **kwargs):
        self.check_input(x, "x")
        return super().predict(x, *args, **kwargs)

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        """Keras's build from a first batch, without averaging it over replicas.

        Under a `tf.distribute` strategy Keras 3 (up to 3.15 at least) builds
        the model from the first batch reduced by a MEAN over the replicas,
        which fails ("Inputs to operation AddN ... must have the same size
        and shape") whenever that batch splits unevenly: `evaluate` on 25
        images over 2 replicas, say. Only the batch's shapes and dtypes are
        used, so the first replica's share serves as well. Remove when
        Keras's own method reads one replica's values.
        """
        strategy = self._distribute_strategy
        if strategy is None or iterator is None:
            return super()._maybe_symbolic_build(iterator, data_batch)
        for _, _, batches in iterator:
            data_batch = tf.nest.map_structure(
                lambda value: strategy.experimental_local_results(value)[0]
                if isinstance(value, tf.distribute.DistributedValues) else value,
                next(batches))
            break
        with strategy.scope():
            self._symbolic_build(data_batch=data_batch)

    # ------------------------------------------------------------- contract

    def _init_loss_trackers(self):
        """Makes one `Mean` metric per key of `loss_terms` (call it in `__init__`)."""
        self.loss_trackers = [keras.metrics.Mean(name=name) for name in self.loss_terms]

    @property
    def metrics(self):
        return list(getattr(self, "loss_trackers", []))

    def compute_losses(self, x, training=False, condition=None):
        """Returns the per-image training objective and its terms, a dict of tensors.

        Args:
            x: A batch of images in [0, 1], `(batch, *image_shape)`.
            training: Keras's `training` flag, passed to the networks.
            condition: One-hot classes `(batch, num_classes)` for a model
                with `LABELS`; None otherwise.

        Returns:
            `{key: float32 (batch,)}` for every key of `loss_terms`: `"loss"`,
            whose batch mean `fit` minimises, and the named terms.
        """
        self.require(LOSSES, "compute_losses")
        raise NotImplementedError(f"{type(self).__name__} declares {LOSSES!r} but does "
                                  "not implement compute_losses")

    def train_step(self, data):
        x, condition = self.unpack(data)
        x = check_batch(x, "training images")
        with tf.GradientTape() as tape:
            losses = self.compute_losses(x, training=True, condition=condition)
            scaled_loss = replica_scaled_loss(self.optimizer, tf.reduce_mean(losses["loss"]))
        gradients = tape.gradient(scaled_loss, self.trainable_weights)
        self.optimizer.apply_gradients(zip(gradients, self.trainable_weights))
        return self._update_metrics(losses)

    def test_step(self, data):
        x, condition = self.unpack(data)
        x = check_batch(x, "evaluation images")
        return self._update_metrics(self.compute_losses(x, training=False, condition=condition))

    def _update_metrics(self, losses):
        for tracker in self.loss_trackers:
            tracker.update_state(losses[tracker.name])
        return {tracker.name: tracker.result() for tracker in self.loss_trackers}

    def log_weights(self, x, num_samples, seed=None, condition=None, shared_noise=False):
        """Returns log importance weights `log p(x, z_s) - log q(z_s|x)`, float32 `(S, batch)`.

        Their log-mean-exp over the `S = num_samples` codes per image is the
        importance-weighted bound on `log p(x)`, their mean an estimate of
        the ELBO (`keras_vae.evaluation` reduces them). Deterministic
        networks (`training=False`); usable inside a `tf.function`.

        Args:
            x: A batch of images in [0, 1], `(batch, *image_shape)`.
            num_samples: S, codes per image (an int, or an int32 scalar tensor).
            seed: The codes' stateless seed: an int, an int32 tensor `(2,)`,
                or None for new codes from the model's seed generator.
            condition: One-hot classes for a model with `LABELS`, else None.
            shared_noise: If True every image uses the same standard normal
                draws (a function of `seed` and `S` alone), so an image's
                weights do not depend on the batch it is in (export's scorer).

        Raises:
            MissingCapabilityError: the model has no `LIKELIHOOD`.
        """
        self.require(LIKELIHOOD, "log_weights")
        raise NotImplementedError(f"{type(self).__name__} declares {LIKELIHOOD!r} but does "
                                  "not implement log_weights")

    def _seed(self, seed):
        """`seed` as given (an int or a stateless pair); None draws a pair from the generator."""
        if seed is None:
            return tf.cast(self.prior_seed_generator.next(), "int32")
        return seed

    def encode_tensor(self, x, condition=None, training=False):
        """Returns the codes of a batch of images as tensors: `(codes, log_variances)`.

        The posterior's mean and log-variance for a model with `POSTERIOR`;
        `(codes, None)` for a deterministic encoder. Usable inside a
        `tf.function` (export's signatures); `encode` is the NumPy version.

        Args:
            x: A batch of images in [0, 1], a float tensor.
            condition: One-hot classes for a model with `LABELS`, else None.
            training: Keras's `training` flag, passed to the encoder.

        Raises:
            MissingCapabilityError: the model has no `ENCODER`.
        """
        self.require(ENCODER, "encode_tensor")
        raise NotImplementedError(f"{type(self).__name__} declares {ENCODER!r} but does "
                                  "not implement encode_tensor")

    def decode_tensor(self, z, condition=None, training=False):
        """Returns images in [0, 1] decoded from codes `z` `(N, latent_dim)`, a tensor.

        The codes are those `encode_tensor` gives and `sample` draws; usable
        inside a `tf.function`; `decode` is the NumPy version.

        Args:
            z: Codes, a float tensor `(N, latent_dim)`.
            condition: One-hot classes for a model with `LABELS`, else None.
            training: Keras's `training` flag, passed to the decoder.
        """
        raise NotImplementedError(f"{type(self).__name__} does not implement decode_tensor")

    def code_statistics(self, x, batch_size=256):
        """Returns how images `x` use the model's codebook, a dict (needs `CODEBOOK`).

        Args:
            x: Images in [0, 1], `(N, *image_shape)`, N >= 1.
            batch_size: Images encoded at a time.

        Returns:
            `num_embeddings` (K), `positions` (codes per image), `code_bits`
            (`positions * log2 K`, the bits of one code map written without a
            prior), `codes_used` and `fraction_used` (codes chosen at least
            once, and over K), `perplexity` (`exp` of the entropy of the code
            frequencies over all positions of all images: K for uniform use,
            1 for one code) and `counts` (int64 NumPy `(K,)`, times each code
            was chosen).

        Raises:
            MissingCapabilityError: the model has no `CODEBOOK`.
        """
        self.require(CODEBOOK, "code_statistics")
        raise NotImplementedError(f"{type(self).__name__} declares {CODEBOOK!r} but does "
                                  "not implement code_statistics")

    def prior_nll_bits(self, x, batch_size=256):
        """Returns the prior's `-log2 p(code map)` of each image, float64 NumPy `(N,)`.

        Needs `CODEBOOK`; meaningful once `prior_fitted` is True.

        Args:
            x: Images in [0, 1], `(N, *image_shape)`.
            batch_size: Images at a time.

        Raises:
            MissingCapabilityError: the model has no `CODEBOOK`.
        """
        self.require(CODEBOOK, "prior_nll_bits")
        raise NotImplementedError(f"{type(self).__name__} declares {CODEBOOK!r} but does "
                                  "not implement prior_nll_bits")

    def unpack(self, data):
        """Returns `(images, condition)` of a batch; an unconditional model has no condition."""
        return first_component(data), None

    def one_hot(self, labels):
        """One-hot float32 rows `(N, num_classes)` for int `labels`; None for None."""
        return None if labels is None else tf.one_hot(labels, self.num_classes)

    @property
    def code_spec(self):
        """The codes `decode_tensor` takes, as export's decoder input: a `tf.TensorSpec`.

        Float32 `(None, latent_dim)` named `codes`; a model with discrete
        codes (`VQVAE`: int32 index maps) says so here, and tools that need
        continuous codes (the explorer's sliders, the mixture sampler) check
        `code_spec.dtype.is_integer`.
        """
        return tf.TensorSpec([None, self.latent_dim], tf.float32, name="codes")

    @property
    def num_codes(self):
        """How many values each position of a discrete code takes (K), or None.

        None for continuous codes (a float `code_spec`); a model with discrete
        codes (`VQVAE`: indices into a codebook of K vectors) gives K, so a
        tool (the explorer's code-map editor) can say which indices `decode`
        accepts without asking what kind of model it holds.
        """
        return None

    # ------------------------------------------------------------ public API

    def check_codes(self, z):
        """Returns codes `z` as float32 NumPy `(N, latent_dim)`, or raises `ValueError`."""
        z = np.asarray(z, dtype="float32")
        if z.ndim != 2 or z.shape[1] != self.latent_dim:
            raise ValueError(
                f"z must have shape (N, {self.latent_dim}). Received: z.shape={z.shape}"
            )
        return z

    def encode(self, x, labels=None, batch_size=256):
        """Encodes images to codes: the same pair `(codes, log_variances)` on every model.

        Args:
            x: Images in [0, 1], shape `(N, *image_shape)`.
            labels: The images' classes, for a conditional model only (one
                int per image, or one int for all); see `num_classes`.
            batch_size: Images encoded at a time.

        Returns:
            A pair of NumPy arrays `(codes, log_variances)`, each `(N, latent_dim)`:
            the posterior mean and log-variance for a VAE. A deterministic
            encoder (`Autoencoder`) has no variance and returns `(codes, None)`.
        """
        self.require(ENCODER, "encode")
        x = check_images(x, image_shape=self.image_shape)
        labels = self.check_labels(labels, len(x))
        codes, log_vars = [], []
        for start in range(0, x.shape[0], batch_size):
            stop = start + batch_size
            condition = self.one_hot(None if labels is None else labels[start:stop])
            z, z_log_var = self.encode_tensor(tf.convert_to_tensor(x[start:stop]), condition)
            codes.append(np.asarray(z))
            log_vars.append(None if z_log_var is None else np.asarray(z_log_var))
        if not codes:
            empty = np.zeros((0, self.latent_dim), "float32")
            return empty, (empty if self.has(POSTERIOR) else None)
        return (np.concatenate(codes),
                np.concatenate(log_vars) if self.has(POSTERIOR) else None)

    def latent_codes(self, x, labels=None, batch_size=256):
        """Returns one deterministic code per image, NumPy `(N, latent_dim)`.

        The posterior mean for a VAE, the code itself for an autoencoder
        (`encode(x, labels)[0]`).

        Args:
            x: Images in [0, 1], shape `(N, *image_shape)`.
            labels: The images' classes, for a conditional model only (one
                int per image, or one int for all).
            batch_size: Images encoded at a time.
        """
        return self.encode(x, labels, batch_size=batch_size)[0]

    def decode(self, z, labels=None, batch_size=256):
        """Decodes latent codes to images (the likelihood's mean, in [0, 1]).

        Args:
            z: Codes of shape `(N, latent_dim)`.
            labels: The classes to render, for a conditional model only (one
                int per code, or one int for all).
            batch_size: Codes decoded at a time.

        Returns:
            A NumPy array of images, shape `(N, *image_shape)`.
        """
        z = self.check_codes(z)
        labels = self.check_labels(labels, len(z))
        images = [
            np.asarray(self.decode_tensor(
                tf.constant(z[start:start + batch_size]),
                condition=self.one_hot(None if labels is None
                                       else labels[start:start + batch_size])))
            for start in range(0, z.shape[0], batch_size)
        ]
        return np.concatenate(images) if images else np.zeros(
            (0,) + self.image_shape, "float32")

    def reconstruct(self, x, labels=None, batch_size=256):
        """Reconstructs images through their deterministic codes (the posterior mean).

        Args:
            x: Images in [0, 1], shape `(N, *image_shape)`.
            labels: The images' classes, for a conditional model only.
            batch_size: Images reconstructed at a time.

        Returns:
            A NumPy array of the same shape as `x`.
        """
        self.require(ENCODER, "reconstruct")
        x = check_images(x, image_shape=self.image_shape)
        labels = self.check_labels(labels, len(x))
        inputs = x if labels is None else (x, labels)
        return self.predict(inputs, batch_size=batch_size, verbose=0)

    def draw_codes(self, n, seed=None):
        """Returns `n` codes drawn from the prior, float32 NumPy `(n, latent_dim)`.

        N(0, I) unless the model has a learned prior (a `prior_layer` other
        than `keras_vae.priors.StandardNormal`), which is then sampled.

        Args:
            n: Number of codes, a positive int.
            seed: Optional int; the same seed gives the same codes. Without
                it, the model's seed generator gives new codes on each call.
        """
        check_int("n", n)
        prior_layer = getattr(self, "prior_layer", None)
        if prior_layer is not None and not isinstance(prior_layer, priors.StandardNormal):
            seed = self.prior_seed_generator.next() if seed is None else tf.constant([seed, 0])
            return self.prior().sample(n, seed=tf.cast(seed, "int32")).numpy()
        z = keras.random.normal(
            (n, self.latent_dim),
            seed=self.prior_seed_generator if seed is None else seed,
        )
        return ops.convert_to_numpy(z)

    def sample(self, n, labels=None, seed=None):
        """Generates `n` new images by decoding draws from the prior (see `draw_codes`).

        Args:
            n: Number of images.
            labels: The classes to generate, for a conditional model only:
                `n` ints, or one int for all `n` images.
            seed: Optional int; the same seed gives the same images. Without
                it, successive calls give new images.

        Returns:
            A NumPy array of images, shape `(n, *image_shape)`.
        """
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)):
            hint = "; give the classes as labels=" if np.ndim(n) else ""
            raise TypeError(f"n must be an int, the number of images{hint}. Received: "
                            f"n={short_repr(n)}")
        check_int("n", n)
        labels = self.check_labels(labels, n)
        return self.decode(self.draw_codes(n, seed), labels)

    # ------------------------------------------------------------- saving

    def _constructor_arguments(self):
        """Returns `{argument: value}` that rebuild the model (Keras objects as such)."""
        raise NotImplementedError

    def get_config(self):
        config = {"name": self.name, "trainable": self.trainable}
        for key, value in self._constructor_arguments().items():
            if isinstance(value, keras.layers.Layer):
                value = keras.saving.serialize_keras_object(value)
            config[key] = value
        return config

    @classmethod
    def from_config(cls, config):
        config = {
            key: keras.saving.deserialize_keras_object(value)
            if isinstance(value, dict) and "class_name" in value else value
            for key, value in config.items()
        }
        return cls(**config)
