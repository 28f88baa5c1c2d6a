"""Test NLL by the issue #17 protocol: select on a validation split, evaluate the test set once.

1. Train one configuration (`--model vae`, one stochastic layer, or
   `--model hierarchical`, two, with any `--prior` on the top one and the
   importance-weighted objective with `--importance-samples` k) on the
   first `--train-images` (50,000) MNIST
   training images, dynamically binarized, and hold out the last
   `--validation-images` (10,000) of the 60,000, binarized once with
   `--seed`. After every epoch the validation figure is computed: the
   negative ELBO (`--validation-samples 1`, one code per image) or the
   negative IWAE bound with a small K, with a fixed seed so epochs compare
   on the same noise. The best epoch's model is kept (`best.keras`); training
   stops after `--patience` epochs without improvement, after `--epochs`, or
   before an epoch would end past `--max-minutes` of training in all.
2. Resumable: `--resume` continues the run in `--output` from its last
   finished epoch (model, optimizer, the position in the training stream,
   the best model so far) and adds this sitting's minutes to the earlier
   ones (an epoch cut short by a kill is not counted; it is trained again).
   `--sitting-minutes` ends a sitting without evaluating, to be resumed.
   The evaluation is resumable too: each finished (draw, K) is kept.
3. The selected model is evaluated once on the first `--test-images`
   (10,000) test images, binarized with each of the `--binarization-seeds`
   (0 and 1): the IWAE bound with each K of `--test-samples` (5000 and
   1000), its mean and standard error over images, and the spread between
   the draws. Each draw uses its seed for the importance samples too, so
   `keras-vae evaluate OUTPUT/best.keras --num-samples K --seed S` gives the
   same figure. The bounds are computed in the training `--precision`, or,
   with `--eval-precision`, by a copy of the model in that policy with the
   same weights (`keras_vae.precision.with_policy`; its bounds are kept
   apart from the others and its rows say so), which is how a float32 model
   is evaluated at bfloat16's speed.
4. One table is appended to benchmarks/RESULTS.md (`--results` elsewhere)
   with the command, the machine, minutes, epochs and the validation figure.

    python -m benchmarks.likelihood_protocol --importance-samples 5 --max-minutes 300 \
        --sitting-minutes 120 --output runs/protocol_iwae5 --save /tmp/iwae5.keras
    python -m benchmarks.likelihood_protocol --output runs/protocol_iwae5 --resume \
        --sitting-minutes 120     # the next sitting: minutes are added

Run it alone on the machine: its minutes are the reported training time.
The file is a little over 400 lines: the protocol's training, resume,
evaluation and report share one state record and read best together.
"""

import argparse
import datetime
import json
import math
import os
import pathlib
import shlex
import shutil
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np

import keras_vae
from benchmarks import harness
from keras_vae import datasets
from keras_vae import evaluation
from keras_vae import precision
from keras_vae import saving
from keras_vae import schedules

SITTING_OVER = "--sitting-minutes"
"""The stopping reason of a sitting that ends without ending the run."""

STATE = "state.json"
"""The run's record in `--output`: settings, history, minutes, best epoch, results."""


