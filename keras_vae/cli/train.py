"""`keras-vae train`: train a VAE with `model.fit` and write the run into a folder."""

import argparse
import contextlib
import sys

from keras_vae import precision
from keras_vae.cli import arguments
from keras_vae.cli import worker_wait
from keras_vae.cli.run_folder import RunFolder

STORED_SETTINGS = ("dataset", "model", "likelihood", "prior", "epochs", "batch_size",
                   "latent_dim", "beta", "kl_warmup", "learning_rate", "lr_schedule", "seed",
                   "binarize", "limit", "image_size", "color_mode", "plot_every",
                   "precision", "importance_samples", "validation_images",
                   "num_embeddings", "embedding_dim", "prior_epochs", "initial_scale")
"""The flags a run stores in `backup/settings.json` and `run.json`."""

SETTING_DEFAULTS = {"model": "vae", "likelihood": "bernoulli", "prior": "normal",
                    "lr_schedule": "constant", "precision": "float32",
                    "importance_samples": 1, "validation_images": 0,
                    "num_embeddings": 64, "embedding_dim": 16, "prior_epochs": 10,
                    "initial_scale": None}
"""Settings added after runs were first stored, with the values those runs used."""

MAX_CLASSES = 10_000
"""Most classes a conditional VAE accepts (its label input is one-hot)."""

# The names the flags offer, written out so that building the parser imports
# no TensorFlow; tests/test_cli_startup.py checks each against the library's.
LIKELIHOODS = ("bernoulli", "continuous_bernoulli", "gaussian", "gaussian_pixel",
               "discretized_logistic")
"""`keras_vae.likelihoods.NAMES`."""

PRIORS = ("normal", "mixture", "vamp")
"""`keras_vae.priors.NAMES`."""

SCALED_LIKELIHOODS = ("gaussian", "gaussian_pixel", "discretized_logistic")
"""The likelihoods with a learned scale, which `--initial-scale` starts."""

LR_SCHEDULES = ("constant", "cosine")
"""`keras_vae.schedules.NAMES`."""

STRATEGIES = ("none", "mirrored", "multi-worker")
"""`keras_vae.distribute.STRATEGIES`."""

MODELS = ("vae", "conditional_vae", "hvae", "vqvae")
"""The models `--model` builds (not a library list: the builders are in `run`)."""

VAE_ONLY = {"prior": "normal", "beta": 1.0, "importance_samples": 1, "kl_warmup": 0,
            "projector_every": 0}
"""Flags that --model vqvae does not take, with their defaults."""


