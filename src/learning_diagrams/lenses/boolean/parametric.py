"""Parametric circuits: circuits whose first input wires are parameters, and two models built so.

:func:`parametric` makes a :class:`~learning_diagrams.lenses.para.Para` of a
circuit whose first wires are the parameters (a nested dict of bool tensors,
leaves in order, row-major). The parameters have no batch dimension: the
change of a parameter over a batch is the XOR of the per-example changes (the
reverse derivative of copying the parameter to every example).

The models: :func:`affine` (``y = W·x ⊕ b`` over Z2) and :func:`lookup_table`
(Wilson & Zanasi's truth table read by a multiplexer). :func:`split_wires` and
:func:`join_wires` are the lenses between a wire vector and a pair of them.
"""

from __future__ import annotations

from typing import Any

import torch

from ...core.errors import NotComposableError, TypeMismatchError
from ..lens import Lens
from ..para import Para
from .circuit import Builder, Circuit

__all__ = ["split_wires", "join_wires", "parametric", "affine", "lookup_table"]


# -- lenses on wires --------------------------------------------------------------------


def split_wires(n1: int) -> Lens:
    """``Z2^(n1+n2) ⇄ Z2^n1 × Z2^n2``: a wire vector as a pair (backward: concatenate)."""
    return Lens(
        lambda t: ((t[..., :n1], t[..., n1:]), None), lambda r, d: torch.cat([d[0], d[1]], dim=-1), f"split{n1}"
    )


def join_wires() -> Lens:
    """``Z2^n1 × Z2^n2 ⇄ Z2^(n1+n2)``: a pair as one wire vector (backward: split)."""
    return Lens(
        lambda ac: (torch.cat([ac[0], ac[1]], dim=-1), ac[0].shape[-1]),
        lambda n1, d: (d[..., :n1], d[..., n1:]),
        "join",
    )


# -- parametric circuits ----------------------------------------------------------------


def _leaves(p: dict[str, Any]) -> list[torch.Tensor]:
    out: list[torch.Tensor] = []
    for v in p.values():
        out.extend(_leaves(v) if isinstance(v, dict) else [v])
    return out


def _rebuild(p: dict[str, Any], flat: torch.Tensor, at: int = 0) -> tuple[dict[str, Any], int]:
    out: dict[str, Any] = {}
    for k, v in p.items():
        if isinstance(v, dict):
            out[k], at = _rebuild(v, flat, at)
        else:
            out[k], at = flat[at : at + v.numel()].reshape(v.shape), at + v.numel()
    return out, at


def parametric(circuit: Circuit, params: dict[str, Any], name: str) -> Para:
    """A parametric circuit: its first input wires are ``params`` (a nested dict of bool tensors, leaves in order, row-major).

    The parameters have no batch dimension: they are copied to every example,
    so the backward part returns, for each parameter, the XOR over the batch
    of the per-example changes (``R[copy] = ⊕``).

    >>> from learning_diagrams.lenses.boolean import AND, bits, bitstring
    >>> gated = parametric(AND, {"g": {"open": bits("1")}}, "g")     # y = open · x
    >>> bitstring(gated(bits("1"))), gated.bwd(gated.fwd((gated.params, bits("0")))[1], bits("1"))
    ('1', ({'g': {'open': tensor([False])}}, tensor([True])))
    """
    n_p = sum(t.numel() for t in _leaves(params))
    if n_p > circuit.n_in:
        raise NotComposableError(f"{name}: {n_p} parameter wires but circuit {circuit.name} has {circuit.n_in} inputs")

    def fwd(pa: tuple[dict[str, Any], torch.Tensor]) -> tuple[torch.Tensor, Any]:
        p, x = pa
        leaves = _leaves(p)
        flat = torch.cat([t.reshape(-1) for t in leaves]) if leaves else torch.zeros(0, dtype=torch.bool)
        if flat.dtype != torch.bool or flat.numel() != n_p:
            raise TypeMismatchError(f"{name}: parameters are {n_p} bool entries, got {flat.numel()} of {flat.dtype}")
        full = torch.cat([flat.expand(*x.shape[:-1], n_p), x], dim=-1)
        y, wires = circuit.run(full)
        return y, (p, wires)

    def bwd(residual: Any, dy: torch.Tensor) -> tuple[dict[str, Any], torch.Tensor]:
        p, wires = residual
        d = circuit.backward(wires, dy)
        dp = d[..., :n_p].reshape(d.shape[:-1].numel(), n_p).sum(0) % 2 == 1
        return _rebuild(p, dp)[0], d[..., n_p:]

    return Para(Lens(fwd, bwd, name), params, name)


def _init(shape: tuple[int, ...], generator: torch.Generator | None) -> torch.Tensor:
    if generator is None:
        return torch.zeros(shape, dtype=torch.bool)
    return torch.randint(0, 2, shape, generator=generator).bool()


def affine(n_in: int, n_out: int, name: str = "affine", generator: torch.Generator | None = None) -> Para:
    """The Boolean affine layer ``y = W·x ⊕ b`` over Z2 (AND for products, XOR for sums).

    Parameters ``{name: {"W": (n_out, n_in), "b": (n_out,)}}``, zero unless a
    ``generator`` draws them. ``∂y_o/∂W_oj = x_j`` and ``∂y_o/∂b_o = 1``.

    >>> from learning_diagrams.lenses.boolean import bits
    >>> layer = affine(3, 1, generator=torch.Generator().manual_seed(0))
    >>> layer.params["affine"]["W"].shape, layer(bits("101")).shape
    (torch.Size([1, 3]), torch.Size([1]))
    """
    n_p = n_out * n_in + n_out
    b = Builder(n_p + n_in)
    x = range(n_p, n_p + n_in)
    ys = [b.xor_all([b.and_(o * n_in + j, xj) for j, xj in enumerate(x)] + [n_out * n_in + o]) for o in range(n_out)]
    params = {"W": _init((n_out, n_in), generator), "b": _init((n_out,), generator)}
    return parametric(b.build(ys, name), {name: params}, name)


def lookup_table(k: int, n_out: int = 1, name: str = "table", generator: torch.Generator | None = None) -> Para:
    """Wilson & Zanasi's model: a truth table ``T ∈ Z2^(2^k × n_out)`` as parameters, read by a multiplexer.

    ``y_o = ⊕_r T[r, o]·[x = r]``, where row ``r`` is the input with ``x_j = bit j of r``
    and ``[x = r] = ∏_j (x_j or x_j ⊕ 1)`` is a minterm of AND/NOT gates. The
    derivative with respect to ``T[r, o]`` is ``[x = r]``, so a step of RDA flips
    the one entry read, where it was wrong.

    >>> from learning_diagrams.lenses.boolean import bits, bitstring
    >>> t = lookup_table(2)
    >>> t.params["table"]["table"][0b10] = True
    >>> [bitstring(t(bits(x))) for x in ("00", "10", "01", "11")]     # x_0 first: "01" is row 2
    ['0', '0', '1', '0']
    """
    rows = 1 << k
    n_p = rows * n_out
    b = Builder(n_p + k)
    terms = [b.one()]
    for j in range(k):
        xj = n_p + j
        literal = (b.not_(xj), xj)
        terms = [b.and_(terms[r % (1 << j)], literal[(r >> j) & 1]) for r in range(1 << (j + 1))]
    ys = [b.xor_all([b.and_(r * n_out + o, terms[r]) for r in range(rows)]) for o in range(n_out)]
    return parametric(b.build(ys, name), {name: {"table": _init((rows, n_out), generator)}}, name)
