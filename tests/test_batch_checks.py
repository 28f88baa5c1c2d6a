"""Every batch is checked in the graph, not only a dataset's first one.

A later batch of 0..255 values or with a NaN stops `fit` with an error that
says which check failed, before the batch updates any weight.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf

from conftest import tiny_vae
from keras_vae import models
from keras_vae.models import checks

BATCH = 16


def _images(n=48, seed=0):
    return np.random.default_rng(seed).random((n, 28, 28, 1)).astype("float32")


def _spoiled(kind):
    """Three batches of images; the third (never the first) is spoiled."""
    x = _images()
    if kind == "8-bit":
        x[2 * BATCH:] *= 255.0
    elif kind == "nan":
        x[2 * BATCH + 3, 5, 7, 0] = np.nan
    elif kind == "negative":
        x[2 * BATCH + 1] -= 0.5
    return x


MESSAGES = {
    "8-bit": r"this batch has min \S+ and max 25\d\.\d+ and 0 NaN or infinite value\(s\)",
    "nan": r"this batch has min \S+ and max 0\.9\d+ and 1 NaN or infinite value\(s\)",
    "negative": r"this batch has min -0\.4\d+ and max 0\.9\d+ and 0 NaN",
}

BUILDERS = {
    "vae": lambda: tiny_vae(),
    "autoencoder": lambda: models.build_autoencoder(latent_dim=4, filters=(8,),
                                                    hidden_units=16, seed=0),
    "cvae": lambda: models.build_conditional_vae(latent_dim=4, filters=(8,),
                                                 hidden_units=16, seed=0),
    "dcgan": lambda: models.build_dcgan(latent_dim=4, filters=(8, 16), seed=0),
}


def _dataset(x, conditional=False):
    if conditional:
        return tf.data.Dataset.from_tensor_slices((x, np.arange(len(x)) % 10)).batch(BATCH)
    return tf.data.Dataset.from_tensor_slices(x).batch(BATCH)


class _WeightsAfterEachBatch(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.snapshots = []

    def on_train_batch_end(self, batch, logs=None):
        self.snapshots.append([w.copy() for w in self.model.get_weights()])


CASES = [("vae", kind) for kind in MESSAGES] + [
    ("autoencoder", "8-bit"), ("cvae", "nan"), ("dcgan", "8-bit"), ("dcgan", "nan")]


@pytest.mark.parametrize("name, kind", CASES)
def test_a_later_bad_batch_stops_fit_before_it_updates_the_weights(name, kind):
    keras.utils.set_random_seed(0)
    model = BUILDERS[name]()
    model.compile(optimizer="adam")
    spy = _WeightsAfterEachBatch()
    with pytest.raises(tf.errors.InvalidArgumentError,
                       match=r"training images must be finite values in \[0, 1\]; "
                             + MESSAGES[kind]):
        model.fit(_dataset(_spoiled(kind), name == "cvae"), epochs=1, verbose=0,
                  callbacks=[spy])
    assert len(spy.snapshots) == 2  # the two good batches trained
    for before, after in zip(spy.snapshots[-1], model.get_weights()):
        np.testing.assert_array_equal(before, after)


def test_evaluate_and_predict_check_every_batch():
    vae = tiny_vae()
    vae.compile(optimizer="adam")
    data = _dataset(_spoiled("8-bit"))
    with pytest.raises(tf.errors.InvalidArgumentError,
                       match=r"evaluation images must be finite values in \[0, 1\]"):
        vae.evaluate(data, verbose=0)
    with pytest.raises(tf.errors.InvalidArgumentError,
                       match=r"images given to the model must be finite values in \[0, 1\]"):
        vae.predict(data, verbose=0)
    with pytest.raises(tf.errors.InvalidArgumentError,
                       match=r"evaluation images must be finite values in \[0, 1\]"):
        vae.fit(_dataset(_images()), validation_data=data, epochs=1, verbose=0)


def _weights_after_one_epoch(check):
    keras.utils.set_random_seed(0)
    vae = tiny_vae()
    vae.compile(optimizer="adam")
    with checks.batch_checks(check):
        vae.fit(_dataset(_images()), epochs=1, verbose=0)
    return vae.get_weights()


def test_the_check_does_not_change_training_on_good_batches():
    checked = _weights_after_one_epoch(True)
    for with_check, without in zip(checked, _weights_after_one_epoch(False)):
        np.testing.assert_array_equal(with_check, without)


def test_a_jit_compiled_model_checks_the_dataset_batches():
    # XLA compiles assertions away, so the dataset's batches are checked instead.
    vae = tiny_vae()
    vae.compile(optimizer="adam", jit_compile=True)
    with pytest.raises(tf.errors.InvalidArgumentError,
                       match=r"training images must be finite values in \[0, 1\]"):
        vae.fit(_dataset(_spoiled("8-bit")), epochs=1, verbose=0)


def test_batch_checks_false_turns_the_check_off_for_the_steps_traced_inside():
    # For measuring the check's cost (benchmarks/throughput.py): without it the
    # 0..255 batch trains silently, which is what the check prevents.
    vae = tiny_vae()
    vae.compile(optimizer="adam")
    with checks.batch_checks(False):
        history = vae.fit(_dataset(_spoiled("8-bit")), epochs=1, verbose=0)
    assert history.history["loss"][0] > 3000  # about 550 on good batches alone
    assert checks.batch_checks_enabled()  # on again after the block
    # The step was traced unchecked, and stays so.
    assert vae.fit(_dataset(_spoiled("8-bit")), epochs=1, verbose=0).history["loss"][0] > 3000


def test_batch_checks_false_turns_a_jit_compiled_model_s_dataset_check_off():
    vae = tiny_vae()
    vae.compile(optimizer="adam", jit_compile=True)
    with checks.batch_checks(False):
        vae.fit(_dataset(_spoiled("8-bit")), epochs=1, verbose=0)  # no error
    # Its dataset's batches are checked again at the next fit.
    with pytest.raises(tf.errors.InvalidArgumentError, match="training images must"):
        vae.fit(_dataset(_spoiled("8-bit")), epochs=1, verbose=0)


def test_batch_checks_restores_the_setting_and_takes_only_a_bool():
    with pytest.raises(RuntimeError, match="inside"):
        with checks.batch_checks(False):
            assert not checks.batch_checks_enabled()
            with checks.batch_checks(True):
                assert checks.batch_checks_enabled()
            assert not checks.batch_checks_enabled()
            raise RuntimeError("inside")
    assert checks.batch_checks_enabled()
    with pytest.raises(TypeError, match=r"^enabled must be True or False. Received: enabled=0$"):
        with checks.batch_checks(0):
            pass
    assert checks.batch_checks_enabled()
