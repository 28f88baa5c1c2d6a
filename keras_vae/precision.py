"""Choosing and applying the numeric precision (Keras dtype policy) of a model.

Mixed precision computes a network's layers in a 16-bit format (bfloat16 or
float16) and keeps its weights in float32. It pays only on hardware with fast
units for that format: Intel CPUs with AMX (`amx_bf16`) or the AVX-512 BF16
instructions (`avx512_bf16`), which oneDNN uses for TensorFlow's matrix
products and convolutions, and GPUs with tensor cores (compute capability 7.0
for float16, 8.0 for bfloat16). Elsewhere the 16-bit formats are emulated and
slower than float32.

- `resolve(policy)` turns `"float32"`, `"mixed_bfloat16"`, `"mixed_float16"`
  or `"auto"` into a policy and a one-line reason; `"auto"` reads the
  hardware (`describe_hardware()`); `native_bfloat16()` says whether it
  found bfloat16 hardware.
- `with_policy(model, policy)` copies a built model into another policy, with
  the same weights (to evaluate a float32-trained model in bfloat16, say);
  `policy_of(model)` says which policy a (loaded) model computes in.
- `policy_scope(policy)` applies a policy while a model is built, and restores
  the previous global policy afterwards:

```python
import keras, keras_vae
from keras_vae import precision
policy, reason = precision.resolve("auto")
print(reason)
with precision.policy_scope(policy):
    vae = keras_vae.build_vae()
vae.compile(optimizer=keras.optimizers.Adam(1e-3))  # float16 adds loss scaling
```

A keras_vae VAE keeps the likelihood in float32 under any policy: the
posterior's mean and log-variance layers, the code sampler and the decoder's
first layer compute in float32 (they are small); the logits are cast to
float32; the log-probs, the KL term and the importance-weighted bound are
computed from float32 tensors (see `keras_vae.networks` and
`keras_vae.models.vae`).

This module is also the one description of the hardware, for `run.json` and
the benchmarks (`describe_hardware`, `read_cpuinfo`). Importing it is cheap,
as the command line's parser reads `CHOICES`: Keras and TensorFlow are
imported by the functions that use them.
"""

import contextlib
import os
import pathlib
import platform

POLICIES = ("float32", "mixed_bfloat16", "mixed_float16")
"""The policies a model can be built with."""

CHOICES = POLICIES + ("auto",)
"""What `resolve` accepts: a policy, or `"auto"` to choose from the hardware."""

CPU_FLAGS = ("avx512f", "avx512_bf16", "amx_bf16", "amx_tile")
"""CPU flags that decide which fast kernels (oneDNN: AVX-512, bfloat16, AMX) TensorFlow can use."""

BFLOAT16_CPU_FLAGS = ("amx_bf16", "avx512_bf16")
"""A CPU with one of these computes bfloat16 products in hardware (best first)."""

_FLAG_UNITS = {"amx_bf16": "AMX bfloat16 tiles", "avx512_bf16": "AVX-512 BF16 instructions"}


def read_cpuinfo(cpuinfo=None):
    """Returns the CPU's model name, logical processor count and flags.

    Args:
        cpuinfo: Text in the format of Linux's `/proc/cpuinfo`; read from
            there when None (and treated as empty where there is none).

    Returns:
        A dict with `cpu` (the model name, or `platform.processor()`),
        `cores` (processors listed, else `os.cpu_count()`) and `flags` (a
        set of every flag of the first processor).
    """
    if cpuinfo is None:
        try:
            cpuinfo = pathlib.Path("/proc/cpuinfo").read_text()
        except OSError:
            cpuinfo = ""
    model, flags, processors = None, set(), 0
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        key, value = key.strip(), value.strip()
        if key == "processor":
            processors += 1
        elif key == "model name" and model is None:
            model = value
        elif key == "flags" and not flags:
            flags = set(value.split())
    return {"cpu": model or platform.processor() or "unknown CPU",
            "cores": processors or os.cpu_count(), "flags": flags}


