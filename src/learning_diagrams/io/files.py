"""Saving and loading diagrams: Catlab's ACSet JSON, a YAML config form, safetensors weights.

A file holds a diagram's *structure*: its vertices, edges, relations and
options. What the diagram holds (data sources, models and functions, losses)
is stored **by name** and bound again when the file is loaded, from the
``env`` mapping the caller passes, as :func:`learning_diagrams.parse` binds
the names of its text (:mod:`.binding` has the rules). The weights of every
``torch.nn.Module`` on an edge go to a safetensors file beside it
(:mod:`.weights`), named after the diagram file and the start of its SHA-256:
``save(d, "run/distil.json")`` writes ``run/distil.3f2a9c1b0d4e.safetensors``,
then ``run/distil.json``, whose ``weights`` entry names that file and records
its whole SHA-256 (:func:`weights_path` finds it).

The two layouts are :mod:`.acset` (``.json``, Catlab.jl's ACSet JSON, with
the schema the library ships) and :mod:`.config` (``.yaml``, keyed by name for
configs written by hand); type annotations are written as in :mod:`.typespecs`.
:func:`load` also reads the first JSON layout (:mod:`.legacy`), and a plain
Catlab graph (:mod:`.catlab`) as a diagram skeleton, whose extra attributes
:func:`metadata` returns.

**Loading never imports or runs anything from a file.** JSON and YAML are read
as plain data (YAML with a safe loader that also refuses anchors and aliases),
every string is a name, looked up in ``env`` or among the library's losses, or
parsed by a regular expression, and weights are read with safetensors, which
holds tensors only. Every reader is bounded (:mod:`.limits`): nesting, the
size of what an error message shows, and the cost of duplicate-key checks.

**A diagram and its weights are saved as one unit.** The weights file's name
is new whenever its content is (content addressing), so writing it leaves the
previous pair untouched; the diagram file, which names it, is written last and
commits the pair (both through :mod:`.atomic`, each move made durable before
the next); only then are the stem's weights files that no diagram file names
any longer removed. A crash at any moment leaves the old pair or the new pair
(and perhaps an unnamed weights file, removed by the next save), and a pair
mismatched anyway (copied by hand, damaged) is caught by the SHA-256, checked
before any weight is loaded. A file from before the ``weights`` entry existed
still loads, its weights from ``<stem>.safetensors`` when that exists.

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
>>> weights_path(f"{folder}/d.json").name.startswith("d.") and weights_path(f"{folder}/d.json").exists()
True
"""

from __future__ import annotations

import contextlib
import glob
import hashlib
import json
import os
import re
import weakref
from collections.abc import Mapping
from pathlib import Path as FilePath
from typing import Any

from torch import nn

from ..core.diagram import Diagram
from ..core.errors import DiagramError, FileFormatError, TypeMismatchError
from ..core.messages import SHA256_MISMATCH, located
from .acset import json_of, plan_from_json, read_json
from .atomic import write_atomic_many
from .binding import build, plan_of
from .config import config_of, dump_yaml, plan_from_config, read_yaml
from .plan import FORMAT, Plan, WeightsEntry
from .weights import load_weights, sha256_of, weights_bytes

__all__ = ["FORMAT", "save", "load", "to_json", "from_json", "to_config", "from_config", "weights_path", "metadata"]


