"""Path enumeration by powers of a set-of-paths matrix (the paper's section 3.2).

A learning graph is written as a V×V matrix whose entry ``(u, v)`` is the set
of edges from ``u`` to ``v``. Over sets of paths, "product" is concatenation
and "sum" is union, so the ordinary matrix product gives the paths of length
``k`` as the ``k``-th power, and ``I + A + A² + …`` gives every path. Entries
with more than one path hold the parallel pairs.

Cycle policy (:data:`CYCLES`): by default (``"simple"``) a path never uses the
same edge twice, so the powers become zero after at most ``|E|`` steps and
enumeration always ends; ``max_length`` bounds it further. ``"walks"`` is the
paper's product as it stands, every walk of at most ``max_length`` edges
(``I + A + … + A^k``); it needs the bound, since a cycle has walks of every
length. The number of paths can still grow exponentially with the number of
edges: past ``max_paths`` (per 1,000 vertices and edges of a larger graph, see
:func:`path_bound`) enumeration stops with a :class:`PathExplosionError`.

Laws
----
>>> from learning_diagrams.core.graph import Graph
>>> g = Graph()
>>> for v in "NXZ": g.add_vertex(v)
>>> g.add_edge("x", "N", "X"); g.add_edge("enc", "X", "Z"); g.add_edge("dec", "Z", "X")
>>> A, I = PathMatrix.adjacency(g), PathMatrix.identity(g)
>>> (A @ A) @ A == A @ (A @ A) and I @ A == A == A @ I           # a semiring of path sets
True
>>> [str(p) for p in enumerate_paths(g)["N", "X"]]               # the autoencoder's pair
['x', 'x·enc·dec']
>>> AA = A.times(A, simple=False)                                # walks: the product as it stands
>>> AA.times(A, simple=False) == A.times(AA, simple=False)
True
>>> [str(p) for p in enumerate_paths(g, cycles="walks", max_length=5)["N", "X"]]
['x', 'x·enc·dec', 'x·enc·dec·enc·dec']
"""

from __future__ import annotations

import gc
from collections import Counter
from contextlib import contextmanager
from itertools import combinations
from typing import Callable, Iterable, Iterator, Mapping, Sequence

from .errors import OptionError, PathExplosionError
from .graph import Graph, Path
from .messages import PATH_ALLOWANCE, PATH_EXPLOSION

__all__ = [
    "PathMatrix",
    "enumerate_paths",
    "parallel_paths",
    "edge_order",
    "path_order",
    "check_cycles",
    "path_bound",
    "DEFAULT_MAX_PATHS",
    "GUARD_UNIT",
    "CYCLES",
]

#: Default cap on the number of enumerated paths (see :func:`enumerate_paths`).
DEFAULT_MAX_PATHS = 10_000

#: A graph of more than this many vertices and edges may have ``max_paths`` paths per this many
#: (see :func:`path_bound`).
GUARD_UNIT = 1_000

#: How path enumeration treats cycles: ``"simple"`` paths use no edge twice (the default);
#: ``"walks"`` are every walk of length ≤ ``max_length`` (the paper's I + A + … + A^k).
CYCLES = ("simple", "walks")


