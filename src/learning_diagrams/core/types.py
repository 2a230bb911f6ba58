"""Type and shape annotations of spaces, and how values are checked against them.

An annotation is one of:

* ``None`` or ``typing.Any``: any value (the paper's ``Any``);
* a class, e.g. ``torch.Tensor`` or ``int``: ``isinstance``;
* a dtype (``torch.float32``, a NumPy or JAX dtype): an array of that dtype;
* a :class:`TensorType`: an array with a shape pattern and optional dtype;
* a tuple of annotations: a tuple or list of values, one per annotation.

>>> import torch
>>> conforms(torch.zeros(8, 10), (TensorType(None, 10),)) is None      # not a tuple of values
False
>>> conforms((torch.zeros(8, 10), 3), (TensorType(None, 10), int)) is None
True
>>> print(conforms(torch.zeros(8, 3), TensorType(None, 10, dtype=torch.float32)))
Tensor[float32, (8, 3)] does not have shape (*, 10)
>>> describe((torch.zeros(2, 3, dtype=torch.long), "a"))
'(Tensor[int64, (2, 3)], str)'
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .arrays import array_kind, dtype_name, is_array, is_dtype
from .errors import TypeMismatchError

__all__ = ["TensorType", "conforms", "describe", "check_annotation"]


@dataclass(frozen=True, init=False)
class TensorType:
    """An array annotation: a shape pattern (``None`` for any size) and an optional dtype.

    The dtype is any back end's (``torch.float32``, ``numpy.float32``), compared by name,
    so one annotation checks the arrays of every back end.

    >>> import torch
    >>> TensorType(None, 1, 8, 8, dtype=torch.float32)
    TensorType(None, 1, 8, 8, dtype=torch.float32)
    """

    shape: tuple[int | None, ...]
    dtype: Any

    def __init__(self, *shape: int | None, dtype: Any = None):
        object.__setattr__(self, "shape", tuple(shape))
        object.__setattr__(self, "dtype", dtype)

    def __repr__(self) -> str:
        dims = ", ".join(map(repr, self.shape))
        dtype = f", dtype={self.dtype}" if self.dtype is not None else ""
        return f"TensorType({dims}{dtype})"

    def pattern(self) -> str:
        dims = ", ".join("*" if d is None else str(d) for d in self.shape)
        return f"({dims}{',' if len(self.shape) == 1 else ''})"


def check_annotation(annotation: Any, where: str) -> Any:
    """Return ``annotation`` if it is one of the accepted forms, else raise."""
    if annotation is None or annotation is Any or isinstance(annotation, (type, TensorType)) or is_dtype(annotation):
        return annotation
    if isinstance(annotation, tuple):
        for a in annotation:
            check_annotation(a, where)
        return annotation
    raise TypeMismatchError(
        f"{where}: {annotation!r} is not a type annotation; use Any, a class such as torch.Tensor, "
        f"a dtype such as torch.float32, ld.TensorType(None, 10) or a tuple of these"
    )


def conforms(value: Any, annotation: Any) -> str | None:
    """``None`` if ``value`` fits ``annotation``, else the reason it does not."""
    if annotation is None or annotation is Any:
        return None
    if isinstance(annotation, tuple):
        if not isinstance(value, (tuple, list)) or len(value) != len(annotation):
            return f"{describe(value)} is not a tuple of {len(annotation)} values"
        for v, a in zip(value, annotation):
            reason = conforms(v, a)
            if reason:
                return reason
        return None
    if isinstance(annotation, type):
        return None if isinstance(value, annotation) else f"{describe(value)} is not a {annotation.__name__}"
    if not is_array(value):
        return f"{describe(value)} is not a tensor"
    dtype = annotation.dtype if isinstance(annotation, TensorType) else annotation
    if dtype is not None and dtype_name(value.dtype) != dtype_name(dtype):
        return f"{describe(value)} does not have dtype {dtype}"
    if isinstance(annotation, TensorType):
        shape = annotation.shape
        if len(shape) != len(value.shape) or any(d is not None and d != n for d, n in zip(shape, value.shape)):
            return f"{describe(value)} does not have shape {annotation.pattern()}"
    return None


def describe(value: Any) -> str:
    """A short description of a value: dtype and shape for arrays, recursively for tuples."""
    if is_array(value):
        return f"{array_kind(value)}[{dtype_name(value.dtype)}, {tuple(value.shape)}]"
    if isinstance(value, (tuple, list)):
        inner = ", ".join(describe(v) for v in value)
        return f"({inner})" if isinstance(value, tuple) else f"[{inner}]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k!r}: {describe(v)}" for k, v in value.items()) + "}"
    return type(value).__name__
