"""The neutral form both file layouts are read into and written from, and the checks they share.

A :class:`Plan` is a diagram's structure with every object replaced by its name:
ACSet JSON (:mod:`.acset`) and the YAML config form (:mod:`.config`) are two
layouts of it, and :mod:`.binding` turns a diagram into a plan (naming its
objects) and a plan into a diagram (binding the names from an ``env``). Each
row keeps ``at``, which says where in the file it came from, for error messages.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..core.errors import FileFormatError
from ..core.graph import PathLike
from ..core.paths import DEFAULT_MAX_PATHS

__all__ = [
    "FORMAT",
    "OPTION_KEYS",
    "Where",
    "VertexRow",
    "EdgeRow",
    "RelationRow",
    "Plan",
    "check_keys",
    "check_name_or_null",
    "check_boolean",
    "check_weight",
    "read_options",
    "is_int",
    "kind_of",
    "quoted",
]

#: The version tag every file carries under ``"format"``.
FORMAT = "learning-diagrams/1"

OPTION_KEYS = ("max_length", "max_paths")

Where = Callable[["str | None"], str]


@dataclass
class VertexRow:
    name: Any
    data: str | None
    loss: str | None
    type: Any  # a type spec as found in the file, or the annotation's spec when saving
    at: Where = field(repr=False, default=lambda f: "")


@dataclass
class EdgeRow:
    name: Any
    src: Any
    tgt: Any
    fn: str | None
    trainable: bool = True
    training: bool = True
    at: Where = field(repr=False, default=lambda f: "")


@dataclass
class RelationRow:
    first: PathLike
    second: PathLike
    weight: float
    at: Where = field(repr=False, default=lambda f: "")


@dataclass
class Plan:
    vertices: list[VertexRow]
    edges: list[EdgeRow]
    relations: list[RelationRow]
    max_length: int | None = None
    max_paths: int = DEFAULT_MAX_PATHS
    modules: dict[str, Any] = field(default_factory=dict)  # fn name → torch module, when saving


# --- checks shared by both layouts --------------------------------------------------------------


def check_keys(obj: Mapping[str, Any], allowed: Iterable[str], where: str) -> None:
    allowed = tuple(allowed)
    unknown = [k for k in obj if k not in allowed]
    if unknown:
        raise FileFormatError(f"{where}: unknown key(s) {quoted(unknown)} (known: {quoted(allowed)})")


def check_name_or_null(value: Any, where: str) -> None:
    if value is not None and not (isinstance(value, str) and value):
        raise FileFormatError(f"{where}: expected a name (a non-empty string) or null, got {kind_of(value)}")


def check_boolean(value: Any, where: str) -> bool:
    if not isinstance(value, bool):
        raise FileFormatError(f"{where}: expected true or false, got {value!r}")
    return value


def check_weight(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise FileFormatError(f"{where}: a weight is a finite number, got {value!r}")
    return float(value)


def read_options(obj: Any, where: str) -> tuple[int | None, int]:
    if not isinstance(obj, dict):
        raise FileFormatError(f"{where}: expected a mapping with keys {quoted(OPTION_KEYS)}, got {kind_of(obj)}")
    check_keys(obj, OPTION_KEYS, where)
    max_length, max_paths = obj.get("max_length"), obj.get("max_paths", DEFAULT_MAX_PATHS)
    if max_length is not None and (not is_int(max_length) or max_length < 0):
        raise FileFormatError(f"{where}, max_length: expected null or an integer ≥ 0, got {max_length!r}")
    if not is_int(max_paths) or max_paths < 1:
        raise FileFormatError(f"{where}, max_paths: expected an integer ≥ 1, got {max_paths!r}")
    return max_length, max_paths


def is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def kind_of(value: Any) -> str:
    return {dict: "a mapping", list: "a list", str: f"the string {value!r}", type(None): "null"}.get(
        type(value), f"{value!r} (a {type(value).__name__})"
    )


def quoted(items: Iterable[Any]) -> str:
    return ", ".join(map(repr, items))