def _parser():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=pathlib.Path, required=True,
                        help="folder of the run: checkpoints and state.json")
    parser.add_argument("--resume", action="store_true",
                        help="continue the run in --output with its stored settings (only "
                        "--max-minutes, --sitting-minutes, --test-samples, "
                        "--binarization-seeds, --eval-precision, --results and --save are "
                        "taken from this command)")
    parser.add_argument("--dataset", choices=("mnist", "fashion_mnist"), default="mnist")
    parser.add_argument("--train-images", type=int, default=50_000)
    parser.add_argument("--validation-images", type=int, default=10_000)
    parser.add_argument("--test-images", type=int, default=10_000)
    parser.add_argument("--model", choices=MODELS, default="vae",
                        help="vae: one stochastic layer; hierarchical: two (x <-> z1 <-> z2, "
                        "keras_vae.build_hierarchical_vae)")
    parser.add_argument("--latent-dim", type=int, default=32,
                        help="the code's size (hierarchical: the top code z2)")
    parser.add_argument("--bottom-latent-dim", type=int, default=64,
                        help="hierarchical: size of the bottom code z1")
    parser.add_argument("--top-hidden-units", type=int, nargs="+", default=[100, 100],
                        help="hierarchical: widths of the tanh layers between z1 and z2")
    parser.add_argument("--warmup-epochs", type=int, default=0,
                        help="raise the KL weight linearly from 0 to 1 over this many epochs "
                        "(keras_vae.callbacks.LinearKLWarmup; 0: none)")
    parser.add_argument("--filters", type=int, nargs="+", default=[32, 64])
    parser.add_argument("--hidden-units", type=int, default=256)
    parser.add_argument("--prior", choices=keras_vae.priors.NAMES, default="normal")
    parser.add_argument("--importance-samples", type=int, default=1,
                        help="k of the training objective (1: ELBO)")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    parser.add_argument("--lr-schedule", choices=schedules.NAMES, default="constant",
                        help="cosine: from --learning-rate to 0 over --epochs (set --epochs to "
                        "what --max-minutes allows)")
    parser.add_argument("--epochs", type=int, default=1000, help="most epochs")
    parser.add_argument("--patience", type=int, default=20,
                        help="stop after this many epochs without a better validation figure")
    parser.add_argument("--max-minutes", type=float,
                        help="training budget of the run, all sittings together: stop "
                        "before an epoch would end past it, then evaluate")
    parser.add_argument("--sitting-minutes", type=float,
                        help="budget of this sitting: stop before an epoch would end past "
                        "it and exit without evaluating (continue with --resume)")
    parser.add_argument("--validation-samples", type=int, default=1,
                        help="K of the validation figure (1: negative ELBO)")
    parser.add_argument("--test-samples", type=int, nargs="+",
                        help=f"K of the test bounds (default: {' '.join(map(str, TEST_SAMPLES))})")
    parser.add_argument("--binarization-seeds", type=int, nargs="+",
                        help="binarization draws of the test images (default: "
                        f"{' '.join(map(str, BINARIZATION_SEEDS))})")
    parser.add_argument("--precision", choices=precision.POLICIES, default="float32",
                        help="dtype policy of the model, trained (and by default evaluated) "
                        "in it")
    parser.add_argument("--eval-precision", choices=precision.POLICIES,
                        help="dtype policy of the test bounds, computed by a copy of the "
                        "selected model with the same weights (default: --precision)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--results", type=pathlib.Path, default=harness.RESULTS)
    parser.add_argument("--save", type=pathlib.Path,
                        help="also copy the selected model to this .keras file")
    parser.add_argument("--note", default="", help="free text recorded with the results")
    return parser


SETTINGS = ("dataset", "train_images", "validation_images", "test_images", "model",
            "latent_dim", "bottom_latent_dim", "filters", "hidden_units", "top_hidden_units",
            "prior", "importance_samples", "warmup_epochs", "batch_size", "learning_rate",
            "lr_schedule",
            "epochs", "patience", "validation_samples", "test_samples", "binarization_seeds",
            "seed", "max_minutes", "precision", "eval_precision")
"""What a run stores and `--resume` restores."""

MODELS = ("vae", "hierarchical")
"""What `--model` builds: `keras_vae.build_vae` or `keras_vae.build_hierarchical_vae`."""

DEFAULTS = {"model": "vae", "bottom_latent_dim": 64, "top_hidden_units": [100, 100],
            "warmup_epochs": 0, "lr_schedule": "constant", "precision": "float32",
            "eval_precision": None}
"""Settings of runs recorded before these options existed."""

TEST_SAMPLES = (5000, 1000)
"""K of the test bounds unless `--test-samples` says otherwise."""

BINARIZATION_SEEDS = (0, 1)
"""Binarization draws of the test images unless `--binarization-seeds` says otherwise."""


def _check(parser, args):
    if args.resume:
        return
    for name in ("train_images", "validation_images", "test_images", "latent_dim",
                 "bottom_latent_dim", "hidden_units", "importance_samples", "batch_size",
                 "epochs", "patience", "validation_samples"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be a positive int. "
                         f"Received: {getattr(args, name)}")
    if min(args.top_hidden_units) < 1:
        parser.error(f"--top-hidden-units must be positive. Received: {args.top_hidden_units}")
    if not 0 <= args.warmup_epochs < args.epochs:
        parser.error("--warmup-epochs must be 0 or more and fewer than --epochs "
                     f"({args.epochs}). Received: {args.warmup_epochs}")
    if args.test_samples is not None and min(args.test_samples) < 1:
        parser.error(f"--test-samples must be positive. Received: {args.test_samples}")
    if args.output.exists() and any(args.output.iterdir()):
        parser.error(f"--output {args.output} is not empty; pass --resume to continue it")


