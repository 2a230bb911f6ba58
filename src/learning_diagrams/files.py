"""Saving and loading diagrams: Catlab's ACSet JSON, a YAML config form, safetensors weights.

A file holds a diagram's *structure*: its vertices, edges, relations and
options. What the diagram holds (data sources, models and functions, losses)
is stored **by name** and bound again when the file is loaded, from the
``env`` mapping the caller passes, as :func:`learning_diagrams.parse` binds
the names of its text. The weights of every ``torch.nn.Module`` on an edge go
to a safetensors file beside it: ``save(d, "run/distil.json")`` writes
``run/distil.json`` and ``run/distil.safetensors``.

>>> import tempfile, torch, learning_diagrams as ld
>>> model = torch.nn.Linear(4, 3)
>>> d = (ld.Diagram().space("N", data=[torch.randn(8, 4)]).space("Y", loss=ld.losses.mse)
...      .map("f", "N", "Y", model).map("g", "N", "Y", torch.nn.Linear(4, 3)).relate("f", "g"))
>>> folder = tempfile.mkdtemp()
>>> save(d, f"{folder}/d.json", names={"train_ds": d.spaces["N"].data})
>>> fresh = {"train_ds": [torch.randn(8, 4)], "f": torch.nn.Linear(4, 3), "g": torch.nn.Linear(4, 3)}
>>> e = load(f"{folder}/d.json", fresh)             # fresh's modules now hold the saved weights
>>> [str(p) for p in e.parallel_pairs()], torch.equal(fresh["f"].weight, model.weight)
(['f ≤ g  (at Y, weight 1)'], True)

Layout: ACSet JSON (``.json``)
------------------------------
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

Every key is written, in this order, with ``indent=2``; reading is as strict:
a missing or unknown key, an ``_id`` that is not the row's position, a
foreign key out of range or a path that does not run from ``src`` to ``tgt``
raises :class:`FileFormatError` naming the table, row and field. A tiny
diagram's file:

>>> import json
>>> tiny = (ld.Diagram().space("X", data=[1.0]).space("Y", loss=ld.losses.l1, type=ld.TensorType(None, 3))
...         .map("f", "X", "Y", abs).map("g", "X", "Y", None).relate("f", "g", weight=0.5))
>>> print(json.dumps(to_json(tiny), indent=2))
{
  "format": "learning-diagrams/1",
  "V": [
    {
      "_id": 1,
      "name": "X",
      "data": "X",
      "loss": null,
      "type": null
    },
    {
      "_id": 2,
      "name": "Y",
      "data": null,
      "loss": "l1",
      "type": {
        "tensor": {
          "shape": [
            null,
            3
          ],
          "dtype": null
        }
      }
    }
  ],
  "E": [
    {
      "_id": 1,
      "src": 1,
      "tgt": 2,
      "name": "f",
      "fn": "f",
      "trainable": true,
      "training": true
    },
    {
      "_id": 2,
      "src": 1,
      "tgt": 2,
      "name": "g",
      "fn": null,
      "trainable": true,
      "training": true
    }
  ],
  "R": [
    {
      "_id": 1,
      "src": 1,
      "tgt": 2,
      "first": [
        1
      ],
      "second": [
        2
      ],
      "weight": 0.5
    }
  ],
  "options": {
    "max_length": null,
    "max_paths": 10000
  }
}

Layout: YAML config (``.yaml``, ``.yml``)
----------------------------------------
A friendlier form for configs written by hand, keyed by name rather than id::

    format: learning-diagrams/1          # optional when read
    spaces:
      N: {data: train_ds}
      X: {}                              # or just "X:"
      Y: {loss: cross_entropy, type: Tensor}
    maps:
      x: {src: N, tgt: X, fn: first}
      f: {src: X, tgt: Y, fn: model, trainable: true}
      g: {src: X, tgt: Y}                # no fn key: fn is env['g']; "fn: null" is no function
    relations:
      - [x·f, y]                         # first ≤ second, weight 1; '·' or '.', or id(X)
      - [x·f, x·g, 0.5]                  # with a weight
      - {first: x.f.soft, second: x.g.soft, weight: 0.25}
    options: {max_length: 4}

``trainable`` and ``training`` default to true. Errors name the key path
(``maps.f.src``, ``relations[1].first``). :func:`save` writes this form, with
only the non-default flags.

Type specs
----------
``"Any"``; a class from the allow-list ``"Tensor"`` (``torch.Tensor``),
``"int"``, ``"float"``, ``"bool"``, ``"complex"``, ``"str"``, ``"bytes"``,
``"list"``, ``"tuple"``, ``"dict"``; ``{"dtype": "float32"}``;
``{"tensor": {"shape": [null, 10], "dtype": "float32" or null}}`` (an
:class:`~learning_diagrams.types.TensorType`); ``{"tuple": [spec, ...]}`` (a
plain list reads as a tuple too). Any other class cannot be saved: the error
names the vertex.

Binding rules
-------------
On save, each object gets its name from, in order:

1. ``names``, a mapping *name → object* (typically the very ``env`` you will
   load with), inverted by identity; a plain callable given as a loss is
   found through the :class:`~learning_diagrams.losses.Loss` wrapping it;
2. for a loss of :mod:`learning_diagrams.losses`, its ``name`` (``"mse"``,
   ``"cross_entropy"``, ``"kl_div(T=2.0)"``); another
   :class:`~learning_diagrams.losses.Loss` goes by its ``name`` when that is
   an identifier which is not a library loss's name, and is refused otherwise;
3. for a function or model, the name of the first edge that carries it (so
   by default ``fn`` is the edge's own name, and one model on two edges gets
   one name and is stored once); for a data source, the name of the first
   vertex that carries it.

Two different objects may not get the same name (save raises
:class:`FileFormatError` naming both places). On load, ``data`` and ``fn``
names are looked up in ``env``; a ``loss`` name in ``env``, then among the
library losses, then as ``kl_div(T=<number>)``. An unknown name raises
:class:`~learning_diagrams.errors.UnknownNameError` naming the place (and,
for a function, the edge) and suggesting the closest names. ``null`` stays
``None``.

Loading never executes code from the file
-----------------------------------------
JSON is read with :mod:`json`; YAML with a subclass of ``yaml.SafeLoader``
that only adds a duplicate-key check, so tags such as ``!!python/object``
are refused before anything is built. Every string in a file is a *name*,
looked up in ``env`` or in the fixed tables above, or parsed by a regular
expression (``kl_div(T=2.0)``); nothing is evaluated. Weights are read with
safetensors, which holds tensors only.

Weights
-------
With ``weights=True`` (the default) :func:`save` writes the ``state_dict`` of
every module on an edge to ``<stem>.safetensors``, keyed
``"<fn name>.<key>"`` (so a module's name may not contain ``.``); a module on
several edges is stored once, and a tensor that one module holds under two
keys (tied weights) once, the other key recorded in the file's metadata as
``{"<alias>": "<kept key>"}``. :func:`load` loads them into the modules of
``env``, in place and strictly: missing keys, unexpected keys and shape
mismatches are reported together in one :class:`FileFormatError`.

Writes are atomic: each file is written to a temporary file in the same
folder, fsynced and moved into place with :func:`os.replace` (the diagram
file last), so a failure leaves the previous files whole and no temporary
file behind.
"""

