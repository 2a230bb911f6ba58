"""Reading the options of homomorphism search: ``monic``, ``epic``, ``iso``, ``initial``, ``where``, and counts.

Each function checks one option and returns it in the form the search uses;
anything that cannot be read raises an error that names the option and says
what it accepts.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ...core.diagram import Diagram
from ...core.errors import SearchOptionError, TypeMismatchError, UnknownNameError
from .predicates import Predicate

__all__ = [
    "parts_option",
    "monic_option",
    "injective_and_surjective",
    "count_option",
    "by_kind",
    "image_index",
    "predicates",
]


def parts_option(value: Any, name: str) -> tuple[bool, bool]:
    """Whether an option that names parts (``monic``, ``epic``, ``iso``) holds for vertices, and for edges.

    >>> parts_option(True, "epic"), parts_option(["V"], "iso"), parts_option("E", "monic")
    ((True, True), (True, False), (False, True))
    """
    if value is None or value is False:
        return False, False
    if value is True:
        return True, True
    parts = list(value) if isinstance(value, (str, list, tuple, set, frozenset)) else None
    if parts is None or not all(p in ("V", "E") for p in parts):
        raise SearchOptionError(
            f"{name}={value!r} cannot be read: give True, False, 'V', 'E', 'VE', ['V'], ['E'] or ['V', 'E']"
        )
    return "V" in parts, "E" in parts


def monic_option(monic: Any) -> tuple[bool, bool]:
    """``monic=`` as (on vertices, on edges): see :func:`parts_option`."""
    return parts_option(monic, "monic")


def injective_and_surjective(monic: Any, epic: Any, iso: Any) -> tuple[tuple[bool, bool], tuple[bool, bool]]:
    """``monic``, ``epic`` and ``iso`` read together: (injective on V, on E), (surjective on V, on E).

    ``iso`` on a part is ``monic`` and ``epic`` on it, as in Catlab.

    >>> injective_and_surjective(False, "V", ["E"])
    ((False, True), (True, True))
    """
    (mv, me), (ev, ee), (iv, ie) = parts_option(monic, "monic"), parts_option(epic, "epic"), parts_option(iso, "iso")
    return (mv or iv, me or ie), (ev or iv, ee or ie)


def count_option(value: Any, name: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise SearchOptionError(f"{name}={value!r} is not a count: give a whole number ≥ 0, or None")
    return value


def by_kind(spec: Any, pattern: Diagram, option: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Split ``{name: value}`` or ``{"V": {...}, "E": {...}}`` into vertex and edge parts."""
    if spec is None:
        return {}, {}
    if not isinstance(spec, Mapping):
        raise TypeMismatchError(
            f"{option}= must be a dict by pattern part name (or {{'V': {{...}}, 'E': {{...}}}}), "
            f"got a {type(spec).__name__}"
        )
    g = pattern.graph
    unknown: list[str] = []
    if spec and set(spec) <= {"V", "E"} and all(isinstance(x, Mapping) for x in spec.values()):
        vertices, edges = dict(spec.get("V", {})), dict(spec.get("E", {}))
        unknown += [f"vertex {n!r}" for n in vertices if not g.has_vertex(n)]
        unknown += [f"edge {n!r}" for n in edges if not g.has_edge(n)]
    else:
        vertices, edges = {}, {}
        both = [n for n in spec if g.has_vertex(n) and g.has_edge(n)]
        if both:
            listed = ", ".join(map(repr, both))
            raise SearchOptionError(
                f"{option}= names {listed}, which the pattern has both as a vertex and as an edge; "
                f"say which: {option}={{'V': {{...}}, 'E': {{...}}}}"
            )
        for name, value in spec.items():
            if g.has_vertex(name):
                vertices[name] = value
            elif g.has_edge(name):
                edges[name] = value
            else:
                unknown.append(repr(name))
    if unknown:
        raise UnknownNameError(
            f"{option}= names {', '.join(unknown)}, which the pattern does not have "
            f"(vertices: {', '.join(g.vertices) or 'none'}; edges: {', '.join(g.edges) or 'none'})"
        )
    return vertices, edges


def image_index(part: str, image: Any, index: Mapping[str, int], kind: str, names: list[str]) -> int:
    if not isinstance(image, str) or image not in index:
        raise UnknownNameError(
            f"initial= sends {kind} {part!r} to {image!r}, which is no {kind} of the diagram "
            f"({'vertices' if kind == 'vertex' else 'edges'}: {', '.join(names) or 'none'})"
        )
    return index[image]


def predicates(part: str, value: Any, kind: str) -> tuple[Predicate, ...]:
    predicates = tuple(value) if isinstance(value, (list, tuple)) else (value,)
    for f in predicates:
        if not callable(f):
            raise TypeMismatchError(
                f"where= gives {kind} {part!r} a {type(f).__name__}, which is not a predicate: "
                f"give a function of the diagram's {'Space' if kind == 'vertex' else 'Map'} returning a bool"
            )
    return predicates
