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
from ..core.dryrun import dry_run, dry_run_batches
from ..core.evaluation import CheckReport
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
    given = dry_run_batches(diagram, batches)
    modules = [m.fn for m in diagram.maps.values() if isinstance(m.fn, nn.Module)]
    modes = [(module, module.training) for module in modules]
    try:
        for module in modules:
            module.eval()
        with torch.no_grad():
            return dry_run(diagram, given, first=_first, loss_function=loss_function)
    finally:
        for module, mode in modes:
            module.train(mode)


def _first(data: Any, vertex: str) -> Any:
    """The first batch of ``data``."""
    return next(DataSource(data, vertex).forever())
