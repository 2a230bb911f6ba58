"""Logs: show and record every loss term of a run by its name.

A compiled diagram is one composite loss whose terms carry names such as
``"x·student·soft ≤ x·teacher·soft"``. The trainer reports them, step by step,
as **records**: plain dicts ::

    {"stage": 0, "epoch": 1, "step": 120, "split": "train",
     "values": {"total": 0.42, "x·student·soft ≤ x·teacher·soft": 0.17}}

``values`` holds ``"total"`` and each term by name; an ``"eval"`` record may
also hold metrics such as ``"accuracy[Y]"``. ``step`` is the x axis of every
plot and of TensorBoard, so it should count optimiser steps over the whole run
(it does not restart with each epoch or stage). Anything else worth a curve
(a learning rate, say) is one more entry of ``values``.

The pieces:

* :mod:`.records`: :class:`Record`, :func:`make_record` and the checks every logger applies;
* :mod:`.loggers`: :class:`Logger` and its files: :class:`CSVLogger` (tidy: one row
  per value), :class:`JSONLinesLogger` (one record per line) and
  :class:`TensorBoardLogger`; :func:`default_loggers` picks them for a run
  directory (:mod:`.resume` cuts a file back when a run resumes);
* :mod:`.trackers`: Weights & Biases, MLflow, aim and the like, through
  Lightning's logger interface (:class:`TrackerLogger`, :func:`as_logger`);
* :mod:`.progress`: :class:`Progress`, a tqdm bar that shows the running mean of each value;
* :mod:`.history`: :class:`History`, the records of a run in memory: queries, a text
  :meth:`~History.summary` and a PNG :meth:`~History.plot` (written atomically,
  drawn by :mod:`.plotting`).

>>> history = History()
>>> history.log(make_record(0, 0, 1, "train", {"total": 2.0, "x·a ≤ x·b": 1.0}))
>>> history.log(make_record(0, 0, 2, "train", {"total": 1.0, "x·a ≤ x·b": 0.5}))
>>> history.names(), history.last("total"), history.mean("x·a ≤ x·b")
(['total', 'x·a ≤ x·b'], 1.0, 0.75)
>>> print(history.summary())
stage  split  epoch  total  x·a ≤ x·b
    0  train      0    1.5       0.75
>>> short_name("x·student·soft ≤ x·teacher·soft")
'x·student·s…teacher·soft'
"""

from .history import History
from .loggers import CSVLogger, JSONLinesLogger, Logger, TensorBoardLogger, default_loggers
from .progress import Progress, short_name
from .records import CSV_COLUMNS, SPLITS, Record, make_record
from .trackers import TrackerLogger, as_logger

__all__ = [
    "SPLITS",
    "CSV_COLUMNS",
    "Record",
    "make_record",
    "Logger",
    "CSVLogger",
    "JSONLinesLogger",
    "TensorBoardLogger",
    "default_loggers",
    "short_name",
    "Progress",
    "History",
    # experiment trackers through Lightning's logger interface
    "TrackerLogger",
    "as_logger",
]
