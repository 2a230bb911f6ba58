"""Loss terms and metrics of a JAX compiled loss on held-out data, as the PyTorch evaluation computes them.

Each source's held-out data is read in one pass; for every compiled pair starting
there, each batch gives the pair's term and its metrics (:mod:`learning_diagrams.core.metrics`:
``{"Y": "accuracy"}``, callables, names), averaged over the data weighted by batch
size (under ``reduction="sum"``, a term is its exact sum over the data). The paths'
values are computed once per batch, by one jitted call.

>>> import numpy as np
>>> accuracy(np.array([[2.0, 1.0], [0.0, 3.0]]), np.array([0, 0]))
0.5
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import equinox as eqx
import numpy as np

from ..core.metrics import resolve
from .compiled import CompiledLoss
from .data import DataSource, batch_size

__all__ = ["accuracy", "evaluate", "METRICS"]


def accuracy(prediction: Any, target: Any) -> float:
    """The share of rows whose largest score is the target class (``target``: indices, or scores of the same shape)."""
    prediction, target = np.asarray(prediction), np.asarray(target)
    if target.shape == prediction.shape and np.issubdtype(target.dtype, np.floating):
        target = target.argmax(axis=-1)
    return float(np.mean(prediction.argmax(axis=-1) == target))


#: Metrics known by name.
METRICS: dict[str, Callable[[Any, Any], float]] = {"accuracy": accuracy}


def evaluate(
    loss: CompiledLoss, params: Any, data: Mapping[str, Any], metrics: Mapping[str, Any] | None = None
) -> dict[str, float]:
    """``"total"``, every term and every metric of ``loss`` (with ``params``) on held-out ``data``.

    ``data`` maps source vertices to held-out data (pairs whose source has none are left
    out); ``metrics`` maps vertices to metrics (see :mod:`learning_diagrams.core.metrics`),
    each reported as ``"name[pair]"``.
    """
    chosen = resolve(metrics or {}, {pair.target for pair in loss.pairs}, METRICS)
    summed = loss.reduction == "sum"
    outputs = eqx.filter_jit(loss.outputs)
    sums: dict[str, float] = {}
    counts: dict[str, int] = {}
    for vertex, source in data.items():
        for batch in DataSource(source, vertex):
            n = batch_size(batch)
            values: dict[str, tuple[float, bool]] = {}
            for pair, first, second in outputs(params, {vertex: batch}):
                # Under "sum" a batch's term is its own sum: the held-out sum adds them.
                values[pair.name] = (float(loss.term(pair, first, second, scaled=False)), summed)
                for name, metric in chosen.get(pair.target, ()):
                    values[f"{name}[{pair.name}]"] = (float(metric(first, second)), False)
            for name, (value, exact) in values.items():
                sums[name] = sums.get(name, 0.0) + (value if exact else value * n)
                counts[name] = counts.get(name, 0) + n
    means = {name: sums[name] if summed and name in loss.terms else sums[name] / counts[name] for name in sums}
    terms = [name for name in loss.terms if name in means]
    return {"total": sum(means[t] for t in terms), **means}
