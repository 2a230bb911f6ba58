"""Overhead of a compiled diagram against the same loss written by hand, side by side.

Two regimes, each timed as a full training step (forward, backward, Adam step)
on the same models and batch, interleaved so that both see the same machine:

* distillation: the paper's Figure 1 on 8×8 digit-sized inputs;
* heads: one backbone shared by 50 classifier heads (each prefix runs once).

Run: ``.venv/bin/python bench/compiled_loss.py [--steps 200] [--device cpu]``.
It prints the median step time of each and their ratio (ours / hand-written).
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F
from torch import nn

import learning_diagrams as ld


def distillation_case(batch_size: int, device: str):
    teacher = nn.Sequential(nn.Linear(64, 512), nn.ReLU(), nn.Linear(512, 10)).to(device)
    student = nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10)).to(device)
    batch = (torch.randn(batch_size, 64, device=device), torch.randint(10, (batch_size,), device=device))
    d = (
        ld.Diagram()
        .space("N", data=[batch])
        .space("X")
        .space("L")
        .space("Y", loss=ld.losses.cross_entropy)
        .space("G", loss=ld.losses.KLDivergence(temperature=2.0))
        .map("x", "N", "X", lambda b: b[0])
        .map("y", "N", "Y", lambda b: b[1])
        .map("teacher", "X", "L", teacher, trainable=False)
        .map("student", "X", "L", student)
        .map("hard", "L", "Y", nn.Identity())
        .map("soft", "L", "G", nn.Identity())
        .relate("x·student·hard", "y", weight=0.75)
        .relate("x·student·soft", "x·teacher·soft", weight=0.25)
    )
    compiled = d.compile()

    def ours():
        return compiled(N=batch).total

    def hand():
        images, labels = batch
        with torch.no_grad():
            t = teacher(images)
        s = student(images)
        T = 2.0
        soft = F.softmax(t / T, dim=-1)
        kl = torch.sum(soft * (soft.log() - F.log_softmax(s / T, dim=-1))) / s.size(0) * T**2
        return 0.25 * kl + 0.75 * F.cross_entropy(s, labels)

    return ours, hand, list(student.parameters())


def heads_case(batch_size: int, device: str, n_heads: int = 50):
    backbone = nn.Sequential(nn.Linear(64, 256), nn.ReLU(), nn.Linear(256, 128), nn.ReLU()).to(device)
    heads = [nn.Linear(128, 5).to(device) for _ in range(n_heads)]
    batch = (torch.randn(batch_size, 64, device=device), torch.randint(5, (batch_size, n_heads), device=device))
    d = ld.Diagram().space("N", data=[batch]).space("X").space("F")
    d.map("x", "N", "X", lambda b: b[0]).map("backbone", "X", "F", backbone)
    for i, head in enumerate(heads):
        d.space(f"Y{i}", loss=ld.losses.cross_entropy)
        d.map(f"y{i}", "N", f"Y{i}", lambda b, i=i: b[1][:, i]).map(f"head{i}", "F", f"Y{i}", head)
        d.relate(f"x·backbone·head{i}", f"y{i}")
    compiled = d.compile()

    def ours():
        return compiled(N=batch).total

    def hand():
        features = backbone(batch[0])
        return sum(F.cross_entropy(head(features), batch[1][:, i]) for i, head in enumerate(heads))

    params = list(backbone.parameters()) + [p for h in heads for p in h.parameters()]
    return ours, hand, params


def timed_steps(loss_fn, optimiser, steps: int, device: str) -> list[float]:
    times = []
    for _ in range(steps):
        if device == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        optimiser.zero_grad()
        loss_fn().backward()
        optimiser.step()
        if device == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    torch.manual_seed(0)
    print(
        f"{'case':<14} {'ours (ms)':>10} {'hand (ms)':>10} {'ratio':>7}   device={args.device}, "
        f"batch={args.batch_size}, steps={args.steps}, threads={torch.get_num_threads()}"
    )
    for name, case in [("distillation", distillation_case), ("50 heads", heads_case)]:
        ours, hand, params = case(args.batch_size, args.device)
        optimiser = torch.optim.Adam(params, lr=1e-3)
        timed_steps(ours, optimiser, 10, args.device), timed_steps(hand, optimiser, 10, args.device)  # warm-up
        ours_t, hand_t = [], []
        for _ in range(5):  # interleave, so both see the same machine state
            ours_t += timed_steps(ours, optimiser, args.steps // 5, args.device)
            hand_t += timed_steps(hand, optimiser, args.steps // 5, args.device)
        a, b = statistics.median(ours_t) * 1e3, statistics.median(hand_t) * 1e3
        print(f"{name:<14} {a:>10.3f} {b:>10.3f} {a / b:>7.3f}")


if __name__ == "__main__":
    main()