def add_parser(commands):
    """Adds the `train` subcommand to `commands` (an argparse subparsers object)."""
    train = commands.add_parser(
        "train",
        help="train a convolutional VAE and write the run to a folder",
        description=(
            "Train a convolutional VAE with model.fit on a dataset (the shipped "
            "MNIST by default) and write model.keras, history.csv, "
            "history.json and run.json into the output folder. Prints a JSON summary."),
        formatter_class=arguments.HelpFormatter,
    )
    arguments.add_data_arguments(train)
    train.add_argument("--epochs", type=arguments.positive_int, default=10,
                       help="passes over the training images")
    train.add_argument("--batch-size", type=arguments.positive_int, default=128,
                       help="images per training step")
    train.add_argument("--latent-dim", type=arguments.positive_int, default=32,
                       help="size of the latent code z")
    train.add_argument("--model", choices=MODELS, default="vae",
                       help="conditional_vae also gives the class label to the encoder "
                       "and decoder (the dataset must have labels); hvae has two stochastic "
                       "layers, z1 of 64 and z2 of --latent-dim (--prior is p(z2)); vqvae "
                       "has discrete codes (--num-embeddings, --embedding-dim; it ignores "
                       "--latent-dim) and a PixelCNN prior fitted after it (--prior-epochs)")
    train.add_argument("--num-embeddings", type=arguments.positive_int, default=64,
                       metavar="K", help="vqvae: codebook size")
    train.add_argument("--embedding-dim", type=arguments.positive_int, default=16,
                       help="vqvae: size of each codebook vector")
    train.add_argument("--prior-epochs", type=arguments.non_negative_int, default=10,
                       help="vqvae: epochs of its PixelCNN prior over the training codes, "
                       "after the model's epochs (0: no prior; samples are then uniform codes)")
    train.add_argument("--likelihood", choices=LIKELIHOODS, default="bernoulli",
                       help="p(x|z); use --binarize none for the grey-level likelihoods")
    train.add_argument("--initial-scale", type=arguments.positive_float, default=None,
                       metavar="S",
                       help="the scale a learned-scale likelihood (gaussian, gaussian_pixel, "
                       "discretized_logistic) starts from, in [0, 1] pixel units (default: "
                       "1, which Adam needs thousands of steps to shrink; 0.05 suits a short "
                       "run on photographs)")
    train.add_argument("--prior", choices=PRIORS, default="normal",
                       help="p(z): standard normal, learned mixture of Gaussians, VampPrior")
    train.add_argument("--beta", type=arguments.non_negative_float, default=1.0,
                       help="weight of the KL term (1 gives the ELBO)")
    train.add_argument("--importance-samples", type=arguments.positive_int, default=1,
                       metavar="K",
                       help="codes per image of the training objective: 1 trains on the "
                       "ELBO, K > 1 on the importance-weighted bound (IWAE, Burda et al. "
                       "2015); --beta scales log p(z) - log q(z|x) inside each weight")
    train.add_argument("--kl-warmup", type=arguments.non_negative_int, default=0,
                       metavar="EPOCHS",
                       help="raise beta linearly from 0 to --beta over this many epochs "
                       "(0: no warm-up)")
    train.add_argument("--learning-rate", type=arguments.positive_float, default=1e-3,
                       help="Adam learning rate (the peak, with --lr-schedule cosine)")
    train.add_argument("--lr-schedule", choices=LR_SCHEDULES, default="constant",
                       help="cosine: decay the learning rate to 0 over the run "
                       "(Loshchilov and Hutter's cosine schedule, no restarts)")
    train.add_argument("--precision", choices=precision.CHOICES, default="float32",
                       help="dtype policy of the layers (weights stay float32); auto picks "
                       "mixed_bfloat16 on CPUs with amx_bf16/avx512_bf16 and GPUs of compute "
                       "capability 8+, mixed_float16 on 7.x GPUs, else float32")
    train.add_argument("--validation-images", type=arguments.non_negative_int, default=0,
                       metavar="N",
                       help="hold out the last N training images (after --limit) as the "
                       "validation set of the val_ metrics, binarized once with --seed like "
                       "the test images (0: validate on the test images)")
    train.add_argument("--output", default="runs/vae", help="folder the run is written to")
    train.add_argument("--overwrite", action="store_true",
                       help="replace a run already in the output folder")
    train.add_argument("--resume", action="store_true",
                       help="continue the interrupted run in the output folder from its "
                       "last completed epoch, with that run's settings (other flags "
                       "but --verbose and --strategy are ignored; in a cluster only the "
                       "chief reads them, so give the other workers the run's flags)")
    train.add_argument(
        "--binarize", choices=("dynamic", "none"), default="dynamic",
        help="dynamic: resample every training pixel as Bernoulli(intensity) "
        "each time it is seen, and binarize the test images once with --seed "
        "(the standard for the Bernoulli likelihood); none: train on grey levels")
    train.add_argument("--plot-every", type=arguments.non_negative_int, default=1,
                       metavar="N",
                       help="save reconstruction and sample grids into OUTPUT/plots "
                       "every N epochs (0: none)")
    train.add_argument("--tensorboard", action=argparse.BooleanOptionalAction, default=True,
                       help="write TensorBoard logs into OUTPUT/logs: every loss term, "
                       "validation term, the learning rate and the KL weight per epoch, and "
                       "the reconstruction and sample grids (tensorboard --logdir OUTPUT/logs)")
    train.add_argument("--projector-every", type=arguments.non_negative_int, default=0,
                       metavar="N",
                       help="write the codes of 1000 test images, their labels and a "
                       "sprite for TensorBoard's Projector into OUTPUT/projector every N "
                       "epochs (0: none)")
    train.add_argument(
        "--strategy", choices=STRATEGIES, default="none",
        help="mirrored: every local GPU; multi-worker: the machines of the cluster in "
        "TF_CONFIG (start every worker with the same flags; only the chief writes "
        "--output). --batch-size is the global batch, split between replicas")
    train.add_argument("--worker-wait", type=arguments.positive_float,
                       default=worker_wait.WORKER_WAIT_SECONDS, metavar="SECONDS",
                       help="with --strategy multi-worker: how long to wait for the other "
                       "workers of TF_CONFIG to start before stopping with a line that "
                       "names those that do not answer")
    train.add_argument("--verbose", type=int, choices=(0, 1, 2), default=1,
                       help="Keras fit verbosity: 0 silent, 1 progress bar (a line per epoch "
                       "when stderr is not a terminal, so a log file gets no control "
                       "characters), 2 a line per epoch (2 also shows TensorFlow's start-up "
                       "log)")
    train.set_defaults(run=run)


