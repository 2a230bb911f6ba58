"""``ld.fit`` over one epoch against the same training loop written by hand, side by side.

The case is the compiled-loss benchmark's overhead-bound one: knowledge distillation
(the paper's Figure 1) of a 64→512→10 teacher into a 64→64→10 student, batches of
128, Adam. One epoch is 40 steps over a list of 40 batches made in advance (no
``DataLoader``, whose collation would hide what is measured).

* ours: ``ld.fit(diagram, epochs=1, log_every=10, progress=False, log_dir=False,
  device="cpu")``, as a user would call it: the whole call, compiling the diagram,
  making the optimiser, seeding, the non-finite checks, logging every 10th step;
* hand: the loop a user would write instead: seed, make the optimiser, and for each
  batch the tutorial's loss, ``zero_grad``, ``backward``, ``step``, with the total
  and both terms read (``.item()``) every 10th step.

Both train their own copies of the same models. The two sides are timed in
alternation (which goes first alternates too), one epoch per call, and the ratio is
that of the medians. With ``--compile`` both sides also run ``ld.fit(compile=True)``
and the hand loop under ``torch.compile``.

Run: ``.venv/bin/python bench/fit.py [--quick] [--rounds N] [--threads N] [--compile]``.
"""

from __future__ import annotations

import argparse
import copy
import time
from typing import Any

import torch
from sidebyside import alternate, distillation_diagram, hand_terms, machine_line, median_ratio
from torch import nn

import learning_diagrams as ld

STEPS, BATCH, LOG_EVERY = 40, 128, 10


def models() -> tuple[nn.Module, nn.Module]:
    teacher = nn.Sequential(nn.Linear(64, 512), nn.ReLU(), nn.Linear(512, 10))
    student = nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10))
    return teacher, student


def hand_loop(teacher: nn.Module, student: nn.Module, batches: list, loss_fn: Any) -> list[dict[str, float]]:
    """One epoch as a user writes it, logging every ``LOG_EVERY`` steps."""
    torch.manual_seed(0)
    teacher.eval()
    student.train()
    optimiser = torch.optim.Adam(student.parameters(), lr=1e-3)
    records = []
    for step, (images, labels) in enumerate(batches, 1):
        total, hard, soft = loss_fn(teacher, student, images, labels)
        optimiser.zero_grad(set_to_none=True)
        total.backward()
        optimiser.step()
        if step % LOG_EVERY == 0:
            records.append({"step": step, "total": total.item(), "hard": hard.item(), "soft": soft.item()})
    return records


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds: a few seconds")
    parser.add_argument("--rounds", type=int, default=None, help="epochs per side (default 40, quick 8)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1: small tensors)")
    parser.add_argument("--compile", action="store_true", help="also time compile=True against torch.compile")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    rounds = args.rounds or (8 if args.quick else 40)
    torch.manual_seed(0)
    batches = [(torch.randn(BATCH, 64), torch.randint(10, (BATCH,))) for _ in range(STEPS)]
    teacher, student = models()
    hand_teacher, hand_student = copy.deepcopy(teacher), copy.deepcopy(student)
    d = distillation_diagram(teacher, student, batches)
    options = dict(epochs=1, log_every=LOG_EVERY, progress=False, log_dir=False, device="cpu", lr=1e-3)
    print(machine_line(f"{STEPS} steps of batch {BATCH} an epoch, log_every={LOG_EVERY}; median of {rounds} epochs"))
    print(f"{'case':<34} {'ours (ms)':>10} {'hand (ms)':>10} {'ratio':>7}")

    def report(label: str, ours: Any, hand: Any) -> None:
        a, b, ratio = median_ratio(alternate(ours, hand, rounds=rounds, calls=1, warmup=2))
        print(f"{label:<34} {a * 1e3:>10.2f} {b * 1e3:>10.2f} {ratio:>7.3f}", flush=True)

    report(
        "ld.fit, one epoch",
        lambda: ld.fit(d, **options),
        lambda: hand_loop(hand_teacher, hand_student, batches, hand_terms),
    )
    if args.compile:
        compiled_terms = torch.compile(hand_terms)
        start = time.perf_counter()
        ld.fit(d, compile=True, **options)
        hand_loop(hand_teacher, hand_student, batches, compiled_terms)
        print(f"(first compile=True epochs, with tracing, both sides: {time.perf_counter() - start:.1f} s)")
        report(
            "ld.fit(compile=True), one epoch",
            lambda: ld.fit(d, compile=True, **options),
            lambda: hand_loop(hand_teacher, hand_student, batches, compiled_terms),
        )
        report(
            "compile=True vs eager ld.fit",
            lambda: ld.fit(d, compile=True, **options),
            lambda: ld.fit(d, **options),
        )


if __name__ == "__main__":
    main()