from __future__ import annotations

import contextlib
import difflib
import functools
import json
import math
import os
import re
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path as FilePath
from typing import Any, Callable

import safetensors
import safetensors.torch
import torch
from torch import nn

from . import losses
from .diagram import Diagram
from .atomic import fsync_dir
from .errors import DiagramError, UnknownNameError
from .graph import Path, PathLike
from .losses import KLDivergence, Loss
from .paths import DEFAULT_MAX_PATHS
from .types import TensorType

__all__ = [
    "FORMAT",
    "FileFormatError",
    "save",
    "load",
    "to_json",
    "from_json",
    "to_config",
    "from_config",
    "weights_path",
]

#: The version tag every file carries under ``"format"``.
FORMAT = "learning-diagrams/1"


class FileFormatError(DiagramError, ValueError):
    """A malformed diagram or weights file (the message names the place), or a diagram that
    this format cannot hold (the message names the vertex or edge)."""


# --- the fixed name tables ----------------------------------------------------------------

#: The losses that load by name without ``env``.
_LIBRARY: dict[str, Loss] = {k: v for k, v in vars(losses).items() if isinstance(v, Loss)}
_KL_NAME = re.compile(r"kl_div\(\s*(?:T|temperature)\s*=\s*([0-9]+(?:\.[0-9]*)?(?:[eE][-+]?[0-9]+)?)\s*\)")

