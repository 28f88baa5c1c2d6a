"""The life of a `keras-vae train` output folder under faults: locks, full disks, kills."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from keras_vae import cli
from keras_vae import saving
from keras_vae.cli import run_folder
from keras_vae.cli.run_folder import RunFolder

SMALL = ["--limit", "128", "--epochs", "2", "--latent-dim", "2", "--batch-size", "64",
         "--verbose", "0", "--plot-every", "0"]
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _python(code_or_args, cwd, **kwargs):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": REPO}
    return subprocess.Popen([sys.executable, *code_or_args], cwd=cwd, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kwargs)


def _one_line_error(capsys):
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("keras-vae: error:")]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def _killed_in_final_save(run, monkeypatch):
    """Trains SMALL into `run` and stops it as a kill would while it saves model.keras."""

    def killed(model, path):
        raise KeyboardInterrupt  # Ctrl+C while saving: exit 130, the backup kept

    with monkeypatch.context() as patch:
        patch.setattr(saving, "save_model", killed)
        assert cli.main(["train", *SMALL, "--output", str(run)]) == cli.INTERRUPTED
    assert (run / run_folder.BACKUP_DIR / "latest.weights.h5").is_file()
    assert not (run / "model.keras").exists()


def test_second_command_on_a_locked_folder_is_refused(tmp_path, capsys):
    run = tmp_path / "run"
    holder = RunFolder(run)
    holder.lock()
    try:
        (run / run_folder.BACKUP_DIR).mkdir()
        (run / run_folder.BACKUP_DIR / "settings.json").write_text("{}")
        for extra in ([], ["--overwrite"], ["--resume"]):
            assert cli.main(["train", *SMALL, "--output", str(run), *extra]) == 2
            line = _one_line_error(capsys)
            assert f"{run} is in use by another keras-vae process (pid {os.getpid()})" in line
    finally:
        holder.unlock()
    assert (run / run_folder.BACKUP_DIR / "settings.json").read_text() == "{}"


def test_two_trainings_started_together_do_not_share_the_folder(tmp_path):
    args = ["-m", "keras_vae", "train", *SMALL, "--epochs", "4", "--output", "run"]
    first = _python(args, tmp_path)
    lock = tmp_path / "run" / run_folder.LOCK_FILE
    deadline = time.time() + 300
    while time.time() < deadline and first.poll() is None:
        if lock.exists() and lock.read_text().strip() == str(first.pid):
            break
        time.sleep(0.05)
    assert first.poll() is None, first.communicate()[1][-2000:]
    second = _python(args, tmp_path)
    _, err = second.communicate(timeout=300)
    assert second.returncode == 2, err[-2000:]
    assert f"is in use by another keras-vae process (pid {first.pid})" in err
    out, err = first.communicate(timeout=600)
    assert first.returncode == 0, err[-2000:]
    assert json.loads(out)["output"] == "run"
    history = json.loads((tmp_path / "run" / "history.json").read_text())
    assert len(history["loss"]) == 4
    assert not lock.exists()


def test_a_killed_holder_leaves_no_stale_lock(tmp_path):
    code = ("import sys, time; from keras_vae.cli.run_folder import RunFolder; "
            "folder = RunFolder(sys.argv[1]); folder.lock(); print('locked', flush=True); time.sleep(600)")
    holder = _python(["-c", code, str(tmp_path / "run")], tmp_path)
    assert holder.stdout.readline().strip() == "locked"
    with pytest.raises(run_folder.RunFolderBusyError, match=f"pid {holder.pid}"):
        RunFolder(tmp_path / "run").check_not_in_use()
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    assert (tmp_path / "run" / run_folder.LOCK_FILE).exists()  # left behind by the kill
    folder = RunFolder(tmp_path / "run")
    folder.check_not_in_use()
    folder.lock()  # the kernel released the dead process's lock
    folder.unlock()


def test_a_run_with_one_test_image_finishes_with_its_pictures(tmp_path):
    run = tmp_path / "run"
    assert cli.main(["train", "--limit", "1", "--epochs", "1", "--latent-dim", "4",
                     "--verbose", "0", "--output", str(run)]) == 0
    for name in (*cli.RUN_FILES, "latent.png", "reconstructions.png", "samples.png"):
        assert (run / name).is_file(), name
    assert not (run / run_folder.BACKUP_DIR).exists()


def test_a_full_disk_at_the_first_checkpoint_is_one_line_and_resumable(
        tmp_path, capsys, monkeypatch):
    run = tmp_path / "run"
    real_copy = shutil.copyfile

    def full_disk(source, target):
        if str(target).endswith(".h5"):
            raise OSError(28, "No space left on device")
        return real_copy(source, target)

    with monkeypatch.context() as patch:
        patch.setattr(saving.shutil, "copyfile", full_disk)
        assert cli.main(["train", *SMALL, "--output", str(run)]) == 2
    line = _one_line_error(capsys)
    assert "Could not write" in line and "latest.weights.h5" in line
    assert "No space left on device" in line
    backup = run / run_folder.BACKUP_DIR
    assert not (backup / "latest.weights.h5").exists()  # no half-written checkpoint
    assert not [p for p in backup.iterdir() if p.name.startswith(".")]
    assert cli.main(["train", *SMALL, "--output", str(run), "--resume"]) == 0
    assert len(json.loads((run / "history.json").read_text())["loss"]) == 2


@pytest.mark.skipif(shutil.which("mount") is None or os.geteuid() != 0,
                    reason="mounting a small tmpfs needs root and mount(8)")
def test_a_real_full_disk_exits_2_without_a_crash(tmp_path):
    disk = tmp_path / "disk"
    disk.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(disk)],
                      capture_output=True).returncode != 0:
        pytest.skip("this machine does not allow mounting a tmpfs")
    try:
        process = _python(["-m", "keras_vae", "train", *SMALL, "--latent-dim", "8",
                           "--output", str(disk / "run")], tmp_path)
        _, err = process.communicate(timeout=600)
        assert process.returncode == 2, err[-2000:]  # it was 139, a segfault in h5py
        assert "No space left on device" in err and "Traceback" not in err
        assert not (disk / "run" / run_folder.BACKUP_DIR / "latest.weights.h5").exists()
    finally:
        subprocess.run(["umount", str(disk)], check=False)


def test_failures_before_training_write_nothing(tmp_path, capsys):
    rng = np.random.default_rng(0)
    images = rng.random((64, 8, 8, 1)).astype("float32")
    labels = np.zeros(64, dtype="int64")
    labels[5] = 10 ** 9
    np.savez(tmp_path / "huge_label.npz", x_train=images, y_train=labels,
             x_test=images[:8], y_test=labels[:8])
    run = tmp_path / "run"
    assert cli.main(["train", *SMALL, "--model", "conditional_vae", "--dataset",
                     str(tmp_path / "huge_label.npz"), "--output", str(run)]) == 2
    line = _one_line_error(capsys)
    assert "class labels 0 to" in line and str(10 ** 9) in line
    with pytest.raises(SystemExit):
        cli.main(["train", *SMALL, "--seed", "-1", "--binarize", "none",
                  "--output", str(run)])
    assert "--seed" in capsys.readouterr().err
    assert not run.exists()
    assert cli.main(["train", *SMALL, "--output", str(run)]) == 0  # no fake interrupted run


def test_killed_during_final_save_suggests_resume_and_resume_cleans_up(
        tmp_path, capsys, monkeypatch):
    run = tmp_path / "run"
    _killed_in_final_save(run, monkeypatch)
    (run / ".model-a1b2c3.keras").write_bytes(b"partial")  # what a kill leaves
    (run / ".notes").write_text("the user's")  # not ours: stays
    (run / "history.csv").write_text("partial")
    assert cli.main(["train", *SMALL, "--output", str(run)]) == 2
    line = _one_line_error(capsys)
    assert "--resume" in line and "--overwrite" in line
    assert cli.main(["train", "--output", str(run), "--resume", "--verbose", "0"]) == 0
    assert len(json.loads((run / "history.json").read_text())["loss"]) == 2
    assert (run / "model.keras").is_file()
    assert sorted(p.name for p in run.iterdir() if p.name.startswith(".")) == [".notes"]


def test_an_unreadable_checkpoint_is_moved_aside_and_an_empty_metadata_file_named(
        tmp_path, capsys, monkeypatch):
    run = tmp_path / "run"
    _killed_in_final_save(run, monkeypatch)
    backup = run / run_folder.BACKUP_DIR
    metadata = backup / "training_metadata.json"
    stored = metadata.read_text()
    metadata.write_text("")
    assert cli.main(["train", "--output", str(run), "--resume"]) == 2
    assert str(metadata) in _one_line_error(capsys)

    metadata.write_text(stored)
    weights = backup / "latest.weights.h5"
    weights.write_bytes(weights.read_bytes()[:4096])  # as an older version left it
    truncated = weights.read_bytes()
    assert cli.main(["train", "--output", str(run), "--resume", "--verbose", "0"]) == 0
    assert "cannot be read" in capsys.readouterr().err
    history = json.loads((run / "history.json").read_text())
    assert len(history["loss"]) == 2  # retrained from the first epoch
    assert not backup.exists()
    (aside,) = run.glob("unreadable-checkpoint-*")  # moved aside, never deleted
    assert (aside / "latest.weights.h5").read_bytes() == truncated


def test_resume_moves_a_checkpoint_of_other_settings_aside_and_never_deletes_it(
        tmp_path, capsys, monkeypatch):
    run = tmp_path / "run"
    _killed_in_final_save(run, monkeypatch)
    capsys.readouterr()
    backup = run / run_folder.BACKUP_DIR
    checkpoint = (backup / "latest.weights.h5").read_bytes()
    metadata = (backup / "training_metadata.json").read_text()
    settings = json.loads((backup / "settings.json").read_text())
    settings["latent_dim"] = 3  # a valid value, but the checkpoint holds latent_dim 2
    (backup / "settings.json").write_text(json.dumps(settings))
    assert cli.main(["train", "--output", str(run), "--resume", "--verbose", "0"]) == 0
    notes = [line for line in capsys.readouterr().err.splitlines() if "cannot be read" in line]
    (aside,) = run.glob("unreadable-checkpoint-*")
    assert len(notes) == 1 and f"it was moved to {aside}" in notes[0]
    assert (aside / "latest.weights.h5").read_bytes() == checkpoint
    assert (aside / "training_metadata.json").read_text() == metadata
    assert json.loads((run / "run.json").read_text())["settings"]["latent_dim"] == 3
    assert (run / "model.keras").is_file() and not backup.exists()
