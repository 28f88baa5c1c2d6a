"""A bound on a multi-worker run's wait for its other workers, and SIGTERM as one line.

`tf.distribute.MultiWorkerMirroredStrategy()` waits for every worker named in
`TF_CONFIG` to start, inside TensorFlow's C++ code, which holds Python's GIL
while it waits and installs its own SIGTERM handler (its preemption
notifier): a worker that never starts leaves the others waiting for ever,
deaf to SIGTERM and Ctrl+C (measured: more than 13 minutes, ended only by
SIGKILL). Nothing inside that process can bound the wait (a Python thread
or signal handler never runs), so `keras-vae train --strategy multi-worker`
forks before it imports TensorFlow: the child runs the command, and the
parent, which never imports TensorFlow, supervises it. Until the child says
the strategy exists (`started()`), the parent ends the run with one line
when `--worker-wait` seconds pass (naming the workers that do not answer) or
when it gets SIGTERM or SIGINT, and kills the child. After that it relays
SIGTERM to the child and exits with the child's status.

`terminate_as_interrupt()` makes SIGTERM end any command the way Ctrl+C
does (one line, the run's backup kept), with status 143.
"""

import ctypes
import os
import select
import signal
import socket
import sys
import threading
import time

from keras_vae import cluster_config

WORKER_WAIT_SECONDS = 300.0
"""Default seconds a multi-worker run waits for its other workers to start."""

TERMINATED = 143
"""Exit status after SIGTERM: 128 + 15, as shells report it."""

INTERRUPTED = 130
"""Exit status after Ctrl+C (SIGINT): 128 + 2, as shells report it."""

_STARTED = b"1"

_PR_SET_PDEATHSIG = 1  # from <sys/prctl.h>

_started_fd = None


class Terminated(KeyboardInterrupt):
    """Raised in the main thread when the process gets SIGTERM."""


def _raise_terminated(signum, frame):
    raise Terminated()


def terminate_as_interrupt():
    """Makes SIGTERM raise `Terminated` (a `KeyboardInterrupt`) in the main thread.

    Returns the handler it replaced, for `signal.signal` to restore (None,
    and nothing changed, outside the main thread, where Python cannot set one).
    """
    if threading.current_thread() is not threading.main_thread():
        return None
    return signal.signal(signal.SIGTERM, _raise_terminated)


def answers(address, timeout=1.0):
    """Whether a TCP connection to `host:port` is accepted within `timeout` seconds.

    Args:
        address: `"host:port"`, as `TF_CONFIG` names a worker.
        timeout: Seconds to wait for the connection.
    """
    host, _, port = address.rpartition(":")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout):
            return True
    except (OSError, ValueError):
        return False


def supervise(seconds, others):
    """Forks; returns None in the child, and the child's exit status in the parent.

    Args:
        seconds: How long the child may wait for the other workers to start.
        others: `(job, index, "host:port")` of the other workers (`peers`),
            named in the message when they do not start.

    Returns:
        None in the child, which runs the command and calls `started()` once
        its strategy exists; in the parent, the exit status of the run.
    """
    global _started_fd
    read_fd, write_fd = os.pipe()
    sys.stdout.flush()
    sys.stderr.flush()
    parent = os.getpid()
    pid = os.fork()
    if pid == 0:
        os.close(read_fd)
        _die_with(parent)
        _started_fd = write_fd
        return None
    os.close(write_fd)
    return _supervise(pid, read_fd, seconds, others)


def _die_with(parent):
    """Makes this child get SIGKILL when its parent dies (Linux), as a killed run should."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):  # not Linux: a killed parent leaves the child running
        return
    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(TERMINATED)


def started():
    """Tells the supervising parent that the workers met; SIGTERM reaches Python again.

    TensorFlow's preemption notifier took SIGTERM while the strategy was made;
    this gives it back to `terminate_as_interrupt`. Call it in the main thread.
    """
    global _started_fd
    if _started_fd is not None:
        os.write(_started_fd, _STARTED)
        os.close(_started_fd)
        _started_fd = None
    terminate_as_interrupt()


class _Stop(Exception):
    def __init__(self, signum):
        super().__init__(signum)
        self.signum = signum


def _stop(signum, frame):
    raise _Stop(signum)


def _supervise(pid, read_fd, seconds, others):
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, _stop)
    deadline = time.monotonic() + seconds
    try:
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                _kill(pid)
                print(f"keras-vae: error: {_missing_workers(seconds, others)}", file=sys.stderr)
                return 2
            ready, _, _ = select.select([read_fd], [], [], min(remaining, 1.0))
            if ready:
                break  # the strategy exists, or the child ended before (it said why)
    except _Stop as stop:
        _kill(pid)
        what = "interrupted" if stop.signum == signal.SIGINT else "terminated"
        print(f"keras-vae: {what} while waiting for the other workers of the multi-worker "
              "run to start; nothing was written", file=sys.stderr)
        return INTERRUPTED if stop.signum == signal.SIGINT else TERMINATED
    finally:
        os.close(read_fd)
    # Ctrl+C reaches the child too (one process group); a SIGTERM sent to this
    # process is passed on, since the child's SIGTERM handler is its own again.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, lambda signum, frame: os.kill(pid, signal.SIGTERM))
    _, status = os.waitpid(pid, 0)
    return os.WEXITSTATUS(status) if os.WIFEXITED(status) else 128 + os.WTERMSIG(status)


def _kill(pid):
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)


def _missing_workers(seconds, others):
    silent = [f"{address} ({job} {index})" for job, index, address in others
              if not answers(address)]
    if silent:
        named = "nothing answers at " + ", ".join(silent)
    else:  # each port is open, but some worker has not joined (a stranger on a port?)
        named = "every address answers, but not every worker joined: " + ", ".join(
            address for _, _, address in others)
    return (f"the other workers of this multi-worker run did not start within {seconds:g} s "
            f"(--worker-wait): {named}. Start every worker of TF_CONFIG within --worker-wait "
            "seconds of the first, or raise --worker-wait.")


def cluster_peers(environ=None):
    """Returns `cluster_config.peers` of `TF_CONFIG` in `environ`, or [] when it cannot be read.

    An unreadable `TF_CONFIG` is reported by the command itself, with its reason.
    """
    try:
        return cluster_config.peers(cluster_config.cluster_from_environment(environ))
    except ValueError:
        return []
