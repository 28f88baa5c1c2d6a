"""Crash-safe writes: every file is written beside its target, then renamed.

`os.replace` is atomic on POSIX file systems, so a crash during a save leaves
either the old file or the new one in place, never a truncated mix.
"""

import contextlib
import csv
import io
import json
import os
import pathlib
import shutil
import tempfile
import zipfile

import keras

try:
    import fcntl
except ImportError:  # Not on Windows: appends there are atomic but not locked.
    fcntl = None


@contextlib.contextmanager
def atomic_target(path):
    """Yields a temporary path beside `path`; renames it onto `path` on success.

    On any error the temporary file is removed and `path` is left untouched.
    """
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # Keras picks the format from the extension, so the temporary file keeps it.
    handle, tmp = tempfile.mkstemp(
        prefix=f".{path.stem}-", suffix=path.suffix, dir=path.parent
    )
    os.close(handle)
    tmp = pathlib.Path(tmp)
    # mkstemp creates the file private (0600); give it the usual permissions.
    umask = os.umask(0)
    os.umask(umask)
    tmp.chmod(0o666 & ~umask)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _scratch_folder():
    """Returns a folder for Keras to write into before the bytes are copied out.

    Keras writes weights with h5py, which can crash the process while it
    cleans up after a failed write (a full disk). Writing first into memory
    (`/dev/shm` where there is one, else the system's temporary folder) and
    then copying the bytes with Python keeps a full disk an ordinary `OSError`.
    """
    shm = pathlib.Path("/dev/shm")
    return str(shm) if shm.is_dir() and os.access(shm, os.W_OK) else None


def _save_through_scratch(save, path, name):
    """Calls `save(scratch_path)`, then copies the file onto `path` atomically."""
    with tempfile.TemporaryDirectory(prefix="keras_vae-", dir=_scratch_folder()) as scratch:
        written = pathlib.Path(scratch) / name
        save(written)
        try:
            with atomic_target(path) as tmp:
                shutil.copyfile(written, tmp)
        except OSError as error:
            raise OSError(error.errno, f"Could not write {path}: "
                          f"{error.strerror or error}") from error
    return pathlib.Path(path)


def save_model(model, path):
    """Saves a Keras model to `path` (`.keras`); a failed save leaves `path` as it was.

    Args:
        model: the Keras model.
        path: the `.keras` file to write.
    """
    return _save_through_scratch(lambda tmp: model.save(tmp, overwrite=True), path,
                                 "model.keras")


def save_weights(model, path):
    """Saves a model's weights to `path` (`.weights.h5`); a failed save leaves `path` as it was.

    Args:
        model: the Keras model.
        path: the `.weights.h5` file to write.
    """
    return _save_through_scratch(lambda tmp: model.save_weights(tmp), path,
                                 "model.weights.h5")


def write_text(path, text):
    """Writes `text` to `path` through a temporary file; returns `path`.

    Args:
        path: The file to write (its folder is created if missing).
        text: The whole new content, a str.
    """
    with atomic_target(path) as tmp:
        tmp.write_text(text)
    return pathlib.Path(path)


def append_text(path, text):
    """Appends `text` to `path` (created if missing) by rewriting it atomically.

    The old content and `text` go to a temporary file that replaces `path`,
    so a crash leaves the file as it was. Appenders in other processes take
    turns on an advisory lock (`fcntl.flock`, where the platform has it), so
    two benchmarks finishing together both keep their sections.

    Args:
        path: The file to append to; returned.
        text: The str added at its end (no newline is added).
    """
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    while True:
        with open(path, "a+", encoding="utf-8") as handle:
            if fcntl is not None:
                fcntl.flock(handle, fcntl.LOCK_EX)
            # Another appender may have replaced the file while we waited for
            # the lock: then our handle holds the old one, so start again.
            if os.path.exists(path) and os.path.samestat(os.fstat(handle.fileno()),
                                                         os.stat(path)):
                handle.seek(0)
                old = handle.read()
                write_text(path, old + text)
                return path


def read_json(path):
    """Reads a JSON file, naming it in the error if it is not valid JSON."""
    try:
        return json.loads(pathlib.Path(path).read_text())
    except ValueError as error:
        raise ValueError(f"{path} is not valid JSON. Received error: {error}") from error


def write_json(path, data):
    """Writes `data` as indented JSON to `path` through a temporary file; returns `path`.

    Args:
        path: The file to write.
        data: A JSON-serializable object; its dict keys are written sorted.
    """
    return write_text(path, json.dumps(data, indent=2, sort_keys=True) + "\n")


