"""ACSet JSON (``.json``): a diagram as Catlab.jl writes an ACSet, with the schema the library ships.

A diagram file is an ACSet of the schema in ``schema.json`` (beside this
module; ``learning-diagrams schema`` prints it), laid out as Catlab's
``generate_json_acset`` lays out every ACSet (:mod:`.catlab` has the rules):
one key per table, the tables of the schema's objects first, then one per
attribute type; rows with a 1-based ``_id``; every column name unique across
the schema; a foreign key is the ``_id`` of a row of another table; an unset
attribute is an attribute variable ``{"_var": n}``, the ``n``-th row of its
attribute type's table. The objects, their columns (foreign keys first, then
attributes) and the attribute types:

=============  ==================================================================
table          columns
=============  ==================================================================
``V``          ``vname``, ``data``, ``loss`` (Name), ``vtype`` (TypeSpec), ``indexing`` (Bool)
``E``          ``src``, ``tgt`` → V; ``ename``, ``fn`` (Name), ``trainable``, ``training`` (Bool)
``Path``       ``path_src``, ``path_tgt`` → V
``Step``       ``path`` → Path, ``edge`` → E: a path's steps, in the order of their ids
``R``          ``first``, ``second`` → Path; ``weight`` (Real)
``Diagram``    ``format``, ``cycles`` (Text), ``max_length``, ``max_paths`` (Count),
               ``weights_file`` (Name), ``weights_sha256`` (Digest); one row
=============  ==================================================================

Attribute types: ``Name``, ``TypeSpec``, ``Bool``, ``Real``, ``Count``,
``Text``, ``Digest``. Vertices, edges and relations are in declaration order;
each relation ``first ≤ second`` has its two paths, each path its steps, and a
path with no step is the identity of its ``path_src`` (then ``path_tgt`` is the
same vertex). ``format`` is ``"learning-diagrams/2"``. Unset, as
``{"_var": n}``: ``data``, ``loss``, ``vtype`` and ``fn`` when the part has
none, ``max_length`` when there is no bound, and both ``weights_file`` and
``weights_sha256`` when no weights were saved; a reader also takes ``null``
(the Python ``acsets`` package writes it), and an unset ``vname``/``ename`` is
``V<id>``/``E<id>``, ``indexing`` false, ``trainable`` and ``training`` true,
``weight`` 1, ``cycles`` ``simple`` and ``max_paths`` its default. A tiny
diagram's tables:

>>> import learning_diagrams as ld
>>> from learning_diagrams.io.binding import plan_of
>>> tiny = (ld.Diagram().space("X", data=[1.0]).space("Y", loss=ld.losses.l1, type=ld.TensorType(None, 3))
...         .map("f", "X", "Y", abs).map("g", "X", "Y", None).relate("f", "g", weight=0.5))
>>> obj = json_of(plan_of(tiny, None))
>>> list(obj)
['V', 'E', 'Path', 'Step', 'R', 'Diagram', 'Name', 'TypeSpec', 'Bool', 'Real', 'Count', 'Text', 'Digest']
>>> obj["V"][1]
{'_id': 2, 'vname': 'Y', 'data': {'_var': 2}, 'loss': 'l1', 'vtype': {'tensor': {'shape': [None, 3], 'dtype': None}}, 'indexing': False}
>>> obj["E"][1], obj["R"], obj["Step"]
({'_id': 2, 'src': 1, 'tgt': 2, 'ename': 'g', 'fn': {'_var': 3}, 'trainable': True, 'training': True}, [{'_id': 1, 'first': 1, 'second': 2, 'weight': 0.5}], [{'_id': 1, 'path': 1, 'edge': 1}, {'_id': 2, 'path': 2, 'edge': 2}])

Reading a learning-diagrams ACSet is strict: a table, column or row the
schema does not have, a foreign key out of range, an attribute variable past
its table, or a path whose steps do not run from ``path_src`` to ``path_tgt``
raises :class:`~learning_diagrams.core.errors.FileFormatError` naming the
table, row and field. :func:`plan_from_json` tells the layouts apart: a
top-level ``"format"`` is the first layout (:mod:`.legacy`), a table
``Diagram`` this one, and anything else is read as a plain Catlab graph
(:func:`.catlab.plan_from_graph`). JSON is read with :mod:`json` (a duplicate
key or a ``NaN`` is refused, and so is nesting deeper than
:data:`~.limits.MAX_FILE_DEPTH`, found by a scan before parsing); every string
in it is a *name*, bound by :mod:`.binding`, never evaluated.
"""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

