"""Morphisms of learning diagrams: maps of vertices and edges that preserve sources and targets.

A :class:`DiagramMorphism` ``f: D → E`` sends every vertex of ``D`` to a vertex
of ``E`` and every edge to an edge, so that ``src(f(e)) = f(src(e))`` and
``tgt(f(e)) = f(tgt(e))`` (a graph homomorphism, the naturality square of
C-set morphisms for the schema ``E ⇉ V``). It acts on paths edge by edge.
Composition is defined once, in :meth:`DiagramMorphism.then` (``>>``).

Morphisms are structural: they say nothing about models, data or losses.
:func:`agrees` says when a part of a pattern may map to a part of a diagram
(used by homomorphism search), and colimits check that the parts they glue agree.

Laws
----
>>> import learning_diagrams as ld
>>> d = ld.Diagram().space("A").space("B").map("f", "A", "B", None).map("g", "A", "B", None)
>>> e = ld.Diagram().space("P").space("Q").map("h", "P", "Q", None)
>>> k = DiagramMorphism(d, e, {"A": "P", "B": "Q"}, {"f": "h", "g": "h"})
>>> DiagramMorphism.identity(d) >> k == k == k >> DiagramMorphism.identity(e)    # units
True
>>> k.path(d.path("f"))
Path('P', 'Q', ('h',))
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from ..core.category import Composable
from ..core.diagram import Diagram, Map, Space
from ..core.errors import NotComposableError, NotNaturalError, UnknownNameError
from ..core.graph import Path

__all__ = ["DiagramMorphism", "agrees"]


@dataclass(frozen=True, eq=False)
class DiagramMorphism(Composable):
    """A morphism ``dom → codom`` given by its vertex and edge assignments.

    Parameters
    ----------
    dom, codom : Diagram
    vertices : mapping of dom vertex to codom vertex (every vertex of dom)
    edges : mapping of dom edge to codom edge (every edge of dom)

    Raises
    ------
    NotNaturalError
        when an assignment is missing, names no part of ``codom``, or an edge's
        image does not start and end at the images of its ends.
    """

    dom: Diagram
    codom: Diagram
    vertices: Mapping[str, str]
    edges: Mapping[str, str]
    _checked: bool = field(default=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "vertices", MappingProxyType(dict(self.vertices)))
        object.__setattr__(self, "edges", MappingProxyType(dict(self.edges)))
        if not self._checked:
            self._check()

    def _check(self) -> None:
        d, e = self.dom.graph, self.codom.graph
        for kind, assignment, parts, target in (
            ("vertex", self.vertices, d.vertices, e.has_vertex),
            ("edge", self.edges, d.edges, e.has_edge),
        ):
            missing = [p for p in parts if p not in assignment]
            if missing:
                raise NotNaturalError(f"no image given for {kind} {', '.join(map(repr, missing))}")
            extra = [p for p in assignment if p not in parts]
            if extra:
                raise NotNaturalError(f"{kind} {', '.join(map(repr, extra))} is not in the domain")
            wrong = [f"{p!r} → {assignment[p]!r}" for p in parts if not target(assignment[p])]
            if wrong:
                raise NotNaturalError(f"{kind} image {', '.join(wrong)} is not in the codomain")
        for edge, image in self.edges.items():
            ends = (self.vertices[d.src(edge)], self.vertices[d.tgt(edge)])
            if ends != (e.src(image), e.tgt(image)):
                raise NotNaturalError(
                    f"edge {edge!r}: {d.src(edge)} → {d.tgt(edge)} is sent to {image!r}: "
                    f"{e.src(image)} → {e.tgt(image)}, but its ends go to {ends[0]} → {ends[1]}"
                )

    @classmethod
    def identity(cls, diagram: Diagram) -> DiagramMorphism:
        """The identity morphism of ``diagram``."""
        g = diagram.graph
        return cls(diagram, diagram, {v: v for v in g.vertices}, {e: e for e in g.edges}, _checked=True)

    def then(self, other: DiagramMorphism) -> DiagramMorphism:
        """``self`` followed by ``other``; the codomain of one must be the domain of the other."""
        if other.dom is not self.codom:
            raise NotComposableError(
                "morphisms do not compose: the first one's codomain is not the second one's domain"
            )
        return DiagramMorphism(
            self.dom,
            other.codom,
            {v: other.vertices[w] for v, w in self.vertices.items()},
            {e: other.edges[f] for e, f in self.edges.items()},
            _checked=True,
        )

    def path(self, path: Path) -> Path:
        """The image of a path of the domain."""
        return Path(self.vertices[path.source], self.vertices[path.target], tuple(self.edges[e] for e in path.edges))

    def __call__(self, part: str) -> str:
        """The image of a vertex or edge name of the domain."""
        if part in self.vertices:
            return self.vertices[part]
        if part in self.edges:
            return self.edges[part]
        raise UnknownNameError(f"{part!r} is no vertex or edge of the domain")

    def is_monic(self, parts: str = "VE") -> bool:
        """Whether the morphism is injective on vertices (``"V"``), edges (``"E"``) or both."""
        maps = {"V": self.vertices, "E": self.edges}
        return all(len(set(maps[p].values())) == len(maps[p]) for p in parts)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, DiagramMorphism):
            return NotImplemented
        return (
            self.dom is other.dom
            and self.codom is other.codom
            and dict(self.vertices) == dict(other.vertices)
            and dict(self.edges) == dict(other.edges)
        )

    def __hash__(self) -> int:
        return hash(
            (id(self.dom), id(self.codom), tuple(sorted(self.vertices.items())), tuple(sorted(self.edges.items())))
        )

    def __repr__(self) -> str:
        v = ", ".join(f"{a}↦{b}" for a, b in self.vertices.items())
        e = ", ".join(f"{a}↦{b}" for a, b in self.edges.items())
        return f"DiagramMorphism(V: {v}; E: {e})"


def agrees(pattern: Space | Map, part: Space | Map) -> bool:
    """Whether a pattern's part may map to ``part``: every attribute the pattern sets is the same.

    A pattern space with no data, loss or type, and a pattern map whose ``fn``
    is ``None``, match anything (wildcards). Models and data are compared by
    identity, losses and types by equality; a map's ``trainable`` flag is
    compared only when the pattern sets a function.
    """
    if isinstance(pattern, Map):
        assert isinstance(part, Map), "a pattern's edge maps to an edge"
        return pattern.fn is None or (pattern.fn is part.fn and pattern.trainable == part.trainable)
    assert isinstance(part, Space), "a pattern's vertex maps to a vertex"
    return (
        (pattern.data is None or pattern.data is part.data)
        and (pattern.loss is None or pattern.loss == part.loss)
        and (pattern.type is None or pattern.type == part.type)
    )