def list_gpus():
    """Returns TensorFlow's GPUs as dicts `{"name", "compute_capability"}`.

    `compute_capability` is a `(major, minor)` tuple, or None where
    TensorFlow does not report one.
    """
    import tensorflow as tf

    gpus = []
    for device in tf.config.list_physical_devices("GPU"):
        details = tf.config.experimental.get_device_details(device)
        capability = details.get("compute_capability")
        gpus.append({"name": details.get("device_name", device.name),
                     "compute_capability": tuple(capability) if capability else None})
    return gpus


def describe_hardware(cpuinfo=None, gpus=None):
    """Describes the processors a model runs on, for `run.json` and benchmarks.

    Args:
        cpuinfo: `/proc/cpuinfo` text (see `read_cpuinfo`); read when None.
        gpus: List of `{"name", "compute_capability"}` dicts; `list_gpus()`
            when None.

    Returns:
        A JSON-ready dict: `cpu` (model name), `cpu_flags` (those of
        `CPU_FLAGS` the CPU has, in that order), `cores`, `gpus` (name and
        compute capability as `"8.0"`, or None) and `onednn` (False when
        `TF_ENABLE_ONEDNN_OPTS=0` turns TensorFlow's oneDNN kernels off).
    """
    info = read_cpuinfo(cpuinfo)
    gpus = list_gpus() if gpus is None else gpus
    return {
        "cpu": info["cpu"],
        "cpu_flags": [flag for flag in CPU_FLAGS if flag in info["flags"]],
        "cores": info["cores"],
        "gpus": [{"name": gpu["name"],
                  "compute_capability": _capability_text(gpu["compute_capability"])}
                 for gpu in gpus],
        "onednn": _onednn_enabled(),
    }


def _capability_text(capability):
    return None if capability is None else ".".join(str(part) for part in capability)


def _onednn_enabled():
    return os.environ.get("TF_ENABLE_ONEDNN_OPTS", "1").strip() not in ("0", "false", "False")


ONEDNN_BFLOAT16_ISAS = ("AVX512_CORE_BF16", "AVX512_CORE_FP16", "AVX10_1_512",
                        "AVX512_CORE_AMX", "AVX512_CORE_AMX_FP16", "AVX10_1_512_AMX",
                        "AVX10_1_512_AMX_FP16", "AVX10_2_512", "AVX10_2_512_AMX_2", "ALL",
                        "DEFAULT")
"""Values of oneDNN's `ONEDNN_MAX_CPU_ISA` that still let it use bfloat16 instructions."""


def _onednn_isa_cap():
    """oneDNN's instruction-set cap (`ONEDNN_MAX_CPU_ISA` or `DNNL_MAX_CPU_ISA`), or None."""
    for variable in ("ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA"):
        value = os.environ.get(variable, "").strip().upper()
        if value:
            return variable, value
    return None


def _check_policy(policy):
    if not isinstance(policy, str):
        raise TypeError(f"policy must be a str, one of {CHOICES}. Received: policy={policy!r}")
    if policy not in CHOICES:
        raise ValueError(f"policy must be one of {CHOICES}. Received: policy={policy!r}")
    return policy


def _gpu_choice(gpus):
    """The policy for the first GPU, and why."""
    gpu = gpus[0]
    capability = gpu["compute_capability"]
    name = f"the GPU {gpu['name']} (compute capability {_capability_text(capability)})"
    if capability is not None and tuple(capability) >= (8, 0):
        return "mixed_bfloat16", f"{name} has bfloat16 tensor cores"
    if capability is not None and tuple(capability) >= (7, 0):
        return "mixed_float16", f"{name} has float16 tensor cores (no bfloat16 ones)"
    return "float32", f"{name} has no tensor cores"


