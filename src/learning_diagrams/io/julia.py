"""Julia type expressions in the text syntax: ``Vector{Float64}`` read as a type annotation.

Listing 1 of the paper is Julia, and annotates its vertices with Julia types:
``Z_I_x_Y ⇒ (Any, Vector{Float64})``. The text syntax reads such a type
application ``T{A, B}`` (a name, then its parameters in braces) and turns it
into the annotations of :mod:`learning_diagrams.core.types`:

==============================  ===========================================================
Julia                           annotation
==============================  ===========================================================
``Float64``, ``Float32``, ...   the torch dtype (``torch.float64``): an array of that dtype
``Vector{T}``                   ``TensorType(None, dtype=T)``: one dimension, any size
``Matrix{T}``                   ``TensorType(None, None, dtype=T)``
``Array{T, N}``                 ``TensorType(None, ..., dtype=T)``, ``N`` dimensions
``Array{T}``                    ``T``, an array of any shape (``Array{Any}``: ``torch.Tensor``)
``Tuple{A, B}``                 ``(A, B)``, a tuple annotation (``Tuple{}`` is ``()``)
``NTuple{N, T}``                ``(T, ..., T)``, ``N`` times
==============================  ===========================================================

``AbstractVector``, ``AbstractMatrix`` and ``AbstractArray`` read as
``Vector``, ``Matrix`` and ``Array``; ``Any`` as an element type leaves the
dtype open (``Vector{Any}`` is ``TensorType(None)``). Julia's ``Int`` is
``Int64``, as on every 64-bit machine. These names are in the text syntax's
default namespace (:data:`learning_diagrams.io.syntax.DEFAULTS`), so an ``env``
entry of the same name shadows them.

>>> Vector[(torch.float64,)], Tuple[(Any, Matrix[(torch.float32,)])]
(TensorType(None, dtype=torch.float64), (typing.Any, TensorType(None, None, dtype=torch.float32)))
>>> Vector[(torch.float64, 2)]
Traceback (most recent call last):
...
learning_diagrams.core.errors.TypeMismatchError: Vector takes 1 parameter (the element type), got 2: write Vector{Float64}
"""

from __future__ import annotations

import re
import types
from typing import Any

import torch

from ..core.arrays import is_dtype
from ..core.errors import DiagramSyntaxError, TypeMismatchError
from ..core.types import TensorType, check_annotation
from .limits import clipped, excerpt

__all__ = ["JuliaType", "DTYPES", "CONSTRUCTORS", "NAMES", "unwrap_block"]

#: Julia's number types, by their Julia names, as torch dtypes.
DTYPES: dict[str, torch.dtype] = {
    "Float64": torch.float64,
    "Float32": torch.float32,
    "Float16": torch.float16,
    "BFloat16": torch.bfloat16,
    "Int64": torch.int64,
    "Int": torch.int64,
    "Int32": torch.int32,
    "Int16": torch.int16,
    "Int8": torch.int8,
    "UInt8": torch.uint8,
    "Bool": torch.bool,
    "ComplexF64": torch.complex128,
    "ComplexF32": torch.complex64,
}


class JuliaType:
    """A Julia parametric type (``Vector``, ``Tuple``, ...): ``T[(params...)]`` is ``T{params...}``.

    The text syntax evaluates ``Vector{Float64}`` as ``Vector[(torch.float64,)]``.
    A wrong number or kind of parameters raises
    :class:`~learning_diagrams.core.errors.TypeMismatchError` saying what the
    type takes; the text syntax adds the line and column.

    Parameters
    ----------
    name : str
        The Julia name, for messages.
    arity : tuple of int
        The numbers of parameters it takes (``None`` for any number).
    takes : str
        What its parameters are, for messages.
    build : callable
        From the parameters (a tuple) to the annotation.
    """

    def __init__(self, name: str, arity: tuple[int, ...] | None, takes: str, build: Any):
        self.name, self.arity, self.takes, self._build = name, arity, takes, build

    def __getitem__(self, params: Any) -> Any:
        params = params if isinstance(params, tuple) else (params,)
        if self.arity is not None and len(params) not in self.arity:
            counts = " or ".join(map(str, self.arity))
            plural = "s" if self.arity != (1,) else ""
            raise TypeMismatchError(
                f"{self.name} takes {counts} parameter{plural} ({self.takes}), got {len(params)}: "
                f"write {self.example()}"
            )
        return self._build(self, params)

    def example(self) -> str:
        return _EXAMPLES[self.name]

    def __repr__(self) -> str:
        return f"JuliaType({self.name})"


def _element(julia: JuliaType, value: Any) -> Any:
    """An element type: a number type (as a torch dtype), or ``Any`` (no dtype)."""
    if value is Any or value is None:
        return None
    if is_dtype(value):
        return value
    raise TypeMismatchError(
        f"the element type of {julia.name} is a number type ({', '.join(list(DTYPES)[:4])}, ..., Bool) "
        f"or Any, not {_shown(value)}: write {julia.example()}"
    )