def _resume_settings(args, folder):
    """Returns `args` with the settings stored by the interrupted run."""
    if args.overwrite:
        raise ValueError("--resume continues a run and --overwrite replaces it: pass one.")
    stored = folder.stored_settings()
    path = folder.backup / "settings.json"
    if not isinstance(stored, dict):
        raise ValueError(f"{path} must hold a JSON object of settings. Received: "
                         f"{type(stored).__name__}")
    stored = {**SETTING_DEFAULTS, **stored}
    missing = [key for key in STORED_SETTINGS if key not in stored]
    if missing:
        raise ValueError(f"{path} lacks the settings {missing}.")
    _check_stored_settings(stored, path)
    print(f"keras-vae: resuming the run in {args.output} with its stored settings",
          file=sys.stderr)
    return argparse.Namespace(**{**vars(args), **{k: stored[k] for k in STORED_SETTINGS}})


def _check_vqvae_flags(args):
    """Refuses the flags of the VAEs' KL term and latent space for --model vqvae."""
    for key, default in VAE_ONLY.items():
        if getattr(args, key) != default:
            flag = "--" + key.replace("_", "-")
            raise ValueError(f"{flag} applies to the VAEs (their prior, KL term or Gaussian "
                             f"codes); --model vqvae has none. Received: {flag} "
                             f"{getattr(args, key)}")
    if args.prior_epochs and args.strategy == "multi-worker":
        raise ValueError("--prior-epochs fits the prior on one machine: use --strategy none "
                         "or mirrored, or --prior-epochs 0. Received: --strategy multi-worker")


def _check_stored_settings(stored, path):
    """Raises `ValueError` unless each stored setting is a value its flag accepts.

    `backup/settings.json` is JSON a person can edit: `"latent_dim": "8"` or
    `"likelihood": "poisson"` is refused in one line naming the setting,
    rather than failing deep inside the model.
    """
    commands = argparse.ArgumentParser().add_subparsers()
    add_parser(commands)
    train_parser = commands.choices["train"]
    actions = {action.dest: action for action in train_parser._actions}
    for key in STORED_SETTINGS:
        problem = _stored_problem(actions[key], stored[key])
        if problem:
            raise ValueError(
                f"{path} holds {key}={stored[key]!r}, which --{key.replace('_', '-')} does "
                f"not accept ({problem}); the file was edited or damaged. Fix it, or pass "
                "--overwrite instead of --resume to start the run again.")