#: The classes a type spec may name (the allow-list), in the order error messages list them.
_CLASSES: dict[str, Any] = {
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
_CLASS_ALIASES: dict[str, Any] = {"torch.Tensor": torch.Tensor, "typing.Any": Any}
_DTYPES: dict[str, torch.dtype] = {
    str(v).removeprefix("torch."): v for v in vars(torch).values() if isinstance(v, torch.dtype)
}

_V_FIELDS = ("_id", "name", "data", "loss", "type")
_E_FIELDS = ("_id", "src", "tgt", "name", "fn", "trainable", "training")
_R_FIELDS = ("_id", "src", "tgt", "first", "second", "weight")
_JSON_KEYS = ("format", "V", "E", "R", "options")
_CONFIG_KEYS = ("format", "spaces", "maps", "relations", "options")
_OPTION_KEYS = ("max_length", "max_paths")


# --- the neutral form both layouts are read into and written from ----------------------------

_Where = Callable[["str | None"], str]


@dataclass
class _Vertex:
    name: Any
    data: str | None
    loss: str | None
    type: Any  # a type spec as found in the file, or the annotation's spec when saving
    at: _Where = field(repr=False, default=lambda f: "")


@dataclass
class _Edge:
    name: Any
    src: Any
    tgt: Any
    fn: str | None
    trainable: bool = True
    training: bool = True
    at: _Where = field(repr=False, default=lambda f: "")


@dataclass
class _Relation:
    first: PathLike
    second: PathLike
    weight: float
    at: _Where = field(repr=False, default=lambda f: "")


@dataclass
class _Plan:
    vertices: list[_Vertex]
    edges: list[_Edge]
    relations: list[_Relation]
    max_length: int | None = None
    max_paths: int = DEFAULT_MAX_PATHS
    modules: dict[str, nn.Module] = field(default_factory=dict)  # fn name → module, when saving


# --- saving ---------------------------------------------------------------------------------


def to_json(diagram: Diagram, names: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The diagram as an ACSet JSON object (plain dicts and lists, ready for :func:`json.dumps`).

    Parameters
    ----------
    diagram : Diagram
    names : mapping of str to object, optional
        What to call the diagram's data, models, functions and losses (the
        binding rules of the module docstring); usually the ``env`` it will be
        loaded with.

    Returns
    -------
    dict
        ``{"format", "V", "E", "R", "options"}``, in that order.

    Raises
    ------
    FileFormatError
        When something cannot be named or a type cannot be written.
    """
    return _json_of(_plan_of(diagram, names))


def to_config(diagram: Diagram, names: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The diagram in the YAML config form, as plain dicts and lists (see :func:`to_json`).

    >>> import learning_diagrams as ld
    >>> d = ld.Diagram().space("X", data=[1.0]).space("Y", loss=ld.losses.mse).map("f", "X", "Y", abs)
    >>> to_config(d, names={"ds": d.spaces["X"].data})["spaces"]
    {'X': {'data': 'ds'}, 'Y': {'loss': 'mse'}}
    """
    return _config_of(_plan_of(diagram, names))


def save(
    diagram: Diagram,
    path: str | os.PathLike[str],
    *,
    names: Mapping[str, Any] | None = None,
    weights: bool = True,
) -> None:
    """Write ``diagram`` to ``path``: ACSet JSON for ``.json``, the config form for ``.yaml``/``.yml``.

    Parameters
    ----------
    diagram : Diagram
    path : str or path-like
        The file's suffix picks the layout.
    names : mapping of str to object, optional
        What to call the diagram's objects (see :func:`to_json`).
    weights : bool, default True
        Also write the state dicts of the modules on its edges to
        :func:`weights_path` of ``path`` (always, even when there are none,
        so that no stale file is left beside the diagram).

    Raises
    ------
    FileFormatError
        For an unknown suffix, or a diagram the format cannot hold; nothing
        is written then.
    OSError
        When writing fails; the previous files are left as they were.
    """
    file = FilePath(path)
    kind = _kind(file)
    plan = _plan_of(diagram, names)
    if kind == "json":
        text = json.dumps(_json_of(plan), indent=2, ensure_ascii=False, allow_nan=False) + "\n"
    else:
        text = _yaml().safe_dump(
            _config_of(plan), sort_keys=False, allow_unicode=True, default_flow_style=None, width=120
        )
    writes = [(weights_path(file), _weights_bytes(plan.modules))] if weights else []
    _write_atomically([*writes, (file, text.encode("utf-8"))])


def weights_path(path: str | os.PathLike[str]) -> FilePath:
    """_Where the weights of the diagram saved at ``path`` go: the same stem, ``.safetensors``.

    >>> weights_path("runs/distil.json").as_posix()
    'runs/distil.safetensors'
    """
    return FilePath(path).with_suffix(".safetensors")


class _Namer:
    """Names objects by the rules of the module docstring, refusing one name for two objects."""

    def __init__(self, names: Mapping[str, Any] | None):
        self._given: dict[int, str] = {}
        if names is not None:
            if not isinstance(names, Mapping):
                raise FileFormatError(
                    f"names must be a mapping from name to object, e.g. {{'model': model}}, "
                    f"got a {type(names).__name__}"
                )
            for name, obj in names.items():
                if not isinstance(name, str) or not name:
                    raise FileFormatError(f"names: {name!r} is not a name (a non-empty string)")
                if obj is not None:
                    self._given.setdefault(id(obj), name)
        self._first: dict[tuple[str, int], str] = {}
        self._claimed: dict[str, tuple[Any, str]] = {}

    def given(self, *objects: Any) -> tuple[str, Any] | None:
        """The name ``names`` gives the first of ``objects`` it knows, with that object."""
        for obj in objects:
            if id(obj) in self._given:
                return self._given[id(obj)], obj
        return None

    def first(self, role: str, obj: Any, default: str) -> str:
        """The name of the first carrier of ``obj`` in this role (``default`` for the first)."""
        return self._first.setdefault((role, id(obj)), default)

    def claim(self, name: str, identity: Any, what: str) -> str:
        """Record that ``name`` stands for the object known by ``identity``; refuse a second one."""
        previous = self._claimed.setdefault(name, (identity, what))
        if previous[0] != identity:
            raise FileFormatError(
                f"the name {name!r} would stand for two different objects, {previous[1]} and {what}; "
                f"give them different names with names={{...}}"
            )
        return name


def _plan_of(diagram: Diagram, names: Mapping[str, Any] | None) -> _Plan:
    namer = _Namer(names)
    vertices = []
    for v, space in diagram.spaces.items():
        data = None
        if space.data is not None:
            found = namer.given(space.data)
            name = found[0] if found else namer.first("data", space.data, v)
            data = namer.claim(name, id(space.data), f"the data of vertex {v!r}")
        loss = None if space.loss is None else _loss_name(space.loss, namer, v)
        vertices.append(_Vertex(v, data, loss, _type_spec(space.type, f"vertex {v!r}")))
    edges, modules = [], {}
    for e, m in diagram.maps.items():
        fn = None
        if m.fn is not None:
            found = namer.given(m.fn)
            name = found[0] if found else namer.first("fn", m.fn, e)
            fn = namer.claim(name, id(m.fn), f"the function of edge {e!r}")
            if isinstance(m.fn, nn.Module):
                if "." in fn:
                    raise FileFormatError(
                        f"edge {e!r}: its module is named {fn!r}, but a module's name keys its weights "
                        f"('{fn}.weight' would be ambiguous): give it a name without '.'"
                    )
                modules[fn] = m.fn
        edges.append(_Edge(e, m.src, m.tgt, fn, m.trainable, m.training))
    relations = []
    for r in diagram.relations:
        if not math.isfinite(r.weight):
            raise FileFormatError(f"relation {r}: its weight {r.weight} is not a finite number")
        relations.append(_Relation(r.first, r.second, r.weight))
    return _Plan(vertices, edges, relations, diagram.max_length, diagram.max_paths, modules)


def _loss_name(loss: Loss, namer: _Namer, vertex: str) -> str:
    what = f"the loss of vertex {vertex!r}"
    identity = ("loss", id(loss.fn), loss.symmetric, loss.name)
    # A plain callable given as a loss was wrapped by as_loss: it is named by the callable, and
    # loads back to the same wrapper. A Loss that as_loss would not rebuild is named by itself.
    wraps = type(loss) is Loss and not isinstance(loss.fn, Loss) and loss == losses.as_loss(loss.fn)
    found = namer.given(loss, loss.fn) if wraps else namer.given(loss)
    if found:
        return namer.claim(found[0], identity, what)
    if type(loss) is KLDivergence or (type(loss) is Loss and any(loss == lib for lib in _LIBRARY.values())):
        return loss.name
    if loss.name.isidentifier() and loss.name not in _LIBRARY:
        return namer.claim(loss.name, identity, what)
    raise FileFormatError(
        f"vertex {vertex!r}: its loss {loss!r} is not a library loss and its name {loss.name!r} "
        f"cannot stand for it; name it: names={{'my_loss': loss}} (then load with env={{'my_loss': ...}})"
    )


def _type_spec(annotation: Any, where: str) -> Any:
    if annotation is None:
        return None
    if annotation is Any:
        return "Any"
    if isinstance(annotation, torch.dtype):
        return {"dtype": _dtype_name(annotation)}
    if isinstance(annotation, TensorType):
        dtype = None if annotation.dtype is None else _dtype_name(annotation.dtype)
        return {"tensor": {"shape": list(annotation.shape), "dtype": dtype}}
    if isinstance(annotation, tuple):
        return {"tuple": [_type_spec(a, where) for a in annotation]}
    for name, cls in _CLASSES.items():
        if annotation is cls:
            return name
    shown = getattr(annotation, "__qualname__", repr(annotation))
    raise FileFormatError(
        f"{where}: its type {shown} cannot be written to a file; a type there is Any, a torch dtype, "
        f"ld.TensorType(...), a tuple of these, or one of the classes {', '.join(list(_CLASSES)[1:])}"
    )


def _dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


def _json_of(plan: _Plan) -> dict[str, Any]:
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
        "R": [
            {
                "_id": i,
                "src": vid[r.first.source],
                "tgt": vid[r.first.target],
                "first": [eid[e] for e in r.first.edges],
                "second": [eid[e] for e in r.second.edges],
                "weight": r.weight,
            }
            for i, r in enumerate(plan.relations, 1)
        ],
        "options": {"max_length": plan.max_length, "max_paths": plan.max_paths},
    }


