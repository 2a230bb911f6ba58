"""Homomorphism search: find every place where a small pattern diagram occurs in a diagram.

A homomorphism ``pattern → diagram`` is a :class:`~learning_diagrams.morphisms.DiagramMorphism`:
vertices to vertices and edges to edges, preserving sources and targets. The
paper (section 2.2) uses one to pick out the vision encoder of an image
captioning diagram and set it to eval mode; more generally a pattern names the
parts of a sub-diagram, and the functions at the end of this module act on the
images of those parts in every match at once.

The API follows Catlab.jl's ``HomSearch``: one search engine,
:func:`homomorphisms`, and several entry points (:func:`homomorphism`,
:func:`is_homomorphic`, and the actions :func:`freeze`, :func:`set_eval`,
:func:`swap`, :func:`assign_data`, ...), all taking the same options:

``monic``
    ``False`` (any homomorphism), ``True`` (injective on vertices and edges), or
    the parts to be injective on: ``"V"``, ``"E"``, ``["V"]``, ``["E"]``, ``"VE"``
    (Catlab's ``monic=[:V]``).
``initial``
    a partial assignment that every match extends: ``{"enc": "CNN_x_Y"}``, a flat
    dict whose keys are resolved as a pattern vertex if there is one by that name,
    else as a pattern edge; or ``{"V": {...}, "E": {...}}`` to say which. An
    assignment that no homomorphism extends (it breaks naturality, injectivity,
    ``where`` or ``semantic``) gives no match: an empty list, not an error.
``where``
    predicates on the diagram's parts, by pattern part name (same two forms):
    ``{"enc": trainable}`` keeps the matches whose image of ``enc`` is a trainable
    :class:`~learning_diagrams.diagram.Map`; a predicate receives the diagram's
    :class:`~learning_diagrams.diagram.Space` or ``Map``. A list of predicates
    must all hold. Ready-made: :func:`trainable`, :func:`frozen`,
    :func:`is_module`, :func:`contains_module`, :func:`has_loss`, :func:`has_data`.
``semantic``
    (default ``True``) also require :func:`~learning_diagrams.morphisms.agrees`
    for every part: a pattern map that carries a model matches only maps that
    carry that very object; a pattern space with a loss only spaces with an equal
    loss. Wildcards (a map whose ``fn`` is ``None``, a space with no data, loss or
    type) match anything. ``semantic=False`` makes the search purely structural.
``take``
    stop after this many matches.
``max``
    raise :class:`TooManyHomomorphismsError` when there are more than this many.

Matches come in one deterministic order: lexicographic in the positions (in the
diagram's declaration order) of the images of the pattern's vertices, then of
its edges, each in the pattern's declaration order. With ``take``, the result
is a prefix of the full list.

Search
------
Backtracking with constraint propagation. Every pattern part starts with the
diagram parts it may map to (``initial``, ``semantic``, ``where``; when monic,
also degrees: an injective map cannot send a vertex with three out-edges to one
with two). At each step the candidates of every unassigned part are narrowed
by what is already assigned (an edge's candidates must start and end at its
ends' images; a vertex's candidates must support a candidate of each of its
edges; monic parts skip used images, and fail at once when fewer images remain
than parts), and the search backtracks as soon as one part has none left. The
next part to assign is the most constrained one (fewest candidates, edges
first on ties, since assigning an edge also assigns both its ends); with
``take``, it is the next part in the result order instead, so that the first
matches found are the first in that order. A monic search with more pattern
vertices (edges) than diagram vertices (edges) fails before looking at any part.

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
...        .map("LSTM", "Z_I_x_Y", "Z_L", lambda xy: lstm(xy[0]))
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

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from torch import nn

from .errors import DiagramError, TypeMismatchError, UnknownNameError
from .morphisms import DiagramMorphism, agrees

if TYPE_CHECKING:
    from .diagram import Diagram, Map, Space

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
    "NoHomomorphismError",
    "TooManyHomomorphismsError",
    "AmbiguousHomomorphismError",
    "SearchOptionError",
]

Predicate = Callable[[Any], bool]


# -- errors -----------------------------------------------------------------
class NoHomomorphismError(DiagramError, LookupError):
    """A search that had to find a match (:func:`homomorphism`, or an action) found none."""


class TooManyHomomorphismsError(DiagramError, ValueError):
    """A search that found more matches than ``max=`` allows."""


class AmbiguousHomomorphismError(TooManyHomomorphismsError):
    """:func:`homomorphism` found more than one match (and ``any=True`` was not given)."""


class SearchOptionError(DiagramError, ValueError):
    """A search option that cannot be read: a bad ``monic=``, ``take=``, or a name that is ambiguous."""


# -- ready-made predicates for ``where=`` ---------------------------------------
def trainable(part: Map) -> bool:
    """Whether a map is trainable: ``where={"f": trainable}``."""
    return bool(part.trainable)


def frozen(part: Map) -> bool:
    """Whether a map is frozen: ``where={"f": frozen}``."""
    return not part.trainable


def is_module(cls: type | tuple[type, ...]) -> Predicate:
    """A predicate: the map's ``fn`` is an instance of ``cls`` (a class or a tuple of classes).

    >>> from torch import nn
    >>> import learning_diagrams as ld
    >>> is_module(nn.Linear)(ld.Map("f", "A", "B", nn.Linear(2, 2))), is_module(nn.Conv2d)(ld.Map("g", "A", "B", abs))
    (True, False)
    """

    def predicate(part: Map) -> bool:
        return isinstance(part.fn, cls)

    predicate.__qualname__ = predicate.__name__ = f"is_module({_class_names(cls)})"
    return predicate


def contains_module(cls: type | tuple[type, ...]) -> Predicate:
    """A predicate: the map's ``fn`` is an ``nn.Module`` with a submodule (or itself) of class ``cls``.

    >>> from torch import nn
    >>> import learning_diagrams as ld
    >>> contains_module(nn.ReLU)(ld.Map("f", "A", "B", nn.Sequential(nn.Linear(2, 2), nn.ReLU())))
    True
    """

    def predicate(part: Map) -> bool:
        return isinstance(part.fn, nn.Module) and any(isinstance(m, cls) for m in part.fn.modules())

    predicate.__qualname__ = predicate.__name__ = f"contains_module({_class_names(cls)})"
    return predicate


def has_loss(loss: Any = None) -> Predicate:
    """A predicate on spaces: it has a loss (``has_loss()``), or a loss equal to ``loss``.

    >>> import learning_diagrams as ld
    >>> has_loss(ld.losses.mse)(ld.Space("Y", loss=ld.losses.mse)), has_loss()(ld.Space("X"))
    (True, False)
    """

    def predicate(part: Space) -> bool:
        return part.loss is not None if loss is None else part.loss == loss

    predicate.__qualname__ = predicate.__name__ = "has_loss()" if loss is None else f"has_loss({loss!r})"
    return predicate


def has_data(part: Space) -> bool:
    """Whether a space carries data (is an indexing vertex): ``where={"N": has_data}``."""
    return part.data is not None


def _class_names(cls: type | tuple[type, ...]) -> str:
    classes = cls if isinstance(cls, tuple) else (cls,)
    return ", ".join(getattr(c, "__name__", repr(c)) for c in classes)


# -- the search engine ----------------------------------------------------------
def homomorphisms(
    pattern: Diagram,
    diagram: Diagram,
    *,
    monic: bool | str | Iterable[str] = False,
    initial: Mapping[str, Any] | None = None,
    where: Mapping[str, Any] | None = None,
    take: int | None = None,
    max: int | None = None,  # noqa: A002 -- Catlab's name
    semantic: bool = True,
) -> list[DiagramMorphism]:
    """Every homomorphism ``pattern → diagram`` that satisfies the options, in a fixed order.

    Parameters
    ----------
    pattern, diagram : Diagram
    monic : bool, str or list of str
        ``True`` for injective on vertices and edges; ``"V"``/``["V"]`` or
        ``"E"``/``["E"]`` for injective on one kind of part only.
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
    max : int, optional
        Raise :class:`TooManyHomomorphismsError` if there are more than this many.
    semantic : bool
        Also require :func:`~learning_diagrams.morphisms.agrees` for every part.

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
        for a ``monic``, ``take`` or ``max`` that cannot be read, or a flat key
        that names both a vertex and an edge of the pattern.
    TypeMismatchError
        when a ``where`` value is not a predicate.

    Examples
    --------
    >>> import learning_diagrams as ld
    >>> twins = ld.Diagram().space("A").space("B").map("f", "A", "B", None).map("g", "A", "B", None)
    >>> square = ld.Diagram().space("X").space("Y").map("p", "X", "Y", None).map("q", "X", "Y", None)
    >>> len(homomorphisms(twins, square)), len(homomorphisms(twins, square, monic=True))
    (4, 2)
    >>> [m.edges["g"] for m in homomorphisms(twins, square, initial={"f": "q"})]
    ['p', 'q']
    >>> homomorphisms(twins, square, initial={"f": "nope"})
    Traceback (most recent call last):
    ...
    learning_diagrams.errors.UnknownNameError: initial= sends edge 'f' to 'nope', which is no edge of the diagram (edges: p, q)
    """
    search = _Search(pattern, diagram, monic=monic, initial=initial, where=where, semantic=semantic)
    limit = _count_option(take, "take")
    cap = _count_option(max, "max")
    bounds = [b for b in (limit, None if cap is None else cap + 1) if b is not None]
    stop = min(bounds) if bounds else None  # max=N: finding N + 1 is enough to know there are too many
    found: list[tuple[tuple[int, ...], DiagramMorphism]] = []
    if stop != 0:
        for key in search.run(ordered=limit is not None):
            found.append((key, search.morphism(key)))
            if stop is not None and len(found) >= stop:
                break
    if cap is not None and len(found) > cap:
        raise TooManyHomomorphismsError(
            f"more than max={cap} homomorphism(s) from the pattern to the diagram; "
            f"narrow the search with initial=, where= or monic=, or raise max="
        )
    if limit is None:
        found.sort(key=lambda pair: pair[0])
    return [m for _, m in found[:limit]]


def homomorphism(pattern: Diagram, diagram: Diagram, *, any: bool = False, **options: Any) -> DiagramMorphism:  # noqa: A002
    """The unique homomorphism ``pattern → diagram`` (or, with ``any=True``, the first one).

    Takes the options of :func:`homomorphisms`.

    Raises
    ------
    NoHomomorphismError
        when there is none (also a :class:`LookupError`); the message says which
        pattern parts have no candidate at all, if any.
    AmbiguousHomomorphismError
        when there are several and ``any`` is false, saying how many.

    Examples
    --------
    >>> import learning_diagrams as ld
    >>> edge = ld.Diagram().space("A").space("B").map("f", "A", "B", None)
    >>> chain = ld.Diagram().space("X").space("Y").space("Z").map("p", "X", "Y", None).map("q", "Y", "Z", None)
    >>> homomorphism(edge, chain)
    Traceback (most recent call last):
    ...
    learning_diagrams.homsearch.AmbiguousHomomorphismError: found 2 homomorphisms from the pattern to the diagram, where one was expected: {f↦p}, {f↦q}; pass any=True to take the first, or narrow the search with initial=, where= or monic=
    >>> homomorphism(edge, chain, any=True).edges["f"], homomorphism(edge, chain, initial={"B": "Z"}).edges["f"]
    ('p', 'q')
    """
    if any:
        found = homomorphisms(pattern, diagram, **{**options, "take": 1})
    else:
        found = homomorphisms(pattern, diagram, **options)
    if not found:
        raise NoHomomorphismError(_explain_none(pattern, diagram, options))
    if len(found) > 1 and not any:
        shown = ", ".join(f"{{{_describe(m)}}}" for m in found[:3]) + (", ..." if len(found) > 3 else "")
        raise AmbiguousHomomorphismError(
            f"found {len(found)} homomorphisms from the pattern to the diagram, where one was expected: "
            f"{shown}; pass any=True to take the first, or narrow the search with initial=, where= or monic="
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

    def __init__(self, pattern: Diagram, diagram: Diagram, *, monic: Any, initial: Any, where: Any, semantic: bool):
        self.pattern, self.diagram = pattern, diagram
        p, d = pattern.graph, diagram.graph
        self.monic_v, self.monic_e = _monic_option(monic)
        init_v, init_e = _by_kind(initial, pattern, "initial")
        where_v, where_e = _by_kind(where, pattern, "where")
        self.PV, self.PE, self.DV, self.DE = list(p.vertices), list(p.edges), list(d.vertices), list(d.edges)
        dv_index = {v: i for i, v in enumerate(self.DV)}
        de_index = {e: i for i, e in enumerate(self.DE)}
        pv_index = {v: i for i, v in enumerate(self.PV)}
        # Check every option before any early return, so bad names always raise.
        self.init_v = {pv_index[k]: _image_index(k, w, dv_index, "vertex", self.DV) for k, w in init_v.items()}
        self.init_e = {self.PE.index(k): _image_index(k, w, de_index, "edge", self.DE) for k, w in init_e.items()}
        self.where_v = {pv_index[k]: _predicates(k, f, "vertex") for k, f in where_v.items()}
        self.where_e = {self.PE.index(k): _predicates(k, f, "edge") for k, f in where_e.items()}
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
        return (self.monic_v and len(self.PV) > len(self.DV)) or (self.monic_e and len(self.PE) > len(self.DE))

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


def _fits(need: tuple[int, ...], have: tuple[int, ...], monic_v: bool, monic_e: bool) -> bool:
    """Degree pruning: injective edges need as many out-/in-edges and loops; injective vertices as many neighbours."""
    out, inn, loops, out_n, in_n = need
    h_out, h_in, h_loops, h_out_n, h_in_n = have
    if monic_e and (out > h_out or inn > h_in or loops > h_loops):
        return False
    return not (monic_v and (out_n > h_out_n or in_n > h_in_n))


# -- option parsing -------------------------------------------------------------
def _monic_option(monic: Any) -> tuple[bool, bool]:
    if monic is None or monic is False:
        return False, False
    if monic is True:
        return True, True
    parts = list(monic) if isinstance(monic, (str, list, tuple, set, frozenset)) else None
    if parts is None or not all(p in ("V", "E") for p in parts):
        raise SearchOptionError(
            f"monic={monic!r} cannot be read: give True, False, 'V', 'E', 'VE', ['V'], ['E'] or ['V', 'E']"
        )
    return "V" in parts, "E" in parts


def _count_option(value: Any, name: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise SearchOptionError(f"{name}={value!r} is not a count: give a whole number ≥ 0, or None")
    return value


def _by_kind(spec: Any, pattern: Diagram, option: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Split ``{name: value}`` or ``{"V": {...}, "E": {...}}`` into vertex and edge parts."""
    if spec is None:
        return {}, {}
    if not isinstance(spec, Mapping):
        raise TypeMismatchError(
            f"{option}= must be a dict by pattern part name (or {{'V': {{...}}, 'E': {{...}}}}), "
            f"got a {type(spec).__name__}"
        )
    g = pattern.graph
    unknown: list[str] = []
    if spec and set(spec) <= {"V", "E"} and all(isinstance(x, Mapping) for x in spec.values()):
        vertices, edges = dict(spec.get("V", {})), dict(spec.get("E", {}))
        unknown += [f"vertex {n!r}" for n in vertices if not g.has_vertex(n)]
        unknown += [f"edge {n!r}" for n in edges if not g.has_edge(n)]
    else:
        vertices, edges = {}, {}
        both = [n for n in spec if g.has_vertex(n) and g.has_edge(n)]
        if both:
            listed = ", ".join(map(repr, both))
            raise SearchOptionError(
                f"{option}= names {listed}, which the pattern has both as a vertex and as an edge; "
                f"say which: {option}={{'V': {{...}}, 'E': {{...}}}}"
            )
        for name, value in spec.items():
            if g.has_vertex(name):
                vertices[name] = value
            elif g.has_edge(name):
                edges[name] = value
            else:
                unknown.append(repr(name))
    if unknown:
        raise UnknownNameError(
            f"{option}= names {', '.join(unknown)}, which the pattern does not have "
            f"(vertices: {', '.join(g.vertices) or 'none'}; edges: {', '.join(g.edges) or 'none'})"
        )
    return vertices, edges


