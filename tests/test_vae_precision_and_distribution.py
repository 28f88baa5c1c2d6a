"""The custom train_step under tf.distribute and mixed precision."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from conftest import run_python
from conftest import tiny_vae


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
def test_mixed_precision_trains_with_float32_losses(mnist_small, policy):
    (x, _), _ = mnist_small
    keras.config.set_dtype_policy(policy)
    try:
        keras.utils.set_random_seed(0)
        vae = tiny_vae()
        vae.compile(optimizer=keras.optimizers.Adam(1e-3))
        if policy == "mixed_float16":
            assert isinstance(vae.optimizer, keras.optimizers.LossScaleOptimizer)
        assert vae.decoder.get_layer("deconv_0").compute_dtype == policy.split("_")[1]
        assert vae.decoder.get_layer("logits").compute_dtype == policy.split("_")[1]
        assert vae.decoder.output.dtype == "float32"
        reconstruction, kl = vae.compute_vae_losses(x[:8])
        assert reconstruction.dtype == tf.float32 and kl.dtype == tf.float32
        history = vae.fit(x[:256], epochs=3, batch_size=64, verbose=0)
    finally:
        keras.config.set_dtype_policy("float32")
    losses = history.history["loss"]
    assert all(np.isfinite(losses)) and losses[-1] < losses[0]
    assert all(w.dtype == np.float32 for w in vae.get_weights())


def test_mirrored_strategy_step_matches_single_device(tmp_path):
    """One SGD step on 2 logical CPUs equals one step on 1 device, same global batch."""
    result = run_python("""
        import numpy as np, tensorflow as tf
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
        import keras, keras_vae

        x = keras_vae.datasets.load("mnist")[0][0][:16]

        def make():
            keras.utils.set_random_seed(0)
            vae = keras_vae.build_vae(latent_dim=4, filters=(8, 16), hidden_units=32, seed=0)
            # Near-deterministic codes (posterior std ~ 0.007), so that the two runs'
            # different noise draws barely matter and the comparison is sharp.
            layer = vae.encoder.get_layer("z_log_var")
            layer.kernel.assign(np.zeros(layer.kernel.shape))
            layer.bias.assign(np.full(layer.bias.shape, -30.0))
            vae.compile(optimizer=keras.optimizers.SGD(0.01))
            return vae

        single = make()
        start = [w.copy() for w in single.get_weights()]
        single_logs = single.fit(x, batch_size=16, epochs=1, shuffle=False, verbose=0).history
        strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
        assert strategy.num_replicas_in_sync == 2
        with strategy.scope():
            mirrored = make()
        for a, b in zip(start, mirrored.get_weights()):
            np.testing.assert_array_equal(a, b)
        mirrored_logs = mirrored.fit(x, batch_size=16, epochs=1, shuffle=False, verbose=0).history
        for key in ("loss", "reconstruction_loss", "kl_loss"):
            np.testing.assert_allclose(mirrored_logs[key], single_logs[key], rtol=2e-3)
        moved = 0.0
        for a, s, m in zip(start, single.get_weights(), mirrored.get_weights()):
            step_single, step_mirrored = s - a, m - a
            size = np.linalg.norm(step_single)
            if size > 0:
                # A wrong replica scaling would be off by a factor of 2 (error 0.5 or 1).
                error = np.linalg.norm(step_mirrored - step_single) / size
                assert error < 0.15, (a.shape, error)
            moved += size
        assert moved > 0
        print("MIRRORED-OK")
    """, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-4000:]
    assert "MIRRORED-OK" in result.stdout


def test_mirrored_evaluate_and_fit_take_batches_that_split_unevenly(tmp_path):
    """25 images over 2 replicas (13 and 12): Keras's build averaged the first
    batch over replicas and failed ("AddN must have the same size and shape");
    the mean loss must also weigh the two shares by their images."""
    result = run_python("""
        import numpy as np, tensorflow as tf
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
        import keras, keras_vae

        x = keras_vae.datasets.binarize(keras_vae.datasets.load("mnist")[0][0][:25], seed=0)

        def make():
            keras.utils.set_random_seed(0)
            vae = keras_vae.build_vae(latent_dim=4, filters=(8, 16), hidden_units=32, seed=0)
            layer = vae.encoder.get_layer("z_log_var")  # near-deterministic codes
            layer.kernel.assign(np.zeros(layer.kernel.shape))
            layer.bias.assign(np.full(layer.bias.shape, -30.0))
            vae.compile(optimizer=keras.optimizers.SGD(0.0))
            return vae

        single = make().evaluate(x, batch_size=64, verbose=0, return_dict=True)
        with tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"]).scope():
            mirrored = make()
        logs = mirrored.evaluate(x, batch_size=64, verbose=0, return_dict=True)
        for key in ("loss", "reconstruction_loss", "kl_loss"):
            np.testing.assert_allclose(logs[key], single[key], rtol=1e-4, atol=1e-4)
        history = mirrored.fit(x, batch_size=64, epochs=1, validation_data=(x,), verbose=0)
        np.testing.assert_allclose(history.history["val_loss"][0], single["loss"], rtol=1e-4)
        print("UNEVEN-OK")
    """, cwd=tmp_path)
    assert "UNEVEN-OK" in result.stdout
