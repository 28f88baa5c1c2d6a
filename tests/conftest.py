"""Shared helpers: tiny real datasets, tiny models and a fresh-process runner."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("MPLBACKEND", "Agg")

import pathlib
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import keras_vae

ROOT = pathlib.Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def mnist_small():
    """512 training and 128 test MNIST images, float32 in [0, 1], with labels."""
    (x_train, y_train), (x_test, y_test) = keras_vae.datasets.load("mnist")
    return (x_train[:512], y_train[:512]), (x_test[:128], y_test[:128])


def tiny_vae(image_shape=(28, 28, 1), latent_dim=4, seed=0, beta=1.0):
    """A small VAE that trains in a second or two on a few hundred images."""
    return keras_vae.build_vae(
        image_shape=image_shape,
        latent_dim=latent_dim,
        filters=(8, 16),
        hidden_units=32,
        beta=beta,
        seed=seed,
    )


BFLOAT16_NATIVE_NATS = 0.1
"""How far (nats) a bfloat16 copy's bound may move from float32 on bfloat16 hardware.

Issue 19's promise for evaluation, measured on CPUs with `amx_bf16` or
`avx512_bf16` (oneDNN accumulates the 16-bit products in float32).
"""

BFLOAT16_UNIT_ROUNDOFF = 2.0 ** -9
"""bfloat16's relative rounding error: an 8-bit significand."""


def bfloat16_nats_tolerance(nats):
    """Returns how far a bfloat16 copy's bound of `nats` may be from float32's, in nats.

    On bfloat16 hardware (`keras_vae.precision.native_bfloat16()`), the 0.1
    nats of `BFLOAT16_NATIVE_NATS`. Elsewhere TensorFlow emulates bfloat16
    and rounds intermediate results too, so only a weaker promise holds: one
    bfloat16 rounding of the bound, `|nats| * 2**-9` (0.86 nats at 441; an
    AMD EPYC with AVX2 only measured 0.34), and never less than 0.1.
    """
    if keras_vae.precision.native_bfloat16():
        return BFLOAT16_NATIVE_NATS
    return max(BFLOAT16_NATIVE_NATS, BFLOAT16_UNIT_ROUNDOFF * abs(float(nats)))


def float32_batch_tolerance(model):
    """Relative difference allowed between two float32 results of `model` in other batch shapes.

    Kernels may sum a layer's dot products of `fan_in` terms in another order
    when the batch shape changes (oneDNN picks its blocking by shape), so two
    results agree to about `sqrt(fan_in)` float32 roundings per layer, not
    bitwise: the sum of that over the model's kernels.
    """
    fan_ins = [int(np.prod(weight.shape[:-1])) for weight in model.trainable_weights
               if len(weight.shape) >= 2]
    return float(sum(np.sqrt(fan_ins))) * float(np.finfo("float32").eps)


def run_python(code, cwd, env=None, timeout=300):
    """Runs `code` in a fresh Python process; returns the CompletedProcess."""
    full_env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", **(env or {})}
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def run_saving_roundtrip(model, x, tmp_path, check_code=""):
    """Saves `model`, reloads it in a new process that only imports keras_vae,
    and asserts its deterministic outputs on `x` match within 1e-6.

    `check_code` runs in that process after the comparison, with `model` (the
    reloaded one) and `x` defined.
    """
    path = tmp_path / "model.keras"
    model.save(path)
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "expected.npy", np.asarray(model(x, training=False)))
    code = textwrap.dedent(f"""
        import numpy as np, keras, keras_vae
        model = keras.models.load_model({str(path)!r})
        x = np.load({str(tmp_path / "x.npy")!r})
        got = np.asarray(model(x, training=False))
        expected = np.load({str(tmp_path / "expected.npy")!r})
        assert got.shape == expected.shape, (got.shape, expected.shape)
        diff = float(np.max(np.abs(got - expected)))
        assert diff <= 1e-6, diff
    """) + textwrap.dedent(check_code) + "\nprint('ROUNDTRIP-OK')\n"
    result = run_python(code, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "ROUNDTRIP-OK" in result.stdout
    return result


def write_npz(path, n=6, shape=(10, 12), dtype="uint8", **overrides):
    """Writes a small .npz dataset of random images (a None override drops that array)."""
    rng = np.random.default_rng(0)
    arrays = {
        "x_train": rng.integers(0, 256, (n,) + shape).astype(dtype),
        "y_train": rng.integers(0, 3, n),
        "x_test": rng.integers(0, 256, (n // 2,) + shape).astype(dtype),
        "y_test": rng.integers(0, 3, n // 2),
    }
    arrays.update(overrides)
    arrays = {k: v for k, v in arrays.items() if v is not None}
    np.savez(path, **arrays)
    return arrays