def _cpu_choice(info):
    """The policy for the CPU described by `read_cpuinfo`, and why."""
    name = f"the CPU {info['cpu']}"
    fast = [flag for flag in BFLOAT16_CPU_FLAGS if flag in info["flags"]]
    if not fast:
        return "float32", f"{name} has neither {' nor '.join(BFLOAT16_CPU_FLAGS)}"
    if not _onednn_enabled():
        return "float32", (f"{name} has {fast[0]} but TF_ENABLE_ONEDNN_OPTS=0 turns off "
                           "the oneDNN kernels that use it")
    cap = _onednn_isa_cap()
    if cap is not None and cap[1] not in ONEDNN_BFLOAT16_ISAS:
        return "float32", (f"{name} has {fast[0]} but {cap[0]}={cap[1]} keeps oneDNN "
                           "from using it")
    return "mixed_bfloat16", f"{name} has {fast[0]} ({_FLAG_UNITS[fast[0]]})"


def resolve(policy="auto", cpuinfo=None, gpus=None):
    """Returns the dtype policy to build a model with, and a one-line reason.

    A named policy is returned as it is. `"auto"` picks a mixed policy only
    where the hardware computes it fast: on the first GPU if there is one
    (compute capability 8.0 or more: `mixed_bfloat16`, which needs no loss
    scaling; 7.x: `mixed_float16`; older: `float32`), otherwise on the CPU
    (`amx_bf16` or `avx512_bf16` with TensorFlow's oneDNN kernels on:
    `mixed_bfloat16`; otherwise `float32`).

    Args:
        policy: One of `CHOICES`.
        cpuinfo: `/proc/cpuinfo` text; read when None (for tests).
        gpus: List of `{"name", "compute_capability"}` dicts; `list_gpus()`
            when None (for tests).

    Returns:
        `(policy, reason)`: a name from `POLICIES` and one line saying which
        policy was chosen and why.

    Example:

    ```python
    >>> resolve("auto", cpuinfo="model name : Xeon\\nflags : avx512f amx_bf16", gpus=[])
    ('mixed_bfloat16', 'auto chose mixed_bfloat16: the CPU Xeon has amx_bf16 (AMX bfloat16 tiles)')
    ```
    """
    _check_policy(policy)
    if policy != "auto":
        return policy, f"{policy} was requested"
    gpus = list_gpus() if gpus is None else gpus
    chosen, why = _gpu_choice(gpus) if gpus else _cpu_choice(read_cpuinfo(cpuinfo))
    return chosen, f"auto chose {chosen}: {why}"


def native_bfloat16(cpuinfo=None, gpus=None):
    """Whether this machine computes bfloat16 in hardware (where `"auto"` picks it).

    True on a GPU of compute capability 8.0 or more, or a CPU with
    `amx_bf16` or `avx512_bf16` while TensorFlow's oneDNN kernels are on.
    Elsewhere TensorFlow emulates bfloat16, rounding more often: a bfloat16
    copy of a model then agrees with float32 less closely (tests use this to
    choose their tolerance).

    Args:
        cpuinfo: `/proc/cpuinfo` text; read when None (for tests).
        gpus: List of `{"name", "compute_capability"}` dicts; `list_gpus()`
            when None (for tests).
    """
    return resolve("auto", cpuinfo, gpus)[0] == "mixed_bfloat16"


@contextlib.contextmanager
def policy_scope(policy):
    """Sets Keras's global dtype policy to `policy` inside a `with` block.

    Layers take the global policy when they are created, so a model built in
    the block keeps `policy` after it (its weights stay float32; it computes
    in the policy's format). The previous global policy is restored on exit,
    also when the block raises.

    Args:
        policy: A name from `POLICIES` (`resolve` first for `"auto"`).

    Yields:
        The policy's name.
    """
    _check_policy(policy)
    if policy == "auto":
        raise ValueError("policy_scope needs a policy; pass policy=\"auto\" to resolve() "
                         "first. Received: policy='auto'")
    import keras

    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(policy)
    try:
        yield policy
    finally:
        keras.config.set_dtype_policy(previous)


