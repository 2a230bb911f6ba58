"""Frozen outputs computed once: ``ld.fit`` with its cache against the hand-written loop, side by side.

The case is distillation from a frozen teacher about ten times the student's cost
(forward passes: a 256→1664→10 teacher, a 256→128→10 student; the measured ratio
is printed), batches of 128, Adam, over ``--epochs`` epochs (default 10) of 40
batches made in advance.

* ours: ``ld.fit(diagram, epochs=10, log_every=10, progress=False, log_dir=False)``
  with its defaults, so ``cache="auto"``: the teacher's logits are computed in the
  first epoch and reused in the nine others; and the same call with ``cache=False``;
* hand: the PyTorch tutorial's loop, the teacher under ``torch.no_grad()`` at
  every step, the loss read every 10th step.

The two sides are timed in alternation and the ratio is that of the medians. The
cached run's logged losses are checked equal, bit for bit, to the uncached run's.

Run: ``.venv/bin/python bench/cache.py [--quick] [--rounds N] [--epochs N] [--threads N]``.
"""

from __future__ import annotations

import argparse
import copy
import time

import torch
from sidebyside import alternate, distillation_diagram, hand_terms, machine_line, median_ratio
from torch import nn

import learning_diagrams as ld

STEPS, BATCH, LOG_EVERY = 40, 128, 10


def models() -> tuple[nn.Module, nn.Module]:
    teacher = nn.Sequential(nn.Linear(256, 1664), nn.ReLU(), nn.Linear(1664, 10))
    student = nn.Sequential(nn.Linear(256, 128), nn.ReLU(), nn.Linear(128, 10))
    return teacher, student


def hand_loop(teacher: nn.Module, student: nn.Module, batches: list, epochs: int) -> list[float]:
    """``epochs`` epochs as the tutorial writes them, reading the loss every ``LOG_EVERY`` steps."""
    torch.manual_seed(0)
    teacher.eval()
    student.train()
    optimiser = torch.optim.Adam(student.parameters(), lr=1e-3)
    read = []
    for _ in range(epochs):
        for step, (images, labels) in enumerate(batches, 1):
            total, _, _ = hand_terms(teacher, student, images, labels)
            optimiser.zero_grad(set_to_none=True)
            total.backward()
            optimiser.step()
            if step % LOG_EVERY == 0:
                read.append(total.item())
    return read


def forward_cost(model: nn.Module, x: torch.Tensor, n: int = 200) -> float:
    with torch.no_grad():
        for _ in range(10):
            model(x)
        start = time.perf_counter()
        for _ in range(n):
            model(x)
    return (time.perf_counter() - start) / n


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds and epochs: a few seconds")
    parser.add_argument("--rounds", type=int, default=None, help="runs per side (default 7, quick 3)")
    parser.add_argument("--epochs", type=int, default=None, help="epochs a run (default 10, quick 4)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    rounds = args.rounds or (3 if args.quick else 7)
    epochs = args.epochs or (4 if args.quick else 10)
    torch.manual_seed(0)
    batches = [(torch.randn(BATCH, 256), torch.randint(10, (BATCH,))) for _ in range(STEPS)]
    teacher, student = models()
    x = batches[0][0]
    cost = forward_cost(teacher, x) / forward_cost(student, x)
    d = distillation_diagram(teacher, student, batches)
    hand_teacher, hand_student = copy.deepcopy(teacher), copy.deepcopy(student)
    options = dict(epochs=epochs, log_every=LOG_EVERY, progress=False, log_dir=False, device="cpu", lr=1e-3)

    def logged(cache: bool | str) -> list[dict]:
        return [r["values"] for r in ld.fit(d, cache=cache, **options).records]

    student_state = copy.deepcopy(student.state_dict())
    cached = logged("auto")
    student.load_state_dict(student_state)
    uncached = logged(False)
    student.load_state_dict(student_state)
    if cached != uncached:
        raise SystemExit("the cached run's losses differ from the uncached run's")
    print(
        machine_line(
            f"{epochs} epochs of {STEPS} steps of batch {BATCH}; teacher forward {cost:.1f}× the student's; "
            f"median of {rounds} runs a side"
        )
    )
    print("losses logged with the cache equal those without, bit for bit: yes")
    print(f"{'case':<40} {'ours (s)':>9} {'hand (s)':>9} {'ratio':>7}")

    def report(label: str, ours, hand) -> None:  # type: ignore[no-untyped-def]
        a, b, ratio = median_ratio(alternate(ours, hand, rounds=rounds, calls=1, warmup=1))
        print(f"{label:<40} {a:>9.3f} {b:>9.3f} {ratio:>7.3f}", flush=True)

    report(
        f"ld.fit, cache='auto', {epochs} epochs",
        lambda: ld.fit(d, **options),
        lambda: hand_loop(hand_teacher, hand_student, batches, epochs),
    )
    report(
        f"ld.fit, cache=False, {epochs} epochs",
        lambda: ld.fit(d, cache=False, **options),
        lambda: hand_loop(hand_teacher, hand_student, batches, epochs),
    )


if __name__ == "__main__":
    main()
