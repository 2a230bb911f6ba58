"""Homomorphism search: find every place where a small pattern diagram occurs in a diagram.

A homomorphism ``pattern → diagram`` is a :class:`~learning_diagrams.structure.morphisms.DiagramMorphism`:
vertices to vertices and edges to edges, preserving sources and targets. The
paper (section 2.2) uses one to pick out the vision encoder of an image
captioning diagram and set it to eval mode; more generally a pattern names the
parts of a sub-diagram, and the actions (:mod:`.actions`) act on the images of
those parts in every match at once.

The API follows Catlab.jl's ``HomSearch``: one search engine,
:func:`homomorphisms`, and several entry points (:func:`homomorphism`,
:func:`is_homomorphic`, and the actions :func:`freeze`, :func:`set_eval`,
:func:`swap`, :func:`assign_data`, ...), all taking the same options:

``monic``
    ``False`` (any homomorphism), ``True`` (injective on vertices and edges), or
    the parts to be injective on: ``"V"``, ``"E"``, ``["V"]``, ``["E"]``, ``"VE"``
    (Catlab's ``monic=[:V]``).
``epic``
    surjective, in the same forms: ``True`` (onto every vertex and edge of the
    diagram), ``"V"`` or ``"E"`` (onto one kind of part). Catlab's ``epic``.
``iso``
    bijective, in the same forms: ``iso`` on a part is ``monic`` and ``epic`` on
    it, so ``iso=True`` finds the isomorphisms (Catlab's ``iso``).
``initial``
    a partial assignment that every match extends: ``{"enc": "CNN_x_Y"}``, a flat
    dict whose keys are resolved as a pattern vertex if there is one by that name,
    else as a pattern edge; or ``{"V": {...}, "E": {...}}`` to say which. An
    assignment that no homomorphism extends (it breaks naturality, injectivity,
    ``where`` or ``semantic``) gives no match: an empty list, not an error.
``where``
    predicates on the diagram's parts, by pattern part name (same two forms):
    ``{"enc": trainable}`` keeps the matches whose image of ``enc`` is a trainable
    :class:`~learning_diagrams.core.diagram.Map`; a predicate receives the diagram's
    :class:`~learning_diagrams.core.diagram.Space` or ``Map``. A list of predicates
    must all hold. Ready-made: :func:`trainable`, :func:`frozen`,
    :func:`is_module`, :func:`contains_module`, :func:`has_loss`, :func:`has_data`.
``semantic``
    (default ``True``) also require :func:`~learning_diagrams.structure.morphisms.agrees`
    for every part: a pattern map that carries a model matches only maps that
    carry that very object; a pattern space with a loss only spaces with an equal
    loss. Wildcards (a map whose ``fn`` is ``None``, a space with no data, loss or
    type) match anything. ``semantic=False`` makes the search purely structural.
``take``
    stop after this many matches.
``at_most``
    raise :class:`~learning_diagrams.core.errors.TooManyHomomorphismsError` when
    there are more than this many (Catlab's ``max``).

The search itself is in :mod:`.engine`, the reading of the options in
:mod:`.options`, the ready-made predicates in :mod:`.predicates`.

Matches come in one deterministic order: lexicographic in the positions (in the
diagram's declaration order) of the images of the pattern's vertices, then of
its edges, each in the pattern's declaration order. With ``take``, the result
is a prefix of the full list.

Classic counts
--------------
>>> import learning_diagrams as ld
>>> def path(n):
...     d = ld.Diagram()
...     for i in range(n):
...         d.space(f"V{i}")
...     for i in range(n - 1):
...         d.map(f"e{i}", f"V{i}", f"V{i + 1}", None)
...     return d
>>> homomorphisms(path(3), path(4))        # a path of two edges in a path of three: twice
[DiagramMorphism(V: V0↦V0, V1↦V1, V2↦V2; E: e0↦e0, e1↦e1), DiagramMorphism(V: V0↦V1, V1↦V2, V2↦V3; E: e0↦e1, e1↦e2)]
>>> loop = ld.Diagram().space("A").map("f", "A", "A", None)
>>> len(homomorphisms(path(4), loop)), is_homomorphic(loop, path(4))  # everything maps to a loop
(1, False)
>>> homomorphisms(path(5), path(4), monic="V")  # fails at once: 5 vertices cannot go injectively into 4
[]
>>> len(homomorphisms(path(4), path(4), iso=True)), len(homomorphisms(path(4), loop, epic=True))
(1, 1)

The vision encoder of the paper's captioning diagram (Listing 1)
----------------------------------------------------------------
>>> import torch
>>> from torch import nn
>>> class Encoder(nn.Module):                 # CNN_x_Y ⇒ x → (v_model(x[0]), x[1])
...     def __init__(self):
...         super().__init__()
...         self.v_model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4),
...                                      nn.AdaptiveAvgPool2d(1), nn.Flatten())
...     def forward(self, x):
...         return self.v_model(x[0]), x[1]
>>> lstm, predict = nn.Linear(4, 6), nn.Linear(6, 5)   # a linear layer stands in for the LSTM
>>> nic = (ld.Diagram()
...        .space("N", data=[(torch.randn(2, 3, 8, 8), torch.randint(5, (2,)))])
...        .space("Z_I_x_Y").space("Z_L").space("Y", loss=ld.losses.cross_entropy)
...        .map("CNN_x_Y", "N", "Z_I_x_Y", Encoder())
...        .map("LSTM", "Z_I_x_Y", "Z_L", ld.io.Lambda.parse("xy -> lstm(xy[0])", {"lstm": lstm}))
...        .map("Label", "Z_I_x_Y", "Y", lambda xy: xy[1])
...        .map("Prediction", "Z_L", "Y", predict)
...        .relate("CNN_x_Y·LSTM·Prediction", "CNN_x_Y·Label"))
>>> vision = ld.Diagram().space("A").space("B").map("enc", "A", "B", None)   # one wildcard edge
>>> [m("enc") for m in homomorphisms(vision, nic)]             # structurally, any edge will do
['CNN_x_Y', 'LSTM', 'Label', 'Prediction']
>>> matches = set_eval(nic, vision, "enc", where={"enc": contains_module(nn.Conv2d)})
>>> [m("enc") for m in matches], nic.maps["CNN_x_Y"].training
(['CNN_x_Y'], False)
>>> loss = nic.compile().train()              # the encoder's BatchNorm statistics stay fixed
>>> nic.maps["CNN_x_Y"].fn.training, predict.training
(False, True)
"""

from .actions import assign_data, assign_data_each, freeze, set_eval, set_train, swap, swap_each, unfreeze
from .engine import homomorphism, homomorphisms, is_homomorphic
from .predicates import Predicate, contains_module, frozen, has_data, has_loss, is_module, trainable

__all__ = [
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
    "trainable",
    "frozen",
    "is_module",
    "contains_module",
    "has_loss",
    "has_data",
    "Predicate",
]
