"""The torch-free core: what a learning diagram is, whatever computes it.

Graphs and paths (:mod:`.graph`), path enumeration by matrix powers
(:mod:`.paths`), the preorder on paths (:mod:`.order`), type annotations
(:mod:`.types`), loss specifications (:mod:`.losses`), diagrams as syntax plus
assigned semantics (:mod:`.diagram`), the evaluation every back end honours
(:mod:`.evaluation`), and the library's errors (:mod:`.errors`, with message
templates in :mod:`.messages`). Nothing here imports torch, JAX or NumPy: the
array back ends (:mod:`learning_diagrams.torch`) are plug-ins (:mod:`.plugins`).

>>> from learning_diagrams.core import Diagram, losses
>>> d = Diagram().space("N", data=[0]).space("Y", loss=losses.l1)
>>> d.map("f", "N", "Y", float).map("g", "N", "Y", abs).parallel_pairs()[0].name
'f ≤ g'
"""

from . import errors, losses, plugins
from .category import Composable, Monoidal
from .diagram import Diagram, Map, Pair, Relation, Space
from .errors import DiagramError
from .evaluation import CheckReport
from .graph import Graph, Path, PathLike
from .losses import Loss
from .order import Preorder
from .paths import PathMatrix, enumerate_paths, parallel_paths
from .types import TensorType

__all__ = [
    "Diagram",
    "Space",
    "Map",
    "Relation",
    "Pair",
    "Graph",
    "Path",
    "PathLike",
    "PathMatrix",
    "Preorder",
    "TensorType",
    "Loss",
    "CheckReport",
    "Composable",
    "Monoidal",
    "DiagramError",
    "enumerate_paths",
    "parallel_paths",
    "errors",
    "losses",
    "plugins",
]
