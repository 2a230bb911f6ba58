"""Parallel maps run as one: ``compile(fuse=True)`` against the hand-written sequential loop, side by side.

Two cases, each timed as a full training step (``zero_grad``, forward, backward,
Adam step) on twin models and the same batch, three ways:

* hand: the loop a user writes, one member after the other (the counterpart);
* ours, ``compile()``: the diagram compiled as it is by default, each map its own call;
* ours, ``compile(fuse=True)``: each family of parallel maps as one call
  (:mod:`learning_diagrams.torch.fusion`).

Ours builds its optimiser from ``compiled.parameters()``: with ``fuse=True`` that is
where a fused family's parameters live (stacked), so that Adam steps one tensor a
parameter name of the family rather than one a member.

The cases:

* 50 heads: one backbone shared by 50 ``nn.Linear(128, 5)`` heads, batch 128 (the
  heads case of ``compiled_loss.py``, from which it is imported);
* ensemble of 8: 8 students (64→64→10) distilled from one frozen teacher (64→512→10,
  as in ``sidebyside.distillation_diagram``), batch 128: space ``G`` carries
  ``ld.losses.KLDivergence(temperature=T)``, the teacher edge ``t: X → G`` is frozen,
  the student edges ``s0…s7: X → G`` are related by ``x·s_i ≤ x·t`` (student first,
  as in the paper's Figure 1). The hand side runs the teacher once under ``no_grad``,
  then each student's term (the PyTorch tutorial's soft-target loss), summed, with one
  Adam over all the students' parameters. (Ours' KL guards ``0·log 0``, one ``where`` a
  term more than the tutorial's formula: see ``compiled_loss.py``.)

Before timing, it checks on the same batch that the fused and the unfused totals agree
(to reassociation) and that both agree with the hand-written loss, the three built from
copies of the same modules; a disagreement stops it.

Run: ``.venv/bin/python bench/fusion.py [--quick] [--steps N] [--threads N] [--device cpu]``.
It prints the machine line, the check, then the median step time of each side, their
ratio (ours / hand-written) and, beside the fused lines, the goal (fused ≤ 0.5 of the hand loop).
"""

from __future__ import annotations

from typing import Callable

import torch
from compiled_loss import (
    Batch,
    Case,
    Diagrammer,
    Hand,
    Modules,
    begin,
    compare,
    diagram_case,
    heads_diagram,
    heads_hand,
    heads_workload,
    step_parser,
)
from sidebyside import T, tutorial_kl
from torch import nn

import learning_diagrams as ld
from learning_diagrams.torch.fusion import families

#: The fused step's target, as a fraction of the hand-written loop's.
GOAL = 0.5


def ensemble_workload(batch_size: int, device: str, n_students: int = 8) -> tuple[Modules, Batch]:
    """A 64→512→10 teacher, ``n_students`` 64→64→10 students, and a batch of inputs."""
    teacher = nn.Sequential(nn.Linear(64, 512), nn.ReLU(), nn.Linear(512, 10)).to(device)
    students = [nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10)).to(device) for _ in range(n_students)]
    return (teacher, students), (torch.randn(batch_size, 64, device=device),)


def ensemble_diagram(modules: Modules, batch: Batch) -> ld.Diagram:
    """The teacher frozen, each student related to it at ``G`` by the temperature KL (student first)."""
    teacher, students = modules
    d = ld.Diagram().space("N", data=[batch]).space("X").space("G", loss=ld.losses.KLDivergence(temperature=T))
    d.map("x", "N", "X", lambda b: b[0]).map("t", "X", "G", teacher, trainable=False)
    for i, student in enumerate(students):
        d.map(f"s{i}", "X", "G", student).relate(f"x·s{i}", "x·t")
    return d


def ensemble_hand(modules: Modules, batch: Batch) -> tuple[Callable[[], torch.Tensor], list[nn.Parameter]]:
    """The hand-written loop: the teacher once under ``no_grad``, then each student's KL term, summed."""
    teacher, students = modules
    teacher.eval()

    def hand() -> torch.Tensor:
        with torch.no_grad():
            target = teacher(batch[0])
        return sum(tutorial_kl(student(batch[0]), target) for student in students)

    return hand, [p for s in students for p in s.parameters()]


def goal(ratio: float) -> str:
    return f"goal ≤ {GOAL}: {'met' if ratio <= GOAL else 'not met'}"


def prepared(label: str, workload: tuple[Modules, Batch], diagram: Diagrammer, hand: Hand) -> tuple[Case, Case]:
    """The unfused and fused cases, once their totals are checked against each other and the hand's on one batch."""
    modules, batch = workload
    unfused, _ = diagram_case(modules, batch, diagram, hand)
    fused, compiled = diagram_case(modules, batch, diagram, hand, fuse=True)
    totals = [side() for side in (fused[0], unfused[0], unfused[1])]
    torch.testing.assert_close(totals[0], totals[1], rtol=1e-6, atol=1e-6, msg=f"{label}: fused ≠ unfused total")
    torch.testing.assert_close(totals[1], totals[2], rtol=1e-5, atol=1e-5, msg=f"{label}: ours ≠ hand total")
    sizes = ", ".join(str(len(f.edges)) for f in families(compiled)) or "none"
    print(
        f"{label}: fused, unfused and hand totals agree ({totals[1].item():.6g}); fused families of {sizes} maps; "
        f"Adam steps {len(unfused[2])} tensors unfused, {len(fused[2])} fused, {len(unfused[3])} by hand",
        flush=True,
    )
    return unfused, fused


def main(argv: list[str] | None = None) -> None:
    parser = step_parser(__doc__.splitlines()[0], "fewer steps: a few seconds", 500, 75)
    parser.add_argument("--heads", type=int, default=50, help="heads on the backbone (default 50)")
    parser.add_argument("--students", type=int, default=8, help="students in the ensemble (default 8)")
    args = parser.parse_args(argv)
    steps = begin(args)
    heads = (heads_workload(args.batch_size, args.device, args.heads), heads_diagram, heads_hand)
    ensemble = (ensemble_workload(args.batch_size, args.device, args.students), ensemble_diagram, ensemble_hand)
    cases = [
        (label, *prepared(label, *case))
        for label, case in ((f"{args.heads} heads", heads), (f"ensemble of {args.students}", ensemble))
    ]
    print(f"{'case':<34} {'ours (ms)':>10} {'hand (ms)':>10} {'ratio':>7}")
    for label, unfused, fused in cases:
        compare(f"{label}, compile()", unfused, steps, args.device)
        compare(f"{label}, compile(fuse=True)", fused, steps, args.device, note=goal)


if __name__ == "__main__":
    main()
