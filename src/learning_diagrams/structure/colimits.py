"""Colimits of learning diagrams: gluing diagrams along shared parts (the paper's Figure 2).

A *colimit* takes a finite diagram of diagrams (objects: learning diagrams;
arrows: :class:`~learning_diagrams.structure.morphisms.DiagramMorphism` between them)
and glues: its apex is the disjoint union of the diagrams' vertices and edges,
quotiented by ``x ~ f(x)`` for every arrow ``f`` and every part ``x``. Sources
and targets in the apex are induced. Learning graphs are C-sets for the schema
``E ⇉ V`` and colimits of C-sets are computed part by part, so this is the
colimit in the category of learning graphs. The result is a :class:`Colimit`
(apex, legs, the diagram it came from) whose :meth:`Colimit.universal` gives the
unique morphism into any other cocone. :func:`coproduct`, :func:`pushout`,
:func:`coequalizer` and :func:`glue` are thin shapes over one :func:`colimit`;
:func:`inclusion` builds the morphism of a sub-diagram by names.

Semantics are glued too: the parts of one class must agree on their data (by
identity), loss and type (by equality), and their function (by identity) and
its flags; parts that leave an attribute unset (``None``) agree with anything.
A vertex glued with an indexing vertex is indexing (so no edge may end there).
Relations are carried along the legs. See :func:`colimit` for the naming rule.

The paper's Figure 2 (bottom): two classifier squares glued along a common
backbone ``m: X → F``. The loss of the result trains each head on its task and
the shared backbone on both.

>>> import torch
>>> import learning_diagrams as ld
>>> backbone = torch.nn.Linear(4, 3)
>>> def square(i):
...     batch = (torch.randn(8, 4), torch.randint(3, (8,)))
...     return (ld.Diagram()
...             .space(f"N{i}", data=[batch]).space("X").space("F")
...             .space(f"Y{i}", loss=ld.losses.cross_entropy)
...             .map(f"x{i}", f"N{i}", "X", lambda b: b[0]).map(f"y{i}", f"N{i}", f"Y{i}", lambda b: b[1])
...             .map("m", "X", "F", backbone).map(f"h{i}", "F", f"Y{i}", torch.nn.Linear(3, 3))
...             .relate(f"x{i}·m·h{i}", f"y{i}"))
>>> backbone_only = ld.Diagram().space("X").space("F").map("m", "X", "F", None)
>>> s1, s2 = square(1), square(2)
>>> P = pushout(inclusion(backbone_only, s1), inclusion(backbone_only, s2))
>>> P.apex.graph
Graph(vertices=['N1', 'X', 'F', 'Y1', 'N2', 'Y2'], edges=[x1: N1 → X, y1: N1 → Y1, m: X → F, h1: F → Y1, x2: N2 → X, y2: N2 → Y2, h2: F → Y2])
>>> for pair in P.apex.parallel_pairs(): print(pair)
x1·m·h1 ≤ y1  (at Y1, weight 1)
x2·m·h2 ≤ y2  (at Y2, weight 1)
>>> P.legs[1]("h2"), P.apex.maps["m"].fn is backbone
('h2', True)

Laws
----
Every triangle commutes (``f >> leg[j] == leg[i]`` for each arrow ``f: i → j``),
and the universal morphism ``u`` into a cocone ``q`` satisfies ``leg[i] >> u == q[i]``:

>>> f, g = P.morphisms[0][2], P.morphisms[1][2]
>>> f >> P.legs[0] == P.legs[2] == g >> P.legs[1]
True
>>> u = P.universal([P.legs[0], P.legs[1]])            # the apex's own cocone: the identity
>>> u == DiagramMorphism.identity(P.apex)
True
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

from ..core.diagram import Diagram
from ..core.errors import ConflictError, NotCoconeError, NotNaturalError, ShapeError
from ..core.messages import located
from ..core.paths import DEFAULT_MAX_PATHS
from .morphisms import DiagramMorphism

__all__ = [
    "Colimit",
    "colimit",
    "coproduct",
    "pushout",
    "coequalizer",
    "glue",
    "inclusion",
]

#: A part of one of the diagrams of a colimit: (diagram index, vertex or edge name).
_Part = tuple[int, str]
#: An arrow of the shape: (source index, target index, morphism).
Arrow = tuple[int, int, DiagramMorphism]


class Colimit:
    """The colimit of a finite diagram of learning diagrams: an apex and one leg per object.

    Built by :func:`colimit` (or its shapes); not meant to be built by hand.

    Attributes
    ----------
    diagrams : tuple of Diagram
        The objects of the shape, in order.
    morphisms : tuple of (int, int, DiagramMorphism)
        The arrows of the shape: ``(i, j, f)`` with ``f: diagrams[i] → diagrams[j]``.
    apex : Diagram
        The glued diagram, a new object (its spaces and maps are new records that
        hold the very same data, loss, type and function objects as the parts).
    legs : tuple of DiagramMorphism
        ``legs[i]: diagrams[i] → apex``; ``colim[i]`` and ``colim.leg(i)`` are ``legs[i]``.
    """

    def __init__(
        self,
        diagrams: tuple[Diagram, ...],
        morphisms: tuple[Arrow, ...],
        apex: Diagram,
        legs: tuple[DiagramMorphism, ...],
        representatives: tuple[dict[str, _Part], dict[str, _Part]],
    ) -> None:
        self.diagrams, self.morphisms, self.apex, self.legs = diagrams, morphisms, apex, legs
        self._vertex_reps, self._edge_reps = representatives

    def leg(self, i: int) -> DiagramMorphism:
        """The leg ``diagrams[i] → apex``."""
        return self.legs[i]

    def __getitem__(self, i: int) -> DiagramMorphism:
        return self.legs[i]

    def __len__(self) -> int:
        return len(self.legs)

    def __iter__(self) -> Iterator[DiagramMorphism]:
        return iter(self.legs)

    def universal(self, cocone: Sequence[DiagramMorphism | None], *, codom: Diagram | None = None) -> DiagramMorphism:
        """The unique morphism ``u: apex → Q`` with ``legs[i] >> u == cocone[i]`` for every ``i``.

        Parameters
        ----------
        cocone : sequence of DiagramMorphism or None
            ``cocone[i]: diagrams[i] → Q``, all into one diagram ``Q``. A leg may be
            ``None`` or left off the end when an arrow ``(i, j, f)`` determines it as
            ``f >> cocone[j]``: for a :func:`pushout` give the legs of ``B`` and ``C``
            only; for a :func:`coequalizer`, the leg of ``B`` only.
        codom : Diagram, optional
            ``Q``; needed only when no leg is given (the colimit of nothing).

        Returns
        -------
        DiagramMorphism
            ``apex → Q``.

        Raises
        ------
        NotCoconeError
            when a leg starts at the wrong diagram, the legs end at different
            diagrams, a leg is missing and no arrow determines it, or a triangle
            ``f >> cocone[j] == cocone[i]`` fails (the message names the part).

        Examples
        --------
        >>> import learning_diagrams as ld
        >>> a = ld.Diagram().space("A")
        >>> C = coproduct(a, a)
        >>> point = ld.Diagram().space("P")
        >>> to_point = inclusion(a, point, vertices={"A": "P"})
        >>> C.universal([to_point, to_point]).vertices
        mappingproxy({'A_0': 'P', 'A_1': 'P'})
        """
        legs = self._complete(list(cocone), codom)
        target = legs[0].codom if legs else codom
        assert target is not None, "_complete refuses an empty cocone without codom"
        for k, (i, j, f) in enumerate(self.morphisms):
            _check_triangle(k, i, j, f, legs[i], legs[j])
        vertices = {name: legs[i].vertices[v] for name, (i, v) in self._vertex_reps.items()}
        edges = {name: legs[i].edges[e] for name, (i, e) in self._edge_reps.items()}
        # Natural by construction: every triangle commutes and the legs are natural.
        return DiagramMorphism(self.apex, target, vertices, edges, _checked=True)

    def _complete(self, cocone: list[DiagramMorphism | None], codom: Diagram | None) -> list[DiagramMorphism]:
        n = len(self.diagrams)
        if len(cocone) > n:
            raise NotCoconeError(f"{len(cocone)} legs given for a colimit of {n} diagram(s)")
        legs = cocone + [None] * (n - len(cocone))
        for i, leg in enumerate(legs):
            if leg is None:
                continue
            if not isinstance(leg, DiagramMorphism):
                raise NotCoconeError(f"leg {i} is a {type(leg).__name__}, not a DiagramMorphism")
            if leg.dom is not self.diagrams[i]:
                raise NotCoconeError(f"leg {i} does not start at diagram {i} of the colimit")
            if codom is None:
                codom = leg.codom
            elif leg.codom is not codom:
                raise NotCoconeError(f"leg {i} ends at another diagram than the other legs: a cocone has one apex")
        changed = True
        while changed:  # derive the legs that arrows determine
            changed = False
            for i, j, f in self.morphisms:
                if legs[i] is None and legs[j] is not None:
                    legs[i], changed = f >> legs[j], True
        missing = [i for i, leg in enumerate(legs) if leg is None]
        if codom is None:
            raise NotCoconeError("an empty cocone does not say where it goes: pass codom=Q")
        for i in missing:
            if self.diagrams[i].graph.vertices:
                raise NotCoconeError(
                    f"no leg given for diagram {i}, and no arrow out of it determines one; "
                    f"give one morphism per diagram of the colimit"
                )
            legs[i] = DiagramMorphism(self.diagrams[i], codom, {}, {}, _checked=True)
        return legs  # type: ignore[return-value]

    def __repr__(self) -> str:
        return f"Colimit(apex={self.apex!r}, legs={len(self.legs)})"


def _check_triangle(k: int, i: int, j: int, f: DiagramMorphism, qi: DiagramMorphism, qj: DiagramMorphism) -> None:
    for kind, f_parts, qi_parts, qj_parts in (
        ("vertex", f.vertices, qi.vertices, qj.vertices),
        ("edge", f.edges, qi.edges, qj.edges),
    ):
        for x, fx in f_parts.items():
            if qj_parts[fx] != qi_parts[x]:
                raise NotCoconeError(
                    f"not a cocone: arrow {k} (diagram {i} → diagram {j}) sends {kind} {x!r} to "
                    f"{fx!r}, which leg {j} sends to {qj_parts[fx]!r}, but leg {i} sends {x!r} "
                    f"to {qi_parts[x]!r}; the legs must agree on every glued part"
                )


# -- the colimit --------------------------------------------------------------


class _Classes:
    """Union-find over parts in a fixed order; :meth:`classes` lists each class in that order."""

    def __init__(self, parts: Iterable[_Part]) -> None:
        self.order = {p: k for k, p in enumerate(parts)}
        self.parent = {p: p for p in self.order}

    def find(self, p: _Part) -> _Part:
        root = p
        while self.parent[root] != root:
            root = self.parent[root]
        while self.parent[p] != root:
            self.parent[p], p = root, self.parent[p]
        return root

    def union(self, p: _Part, q: _Part) -> None:
        a, b = self.find(p), self.find(q)
        if a != b:
            self.parent[b] = a

    def classes(self) -> list[list[_Part]]:
        """The classes, each in part order, ordered by their first member."""
        found: dict[_Part, list[_Part]] = {}
        for p in self.order:  # in order, so each class appears at its first member
            found.setdefault(self.find(p), []).append(p)
        return list(found.values())


def colimit(diagrams: Sequence[Diagram], morphisms: Iterable[Arrow] = ()) -> Colimit:
    """The colimit of a finite diagram of learning diagrams.

    Parameters
    ----------
    diagrams : sequence of Diagram
        The objects of the shape (the same diagram may appear twice).
    morphisms : iterable of (i, j, f)
        The arrows of the shape, ``f: diagrams[i] → diagrams[j]``.

    Returns
    -------
    Colimit
        Its apex is a new :class:`~learning_diagrams.core.diagram.Diagram`: vertices
        and edges are the classes of the disjoint union of the diagrams' parts
        under the equivalence generated by ``x ~ f(x)``, computed separately for
        vertices and edges; ``src`` and ``tgt`` are induced. The apex's relations
        are the images of every diagram's relations under the legs, each once.

    Raises
    ------
    ShapeError
        when an arrow's domain or codomain is not the diagram its indices name.
    ConflictError
        when glued parts disagree: a vertex class with two data objects (compared
        by identity), two losses or two types (by equality); an edge class with two
        function objects (by identity), or one function with two ``trainable`` or
        ``training`` flags; one relation of the apex with two weights; an edge that
        ends at a vertex glued with an indexing one. ``None`` (unset) agrees with
        anything; so does the type ``Any``.

    Notes
    -----
    **Names.** Each class wants the name of its first member (first in diagram
    order, then in declaration order). A name wanted by one class only is kept;
    the classes that want the same name ``n`` are all renamed ``n_i``, ``i`` the
    diagram index of their first member (``n_i_2``, ``n_i_3``, ... should that be
    taken). Vertices and edges are separate namespaces, as in a graph. Every name
    stays an identifier without ``·``. The legs find every part again whatever
    its name: ``colim.legs[i]("h")``.

    **Order.** The apex declares vertices, then edges, in the order of their
    first members, so the apex follows the first diagram, then what the second
    adds, and so on. Relations follow the same order.

    **Settings.** The apex's ``max_paths`` is the largest of the diagrams';
    its ``max_length`` is the largest, or ``None`` (no bound) if any is unbounded.
    It enumerates walks (``cycles="walks"``) when every diagram does (each has a
    bound then), and simple paths otherwise.

    **Cost.** Linear in the number of parts and arrow assignments (union-find),
    plus the relations.

    Examples
    --------
    Two copies of an edge glued at their source:

    >>> import learning_diagrams as ld
    >>> d = ld.Diagram().space("A").space("B").map("f", "A", "B", None)
    >>> a = ld.Diagram().space("A")
    >>> C = colimit([d, d, a], [(2, 0, inclusion(a, d)), (2, 1, inclusion(a, d))])
    >>> C.apex
    Diagram(spaces=['A', 'B_0', 'B_1'], maps=[f_0: A → B_0, f_1: A → B_1], relations=[])

    See Also
    --------
    coproduct, pushout, coequalizer, glue, inclusion
    """
    diagrams = tuple(diagrams)
    arrows = tuple(_check_arrow(k, arrow, diagrams) for k, arrow in enumerate(morphisms))
    vertex_classes = _Classes((i, v) for i, d in enumerate(diagrams) for v in d.graph.vertices)
    edge_classes = _Classes((i, e) for i, d in enumerate(diagrams) for e in d.graph.edges)
    for i, j, f in arrows:
        for v, w in f.vertices.items():
            vertex_classes.union((i, v), (j, w))
        for e, h in f.edges.items():
            edge_classes.union((i, e), (j, h))
    vclasses, eclasses = vertex_classes.classes(), edge_classes.classes()
    vnames, enames = _names(vclasses), _names(eclasses)

    lengths = [d.max_length for d in diagrams]
    walks = bool(diagrams) and all(d.cycles == "walks" for d in diagrams)
    apex = Diagram(
        max_length=None if not lengths or None in lengths else max(lengths),  # type: ignore[type-var]
        max_paths=max((d.max_paths for d in diagrams), default=DEFAULT_MAX_PATHS),
        cycles="walks" if walks else "simple",
    )
    vertex_of: dict[_Part, str] = {}
    for members, name in zip(vclasses, vnames):
        data, loss, type_ = _agree_space(members, diagrams)
        indexing = any(diagrams[i].spaces[v].is_indexing for i, v in members)
        apex.space(name, data=data, loss=loss, type=type_, indexing=indexing)
        vertex_of.update(dict.fromkeys(members, name))
    edge_of: dict[_Part, str] = {}
    for members, name in zip(eclasses, enames):
        i, e = members[0]
        m = diagrams[i].maps[e]
        fn, trainable, training = _agree_map(members, diagrams)
        with located(f"gluing edge {e!r} of diagram {i}"):  # an edge into a vertex glued with an indexing one
            apex.map(name, vertex_of[i, m.src], vertex_of[i, m.tgt], fn, trainable=trainable, training=training)
        edge_of.update(dict.fromkeys(members, name))

    legs = tuple(
        DiagramMorphism(
            d,
            apex,
            {v: vertex_of[i, v] for v in d.graph.vertices},
            {e: edge_of[i, e] for e in d.graph.edges},
            _checked=True,  # natural: edge classes are glued only along natural arrows
        )
        for i, d in enumerate(diagrams)
    )
    _carry_relations(diagrams, legs, apex)
    representatives = (
        {name: members[0] for members, name in zip(vclasses, vnames)},
        {name: members[0] for members, name in zip(eclasses, enames)},
    )
    return Colimit(diagrams, arrows, apex, legs, representatives)


def _check_arrow(k: int, arrow: Arrow, diagrams: tuple[Diagram, ...]) -> Arrow:
    try:
        i, j, f = arrow
    except (TypeError, ValueError):
        raise ShapeError(
            f"arrow {k} is {arrow!r}; give arrows as (i, j, f) with f: diagrams[i] → diagrams[j]"
        ) from None
    n = len(diagrams)
    for end in (i, j):
        if not isinstance(end, int) or not 0 <= end < n:
            raise ShapeError(f"arrow {k} names diagram {end!r}, but there are {n} diagram(s): indices 0 to {n - 1}")
    if not isinstance(f, DiagramMorphism):
        raise ShapeError(f"arrow {k} carries a {type(f).__name__}, not a DiagramMorphism")
    if f.dom is not diagrams[i]:
        raise ShapeError(f"arrow {k} ({i} → {j}): its morphism's domain is not diagram {i}")
    if f.codom is not diagrams[j]:
        raise ShapeError(f"arrow {k} ({i} → {j}): its morphism's codomain is not diagram {j}")
    return (i, j, f)


def _names(classes: list[list[_Part]]) -> list[str]:
    """The naming rule of :func:`colimit`."""
    wanted = [members[0][1] for members in classes]
    counts = Counter(wanted)
    taken = {n for n in wanted if counts[n] == 1}
    names = []
    for members, name in zip(classes, wanted):
        if counts[name] > 1:
            base = name = f"{name}_{members[0][0]}"
            k = 2
            while name in taken:
                name, k = f"{base}_{k}", k + 1
            taken.add(name)
        names.append(name)
    return names


def _show(what: str, obj: Any) -> str:
    """A short name for an attribute value in a conflict message."""
    if what == "losses":
        return obj.name
    if what == "data":
        return type(obj).__name__
    if what == "functions":
        qualname = getattr(obj, "__qualname__", None)  # functions, not module instances
        return qualname if isinstance(qualname, str) else type(obj).__name__
    if what == "types" and isinstance(obj, type):
        return obj.__name__
    return repr(obj)


def _agree(kind: str, what: str, diagrams: tuple[Diagram, ...], values: Iterable[tuple[_Part, Any]], same: Any) -> Any:
    """The one value set among ``values`` (``None`` if none), or raise ConflictError."""
    first: tuple[_Part, Any] | None = None
    for part, value in values:
        if first is None:
            first = (part, value)
        elif not same(first[1], value):
            (i, a), (j, b) = first[0], part
            shown = (_show(what, first[1]), _show(what, value))
            if shown[0] == shown[1]:
                shown = (f"{shown[0]} (one object)", f"{shown[1]} (another object)")
            raise ConflictError(
                f"{kind} {a} of diagram {i} and {kind} {b} of diagram {j} are glued but carry "
                f"different {what}: {shown[0]}, {shown[1]}; glue parts that agree, or leave "
                f"the attribute unset (None) on one side"
            )
    return None if first is None else first[1]


def _agree_space(members: list[_Part], diagrams: tuple[Diagram, ...]) -> tuple[Any, Any, Any]:
    spaces = [(p, diagrams[p[0]].spaces[p[1]]) for p in members]
    data = _agree(
        "vertex", "data", diagrams, ((p, s.data) for p, s in spaces if s.data is not None), lambda a, b: a is b
    )
    loss = _agree(
        "vertex", "losses", diagrams, ((p, s.loss) for p, s in spaces if s.loss is not None), lambda a, b: a == b
    )
    type_ = _agree(
        "vertex", "types", diagrams, ((p, s.type) for p, s in spaces if s.type not in (None, Any)), lambda a, b: a == b
    )
    if type_ is None and any(s.type is Any for _, s in spaces):
        type_ = Any
    return data, loss, type_


def _agree_map(members: list[_Part], diagrams: tuple[Diagram, ...]) -> tuple[Any, bool, bool]:
    maps = [(p, diagrams[p[0]].maps[p[1]]) for p in members]
    with_fn = [(p, m) for p, m in maps if m.fn is not None]
    fn = _agree("edge", "functions", diagrams, ((p, m.fn) for p, m in with_fn), lambda a, b: a is b)
    flags_from = with_fn or maps[:1]
    trainable = _agree(
        "edge", "trainable flags", diagrams, ((p, m.trainable) for p, m in flags_from), lambda a, b: a == b
    )
    training = _agree("edge", "training flags", diagrams, ((p, m.training) for p, m in flags_from), lambda a, b: a == b)
    return fn, trainable, training


def _carry_relations(diagrams: tuple[Diagram, ...], legs: tuple[DiagramMorphism, ...], apex: Diagram) -> None:
    seen: dict[tuple[Any, Any], tuple[float, int, str]] = {}
    for i, (d, leg) in enumerate(zip(diagrams, legs)):
        for r in d.relations:
            key = (leg.path(r.first), leg.path(r.second))
            if key not in seen:
                seen[key] = (r.weight, i, str(r))
                apex.relate(*key, weight=r.weight)
            elif seen[key][0] != r.weight:
                weight, j, text = seen[key]
                raise ConflictError(
                    f"relation {text} of diagram {j} and relation {r} of diagram {i} are glued into "
                    f"{key[0]} ≤ {key[1]} but carry different weights: {weight:g}, {r.weight:g}; "
                    f"give them the same weight, or change it on the apex afterwards"
                )


# -- shapes --------------------------------------------------------------------


def coproduct(*diagrams: Diagram) -> Colimit:
    """The disjoint union of ``diagrams``: ``legs[i]: diagrams[i] → apex``; nothing is glued.

    A cocone is any family of morphisms into one diagram.

    >>> import learning_diagrams as ld
    >>> d = ld.Diagram().space("X").space("Y").map("f", "X", "Y", None)
    >>> coproduct(d, ld.Diagram().space("Z")).apex.graph
    Graph(vertices=['X', 'Y', 'Z'], edges=[f: X → Y])
    >>> coproduct(d, d).apex.graph
    Graph(vertices=['X_0', 'Y_0', 'X_1', 'Y_1'], edges=[f_0: X_0 → Y_0, f_1: X_1 → Y_1])
    """
    return colimit(diagrams)


def pushout(*morphisms: DiagramMorphism) -> Colimit:
    """Glue the codomains of ``f1: A → B1, ..., fn: A → Bn`` along their common domain ``A``.

    ``pushout(f, g)`` is the pushout of a span ``B ← A → C``; with more morphisms
    it glues any number of diagrams along one ``A`` at once (twenty classifier
    squares along one backbone), the same, up to isomorphism, as repeated
    binary pushouts.

    Returns
    -------
    Colimit
        Of the shape ``diagrams = (B1, ..., Bn, A)``, arrows ``(n, i, fi)``:
        ``legs[i]: Bi → P`` for ``i < n``, and ``legs[n]: A → P``, which is
        ``fi >> legs[i]`` for every ``i``. ``universal([q1, ..., qn])`` needs the
        legs of the ``Bi`` only. Names follow :func:`colimit`, so the ``Bi``'s
        names win over ``A``'s.

    Raises
    ------
    ShapeError
        when no morphism is given or they do not share one domain (the same object).

    Examples
    --------
    >>> import learning_diagrams as ld
    >>> a = ld.Diagram().space("X")
    >>> b = ld.Diagram().space("X").space("Y").map("f", "X", "Y", None)
    >>> c = ld.Diagram().space("W").space("X").map("g", "W", "X", None)
    >>> pushout(inclusion(a, b), inclusion(a, c)).apex.graph
    Graph(vertices=['X', 'Y', 'W'], edges=[f: X → Y, g: W → X])
    """
    if not morphisms:
        raise ShapeError("pushout needs at least one morphism f: A → B")
    dom = morphisms[0].dom
    for k, f in enumerate(morphisms):
        if not isinstance(f, DiagramMorphism):
            raise ShapeError(f"pushout: morphism {k} is a {type(f).__name__}, not a DiagramMorphism")
        if f.dom is not dom:
            raise ShapeError(
                f"pushout: morphism {k} starts at another diagram than morphism 0; the morphisms "
                f"of a pushout share one domain, the diagram they are glued along (one object): "
                f"along = ...; pushout(inclusion(along, b), inclusion(along, c))"
            )
    n = len(morphisms)
    return colimit([f.codom for f in morphisms] + [dom], [(n, i, f) for i, f in enumerate(morphisms)])


def coequalizer(*morphisms: DiagramMorphism) -> Colimit:
    """Glue ``f(x)`` with ``g(x)`` in ``B`` for parallel ``f, g, ...: A → B``.

    Returns
    -------
    Colimit
        Of the shape ``diagrams = (B, A)``, arrows ``(1, 0, f)`` for each
        morphism: ``legs[0]: B → Q`` is the coequalizer; ``universal([q])``
        needs it only.

    Raises
    ------
    ShapeError
        when no morphism is given or they are not parallel.

    Examples
    --------
    >>> import learning_diagrams as ld
    >>> b = ld.Diagram().space("U").space("V").map("e", "U", "V", None)
    >>> a = ld.Diagram().space("P")
    >>> Q = coequalizer(inclusion(a, b, {"P": "U"}), inclusion(a, b, {"P": "V"}))
    >>> Q.apex.graph
    Graph(vertices=['U'], edges=[e: U → U])
    """
    if not morphisms:
        raise ShapeError("coequalizer needs at least one morphism f: A → B")
    dom, codom = morphisms[0].dom, morphisms[0].codom
    for k, f in enumerate(morphisms):
        if not isinstance(f, DiagramMorphism):
            raise ShapeError(f"coequalizer: morphism {k} is a {type(f).__name__}, not a DiagramMorphism")
        if f.dom is not dom or f.codom is not codom:
            raise ShapeError(f"coequalizer: morphism {k} is not parallel to morphism 0 (same domain and codomain)")
    return colimit([codom, dom], [(1, 0, f) for f in morphisms])


def glue(*diagrams: Diagram, along: Diagram) -> Colimit:
    """Glue ``diagrams`` along the parts they share with ``along``, matched by name.

    The same as ``pushout(inclusion(along, d1), ..., inclusion(along, dn))``; use
    :func:`inclusion` and :func:`pushout` when names differ.

    >>> import learning_diagrams as ld
    >>> along = ld.Diagram().space("X").space("F").map("m", "X", "F", None)
    >>> heads = [ld.Diagram().space("X").space("F").space("Y").map("m", "X", "F", None).map("h", "F", "Y", None)
    ...          for _ in range(3)]
    >>> glue(*heads, along=along).apex.graph
    Graph(vertices=['X', 'F', 'Y_0', 'Y_1', 'Y_2'], edges=[m: X → F, h_0: F → Y_0, h_1: F → Y_1, h_2: F → Y_2])
    """
    return pushout(*(inclusion(along, d) for d in diagrams))


def inclusion(
    sub: Diagram,
    diagram: Diagram,
    vertices: Mapping[str, str] | None = None,
    edges: Mapping[str, str] | None = None,
) -> DiagramMorphism:
    """The morphism ``sub → diagram`` sending each part to the part of the same name.

    Parameters
    ----------
    sub, diagram : Diagram
    vertices, edges : mapping, optional
        Images of the parts whose names differ in ``diagram``; the others keep their names.

    Raises
    ------
    NotNaturalError
        when a part has no image of its name in ``diagram``, or the edges' ends do not match.

    Examples
    --------
    >>> import learning_diagrams as ld
    >>> sub = ld.Diagram().space("X").space("F").map("m", "X", "F", None)
    >>> d = ld.Diagram().space("img").space("F").map("m", "img", "F", None)
    >>> inclusion(sub, d, vertices={"X": "img"})
    DiagramMorphism(V: X↦img, F↦F; E: m↦m)
    >>> inclusion(sub, d)
    Traceback (most recent call last):
    ...
    learning_diagrams.core.errors.NotNaturalError: inclusion: vertex 'X' has no vertex of its name in the diagram (vertices: img, F); say where it goes: vertices={'X': ...}
    """
    assignments = []
    for kind, given, parts, known in (
        ("vertex", dict(vertices or {}), sub.graph.vertices, diagram.graph.vertices),
        ("edge", dict(edges or {}), sub.graph.edges, diagram.graph.edges),
    ):
        extra = [p for p in given if p not in parts]
        if extra:
            raise NotNaturalError(f"inclusion: {kind} {', '.join(map(repr, extra))} is not in the sub-diagram")
        for p in parts:
            if p not in given and p not in known:
                raise NotNaturalError(
                    f"inclusion: {kind} {p!r} has no {kind} of its name in the diagram "
                    f"({'vertices' if kind == 'vertex' else 'edges'}: {', '.join(known) or 'none'}); "
                    f"say where it goes: {'vertices' if kind == 'vertex' else 'edges'}={{{p!r}: ...}}"
                )
        assignments.append({p: given.get(p, p) for p in parts})
    return DiagramMorphism(sub, diagram, assignments[0], assignments[1])