def _config_of(plan: _Plan) -> dict[str, Any]:
    spaces = {}
    for v in plan.vertices:
        spaces[v.name] = {k: x for k, x in (("data", v.data), ("loss", v.loss), ("type", v.type)) if x is not None}
    maps = {}
    for e in plan.edges:
        entry: dict[str, Any] = {"src": e.src, "tgt": e.tgt, "fn": e.fn}
        if not e.trainable:
            entry["trainable"] = False
        if not e.training:
            entry["training"] = False
        maps[e.name] = entry
    relations: list[Any] = [
        [str(r.first), str(r.second)]
        if r.weight == 1.0
        else {"first": str(r.first), "second": str(r.second), "weight": r.weight}
        for r in plan.relations
    ]
    return {
        "format": FORMAT,
        "spaces": spaces,
        "maps": maps,
        "relations": relations,
        "options": {"max_length": plan.max_length, "max_paths": plan.max_paths},
    }


def _weights_bytes(modules: Mapping[str, nn.Module]) -> bytes:
    """The state dicts of ``modules`` (fn name → module) as safetensors bytes, shared tensors once."""
    tensors: dict[str, torch.Tensor] = {}
    aliases: dict[str, str] = {}
    seen: dict[tuple[Any, ...], str] = {}
    stored: set[int] = set()
    for name, module in modules.items():
        if id(module) in stored:
            continue
        stored.add(id(module))
        for key, t in module.state_dict().items():
            full = f"{name}.{key}"
            if not isinstance(t, torch.Tensor):
                raise FileFormatError(f"module {name!r}: its state {key!r} is a {type(t).__name__}, not a tensor")
            if t.numel() > 0:
                view = (
                    t.device,
                    t.untyped_storage().data_ptr(),
                    t.storage_offset(),
                    tuple(t.shape),
                    t.stride(),
                    t.dtype,
                )
                if view in seen:
                    aliases[full] = seen[view]
                    continue
                seen[view] = full
            tensors[full] = t.detach().to("cpu", copy=True).contiguous()
    return safetensors.torch.save(tensors, metadata={"format": "pt", **aliases})


def _write_atomically(writes: list[tuple[FilePath, bytes]]) -> None:
    """Write each ``(file, bytes)`` to a temporary file beside it, fsync all, then ``os.replace`` in order."""
    temporaries: list[tuple[str, FilePath]] = []
    try:
        for file, data in writes:
            fd, tmp = tempfile.mkstemp(dir=file.parent, prefix=f".{file.name}.", suffix=".tmp")
            temporaries.append((tmp, file))
            with os.fdopen(fd, "wb") as f:
                with contextlib.suppress(OSError):
                    os.fchmod(f.fileno(), file.stat().st_mode & 0o777 if file.exists() else 0o644)
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
        for tmp, file in temporaries:
            os.replace(tmp, file)
    finally:
        for tmp, _ in temporaries:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
    for folder in dict.fromkeys(file.parent for file, _ in writes):
        fsync_dir(folder)


# --- loading --------------------------------------------------------------------------------


def from_json(obj: Any, env: Mapping[str, Any] | None = None) -> Diagram:
    """The diagram of an ACSet JSON object (as :func:`json.load` returns it); weights are not loaded.

    Parameters
    ----------
    obj : dict
        The object :func:`to_json` makes.
    env : mapping of str to object, optional
        The data, functions, models and losses the file names.

    Raises
    ------
    FileFormatError
        For a malformed object, naming the table, row and field.
    UnknownNameError
        For a name that ``env`` (and, for losses, the library) does not have.
    """
    return _build(_plan_from_json(obj), env)[0]