def _image_index(part: str, image: Any, index: Mapping[str, int], kind: str, names: list[str]) -> int:
    if not isinstance(image, str) or image not in index:
        raise UnknownNameError(
            f"initial= sends {kind} {part!r} to {image!r}, which is no {kind} of the diagram "
            f"({'vertices' if kind == 'vertex' else 'edges'}: {', '.join(names) or 'none'})"
        )
    return index[image]


def _predicates(part: str, value: Any, kind: str) -> tuple[Predicate, ...]:
    predicates = tuple(value) if isinstance(value, (list, tuple)) else (value,)
    for f in predicates:
        if not callable(f):
            raise TypeMismatchError(
                f"where= gives {kind} {part!r} a {type(f).__name__}, which is not a predicate: "
                f"give a function of the diagram's {'Space' if kind == 'vertex' else 'Map'} returning a bool"
            )
    return predicates


def _describe(m: DiagramMorphism) -> str:
    """The parts of a match worth showing: every edge image, and the vertex images when there are no edges."""
    parts = m.edges if m.edges else m.vertices
    return ", ".join(f"{a}↦{b}" for a, b in parts.items()) or "the empty morphism"


def _explain_none(pattern: Diagram, diagram: Diagram, options: Mapping[str, Any]) -> str:
    """Why no homomorphism was found, as far as a cheap look at the candidates can tell."""
    kept = {k: options[k] for k in ("monic", "initial", "where", "semantic") if k in options}
    search = _Search(pattern, diagram, **{"monic": False, "initial": None, "where": None, "semantic": True, **kept})
    said = ", ".join(f"{k}={v!r}" for k, v in kept.items() if k != "where") + (", where=..." if "where" in kept else "")
    head = f"no homomorphism from the pattern to the diagram{f' ({said})' if said else ''}"
    if search.impossible_by_cardinality():
        return (
            f"{head}: an injective map needs at least as many parts in the diagram as in the pattern "
            f"({len(search.PV)} vertices and {len(search.PE)} edges into {len(search.DV)} and {len(search.DE)})"
        )
    base_v, base_e = search.base()
    empty = [f"vertex {search.PV[v]!r}" for v, c in enumerate(base_v) if not c]
    empty += [f"edge {search.PE[e]!r}" for e, c in enumerate(base_e) if not c]
    if empty:
        return f"{head}: no part of the diagram can be the image of pattern {', '.join(empty)}"
    return f"{head}: each pattern part has candidates, but they do not fit together"


