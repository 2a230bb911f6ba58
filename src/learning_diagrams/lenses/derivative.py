"""Reverse derivatives: smooth maps to lenses, through ``torch.func.vjp``.

``R(f)`` is the lens whose forward part is ``f`` and whose backward part is
its reverse derivative ``R[f](a, db) = J_f(a)ᵀ db``. The forward part keeps the
``vjp`` closure as its residual, so the backward part reuses the forward
computation instead of running it again; the lens's get map is ``f`` itself,
so calling the lens traces nothing. :func:`from_module` does the same for any
``nn.Module`` (through ``torch.func.functional_call``), giving a parametric
lens whose parameters are the module's state (its parameters and buffers), by
name; :func:`by_hand` builds a lens from a hand-written backward part.

An input that is not a floating-point tensor (token indices, a mask) has no
derivative: the backward part gives it the zero change, as the loss maps give
a class-index label.

>>> import torch
>>> square = R(lambda a: a * a)
>>> b, residual = square.fwd(torch.tensor(3.0))
>>> b, square.bwd(residual, torch.tensor(1.0))
(tensor(9.), tensor(6.))
>>> layer = from_module(torch.nn.Linear(2, 1), "dense")
>>> sorted(layer.params["dense"]), layer(torch.ones(1, 2)).shape
(['bias', 'weight'], torch.Size([1, 1]))
>>> emb = from_module(torch.nn.Embedding(10, 3), "emb")
>>> y, residual = emb.fwd((emb.params, torch.tensor([1, 2])))
>>> dp, dx = emb.bwd(residual, torch.ones(2, 3))
>>> dp["emb"]["weight"][:3, 0], dx
(tensor([0., 1., 1.]), tensor([0., 0.]))
"""

from __future__ import annotations

from typing import Any, Callable, cast

import torch
from torch import nn
from torch.func import functional_call, vjp

from .lens import Assign, Lens
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

    return Lens(fwd, bwd, name or str(getattr(fn, "__name__", "R(f)")), fn)


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


def _differentiable(a: Any) -> bool:
    """Whether ``a`` can be a ``vjp`` primal: anything but a tensor of integers or booleans."""
    return not isinstance(a, torch.Tensor) or a.is_floating_point() or a.is_complex()


def _zero_change(a: torch.Tensor) -> torch.Tensor:
    """The change of an input that cannot move (indices, a mask): zero, in the default float type."""
    return torch.zeros(a.shape)


def _pair_vjp(fn: Callable[[Any, Any], Any], p: Any, a: Any, has_aux: bool = False) -> tuple[Any, ...]:
    """``vjp`` of ``fn(p, a)`` in both arguments, or in ``p`` alone when ``a`` has no derivative.

    Returns ``(value, pullback)`` (with the auxiliary output third when ``has_aux``),
    the pullback giving ``(dp, da)`` either way.
    """
    if _differentiable(a):
        return cast("tuple[Any, ...]", vjp(fn, p, a, has_aux=has_aux))
    out = cast("tuple[Any, ...]", vjp(lambda q: fn(q, a), p, has_aux=has_aux))
    zero = _zero_change(a)
    return (out[0], lambda db: (out[1](db)[0], zero), *out[2:])


def para_derivative(fn: Callable[[dict[str, Any], Any], Any], params: dict[str, Any], name: str = "para") -> Para:
    """The parametric lens of ``fn(params, a)``: its backward part returns ``(dparams, da)``.

    ``da`` is zero when ``a`` is a tensor of integers or booleans (it has no derivative).
    """

    def fwd(pa: tuple[dict, Any]) -> tuple[Any, Any]:
        value, pullback = _pair_vjp(fn, pa[0], pa[1])
        return value, pullback

    def bwd(pullback: Callable, db: Any) -> tuple[dict, Any]:
        dp, da = pullback(db)
        return dp, da

    return Para(Lens(fwd, bwd, name, lambda pa: fn(pa[0], pa[1])), params, name)