from ..core.errors import FileFormatError
from ..core.graph import Path
from ..core.paths import DEFAULT_MAX_PATHS
from .catlab import foreign, id_only_table, is_unset, plan_from_graph, row_at, table_rows
from .legacy import ACSET_FORMAT, plan_from_legacy
from .limits import check_json_depth, shown
from .plan import (
    EdgeRow,
    Plan,
    RelationRow,
    VertexRow,
    WeightsEntry,
    Where,
    check_boolean,
    check_cycles,
    check_max_length,
    check_max_paths,
    check_name,
    check_sha256,
    check_weight,
    check_weights_file,
    kind_of,
    quoted,
)

__all__ = ["ACSET_FORMAT", "schema_text", "schema", "json_of", "plan_from_json", "plan_from_acset", "read_json"]


def schema_text() -> str:
    """The text of ``schema.json``, the library's ACSet schema in Catlab's schema-JSON layout.

    Its ``Ob``, ``Hom``, ``AttrType`` and ``Attr`` entries are Catlab's; each
    attribute type also names the Python type (``ty``) under which the
    ``acsets`` package checks its values (``object`` for those that may be
    unset, ``{"_var": n}``).
    """
    return _SCHEMA_TEXT


# Read when the module is imported, so that loading a file imports nothing (importlib.resources would).
_SCHEMA_TEXT = resources.files(__package__).joinpath("schema.json").read_text(encoding="utf-8")
_SCHEMA: dict[str, Any] = json.loads(_SCHEMA_TEXT)


def schema() -> dict[str, Any]:
    """The schema as data: ``version``, ``Ob``, ``Hom``, ``AttrType``, ``Attr`` and ``equations``."""
    return json.loads(_SCHEMA_TEXT)


def _columns_of(s: dict[str, Any]) -> dict[str, list[tuple[str, str, str]]]:
    """Each object's columns, in the order Catlab writes them: ``(name, "hom" or "attr", codomain)``."""
    out: dict[str, list[tuple[str, str, str]]] = {ob["name"]: [] for ob in s["Ob"]}
    for kind in ("Hom", "Attr"):
        for f in s[kind]:
            out[f["dom"]].append((f["name"], kind.lower(), f["codom"]))
    return out


_COLUMNS = _columns_of(_SCHEMA)
_ATTRTYPES = [t["name"] for t in _SCHEMA["AttrType"]]


# --- writing ---------------------------------------------------------------------------------------


class _Writer:
    """Rows in the schema's column order; each unset attribute a new variable of its attribute type."""

    def __init__(self) -> None:
        self.variables = dict.fromkeys(_ATTRTYPES, 0)

    def row(self, table: str, i: int, values: dict[str, Any]) -> dict[str, Any]:
        row: dict[str, Any] = {"_id": i}
        for name, kind, codom in _COLUMNS[table]:
            value = values[name]
            if kind == "attr" and value is None:
                self.variables[codom] += 1
                value = {"_var": self.variables[codom]}
            row[name] = value
        return row


def json_of(plan: Plan) -> dict[str, Any]:
    """The ACSet JSON object of ``plan``: the tables of the schema's objects, then its attribute types'."""
    vid = {v.name: i for i, v in enumerate(plan.vertices, 1)}
    eid = {e.name: i for i, e in enumerate(plan.edges, 1)}
    w = _Writer()
    paths: list[Path] = []
    relations = []
    for i, r in enumerate(plan.relations, 1):
        first, second = r.first, r.second
        assert isinstance(first, Path) and isinstance(second, Path), "a plan made from a diagram holds its paths"
        paths += [first, second]
        relations.append(w.row("R", i, {"first": 2 * i - 1, "second": 2 * i, "weight": r.weight}))
    steps = [(k, e) for k, p in enumerate(paths, 1) for e in p.edges]
    weights = plan.weights
    obj: dict[str, Any] = {
        "V": [
            w.row(
                "V",
                vid[v.name],
                {"vname": v.name, "data": v.data, "loss": v.loss, "vtype": v.type, "indexing": v.indexing},
            )
            for v in plan.vertices
        ],
        "E": [
            w.row(
                "E",
                eid[e.name],
                {
                    "src": vid[e.src],
                    "tgt": vid[e.tgt],
                    "ename": e.name,
                    "fn": e.fn,
                    "trainable": e.trainable,
                    "training": e.training,
                },
            )
            for e in plan.edges
        ],
        "Path": [
            w.row("Path", k, {"path_src": vid[p.source], "path_tgt": vid[p.target]}) for k, p in enumerate(paths, 1)
        ],
        "Step": [w.row("Step", j, {"path": k, "edge": eid[e]}) for j, (k, e) in enumerate(steps, 1)],
        "R": relations,
        "Diagram": [
            w.row(
                "Diagram",
                1,
                {
                    "format": ACSET_FORMAT,
                    "max_length": plan.max_length,
                    "max_paths": plan.max_paths,
                    "cycles": plan.cycles,
                    "weights_file": None if weights is None else weights.file,
                    "weights_sha256": None if weights is None else weights.sha256,
                },
            )
        ],
    }
    for attrtype, count in w.variables.items():
        obj[attrtype] = [{"_id": n} for n in range(1, count + 1)]
    return obj


