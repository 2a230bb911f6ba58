"""Metrics on held-out data, computed along the same compiled paths as the loss.

A metric belongs to a vertex: for every compiled pair ending there, it scores
the pair's first path (the prediction) against its second (the target). It is
given as

* the name of a built-in one (``"accuracy"``, see :data:`METRICS`), or a
  callable ``(prediction, target) -> number`` that returns the batch mean: the
  batch scores are averaged over the held-out data, weighted by batch size;
* a ``torchmetrics.Metric`` (``pip install learning-diagrams[torchmetrics]``):
  each pair gets its own copy (``metric.clone()``), reset before the pass,
  updated with every batch and computed at the end, so the value is exact over
  all the data (an F1 score or an AUROC is no mean of batch scores). The copy is
  kept on the device of the predictions. torchmetrics is never imported here:
  a metric is recognised only when the user's code has imported it already.

Each is reported as ``f"{name}[{pair}]"``: ``name`` is the built-in's name, a
callable's ``__name__``, a torchmetrics metric's class name
(``torchmetrics.Accuracy(task="multiclass", ...)`` is a ``MulticlassAccuracy``),
or the key under which it is given when a vertex's metrics come as a mapping
(``{"Y": {"top1": ..., "top5": ...}}``).

>>> import torch
>>> accuracy(torch.tensor([[2.0, 1.0], [0.0, 3.0]]), torch.tensor([0, 0]))
0.5
"""

from __future__ import annotations

import sys
import warnings
from collections.abc import Callable, Mapping
from typing import Any

import torch

from ..core.errors import TypeMismatchError
from ..core.metrics import resolve
from ..torch import CompiledLoss
from ..torch.data import DataSource, batch_size
from . import distributed

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


def _is_torchmetric(item: Any) -> bool:
    """Whether ``item`` is a ``torchmetrics.Metric`` (``False`` whenever torchmetrics is not imported)."""
    torchmetrics = sys.modules.get("torchmetrics")
    return torchmetrics is not None and isinstance(item, torchmetrics.Metric)


def _is_metric_collection(item: Any) -> bool:
    torchmetrics = sys.modules.get("torchmetrics")
    return torchmetrics is not None and isinstance(item, torchmetrics.MetricCollection)


def _recognise(item: Any, vertex: str) -> tuple[str, Any] | None:
    """A torchmetrics metric, named after its class; a ``MetricCollection`` is refused."""
    if _is_metric_collection(item):
        raise TypeMismatchError(
            f"metric for vertex {vertex!r} is a torchmetrics MetricCollection; give its metrics "
            f"as a list or a mapping of name to metric instead"
        )
    return (type(item).__name__, item) if _is_torchmetric(item) else None


def _resolve(metrics: Mapping[str, Any], loss: CompiledLoss) -> dict[str, list[tuple[str, Any]]]:
    """Each vertex's metrics as (name, callable or torchmetrics metric), checked (see :mod:`...core.metrics`)."""
    targets = {pair.target for pair in loss.pairs}
    return resolve(metrics, targets, METRICS, recognise=_recognise, kinds=", a torchmetrics.Metric")


