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

What it learns (measured; see ``tests/lenses/test_boolean.py``):

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

The package's modules:

* :mod:`.z2` — changes over Z2 (:func:`z2_add`, :func:`z2_zero`) and bit strings;
* :mod:`.circuit` — :class:`Circuit`, the gates, the builder, ``R[f]`` and ``D[f]`` as circuits;
* :mod:`.engine` — running a circuit on bool tensors, forward and in one reverse sweep;
* :mod:`.parametric` — parametric circuits, :func:`affine` and :func:`lookup_table`;
* :mod:`.learning` — the XOR loss, learning rate and update, and :func:`rda`;
* :mod:`.digits` — the binarised digits experiment.
"""

from __future__ import annotations

from .circuit import AND, COPY, DISCARD, IDENTITY, NOT, ONE, OR, XOR, ZERO, Circuit
from .digits import binary_digits, digits_experiment
from .learning import accuracy, rda, rda_step, supervised, xor_learning_rate, xor_loss, xor_update
from .parametric import affine, join_wires, lookup_table, parametric, split_wires
from .z2 import bits, bitstring, z2_add, z2_zero

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
