"""ACSet JSON (``.json``): a diagram's plan as Catlab.jl's ``generate_json_acset`` lays out a C-set.

The layout of Catlab.jl's ``generate_json_acset``: one key per table, each an
array of rows whose ids are 1-based, given by position and repeated in an
explicit ``"_id"``; a foreign key (``src``, ``tgt``) holds the id of a row of
another table. The tables are those of the schema of graphs, ``V`` and ``E``,
with the diagram's attributes, plus three keys of our own:

``format``
    ``"learning-diagrams/1"``, the version of this layout; any other value is refused.
``V`` (vertices, in declaration order)
    ``{"_id", "name", "data", "loss", "type"}``: ``data`` and ``loss`` are
    names (or ``null``), ``type`` a type spec (below, or ``null``).
``E`` (edges, in declaration order)
    ``{"_id", "src", "tgt", "name", "fn", "trainable", "training"}``: ``src``
    and ``tgt`` are ``V`` ids; ``fn`` is a name, or ``null`` for an edge with
    no function (a wildcard in a pattern diagram).
``R`` (relations ``first ≤ second``, in declaration order)
    ``{"_id", "src", "tgt", "first", "second", "weight"}``. A relation is
    between *parallel* paths, so one ``src`` and one ``tgt`` (``V`` ids, as
    for an edge) serve both sides; ``first`` and ``second`` are the paths'
    lists of ``E`` ids, in composition order. The empty list is the identity
    path of ``src`` (then ``src == tgt``): ``id(X)`` needs no special case.
``options``
    ``{"max_length": int or null, "max_paths": int}``, the diagram's options.
``weights``
    ``null``, or ``{"file": "<stem>.<sha12>.safetensors", "sha256": "<64 hex digits>"}``:
    the weights file saved with the diagram (beside it) and the SHA-256 of its
    bytes, checked when the weights are loaded (:mod:`.files`). A file without
    this key (written before it existed) still loads, its weights from
    ``<stem>.safetensors`` when that exists.

Every key is written, in this order, with ``indent=2``; reading is as strict:
a missing or unknown key, an ``_id`` that is not the row's position, a
foreign key out of range or a path that does not run from ``src`` to ``tgt``
raises :class:`~learning_diagrams.core.errors.FileFormatError` naming the
table, row and field. A tiny diagram's tables:

>>> import learning_diagrams as ld
>>> from learning_diagrams.io.binding import plan_of
>>> tiny = (ld.Diagram().space("X", data=[1.0]).space("Y", loss=ld.losses.l1, type=ld.TensorType(None, 3))
...         .map("f", "X", "Y", abs).map("g", "X", "Y", None).relate("f", "g", weight=0.5))
>>> obj = json_of(plan_of(tiny, None))
>>> list(obj), obj["V"][1]
(['format', 'V', 'E', 'R', 'options', 'weights'], {'_id': 2, 'name': 'Y', 'data': None, 'loss': 'l1', 'type': {'tensor': {'shape': [None, 3], 'dtype': None}}})
>>> obj["E"][1], obj["R"]
({'_id': 2, 'src': 1, 'tgt': 2, 'name': 'g', 'fn': None, 'trainable': True, 'training': True}, [{'_id': 1, 'src': 1, 'tgt': 2, 'first': [1], 'second': [2], 'weight': 0.5}])

JSON is read with :mod:`json` (a duplicate key or a ``NaN`` is refused, and
so is nesting deeper than :data:`~.limits.MAX_FILE_DEPTH`, found by a scan
before parsing); every string in it is a *name*, bound by :mod:`.binding`,
never evaluated.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from ..core.errors import FileFormatError
from ..core.graph import Path
from .limits import check_json_depth, shown
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
    weights_entry_of,
)

__all__ = ["json_of", "plan_from_json", "read_json"]

V_FIELDS = ("_id", "name", "data", "loss", "type")


E_FIELDS = ("_id", "src", "tgt", "name", "fn", "trainable", "training")


R_FIELDS = ("_id", "src", "tgt", "first", "second", "weight")


JSON_KEYS = ("format", "V", "E", "R", "options", "weights")


def json_of(plan: Plan) -> dict[str, Any]:
    vid = {v.name: i for i, v in enumerate(plan.vertices, 1)}
    eid = {e.name: i for i, e in enumerate(plan.edges, 1)}
    return {
        "format": FORMAT,
        "V": [
            {"_id": vid[v.name], "name": v.name, "data": v.data, "loss": v.loss, "type": v.type} for v in plan.vertices
        ],
        "E": [
            {
                "_id": eid[e.name],
                "src": vid[e.src],
                "tgt": vid[e.tgt],
                "name": e.name,
                "fn": e.fn,
                "trainable": e.trainable,
                "training": e.training,
            }
            for e in plan.edges
        ],
        "R": [_relation_json(i, r, vid, eid) for i, r in enumerate(plan.relations, 1)],
        "options": {"max_length": plan.max_length, "max_paths": plan.max_paths},
        "weights": weights_entry_of(plan.weights),
    }


def _relation_json(i: int, r: RelationRow, vid: dict[str, int], eid: dict[str, int]) -> dict[str, Any]:
    first, second = r.first, r.second
    assert isinstance(first, Path) and isinstance(second, Path), "a plan made from a diagram holds its paths"
    return {
        "_id": i,
        "src": vid[first.source],
        "tgt": vid[first.target],
        "first": [eid[e] for e in first.edges],
        "second": [eid[e] for e in second.edges],
        "weight": r.weight,
    }


def read_json(text: str) -> Any:
    """The plain data of a JSON text; a duplicate key, ``NaN``, too deep nesting or bad JSON raises
    :class:`FileFormatError`."""

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in items:
            if key in out:
                raise FileFormatError(f"duplicate key {shown(key)}")
            out[key] = value
        return out

    def constant(name: str) -> Any:
        raise FileFormatError(f"{name} is not a JSON number")

    check_json_depth(text)
    try:
        return json.loads(text, object_pairs_hook=pairs, parse_constant=constant)
    except FileFormatError:
        raise
    except json.JSONDecodeError as err:
        raise FileFormatError(f"not valid JSON: {err}") from err
    except ValueError as err:  # an integer of more digits than Python converts (4,300)
        raise FileFormatError(f"not valid JSON: a number cannot be read: {shown(str(err), 200)}") from err
    except RecursionError as err:  # pragma: no cover - check_json_depth refuses such nesting first
        raise FileFormatError("not valid JSON: nested too deep") from err


def plan_from_json(obj: Any) -> Plan:
    if not isinstance(obj, dict):
        raise FileFormatError(f"an ACSet JSON diagram is an object with tables V and E, got {kind_of(obj)}")
    if "format" not in obj:
        raise FileFormatError(f"no 'format' key: a learning-diagrams file has \"format\": {FORMAT!r}")
    if obj["format"] != FORMAT:
        raise FileFormatError(f"'format' is {shown(obj['format'])}, but this version reads {FORMAT!r}")
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
    max_length, max_paths = read_options(obj.get("options", {}), "'options'")
    plan = Plan(vertices, edges, relations, max_length, max_paths)
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
