"""Experiment trackers (Weights & Biases, MLflow, aim, ...) through Lightning's logger interface.

Lightning's loggers (``lightning.pytorch.loggers``: ``WandbLogger``,
``MLFlowLogger``, ``CSVLogger``, ``TensorBoardLogger``, and those of other
packages that follow the interface, such as aim's) take metrics by one method,
``log_metrics(metrics: dict[str, float], step: int)``. The trainer's
``loggers=`` option takes such objects beside our own :class:`Logger` objects;
:func:`as_logger` makes a :class:`Logger` of each, and :class:`TrackerLogger`
turns each record into one ``log_metrics`` call: a value becomes the metric
``f"{split}/{name}"`` (as with :class:`TensorBoardLogger`), with the record's
``"epoch"`` and ``"stage"``, at ``step=record["step"]``.

>>> class Printer:
...     def log_metrics(self, metrics, step):
...         print(step, metrics)
>>> logger = as_logger(Printer())
>>> logger.log({"stage": 0, "epoch": 2, "step": 30, "split": "eval", "values": {"total": 0.5}})
30 {'eval/total': 0.5, 'epoch': 2, 'stage': 0}

The run's options go to ``log_hyperparams`` once, at the start: only those that
are plain data (see :func:`plain_options`), since trackers store them as text.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from ..core.errors import TypeMismatchError
from .loggers import Logger
from .records import checked

__all__ = ["TrackerLogger", "as_logger", "plain_options"]


class TrackerLogger(Logger):
    """A :class:`Logger` that hands each record to a tracker with Lightning's logger interface.

    Only ``log_metrics`` is required; ``log_hyperparams(params)``, ``save()`` and
    ``finalize(status)`` are called when the tracker has them: the first at the
    start of a run, the other two (in that order) at its end.

    Parameters
    ----------
    tracker : object
        Anything with ``log_metrics(metrics: dict[str, float], step: int)``,
        such as a ``lightning.pytorch.loggers.WandbLogger``.

    Raises
    ------
    TypeMismatchError
        (a ``TypeError``) If ``tracker`` has no ``log_metrics`` method.
    """

    def __init__(self, tracker: Any) -> None:
        if not callable(getattr(tracker, "log_metrics", None)):
            raise TypeMismatchError(
                f"a tracker needs a log_metrics(metrics, step) method, as Lightning's loggers have; "
                f"a {type(tracker).__name__} has none"
            )
        self.tracker = tracker

    def log(self, record: Mapping[str, Any]) -> None:
        """Send the values of ``record`` as ``{"split/name": value, "epoch": ..., "stage": ...}`` at its step."""
        r = checked(record)
        metrics: dict[str, float] = {f"{r['split']}/{name}": value for name, value in r["values"].items()}
        metrics.update(epoch=r["epoch"], stage=r["stage"])
        self.tracker.log_metrics(metrics, step=r["step"])

    def log_hyperparams(self, params: Mapping[str, Any]) -> None:
        """Pass ``params`` to the tracker's ``log_hyperparams``, if it has one."""
        self._call("log_hyperparams", dict(params))

    def finalize(self, status: str) -> None:
        """Call the tracker's ``save()`` and ``finalize(status)``, those it has.

        Saving comes first: finalising may end the tracker's run (MLflow marks it terminated).
        """
        self._call("save")
        self._call("finalize", status)

    def _call(self, method: str, *args: Any) -> None:
        function = getattr(self.tracker, method, None)
        if callable(function):
            function(*args)


class _Forwarding(Logger):
    """A :class:`Logger` around an object that has ``log(record)`` but is no :class:`Logger`."""

    def __init__(self, target: Any) -> None:
        self.target = target

    def log(self, record: Mapping[str, Any]) -> None:
        self.target.log(record)

    def flush(self) -> None:
        if callable(getattr(self.target, "flush", None)):
            self.target.flush()

    def close(self) -> None:
        if callable(getattr(self.target, "close", None)):
            self.target.close()


def as_logger(logger: Any) -> Logger:
    """``logger`` as a :class:`Logger`, whatever kind of logger it is.

    A :class:`Logger` is returned as it is; an object with Lightning's
    ``log_metrics`` is wrapped in a :class:`TrackerLogger`; any other object
    with a ``log(record)`` method gets the records as they are.

    Raises
    ------
    TypeMismatchError
        (a ``TypeError``) If ``logger`` has neither method.

    Examples
    --------
    >>> from learning_diagrams.logs import History
    >>> history = History()
    >>> as_logger(history) is history
    True
    >>> as_logger(42)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    learning_diagrams.core.errors.TypeMismatchError: loggers take our Logger objects ...
    """
    if isinstance(logger, Logger):
        return logger
    if callable(getattr(logger, "log_metrics", None)):
        return TrackerLogger(logger)
    if callable(getattr(logger, "log", None)):
        return _Forwarding(logger)
    raise TypeMismatchError(
        f"loggers take our Logger objects (anything with log(record)) or Lightning's loggers "
        f"(anything with log_metrics(metrics, step), e.g. lightning.pytorch.loggers.WandbLogger); "
        f"got an object of type {type(logger).__name__}"
    )


_NOT_PLAIN = object()


def _plain(value: Any) -> Any:
    """``value`` as plain data (paths as strings), or ``_NOT_PLAIN``."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, Mapping) and all(isinstance(key, str) for key in value):
        items = {key: _plain(item) for key, item in value.items()}
        return _NOT_PLAIN if any(item is _NOT_PLAIN for item in items.values()) else items
    if isinstance(value, (list, tuple)):
        elements = [_plain(item) for item in value]
        return _NOT_PLAIN if any(item is _NOT_PLAIN for item in elements) else elements
    return _NOT_PLAIN


def plain_options(options: Mapping[str, Any]) -> dict[str, Any]:
    """The options that are plain data, as a tracker can store them.

    Numbers, strings, booleans and ``None``; paths, as strings; lists and
    string-keyed mappings of those (a tuple becomes a list). Options that hold
    anything else (an optimiser class, a scheduler factory, data, loggers) are
    left out whole.

    Examples
    --------
    >>> from pathlib import PurePosixPath
    >>> plain_options({"lr": 0.1, "log_dir": PurePosixPath("runs/a"), "lrs": {"head": 0.5},
    ...                "optimizer": object, "metrics": {"Y": [len]}})
    {'lr': 0.1, 'log_dir': 'runs/a', 'lrs': {'head': 0.5}}
    """
    plain = {name: _plain(value) for name, value in options.items()}
    return {name: value for name, value in plain.items() if value is not _NOT_PLAIN}