def write_history_csv(path, history):
    """Writes a Keras `History.history` dict as CSV, one row per epoch; returns `path`.

    Args:
        path: The file to write.
        history: A dict from metric name to its per-epoch values, all of
            the same length; they become columns after `epoch` (1-based),
            sorted by name.
    """
    keys = sorted(history)
    epochs = len(history[keys[0]]) if keys else 0
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["epoch"] + keys)
    for epoch in range(epochs):
        writer.writerow([epoch + 1] + [history[key][epoch] for key in keys])
    return write_text(path, buffer.getvalue())


REMOTE_SCHEMES = ("hf://", "gs://", "s3://", "hdfs://")
"""Remote locations that `keras.saving.load_model` reads itself (`hf://` needs
`huggingface_hub`); `load_model` passes them on."""


def load_model(path):
    """Loads a `.keras` model, naming the file in any error.

    Takes what `keras.saving.load_model` takes: a local `.keras` file, or a
    remote location it reads itself (`hf://user/repo` on the Hugging Face
    Hub, `gs://`, `s3://`, `hdfs://`). A model published at a plain URL is
    fetched with its checksum by `keras_vae.pretrained.fetch`.

    Raises:
        FileNotFoundError: there is no file at a local `path`.
        ValueError: the file is truncated, not a `.keras` archive, or holds
            something Keras cannot rebuild; or a remote model could not be
            read (the message names the location and Keras's reason).
    """
    if isinstance(path, str) and path.startswith(REMOTE_SCHEMES):
        try:
            return keras.saving.load_model(path)
        except Exception as error:
            reason = str(error).strip().splitlines()[0] if str(error).strip() else \
                type(error).__name__
            raise ValueError(f"Could not load a Keras model from {path}: {reason}") from error
    path = pathlib.Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"No model file at {path}.")
    if not zipfile.is_zipfile(path):
        raise ValueError(
            f"{path} is not a .keras model file: it is not a complete zip archive "
            "(truncated, or another format)."
        )
    try:
        return keras.models.load_model(path)
    except Exception as error:
        raise ValueError(
            f"Could not load a Keras model from {path}. Received error: {error}"
        ) from error


def map_layer_configs(config, function, scope=()):
    """Applies `function` to every serialized object in a Keras config, innermost first.

    A serialized object is a dict with `class_name` and `config` keys (a layer,
    a model, a dtype policy, an initializer...). Each is rebuilt from its
    mapped children and then passed to `function(node, scope)`, which returns
    the node to keep (the same dict, changed or not, or a new one); `scope`
    holds the `name`s of the objects that enclose it, outermost first (for a
    layer of a VAE's decoder: `("vae", "decoder")`).

    Args:
        config: What `keras.saving.serialize_keras_object` returns (dicts and
            lists nested), not changed.
        function: Callable `(node, scope) -> node`.
        scope: Names of the objects enclosing `config`.

    Returns:
        A new config.
    """
    if isinstance(config, list):
        return [map_layer_configs(item, function, scope) for item in config]
    if not isinstance(config, dict):
        return config
    inner = config.get("config")
    name = inner.get("name") if isinstance(inner, dict) else None
    within = scope + (name,) if isinstance(name, str) and "class_name" in config else scope
    node = {key: map_layer_configs(value, function, within) for key, value in config.items()}
    return function(node, scope) if "class_name" in node and "config" in node else node


def rebuild(model, function, custom_objects=None):
    """Returns a copy of `model` rebuilt from its config as mapped by `function`.

    The config is mapped with `map_layer_configs(config, function)`, the
    copy is built from it and given `model`'s weights (copied, not shared),
    so the mapping may change how layers compute but not which weights they
    hold. `model` itself is not changed. Wrap the call in
    `keras_vae.precision.policy_scope` for layers created outside the config.

    Args:
        model: A built Keras model.
        function: Callable `(node, scope) -> node`, see `map_layer_configs`.
        custom_objects: Dict of classes the mapped config names beyond the
            registered ones.

    Returns:
        The new model.
    """
    config = map_layer_configs(keras.saving.serialize_keras_object(model), function)
    with keras.saving.custom_object_scope(custom_objects or {}):
        copy = keras.saving.deserialize_keras_object(config)
    copy.set_weights(model.get_weights())
    return copy
