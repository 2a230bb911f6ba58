"""Data sources of indexing vertices, and how batches are drawn from them.

A vertex's ``data`` may be

* a ``torch.utils.data.DataLoader`` or any re-iterable of batches (a list of
  batches, for instance): each draw is the next batch, and a new pass starts
  when one ends;
* a map-style ``torch.utils.data.Dataset``: wrapped in
  ``DataLoader(dataset, batch_size=DEFAULT_BATCH_SIZE)`` (pass your own
  DataLoader to choose batch size, shuffling and workers);
* a tensor, or a tuple of tensors: the whole data set as one batch, drawn
  every time (full-batch training).

>>> import torch
>>> draw = batches([torch.ones(2), torch.zeros(2)], "N")
>>> [next(draw).sum().item() for _ in range(3)]
[2.0, 0.0, 2.0]
>>> next(batches(torch.arange(3), "N"))
tensor([0, 1, 2])
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset, IterableDataset

from .errors import TypeMismatchError

__all__ = ["batches", "DEFAULT_BATCH_SIZE"]

#: Batch size used when a vertex carries a bare map-style Dataset.
DEFAULT_BATCH_SIZE = 32


def batches(source: Any, vertex: str) -> Iterator[Any]:
    """An endless iterator of batches from ``source``, the data of ``vertex``."""
    if isinstance(source, torch.Tensor) or (
        isinstance(source, tuple) and source and all(isinstance(t, torch.Tensor) for t in source)
    ):
        return _forever(source)
    if isinstance(source, Dataset) and not isinstance(source, IterableDataset):
        source = DataLoader(source, batch_size=DEFAULT_BATCH_SIZE)
    if not hasattr(source, "__iter__"):
        raise TypeMismatchError(
            f"the data of vertex {vertex!r} is a {type(source).__name__}, which is not a source of "
            f"batches; give a DataLoader, a Dataset, a tensor or a list of batches"
        )
    if isinstance(source, Iterator):
        raise TypeMismatchError(
            f"the data of vertex {vertex!r} is a one-shot iterator ({type(source).__name__}); "
            f"it cannot start a second pass. Give a list of batches or a DataLoader instead"
        )
    return _passes(source, vertex)


def _forever(batch: Any) -> Iterator[Any]:
    while True:
        yield batch


def _passes(source: Any, vertex: str) -> Iterator[Any]:
    while True:
        empty = True
        for batch in source:
            empty = False
            yield batch
        if empty:
            raise TypeMismatchError(f"the data of vertex {vertex!r} has no batches")