def from_config(obj: Any, env: Mapping[str, Any] | None = None) -> Diagram:
    """The diagram of a YAML config object (as ``yaml.safe_load`` returns it); see :func:`from_json`.

    >>> import torch
    >>> d = from_config({"spaces": {"X": {"data": "ds"}, "Y": {"loss": "mse"}},
    ...                  "maps": {"f": {"src": "X", "tgt": "Y"}, "g": {"src": "X", "tgt": "Y", "fn": "f"}}},
    ...                 env={"ds": [torch.ones(2)], "f": torch.nn.Identity()})
    >>> d.maps["g"].fn is d.maps["f"].fn, [str(p) for p in d.parallel_pairs()]
    (True, ['f ≤ g  (at Y, weight 1)'])
    """
    return _build(_plan_from_config(obj), env)[0]


def load(
    path: str | os.PathLike[str],
    env: Mapping[str, Any] | None = None,
    *,
    weights: bool | None = None,
) -> Diagram:
    """Read a diagram saved by :func:`save` (or written by hand), binding its names from ``env``.

    Parameters
    ----------
    path : str or path-like
        ``.json`` (ACSet JSON) or ``.yaml``/``.yml`` (the config form).
    env : mapping of str to object, optional
        The data, functions, models and losses the file names.
    weights : bool, optional
        Load :func:`weights_path` of ``path`` into the modules of ``env`` (in
        place, strictly). ``None`` (the default): when that file exists;
        ``True``: it must exist; ``False``: never.

    Raises
    ------
    FileFormatError
        For a malformed file, naming the place; for weights that do not fit
        the modules, listing every missing, unexpected and mismatched key.
    UnknownNameError
        For a name that ``env`` (and, for losses, the library) does not have.
    FileNotFoundError
        When ``path`` is missing, or ``weights=True`` and the weights are.
    """
    file = FilePath(path)
    kind = _kind(file)
    try:
        text = file.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise FileFormatError(f"{file}: not UTF-8 text: {err}") from err
    with _located(str(file)):
        plan = _plan_from_json(_read_json(text)) if kind == "json" else _plan_from_config(_read_yaml(text))
        diagram, functions = _build(plan, env)
    tensors = weights_path(file)
    if weights is None:
        weights = tensors.exists()
    if weights:
        if not tensors.exists():
            raise FileNotFoundError(f"{file}: its weights file {tensors} does not exist (pass weights=False)")
        modules = {n: f for n, f in functions.items() if isinstance(f, nn.Module)}
        _load_weights(tensors, modules)
    return diagram


def _kind(file: FilePath) -> str:
    suffix = file.suffix.lower()
    if suffix == ".json":
        return "json"
    if suffix in (".yaml", ".yml"):
        return "yaml"
    raise FileFormatError(
        f"{file}: unknown suffix {file.suffix!r}; use .json (ACSet JSON) or .yaml/.yml (the config form)"
    )


def _read_json(text: str) -> Any:
    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in items:
            if key in out:
                raise FileFormatError(f"duplicate key {key!r}")
            out[key] = value
        return out

    def constant(name: str) -> Any:
        raise FileFormatError(f"{name} is not a JSON number")

    try:
        return json.loads(text, object_pairs_hook=pairs, parse_constant=constant)
    except json.JSONDecodeError as err:
        raise FileFormatError(f"not valid JSON: {err}") from err


@functools.cache
def _yaml() -> Any:
    try:
        import yaml
    except ImportError as err:  # pragma: no cover - PyYAML is a dependency
        raise ImportError("reading and writing .yaml diagrams needs PyYAML: pip install pyyaml") from err
    return yaml


@functools.cache
def _loader() -> type:
    """``yaml.SafeLoader`` plus a duplicate-key check: still only plain data, never a Python object."""
    yaml = _yaml()

    class Loader(yaml.SafeLoader):
        pass

    def mapping(loader: Any, node: Any) -> Any:
        loader.flatten_mapping(node)
        seen: list[Any] = []
        for key_node, _ in node.value:
            key = loader.construct_object(key_node, deep=True)
            with contextlib.suppress(TypeError):  # an unhashable key: SafeLoader itself refuses it
                if key in seen:
                    raise yaml.constructor.ConstructorError(
                        "while reading a mapping", node.start_mark, f"found duplicate key {key!r}", key_node.start_mark
                    )
            seen.append(key)
        return loader.construct_mapping(node, deep=True)

    Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, mapping)
    return Loader


def _read_yaml(text: str) -> Any:
    yaml = _yaml()
    try:
        return yaml.load(text, Loader=_loader())  # a SafeLoader: no tag can build a Python object
    except yaml.constructor.ConstructorError as err:
        raise FileFormatError(f"refused YAML (only plain data is read, never Python objects): {err}") from err
    except yaml.YAMLError as err:
        raise FileFormatError(f"not valid YAML: {err}") from err


# --- reading the ACSet tables -----------------------------------------------------------------


def _plan_from_json(obj: Any) -> _Plan:
    if not isinstance(obj, dict):
        raise FileFormatError(f"an ACSet JSON diagram is an object with tables V and E, got {_kind_of(obj)}")
    if "format" not in obj:
        raise FileFormatError(f"no 'format' key: a learning-diagrams file has \"format\": {FORMAT!r}")
    if obj["format"] != FORMAT:
        raise FileFormatError(f"'format' is {obj['format']!r}, but this version reads {FORMAT!r}")
    _known_keys(obj, _JSON_KEYS, "the top level")
    for table in ("V", "E"):
        if table not in obj:
            raise FileFormatError(f"no table {table!r}: an ACSet JSON diagram has tables V and E")
    vertices = []
    for i, row in _rows(obj, "V", _V_FIELDS):
        name = row["name"]
        at = _row_at("V", i, f"vertex {name!r}")
        for key in ("data", "loss"):
            _name_or_null(row[key], at(key))
        vertices.append(_Vertex(name, row["data"], row["loss"], row["type"], at))
    names = [v.name for v in vertices]
    edges, ends = [], []
    for i, row in _rows(obj, "E", _E_FIELDS):
        at = _row_at("E", i, f"edge {row['name']!r}")
        src, tgt = (names[_foreign(row[k], "V", len(names), at(k)) - 1] for k in ("src", "tgt"))
        _name_or_null(row["fn"], at("fn"))
        flags = [_boolean(row[k], at(k)) for k in ("trainable", "training")]
        edges.append(_Edge(row["name"], src, tgt, row["fn"], *flags, at=at))
        ends.append((src, tgt))
    relations = []
    for i, row in _rows(obj, "R", _R_FIELDS):
        at = _row_at("R", i, "relation")
        src, tgt = (names[_foreign(row[k], "V", len(names), at(k)) - 1] for k in ("src", "tgt"))
        first, second = (_json_path(row[k], src, tgt, edges, ends, at(k)) for k in ("first", "second"))
        relations.append(_Relation(first, second, _weight(row["weight"], at("weight")), at))
    max_length, max_paths = _options(obj.get("options", {}), "'options'")
    return _Plan(vertices, edges, relations, max_length, max_paths)


