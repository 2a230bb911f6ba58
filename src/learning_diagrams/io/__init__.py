"""Input and output at the edges: files, the text syntax, drawings.

* :mod:`.files`: :func:`save` and :func:`load` a diagram as Catlab's ACSet JSON
  (:mod:`.acset`, with the schema :func:`schema_text` returns; plain Catlab
  graphs load as skeletons, :mod:`.catlab`, with their :func:`metadata`) or a
  YAML config (:mod:`.config`), its objects named and bound again by
  :mod:`.binding`, type annotations as :mod:`.typespecs`, and its modules'
  weights in safetensors (:mod:`.weights`);
* :mod:`.syntax`: :func:`parse` the text syntax of the paper's Listing 1, whose
  lambdas (:mod:`.lambdas`) are interpreted, never evaluated as Python, and
  whose Julia types (:mod:`.julia`) are annotations;
* :mod:`.drawing`: pictures through Graphviz, compiled pairs coloured pair by pair;
* :mod:`.atomic`: the one atomic writer every file of the library goes through;
* :mod:`.limits`: the bounds every reader keeps (nesting, literal sizes, what a
  message shows), so that every bad input gets a library error in bounded time.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .atomic import write_atomic

# The other names load on first use (PEP 562): the syntax's lambdas are modules and the weights are
# tensors, so they import torch, and a torch-free layer (the logs, the JAX back end) writes its
# files through the atomic writer alone.
_LAZY: dict[str, str] = {
    **dict.fromkeys(["draw", "to_graphviz"], "learning_diagrams.io.drawing"),
    "schema_text": "learning_diagrams.io.acset",
    **dict.fromkeys(
        ["from_config", "from_json", "load", "metadata", "save", "to_config", "to_json", "weights_path"],
        "learning_diagrams.io.files",
    ),
    **dict.fromkeys(["Lambda", "parse"], "learning_diagrams.io.syntax"),
}

__all__ = [
    "save",
    "load",
    "to_json",
    "from_json",
    "to_config",
    "from_config",
    "weights_path",
    "metadata",
    "schema_text",
    "parse",
    "Lambda",
    "draw",
    "to_graphviz",
    "write_atomic",
]


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'learning_diagrams.io' has no attribute {name!r}")
    value = getattr(importlib.import_module(_LAZY[name]), name)
    globals()[name] = value  # later lookups are plain attribute reads
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})


if TYPE_CHECKING:  # what type checkers and IDEs see; at run time these load lazily
    from .acset import schema_text
    from .drawing import draw, to_graphviz
    from .files import from_config, from_json, load, metadata, save, to_config, to_json, weights_path
    from .syntax import Lambda, parse