class ProtocolCheckpoint(keras.callbacks.Callback):
    """After each epoch: the validation figure, the best model, a checkpoint and the budget.

    Args:
        folder: The run's folder.
        state: The run's record (a dict, updated and written here).
        x_val: Validation images, binarized.
        sitting_minutes: This sitting's budget, or None (the run's budget,
            `max_minutes`, is in the state's settings).
    """

    def __init__(self, folder, state, x_val, sitting_minutes=None):
        super().__init__()
        self.folder = folder
        self.state = state
        self.x_val = x_val
        self.sitting_minutes = sitting_minutes
        self.sitting_start = time.perf_counter()
        self.epoch_minutes = []
        self.epoch_start = None

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch_start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        state = self.state
        bounds = evaluation.log_likelihood(
            self.model, self.x_val, num_samples=state["settings"]["validation_samples"],
            seed=state["settings"]["seed"], verbose=0)
        figure = float(-bounds["iwae"].mean())
        state["history"].append({"epoch": epoch + 1, "validation": figure,
                                 **{key: float(value) for key, value in (logs or {}).items()}})
        state["epochs"] = epoch + 1
        if state["best_validation"] is None or figure < state["best_validation"]:
            state["best_validation"], state["best_epoch"] = figure, epoch + 1
            saving.save_model(self.model, self.folder / "best.keras")
        saving.save_model(self.model, self.folder / "last.keras")
        minutes = (time.perf_counter() - self.epoch_start) / 60
        self.epoch_minutes.append(minutes)
        state["training_minutes"] += minutes
        saving.write_json(self.folder / STATE, state)
        settings = state["settings"]
        # One more epoch is assumed as slow as the slowest after the first (tracing).
        slowest = max(self.epoch_minutes[1:] or self.epoch_minutes)
        sitting = (time.perf_counter() - self.sitting_start) / 60
        if epoch + 1 - state["best_epoch"] >= settings["patience"]:
            state["stopped"] = f"no better validation figure for {settings['patience']} epochs"
        elif (settings["max_minutes"] is not None
              and state["training_minutes"] + slowest > settings["max_minutes"]):
            state["stopped"] = f"--max-minutes {settings['max_minutes']:g}"
        elif self.sitting_minutes is not None and sitting + slowest > self.sitting_minutes:
            state["stopped"] = SITTING_OVER
        if state["stopped"] is not None:
            self.model.stop_training = True
        saving.write_json(self.folder / STATE, state)


def _load_data(settings):
    (x_train, _), (x_test, _) = datasets.load(settings["dataset"])
    train, held_out = settings["train_images"], settings["validation_images"]
    if train + held_out > len(x_train) or settings["test_images"] > len(x_test):
        raise ValueError(
            f"{settings['dataset']} has {len(x_train)} training and {len(x_test)} test images. "
            f"Received: --train-images {train} --validation-images {held_out} "
            f"--test-images {settings['test_images']}")
    x_val = datasets.binarize(x_train[len(x_train) - held_out:], seed=settings["seed"])
    return x_train[:train], x_val, x_test[:settings["test_images"]]


def build(settings):
    """The untrained model of a run's settings (in the current dtype policy)."""
    common = {"latent_dim": settings["latent_dim"], "filters": tuple(settings["filters"]),
              "hidden_units": settings["hidden_units"], "prior": settings["prior"],
              "importance_samples": settings["importance_samples"], "seed": settings["seed"]}
    if settings["model"] == "hierarchical":
        return keras_vae.build_hierarchical_vae(
            bottom_latent_dim=settings["bottom_latent_dim"],
            top_hidden_units=tuple(settings["top_hidden_units"]), **common)
    return keras_vae.build_vae(**common)


