"""Boolean circuits as lenses: a reverse-derivative engine over Z2, and learning by reverse-derivative ascent.

Torch's autograd does not differentiate ``bool`` tensors, so this module has
its own engine. A :class:`Circuit` is a straight-line program (a DAG) of the
gates AND, XOR, NOT and the constants 0 and 1 over ``n_in`` input wires; copy
and discard are wiring (a wire read twice, a wire read by nobody), and OR is
derived (``x ∨ y = x ⊕ y ⊕ x·y``). Circuits run on ``bool`` tensors whose last
dimension holds the wires and whose leading dimensions are the batch.

Which reverse derivative
------------------------
The one of the cartesian reverse derivative category of *polynomial circuits
over Z2* (Cockett et al., "Reverse derivative categories"; Wilson & Zanasi,
"Reverse derivative ascent"): a circuit denotes a tuple of polynomials
``f_k ∈ Z2[x_1, …, x_n]`` (AND is ``x·y``, XOR is ``x + y``, NOT is ``x + 1``),
and ``R[f](x, dy)_i = Σ_k ∂f_k/∂x_i (x) · dy_k`` with the *formal* partial
derivatives, taken mod 2 **before** any ``x² = x`` is used. The gates' reverse
derivatives are ``R[AND](x, y, d) = (y·d, x·d)``, ``R[XOR](x, y, d) = (d, d)``,
``R[NOT](x, d) = d`` (``x ↦ x + 1`` is affine), ``R[copy](x, (d₁, d₂)) = d₁ ⊕ d₂``,
``R[discard](x) = 0``; constants have no input. A composite gets its reverse
derivative by the chain rule and by pairing, i.e. by lens composition.

>>> R_and = AND.reverse()                       # inputs (x, y, dz), outputs (dx, dy)
>>> bitstring(R_and(bits("111"))), bitstring(R_and(bits("101"))), bitstring(R_and(bits("110")))
('11', '01', '00')
>>> f = Circuit(2, (("and", (0, 1)), ("xor", (2, 0))), (3,), "x·y ⊕ x")
>>> [bitstring(f.reverse()(bits(x + y + "1"))) for x in "01" for y in "01"]  # ∂/∂x = y ⊕ 1, ∂/∂y = x
['10', '00', '11', '01']

So it is *not* "did the output change when the input flipped" (the Boolean
difference ``f(x ⊕ eᵢ) ⊕ f(x)``). The two agree on multilinear polynomials
(AND, OR, ``x·y ⊕ x`` above), but the derivative belongs to the circuit, not
to the Boolean function it computes: ``x ↦ x·x`` computes the identity, yet
its derivative is ``2x = 0``, and the Boolean difference, which would say 1,
breaks the chain rule through copy (``R[copy](x, (x, x)) = x ⊕ x = 0``).

>>> square = COPY >> AND                        # x·x: the identity function, derivative 0
>>> bitstring(square(bits("1"))), bitstring(square.reverse()(bits("11"))), bitstring(IDENTITY.reverse()(bits("11")))
('1', '0', '1')

:meth:`Circuit.reverse` returns ``R[f]`` as a circuit of the same language, so
it can be differentiated again (``R[R[f]]``, the forward derivative
:meth:`Circuit.derivative`), as the axioms RD.6 and RD.7 need. Simplifications
are the polynomial identities only (``0·p = 0``, ``1·p = p``, ``p + 0 = p``,
``p + p = 0``, ``(p + 1) + 1 = p``, shared subterms), never ``p·p = p``.

Lenses and learning
-------------------
:meth:`Circuit.lens` is the lens ``(f, R[f])``: the forward part keeps every
wire's value as its residual, so the backward part (a reverse sweep, with
``⊕`` where a wire fans out) does not run the circuit again. Lenses of circuits
compose with ``>>``/``@`` and the structural lenses with the Z2 changes
(``Lens.copy(add=z2_add)``, ``Lens.discard(zero=z2_zero)``). :func:`parametric`
makes a :class:`~learning_diagrams.lenses.para.Para` whose first wires are the
parameters; the change of a parameter over a batch is the XOR of the
per-example changes (the reverse derivative of copying the parameter to every
example).

Learning follows Cruttwell et al. §"Boolean circuits" and Wilson & Zanasi's
reverse-derivative ascent (RDA). The loss map is XOR (:func:`xor_loss`:
``l = y ⊕ label``, its reverse derivative passes ``dl`` to both sides); the
learning rate (:func:`xor_learning_rate`) is the identity, for Z2 has no step
size but 1 (a step of 0 never learns); the update (:func:`xor_update`) is
``p ⊕ dp``, which is ascent and descent at once because ``-1 = 1`` in Z2. So a
step flips exactly the parameters whose reverse derivative at the error is 1.
:func:`rda` runs it online (one example per step, as Wilson & Zanasi do).

What it learns (measured; see ``tests/test_boolean.py``):

* :func:`affine` (``y = W·x ⊕ b`` over Z2) recovers a random affine map
  ``Z2⁸ → Z2³`` from its truth table exactly (100%, the same ``W`` and ``b``;
  12 epochs of 256 steps with the test's seeds). It represents only parities, so on binarised digits
  ("is it a 0") it stays at chance (about 50%, below the 90% of always
  answering "no"): RDA then wanders, it does not approximate.
* :func:`lookup_table` (Wilson & Zanasi's model: a truth table as parameters,
  read by a multiplexer circuit) on scikit-learn's digits binarised at
  ``pixel > 7``, one-vs-rest "is it a 0", reading the 8 pixels whose
  frequency differs most between the classes on the training split (that
  choice is statistics, not RDA): after one epoch, 98.3% of the 360 test
  digits right (seed 0; 98.3–98.9% over seeds 0–4), where always answering
  "no" scores 90.0%; see :func:`digits_experiment`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Iterable, Sequence

import torch

from ..core.category import Monoidal
from ..core.errors import InvalidNameError, NotComposableError, TypeMismatchError
from .lens import Lens
from .para import Para

__all__ = [
    "Circuit",
    "AND",
    "XOR",
    "NOT",
    "OR",
    "ZERO",
    "ONE",
    "COPY",
    "DISCARD",
    "IDENTITY",
    "bits",
    "bitstring",
    "z2_add",
    "z2_zero",
    "split_wires",
    "join_wires",
    "parametric",
    "affine",
    "lookup_table",
    "xor_loss",
    "xor_learning_rate",
    "xor_update",
    "supervised",
    "rda_step",
    "rda",
    "accuracy",
    "binary_digits",
    "digits_experiment",
]

_ARITY = {"and": 2, "xor": 2, "not": 1, "zero": 0, "one": 0}


# -- changes over Z2 -------------------------------------------------------------


def z2_add(a: Any, b: Any) -> Any:
    """Add two changes over Z2: XOR of bool tensors, or of tuples/dicts of them, entry by entry."""
    if isinstance(a, tuple):
        return tuple(z2_add(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return {k: z2_add(a[k], b[k]) for k in a}
    return a ^ b


def z2_zero(a: Any) -> Any:
    """The zero change at ``a``: ``False`` of the same shapes."""
    if isinstance(a, tuple):
        return tuple(z2_zero(x) for x in a)
    if isinstance(a, dict):
        return {k: z2_zero(v) for k, v in a.items()}
    return torch.zeros_like(a, dtype=torch.bool)


def bits(text: str) -> torch.Tensor:
    """A bool vector from a string of ``0``/``1``: ``bits("101")``."""
    if any(c not in "01" for c in text):
        raise TypeMismatchError(f"bits({text!r}): use only the characters 0 and 1")
    return torch.tensor([c == "1" for c in text], dtype=torch.bool)


def bitstring(t: torch.Tensor) -> str:
    """A bool vector as a string of ``0``/``1``."""
    return "".join("1" if v else "0" for v in t.reshape(-1).tolist())


# -- building circuits -------------------------------------------------------------


class _Builder:
    """Emits gates with shared subterms and the polynomial identities of Z2 (never ``p·p = p``)."""

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
        gates = []
        for k, (op, args) in enumerate(self.gates):
            if self.n_in + k in live:
                renumber[self.n_in + k] = self.n_in + len(gates)
                gates.append((op, tuple(renumber[a] for a in args)))
        return Circuit(self.n_in, tuple(gates), tuple(renumber[o] for o in outputs), name)


@dataclass(frozen=True)
class _Group:
    op: str
    out: torch.Tensor
    args: tuple[torch.Tensor, ...]


@dataclass(frozen=True)
class Circuit(Monoidal):
    """A polynomial circuit over Z2: ``n_in`` inputs, gates in order, and the wires read as outputs.

    Wires ``0 … n_in-1`` are the inputs; gate ``k`` (``(op, args)`` with ``op`` one
    of ``"and"``, ``"xor"``, ``"not"``, ``"zero"``, ``"one"``) drives wire
    ``n_in + k`` and reads earlier wires only. Outputs may repeat a wire (copy)
    or leave one out (discard). Equality is structural; ``name`` is a label.

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
        b = _Builder(n_in)
        return b.build([b.zero()] * n_out, "0")

    def then(self, other: Circuit) -> Circuit:
        """``self`` then ``other``, as one circuit (``>>``)."""
        if self.n_out != other.n_in:
            raise NotComposableError(
                f"cannot compose {self.name} ({self.n_out} outputs) with {other.name} ({other.n_in} inputs)"
            )
        b = _Builder(self.n_in)
        return b.build(b.inline(other, b.inline(self, range(self.n_in))), f"({self.name} >> {other.name})")

    def tensor(self, other: Circuit) -> Circuit:
        """``self`` beside ``other``: inputs and outputs side by side (``@``)."""
        b = _Builder(self.n_in + other.n_in)
        ys = b.inline(self, range(self.n_in)) + b.inline(other, range(self.n_in, self.n_in + other.n_in))
        return b.build(ys, f"({self.name} @ {other.name})")

    def pair(self, other: Circuit) -> Circuit:
        """``⟨self, other⟩``: both on the same inputs, outputs side by side."""
        self._same_inputs(other, "pair")
        b = _Builder(self.n_in)
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
        b = _Builder(self.n_in)
        ys = zip(b.inline(self, range(self.n_in)), b.inline(other, range(self.n_in)))
        return b.build([b.xor(y, z) for y, z in ys], f"({self.name} ⊕ {other.name})")

    def _same_inputs(self, other: Circuit, what: str) -> None:
        if self.n_in != other.n_in:
            raise NotComposableError(
                f"cannot {what} {self.name} ({self.n_in} inputs) and {other.name} ({other.n_in} inputs)"
            )

    def simplify(self) -> Circuit:
        """The same polynomials with shared subterms, folded constants and no dead gates."""
        b = _Builder(self.n_in)
        return b.build(b.inline(self, range(self.n_in)), self.name)

    # -- derivatives -----------------------------------------------------------------
    def reverse(self) -> Circuit:
        """``R[f]: Z2^(n_in + n_out) → Z2^n_in``, ``(x, dy) ↦ Σ_k ∂f_k/∂x (x)·dy_k``, as a circuit."""
        n = self.n_in
        b = _Builder(n + self.n_out)
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
        b = _Builder(2 * n)
        rr = self.reverse().reverse()
        zeros = [b.zero()] * m
        outs = b.inline(rr, list(range(n)) + zeros + list(range(n, 2 * n)))
        return b.build(outs[n:], f"D[{self.name}]")

    # -- running ---------------------------------------------------------------------
    @cached_property
    def _schedule(self) -> tuple[_Group, ...]:
        level = [0] * self.n_wires
        groups: dict[tuple[int, str], list[tuple[int, tuple[int, ...]]]] = {}
        for k, (op, args) in enumerate(self.gates):
            w = self.n_in + k
            level[w] = 1 + max((level[a] for a in args), default=0)
            groups.setdefault((level[w], op), []).append((w, args))
        out = []
        for (_, op), members in sorted(groups.items()):
            idx = torch.tensor([w for w, _ in members], dtype=torch.long)
            args = tuple(torch.tensor([a[i] for _, a in members], dtype=torch.long) for i in range(_ARITY[op]))
            out.append(_Group(op, idx, args))
        return tuple(out)

    @cached_property
    def _outputs(self) -> torch.Tensor:
        return torch.tensor(self.outputs, dtype=torch.long)

    def run(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(f(x), wires)``: the outputs and the value of every wire, for a bool tensor ``(..., n_in)``."""
        if not isinstance(x, torch.Tensor) or x.dtype != torch.bool or x.shape[-1:] != (self.n_in,):
            got = f"{x.dtype} {tuple(x.shape)}" if isinstance(x, torch.Tensor) else type(x).__name__
            raise TypeMismatchError(f"circuit {self.name} takes a bool tensor (..., {self.n_in}), not {got}")
        batch = x.shape[:-1]
        v = torch.empty(batch.numel(), self.n_wires, dtype=torch.bool)
        v[:, : self.n_in] = x.reshape(batch.numel(), self.n_in)
        for g in self._schedule:
            if g.op == "and":
                v[:, g.out] = v[:, g.args[0]] & v[:, g.args[1]]
            elif g.op == "xor":
                v[:, g.out] = v[:, g.args[0]] ^ v[:, g.args[1]]
            elif g.op == "not":
                v[:, g.out] = ~v[:, g.args[0]]
            else:
                v[:, g.out] = g.op == "one"
        wires = v.reshape(*batch, self.n_wires)
        return wires[..., self._outputs], wires

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return self.run(x)[0]

    def backward(self, wires: torch.Tensor, dy: torch.Tensor) -> torch.Tensor:
        """``R[f](x, dy)`` from the wires that :meth:`run` kept: one reverse sweep, XOR where wires fan out.

        Changes are summed in ``uint8``; a sum that wraps around 256 keeps its parity.
        """
        if dy.dtype != torch.bool or dy.shape[-1:] != (self.n_out,):
            raise TypeMismatchError(
                f"circuit {self.name}: the change at the output is a bool tensor (..., {self.n_out})"
            )
        batch = wires.shape[:-1]
        v = wires.reshape(batch.numel(), self.n_wires).to(torch.uint8)
        d = torch.zeros_like(v)
        d.index_add_(1, self._outputs, dy.reshape(batch.numel(), self.n_out).to(torch.uint8))
        for g in reversed(self._schedule):
            if g.op in ("zero", "one"):
                continue
            dout = d[:, g.out] & 1
            if g.op == "and":
                d.index_add_(1, g.args[0], dout & v[:, g.args[1]])
                d.index_add_(1, g.args[1], dout & v[:, g.args[0]])
            else:  # xor, not: the derivative is the identity on each input
                for a in g.args:
                    d.index_add_(1, a, dout)
        return (d[:, : self.n_in] & 1).bool().reshape(*batch, self.n_in)

    def lens(self) -> Lens:
        """The lens ``(f, R[f])`` on bool tensors ``(..., n_in) ⇄ (..., n_out)``; the residual is every wire."""
        return Lens(self.run, self.backward, self.name)


def _gates() -> dict[str, Circuit]:
    b = _Builder(2)
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
    out = []
    for v in p.values():
        out.extend(_leaves(v) if isinstance(v, dict) else [v])
    return out


def _rebuild(p: dict[str, Any], flat: torch.Tensor, at: int = 0) -> tuple[dict[str, Any], int]:
    out = {}
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

    >>> layer = affine(3, 1, generator=torch.Generator().manual_seed(0))
    >>> layer.params["affine"]["W"].shape, layer(bits("101")).shape
    (torch.Size([1, 3]), torch.Size([1]))
    """
    n_p = n_out * n_in + n_out
    b = _Builder(n_p + n_in)
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

    >>> t = lookup_table(2)
    >>> t.params["table"]["table"][0b10] = True
    >>> [bitstring(t(bits(x))) for x in ("00", "10", "01", "11")]     # x_0 first: "01" is row 2
    ['0', '0', '1', '0']
    """
    rows = 1 << k
    n_p = rows * n_out
    b = _Builder(n_p + k)
    terms = [b.one()]
    for j in range(k):
        xj = n_p + j
        literal = (b.not_(xj), xj)
        terms = [b.and_(terms[r % (1 << j)], literal[(r >> j) & 1]) for r in range(1 << (j + 1))]
    ys = [b.xor_all([b.and_(r * n_out + o, terms[r]) for r in range(rows)]) for o in range(n_out)]
    return parametric(b.build(ys, name), {name: {"table": _init((rows, n_out), generator)}}, name)


# -- loss, learning rate, update -------------------------------------------------------------


def xor_loss() -> Lens:
    """The loss map ``(y, label) ⇄ l = y ⊕ label`` (the XOR gate, wire by wire); backward ``dl ↦ (dl, dl)``."""
    return Lens(lambda yt: (yt[0] ^ yt[1], None), lambda r, dl: (dl, dl), "xor_loss")


def xor_learning_rate() -> Lens:
    """The learning rate ``(l ⇄ ())`` closing the loop: backward gives the change ``dl = l``.

    It is the identity: Z2's only non-zero scalar is 1.
    """
    return Lens(lambda l: ((), l), lambda l, _: l, "xor_learning_rate")


def xor_update() -> Lens:
    """The update ``p ⇄ p``: forward the parameters, backward ``(p, dp) ↦ p ⊕ dp``."""
    return Lens(lambda p: (p, p), z2_add, "xor_update")


def supervised(model: Para) -> Lens:
    """The closed learning lens of Cruttwell et al.: ``(model reparametrised by the update) ; loss ; learning rate``.

    On ``((params, x), label)`` its forward part ends in ``()``; its backward
    part, on ``()``, gives ``((new params, dx), dlabel)``.
    """
    learner = model.reparametrise(xor_update(), model.params)
    return (learner.lens @ Lens.id()) >> xor_loss() >> xor_learning_rate()


def rda_step(model: Para, x: torch.Tensor, label: torch.Tensor) -> tuple[Para, int]:
    """One step of reverse-derivative ascent: ``p ↦ p ⊕ R[f]_p(p, x, f(p, x) ⊕ label)``.

    Returns the updated model and how many examples of the batch were wrong.
    Over a batch the parameter change is the XOR of the examples' changes;
    :func:`rda` uses batches of one.
    """
    closed = supervised(model)
    _, residual = closed.fwd(((model.params, x), label))
    loss = residual[1]
    (params, _), _ = closed.bwd(residual, ())
    return model.with_params(params), int(loss.reshape(loss.shape[:-1].numel(), loss.shape[-1]).any(-1).sum())


def rda(
    model: Para,
    x: torch.Tensor,
    y: torch.Tensor,
    epochs: int = 10,
    generator: torch.Generator | None = None,
) -> tuple[Para, list[int]]:
    """Online reverse-derivative ascent over ``(x, y)`` (bool ``(n, …)``), one example per step.

    Each epoch visits the examples in an order drawn from ``generator`` (in
    order without one). Stops early after an epoch with no mistake: RDA has
    reached a fixed point there. Returns the model and the mistakes per epoch.
    """
    history = []
    for _ in range(epochs):
        order = torch.randperm(len(x), generator=generator) if generator is not None else torch.arange(len(x))
        mistakes = 0
        for i in order.tolist():
            model, wrong = rda_step(model, x[i : i + 1], y[i : i + 1])
            mistakes += wrong
        history.append(mistakes)
        if mistakes == 0:
            break
    return model, history


def accuracy(model: Para, x: torch.Tensor, y: torch.Tensor) -> float:
    """The fraction of examples whose every output wire is right."""
    return (model(x) == y).all(-1).float().mean().item()


# -- a real task: binarised digits ---------------------------------------------------------------


def binary_digits(
    digit: int = 0, seed: int = 0
) -> tuple[tuple[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]:
    """scikit-learn's 8×8 digits as 64 bits (``pixel > 7`` of 0..16), labelled "is it ``digit``".

    Split 80/20, stratified by digit, with ``seed`` (as
    :func:`learning_diagrams.examples.datasets.digits`). Returns
    ``((x_train, y_train), (x_test, y_test))``; ``x`` is ``(n, 64)``, ``y`` is ``(n, 1)``, all bool.
    """
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    data = load_digits()
    x = torch.tensor(data.data > 7)
    y = torch.tensor(data.target == digit).unsqueeze(-1)
    train, test = train_test_split(range(len(y)), test_size=0.2, stratify=data.target, random_state=seed)
    return (x[train], y[train]), (x[test], y[test])


def digits_experiment(k: int = 8, digit: int = 0, epochs: int = 1, seed: int = 0) -> dict[str, Any]:
    """Learn "is it ``digit``" on binarised digits with a :func:`lookup_table` on ``k`` pixels, by RDA.

    The ``k`` pixels are those whose frequency differs most between the
    classes on the training split; the model is ``select those pixels >> table``,
    one parametric lens. Returns the accuracies, the majority baseline
    (always "no") on the test split, the pixels and the trained model.
    """
    (xtr, ytr), (xte, yte) = binary_digits(digit, seed)
    pos, neg = xtr[ytr[:, 0]].float().mean(0), xtr[~ytr[:, 0]].float().mean(0)
    pixels = torch.argsort((pos - neg).abs(), descending=True, stable=True)[:k].tolist()
    model = Para.lift(Circuit.select(64, pixels, "pixels").lens()) >> lookup_table(k, 1, "table")
    model, history = rda(model, xtr, ytr, epochs, torch.Generator().manual_seed(seed))
    return {
        "train_accuracy": accuracy(model, xtr, ytr),
        "test_accuracy": accuracy(model, xte, yte),
        "baseline": 1.0 - yte.float().mean().item(),
        "mistakes": history,
        "pixels": pixels,
        "model": model,
    }
