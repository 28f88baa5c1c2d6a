"""Issue 30, item 7: the command line's outputs under faults, checked as a promise.

Each command that writes (train, export, anomaly, augment) first writes an
output; then the same command is run again with `--overwrite` and stopped by
SIGKILL at seeded random moments of its run, or by SIGTERM; for export also
onto a full and a read-only disk. After each fault the output must be the old
one, byte for byte, or a complete new one (for `train`: or an interrupted run
that `--resume` finishes), and no scratch file may be left once the next
command on the folder has run. The moments are drawn over the measured length
of the first run, so they fall in the import, the work and the final writes.
"""

import hashlib
import json
import os
import pathlib
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from conftest import ROOT
from keras_vae import export

TRAIN = ["--limit", "64", "--epochs", "2", "--latent-dim", "2", "--batch-size", "32",
         "--plot-every", "0", "--no-tensorboard", "--verbose", "0"]
KILLS = {"export": 2, "anomaly": 1, "augment": 1, "train": 1}
"""SIGKILLs per command: export's several renames get two moments, one-file outputs one."""
WAIT = 300  # seconds a command may take on a loaded 2-core machine


def _start(args, cwd):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-m", "keras_vae", *args], cwd=cwd, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _run(args, cwd):
    process = _start(args, cwd)
    out, err = process.communicate(timeout=WAIT)
    return process.returncode, out, err


def _snapshot(path):
    """{relative path: sha256} of every file under `path` (or of the file itself)."""
    path = pathlib.Path(path)
    if not path.exists():
        return None
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    return {str(p.relative_to(path.parent)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in files}


def _interrupt(args, cwd, signum, at):
    """Runs `args`, sends `signum` after `at` seconds; returns (status, stderr)."""
    process = _start(args, cwd)
    try:
        out, err = process.communicate(timeout=at)
    except subprocess.TimeoutExpired:
        process.send_signal(signum)
        out, err = process.communicate(timeout=WAIT)
    return process.returncode, out, err


def _moments(name, seconds):
    """Seeded moments over a run's length, the last one near its end (the final writes)."""
    rng = np.random.default_rng(sum(map(ord, name)))
    early = rng.uniform(0.2, 0.8, KILLS[name] - 1) * seconds
    return [*early, 0.97 * seconds]


def _complete_export(folder):
    names = {p.name for p in folder.iterdir() if not p.name.startswith(".")}
    return names == {"decoder", "encoder", "scorer"} and all(
        (folder / name / "saved_model.pb").is_file() for name in names)


def _csv_shape(path):
    lines = path.read_text().splitlines()
    return len(lines), {line.count(",") for line in lines}


def _npz_shape(path):
    with np.load(path) as data:
        return {key: (data[key].shape, bool(np.isfinite(data[key]).all())
                      if data[key].dtype.kind == "f" else True) for key in data.files}


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    """A tiny trained run; its model is the input of export, anomaly and augment."""
    folder = tmp_path_factory.mktemp("model")
    status, _, err = _run(["train", "--output", "run", *TRAIN], folder)
    assert status == 0, err[-3000:]
    return folder / "run" / "model.keras"


COMMANDS = {  # arguments, output, and the shape of a complete output (compared to the first)
    "export": (lambda m: ["export", str(m), "--output", "out", "--num-samples", "4"], "out",
               lambda path: _complete_export(path)),
    "anomaly": (lambda m: ["anomaly", str(m), "--limit", "40", "--output", "out.csv"],
                "out.csv", _csv_shape),
    "augment": (lambda m: ["augment", str(m), "--source", "mnist", "--limit", "20", "--copies",
                           "2", "--output", "out.npz"], "out.npz", _npz_shape),
}


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_an_output_is_the_old_one_or_a_complete_new_one_after_a_kill(tmp_path, model, name):
    make_args, output, shape = COMMANDS[name]
    args = make_args(model)
    started = time.monotonic()
    status, _, err = _run(args, tmp_path)
    seconds = time.monotonic() - started
    assert status == 0 and shape(tmp_path / output), err[-3000:]
    expected = shape(tmp_path / output)

    def complete(path):
        return path.exists() and shape(path) == expected

    old = _snapshot(tmp_path / output)
    faults = [(signal.SIGKILL, at) for at in _moments(name, seconds)]
    faults.append((signal.SIGTERM, 0.6 * seconds))
    for signum, at in faults:
        status, out, err = _interrupt([*args, "--overwrite"], tmp_path, signum, at)
        if name == "export":  # what the next export into the folder does first
            export.recover_export(tmp_path / output)
        now = _snapshot(tmp_path / output)
        assert now == old or complete(tmp_path / output), (signum, at, status, err[-2000:])
        if signum == signal.SIGTERM and status not in (0, -signal.SIGTERM):
            lines = [line for line in err.splitlines() if line.startswith("keras-vae:")]
            assert status == 143 and lines and lines[-1].startswith("keras-vae: terminated"), (
                at, status, err[-2000:])
        if status in (0, -signal.SIGTERM):
            # Finished (a SIGTERM while the interpreter shuts down, after main()
            # returned, takes the default action): its JSON is whole.
            json.loads(out)
        old = now
    scratch = [p.name for p in tmp_path.rglob(".*") if p.name != ".keras-vae.lock"]
    assert scratch == [], scratch


def _finished_run(folder):
    return all((folder / name).is_file() for name in ("model.keras", "history.json",
                                                     "run.json")) \
        and not (folder / "backup").exists()


@pytest.mark.slow
def test_a_run_is_the_old_one_a_new_one_or_one_that_resume_finishes_after_a_kill(tmp_path):
    started = time.monotonic()
    status, _, err = _run(["train", "--output", "run", *TRAIN], tmp_path)
    seconds = time.monotonic() - started
    assert status == 0, err[-3000:]
    run = tmp_path / "run"
    faults = [(signal.SIGKILL, at) for at in _moments("train", seconds)]
    faults.append((signal.SIGTERM, 0.6 * seconds))
    for signum, at in faults:
        old = _snapshot(run)
        status, _, err = _interrupt(["train", "--output", "run", "--overwrite", *TRAIN],
                                    tmp_path, signum, at)
        if _snapshot(run) == old or _finished_run(run):
            continue
        assert (run / "backup" / "settings.json").is_file(), (signum, at, err[-2000:])
        status, _, err = _run(["train", "--output", "run", "--resume", "--verbose", "0"],
                              tmp_path)
        assert status == 0 and _finished_run(run), (signum, at, err[-2000:])
        history = json.loads((run / "history.json").read_text())
        assert len(history["loss"]) == 2
    leftovers = [p.name for p in run.rglob(".*")]
    assert leftovers == [], leftovers


def _mount_tmpfs(path, options):
    if shutil.which("mount") is None or os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root and mount(8)")
    path.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)],
                      capture_output=True).returncode != 0:
        pytest.skip("this machine does not allow mounting a tmpfs")