def configuration(settings):
    """The table's name of a run's configuration."""
    filters = "/".join(map(str, settings["filters"]))
    if settings["model"] == "hierarchical":
        layers = (f"two stochastic layers (z1 {settings['bottom_latent_dim']}, "
                  f"z2 {settings['latent_dim']}, tanh "
                  f"{'/'.join(map(str, settings['top_hidden_units']))}), ")
        latent = ""
    else:
        layers, latent = "", f", latent {settings['latent_dim']}"
    policy = "" if settings["precision"] == "float32" else f", {settings['precision']}"
    warmup = (f", KL warm-up {settings['warmup_epochs']} epochs"
              if settings["warmup_epochs"] else "")
    schedule = (f", cosine learning rate over {settings['epochs']} epochs"
                if settings["lr_schedule"] == "cosine" else "")
    return (f"{layers}k={settings['importance_samples']}, conv {filters}, "
            f"dense {settings['hidden_units']}{latent}, {settings['prior']} prior"
            f"{warmup}{schedule}{policy}")


def train(folder, state, x_train, x_val, sitting_minutes):
    """Trains from the state's last epoch until a stopping rule; returns the state."""
    settings = state["settings"]
    keras.utils.set_random_seed(settings["seed"])
    steps = schedules.steps_per_epoch(len(x_train), settings["batch_size"])
    if state["epochs"]:
        model = saving.load_model(folder / "last.keras")
    else:
        with precision.policy_scope(settings["precision"]):
            model = build(settings)
        rate = schedules.learning_rate(settings["learning_rate"], settings["lr_schedule"],
                                       epochs=settings["epochs"], steps_per_epoch=steps)
        model.compile(optimizer=keras.optimizers.Adam(rate))
    if state["stopped"] not in (None, SITTING_OVER):
        return state  # a finished training, resumed for its evaluation
    state["stopped"] = None
    # The epochs already trained are skipped in the one training stream, so a
    # resumed run sees the batches an uninterrupted one would.
    data = datasets.make_dataset(x_train, batch_size=settings["batch_size"], binarize=True,
                                 seed=settings["seed"]).repeat().skip(state["epochs"] * steps)
    callbacks = [ProtocolCheckpoint(folder, state, x_val, sitting_minutes)]
    if settings["warmup_epochs"]:  # by epoch index, so a resumed run continues it
        callbacks.insert(0, keras_vae.callbacks.LinearKLWarmup(length=settings["warmup_epochs"]))
    model.fit(data, epochs=settings["epochs"], initial_epoch=state["epochs"],
              steps_per_epoch=steps, callbacks=callbacks, verbose=2)
    if state["stopped"] is None:
        state["stopped"] = f"--epochs {settings['epochs']}"
    saving.write_json(folder / STATE, state)
    return state


def copy_policy(settings):
    """The policy of the copy that computes the test bounds; None: the model computes them."""
    policy = settings["eval_precision"]
    return None if policy in (None, settings["precision"]) else policy


def bound_key(settings, seed, k):
    """The key of a test bound in the state (a copy's policy is named)."""
    copy = copy_policy(settings)
    return f"seed {seed}, K {k}" + (f", {copy}" if copy else "")


def evaluate(folder, state, x_test):
    """Evaluates `best.keras` (or its copy in `--eval-precision`) on the test images
    for every (draw, K) not yet done."""
    model = saving.load_model(folder / "best.keras")
    settings = state["settings"]
    copy = copy_policy(settings)
    if copy:
        model = precision.with_policy(model, copy)
    for seed in settings["binarization_seeds"]:
        x = datasets.binarize(x_test, seed=seed)
        for k in settings["test_samples"]:
            key = bound_key(settings, seed, k)
            if key in state["test"]:
                continue
            start = time.perf_counter()
            nll = -evaluation.log_likelihood(model, x, num_samples=k, seed=seed,
                                             verbose=1)["iwae"]
            state["test"][key] = {
                "seed": seed, "K": k, "precision": copy or settings["precision"],
                "images": int(len(x)),
                "nll": float(nll.mean()),
                "standard_error": float(nll.std(ddof=1) / math.sqrt(len(nll))),
                "minutes": (time.perf_counter() - start) / 60}
            saving.write_json(folder / STATE, state)
    return state