class PathMatrix:
    """A V×V matrix whose entries are finite sets of paths, kept in a fixed order.

    Only non-empty entries are stored. ``+`` is entrywise union, ``@`` the
    generalised matrix product: ``(A @ B)[u, w]`` holds every ``p·q`` with
    ``p`` in ``A[u, v]`` and ``q`` in ``B[v, w]`` that uses no edge twice;
    :meth:`times` with ``simple=False`` keeps every ``p·q`` (walks).
    """

    def __init__(self, vertices: Sequence[str], entries: Mapping[tuple[str, str], Iterable[Path]] | None = None):
        self.vertices = tuple(vertices)
        self._entries: dict[tuple[str, str], tuple[Path, ...]] = {}
        for key, paths in dict(entries or {}).items():
            unique = tuple(dict.fromkeys(paths))
            if unique:
                self._entries[key] = unique

    @classmethod
    def _trusted(cls, vertices: Sequence[str], entries: dict[tuple[str, str], tuple[Path, ...]]) -> PathMatrix:
        """A matrix of entries correct by construction (non-empty, no path twice), taken as they are."""
        matrix = cls.__new__(cls)
        matrix.vertices, matrix._entries = tuple(vertices), entries
        return matrix

    @classmethod
    def adjacency(cls, graph: Graph) -> PathMatrix:
        """The matrix of single edges."""
        entries: dict[tuple[str, str], list[Path]] = {}
        for e in graph.edges:
            s, t = graph.src(e), graph.tgt(e)
            entries.setdefault((s, t), []).append(Path(s, t, (e,)))
        return cls(graph.vertices, entries)

    @classmethod
    def identity(cls, graph: Graph, rows: Iterable[str] | None = None) -> PathMatrix:
        """The identity paths, on the diagonal; with ``rows``, only those rows."""
        rows = graph.vertices if rows is None else tuple(rows)
        return cls(graph.vertices, {(v, v): [Path.id(v)] for v in rows})

    def __getitem__(self, key: tuple[str, str]) -> tuple[Path, ...]:
        return self._entries.get(key, ())

    def items(self) -> Iterator[tuple[tuple[str, str], tuple[Path, ...]]]:
        return iter(self._entries.items())

    def __iter__(self) -> Iterator[Path]:
        """Every path in the matrix, entry by entry."""
        for paths in self._entries.values():
            yield from paths

    def __len__(self) -> int:
        return sum(len(paths) for paths in self._entries.values())

    def __bool__(self) -> bool:
        return bool(self._entries)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, PathMatrix):
            return NotImplemented
        return {k: set(v) for k, v in self.items()} == {k: set(v) for k, v in other.items()}

    def __add__(self, other: PathMatrix) -> PathMatrix:
        entries = {k: list(v) for k, v in self.items()}
        for key, paths in other.items():
            entries.setdefault(key, []).extend(paths)
        return PathMatrix(self.vertices, entries)

    def __matmul__(self, other: PathMatrix) -> PathMatrix:
        return self.times(other)

    def times(self, other: PathMatrix, *, simple: bool = True) -> PathMatrix:
        """The product: every ``p·q`` of ``p`` in ``self[u, v]`` and ``q`` in ``other[v, w]``.

        ``simple=True`` (``@``) keeps only the concatenations that use no edge twice.
        """
        rows_of_other: dict[str, list[tuple[str, tuple[Path, ...]]]] = {}
        for (v, w), paths in other.items():
            rows_of_other.setdefault(v, []).append((w, paths))
        entries: dict[tuple[str, str], list[Path]] = {}
        for (u, v), left in self.items():
            for w, right in rows_of_other.get(v, ()):
                out = entries.setdefault((u, w), [])
                for p in left:
                    if simple:
                        used = set(p.edges)
                        out.extend(p.then(q) for q in right if used.isdisjoint(q.edges))
                    else:
                        out.extend(p.then(q) for q in right)
        return PathMatrix(self.vertices, entries)

    def merged(self, extra: Mapping[tuple[str, str], Iterable[Path]], order: Mapping[str, int]) -> PathMatrix:
        """``(self + extra).sorted(order)`` for a sorted matrix, sorting only the entries ``extra`` adds to.

        >>> g = Graph(); g.add_vertex("A"); g.add_edge("f", "A", "A")
        >>> m = enumerate_paths(g); extra = {("A", "A"): [g.path("f·f")]}
        >>> m.merged(extra, edge_order(g)) == (m + PathMatrix(g.vertices, extra)).sorted(edge_order(g))
        True
        """
        entries = dict(self._entries)
        for key, paths in extra.items():
            entries[key] = tuple(sorted(dict.fromkeys(entries.get(key, ()) + tuple(paths)), key=_sort_key(order)))
        return PathMatrix._trusted(self.vertices, {k: v for k, v in entries.items() if v})

    def sorted(self, order: Mapping[str, int]) -> PathMatrix:
        """The same sets, each ordered by length, then by ``order`` of edges lexicographically."""

        return PathMatrix(self.vertices, {k: sorted(v, key=_sort_key(order)) for k, v in self.items()})

    def __repr__(self) -> str:
        body = "; ".join(f"{u}→{v}: {', '.join(map(str, ps))}" for (u, v), ps in self.items())
        return f"PathMatrix({body})"


def _sort_key(order: Mapping[str, int]) -> Callable[[Path], tuple]:
    """A path's place: its length, then its edges' places in ``order``, compared lexicographically."""

    def key(p: Path) -> tuple:
        return (len(p), tuple(order[e] for e in p.edges))

    return key


def path_order(graph: Graph) -> Callable[[Path], tuple]:
    """The key that orders a path matrix's entries: length, then the edges' declaration order.

    >>> g = Graph(); g.add_vertex("A")
    >>> for e in "ba": g.add_edge(e, "A", "A")
    >>> sorted([g.path("a"), g.path("b·a"), g.path("b")], key=path_order(g))
    [Path('A', 'A', ('b',)), Path('A', 'A', ('a',)), Path('A', 'A', ('b', 'a'))]
    """
    return _sort_key(edge_order(graph))


