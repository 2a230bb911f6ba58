"""The YAML config form (``.yaml``, ``.yml``): a diagram's plan keyed by name, for configs written by hand.

A friendlier form for configs written by hand, keyed by name rather than id::

    format: learning-diagrams/1          # optional when read
    spaces:
      N: {data: train_ds}
      M: {indexing: true}                # an indexing vertex whose data comes later
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
    options: {max_length: 4, cycles: simple}   # cycles: simple (the default) or walks
    weights: {file: distil.3f2a9c1b0d4e.safetensors, sha256: 3f2a9c1b0d4e...}   # written by save

``trainable`` and ``training`` default to true, ``indexing`` to false (data
makes a vertex indexing). Errors name the key path
(``maps.f.src``, ``relations[1].first``). :func:`save` writes this form, with
only the non-default flags, and ``weights``: ``null``, or the weights file saved
with the diagram and the SHA-256 of its bytes (see :mod:`.files`). A config
without ``weights`` (written by hand, or before the key existed) takes its
weights from ``<stem>.safetensors`` beside it, when that exists.

YAML is read with a subclass of ``yaml.SafeLoader``, so tags such as
``!!python/object`` are refused before anything is built; every string is a
*name*, bound by :mod:`.binding`. It also refuses a duplicate key, nesting
deeper than :data:`~.limits.MAX_FILE_DEPTH` levels, and **anchors and aliases**
(``&base`` ... ``*base``, and so ``<<: *base`` merges): a handful of nested
aliases stand for billions of values (the "billion laughs"), and a diagram
file is short enough to write out in full. :func:`save` never writes them.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import yaml

from ..core.errors import FileFormatError
from .limits import MAX_FILE_DEPTH, clipped, shown
from .plan import (
    FORMAT,
    EdgeRow,
    Plan,
    RelationRow,
    VertexRow,
    Where,
    check_boolean,
    check_keys,
    check_name_or_null,
    check_weight,
    kind_of,
    quoted,
    read_options,
    read_weights_entry,
    weights_entry_of,
)

__all__ = ["config_of", "plan_from_config", "read_yaml", "dump_yaml"]

CONFIG_KEYS = ("format", "spaces", "maps", "relations", "options", "weights")


def config_of(plan: Plan) -> dict[str, Any]:
    spaces = {}
    for v in plan.vertices:
        spaces[v.name] = {k: x for k, x in (("data", v.data), ("loss", v.loss), ("type", v.type)) if x is not None}
        if v.indexing and v.data is None:  # data makes a vertex indexing: only say it when there is none
            spaces[v.name]["indexing"] = True
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
        "options": {"max_length": plan.max_length, "max_paths": plan.max_paths, "cycles": plan.cycles},
        "weights": weights_entry_of(plan.weights),
    }


class _Dumper(yaml.SafeDumper):
    """``yaml.SafeDumper`` that writes a value shared by two places twice, never as an anchor and alias."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def dump_yaml(obj: Any) -> str:
    """``obj`` (plain dicts and lists) as YAML text, in the order and style :func:`config_of` intends."""
    return yaml.dump(obj, Dumper=_Dumper, sort_keys=False, allow_unicode=True, default_flow_style=None, width=120)


