"""Learning diagrams: a learning graph with spaces, maps, losses and relations attached.

A :class:`Diagram` is built vertex by vertex and edge by edge. Each vertex is
a :class:`Space` that may be an *indexing* vertex (it indexes a data set: it is
declared ``indexing=True`` or carries data), carry a loss (a Lawvere metric,
:mod:`learning_diagrams.core.losses`) and a type annotation. Each edge is a
:class:`Map` carrying a ``torch.nn.Module`` or any callable, trainable or
frozen; no edge ends at an indexing vertex (the paper's functor to Ind).
Relations ``p ≤ q`` between parallel paths, ending anywhere, generate the
preorder (:mod:`learning_diagrams.core.order`) that decides which parallel
pairs are compiled and in which argument order.

Which pairs compile
-------------------
The paths considered are those enumerated (simple paths or walks, see
:data:`~learning_diagrams.core.paths.CYCLES`, within ``max_length``) plus
every declared relation's own paths. A pair of distinct parallel paths
``(p, q)`` among them compiles when it starts at an indexing vertex, ends at a
vertex with a loss, and

* ``p ≤ q`` or ``q ≤ p`` in the preorder; the loss is called as
  ``loss(p(x), q(x))`` when ``p ≤ q`` (the first argument is the prediction
  side). If both hold the pair is compiled once, in enumeration order, and
  only when the loss is symmetric;
* or the diagram declares no relation at all: then every parallel pair
  compiles, in enumeration order (shorter path first, then by the
  declaration order of their edges), which needs a symmetric loss.

No relation is dropped: one from which no such pair follows is an error
naming it and why, and :meth:`Diagram.explain` lists the pairs each produced.

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
``x·student ≤ y`` would also have compiled ``x·student·soft ≤ y·soft``. The
paper's preorder is on edges: ``student ≤ teacher``, between two edges into
the logits ``L``, which has no loss, is carried to every vertex with one:

>>> e = (Diagram()
...      .space("N", indexing=True).space("X").space("L")
...      .space("G", loss=losses.KLDivergence(temperature=2.0))
...      .map("x", "N", "X", lambda b: b[0]).map("soft", "L", "G", torch.nn.Identity())
...      .map("teacher", "X", "L", teacher, trainable=False).map("student", "X", "L", student)
...      .relate("student", "teacher"))
>>> print(e.explain())
student ≤ teacher  (weight 1)
    x·student·soft ≤ x·teacher·soft  (at G, weight 1)
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from . import plugins
from .errors import (
    ConflictError,
    DiagramError,
    MapError,
    NoBatchError,
    NothingToCompileError,
    OptionError,
    TypeMismatchError,
    UnknownNameError,
)
from .graph import Graph, Path, PathLike
from .losses import Loss, as_loss, check_reduction
from .messages import (
    INTO_INDEXING,
    MAP_FAILED,
    MAP_HAS_NO_FUNCTION,
    MAP_NEEDS_CALLABLE,
    NO_DATA,
    NOT_INDEXING,
    listed,
    located,
)
from . import pairs as derivation
from .order import Preorder, check_parallel
from .pairs import Explanation, Pair, Relation
from .paths import CYCLES, DEFAULT_MAX_PATHS, PathMatrix, check_cycles, edge_order, enumerate_paths
from .types import check_annotation, describe
from .universe import universe

__all__ = ["Space", "Map", "Relation", "Pair", "Diagram", "Explanation", "CYCLES"]


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


class Diagram:
    """A learning diagram, built with :meth:`space`, :meth:`map` and :meth:`relate`.

    Parameters
    ----------
    max_length : int, optional
        Longest path enumerated; required with ``cycles="walks"``. A declared
        relation's own paths are considered whatever their length.
    max_paths : int
        Path enumeration raises :class:`~learning_diagrams.core.errors.PathExplosionError`
        past this many paths, or, on a graph of more than 1,000 vertices and edges, past
        this many per 1,000 of them (:func:`~learning_diagrams.core.paths.path_bound`).
    cycles : {"simple", "walks"}
        ``"simple"`` (default): paths use no edge twice; ``"walks"``: every walk of
        at most ``max_length`` edges, the paper's ``I + A + … + A^k``.
    """

    def __init__(self, *, max_length: int | None = None, max_paths: int = DEFAULT_MAX_PATHS, cycles: str = "simple"):
        check_cycles(cycles, max_length)
        self.graph = Graph()
        self.spaces: dict[str, Space] = {}
        self.maps: dict[str, Map] = {}
        self.relations: list[Relation] = []
        self.max_length, self.max_paths, self.cycles = max_length, max_paths, cycles

    # -- building -----------------------------------------------------------
    def space(
        self, name: str, *, data: Any = None, loss: Any = None, type: Any = None, indexing: bool = False
    ) -> Diagram:
        """Add a vertex; ``data`` (or ``indexing=True``) makes it an indexing vertex, ``loss`` lets it compare paths.

        An indexing vertex declared without data gets it later: ``ld.assign_data``,
        ``d.compile(data={name: loader})`` or ``ld.fit(d, data={name: loader})``.
        """
        with located(f"vertex {name!r}"):
            loss = as_loss(loss)
        check_annotation(type, f"vertex {name!r}")
        self.graph.add_vertex(name)
        self.spaces[name] = Space(name, data, loss, type, bool(indexing) or data is not None)
        return self

    def map(self, name: str, src: str, tgt: str, fn: Any, *, trainable: bool = True, training: bool = True) -> Diagram:
        """Add an edge ``name: src → tgt`` computing ``fn`` (a module or a callable).

        ``trainable=False`` freezes it; ``training=False`` keeps a trainable module in eval mode.
        No edge may end at an indexing vertex (:class:`~learning_diagrams.core.errors.ConflictError`).
        """
        if fn is not None and not callable(fn):
            raise TypeMismatchError(
                MAP_NEEDS_CALLABLE.format(where=f"edge {name!r} ({src} → {tgt})", kind=type(fn).__name__)
            )
        if isinstance(tgt, str) and tgt in self.spaces and self.spaces[tgt].is_indexing:
            raise ConflictError(self._into_indexing(name, src, tgt, "give the edge another target"))
        self.graph.add_edge(name, src, tgt)
        self.maps[name] = Map(name, src, tgt, fn, trainable, training)
        return self

    def relate(self, p: PathLike, q: PathLike, *, weight: float = 1.0) -> Diagram:
        """Declare ``p ≤ q`` between parallel paths: ``p`` is the loss's first argument.

        The paths may end at any vertex: whiskering carries the relation to the
        vertices with a loss. Its own pair is considered even when a path uses an
        edge twice or is longer than ``max_length``. ``weight`` multiplies the
        term of exactly this pair: a finite real number (negative for an
        adversarial term, 0 to keep the pair but not train on it).

        Raises
        ------
        NotParallelError
            when the paths do not share their ends. A relation that yields no pair
            (a path related to itself, one that reaches no vertex with a loss) or that
            is declared twice with two weights is refused when the pairs are derived
            (:meth:`parallel_pairs`), naming it.
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

    # -- indexing vertices and their data ------------------------------------
    @property
    def indexing(self) -> tuple[str, ...]:
        """The indexing vertices (declared so, or carrying data), in declaration order."""
        return tuple(v for v, s in self.spaces.items() if s.is_indexing)

    def check_indexing(self, becoming: Iterable[str] = ()) -> None:
        """Raise :class:`ConflictError` if an edge ends at an indexing vertex, or at one of ``becoming``.

        ``becoming`` names vertices about to be given data (``ld.assign_data`` asks
        before it changes anything).
        """
        becoming = set(becoming)
        for v, s in self.spaces.items():
            if s.is_indexing or v in becoming:
                for e in self.graph.in_edges(v):
                    m = self.maps[e]
                    fix = (
                        f"vertex {v!r} cannot take data while edges end there"
                        if v in becoming and not s.is_indexing
                        else "remove the edge or give it another target"
                    )
                    raise ConflictError(self._into_indexing(e, m.src, v, fix))

    def _into_indexing(self, edge: str, src: str, tgt: str, fix: str) -> str:
        from_indexing = src in self.spaces and self.spaces[src].is_indexing
        return INTO_INDEXING.format(
            edge=edge,
            src=src,
            tgt=tgt,
            why=(
                "the paper's Ind would send an edge between two indexing vertices to an identity, but a "
                "batch is drawn at each indexing vertex, so a value computed there would compete with it"
                if from_indexing
                else "in the paper's Ind (section 4.3) indexed vertices precede non-indexed ones: there is "
                "no arrow from a non-indexing vertex to an indexing one"
            ),
            fix=fix,
        )

    def indexing_data(self, given: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """The data of every indexing vertex, ``given`` taking precedence (``None`` where there is none).

        ``given`` maps indexing vertices to data sources (the ``data=`` of
        ``compile`` and ``ld.fit``); a key that is no indexing vertex raises
        :class:`UnknownNameError`.
        """
        given = dict(given or {})
        indexing = self.indexing
        for vertex in given:
            if vertex not in indexing:
                raise UnknownNameError(
                    NOT_INDEXING.format(what="data", vertex=vertex, indexing=listed(indexing))
                    + f"; mark it so: d.space({vertex!r}, indexing=True)"
                )
        return {v: given[v] if given.get(v) is not None else self.spaces[v].data for v in indexing}

    def require_data(self, vertices: Iterable[str], given: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """The data of ``vertices`` (indexing vertices), or :class:`NoBatchError` naming those without any."""
        data = self.indexing_data(given)
        vertices = list(vertices)
        missing = [v for v in vertices if data.get(v) is None]
        if missing:
            raise NoBatchError(NO_DATA.format(vertices=listed(map(repr, missing)), vertex=missing[0]))
        return {v: data[v] for v in vertices}

    # -- paths, the preorder and the pairs -----------------------------------
    def paths(self, sources: Iterable[str] | None = None) -> PathMatrix:
        """The paths the diagram considers, as a path matrix (rows of ``sources`` only, if given).

        Those enumerated (simple paths or walks, per ``cycles``, within ``max_length``),
        and every declared relation's own paths, which may use an edge twice or be
        longer; each entry ordered shortest first, then by edge declaration order.
        """
        found = enumerate_paths(
            self.graph, sources, max_length=self.max_length, max_paths=self.max_paths, cycles=self.cycles
        )
        if not self.relations:
            return found
        rows = None if sources is None else set(sources)
        known: dict[tuple[str, str], set[Path]] = {}  # the entries a relation's path falls in, as sets
        extra: dict[tuple[str, str], list[Path]] = {}
        for r in self.relations:
            for p in (r.first, r.second):
                key = (p.source, p.target)
                entry = known.get(key)
                if entry is None:
                    entry = known[key] = set(found[key])
                if p not in entry and (rows is None or p.source in rows):
                    entry.add(p)
                    extra.setdefault(key, []).append(p)
        if not extra:
            return found
        # Only the entries a relation adds to are sorted again; the others already are.
        return found.merged(extra, edge_order(self.graph))

    def preorder(self, paths: PathMatrix | None = None) -> Preorder:
        """The preorder on this diagram's paths (or on ``paths``) generated by its relations.

        The diagram's paths are those of :meth:`paths`; where they can be told without
        listing them (no cycle, or walks) they are not listed (:func:`~learning_diagrams.core.universe.universe`).
        """
        relations = [(r.first, r.second) for r in self.relations]
        if paths is not None:
            return Preorder(self.graph, paths, relations)
        own = [p for pq in relations for p in pq]
        found = universe(self.graph, own, max_length=self.max_length, max_paths=self.max_paths, cycles=self.cycles)
        return Preorder(self.graph, found, relations)

    def parallel_pairs(self) -> list[Pair]:
        """The pairs that compile, each oriented ``first ≤ second``, in a fixed order.

        The rules are in the module docstring; :meth:`explain` says which relation yields which pair.

        Raises
        ------
        NoIndexingVertexError
            when no vertex is indexing;
        ConflictError
            when an edge ends at an indexing vertex, or one pair is declared twice
            (or both ways, at a symmetric loss) with different weights;
        NoLossError
            when a relation yields no pair from an indexing vertex to a vertex with a
            loss (the message names it, and why);
        OrientationError
            when an asymmetric loss would compare a pair whose order is not declared.
        """
        return derivation.refuse(derivation.derive(self))

    def explain(self) -> Explanation:
        """Each relation and the compiled pairs that follow from it; ``print`` it for a table.

        A pair follows from a relation when the relation alone, whiskered and
        composed, relates its two paths; pairs that need several relations
        together are listed apart. A relation that yields nothing says why, and
        pairs left unoriented are listed rather than raised.

        >>> from learning_diagrams.core import losses
        >>> d = (Diagram().space("N", indexing=True).space("Y", loss=losses.l1).map("y", "N", "Y", abs)
        ...      .map("f", "N", "Y", abs).map("r", "Y", "Y", abs).relate("f", "y").relate("r·r", "r"))
        >>> print(d.explain())
        f ≤ y  (weight 1)
            f ≤ y  (at Y, weight 1)
            f·r ≤ y·r  (at Y, weight 1)
        r·r ≤ r  (weight 1)
            no pair: its whiskerings from an indexing vertex to a vertex with a loss, such as y·r·r ≤ y·r, are not among the diagram's paths (y·r·r uses edge 'r' twice, and simple paths use no edge twice); enumerate walks, Diagram(cycles='walks', max_length=3), or declare the whiskered relation itself (d.relate('y·r·r', 'y·r'))
        """
        return derivation.explain(self, derivation.derive(self))

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
                f"indexing vertex ({listed(self.indexing)}) to a vertex with a loss ({listed(losses)}); "
                f"give a vertex a loss, add a second path to one, or declare a relation d.relate(p, q) "
                f"between two such paths (its own paths count even where enumeration stops)"
            )
        weights = dict(weights or {})
        if not weights:  # pairs are frozen, so they are shared rather than copied
            return pairs
        names = {pair.name for pair in pairs}
        for name in weights:
            if name not in names:
                raise UnknownNameError(
                    f"weight given for {name!r}, which is no compiled term (terms: {', '.join(sorted(names))})"
                )
        return [dataclasses.replace(p, weight=float(weights[p.name])) if p.name in weights else p for p in pairs]

    # -- what the layers above do with a diagram -----------------------------------
    # The core does not import them: they are plug-ins, loaded on first use (see .plugins).

    def compile(
        self,
        *,
        weights: Mapping[str, float] | None = None,
        backend: str = "torch",
        check_finite: bool = False,
        reduction: str = "mean",
        data: Mapping[str, Any] | None = None,
        fuse: bool | str = False,
    ) -> Any:
        """The composite loss: on PyTorch, a :class:`~learning_diagrams.torch.CompiledLoss` (a ``torch.nn.Module``).

        ``weights`` maps term names (``'x·student ≤ y'``) to weights, overriding
        those given to :meth:`relate`; ``backend`` names the array back end;
        ``check_finite=True`` makes a call whose total is NaN or infinite raise
        :class:`~learning_diagrams.core.errors.NonFiniteError`, naming the term and the
        first edge along its paths whose output is not finite. ``reduction`` is
        ``"mean"`` (each term the batch mean of its per-sample losses) or ``"sum"``
        (the per-sample losses summed, scaled by ``|data set| / |batch|``: an
        unbiased estimate of the paper's ``Σ_{x∈X} d(p x, q x)``; see
        :mod:`learning_diagrams.core.losses`). ``data`` maps indexing vertices to
        data sources, in place of their own; every source of a compiled pair needs
        data (:class:`~learning_diagrams.core.errors.NoBatchError` otherwise).
        ``fuse=True`` runs each family of parallel maps as one call on stacked
        parameters, which ``parameters()`` then gives in place of the members' own
        (:mod:`learning_diagrams.core.families`, :mod:`learning_diagrams.torch.fusion`;
        PyTorch only, for now).
        """
        check_reduction(reduction)
        options: dict[str, Any] = {"check_finite": True} if check_finite else {}
        if reduction != "mean":  # back ends without the options still work with their defaults
            options["reduction"] = reduction
        if data is not None:
            options["data"] = data
        if fuse is not False:  # passed on as given: a back end refuses what is not True or False
            options["fuse"] = fuse
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
            v: [
                r
                for r, on in (
                    ("data" if s.data is not None else "indexing", s.is_indexing),
                    (f"loss {s.loss and s.loss.name}", s.loss),
                )
                if on
            ]
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


def _weight(weight: Any, relation: str) -> float:
    """A relation's weight as a float: a finite real number."""
    if isinstance(weight, bool) or not isinstance(weight, (int, float)):
        raise TypeMismatchError(
            f"relation {relation}: its weight must be a number, got {weight!r} ({type(weight).__name__})"
        )
    if not math.isfinite(weight):
        raise OptionError(f"relation {relation}: its weight must be finite, got {weight}")
    return float(weight)