def _stored_problem(action, value):
    """Why `value` is not a value of the flag `action` stores, or None."""
    if value is None:
        return None if action.default is None else "expected a value, received null"
    if action.nargs is not None:
        if not isinstance(value, list) or len(value) != action.nargs:
            return f"expected a list of {action.nargs} values"
        return next(filter(None, (_stored_problem(_One(action), item) for item in value)),
                    None)
    if action.choices is not None:
        return None if value in action.choices else f"expected one of {list(action.choices)}"
    if action.type is None:
        return None if isinstance(value, str) else "expected a string"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return f"expected a number, received {type(value).__name__}"
    if action.type in (arguments.positive_int, arguments.non_negative_int) and (
            not isinstance(value, int)):
        return "expected an int"
    try:
        action.type(str(value))
    except argparse.ArgumentTypeError as error:
        return str(error)
    return None


class _One:
    """One item of a flag that takes several (`--image-size`): its type, no nargs."""

    def __init__(self, action):
        self.default, self.nargs, self.choices, self.type = (
            None, None, action.choices, action.type)


def _check_labels(y_train, y_test):
    """Returns the number of classes of a conditional VAE's labels, or raises."""
    if y_train is None or len(y_train) == 0:
        raise ValueError("--model conditional_vae needs a dataset with labels.")
    largest = int(max(y_train.max(), y_test.max() if len(y_test) else 0))
    if min(y_train.min(), y_test.min() if len(y_test) else 0) < 0 or largest >= MAX_CLASSES:
        raise ValueError(
            f"--model conditional_vae needs class labels 0 to {MAX_CLASSES - 1}. "
            f"Received: labels from {int(min(y_train.min(), y_test.min()))} to {largest}")
    return largest + 1


def _checked_data(args, chief, folder):
    """Checks what can be checked before the folder is touched, and loads the data.

    Returns `(args, (x_train, y_train), (x_test, y_test), num_classes)`: `args`
    with a resumed run's stored settings, `num_classes` None but for a
    conditional VAE; raises on anything wrong.
    """
    if chief:  # the other workers of a cluster leave the folder alone
        folder.check_not_in_use()
        if args.resume:
            args = _resume_settings(args, folder)
        else:
            folder.check_can_start(args.overwrite)
    from keras_vae import datasets

    with arguments.memory_for(f"--image-size {args.image_size[0]} {args.image_size[1]} "
                              f"({args.color_mode})"):
        (x_train, y_train), (x_test, y_test) = datasets.load(
            args.dataset, image_size=args.image_size, color_mode=args.color_mode,
            seed=args.seed)
    channels = x_train.shape[-1]
    if channels not in (1, 3):
        raise ValueError(
            f"{args.dataset} has images with {channels} channels; keras-vae trains on "
            f"grayscale (1) or rgb (3) images. Received: image shape {x_train.shape[1:]}")
    if args.limit is not None:
        x_train, y_train = x_train[:args.limit], y_train[:args.limit]
        x_test, y_test = x_test[:args.limit], y_test[:args.limit]
    if args.validation_images >= len(x_train):
        raise ValueError(
            f"--validation-images must leave training images: {args.dataset} has "
            f"{len(x_train)}. Received: --validation-images {args.validation_images}")
    if len(x_test) == 0:
        raise ValueError(f"{args.dataset} has no test images; train plots them (and "
                         "validates on them without --validation-images).")
    num_classes = _check_labels(y_train, y_test) if args.model == "conditional_vae" else None
    if args.model == "vqvae":
        _check_vqvae_flags(args)
    if args.initial_scale is not None:
        _likelihood(args)  # refuses a scale the likelihood does not have, in one line
    return args, (x_train, y_train), (x_test, y_test), num_classes


def _likelihood(args):
    """The likelihood `args` asks for: its name, or a layer starting at `--initial-scale`."""
    if args.initial_scale is None:
        return args.likelihood
    if args.likelihood not in SCALED_LIKELIHOODS:
        raise ValueError(
            f"--initial-scale starts a learned scale, which only {list(SCALED_LIKELIHOODS)} "
            f"have. Received: --likelihood {args.likelihood} --initial-scale "
            f"{args.initial_scale:g}")
    from keras_vae import likelihoods

    named = likelihoods.get(args.likelihood)
    try:
        return type(named)(per_pixel=named.per_pixel, initial_scale=args.initial_scale,
                           name=named.name)
    except ValueError as error:
        raise ValueError(f"--initial-scale: {error}") from None


