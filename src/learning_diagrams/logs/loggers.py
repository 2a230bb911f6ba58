"""Loggers: where records go, and the files of a run directory.

:class:`Logger` is the base; :class:`CSVLogger` (tidy: one row per value),
:class:`JSONLinesLogger` (one record per line) and :class:`TensorBoardLogger`
write files; :func:`default_loggers` picks them for a run directory.

>>> import tempfile
>>> with JSONLinesLogger(tempfile.mkdtemp() + "/log.jsonl") as logger:
...     logger.log({"stage": 0, "epoch": 0, "step": 1, "split": "train", "values": {"total": 0.5}})
>>> logger.path.read_text(encoding="utf-8")
'{"stage": 0, "epoch": 0, "step": 1, "split": "train", "values": {"total": 0.5}}\\n'
"""

from __future__ import annotations

import csv
import importlib.util
import io
import json
import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..core.errors import FileFormatError
from .records import CSV_COLUMNS, checked
from .resume import drop_partial_line, keep_csv_records, keep_lines, open_log

__all__ = ["Logger", "CSVLogger", "JSONLinesLogger", "TensorBoardLogger", "default_loggers"]


class Logger:
    """Where records go: a base class.

    Subclasses implement :meth:`log`, and :meth:`close` (and :meth:`flush`)
    when they hold a resource. A logger is a context manager that closes itself.

    A run of the trainer calls :meth:`log_hyperparams` once at its start and
    :meth:`finalize` once at its end, as Lightning does with its loggers; it
    closes the loggers it opened itself, never those it was given.
    """

    def log(self, record: Mapping[str, Any]) -> None:
        """Record one record (see :mod:`~learning_diagrams.logs.records` for its shape)."""
        raise NotImplementedError

    def log_hyperparams(self, params: Mapping[str, Any]) -> None:
        """Take the options of the run, plain data by name (ignored by default)."""

    def finalize(self, status: str) -> None:
        """End the run that logged here; ``status`` is ``"success"`` or ``"failed"`` (flushes by default)."""
        self.flush()

    def flush(self) -> None:
        """Push buffered output to its destination (a no-op by default)."""

    def close(self) -> None:
        """Release the logger's resources; calling it twice is harmless."""

    def __enter__(self) -> Logger:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class _FileLogger(Logger):
    """A logger writing to one text file, flushed after each record."""

    _file: io.TextIOWrapper

    def flush(self) -> None:
        """Flush the file (already done after each record)."""
        if not self._file.closed:
            self._file.flush()

    def close(self) -> None:
        """Close the file."""
        self._file.close()


class CSVLogger(_FileLogger):
    """A CSV file in tidy (long) form: one row per value.

    The columns are :data:`CSV_COLUMNS`: ``stage,epoch,step,split,name,value``.
    Names are quoted by :mod:`csv` as needed, so commas, quotes and any Unicode
    read back unchanged with :func:`csv.reader`; the file is UTF-8 with ``\\n``
    line endings, and values are written with ``repr`` precision (``nan`` and
    ``inf`` included).

    The file is flushed after each record, so a crash loses at most the line
    being written. With ``append=True`` (a run resuming from a checkpoint) an
    existing file is continued: a last line left unfinished by a crash is
    dropped, then every record after the first ``keep`` (when given), and the
    header is written only if the file is new or empty. Otherwise the file is
    started afresh. Parent directories are created.

    Parameters
    ----------
    path : path-like
        The CSV file.
    append : bool, default False
        Continue an existing file instead of replacing it.
    keep : int, optional
        With ``append``, how many records of the existing file to keep (a
        record's rows are consecutive rows with the same stage, epoch, step
        and split); the trainer passes the count its checkpoint had logged.

    Raises
    ------
    FileFormatError
        (a ``ValueError``) With ``append=True``, if the existing file has a different header.
    """

    def __init__(self, path: str | os.PathLike[str], append: bool = False, keep: int | None = None) -> None:
        self.path = Path(path)
        if append and self.path.exists() and drop_partial_line(self.path) > 0:
            with open(self.path, encoding="utf-8", newline="") as f:
                header = next(csv.reader(f), None)
            if header is None or tuple(header) != CSV_COLUMNS:
                raise FileFormatError(
                    f"cannot append to {self.path}: its header is {header}, expected {list(CSV_COLUMNS)}"
                )
            if keep is not None:
                keep_csv_records(self.path, keep)
        self._file, fresh = open_log(self.path, append)
        self._writer = csv.writer(self._file, lineterminator="\n")
        if fresh:
            self._writer.writerow(CSV_COLUMNS)
            self._file.flush()

    def log(self, record: Mapping[str, Any]) -> None:
        """Write one row per value of ``record`` and flush."""
        r = checked(record)
        self._writer.writerows(
            (r["stage"], r["epoch"], r["step"], r["split"], name, value) for name, value in r["values"].items()
        )
        self._file.flush()


