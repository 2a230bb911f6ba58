"""Data sources of indexing vertices: checked and wrapped once, the one way every consumer needs.

A vertex's ``data`` may be

* a ``torch.utils.data.DataLoader`` or any re-iterable of batches (a list of
  batches, for instance): each draw is the next batch, and a new pass starts
  when one ends;
* a map-style ``torch.utils.data.Dataset``: wrapped in
  ``DataLoader(dataset, batch_size=DEFAULT_BATCH_SIZE)`` (pass your own
  DataLoader to choose batch size, shuffling and workers);
* a tensor, or a tuple of tensors: the whole data set as one batch, drawn
  every time (full-batch training).

:class:`DataSource` is that reading, written once: the compiled loss draws
batches from it, the trainer's data policies open its passes, and evaluation
runs over one pass. :attr:`DataSource.size` is the number of samples one pass
visits, when it can be known without drawing: what ``reduction="sum"`` scales
a batch's sum by.

>>> import torch
>>> draw = DataSource([torch.ones(2), torch.zeros(2)], "N").forever()
>>> [next(draw).sum().item() for _ in range(3)]
[2.0, 0.0, 2.0]
>>> next(DataSource(torch.arange(3), "N").forever())
tensor([0, 1, 2])
>>> batch_size((["a", "b", "c"], torch.zeros(3, 2)))
3
>>> DataSource([torch.ones(4, 2), torch.ones(3, 2)], "N").size, DataSource(torch.ones(5, 2), "N").size
(7, 5)
>>> from torch.utils.data import DataLoader, TensorDataset
>>> DataSource(DataLoader(TensorDataset(torch.ones(10, 2)), batch_size=4, drop_last=True), "N").size
8
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence, Sized
from typing import Any

import torch
from torch.utils.data import BatchSampler, DataLoader, Dataset, IterableDataset

from ..batches import forever
from ..core.errors import TypeMismatchError
from ..core.messages import NOT_A_DATA_SOURCE, ONE_SHOT_ITERATOR

__all__ = ["DataSource", "DEFAULT_BATCH_SIZE", "is_full_batch", "batch_size", "to_device", "loading_options"]

#: Batch size used when a vertex carries a bare map-style Dataset.
DEFAULT_BATCH_SIZE = 32


def is_full_batch(data: Any) -> bool:
    """Whether ``data`` is one whole batch: a tensor, or a non-empty tuple of tensors."""
    return isinstance(data, torch.Tensor) or (
        isinstance(data, tuple) and bool(data) and all(isinstance(t, torch.Tensor) for t in data)
    )


class DataSource:
    """The data of indexing vertex ``vertex``, checked and wrapped.

    Attributes
    ----------
    data
        What batches are drawn from: the given data, or a ``DataLoader`` around a map-style ``Dataset``.
    full_batch : bool
        Whether the data is one whole batch (a tensor or a tuple of tensors).

    Raises
    ------
    TypeMismatchError
        When the data is a one-shot iterator (it cannot start a second pass), or
        not iterable at all.
    """

    def __init__(self, data: Any, vertex: str):
        self.vertex = vertex
        self.full_batch = is_full_batch(data)
        if not self.full_batch:
            if isinstance(data, Dataset) and not isinstance(data, IterableDataset):
                data = DataLoader(data, batch_size=DEFAULT_BATCH_SIZE)
            if isinstance(data, Iterator):
                raise TypeMismatchError(ONE_SHOT_ITERATOR.format(vertex=vertex, kind=type(data).__name__))
            if not hasattr(data, "__iter__"):
                raise TypeMismatchError(NOT_A_DATA_SOURCE.format(vertex=vertex, kind=type(data).__name__))
        self.data = data

    @property
    def size(self) -> int | None:
        """How many samples one pass visits, or None when that cannot be known without drawing.

        Known for one full batch (its length), a list or tuple of batches (the sum of
        their lengths), and a ``DataLoader`` over a map-style dataset whose sampler has a
        length (less the samples ``drop_last`` leaves out); not for an iterable dataset
        or any other iterable.
        """
        data = self.data
        if self.full_batch:
            return batch_size(data)
        if isinstance(data, DataLoader):
            return _loader_size(data)
        if isinstance(data, Sequence) and not isinstance(data, (str, bytes)):
            return sum(batch_size(batch) for batch in data)
        return None

    def __iter__(self) -> Iterator[Any]:
        """One pass over the batches."""
        return iter([self.data]) if self.full_batch else iter(self.data)

    def forever(self) -> Iterator[Any]:
        """Pass after pass, endlessly; a pass without a batch raises :class:`TypeMismatchError`."""
        return forever(self, self.vertex)


def _loader_size(loader: DataLoader) -> int | None:
    """The samples one pass of ``loader`` visits, where its sampler says so."""
    if isinstance(loader.dataset, IterableDataset):
        return None
    batches = loader.batch_sampler
    if batches is None:  # no automatic batching: each item of the sampler is one "batch"
        return len(loader.sampler) if isinstance(loader.sampler, Sized) else None
    if not isinstance(batches, BatchSampler) or not isinstance(batches.sampler, Sized):
        return None
    n = len(batches.sampler)
    return n - n % batches.batch_size if batches.drop_last else n


def loading_options(loader: DataLoader) -> dict[str, Any]:
    """How ``loader`` loads: its workers, collation, pinning and timeout, as ``DataLoader(...)`` takes them.

    Not what it loads nor in which order (dataset, sampler, batching, generator): what a
    loader made again over other samples or another sampler keeps of the first.
    """
    options: dict[str, Any] = dict(
        num_workers=loader.num_workers,
        collate_fn=loader.collate_fn,
        pin_memory=loader.pin_memory,
        timeout=loader.timeout,
        worker_init_fn=loader.worker_init_fn,
        multiprocessing_context=loader.multiprocessing_context,
        persistent_workers=loader.persistent_workers,
        pin_memory_device=loader.pin_memory_device,
    )
    if loader.num_workers:  # DataLoader refuses a prefetch factor without workers
        options["prefetch_factor"] = loader.prefetch_factor
    if hasattr(loader, "in_order"):
        options["in_order"] = loader.in_order
    return options


def batch_size(batch: Any) -> int:
    """How many samples ``batch`` holds: the length of the first tensor in it, else its length, else 1."""
    found = _first_length(batch)
    if found is not None:
        return found
    return len(batch) if isinstance(batch, Sized) and not isinstance(batch, (str, bytes)) else 1


def _first_length(batch: Any) -> int | None:
    if isinstance(batch, torch.Tensor):
        return batch.shape[0] if batch.ndim else 1
    items = batch.values() if isinstance(batch, Mapping) else batch if isinstance(batch, (list, tuple)) else ()
    for item in items:
        found = _first_length(item)
        if found is not None:
            return found
    return None


def to_device(batch: Any, device: torch.device) -> Any:
    """Move every tensor in a batch (nested tuples, lists, dicts) to ``device``; others stay as they are.

    A batch whose tensors are all on ``device`` already (data made there, or a CPU
    run's) is returned itself: it is looked through once, and nothing is rebuilt.
    """
    return batch if _on(batch, device) else _moved(batch, device)


def _on(batch: Any, device: torch.device) -> bool:
    """Whether every tensor in ``batch`` is on ``device`` (the containers :func:`to_device` looks into)."""
    if isinstance(batch, torch.Tensor):
        return batch.device == device
    items: Iterable[Any]
    if isinstance(batch, (tuple, list)):
        items = batch
    elif isinstance(batch, dict) or isinstance(batch, Mapping):  # noqa: SIM101 - a dict without the ABC's check
        items = batch.values()
    else:
        return True
    for b in items:  # noqa: SIM110 - a loop, not all(...): no generator at every step, and tensors without a call
        if not (b.device == device if isinstance(b, torch.Tensor) else _on(b, device)):
            return False
    return True


def _moved(batch: Any, device: torch.device) -> Any:
    """``batch`` rebuilt with every tensor on ``device``."""
    if isinstance(batch, torch.Tensor):
        return batch if batch.device == device else batch.to(device, non_blocking=True)
    if isinstance(batch, tuple) and hasattr(batch, "_fields"):  # named tuple
        return type(batch)(*(to_device(b, device) for b in batch))
    if isinstance(batch, (tuple, list)):
        return type(batch)([to_device(b, device) for b in batch])
    if isinstance(batch, Mapping):
        return {k: to_device(v, device) for k, v in batch.items()}
    return batch
