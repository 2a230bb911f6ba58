"""Checking a diagram before training: run every path once and report what each vertex holds.

:func:`check` draws one batch per indexing vertex (or takes the ones given),
runs every path from it (in eval mode, without autograd, restoring each
module's mode afterwards), and checks each value against its vertex's type
annotation. It then computes every compiled term once. The first failure
raises an error naming the edge and vertex (a
:class:`~learning_diagrams.errors.MapError` or
:class:`~learning_diagrams.errors.TypeMismatchError`).

>>> import torch
>>> import learning_diagrams as ld
>>> d = (ld.Diagram().space("N", data=torch.ones(4, 2)).space("Y", type=ld.TensorType(None, 3))
...      .map("f", "N", "Y", torch.nn.Linear(2, 1)))
>>> d.check()
Traceback (most recent call last):
...
learning_diagrams.errors.TypeMismatchError: edge 'f' (N → Y) gave a Tensor[float32, (4, 1)] at vertex 'Y' (path f), which is annotated TensorType(None, 3): Tensor[float32, (4, 1)] does not have shape (*, 3)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Mapping

import torch
from torch import nn

from .data import batches as draw_batches
from .errors import TypeMismatchError, UnknownNameError
from .types import conforms, describe

if TYPE_CHECKING:
    from .diagram import Diagram

__all__ = ["check", "CheckReport"]


@dataclass(frozen=True)
class CheckReport:
    """What :func:`check` saw: one row ``(vertex, path, value description)`` per path, and each term."""

    rows: tuple[tuple[str, str, str], ...]
    terms: dict[str, float]

    def __str__(self) -> str:
        table = [("vertex", "path", "value")] + list(self.rows)
        widths = [max(len(row[i]) for row in table) for i in range(3)]
        lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in table]
        lines.insert(1, "  ".join("-" * w for w in widths))
        lines += [f"term {name} = {value:.6g}" for name, value in self.terms.items()]
        return "\n".join(lines)


def check(diagram: Diagram, batches: Mapping[str, Any] | None = None) -> CheckReport:
    """Run ``diagram`` once on one batch per indexing vertex and report every vertex's value.

    Parameters
    ----------
    diagram : Diagram
    batches : mapping of indexing vertex to batch, optional
        Batches to use; vertices left out draw the first batch of their data.
        Use a small batch: every path is run once.
    """
    batches = dict(batches or {})
    for name in batches:
        if name not in diagram.indexing:
            raise UnknownNameError(
                f"a batch was given for {name!r}, which is not an indexing vertex "
                f"(indexing vertices: {', '.join(diagram.indexing) or 'none'})"
            )
    modules = [m.fn for m in diagram.maps.values() if isinstance(m.fn, nn.Module)]
    modes = [(module, module.training) for module in modules]
    rows, values = [], {}
    try:
        for module in modules:
            module.eval()
        with torch.no_grad():
            for source in diagram.indexing:
                batch = (
                    batches[source] if source in batches else next(draw_batches(diagram.spaces[source].data, source))
                )
                values[source] = {(): batch}
                for path in sorted(diagram.paths([source]), key=len):  # prefixes first
                    x = _run(diagram, path, values[source])
                    rows.append((path.target, str(path), describe(x)))
            terms = {
                pair.name: float(pair.term(values[pair.source][pair.first], values[pair.source][pair.second]))
                for pair in _pairs(diagram)
            }
    finally:
        for module, mode in modes:
            module.train(mode)
    return CheckReport(tuple(rows), terms)


def _run(diagram: Diagram, path, values: dict) -> Any:
    """The value of ``path``, whose prefixes were computed before it."""
    if path.edges in values:
        x = values[path.edges]
    else:
        m = diagram.maps[path.edges[-1]]
        x = values[path.edges] = m(values[path.edges[:-1]], along=path)
    annotation = diagram.spaces[path.target].type
    reason = conforms(x, annotation)
    if reason:
        if path.edges:
            e = path.edges[-1]
            by = f"edge {e!r} ({diagram.graph.src(e)} → {path.target}) gave a {describe(x)} at"
        else:
            by = f"the batch is a {describe(x)} at"
        raise TypeMismatchError(
            f"{by} vertex {path.target!r} (path {path}), which is annotated {annotation!r}: {reason}"
        )
    return x


def _pairs(diagram: Diagram):
    """The compiled pairs, or none when the diagram compiles nothing yet."""
    return diagram.parallel_pairs() if any(s.loss is not None for s in diagram.spaces.values()) else []
