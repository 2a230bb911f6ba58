"""Reverse derivatives: smooth maps to lenses, through ``vjp``.

``R(f)`` is the lens whose forward part is ``f`` and whose backward part is
its reverse derivative ``R[f](a, db) = J_f(a)ᵀ db``. The forward part keeps the
``vjp`` closure as its residual, so the backward part reuses the forward
computation instead of running it again; the lens's get map is ``f`` itself,
so calling the lens traces nothing. :func:`vjp` is ``torch.func.vjp``, run as
one plain autograd graph where no function transform is active (a training
step), and such lenses are :class:`Derivative`: composites of them are ``R`` of
the composite map (the chain rule), so a network of layers is traced once per
step, not once per layer. :func:`from_module` does the same for any
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

from dataclasses import dataclass
from typing import Any, Callable, cast

import torch
from torch import nn
from torch.func import functional_call
from torch.utils import _pytree as pytree

from .lens import Assign, Lens
from .para import Para

__all__ = ["R", "reverse_derivative", "para_derivative", "from_module", "by_hand", "vjp"]


# -----------------------------------------------------------------------------
# vjp: torch.func.vjp, by plain autograd where no function transform is active.


def vjp(fn: Callable[..., Any], *primals: Any, has_aux: bool = False) -> tuple[Any, ...]:
    """As ``torch.func.vjp(fn, *primals, has_aux=has_aux)``: the value of ``fn``, its pullback (and the auxiliary output).

    Every reverse derivative of this module is traced here. Where no function
    transform (``vmap``, ``grad``, ``vjp``) is active and no primal is tracked by an
    outer autograd graph, which is every training step, it records one ordinary
    autograd graph instead of running ``torch.func.vjp``: a third of the cost,
    with the same results. The value returned is detached, as ``torch.func.vjp``'s
    is; the pullback, which may be called any number of times, runs
    ``torch.autograd.grad`` on the graph it keeps (a primal that the value does
    not depend on gets zeros). Called inside a transform, or on cotangents that
    themselves require grad, the pullback is differentiable, so that higher
    derivatives (RD.6, RD.7) come out as through ``torch.func``. Elsewhere (primals
    that require grad, a transform already active, containers other than dicts,
    tuples and lists, leaves that are not tensors) it is ``torch.func.vjp`` itself.

    Unlike ``torch.func.vjp``, a tensor of integers or booleans among the primals
    (token indices, a mask) is no error: it has no derivative, and its change is
    zero, in the default floating-point type.

    >>> value, pullback = vjp(lambda w, x: (w * x).sum(), torch.tensor([1.0, 2.0]), torch.tensor([3.0, 4.0]))
    >>> value, pullback(torch.tensor(1.0))
    (tensor(11.), (tensor([3., 4.]), tensor([1., 2.])))
    """
    leaves: list[Any] = []
    if not _plain_tree(primals, leaves):
        return cast("tuple[Any, ...]", torch.func.vjp(fn, *primals, has_aux=has_aux))
    moving = [i for i, x in enumerate(leaves) if x.is_floating_point() or x.is_complex()]

    def changes(grads: Any) -> tuple[Any, ...]:
        """The primals' changes: the gradients of the moving leaves (zeros where absent), zero for the others."""
        out: list[Any] = [torch.zeros(x.shape) for x in leaves] if len(moving) < len(leaves) else [None] * len(leaves)
        for i, g in zip(moving, grads):
            out[i] = torch.zeros_like(leaves[i]) if g is None else g
        return cast("tuple[Any, ...]", _rebuild(primals, iter(out)))

    if not _untracked([leaves[i] for i in moving]):
        return _func_vjp(fn, primals, leaves, moving, has_aux, changes)
    inputs = list(leaves)
    for i in moving:
        inputs[i] = leaves[i].detach().requires_grad_()
    with torch.enable_grad():
        result = fn(*_rebuild(primals, iter(inputs)))
    out, aux = result if has_aux else (result, None)
    flat = _Flat(out)
    wrt = [inputs[i] for i in moving]

    def pullback(cotangent: Any) -> tuple[Any, ...]:
        given = flat.like(cotangent)
        pairs = [(o, d) for o, d in zip(flat.leaves, given) if isinstance(o, torch.Tensor) and o.requires_grad]
        if not pairs or not wrt:
            return changes([None] * len(wrt))
        create = torch.is_grad_enabled() and (
            torch._C._functorch.maybe_current_level() is not None
            or any(isinstance(d, torch.Tensor) and d.requires_grad for _, d in pairs)
        )
        outputs, cotangents = zip(*pairs)
        return changes(
            torch.autograd.grad(outputs, wrt, cotangents, retain_graph=True, create_graph=create, allow_unused=True)
        )

    value = flat.rebuild([o.detach() if isinstance(o, torch.Tensor) else o for o in flat.leaves])
    if not has_aux:
        return value, pullback
    return value, pullback, pytree.tree_map(lambda t: t.detach() if isinstance(t, torch.Tensor) else t, aux)


