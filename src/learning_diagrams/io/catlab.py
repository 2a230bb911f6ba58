"""Catlab's ACSet JSON as found in the wild: its tables read, and a plain graph read as a skeleton.

Catlab.jl (ACSets.jl's ``generate_json_acset``, and Catlab before it) writes an
ACSet as one JSON object with a key per table: first a table per object of
the schema, then one per attribute type. A table is a list of rows; a row is
an object with an ``"_id"`` (its 1-based position; Catlab 0.14 and earlier
wrote none), a column per morphism out of the object (a foreign
key: the ``_id`` of a row of the codomain's table) and a column per attribute.
An attribute that is set holds its value; one that is not holds an attribute
variable, ``{"_var": n}``, the ``n``-th row of its attribute type's table,
whose rows hold an ``"_id"`` alone. Column names are unique across the whole
schema, which is how a reader knows a column's table. ``null`` is not Catlab's,
but the Python ``acsets`` package writes it for an unset attribute, so it is
read as unset too.

:func:`plan_from_graph` reads a file of Catlab's schema of graphs (``V``,
``E``, ``src``, ``tgt``, any extra attributes) into a diagram *skeleton*:
every vertex a space and every edge a map with no function, data, loss or
type, so it loads without an ``env``. Names come from a name attribute when
one names every row of its table (distinct identifiers), else vertices are
``V1``, ``V2``, ... and edges ``E1``, ``E2``, ... by id. Every other attribute
is kept as metadata (:func:`learning_diagrams.io.metadata`): per part, its
columns and their values as found (an attribute variable as ``{"_var": n}``),
and the other tables' sizes.

>>> plan = plan_from_graph({"V": [{"vlabel": "x"}, {"vlabel": "y"}],
...                         "E": [{"src": 1, "tgt": 2, "weight": 0.5}], "Weight": []})
>>> [v.name for v in plan.vertices], [(e.name, e.src, e.tgt) for e in plan.edges]
(['x', 'y'], [('E1', 'x', 'y')])
>>> plan.metadata
{'V': {}, 'E': {'E1': {'weight': 0.5}}, 'tables': {'Weight': 0}}
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from ..core.errors import FileFormatError
from .limits import shown
from .plan import EdgeRow, Plan, VertexRow, Where, is_int, kind_of, quoted

__all__ = [
    "VERTEX_NAMES",
    "EDGE_NAMES",
    "is_var",
    "is_unset",
    "table_rows",
    "id_only_table",
    "foreign",
    "row_at",
    "plan_from_graph",
]

#: The attributes a vertex's name is taken from, in order of preference (ours, Catlab's labelled graphs, common ones).
VERTEX_NAMES = ("vname", "vlabel", "label", "name")
#: The attributes an edge's name is taken from, in order of preference.
EDGE_NAMES = ("ename", "elabel", "label", "name")


def is_var(value: Any) -> bool:
    """Whether ``value`` is Catlab's attribute variable ``{"_var": n}`` (``n`` an integer ≥ 1)."""
    return type(value) is dict and len(value) == 1 and is_int(value.get("_var")) and value["_var"] >= 1


def is_unset(value: Any, where: str, variables: int | None = None) -> bool:
    """Whether an attribute's value is unset: ``null``, or an attribute variable.

    ``variables`` is the number of rows of the attribute type's table, when the
    file has it: a variable past it is refused. A mapping with a ``"_var"`` key
    that is no variable is refused too (Catlab would read it as one).
    """
    if value is None:
        return True
    if type(value) is dict and "_var" in value:
        if not is_var(value):
            raise FileFormatError(f'{where}: an attribute variable is {{"_var": n}}, n ≥ 1; got {shown(value)}')
        if variables is not None and value["_var"] > variables:
            raise FileFormatError(
                f"{where}: {shown(value)} is no row of its attribute type's table (it has {variables} rows)"
            )
        return True
    return False


def table_rows(obj: Mapping[str, Any], table: str) -> list[dict[str, Any]]:
    """The rows of ``table`` (none when it is absent), each checked to be an object whose ``_id``, if any,
    is its 1-based position."""
    rows = obj.get(table, [])
    if not isinstance(rows, list):
        raise FileFormatError(f"table {table}: expected a list of rows, got {kind_of(rows)}")
    for position, row in enumerate(rows, 1):
        if not isinstance(row, dict):
            raise FileFormatError(f"table {table}, row {position}: expected an object, got {kind_of(row)}")
        if "_id" in row and (not is_int(row["_id"]) or row["_id"] != position):
            raise FileFormatError(
                f"table {table}, row {position}: '_id' is {shown(row['_id'])}, but ids are 1-based and follow "
                f"the row order: this row is {position}"
            )
    return rows