class _Loader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that reads plain data in bounded time and memory.

    On top of the safe loader (no tag builds a Python object): a duplicate key
    is refused (a set of the keys seen, so a mapping costs linear time), and so
    are anchors and aliases (``&name``, ``*name``: an alias repeats a value, and
    a few nested ones repeat it exponentially often: a "billion laughs"), and
    nesting deeper than :data:`~.limits.MAX_FILE_DEPTH`. The limits are checked
    as the document is composed, before anything is built.
    """

    _depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None) is not None:
            kind = "an alias" if isinstance(event, yaml.AliasEvent) else "an anchor"
            raise FileFormatError(
                f"{_at(event.start_mark)}: {kind} ({'*' if kind == 'an alias' else '&'}{clipped(event.anchor, 40)}); "
                f"anchors and aliases are not read in diagram files (a few nested aliases can stand for "
                f"billions of values): write the value out in full"
            )
        self._depth += 1
        try:
            if self._depth > MAX_FILE_DEPTH:
                raise FileFormatError(
                    f"{_at(event.start_mark)}: lists and mappings are nested more than {MAX_FILE_DEPTH} levels deep; "
                    f"a diagram file nests a few levels"
                )
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def _at(mark: Any) -> str:
    return f"line {mark.line + 1}, column {mark.column + 1}"


def _mapping(loader: _Loader, node: yaml.MappingNode) -> Any:
    loader.flatten_mapping(node)
    seen: dict[Any, Any] = {}  # key → its node: hashing makes the check linear
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=True)
        try:
            first = seen.setdefault(key, key_node)
        except TypeError:  # an unhashable key: construct_mapping refuses it, naming the place
            continue
        if first is not key_node:
            raise FileFormatError(
                f"{_at(key_node.start_mark)}: found duplicate key {shown(key)} (first at "
                f"{_at(first.start_mark)}); a mapping has each key once"
            )
    return loader.construct_mapping(node, deep=True)


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping)


def read_yaml(text: str) -> Any:
    """The plain data of a YAML text.

    Raises
    ------
    FileFormatError
        For a Python tag, a duplicate key, an anchor or alias, nesting past
        :data:`~.limits.MAX_FILE_DEPTH`, or text that is not YAML.
    """
    try:
        return yaml.load(text, Loader=_Loader)  # a SafeLoader: no tag can build a Python object
    except FileFormatError:  # a limit of _Loader
        raise
    except yaml.constructor.ConstructorError as err:
        raise FileFormatError(f"refused YAML (only plain data is read, never Python objects): {err}") from err
    except yaml.YAMLError as err:
        raise FileFormatError(f"not valid YAML: {err}") from err
    except (ValueError, OverflowError) as err:  # a value the safe constructors cannot build
        raise FileFormatError(f"not valid YAML: a value cannot be read: {shown(str(err), 200)}") from err


def plan_from_config(obj: Any) -> Plan:
    if obj is None:
        obj = {}
    if not isinstance(obj, dict):
        raise FileFormatError(f"a diagram config is a mapping with keys {quoted(CONFIG_KEYS)}, got {kind_of(obj)}")
    check_keys(obj, CONFIG_KEYS, "the top level")
    if "format" in obj and obj["format"] != FORMAT:
        raise FileFormatError(f"format: {shown(obj['format'])}, but this version reads {FORMAT!r}")
    vertices = []
    for name, entry in _named_entries(obj.get("spaces"), "spaces"):
        at = _key_at(f"spaces.{name}")
        entry = {} if entry is None else entry
        if not isinstance(entry, dict):
            raise FileFormatError(f"{at(None)}: expected a mapping such as {{data: train_ds}}, got {kind_of(entry)}")
        check_keys(entry, ("data", "loss", "type", "indexing"), at(None))
        for key in ("data", "loss"):
            check_name_or_null(entry.get(key), at(key))
        indexing = check_boolean(entry.get("indexing", False), at("indexing"))
        vertices.append(VertexRow(name, entry.get("data"), entry.get("loss"), entry.get("type"), at, indexing))
    edges = []
    for name, entry in _named_entries(obj.get("maps"), "maps"):
        at = _key_at(f"maps.{name}")
        if not isinstance(entry, dict):
            raise FileFormatError(f"{at(None)}: expected a mapping such as {{src: X, tgt: Y}}, got {kind_of(entry)}")
        check_keys(entry, ("src", "tgt", "fn", "trainable", "training"), at(None))
        for key in ("src", "tgt"):
            if key not in entry:
                raise FileFormatError(f"{at(key)}: missing (a map has src and tgt, the names of two spaces)")
            if not isinstance(entry[key], str):
                raise FileFormatError(f"{at(key)}: expected the name of a space, got {kind_of(entry[key])}")
        fn = entry.get("fn", name)
        check_name_or_null(fn, at("fn"))
        trainable, training = (check_boolean(entry.get(k, True), at(k)) for k in ("trainable", "training"))
        edges.append(EdgeRow(name, entry["src"], entry["tgt"], fn, trainable, training, at=at))
    relations = []
    items = obj.get("relations") or []
    if not isinstance(items, list):
        raise FileFormatError(f"relations: expected a list, got {kind_of(items)}")
    for k, item in enumerate(items):
        at = _key_at(f"relations[{k}]")
        if isinstance(item, list) and len(item) in (2, 3):
            first, second, weight = item[0], item[1], item[2] if len(item) == 3 else 1.0
        elif isinstance(item, dict):
            check_keys(item, ("first", "second", "weight"), at(None))
            for key in ("first", "second"):
                if key not in item:
                    raise FileFormatError(f"{at(key)}: missing")
            first, second, weight = item["first"], item["second"], item.get("weight", 1.0)
        else:
            raise FileFormatError(
                f"{at(None)}: a relation is [first, second], [first, second, weight] or "
                f"{{first: ..., second: ..., weight: ...}}, got {shown(item)}"
            )
        for key, p in (("first", first), ("second", second)):
            if not (isinstance(p, str) or (isinstance(p, list) and p and all(isinstance(e, str) for e in p))):
                raise FileFormatError(
                    f"{at(key)}: a path is 'a·b', 'a.b', 'id(X)' or a list of edge names, got {shown(p)}"
                )
        relations.append(RelationRow(first, second, check_weight(weight, at("weight")), at))
    max_length, max_paths, cycles = read_options(obj.get("options") or {}, "options")
    plan = Plan(vertices, edges, relations, max_length, max_paths, cycles=cycles)
    if "weights" in obj:
        plan.weights = read_weights_entry(obj["weights"], "weights")
    else:
        plan.weights_recorded = False
    return plan


def _named_entries(section: Any, key: str) -> Iterator[tuple[str, Any]]:
    if section is None:
        return
    if not isinstance(section, dict):
        raise FileFormatError(f"{key}: expected a mapping from names to entries, got {kind_of(section)}")
    for name, entry in section.items():
        if not isinstance(name, str):
            raise FileFormatError(
                f"{key}: the key {shown(name)} is not a name (YAML reads yes/no/on/off/true/false/null and numbers "
                f"as other things than strings: quote it)"
            )
        yield name, entry


def _key_at(prefix: str) -> Where:
    return lambda key: prefix if key is None else f"{prefix}.{key}"
