"""Lens learners and optimisers against plain PyTorch and ``torch.optim``, side by side.

Each figure is a ratio, the lens side's median time over its torch counterpart's,
both measured in this one run: the two are timed in alternating blocks (which
goes first alternates too), so that both see the same machine, and the median
of the blocks' per-call times is taken on each side.

* ``supervised step``: one training step of ``supervised(dense(4→20, sigmoid) >>
  dense(20→3, sigmoid), quadratic_error(), adam())`` on one Iris-sized sample
  (``Learner.step``), against the plain torch step on the same ``nn.Sequential``
  (``zero_grad``, forward, ``F.mse_loss``, ``backward``, ``torch.optim.Adam.step``
  with torch's default implementation);
* ``lens <optimiser>``: ``Optimiser.update(params, state, change, donate=True)``,
  the backward part of the lens optimiser as :func:`~learning_diagrams.lenses.learner.train`
  runs it after its first step (it overwrites the tensors it is given, as
  ``torch.optim`` does; the state is carried from call to call), against
  ``torch.optim``'s ``step()`` with ``foreach=True`` on the same tensors and
  gradients; ``new tensors``: the same without ``donate``, the lens's own
  backward part, which leaves its arguments alone and so allocates every
  parameter and moment afresh (on 1M parameters, writing fresh memory costs more
  than the arithmetic);
* ``LensOptimizer(<optimiser>)``: the lens optimiser as a ``torch.optim``
  optimiser (:class:`~learning_diagrams.lenses.bridges.LensOptimizer`) against
  the same ``torch.optim`` class with ``foreach=True``.

Both optimiser figures are given on one tensor of 1M parameters (1000 × 1000)
and on 100 small tensors (10 × 10 each).

Run: ``.venv/bin/python bench/lenses.py [--quick] [--threads N] [--rounds N]``.
``--quick`` (a few seconds) times Adam alone with fewer rounds; the full run
times every optimiser.
"""

from __future__ import annotations

import argparse
from typing import Any, Callable

import torch
import torch.nn.functional as F
from sidebyside import alternate, machine_line, median_ratio  # bench/sidebyside.py, shared by the benchmarks
from torch import nn

from learning_diagrams.lenses import optim, parts
from learning_diagrams.lenses.bridges import LensOptimizer
from learning_diagrams.lenses.learner import supervised

#: name → (the lens optimiser, its torch.optim twin with foreach=True).
OPTIMISERS: dict[str, tuple[Callable[[], optim.Optimiser], Callable[[list[torch.Tensor]], torch.optim.Optimizer]]] = {
    "adam": (lambda: optim.adam(lr=1e-3), lambda ps: torch.optim.Adam(ps, lr=1e-3, foreach=True)),
    "sgd": (lambda: optim.sgd(lr=1e-3), lambda ps: torch.optim.SGD(ps, lr=1e-3, foreach=True)),
    "momentum": (
        lambda: optim.momentum(lr=1e-3, momentum=0.9),
        lambda ps: torch.optim.SGD(ps, lr=1e-3, momentum=0.9, foreach=True),
    ),
    "nesterov": (
        lambda: optim.nesterov(lr=1e-3, momentum=0.9),
        lambda ps: torch.optim.SGD(ps, lr=1e-3, momentum=0.9, nesterov=True, foreach=True),
    ),
    "adagrad": (lambda: optim.adagrad(lr=1e-2), lambda ps: torch.optim.Adagrad(ps, lr=1e-2, foreach=True)),
    "rmsprop": (lambda: optim.rmsprop(lr=1e-2), lambda ps: torch.optim.RMSprop(ps, lr=1e-2, foreach=True)),
}

SIZES: dict[str, list[tuple[int, ...]]] = {"1M parameters": [(1000, 1000)], "100 small tensors": [(10, 10)] * 100}


