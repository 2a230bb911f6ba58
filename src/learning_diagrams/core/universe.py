"""The universe of a preorder on paths: which paths it relates, and where a path occurs inside them.

The preorder a diagram's relations generate (:mod:`learning_diagrams.core.order`)
is computed on the paths the diagram considers: every path it enumerates (simple
paths or walks within ``max_length``) and the relations' own paths. Closing a
relation under whiskering asks two questions of that set, and only two: is a path
in it, and which of its paths contain a given path ``s``, as ``a·s·b``?

Two universes answer them:

* :class:`Enumerated`, a finite set of paths listed in advance, indexed by where
  each edge occurs in them;
* :class:`Bounded`, every path of at most ``max_length`` edges of an acyclic graph
  (or every walk of at most ``max_length`` edges of any graph), plus some given
  paths, never listed: membership is a check of the path, and the paths around
  ``s`` are found by walking back from its source and on from its target.

They answer alike where both apply (tested on random graphs). The second is what a
large diagram needs: ``n`` few-shot squares glued along one backbone have ``n²``
paths (every support set reaches every head), while a relation's whiskerings there
are a handful. :func:`universe` picks it whenever it applies.

>>> from learning_diagrams.core.graph import Graph
>>> g = Graph()
>>> for v in "NXY": g.add_vertex(v)
>>> for e, s, t in [("x", "N", "X"), ("f", "X", "Y"), ("g", "X", "Y")]: g.add_edge(e, s, t)
>>> u = universe(g, [])
>>> type(u).__name__, g.path("x·f") in u
('Bounded', True)
>>> sorted((a, b, str(x)) for a, b, x in u.contexts(g.path("f")))
[((), (), 'f'), (('x',), (), 'x·f')]
>>> [str(x) for _, _, x in universe(g, [], max_length=1).contexts(g.path("f"))]   # x·f is too long
['f']
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator
from graphlib import CycleError, TopologicalSorter

from .graph import Graph, Path
from .paths import DEFAULT_MAX_PATHS, check_cycles, enumerate_paths, path_bound

__all__ = ["Universe", "Enumerated", "Bounded", "universe", "count_paths"]

#: A context of ``s`` in a universe: ``(a, b, x)`` with ``x = a·s·b`` (``a`` and ``b`` edge names).
Context = tuple[tuple[str, ...], tuple[str, ...], Path]


class Universe:
    """The paths a preorder relates: ``path in universe`` and :meth:`contexts` (each found once, then kept)."""

    def __init__(self, graph: Graph):
        self.graph = graph
        self._found: dict[Path, list[Context]] = {}

    def __contains__(self, path: object) -> bool:
        raise NotImplementedError

    def contexts(self, s: Path) -> list[Context]:
        """Every ``(a, b, x)`` with ``x = a·s·b`` in the universe (in no particular order)."""
        found = self._found.get(s)
        if found is None:
            found = self._found[s] = list(self._search(s))
        return found

    def _search(self, s: Path) -> Iterator[Context]:
        raise NotImplementedError


class Enumerated(Universe):
    """A finite set of paths of ``graph``, given in advance.

    The contexts of a path are found through an index of where each edge (and,
    for an identity, each vertex) occurs in the set, built on first use in time
    linear in the set's total length; then each path's contexts cost the
    occurrences of its rarest edge.
    """

    def __init__(self, graph: Graph, paths: Iterable[Path]):
        super().__init__(graph)
        self.paths = frozenset(paths)
        self._edges: dict[str, list[tuple[Path, int]]] | None = None
        self._vertices: dict[str, list[tuple[Path, int]]] | None = None

    def __contains__(self, path: object) -> bool:
        return path in self.paths

    def __iter__(self) -> Iterator[Path]:
        return iter(self.paths)

    def __len__(self) -> int:
        return len(self.paths)

    def _search(self, s: Path) -> Iterator[Context]:
        if not s.edges:
            for x, i in self._by_vertex().get(s.source, ()):
                yield x.edges[:i], x.edges[i:], x
            return
        # The edges fix the vertices along s, so matching them is enough. Through its rarest edge:
        # an edge that starts a shared backbone occurs in every path through the backbone.
        by_edge, n = self._by_edge(), len(s.edges)
        k = min(range(n), key=lambda i: len(by_edge.get(s.edges[i], ())))
        for x, i in by_edge.get(s.edges[k], ()):
            start = i - k
            if start >= 0 and x.edges[start : start + n] == s.edges:
                yield x.edges[:start], x.edges[start + n :], x

    def _by_edge(self) -> dict[str, list[tuple[Path, int]]]:
        """Each edge's occurrences ``(x, i)``, ``x.edges[i]`` being the edge."""
        if self._edges is None:
            index: dict[str, list[tuple[Path, int]]] = defaultdict(list)
            for x in self.paths:
                for i, e in enumerate(x.edges):
                    index[e].append((x, i))
            self._edges = dict(index)
        return self._edges

    def _by_vertex(self) -> dict[str, list[tuple[Path, int]]]:
        """Each vertex's occurrences ``(x, i)``, the vertex being the ``i``-th that ``x`` visits."""
        if self._vertices is None:
            index: dict[str, list[tuple[Path, int]]] = defaultdict(list)
            for x in self.paths:
                for i, v in enumerate(self.graph.vertices_along(x)):
                    index[v].append((x, i))
            self._vertices = dict(index)
        return self._vertices


