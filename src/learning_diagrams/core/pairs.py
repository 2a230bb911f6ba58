"""Which pairs of a diagram compile, and which relation each comes from.

A :class:`Relation` ``p ≤ q`` is declared between parallel paths ending at any
vertex; a :class:`Pair` is a compiled term. :func:`derive` finds the pairs (the
rules are in :mod:`learning_diagrams.core.diagram`): the pairs of distinct
parallel paths, among the paths the diagram considers, that run from an
indexing vertex to a vertex with a loss and are related by the preorder the
relations generate. It also finds, for each relation, whether any pair follows
from it, and why not: no declared relation is dropped without a word.

Laws
----
A relation's own pair always compiles, even where enumeration stops (here the
second one uses ``enc`` and ``dec`` twice); whiskering the first by ``enc·dec``
relates the two round trips too:

>>> from learning_diagrams.core import Diagram, losses
>>> d = (Diagram().space("N", indexing=True).space("X", loss=losses.mse).space("Z")
...      .map("x", "N", "X", abs).map("enc", "X", "Z", abs).map("dec", "Z", "X", abs)
...      .relate("x·enc·dec", "x").relate("x·enc·dec·enc·dec", "x", weight=5))
>>> for pair in d.parallel_pairs(): print(pair)
x·enc·dec ≤ x  (at X, weight 1)
x·enc·dec·enc·dec ≤ x  (at X, weight 5)
x·enc·dec·enc·dec ≤ x·enc·dec  (at X, weight 1)

A relation between edges into a vertex without a loss is whiskered to the
vertices with one:
>>> e = (Diagram().space("N", indexing=True).space("L").space("Y", loss=losses.l1)
...      .map("s", "N", "L", abs).map("t", "N", "L", abs).map("soft", "L", "Y", abs).relate("s", "t"))
>>> [pair.name for pair in e.parallel_pairs()]
['s·soft ≤ t·soft']
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from itertools import combinations
from typing import TYPE_CHECKING

from .errors import ConflictError, NoIndexingVertexError, NoLossError, OrientationError
from .graph import Graph, Path
from .losses import Loss
from .messages import listed
from .order import Preorder
from .paths import PathMatrix, collector_paused, path_order

if TYPE_CHECKING:
    from .diagram import Diagram

__all__ = ["Relation", "Pair", "Explanation", "Derivation", "derive", "explain", "refuse"]


@dataclass(frozen=True)
class Relation:
    """A declared relation ``first ≤ second`` with the weight of its loss term."""

    first: Path
    second: Path
    weight: float = 1.0

    def __str__(self) -> str:
        return f"{self.first} ≤ {self.second}"


@dataclass(frozen=True)
class Pair:
    """A compiled parallel pair: the term ``weight * loss(first(x), second(x))``.

    ``first`` and ``second`` are tuples of edge names, in argument order; an
    identity path is the empty tuple.
    """

    source: str
    target: str
    first: tuple[str, ...]
    second: tuple[str, ...]
    loss: Loss = field(compare=False)
    weight: float = 1.0

    @cached_property
    def paths(self) -> tuple[Path, Path]:
        """The two paths, ``(first, second)`` (made once, then kept)."""
        return Path(self.source, self.target, self.first), Path(self.source, self.target, self.second)

    @cached_property
    def name(self) -> str:
        """The term's name, e.g. ``'x·student·soft ≤ x·teacher·soft'`` (written once, then kept)."""
        p, q = self.paths
        return f"{p} ≤ {q}"

    def __str__(self) -> str:
        return f"{self.name}  (at {self.target}, weight {self.weight:g})"


@dataclass(frozen=True)
class Derivation:
    """What :func:`derive` finds; ``leq`` is None when no relation is declared.

    ``barren`` holds each relation from which no pair follows, with why and what to do.
    """

    pairs: list[Pair]
    unoriented: list[str]
    barren: list[tuple[Relation, str]]
    leq: Preorder | None


@dataclass(frozen=True)
class Explanation:
    """What ``Diagram.explain()`` finds: each relation with the pairs that follow from it alone.

    ``relations`` holds ``(relation, pairs, why_none)`` (``why_none`` is ``""`` when it
    yields pairs); ``together`` the pairs that need several relations (or, with no
    relation declared, every compiled pair); ``unoriented`` the pairs an asymmetric
    loss cannot compile without an orientation.
    """

    relations: tuple[tuple[Relation, tuple[Pair, ...], str], ...]
    together: tuple[Pair, ...]
    unoriented: tuple[str, ...] = ()

    def __str__(self) -> str:
        lines = []
        for r, pairs, why in self.relations:
            lines.append(f"{r}  (weight {r.weight:g})")
            lines += [f"    {pair}" for pair in pairs] or [f"    no pair: {why}"]
        if self.together:
            lines.append("from several relations together" if self.relations else "no relation: every pair compiles")
            lines += [f"    {pair}" for pair in self.together]
        if self.unoriented:
            lines.append("not compiled, for want of an orientation (the loss is asymmetric)")
            lines += [f"    {text}" for text in self.unoriented]
        return "\n".join(lines) or "no relation, and no pair"