def to_json(diagram: Diagram, names: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The diagram as an ACSet JSON object (plain dicts and lists, ready for :func:`json.dumps`).

    Parameters
    ----------
    diagram : Diagram
    names : mapping of str to object, optional
        What to call the diagram's data, models, functions and losses (the
        binding rules of :mod:`.binding`); usually the ``env`` it will be
        loaded with.

    Returns
    -------
    dict
        The tables ``V``, ``E``, ``Path``, ``Step``, ``R``, ``Diagram``, then
        the attribute types' (:mod:`.acset`); the weights file is unset: only
        :func:`save` writes one to name.

    Raises
    ------
    FileFormatError
        When something cannot be named or a type cannot be written.
    """
    return json_of(plan_of(diagram, names))


def to_config(diagram: Diagram, names: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The diagram in the YAML config form, as plain dicts and lists (see :func:`to_json`).

    >>> import learning_diagrams as ld
    >>> d = ld.Diagram().space("X", data=[1.0]).space("Y", loss=ld.losses.mse).map("f", "X", "Y", abs)
    >>> to_config(d, names={"ds": d.spaces["X"].data})["spaces"]
    {'X': {'data': 'ds'}, 'Y': {'loss': 'mse'}}
    """
    return config_of(plan_of(diagram, names))


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
        Also write the state dicts of the modules on its edges, to
        ``<stem>.<first 12 hex digits of its SHA-256>.safetensors`` beside
        ``path``, named with its SHA-256 in the diagram file's ``weights``
        entry. A diagram with no module (or ``weights=False``) records
        ``weights: null`` and writes no weights file.

    Notes
    -----
    The weights file is written first, under its new name, then the diagram
    file (the commit point), each replaced atomically; then the weights files
    of the same stem that no diagram file of that stem (``.json``, ``.yaml``,
    ``.yml``) names are removed, and so is a ``<stem>.safetensors`` the
    previous file used, when no other file of the stem may use it. A crash
    at any moment leaves the previous pair or the new one. One process saves
    to a path at a time.

    Raises
    ------
    FileFormatError
        For an unknown suffix, or a diagram the format cannot hold; nothing
        is written then.
    OSError
        When writing fails; the previous files are left as they were.
    """
    file = _path(path)
    kind = _kind(file)
    plan = plan_of(diagram, names)
    writes = []
    if weights and plan.modules:
        data = weights_bytes(plan.modules)
        digest = hashlib.sha256(data).hexdigest()
        plan.weights = WeightsEntry(f"{file.stem}.{digest[:12]}.safetensors", digest)
        writes.append((file.with_name(plan.weights.file), data))
    if kind == "json":
        text = json.dumps(json_of(plan), indent=2, ensure_ascii=False, allow_nan=False) + "\n"
    else:
        text = dump_yaml(config_of(plan))
    was_legacy = _previous_was_legacy(file)
    write_atomic_many([*writes, (file, text.encode("utf-8"))])  # the diagram file last: it commits the pair
    _remove_unnamed_weights(file, plan.weights, was_legacy)


def weights_path(path: str | os.PathLike[str]) -> FilePath | None:
    """The weights file of the diagram file at ``path``, or ``None`` when it records none.

    That is the file its ``weights`` entry names, beside it; for a file
    without the entry (written before it existed, or by hand), the
    ``<stem>.safetensors`` beside it, as then, whether or not it exists.

    Raises
    ------
    FileNotFoundError
        When ``path`` does not exist.
    FileFormatError
        When ``path`` is not a diagram file that can be read.

    >>> import tempfile, pathlib
    >>> file = pathlib.Path(tempfile.mkdtemp()) / "distil.yaml"
    >>> _ = file.write_text("spaces: {X: {}}", encoding="utf-8")
    >>> weights_path(file).name
    'distil.safetensors'
    """
    file = _path(path)
    return _weights_file(file, _read_plan(file, _kind(file)))


def _weights_file(file: FilePath, plan: Plan) -> FilePath | None:
    if not plan.weights_recorded:
        return file.with_suffix(".safetensors")
    return None if plan.weights is None else file.with_name(plan.weights.file)


def _read_plan(file: FilePath, kind: str) -> Plan:
    try:
        text = file.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise FileFormatError(f"{file}: not UTF-8 text: {err.reason} at byte {err.start}") from err
    with located(str(file)):
        return plan_from_json(read_json(text)) if kind == "json" else plan_from_config(read_yaml(text))


# Our weights files: "<stem>.<12 hex digits>.safetensors".
_OWN_WEIGHTS = r"\.[0-9a-f]{12}\.safetensors"
_SUFFIXES = (".json", ".yaml", ".yml")


def _previous_was_legacy(file: FilePath) -> bool:
    """Whether the diagram file about to be replaced records no weights entry (so used ``<stem>.safetensors``)."""
    try:
        return not _read_plan(file, _kind(file)).weights_recorded
    except (OSError, DiagramError):  # no previous file, or one that cannot be read: nothing to tidy
        return False


def _remove_unnamed_weights(file: FilePath, kept: WeightsEntry | None, was_legacy: bool) -> None:
    """After a save, remove the weights files of ``file``'s stem that no diagram file of the stem names.

    The other diagram files of the stem (``d.yaml`` beside ``d.json``) are read
    for what they name; when one cannot be read, nothing is removed.
    """
    named = {kept.file} if kept is not None else set()
    legacy_in_use = False
    for suffix in _SUFFIXES:
        sibling = file.with_suffix(suffix)
        if sibling.name == file.name or not sibling.is_file():
            continue
        try:
            plan = _read_plan(sibling, _kind(sibling))
        except (OSError, DiagramError):
            return
        if not plan.weights_recorded:
            legacy_in_use = True
        elif plan.weights is not None:
            named.add(plan.weights.file)
    own = re.compile(re.escape(file.stem) + _OWN_WEIGHTS)
    doomed = [p for p in file.parent.glob(f"{glob.escape(file.stem)}.*.safetensors") if own.fullmatch(p.name)]
    if was_legacy and not legacy_in_use:
        doomed.append(file.with_suffix(".safetensors"))
    for stale in doomed:
        if stale.name not in named:
            with contextlib.suppress(FileNotFoundError):
                stale.unlink()


def from_json(obj: Any, env: Mapping[str, Any] | None = None) -> Diagram:
    """The diagram of an ACSet JSON object (as :func:`json.load` returns it); weights are not loaded.

    Parameters
    ----------
    obj : dict
        The object :func:`to_json` makes, one of the first layout, or a plain
        Catlab graph (a skeleton: see :func:`load`).
    env : mapping of str to object, optional
        The data, functions, models and losses the file names.

    Raises
    ------
    FileFormatError
        For a malformed object, naming the table, row and field.
    UnknownNameError
        For a name that ``env`` (and, for losses, the library) does not have.
    """
    plan = plan_from_json(obj)
    return _remember(build(plan, env)[0], plan)


def from_config(obj: Any, env: Mapping[str, Any] | None = None) -> Diagram:
    """The diagram of a YAML config object (as ``yaml.safe_load`` returns it); see :func:`from_json`.

    >>> import torch
    >>> d = from_config({"spaces": {"X": {"data": "ds"}, "Y": {"loss": "mse"}},
    ...                  "maps": {"f": {"src": "X", "tgt": "Y"}, "g": {"src": "X", "tgt": "Y", "fn": "f"}}},
    ...                 env={"ds": [torch.ones(2)], "f": torch.nn.Identity()})
    >>> d.maps["g"].fn is d.maps["f"].fn, [str(p) for p in d.parallel_pairs()]
    (True, ['f ≤ g  (at Y, weight 1)'])
    """
    return build(plan_from_config(obj), env)[0]


def load(
    path: str | os.PathLike[str],
    env: Mapping[str, Any] | None = None,
    *,
    weights: bool | None = None,
) -> Diagram:
    """Read a diagram saved by :func:`save` (or written by hand), binding its names from ``env``.

    Loading imports nothing and runs nothing from the file: it reads plain
    data, looks names up in ``env`` and reads tensors.

    A ``.json`` file that is a plain Catlab ACSet of the schema of graphs
    (tables ``V`` and ``E``, with or without ``_id``, attribute-type tables,
    more attributes) loads as a *skeleton*: a space per vertex and a map per
    edge, with no data, loss, type or function, so it needs no ``env``. Its
    parts are named by a name attribute (``vname``, ``vlabel``, ``label``,
    ``name``; ``ename``, ``elabel``, ...) when that gives each a distinct
    identifier, else ``V1``, ``V2``, ... and ``E1``, ``E2``, ...; every other
    attribute is kept, and :func:`metadata` returns it.

    Parameters
    ----------
    path : str or path-like
        ``.json`` (ACSet JSON) or ``.yaml``/``.yml`` (the config form).
    env : mapping of str to object, optional
        The data, functions, models and losses the file names.
    weights : bool, optional
        Load the weights file of ``path`` (:func:`weights_path`) into the
        modules of ``env`` (in place, strictly), after checking its SHA-256
        against the one the diagram file records. ``None`` (the default): when
        the diagram file names one (it must exist then), or, for a file from
        before the ``weights`` entry, when ``<stem>.safetensors`` exists;
        ``True``: there must be one; ``False``: never.

    Raises
    ------
    FileFormatError
        For a malformed file, naming the place; for a weights file whose
        SHA-256 is not the one recorded (naming both files); for weights that
        do not fit the modules, listing every missing, unexpected and
        mismatched key, shape and dtype.
    UnknownNameError
        For names that ``env`` (and, for losses, the library) does not have,
        every one listed.
    FileNotFoundError
        When ``path`` is missing, or the weights it names are (or
        ``weights=True`` and it names none).
    """
    if weights is not None and not isinstance(weights, bool):
        raise TypeMismatchError(f"weights must be True, False or None, got a {type(weights).__name__}")
    file = _path(path)
    kind = _kind(file)
    plan = _read_plan(file, kind)
    with located(str(file)):
        diagram, functions = build(plan, env)
    _remember(diagram, plan)
    if weights is False:
        return diagram
    tensors = _weights_file(file, plan)
    if tensors is None or (not plan.weights_recorded and not tensors.exists()):
        if weights:
            where = "names no weights file" if tensors is None else f"has no weights file {tensors.name}"
            raise FileNotFoundError(f"{file}: {where} (it was saved without weights; pass weights=False)")
        return diagram
    if plan.weights is not None:
        _check_sha256(tensors, plan.weights.sha256, file)
    modules = {n: f for n, f in functions.items() if isinstance(f, nn.Module)}
    load_weights(tensors, modules)
    return diagram


# What a Catlab file held beyond a graph, by the diagram it was read into (kept while the diagram lives).
_METADATA: weakref.WeakKeyDictionary[Diagram, dict[str, Any]] = weakref.WeakKeyDictionary()


def _remember(diagram: Diagram, plan: Plan) -> Diagram:
    if plan.metadata:
        _METADATA[diagram] = plan.metadata
    return diagram


def metadata(diagram: Diagram) -> dict[str, Any]:
    """What the Catlab file ``diagram`` was loaded from holds beyond a graph (``{}`` for any other diagram).

    ``{"V": {vertex: {column: value}}, "E": {edge: {column: value}}, "tables":
    {table: rows}}``: per part, the attributes that the skeleton does not use
    (an attribute variable as ``{"_var": n}``), and the sizes of the file's
    other tables (its attribute types').

    >>> d = from_json({"V": [{}, {}], "E": [{"src": 1, "tgt": 2, "weight": {"_var": 1}}], "Weight": [{"_id": 1}]})
    >>> list(d.spaces), list(d.maps), metadata(d)
    (['V1', 'V2'], ['E1'], {'V': {}, 'E': {'E1': {'weight': {'_var': 1}}}, 'tables': {'Weight': 1}})
    """
    return _METADATA.get(diagram, {})


def _check_sha256(tensors: FilePath, expected: str, file: FilePath) -> None:
    try:
        found = sha256_of(tensors)
    except FileNotFoundError as err:
        raise FileNotFoundError(
            f"{file}: its weights file {tensors} does not exist (pass weights=False to read the structure alone)"
        ) from err
    except IsADirectoryError as err:
        raise FileFormatError(f"{file}: its weights file {tensors} is a folder") from err
    if found != expected:
        raise FileFormatError(SHA256_MISMATCH.format(file=tensors, found=found, record=file, expected=expected))


def _path(path: Any) -> FilePath:
    if not isinstance(path, (str, os.PathLike)):
        raise TypeMismatchError(f"a diagram file's path is a str or a path-like object, got a {type(path).__name__}")
    return FilePath(path)


def _kind(file: FilePath) -> str:
    suffix = file.suffix.lower()
    if suffix == ".json":
        return "json"
    if suffix in (".yaml", ".yml"):
        return "yaml"
    raise FileFormatError(
        f"{file}: unknown suffix {file.suffix!r}; use .json (ACSet JSON) or .yaml/.yml (the config form)"
    )
