"""One batch per data vertex per step: combining data sets of different sizes, resumably.

A diagram with several indexing vertices needs a batch from each at every
step. :class:`CombinedBatches` draws them under a named policy, as
Lightning's ``CombinedLoader`` does:

``"max_size_cycle"``
    an epoch lasts as long as the longest source; shorter ones start a new pass
    when they run out (the default);
``"min_size"``
    an epoch stops when the shortest source runs out;
``"max_size"``
    an epoch lasts as long as the longest source; a source that runs out gives
    ``None`` for the rest of the epoch, and the pairs that start there are
    skipped in those steps (their maps sit idle);
``"steps"``
    an epoch is ``steps_per_epoch`` steps; every source cycles and carries on
    where it stopped across epochs (sources of unknown length are allowed).

With the first two, every source starts a new pass at each epoch.

**Data order is owned by the trainer.** Each pass of each source is shuffled
from a seed derived from ``(seed, vertex, pass number)``: a ``DataLoader``'s
``RandomSampler`` and its worker-seed generator are given fresh
``torch.Generator`` objects seeded so, and a ``DistributedSampler`` gets
``set_epoch(pass)``. Iterators are opened inside ``torch.random.fork_rng`` so
that they draw nothing from the global random state the models use. The state
(pass number and position of every source) is saved in checkpoints; resuming
re-opens the current pass and skips the batches already drawn, so a resumed run
sees exactly the batches the uninterrupted one would have. Samplers of other
kinds keep their own order, and are reproducible only if they are themselves.

>>> import torch
>>> combined = CombinedBatches({"A": [1, 2, 3], "B": ["x", "y"]})
>>> len(combined), [b for b in combined.epoch()]
(3, [{'A': 1, 'B': 'x'}, {'A': 2, 'B': 'y'}, {'A': 3, 'B': 'x'}])
>>> combined = CombinedBatches({"A": [1, 2, 3], "B": ["x", "y"]}, policy="min_size")
>>> [b for b in combined.epoch()], [b for b in combined.epoch()]
([{'A': 1, 'B': 'x'}, {'A': 2, 'B': 'y'}], [{'A': 1, 'B': 'x'}, {'A': 2, 'B': 'y'}])
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping
from typing import Any

import torch
from torch.utils.data import DataLoader, DistributedSampler, RandomSampler

from ..core.errors import OptionError, TypeMismatchError
from ..core.messages import NO_BATCHES
from ..torch.data import DataSource, batch_size

__all__ = ["CombinedBatches", "POLICIES"]

POLICIES = ("max_size_cycle", "min_size", "max_size", "steps")


def _derived_seed(seed: int, vertex: str, pass_number: int) -> int:
    digest = hashlib.blake2b(f"{seed}/{vertex}/{pass_number}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") >> 1


class _Stream:
    """The batches of one source, pass after pass, with its position."""

    def __init__(self, vertex: str, source: Any, seed: int):
        self.vertex, self.source, self.seed = vertex, DataSource(source, vertex), seed
        self.passes, self.position = 0, 0  # passes started; batches drawn in the current pass
        self._iterator: Iterator[Any] | None = None

    def __len__(self) -> int:
        if self.source.full_batch:
            return 1
        try:
            return len(self.source.data)
        except TypeError:
            raise TypeMismatchError(
                f"the data of vertex {self.vertex!r} has no length, so an epoch over it is not "
                f"defined; use policy='steps' with steps_per_epoch=..."
            ) from None

    def is_empty(self) -> bool:
        """Whether the data has no batch (or, as one full batch, no sample); False when its length is unknown."""
        if self.source.full_batch:
            return batch_size(self.source.data) == 0
        try:
            return len(self.source.data) == 0
        except TypeError:  # an iterable of unknown length: told apart when a pass yields nothing
            return False

    def new_pass(self) -> None:
        self.passes, self.position, self._iterator = self.passes + 1, 0, None

    def next(self) -> Any:
        if self.passes == 0:
            self.new_pass()
        if self._iterator is None:
            self._iterator = self._open()
        try:
            batch = next(self._iterator)
        except StopIteration:
            if self.position == 0:
                raise TypeMismatchError(NO_BATCHES.format(vertex=self.vertex)) from None
            self.new_pass()
            self._iterator = self._open()
            batch = next(self._iterator)
        self.position += 1
        return batch

    def _open(self) -> Iterator[Any]:
        """Open the current pass, seeded, and skip the batches already drawn from it."""
        if self.source.full_batch:
            return iter(self.source)
        self._seed_sampler()
        with torch.random.fork_rng(devices=[]):
            iterator = iter(self.source)
            for _ in range(self.position):
                next(iterator)
        return iterator

    def _seed_sampler(self) -> None:
        loader = self.source.data
        if not isinstance(loader, DataLoader):
            return
        seed = _derived_seed(self.seed, self.vertex, self.passes)
        sampler = loader.sampler
        if loader.batch_sampler is not None and hasattr(loader.batch_sampler, "sampler"):
            sampler = loader.batch_sampler.sampler
        if isinstance(sampler, DistributedSampler):
            sampler.set_epoch(self.passes)
        elif isinstance(sampler, RandomSampler):
            sampler.generator = torch.Generator().manual_seed(seed)
        loader.generator = torch.Generator().manual_seed(seed ^ 0x5EED)

    def state_dict(self) -> dict[str, int]:
        return {"passes": self.passes, "position": self.position}

    def load_state_dict(self, state: Mapping[str, int]) -> None:
        self.passes, self.position, self._iterator = int(state["passes"]), int(state["position"]), None


class CombinedBatches:
    """Draws one batch per source per step under ``policy``; see the module docstring.

    Parameters
    ----------
    sources : mapping of vertex name to data
        The data of each indexing vertex (DataLoader, Dataset, list of batches, tensor).
    policy : {"max_size_cycle", "min_size", "max_size", "steps"}
    steps_per_epoch : int, optional
        Required by ``"steps"``; with the other policies it caps the epoch.
    seed : int
        Seed of the data order.

    Raises
    ------
    TypeMismatchError
        When the data of a vertex has no batch (an empty list or loader, a tensor
        of no rows), naming the vertex: an epoch would have no step.
    """

    def __init__(
        self,
        sources: Mapping[str, Any],
        *,
        policy: str = "max_size_cycle",
        steps_per_epoch: int | None = None,
        seed: int = 0,
    ):
        if policy not in POLICIES:
            raise OptionError(f"unknown policy {policy!r}; choose one of {', '.join(POLICIES)}")
        if policy == "steps" and not steps_per_epoch:
            raise OptionError("policy 'steps' needs steps_per_epoch=N")
        self.policy, self.steps_per_epoch, self.seed = policy, steps_per_epoch, seed
        self.streams = {v: _Stream(v, data, seed) for v, data in sources.items()}
        for v, stream in self.streams.items():
            if stream.is_empty():  # else an epoch would silently have no step
                raise TypeMismatchError(NO_BATCHES.format(vertex=v))

    def __len__(self) -> int:
        """Steps in one epoch."""
        if self.policy == "steps" and self.steps_per_epoch is not None:  # __init__ requires it for "steps"
            return int(self.steps_per_epoch)
        lengths = [len(s) for s in self.streams.values()]
        n = min(lengths) if self.policy == "min_size" else max(lengths)
        return min(n, self.steps_per_epoch) if self.steps_per_epoch else n

    def epoch(self, start: int = 0) -> Iterator[dict[str, Any]]:
        """The batches of one epoch from step ``start`` (0: a new epoch; else resuming one)."""
        if start == 0 and self.policy != "steps":
            for stream in self.streams.values():
                stream.new_pass()
        for step in range(start, len(self)):
            if self.policy == "max_size":
                yield {v: stream.next() if step < len(stream) else None for v, stream in self.streams.items()}
            else:
                yield {v: stream.next() for v, stream in self.streams.items()}

    def state_dict(self) -> dict[str, dict[str, int]]:
        return {v: s.state_dict() for v, s in self.streams.items()}

    def load_state_dict(self, state: Mapping[str, Mapping[str, int]]) -> None:
        for v, s in state.items():
            self.streams[v].load_state_dict(s)
