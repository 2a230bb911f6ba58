"""What the overhead benchmarks share: the machine line and timing two sides in alternation.

``compiled_loss.py``, ``fit.py`` and ``memory.py`` each measure the library beside the
same work written by hand, in one process, so that both sides see the same machine;
this module is their common part (imported from the ``bench`` folder, not the library).
"""

from __future__ import annotations

import platform
import statistics
import time
from typing import Any, Callable

import torch


def cpu_name() -> str:
    """The CPU's model name, from ``/proc/cpuinfo`` where there is one."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_line(extra: str = "") -> str:
    """``machine: <CPU>, <n> torch threads, torch <version>, Python <version>`` and ``extra``."""
    line = (
        f"machine: {cpu_name()} ({torch.get_num_threads()} torch threads), torch {torch.__version__}, "
        f"Python {platform.python_version()}"
    )
    return f"{line}; {extra}" if extra else line


def alternate(
    ours: Callable[[], Any], theirs: Callable[[], Any], *, rounds: int, calls: int, warmup: int = 3
) -> tuple[list[float], list[float]]:
    """Per-call seconds of ``ours`` and ``theirs``, timed in alternating blocks of ``calls`` calls.

    Which side goes first alternates too, so neither always runs on a machine the other
    has just warmed (or heated). Returns one figure per block on each side.
    """
    for fn in (ours, theirs):  # first-call costs (allocations, caches, lazy imports) out of the figures
        for _ in range(warmup):
            fn()
    times: tuple[list[float], list[float]] = ([], [])
    for i in range(rounds):
        order = ((0, ours), (1, theirs)) if i % 2 == 0 else ((1, theirs), (0, ours))
        for side, fn in order:
            start = time.perf_counter()
            for _ in range(calls):
                fn()
            times[side].append((time.perf_counter() - start) / calls)
    return times


def median_ratio(times: tuple[list[float], list[float]]) -> tuple[float, float, float]:
    """The medians of both sides and the ratio of the medians (ours / theirs)."""
    a, b = statistics.median(times[0]), statistics.median(times[1])
    return a, b, a / b
