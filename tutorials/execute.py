"""Executes tutorial notebooks in place, saving their outputs.

    .venv/bin/python tutorials/execute.py                 # all of them
    .venv/bin/python tutorials/execute.py 02_first_vae    # some of them

Run from the repository root after changing a notebook, so the committed
outputs match the code. Set KERAS_VAE_SMOKE_TEST=1 for a quick check.
"""

import pathlib
import sys
import time

import nbformat
from nbclient import NotebookClient

HERE = pathlib.Path(__file__).resolve().parent


def main(names):
    paths = sorted(HERE.glob("*.ipynb"))
    if names:
        paths = [p for p in paths if p.stem in names or p.name in names]
    for path in paths:
        start = time.perf_counter()
        notebook = nbformat.read(path, as_version=4)
        NotebookClient(notebook, timeout=1800, kernel_name="python3",
                       resources={"metadata": {"path": str(HERE)}}).execute()
        nbformat.write(notebook, path)
        print(f"{path.name}: {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main(sys.argv[1:])
