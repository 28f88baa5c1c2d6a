"""Training throughput: keras_vae.VAE against the keras.io example's own loop.

Both models get the same layers (`keras_example.build_networks`) and train
in one process, alternating one epoch each, so machine noise hits both
alike. The baseline (`keras_example.MinimalVAE`) is fed NumPy arrays as in
the example; `keras_vae.VAE` gets `datasets.make_dataset` with dynamic
binarization inside the graph. Reported per configuration: images/s (median
of the epochs after the first; an epoch is timed from Keras's
`on_epoch_begin` to `on_epoch_end`, without `fit`'s set-up and its
iterator's deletion at the end, a wait of tf.data's autotuner that both
inputs share; see `datasets.make_dataset`), achieved GFLOP/s (3 x the forward FLOPs
counted from the layers) and the ratio. Peak memory (maximum resident set)
is measured in a separate process per model. One table is appended to
RESULTS.md.

    python -m benchmarks.throughput --rounds 5

`--policies` instead trains keras_vae's own networks (default and wide)
under float32 and mixed_bfloat16 side by side in one process, and times the
IWAE evaluation of the float32-trained weights under both policies; the
table names the CPU, its flags and what `keras_vae.precision.resolve("auto")`
picks there.
"""

import argparse
import datetime
import json
import os
import resource
import statistics
import subprocess
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import tensorflow as tf

import keras_vae
from benchmarks import harness
from benchmarks import keras_example
from keras_vae import datasets
from keras_vae import evaluation
from keras_vae import precision
from keras_vae import saving
from keras_vae import schedules
from keras_vae.models import checks


def images(size, count):
    (x_train, _), _ = datasets.load("mnist")
    x = x_train[:count]
    if size != 28:
        x = tf.image.resize(x, (size, size)).numpy().clip(0, 1)
    return x.astype("float32")


VARIANTS = {
    "keras_vae": {},
    "keras_vae_xla": {"jit_compile": True},
    "keras_vae_steps8": {"steps_per_execution": 8},
}
"""keras_vae compiled three ways: Keras's defaults, XLA, 8 steps per graph call."""

MODELS = {
    "baseline": keras_example.MinimalVAE,
    "layers_only": keras_example.LayersOnly,
    **{kind: lambda encoder, decoder: keras_vae.VAE(encoder, decoder, seed=0)
       for kind in (*VARIANTS, "keras_vae_unchecked")},
}
"""Each kind's model class, given the keras.io example's (encoder, decoder)."""

NUMPY_INPUT = ("baseline", "layers_only")
"""Kinds fed NumPy arrays as in the keras.io example; the others get `make_dataset`."""


def build(kind, size, policy):
    keras.config.set_dtype_policy(policy)
    keras.utils.set_random_seed(0)
    encoder, decoder = keras_example.build_networks((size, size, 1))
    model = MODELS[kind](encoder, decoder)
    model.compile(optimizer=keras.optimizers.Adam(schedules.learning_rate(1e-3)),
                  **VARIANTS.get(kind, {}))
    keras.config.set_dtype_policy("float32")
    return model


def train_input(kind, x, batch_size):
    if kind in NUMPY_INPUT:
        return {"x": x, "batch_size": batch_size}
    return {"x": datasets.make_dataset(x, batch_size=batch_size, binarize=True, seed=0)}


def compare(size, batch_size, policy, rounds, count, kinds=("baseline", "keras_vae")):
    x = images(size, count)
    models = {kind: build(kind, size, policy) for kind in kinds}
    seconds = {kind: [] for kind in models}
    for _ in range(rounds):
        for kind, model in models.items():
            timer = harness.EpochTimer()
            # Read when the step is traced (the first fit): every batch checked in
            # the graph, except for the kind that measures what the check costs.
            with checks.batch_checks(kind != "keras_vae_unchecked"):
                model.fit(epochs=1, verbose=0, callbacks=[timer],
                          **train_input(kind, x, batch_size))
            seconds[kind].append(timer.seconds[0])
    flops = 3 * (keras_example.forward_flops(models["keras_vae"].encoder)
                 + keras_example.forward_flops(models["keras_vae"].decoder))
    rates = {kind: len(x) / statistics.median(times[1:] or times)
             for kind, times in seconds.items()}
    return rates, flops


