"""Overhead of a compiled diagram against the same loss written by hand, side by side.

Two regimes, each timed as a full training step (``zero_grad``, forward,
backward, Adam step) on twin models and the same batch, the two sides
interleaved step by step so that both see the same machine:

* distillation: the paper's Figure 1 on 8×8 digit-sized inputs, batch 128: a
  64→512→10 teacher, a 64→64→10 student; the hand-written side is the PyTorch
  tutorial's loss. Small enough to be bound by per-call overhead, which is what
  this measures. The diagram's ``G`` carries ``ld.losses.KLDivergence``, which
  guards ``0·log 0`` (one ``where`` more than the tutorial's formula); a second
  line gives ``G`` the tutorial's own formula, so that only the library's own
  work differs between the sides;
* heads: one backbone shared by 50 classifier heads (each prefix runs once). The same
  compiled with ``fuse=True`` (the heads as one batched call) is timed by ``bench/fusion.py``.

It also reports whether ``torch.compile`` traces the distillation loss in one
graph (``torch._dynamo.explain``'s graph and graph-break counts) and, unless
``--quick``, the compiled step against the eager one.

Run: ``.venv/bin/python bench/compiled_loss.py [--quick] [--steps N] [--threads N] [--device cpu]``.
It prints the machine line, then the median step time of each side and their
ratio (ours / hand-written).
"""

from __future__ import annotations

import argparse
import copy
from typing import Any, Callable

import torch
import torch.nn.functional as F
from sidebyside import alternate, distillation_diagram, hand_terms, machine_line, median_ratio, tutorial_kl
from torch import nn

import learning_diagrams as ld

Case = tuple[Callable[[], torch.Tensor], Callable[[], torch.Tensor], list[nn.Parameter], list[nn.Parameter]]


def distillation_case(
    batch_size: int, device: str, *, same_formula: bool = False
) -> tuple[Case, ld.torch.CompiledLoss, dict[str, Any]]:
    teacher = nn.Sequential(nn.Linear(64, 512), nn.ReLU(), nn.Linear(512, 10)).to(device)
    student = nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10)).to(device)
    hand_teacher, hand_student = copy.deepcopy(teacher).eval(), copy.deepcopy(student)
    batch = (torch.randn(batch_size, 64, device=device), torch.randint(10, (batch_size,), device=device))
    d = distillation_diagram(teacher, student, batch)
    if same_formula:  # the tutorial's formula at G, so that only the library's own work differs
        d.spaces["G"].loss = ld.Loss(tutorial_kl, name="tutorial_kl", symmetric=False)
    compiled = d.compile()
    batches = {"N": batch}

    def ours() -> torch.Tensor:
        return compiled(batches).total

    def hand() -> torch.Tensor:
        return hand_terms(hand_teacher, hand_student, *batch)[0]

    return (ours, hand, list(student.parameters()), list(hand_student.parameters())), compiled, batches


Modules = Any  #: what a case's diagram and its hand-written twin are built from (copies of it)
Batch = tuple[torch.Tensor, ...]
#: ``(modules, batch) →`` the case's diagram.
Diagrammer = Callable[[Modules, Batch], ld.Diagram]
#: ``(modules, batch) →`` the hand-written loss and the parameters it trains.
Hand = Callable[[Modules, Batch], tuple[Callable[[], torch.Tensor], list[nn.Parameter]]]


def diagram_case(
    modules: Modules,
    batch: Batch,
    diagram: Diagrammer,
    hand: Hand,
    *,
    fuse: bool = False,
) -> tuple[Case, ld.torch.CompiledLoss]:
    """Ours (``diagram`` compiled) and the hand-written side (``hand``), each on its own copy of ``modules``.

    Ours trains ``compiled.parameters()``: with ``fuse=True`` that is where a fused family's
    parameters live, so its optimiser is built from them, not from the modules'.
    """
    compiled = diagram(copy.deepcopy(modules), batch).compile(fuse=fuse)
    hand_loss, hand_params = hand(copy.deepcopy(modules), batch)
    batches = {"N": batch}

    def ours() -> torch.Tensor:
        return compiled(batches).total

    return (ours, hand_loss, list(compiled.parameters()), hand_params), compiled


def heads_workload(batch_size: int, device: str, n_heads: int = 50) -> tuple[Modules, Batch]:
    """A backbone, ``n_heads`` 128→5 heads, and a batch of inputs with a label for each head."""
    backbone = nn.Sequential(nn.Linear(64, 256), nn.ReLU(), nn.Linear(256, 128), nn.ReLU()).to(device)
    heads = [nn.Linear(128, 5).to(device) for _ in range(n_heads)]
    batch = (torch.randn(batch_size, 64, device=device), torch.randint(5, (batch_size, n_heads), device=device))
    return (backbone, heads), batch


