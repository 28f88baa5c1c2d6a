"""The `keras-vae` command line (also `python -m keras_vae`).

One module per subcommand (`train`, `evaluate`, `anomaly`, `augment`,
`explore`, `export`), each
with an `add_parser(commands)` and a `run(args)` that returns the JSON summary
the command prints; shared flags live in `arguments`, and the life of a
training run's folder (refuse, lock, back up, resume, finish) in `run_folder`.
Building the parser imports no TensorFlow: `keras-vae --help` and
`keras-vae --version` answer at once, and TensorFlow (with the models) is
imported once a subcommand is chosen, its start-up log silenced.

Stdout carries only that JSON: anything else written to stdout while a
command runs (Keras progress bars, notes) goes to stderr. Errors in the
user's input (`ValueError`, `OSError`, a model that cannot do what the
command needs (`NotImplementedError`), a folder in use, a diverged run, a lost
worker of a cluster, data that fails the in-graph checks, a model whose outputs
are NaN or infinite) are printed as one line,
`keras-vae: error: ...`, with exit status 2; any other exception is a bug and
keeps its traceback. Ctrl+C prints one line and exits with status 130
(`INTERRUPTED`), as shells expect, and SIGTERM the same with status 143;
`train` says where the run is kept. A multi-worker `train` waits at most
`--worker-wait` seconds for the other workers (`worker_wait`).
"""

import argparse
import contextlib
import json
import re
import signal
import sys

from keras_vae import _backend
from keras_vae._version import __version__
from keras_vae.cli import anomaly
from keras_vae.cli import augment
from keras_vae.cli import evaluate
from keras_vae.cli import explore
from keras_vae.cli import export
from keras_vae.cli import train
from keras_vae.cli import worker_wait
from keras_vae.cli.run_folder import BACKUP_DIR
from keras_vae.cli.run_folder import RUN_FILES

__all__ = ["BACKUP_DIR", "RUN_FILES", "build_parser", "main", "user_errors"]

USER_ERRORS = (
    ("builtins", "ValueError"), ("builtins", "OSError"), ("builtins", "NotImplementedError"),
    ("keras_vae.folder_lock", "FolderBusyError"),
    ("keras_vae.callbacks", "TrainingDivergedError"),
    ("keras_vae._extras", "MissingExtraError"),
    ("keras_vae.distribute", "WorkerLostError"),
    ("keras_vae.validation", "NonFiniteOutputError"),
    ("tensorflow", "errors.InvalidArgumentError"),
)
"""Exceptions that report a problem with the user's input rather than a bug, by module."""


INTERRUPTED = worker_wait.INTERRUPTED
"""Exit status after Ctrl+C (SIGINT): 128 + 2, as shells report it."""


def user_errors():
    """Returns the classes of `USER_ERRORS` whose modules are imported.

    An exception of a module never imported cannot have been raised, so a
    command that failed before it imported TensorFlow is not slowed down by
    importing it to read `tf.errors`.
    """
    classes = []
    for module_name, name in USER_ERRORS:
        value = sys.modules.get(module_name)
        for part in name.split(".") if value is not None else ():
            value = getattr(value, part)
        if value is not None:
            classes.append(value)
    return tuple(classes)


def build_parser():
    """Returns the `argparse` parser of the `keras-vae` command (no TensorFlow imported)."""
    parser = argparse.ArgumentParser(
        prog="keras-vae",
        description="Train and use Variational Autoencoders built with Keras 3.",
    )
    parser.add_argument("--version", action="version", version=f"keras-vae {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for command in (train, evaluate, anomaly, augment, explore, export):
        command.add_parser(commands)
    return parser


_RAISED_LINE = re.compile(r"^\s*(?:[A-Za-z_][\w.]*)?(?:Error|Exception): (?P<message>.+)$")
"""The line naming the exception at the end of TensorFlow's "in user code:" text."""


def _first_line(error):
    """The line that names the cause: TensorFlow's own message, without its preambles.

    An error raised while a `tf.function` is traced carries TensorFlow's
    "in user code:" preamble and the traced frames before the real message,
    which is the last line that names an exception.
    """
    tf = sys.modules.get("tensorflow")
    if tf is not None and isinstance(error, tf.errors.OpError):
        text = error.message
    else:
        text = str(error)
    lines = [line for line in text.strip().splitlines() if line.strip()]
    if not lines:
        return type(error).__name__
    if lines[0].strip() == "in user code:":
        for line in reversed(lines):
            match = _RAISED_LINE.match(line)
            if match:
                return match.group("message").strip()
        return lines[-1].strip()
    return lines[0].strip()


def main(argv=None):
    """Runs the command line; returns the exit status."""
    args = build_parser().parse_args(argv)
    others = worker_wait.cluster_peers() if getattr(args, "strategy", None) == "multi-worker" \
        else []
    if others:  # the wait for them is bounded by a parent process (see worker_wait)
        status = worker_wait.supervise(args.worker_wait, others)
        if status is not None:
            return status
    previous = worker_wait.terminate_as_interrupt()
    try:
        with contextlib.redirect_stdout(sys.stderr):
            _backend.import_models()
            report = args.run(args)
    except user_errors() as error:
        print(f"keras-vae: error: {_first_line(error)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as error:  # Ctrl+C or SIGTERM: one line, the status shells expect
        reason = str(error).strip()
        terminated = isinstance(error, worker_wait.Terminated)
        print(f"keras-vae: {'terminated' if terminated else 'interrupted'}"
              f"{': ' + reason if reason else ''}", file=sys.stderr)
        return worker_wait.TERMINATED if terminated else INTERRUPTED
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    # Strict JSON: a NaN that escaped the checks is a bug, never printed as a number.
    print(json.dumps(report, indent=2, allow_nan=False))
    return 0
