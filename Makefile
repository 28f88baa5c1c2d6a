# Every target creates the local virtual environment (.venv) when it is missing
# and installs keras_vae into it in editable mode with its `dev` extra.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: install demo test clean

$(BIN)/keras-vae: setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $@

install: $(BIN)/keras-vae

## Train the default VAE on the shipped MNIST; the run goes to runs/demo.
demo: install
	$(BIN)/keras-vae train --output runs/demo --overwrite

## Lint the whole tree (ruff, configured in pyproject.toml), then run the whole test suite,
## one test file per worker process and one worker per CPU core (pytest-xdist).
test: install
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -n auto --dist loadfile

clean:
	rm -rf $(VENV) runs .pytest_cache *.egg-info
