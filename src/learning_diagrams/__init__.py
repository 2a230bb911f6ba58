"""learning-diagrams: training regimes as data.

A learning diagram is a directed multigraph of spaces (data sets,
representation spaces, spaces with a loss) and maps (PyTorch modules or
functions). It compiles to one composite loss: the sum, over parallel paths
from a data set to a space with a loss, of the loss between the two paths'
outputs. Training on it makes the diagram (approximately) commute.

The package is in layers, imports pointing down only: the torch-free
:mod:`~learning_diagrams.core`; :mod:`~learning_diagrams.structure`
(morphisms, homomorphisms, colimits) and :mod:`~learning_diagrams.io`
(files, the text syntax, drawing); the PyTorch back end
:mod:`~learning_diagrams.torch` (and, with the ``[jax]`` extra, :mod:`~learning_diagrams.jax`);
:mod:`~learning_diagrams.training`;
:mod:`~learning_diagrams.integrations`; and, apart,
:mod:`~learning_diagrams.lenses`. This top level imports the core only; every
other name is loaded on first use (PEP 562), so ``import learning_diagrams``
does not import torch.

>>> import learning_diagrams as ld
>>> d = ld.Diagram().space("N", data=[0]).space("Y", loss=ld.losses.l1)
>>> d.map("f", "N", "Y", float).map("g", "N", "Y", abs).parallel_pairs()[0].name
'f ≤ g'
"""

from __future__ import annotations

import importlib
from importlib import metadata
from typing import TYPE_CHECKING, Any

from .core.errors import CheckpointError, NonFiniteError
from .core import (
    CheckReport,
    Diagram,
    DiagramError,
    Graph,
    Loss,
    Map,
    Pair,
    Path,
    PathMatrix,
    Preorder,
    Relation,
    Space,
    TensorType,
    enumerate_paths,
    errors,
    losses,
    parallel_paths,
    plugins,
)

# The built-in plug-ins: modules named here are imported when first needed (see core.plugins).
plugins.register("backend", "torch", "learning_diagrams.torch", arrays=("torch",))
plugins.register("backend", "jax", "learning_diagrams.jax", arrays=("jax", "jaxlib"))
plugins.register("renderer", "graphviz", "learning_diagrams.io.drawing")

__version__ = metadata.version("learning-diagrams")

#: Names loaded on first use, by the module that defines them.
_LAZY: dict[str, str] = {
    **dict.fromkeys(["CompiledLoss", "Losses", "check"], "learning_diagrams.torch"),
    **dict.fromkeys(
        ["DiagramMorphism", "Colimit", "colimit", "coproduct", "pushout", "coequalizer", "glue", "inclusion"],
        "learning_diagrams.structure",
    ),
    **dict.fromkeys(
        ["homomorphisms", "homomorphism", "is_homomorphic", "set_eval", "set_train", "swap", "assign_data"],
        "learning_diagrams.structure",
    ),
    **dict.fromkeys(["save", "load", "parse"], "learning_diagrams.io"),
    **dict.fromkeys(["fit", "Trainer", "Stage", "History"], "learning_diagrams.training"),
}
#: Subpackages and modules loaded on first use.
_LAZY_MODULES: dict[str, str] = {
    "torch": "learning_diagrams.torch",
    "jax": "learning_diagrams.jax",
    "structure": "learning_diagrams.structure",
    "homsearch": "learning_diagrams.structure.homsearch",
    "io": "learning_diagrams.io",
    "training": "learning_diagrams.training",
    "logs": "learning_diagrams.logs",
    "batches": "learning_diagrams.batches",
    "integrations": "learning_diagrams.integrations",
    "lenses": "learning_diagrams.lenses",
    "core": "learning_diagrams.core",
}

__all__ = [
    "Diagram",
    "Space",
    "Map",
    "Relation",
    "Pair",
    "Graph",
    "Path",
    "PathMatrix",
    "Preorder",
    "CompiledLoss",
    "Losses",
    "CheckReport",
    "TensorType",
    "Loss",
    "DiagramError",
    "NonFiniteError",
    "CheckpointError",
    "check",
    "enumerate_paths",
    "parallel_paths",
    "parse",
    "DiagramMorphism",
    "homomorphisms",
    "homomorphism",
    "is_homomorphic",
    "set_eval",
    "set_train",
    "swap",
    "assign_data",
    "homsearch",
    "Colimit",
    "colimit",
    "coproduct",
    "pushout",
    "coequalizer",
    "glue",
    "inclusion",
    "save",
    "load",
    "fit",
    "Trainer",
    "Stage",
    "History",
    "errors",
    "losses",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
    elif name in _LAZY_MODULES:
        value = importlib.import_module(_LAZY_MODULES[name])
    else:
        raise AttributeError(f"module 'learning_diagrams' has no attribute {name!r}")
    globals()[name] = value  # later lookups are plain attribute reads
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY, *_LAZY_MODULES})


if TYPE_CHECKING:  # what type checkers and IDEs see; at run time these load lazily
    from . import integrations as integrations
    from . import io as io
    from . import lenses as lenses
    from . import structure as structure
    from . import torch as torch
    from . import training as training
    from .io import load, parse, save
    from .structure import (
        Colimit,
        DiagramMorphism,
        assign_data,
        coequalizer,
        colimit,
        coproduct,
        glue,
        homomorphism,
        homomorphisms,
        homsearch,
        inclusion,
        is_homomorphic,
        pushout,
        set_eval,
        set_train,
        swap,
    )
    from .torch import CompiledLoss, Losses, check
    from .training import History, Stage, Trainer, fit
