"""Checking a diagram before training on JAX: run every path once and report what each vertex holds.

:func:`check` takes one batch per indexing vertex (given, or the first of its data),
runs every path from it, and checks each value against its vertex's type
annotation (shapes and dtypes of JAX and NumPy arrays); it then computes every
compiled term once. The first failure raises an error naming the edge and vertex
(a :class:`~learning_diagrams.core.errors.MapError` or
:class:`~learning_diagrams.core.errors.TypeMismatchError`), as on PyTorch.

>>> import jax.numpy as jnp
>>> import learning_diagrams as ld
>>> d = (ld.Diagram().space("N", data=jnp.ones((4, 2))).space("Y", type=ld.TensorType(None, 3))
...      .map("f", "N", "Y", lambda x: x @ jnp.ones((2, 1))))
>>> d.check(backend="jax")
Traceback (most recent call last):
...
learning_diagrams.core.errors.TypeMismatchError: edge 'f' (N → Y) gave a Array[float32, (4, 1)] at vertex 'Y' (path f), which is annotated TensorType(None, 3): Array[float32, (4, 1)] does not have shape (*, 3)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..core.diagram import Diagram
from ..core.dryrun import dry_run, dry_run_batches
from ..core.evaluation import CheckReport
from .data import DataSource
from .losses import loss_function

__all__ = ["check", "CheckReport"]


def check(diagram: Diagram, batches: Mapping[str, Any] | None = None) -> CheckReport:
    """Run ``diagram`` once on one batch per indexing vertex and report every vertex's value.

    ``batches`` maps indexing vertices to batches; those left out take the first batch
    of their data (an indexing vertex without data needs one here:
    :class:`~learning_diagrams.core.errors.NoBatchError` otherwise). Every path is run
    once, those enumerated and the declared relations' own: give a small batch.
    """
    given = dry_run_batches(diagram, batches, call="d.check({batch}, backend='jax')")
    return dry_run(diagram, given, first=_first, loss_function=loss_function)


def _first(data: Any, vertex: str) -> Any:
    """The first batch of ``data``."""
    return next(DataSource(data, vertex).forever())