# --- reading ---------------------------------------------------------------------------------------


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
    """The plan of a JSON diagram file: this layout, the first one (:mod:`.legacy`), or a plain Catlab graph."""
    if not isinstance(obj, dict):
        raise FileFormatError(f"an ACSet JSON file is an object with a key per table, got {kind_of(obj)}")
    if "format" in obj:
        return plan_from_legacy(obj)
    if "Diagram" in obj:
        return plan_from_acset(obj)
    return plan_from_graph(obj)


class _Tables:
    """A learning-diagrams ACSet being read: the tables' rows, checked against the schema as they are read."""

    def __init__(self, obj: dict[str, Any]):
        columns = _COLUMNS
        known = [*columns, *_ATTRTYPES]
        unknown = [t for t in obj if t not in known]
        if unknown:
            raise FileFormatError(
                f"unknown table(s) {quoted(unknown)}: a learning-diagrams ACSet has the tables {quoted(columns)} "
                f"and the attribute-type tables {quoted(_ATTRTYPES)}"
            )
        self.variables = {t: id_only_table(obj, t, "an attribute type's table") for t in _ATTRTYPES if t in obj}
        self.rows = {t: table_rows(obj, t) for t in columns}
        for table, rows in self.rows.items():
            named = [name for name, _, _ in columns[table]]
            for position, row in enumerate(rows, 1):
                extra = [k for k in row if k != "_id" and k not in named]
                if extra:
                    raise FileFormatError(
                        f"table {table}, row {position}: unknown column(s) {quoted(extra)} "
                        f"(a {table} row has {quoted(named)}, and an '_id')"
                    )
        self.kinds = {name: (kind, codom) for cols in columns.values() for name, kind, codom in cols}

    def hom(self, row: dict[str, Any], key: str, at: Where) -> int:
        if key not in row:
            raise FileFormatError(f"{at(key)}: missing (a foreign key is always set: the id of a row of its table)")
        codom = self.kinds[key][1]
        return foreign(row[key], codom, len(self.rows[codom]), at(key))

    def attr(self, row: dict[str, Any], key: str, at: Where) -> Any:
        """The value of an attribute, or ``None`` when it is unset (absent, ``null`` or ``{"_var": n}``)."""
        value = row.get(key)
        return None if is_unset(value, at(key), self.variables.get(self.kinds[key][1])) else value


def plan_from_acset(obj: dict[str, Any]) -> Plan:
    """The plan of a learning-diagrams ACSet (the module docstring has the layout)."""
    t = _Tables(obj)
    vertices = []
    for i, row in enumerate(t.rows["V"], 1):
        at = _vertex_at(row_at("V", i, "vertex", row.get("vname")))
        name = _name(t.attr(row, "vname", at), f"V{i}", at("vname"))
        data, loss = (_name_or_unset(t.attr(row, k, at), at(k)) for k in ("data", "loss"))
        indexing = _flag(t.attr(row, "indexing", at), False, at("indexing"))
        vertices.append(VertexRow(name, data, loss, t.attr(row, "vtype", at), at, indexing))
    names = [v.name for v in vertices]
    edges = []
    for i, row in enumerate(t.rows["E"], 1):
        at = row_at("E", i, "edge", row.get("ename"))
        src, tgt = (names[t.hom(row, k, at) - 1] for k in ("src", "tgt"))
        name = _name(t.attr(row, "ename", at), f"E{i}", at("ename"))
        fn = _name_or_unset(t.attr(row, "fn", at), at("fn"))
        trainable, training = (_flag(t.attr(row, k, at), True, at(k)) for k in ("trainable", "training"))
        edges.append(EdgeRow(name, src, tgt, fn, trainable, training, at=at))
    paths = _paths(t, names, edges)
    relations = []
    for i, row in enumerate(t.rows["R"], 1):
        at = row_at("R", i, "relation")
        first, second = (paths[t.hom(row, k, at) - 1] for k in ("first", "second"))
        weight = t.attr(row, "weight", at)
        relations.append(RelationRow(first, second, 1.0 if weight is None else check_weight(weight, at("weight")), at))
    plan = Plan(vertices, edges, relations)
    _read_diagram_row(t, plan)
    return plan