def edge_order(graph: Graph) -> dict[str, int]:
    """Each edge's place in declaration order, the order :meth:`PathMatrix.sorted` compares paths by."""
    return {e: i for i, e in enumerate(graph.edges)}


def check_cycles(cycles: object, max_length: object) -> None:
    """Raise :class:`OptionError` unless ``cycles`` is one of :data:`CYCLES` and ``max_length`` fits it.

    ``max_length`` is ``None`` or an int ≥ 0, and ``"walks"`` needs it.

    >>> check_cycles("walks", None)
    Traceback (most recent call last):
    ...
    learning_diagrams.core.errors.OptionError: cycles='walks' needs max_length=k: a cycle has walks of every length, so enumeration would not end; give the longest walk to consider, e.g. Diagram(cycles='walks', max_length=4)
    """
    if cycles not in CYCLES:
        raise OptionError(f"cycles={cycles!r} is not one of {', '.join(map(repr, CYCLES))}")
    if max_length is not None and (isinstance(max_length, bool) or not isinstance(max_length, int) or max_length < 0):
        raise OptionError(f"max_length must be None or an int of at least 0, got {max_length!r}")
    if cycles == "walks" and max_length is None:
        raise OptionError(
            "cycles='walks' needs max_length=k: a cycle has walks of every length, so enumeration would "
            "not end; give the longest walk to consider, e.g. Diagram(cycles='walks', max_length=4)"
        )


