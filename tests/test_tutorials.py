"""Every tutorial notebook runs start to finish (at its smoke-test size)."""

import os
import pathlib

import nbformat
import pytest
from nbclient import NotebookClient

TUTORIALS = sorted((pathlib.Path(__file__).resolve().parent.parent / "tutorials").glob("*.ipynb"))


def test_tutorials_are_numbered_and_listed_in_the_readme():
    readme = (TUTORIALS[0].parent.parent / "README.md").read_text()
    assert TUTORIALS
    for path in TUTORIALS:
        assert path.name[:2].isdigit() and path.name[2] == "_", path.name
        assert path.name in readme, f"{path.name} is not listed in README.md"


@pytest.mark.slow
@pytest.mark.parametrize("path", TUTORIALS, ids=[p.stem for p in TUTORIALS])
def test_tutorial_runs(path, tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_VAE_SMOKE_TEST", "1")
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "2")
    notebook = nbformat.read(path, as_version=4)
    client = NotebookClient(notebook, timeout=600, kernel_name="python3",
                            resources={"metadata": {"path": str(tmp_path)}})
    client.execute()
    images = sum(1 for cell in notebook.cells if cell.cell_type == "code"
                 for output in cell.get("outputs", []) if "image/png" in output.get("data", {}))
    assert images > 0, "the notebook showed no picture"
