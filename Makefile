# The two quickstart commands: `make demo` and `make test`. Each sets up a virtual
# environment in .venv (once, again when pyproject.toml changes) and runs.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
OUT ?= demo-report

.PHONY: demo test bench setup clean lint notebooks

setup: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "perfalert_lab needs Python 3.11 or newer")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[all]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/perfalert demo --out $(OUT)

test: $(STAMP)
	$(BIN)/python -m pytest --nbval-lax --nbval-sanitize-with tests/nbval_sanitize.cfg tests perfalert_lab notebooks

# Run every notebook on the small data (as CI does) and store its outputs and pictures,
# so the notebooks read on a code host without a kernel. Run after changing a notebook.
notebooks: $(STAMP)
	CI=1 $(BIN)/jupyter nbconvert --to notebook --execute --inplace \
		--ExecutePreprocessor.store_widget_state=True notebooks/*.ipynb

# ruff on everything (notebooks included), mypy on the package
lint: $(STAMP)
	$(BIN)/ruff check perfalert_lab tests bench docs notebooks
	$(BIN)/mypy perfalert_lab

bench: $(STAMP)
	$(BIN)/python bench/run.py

clean:
	rm -rf $(VENV) $(OUT) .pytest_cache .hypothesis