def results_section(state):
    """The Markdown section that RESULTS.md gets for a finished run."""
    settings = state["settings"]
    seeds = settings["binarization_seeds"]
    validation = ("negative ELBO (1 code per image)" if settings["validation_samples"] == 1
                  else f"negative IWAE bound, K={settings['validation_samples']}")
    copy = copy_policy(settings)
    evaluated = f"; test bounds by a {copy} copy of its weights" if copy else ""
    rows = []
    for k in settings["test_samples"]:
        draws = [state["test"][bound_key(settings, seed, k)] for seed in seeds]
        means = [draw["nll"] for draw in draws]
        per_draw = " / ".join(f"{draw['nll']:.2f} ± {draw['standard_error']:.2f}"
                              for draw in draws)
        spread = max(means) - min(means)
        rows.append(
            f"| {configuration(settings)}{evaluated} | {state['epochs']} ({state['best_epoch']}) | "
            f"{state['training_minutes']:.1f} | {state['best_validation']:.2f} | "
            f"{draws[0]['images']:,} | {k} | {np.mean(means):.2f} | {per_draw} | "
            f"{spread:.2f} | {sum(draw['minutes'] for draw in draws):.1f} |")
    return f"""
## Test NLL by the likelihood protocol (issue #17), {datetime.date.today()}

{chr(10).join(f"`{command}`" for command in state["commands"])}
on {harness.machine()}.
{settings['dataset']}: trained on the first {settings['train_images']:,} training images
(dynamically binarized; Adam {settings['learning_rate']:g} {settings['lr_schedule']}, batch {settings['batch_size']},
seed {settings['seed']}); model selected on the last {settings['validation_images']:,}
(binarized once, seed {settings['seed']}) by the {validation}, patience
{settings['patience']} epochs; stopped by {state['stopped']}. Training minutes add every
sitting (`--resume`) and include the per-epoch validation. The selected model is evaluated
once on {settings['test_images']:,} test images binarized with seeds
{', '.join(map(str, seeds))} (each seed also seeds the importance samples): NLL is the
IWAE bound with K samples in nats, mean ± standard error over images per draw, spread =
largest minus smallest draw mean. {state.get('note', '')}

| configuration | epochs (best) | training minutes | validation figure | test images | K | test NLL | per draw (± s.e.) | spread | evaluation minutes |
| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |
{chr(10).join(rows)}
"""


def main(argv=None):
    parser = _parser()
    args = parser.parse_args(argv)
    _check(parser, args)
    folder = args.output
    if args.resume:
        if not (folder / STATE).is_file():
            parser.error(f"--resume: {folder / STATE} does not exist")
        state = json.loads((folder / STATE).read_text())
        state["settings"] = {**DEFAULTS, **state["settings"]}
        if args.max_minutes is not None:
            state["settings"]["max_minutes"] = args.max_minutes
        for name in ("test_samples", "binarization_seeds", "eval_precision"):  # evaluation only
            if getattr(args, name) is not None:
                state["settings"][name] = getattr(args, name)
    else:
        args.test_samples = args.test_samples or list(TEST_SAMPLES)
        args.binarization_seeds = args.binarization_seeds or list(BINARIZATION_SEEDS)
        folder.mkdir(parents=True, exist_ok=True)
        state = {"settings": {key: getattr(args, key) for key in SETTINGS},
                 "commands": [], "note": args.note, "epochs": 0, "best_epoch": 0,
                 "best_validation": None, "training_minutes": 0.0, "history": [],
                 "test": {}, "stopped": None}
    state["commands"].append("python -m benchmarks.likelihood_protocol " + shlex.join(
        [str(arg) for arg in (sys.argv[1:] if argv is None else argv)]))
    saving.write_json(folder / STATE, state)
    x_train, x_val, x_test = _load_data(state["settings"])
    if not state["test"]:  # once the test set is touched, training is over
        state = train(folder, state, x_train, x_val, args.sitting_minutes)
        if state["stopped"] == SITTING_OVER:
            print(f"Stopped by {state['stopped']} after epoch {state['epochs']}; "
                  f"continue with --output {folder} --resume", flush=True)
            return state
    state = evaluate(folder, state, x_test)
    if args.save:
        args.save.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(folder / "best.keras", args.save)
    harness.append_results(results_section(state), args.results)
    return state


if __name__ == "__main__":
    main()