def supervised_case() -> tuple[Callable[[], Any], Callable[[], Any]]:
    """The lens step and the torch step of the paper's Iris MLP with Adam, at batch 1."""
    model = parts.dense(4, 20, "d1", activation="sigmoid") >> parts.dense(20, 3, "d2", activation="sigmoid")
    learner = supervised(model, parts.quadratic_error(), optim.adam(lr=1e-3))
    twin = nn.Sequential(nn.Linear(4, 20), nn.Sigmoid(), nn.Linear(20, 3), nn.Sigmoid())
    with torch.no_grad():
        for layer, i in zip(model.params.values(), (0, 2)):
            twin[i].weight.copy_(layer["weight"])
            twin[i].bias.copy_(layer["bias"])
    adam = torch.optim.Adam(twin.parameters(), lr=1e-3)
    g = torch.Generator().manual_seed(0)
    data = [(torch.randn(1, 4, generator=g), torch.rand(1, 3, generator=g)) for _ in range(64)]
    state = {"q": learner.initial, "i": 0}

    def ours() -> None:
        x, y = data[state["i"] % 64]
        state["i"] += 1
        state["q"], _ = learner.step(state["q"], x, y)

    count = [0]

    def theirs() -> None:
        x, y = data[count[0] % 64]
        count[0] += 1
        adam.zero_grad()
        F.mse_loss(twin(x), y).backward()
        adam.step()

    return ours, theirs


def tensors(shapes: list[tuple[int, ...]], seed: int) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(s, generator=g) for s in shapes]


def update_case(name: str, shapes: list[tuple[int, ...]], donate: bool) -> tuple[Callable[[], Any], Callable[[], Any]]:
    """The lens optimiser's backward part against ``torch.optim`` (foreach) on the same tensors and gradients."""
    make_lens, make_torch = OPTIMISERS[name]
    opt = make_lens()
    grads = tensors(shapes, 1)
    params = {f"t{i}": p for i, p in enumerate(tensors(shapes, 0))}
    change = {f"t{i}": -g for i, g in enumerate(grads)}
    carried = {"p": params, "s": opt.init(params)}

    def ours() -> None:
        carried["p"], carried["s"] = opt.update(carried["p"], carried["s"], change, donate=donate)

    theirs_params = [p.clone() for p in tensors(shapes, 0)]
    for p, g in zip(theirs_params, grads):
        p.grad = g.clone()
    twin = make_torch(theirs_params)
    return ours, twin.step


def bridge_case(name: str, shapes: list[tuple[int, ...]]) -> tuple[Callable[[], Any], Callable[[], Any]]:
    """``LensOptimizer`` against the ``torch.optim`` class it stands for (foreach), on the same tensors and gradients."""
    make_lens, make_torch = OPTIMISERS[name]
    grads = tensors(shapes, 1)
    ours_params, theirs_params = tensors(shapes, 0), tensors(shapes, 0)
    for ps in (ours_params, theirs_params):
        for p, g in zip(ps, grads):
            p.grad = g.clone()
    return LensOptimizer(ours_params, make_lens()).step, make_torch(theirs_params).step


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="Adam alone, fewer rounds: a few seconds")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1: tiny tensors, shared cores)")
    parser.add_argument("--rounds", type=int, default=None, help="alternating blocks per side (default 30, quick 7)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    rounds = args.rounds or (7 if args.quick else 30)
    print(machine_line(f"median of {rounds} alternating blocks per side"))
    print(f"{'case':<46} {'lens':>11} {'torch':>11} {'ratio':>7}")

    def report(label: str, pair: tuple[Callable[[], Any], Callable[[], Any]], calls: int) -> None:
        # warm-up: first-call costs (allocations, the first step's new state) out of the figures
        ours, theirs, ratio = median_ratio(alternate(*pair, rounds=rounds, calls=calls, warmup=max(calls // 2, 3)))
        print(f"{label:<46} {_fmt(ours):>11} {_fmt(theirs):>11} {ratio:>7.2f}", flush=True)

    report("supervised step, batch 1, 4-20-3 MLP, Adam", supervised_case(), 20 if args.quick else 50)
    chosen = ["adam"] if args.quick else list(OPTIMISERS)
    for size, shapes in SIZES.items():
        calls = 3 if len(shapes) == 1 else 20
        for name in chosen:
            report(f"lens {name}, {size}", update_case(name, shapes, True), calls)
            report(f"lens {name}, {size}, new tensors", update_case(name, shapes, False), calls)
        for name in chosen:
            report(f"LensOptimizer({name}), {size}", bridge_case(name, shapes), calls)
    print("(ratio: lens time / torch time; torch.optim with foreach=True; the supervised step's torch side uses")
    print(" torch.optim.Adam's default implementation, as a plain training loop does)")


def _fmt(seconds: float) -> str:
    return f"{seconds * 1e6:.1f} µs" if seconds < 1e-3 else f"{seconds * 1e3:.2f} ms"


if __name__ == "__main__":
    main()
