# Two targets do all set-up on a fresh machine: `make demo` and `make test`.
# Each creates .venv and installs the package with the exact pins of constraints.txt.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: demo test install clean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet -c constraints.txt -e '.[test,examples]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(PY) -m learning_diagrams.examples.distillation

test: $(STAMP)
	$(PY) -m pytest

clean:
	rm -rf $(VENV) build src/*.egg-info .pytest_cache .hypothesis
