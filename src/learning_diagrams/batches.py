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

**Resumable.** The state (pass number and position of every source) is what a
checkpoint saves; resuming re-opens the current pass and skips the batches
already drawn, so a resumed run sees exactly the batches the uninterrupted one
would have. Each pass of each source has a seed derived from ``(seed, vertex,
pass number)`` (:func:`derived_seed`), which a :class:`Stream` gives its shuffling: a PyTorch
``DataLoader``'s sampler is seeded with it (:func:`seed_loader`), on either back end
(:mod:`learning_diagrams.training.loaders` also opens each pass without touching
torch's global random state).

This module is the policy alone, the same for every back end, and imports no
array library. A stream reads its data through the back end's data source
(``source=``: a class of ``(data, vertex)`` with ``data``, ``full_batch``,
``size`` and one pass by ``iter``, as :class:`learning_diagrams.torch.DataSource`
and :class:`learning_diagrams.jax.DataSource` are); by default, the data as it is.

>>> combined = CombinedBatches({"A": [1, 2, 3], "B": ["x", "y"]})
>>> len(combined), [b for b in combined.epoch()]
(3, [{'A': 1, 'B': 'x'}, {'A': 2, 'B': 'y'}, {'A': 3, 'B': 'x'}])
>>> combined = CombinedBatches({"A": [1, 2, 3], "B": ["x", "y"]}, policy="min_size")
>>> [b for b in combined.epoch()], [b for b in combined.epoch()]
([{'A': 1, 'B': 'x'}, {'A': 2, 'B': 'y'}], [{'A': 1, 'B': 'x'}, {'A': 2, 'B': 'y'}])
"""

from __future__ import annotations

import contextlib
import hashlib
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from .core.errors import OptionError, TypeMismatchError
from .core.messages import NO_BATCHES

__all__ = ["CombinedBatches", "Stream", "POLICIES", "derived_seed", "forever", "seed_loader"]

POLICIES = ("max_size_cycle", "min_size", "max_size", "steps")


def derived_seed(seed: int, vertex: str, pass_number: int) -> int:
    """The seed of pass ``pass_number`` of vertex ``vertex``'s data, in a run seeded ``seed`` (63 bits).

    >>> derived_seed(0, "N", 1) == derived_seed(0, "N", 1) != derived_seed(0, "N", 2)
    True
    """
    digest = hashlib.blake2b(f"{seed}/{vertex}/{pass_number}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") >> 1


def forever(source: Iterable[Any], vertex: str) -> Iterator[Any]:
    """The batches of ``source`` (one pass an ``iter``), pass after pass, endlessly.

    A pass without a batch raises :class:`TypeMismatchError` naming ``vertex``.

    >>> draw = forever([1, 2], "N")
    >>> [next(draw) for _ in range(3)]
    [1, 2, 1]
    """
    while True:
        empty = True
        for batch in source:
            empty = False
            yield batch
        if empty:
            raise TypeMismatchError(NO_BATCHES.format(vertex=vertex))


def seed_loader(data: Any, seed: int, passes: int) -> None:
    """Seed pass ``passes`` of a PyTorch ``DataLoader``: its ``RandomSampler`` and worker seeds from ``seed``.

    A ``RandomSampler`` (also under a ``BatchSampler``) and the loader's worker-seed
    generator get fresh generators seeded from ``seed``; a ``DistributedSampler`` gets
    ``set_epoch(passes)``. Other data, and samplers of other kinds, keep their own order.
    Nothing is imported: a ``DataLoader`` exists only where torch is (the idiom of
    :mod:`learning_diagrams.core.arrays`), so a JAX run reads one with torch's order.
    """
    torch = sys.modules.get("torch")
    if torch is None or not isinstance(data, torch.utils.data.DataLoader):
        return
    sampler = data.sampler
    if data.batch_sampler is not None and hasattr(data.batch_sampler, "sampler"):
        sampler = data.batch_sampler.sampler
    if isinstance(sampler, torch.utils.data.DistributedSampler):
        sampler.set_epoch(passes)
    elif isinstance(sampler, torch.utils.data.RandomSampler):
        sampler.generator = torch.Generator().manual_seed(seed)
    data.generator = torch.Generator().manual_seed(seed ^ 0x5EED)


class _AsIs:
    """The data as it is: a re-iterable of batches (what :class:`Stream` reads without a back end's source)."""

    full_batch = False

    def __init__(self, data: Any, vertex: str):
        self.data, self.vertex = data, vertex

    @property
    def size(self) -> int | None:
        return None

    def __iter__(self) -> Iterator[Any]:
        return iter(self.data)


class Stream:
    """The batches of one source, pass after pass, with its position.

    A back end specialises :meth:`seed_pass` (give the pass's shuffling its seed) and
    :meth:`opening` (the context a pass is opened in).
    """

    def __init__(self, vertex: str, data: Any, seed: int, *, source: Callable[[Any, str], Any] = _AsIs):
        self.vertex, self.source, self.seed = vertex, source(data, vertex), seed
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
            return self.source.size == 0
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
        self.seed_pass(derived_seed(self.seed, self.vertex, self.passes))
        with self.opening():
            iterator = iter(self.source)
            for _ in range(self.position):
                next(iterator)
        return iterator

    def seed_pass(self, seed: int) -> None:
        """Give the current pass's shuffling ``seed``: a PyTorch ``DataLoader``'s (see :func:`seed_loader`)."""
        seed_loader(self.source.data, seed, self.passes)

    def opening(self) -> contextlib.AbstractContextManager[Any]:
        """The context a pass is opened in (and the batches already drawn skipped)."""
        return contextlib.nullcontext()

    def state_dict(self) -> dict[str, int]:
        return {"passes": self.passes, "position": self.position}

    def load_state_dict(self, state: Mapping[str, int]) -> None:
        self.passes, self.position, self._iterator = int(state["passes"]), int(state["position"]), None


class CombinedBatches:
    """Draws one batch per source per step under ``policy``; see the module docstring.

    Parameters
    ----------
    sources : mapping of vertex name to data
        The data of each indexing vertex.
    policy : {"max_size_cycle", "min_size", "max_size", "steps"}
    steps_per_epoch : int, optional
        Required by ``"steps"``; with the other policies it caps the epoch.
    seed : int
        Seed of the data order.
    stream : callable
        What reads each source: ``stream(vertex, data, seed)``, a :class:`Stream`
        (the back end's, with its data source).

    Raises
    ------
    TypeMismatchError
        When the data of a vertex has no batch (an empty list or loader, an array
        of no rows), naming the vertex: an epoch would have no step.
    """

    def __init__(
        self,
        sources: Mapping[str, Any],
        *,
        policy: str = "max_size_cycle",
        steps_per_epoch: int | None = None,
        seed: int = 0,
        stream: Callable[[str, Any, int], Stream] = Stream,
    ):
        if policy not in POLICIES:
            raise OptionError(f"unknown policy {policy!r}; choose one of {', '.join(POLICIES)}")
        if policy == "steps" and not steps_per_epoch:
            raise OptionError("policy 'steps' needs steps_per_epoch=N")
        self.policy, self.steps_per_epoch, self.seed = policy, steps_per_epoch, seed
        self.streams = {v: stream(v, data, seed) for v, data in sources.items()}
        for v, s in self.streams.items():
            if s.is_empty():  # else an epoch would silently have no step
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
            for s in self.streams.values():
                s.new_pass()
        for step in range(start, len(self)):
            if self.policy == "max_size":
                yield {v: s.next() if step < len(s) else None for v, s in self.streams.items()}
            else:
                yield {v: s.next() for v, s in self.streams.items()}

    def state_dict(self) -> dict[str, dict[str, int]]:
        return {v: s.state_dict() for v, s in self.streams.items()}

    def load_state_dict(self, state: Mapping[str, Mapping[str, int]]) -> None:
        for v, s in state.items():
            self.streams[v].load_state_dict(s)
