"""Executes tutorial notebooks in place, saving their outputs.

    .venv/bin/python tutorials/execute.py                 # all of them
    .venv/bin/python tutorials/execute.py 02_first_vae    # some of them

Run from the repository root after changing a notebook, so the committed
outputs match the code. Set KERAS_VAE_SMOKE_TEST=1 for a quick check.
"""

import pathlib
import re
import sys
import time

import nbformat
from nbclient import NotebookClient

HERE = pathlib.Path(__file__).resolve().parent
# TensorFlow's start-up chatter (absl and CUDA probing) on stderr, not the tutorial's.
NOISE = re.compile(r"^(WARNING: All log messages before absl|[IWE]0000 \d|\[IPKernelApp\]"
                   r"|To enable the following instructions: )")  # the second line of an I0000 one


def drop_startup_noise(notebook):
    """Removes TensorFlow's start-up log lines from stderr outputs."""
    for cell in notebook.cells:
        outputs = []
        for output in cell.get("outputs", []):
            if output.get("name") == "stderr":
                lines = [line for line in output["text"].splitlines(keepends=True)
                         if not NOISE.match(line)]
                if not "".join(lines).strip():
                    continue
                output["text"] = "".join(lines)
            outputs.append(output)
        if cell.cell_type == "code":
            cell.outputs = outputs


def main(names):
    paths = sorted(HERE.glob("*.ipynb"))
    if names:
        paths = [p for p in paths if p.stem in names or p.name in names]
    for path in paths:
        start = time.perf_counter()
        notebook = nbformat.read(path, as_version=4)
        NotebookClient(notebook, timeout=1800, kernel_name="python3",
                       resources={"metadata": {"path": str(HERE)}}).execute()
        drop_startup_noise(notebook)
        nbformat.write(notebook, path)
        print(f"{path.name}: {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main(sys.argv[1:])
