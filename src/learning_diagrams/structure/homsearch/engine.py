"""The search engine of homomorphisms ``pattern → diagram``, and its three entry points.

Backtracking with constraint propagation. Every pattern part starts with the
diagram parts it may map to (``initial``, ``semantic``, ``where``; when monic,
also degrees: an injective map cannot send a vertex with three out-edges to one
with two). At each step the candidates of every unassigned part are narrowed
by what is already assigned (an edge's candidates must start and end at its
ends' images; a vertex's candidates must support a candidate of each of its
edges; monic parts skip used images, and fail at once when fewer images remain
than parts; epic parts fail when the diagram parts not yet hit outnumber the
free pattern parts, or one of them is no free part's candidate), and the
search backtracks as soon as one part has none left. The next part to assign
is the most constrained one (fewest candidates, edges first on ties, since
assigning an edge also assigns both its ends); with ``take``, it is the next
part in the result order instead, so that the first matches found are the
first in that order. A monic search with more pattern vertices (edges) than
diagram vertices (edges) fails before looking at any part, and so does an
epic one with fewer.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from ...core.diagram import Diagram
from ...core.errors import AmbiguousHomomorphismError, NoHomomorphismError, TooManyHomomorphismsError
from ..morphisms import DiagramMorphism, agrees
from .options import by_kind, count_option, image_index, injective_and_surjective, predicates

__all__ = ["homomorphisms", "homomorphism", "is_homomorphic", "explain_none"]


def homomorphisms(
    pattern: Diagram,
    diagram: Diagram,
    *,
    monic: bool | str | Iterable[str] = False,
    epic: bool | str | Iterable[str] = False,
    iso: bool | str | Iterable[str] = False,
    initial: Mapping[str, Any] | None = None,
    where: Mapping[str, Any] | None = None,
    take: int | None = None,
    at_most: int | None = None,
    semantic: bool = True,
) -> list[DiagramMorphism]:
    """Every homomorphism ``pattern → diagram`` that satisfies the options, in a fixed order.

    Parameters
    ----------
    pattern, diagram : Diagram
    monic : bool, str or list of str
        ``True`` for injective on vertices and edges; ``"V"``/``["V"]`` or
        ``"E"``/``["E"]`` for injective on one kind of part only.
    epic : bool, str or list of str
        Surjective, in the same forms: ``True`` for onto every vertex and
        every edge of the diagram, ``"V"``/``["V"]`` for onto its vertices only.
    iso : bool, str or list of str
        Bijective, in the same forms: ``iso`` on a part is ``monic`` and
        ``epic`` on it (``iso=True``: the isomorphisms).
    initial : dict, optional
        ``{pattern part: diagram part}`` (flat; a key is a vertex if the pattern
        has such a vertex, else an edge) or ``{"V": {...}, "E": {...}}``. An
        assignment that no homomorphism extends gives an empty list.
    where : dict, optional
        ``{pattern part: predicate or list of predicates}``, same two forms; a
        predicate gets the diagram's ``Space`` or ``Map`` and returns a bool. It is
        called at most once per pattern part and diagram part in one search.
    take : int, optional
        Return at most this many, the first ones in the result order.
    at_most : int, optional
        Raise :class:`~learning_diagrams.core.errors.TooManyHomomorphismsError` if
        there are more than this many (Catlab's ``max``).
    semantic : bool
        Also require :func:`~learning_diagrams.structure.morphisms.agrees` for every part.

    Returns
    -------
    list of DiagramMorphism
        Ordered lexicographically by the declaration positions of the images of
        the pattern's vertices, then edges (in the pattern's declaration order).

    Raises
    ------
    UnknownNameError
        when ``initial`` or ``where`` names a part the pattern does not have, or
        ``initial`` a part the diagram does not have.
    SearchOptionError
        for a ``monic``, ``epic``, ``iso``, ``take`` or ``at_most`` that cannot be
        read, or a flat key that names both a vertex and an edge of the pattern.
    TypeMismatchError
        when a ``where`` value is not a predicate.

    Examples
    --------
    >>> import learning_diagrams as ld
    >>> twins = ld.Diagram().space("A").space("B").map("f", "A", "B", None).map("g", "A", "B", None)
    >>> square = ld.Diagram().space("X").space("Y").map("p", "X", "Y", None).map("q", "X", "Y", None)
    >>> len(homomorphisms(twins, square)), len(homomorphisms(twins, square, monic=True))
    (4, 2)
    >>> len(homomorphisms(twins, square, epic="E")), len(homomorphisms(twins, square, iso=True))
    (2, 2)
    >>> [m.edges["g"] for m in homomorphisms(twins, square, initial={"f": "q"})]
    ['p', 'q']
    >>> homomorphisms(twins, square, initial={"f": "nope"})
    Traceback (most recent call last):
    ...
    learning_diagrams.core.errors.UnknownNameError: initial= sends edge 'f' to 'nope', which is no edge of the diagram (edges: p, q)
    """
    search = _Search(pattern, diagram, monic=monic, epic=epic, iso=iso, initial=initial, where=where, semantic=semantic)
    limit = count_option(take, "take")
    cap = count_option(at_most, "at_most")
    bounds = [b for b in (limit, None if cap is None else cap + 1) if b is not None]
    stop = min(bounds) if bounds else None  # at_most=N: finding N + 1 is enough to know there are too many
    found: list[tuple[tuple[int, ...], DiagramMorphism]] = []
    if stop != 0:
        for key in search.run(ordered=limit is not None):
            found.append((key, search.morphism(key)))
            if stop is not None and len(found) >= stop:
                break
    if cap is not None and len(found) > cap:
        raise TooManyHomomorphismsError(
            f"more than at_most={cap} homomorphism(s) from the pattern to the diagram; "
            f"narrow the search with initial=, where= or monic=, or raise at_most="
        )
    if limit is None:
        found.sort(key=lambda pair: pair[0])
    return [m for _, m in found[:limit]]


def homomorphism(pattern: Diagram, diagram: Diagram, *, first: bool = False, **options: Any) -> DiagramMorphism:
    """The unique homomorphism ``pattern → diagram`` (or, with ``first=True``, the first one).

    ``first=True`` is Catlab's ``any=true``.

    Takes the options of :func:`homomorphisms`.

    Raises
    ------
    NoHomomorphismError
        when there is none (also a :class:`LookupError`); the message says which
        pattern parts have no candidate at all, if any.
    AmbiguousHomomorphismError
        when there are several and ``first`` is false, saying how many.

    Examples
    --------
    >>> import learning_diagrams as ld
    >>> edge = ld.Diagram().space("A").space("B").map("f", "A", "B", None)
    >>> chain = ld.Diagram().space("X").space("Y").space("Z").map("p", "X", "Y", None).map("q", "Y", "Z", None)
    >>> homomorphism(edge, chain)
    Traceback (most recent call last):
    ...
    learning_diagrams.core.errors.AmbiguousHomomorphismError: found 2 homomorphisms from the pattern to the diagram, where one was expected: {f↦p}, {f↦q}; pass first=True to take the first, or narrow the search with initial=, where= or monic=
    >>> homomorphism(edge, chain, first=True).edges["f"], homomorphism(edge, chain, initial={"B": "Z"}).edges["f"]
    ('p', 'q')
    """
    if first:
        found = homomorphisms(pattern, diagram, **{**options, "take": 1})
    else:
        found = homomorphisms(pattern, diagram, **options)
    if not found:
        raise NoHomomorphismError(explain_none(pattern, diagram, options))
    if len(found) > 1 and not first:
        shown = ", ".join(f"{{{_describe(m)}}}" for m in found[:3]) + (", ..." if len(found) > 3 else "")
        raise AmbiguousHomomorphismError(
            f"found {len(found)} homomorphisms from the pattern to the diagram, where one was expected: "
            f"{shown}; pass first=True to take the first, or narrow the search with initial=, where= or monic="
        )
    return found[0]


def is_homomorphic(pattern: Diagram, diagram: Diagram, **options: Any) -> bool:
    """Whether there is a homomorphism ``pattern → diagram`` (stops at the first one).

    Takes the options of :func:`homomorphisms` (``take`` is ignored).

    >>> import learning_diagrams as ld
    >>> loop = ld.Diagram().space("A").map("f", "A", "A", None)
    >>> edge = ld.Diagram().space("X").space("Y").map("p", "X", "Y", None)
    >>> is_homomorphic(edge, loop), is_homomorphic(loop, edge)
    (True, False)
    """
    return bool(homomorphisms(pattern, diagram, **{**options, "take": 1}))


class _Search:
    """One homomorphism search: option checking, candidate sets, and the backtracking itself.

    Parts are numbered: pattern vertices ``0..nv-1`` and edges ``0..ne-1``, and the
    diagram's likewise, in declaration order. An assignment is a list per kind,
    ``-1`` where unassigned; a match's key is its vertex images then edge images.
    """

    def __init__(
        self,
        pattern: Diagram,
        diagram: Diagram,
        *,
        monic: Any,
        initial: Any,
        where: Any,
        semantic: bool,
        epic: Any = False,
        iso: Any = False,
    ):
        self.pattern, self.diagram = pattern, diagram
        p, d = pattern.graph, diagram.graph
        (self.monic_v, self.monic_e), (self.epic_v, self.epic_e) = injective_and_surjective(monic, epic, iso)
        init_v, init_e = by_kind(initial, pattern, "initial")
        where_v, where_e = by_kind(where, pattern, "where")
        self.PV, self.PE, self.DV, self.DE = list(p.vertices), list(p.edges), list(d.vertices), list(d.edges)
        dv_index = {v: i for i, v in enumerate(self.DV)}
        de_index = {e: i for i, e in enumerate(self.DE)}
        pv_index = {v: i for i, v in enumerate(self.PV)}
        # Check every option before any early return, so bad names always raise.
        self.init_v = {pv_index[k]: image_index(k, w, dv_index, "vertex", self.DV) for k, w in init_v.items()}
        self.init_e = {self.PE.index(k): image_index(k, w, de_index, "edge", self.DE) for k, w in init_e.items()}
        self.where_v = {pv_index[k]: predicates(k, f, "vertex") for k, f in where_v.items()}
        self.where_e = {self.PE.index(k): predicates(k, f, "edge") for k, f in where_e.items()}
        self.semantic = semantic
        self.ps = [pv_index[p.src(e)] for e in self.PE]
        self.pt = [pv_index[p.tgt(e)] for e in self.PE]
        self.ds = [dv_index[d.src(e)] for e in self.DE]
        self.dt = [dv_index[d.tgt(e)] for e in self.DE]
        self.incident: list[list[int]] = [[] for _ in self.PV]
        for e, (s, t) in enumerate(zip(self.ps, self.pt)):
            self.incident[s].append(e)
            if t != s:
                self.incident[t].append(e)
        self._base: tuple[list[list[int]], list[list[int]]] | None = None

    # -- candidates before any assignment ------------------------------------------
    def impossible_by_cardinality(self) -> bool:
        return self.too_many() or self.too_few()

    def too_many(self) -> bool:
        """An injective map needs as many diagram parts as pattern parts."""
        return (self.monic_v and len(self.PV) > len(self.DV)) or (self.monic_e and len(self.PE) > len(self.DE))

    def too_few(self) -> bool:
        """A surjective map needs as many pattern parts as diagram parts."""
        return (self.epic_v and len(self.PV) < len(self.DV)) or (self.epic_e and len(self.PE) < len(self.DE))

    def base(self) -> tuple[list[list[int]], list[list[int]]]:
        """Each pattern part's candidates from ``initial``, ``semantic``, ``where`` and degrees."""
        if self._base is None:
            vertices = [self._vertex_candidates(v) for v in range(len(self.PV))]
            allowed = [set(c) for c in vertices]
            edges = [
                [
                    x
                    for x in self._edge_candidates(e)
                    if self.ds[x] in allowed[self.ps[e]] and self.dt[x] in allowed[self.pt[e]]
                ]
                for e in range(len(self.PE))
            ]
            self._base = vertices, edges
        return self._base

    def _vertex_candidates(self, v: int) -> list[int]:
        pattern_space = self.pattern.spaces[self.PV[v]]
        pinned = self.init_v.get(v)
        monic = self.monic_v or self.monic_e
        need = self._degrees(self.ps, self.pt, v) if monic else None
        have = [self._degrees(self.ds, self.dt, w) for w in range(len(self.DV))] if monic else []
        found = []
        for w in range(len(self.DV)) if pinned is None else [pinned]:
            space = self.diagram.spaces[self.DV[w]]
            if need is not None and not _fits(need, have[w], self.monic_v, self.monic_e):
                continue
            if self.semantic and not agrees(pattern_space, space):
                continue
            if all(f(space) for f in self.where_v.get(v, ())):
                found.append(w)
        return found

    def _edge_candidates(self, e: int) -> list[int]:
        pattern_map = self.pattern.maps[self.PE[e]]
        loop = self.ps[e] == self.pt[e]
        pinned = self.init_e.get(e)
        found = []
        for x in range(len(self.DE)) if pinned is None else [pinned]:
            if loop and self.ds[x] != self.dt[x]:
                continue
            if not loop and self.monic_v and self.ds[x] == self.dt[x]:
                continue
            m = self.diagram.maps[self.DE[x]]
            if self.semantic and not agrees(pattern_map, m):
                continue
            if all(f(m) for f in self.where_e.get(e, ())):
                found.append(x)
        return found

    @staticmethod
    def _degrees(src: list[int], tgt: list[int], v: int) -> tuple[int, int, int, int, int]:
        """Out-degree, in-degree, self-loops, out-neighbours and in-neighbours of vertex ``v``."""
        outs = [t for s, t in zip(src, tgt) if s == v]
        ins = [s for s, t in zip(src, tgt) if t == v]
        return len(outs), len(ins), outs.count(v), len(set(outs)), len(set(ins))

    # -- backtracking ------------------------------------------------------------------
    def run(self, *, ordered: bool) -> Iterator[tuple[int, ...]]:
        """Yield the key of every match: in key order if ``ordered``, else most-constrained-first."""
        if self.impossible_by_cardinality():
            return
        base_v, base_e = self.base()
        if any(not c for c in base_v) or any(not c for c in base_e):
            return
        self.fv, self.fe = [-1] * len(self.PV), [-1] * len(self.PE)
        self.used_v: set[int] = set()
        self.used_e: set[int] = set()
        yield from self._extend(ordered)

    def _extend(self, ordered: bool) -> Iterator[tuple[int, ...]]:
        domains = self._domains()
        if domains is None:
            return
        vdom, edom = domains
        if not vdom and not edom:
            yield tuple(self.fv) + tuple(self.fe)
            return
        if ordered:  # vertices first, then edges, each in declaration order: results come in key order
            kind, part = ("V", min(vdom)) if vdom else ("E", min(edom))
        else:  # fewest candidates first; on ties an edge (it assigns its ends too), then declaration order
            kind, part = min(
                [(len(c), 0, "E", e) for e, c in edom.items()] + [(len(c), 1, "V", v) for v, c in vdom.items()]
            )[2:]
        if kind == "V":
            for w in vdom[part]:
                self._set_vertex(part, w)
                yield from self._extend(ordered)
                self._unset_vertex(part)
        else:
            for x in edom[part]:
                newly = self._set_edge(part, x)
                yield from self._extend(ordered)
                self._unset_edge(part, newly)

    def _domains(self) -> tuple[dict[int, list[int]], dict[int, list[int]]] | None:
        """The candidates of every unassigned part given the current assignment, or None on a dead end."""
        base_v, base_e = self.base()
        fv, fe, ds, dt = self.fv, self.fe, self.ds, self.dt
        free_v = {
            v: [w for w in base_v[v] if not (self.monic_v and w in self.used_v)] for v in range(len(fv)) if fv[v] < 0
        }
        free_sets = {v: set(c) for v, c in free_v.items()}
        edom: dict[int, list[int]] = {}
        for e in range(len(fe)):
            if fe[e] >= 0:
                continue
            s, t = self.ps[e], self.pt[e]
            found = [
                x
                for x in base_e[e]
                if not (self.monic_e and x in self.used_e)
                and (ds[x] == fv[s] if fv[s] >= 0 else ds[x] in free_sets[s])
                and (dt[x] == fv[t] if fv[t] >= 0 else dt[x] in free_sets[t])
            ]
            if not found:
                return None
            edom[e] = found
        # A free vertex's candidate must be an end of some candidate of each of its edges
        # (all of them free: assigning an edge assigns its ends).
        vdom: dict[int, list[int]] = {}
        for v, found in free_v.items():
            for e in self.incident[v]:
                if self.ps[e] == v:
                    ends = {ds[x] for x in edom[e]}
                    found = [w for w in found if w in ends]
                if self.pt[e] == v:
                    ends = {dt[x] for x in edom[e]}
                    found = [w for w in found if w in ends]
            if not found:
                return None
            vdom[v] = found
        vsets = {v: set(c) for v, c in vdom.items()}
        for e, found in edom.items():
            s, t = self.ps[e], self.pt[e]
            found = [x for x in found if (fv[s] >= 0 or ds[x] in vsets[s]) and (fv[t] >= 0 or dt[x] in vsets[t])]
            if not found:
                return None
            edom[e] = found
        # Injective parts: the free parts together need at least as many distinct images.
        if self.monic_v and len(set().union(*vsets.values())) < len(vdom):
            return None
        if self.monic_e and len(set().union(*map(set, edom.values()))) < len(edom):
            return None
        # Surjective parts: every diagram part not yet hit needs a free pattern part that can still hit it.
        if self.epic_v and not _can_cover(len(self.DV), fv, vdom.values()):
            return None
        if self.epic_e and not _can_cover(len(self.DE), fe, edom.values()):
            return None
        return vdom, edom

    def _set_vertex(self, v: int, w: int) -> None:
        self.fv[v] = w
        if self.monic_v:
            self.used_v.add(w)

    def _unset_vertex(self, v: int) -> None:
        if self.monic_v:
            self.used_v.discard(self.fv[v])
        self.fv[v] = -1

    def _set_edge(self, e: int, x: int) -> list[int]:
        self.fe[e] = x
        if self.monic_e:
            self.used_e.add(x)
        newly = []
        for end, image in ((self.ps[e], self.ds[x]), (self.pt[e], self.dt[x])):
            if self.fv[end] < 0:
                self._set_vertex(end, image)
                newly.append(end)
        return newly

    def _unset_edge(self, e: int, newly: list[int]) -> None:
        for v in newly:
            self._unset_vertex(v)
        if self.monic_e:
            self.used_e.discard(self.fe[e])
        self.fe[e] = -1

    def morphism(self, key: tuple[int, ...]) -> DiagramMorphism:
        n = len(self.PV)
        return DiagramMorphism(
            self.pattern,
            self.diagram,
            {v: self.DV[i] for v, i in zip(self.PV, key[:n])},
            {e: self.DE[i] for e, i in zip(self.PE, key[n:])},
        )