def from_module(module: nn.Module, name: str) -> Para:
    """Any ``nn.Module`` as a parametric lens; its parameters are the module's state, ``{name: {key: tensor}}``.

    The keys are those of ``module.state_dict()``: the parameters and the
    persistent buffers (batch norm's running statistics), copied as the starting
    values, so ``module.load_state_dict(params[name])`` puts trained values back.
    The module itself is only used as a function, through ``functional_call``,
    in whichever mode (``module.train()`` / ``module.eval()``) it is in when the
    lens runs.

    Backward, the parameters get their derivatives and each buffer an
    :class:`~.lens.Assign` of the value the forward pass left in it: in training
    mode batch norm's updated running statistics (and count), in eval mode the
    buffer unchanged. Optimisers store those values as they are, so a training
    step carries the statistics forward as ``module(x)`` would, and an eval-mode
    call reads them. Each pass runs on copies of the buffers: the lens's values
    are never modified. Non-persistent buffers are constants, read from the module.

    An input of integers (an embedding's indices) gets the zero change.

    >>> import torch
    >>> bn = from_module(torch.nn.BatchNorm1d(2), "bn")
    >>> sorted(bn.params["bn"])
    ['bias', 'num_batches_tracked', 'running_mean', 'running_var', 'weight']
    >>> x = torch.tensor([[1.0, 2.0], [3.0, 6.0]])
    >>> y, residual = bn.fwd((bn.params, x))
    >>> dp, dx = bn.bwd(residual, torch.ones(2, 2))
    >>> dp["bn"]["running_mean"], dp["bn"]["num_batches_tracked"]
    (Assign(tensor([0.2000, 0.4000])), Assign(tensor(1)))
    >>> bn.params["bn"]["running_mean"]                       # the lens's own values are untouched
    tensor([0., 0.])
    """
    trainable = dict(module.named_parameters())  # a parameter shared by two submodules appears once
    every = dict(module.named_buffers())
    stored = module.state_dict(keep_vars=True)  # the persistent buffers are those it saves
    kept = [k for k in stored if k in trainable or k in every]  # in the state dict's order
    names = tuple(k for k in kept if k in trainable)
    buffers = tuple(k for k in kept if k in every)
    constants = {k: v for k, v in every.items() if k not in stored}
    values = {k: stored[k].detach().clone() for k in kept}

    def call(p: dict[str, Any], a: Any) -> tuple[Any, dict[str, Any]]:
        # The module may update its buffers in place (batch norm in training mode):
        # copies, made here, keep the lens's values as they were and, made inside
        # the vjp, are tensors the transform lets the module mutate.
        state = {k: p[name][k].clone() for k in buffers}
        out = functional_call(module, {**{k: p[name][k] for k in names}, **state, **constants}, (a,))
        return out, state

    def fwd(pa: tuple[dict, Any]) -> tuple[Any, Any]:
        p, a = pa
        inner = p[name]

        def traced(q: dict[str, Any], x: Any) -> tuple[Any, dict[str, Any]]:
            return call({name: {**q, **{k: inner[k] for k in buffers}}}, x)

        # vjp in the parameters only: integer buffers (the count) cannot be primals.
        value, pullback, state = _pair_vjp(traced, {k: inner[k] for k in names}, a, has_aux=True)
        return value, (pullback, state)

    def bwd(residual: Any, db: Any) -> tuple[dict, Any]:
        pullback, state = residual
        dq, da = pullback(db)
        return {name: {**dq, **{k: Assign(v) for k, v in state.items()}}}, da

    def get(pa: tuple[dict, Any]) -> Any:
        return call(pa[0], pa[1])[0]

    return Para(Lens(fwd, bwd, name, get), {name: values}, name)


def by_hand(forward: Callable[[Any], Any], backward: Callable[[Any, Any], Any], name: str = "lens") -> Lens:
    """A lens from a forward function and a hand-written backward part ``backward(a, db) -> da``."""
    return Lens(lambda a: (forward(a), a), backward, name)