def policy_of(model):
    """Returns the name of the dtype policy `model`'s layers compute in, or None.

    Read from the layers' configs, the ones `with_policy` sets: every
    floating-point layer policy outside the layers kept in float32 under any
    policy (`keras_vae.networks.FLOAT32_LAYERS`). A loaded model's own
    `dtype_policy` is the global one at loading time, not the one it was
    built in, so it is not used. `with_policy(model, policy_of(model))`
    changes nothing.

    Args:
        model: A Keras model (nested models are read too).

    Returns:
        The policy's name (`"float32"`, `"mixed_bfloat16"`...), or None when
        the layers do not share one.
    """
    import keras

    from keras_vae import saving

    found = set()

    def collect(node, scope):
        if _is_float_policy(node) and not _keeps_float32(scope):
            found.add(node["config"]["name"])
        return node

    saving.map_layer_configs(keras.saving.serialize_keras_object(model), collect)
    return found.pop() if len(found) == 1 else (None if found else "float32")


def with_policy(model, policy):
    """Returns a copy of `model` that computes in `policy`, with the same weights.

    Use it to evaluate a float32-trained model in a fast format (the
    importance-weighted bound with K=1000 is the expensive part of an
    evaluation), or the other way round. The copy is rebuilt from the
    model's config (`keras_vae.saving.rebuild`) with every layer's
    floating-point dtype policy set to `policy`, except the layers that keep
    the likelihood in float32 under any policy
    (`keras_vae.networks.FLOAT32_LAYERS`); the weights are copied, not
    shared. Integer inputs and other non-float policies are left as they
    are. `model` itself is not changed.

    Args:
        model: A keras_vae model (or any Keras model with `get_config`).
        policy: A name from `POLICIES` (`resolve` first for `"auto"`).

    Returns:
        A new model of the same class, in `policy`.

    Example:

    ```python
    import keras_vae
    from keras_vae import evaluation, precision
    vae = keras_vae.build_vae()  # trained in float32
    fast = precision.with_policy(vae, precision.resolve("auto")[0])
    bound = evaluation.log_likelihood(fast, x_test, num_samples=1000)["iwae"]
    ```
    """
    _check_policy(policy)
    if policy == "auto":
        raise ValueError("with_policy needs a policy; pass policy=\"auto\" to resolve() "
                         "first. Received: policy='auto'")
    import keras

    from keras_vae import saving

    def set_policy(node, scope):
        if not _is_float_policy(node) or _keeps_float32(scope):
            return node
        return keras.dtype_policies.serialize(keras.DTypePolicy(policy))

    with policy_scope(policy):
        return saving.rebuild(model, set_policy)


DTYPE_POLICY_CLASSES = ("DTypePolicy", "FloatDTypePolicy")
"""The class names of a serialized layer dtype policy (Keras 3)."""

FLOAT_POLICY_NAMES = ("float32", "float16", "bfloat16") + POLICIES[1:]
"""The policies `with_policy` replaces (float64, integer and quantized ones stay)."""


def _is_float_policy(node):
    """Whether a serialized object is a layer's dtype policy that `with_policy` replaces."""
    return (node["class_name"] in DTYPE_POLICY_CLASSES
            and node["config"].get("name") in FLOAT_POLICY_NAMES)


def _keeps_float32(scope):
    """Whether the layer that `scope` ends with keeps the likelihood in float32.

    `scope` names the objects around a serialized dtype policy, its layer
    last. Decoders saved before that layer was renamed `z_hidden` call their
    first layer `hidden`; inside a model named `decoder` it is kept float32
    too, so an older saved model is copied as one built today would be.
    """
    from keras_vae import networks

    return bool(scope) and (scope[-1] in networks.FLOAT32_LAYERS
                            or tuple(scope[-2:]) == ("decoder", "hidden"))
