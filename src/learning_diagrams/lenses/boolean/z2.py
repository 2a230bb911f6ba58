"""Changes over Z2, and bit strings: what the Boolean lenses add, zero, read and print.

A change of a bool tensor is a bool tensor: adding two changes is XOR, the
zero change is ``False``. :func:`z2_add` and :func:`z2_zero` are the ``add``
and ``zero`` that the structural lenses take (``Lens.copy(add=z2_add)``,
``Lens.discard(zero=z2_zero)``), as :func:`~learning_diagrams.lenses.lens.tensor_add`
and :func:`~learning_diagrams.lenses.lens.tensor_zero` are for smooth maps.

Laws
----
Changes form a vector space over Z2: every change is its own inverse.

>>> x = bits("0110")
>>> bitstring(z2_add(x, x)), bitstring(z2_add(x, z2_zero(x))), bitstring(x)
('0000', '0110', '0110')
>>> z2_add((x, {"p": x}), (z2_zero(x), {"p": x}))
(tensor([False,  True,  True, False]), {'p': tensor([False, False, False, False])})
"""

from __future__ import annotations

import operator
from typing import Any

import torch

from ...core.errors import TypeMismatchError
from ..lens import leafwise

__all__ = ["z2_add", "z2_zero", "bits", "bitstring"]


def z2_add(a: Any, b: Any) -> Any:
    """Add two changes over Z2: XOR of bool tensors, or of tuples/dicts of them, entry by entry."""
    return leafwise(operator.xor, a, b)


def z2_zero(a: Any) -> Any:
    """The zero change at ``a``: ``False`` of the same shapes."""
    return leafwise(lambda x: torch.zeros_like(x, dtype=torch.bool), a)


def bits(text: str) -> torch.Tensor:
    """A bool vector from a string of ``0``/``1``: ``bits("101")``."""
    if any(c not in "01" for c in text):
        raise TypeMismatchError(f"bits({text!r}): use only the characters 0 and 1")
    return torch.tensor([c == "1" for c in text], dtype=torch.bool)


def bitstring(t: torch.Tensor) -> str:
    """A bool vector as a string of ``0``/``1``."""
    return "".join("1" if v else "0" for v in t.reshape(-1).tolist())
