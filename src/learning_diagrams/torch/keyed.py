"""Batches that come with a key: their place in a pass over a list, or their samples' indices.

A :class:`~.cache.FrozenCache` keeps values by what they were computed from, so it
must know which batch, or which samples, a step holds. Data it can key is read
through the wrappers here, which yield the same batches in the same order, each
as a :class:`Keyed` pair ``(batch, key)`` that a compiled loss unwraps:

* a list of batches (or one full batch) yields its batches keyed by
  :class:`Position`: their index in the list and the identity and version of
  their tensors (:class:`KeyedBatches`);
* a ``DataLoader`` over a map-style dataset is made again over ``(index,
  sample)`` pairs, with the same sampler object, workers, collation and seeding
  (:func:`keyed_loader`), and yields its batches keyed by :class:`Samples`, the
  samples' indices. :class:`SampleSource` loads any samples as that loader
  collates them.

>>> import torch
>>> from torch.utils.data import DataLoader, TensorDataset
>>> loader = keyed_loader(DataLoader(TensorDataset(torch.arange(6.0)), batch_size=4), token=0)
>>> [(b.batch[0].tolist(), b.key.indices.tolist()) for b in loader]
[([0.0, 1.0, 2.0, 3.0], [0, 1, 2, 3]), ([4.0, 5.0], [4, 5])]
>>> [b.key.index for b in KeyedBatches([torch.ones(2), torch.zeros(2)], token=0)]
[0, 1]
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, NamedTuple

import torch
from torch.utils.data import BatchSampler, DataLoader, Dataset

from .data import loading_options

__all__ = [
    "Keyed",
    "Position",
    "Samples",
    "KeyedBatches",
    "IndexedDataset",
    "KeyedCollate",
    "keyed_loader",
    "SampleSource",
    "leaves",
    "batch_token",
]


class Position:
    """The key of a batch of data keyed by position: its place in a pass, and the identity of its tensors."""

    __slots__ = ("data", "index", "token")

    def __init__(self, data: int, index: int, token: tuple[tuple[int, int], ...]):
        self.data, self.index, self.token = data, index, token


class Samples:
    """The key of a batch of data keyed by sample: the samples' indices (a CPU tensor of int64).

    Not a tensor nor a tuple, so that moving a batch to a device leaves it where it is.
    """

    __slots__ = ("data", "indices")

    def __init__(self, data: int, indices: torch.Tensor):
        self.data, self.indices = data, indices


class Keyed(NamedTuple):
    """A batch with its key, as :meth:`FrozenCache.keyed` data yields it; a compiled loss unwraps it."""

    batch: Any
    key: Position | Samples


def leaves(batch: Any) -> list[torch.Tensor] | None:
    """The tensors of a batch made only of tensors (nested tuples, lists, dicts), else None."""
    if isinstance(batch, torch.Tensor):
        return [batch]
    items = batch.values() if isinstance(batch, Mapping) else batch if isinstance(batch, (tuple, list)) else None
    if items is None:
        return None
    found: list[torch.Tensor] = []
    for item in items:
        inner = leaves(item)
        if inner is None:
            return None
        found.extend(inner)
    return found


def batch_token(batch: Any) -> tuple[tuple[int, int], ...]:
    """What identifies a batch's tensors as they are now: each one's identity and version counter."""
    return tuple((id(t), t._version) for t in (leaves(batch) or ()))


class KeyedBatches(Sequence):
    """A list of batches (or one full batch) whose items come keyed by their position."""

    def __init__(self, batches: Sequence[Any], token: int):
        self.batches, self.token = batches, token

    def __len__(self) -> int:
        return len(self.batches)

    def __getitem__(self, index: Any) -> Any:
        if not isinstance(index, int):
            raise TypeError("keyed batches are read one at a time")
        batch = self.batches[index]
        return Keyed(batch, Position(self.token, index, batch_token(batch)))

    def __iter__(self) -> Iterator[Any]:
        for index, batch in enumerate(self.batches):
            yield Keyed(batch, Position(self.token, index, batch_token(batch)))


class IndexedDataset(Dataset):
    """A map-style dataset whose items are ``(index, item)``."""

    def __init__(self, dataset: Dataset, token: int):
        self.dataset, self.token = dataset, token

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def __getitem__(self, index: int) -> tuple[int, Any]:
        return index, self.dataset[index]

    def __getitems__(self, indices: list[int]) -> list[tuple[int, Any]]:
        many = getattr(self.dataset, "__getitems__", None)
        items = many(indices) if many is not None else [self.dataset[i] for i in indices]
        return list(zip(indices, items))


class KeyedCollate:
    """The loader's own collation of the items, with their indices beside them."""

    def __init__(self, collate: Callable[[list[Any]], Any], token: int):
        self.collate, self.token = collate, token

    def __call__(self, items: list[tuple[int, Any]]) -> Keyed:
        indices = torch.tensor([i for i, _ in items], dtype=torch.int64)
        return Keyed(self.collate([item for _, item in items]), Samples(self.token, indices))


def keyed_loader(loader: DataLoader, token: int) -> DataLoader:
    """``loader`` again, over ``(index, sample)``: the same sampler object, workers, collation and seeding."""
    batches = loader.batch_sampler
    # A plain BatchSampler is given as what makes one (over the same sampler object), so that Lightning,
    # which makes a loader again from its arguments under DDP, finds the batch size.
    batching: dict[str, Any] = (
        dict(batch_size=batches.batch_size, sampler=batches.sampler, drop_last=batches.drop_last)
        if type(batches) is BatchSampler
        else dict(batch_sampler=batches)
    )
    options = {**loading_options(loader), **batching, "generator": loader.generator}
    options["collate_fn"] = KeyedCollate(loader.collate_fn, token)
    return DataLoader(IndexedDataset(loader.dataset, token), **options)


class SampleSource:
    """A map-style dataset keyed by sample index, with how its loader collates and batches it."""

    def __init__(self, dataset: Dataset, collate: Callable[[list[Any]], Any], chunk: int | None):
        self.dataset, self.collate, self.chunk = dataset, collate, chunk

    def load(self, indices: list[int]) -> Any:
        """The samples at ``indices``, collated as the loader collates a batch."""
        many = getattr(self.dataset, "__getitems__", None)
        return self.collate(many(indices) if many is not None else [self.dataset[i] for i in indices])
