"""Parallel maps on PyTorch: which of a compiled loss's edges could run as one batched call.

The families (:mod:`learning_diagrams.core.families`) of a compiled loss, with
PyTorch's structural signature of a map: the module's class, its mode, and the
name, shape and dtype of each parameter and buffer; a module with hooks, or a
plain function, has none. Fusing a family (stacked parameters, one ``vmap`` or
batched matmul) is to come; this is what it will fuse.

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

from collections.abc import Hashable

from torch import nn

from ..core import families as core
from ..core.diagram import Map
from .compiled import CompiledLoss

__all__ = ["signature", "families"]


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
