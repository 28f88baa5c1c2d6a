"""Every tutorial notebook runs start to finish (at its smoke-test size)."""

import datetime
import pathlib
import re

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


@pytest.mark.parametrize("path", TUTORIALS, ids=[p.stem for p in TUTORIALS])
def test_title_number_is_the_file_number(path):
    # "Tutorial 6" in the text means 06_*.ipynb, so each title must carry its file's number.
    title = nbformat.read(path, as_version=4).cells[0].source.splitlines()[0]
    assert re.match(rf"^# {int(path.name[:2])}\. ", title), f"{path.name} is titled {title!r}"


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


# What the committed notebooks must show: they are read, not executed, so these run in a second.
STATED = re.compile(r"^STATED_MINUTES = ([0-9.]+)", re.MULTILINE)
STARTUP_NOISE = ("cuInit", "oneDNN custom operations", "This TensorFlow binary is optimized",
                 "Unable to register cu", "absl::InitializeLog", "computation placer",
                 "Downloading data from", "To enable the following instructions")
SERIES_MINUTES = 28  # 25, and 3 more for the discrete-latents notebook (11)


def committed_minutes(notebook):
    """Minutes from the first cell's start to the last cell's end, from the saved timestamps."""
    stamps = [datetime.datetime.fromisoformat(cell.metadata["execution"][key].replace("Z", "+00:00"))
              for cell in notebook.cells if cell.cell_type == "code"
              for key in ("iopub.execute_input", "shell.execute_reply")]
    return (max(stamps) - min(stamps)).total_seconds() / 60


def stated_minutes(notebook):
    found = [float(m) for cell in notebook.cells if cell.cell_type == "code"
             for m in STATED.findall(cell.source)]
    assert len(found) == 1, f"expected one STATED_MINUTES = ... line, found {found}"
    return found[0]


@pytest.mark.parametrize("path", TUTORIALS, ids=[p.stem for p in TUTORIALS])
def test_committed_outputs_are_complete_clean_and_checked(path):
    notebook = nbformat.read(path, as_version=4)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert all(cell.execution_count is not None for cell in code), "a code cell was never executed"
    for cell in code:
        for output in cell.outputs:
            assert output.output_type != "error", f"an error output is committed: {output.get('ename')}"
            text = output.get("text", "") + str(output.get("data", {}).get("text/plain", ""))
            noise = [phrase for phrase in STARTUP_NOISE if phrase in text]
            assert not noise, f"TensorFlow start-up noise in a committed output: {noise}"
    headings = [cell.source for cell in notebook.cells if cell.cell_type == "markdown"]
    assert any(source.startswith("## What we measured") for source in headings)
    checks = code[-1].source
    assert "if not SMOKE:" in checks and "assert " in checks, \
        "the last code cell must assert the notebook's claims at the default size"


@pytest.mark.parametrize("path", TUTORIALS, ids=[p.stem for p in TUTORIALS])
def test_stated_runtime_is_within_30_percent_of_the_committed_run(path):
    notebook = nbformat.read(path, as_version=4)
    measured, stated = committed_minutes(notebook), stated_minutes(notebook)
    assert abs(stated - measured) <= 0.3 * measured, \
        f"STATED_MINUTES = {stated} but the committed run took {measured:.2f} minutes"


def test_the_whole_series_runs_in_28_minutes():
    total = sum(committed_minutes(nbformat.read(path, as_version=4)) for path in TUTORIALS)
    assert total <= SERIES_MINUTES, f"the committed runs take {total:.1f} minutes in all"


# A figure's title or axis label that names a quantity must sit in a notebook that computes it.
FIGURE_TEXT = re.compile(r"(?:title\s*=\s*|set_title\(|suptitle\(|set_[xy]label\(|frame_labels\s*=\s*)"
                         r"(f?\"[^\"\n]*\"|f?'[^'\n]*')")
QUANTITIES = {  # the words a figure text may use -> the code that computes the quantity
    r"\bnegative ELBO\b": r"elbo",  # evaluation's "elbo", a model's neg_elbo, or the ELBO by hand
    r"\bFID\b": r"evaluation\.fid\(|frechet_distance\(",
    r"\bROC AUC\b": r"roc_auc\(",
    r"\bprecision\b|\brecall\b": r"precision_recall\(|share_inside\(",
    r"\bKL\b": r"kl_loss|kl_per_dimension\(|kl_divergence\(|\bkl\b",
    r"\bbits\b": r"log2|bits",
    r"\bMSE\b": r"mse|np\.square\(|\*\* 2",
    r"\blambda\b": r"logit_bound|softsign|\blam\b|lambda_",
    r"\bperplexity\b": r"perplexity",
}


def unbacked_figure_quantities(cells):
    """(figure text, quantity) pairs whose quantity no code of the notebook computes."""
    code = "\n".join(cell.source for cell in cells if cell.cell_type == "code")
    texts = [match.group(1) for match in FIGURE_TEXT.finditer(code)]
    evidence = FIGURE_TEXT.sub("", code)  # a title does not compute what it names
    return [(text, quantity) for text in texts for quantity, computed in QUANTITIES.items()
            if re.search(quantity, text, re.IGNORECASE)
            and not re.search(computed, evidence, re.IGNORECASE)]


def test_figure_text_check_catches_a_title_without_its_computation():
    title_only = [nbformat.v4.new_code_cell('axis.set_title("MNIST-classifier FID of samples")')]
    assert unbacked_figure_quantities(title_only) == [('"MNIST-classifier FID of samples"', r"\bFID\b")]
    computed = title_only + [nbformat.v4.new_code_cell("value = evaluation.fid(x, y, extractor)")]
    assert unbacked_figure_quantities(computed) == []


@pytest.mark.parametrize("path", TUTORIALS, ids=[p.stem for p in TUTORIALS])
def test_figure_titles_name_only_quantities_the_notebook_computes(path):
    cells = nbformat.read(path, as_version=4).cells
    assert unbacked_figure_quantities(cells) == []