def _rows(obj: dict[str, Any], table: str, fields: tuple[str, ...]) -> Iterator[tuple[int, dict[str, Any]]]:
    rows = obj.get(table, [])
    if not isinstance(rows, list):
        raise FileFormatError(f"table {table}: expected a list of rows, got {_kind_of(rows)}")
    for position, row in enumerate(rows, 1):
        where = f"table {table}, row {position}"
        if not isinstance(row, dict):
            raise FileFormatError(f"{where}: expected an object, got {_kind_of(row)}")
        missing = [f for f in fields if f not in row]
        if missing:
            raise FileFormatError(f"{where}: missing {_listed(missing)} (a {table} row has {_listed(fields)})")
        _known_keys(row, fields, where)
        _id = row["_id"]
        if not _is_int(_id) or _id != position:
            raise FileFormatError(
                f"{where}: '_id' is {_id!r}, but ids are 1-based and follow the row order: this row is {position}"
            )
        yield position, row


def _row_at(table: str, i: int, what: str) -> _Where:
    def at(key: str | None) -> str:
        row = f"table {table}, _id {i} ({what})"
        return row if key is None else f"{row}, field {key!r}"

    return at


def _foreign(value: Any, table: str, size: int, where: str) -> int:
    if not _is_int(value) or not 1 <= value <= size:
        span = f"ids 1 to {size}" if size else "no rows"
        raise FileFormatError(f"{where}: {value!r} is not an id of table {table} (it has {span})")
    return value


def _json_path(value: Any, src: str, tgt: str, edges: list[_Edge], ends: list[tuple[str, str]], where: str) -> Path:
    if not isinstance(value, list):
        raise FileFormatError(f"{where}: a path is a list of E ids ([] for the identity of src), got {_kind_of(value)}")
    ids = [_foreign(v, "E", len(edges), f"{where}[{k}]") for k, v in enumerate(value)]
    at = src
    for k, i in enumerate(ids):
        s, t = ends[i - 1]
        if s != at:
            raise FileFormatError(
                f"{where}: the path does not run from src: E id {i} (edge {edges[i - 1].name!r}) at position {k} "
                f"starts at {s!r}, not {at!r}"
            )
        at = t
    if at != tgt:
        which = "the identity path (an empty list) needs src == tgt" if not ids else f"the path ends at {at!r}"
        raise FileFormatError(f"{where}: {which}, but the relation's tgt is {tgt!r}")
    return Path(src, tgt, tuple(edges[i - 1].name for i in ids))


# --- reading the YAML config form -------------------------------------------------------------


def _plan_from_config(obj: Any) -> _Plan:
    if obj is None:
        obj = {}
    if not isinstance(obj, dict):
        raise FileFormatError(f"a diagram config is a mapping with keys {_listed(_CONFIG_KEYS)}, got {_kind_of(obj)}")
    _known_keys(obj, _CONFIG_KEYS, "the top level")
    if "format" in obj and obj["format"] != FORMAT:
        raise FileFormatError(f"format: {obj['format']!r}, but this version reads {FORMAT!r}")
    vertices = []
    for name, entry in _named_entries(obj.get("spaces"), "spaces"):
        at = _key_at(f"spaces.{name}")
        entry = {} if entry is None else entry
        if not isinstance(entry, dict):
            raise FileFormatError(f"{at(None)}: expected a mapping such as {{data: train_ds}}, got {_kind_of(entry)}")
        _known_keys(entry, ("data", "loss", "type"), at(None))
        for key in ("data", "loss"):
            _name_or_null(entry.get(key), at(key))
        vertices.append(_Vertex(name, entry.get("data"), entry.get("loss"), entry.get("type"), at))
    edges = []
    for name, entry in _named_entries(obj.get("maps"), "maps"):
        at = _key_at(f"maps.{name}")
        if not isinstance(entry, dict):
            raise FileFormatError(f"{at(None)}: expected a mapping such as {{src: X, tgt: Y}}, got {_kind_of(entry)}")
        _known_keys(entry, ("src", "tgt", "fn", "trainable", "training"), at(None))
        for key in ("src", "tgt"):
            if key not in entry:
                raise FileFormatError(f"{at(key)}: missing (a map has src and tgt, the names of two spaces)")
            if not isinstance(entry[key], str):
                raise FileFormatError(f"{at(key)}: expected the name of a space, got {_kind_of(entry[key])}")
        fn = entry.get("fn", name)
        _name_or_null(fn, at("fn"))
        flags = [_boolean(entry.get(k, True), at(k)) for k in ("trainable", "training")]
        edges.append(_Edge(name, entry["src"], entry["tgt"], fn, *flags, at=at))
    relations = []
    items = obj.get("relations") or []
    if not isinstance(items, list):
        raise FileFormatError(f"relations: expected a list, got {_kind_of(items)}")
    for k, item in enumerate(items):
        at = _key_at(f"relations[{k}]")
        if isinstance(item, list) and len(item) in (2, 3):
            first, second, weight = item[0], item[1], item[2] if len(item) == 3 else 1.0
        elif isinstance(item, dict):
            _known_keys(item, ("first", "second", "weight"), at(None))
            for key in ("first", "second"):
                if key not in item:
                    raise FileFormatError(f"{at(key)}: missing")
            first, second, weight = item["first"], item["second"], item.get("weight", 1.0)
        else:
            raise FileFormatError(
                f"{at(None)}: a relation is [first, second], [first, second, weight] or "
                f"{{first: ..., second: ..., weight: ...}}, got {item!r}"
            )
        for key, p in (("first", first), ("second", second)):
            if not (isinstance(p, str) or (isinstance(p, list) and p and all(isinstance(e, str) for e in p))):
                raise FileFormatError(f"{at(key)}: a path is 'a·b', 'a.b', 'id(X)' or a list of edge names, got {p!r}")
        relations.append(_Relation(first, second, _weight(weight, at("weight")), at))
    max_length, max_paths = _options(obj.get("options") or {}, "options")
    return _Plan(vertices, edges, relations, max_length, max_paths)


