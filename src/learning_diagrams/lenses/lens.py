"""Lenses: maps with a forward part and a backward part, composed sequentially and in parallel.

A lens ``f: A ⇄ B`` has a forward part ``fwd: A → B × R`` that returns its
value and a *residual* (what the backward part will need), and a backward part
``bwd: R × B' → A'`` that takes the residual and a change at the output to a
change at the input. Keeping the residual means a backward pass never
recomputes the forward one (the reverse-derivative lens of a smooth map keeps
its ``torch.func.vjp`` closure there). A lens may also carry its *get* map
``A → B``, the forward part without the residual: calling a lens (a
prediction) runs it, so no ``vjp`` is traced when no backward pass will follow.
Composites compose their get maps; a lens without one is called through ``fwd``.

Composition is defined once, in :meth:`Lens.then` (``>>``); the parallel
(monoidal) product in :meth:`Lens.tensor` (``@``). Values of products are
Python tuples. The structural lenses (:meth:`Lens.copy`, :meth:`Lens.discard`,
projections) need to add or zero changes: they take ``add`` and ``zero``, which
are tensor addition and zeros for smooth maps and XOR and ``False`` over Z2
(:mod:`learning_diagrams.lenses.boolean`).

Laws
----
Lenses are compared on inputs (:func:`same`):

>>> import torch
>>> f = Lens(lambda a: (2 * a, None), lambda r, db: 2 * db, "double")
>>> g = Lens(lambda a: (a + 1, None), lambda r, db: db, "inc")
>>> h = Lens(lambda a: (a * a, a), lambda a, db: 2 * a * db, "square")
>>> x, dy = torch.tensor(3.0), torch.tensor(1.0)
>>> same((f >> g) >> h, f >> (g >> h), x, dy) and same(Lens.id() >> f, f, x, dy) and same(f >> Lens.id(), f, x, dy)
True
>>> (f >> h).fwd(x)[0], (f >> h).bwd((f >> h).fwd(x)[1], dy)      # d/dx (2x)² = 8x
(tensor(36.), tensor(24.))
>>> same((f @ g) >> (h @ f), (f >> h) @ (g >> f), (x, x), (dy, dy))   # interchange
True

Calling a lens runs its get map, which agrees with the forward part
(:func:`same` checks it too):

>>> quick = Lens(h.fwd, h.bwd, "square", get=lambda a: a * a)
>>> (f >> quick)(x), (f >> quick).fwd(x)[0]
(tensor(36.), tensor(36.))

A change may be an :class:`Assign`: the backward part of a stateful part (a
module's buffers, such as batch norm's running statistics) hands back the new
value itself, which every optimiser stores as it is.

>>> Assign(torch.tensor(2.0))
Assign(tensor(2.))
"""

from __future__ import annotations

import operator
from dataclasses import dataclass
from typing import Any, Callable

import torch

from ..core.category import Monoidal
from ..core.errors import ConflictError

__all__ = ["Lens", "Assign", "same", "tensor_add", "tensor_zero", "leafwise"]


def leafwise(fn: Callable[..., Any], tree: Any, *rest: Any) -> Any:
    """``fn`` at each leaf of ``tree`` (nested tuples and dicts), with the matching entries of ``rest``.

    The walk of every change of a lens: :func:`tensor_add` and :func:`tensor_zero`
    here, and XOR and ``False`` over Z2 (:mod:`learning_diagrams.lenses.boolean`).

    >>> leafwise(lambda a, b: a - b, (5, {"w": 3}), (1, {"w": 1}))
    (4, {'w': 2})
    """
    if isinstance(tree, tuple):
        return tuple(leafwise(fn, *entries) for entries in zip(tree, *rest))
    if isinstance(tree, dict):
        return {k: leafwise(fn, v, *(r[k] for r in rest)) for k, v in tree.items()}
    return fn(tree, *rest)


def tensor_add(a: Any, b: Any) -> Any:
    """Add two changes: tensors, or tuples/dicts of them, entry by entry."""
    return leafwise(operator.add, a, b)


def tensor_zero(a: Any) -> Any:
    """The zero change at ``a``: zeros of the same shapes."""
    return leafwise(lambda x: torch.zeros_like(x) if isinstance(x, torch.Tensor) else 0 * x, a)


@dataclass(frozen=True, eq=False)
class Assign:
    """The change that sets a value: ``p`` moved along ``Assign(v)`` is ``v``.

    What the backward part of a stateful part returns for its state (a module's
    buffers, updated by its forward pass in training mode), so that the state
    travels with the parameters while no optimiser steps it. Two assignments to
    one value do not add (a stateful module used twice in one pass).
    """

    value: Any

    def __repr__(self) -> str:
        return f"Assign({self.value!r})"

    def __add__(self, other: Any) -> Any:
        raise ConflictError(
            "two changes assign the same state (a stateful part, such as a module with buffers, used twice in "
            "one pass); give each use its own part"
        )

    __radd__ = __add__


