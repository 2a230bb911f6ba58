"""Records: the one shape every logger takes, built and checked here.

A record is a plain dict ::

    {"stage": 0, "epoch": 1, "step": 120, "split": "train",
     "values": {"total": 0.42, "x·student·soft ≤ x·teacher·soft": 0.17}}

:func:`make_record` builds one, converting each value with ``float``;
:func:`checked` checks a dict that claims to be one and returns a normalised copy.

>>> checked({"stage": 0, "epoch": 0, "step": 1, "split": "train", "values": {"total": 1}})["values"]
{'total': 1.0}
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypedDict

from ..core.errors import InvalidNameError, OptionError, TypeMismatchError

__all__ = ["SPLITS", "CSV_COLUMNS", "Record", "make_record", "checked"]

#: The splits a record may belong to, in the order tables list them.
SPLITS: tuple[str, ...] = ("train", "eval")

#: The columns of :class:`~learning_diagrams.logs.CSVLogger` files, in order.
CSV_COLUMNS: tuple[str, ...] = ("stage", "epoch", "step", "split", "name", "value")

_RECORD_KEYS = frozenset({"stage", "epoch", "step", "split", "values"})


class Record(TypedDict):
    """The shape of a record (see the module docstring)."""

    stage: int
    epoch: int
    step: int
    split: str
    values: dict[str, float]


def make_record(stage: int, epoch: int, step: int, split: str, values: Mapping[str, Any]) -> Record:
    """Build a checked record, converting each value with ``float``.

    Parameters
    ----------
    stage, epoch, step : int
        Where the values come from; ``step`` counts optimiser steps over the run.
    split : {"train", "eval"}
        Which split the values were measured on.
    values : mapping of str to float-like
        ``"total"``, each term and metric by name. Anything ``float`` accepts
        works: a Python number, a one-element tensor, a NumPy scalar.

    Returns
    -------
    Record
        A new dict; ``values`` is a new dict of ``float`` in the given order.

    Raises
    ------
    TypeMismatchError
        (a ``TypeError``) If a position is not an ``int``, a name not a ``str``,
        or a value not convertible by ``float``.
    OptionError
        (a ``ValueError``) If ``split`` is not one of :data:`SPLITS`.
    InvalidNameError
        (a ``ValueError``) If a name is empty.

    Examples
    --------
    >>> make_record(0, 1, 7, "eval", {"accuracy[Y]": 1})
    {'stage': 0, 'epoch': 1, 'step': 7, 'split': 'eval', 'values': {'accuracy[Y]': 1.0}}
    """
    for key, position in (("stage", stage), ("epoch", epoch), ("step", step)):
        if isinstance(position, bool) or not isinstance(position, int):
            raise TypeMismatchError(f"record {key} must be an int, got {position!r}")
    if split not in SPLITS:
        raise OptionError(f"record split must be one of {SPLITS}, got {split!r}")
    if not isinstance(values, Mapping):
        raise TypeMismatchError(f"record values must be a mapping of name to number, got {type(values).__name__}")
    converted: dict[str, float] = {}
    for name, value in values.items():
        if not isinstance(name, str) or not name:
            raise (TypeMismatchError if not isinstance(name, str) else InvalidNameError)(
                f"value names must be non-empty strings, got {name!r}"
            )
        try:
            converted[name] = float(value)
        except (TypeError, ValueError) as exc:
            raise TypeMismatchError(f"value {name!r} is not a number: {value!r}") from exc
    return {"stage": stage, "epoch": epoch, "step": step, "split": split, "values": converted}


def checked(record: Mapping[str, Any]) -> Record:
    """Check a record dict and return a normalised copy (see :func:`make_record`).

    Raises
    ------
    TypeMismatchError
        If ``record`` is not a mapping, or as :func:`make_record`.
    OptionError
        If its keys are not exactly those of a :class:`Record`, or as :func:`make_record`.
    """
    if not isinstance(record, Mapping):
        raise TypeMismatchError(f"a record is a dict, got {type(record).__name__}")
    keys = set(record)
    if keys != _RECORD_KEYS:
        missing, extra = sorted(_RECORD_KEYS - keys), sorted(keys - _RECORD_KEYS)
        raise OptionError(
            f"a record has exactly the keys {sorted(_RECORD_KEYS)}; missing {missing}, unexpected {extra} "
            "(put extra numbers such as a learning rate into 'values')"
        )
    return make_record(record["stage"], record["epoch"], record["step"], record["split"], record["values"])
