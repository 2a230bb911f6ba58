"""Structure: diagrams as data to search and glue, as Catlab's ACSets are.

Morphisms of learning diagrams (:mod:`.morphisms`), homomorphism search and
actions on its matches (:mod:`.homsearch`), and colimits that glue diagrams
along shared parts (:mod:`.colimits`). Everything here works on the core alone:
it is torch-free, and models are only compared by identity.

>>> import learning_diagrams as ld
>>> edge = ld.Diagram().space("A").space("B").map("f", "A", "B", None)
>>> chain = ld.Diagram().space("X").space("Y").space("Z").map("p", "X", "Y", None).map("q", "Y", "Z", None)
>>> len(homomorphisms(edge, chain)), glue(chain, chain, along=edge.__class__().space("X")).apex.graph.vertices
(2, ('X', 'Y_0', 'Z_0', 'Y_1', 'Z_1'))
"""

from . import homsearch
from .colimits import Colimit, coequalizer, colimit, coproduct, glue, inclusion, pushout
from .homsearch import (
    assign_data,
    assign_data_each,
    freeze,
    homomorphism,
    homomorphisms,
    is_homomorphic,
    set_eval,
    set_train,
    swap,
    swap_each,
    unfreeze,
)
from .morphisms import DiagramMorphism, agrees

__all__ = [
    "DiagramMorphism",
    "agrees",
    "homsearch",
    "homomorphisms",
    "homomorphism",
    "is_homomorphic",
    "freeze",
    "unfreeze",
    "set_eval",
    "set_train",
    "swap",
    "swap_each",
    "assign_data",
    "assign_data_each",
    "Colimit",
    "colimit",
    "coproduct",
    "pushout",
    "coequalizer",
    "glue",
    "inclusion",
]
