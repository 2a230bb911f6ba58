"""Parallel maps on PyTorch: which of a compiled loss's edges could run as one batched call.

The families (:mod:`learning_diagrams.core.families`) of a compiled loss, with
PyTorch's structural signature of a map: the module's class, its mode, and the
name, shape and dtype of each parameter and buffer; a module with hooks, or a
plain function, has none. ``compile(fuse=True)`` runs each family as one call
(:class:`FusedFamily`: one batched matmul for ``nn.Linear`` members, one ``vmap``
otherwise), each member reading its slice; the parameters stay each member's own
(stacked at each call), so ``state_dict``, optimisers and checkpoints see no difference.

>>> import torch, learning_diagrams as ld
>>> d = ld.Diagram().space("N", data=[(torch.ones(4, 8), torch.zeros(4, 3, dtype=torch.long))]).space("X")
>>> d = d.map("x", "N", "X", lambda b: b[0])
>>> for i in range(3):
...     d = (d.space(f"Y{i}", loss=ld.losses.cross_entropy).map(f"head{i}", "X", f"Y{i}", torch.nn.Linear(8, 2))
...           .map(f"y{i}", "N", f"Y{i}", lambda b, i=i: b[1][:, i]).relate(f"x·head{i}", f"y{i}"))
>>> [f.edges for f in families(d.compile())]
[('head0', 'head1', 'head2')]
"""

from __future__ import annotations

import copy
from collections.abc import Hashable
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from ..core import families as core
from ..core.diagram import Map

if TYPE_CHECKING:
    from .compiled import CompiledLoss

__all__ = ["signature", "families", "FusedFamily", "Member"]


def _hooked(module: nn.Module) -> bool:
    return any(
        getattr(m, name)
        for m in module.modules()
        for name in ("_forward_hooks", "_forward_pre_hooks", "_backward_hooks", "_backward_pre_hooks")
    )


def signature(m: Map) -> Hashable | None:
    """What makes two maps' modules interchangeable but for their numbers; None for a plain function or hooks."""
    module = m.fn
    if not isinstance(module, nn.Module) or _hooked(module):
        return None
    tensors = [*module.named_parameters(), *module.named_buffers()]
    return (
        type(module),
        module.training,
        tuple((name, tuple(t.shape), t.dtype, t.requires_grad) for name, t in tensors),
    )


def families(loss: CompiledLoss, *, least: int = core.MIN_MEMBERS) -> list[core.Family]:
    """The families of parallel maps among ``loss``'s edges (see :mod:`learning_diagrams.core.families`)."""
    return core.families(loss.pairs, loss.edges, signature=signature, least=least)


class FusedFamily:
    """The members of a family called as one: each call on a new input computes every member's output at once.

    ``nn.Linear`` members are one batched matmul over their stacked weights; other modules
    are one ``torch.func.vmap`` of ``functional_call`` over their stacked parameters and
    buffers. The stacks are made at each call from the members' own tensors
    (``torch.stack``, differentiable), so gradients reach each member's parameters and its
    ``state_dict`` is untouched. Member ``i`` of a call reads slice ``i`` of the result
    (:class:`Member`); the result is dropped once every member has read its slice.
    """

    def __init__(self, modules: list[nn.Module]):
        self.modules = modules
        self.linear = all(type(m) is nn.Linear for m in modules)
        # A copy of the first member with its tensors on the meta device: the shape functional_call runs.
        self._base = None if self.linear else copy.deepcopy(modules[0]).to("meta")
        self._input: Any = None
        self._output: Any = None
        self._left = 0

    def reset(self) -> None:
        """Forget the last call's result (a compiled loss resets its families when a call starts)."""
        self._input = self._output = None
        self._left = 0

    def output(self, x: Any, i: int) -> Any:
        """Member ``i``'s output on ``x``, from one call of every member on ``x``."""
        if self._input is not x:
            self._input, self._output, self._left = x, self._all(x), len(self.modules)
        out = self._output[i]
        self._left -= 1
        if self._left == 0:  # every member has read its slice: let the stacked result go
            self._input = self._output = None
        return out

    def _all(self, x: Any) -> Any:
        if self.linear:
            linears = [m for m in self.modules if isinstance(m, nn.Linear)]  # all of them (checked above)
            weight = torch.stack([m.weight for m in linears])  # (members, out, in)
            out = torch.einsum("...i,hoi->h...o", x, weight)
            if linears[0].bias is not None:
                bias = torch.stack([m.bias for m in linears if m.bias is not None])  # (members, out)
                out = out + bias.view(bias.shape[0], *([1] * (out.dim() - 2)), bias.shape[1])
            return out
        names = [name for name, _ in self.modules[0].named_parameters()]
        buffers = [name for name, _ in self.modules[0].named_buffers()]
        params = {n: torch.stack([dict(m.named_parameters())[n] for m in self.modules]) for n in names}
        state = {n: torch.stack([dict(m.named_buffers())[n] for m in self.modules]) for n in buffers}

        base = self._base
        assert base is not None  # made for every family that is not of nn.Linear members

        def one(p: dict, b: dict, v: Any) -> Any:
            return torch.func.functional_call(base, (p, b), (v,))

        return torch.func.vmap(one, in_dims=(0, 0, None))(params, state, x)


class Member:
    """What a fused loss calls for one member of a family: its slice of the family's one call."""

    def __init__(self, family: FusedFamily, index: int, name: str):
        self.family, self.index, self.name = family, index, name

    def __call__(self, x: Any) -> Any:
        return self.family.output(x, self.index)

    def __repr__(self) -> str:
        return f"Member({self.name!r}, {self.index} of {len(self.family.modules)})"