def heads_diagram(modules: Modules, batch: Batch) -> ld.Diagram:
    """The backbone shared by the heads, head ``i`` related to label ``i``."""
    backbone, heads = modules
    d = ld.Diagram().space("N", data=[batch]).space("X").space("F")
    d.map("x", "N", "X", lambda b: b[0]).map("backbone", "X", "F", backbone)
    for i, head in enumerate(heads):
        d.space(f"Y{i}", loss=ld.losses.cross_entropy)
        d.map(f"y{i}", "N", f"Y{i}", lambda b, i=i: b[1][:, i]).map(f"head{i}", "F", f"Y{i}", head)
        d.relate(f"x·backbone·head{i}", f"y{i}")
    return d


def heads_hand(modules: Modules, batch: Batch) -> tuple[Callable[[], torch.Tensor], list[nn.Parameter]]:
    """The hand-written loop: the backbone once, then each head's cross-entropy, summed."""
    backbone, heads = modules

    def hand() -> torch.Tensor:
        features = backbone(batch[0])
        return sum(F.cross_entropy(head(features), batch[1][:, i]) for i, head in enumerate(heads))

    return hand, list(backbone.parameters()) + [p for h in heads for p in h.parameters()]


def heads_case(batch_size: int, device: str, n_heads: int = 50) -> Case:
    modules, batch = heads_workload(batch_size, device, n_heads)
    return diagram_case(modules, batch, heads_diagram, heads_hand)[0]


def training_step(loss_fn: Callable[[], torch.Tensor], optimiser: torch.optim.Optimizer, device: str):
    def step() -> None:
        optimiser.zero_grad(set_to_none=True)
        loss_fn().backward()
        optimiser.step()
        if device == "cuda":
            torch.cuda.synchronize()

    return step


def compare(label: str, case: Case, steps: int, device: str, note: Callable[[float], str] | None = None) -> None:
    """Print one line: the median step of each side and their ratio, and ``note(ratio)`` beside it."""
    ours, hand, ours_params, hand_params = case
    ours_step = training_step(ours, torch.optim.Adam(ours_params, lr=1e-3), device)
    hand_step = training_step(hand, torch.optim.Adam(hand_params, lr=1e-3), device)
    a, b, ratio = median_ratio(alternate(ours_step, hand_step, rounds=steps, calls=1, warmup=20))
    beside = f"  {note(ratio)}" if note else ""
    print(f"{label:<34} {a * 1e3:>10.3f} {b * 1e3:>10.3f} {ratio:>7.3f}{beside}", flush=True)


def step_parser(description: str, quick_help: str, steps: int, quick_steps: int) -> argparse.ArgumentParser:
    """The options every step benchmark takes: ``--quick``, ``--steps``, ``--batch-size``, ``--threads``, ``--device``."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--quick", action="store_true", help=quick_help)
    parser.set_defaults(default_steps=(steps, quick_steps))
    parser.add_argument(
        "--steps", type=int, default=None, help=f"steps per side (default {steps}, quick {quick_steps})"
    )
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1: small tensors)")
    parser.add_argument("--device", default="cpu")
    return parser


def begin(args: argparse.Namespace) -> int:
    """Set the threads and the seed, print the machine line; the number of steps per side."""
    torch.set_num_threads(args.threads)
    steps = args.steps or args.default_steps[args.quick]
    torch.manual_seed(0)
    print(machine_line(f"device {args.device}, batch {args.batch_size}; median of {steps} interleaved steps"))
    return steps


def main(argv: list[str] | None = None) -> None:
    parser = step_parser(__doc__.splitlines()[0], "fewer steps, no compiled timing: a few seconds", 2000, 300)
    args = parser.parse_args(argv)
    steps = begin(args)
    print(f"{'case':<34} {'ours (ms)':>10} {'hand (ms)':>10} {'ratio':>7}")
    distillation, compiled, batches = distillation_case(args.batch_size, args.device)
    compare("distillation step", distillation, steps, args.device)
    same, _, _ = distillation_case(args.batch_size, args.device, same_formula=True)
    compare("  the same, tutorial formula at G", same, steps, args.device)
    compare("50 heads step", heads_case(args.batch_size, args.device), max(steps // 4, 50), args.device)

    torch._dynamo.reset()
    explained = torch._dynamo.explain(compiled)(batches)
    print(
        f"torch.compile of the distillation loss: {explained.graph_count} graph(s), "
        f"{explained.graph_break_count} graph break(s)"
    )
    if not args.quick:
        eager, _, params, _ = distillation
        fast = torch.compile(compiled)
        twin = training_step(lambda: fast(batches).total, torch.optim.Adam(params, lr=1e-3), args.device)
        a, b, ratio = median_ratio(
            alternate(
                twin,
                training_step(eager, torch.optim.Adam(params, lr=1e-3), args.device),
                rounds=steps // 2,
                calls=1,
                warmup=20,
            )
        )
        print(f"{'distillation, compiled / eager':<34} {a * 1e3:>10.3f} {b * 1e3:>10.3f} {ratio:>7.3f}")


if __name__ == "__main__":
    main()