def peak_memory(kind, size, batch_size, count):
    """Runs two epochs of one model in a new process; returns its peak RSS in MB."""
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks.throughput", "--memory-of", kind,
         "--image-size", str(size), "--batch-size", str(batch_size), "--images", str(count)],
        cwd=harness.ROOT, capture_output=True, text=True, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])["peak_mb"]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--images", type=int, default=20000)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--image-size", type=int, default=28)
    parser.add_argument("--memory-of", choices=("baseline", "keras_vae"))
    parser.add_argument("--variants", action="store_true",
                        help="only 28x28, batch 128: the baseline against keras_vae with "
                        "Keras's defaults, with XLA and with 8 steps per execution, and "
                        "the same layers trained with no loss terms (a ceiling)")
    parser.add_argument("--batch-checks", action="store_true",
                        help="only 28x28, batch 128: keras_vae with and without the in-graph "
                        "check of every training batch")
    parser.add_argument("--policies", action="store_true",
                        help="only 28x28: keras_vae's default and wide networks under float32 "
                        "and mixed_bfloat16 side by side, training and IWAE evaluation")
    parser.add_argument("--eval-images", type=int, default=200,
                        help="with --policies: test images of the IWAE evaluation (K=1000)")
    parser.add_argument("--subpixel", action="store_true",
                        help="the decoder's transposed convolutions: Keras's against "
                        "keras_vae's sub-pixel computation, in float32 and mixed_bfloat16")
    args = parser.parse_args()
    if args.subpixel:
        subpixel(args)
        return
    if args.policies:
        policies(args)
        return
    if args.batch_checks:
        batch_checks(args)
        return
    if args.variants:
        variants(args)
        return
    if args.memory_of:
        x = images(args.image_size, args.images)
        model = build(args.memory_of, args.image_size, "float32")
        model.fit(epochs=2, verbose=0, **train_input(args.memory_of, x, args.batch_size))
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(json.dumps({"peak_mb": peak}))
        return

    configs = [(28, 128, "float32"), (28, 64, "float32"), (28, 256, "float32"),
               (64, 128, "float32"), (28, 128, "mixed_bfloat16")]
    rows = []
    for size, batch_size, policy in configs:
        rates, flops = compare(size, batch_size, policy, args.rounds, args.images)
        row = (f"| {size}x{size} | {batch_size} | {policy} | {rates['baseline']:,.0f} | "
               f"{rates['keras_vae']:,.0f} | {rates['keras_vae'] / rates['baseline']:.2f} | "
               f"{flops * rates['baseline'] / 1e9:.1f} | {flops * rates['keras_vae'] / 1e9:.1f} |")
        print(row, flush=True)
        rows.append(row)
    memory = {kind: peak_memory(kind, 28, 128, args.images) for kind in ("baseline", "keras_vae")}

    harness.append_results(f"""
## Training throughput: keras_vae.VAE vs the keras.io example's loop, {datetime.date.today()}

`python -m benchmarks.throughput --rounds {args.rounds} --images {args.images}` on
{harness.machine()}.
Same layers (keras.io example: conv 32/64, dense 16, latent 2), Adam, one process,
alternating one epoch each; images/s is the median of epochs 2 to {args.rounds}. The
baseline is fed NumPy arrays as in the example; keras_vae gets `make_dataset` with dynamic
binarization in the graph. GFLOP/s counts 3 x the forward FLOPs of the Dense and
convolution layers. Peak memory (maximum resident set of a process training 2 epochs,
28x28, batch 128): baseline {memory['baseline']:,.0f} MB, keras_vae
{memory['keras_vae']:,.0f} MB.

| images | batch | policy | baseline images/s | keras_vae images/s | ratio | baseline GFLOP/s | keras_vae GFLOP/s |
| --- | --- | --- | --- | --- | --- | --- | --- |
{chr(10).join(rows)}
""")


def variants(args):
    kinds = ("baseline", *VARIANTS, "layers_only")
    rates, _ = compare(28, 128, "float32", args.rounds, args.images, kinds)
    options = {kind: ", ".join(f"{key}={value}" for key, value in VARIANTS[kind].items())
               or "Keras defaults" for kind in VARIANTS}
    options["baseline"] = "NumPy arrays, Keras defaults"
    options["layers_only"] = "NumPy arrays, Keras defaults; no loss terms (ceiling)"
    rows = [f"| {kind} | {options[kind]} | "
            f"{rates[kind]:,.0f} | {rates[kind] / rates['baseline']:.2f} |" for kind in kinds]
    print("\n".join(rows))
    harness.append_results(f"""
## Throughput: can compile options make keras_vae faster? {datetime.date.today()}

`python -m benchmarks.throughput --variants --rounds {args.rounds} --images {args.images}`
on {harness.machine()}. The
keras.io example's layers, 28x28, batch 128, float32, one process, alternating one epoch
each; images/s is the median of epochs 2 to {args.rounds}.

| model | compile options | images/s | ratio to baseline |
| --- | --- | --- | --- |
{chr(10).join(rows)}

`layers_only` (`keras_example.LayersOnly`) trains the same layers with no sampling,
likelihood, KL or metrics: forward, backward and Adam only. Its rate bounds what any VAE
loop with these layers can reach on this machine.
""")


