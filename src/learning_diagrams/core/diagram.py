"""Learning diagrams: a learning graph with spaces, maps, losses and relations attached.

A :class:`Diagram` is built vertex by vertex and edge by edge. Each vertex is
a :class:`Space` that may carry a data source (it is then an *indexing*
vertex), a loss (a Lawvere metric, :mod:`learning_diagrams.core.losses`) and a type
annotation. Each edge is a :class:`Map` carrying a ``torch.nn.Module`` or any
callable, trainable or frozen. Relations ``p ≤ q`` between parallel paths
generate the preorder (:mod:`learning_diagrams.order`) that decides which
parallel pairs are compiled and in which argument order.

Which pairs compile
-------------------
A pair of distinct parallel paths ``(p, q)`` compiles when it starts at an
indexing vertex, ends at a vertex with a loss, and

* ``p ≤ q`` or ``q ≤ p`` in the preorder; the loss is called as
  ``loss(p(x), q(x))`` when ``p ≤ q`` (the first argument is the prediction
  side). If both hold the pair is compiled once, in enumeration order, and
  only when the loss is symmetric;
* or the diagram declares no relation at all: then every parallel pair
  compiles, in enumeration order (shorter path first, then by the
  declaration order of their edges), which needs a symmetric loss.

The knowledge-distillation diagram (the paper's Figure 1). Teacher and student
map images ``X`` to logits ``L``; ``hard`` and ``soft`` read logits as
predictions in the label space ``Y`` and the soft-target space ``G``:

>>> import torch
>>> from learning_diagrams.core import losses
>>> teacher, student = torch.nn.Linear(4, 3), torch.nn.Linear(4, 3)
>>> d = (Diagram()
...      .space("N", data=[(torch.randn(8, 4), torch.randint(3, (8,)))])
...      .space("X").space("L")
...      .space("Y", loss=losses.cross_entropy).space("G", loss=losses.KLDivergence(temperature=2.0))
...      .map("x", "N", "X", lambda b: b[0]).map("y", "N", "Y", lambda b: b[1])
...      .map("teacher", "X", "L", teacher, trainable=False).map("student", "X", "L", student)
...      .map("hard", "L", "Y", torch.nn.Identity()).map("soft", "L", "G", torch.nn.Identity())
...      .relate("x·student·hard", "y", weight=0.75)
...      .relate("x·student·soft", "x·teacher·soft", weight=0.25))
>>> for pair in d.parallel_pairs(): print(pair)
x·student·hard ≤ y  (at Y, weight 0.75)
x·student·soft ≤ x·teacher·soft  (at G, weight 0.25)

Relations are whiskered: had ``soft`` started at ``Y``, the relation
``x·student ≤ y`` would also have compiled ``x·student·soft ≤ y·soft``.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from itertools import combinations
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from . import plugins
from .errors import (
    DiagramError,
    MapError,
    NoIndexingVertexError,
    NoLossError,
    NothingToCompileError,
    OptionError,
    OrientationError,
    TypeMismatchError,
    UnknownNameError,
)
from .graph import Graph, Path, PathLike
from .losses import Loss, as_loss
from .messages import MAP_FAILED, MAP_HAS_NO_FUNCTION, MAP_NEEDS_CALLABLE, listed, located
from .order import Preorder, check_parallel
from .paths import DEFAULT_MAX_PATHS, PathMatrix, enumerate_paths
from .types import check_annotation, describe

__all__ = ["Space", "Map", "Relation", "Pair", "Diagram", "CYCLES"]

#: How path enumeration treats cycles: ``"simple"`` paths use no edge twice (the default);
#: ``"walks"`` are every walk of length ≤ ``max_length`` (the paper's I + A + … + A^k).
CYCLES = ("simple", "walks")


@dataclass
class Space:
    """A vertex's semantics: optional data source, loss and type annotation, and whether it indexes data.

    ``indexing`` marks a data set's vertex (the paper's functor to Ind), with or
    without its data yet; giving data makes a vertex indexing.
    """

    name: str
    data: Any = None
    loss: Loss | None = None
    type: Any = None
    indexing: bool = False

    @property
    def is_indexing(self) -> bool:
        """Whether the space indexes a data set (it is marked so, or it carries data)."""
        return self.indexing or self.data is not None


@dataclass
class Map:
    """An edge's semantics: a module or callable from ``src`` to ``tgt``, trainable or frozen.

    ``fn`` may be ``None`` in a pattern diagram (a wildcard); such an edge cannot be compiled.
    ``training=False`` keeps a trainable module in eval mode (its BatchNorm statistics and
    dropout fixed) while its parameters train; frozen maps are always in eval mode.
    """

    name: str
    src: str
    tgt: str
    fn: Callable[[Any], Any] | None
    trainable: bool = True
    training: bool = True

    def __call__(self, x: Any, *, along: Path | None = None) -> Any:
        """Apply the map; a failure is re-raised as a MapError naming the edge and its vertices."""
        if self.fn is None:
            raise MapError(MAP_HAS_NO_FUNCTION.format(name=self.name, src=self.src, tgt=self.tgt))
        try:
            return self.fn(x)
        except Exception as err:
            via = f" (path {along})" if along is not None else ""
            raise MapError(
                MAP_FAILED.format(
                    name=self.name,
                    src=self.src,
                    tgt=self.tgt,
                    via=via,
                    value=describe(x),
                    error=type(err).__name__,
                    message=err,
                )
            ) from err


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

    @property
    def paths(self) -> tuple[Path, Path]:
        return Path(self.source, self.target, self.first), Path(self.source, self.target, self.second)

    @property
    def name(self) -> str:
        """The term's name, e.g. ``'x·student·soft ≤ x·teacher·soft'``."""
        p, q = self.paths
        return f"{p} ≤ {q}"

    def __str__(self) -> str:
        return f"{self.name}  (at {self.target}, weight {self.weight:g})"


