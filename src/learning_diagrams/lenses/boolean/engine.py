"""Running circuits on bool tensors: the forward pass that keeps every wire, and the reverse sweep.

A :class:`Schedule` is a circuit made ready for tensors: its gates grouped by
depth and kind, so that each group is one indexed tensor operation over the
whole batch. :meth:`Schedule.run` computes the value of every wire (the outputs
are read off them); :meth:`Schedule.backward` computes ``R[f](x, dy)`` from
those wires in one reverse sweep, adding changes where a wire fans out, so the
backward pass of a circuit's lens never runs the circuit again. A circuit makes
its schedule once, when first run (:meth:`~.circuit.Circuit.run`,
:meth:`~.circuit.Circuit.backward`, :meth:`~.circuit.Circuit.lens`).

Laws
----
The sweep agrees with the reverse derivative built as a circuit
(:meth:`~.circuit.Circuit.reverse`), here on ``x·y ⊕ x`` at every point:

>>> import torch
>>> from learning_diagrams.lenses.boolean import Circuit
>>> f = Circuit(2, (("and", (0, 1)), ("xor", (2, 0))), (3,), "x·y ⊕ x")
>>> x = torch.tensor([[a, b] for a in (False, True) for b in (False, True)])
>>> dy = torch.ones(4, 1, dtype=torch.bool)
>>> y, wires = Schedule.of(f).run(x)
>>> torch.equal(Schedule.of(f).backward(wires, dy), f.reverse()(torch.cat([x, dy], -1)))
True
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from ...core.errors import TypeMismatchError

if TYPE_CHECKING:
    from .circuit import Circuit

__all__ = ["Schedule"]


@dataclass(frozen=True)
class _Group:
    """Gates of one kind at one depth: the wires they drive and, per argument, the wires they read."""

    op: str
    out: torch.Tensor
    args: tuple[torch.Tensor, ...]


@dataclass(frozen=True, eq=False)
class Schedule:
    """A circuit's gates in groups by depth and kind, as index tensors, and its outputs as one."""

    circuit: Circuit
    groups: tuple[_Group, ...]
    outputs: torch.Tensor

    @staticmethod
    def of(c: Circuit) -> Schedule:
        """The schedule of ``c``: a gate's depth is one more than the deepest wire it reads."""
        level = [0] * c.n_wires
        groups: dict[tuple[int, str], list[tuple[int, tuple[int, ...]]]] = {}
        for k, (op, args) in enumerate(c.gates):
            w = c.n_in + k
            level[w] = 1 + max((level[a] for a in args), default=0)
            groups.setdefault((level[w], op), []).append((w, args))
        out = []
        for (_, op), members in sorted(groups.items()):
            idx = torch.tensor([w for w, _ in members], dtype=torch.long)
            arity = len(members[0][1])
            reads = tuple(torch.tensor([a[i] for _, a in members], dtype=torch.long) for i in range(arity))
            out.append(_Group(op, idx, reads))
        return Schedule(c, tuple(out), torch.tensor(c.outputs, dtype=torch.long))

    def run(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(f(x), wires)``: the outputs and the value of every wire, for a bool tensor ``(..., n_in)``."""
        c = self.circuit
        if not isinstance(x, torch.Tensor) or x.dtype != torch.bool or x.shape[-1:] != (c.n_in,):
            got = f"{x.dtype} {tuple(x.shape)}" if isinstance(x, torch.Tensor) else type(x).__name__
            raise TypeMismatchError(f"circuit {c.name} takes a bool tensor (..., {c.n_in}), not {got}")
        batch = x.shape[:-1]
        v = torch.empty(batch.numel(), c.n_wires, dtype=torch.bool)
        v[:, : c.n_in] = x.reshape(batch.numel(), c.n_in)
        for g in self.groups:
            if g.op == "and":
                v[:, g.out] = v[:, g.args[0]] & v[:, g.args[1]]
            elif g.op == "xor":
                v[:, g.out] = v[:, g.args[0]] ^ v[:, g.args[1]]
            elif g.op == "not":
                v[:, g.out] = ~v[:, g.args[0]]
            else:
                v[:, g.out] = g.op == "one"
        wires = v.reshape(*batch, c.n_wires)
        return wires[..., self.outputs], wires

    def backward(self, wires: torch.Tensor, dy: torch.Tensor) -> torch.Tensor:
        """``R[f](x, dy)`` from the wires that :meth:`run` kept: one reverse sweep, XOR where wires fan out.

        Changes are summed in ``uint8``; a sum that wraps around 256 keeps its parity.
        """
        c = self.circuit
        if dy.dtype != torch.bool or dy.shape[-1:] != (c.n_out,):
            raise TypeMismatchError(f"circuit {c.name}: the change at the output is a bool tensor (..., {c.n_out})")
        batch = wires.shape[:-1]
        v = wires.reshape(batch.numel(), c.n_wires).to(torch.uint8)
        d = torch.zeros_like(v)
        d.index_add_(1, self.outputs, dy.reshape(batch.numel(), c.n_out).to(torch.uint8))
        for g in reversed(self.groups):
            if g.op in ("zero", "one"):
                continue
            dout = d[:, g.out] & 1
            if g.op == "and":
                d.index_add_(1, g.args[0], dout & v[:, g.args[1]])
                d.index_add_(1, g.args[1], dout & v[:, g.args[0]])
            else:  # xor, not: the derivative is the identity on each input
                for a in g.args:
                    d.index_add_(1, a, dout)
        return (d[:, : c.n_in] & 1).bool().reshape(*batch, c.n_in)