class Bounded(Universe):
    """Every path of at most ``max_length`` edges of ``graph`` (``None``: no bound), and ``extra`` paths.

    Without cycles in the graph every path uses each edge once, so these are the
    simple paths the diagram enumerates; with cycles they are every walk, and
    ``max_length`` is needed. Nothing is listed: a path is a member when its edges
    follow one another (and it is short enough) or it is one of ``extra``; the
    contexts of ``s`` are every path ``a`` into its source times every path ``b``
    out of its target that keep ``a·s·b`` within the bound, plus the occurrences
    of ``s`` in those ``extra`` paths the bound leaves out.
    """

    def __init__(self, graph: Graph, extra: Iterable[Path] = (), max_length: int | None = None):
        super().__init__(graph)
        self.max_length = max_length
        self._ends = dict(graph.ends)
        self._into: dict[str, list[str]] = {v: list(graph.in_edges(v)) for v in graph.vertices}
        self._out: dict[str, list[str]] = {v: list(graph.out_edges(v)) for v in graph.vertices}
        self.extra = frozenset(extra)
        self._beyond = [x for x in self.extra if not self._bounded(x)]  # the extra paths the bound leaves out

    def __contains__(self, path: object) -> bool:
        return isinstance(path, Path) and (path in self.extra or self._bounded(path))

    def _bounded(self, path: Path) -> bool:
        """Whether ``path`` is a path of the graph of at most ``max_length`` edges."""
        if self.max_length is not None and len(path.edges) > self.max_length:
            return False
        at, ends = path.source, self._ends
        if at not in self._out:
            return False
        for e in path.edges:
            s_t = ends.get(e)
            if s_t is None or s_t[0] != at:
                return False
            at = s_t[1]
        return at == path.target

    def _search(self, s: Path) -> Iterator[Context]:
        room = None if self.max_length is None else self.max_length - len(s.edges)
        if room is None or room >= 0:
            ends = self._ends
            for a in self._walks(s.source, room, self._into, backward=True):
                start = ends[a[0]][0] if a else s.source
                for b in self._walks(s.target, None if room is None else room - len(a), self._out, backward=False):
                    yield a, b, Path(start, ends[b[-1]][1] if b else s.target, a + s.edges + b)
        for x in self._beyond:
            yield from _occurrences(self.graph, s, x)

    def _walks(
        self, v: str, most: int | None, adjacent: dict[str, list[str]], *, backward: bool
    ) -> Iterator[tuple[str, ...]]:
        """The edges of every path of at most ``most`` edges that ends at ``v`` (backward) or starts there."""
        yield ()
        frontier: list[tuple[tuple[str, ...], str]] = [((), v)]
        depth, ends, side = 0, self._ends, 0 if backward else 1
        while frontier and (most is None or depth < most):
            depth += 1
            following = []
            for edges, u in frontier:
                for e in adjacent[u]:
                    longer = (e,) + edges if backward else edges + (e,)
                    following.append((longer, ends[e][side]))
                    yield longer
            frontier = following


def _occurrences(graph: Graph, s: Path, x: Path) -> Iterator[Context]:
    """Every way ``x = a·s·b`` (several where a walk passes ``s`` more than once)."""
    n = len(s.edges)
    along = graph.vertices_along(x)
    for i in range(len(x.edges) - n + 1):
        if x.edges[i : i + n] == s.edges and along[i] == s.source:
            yield x.edges[:i], x.edges[i + n :], x


def count_paths(graph: Graph, max_length: int | None, stop: int) -> int:
    """How many walks of at most ``max_length`` edges ``graph`` has (identities included), or a number past ``stop``.

    Counted, not built: the walks of ``k + 1`` edges ending at each vertex are those
    of ``k`` edges ending at its edges' sources, each extended. On an acyclic graph
    with ``max_length=None`` this is every path.

    >>> g = Graph(); g.add_vertex("A"); g.add_vertex("B")
    >>> for e in "fg": g.add_edge(e, "A", "B")
    >>> count_paths(g, None, 100)                      # A, B, f, g
    4
    """
    ending = dict.fromkeys(graph.vertices, 1)
    total, length = len(ending), 0
    while total <= stop and any(ending.values()) and (max_length is None or length < max_length):
        length += 1
        following = dict.fromkeys(ending, 0)
        for s, t in graph.ends.values():
            following[t] += ending[s]
        ending = following
        total += sum(ending.values())
    return total


def universe(
    graph: Graph,
    extra: Iterable[Path],
    *,
    max_length: int | None = None,
    max_paths: int = DEFAULT_MAX_PATHS,
    cycles: str = "simple",
) -> Universe:
    """The paths a diagram considers: those :func:`~learning_diagrams.core.paths.enumerate_paths` finds, and ``extra``.

    A :class:`Bounded` universe when it holds the same paths (walks, or a graph
    without cycles), else the paths enumerated. Either way a graph with more paths
    than :func:`~learning_diagrams.core.paths.path_bound` allows raises the
    enumeration's :class:`~learning_diagrams.core.errors.PathExplosionError`: the
    guard does not depend on how the paths are kept.
    """
    check_cycles(cycles, max_length)
    extra = list(extra)
    bound = path_bound(graph, max_paths)
    if (cycles == "walks" or _acyclic(graph)) and count_paths(graph, max_length, bound) <= bound:
        return Bounded(graph, extra, max_length)
    found = enumerate_paths(graph, max_length=max_length, max_paths=max_paths, cycles=cycles)
    return Enumerated(graph, [*found, *extra])


def _acyclic(graph: Graph) -> bool:
    """Whether ``graph`` has no directed cycle (a loop is one)."""
    try:
        TopologicalSorter(_sources_of(graph)).prepare()
    except CycleError:
        return False
    return True


def _sources_of(graph: Graph) -> dict[str, list[str]]:
    """Each vertex with the sources of the edges into it: the graph as graphlib reads it."""
    into: dict[str, list[str]] = {v: [] for v in graph.vertices}
    for s, t in graph.ends.values():
        into[t].append(s)
    return into