# -- acting on every match -----------------------------------------------------
def _matches(diagram: Diagram, pattern: Diagram, options: Mapping[str, Any], action: str) -> list[DiagramMorphism]:
    found = homomorphisms(pattern, diagram, **options)
    if not found:
        raise NoHomomorphismError(f"{_explain_none(pattern, diagram, options)}; nothing to {action}")
    return found


def _pattern_parts(pattern: Diagram, names: str | Iterable[str], kind: str, action: str) -> list[str]:
    names = [names] if isinstance(names, str) else list(names)
    has = pattern.graph.has_vertex if kind == "vertex" else pattern.graph.has_edge
    unknown = [n for n in names if not has(n)]
    if unknown:
        known = pattern.graph.vertices if kind == "vertex" else pattern.graph.edges
        raise UnknownNameError(
            f"{action} names {', '.join(map(repr, unknown))}, which is no {kind} of the pattern "
            f"({'vertices' if kind == 'vertex' else 'edges'}: {', '.join(known) or 'none'})"
        )
    return names


def _images(matches: list[DiagramMorphism], parts: list[str]) -> list[str]:
    """The distinct images of ``parts`` over all matches, in match order."""
    return list(dict.fromkeys(m(p) for m in matches for p in parts))


def freeze(diagram: Diagram, pattern: Diagram, edges: str | Iterable[str], **options: Any) -> list[DiagramMorphism]:
    """Freeze the images of the pattern's ``edges`` in every match; return the matches.

    Takes the options of :func:`homomorphisms`. Like ``diagram.freeze``, this
    takes effect at the next ``compile()``.

    Raises
    ------
    NoHomomorphismError
        when the pattern has no match (the diagram is left as it was).

    >>> import learning_diagrams as ld
    >>> from torch import nn
    >>> d = ld.Diagram().space("X").space("Y").map("f", "X", "Y", nn.Linear(2, 2)).map("g", "X", "Y", abs)
    >>> [m("h") for m in freeze(d, ld.Diagram().space("A").space("B").map("h", "A", "B", None), "h",
    ...                         where={"h": is_module(nn.Module)})]
    ['f']
    >>> d.maps["f"].trainable, d.maps["g"].trainable
    (False, True)
    """
    parts = _pattern_parts(pattern, edges, "edge", "freeze")
    found = _matches(diagram, pattern, options, "freeze")
    diagram.freeze(*_images(found, parts))
    return found


