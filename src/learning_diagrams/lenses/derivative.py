"""Reverse derivatives: smooth maps to lenses, through ``torch.func.vjp``.

``R(f)`` is the lens whose forward part is ``f`` and whose backward part is
its reverse derivative ``R[f](a, db) = J_f(a)ᵀ db``. The forward part keeps the
``vjp`` closure as its residual, so the backward part reuses the forward
computation instead of running it again. :func:`from_module` does the same for an
``nn.Module`` (through ``torch.func.functional_call``), giving a parametric
lens whose parameters are the module's, by name; :func:`by_hand` builds a lens
from a hand-written backward part.

>>> import torch
>>> square = R(lambda a: a * a)
>>> b, residual = square.fwd(torch.tensor(3.0))
>>> b, square.bwd(residual, torch.tensor(1.0))
(tensor(9.), tensor(6.))
>>> layer = from_module(torch.nn.Linear(2, 1), "dense")
>>> sorted(layer.params["dense"]), layer(torch.ones(1, 2)).shape
(['bias', 'weight'], torch.Size([1, 1]))
"""

from __future__ import annotations

from typing import Any, Callable, cast

import torch
from torch import nn
from torch.func import functional_call, vjp

from .lens import Lens
from .para import Para

__all__ = ["R", "reverse_derivative", "para_derivative", "from_module", "by_hand"]


def reverse_derivative(fn: Callable[[Any], Any], name: str | None = None) -> Lens:
    """``R(fn)``: the reverse-derivative lens of a function of tensors (or of tuples of tensors).

    The residual is the ``vjp`` pullback, so ``fn`` runs once per forward pass and
    never in the backward one. A map with no output (``lambda a: ()``, the
    terminal map ``!``) is allowed: its backward part gives zeros, like
    :meth:`Lens.discard`.

    >>> import torch
    >>> R(lambda a: ()).bwd(R(lambda a: ()).fwd(torch.ones(2))[1], ())
    tensor([0., 0.])
    """

    def fwd(a: Any) -> tuple[Any, Any]:
        empty: list[Any] = []

        def fn_or_dummy(x: Any) -> Any:
            b = fn(x)
            if not _has_tensors(b):  # a map to the terminal object: vjp needs some output
                empty.append(b)
                return _DUMMY
            return b

        b, pullback = _vjp(fn_or_dummy, a)
        if empty:  # R[!](a, ()) = 0 (RD.4); the pullback gives zeros shaped like a
            return empty[0], lambda db: pullback(_DUMMY)
        return b, pullback

    def bwd(pullback: Callable, db: Any) -> Any:
        return pullback(db)[0]

    return Lens(fwd, bwd, name or str(getattr(fn, "__name__", "R(f)")))


def _vjp(fn: Callable[..., Any], *primals: Any) -> tuple[Any, Callable[..., Any]]:
    """``torch.func.vjp`` without auxiliary output: the value of ``fn`` and its pullback."""
    # torch annotates vjp's result as either arity; without has_aux it is the pair.
    return cast("tuple[Any, Callable[..., Any]]", vjp(fn, *primals))


_DUMMY = torch.zeros(())


def _has_tensors(value: Any) -> bool:
    if isinstance(value, (tuple, list)):
        return any(_has_tensors(v) for v in value)
    if isinstance(value, dict):
        return any(_has_tensors(v) for v in value.values())
    return True


R = reverse_derivative


def para_derivative(fn: Callable[[dict[str, Any], Any], Any], params: dict[str, Any], name: str = "para") -> Para:
    """The parametric lens of ``fn(params, a)``: its backward part returns ``(dparams, da)``."""

    def fwd(pa: tuple[dict, Any]) -> tuple[Any, Any]:
        return _vjp(fn, pa[0], pa[1])

    def bwd(pullback: Callable, db: Any) -> tuple[dict, Any]:
        dp, da = pullback(db)
        return dp, da

    return Para(Lens(fwd, bwd, name), params, name)


def from_module(module: nn.Module, name: str) -> Para:
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
