"""``python -m learning_diagrams``: the command line (see :mod:`learning_diagrams.cli`)."""

from .cli import main

if __name__ == "__main__":
    raise SystemExit(main())