def unfreeze(diagram: Diagram, pattern: Diagram, edges: str | Iterable[str], **options: Any) -> list[DiagramMorphism]:
    """Make the images of the pattern's ``edges`` trainable in every match; return the matches.

    The counterpart of :func:`freeze`, with the same options and errors.
    """
    parts = _pattern_parts(pattern, edges, "edge", "unfreeze")
    found = _matches(diagram, pattern, options, "unfreeze")
    diagram.unfreeze(*_images(found, parts))
    return found


def set_eval(diagram: Diagram, pattern: Diagram, edges: str | Iterable[str], **options: Any) -> list[DiagramMorphism]:
    """Keep the images of the pattern's ``edges`` in eval mode; return the matches.

    Each image map gets ``training=False`` (the compiled loss keeps it in eval mode
    while it trains, so its BatchNorm statistics and dropout stay fixed), and its
    module, if it is an ``nn.Module``, is put in eval mode now. Takes the options of
    :func:`homomorphisms`; raises :class:`NoHomomorphismError` when nothing matches.
    """
    return _set_mode(diagram, pattern, edges, options, False)


def set_train(diagram: Diagram, pattern: Diagram, edges: str | Iterable[str], **options: Any) -> list[DiagramMorphism]:
    """Undo :func:`set_eval`: the images get ``training=True`` and their modules ``.train()``.

    A frozen map stays in eval mode in the compiled loss all the same.
    """
    return _set_mode(diagram, pattern, edges, options, True)