def _paths(t: _Tables, names: list[str], edges: list[EdgeRow]) -> list[Path]:
    """Every row of table Path as a path of the diagram: its steps, in id order, from path_src to path_tgt."""
    ends = []
    for k, row in enumerate(t.rows["Path"], 1):
        at = row_at("Path", k, "path")
        ends.append((t.hom(row, "path_src", at), t.hom(row, "path_tgt", at)))
    steps: list[list[tuple[int, int]]] = [[] for _ in ends]
    for j, row in enumerate(t.rows["Step"], 1):
        at = row_at("Step", j, "step")
        steps[t.hom(row, "path", at) - 1].append((j, t.hom(row, "edge", at)))
    paths = []
    for k, ((src, tgt), path_steps) in enumerate(zip(ends, steps), 1):
        here = names[src - 1]
        for j, e in path_steps:
            edge = edges[e - 1]
            if edge.src != here:
                raise FileFormatError(
                    f"table Step, _id {j} (step of path {k}), field 'edge': edge {shown(edge.name)} starts at "
                    f"{shown(edge.src)}, but the path is at {shown(here)} (a path's steps, in id order, run "
                    f"from its path_src)"
                )
            here = edge.tgt
        if here != names[tgt - 1]:
            which = (
                "the identity path (no step) needs path_src == path_tgt"
                if not path_steps
                else f"it ends at {shown(here)}"
            )
            raise FileFormatError(f"table Path, _id {k} (path), field 'path_tgt': {which}, not {shown(names[tgt - 1])}")
        paths.append(Path(names[src - 1], names[tgt - 1], tuple(edges[e - 1].name for _, e in path_steps)))
    return paths


def _read_diagram_row(t: _Tables, plan: Plan) -> None:
    """The version, options and weights of table Diagram (no row: all unset)."""
    rows = t.rows["Diagram"]
    if len(rows) > 1:
        raise FileFormatError(f"table Diagram: has {len(rows)} rows, but a file holds one diagram (one row)")
    row = rows[0] if rows else {}
    at = row_at("Diagram", 1, "the diagram")
    version = t.attr(row, "format", at)
    if version is not None and version != ACSET_FORMAT:
        raise FileFormatError(f"{at('format')}: {shown(version)}, but this version reads {ACSET_FORMAT!r}")
    plan.max_length = check_max_length(t.attr(row, "max_length", at), at("max_length"))
    max_paths = t.attr(row, "max_paths", at)
    plan.max_paths = DEFAULT_MAX_PATHS if max_paths is None else check_max_paths(max_paths, at("max_paths"))
    cycles = t.attr(row, "cycles", at)
    plan.cycles = "simple" if cycles is None else check_cycles(cycles, at("cycles"))
    file, digest = t.attr(row, "weights_file", at), t.attr(row, "weights_sha256", at)
    if (file is None) != (digest is None):
        set_one = "weights_file" if digest is None else "weights_sha256"
        raise FileFormatError(f"{at(set_one)}: is set, but not its pair: weights_file and weights_sha256 go together")
    if file is not None:
        plan.weights = WeightsEntry(
            check_weights_file(file, at("weights_file")), check_sha256(digest, at("weights_sha256"))
        )


def _vertex_at(at: Where) -> Where:
    """A V row's place, where the binding's field ``type`` is this layout's column ``vtype``."""
    return lambda key: at("vtype" if key == "type" else key)


def _name(value: Any, default: str, where: str) -> str:
    if value is None:
        return default
    check_name(value, where)
    return value


def _name_or_unset(value: Any, where: str) -> str | None:
    if value is not None:
        check_name(value, where)
    return value


def _flag(value: Any, default: bool, where: str) -> bool:
    return default if value is None else check_boolean(value, where)
