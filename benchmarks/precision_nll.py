"""What mixed precision costs in nats: float32 and mixed_bfloat16 trained side by side.

For each network (keras_vae's default and the wide one of issue 19) and
each seed, trains one model per policy from the same initial weights, data
order and binarization noise, and reports the test negative ELBO (10,000
statically binarized MNIST test images, seed 0) and the IWAE NLL (K=1000 on
the first `--eval-images` of them), in nats, with each policy's minutes.
It also evaluates the float32-trained weights in a mixed_bfloat16 copy: the
question whether the expensive IWAE evaluation may run in the fast format.
One table is appended to RESULTS.md, with the mean gap over the seeds.

    python -m benchmarks.precision_nll --epochs 10 --seeds 0 1

Run on a quiet machine: the minutes are timings.
"""

import argparse
import datetime
import os
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras

import keras_vae
from benchmarks import harness
from keras_vae import datasets
from keras_vae import evaluation
from keras_vae import precision

NETWORKS = {
    "default": {"filters": (32, 64), "hidden_units": 256},
    "wide": {"filters": (64, 128), "hidden_units": 512},
}
"""`build_vae` arguments of each network (latent 32 for both)."""

POLICIES = ("float32", "mixed_bfloat16")


def build(options, policy, seed):
    keras.utils.set_random_seed(seed)
    with precision.policy_scope(policy):
        model = keras_vae.build_vae(latent_dim=32, seed=seed, **options)
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    return model


def nats(model, x_test, eval_images):
    """Test negative ELBO (all of `x_test`) and IWAE NLL (K=1000, the first images)."""
    elbo = model.evaluate(x_test, batch_size=256, verbose=0, return_dict=True)["loss"]
    bound = evaluation.log_likelihood(model, x_test[:eval_images], num_samples=1000,
                                      verbose=0)["iwae"]
    return elbo, float(-bound.mean())


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--networks", choices=tuple(NETWORKS), nargs="+",
                        default=list(NETWORKS))
    parser.add_argument("--eval-images", type=int, default=1000)
    parser.add_argument("--batch-size", type=int, default=128)
    args = parser.parse_args()
    (x_train, _), (x_test, _) = datasets.load("mnist")
    x_test = datasets.binarize(x_test, seed=0)
    rows, gaps = [], {}
    for name in args.networks:
        for seed in args.seeds:
            result = {}
            for policy in POLICIES:
                model = build(NETWORKS[name], policy, seed)
                data = datasets.make_dataset(x_train, batch_size=args.batch_size,
                                             binarize=True, seed=seed)
                start = time.perf_counter()
                model.fit(data, epochs=args.epochs, verbose=0)
                minutes = (time.perf_counter() - start) / 60
                result[policy] = (minutes, *nats(model, x_test, args.eval_images))
                if policy == "float32":
                    copy = build(NETWORKS[name], "mixed_bfloat16", seed)
                    copy.set_weights(model.get_weights())
                    copy_iwae = nats(copy, x_test, args.eval_images)[1]
            for policy, (minutes, elbo, iwae) in result.items():
                extra = f"{copy_iwae:.2f}" if policy == "float32" else ""
                rows.append(f"| {name} | {seed} | {policy} | {minutes:.1f} | {elbo:.2f} | "
                            f"{iwae:.2f} | {extra} |")
                print(rows[-1], flush=True)
            gaps.setdefault(name, []).append(
                (result["mixed_bfloat16"][1] - result["float32"][1],
                 result["mixed_bfloat16"][2] - result["float32"][2],
                 copy_iwae - result["float32"][2]))
    summary = [f"| {name} | {statistics.mean(g[0] for g in values):+.2f} | "
               f"{statistics.mean(g[1] for g in values):+.2f} | "
               f"{statistics.mean(g[2] for g in values):+.3f} |"
               for name, values in gaps.items()]
    harness.append_results(f"""
## Mixed precision in nats: float32 and mixed_bfloat16 side by side, {datetime.date.today()}

`python -m benchmarks.precision_nll --epochs {args.epochs} --seeds \
{' '.join(map(str, args.seeds))} --networks {' '.join(args.networks)} --eval-images \
{args.eval_images}` on {harness.machine()}. `precision.resolve("auto")` there:
{precision.resolve("auto")[1]}. `build_vae` networks (latent 32), batch {args.batch_size},
Adam 1e-3, dynamically binarized training images; both policies from the same seed (initial
weights, data order, noise). Test negative ELBO on the 10,000 test images binarized once
(seed 0); IWAE NLL with K=1000 on the first {args.eval_images}; "bf16 copy" is the IWAE NLL
of the float32-trained weights computed by a mixed_bfloat16 copy. Nats per image.

| networks | seed | policy | minutes | test negative ELBO | IWAE NLL | IWAE NLL, bf16 copy |
| --- | --- | --- | --- | --- | --- | --- |
{chr(10).join(rows)}

Mean over the seeds, mixed_bfloat16 minus float32 (the targets: within 0.5 nats for
training, 0.1 for the evaluation):

| networks | test negative ELBO | IWAE NLL | IWAE NLL of the bf16 copy |
| --- | --- | --- | --- |
{chr(10).join(summary)}
""")


if __name__ == "__main__":
    main()
