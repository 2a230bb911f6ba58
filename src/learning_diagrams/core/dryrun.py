"""The dry run: every path of a diagram run once on one batch, every value checked, every term computed.

Each back end makes it in its own context (PyTorch: eval mode, without autograd) with
its own reading of data and its own loss formulas: :func:`dry_run_batches` checks the
batches given, :func:`dry_run` runs the paths and reports a
:class:`~learning_diagrams.core.evaluation.CheckReport`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from .errors import NoBatchError, UnknownNameError
from .evaluation import CheckReport, Evaluator, Term, check_value, plan
from .messages import NO_DATA, NOT_INDEXING
from .types import describe

if TYPE_CHECKING:
    from .diagram import Diagram

__all__ = ["dry_run_batches", "dry_run"]


def dry_run_batches(
    diagram: Diagram, batches: Mapping[str, Any] | None, *, call: str = "d.check({batch})"
) -> dict[str, Any]:
    """The batches given to a dry run, checked: each for an indexing vertex, and one for each that has no data.

    ``call`` is how the message writes the dry run's call, ``{batch}`` standing for the batch
    (a back end other than PyTorch adds its name).
    Raises :class:`UnknownNameError` or :class:`NoBatchError`, naming the vertex.
    """
    given = dict(batches or {})
    for name in given:
        if name not in diagram.indexing:
            raise UnknownNameError(
                NOT_INDEXING.format(what="a batch", vertex=name, indexing=", ".join(diagram.indexing) or "none")
            )
    missing = [v for v in diagram.indexing if v not in given and diagram.spaces[v].data is None]
    if missing:
        raise NoBatchError(
            NO_DATA.format(vertices=", ".join(map(repr, missing)), vertex=missing[0])
            + f"; or give the dry run a batch: {call.format(batch=f'{{{missing[0]!r}: batch}}')}"
        )
    return given


def dry_run(
    diagram: Diagram,
    batches: Mapping[str, Any],
    *,
    first: Callable[[Any, str], Any],
    loss_function: Callable[[Any], Callable[[Any, Any], Any]],
) -> CheckReport:
    """Run every path of ``diagram`` once from each indexing vertex and compute every compiled term.

    ``batches`` are the checked batches (:func:`dry_run_batches`); a vertex without one
    takes ``first(data, vertex)``, the first batch of its data. Each value is checked
    against its vertex's annotation (:func:`check_value`), and each term is computed
    with ``loss_function(loss)``, the back end's formula. A back end runs this in its
    own context (PyTorch: eval mode, without autograd).
    """
    data = diagram.indexing_data()
    rows: list[tuple[str, str, str]] = []
    values: dict[str, dict[tuple[str, ...], Any]] = {}
    for source in diagram.indexing:
        batch = batches[source] if source in batches else first(data[source], source)
        values[source] = {(): batch}
        paths = sorted(diagram.paths([source]), key=len)  # prefixes first
        evaluator = Evaluator(plan(paths, diagram.maps, parametric=lambda fn: False))
        for path in paths:
            x = evaluator.value(path.edges, values[source])
            check_value(diagram, path, x)
            rows.append((path.target, str(path), describe(x)))
    # The compiled pairs, or none when the diagram compiles nothing yet.
    pairs = diagram.parallel_pairs() if any(s.loss is not None for s in diagram.spaces.values()) else []
    terms = {
        pair.name: float(
            Term(pair, loss_function(pair.loss))(values[pair.source][pair.first], values[pair.source][pair.second])
        )
        for pair in pairs
    }
    return CheckReport(tuple(rows), terms)
