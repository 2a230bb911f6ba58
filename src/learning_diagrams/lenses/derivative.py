"""Reverse derivatives: smooth maps to lenses, through ``torch.func.vjp``.

``R(f)`` is the lens whose forward part is ``f`` and whose backward part is
its reverse derivative ``R[f](a, db) = J_f(a)ᵀ db``. The forward part keeps the
``vjp`` closure as its residual, so the backward part reuses the forward
computation instead of running it again. :func:`para` does the same for an
``nn.Module`` (through ``torch.func.functional_call``), giving a parametric
lens whose parameters are the module's, by name; :func:`by_hand` builds a lens
from a hand-written backward part.

>>> import torch
>>> square = R(lambda a: a * a)
>>> b, residual = square.fwd(torch.tensor(3.0))
>>> b, square.bwd(residual, torch.tensor(1.0))
(tensor(9.), tensor(6.))
>>> layer = para(torch.nn.Linear(2, 1), "dense")
>>> sorted(layer.params["dense"]), layer(torch.ones(1, 2)).shape
(['bias', 'weight'], torch.Size([1, 1]))
"""

from __future__ import annotations

from typing import Any, Callable

from torch import nn
from torch.func import functional_call, vjp

from .lens import Lens
from .para import Para

__all__ = ["R", "reverse_derivative", "para_derivative", "para", "by_hand"]


def reverse_derivative(fn: Callable[[Any], Any], name: str | None = None) -> Lens:
    """``R(fn)``: the reverse-derivative lens of a function of tensors (or of tuples of tensors)."""

    def fwd(a: Any) -> tuple[Any, Any]:
        return vjp(fn, a)

    def bwd(pullback: Callable, db: Any) -> Any:
        return pullback(db)[0]

    return Lens(fwd, bwd, name or getattr(fn, "__name__", "R(f)"))


R = reverse_derivative


def para_derivative(fn: Callable[[dict[str, Any], Any], Any], params: dict[str, Any], name: str = "para") -> Para:
    """The parametric lens of ``fn(params, a)``: its backward part returns ``(dparams, da)``."""

    def fwd(pa: tuple[dict, Any]) -> tuple[Any, Any]:
        return vjp(fn, pa[0], pa[1])

    def bwd(pullback: Callable, db: Any) -> tuple[dict, Any]:
        dp, da = pullback(db)
        return dp, da

    return Para(Lens(fwd, bwd, name), params, name)


def para(module: nn.Module, name: str) -> Para:
    """An ``nn.Module`` as a parametric lens whose parameters are ``{name: {param name: tensor}}``.

    The module's current parameters are copied (detached) as the starting values;
    the module itself is only used as a function, through ``functional_call``.
    """
    values = {k: v.detach().clone() for k, v in module.named_parameters()}
    buffers = dict(module.named_buffers())

    def fn(p: dict[str, Any], a: Any) -> Any:
        return functional_call(module, {**p[name], **buffers}, (a,))

    return para_derivative(fn, {name: values}, name)


def by_hand(forward: Callable[[Any], Any], backward: Callable[[Any, Any], Any], name: str = "lens") -> Lens:
    """A lens from a forward function and a hand-written backward part ``backward(a, db) -> da``."""
    return Lens(lambda a: (forward(a), a), backward, name)
