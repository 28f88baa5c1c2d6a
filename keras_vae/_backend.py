"""Refuse to load on a Keras backend other than TensorFlow, and start TensorFlow quietly.

TensorFlow Probability, which supplies every distribution in keras_vae, only
works with TensorFlow tensors, so the whole package needs Keras's TensorFlow
backend. Failing at import time with a clear message is kinder than failing
deep inside the first training step.

`import_models` is where the package meets TensorFlow: `import keras_vae`
calls it, and the `keras-vae` command calls it once a subcommand is chosen
(its `--help` and `--version` never do).
"""

import contextlib
import importlib
import os
import sys

_REQUIRED_BACKEND = "tensorflow"


def check_backend():
    """Raises `ImportError` unless Keras runs on the TensorFlow backend."""
    requested = os.environ.get("KERAS_BACKEND")
    if requested is not None and requested != _REQUIRED_BACKEND:
        raise ImportError(
            "keras_vae needs Keras's TensorFlow backend because it uses "
            "TensorFlow Probability. Received: KERAS_BACKEND="
            f"{requested!r}. Unset it or set KERAS_BACKEND=tensorflow."
        )
    import keras

    active = keras.backend.backend()
    if active != _REQUIRED_BACKEND:
        raise ImportError(
            "keras_vae needs Keras's TensorFlow backend because it uses "
            f"TensorFlow Probability. Received: backend={active!r} (from "
            "~/.keras/keras.json). Set KERAS_BACKEND=tensorflow."
        )


def import_models():
    """Checks the backend and imports `keras_vae.models` (TensorFlow with it).

    Importing the models registers every keras_vae class a saved model can
    name (the models, and the layers, priors and likelihoods they are built
    from), so `keras.models.load_model` finds them. TensorFlow's start-up
    log is silenced as `quiet_start_up_logs` says.
    """
    with quiet_start_up_logs():
        check_backend()
        importlib.import_module("keras_vae.models")


def launched_as_command(argv=None, orig_argv=None):
    """Whether this process is the `keras-vae` command (or `python -m keras_vae`).

    Args:
        argv: the command line (default `sys.argv`).
        orig_argv: the interpreter's command line (default `sys.orig_argv`).
    """
    argv = sys.argv if argv is None else argv
    orig_argv = getattr(sys, "orig_argv", []) if orig_argv is None else orig_argv
    if argv and os.path.basename(argv[0]) == "keras-vae":
        return True
    for flag, module in zip(orig_argv, orig_argv[1:]):
        if flag == "-m" and module.split(".")[0] == "keras_vae":
            return True
    return False


def _asks_for_native_logs(argv):
    """Whether the command line asks for TensorFlow's logs (`--verbose 2`)."""
    return "--verbose=2" in argv or any(
        flag == "--verbose" and value == "2" for flag, value in zip(argv, argv[1:]))


@contextlib.contextmanager
def quiet_start_up_logs(argv=None, orig_argv=None, environ=None):
    """Silences TensorFlow's C++ start-up log while the `keras-vae` command imports it.

    TensorFlow prints lines such as `E0000 ... failed call to cuInit` on every
    machine without a GPU; from a command line they read like errors. When
    this process is the `keras-vae` command, the user has not set
    `TF_CPP_MIN_LOG_LEVEL` and has not asked for `--verbose 2`, this sets
    `TF_CPP_MIN_LOG_LEVEL=3` and sends the process's native stderr to
    `/dev/null` for the duration of the block (the lines written before
    TensorFlow's logging starts ignore that variable). A library import is
    never affected.

    Args:
        argv: the command line (default `sys.argv`).
        orig_argv: the interpreter's command line (default `sys.orig_argv`).
        environ: the environment to read and set (default `os.environ`).
    """
    argv = sys.argv if argv is None else argv
    orig_argv = getattr(sys, "orig_argv", []) if orig_argv is None else orig_argv
    environ = os.environ if environ is None else environ
    if (not launched_as_command(argv, orig_argv) or "TF_CPP_MIN_LOG_LEVEL" in environ
            or _asks_for_native_logs(argv)):
        yield False
        return
    environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
    sys.stderr.flush()
    saved = os.dup(2)
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 2)
    try:
        yield True
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)
        os.close(null)
