"""Composition, defined once: the base of everything that composes.

Paths of a learning graph, diagram morphisms, lenses, parametric maps and
Boolean circuits are arrows of categories. Each defines its own :meth:`~Composable.then`;
the operators are aliases given here, once (DisCoPy's habit), so ``f >> g`` means
``f.then(g)`` and ``g << f`` the same, everywhere in the library.
:class:`Monoidal` adds the parallel composition :meth:`~Monoidal.tensor` and its alias ``@``.

Laws (checked where each category is defined, and in its tests):

* associativity, ``(f >> g) >> h == f >> (g >> h)``;
* units, ``id >> f == f == f >> id``;
* for :class:`Monoidal`, interchange, ``(f @ g) >> (h @ k) == (f >> h) @ (g >> k)``.

>>> class Word(Composable):
...     def __init__(self, text): self.text = text
...     def then(self, other): return Word(self.text + other.text)
>>> (Word("ab") >> Word("c")).text, (Word("c") << Word("ab")).text
('abc', 'abc')
"""

from __future__ import annotations

from typing import Any

__all__ = ["Composable", "Monoidal"]


class Composable:
    """An arrow that composes in sequence: subclasses define :meth:`then`."""

    __slots__ = ()

    def then(self, other: Any) -> Any:
        """``self`` followed by ``other``."""
        raise NotImplementedError(f"{type(self).__name__} does not define then")

    def __rshift__(self, other: Any) -> Any:
        return self.then(other)

    def __lshift__(self, other: Any) -> Any:
        return other.then(self)


class Monoidal(Composable):
    """An arrow that also composes in parallel: subclasses define :meth:`tensor`."""

    __slots__ = ()

    def tensor(self, other: Any) -> Any:
        """``self`` beside ``other``."""
        raise NotImplementedError(f"{type(self).__name__} does not define tensor")

    def __matmul__(self, other: Any) -> Any:
        return self.tensor(other)
