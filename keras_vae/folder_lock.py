"""An exclusive lock on an output folder, held by the process that writes it.

`train` (the run folder) and `export` take it before they write: a second
command on the same folder is refused with one line naming the holder's
pid, rather than mixing its files with the first one's. The lock is
`fcntl.flock` on `FOLDER/.keras-vae.lock`; the kernel releases it when the
process ends, however it ends (SIGKILL included), so a lock is never stale.
"""

import fcntl
import os
import pathlib

LOCK_FILE = ".keras-vae.lock"
"""Lock file held by the process that writes the folder."""


class FolderBusyError(RuntimeError):
    """Raised when another process holds the lock of a folder."""


class FolderLock:
    """The exclusive lock of one folder; a context manager.

    Args:
        path: The folder (created when the lock is taken).

    Example:

    ```python
    with FolderLock("exported"):
        ...  # write into exported/; another keras-vae process is refused
    ```
    """

    def __init__(self, path):
        self.path = pathlib.Path(path)
        self._handle = None

    def check_free(self):
        """Raises `FolderBusyError` if another process holds the lock (taking nothing)."""
        try:
            handle = open(self.path / LOCK_FILE)
        except OSError:
            return  # no lock file (or no folder): nobody holds it
        with handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise self._busy(handle) from None

    def _busy(self, handle):
        pid = handle.read().strip() or "unknown"
        return FolderBusyError(f"{self.path} is in use by another keras-vae process (pid {pid}).")

    def acquire(self):
        """Takes the lock (creating the folder).

        Raises:
            FolderBusyError: another process holds it.
        """
        self.path.mkdir(parents=True, exist_ok=True)
        lock_path = self.path / LOCK_FILE
        while True:
            handle = open(lock_path, "a+")
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.seek(0)
                error = self._busy(handle)
                handle.close()
                raise error from None
            # The holder before us may have removed the file after we opened
            # it: then our lock is on a file nobody else will see; retry.
            try:
                same = os.stat(lock_path).st_ino == os.fstat(handle.fileno()).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            handle.close()
        handle.truncate(0)
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        self._handle = handle

    def release(self):
        """Releases the lock and removes the lock file."""
        if self._handle is None:
            return
        (self.path / LOCK_FILE).unlink(missing_ok=True)
        self._handle.close()
        self._handle = None

    def __enter__(self):
        self.acquire()
        return self

    def __exit__(self, *exc_info):
        self.release()