def batch_checks(args):
    kinds = ("keras_vae", "keras_vae_unchecked")
    rates, _ = compare(28, 128, "float32", args.rounds, args.images, kinds)
    cost = 1 - rates["keras_vae"] / rates["keras_vae_unchecked"]
    print(rates, f"cost {cost:.1%}")
    harness.append_results(f"""
## What checking every training batch costs, {datetime.date.today()}

`python -m benchmarks.throughput --batch-checks --rounds {args.rounds} --images {args.images}`
on {harness.machine()}. keras_vae.VAE with the keras.io example's layers, 28x28, batch 128,
float32, `make_dataset` with dynamic binarization; one process, alternating one epoch each;
images/s is the median of epochs 2 to {args.rounds}. "checked" is the default: every
training batch must be finite and in [0, 1] (`keras_vae.models.checks`, one fused
reduction per batch); "unchecked" turns the check off (`with checks.batch_checks(False):`).

| model | images/s | cost of the check |
| --- | --- | --- |
| keras_vae, unchecked | {rates['keras_vae_unchecked']:,.0f} | |
| keras_vae, every batch checked | {rates['keras_vae']:,.0f} | {cost:.1%} |
""")


POLICY_NETWORKS = {
    "default (conv 32/64, dense 256, latent 32)": {"filters": (32, 64), "hidden_units": 256},
    "wide (conv 64/128, dense 512, latent 32)": {"filters": (64, 128), "hidden_units": 512},
}
"""The networks `--policies` compares: `build_vae`'s defaults and the wide model of issue 19."""

POLICIES = ("float32", "mixed_bfloat16")


def _policy_model(options, policy):
    keras.utils.set_random_seed(0)
    with precision.policy_scope(policy):
        model = keras_vae.build_vae(latent_dim=32, seed=0, **options)
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    return model


def _timed_iwae(model, x, num_samples):
    evaluation.log_likelihood(model, x[:8], num_samples=num_samples, verbose=0)  # tracing
    start = time.perf_counter()
    bound = evaluation.log_likelihood(model, x, num_samples=num_samples, verbose=0)["iwae"]
    return len(x) / (time.perf_counter() - start), float(-bound.mean())


def _train_side_by_side(models, x, args):
    """Trains `{name: model}` from one process, alternating one epoch each.

    Returns `(rates, losses)`: images/s per name (the median of epochs 2 to
    `args.rounds`) and the training loss of the last epoch.
    """
    data = {name: datasets.make_dataset(x, batch_size=args.batch_size, binarize=True, seed=0)
            for name in models}
    seconds = {name: [] for name in models}
    losses = {}
    for _ in range(args.rounds):
        for name, model in models.items():
            timer = harness.EpochTimer()
            logs = model.fit(data[name], epochs=1, verbose=0, callbacks=[timer]).history
            seconds[name].append(timer.seconds[0])
            losses[name] = logs["loss"][-1]
    rates = {name: len(x) / statistics.median(times[1:] or times)
             for name, times in seconds.items()}
    return rates, losses


def _comparison_row(label, first, second, rates, losses, iwae):
    """A table row: training images/s and loss, IWAE images/s and NLL, `second` against `first`."""
    return (f"| {label} | {rates[first]:,.0f} | {rates[second]:,.0f} | "
            f"{rates[second] / rates[first]:.2f} | {losses[first]:.1f} / {losses[second]:.1f} | "
            f"{iwae[first][0]:,.1f} | {iwae[second][0]:,.1f} | "
            f"{iwae[second][0] / iwae[first][0]:.2f} | "
            f"{iwae[first][1]:.2f} / {iwae[second][1]:.2f} |")


