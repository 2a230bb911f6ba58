"""The machine an example runs on: its torch device, its CPU threads, and one line saying which.

Every example takes ``--device`` and ``--threads`` and ends with "Done in … s on <machine>";
these three helpers are that shared part.

>>> device("cpu")
device(type='cpu')
>>> before = torch.get_num_threads()
>>> with threads(1) as used:
...     print(used, describe("cpu").endswith("CPU, 1 torch thread"))
1 True
>>> torch.get_num_threads() == before
True
"""

from __future__ import annotations

import os
import platform
from collections.abc import Iterator
from contextlib import contextmanager

import torch

__all__ = ["describe", "device", "threads"]


def device(name: str | torch.device = "auto") -> torch.device:
    """``name`` as a :class:`torch.device`; ``"auto"`` is CUDA when there is one, else the CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


@contextmanager
def threads(count: int | None) -> Iterator[int]:
    """Run the block with ``count`` torch CPU threads (``None`` or 0: torch's setting), then restore it.

    Yields the number of threads in use inside the block.
    """
    before = torch.get_num_threads()
    if count:
        torch.set_num_threads(count)
    try:
        yield torch.get_num_threads()
    finally:
        torch.set_num_threads(before)


def describe(where: str | torch.device = "auto") -> str:
    """One line for a results table: the CUDA device's name, or the CPU's cores and torch threads."""
    where = device(where)
    if where.type == "cuda":
        return f"{torch.cuda.get_device_name(where)} (CUDA)"
    used = torch.get_num_threads()
    return f"{os.cpu_count()}-core {platform.machine()} CPU, {used} torch thread{'s' * (used != 1)}"
