"""learning-diagrams: training regimes as data.

A learning diagram is a directed multigraph of spaces (data sets,
representation spaces, spaces with a loss) and maps (PyTorch modules or
functions). It compiles to one composite loss: the sum, over parallel paths
from a data set to a space with a loss, of the loss between the two paths'
outputs. Training on it makes the diagram (approximately) commute.

>>> import learning_diagrams as ld
>>> d = ld.Diagram().space("N", data=[0]).space("Y", loss=ld.losses.l1)
>>> d.map("f", "N", "Y", float).map("g", "N", "Y", abs).parallel_pairs()[0].name
'f ≤ g'
"""

from . import errors, homsearch, losses
from .check import CheckReport, check
from .colimits import Colimit, coequalizer, colimit, coproduct, glue, inclusion, pushout
from .compile import CompiledLoss, Losses
from .diagram import Diagram, Map, Pair, Relation, Space
from .errors import DiagramError
from .files import load, save
from .graph import Graph, Path
from .homsearch import (
    assign_data,
    homomorphism,
    homomorphisms,
    is_homomorphic,
    set_eval,
    set_train,
    swap,
)
from .morphisms import DiagramMorphism
from .losses import Loss
from .order import Preorder
from .paths import PathMatrix, enumerate_paths, parallel_paths
from .syntax import parse
from .training import History, Stage, Trainer, fit
from .types import TensorType

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
__version__ = "0.1.0"