def _set_mode(
    diagram: Diagram, pattern: Diagram, edges: Any, options: Mapping[str, Any], mode: bool
) -> list[DiagramMorphism]:
    action = "set_train" if mode else "set_eval"
    parts = _pattern_parts(pattern, edges, "edge", action)
    found = _matches(diagram, pattern, options, action)
    for name in _images(found, parts):
        m = diagram.maps[name]
        m.training = mode
        if isinstance(m.fn, nn.Module):
            m.fn.train(mode)
    return found


def swap(diagram: Diagram, pattern: Diagram, new: Mapping[str, Any], **options: Any) -> list[DiagramMorphism]:
    """Give the images of pattern edges new functions: ``new = {pattern edge: module or callable}``.

    Every image of a pattern edge, in every match, gets the *same* object; use
    :func:`swap_each` for one new model per image. ``trainable`` and ``training``
    are kept. Takes effect at the next ``compile()``. Returns the matches.

    Raises
    ------
    NoHomomorphismError
        when the pattern has no match (the diagram is left as it was).
    TypeMismatchError
        when a new value is neither a module nor a callable.

    >>> import learning_diagrams as ld
    >>> from torch import nn
    >>> d = ld.Diagram().space("X").space("Y").map("cnn", "X", "Y", nn.Conv2d(3, 4, 3))
    >>> vit = nn.Identity()
    >>> _ = swap(d, ld.Diagram().space("A").space("B").map("enc", "A", "B", None), {"enc": vit},
    ...          where={"enc": is_module(nn.Conv2d)})
    >>> d.maps["cnn"].fn is vit
    True
    """
    _check_functions(new, "swap")
    parts = _pattern_parts(pattern, list(new), "edge", "swap")
    found = _matches(diagram, pattern, options, "swap")
    for p in parts:
        for name in _images(found, [p]):
            diagram.maps[name].fn = new[p]
    return found