@contextmanager
def collector_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector while paths are built in bulk, and restore it after.

    Paths, their tuples and the dicts and sets that index them hold no reference
    cycles, so the collector finds nothing to reclaim among them; but it counts
    their allocations, and rescans every live object as they pile up: more than
    half the time of enumerating and closing 200,000 paths. Reference counting
    frees them as usual. If the collector is already off, it stays off.

    >>> with collector_paused(): gc.isenabled()
    False
    >>> gc.isenabled()
    True
    """
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def path_bound(graph: Graph, max_paths: int = DEFAULT_MAX_PATHS) -> int:
    """The most paths :func:`enumerate_paths` finds in ``graph`` before it raises.

    ``max_paths`` on a graph of at most :data:`GUARD_UNIT` vertices and edges, and
    ``max_paths`` per :data:`GUARD_UNIT` of them on a larger one (10 per vertex and edge
    at the default), so that a diagram whose paths grow linearly with its size
    compiles however large it is, while paths that multiply with each step still
    trip the guard within a few steps.

    >>> g = Graph()
    >>> for i in range(600): g.add_vertex(f"V{i}")
    >>> path_bound(g), path_bound(g, 100)
    (10000, 100)
    >>> for i in range(599): g.add_edge(f"e{i}", f"V{i}", f"V{i + 1}")
    >>> path_bound(g), path_bound(g, 100)            # 1,199 vertices and edges
    (11990, 119)
    """
    size = len(graph.vertices) + len(graph.ends)
    return max(max_paths, max_paths * size // GUARD_UNIT)


def enumerate_paths(
    graph: Graph,
    sources: Iterable[str] | None = None,
    *,
    max_length: int | None = None,
    max_paths: int = DEFAULT_MAX_PATHS,
    cycles: str = "simple",
) -> PathMatrix:
    """Every path of ``graph`` that uses no edge twice, or every walk, as ``I + A + A² + …``.

    Parameters
    ----------
    graph : Graph
    sources : iterable of vertex names, optional
        Only the rows of these vertices (default: all vertices).
    max_length : int, optional
        Longest path kept (default: no bound beyond the number of edges); required with walks.
    max_paths : int
        Raise :class:`PathExplosionError` once more paths than this are found; on a graph of
        more than :data:`GUARD_UNIT` vertices and edges, this many per :data:`GUARD_UNIT` of
        them (:func:`path_bound`).
    cycles : {"simple", "walks"}
        ``"simple"``: paths that use no edge twice; ``"walks"``: every walk of at
        most ``max_length`` edges, the paper's ``I + A + … + A^k`` (see :data:`CYCLES`).

    Returns
    -------
    PathMatrix
        Each entry ordered shortest first, then by the declaration order of the
        edges, compared lexicographically; the entries in the order the powers of
        the matrix first reach them.

    Notes
    -----
    The number of paths can be exponential in the number of edges (a chain of
    ``n`` doubled edges has ``2**n`` paths), and the number of walks in
    ``max_length`` (``|E|**k`` on one vertex with ``|E|`` loops). The guard bounds
    what is built: past :func:`path_bound` paths, the rest of the length being
    enumerated is only counted, for the message. Below it the cost is linear in
    the number of paths times their length: each row of ``A^(k+1)`` is its row of
    ``A^k`` with every path extended by the out-edges of its end, in declaration
    order, which keeps every entry sorted without sorting it.

    >>> g = Graph(); g.add_vertex("A")
    >>> for e in "abc": g.add_edge(e, "A", "A")
    >>> len(enumerate_paths(g)), len(enumerate_paths(g, max_length=1))     # 1 + 3 + 6 + 6, 1 + 3
    (16, 4)
    >>> len(enumerate_paths(g, cycles="walks", max_length=2))              # 1 + 3 + 9
    13
    >>> enumerate_paths(g, max_paths=10)
    Traceback (most recent call last):
    ...
    learning_diagrams.core.errors.PathExplosionError: path enumeration found 16 paths, more than max_paths=10, by length 3; most of them (16) from A to A. Bound it with max_length=..., raise max_paths=..., or remove cycles
    """
    check_cycles(cycles, max_length)
    with collector_paused():
        return _enumerate(graph, sources, max_length, path_bound(graph, max_paths), max_paths, cycles == "simple")


def _enumerate(
    graph: Graph, sources: Iterable[str] | None, max_length: int | None, bound: int, max_paths: int, simple: bool
) -> PathMatrix:
    """The work of :func:`enumerate_paths`, past its checks."""
    out: dict[str, list[tuple[str, str]]] = {}  # vertex -> its (edge, target), in declaration order
    targets: dict[str, dict[str, None]] = {}  # vertex -> its targets, in the order A's entries list them
    for e, (s, t) in graph.ends.items():
        out.setdefault(s, []).append((e, t))
        targets.setdefault(s, {})[t] = None
    rows = dict.fromkeys(graph.vertices if sources is None else sources)
    total = {(v, v): [Path.id(v)] for v in rows}
    power: list[tuple[str, str]] = list(total)  # the entries of A^k, in order
    frontier = {v: [Path.id(v)] for v in rows}  # row u of A^k, every path in order
    found, length = len(total), 0
    while frontier and (max_length is None or length < max_length):
        length += 1
        entries: dict[tuple[str, str], list[Path]] = {}
        unbuilt: Counter[tuple[str, str]] = Counter()  # past the bound: counted, not built
        following = {}
        for u, paths in frontier.items():
            row = []
            for p in paths:
                edges = p.edges
                for e, t in out.get(p.target, ()):
                    if simple and e in edges:
                        continue
                    found += 1
                    if found > bound:
                        unbuilt[u, t] += 1
                        continue
                    q = Path(u, t, edges + (e,))
                    row.append(q)
                    entry = entries.get((u, t))
                    if entry is None:
                        entries[u, t] = [q]
                    else:
                        entry.append(q)
            if row:
                following[u] = row
        # The order in which the product A^k · A first names each entry, kept for every reader.
        named = dict.fromkeys((u, t) for u, v in power for t in targets.get(v, ()))
        power = [key for key in named if key in entries or key in unbuilt]
        if found > bound:
            counts = Counter({key: len(paths) for key, paths in total.items()})
            for key in power:
                counts[key] += len(entries.get(key, ())) + unbuilt[key]
            (u, v), worst = counts.most_common(1)[0]
            size = len(graph.vertices) + len(graph.ends)
            allowed = f"max_paths={max_paths}"
            if bound > max_paths:
                allowed = PATH_ALLOWANCE.format(bound=bound, max_paths=max_paths, size=size)
            raise PathExplosionError(
                PATH_EXPLOSION.format(found=found, allowed=allowed, length=length, worst=worst, u=u, v=v)
            )
        for key in power:
            if key in total:
                total[key].extend(entries[key])
            else:
                total[key] = entries[key]
        frontier = following
    return PathMatrix._trusted(graph.vertices, {key: tuple(paths) for key, paths in total.items()})


def parallel_paths(paths: PathMatrix) -> Iterator[tuple[Path, Path]]:
    """Every unordered pair of distinct parallel paths, in the matrix's order.

    >>> g = Graph(); g.add_vertex("A"); g.add_vertex("B")
    >>> for e in "fgh": g.add_edge(e, "A", "B")
    >>> [(str(p), str(q)) for p, q in parallel_paths(enumerate_paths(g))]
    [('f', 'g'), ('f', 'h'), ('g', 'h')]
    """
    for _, entry in paths.items():
        yield from combinations(entry, 2)
