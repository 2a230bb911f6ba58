"""Metrics on held-out data, computed along the same compiled paths as the loss.

A metric belongs to a vertex: for every compiled pair ending there, it scores
the pair's first path (the prediction) against its second (the target), batch
by batch, and the scores are averaged over the held-out data weighted by batch
size. A metric is a callable ``(prediction, target) -> number`` that returns
the batch mean, or the name of a built-in one (``"accuracy"``).

>>> import torch
>>> accuracy(torch.tensor([[2.0, 1.0], [0.0, 3.0]]), torch.tensor([0, 0]))
0.5
"""

from __future__ import annotations

from typing import Any, Callable, Mapping

import torch

from ..core.errors import UnknownNameError
from ..torch import CompiledLoss
from ..torch.data import DataSource, batch_size

__all__ = ["accuracy", "evaluate", "METRICS"]


def accuracy(prediction: torch.Tensor, target: torch.Tensor) -> float:
    """The share of rows whose largest score is the target class.

    ``target`` holds class indices, or scores/probabilities of the prediction's shape.
    """
    if target.shape == prediction.shape and target.is_floating_point():
        target = target.argmax(dim=-1)
    return (prediction.argmax(dim=-1) == target).float().mean().item()


#: Metrics known by name.
METRICS: dict[str, Callable[[Any, Any], float]] = {"accuracy": accuracy}


def _resolve(metrics: Mapping[str, Any], loss: CompiledLoss) -> dict[str, list[tuple[str, Callable]]]:
    targets = {pair.target for pair in loss.pairs}
    resolved: dict[str, list[tuple[str, Callable]]] = {}
    for vertex, spec in metrics.items():
        if vertex not in targets:
            raise UnknownNameError(
                f"metric given for vertex {vertex!r}, where no compiled pair ends "
                f"(pairs end at: {', '.join(sorted(targets))})"
            )
        for item in spec if isinstance(spec, (list, tuple)) else [spec]:
            if isinstance(item, str):
                if item not in METRICS:
                    raise UnknownNameError(f"unknown metric {item!r} (known: {', '.join(METRICS)})")
                resolved.setdefault(vertex, []).append((item, METRICS[item]))
            else:
                resolved.setdefault(vertex, []).append((getattr(item, "__name__", "metric"), item))
    return resolved


@torch.no_grad()
def evaluate(
    loss: CompiledLoss,
    data: Mapping[str, Any],
    metrics: Mapping[str, Any] | None = None,
    *,
    move: Callable[[Any], Any] = lambda batch: batch,
) -> dict[str, float]:
    """Every loss term and metric of ``loss`` on held-out ``data``, one pass over each source.

    Parameters
    ----------
    loss : CompiledLoss
    data : mapping of source vertex to held-out data
        Pairs whose source has no held-out data are left out.
    metrics : mapping of vertex to metric(s)
        ``{"Y": "accuracy"}`` or ``{"Y": [accuracy, my_metric]}``; each is reported
        as ``"name[pair]"`` for every pair ending at the vertex.
    move : callable
        Applied to each batch (the trainer moves batches to its device).

    Returns
    -------
    dict
        ``"total"``, every term by name, and every metric, averaged over the data
        weighted by batch size. The loss is left in the mode it was in.
    """
    loss.check_sources(data, "held-out data")
    chosen = _resolve(metrics or {}, loss)
    sums: dict[str, float] = {}
    counts: dict[str, int] = {}
    was_training = loss.training
    loss.eval()
    try:
        for vertex, source in data.items():
            for batch in DataSource(source, vertex):
                n = batch_size(batch)
                values: dict[str, float] = {}
                for pair, first, second in loss.outputs({vertex: move(batch)}, draw=False):
                    values[pair.name] = float(loss.term(pair, first, second))
                    for name, metric in chosen.get(pair.target, ()):
                        values[f"{name}[{pair.name}]"] = float(metric(first, second))
                for name, value in values.items():
                    sums[name] = sums.get(name, 0.0) + value * n
                    counts[name] = counts.get(name, 0) + n
    finally:
        loss.train(was_training)
    means = {name: sums[name] / counts[name] for name in sums}
    terms = [pair.name for pair in loss.pairs if pair.name in means]
    return {"total": sum(means[t] for t in terms), **means}
