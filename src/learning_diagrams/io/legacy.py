"""The first JSON layout, ``learning-diagrams/1``: read, so that files saved before keep loading.

Files saved before the current ACSet layout (:mod:`.acset`) carry a top-level
``"format": "learning-diagrams/1"`` and five more keys; :func:`~.files.load`
reads them as before, and :func:`~.files.save` writes the current layout. The
layout, kept here for the record:

``format``
    ``"learning-diagrams/1"``.
``V`` (vertices, in declaration order)
    ``{"_id", "name", "data", "loss", "type"}``: ``data`` and ``loss`` are
    names (or ``null``), ``type`` a type spec (or ``null``).
``E`` (edges, in declaration order)
    ``{"_id", "src", "tgt", "name", "fn", "trainable", "training"}``: ``src``
    and ``tgt`` are ``V`` ids; ``fn`` is a name, or ``null``.
``R`` (relations ``first ≤ second``)
    ``{"_id", "src", "tgt", "first", "second", "weight"}``: ``first`` and
    ``second`` are lists of ``E`` ids, in composition order (``[]``: the
    identity of ``src``).
``options``
    ``{"max_length": int or null, "max_paths": int}``.
``weights`` (added later; a file without it takes its weights from ``<stem>.safetensors``)
    ``null``, or ``{"file": "<stem>.<sha12>.safetensors", "sha256": "<64 hex digits>"}``.

Reading is strict: a missing or unknown key, an ``_id`` that is not the row's
position, a foreign key out of range or a path that does not run from ``src``
to ``tgt`` raises :class:`~learning_diagrams.core.errors.FileFormatError`
naming the table, row and field.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from ..core.errors import FileFormatError
from ..core.graph import Path
from .limits import shown
from .plan import (
    FORMAT,
    EdgeRow,
    Plan,
    RelationRow,
    VertexRow,
    Where,
    check_boolean,
    check_keys,
    check_name,
    check_name_or_null,
    check_weight,
    is_int,
    kind_of,
    quoted,
    read_options,
    read_weights_entry,
)

__all__ = ["plan_from_legacy", "ACSET_FORMAT"]

#: The version the current ACSet layout writes in table ``Diagram`` (named in messages here).
ACSET_FORMAT = "learning-diagrams/2"

V_FIELDS = ("_id", "name", "data", "loss", "type")
E_FIELDS = ("_id", "src", "tgt", "name", "fn", "trainable", "training")
R_FIELDS = ("_id", "src", "tgt", "first", "second", "weight")
JSON_KEYS = ("format", "V", "E", "R", "options", "weights")


def plan_from_legacy(obj: dict[str, Any]) -> Plan:
    """The plan of a file in the first layout (its top-level ``\"format\"`` is ``learning-diagrams/1``)."""
    if obj["format"] != FORMAT:
        raise FileFormatError(
            f"'format' is {shown(obj['format'])}, but this version reads {FORMAT!r} there "
            f"(and {ACSET_FORMAT!r} in the 'format' column of table Diagram)"
        )
    check_keys(obj, JSON_KEYS, "the top level")
    for table in ("V", "E"):
        if table not in obj:
            raise FileFormatError(f"no table {table!r}: an ACSet JSON diagram has tables V and E")
    vertices = []
    for i, row in _rows(obj, "V", V_FIELDS):
        name = row["name"]
        at = _row_at("V", i, "vertex", name)
        check_name(name, at("name"))
        for key in ("data", "loss"):
            check_name_or_null(row[key], at(key))
        vertices.append(VertexRow(name, row["data"], row["loss"], row["type"], at))
    names = [v.name for v in vertices]
    edges, ends = [], []
    for i, row in _rows(obj, "E", E_FIELDS):
        at = _row_at("E", i, "edge", row["name"])
        check_name(row["name"], at("name"))
        src, tgt = (names[_foreign(row[k], "V", len(names), at(k)) - 1] for k in ("src", "tgt"))
        check_name_or_null(row["fn"], at("fn"))
        trainable, training = (check_boolean(row[k], at(k)) for k in ("trainable", "training"))
        edges.append(EdgeRow(row["name"], src, tgt, row["fn"], trainable, training, at=at))
        ends.append((src, tgt))
    relations = []
    for i, row in _rows(obj, "R", R_FIELDS):
        at = _row_at("R", i, "relation")
        src, tgt = (names[_foreign(row[k], "V", len(names), at(k)) - 1] for k in ("src", "tgt"))
        first, second = (_json_path(row[k], src, tgt, edges, ends, at(k)) for k in ("first", "second"))
        relations.append(RelationRow(first, second, check_weight(row["weight"], at("weight")), at))
    max_length, max_paths, cycles = read_options(obj.get("options", {}), "'options'")
    plan = Plan(vertices, edges, relations, max_length, max_paths, cycles=cycles)
    if "weights" in obj:
        plan.weights = read_weights_entry(obj["weights"], "'weights'")
    else:
        plan.weights_recorded = False
    return plan


def _rows(obj: dict[str, Any], table: str, fields: tuple[str, ...]) -> Iterator[tuple[int, dict[str, Any]]]:
    rows = obj.get(table, [])
    if not isinstance(rows, list):
        raise FileFormatError(f"table {table}: expected a list of rows, got {kind_of(rows)}")
    for position, row in enumerate(rows, 1):
        where = f"table {table}, row {position}"
        if not isinstance(row, dict):
            raise FileFormatError(f"{where}: expected an object, got {kind_of(row)}")
        missing = [f for f in fields if f not in row]
        if missing:
            raise FileFormatError(f"{where}: missing {quoted(missing)} (a {table} row has {quoted(fields)})")
        check_keys(row, fields, where)
        _id = row["_id"]
        if not is_int(_id) or _id != position:
            raise FileFormatError(
                f"{where}: '_id' is {shown(_id)}, but ids are 1-based and follow the row order: this row is {position}"
            )
        yield position, row


def _row_at(table: str, i: int, what: str, name: Any = None) -> Where:
    """Where a row's field is, for messages; built when a message needs it, the name shown bounded."""

    def at(key: str | None) -> str:
        label = what if name is None else f"{what} {shown(name)}"
        row = f"table {table}, _id {i} ({label})"
        return row if key is None else f"{row}, field {key!r}"

    return at


def _foreign(value: Any, table: str, size: int, where: str) -> int:
    if not is_int(value) or not 1 <= value <= size:
        span = f"ids 1 to {size}" if size else "no rows"
        raise FileFormatError(f"{where}: {shown(value)} is not an id of table {table} (it has {span})")
    return value


def _json_path(value: Any, src: str, tgt: str, edges: list[EdgeRow], ends: list[tuple[str, str]], where: str) -> Path:
    if not isinstance(value, list):
        raise FileFormatError(f"{where}: a path is a list of E ids ([] for the identity of src), got {kind_of(value)}")
    ids = [_foreign(v, "E", len(edges), f"{where}[{k}]") for k, v in enumerate(value)]
    at = src
    for k, i in enumerate(ids):
        s, t = ends[i - 1]
        if s != at:
            raise FileFormatError(
                f"{where}: the path does not run from src: E id {i} (edge {shown(edges[i - 1].name)}) at "
                f"position {k} starts at {shown(s)}, not {shown(at)}"
            )
        at = t
    if at != tgt:
        which = "the identity path (an empty list) needs src == tgt" if not ids else f"the path ends at {shown(at)}"
        raise FileFormatError(f"{where}: {which}, but the relation's tgt is {shown(tgt)}")
    return Path(src, tgt, tuple(edges[i - 1].name for i in ids))
