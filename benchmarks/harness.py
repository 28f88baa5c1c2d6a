"""What every benchmark shares: the machine's description, epoch timing, idle time, RESULTS.md.

- `describe_machine()` / `machine()`: the hardware as `keras-vae train`
  writes it into `run.json` (`keras_vae.precision.describe_hardware`: the
  CPU model and its speed-relevant flags, the core count, the GPUs), with
  Python, TensorFlow and Keras.
- `EpochTimer`: a Keras callback recording each epoch's seconds, optionally
  stopping before a time budget runs out.
- `ProcessCpu`: samples this process's CPU time every second in a thread, to
  count the seconds in which it did nothing (an input pipeline's idle pauses
  stay visible when other processes share the machine; timings do not).
- `append_results(section)`: adds a section to `benchmarks/RESULTS.md` through
  `keras_vae.saving.append_text` (atomic, and safe with benchmarks running
  side by side).

The learning-rate schedule is `keras_vae.schedules.learning_rate`, the
function the command line uses. Benchmarks run from the repository root as
`python -m benchmarks.NAME`.
"""

import os
import pathlib
import platform
import threading
import time

import keras
import tensorflow as tf

from keras_vae import precision
from keras_vae import saving

ROOT = pathlib.Path(__file__).resolve().parent.parent
"""The repository root, the working folder of `python -m benchmarks.NAME`."""

RESULTS = ROOT / "benchmarks" / "RESULTS.md"

def describe_machine(cpuinfo=None, gpus=None):
    """Describes the machine a benchmark runs on.

    Args:
        cpuinfo: Text in the format of Linux's `/proc/cpuinfo`; read from
            there when None (and treated as empty where there is none).
        gpus: List of `{"name", "compute_capability"}` dicts; TensorFlow's
            when None.

    Returns:
        `keras_vae.precision.describe_hardware(cpuinfo, gpus)` (`cpu`,
        `cpu_flags`, `cores`, `gpus`, `onednn`) with `machine`, `python`,
        `tensorflow` and `keras` (versions).
    """
    return {
        **precision.describe_hardware(cpuinfo, gpus),
        "machine": platform.machine(),
        "python": platform.python_version(),
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
    }


def machine(cpuinfo=None, gpus=None):
    """Returns `describe_machine()` as one line for RESULTS.md."""
    info = describe_machine(cpuinfo, gpus)
    flags = ", ".join(info["cpu_flags"]) or f"none of {', '.join(precision.CPU_FLAGS)}"
    gpus = "".join(f", GPU {gpu['name']}" for gpu in info["gpus"])
    return (f"{info['cpu']} ({info['machine']}; {flags}), {info['cores']} cores{gpus}, "
            f"Python {info['python']}, TensorFlow {info['tensorflow']}, "
            f"Keras {info['keras']}")


def append_results(section, path=None):
    """Appends `section` (Markdown) to RESULTS.md, or to `path`; returns the path.

    A missing file starts with the title `# Benchmark results`. The section
    is separated from what precedes it by one blank line.
    """
    path = pathlib.Path(path or RESULTS)
    text = section.strip("\n") + "\n"
    if path.exists() and path.stat().st_size:
        text = "\n" + text
    else:
        text = "# Benchmark results\n\n" + text
    return saving.append_text(path, text)


class EpochTimer(keras.callbacks.Callback):
    """Records each epoch's wall-clock seconds in `seconds`, one entry per epoch.

    With `max_minutes`, training stops after the epoch at which one more epoch
    (as slow as the slowest after the first) would pass the budget.

    Args:
        max_minutes: Optional time budget of the whole `fit`, in minutes.
        clock: Function returning seconds; `time.perf_counter` by default.
    """

    def __init__(self, max_minutes=None, clock=time.perf_counter):
        super().__init__()
        self.max_minutes = max_minutes
        self.clock = clock
        self.seconds = []
        self.starts = []

    def on_train_begin(self, logs=None):
        self.seconds = []
        self.starts = []

    def on_epoch_begin(self, epoch, logs=None):
        self.starts.append(self.clock())

    def on_epoch_end(self, epoch, logs=None):
        self.seconds.append(self.clock() - self.starts[-1])
        if self.max_minutes is not None:
            slowest = max(self.seconds[1:] or self.seconds)
            if sum(self.seconds) + slowest > 60 * self.max_minutes:
                self.model.stop_training = True


def cpu_seconds(stat):
    """Returns user + system CPU seconds from the text of a `/proc/PID/stat` file.

    Fields 14 (utime) and 15 (stime), in clock ticks, counted after the
    command name's closing parenthesis (the name itself may hold spaces).
    """
    fields = stat.rpartition(")")[2].split()
    # fields[0] is field 3 (the state), so field k is fields[k - 3].
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class ProcessCpu:
    """Samples this process's CPU time in a background thread.

    Use as a context manager. `samples` holds `(wall_seconds, cpu_seconds)`
    pairs every `interval` seconds; `idle_seconds(start, end)` counts the
    seconds of `[start, end]` (`time.perf_counter` values) that fall in
    sampling intervals in which the process used less than `threshold` of one
    core.

    Args:
        interval: Seconds between samples.
        threshold: Fraction of one core below which an interval is idle.
        read: Function returning the process's CPU seconds (for tests).
    """

    def __init__(self, interval=1.0, threshold=0.05, read=None):
        self.interval = interval
        self.threshold = threshold
        self.read = read or (lambda: cpu_seconds(pathlib.Path("/proc/self/stat").read_text()))
        self.samples = []
        self._stop = threading.Event()
        self._thread = None

    def __enter__(self):
        self.samples = [(time.perf_counter(), self.read())]
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc_info):
        self._stop.set()
        self._thread.join()
        self.samples.append((time.perf_counter(), self.read()))

    def _run(self):
        while not self._stop.wait(self.interval):
            self.samples.append((time.perf_counter(), self.read()))

    def idle_seconds(self, start=float("-inf"), end=float("inf")):
        """Seconds of `[start, end]` that fall in idle sampling intervals."""
        idle = 0.0
        for (t0, c0), (t1, c1) in zip(self.samples, self.samples[1:]):
            if t1 > t0 and c1 - c0 < self.threshold * (t1 - t0):
                idle += max(0.0, min(t1, end) - max(t0, start))
        return idle
