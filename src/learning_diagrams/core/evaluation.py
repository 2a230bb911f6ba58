"""Evaluating a diagram's paths, as every back end must: the semantics written once.

A compiled loss evaluates, on one batch per indexing vertex, the two paths of
every compiled pair. What any back end must honour is fixed here:

* **Each path prefix is evaluated once per batch.** :func:`plan` lists one
  :class:`Step` per prefix of the given paths, and :class:`Evaluator` caches
  each prefix's value, so a backbone shared by fifty heads runs once.
* **A call does only what a hand-written loss would.**
  :class:`~learning_diagrams.core.program.Program` is the same evaluation laid
  out once, when a loss is compiled, as a flat list of operations on numbered
  slots: it calls the maps' functions directly, and drops each prefix's value as
  soon as no later operation or term reads it. A failing map is reported exactly
  as :meth:`Map.__call__` reports it.
* **Frozen maps are constants.** A step carries ``grad``: whether gradients
  must flow through it, which they must when its map is trainable or a
  trainable map with parameters precedes it on its path. A back end runs the
  other steps without autograd (:meth:`Evaluator.apply`).
* **A term is** ``weight * loss(first, second)``, named by its pair, a failing
  loss reported with its pair and vertex (:class:`Term`). Under the reduction
  ``"sum"`` the loss is the per-sample form, and the term is
  ``weight * (size / |B|) * Σ_{x∈B} d(first x, second x)``, ``size`` the
  number of samples in the data set of the pair's source (unscaled when unknown).
* **A non-finite term is traced to its first non-finite value**: the batch,
  then the prefixes of the first path, then those of the second, in order
  (:func:`first_nonfinite`); :func:`explain_nonfinite` says which in words.

A dry run checks the value at every vertex against the vertex's annotation
(:func:`check_value`) and reports what it saw (:class:`CheckReport`).

>>> from learning_diagrams.core import Diagram
>>> d = Diagram().space("N", data=[3]).space("X").map("f", "N", "X", abs).map("g", "X", "X", lambda v: v + 1)
>>> steps = plan([d.path("f·g")], d.maps, parametric=lambda fn: False)
>>> [(prefix, step.grad) for prefix, step in steps.items()]
[(('f',), True), (('f', 'g'), True)]
>>> Evaluator(steps).value(("f", "g"), {(): -3})
4
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NoReturn

from .arrays import is_array
from .errors import MapError, TypeMismatchError
from .graph import Path
from .program import Operation, Program
from .messages import (
    LOSS_FAILED,
    LOSS_NOT_SCALAR,
    NONFINITE_BATCH,
    NONFINITE_EDGE,
    NONFINITE_LOSS,
    NONFINITE_TERM,
    PER_SAMPLE_NOT_VECTOR,
    UNKNOWN_SIZE,
)
from .types import conforms, describe

if TYPE_CHECKING:
    from .diagram import Diagram, Map, Pair

__all__ = [
    "Step",
    "plan",
    "Evaluator",
    "Program",
    "Operation",
    "Term",
    "first_nonfinite",
    "explain_nonfinite",
    "CheckReport",
    "check_value",
]


@dataclass(frozen=True)
class Step:
    """Apply ``map`` to the value of the prefix one edge shorter.

    ``along`` is the prefix as a path (for error messages); ``grad`` says whether
    gradients must flow through the step.
    """

    map: Map
    along: Path
    grad: bool


def plan(
    paths: Iterable[Path], maps: Mapping[str, Map], *, parametric: Callable[[Any], bool]
) -> dict[tuple[str, ...], Step]:
    """One :class:`Step` per non-empty prefix of ``paths``, keyed by the prefix's edges.

    ``parametric(fn)`` tells whether a map's function holds parameters (a
    ``torch.nn.Module`` on PyTorch): a trainable map with parameters makes every
    later step of its path need gradients, even a frozen one.
    """
    steps: dict[tuple[str, ...], Step] = {}
    for path in paths:
        upstream = False
        for i, e in enumerate(path.edges):
            m = maps[e]
            steps[path.edges[: i + 1]] = Step(m, Path(path.source, m.tgt, path.edges[: i + 1]), m.trainable or upstream)
            upstream = upstream or (m.trainable and parametric(m.fn))
    return steps


class Evaluator:
    """The values of paths on one batch, each prefix computed once.

    ``values`` maps prefixes (tuples of edge names) to their values and starts as
    ``{(): batch}``; :meth:`value` fills it in as it goes. Back ends override
    :meth:`apply` to run the steps that need no gradients without autograd.
    """

    def __init__(self, steps: Mapping[tuple[str, ...], Step]):
        self.steps = dict(steps)

    def value(self, edges: tuple[str, ...], values: dict[tuple[str, ...], Any]) -> Any:
        """The value of the path ``edges``, reusing and caching the values of its prefixes."""
        known = len(edges)
        while edges[:known] not in values:
            known -= 1
        x = values[edges[:known]]
        for i in range(known, len(edges)):
            prefix = edges[: i + 1]
            x = values[prefix] = self.apply(self.steps[prefix], x)
        return x

    def apply(self, step: Step, x: Any) -> Any:
        """Run one step (with autograd, if the back end has one)."""
        return step.map(x, along=step.along)


def known_sizes(data: Mapping[str, Any], size: Callable[[Any, str], int | None], *, stacklevel: int) -> dict[str, int]:
    """The size of each source's data set (``size(data, vertex)``, a back end's reading), where it is
    known; a ``UserWarning`` for each where it is not (``reduction="sum"`` then leaves its sums unscaled)."""
    sizes = {}
    for vertex, source in data.items():
        n = size(source, vertex)
        if n is None:
            message = UNKNOWN_SIZE.format(vertex=vertex, kind=type(source).__name__)
            warnings.warn(message, UserWarning, stacklevel=stacklevel + 1)
        else:
            sizes[vertex] = n
    return sizes


@dataclass(frozen=True)
class Term:
    """The term ``weight * loss(first, second)`` of a pair, with the back end's formula of its loss.

    With ``reduction="sum"``, ``fn`` is the loss's per-sample form (one value per
    sample) and the term is their sum, scaled by ``size / |B|`` when the size of
    the source's data set is known: the unbiased estimate of the paper's sum over
    the data set. Called with ``scaled=False`` it is the batch's own sum.

    ``scalar=True`` says that ``fn`` always returns a scalar (a back end's own
    batch-mean formula, such as ``torch.nn.functional.mse_loss``): under the
    reduction ``"mean"`` the term is then ``fn``'s value, weighted, and a
    :class:`Program` computes it without a call of its own (:attr:`direct`). Any
    other function's value is checked to be a scalar, at every call.

    >>> from learning_diagrams.core import Diagram, losses
    >>> pair = Diagram().space("N", data=[0]).space("Y", loss=losses.l1).map("f", "N", "Y", abs).map(
    ...     "g", "N", "Y", abs).relate("f", "g").parallel_pairs()[0]
    >>> import numpy as np
    >>> term = Term(pair, lambda a, b: np.abs(a - b), reduction="sum", size=10)
    >>> float(term(np.array([1.0, 2.0]), np.zeros(2))), float(term(np.array([1.0, 2.0]), np.zeros(2), scaled=False))
    (15.0, 3.0)
    """

    pair: Pair
    fn: Callable[[Any, Any], Any]
    reduction: str = "mean"
    size: int | None = None
    scalar: bool = False

    @classmethod
    def of_pairs(
        cls,
        pairs: Sequence[Pair],
        reduction: str,
        sizes: Mapping[str, int],
        *,
        function: Callable[..., Callable[[Any, Any], Any]],
        scalar: Callable[[Any, str], bool],
    ) -> dict[str, Term]:
        """Each pair's term by name, with a back end's ``function(loss, reduction, pair=, target=)``
        (its ``loss_function``) and ``scalar(loss, reduction)`` (its ``returns_scalar``); ``sizes``
        are the known data set sizes by source vertex (for ``reduction="sum"``)."""
        return {
            pair.name: cls(
                pair,
                function(pair.loss, reduction, pair=pair.name, target=pair.target),
                reduction,
                sizes.get(pair.source),
                scalar=scalar(pair.loss, reduction),
            )
            for pair in pairs
        }

    @property
    def direct(self) -> bool:
        """Whether the term is ``weight * fn(first, second)`` with nothing to check or reduce."""
        return self.scalar and self.reduction == "mean"

    def __call__(self, first: Any, second: Any, *, scaled: bool = True) -> Any:
        try:
            value = self.fn(first, second)
        except Exception as err:
            self.failed(first, second, err)
        if self.reduction == "sum":
            value = self._sum(value, scaled)
        if not (is_array(value) and len(value.shape) == 0):  # a sum of terms must be a scalar to train on
            p = self.pair
            raise TypeMismatchError(
                LOSS_NOT_SCALAR.format(loss=p.loss.name, target=p.target, value=describe(value), pair=p.name)
            )
        return value if self.pair.weight == 1.0 else self.pair.weight * value

    def failed(self, first: Any, second: Any, err: Exception) -> NoReturn:
        """Raise :class:`MapError`, from ``err``, naming the loss, its vertex and its pair, for ``fn`` raising ``err``."""
        raise MapError(
            LOSS_FAILED.format(
                loss=self.pair.loss.name,
                target=self.pair.target,
                pair=self.pair.name,
                first=describe(first),
                second=describe(second),
                error=type(err).__name__,
                message=err,
            )
        ) from err

    def _sum(self, per_sample: Any, scaled: bool) -> Any:
        """``Σ`` of the per-sample values, times ``size / |B|`` when ``scaled`` and the size is known."""
        if not (is_array(per_sample) and len(per_sample.shape) == 1):
            p = self.pair
            raise TypeMismatchError(
                PER_SAMPLE_NOT_VECTOR.format(loss=p.loss.name, target=p.target, value=describe(per_sample), pair=p.name)
            )
        total = per_sample.sum()
        count = per_sample.shape[0]
        return total * (self.size / count) if scaled and self.size is not None and count else total


def first_nonfinite(
    pair: Pair, values: Mapping[tuple[str, ...], Any], finite: Callable[[Any], bool]
) -> tuple[str, ...] | None:
    """The first prefix along ``pair``'s paths whose value in ``values`` is not finite, else None.

    The order is the order of evaluation: the batch (the empty prefix), then each
    prefix of ``pair.first``, then each of ``pair.second``. ``finite(value)`` is the
    back end's test; prefixes missing from ``values`` are passed over.

    >>> from learning_diagrams.core import Diagram, losses
    >>> d = Diagram().space("N", data=[1.0]).space("Y", loss=losses.l1)
    >>> d = d.space("X").map("f", "N", "X", abs).map("g", "X", "Y", abs).map("h", "N", "Y", abs).relate("f·g", "h")
    >>> pair = d.parallel_pairs()[0]
    >>> first_nonfinite(pair, {(): 1.0, ("f",): 2.0, ("f", "g"): float("nan")}, lambda v: v == v)
    ('f', 'g')
    """
    prefixes = [(), *(path[: i + 1] for path in (pair.first, pair.second) for i in range(len(path)))]
    for prefix in prefixes:
        if prefix in values and not finite(values[prefix]):
            return prefix
    return None


def explain_nonfinite(
    pair: Pair, prefix: tuple[str, ...] | None, steps: Mapping[tuple[str, ...], Step], value: str
) -> str:
    """Say in words why the term of ``pair`` is ``value`` ("nan", "inf"): its first non-finite prefix.

    ``prefix`` is what :func:`first_nonfinite` found: ``()`` is the batch, ``None``
    means every value was finite and the loss itself gave ``value``.
    """
    if prefix is None:
        culprit = NONFINITE_LOSS.format(loss=pair.loss.name, target=pair.target, value=value)
    elif not prefix:
        culprit = NONFINITE_BATCH.format(vertex=pair.source)
    else:
        step = steps[prefix]
        culprit = NONFINITE_EDGE.format(name=step.map.name, src=step.map.src, tgt=step.map.tgt, path=step.along)
    return NONFINITE_TERM.format(pair=pair.name, value=value, culprit=culprit)


def check_value(diagram: Diagram, path: Path, value: Any) -> None:
    """Raise :class:`TypeMismatchError` if ``value``, at the end of ``path``, does not fit its vertex's annotation."""
    annotation = diagram.spaces[path.target].type
    reason = conforms(value, annotation)
    if reason:
        if path.edges:
            e = path.edges[-1]
            by = f"edge {e!r} ({diagram.graph.src(e)} → {path.target}) gave a {describe(value)} at"
        else:
            by = f"the batch is a {describe(value)} at"
        raise TypeMismatchError(
            f"{by} vertex {path.target!r} (path {path}), which is annotated {annotation!r}: {reason}"
        )


@dataclass(frozen=True)
class CheckReport:
    """What a dry run saw: one row ``(vertex, path, value description)`` per path, and each term."""

    rows: tuple[tuple[str, str, str], ...]
    terms: dict[str, float]

    def __str__(self) -> str:
        table = [("vertex", "path", "value"), *self.rows]
        widths = [max(len(row[i]) for row in table) for i in range(3)]
        lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in table]
        lines.insert(1, "  ".join("-" * w for w in widths))
        lines += [f"term {name} = {value:.6g}" for name, value in self.terms.items()]
        return "\n".join(lines)