def _count(julia: JuliaType, value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise TypeMismatchError(
            f"{what} of {julia.name} is a whole number ≥ 0, not {_shown(value)}: write {julia.example()}"
        )
    return value


def _annotation(julia: JuliaType, value: Any) -> Any:
    """A parameter of ``Tuple``: any annotation (a Julia type, ``Any``, a class, a dtype, a tuple)."""
    if isinstance(value, JuliaType):
        raise TypeMismatchError(f"{value.name} needs its parameters inside {julia.name}: write {value.example()}")
    try:
        return check_annotation(value, julia.name)
    except TypeMismatchError:
        raise TypeMismatchError(
            f"a parameter of {julia.name} is a type (Any, Float64, Vector{{Float64}}, ...), not {_shown(value)}"
        ) from None


def _shown(value: Any) -> str:
    if isinstance(value, JuliaType):
        return value.name
    return clipped(getattr(value, "__name__", None) or repr(value), 60)


def _array(dims: int | None) -> Any:
    def build(julia: JuliaType, params: tuple[Any, ...]) -> Any:
        dtype = _element(julia, params[0])
        rank = (
            dims if dims is not None else (_count(julia, params[1], "the dimension count") if len(params) > 1 else None)
        )
        if rank is None:  # Array{T}: any number of dimensions
            return torch.Tensor if dtype is None else dtype
        return TensorType(*([None] * rank), dtype=dtype)

    return build


def _tuple(julia: JuliaType, params: tuple[Any, ...]) -> tuple[Any, ...]:
    return tuple(_annotation(julia, p) for p in params)


def _ntuple(julia: JuliaType, params: tuple[Any, ...]) -> tuple[Any, ...]:
    length = _count(julia, params[0], "the length")
    return (_annotation(julia, params[1]),) * length


_EXAMPLES = {
    "Vector": "Vector{Float64}",
    "Matrix": "Matrix{Float32}",
    "Array": "Array{Float32, 3}",
    "AbstractVector": "AbstractVector{Float64}",
    "AbstractMatrix": "AbstractMatrix{Float32}",
    "AbstractArray": "AbstractArray{Float32, 3}",
    "Tuple": "Tuple{Vector{Float64}, Int64}",
    "NTuple": "NTuple{2, Float64}",
}

Vector = JuliaType("Vector", (1,), "the element type", _array(1))
Matrix = JuliaType("Matrix", (1,), "the element type", _array(2))
Array = JuliaType("Array", (1, 2), "the element type, then the number of dimensions", _array(None))
Tuple = JuliaType("Tuple", None, "the types of the items", _tuple)
NTuple = JuliaType("NTuple", (2,), "the length, then the type of the items", _ntuple)

#: The parametric types, by their Julia names.
CONSTRUCTORS: dict[str, JuliaType] = {
    "Vector": Vector,
    "Matrix": Matrix,
    "Array": Array,
    "AbstractVector": JuliaType("AbstractVector", (1,), "the element type", _array(1)),
    "AbstractMatrix": JuliaType("AbstractMatrix", (1,), "the element type", _array(2)),
    "AbstractArray": JuliaType(
        "AbstractArray", (1, 2), "the element type, then the number of dimensions", _array(None)
    ),
    "Tuple": Tuple,
    "NTuple": NTuple,
}

#: Every Julia name the text syntax knows by default.
NAMES: types.MappingProxyType[str, Any] = types.MappingProxyType({**DTYPES, **CONSTRUCTORS})


# Listing 1's Julia block: "@LD begin" (after "diagram =", say) on the first line, "end" on the last.: "@LD begin" (after "diagram =", say) on the first line, "end" on the last.
_BLOCK_OPEN = r"[ \t]*(?:[^\W\d]\w*[ \t]*=[ \t]*)?@LD[ \t]+begin[ \t]*(?:#[^\n]*)?\r?"
_BLOCK_CLOSE = r"[ \t]*end[ \t]*(?:#[^\n]*)?\r?"


def unwrap_block(text: str) -> str:
    """``text`` with the lines ``@LD begin`` and ``end`` of a Julia block blanked, when it has them.

    They are replaced by spaces, so every other character keeps its line,
    column and offset (error messages point into the text as written). One
    without the other is refused at its place.
    """
    lines = text.split("\n")
    significant = [i for i, line in enumerate(lines) if line.strip() and not line.lstrip().startswith("#")]
    if not significant:
        return text
    first, last = significant[0], significant[-1]
    opened = first != last and re.fullmatch(_BLOCK_OPEN, lines[first]) is not None
    closed = re.fullmatch(_BLOCK_CLOSE, lines[last]) is not None
    if opened and closed:
        for i in (first, last):
            lines[i] = " " * len(lines[i])
        return "\n".join(lines)
    if opened or re.fullmatch(_BLOCK_OPEN, lines[first]):
        column = lines[first].index("@LD") + 1
        message = f"'@LD begin' opens a block that no 'end' closes: end the text with a line 'end' (line {last + 1} is the last)"
        raise DiagramSyntaxError(
            message, text=excerpt(lines[first].rstrip("\r"), column), line=first + 1, column=column
        )
    if closed:
        column = lines[last].index("end") + 1
        message = (
            "'end' closes a block that no '@LD begin' opened: begin the text with a line '@LD begin', or remove it"
        )
        raise DiagramSyntaxError(message, text=excerpt(lines[last].rstrip("\r"), column), line=last + 1, column=column)
    return text