class Diagram:
    """A learning diagram, built with :meth:`space`, :meth:`map` and :meth:`relate`.

    Parameters
    ----------
    max_length : int, optional
        Longest path considered (paths never use an edge twice in any case).
    max_paths : int
        Path enumeration raises :class:`~learning_diagrams.core.errors.PathExplosionError`
        past this many paths.
    """

    def __init__(self, *, max_length: int | None = None, max_paths: int = DEFAULT_MAX_PATHS, cycles: str = "simple"):
        if cycles not in CYCLES:
            raise OptionError(f"cycles={cycles!r} is not one of {', '.join(map(repr, CYCLES))}")
        self.graph = Graph()
        self.spaces: dict[str, Space] = {}
        self.maps: dict[str, Map] = {}
        self.relations: list[Relation] = []
        self.max_length, self.max_paths, self.cycles = max_length, max_paths, cycles

    # -- building -----------------------------------------------------------
    def space(
        self, name: str, *, data: Any = None, loss: Any = None, type: Any = None, indexing: bool = False
    ) -> Diagram:
        """Add a vertex; ``data`` (or ``indexing=True``) makes it an indexing vertex, ``loss`` lets it compare paths."""
        with located(f"vertex {name!r}"):
            loss = as_loss(loss)
        check_annotation(type, f"vertex {name!r}")
        self.graph.add_vertex(name)
        self.spaces[name] = Space(name, data, loss, type, bool(indexing) or data is not None)
        return self

    def map(self, name: str, src: str, tgt: str, fn: Any, *, trainable: bool = True, training: bool = True) -> Diagram:
        """Add an edge ``name: src → tgt`` computing ``fn`` (a module or a callable).

        ``trainable=False`` freezes it; ``training=False`` keeps a trainable module in eval mode.
        """
        if fn is not None and not callable(fn):
            raise TypeMismatchError(
                MAP_NEEDS_CALLABLE.format(where=f"edge {name!r} ({src} → {tgt})", kind=type(fn).__name__)
            )
        self.graph.add_edge(name, src, tgt)
        self.maps[name] = Map(name, src, tgt, fn, trainable, training)
        return self

    def relate(self, p: PathLike, q: PathLike, *, weight: float = 1.0) -> Diagram:
        """Declare ``p ≤ q`` between parallel paths: ``p`` is the loss's first argument.

        ``weight`` multiplies the term: a finite real number (negative for an adversarial
        term, 0 to keep the pair but not train on it).
        """
        first, second = self.path(p), self.path(q)
        check_parallel(first, second)
        self.relations.append(Relation(first, second, _weight(weight, f"{first} ≤ {second}")))
        return self

    def path(self, spec: PathLike) -> Path:
        """A checked path of this diagram, from ``'a·b'``, ``'a.b'``, ``['a', 'b']`` or ``'id(X)'``."""
        return self.graph.path(spec)

    def freeze(self, *names: str) -> Diagram:
        """Mark edges as frozen: their maps are not trained and run in eval mode."""
        return self._set_trainable(names, False)

    def unfreeze(self, *names: str) -> Diagram:
        """Mark edges as trainable."""
        return self._set_trainable(names, True)

    def _set_trainable(self, names: Iterable[str], trainable: bool) -> Diagram:
        for name in names:
            self.graph.src(name)  # raises on an unknown edge
            self.maps[name].trainable = trainable
        return self

    # -- reading ------------------------------------------------------------
    @property
    def indexing(self) -> tuple[str, ...]:
        """The indexing vertices (those that carry data), in declaration order."""
        return tuple(v for v, s in self.spaces.items() if s.is_indexing)

    def paths(self, sources: Iterable[str] | None = None) -> PathMatrix:
        """Every path (no edge used twice, within ``max_length``), as a path matrix."""
        return enumerate_paths(self.graph, sources, max_length=self.max_length, max_paths=self.max_paths)

    def preorder(self, paths: PathMatrix | None = None) -> Preorder:
        """The preorder on this diagram's paths (or on ``paths``) generated by its relations."""
        universe = self.paths() if paths is None else paths
        return Preorder(self.graph, universe, [(r.first, r.second) for r in self.relations])

    def parallel_pairs(self) -> list[Pair]:
        """The pairs that compile, each oriented ``first ≤ second``, in a fixed order.

        Raises
        ------
        NoIndexingVertexError
            when no vertex carries data;
        NoLossError
            when a relation ends at a vertex with no loss;
        OrientationError
            when an asymmetric loss would compare a pair whose order is not declared.
        """
        indexing = self.indexing
        if not indexing:
            names = ", ".join(self.spaces) or "none"
            raise NoIndexingVertexError(
                f"no vertex carries data, so no pair can start anywhere (vertices: {names}); "
                f"give one a data source: d.space('N', data=loader)"
            )
        for r in self.relations:
            if self.spaces[r.first.target].loss is None:
                raise NoLossError(
                    f"relation {r} ends at vertex {r.first.target!r}, which has no loss; give it "
                    f"one (d.space({r.first.target!r}, loss=ld.losses.mse)) or remove the relation"
                )
        if not self.relations:
            return self._unrelated_pairs(indexing)
        paths = self.paths()
        leq = self.preorder(paths)
        weights = {(r.first, r.second): r.weight for r in self.relations}
        pairs, unoriented = [], []
        for p, q, loss in self._candidates(paths, indexing):
            below, above = leq(p, q), leq(q, p)
            if below and above and not loss.symmetric:
                unoriented.append(f"{p} and {q} at {p.target} (related both ways)")
            elif below or above:
                first, second = (p, q) if below else (q, p)
                weight = weights.get((first, second), 1.0)
                pairs.append(Pair(p.source, p.target, first.edges, second.edges, loss, weight))
        _refuse_unoriented(unoriented)
        return pairs

    def _unrelated_pairs(self, indexing: tuple[str, ...]) -> list[Pair]:
        pairs, unoriented = [], []
        for p, q, loss in self._candidates(self.paths(indexing), indexing):
            if not loss.symmetric:
                unoriented.append(f"{p} and {q} at {p.target}")
            pairs.append(Pair(p.source, p.target, p.edges, q.edges, loss))
        _refuse_unoriented(unoriented)
        return pairs

    def _candidates(self, paths: PathMatrix, indexing: tuple[str, ...]) -> Iterator[tuple[Path, Path, Loss]]:
        """Parallel pairs from an indexing vertex to a vertex with a loss, in matrix order, with the loss."""
        for source in indexing:
            for target, space in self.spaces.items():
                if space.loss is not None:
                    for p, q in combinations(paths[source, target], 2):
                        yield p, q, space.loss

    def compiled_pairs(self, weights: Mapping[str, float] | None = None) -> list[Pair]:
        """The pairs every back end compiles: :meth:`parallel_pairs`, with ``weights`` overriding theirs.

        ``weights`` maps term names (``'x·student ≤ y'``) to weights.

        Raises
        ------
        NothingToCompileError
            when no pair compiles: the loss would have no term.
        UnknownNameError
            when ``weights`` names no compiled term.
        """
        pairs = self.parallel_pairs()
        if not pairs:
            losses = [v for v, s in self.spaces.items() if s.loss is not None]
            raise NothingToCompileError(
                f"diagram has nothing to compile: no two distinct parallel paths run from an "
                f"indexing vertex ({listed(self.indexing)}) to a vertex with a loss "
                f"({listed(losses)}) and are related; add a relation d.relate(p, q) between "
                f"two such paths"
            )
        weights = dict(weights or {})
        names = {pair.name for pair in pairs}
        for name in weights:
            if name not in names:
                raise UnknownNameError(
                    f"weight given for {name!r}, which is no compiled term (terms: {', '.join(sorted(names))})"
                )
        return [dataclasses.replace(p, weight=float(weights.get(p.name, p.weight))) for p in pairs]

    # -- what the layers above do with a diagram -----------------------------------
    # The core does not import them: they are plug-ins, loaded on first use (see .plugins).

    def compile(
        self, *, weights: Mapping[str, float] | None = None, backend: str = "torch", check_finite: bool = False
    ) -> Any:
        """The composite loss: on PyTorch, a :class:`~learning_diagrams.torch.CompiledLoss` (a ``torch.nn.Module``).

        ``weights`` maps term names (``'x·student ≤ y'``) to weights, overriding
        those given to :meth:`relate`; ``backend`` names the array back end;
        ``check_finite=True`` makes a call whose total is NaN or infinite raise
        :class:`~learning_diagrams.core.errors.NonFiniteError`, naming the term and the
        first edge along its paths whose output is not finite.
        """
        options = {"check_finite": True} if check_finite else {}  # back ends without the option still work
        return plugins.load("backend", backend).compile(self, weights=weights, **options)

    def check(self, batches: Mapping[str, Any] | None = None, *, backend: str = "torch") -> Any:
        """Run every path once on one batch per indexing vertex: see :func:`learning_diagrams.torch.check`."""
        return plugins.load("backend", backend).check(self, batches)

    def draw(self, path: Any = None, **options: Any) -> Any:
        """Draw the diagram, compiled pairs coloured pair by pair: see :func:`learning_diagrams.io.draw`.

        Returns SVG text, or the path of the file written (``.svg``, ``.png``, ``.pdf``, ``.dot``).
        """
        return plugins.load("renderer", "graphviz").draw(self, path, **options)

    def summary(self) -> str:
        """A text table of the vertices, the edges and the compiled pairs (or why none compile).

        >>> from learning_diagrams.core import losses
        >>> d = Diagram().space("N", data=[0]).space("Y", loss=losses.l1)
        >>> print(d.map("f", "N", "Y", float).map("g", "N", "Y", abs, trainable=False).summary())
        vertices  N (data), Y (loss l1)
        edges     f: N → Y
                  g: N → Y (frozen)
        pairs     f ≤ g  (at Y, weight 1)
        """
        roles = {
            v: [r for r, on in (("data", s.is_indexing), (f"loss {s.loss and s.loss.name}", s.loss)) if on]
            for v, s in self.spaces.items()
        }
        vertices = ", ".join(f"{v} ({', '.join(r)})" if r else v for v, r in roles.items()) or "none"
        edges = [f"{m.name}: {m.src} → {m.tgt}" + ("" if m.trainable else " (frozen)") for m in self.maps.values()]
        try:
            pairs = [str(p) for p in self.parallel_pairs()] or ["none compile"]
        except DiagramError as err:
            pairs = [f"none compile: {type(err).__name__}: {str(err).splitlines()[0]}"]
        rows = [("vertices", [vertices]), ("edges", edges or ["none"]), ("pairs", pairs)]
        return "\n".join(f"{head if i == 0 else '':<10}{line}" for head, lines in rows for i, line in enumerate(lines))

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, str]:
        """Jupyter shows the drawing, and the :meth:`summary` table where Graphviz's dot is missing."""
        bundle = {"text/plain": self.summary()}
        wanted = "image/svg+xml"
        if (include is None or wanted in include) and (exclude is None or wanted not in exclude):
            svg = plugins.load("renderer", "graphviz").repr_svg(self)
            if svg is not None:
                bundle[wanted] = svg
        return bundle

    def __repr__(self) -> str:
        return (
            f"Diagram(spaces={list(self.spaces)}, "
            f"maps=[{', '.join(f'{m.name}: {m.src} → {m.tgt}' for m in self.maps.values())}], "
            f"relations=[{', '.join(map(str, self.relations))}])"
        )


def _refuse_unoriented(unoriented: list[str]) -> None:
    if unoriented:
        listed = "\n  ".join(unoriented)
        raise OrientationError(
            f"{len(unoriented)} pair(s) end at a vertex whose loss is asymmetric but have no "
            f"orientation:\n  {listed}\nsay which path is the prediction with "
            f"d.relate(prediction, target), or mark the loss symmetric: ld.losses.Loss(fn, symmetric=True)"
        )


def _weight(weight: Any, relation: str) -> float:
    """A relation's weight as a float: a finite real number."""
    if isinstance(weight, bool) or not isinstance(weight, (int, float)):
        raise TypeMismatchError(
            f"relation {relation}: its weight must be a number, got {weight!r} ({type(weight).__name__})"
        )
    if not math.isfinite(weight):
        raise OptionError(f"relation {relation}: its weight must be finite, got {weight}")
    return float(weight)