def swap_each(
    diagram: Diagram, pattern: Diagram, factories: Mapping[str, Callable[[DiagramMorphism], Any]], **options: Any
) -> list[DiagramMorphism]:
    """Like :func:`swap`, but each image gets its own function: ``factory(match)``.

    ``factories = {pattern edge: factory}``. The factory is called once per
    distinct image edge, with the first match (in the result order) that reaches
    it, so two matches sharing an image never build two models for it.

    >>> import learning_diagrams as ld
    >>> from torch import nn
    >>> d = ld.Diagram().space("X").space("Y").map("a", "X", "Y", None).map("b", "X", "Y", None)
    >>> edge = ld.Diagram().space("A").space("B").map("h", "A", "B", None)
    >>> _ = swap_each(d, edge, {"h": lambda match: nn.Linear(2, 2)})
    >>> d.maps["a"].fn is not d.maps["b"].fn, type(d.maps["b"].fn).__name__
    (True, 'Linear')
    """
    for p, factory in factories.items():
        if not callable(factory):
            raise TypeMismatchError(
                f"swap_each needs a factory (a function of the match) for edge {p!r}, got a {type(factory).__name__}"
            )
    parts = _pattern_parts(pattern, list(factories), "edge", "swap_each")
    found = _matches(diagram, pattern, options, "swap_each")
    made: dict[str, Any] = {}
    for m in found:
        for p in parts:
            if m(p) not in made:
                made[m(p)] = fn = factories[p](m)
                _check_functions({p: fn}, "swap_each")
    for name, fn in made.items():
        diagram.maps[name].fn = fn
    return found


