"""The lambda language of the text syntax: its expressions, and their interpreter.

A lambda ``params → body`` in the text syntax is parsed (by :mod:`.syntax`) into
a small abstract syntax tree: :class:`Name`, :class:`Const`, :class:`Call`,
:class:`Index` (with a :class:`Slice`), :class:`Tuple` and :class:`TypeApply`.
:func:`evaluate` interprets it, never Python's ``eval``: the language has
names, number and string literals, calls, indexing, slices, tuples and Julia
type applications (``Vector{Float64}``, :mod:`.julia`), and nothing else (no
attributes, no operators). :func:`show` writes an expression back as text.

>>> expr = Call(Name("f"), (Index(Name("x"), Slice(None, 2)), Const("a")))
>>> show(expr), evaluate(expr, {"f": lambda *a: a, "x": "xyz"})
("f(x[:2], 'a')", ('xy', 'a'))
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Union

__all__ = [
    "Name",
    "Const",
    "Call",
    "Slice",
    "Index",
    "Tuple",
    "TypeApply",
    "Expr",
    "Pattern",
    "evaluate",
    "free_names",
    "type_applications",
    "show",
    "pattern_names",
]


@dataclass(frozen=True)
class Name:
    """A name, looked up among the lambda's parameters, then its environment."""

    id: str
    line: int = field(default=0, compare=False)
    column: int = field(default=0, compare=False)


@dataclass(frozen=True)
class Const:
    """An integer, float or string literal."""

    value: int | float | str


@dataclass(frozen=True)
class Call:
    """``func(arg, ...)``."""

    func: Expr
    args: tuple[Expr, ...]


@dataclass(frozen=True)
class Slice:
    """``start:stop`` inside an index, each bound an integer or absent."""

    start: int | None
    stop: int | None


@dataclass(frozen=True)
class Index:
    """``value[key]``, with an integer, string or slice key."""

    value: Expr
    key: int | str | Slice


@dataclass(frozen=True)
class Tuple:
    """``(item, ...)``: a Python tuple of the items' values."""

    items: tuple[Expr, ...]


@dataclass(frozen=True)
class TypeApply:
    """``head{param, ...}``, a Julia type application: the value of ``head[(params...)]`` (see :mod:`.julia`)."""

    head: Name
    params: tuple[Expr, ...]
    line: int = field(default=0, compare=False)
    column: int = field(default=0, compare=False)


Expr = Union[Name, Const, Call, Index, Tuple, TypeApply]
Pattern = Union[str, tuple["Pattern", ...]]  # a parameter name, or a tuple of patterns


def evaluate(expr: Expr, scope: Mapping[str, Any]) -> Any:
    """The value of ``expr`` when its names mean what ``scope`` says.

    >>> evaluate(Index(Tuple((Const(1), Name("x"))), -1), {"x": "hi"})
    'hi'
    """
    match expr:
        case Name(id):
            return scope[id]
        case Const(value):
            return value
        case Call(func, args):
            return evaluate(func, scope)(*(evaluate(arg, scope) for arg in args))
        case Index(value, Slice(start, stop)):
            return evaluate(value, scope)[start:stop]
        case Index(value, key):
            return evaluate(value, scope)[key]
        case Tuple(items):
            return tuple(evaluate(item, scope) for item in items)
        case TypeApply(head, params):
            return evaluate(head, scope)[tuple(evaluate(p, scope) for p in params)]
    raise TypeError(f"not an expression of the lambda language: {expr!r}")


def free_names(expr: Expr) -> Iterator[Name]:
    """Every :class:`Name` in ``expr``, left to right."""
    match expr:
        case Name():
            yield expr
        case Call(func, args):
            for sub in (func, *args):
                yield from free_names(sub)
        case Index(value, _):
            yield from free_names(value)
        case Tuple(items):
            for item in items:
                yield from free_names(item)
        case TypeApply(head, params):
            for sub in (head, *params):
                yield from free_names(sub)


def type_applications(expr: Expr) -> Iterator[TypeApply]:
    """Every :class:`TypeApply` in ``expr``, innermost first (a parameter before its type)."""
    match expr:
        case Call(func, args):
            for sub in (func, *args):
                yield from type_applications(sub)
        case Index(value, _):
            yield from type_applications(value)
        case Tuple(items):
            for item in items:
                yield from type_applications(item)
        case TypeApply(_, params):
            for sub in params:
                yield from type_applications(sub)
            yield expr


def show(expr: Expr | Pattern) -> str:
    """The source text of an expression or a parameter pattern.

    >>> show(Call(Name("f"), (Index(Name("x"), Slice(None, 2)), Const("a"))))
    "f(x[:2], 'a')"
    """
    match expr:
        case str():
            return expr
        case tuple():
            return _show_tuple([show(p) for p in expr])
        case Name(id):
            return id
        case Const(str() as value):
            return f"'{value}'" if "'" not in value else f'"{value}"'
        case Const(value):
            return repr(value)
        case Call(func, args):
            return f"{show(func)}({', '.join(show(arg) for arg in args)})"
        case Index(value, Slice(start, stop)):
            bounds = ("" if b is None else str(b) for b in (start, stop))
            return f"{show(value)}[{':'.join(bounds)}]"
        case Index(value, int() | str() as key):
            return f"{show(value)}[{show(Const(key))}]"
        case Tuple(items):
            return _show_tuple([show(item) for item in items])
        case TypeApply(head, params):
            return f"{show(head)}{{{', '.join(show(p) for p in params)}}}"
    raise TypeError(f"not an expression of the lambda language: {expr!r}")


def _show_tuple(items: list[str]) -> str:
    return f"({items[0]},)" if len(items) == 1 else f"({', '.join(items)})"


def pattern_names(pattern: Pattern) -> list[str]:
    if isinstance(pattern, str):
        return [pattern]
    return [name for sub in pattern for name in pattern_names(sub)]
