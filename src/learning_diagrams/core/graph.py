"""Learning graphs: directed multigraphs with named vertices and edges, and their paths.

This is the syntax of a learning diagram, with no models or data attached.
Parallel edges and self-loops are allowed. A :class:`Path` is a sequence of
composable edges, or the identity path of a vertex; composition is
concatenation, defined once in :meth:`Path.then` (``>>`` is its alias).

Laws
----
>>> g = Graph(); g.add_vertex("N"); g.add_vertex("X"); g.add_vertex("Y")
>>> g.add_edge("x", "N", "X"); g.add_edge("f", "X", "Y"); g.add_edge("loop", "Y", "Y")
>>> p, q, r = g.path("x"), g.path("f"), g.path("loop")
>>> (p >> q) >> r == p >> (q >> r)                              # associativity
True
>>> Path.id("N") >> p == p == p >> Path.id("X")                 # units
True
>>> str(p >> q), str(Path.id("N")), g.path("x.f") == g.path("x·f") == g.path(["x", "f"])
('x·f', 'id(N)', True)
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from types import MappingProxyType
from typing import Iterable, Iterator, Mapping, Sequence, Union

from .category import Composable
from .errors import DuplicateNameError, InvalidNameError, NotComposableError, UnknownNameError
from .messages import NOT_COMPOSABLE

__all__ = ["Path", "Graph", "PathLike"]

#: The separators accepted between edge names in a path string.
_SEPARATOR = re.compile(r"\s*[·.]\s*")
_IDENTITY = re.compile(r"^\s*id\(\s*([^()\s]+)\s*\)\s*$")


@dataclass(frozen=True)
class Path(Composable):
    """A path in a learning graph: ``edges`` composed left to right, from ``source`` to ``target``.

    The identity path of a vertex has no edges. Paths are plain values (hashable,
    ordered by their fields); :meth:`Graph.path` builds them with every check.

    >>> Path("N", "Y", ("x", "f"))
    Path('N', 'Y', ('x', 'f'))
    >>> len(Path.id("N")), Path.id("N").is_identity
    (0, True)
    """

    source: str
    target: str
    edges: tuple[str, ...] = ()

    @classmethod
    def id(cls, vertex: str) -> Path:
        """The identity path of ``vertex``."""
        return cls(vertex, vertex, ())

    @property
    def is_identity(self) -> bool:
        return not self.edges

    def then(self, other: Path) -> Path:
        """Compose ``self`` then ``other``; the target of one must be the source of the other.

        >>> Path("A", "B", ("f",)) >> Path("C", "D", ("g",))
        Traceback (most recent call last):
        ...
        learning_diagrams.core.errors.NotComposableError: f does not compose with g: B != C
        """
        if self.target != other.source:
            raise NotComposableError(NOT_COMPOSABLE.format(self, other, self.target, other.source))
        return Path(self.source, other.target, self.edges + other.edges)

    def __len__(self) -> int:
        return len(self.edges)

    def __str__(self) -> str:
        return "·".join(self.edges) if self.edges else f"id({self.source})"

    def __repr__(self) -> str:
        return f"Path({self.source!r}, {self.target!r}, {self.edges!r})"


#: What the API accepts wherever a path is expected.
PathLike = Union[Path, str, Sequence[str]]


def check_name(name: object, kind: str) -> str:
    """Return ``name`` if it can name a vertex or edge, else raise :class:`InvalidNameError`.

    Names are Python identifiers without ``·`` (which Python allows inside
    identifiers), so they never clash with the path separators ``·`` and ``.``
    and can key a ``torch.nn.ModuleDict``.
    """
    if not isinstance(name, str) or not name.isidentifier() or "·" in name:
        raise InvalidNameError(
            f"{kind} name {name!r} is not an identifier: use letters, digits and '_', "
            f"not starting with a digit (e.g. 'Z_I_x_Y')"
        )
    return name


class Graph:
    """A directed multigraph ``(V, E, src, tgt)`` with named vertices and edges.

    Vertices and edges keep their insertion order, which fixes every
    enumeration order downstream.

    >>> g = Graph(); g.add_vertex("A"); g.add_edge("f", "A", "A"); g.add_edge("g", "A", "A")
    >>> g.vertices, g.edges, g.src("f"), g.out_edges("A"), g.in_edges("A")
    (('A',), ('f', 'g'), 'A', ('f', 'g'), ('f', 'g'))
    """

    def __init__(self) -> None:
        self._vertices: dict[str, None] = {}
        self._ends: dict[str, tuple[str, str]] = {}
        self._out: dict[str, list[str]] = {}
        self._in: dict[str, list[str]] = {}

    # -- building -----------------------------------------------------------
    def add_vertex(self, name: str) -> None:
        check_name(name, "vertex")
        if name in self._vertices:
            raise DuplicateNameError(f"vertex {name!r} is declared twice")
        self._vertices[name] = None
        self._out[name] = []
        self._in[name] = []

    def add_edge(self, name: str, src: str, tgt: str) -> None:
        check_name(name, "edge")
        if name in self._ends:
            s, t = self._ends[name]
            raise DuplicateNameError(f"edge {name!r} is declared twice (first as {s} → {t})")
        for end in (src, tgt):
            self._require_vertex(end, f"edge {name!r}")
        self._ends[name] = (src, tgt)
        self._out[src].append(name)
        self._in[tgt].append(name)

    # -- reading ------------------------------------------------------------
    @property
    def vertices(self) -> tuple[str, ...]:
        return tuple(self._vertices)

    @property
    def edges(self) -> tuple[str, ...]:
        return tuple(self._ends)

    @property
    def ends(self) -> Mapping[str, tuple[str, str]]:
        """Each edge's ``(source, target)``, in declaration order: a read-only view, not a copy."""
        return MappingProxyType(self._ends)

    def src(self, edge: str) -> str:
        return self._ends[self._require_edge(edge)][0]

    def tgt(self, edge: str) -> str:
        return self._ends[self._require_edge(edge)][1]

    def out_edges(self, vertex: str) -> tuple[str, ...]:
        return tuple(self._out[self._require_vertex(vertex)])

    def in_edges(self, vertex: str) -> tuple[str, ...]:
        return tuple(self._in[self._require_vertex(vertex)])

    def has_vertex(self, name: str) -> bool:
        return name in self._vertices

    def has_edge(self, name: str) -> bool:
        return name in self._ends

    def vertices_along(self, path: Path) -> tuple[str, ...]:
        """The ``len(path) + 1`` vertices a path visits, in order."""
        return (path.source,) + tuple(self._ends[e][1] for e in path.edges)

    # -- paths --------------------------------------------------------------
    def path(self, spec: PathLike) -> Path:
        """Build a checked :class:`Path` from a string, a list of edge names or a path.

        Strings join edge names with ``·`` or ``.``; ``"id(X)"`` is the identity of X.

        >>> g = Graph(); g.add_vertex("A"); g.add_vertex("B"); g.add_edge("f", "A", "B")
        >>> g.path("f.f")
        Traceback (most recent call last):
        ...
        learning_diagrams.core.errors.NotComposableError: path 'f·f' does not compose: f ends at B but f starts at A
        >>> g.path("h")
        Traceback (most recent call last):
        ...
        learning_diagrams.core.errors.UnknownNameError: path 'h' names no edge 'h' (edges: f)
        """
        if isinstance(spec, Path):
            edges, identity = spec.edges, (spec.source if not spec.edges else None)
        elif isinstance(spec, str):
            match = _IDENTITY.match(spec)
            identity = match.group(1) if match else None
            edges = () if match else tuple(_SEPARATOR.split(spec.strip()))
        elif isinstance(spec, Iterable):
            edges, identity = tuple(spec), None
        else:
            raise UnknownNameError(f"{spec!r} is not a path: give 'a·b', 'a.b', ['a', 'b'] or 'id(X)'")
        if identity is not None:
            self._require_vertex(identity, f"identity path id({identity})")
            return Path.id(identity)
        if not edges:
            raise UnknownNameError("an empty list of edges does not say which vertex's identity it is: write 'id(X)'")
        text = "·".join(map(str, edges))
        for e in edges:
            if e not in self._ends:
                known = ", ".join(self._ends) or "none"
                raise UnknownNameError(f"path {text!r} names no edge {e!r} (edges: {known})")
        for e, f in zip(edges, edges[1:]):
            if self._ends[e][1] != self._ends[f][0]:
                raise NotComposableError(
                    f"path {text!r} does not compose: {e} ends at {self._ends[e][1]} "
                    f"but {f} starts at {self._ends[f][0]}"
                )
        return Path(self._ends[edges[0]][0], self._ends[edges[-1]][1], edges)

    def __iter__(self) -> Iterator[str]:
        return iter(self._vertices)

    def __repr__(self) -> str:
        edges = ", ".join(f"{e}: {s} → {t}" for e, (s, t) in self._ends.items())
        return f"Graph(vertices={list(self._vertices)}, edges=[{edges}])"

    # -- errors -------------------------------------------------------------
    def _require_vertex(self, name: str, where: str = "") -> str:
        if name not in self._vertices:
            known = ", ".join(self._vertices) or "none"
            at = f"{where} refers to " if where else ""
            raise UnknownNameError(f"{at}no vertex named {name!r} (vertices: {known})")
        return name

    def _require_edge(self, name: str) -> str:
        if name not in self._ends:
            known = ", ".join(self._ends) or "none"
            raise UnknownNameError(f"no edge named {name!r} (edges: {known})")
        return name
