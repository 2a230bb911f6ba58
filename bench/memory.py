"""A training step's peak memory: the compiled loss against the same step written by hand.

Peak memory is read from PyTorch's own allocation records, without CUDA: the
step runs under ``torch.profiler`` with ``profile_memory=True``, which records
every CPU allocation and free with its time and size, and the peak is the
highest point of their running sum over the step (``zero_grad``, forward,
backward, Adam step), measured from where the step starts. Both sides run on
twin models and the same batch, after a warm-up step (Adam's state is made on
the first), several times, and the smallest peak of each is kept (allocation
is deterministic; the repeats only guard against a stray allocation).

Cases:

* distillation: the paper's Figure 1 (a 64→512→10 teacher, a 64→64→10 student, batch 128);
* frozen chain: a teacher of four frozen 1024→4096→1024 blocks, each its own edge
  (``x·t1·t2·t3·t4·soft``), distilled into a small student: under
  ``torch.no_grad`` nothing but the compiled loss could hold the blocks'
  outputs, so this is where holding a prefix's value after its last use shows;
* heads: one backbone shared by 50 classifier heads.

Run: ``.venv/bin/python bench/memory.py [--quick] [--repeats N]``. Prints the
machine line, each side's peak in MB and the ratio (ours / hand-written).
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import os
import sys
from collections.abc import Iterator
from typing import Any, Callable

import torch
import torch.nn.functional as F
from sidebyside import distillation_diagram, hand_terms, machine_line, tutorial_kl
from torch import nn
from torch.profiler import ProfilerActivity, profile

import learning_diagrams as ld

Step = Callable[[], None]


@contextlib.contextmanager
def quiet_stderr() -> Iterator[None]:
    """The process's standard error (file descriptor 2) sent to ``os.devnull`` for the block.

    The profiler's C++ side writes there, not through Python, a line at every start
    and stop (``USDT: ... profiler_start``) and a warning about blocks allocated
    before it started; they say nothing about the figures, and would bury them.
    """
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def peak_bytes(step: Step) -> int:
    """The highest the bytes allocated by PyTorch on the CPU rise above where they were when ``step`` began."""
    with quiet_stderr(), profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        step()
    records = [e for e in prof.profiler.kineto_results.events() if e.name() == "[memory]"]
    records.sort(key=lambda e: e.start_ns())
    level = peak = 0
    for e in records:
        level += e.nbytes()
        peak = max(peak, level)
    return peak


def training_step(loss_fn: Callable[[], torch.Tensor], params: list[nn.Parameter]) -> Step:
    optimiser = torch.optim.Adam(params, lr=1e-3)

    def step() -> None:
        optimiser.zero_grad(set_to_none=True)
        loss_fn().backward()
        optimiser.step()

    step()  # Adam's state is made here, not in the measured steps
    return step


def distillation(batch_size: int) -> tuple[Step, Step]:
    teacher = nn.Sequential(nn.Linear(64, 512), nn.ReLU(), nn.Linear(512, 10))
    student = nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10))
    hand_teacher, hand_student = copy.deepcopy(teacher).eval(), copy.deepcopy(student)
    batch = (torch.randn(batch_size, 64), torch.randint(10, (batch_size,)))
    compiled = distillation_diagram(teacher, student, [batch]).compile()
    batches = {"N": batch}

    def hand() -> torch.Tensor:
        return hand_terms(hand_teacher, hand_student, *batch)[0]

    return (
        training_step(lambda: compiled(batches).total, list(student.parameters())),
        training_step(hand, list(hand_student.parameters())),
    )


def frozen_chain(batch_size: int, width: int = 1024) -> tuple[Step, Step]:
    blocks = [nn.Sequential(nn.Linear(width, 4 * width), nn.ReLU(), nn.Linear(4 * width, width)) for _ in range(4)]
    head = nn.Linear(width, 10)
    student = nn.Sequential(nn.Linear(width, 64), nn.ReLU(), nn.Linear(64, 10))
    hand_blocks, hand_head, hand_student = copy.deepcopy(blocks), copy.deepcopy(head), copy.deepcopy(student)
    batch = torch.randn(batch_size, width)
    d = ld.Diagram().space("N", data=[batch]).space("X").space("L").space("G", loss=ld.losses.KLDivergence(2.0))
    d.map("x", "N", "X", lambda b: b)
    d.space("H1").space("H2").space("H3").space("H4")
    for i, (block, into) in enumerate(zip(blocks, ["H1", "H2", "H3", "H4"]), 1):
        d.map(f"t{i}", "X" if i == 1 else f"H{i - 1}", into, block, trainable=False)
    d.map("head", "H4", "L", head, trainable=False).map("student", "X", "L", student).map(
        "soft", "L", "G", nn.Identity()
    )
    d.relate("x·student·soft", "x·t1·t2·t3·t4·head·soft")
    compiled = d.compile()
    batches = {"N": batch}

    def hand() -> torch.Tensor:
        with torch.no_grad():
            h = batch
            for block in hand_blocks:
                h = block(h)
            t = hand_head(h)
        return tutorial_kl(hand_student(batch), t)

    return (
        training_step(lambda: compiled(batches).total, list(student.parameters())),
        training_step(hand, list(hand_student.parameters())),
    )


def heads(batch_size: int, n_heads: int = 50) -> tuple[Step, Step]:
    backbone = nn.Sequential(nn.Linear(64, 256), nn.ReLU(), nn.Linear(256, 128), nn.ReLU())
    head_list = [nn.Linear(128, 5) for _ in range(n_heads)]
    hand_backbone, hand_heads = copy.deepcopy(backbone), copy.deepcopy(head_list)
    batch = (torch.randn(batch_size, 64), torch.randint(5, (batch_size, n_heads)))
    d = ld.Diagram().space("N", data=[batch]).space("X").space("F")
    d.map("x", "N", "X", lambda b: b[0]).map("backbone", "X", "F", backbone)
    for i, head in enumerate(head_list):
        d.space(f"Y{i}", loss=ld.losses.cross_entropy)
        d.map(f"y{i}", "N", f"Y{i}", lambda b, i=i: b[1][:, i]).map(f"head{i}", "F", f"Y{i}", head)
        d.relate(f"x·backbone·head{i}", f"y{i}")
    compiled = d.compile()
    batches = {"N": batch}

    def hand() -> torch.Tensor:
        features = hand_backbone(batch[0])
        return sum(F.cross_entropy(h(features), batch[1][:, i]) for i, h in enumerate(hand_heads))

    params = list(backbone.parameters()) + [p for h in head_list for p in h.parameters()]
    hand_params = list(hand_backbone.parameters()) + [p for h in hand_heads for p in h.parameters()]
    return training_step(lambda: compiled(batches).total, params), training_step(hand, hand_params)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats: a few seconds")
    parser.add_argument("--repeats", type=int, default=None, help="measured steps per side (default 5, quick 2)")
    parser.add_argument("--batch-size", type=int, default=128)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    repeats = args.repeats or (2 if args.quick else 5)
    torch.manual_seed(0)
    print(machine_line(f"batch {args.batch_size}; peak above the step's start, least of {repeats} steps"))
    print(f"{'case':<20} {'ours (MB)':>10} {'hand (MB)':>10} {'ratio':>7}")
    cases: list[tuple[str, Any]] = [("distillation", distillation), ("frozen chain", frozen_chain), ("50 heads", heads)]
    for label, case in cases:
        ours, hand = case(args.batch_size)
        a = min(peak_bytes(ours) for _ in range(repeats))
        b = min(peak_bytes(hand) for _ in range(repeats))
        print(f"{label:<20} {a / 2**20:>10.2f} {b / 2**20:>10.2f} {a / b:>7.3f}", flush=True)


if __name__ == "__main__":
    main()