def policies(args):
    """float32 against mixed_bfloat16, training and IWAE evaluation, in one process."""
    x = images(28, args.images)
    test = datasets.binarize(datasets.load("mnist")[1][0][:args.eval_images], seed=0)
    auto, reason = precision.resolve("auto")
    rows = []
    for label, options in POLICY_NETWORKS.items():
        models = {policy: _policy_model(options, policy) for policy in POLICIES}
        rates, losses = _train_side_by_side(models, x, args)
        # The evaluation question: the float32-trained weights, decoded in each format.
        iwae = {policy: _timed_iwae(precision.with_policy(models["float32"], policy), test, 1000)
                for policy in POLICIES}
        rows.append(_comparison_row(label, *POLICIES, rates, losses, iwae))
        print(rows[-1], flush=True)
    harness.append_results(f"""
## Precision: float32 against mixed_bfloat16 side by side, {datetime.date.today()}

`python -m benchmarks.throughput --policies --rounds {args.rounds} --images {args.images}
--eval-images {args.eval_images}` on {harness.machine()}. `precision.resolve("auto")`:
{reason}. keras_vae's `build_vae` networks, 28x28, batch {args.batch_size}, Adam 1e-3,
`make_dataset` with dynamic binarization; both policies in one process from the same
initial weights, alternating one epoch each; images/s is the median of epochs 2 to
{args.rounds}; the train loss is that of epoch {args.rounds}. Evaluation: the IWAE bound
(K=1000) of the float32-trained weights on {args.eval_images} binarized test images,
computed by a float32 copy and by a mixed_bfloat16 copy of the same weights.

| networks | float32 images/s | mixed_bfloat16 images/s | ratio | train loss f32 / bf16 | IWAE f32 images/s | IWAE bf16 images/s | ratio | IWAE NLL f32 / bf16 |
| --- | --- | --- | --- | --- | --- | --- | --- | --- |
{chr(10).join(rows)}
""")


class _AlwaysSubpixel(keras_vae.layers.SubpixelConv2DTranspose):
    """The sub-pixel computation in training and in float32 too (only for this benchmark)."""

    def call(self, inputs, training=None):
        return self._subpixel_call(inputs, self._subpixel_plan())


def _with_transposed_convolutions(model, layer_class):
    """A copy of `model` whose decoder's transposed convolutions are `layer_class`s."""
    def replace(node, scope):
        if node["class_name"] == "SubpixelConv2DTranspose":
            # Found through `custom_objects` by this name, also when run as __main__.
            node.update(class_name=layer_class.__name__, module=layer_class.__module__,
                        registered_name=layer_class.__name__)
        return node

    copy = saving.rebuild(model, replace, custom_objects={layer_class.__name__: layer_class})
    copy.compile(optimizer=keras.optimizers.Adam(1e-3))
    return copy


def subpixel(args):
    """Keras's transposed convolutions against the sub-pixel ones, training and evaluation."""
    x = images(28, args.images)
    test = datasets.binarize(datasets.load("mnist")[1][0][:args.eval_images], seed=0)
    options = POLICY_NETWORKS["default (conv 32/64, dense 256, latent 32)"]
    rows = []
    for policy in POLICIES:
        ours = _policy_model(options, policy)
        models = {"Conv2DTranspose": _with_transposed_convolutions(
                      ours, keras.layers.Conv2DTranspose),
                  "sub-pixel": _with_transposed_convolutions(ours, _AlwaysSubpixel)}
        rates, losses = _train_side_by_side(models, x, args)
        iwae = {kind: _timed_iwae(model, test, 1000) for kind, model in models.items()}
        rows.append(_comparison_row(policy, *models, rates, losses, iwae))
        print(rows[-1], flush=True)
    harness.append_results(f"""
## The decoder's transposed convolutions: Keras's against sub-pixel ones, {datetime.date.today()}

`python -m benchmarks.throughput --subpixel --rounds {args.rounds} --images {args.images}
--eval-images {args.eval_images}` on {harness.machine()}. keras_vae's default networks
(conv 32/64, dense 256, latent 32), 28x28, batch {args.batch_size}, Adam 1e-3, `make_dataset`
with dynamic binarization. In each policy, two models with the same weights: one whose transposed convolutions always
run the sub-pixel computation of `keras_vae.layers.SubpixelConv2DTranspose` (a convolution
and `depth_to_space`, also in training and in float32), one with
`keras.layers.Conv2DTranspose`; one process, alternating one epoch
each; images/s is the median of epochs 2 to {args.rounds}; the train loss is that of epoch
{args.rounds}. Evaluation: the IWAE bound (K=1000) of the trained weights on
{args.eval_images} binarized test images.

| policy | Conv2DTranspose images/s | sub-pixel images/s | ratio | train loss Keras / sub-pixel | IWAE Keras images/s | IWAE sub-pixel images/s | ratio | IWAE NLL Keras / sub-pixel |
| --- | --- | --- | --- | --- | --- | --- | --- | --- |
{chr(10).join(rows)}
""")


if __name__ == "__main__":
    main()
