"""Checking a diagram before training: run every path once and report what each vertex holds.

:func:`check` draws one batch per indexing vertex (or takes the ones given),
runs every path from it (in eval mode, without autograd, restoring each
module's mode afterwards), and checks each value against its vertex's type
annotation. It then computes every compiled term once. The first failure
raises an error naming the edge and vertex (a
:class:`~learning_diagrams.core.errors.MapError` or
:class:`~learning_diagrams.core.errors.TypeMismatchError`).

>>> import torch
>>> import learning_diagrams as ld
>>> d = (ld.Diagram().space("N", data=torch.ones(4, 2)).space("Y", type=ld.TensorType(None, 3))
...      .map("f", "N", "Y", torch.nn.Linear(2, 1)))
>>> d.check()
Traceback (most recent call last):
...
learning_diagrams.core.errors.TypeMismatchError: edge 'f' (N → Y) gave a Tensor[float32, (4, 1)] at vertex 'Y' (path f), which is annotated TensorType(None, 3): Tensor[float32, (4, 1)] does not have shape (*, 3)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from ..core.diagram import Diagram
from ..core.evaluation import CheckReport, Evaluator, Term, check_value, dry_run_batches, plan
from ..core.types import describe
from .data import DataSource
from .losses import loss_function

__all__ = ["check", "CheckReport"]


def check(diagram: Diagram, batches: Mapping[str, Any] | None = None) -> CheckReport:
    """Run ``diagram`` once on one batch per indexing vertex and report every vertex's value.

    Parameters
    ----------
    diagram : Diagram
    batches : mapping of indexing vertex to batch, optional
        Batches to use; vertices left out draw the first batch of their data (an
        indexing vertex without data needs one here:
        :class:`~learning_diagrams.core.errors.NoBatchError` otherwise).
        Use a small batch: every path is run once: those enumerated, and the
        declared relations' own.
    """
    batches = dry_run_batches(diagram, batches)
    data = diagram.indexing_data()
    modules = [m.fn for m in diagram.maps.values() if isinstance(m.fn, nn.Module)]
    modes = [(module, module.training) for module in modules]
    rows: list[tuple[str, str, str]] = []
    values: dict[str, dict[tuple[str, ...], Any]] = {}
    try:
        for module in modules:
            module.eval()
        with torch.no_grad():
            for source in diagram.indexing:
                batch = batches[source] if source in batches else next(DataSource(data[source], source).forever())
                values[source] = {(): batch}
                paths = sorted(diagram.paths([source]), key=len)  # prefixes first
                evaluator = Evaluator(plan(paths, diagram.maps, parametric=lambda fn: False))
                for path in paths:
                    x = evaluator.value(path.edges, values[source])
                    check_value(diagram, path, x)
                    rows.append((path.target, str(path), describe(x)))
            terms = {
                pair.name: float(
                    Term(pair, loss_function(pair.loss))(
                        values[pair.source][pair.first], values[pair.source][pair.second]
                    )
                )
                for pair in _pairs(diagram)
            }
    finally:
        for module, mode in modes:
            module.train(mode)
    return CheckReport(tuple(rows), terms)


def _pairs(diagram: Diagram) -> list[Any]:
    """The compiled pairs, or none when the diagram compiles nothing yet."""
    return diagram.parallel_pairs() if any(s.loss is not None for s in diagram.spaces.values()) else []