def id_only_table(obj: Mapping[str, Any], table: str, what: str) -> int:
    """The number of rows of a table whose rows hold an ``_id`` at most (an attribute type's variables)."""
    rows = table_rows(obj, table)
    for position, row in enumerate(rows, 1):
        columns = [k for k in row if k != "_id"]
        if columns:
            raise FileFormatError(
                f"table {table}, row {position}: has column(s) {quoted(columns)}, but {what} has rows of an '_id' alone"
            )
    return len(rows)


def foreign(value: Any, table: str, size: int, where: str) -> int:
    """A foreign key into ``table`` (``size`` rows), checked: an id from 1 to ``size``."""
    if not is_int(value) or not 1 <= value <= size:
        span = f"ids 1 to {size}" if size else "no rows"
        raise FileFormatError(f"{where}: {shown(value)} is not an id of table {table} (it has {span})")
    return value


def row_at(table: str, i: int, what: str, name: Any = None) -> Where:
    """Where a row's field is, for messages: built when a message needs it, the name shown bounded."""

    def at(key: str | None) -> str:
        label = what if name is None else f"{what} {shown(name)}"
        row = f"table {table}, _id {i} ({label})"
        return row if key is None else f"{row}, field {key!r}"

    return at


def plan_from_graph(obj: dict[str, Any]) -> Plan:
    """The skeleton of a Catlab ACSet of the schema of graphs (see the module docstring).

    Raises
    ------
    FileFormatError
        For a file without tables ``V`` and ``E``, an edge without ``src`` or
        ``tgt`` (or one out of range), a malformed ``_id`` or attribute
        variable, or another table whose rows hold more than an ``_id`` (a
        table of another schema, which a graph has not).
    """
    for table in ("V", "E"):
        if table not in obj:
            raise FileFormatError(
                f"no table {table!r}: a Catlab graph has tables V and E (and this is no learning-diagrams "
                f"file: that has a table 'Diagram', or, in the first layout, a top-level 'format')"
            )
    vertex_rows, edge_rows = table_rows(obj, "V"), table_rows(obj, "E")
    tables = {}
    for table in obj:
        if table not in ("V", "E"):
            tables[table] = id_only_table(obj, table, "a graph's table besides V and E (an attribute type's)")
    vertex_names, vertex_key = _names(vertex_rows, VERTEX_NAMES, "V")
    vertices, metadata_v = [], {}
    for i, (row, name) in enumerate(zip(vertex_rows, vertex_names), 1):
        at = row_at("V", i, "vertex", name)
        vertices.append(VertexRow(name, None, None, None, at))
        extra = _extra(row, {"_id", vertex_key}, at)
        if extra:
            metadata_v[name] = extra
    edge_names, edge_key = _names(edge_rows, EDGE_NAMES, "E")
    edges, metadata_e = [], {}
    for i, (row, name) in enumerate(zip(edge_rows, edge_names), 1):
        at = row_at("E", i, "edge", name)
        for key in ("src", "tgt"):
            if key not in row:
                raise FileFormatError(f"{at(None)}: no {key!r} (an edge of a graph has a src and a tgt, ids of V rows)")
        src, tgt = (vertex_names[foreign(row[k], "V", len(vertex_rows), at(k)) - 1] for k in ("src", "tgt"))
        edges.append(EdgeRow(name, src, tgt, None, at=at))
        extra = _extra(row, {"_id", "src", "tgt", edge_key}, at)
        if extra:
            metadata_e[name] = extra
    plan = Plan(vertices, edges, [])
    plan.metadata = {"V": metadata_v, "E": metadata_e, "tables": tables}
    return plan


def _names(rows: list[dict[str, Any]], keys: Iterable[str], table: str) -> tuple[list[str], str | None]:
    """The names of a table's parts, and the column they come from (``None``: ``V1``, ``V2``, ...).

    The first column of ``keys`` that some row has is used when it gives every
    row a distinct identifier (a name a diagram accepts); otherwise the parts
    are named by id and the column stays metadata.
    """
    for key in keys:
        if any(key in row for row in rows):
            found = [row.get(key) for row in rows]
            names = [n for n in found if isinstance(n, str) and n.isidentifier() and "·" not in n]
            if len(names) == len(found) and len(set(names)) == len(names):
                return names, key
            break
    return [f"{table}{i}" for i in range(1, len(rows) + 1)], None


def _extra(row: dict[str, Any], used: set[Any], at: Where) -> dict[str, Any]:
    """The columns of ``row`` that a skeleton does not use, kept as metadata (attribute variables checked)."""
    extra = {}
    for key, value in row.items():
        if key not in used:
            is_unset(value, at(key))  # refuses a malformed {"_var": ...}
            extra[key] = value
    return extra