def run(args):
    """Trains as `args` asks and returns the JSON summary of the run."""
    import keras

    from keras_vae import callbacks as vae_callbacks
    from keras_vae import datasets
    from keras_vae import distribute
    from keras_vae import saving
    from keras_vae import schedules
    from keras_vae.models.conditional_vae import build_conditional_vae
    from keras_vae.models.hierarchical import build_hierarchical_vae
    from keras_vae.models.vae import build_vae
    from keras_vae.models.vqvae import build_vqvae

    # Made first: a MultiWorkerMirroredStrategy must exist before TensorFlow runs.
    strategy = distribute.make_strategy(args.strategy)
    worker_wait.started()
    chief = distribute.is_chief(strategy)
    folder = RunFolder(args.output)
    try:
        args, (x_train, y_train), (x_test, y_test), num_classes = _checked_data(
            args, chief, folder)
    except Exception:
        # The other workers of a cluster learn that this one stops, and stop too.
        distribute.start_together(strategy, failed=True)
        raise
    settings = {key: getattr(args, key) for key in STORED_SETTINGS}
    # Every worker trains with these (the pictures are the chief's alone).
    distribute.start_together(strategy, settings={key: value for key, value in settings.items()
                                                  if key != "plot_every"})
    held_out = args.validation_images
    conditional = num_classes is not None
    if held_out:
        x_val, y_val = x_train[-held_out:], None if y_train is None else y_train[-held_out:]
        x_train, y_train = x_train[:-held_out], None if y_train is None else y_train[:-held_out]
    keras.utils.set_random_seed(args.seed)
    dynamic = args.binarize == "dynamic"
    if dynamic:
        x_test = datasets.binarize(x_test, seed=args.seed)
    if not held_out:
        x_val, y_val = x_test, y_test
    elif dynamic:
        x_val = datasets.binarize(x_val, seed=args.seed)
    train_data = datasets.make_dataset(
        x_train, y_train if conditional else None, batch_size=args.batch_size,
        binarize=dynamic, seed=args.seed)
    options = {"image_shape": x_train.shape[1:], "latent_dim": args.latent_dim,
               "beta": args.beta, "likelihood": _likelihood(args), "prior": args.prior,
               "seed": args.seed, "importance_samples": args.importance_samples}
    policy, reason = precision.resolve(args.precision)
    if args.precision != "float32":  # the default goes unsaid
        print(f"keras-vae: precision {reason}", file=sys.stderr)
    size = "x".join(str(d) for d in x_train.shape[1:])
    with (arguments.memory_for(f"--latent-dim {args.latent_dim} with {size} images"),
          strategy.scope(), precision.policy_scope(policy)):
        if conditional:
            vae = build_conditional_vae(num_classes=num_classes, **options)
        elif args.model == "hvae":
            vae = build_hierarchical_vae(**options)
        elif args.model == "vqvae":
            vae = build_vqvae(image_shape=options["image_shape"],
                              num_embeddings=args.num_embeddings,
                              embedding_dim=args.embedding_dim, likelihood=options["likelihood"],
                              seed=args.seed)
        else:
            vae = build_vae(**options)
        learning_rate = schedules.learning_rate(
            args.learning_rate, args.lr_schedule, epochs=args.epochs,
            steps_per_epoch=schedules.steps_per_epoch(len(x_train), args.batch_size))
        vae.compile(optimizer=keras.optimizers.Adam(learning_rate))
    validation = (x_val, y_val) if conditional else (x_val,)
    steps = schedules.steps_per_epoch(len(x_train), args.batch_size)
    if not chief:
        return _train_worker(args, vae, strategy, train_data, validation, steps)

    with folder:
        if args.resume:
            folder.stored_settings()  # still there now that the folder is ours
        else:
            folder.start(settings, args.overwrite)
        with _run_kept_on_interrupt(folder, args):
            history = vae_callbacks.HistoryCheckpoint(folder.backup / "history.json")
            guard = vae_callbacks.DivergenceGuard(raise_error=False)
            # At each epoch's end the pictures and the history are written before
            # the checkpoint, so a crash in between makes the resumed run redo (and
            # rewrite) that epoch rather than skip its pictures.
            callbacks = []
            if args.kl_warmup:
                callbacks.append(vae_callbacks.LinearKLWarmup(target=args.beta,
                                                              length=args.kl_warmup))
            log_dir = folder.path / "logs" if args.tensorboard else None
            if log_dir is not None:
                import keras

                callbacks.append(keras.callbacks.TensorBoard(log_dir=str(log_dir),
                                                             write_graph=False))
            if args.plot_every:
                callbacks.append(vae_callbacks.ReconstructionPlotter(
                    x_test[:10], folder.path / "plots", every=args.plot_every, num_samples=16,
                    seed=args.seed, labels=y_test[:10] if conditional else None,
                    log_dir=log_dir))
            if args.projector_every:
                callbacks.append(vae_callbacks.EmbeddingProjector(
                    x_test[:1000], folder.path / "projector",
                    labels=None if y_test is None else y_test[:1000],
                    every=args.projector_every))
            callbacks += [history, folder.backup_callback(), guard]
            _fit(args, vae, strategy, train_data, validation, callbacks, steps,
                 completed_epochs=folder.completed_epochs())
            if guard.diverged is not None:
                last_good = folder.path / "last_good.keras"
                saving.save_model(vae, last_good)
                folder.finish()  # the backup may hold the diverged epoch
                raise vae_callbacks.TrainingDivergedError(
                    f"{guard.message()} The last good model is in {last_good}; "
                    "no model.keras was written.")

            logs = history.history
            output = folder.path
            prior_report = None
            if args.model == "vqvae" and args.prior_epochs:
                prior_report = _fit_prior(args, vae, strategy, x_train, x_test, dynamic)
            # model.keras is written last: its presence marks a finished run.
            _save_final_pictures(vae, logs, x_test, y_test, output, args.seed)
            saving.write_history_csv(output / "history.csv", logs)
            saving.write_json(output / "history.json", logs)
            final = {key: values[-1] for key, values in logs.items()}
            saving.write_json(output / "run.json", {
                "settings": settings,
                "train_images": int(x_train.shape[0]),
                "test_images": int(x_test.shape[0]),
                "validation": {"images": int(x_val.shape[0]),
                               "source": (f"the last {held_out} training images" if held_out
                                          else "the test images")},
                "image_shape": list(x_train.shape[1:]),
                "precision": {"policy": policy, "reason": reason},
                "hardware": precision.describe_hardware(),
                "strategy": args.strategy,
                "replicas": strategy.num_replicas_in_sync,
                "final_metrics": final,
                **({} if prior_report is None else {"prior": prior_report}),
            })
            saving.save_model(vae, output / "model.keras")
            folder.finish()
    return {"output": str(output), **final,
            **({} if prior_report is None else {"prior_nll_bits": prior_report["nll_bits"]})}