@pytest.mark.slow
@pytest.mark.parametrize("disk", ["full", "read-only"])
def test_an_export_onto_a_full_or_read_only_disk_keeps_the_old_one(tmp_path, model, disk):
    """Issue 30, Found 4: a full disk left a 0-byte decoder.tflite."""
    mount = tmp_path / "disk"
    _mount_tmpfs(mount, "size=8m")
    try:
        args = ["export", str(model), "--output", str(mount / "out"), "--format", "litert",
                "--parts", "decoder", "--num-samples", "4"]
        status, _, err = _run(args, tmp_path)
        assert status == 0, err[-3000:]
        old = _snapshot(mount / "out")
        if disk == "full":
            with open(mount / "filler", "wb") as filler:
                try:
                    while True:
                        filler.write(b"\0" * 65536)
                except OSError:
                    pass
        else:
            subprocess.run(["mount", "-o", "remount,ro", str(mount)], check=True)
        status, out, err = _run([*args, "--overwrite"], tmp_path)
        lines = [line for line in err.splitlines() if line.startswith("keras-vae:")]
        assert status == 2 and out == "" and len(lines) == 1, err[-3000:]
        assert "keras-vae: error:" in lines[0] and "Traceback" not in err
        assert _snapshot(mount / "out") == old
        assert [p.name for p in (mount / "out").iterdir()] == ["decoder.tflite"]
    finally:
        subprocess.run(["umount", str(mount)], check=False)