def derive(diagram: Diagram) -> Derivation:
    """The compiled pairs of ``diagram``, the unoriented ones, and the relations that yield none (with why).

    Raises
    ------
    NoIndexingVertexError
        when no vertex is indexing;
    ConflictError
        when an edge ends at an indexing vertex, or one pair is declared both ways with two weights.
    """
    with collector_paused():
        return _derive(diagram)


def _derive(diagram: Diagram) -> Derivation:
    """The work of :func:`derive`."""
    indexing = diagram.indexing
    if not indexing:
        names = ", ".join(diagram.spaces) or "none"
        raise NoIndexingVertexError(
            f"no vertex carries data or is marked indexing, so no pair can start anywhere "
            f"(vertices: {names}); give one a data source, d.space('N', data=loader), or mark it "
            f"d.space('N', indexing=True) and give the data later"
        )
    diagram.check_indexing()
    if not diagram.relations:
        pairs, unoriented = [], []
        for p, q, loss in _candidates(diagram, diagram.paths(indexing), indexing):
            if loss.symmetric:
                pairs.append(Pair(p.source, p.target, p.edges, q.edges, loss))
            else:
                unoriented.append(f"{p} and {q} at {p.target}")
        return Derivation(pairs, unoriented, [], None)
    leq = diagram.preorder()
    losses = {v for v, s in diagram.spaces.items() if s.loss is not None}
    starts = set(indexing)
    # A relation yields a pair when one of its whiskerings runs from data to a loss:
    # transitivity alone never carries pairs to vertices that whiskering does not reach.
    barren = [
        (r, _why_barren(diagram, r, indexing, losses))
        for r in diagram.relations
        if not any(x.source in starts and x.target in losses for x, _ in leq.whiskerings(r.first, r.second))
        or r.first == r.second
    ]
    weights: dict[tuple[Path, Path], float] = {}
    for r in diagram.relations:
        if weights.setdefault((r.first, r.second), r.weight) != r.weight:
            raise ConflictError(
                f"relation {r} is declared twice, with weights {weights[r.first, r.second]:g} and {r.weight:g}; "
                f"declare it once (or override a term's weight: d.compile(weights={{{str(r)!r}: ...}}))"
            )
    pairs, unoriented = [], []
    for p, q, loss in _related(diagram, leq, indexing):
        below, above = leq(p, q), leq(q, p)
        if below and above and not loss.symmetric:
            unoriented.append(f"{p} and {q} at {p.target} (related both ways)")
        elif below or above:
            first, second = (p, q) if below else (q, p)
            weight = _pair_weight(weights, first, second, both=below and above)
            pairs.append(Pair(p.source, p.target, first.edges, second.edges, loss, weight))
    return Derivation(pairs, unoriented, barren, leq)


def refuse(derived: Derivation) -> list[Pair]:
    """The pairs of ``derived``, or the error a relation that yields nothing, or an unoriented pair, raises."""
    if derived.barren:
        lines = [f"relation {r} compiles no pair: {why}" for r, why in derived.barren]
        raise NoLossError(
            lines[0] if len(lines) == 1 else f"{len(lines)} relations compile no pair:\n  " + "\n  ".join(lines)
        )
    if derived.unoriented:
        shown = "\n  ".join(derived.unoriented)
        raise OrientationError(
            f"{len(derived.unoriented)} pair(s) end at a vertex whose loss is asymmetric but have no "
            f"orientation:\n  {shown}\nsay which path is the prediction with "
            f"d.relate(prediction, target), or mark the loss symmetric: ld.losses.Loss(fn, symmetric=True)"
        )
    return derived.pairs


def explain(diagram: Diagram, derived: Derivation) -> Explanation:
    """Attribute each pair of ``derived`` to the relations that alone relate its paths."""
    if derived.leq is None:
        return Explanation((), tuple(derived.pairs), tuple(derived.unoriented))
    barren = dict(derived.barren)
    rows = []
    attributed: set[Pair] = set()
    # A pair follows from a relation alone when the relation's own closure relates its paths, either
    # way: looked up from that closure, so each relation costs its closure, not the list of pairs.
    place = {pair.paths: i for i, pair in enumerate(derived.pairs)}
    for r in diagram.relations:
        alone = derived.leq.restricted([(r.first, r.second)])
        found = {place[pq] for p, q in alone.pairs() for pq in ((p, q), (q, p)) if pq in place}
        mine = tuple(derived.pairs[i] for i in sorted(found))
        attributed.update(mine)
        rows.append((r, mine, barren.get(r, "")))
    together = tuple(pair for pair in derived.pairs if pair not in attributed)
    return Explanation(tuple(rows), together, tuple(derived.unoriented))