def _check_functions(new: Mapping[str, Any], action: str) -> None:
    for p, fn in new.items():
        if fn is not None and not callable(fn):
            raise TypeMismatchError(
                f"{action} gives pattern edge {p!r} a {type(fn).__name__}; an edge needs a torch.nn.Module or a callable"
            )


def assign_data(diagram: Diagram, pattern: Diagram, data: Mapping[str, Any], **options: Any) -> list[DiagramMorphism]:
    """Give the images of pattern vertices data: ``data = {pattern vertex: data source}``.

    Every image, in every match, gets the same data object (``None`` removes
    the data). Use :func:`assign_data_each` for data that depends on the match.
    Returns the matches; raises :class:`NoHomomorphismError` when there is none.

    >>> import learning_diagrams as ld
    >>> d = ld.Diagram().space("N").space("Y", loss=ld.losses.mse).map("f", "N", "Y", abs)
    >>> source = ld.Diagram().space("S").space("T").map("f", "S", "T", None)
    >>> [m("S") for m in assign_data(d, source, {"S": [0.0, 1.0]}, where={"T": has_loss()})], d.indexing
    (['N'], ('N',))
    """
    parts = _pattern_parts(pattern, list(data), "vertex", "assign_data")
    found = _matches(diagram, pattern, options, "assign_data")
    for p in parts:
        for name in _images(found, [p]):
            diagram.spaces[name].data = data[p]
    return found


def assign_data_each(
    diagram: Diagram, pattern: Diagram, factories: Mapping[str, Callable[[DiagramMorphism], Any]], **options: Any
) -> list[DiagramMorphism]:
    """Like :func:`assign_data`, with ``factory(match)`` called once per distinct image vertex."""
    for p, factory in factories.items():
        if not callable(factory):
            raise TypeMismatchError(
                f"assign_data_each needs a factory (a function of the match) for vertex {p!r}, got a {type(factory).__name__}"
            )
    parts = _pattern_parts(pattern, list(factories), "vertex", "assign_data_each")
    found = _matches(diagram, pattern, options, "assign_data_each")
    made: dict[str, Any] = {}
    for m in found:
        for p in parts:
            if m(p) not in made:
                made[m(p)] = factories[p](m)
    for name, value in made.items():
        diagram.spaces[name].data = value
    return found
