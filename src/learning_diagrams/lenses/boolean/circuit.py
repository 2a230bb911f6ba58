"""Polynomial circuits over Z2: their syntax, the builder that writes them, and their reverse derivative.

A :class:`Circuit` is a straight-line program (a DAG) of the gates AND, XOR,
NOT and the constants 0 and 1 over ``n_in`` input wires; copy and discard are
wiring. Every circuit the library makes is written by one builder, which shares
subterms and uses the polynomial identities of Z2 only (``0·p = 0``,
``1·p = p``, ``p + 0 = p``, ``p + p = 0``, ``(p + 1) + 1 = p``), never
``p·p = p``, so that a circuit keeps the polynomials it denotes. Composition
(``>>``, ``@``), pairing, sums, the reverse derivative ``R[f]``
(:meth:`Circuit.reverse`) and the forward derivative (:meth:`Circuit.derivative`)
are circuits of the same language. Running one on tensors is
:mod:`.engine`'s.

Laws
----
Composition is associative and unital, on the nose (circuits compare by structure):

>>> (COPY >> AND) >> NOT == COPY >> (AND >> NOT)
True
>>> Circuit.identity(2) >> AND == AND == AND >> IDENTITY
True
>>> NOT >> NOT == IDENTITY                    # (x + 1) + 1 = x
True

Interchange holds as functions (the two sides emit their gates in another order):

>>> import itertools
>>> x = torch.tensor(list(itertools.product([False, True], repeat=3)))
>>> torch.equal(((AND @ NOT) >> (NOT @ IDENTITY))(x), ((AND >> NOT) @ (NOT >> IDENTITY))(x))
True
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Iterable, Sequence

import torch

from ...core.category import Monoidal
from ...core.errors import InvalidNameError, NotComposableError
from ..lens import Lens
from .engine import Schedule

__all__ = ["Circuit", "Builder", "AND", "XOR", "NOT", "OR", "ZERO", "ONE", "COPY", "DISCARD", "IDENTITY"]

_ARITY = {"and": 2, "xor": 2, "not": 1, "zero": 0, "one": 0}


class Builder:
    """Emits gates with shared subterms and the polynomial identities of Z2 (never ``p·p = p``).

    Wires are numbers: ``0 … n_in-1`` the inputs, then one per gate emitted.
    Each method returns the wire of its result, reusing a gate already emitted
    on the same wires; :meth:`build` makes the circuit of the wires asked for.

    >>> b = Builder(2)
    >>> xy = b.and_(0, 1)
    >>> b.and_(1, 0) == xy, b.xor(xy, xy) == b.zero(), b.not_(b.not_(0))
    (True, True, 0)
    >>> b.build([xy], "x·y") == AND
    True
    """

    def __init__(self, n_in: int):
        self.n_in = n_in
        self.gates: list[tuple[str, tuple[int, ...]]] = []
        self.memo: dict[tuple[str, tuple[int, ...]], int] = {}
        self.const: dict[int, bool] = {}
        self.negation: dict[int, int] = {}

    def _emit(self, op: str, args: tuple[int, ...]) -> int:
        key = (op, args)
        if key not in self.memo:
            self.memo[key] = self.n_in + len(self.gates)
            self.gates.append(key)
            if op in ("zero", "one"):
                self.const[self.memo[key]] = op == "one"
        return self.memo[key]

    def zero(self) -> int:
        return self._emit("zero", ())

    def one(self) -> int:
        return self._emit("one", ())

    def and_(self, a: int, b: int) -> int:
        ca, cb = self.const.get(a), self.const.get(b)
        if ca is False or cb is False:
            return self.zero()
        if ca is True:
            return b
        if cb is True:
            return a
        return self._emit("and", (min(a, b), max(a, b)))

    def xor(self, a: int, b: int) -> int:
        if a == b:
            return self.zero()
        ca, cb = self.const.get(a), self.const.get(b)
        if ca is False:
            return b
        if cb is False:
            return a
        if ca is True:
            return self.not_(b)
        if cb is True:
            return self.not_(a)
        return self._emit("xor", (min(a, b), max(a, b)))

    def not_(self, a: int) -> int:
        c = self.const.get(a)
        if c is not None:
            return self.zero() if c else self.one()
        if a in self.negation:
            return self.negation[a]
        w = self._emit("not", (a,))
        self.negation[w] = a
        return w

    def xor_all(self, wires: Sequence[int]) -> int:
        """The XOR of the wires, as a balanced tree (0 when there are none)."""
        ws = [w for w in wires if self.const.get(w) is not False]
        if not ws:
            return self.zero()
        while len(ws) > 1:
            ws = [self.xor(ws[i], ws[i + 1]) if i + 1 < len(ws) else ws[i] for i in range(0, len(ws), 2)]
        return ws[0]

    def gate(self, op: str, args: Sequence[int]) -> int:
        if op == "and":
            return self.and_(*args)
        if op == "xor":
            return self.xor(*args)
        if op == "not":
            return self.not_(*args)
        return self.one() if op == "one" else self.zero()

    def inline(self, c: Circuit, inputs: Sequence[int]) -> list[int]:
        """Emit ``c`` on the given wires; returns the wires of its outputs."""
        val = list(inputs) + [0] * len(c.gates)
        for k, (op, args) in enumerate(c.gates):
            val[c.n_in + k] = self.gate(op, [val[a] for a in args])
        return [val[o] for o in c.outputs]

    def build(self, outputs: Sequence[int], name: str) -> Circuit:
        """The circuit of the given outputs, without the gates they do not need."""
        live = set(outputs)
        for k in range(len(self.gates) - 1, -1, -1):
            if self.n_in + k in live:
                live.update(self.gates[k][1])
        renumber = {i: i for i in range(self.n_in)}
        gates: list[tuple[str, tuple[int, ...]]] = []
        for k, (op, args) in enumerate(self.gates):
            if self.n_in + k in live:
                renumber[self.n_in + k] = self.n_in + len(gates)
                gates.append((op, tuple(renumber[a] for a in args)))
        return Circuit(self.n_in, tuple(gates), tuple(renumber[o] for o in outputs), name)


@dataclass(frozen=True)
class Circuit(Monoidal):
    """A polynomial circuit over Z2: ``n_in`` inputs, gates in order, and the wires read as outputs.

    Wires ``0 … n_in-1`` are the inputs; gate ``k`` (``(op, args)`` with ``op`` one
    of ``"and"``, ``"xor"``, ``"not"``, ``"zero"``, ``"one"``) drives wire
    ``n_in + k`` and reads earlier wires only. Outputs may repeat a wire (copy)
    or leave one out (discard). Equality is structural; ``name`` is a label.

    >>> from learning_diagrams.lenses.boolean import bits, bitstring
    >>> half_adder = Circuit(2, (("xor", (0, 1)), ("and", (0, 1))), (2, 3), "half adder")
    >>> bitstring(half_adder(bits("11"))), half_adder
    ('01', Circuit(half adder: 2 → 2, 2 gates))
    """

    n_in: int
    gates: tuple[tuple[str, tuple[int, ...]], ...]
    outputs: tuple[int, ...]
    name: str = field(default="circuit", compare=False)

    def __post_init__(self) -> None:
        gates = tuple((op, tuple(int(a) for a in args)) for op, args in self.gates)
        object.__setattr__(self, "gates", gates)
        object.__setattr__(self, "outputs", tuple(int(o) for o in self.outputs))
        if self.n_in < 0:
            raise NotComposableError(f"circuit {self.name}: {self.n_in} inputs; give a count ≥ 0")
        for k, (op, args) in enumerate(gates):
            if op not in _ARITY:
                raise InvalidNameError(f"circuit {self.name}, gate {k}: no gate {op!r}; use one of {', '.join(_ARITY)}")
            if len(args) != _ARITY[op]:
                raise NotComposableError(
                    f"circuit {self.name}, gate {k}: {op} takes {_ARITY[op]} wires, not {len(args)}"
                )
            if any(not 0 <= a < self.n_in + k for a in args):
                raise NotComposableError(
                    f"circuit {self.name}, gate {k} ({op} {args}): a gate reads wires 0..{self.n_in + k - 1} only"
                )
        if any(not 0 <= o < self.n_wires for o in self.outputs):
            raise NotComposableError(
                f"circuit {self.name}: outputs {self.outputs} name wires beyond 0..{self.n_wires - 1}"
            )

    @property
    def n_out(self) -> int:
        return len(self.outputs)

    @property
    def n_wires(self) -> int:
        return self.n_in + len(self.gates)

    def __repr__(self) -> str:
        return f"Circuit({self.name}: {self.n_in} → {self.n_out}, {len(self.gates)} gates)"

    # -- structure -----------------------------------------------------------------
    @staticmethod
    def gate(op: str) -> Circuit:
        """One gate on its own inputs."""
        if op not in _ARITY:
            raise InvalidNameError(f"no gate {op!r}; use one of {', '.join(_ARITY)}")
        n = _ARITY[op]
        return Circuit(n, ((op, tuple(range(n))),), (n,), op.upper())

    @staticmethod
    def select(n: int, wires: Iterable[int], name: str | None = None) -> Circuit:
        """``Z2ⁿ → Z2ᵐ`` reading the given inputs: identities, projections, copies, discards, swaps."""
        wires = tuple(wires)
        return Circuit(n, (), wires, name or f"select{list(wires)}")

    @staticmethod
    def identity(n: int = 1) -> Circuit:
        return Circuit.select(n, range(n), "id")

    @staticmethod
    def copy(n: int = 1) -> Circuit:
        """``x ↦ (x, x)``."""
        return Circuit.select(n, list(range(n)) * 2, "copy")

    @staticmethod
    def discard(n: int = 1) -> Circuit:
        """``x ↦ ()``."""
        return Circuit.select(n, (), "discard")

    @staticmethod
    def zero(n_in: int, n_out: int) -> Circuit:
        """The zero map ``Z2^n_in → Z2^n_out``."""
        b = Builder(n_in)
        return b.build([b.zero()] * n_out, "0")

    def then(self, other: Circuit) -> Circuit:
        """``self`` then ``other``, as one circuit (``>>``)."""
        if self.n_out != other.n_in:
            raise NotComposableError(
                f"cannot compose {self.name} ({self.n_out} outputs) with {other.name} ({other.n_in} inputs)"
            )
        b = Builder(self.n_in)
        return b.build(b.inline(other, b.inline(self, range(self.n_in))), f"({self.name} >> {other.name})")

    def tensor(self, other: Circuit) -> Circuit:
        """``self`` beside ``other``: inputs and outputs side by side (``@``)."""
        b = Builder(self.n_in + other.n_in)
        ys = b.inline(self, range(self.n_in)) + b.inline(other, range(self.n_in, self.n_in + other.n_in))
        return b.build(ys, f"({self.name} @ {other.name})")

    def pair(self, other: Circuit) -> Circuit:
        """``⟨self, other⟩``: both on the same inputs, outputs side by side."""
        self._same_inputs(other, "pair")
        b = Builder(self.n_in)
        return b.build(
            b.inline(self, range(self.n_in)) + b.inline(other, range(self.n_in)), f"⟨{self.name}, {other.name}⟩"
        )

    def plus(self, other: Circuit) -> Circuit:
        """``self ⊕ other``: the sum of two maps with the same inputs and outputs (XOR of the outputs)."""
        self._same_inputs(other, "add")
        if self.n_out != other.n_out:
            raise NotComposableError(
                f"cannot add {self.name} ({self.n_out} outputs) and {other.name} ({other.n_out} outputs)"
            )
        b = Builder(self.n_in)
        ys = zip(b.inline(self, range(self.n_in)), b.inline(other, range(self.n_in)))
        return b.build([b.xor(y, z) for y, z in ys], f"({self.name} ⊕ {other.name})")

    def _same_inputs(self, other: Circuit, what: str) -> None:
        if self.n_in != other.n_in:
            raise NotComposableError(
                f"cannot {what} {self.name} ({self.n_in} inputs) and {other.name} ({other.n_in} inputs)"
            )

    def simplify(self) -> Circuit:
        """The same polynomials with shared subterms, folded constants and no dead gates."""
        b = Builder(self.n_in)
        return b.build(b.inline(self, range(self.n_in)), self.name)

    # -- derivatives -----------------------------------------------------------------
    def reverse(self) -> Circuit:
        """``R[f]: Z2^(n_in + n_out) → Z2^n_in``, ``(x, dy) ↦ Σ_k ∂f_k/∂x (x)·dy_k``, as a circuit."""
        n = self.n_in
        b = Builder(n + self.n_out)
        val = list(range(n)) + [0] * len(self.gates)
        for k, (op, args) in enumerate(self.gates):
            val[n + k] = b.gate(op, [val[a] for a in args])
        changes: list[list[int]] = [[] for _ in range(self.n_wires)]
        for k, o in enumerate(self.outputs):
            changes[o].append(n + k)
        for k in range(len(self.gates) - 1, -1, -1):
            op, args = self.gates[k]
            if not changes[n + k]:
                continue
            d = b.xor_all(changes[n + k])
            if op == "and":
                i, j = args
                changes[i].append(b.and_(val[j], d))
                changes[j].append(b.and_(val[i], d))
            elif op == "xor":
                changes[args[0]].append(d)
                changes[args[1]].append(d)
            elif op == "not":
                changes[args[0]].append(d)
        return b.build([b.xor_all(changes[i]) for i in range(n)], f"R[{self.name}]")

    def derivative(self) -> Circuit:
        """The forward derivative ``D[f](x, v) = π₁ R[R[f]]((x, 0), v)``, as a circuit (Cockett et al.)."""
        n, m = self.n_in, self.n_out
        b = Builder(2 * n)
        rr = self.reverse().reverse()
        zeros = [b.zero()] * m
        outs = b.inline(rr, list(range(n)) + zeros + list(range(n, 2 * n)))
        return b.build(outs[n:], f"D[{self.name}]")

    # -- running ---------------------------------------------------------------------
    @cached_property
    def _schedule(self) -> Schedule:
        return Schedule.of(self)

    def run(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(f(x), wires)``: the outputs and the value of every wire, for a bool tensor ``(..., n_in)``."""
        return self._schedule.run(x)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return self.run(x)[0]

    def backward(self, wires: torch.Tensor, dy: torch.Tensor) -> torch.Tensor:
        """``R[f](x, dy)`` from the wires that :meth:`run` kept: one reverse sweep, XOR where wires fan out.

        Changes are summed in ``uint8``; a sum that wraps around 256 keeps its parity.
        """
        return self._schedule.backward(wires, dy)

    def lens(self) -> Lens:
        """The lens ``(f, R[f])`` on bool tensors ``(..., n_in) ⇄ (..., n_out)``; the residual is every wire."""
        return Lens(self.run, self.backward, self.name)


def _gates() -> dict[str, Circuit]:
    b = Builder(2)
    orc = b.build([b.xor(b.xor(0, 1), b.and_(0, 1))], "OR")
    return {
        "AND": Circuit.gate("and"),
        "XOR": Circuit.gate("xor"),
        "NOT": Circuit.gate("not"),
        "ZERO": Circuit.gate("zero"),
        "ONE": Circuit.gate("one"),
        "OR": orc,
    }


_G = _gates()
AND, XOR, NOT, ZERO, ONE, OR = _G["AND"], _G["XOR"], _G["NOT"], _G["ZERO"], _G["ONE"], _G["OR"]
COPY, DISCARD, IDENTITY = Circuit.copy(1), Circuit.discard(1), Circuit.identity(1)
