"""What the overhead benchmarks share: the machine line, timing two sides in alternation, and the case.

``compiled_loss.py``, ``fit.py``, ``cache.py`` and ``memory.py`` each measure the library beside
the same work written by hand, in one process, so that both sides see the same machine;
this module is their common part (imported from the ``bench`` folder, not the library):
the paper's Figure 1 as a diagram, and the PyTorch tutorial's soft-target loss that the
hand-written side computes.
"""

from __future__ import annotations

import platform
import statistics
import time
from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch import nn

import learning_diagrams as ld

#: The distillation temperature of every case.
T = 2.0


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


def distillation_diagram(teacher: nn.Module, student: nn.Module, data: Any) -> ld.Diagram:
    """The paper's Figure 1: ``teacher`` frozen, ``student`` trained, on ``data`` (batches ``(x, labels)``)."""
    return (
        ld.Diagram()
        .space("N", data=data)
        .space("X")
        .space("L")
        .space("Y", loss=ld.losses.cross_entropy)
        .space("G", loss=ld.losses.KLDivergence(temperature=T))
        .map("x", "N", "X", lambda b: b[0])
        .map("y", "N", "Y", lambda b: b[1])
        .map("teacher", "X", "L", teacher, trainable=False)
        .map("student", "X", "L", student)
        .map("hard", "L", "Y", nn.Identity())
        .map("soft", "L", "G", nn.Identity())
        .relate("x·student·hard", "y", weight=0.75)
        .relate("x·student·soft", "x·teacher·soft", weight=0.25)
    )


def tutorial_kl(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """The tutorial's soft-target loss ``T²·KL``, as the hand-written side computes it (student first)."""
    soft = F.softmax(target / T, dim=-1)
    return torch.sum(soft * (soft.log() - F.log_softmax(prediction / T, dim=-1))) / prediction.size(0) * T**2


def hand_terms(teacher: nn.Module, student: nn.Module, images: torch.Tensor, labels: torch.Tensor):
    """The PyTorch tutorial's distillation loss: the total and its two weighted terms."""
    with torch.no_grad():
        teacher_logits = teacher(images)
    student_logits = student(images)
    soft = 0.25 * tutorial_kl(student_logits, teacher_logits)
    hard = 0.75 * F.cross_entropy(student_logits, labels)
    return hard + soft, hard, soft