def _can_cover(size: int, images: list[int], free: Iterable[list[int]]) -> bool:
    """Whether the parts ``0..size-1`` not among ``images`` (``-1``: unassigned) can each still be hit.

    The free parts' candidate lists must reach each of them, and be at least as many.
    """
    missing = set(range(size)).difference(images)
    if not missing:
        return True
    domains = list(free)
    return len(missing) <= len(domains) and missing <= set().union(*map(set, domains))


def _fits(need: tuple[int, ...], have: tuple[int, ...], monic_v: bool, monic_e: bool) -> bool:
    """Degree pruning: injective edges need as many out-/in-edges and loops; injective vertices as many neighbours."""
    out, inn, loops, out_n, in_n = need
    h_out, h_in, h_loops, h_out_n, h_in_n = have
    if monic_e and (out > h_out or inn > h_in or loops > h_loops):
        return False
    return not (monic_v and (out_n > h_out_n or in_n > h_in_n))


def _describe(m: DiagramMorphism) -> str:
    """The parts of a match worth showing: every edge image, and the vertex images when there are no edges."""
    parts = m.edges if m.edges else m.vertices
    return ", ".join(f"{a}↦{b}" for a, b in parts.items()) or "the empty morphism"


def explain_none(pattern: Diagram, diagram: Diagram, options: Mapping[str, Any]) -> str:
    """Why no homomorphism was found, as far as a cheap look at the candidates can tell."""
    kept = {k: options[k] for k in ("monic", "epic", "iso", "initial", "where", "semantic") if k in options}
    defaults = {"monic": False, "epic": False, "iso": False, "initial": None, "where": None, "semantic": True}
    search = _Search(pattern, diagram, **{**defaults, **kept})
    said = ", ".join(f"{k}={v!r}" for k, v in kept.items() if k != "where") + (", where=..." if "where" in kept else "")
    head = f"no homomorphism from the pattern to the diagram{f' ({said})' if said else ''}"
    sizes = f"({len(search.PV)} vertices and {len(search.PE)} edges into {len(search.DV)} and {len(search.DE)})"
    if search.too_many():
        return f"{head}: an injective map needs at least as many parts in the diagram as in the pattern {sizes}"
    if search.too_few():
        return f"{head}: a surjective map needs at least as many parts in the pattern as in the diagram {sizes}"
    base_v, base_e = search.base()
    empty = [f"vertex {search.PV[v]!r}" for v, c in enumerate(base_v) if not c]
    empty += [f"edge {search.PE[e]!r}" for e, c in enumerate(base_e) if not c]
    if empty:
        return f"{head}: no part of the diagram can be the image of pattern {', '.join(empty)}"
    return f"{head}: each pattern part has candidates, but they do not fit together"