@torch.no_grad()
def evaluate(
    loss: CompiledLoss,
    data: Mapping[str, Any],
    metrics: Mapping[str, Any] | None = None,
    *,
    move: Callable[[Any], Any] = lambda batch: batch,
    shard: bool = False,
) -> dict[str, float]:
    """Every loss term and metric of ``loss`` on held-out ``data``, one pass over each source.

    Parameters
    ----------
    loss : CompiledLoss
    data : mapping of source vertex to held-out data
        Pairs whose source has no held-out data are left out.
    metrics : mapping of vertex to metric(s)
        ``{"Y": "accuracy"}``, ``{"Y": [accuracy, my_metric, torchmetrics_metric]}``
        or ``{"Y": {"top1": ..., "top5": ...}}``; each is reported as
        ``"name[pair]"`` for every pair ending at the vertex (see the module docstring).
    move : callable
        Applied to each batch (the trainer moves batches to its device).
    shard : bool, default False
        Under ``torch.distributed``: each process evaluates its share of the data
        (see :func:`~learning_diagrams.training.distributed.held_out_share`), the
        sums and sample counts are added over the processes, and torchmetrics
        metrics synchronise in ``compute()``, so every process returns the values
        over all the data. Every process must call it, with the same arguments.

    Returns
    -------
    dict
        ``"total"``, every term by name, and every metric, averaged over the data
        weighted by batch size (torchmetrics metrics: computed over all of it).
        Under ``reduction="sum"`` a term is instead its exact sum over the
        held-out data, the paper's ``Σ_{x∈X} d``: each batch's sum, unscaled, added.
        The loss is left in the mode it was in.

    Raises
    ------
    UnknownNameError
        If a metric is given for a vertex where no pair ends, or a metric name is unknown.
    DuplicateNameError
        If two metrics of a vertex have the same name.
    TypeMismatchError
        If a metric is none of the kinds above, or a torchmetrics metric computes
        more than one number.
    """
    loss.check_sources(data, "held-out data")
    chosen = _resolve(metrics or {}, loss)
    pairs = [pair for pair in loss.pairs if pair.source in data]
    # One copy of each torchmetrics metric per pair, made before the pass (not when a batch
    # first comes), so that every process computes, and synchronises, the same ones in order.
    states: dict[str, Any] = {}
    for pair in pairs:
        for name, metric in chosen.get(pair.target, ()):
            if _is_torchmetric(metric):
                state = metric.clone()
                state.reset()
                state.sync_on_compute = shard
                states[f"{name}[{pair.name}]"] = state
    sums: dict[str, float] = {}
    counts: dict[str, int] = {}
    summed = {pair.name for pair in pairs} if loss.reduction == "sum" else set()
    was_training = loss.training
    loss.eval()
    try:
        for vertex, source in data.items():
            share = distributed.held_out_share(source) if shard else source
            if share is None:
                continue
            if loss.cache is not None:  # frozen outputs on held-out data are computed once too
                share = loss.cache.keyed(share, vertex)
            for batch in DataSource(share, vertex):
                n = batch_size(batch)
                values: dict[str, float] = {}
                for pair, first, second in loss.outputs({vertex: move(batch)}, draw=False):
                    # Under "sum" a batch's term is its own sum: the held-out sum adds them (see below).
                    values[pair.name] = float(loss.term(pair, first, second, scaled=False))
                    for name, metric in chosen.get(pair.target, ()):
                        key = f"{name}[{pair.name}]"
                        if key in states:
                            _update(states[key], first, second)
                        else:
                            values[key] = float(metric(first, second))
                for name, value in values.items():
                    sums[name] = sums.get(name, 0.0) + (value if name in summed else value * n)
                    counts[name] = counts.get(name, 0) + n
    finally:
        loss.train(was_training)
    if shard:
        sums, counts = _summed_over_processes(pairs, chosen, states, sums, counts)
    means = {name: sums[name] if name in summed else sums[name] / counts[name] for name in sums}
    terms = [pair.name for pair in loss.pairs if pair.name in means]
    computed = {key: _computed(key, state, quiet=shard) for key, state in states.items()}
    return {"total": sum(means[t] for t in terms), **means, **computed}


def _update(state: Any, first: Any, second: Any) -> None:
    """Update a torchmetrics metric with one batch, moving it to the batch's device first."""
    device = getattr(first, "device", None)
    if device is not None and state.device != device:
        state.to(device)
    state.update(first, second)


def _summed_over_processes(
    pairs: list[Any], chosen: Mapping[str, list[tuple[str, Any]]], states: Mapping[str, Any], sums: dict, counts: dict
) -> tuple[dict[str, float], dict[str, int]]:
    """``sums`` and ``counts`` added over the processes, in the same order on each.

    The names come from the pairs, not from the batches seen: a process may have
    seen no batch of some source, yet must add its zeros in the same place.
    """
    names = [
        key
        for pair in pairs
        for key in (pair.name, *(f"{name}[{pair.name}]" for name, _ in chosen.get(pair.target, ())))
        if key not in states
    ]
    totals = distributed.sum_over_processes([sums.get(k, 0.0) for k in names] + [counts.get(k, 0) for k in names])
    summed, counted = totals[: len(names)], totals[len(names) :]
    return (
        {k: s for k, s, c in zip(names, summed, counted) if c},
        {k: int(c) for k, c in zip(names, counted) if c},
    )


def _computed(key: str, state: Any, *, quiet: bool) -> float:
    """The value of a torchmetrics metric as one number.

    ``quiet``: a process whose share had no batch computes anyway (it must join the
    synchronisation), so torchmetrics' warning that it was never updated is expected.
    """
    with warnings.catch_warnings():
        if quiet:
            warnings.filterwarnings(
                "ignore", message=r".*was called before the ``update`` method", category=UserWarning
            )
        value = state.compute()
    value = torch.as_tensor(value)
    if value.numel() != 1:
        raise TypeMismatchError(
            f"metric {key!r} computed {value.numel()} numbers (shape {tuple(value.shape)}), not one; "
            f"configure it to reduce to one number (e.g. average='macro')"
        )
    return float(value)