def _named_entries(section: Any, key: str) -> Iterator[tuple[str, Any]]:
    if section is None:
        return
    if not isinstance(section, dict):
        raise FileFormatError(f"{key}: expected a mapping from names to entries, got {_kind_of(section)}")
    for name, entry in section.items():
        if not isinstance(name, str):
            raise FileFormatError(
                f"{key}: the key {name!r} is not a name (YAML reads yes/no/on/off/true/false/null and numbers "
                f"as other things than strings: quote it)"
            )
        yield name, entry


def _key_at(prefix: str) -> _Where:
    return lambda key: prefix if key is None else f"{prefix}.{key}"


# --- checks shared by both layouts --------------------------------------------------------------


def _known_keys(obj: Mapping[str, Any], allowed: Iterable[str], where: str) -> None:
    allowed = tuple(allowed)
    unknown = [k for k in obj if k not in allowed]
    if unknown:
        raise FileFormatError(f"{where}: unknown key(s) {_listed(unknown)} (known: {_listed(allowed)})")


def _name_or_null(value: Any, where: str) -> None:
    if value is not None and not (isinstance(value, str) and value):
        raise FileFormatError(f"{where}: expected a name (a non-empty string) or null, got {_kind_of(value)}")


def _boolean(value: Any, where: str) -> bool:
    if not isinstance(value, bool):
        raise FileFormatError(f"{where}: expected true or false, got {value!r}")
    return value


