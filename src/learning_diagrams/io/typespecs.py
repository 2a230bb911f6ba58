"""Type specs: how a vertex's type annotation is written in a file, and read back.

``"Any"``; a class from the allow-list ``"Tensor"`` (``torch.Tensor``),
``"int"``, ``"float"``, ``"bool"``, ``"complex"``, ``"str"``, ``"bytes"``,
``"list"``, ``"tuple"``, ``"dict"``; ``{"dtype": "float32"}``;
``{"tensor": {"shape": [null, 10], "dtype": "float32" or null}}`` (an
:class:`~learning_diagrams.core.types.TensorType`); ``{"tuple": [spec, ...]}`` (a
plain list reads as a tuple too). Any other class cannot be saved: the error
names the vertex.

>>> import torch
>>> from learning_diagrams.core import TensorType
>>> type_spec(TensorType(None, 3, dtype=torch.float32), "vertex 'Y'")
{'tensor': {'shape': [None, 3], 'dtype': 'float32'}}
>>> type_from({"tuple": ["Tensor", "int"]}, "spaces.Y.type") == (torch.Tensor, int)
True
"""

from __future__ import annotations

from typing import Any

import torch

from ..core.arrays import dtype_name, is_dtype
from ..core.errors import FileFormatError, UnknownNameError
from ..core.messages import did_you_mean
from ..core.types import TensorType
from .limits import MAX_FILE_DEPTH, shown
from .plan import check_keys, is_int

__all__ = ["CLASSES", "type_spec", "type_from"]

#: The classes a type spec may name (the allow-list), in the order error messages list them.
CLASSES: dict[str, Any] = {
    "Any": Any,
    "Tensor": torch.Tensor,
    "int": int,
    "float": float,
    "bool": bool,
    "complex": complex,
    "str": str,
    "bytes": bytes,
    "list": list,
    "tuple": tuple,
    "dict": dict,
}


CLASS_ALIASES: dict[str, Any] = {"torch.Tensor": torch.Tensor, "typing.Any": Any}


DTYPES: dict[str, torch.dtype] = {
    str(v).removeprefix("torch."): v for v in vars(torch).values() if isinstance(v, torch.dtype)
}


def type_spec(annotation: Any, where: str) -> Any:
    if annotation is None:
        return None
    if annotation is Any:
        return "Any"
    if is_dtype(annotation):
        return {"dtype": dtype_name(annotation)}
    if isinstance(annotation, TensorType):
        dtype = None if annotation.dtype is None else dtype_name(annotation.dtype)
        return {"tensor": {"shape": list(annotation.shape), "dtype": dtype}}
    if isinstance(annotation, tuple):
        return {"tuple": [type_spec(a, where) for a in annotation]}
    for name, cls in CLASSES.items():
        if annotation is cls:
            return name
    shown = getattr(annotation, "__qualname__", repr(annotation))
    raise FileFormatError(
        f"{where}: its type {shown} cannot be written to a file; a type there is Any, a torch dtype, "
        f"ld.TensorType(...), a tuple of these, or one of the classes {', '.join(list(CLASSES)[1:])}"
    )


def type_from(spec: Any, where: str, depth: int = 0) -> Any:
    if depth > MAX_FILE_DEPTH:  # a file is refused before; an object given to from_json may not be
        raise FileFormatError(f"{where}: a type spec nested more than {MAX_FILE_DEPTH} levels deep")
    if spec is None:
        return None
    if isinstance(spec, str):
        if spec in CLASSES:
            return CLASSES[spec]
        if spec in CLASS_ALIASES:
            return CLASS_ALIASES[spec]
        raise UnknownNameError(
            f"{where}: unknown type {shown(spec)}{did_you_mean(spec, CLASSES)}; "
            f"a type name is one of {', '.join(CLASSES)}"
        )
    if isinstance(spec, list):
        return tuple(type_from(s, f"{where}[{k}]", depth + 1) for k, s in enumerate(spec))
    if isinstance(spec, dict) and len(spec) == 1:
        ((key, value),) = spec.items()
        if key == "tuple" and isinstance(value, list):
            return tuple(type_from(s, f"{where}.tuple[{k}]", depth + 1) for k, s in enumerate(value))
        if key == "dtype":
            return _dtype_from(value, f"{where}.dtype")
        if key == "tensor" and isinstance(value, dict):
            check_keys(value, ("shape", "dtype"), f"{where}.tensor")
            shape = value.get("shape")
            if not isinstance(shape, list) or not all(d is None or (is_int(d) and d >= 0) for d in shape):
                raise FileFormatError(f"{where}.tensor.shape: expected a list of sizes or nulls, got {shown(shape)}")
            dtype = value.get("dtype")
            return TensorType(*shape, dtype=None if dtype is None else _dtype_from(dtype, f"{where}.tensor.dtype"))
    raise FileFormatError(
        f"{where}: {shown(spec)} is not a type spec; write 'Any', 'Tensor', a class name ({', '.join(list(CLASSES)[2:])}), "
        "{'dtype': 'float32'}, {'tensor': {'shape': [null, 10], 'dtype': 'float32'}} or {'tuple': [...]}"
    )


def _dtype_from(name: Any, where: str) -> torch.dtype:
    if isinstance(name, str) and name.removeprefix("torch.") in DTYPES:
        return DTYPES[name.removeprefix("torch.")]
    close = did_you_mean(name, DTYPES) if isinstance(name, str) else ""
    raise UnknownNameError(f"{where}: no torch dtype named {shown(name)}{close}")
