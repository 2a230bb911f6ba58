"""The data policies of :mod:`learning_diagrams.batches` on PyTorch data: seeded, resumable passes.

:class:`CombinedBatches` draws one batch per data vertex per step under a policy
(``"max_size_cycle"``, ``"min_size"``, ``"max_size"``, ``"steps"``: see
:mod:`learning_diagrams.batches`), each vertex's data read by the PyTorch back
end's :class:`~learning_diagrams.torch.data.DataSource` (so a bare ``Dataset``
gets a ``DataLoader``).

**Data order is owned by the trainer.** Each pass of each source is shuffled
from a seed derived from ``(seed, vertex, pass number)``: a ``DataLoader``'s
``RandomSampler`` and its worker-seed generator are given fresh
``torch.Generator`` objects seeded so, and a ``DistributedSampler`` gets
``set_epoch(pass)``. Iterators are opened inside ``torch.random.fork_rng`` so
that they draw nothing from the global random state the models use. Resuming
re-opens the current pass and skips the batches already drawn, so a resumed run
sees exactly the batches the uninterrupted one would have. Samplers of other
kinds keep their own order, and are reproducible only if they are themselves.

>>> import torch
>>> combined = CombinedBatches({"A": [1, 2, 3], "B": ["x", "y"]})
>>> len(combined), [b for b in combined.epoch()]
(3, [{'A': 1, 'B': 'x'}, {'A': 2, 'B': 'y'}, {'A': 3, 'B': 'x'}])
>>> [b["A"].tolist() for b in CombinedBatches({"A": torch.arange(3)}).epoch()]
[[0, 1, 2]]
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from typing import Any

import torch

from .. import batches
from ..batches import POLICIES
from ..torch.data import DataSource

__all__ = ["CombinedBatches", "TorchStream", "POLICIES"]


class TorchStream(batches.Stream):
    """A source's batches read by :class:`~learning_diagrams.torch.data.DataSource`, each pass seeded
    (:func:`learning_diagrams.batches.seed_loader`) and opened in a fork of the random state."""

    def __init__(self, vertex: str, data: Any, seed: int):
        super().__init__(vertex, data, seed, source=DataSource)

    def opening(self) -> contextlib.AbstractContextManager[Any]:
        """Open passes in a fork of the random state: a loader draws nothing the models would."""
        return torch.random.fork_rng(devices=[])


class CombinedBatches(batches.CombinedBatches):
    """:class:`learning_diagrams.batches.CombinedBatches` reading each source as PyTorch data (:class:`TorchStream`).

    Raises :class:`~learning_diagrams.core.errors.TypeMismatchError` when the data of a
    vertex has no batch (an empty list or loader, a tensor of no rows), naming it.
    """

    def __init__(
        self,
        sources: Mapping[str, Any],
        *,
        policy: str = "max_size_cycle",
        steps_per_epoch: int | None = None,
        seed: int = 0,
    ):
        super().__init__(sources, policy=policy, steps_per_epoch=steps_per_epoch, seed=seed, stream=TorchStream)
