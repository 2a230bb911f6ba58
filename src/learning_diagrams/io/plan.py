"""The neutral form both file layouts are read into and written from, and the checks they share.

A :class:`Plan` is a diagram's structure with every object replaced by its name:
ACSet JSON (:mod:`.acset`; plain Catlab graphs, :mod:`.catlab`; the first
layout, :mod:`.legacy`) and the YAML config form (:mod:`.config`) are layouts
of it, and :mod:`.binding` turns a diagram into a plan (naming its objects) and
a plan into a diagram (binding the names from an ``env``). Each row keeps
``at``, which says where in the file it came from, for error messages.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..core.errors import FileFormatError
from ..core.graph import PathLike
from ..core.diagram import CYCLES
from ..core.paths import DEFAULT_MAX_PATHS
from .limits import shown

__all__ = [
    "FORMAT",
    "OPTION_KEYS",
    "Where",
    "VertexRow",
    "EdgeRow",
    "RelationRow",
    "Plan",
    "WeightsEntry",
    "WEIGHTS_KEYS",
    "read_weights_entry",
    "check_weights_file",
    "check_sha256",
    "weights_entry_of",
    "check_keys",
    "check_name",
    "check_name_or_null",
    "check_boolean",
    "check_weight",
    "read_options",
    "check_max_length",
    "check_max_paths",
    "check_cycles",
    "is_int",
    "kind_of",
    "quoted",
]

#: The version tag of the YAML config form (``format:``) and of the first JSON layout (:mod:`.legacy`).
FORMAT = "learning-diagrams/1"

OPTION_KEYS = ("max_length", "max_paths", "cycles")

#: The keys of a diagram file's ``weights`` entry.
WEIGHTS_KEYS = ("file", "sha256")

Where = Callable[["str | None"], str]


@dataclass
class VertexRow:
    name: Any
    data: str | None
    loss: str | None
    type: Any  # a type spec as found in the file, or the annotation's spec when saving
    at: Where = field(repr=False, default=lambda f: "")
    indexing: bool = False  # an indexing vertex, with or without its data


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


@dataclass(frozen=True)
class WeightsEntry:
    """The weights file a diagram file names (a file name in its folder), and the SHA-256 of its bytes."""

    file: str
    sha256: str


@dataclass
class Plan:
    vertices: list[VertexRow]
    edges: list[EdgeRow]
    relations: list[RelationRow]
    max_length: int | None = None
    max_paths: int = DEFAULT_MAX_PATHS
    modules: dict[str, Any] = field(default_factory=dict)  # fn name → torch module, when saving
    weights: WeightsEntry | None = None  # the weights file the diagram file names
    weights_recorded: bool = True  # False for a file written before files named their weights
    cycles: str = "simple"  # how path enumeration treats cycles (core.diagram.CYCLES)
    metadata: dict[str, Any] = field(default_factory=dict)  # what a Catlab graph file holds beyond a graph


# --- checks shared by both layouts --------------------------------------------------------------


def check_keys(obj: Mapping[str, Any], allowed: Iterable[str], where: str) -> None:
    allowed = tuple(allowed)
    unknown = [k for k in obj if k not in allowed]
    if unknown:
        raise FileFormatError(f"{where}: unknown key(s) {quoted(unknown)} (known: {quoted(allowed)})")


def check_name(value: Any, where: str) -> None:
    if not (isinstance(value, str) and value):
        raise FileFormatError(f"{where}: expected a name (a non-empty string), got {kind_of(value)}")


def check_name_or_null(value: Any, where: str) -> None:
    if value is not None and not (isinstance(value, str) and value):
        raise FileFormatError(f"{where}: expected a name (a non-empty string) or null, got {kind_of(value)}")


def check_boolean(value: Any, where: str) -> bool:
    if not isinstance(value, bool):
        raise FileFormatError(f"{where}: expected true or false, got {shown(value)}")
    return value


def check_weight(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not _finite(value):
        raise FileFormatError(f"{where}: a weight is a finite number, got {shown(value)}")
    return float(value)


def _finite(value: int | float) -> bool:
    try:
        return math.isfinite(value)
    except OverflowError:  # an integer too large for a float
        return False


def read_options(obj: Any, where: str) -> tuple[int | None, int, str]:
    """``max_length``, ``max_paths`` and ``cycles`` from a mapping of options, each checked."""
    if not isinstance(obj, dict):
        raise FileFormatError(f"{where}: expected a mapping with keys {quoted(OPTION_KEYS)}, got {kind_of(obj)}")
    check_keys(obj, OPTION_KEYS, where)
    return (
        check_max_length(obj.get("max_length"), f"{where}, max_length"),
        check_max_paths(obj.get("max_paths", DEFAULT_MAX_PATHS), f"{where}, max_paths"),
        check_cycles(obj.get("cycles", "simple"), f"{where}, cycles"),
    )


def check_max_length(value: Any, where: str) -> int | None:
    if value is not None and (not is_int(value) or value < 0):
        raise FileFormatError(f"{where}: expected null or an integer ≥ 0, got {shown(value)}")
    return value


def check_max_paths(value: Any, where: str) -> int:
    if not is_int(value) or value < 1:
        raise FileFormatError(f"{where}: expected an integer ≥ 1, got {shown(value)}")
    return value


def check_cycles(value: Any, where: str) -> str:
    if value not in CYCLES:
        raise FileFormatError(f"{where}: expected {' or '.join(map(repr, CYCLES))}, got {kind_of(value)}")
    return str(value)


# A file name in the diagram's folder: no folder part, not hidden, a .safetensors file.
_WEIGHTS_FILE = re.compile(r"[^/\\:\x00-\x1f.][^/\\:\x00-\x1f]{0,240}\.safetensors")
_SHA256 = re.compile(r"[0-9a-f]{64}")


def read_weights_entry(value: Any, where: str) -> WeightsEntry | None:
    """The ``weights`` entry of a diagram file: ``null``, or ``{file, sha256}`` checked strictly.

    The file must be a plain name (no folder part), so a diagram file can only
    name weights beside itself.
    """
    if value is None:
        return None
    if not isinstance(value, dict):
        raise FileFormatError(
            f"{where}: expected null or a mapping {{file: <name>.safetensors, sha256: <64 hex digits>}}, "
            f"got {kind_of(value)}"
        )
    check_keys(value, WEIGHTS_KEYS, where)
    for key in WEIGHTS_KEYS:
        if key not in value:
            raise FileFormatError(f"{where}: missing {key!r} (the weights entry has {quoted(WEIGHTS_KEYS)})")
    return WeightsEntry(
        check_weights_file(value["file"], f"{where}, file"), check_sha256(value["sha256"], f"{where}, sha256")
    )


def check_weights_file(file: Any, where: str) -> str:
    """A weights file's name: a plain name (no folder part) of a ``.safetensors`` file."""
    if not isinstance(file, str) or not _WEIGHTS_FILE.fullmatch(file):
        raise FileFormatError(
            f"{where}: expected the name of a .safetensors file beside the diagram file "
            f"(no folder part), got {kind_of(file)}"
        )
    return file


def check_sha256(digest: Any, where: str) -> str:
    if not isinstance(digest, str) or not _SHA256.fullmatch(digest):
        raise FileFormatError(f"{where}: expected 64 lowercase hexadecimal digits, got {kind_of(digest)}")
    return digest


def weights_entry_of(entry: WeightsEntry | None) -> dict[str, str] | None:
    """The ``weights`` entry as written in a file."""
    return None if entry is None else {"file": entry.file, "sha256": entry.sha256}


def is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def kind_of(value: Any) -> str:
    """What ``value`` is, for an error message: bounded, whatever its size (see :func:`.limits.shown`)."""
    kind = type(value)
    if kind is dict:
        return "a mapping"
    if kind is list:
        return "a list"
    if value is None:
        return "null"
    if kind is str:
        return f"the string {shown(value)}"
    return f"{shown(value)} (a {kind.__name__})"


def quoted(items: Iterable[Any], at_most: int = 20) -> str:
    """``'a', 'b', 'c'``, each shown bounded, and at most ``at_most`` of them."""
    items = list(items)
    listed = ", ".join(shown(item) for item in items[:at_most])
    return listed if len(items) <= at_most else f"{listed} and {len(items) - at_most} more"
