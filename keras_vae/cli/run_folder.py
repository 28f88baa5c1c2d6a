"""The life of a `keras-vae train` output folder: refuse, lock, back up, resume, finish.

A run folder goes through these states:

- *empty*: no run files and no `backup/`; `train` may start here.
- *running*: a process holds an exclusive OS lock on `OUTPUT/.keras-vae.lock`
  (`keras_vae.folder_lock`, `fcntl.flock`). The kernel releases it when the
  process ends, however it ends (SIGKILL included), so a lock is never stale. Any other `train`,
  `--resume` or `--overwrite` on the folder is refused while it is held.
- *interrupted*: `backup/` holds the settings, the history and (after the
  first epoch) the checkpoint of the last completed epoch; `--resume`
  continues from there.
- *finished*: `model.keras`, `history.csv`, `history.json` and `run.json`.

Checkpoints are written to a scratch file and renamed into place, so a crash
or a full disk while saving leaves the previous checkpoint (or none) rather
than a truncated one; leftovers of such crashes are removed when the folder is
next locked.

Importing this module is cheap (the command line's parser reads its names):
Keras is imported by the methods that save.
"""

import pathlib
import shutil

from keras_vae import folder_lock
from keras_vae.folder_lock import FolderBusyError
from keras_vae.folder_lock import FolderLock

RUN_FILES = ("model.keras", "history.csv", "history.json", "run.json")
"""Files whose presence marks a folder as holding a finished run."""

BACKUP_DIR = "backup"
"""Sub-folder holding an unfinished run's checkpoint, history and settings."""

BACKUP_FILES = ("settings.json", "history.json", "training_metadata.json",
                "latest.weights.h5")
"""Files a run keeps in `backup/`."""

LOCK_FILE = folder_lock.LOCK_FILE
"""Lock file held by the process that writes the folder."""

RunFolderBusyError = FolderBusyError
"""Raised when another process holds the lock of a run folder (`folder_lock`)."""


class RunFolder:
    """One training run's output folder.

    Args:
        path: the folder (created when the run is locked).
    """

    def __init__(self, path):
        self.path = pathlib.Path(path)
        self.backup = self.path / BACKUP_DIR
        self._lock = FolderLock(self.path)

    # ------------------------------------------------------------- checks

    def check_can_start(self, overwrite):
        """Raises `FileExistsError` unless a new run may be written here."""
        if self.path.exists() and not self.path.is_dir():
            raise FileExistsError(f"--output must be a folder. Received: {self.path} is a file")
        if overwrite:
            return
        existing = [name for name in RUN_FILES if (self.path / name).exists()]
        if existing and self.backup.exists():
            raise FileExistsError(
                f"The output folder {self.path} holds a run that was stopped while it "
                f"was saving its results ({', '.join(existing)} and {BACKUP_DIR}/). Pass "
                "--resume to finish it, --overwrite to start again, or choose another "
                "--output.")
        if existing:
            raise FileExistsError(
                f"The output folder {self.path} already holds a run ({', '.join(existing)}). "
                "Pass --overwrite to replace it, or choose another --output.")
        if self.backup.exists():
            raise FileExistsError(
                f"The output folder {self.path} holds an interrupted run ({BACKUP_DIR}/). "
                "Pass --resume to continue it, --overwrite to start again, or choose "
                "another --output.")

    def stored_settings(self):
        """Returns the settings the interrupted run stored in `backup/settings.json`."""
        path = self.backup / "settings.json"
        if not path.is_file():
            raise FileNotFoundError(
                f"--resume found no interrupted run in {self.path}. Received: no {path}")
        from keras_vae import saving

        return saving.read_json(path)

    def completed_epochs(self):
        """Returns the epochs the checkpoint in `backup/` holds (0 without one)."""
        metadata = self.backup / "training_metadata.json"
        if not (self.backup / "latest.weights.h5").is_file() or not metadata.is_file():
            return 0
        from keras_vae import saving

        return int(saving.read_json(metadata).get("epoch", 0))

    # -------------------------------------------------------------- lock

    def check_not_in_use(self):
        """Raises `RunFolderBusyError` if another process holds the folder's lock.

        Called first, so that a second command on a running folder hears that
        the folder is in use, not what the running process has written so far.
        """
        self._lock.check_free()

    def lock(self):
        """Takes the folder's exclusive lock (creating the folder).

        Raises:
            RunFolderBusyError: another process holds it.
        """
        self._lock.acquire()
        self._remove_partial_files()

    def unlock(self):
        """Releases the lock and removes the lock file."""
        self._lock.release()

    def __enter__(self):
        self.lock()
        return self

    def __exit__(self, *exc_info):
        self.unlock()

    def _remove_partial_files(self):
        """Removes scratch files left by a process killed while saving.

        Only the names `keras_vae.saving.atomic_target` gives the files a run
        writes (`.model-<random>.keras` beside `model.keras`, ...); anything
        else in the folder is the user's and stays.
        """
        targets = {self.path: (*RUN_FILES, "last_good.keras"),
                   self.backup: BACKUP_FILES}
        for folder, names in targets.items():
            for name in names:
                target = pathlib.Path(name)
                for path in folder.glob(f".{target.stem}-*{target.suffix}"):
                    path.unlink()

    # --------------------------------------------------------- lifecycle

    def start(self, settings, overwrite):
        """Clears what a new run replaces and stores its `settings` (under the lock).

        Args:
            settings: The run's settings, a JSON-serializable dict.
            overwrite: True to replace a finished or interrupted run.
        """
        self.check_can_start(overwrite)
        shutil.rmtree(self.backup, ignore_errors=True)
        for name in RUN_FILES:
            (self.path / name).unlink(missing_ok=True)
        for stale in (self.path / "plots").glob("*_[0-9][0-9][0-9].png"):
            stale.unlink()
        from keras_vae import saving

        saving.write_json(self.backup / "settings.json", settings)

    def backup_callback(self):
        """Returns the callback that checkpoints each epoch into `backup/`."""
        from keras_vae.callbacks import AtomicBackupAndRestore

        # An unreadable checkpoint is moved beside backup/, which finish() removes.
        return AtomicBackupAndRestore(self.backup, aside_dir=self.path)

    def finish(self):
        """Removes the backup once the run's files are written."""
        shutil.rmtree(self.backup)