def _candidates(diagram: Diagram, paths: PathMatrix, indexing: tuple[str, ...]) -> Iterator[tuple[Path, Path, Loss]]:
    """Parallel pairs from an indexing vertex to a vertex with a loss, in matrix order, with the loss."""
    for source in indexing:
        for target, space in diagram.spaces.items():
            if space.loss is not None:
                for p, q in combinations(paths[source, target], 2):
                    yield p, q, space.loss


def _related(diagram: Diagram, leq: Preorder, indexing: tuple[str, ...]) -> list[tuple[Path, Path, Loss]]:
    """The parallel pairs :func:`_candidates` would list that ``leq`` relates either way, in its order.

    No other candidate compiles, so the others are never listed: the pairs come from the
    preorder's closure, and only they are put in the order the path matrix lists them.
    """
    starts = {v: i for i, v in enumerate(indexing)}
    losses = {v: (i, s.loss) for i, (v, s) in enumerate(diagram.spaces.items()) if s.loss is not None}
    place = path_order(diagram.graph)
    found: dict[tuple[Path, Path], tuple] = {}
    for p, q in leq.pairs():
        if p.source in starts and p.target in losses:
            places = sorted([(place(p), p), (place(q), q)])  # as the matrix lists them
            found[places[0][1], places[1][1]] = (starts[p.source], losses[p.target][0], places[0][0], places[1][0])
    return [(p, q, losses[p.target][1]) for p, q in sorted(found, key=found.__getitem__)]


def _pair_weight(weights: Mapping[tuple[Path, Path], float], first: Path, second: Path, *, both: bool) -> float:
    """The weight of the relation declaring exactly this pair (either way when it is related both ways), else 1."""
    found = weights.get((first, second))
    other = weights.get((second, first)) if both else None
    if found is not None and other is not None and found != other:
        raise ConflictError(
            f"relations {first} ≤ {second} (weight {found:g}) and {second} ≤ {first} (weight {other:g}) "
            f"declare one pair, which compiles once (its loss is symmetric); give them the same weight"
        )
    return found if found is not None else other if other is not None else 1.0


def _why_barren(diagram: Diagram, r: Relation, indexing: tuple[str, ...], losses: set[str]) -> str:
    """Why no whiskering of ``r`` runs from an indexing vertex to a vertex with a loss, and what to do."""
    p, q = r.first, r.second
    if p == q:
        return (
            "it relates a path to itself: it always holds, and a pair compares two distinct paths; "
            "relate two different parallel paths, or remove it"
        )
    b = _shortest(diagram.graph, [p.target], losses)
    if b is None:
        return (
            f"it ends at vertex {p.target!r}, which has no loss, and no path leads from there to a vertex "
            f"with a loss ({listed(sorted(losses))}); give one a loss (d.space({p.target!r}, "
            f"loss=ld.losses.mse)), relate paths that lead to one, or remove the relation"
        )
    a = _shortest(diagram.graph, indexing, {p.source})
    if a is None:
        return (
            f"no path leads from an indexing vertex ({listed(indexing)}) to its source {p.source!r}; "
            f"relate paths that data reaches, or remove the relation"
        )
    x, y = a >> p >> b, a >> q >> b
    longer = max(len(x), len(y))
    declare = f"declare the whiskered relation itself (d.relate('{x}', '{y}'))"
    if diagram.max_length is not None and longer > diagram.max_length:
        why = f"{x if len(x) == longer else y} has {longer} edges, more than max_length={diagram.max_length}"
        fix = f"raise max_length to {longer}, or {declare}"
    elif diagram.cycles == "simple" and (len(set(x.edges)) < len(x) or len(set(y.edges)) < len(y)):
        z = x if len(set(x.edges)) < len(x) else y
        twice = next(e for e in z.edges if z.edges.count(e) > 1)
        why = f"{z} uses edge {twice!r} twice, and simple paths use no edge twice"
        fix = f"enumerate walks, Diagram(cycles='walks', max_length={longer}), or {declare}"
    else:  # not reached by the diagram's own enumeration; said plainly all the same
        why = "enumeration does not reach them"
        fix = declare
    return (
        f"its whiskerings from an indexing vertex to a vertex with a loss, such as {x} ≤ {y}, are not "
        f"among the diagram's paths ({why}); {fix}"
    )


def _shortest(graph: Graph, starts: Iterable[str], ends: set[str]) -> Path | None:
    """A shortest path from one of ``starts`` to one of ``ends`` (breadth first), or None."""
    frontier = [Path.id(v) for v in starts]
    seen = {p.target for p in frontier}
    while frontier:
        for path in frontier:
            if path.target in ends:
                return path
        following = []
        for path in frontier:
            for e in graph.out_edges(path.target):
                t = graph.tgt(e)
                if t not in seen:
                    seen.add(t)
                    following.append(Path(path.source, t, path.edges + (e,)))
        frontier = following
    return None
