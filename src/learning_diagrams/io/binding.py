"""Naming a diagram's objects when it is saved, and binding the names when it is loaded.

A file holds a diagram's structure; what the diagram holds (data sources,
models and functions, losses) is stored **by name**.

On save, each object gets its name from, in order:

1. ``names``, a mapping *name → object* (typically the very ``env`` you will
   load with), inverted by identity; a plain callable given as a loss is
   found through the :class:`~learning_diagrams.core.losses.Loss` wrapping it;
2. for a library loss (:data:`learning_diagrams.core.losses.LIBRARY`), its
   ``name`` (``"mse"``, ``"kl_div(T=2.0)"``); another
   :class:`~learning_diagrams.core.losses.Loss` goes by its ``name`` when that
   is an identifier which is not a library loss's name, and is refused otherwise;
3. for a function or model, the name of the first edge that carries it (so
   by default ``fn`` is the edge's own name, and one model on two edges gets
   one name and is stored once); for a data source, the name of the first
   vertex that carries it.

Two different objects may not get the same name (saving raises
:class:`~learning_diagrams.core.errors.FileFormatError` naming both places). On
load, ``data`` and ``fn`` names are looked up in ``env``; a ``loss`` name in
``env``, then among the library losses. Names that are missing raise one
:class:`~learning_diagrams.core.errors.UnknownNameError` listing every one of
them (up to 50, then a count), each with the first place that uses it (and, for
a function, the edge) and the closest names. ``null`` stays ``None``. Binding
only looks names up: nothing is imported, called or evaluated.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from ..core.arrays import is_torch_module
from ..core.diagram import Diagram
from ..core.errors import FileFormatError, OptionError, TypeMismatchError, UnknownNameError
from ..core.losses import LIBRARY, Loss, as_loss, by_name, is_library
from ..core.messages import did_you_mean, located
from .limits import bounded_messages, clipped, shown
from .plan import EdgeRow, Plan, RelationRow, VertexRow
from .typespecs import type_from, type_spec

__all__ = ["Namer", "plan_of", "build"]


class Namer:
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

    def name(self, obj: Any, role: str, default: str, what: str) -> str:
        """The name of ``obj`` (a data source or a function), by the rules of the module docstring."""
        found = self.given(obj)
        return self.claim(found[0] if found else self.first(role, obj, default), id(obj), what)

    def claim(self, name: str, identity: Any, what: str) -> str:
        """Record that ``name`` stands for the object known by ``identity``; refuse a second one."""
        previous = self._claimed.setdefault(name, (identity, what))
        if previous[0] != identity:
            raise FileFormatError(
                f"the name {name!r} would stand for two different objects, {previous[1]} and {what}; "
                f"give them different names with names={{...}}"
            )
        return name


def plan_of(diagram: Diagram, names: Mapping[str, Any] | None) -> Plan:
    namer = Namer(names)
    vertices = []
    for v, space in diagram.spaces.items():
        data = None
        if space.data is not None:
            data = namer.name(space.data, "data", v, f"the data of vertex {v!r}")
        loss = None if space.loss is None else _loss_name(space.loss, namer, v)
        vertices.append(VertexRow(v, data, loss, type_spec(space.type, f"vertex {v!r}"), indexing=space.indexing))
    edges, modules = [], {}
    for e, m in diagram.maps.items():
        fn = None
        if m.fn is not None:
            fn = namer.name(m.fn, "fn", e, f"the function of edge {e!r}")
            if is_torch_module(m.fn):
                if "." in fn:
                    raise FileFormatError(
                        f"edge {e!r}: its module is named {fn!r}, but a module's name keys its weights "
                        f"('{fn}.weight' would be ambiguous): give it a name without '.'"
                    )
                modules[fn] = m.fn
        edges.append(EdgeRow(e, m.src, m.tgt, fn, m.trainable, m.training))
    relations = []
    for r in diagram.relations:
        if not math.isfinite(r.weight):
            raise FileFormatError(f"relation {r}: its weight {r.weight} is not a finite number")
        relations.append(RelationRow(r.first, r.second, r.weight))
    return Plan(vertices, edges, relations, diagram.max_length, diagram.max_paths, modules, cycles=diagram.cycles)


def _loss_name(loss: Loss, namer: Namer, vertex: str) -> str:
    what = f"the loss of vertex {vertex!r}"
    identity = ("loss", id(loss.fn), loss.symmetric, loss.name)
    # A plain callable given as a loss was wrapped by as_loss: it is named by the callable, and
    # loads back to the same wrapper. A Loss that as_loss would not rebuild is named by itself.
    wraps = type(loss) is Loss and not isinstance(loss.fn, Loss) and loss == as_loss(loss.fn)
    found = namer.given(loss, loss.fn) if wraps else namer.given(loss)
    if found:
        return namer.claim(found[0], identity, what)
    if is_library(loss):
        return loss.name
    if loss.name.isidentifier() and loss.name not in LIBRARY:
        return namer.claim(loss.name, identity, what)
    raise FileFormatError(
        f"vertex {vertex!r}: its loss {loss!r} is not a library loss and its name {loss.name!r} "
        f"cannot stand for it; name it: names={{'my_loss': loss}} (then load with env={{'my_loss': ...}})"
    )


def build(plan: Plan, env: Mapping[str, Any] | None) -> tuple[Diagram, dict[str, Any]]:
    """The diagram of ``plan`` with its names bound, and the objects its ``fn`` names stand for.

    Every name the plan needs is looked up first: when some are missing, one
    :class:`UnknownNameError` lists them all (each with the first place that
    uses it), rather than the first alone.
    """
    if env is not None and not isinstance(env, Mapping):
        raise TypeMismatchError(f"env must be a mapping from names to objects, got a {type(env).__name__}")
    scope: Mapping[str, Any] = {} if env is None else env
    _refuse_missing(plan, scope)
    diagram = Diagram(max_length=plan.max_length, max_paths=plan.max_paths, cycles=plan.cycles)
    for v in plan.vertices:
        what = f"the data of vertex {shown(v.name)}"
        data = None if v.data is None else _lookup(scope, v.data, v.at("data"), what)
        loss = None if v.loss is None else _resolve_loss(scope, v.loss, v.at("loss"))
        annotation = type_from(v.type, v.at("type"))
        with located(v.at(None)), bounded_messages():
            diagram.space(v.name, data=data, loss=loss, type=annotation, indexing=v.indexing)
    functions: dict[str, Any] = {}
    for e in plan.edges:
        fn = None
        if e.fn is not None:
            fn = functions[e.fn] = _lookup(scope, e.fn, e.at("fn"), _function_of(e))
        with located(e.at(None)), bounded_messages():
            diagram.map(e.name, e.src, e.tgt, fn, trainable=e.trainable, training=e.training)
    for r in plan.relations:
        with located(r.at("first")), bounded_messages():
            first = diagram.path(r.first)
        with located(r.at("second")), bounded_messages():
            second = diagram.path(r.second)
        with located(r.at(None)), bounded_messages():
            diagram.relate(first, second, weight=r.weight)
    return diagram, functions


#: How many missing names one error lists (the rest are counted).
MAX_LISTED = 50


def _refuse_missing(plan: Plan, scope: Mapping[str, Any]) -> None:
    """Raise one UnknownNameError for every name of ``plan`` that neither ``scope`` nor the library has.

    An edge whose end is no vertex is refused first: that is a mistake in the file, not in env.
    """
    spaces = {v.name for v in plan.vertices}
    for e in plan.edges:
        for key in ("src", "tgt"):
            end = getattr(e, key)
            if end not in spaces:
                raise UnknownNameError(f"{e.at(key)}: no space named {shown(end)}{did_you_mean(end, spaces)}")
    missing: dict[str, str] = {}  # name → the message for its first place
    for v in plan.vertices:
        if v.data is not None and v.data not in scope and v.data not in missing:
            missing[v.data] = _env_has_no(scope, v.data, v.at("data"), f"the data of vertex {shown(v.name)}")
        if v.loss is not None and v.loss not in scope and v.loss not in missing:
            try:
                known = by_name(v.loss) is not None
            except OptionError:  # kl_div(T=0): not missing, refused when it is bound
                known = True
            if not known:
                missing[v.loss] = _no_loss(scope, v.loss, v.at("loss"))
    for e in plan.edges:
        if e.fn is not None and e.fn not in scope and e.fn not in missing:
            missing[e.fn] = _env_has_no(scope, e.fn, e.at("fn"), _function_of(e))
    if not missing:
        return
    if len(missing) == 1:
        ((name, message),) = missing.items()
        raise UnknownNameError(f"{message}; pass it: env={{{shown(name)}: ...}}")
    listed = list(missing.values())[:MAX_LISTED]
    if len(missing) > MAX_LISTED:
        listed.append(f"and {len(missing) - MAX_LISTED} more")
    passed = ", ".join(f"{shown(name)}: ..." for name in list(missing)[:MAX_LISTED])
    raise UnknownNameError(
        f"{len(missing)} names are missing from env: {'; '.join(listed)}; pass them: env={{{passed}}}"
    )


def _function_of(e: EdgeRow) -> str:
    return f"the function of edge {shown(e.name)} ({clipped(e.src)} → {clipped(e.tgt)})"


def _env_has_no(scope: Mapping[str, Any], name: str, where: str, what: str) -> str:
    return f"{where}: env has no {shown(name)}, {what}{did_you_mean(name, scope)}"


def _no_loss(scope: Mapping[str, Any], name: str, where: str) -> str:
    known = [*scope, *LIBRARY, "kl_div(T=1.0)"]
    return (
        f"{where}: no loss named {shown(name)} in env or the library{did_you_mean(name, known)}; "
        f"library losses: {', '.join(LIBRARY)}, kl_div(T=<temperature>)"
    )


def _lookup(scope: Mapping[str, Any], name: str, where: str, what: str) -> Any:
    if name in scope:
        return scope[name]
    raise UnknownNameError(f"{_env_has_no(scope, name, where, what)}; pass it: env={{{shown(name)}: ...}}")


def _resolve_loss(scope: Mapping[str, Any], name: str, where: str) -> Any:
    if name in scope:
        return scope[name]
    try:
        loss = by_name(name)
    except OptionError as err:  # kl_div(T=0)
        raise FileFormatError(f"{where}: {err}") from err
    if loss is not None:
        return loss
    raise UnknownNameError(_no_loss(scope, name, where))
