"""The `TF_CONFIG` of a multi-worker cluster, read and written without TensorFlow.

`keras_vae.distribute` uses it to build the strategy, and `keras-vae train`'s
supervisor (`keras_vae.cli.worker_wait`), which must not import TensorFlow, to
name the workers that do not answer.
"""

import json
import os


def cluster_from_environment(environ=None):
    """Returns the parsed `TF_CONFIG` of a multi-worker run, or raises `ValueError`.

    `TF_CONFIG` is JSON with the `cluster` (task type -> list of `host:port`)
    and this process's `task` (`type` and `index`), as TensorFlow documents:
    `{"cluster": {"worker": ["a:2222", "b:2222"]}, "task": {"type": "worker", "index": 0}}`.
    """
    environ = os.environ if environ is None else environ
    text = environ.get("TF_CONFIG")
    if not text:
        raise ValueError(
            "The multi-worker strategy reads the cluster from the TF_CONFIG environment "
            "variable, which is not set. Received: TF_CONFIG unset")
    try:
        config = json.loads(text)
    except ValueError:
        config = None
    task = config.get("task") if isinstance(config, dict) else None
    cluster = config.get("cluster") if isinstance(config, dict) else None
    if (not isinstance(cluster, dict) or not isinstance(task, dict)
            or task.get("type") not in cluster
            or not isinstance(task.get("index"), int)
            or not 0 <= task["index"] < len(cluster[task["type"]])):
        raise ValueError(
            "TF_CONFIG must be JSON with a cluster and this process's task in it, e.g. "
            '{"cluster": {"worker": ["host1:2222", "host2:2222"]}, '
            f'"task": {{"type": "worker", "index": 0}}}}. Received: TF_CONFIG={text!r}')
    return config


def tf_config(workers, index):
    """Returns the `TF_CONFIG` value (JSON) of worker `index` of a cluster.

    Args:
        workers: The workers' `host:port` addresses, the chief first.
        index: This worker's place in `workers`.

    Example:

    ```python
    os.environ["TF_CONFIG"] = keras_vae.distribute.tf_config(
        ["10.0.0.1:2222", "10.0.0.2:2222"], index=0)  # on the first machine
    ```
    """
    workers = [str(worker) for worker in workers]
    if not workers:
        raise ValueError(f"workers must list at least one address. Received: workers={workers}")
    if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < len(workers):
        raise ValueError(f"index must be an int from 0 to {len(workers) - 1}. "
                         f"Received: index={index!r}")
    return json.dumps({"cluster": {"worker": workers},
                       "task": {"type": "worker", "index": index}})


def peers(config):
    """Returns `(job, index, "host:port")` of every task of a parsed `TF_CONFIG` but this one's."""
    own = config["cluster"][config["task"]["type"]][config["task"]["index"]]
    return [(job, index, address) for job, tasks in config["cluster"].items()
            for index, address in enumerate(tasks) if address != own]
