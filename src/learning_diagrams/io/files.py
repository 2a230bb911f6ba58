"""Saving and loading diagrams: Catlab's ACSet JSON, a YAML config form, safetensors weights.

A file holds a diagram's *structure*: its vertices, edges, relations and
options. What the diagram holds (data sources, models and functions, losses)
is stored **by name** and bound again when the file is loaded, from the
``env`` mapping the caller passes, as :func:`learning_diagrams.parse` binds
the names of its text (:mod:`.binding` has the rules). The weights of every
``torch.nn.Module`` on an edge go to a safetensors file beside it:
``save(d, "run/distil.json")`` writes ``run/distil.json`` and
``run/distil.safetensors`` (:mod:`.weights`).

The two layouts are :mod:`.acset` (``.json``, Catlab.jl's ACSet JSON) and
:mod:`.config` (``.yaml``, keyed by name for configs written by hand); type
annotations are written as in :mod:`.typespecs`. Loading never executes code
from a file: JSON and YAML are read as plain data (YAML with a safe loader),
every string is a name or parsed by a regular expression, and weights are
read with safetensors, which holds tensors only. Writes are atomic
(:mod:`.atomic`): the weights, then the diagram file, each replaced in one step.

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
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path as FilePath
from typing import Any

from torch import nn

from ..core.diagram import Diagram
from ..core.errors import FileFormatError
from ..core.messages import located
from .acset import json_of, plan_from_json, read_json
from .atomic import write_atomic_many
from .binding import build, plan_of
from .config import config_of, dump_yaml, plan_from_config, read_yaml
from .plan import FORMAT
from .weights import load_weights, weights_bytes

__all__ = ["FORMAT", "save", "load", "to_json", "from_json", "to_config", "from_config", "weights_path"]


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
        ``{"format", "V", "E", "R", "options"}``, in that order.

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
    plan = plan_of(diagram, names)
    if kind == "json":
        text = json.dumps(json_of(plan), indent=2, ensure_ascii=False, allow_nan=False) + "\n"
    else:
        text = dump_yaml(config_of(plan))
    writes = [(weights_path(file), weights_bytes(plan.modules))] if weights else []
    write_atomic_many([*writes, (file, text.encode("utf-8"))])  # the diagram file last


def weights_path(path: str | os.PathLike[str]) -> FilePath:
    """Where the weights of the diagram saved at ``path`` go: the same stem, ``.safetensors``.

    >>> weights_path("runs/distil.json").as_posix()
    'runs/distil.safetensors'
    """
    return FilePath(path).with_suffix(".safetensors")


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
    return build(plan_from_json(obj), env)[0]


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
    with located(str(file)):
        plan = plan_from_json(read_json(text)) if kind == "json" else plan_from_config(read_yaml(text))
        diagram, functions = build(plan, env)
    tensors = weights_path(file)
    if weights is None:
        weights = tensors.exists()
    if weights:
        if not tensors.exists():
            raise FileNotFoundError(f"{file}: its weights file {tensors} does not exist (pass weights=False)")
        modules = {n: f for n, f in functions.items() if isinstance(f, nn.Module)}
        load_weights(tensors, modules)
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