@dataclass(frozen=True)
class Lens(Monoidal):
    """A lens ``A ⇄ B``: ``fwd(a) -> (b, residual)`` and ``bwd(residual, db) -> da``.

    ``get(a) -> b``, when given, is the forward part without the residual (it must
    agree with ``fwd(a)[0]``). Calling a lens returns the value alone, through
    ``get`` when there is one.
    """

    fwd: Callable[[Any], tuple[Any, Any]]
    bwd: Callable[[Any, Any], Any]
    name: str = "lens"
    get: Callable[[Any], Any] | None = None

    def __call__(self, a: Any) -> Any:
        return self.fwd(a)[0] if self.get is None else self.get(a)

    def derivative_of(self, get: Callable[[Any], Any], name: str, *others: Lens) -> Lens | None:
        """A lens equal to a composite of ``self`` and ``others`` whose get map is ``get``, built directly; or ``None``.

        ``None`` here: composites are built part by part. A reverse derivative
        (:class:`~.derivative.Derivative`) answers ``R(get)`` when ``others`` are
        reverse derivatives too, by the chain rule (RD.5): the same lens, traced
        as one graph. Every composite (:meth:`then`, :meth:`tensor`, and those of
        :class:`~.para.Para`) asks its first part first.
        """
        return None

    def then(self, other: Lens) -> Lens:
        """``self`` then ``other``: forward through both, backward through ``other`` first."""
        f, g = self, other
        name = f"({f.name} >> {g.name})"
        fused = f.derivative_of(lambda a: g(f(a)), name, g)
        if fused is not None:
            return fused

        def fwd(a: Any) -> tuple[Any, Any]:
            b, r = f.fwd(a)
            c, s = g.fwd(b)
            return c, (r, s)

        def bwd(residual: Any, dc: Any) -> Any:
            r, s = residual
            return f.bwd(r, g.bwd(s, dc))

        return Lens(fwd, bwd, name, lambda a: g(f(a)))

    def tensor(self, other: Lens) -> Lens:
        """``self`` beside ``other``, on pairs: ``A × C ⇄ B × D``."""
        f, g = self, other
        name = f"({f.name} @ {g.name})"
        fused = f.derivative_of(lambda ac: (f(ac[0]), g(ac[1])), name, g)
        if fused is not None:
            return fused

        def fwd(ac: tuple[Any, Any]) -> tuple[Any, Any]:
            (b, r), (d, s) = f.fwd(ac[0]), g.fwd(ac[1])
            return (b, d), (r, s)

        def bwd(residual: Any, dbd: tuple[Any, Any]) -> tuple[Any, Any]:
            return f.bwd(residual[0], dbd[0]), g.bwd(residual[1], dbd[1])

        return Lens(fwd, bwd, name, lambda ac: (f(ac[0]), g(ac[1])))

    # -- structure ------------------------------------------------------------
    @staticmethod
    def id() -> Lens:
        """The identity lens."""
        return Lens(lambda a: (a, None), lambda r, da: da, "id")

    @staticmethod
    def copy(add: Callable[[Any, Any], Any] = tensor_add) -> Lens:
        """``A ⇄ A × A``: forward duplicates, backward adds the two changes."""
        return Lens(lambda a: ((a, a), None), lambda r, d: add(d[0], d[1]), "copy")

    @staticmethod
    def discard(zero: Callable[[Any], Any] = tensor_zero) -> Lens:
        """``A ⇄ ()``: forward forgets, backward gives the zero change."""
        return Lens(lambda a: ((), a), lambda a, d: zero(a), "discard")

    @staticmethod
    def swap() -> Lens:
        """``A × B ⇄ B × A``."""
        return Lens(lambda ab: ((ab[1], ab[0]), None), lambda r, d: (d[1], d[0]), "swap")

    @staticmethod
    def fst(zero: Callable[[Any], Any] = tensor_zero) -> Lens:
        """``A × B ⇄ A``: the first projection; the second input gets the zero change."""
        return Lens(lambda ab: (ab[0], ab[1]), lambda b, da: (da, zero(b)), "fst")

    @staticmethod
    def snd(zero: Callable[[Any], Any] = tensor_zero) -> Lens:
        """``A × B ⇄ B``: the second projection; the first input gets the zero change."""
        return Lens(lambda ab: (ab[1], ab[0]), lambda a, db: (zero(a), db), "snd")

    def __repr__(self) -> str:
        return f"Lens({self.name})"


def same(f: Lens, g: Lens, a: Any, db: Any, *, atol: float = 1e-6) -> bool:
    """Whether two lenses agree at ``a``: the same forward value and the same backward change for ``db``.

    Each lens's call (its get map) must also give its forward value. Parametric
    lenses are compared as lenses on pairs ``(params, a)``.
    """
    fb, fr = f.fwd(a)
    gb, gr = g.fwd(a)
    agree = _close(fb, gb, atol) and _close(_get(f, a), fb, atol) and _close(_get(g, a), gb, atol)
    return agree and _close(f.bwd(fr, db), g.bwd(gr, db), atol)


def _get(f: Any, a: Any) -> Any:
    """The call of a lens, or of a parametric lens's lens (a ``Para`` called takes the input alone)."""
    lens = getattr(f, "lens", f)
    return lens(a) if isinstance(lens, Lens) else f(a)


def _close(x: Any, y: Any, atol: float) -> bool:
    if isinstance(x, Assign):
        return isinstance(y, Assign) and _close(x.value, y.value, atol)
    if isinstance(x, tuple):
        return isinstance(y, tuple) and len(x) == len(y) and all(_close(a, b, atol) for a, b in zip(x, y))
    if isinstance(x, dict):
        return isinstance(y, dict) and x.keys() == y.keys() and all(_close(x[k], y[k], atol) for k in x)
    if isinstance(x, torch.Tensor):
        if x.dtype == torch.bool:
            return isinstance(y, torch.Tensor) and torch.equal(x, y)
        return isinstance(y, torch.Tensor) and x.shape == y.shape and torch.allclose(x, y, atol=atol)
    return x == y