def _fit_prior(args, vqvae, strategy, x_train, x_test, dynamic):
    """Fits a VQ-VAE's PixelCNN prior; returns what run.json records of it."""
    from keras_vae import datasets

    images = datasets.binarize(x_train, seed=args.seed) if dynamic else x_train
    with strategy.scope():
        history = vqvae.fit_prior(images, epochs=args.prior_epochs,
                                  batch_size=args.batch_size, learning_rate=args.learning_rate,
                                  verbose=fit_verbosity(args.verbose))
    bits = vqvae.prior_nll_bits(x_test)
    return {"epochs": args.prior_epochs, "final_loss": float(history.history["loss"][-1]),
            "nll_bits": float(bits.mean()), "test_images": int(len(bits))}


@contextlib.contextmanager
def _run_kept_on_interrupt(folder, args):
    """Turns Ctrl+C into an interruption that says where the run is kept."""
    try:
        yield
    except KeyboardInterrupt as error:  # Ctrl+C, or SIGTERM (worker_wait.Terminated)
        raise type(error)(
            f"training stopped; {folder.backup} keeps the run's settings and its last "
            f"completed epoch: keras-vae train --output {args.output} --resume "
            "continues it") from None


def _fit(args, vae, strategy, train_data, validation, callbacks, steps, completed_epochs=0):
    """Trains with `fit`, or with `distribute.distributed_fit` where `fit` fails.

    Returns the history of the epochs trained (a dict of lists).
    """
    import tensorflow as tf

    from keras_vae import distribute

    # One pass over the data per epoch, through one iterator; a resumed
    # run skips the passes already trained, so it sees the same shuffles
    # and binarization noise as a run that was never interrupted.
    if distribute.needs_custom_loop(strategy):
        # It skips the epochs of the chief's checkpoint by itself.
        return distribute.distributed_fit(
            vae, train_data.repeat(), epochs=args.epochs, steps_per_epoch=steps,
            validation_data=tf.data.Dataset.from_tensor_slices(validation).batch(256),
            callbacks=callbacks, strategy=strategy, verbose=args.verbose)
    return vae.fit(
        train_data.repeat().skip(completed_epochs * steps), epochs=args.epochs,
        steps_per_epoch=steps, validation_data=validation, validation_batch_size=256,
        callbacks=callbacks, verbose=fit_verbosity(args.verbose)).history


