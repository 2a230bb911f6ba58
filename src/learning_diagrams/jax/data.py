"""Data sources of indexing vertices on JAX: read the way the PyTorch back end reads them.

A vertex's ``data`` may be

* an array (NumPy's or JAX's), or a tuple of arrays: the whole data set as one
  batch, drawn every time (full-batch training);
* a re-iterable of batches (a list of batches; a PyTorch ``DataLoader`` where torch
  is installed): each draw is the next batch, and a new pass starts when one ends.

Batches that hold PyTorch tensors (a ``DataLoader``'s) are converted to NumPy arrays
as they are drawn (:func:`as_arrays`), at the edge: nothing here imports torch.

>>> import numpy as np
>>> draw = DataSource([np.ones(2), np.zeros(2)], "N").forever()
>>> [float(next(draw).sum()) for _ in range(3)]
[2.0, 0.0, 2.0]
>>> DataSource([np.ones((4, 2)), np.ones((3, 2))], "N").size, DataSource(np.ones((5, 2)), "N").size
(7, 5)
>>> batch_size((["a", "b", "c"], np.zeros((3, 2))))
3
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import jax
import numpy as np

from ..core.arrays import is_array
from ..batches import forever
from ..core.errors import TypeMismatchError
from ..core.messages import NOT_A_DATA_SOURCE, ONE_SHOT_ITERATOR

__all__ = ["DataSource", "is_full_batch", "batch_size", "as_arrays"]


def is_full_batch(data: Any) -> bool:
    """Whether ``data`` is one whole batch: an array, or a non-empty tuple of arrays."""
    return is_array(data) or (isinstance(data, tuple) and bool(data) and all(is_array(t) for t in data))


def batch_size(batch: Any) -> int:
    """The length of the first array in ``batch`` with a first axis (0 when there is none)."""
    for leaf in jax.tree_util.tree_leaves(batch):
        if is_array(leaf) and len(leaf.shape) > 0:
            return int(leaf.shape[0])
    return 0


def as_arrays(batch: Any) -> Any:
    """``batch`` with every PyTorch tensor in it made a NumPy array (a batch of JAX arrays is itself)."""
    return jax.tree_util.tree_map(_as_array, batch)


def _as_array(leaf: Any) -> Any:
    if type(leaf).__module__.partition(".")[0] == "torch" and hasattr(leaf, "numpy"):
        return np.asarray(leaf.detach().cpu().numpy())
    return leaf


class DataSource:
    """The data of indexing vertex ``vertex``, checked: one whole batch, or a re-iterable of batches.

    Raises
    ------
    TypeMismatchError
        When the data is a one-shot iterator (it cannot start a second pass), or not
        iterable at all.
    """

    def __init__(self, data: Any, vertex: str):
        self.vertex, self.data = vertex, data
        self.full_batch = is_full_batch(data)
        if not self.full_batch:
            if isinstance(data, Iterator):
                raise TypeMismatchError(ONE_SHOT_ITERATOR.format(vertex=vertex, kind=type(data).__name__))
            if not hasattr(data, "__iter__"):
                raise TypeMismatchError(NOT_A_DATA_SOURCE.format(vertex=vertex, kind=type(data).__name__))

    @property
    def size(self) -> int | None:
        """How many samples one pass visits: a full batch's length, a list's summed lengths; else None."""
        if self.full_batch:
            return batch_size(self.data)
        if isinstance(self.data, Sequence) and not isinstance(self.data, (str, bytes)):
            return sum(batch_size(batch) for batch in self.data)
        return None

    def __len__(self) -> int:
        """Batches in one pass (1 for a full batch); a ``TypeError`` when the data has no length."""
        return 1 if self.full_batch else len(self.data)

    def __iter__(self) -> Iterator[Any]:
        """One pass over the batches, each with its tensors made arrays."""
        if self.full_batch:
            return iter([self.data])
        return map(as_arrays, self.data)

    def forever(self) -> Iterator[Any]:
        """Pass after pass, endlessly; a pass without a batch raises :class:`TypeMismatchError`."""
        return forever(self, self.vertex)