def _func_vjp(
    fn: Callable[..., Any],
    primals: tuple[Any, ...],
    leaves: list[Any],
    moving: list[int],
    has_aux: bool,
    changes: Callable[[Any], tuple[Any, ...]],
) -> tuple[Any, ...]:
    """``torch.func.vjp`` in the moving (floating-point) leaves of ``primals``, the others held fixed."""

    def moved(*xs: Any) -> Any:
        inputs = list(leaves)
        for i, x in zip(moving, xs):
            inputs[i] = x
        return fn(*_rebuild(primals, iter(inputs)))

    out = cast("tuple[Any, ...]", torch.func.vjp(moved, *(leaves[i] for i in moving), has_aux=has_aux))
    pull = out[1]
    return (out[0], lambda cotangent: changes(pull(cotangent)), *out[2:])


class _Flat:
    """A value's leaves, and the way back: dicts, tuples and lists walked here, any other pytree by torch's walk."""

    def __init__(self, value: Any):
        self.value = value
        self.leaves: list[Any] = []
        self.spec = None if _plain_tree(value, self.leaves) else pytree.tree_flatten(value)[1]
        if self.spec is not None:
            self.leaves = pytree.tree_flatten(value)[0]

    def like(self, other: Any) -> list[Any]:
        """The leaves of ``other``, a value shaped as this one (a cotangent)."""
        leaves: list[Any] = []
        if self.spec is None:
            _plain_tree(other, leaves)
        else:
            leaves = pytree.tree_flatten(other)[0]
        if len(leaves) != len(self.leaves):
            raise ValueError(
                f"vjp: the cotangent has {len(leaves)} entries where the value has {len(self.leaves)}; "
                "pass one change for each output, shaped like it"
            )
        return leaves

    def rebuild(self, leaves: list[Any]) -> Any:
        return _rebuild(self.value, iter(leaves)) if self.spec is None else pytree.tree_unflatten(leaves, self.spec)


def _plain_tree(tree: Any, out: list[Any]) -> bool:
    """Append the leaves of ``tree`` (dicts, tuples and lists) to ``out``; whether every leaf is a tensor."""
    kind = type(tree)
    if kind is dict:
        return all([_plain_tree(v, out) for v in tree.values()])
    if kind is tuple or kind is list:
        return all([_plain_tree(v, out) for v in tree])
    out.append(tree)
    return isinstance(tree, torch.Tensor)


def _rebuild(tree: Any, leaves: Any) -> Any:
    """``tree`` (dicts, tuples and lists) with its leaves taken in order from the iterator ``leaves``."""
    kind = type(tree)
    if kind is dict:
        return {k: _rebuild(v, leaves) for k, v in tree.items()}
    if kind is tuple:
        return tuple([_rebuild(v, leaves) for v in tree])
    if kind is list:
        return [_rebuild(v, leaves) for v in tree]
    return next(leaves)


def _untracked(moving: list[torch.Tensor]) -> bool:
    """Whether plain autograd can take these primals: untracked, outside any function transform or inference mode."""
    return (
        torch._C._functorch.maybe_current_level() is None
        and not torch.is_inference_mode_enabled()
        and not any(x.requires_grad for x in moving)
    )


# -----------------------------------------------------------------------------
# Reverse derivatives as lenses.


@dataclass(frozen=True, repr=False)
class Derivative(Lens):
    """A lens that is the reverse derivative of its get map: ``R(get)``, whatever computes its parts.

    What :func:`R` and :func:`para_derivative` build, and what a hand-written
    lens may declare itself when its backward part is that derivative (the
    renaming lens of :func:`~.parts.regroup`). Composites of such lenses are the
    derivative of the composite map (the chain rule, RD.5; RD.3–RD.4 for
    products), so :meth:`derivative_of` gives ``R`` of it: a chain of layers is
    traced as one autograd graph and pulled back in one call.

    >>> f, g = R(torch.sin), R(torch.exp)
    >>> type(f >> g).__name__, (f >> g)(torch.tensor(0.0))
    ('Derivative', tensor(1.))
    """

    def derivative_of(self, get: Callable[[Any], Any], name: str, *others: Lens) -> Lens | None:
        return R(get, name) if all(isinstance(o, Derivative) for o in others) else None


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

        b, pullback = cast("tuple[Any, Callable[..., Any]]", vjp(fn_or_dummy, a))
        if empty:  # R[!](a, ()) = 0 (RD.4); the pullback gives zeros shaped like a
            return empty[0], lambda db: pullback(_DUMMY)
        return b, pullback

    def bwd(pullback: Callable, db: Any) -> Any:
        return pullback(db)[0]

    return Derivative(fwd, bwd, name or str(getattr(fn, "__name__", "R(f)")), fn)


_DUMMY = torch.zeros(())


def _has_tensors(value: Any) -> bool:
    if isinstance(value, (tuple, list)):
        return any(_has_tensors(v) for v in value)
    if isinstance(value, dict):
        return any(_has_tensors(v) for v in value.values())
    return True


R = reverse_derivative


def para_derivative(fn: Callable[[dict[str, Any], Any], Any], params: dict[str, Any], name: str = "para") -> Para:
    """The parametric lens of ``fn(params, a)``: ``R`` of it on pairs, its backward part returning ``(dparams, da)``.

    ``da`` is zero when ``a`` is a tensor of integers or booleans (it has no derivative).
    """
    return Para(R(lambda pa: fn(pa[0], pa[1]), name), params, name)


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
        value, pullback, state = vjp(traced, {k: inner[k] for k in names}, a, has_aux=True)
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