def fit_verbosity(verbose, stream=None):
    """Keras's `verbose` for `fit`: a progress bar only on a terminal.

    Keras redraws its bar with carriage returns and ANSI codes whenever it
    runs on Linux, which fills a redirected log with control characters; a
    bar asked for (1) becomes one line per epoch (2) when the command's
    output (stderr, where its progress goes) is not a terminal.

    Args:
        verbose: The `--verbose` flag, 0, 1 or 2.
        stream: The stream the progress goes to; `sys.stderr` when None.
    """
    import sys

    stream = sys.stderr if stream is None else stream
    if verbose == 1 and not (hasattr(stream, "isatty") and stream.isatty()):
        return 2
    return verbose


def _train_worker(args, vae, strategy, train_data, validation, steps):
    """Trains on a worker that is not the chief: the same steps, no files written."""
    from keras_vae import callbacks as vae_callbacks

    guard = vae_callbacks.DivergenceGuard(raise_error=False)
    callbacks = [guard]
    if args.kl_warmup:
        callbacks.insert(0, vae_callbacks.LinearKLWarmup(target=args.beta,
                                                         length=args.kl_warmup))
    history = _fit(args, vae, strategy, train_data, validation, callbacks, steps)
    if guard.diverged is not None:
        raise vae_callbacks.TrainingDivergedError(guard.message())
    return {"output": None, **{key: values[-1] for key, values in history.items()}}


def _save_final_pictures(vae, history, x_test, y_test, output, seed):
    """Writes training curves, samples, reconstructions and the latent space."""
    import numpy as np

    from keras_vae import plotting

    conditional = vae.num_classes is not None

    def labels(y):  # what the model's methods take: the classes, or None
        return y if conditional else None

    figures = {
        "training_curves.png": plotting.plot_history(history),
        "samples.png": plotting.plot_samples(
            vae, n=32, seed=seed, labels=labels(np.arange(32) % (vae.num_classes or 1))),
        "reconstructions.png": plotting.plot_reconstructions(
            x_test[:10], vae.reconstruct(x_test[:10], labels(y_test[:10]))),
    }
    if not vae.code_spec.dtype.is_integer:  # a VQ-VAE's index maps have no scatter
        figures["latent.png"] = plotting.plot_latent_scatter(
            vae.latent_codes(x_test[:2000], labels(y_test[:2000])), y_test[:2000])
    if vae.latent_dim == 2 and not conditional and not vae.code_spec.dtype.is_integer:
        figures["manifold.png"] = plotting.plot_latent_manifold(vae)
    for name, figure in figures.items():
        figure.savefig(output / name, dpi=100)