def _weight(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise FileFormatError(f"{where}: a weight is a finite number, got {value!r}")
    return float(value)


def _options(obj: Any, where: str) -> tuple[int | None, int]:
    if not isinstance(obj, dict):
        raise FileFormatError(f"{where}: expected a mapping with keys {_listed(_OPTION_KEYS)}, got {_kind_of(obj)}")
    _known_keys(obj, _OPTION_KEYS, where)
    max_length, max_paths = obj.get("max_length"), obj.get("max_paths", DEFAULT_MAX_PATHS)
    if max_length is not None and (not _is_int(max_length) or max_length < 0):
        raise FileFormatError(f"{where}, max_length: expected null or an integer ≥ 0, got {max_length!r}")
    if not _is_int(max_paths) or max_paths < 1:
        raise FileFormatError(f"{where}, max_paths: expected an integer ≥ 1, got {max_paths!r}")
    return max_length, max_paths


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _kind_of(value: Any) -> str:
    return {dict: "a mapping", list: "a list", str: f"the string {value!r}", type(None): "null"}.get(
        type(value), f"{value!r} (a {type(value).__name__})"
    )


def _listed(items: Iterable[Any]) -> str:
    return ", ".join(map(repr, items))


# --- binding names and building the diagram -----------------------------------------------------


def _build(plan: _Plan, env: Mapping[str, Any] | None) -> tuple[Diagram, dict[str, Any]]:
    """The diagram of ``plan`` with its names bound, and the objects its ``fn`` names stand for."""
    scope: Mapping[str, Any] = {} if env is None else env
    diagram = Diagram(max_length=plan.max_length, max_paths=plan.max_paths)
    for v in plan.vertices:
        data = None if v.data is None else _lookup(scope, v.data, v.at("data"), f"the data of vertex {v.name!r}")
        loss = None if v.loss is None else _resolve_loss(scope, v.loss, v.at("loss"))
        annotation = _type_from(v.type, v.at("type"))
        with _located(v.at(None)):
            diagram.space(v.name, data=data, loss=loss, type=annotation)
    functions: dict[str, Any] = {}
    for e in plan.edges:
        for key in ("src", "tgt"):
            end = getattr(e, key)
            if end not in diagram.spaces:
                raise UnknownNameError(f"{e.at(key)}: no space named {end!r}{_suggest(end, diagram.spaces)}")
        fn = None
        if e.fn is not None:
            what = f"the function of edge {e.name!r} ({e.src} → {e.tgt})"
            fn = functions[e.fn] = _lookup(scope, e.fn, e.at("fn"), what)
        with _located(e.at(None)):
            diagram.map(e.name, e.src, e.tgt, fn, trainable=e.trainable, training=e.training)
    for r in plan.relations:
        with _located(r.at("first")):
            first = diagram.path(r.first)
        with _located(r.at("second")):
            second = diagram.path(r.second)
        with _located(r.at(None)):
            diagram.relate(first, second, weight=r.weight)
    return diagram, functions


def _lookup(scope: Mapping[str, Any], name: str, where: str, what: str) -> Any:
    if name in scope:
        return scope[name]
    raise UnknownNameError(
        f"{where}: env has no {name!r}, {what}{_suggest(name, scope)}; pass it: env={{{name!r}: ...}}"
    )


def _resolve_loss(scope: Mapping[str, Any], name: str, where: str) -> Any:
    if name in scope:
        return scope[name]
    if name in _LIBRARY:
        return _LIBRARY[name]
    match = _KL_NAME.fullmatch(name)
    if match:
        try:
            return KLDivergence(temperature=float(match.group(1)))
        except ValueError as err:
            raise FileFormatError(f"{where}: {err}") from err
    known = [*scope, *_LIBRARY, "kl_div(T=1.0)"]
    raise UnknownNameError(
        f"{where}: no loss named {name!r} in env or the library{_suggest(name, known)}; "
        f"library losses: {', '.join(_LIBRARY)}, kl_div(T=<temperature>)"
    )


def _type_from(spec: Any, where: str) -> Any:
    if spec is None:
        return None
    if isinstance(spec, str):
        if spec in _CLASSES:
            return _CLASSES[spec]
        if spec in _CLASS_ALIASES:
            return _CLASS_ALIASES[spec]
        raise UnknownNameError(
            f"{where}: unknown type {spec!r}{_suggest(spec, _CLASSES)}; a type name is one of {', '.join(_CLASSES)}"
        )
    if isinstance(spec, list):
        return tuple(_type_from(s, f"{where}[{k}]") for k, s in enumerate(spec))
    if isinstance(spec, dict) and len(spec) == 1:
        ((key, value),) = spec.items()
        if key == "tuple" and isinstance(value, list):
            return tuple(_type_from(s, f"{where}.tuple[{k}]") for k, s in enumerate(value))
        if key == "dtype":
            return _dtype_from(value, f"{where}.dtype")
        if key == "tensor" and isinstance(value, dict):
            _known_keys(value, ("shape", "dtype"), f"{where}.tensor")
            shape = value.get("shape")
            if not isinstance(shape, list) or not all(d is None or (_is_int(d) and d >= 0) for d in shape):
                raise FileFormatError(f"{where}.tensor.shape: expected a list of sizes or nulls, got {shape!r}")
            dtype = value.get("dtype")
            return TensorType(*shape, dtype=None if dtype is None else _dtype_from(dtype, f"{where}.tensor.dtype"))
    raise FileFormatError(
        f"{where}: {spec!r} is not a type spec; write 'Any', 'Tensor', a class name ({', '.join(list(_CLASSES)[2:])}), "
        "{'dtype': 'float32'}, {'tensor': {'shape': [null, 10], 'dtype': 'float32'}} or {'tuple': [...]}"
    )


def _dtype_from(name: Any, where: str) -> torch.dtype:
    if isinstance(name, str) and name.removeprefix("torch.") in _DTYPES:
        return _DTYPES[name.removeprefix("torch.")]
    shown = name if isinstance(name, str) else repr(name)
    raise UnknownNameError(f"{where}: no torch dtype named {name!r}{_suggest(str(shown), _DTYPES)}")


def _suggest(name: str, known: Iterable[Any]) -> str:
    close = difflib.get_close_matches(name, sorted({k for k in known if isinstance(k, str)}), n=3)
    return f" (did you mean {' or '.join(map(repr, close))}?)" if close else ""


@contextlib.contextmanager
def _located(where: str) -> Iterator[None]:
    """Re-raise a :class:`DiagramError` with ``where`` in front of its message, keeping its class."""
    try:
        yield
    except DiagramError as err:
        message = str(err)
        if message.startswith(where):
            raise
        try:
            located = type(err)(f"{where}: {message}")
        except Exception:  # pragma: no cover - an error class with another constructor
            located = FileFormatError(f"{where}: {message}")
        raise located from err


# --- weights ------------------------------------------------------------------------------------


def _load_weights(file: FilePath, modules: Mapping[str, nn.Module]) -> None:
    try:
        with safetensors.safe_open(str(file), framework="pt") as f:
            metadata = f.metadata() or {}
            stored = {key: f.get_tensor(key) for key in f.keys()}  # noqa: SIM118 - safe_open is not a dict
    except Exception as err:  # safetensors raises its own error type for a damaged header
        raise FileFormatError(f"{file}: not a readable safetensors file: {err}") from err
    for alias, kept in metadata.items():
        if alias == "format":
            continue
        if kept not in stored:
            raise FileFormatError(f"{file}: metadata says {alias!r} is {kept!r}, which the file does not hold")
        stored[alias] = stored[kept]
    unique: dict[str, nn.Module] = {}
    for name, module in modules.items():
        if any(module is other for other in unique.values()):
            continue
        if "." in name:
            raise FileFormatError(
                f"{file}: the module named {name!r} cannot be matched to its weights (a '.' in its name)"
            )
        unique[name] = module
    expected = {f"{n}.{k}": t for n, m in unique.items() for k, t in m.state_dict().items()}
    missing = [k for k in expected if k not in stored]
    unexpected = sorted(k for k in stored if k not in expected)
    mismatched = [
        f"{k}: {tuple(stored[k].shape)} in the file, {tuple(expected[k].shape)} in the model"
        for k in expected
        if k in stored and stored[k].shape != expected[k].shape
    ]
    if missing or unexpected or mismatched:
        parts = [f"{file}: the weights do not fit the modules of env ({', '.join(unique) or 'none'})"]
        if missing:
            parts.append(f"missing from the file: {', '.join(missing)}")
        if unexpected:
            parts.append(f"in the file but in no module: {', '.join(unexpected)}")
        if mismatched:
            parts.append(f"shapes differ: {'; '.join(mismatched)}")
        raise FileFormatError("\n  ".join(parts))
    for name, module in unique.items():
        prefix = f"{name}."
        module.load_state_dict({k[len(prefix) :]: v for k, v in stored.items() if k.startswith(prefix)}, strict=True)