class JSONLinesLogger(_FileLogger):
    """A JSON Lines file: one record per line, as a JSON object.

    Lines are written with ``ensure_ascii=False`` (names stay readable) and
    flushed one by one; non-finite values are written as ``NaN``/``Infinity``,
    which :func:`json.loads` and :meth:`~learning_diagrams.logs.History.from_jsonl` read back. With
    ``append=True`` an existing file is continued, after dropping a last line
    left unfinished by a crash and every record after the first ``keep`` (when
    given); otherwise it is started afresh. Parent directories are created.

    Parameters
    ----------
    path : path-like
        The ``.jsonl`` file.
    append : bool, default False
        Continue an existing file instead of replacing it.
    keep : int, optional
        With ``append``, how many records (lines) of the existing file to keep.
    """

    def __init__(self, path: str | os.PathLike[str], append: bool = False, keep: int | None = None) -> None:
        self.path = Path(path)
        if append and keep is not None and self.path.exists() and drop_partial_line(self.path) > 0:
            keep_lines(self.path, keep)
        self._file, _ = open_log(self.path, append)

    def log(self, record: Mapping[str, Any]) -> None:
        """Write ``record`` as one line and flush."""
        self._file.write(json.dumps(checked(record), ensure_ascii=False) + "\n")
        self._file.flush()


class TensorBoardLogger(Logger):
    """TensorBoard scalars, written with TensorBoard's own event-file writer (no torch, no TensorFlow).

    Each value becomes the scalar ``f"{split}/{name}"`` at step ``step`` (the
    ``simple_value`` summaries ``torch.utils.tensorboard.SummaryWriter.add_scalar``
    writes), so train and eval values fall into two groups. Resuming simply adds an
    event file to the same directory; TensorBoard reads them together. The writer
    flushes on its own schedule, on :meth:`flush` and on :meth:`close`.

    Parameters
    ----------
    log_dir : path-like
        The directory for the event files (created if needed).

    Raises
    ------
    ImportError
        If TensorBoard is not installed (``pip install tensorboard``).
    """

    def __init__(self, log_dir: str | os.PathLike[str]) -> None:
        try:
            from tensorboard.compat.proto.event_pb2 import Event
            from tensorboard.compat.proto.summary_pb2 import Summary
            from tensorboard.summary.writer.event_file_writer import EventFileWriter
        except ImportError as exc:
            raise ImportError(
                "TensorBoardLogger needs TensorBoard: pip install tensorboard "
                "(or pass tensorboard=False to default_loggers)"
            ) from exc
        self.log_dir = Path(log_dir)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self._event, self._summary = Event, Summary
        self._writer = EventFileWriter(str(self.log_dir))  # it writes the file-version event first

    def log(self, record: Mapping[str, Any]) -> None:
        """Add one scalar per value of ``record``."""
        r = checked(record)
        summary = self._summary(
            value=[
                self._summary.Value(tag=f"{r['split']}/{name}", simple_value=value)
                for name, value in r["values"].items()
            ]
        )
        self._writer.add_event(self._event(wall_time=time.time(), step=r["step"], summary=summary))

    def flush(self) -> None:
        """Write pending events to disk."""
        self._writer.flush()

    def close(self) -> None:
        """Flush and close the event file."""
        self._writer.close()


def _tensorboard_available() -> bool:
    return importlib.util.find_spec("tensorboard") is not None


def default_loggers(
    directory: str | os.PathLike[str],
    *,
    tensorboard: bool | None = None,
    append: bool = False,
    keep: int | None = None,
) -> list[Logger]:
    """The loggers of a run directory.

    Always a :class:`CSVLogger` on ``directory/log.csv`` and a
    :class:`JSONLinesLogger` on ``directory/log.jsonl``; a
    :class:`TensorBoardLogger` on ``directory/tensorboard`` when
    ``tensorboard`` is True, or when it is None and the ``tensorboard``
    package is installed.

    Parameters
    ----------
    directory : path-like
        The run directory (created if needed).
    tensorboard : bool or None, default None
        Whether to log to TensorBoard; None means "if installed".
    append : bool, default False
        Continue existing CSV and JSONL logs (a resumed run).
    keep : int, optional
        With ``append``, keep only the first ``keep`` records of those files
        (the ones logged before the checkpoint the run resumes from). The
        TensorBoard files are appended to as they are: TensorBoard shows a step
        logged again as a second point.

    Returns
    -------
    list of Logger
        Open loggers; the caller closes them.

    Raises
    ------
    ImportError
        If ``tensorboard=True`` and TensorBoard is not installed.
    """
    directory = Path(directory)
    loggers: list[Logger] = [
        CSVLogger(directory / "log.csv", append=append, keep=keep),
        JSONLinesLogger(directory / "log.jsonl", append=append, keep=keep),
    ]
    if tensorboard is None:
        tensorboard = _tensorboard_available()
    if tensorboard:
        try:
            loggers.append(TensorBoardLogger(directory / "tensorboard"))
        except BaseException:
            for logger in loggers:
                logger.close()
            raise
    return loggers
