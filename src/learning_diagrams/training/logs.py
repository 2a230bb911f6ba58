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

* :class:`Logger` and its files: :class:`CSVLogger` (tidy: one row per value),
  :class:`JSONLinesLogger` (one record per line) and :class:`TensorBoardLogger`;
  :func:`default_loggers` picks them for a run directory;
* :class:`Progress`, a tqdm bar that shows the running mean of each value;
* :class:`History`, the records of a run in memory: queries, a text
  :meth:`~History.summary` and a PNG :meth:`~History.plot` (written atomically).

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

from __future__ import annotations

import csv
import importlib.util
import io
import json
import math
import os
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypedDict

from tqdm.auto import tqdm

from ..io.atomic import write_atomic

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure

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
]

#: The splits a record may belong to, in the order tables list them.
SPLITS: tuple[str, ...] = ("train", "eval")

#: The columns of :class:`CSVLogger` files, in order.
CSV_COLUMNS: tuple[str, ...] = ("stage", "epoch", "step", "split", "name", "value")

_RECORD_KEYS = frozenset({"stage", "epoch", "step", "split", "values"})


class Record(TypedDict):
    """The shape of a record (see the module docstring)."""

    stage: int
    epoch: int
    step: int
    split: str
    values: dict[str, float]


# --------------------------------------------------------------------------- records


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
    TypeError
        If a position is not an ``int``, a name not a ``str``, or a value not
        convertible by ``float``.
    ValueError
        If ``split`` is not one of :data:`SPLITS`, or a name is empty.

    Examples
    --------
    >>> make_record(0, 1, 7, "eval", {"accuracy[Y]": 1})
    {'stage': 0, 'epoch': 1, 'step': 7, 'split': 'eval', 'values': {'accuracy[Y]': 1.0}}
    """
    for key, position in (("stage", stage), ("epoch", epoch), ("step", step)):
        if isinstance(position, bool) or not isinstance(position, int):
            raise TypeError(f"record {key} must be an int, got {position!r}")
    if split not in SPLITS:
        raise ValueError(f"record split must be one of {SPLITS}, got {split!r}")
    if not isinstance(values, Mapping):
        raise TypeError(f"record values must be a mapping of name to number, got {type(values).__name__}")
    converted: dict[str, float] = {}
    for name, value in values.items():
        if not isinstance(name, str) or not name:
            raise (TypeError if not isinstance(name, str) else ValueError)(
                f"value names must be non-empty strings, got {name!r}"
            )
        try:
            converted[name] = float(value)
        except (TypeError, ValueError) as exc:
            raise TypeError(f"value {name!r} is not a number: {value!r}") from exc
    return {"stage": stage, "epoch": epoch, "step": step, "split": split, "values": converted}


def _checked(record: Mapping[str, Any]) -> Record:
    """Check a record dict and return a normalised copy (see :func:`make_record`)."""
    if not isinstance(record, Mapping):
        raise TypeError(f"a record is a dict, got {type(record).__name__}")
    keys = set(record)
    if keys != _RECORD_KEYS:
        missing, extra = sorted(_RECORD_KEYS - keys), sorted(keys - _RECORD_KEYS)
        raise ValueError(
            f"a record has exactly the keys {sorted(_RECORD_KEYS)}; missing {missing}, unexpected {extra} "
            "(put extra numbers such as a learning rate into 'values')"
        )
    return make_record(record["stage"], record["epoch"], record["step"], record["split"], record["values"])


# --------------------------------------------------------------------------- files


def _drop_partial_line(path: Path) -> int:
    """Cut the bytes after the last newline of ``path`` (a line a crash left unfinished).

    Returns the size of the file afterwards.
    """
    with open(path, "rb+") as f:
        size = f.seek(0, os.SEEK_END)
        end, pos = 0, size
        while pos > 0:
            start = max(0, pos - (1 << 16))
            f.seek(start)
            newline = f.read(pos - start).rfind(b"\n")
            if newline >= 0:
                end = start + newline + 1
                break
            pos = start
        if end != size:
            f.truncate(end)
        return end


def _keep_lines(path: Path, count: int) -> None:
    """Cut ``path`` after its first ``count`` lines (JSON Lines: a record a line).

    A resumed run calls this with the number of records its checkpoint had logged, so that
    records written between that checkpoint and a crash are not in the file twice.
    """
    with open(path, "rb+") as f:
        end = 0
        for i, line in enumerate(f):
            if i == count:
                f.truncate(end)
                return
            end += len(line)


def _keep_csv_records(path: Path, count: int) -> None:
    """Keep the header and the rows of the first ``count`` records of a CSV log.

    A record's rows are consecutive rows with the same (stage, epoch, step, split). The file
    is read with :mod:`csv` (a quoted name may hold a newline) and rewritten atomically.
    """
    with open(path, encoding="utf-8", newline="") as f:
        header, *rows = list(csv.reader(f))
    cut, seen, previous = len(rows), 0, None
    for i, row in enumerate(rows):
        if tuple(row[:4]) != previous:
            if seen == count:
                cut = i
                break
            seen, previous = seen + 1, tuple(row[:4])
    if cut == len(rows):
        return
    text = io.StringIO()
    csv.writer(text, lineterminator="\n").writerows([header, *rows[:cut]])
    write_atomic(path, text.getvalue().encode("utf-8"))


def _open_log(path: Path, append: bool) -> tuple[io.TextIOWrapper, bool]:
    """Open a line-oriented log for writing; return the file and whether it is new (empty)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fresh = not (append and path.exists() and _drop_partial_line(path) > 0)
    return open(path, "a" if append else "w", encoding="utf-8", newline=""), fresh


# --------------------------------------------------------------------------- loggers


class Logger:
    """Where records go: a base class.

    Subclasses implement :meth:`log`, and :meth:`close` (and :meth:`flush`)
    when they hold a resource. A logger is a context manager that closes itself.
    """

    def log(self, record: Mapping[str, Any]) -> None:
        """Record one record (see the module docstring for its shape)."""
        raise NotImplementedError

    def flush(self) -> None:
        """Push buffered output to its destination (a no-op by default)."""

    def close(self) -> None:
        """Release the logger's resources; calling it twice is harmless."""

    def __enter__(self) -> Logger:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class CSVLogger(Logger):
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
    ValueError
        With ``append=True``, if the existing file has a different header.
    """

    def __init__(self, path: str | os.PathLike[str], append: bool = False, keep: int | None = None) -> None:
        self.path = Path(path)
        if append and self.path.exists() and _drop_partial_line(self.path) > 0:
            with open(self.path, encoding="utf-8", newline="") as f:
                header = next(csv.reader(f), None)
            if header is None or tuple(header) != CSV_COLUMNS:
                raise ValueError(f"cannot append to {self.path}: its header is {header}, expected {list(CSV_COLUMNS)}")
            if keep is not None:
                _keep_csv_records(self.path, keep)
        self._file, fresh = _open_log(self.path, append)
        self._writer = csv.writer(self._file, lineterminator="\n")
        if fresh:
            self._writer.writerow(CSV_COLUMNS)
            self._file.flush()

    def log(self, record: Mapping[str, Any]) -> None:
        """Write one row per value of ``record`` and flush."""
        r = _checked(record)
        self._writer.writerows(
            (r["stage"], r["epoch"], r["step"], r["split"], name, value) for name, value in r["values"].items()
        )
        self._file.flush()

    def flush(self) -> None:
        """Flush the file (already done after each record)."""
        if not self._file.closed:
            self._file.flush()

    def close(self) -> None:
        """Close the file."""
        self._file.close()


class JSONLinesLogger(Logger):
    """A JSON Lines file: one record per line, as a JSON object.

    Lines are written with ``ensure_ascii=False`` (names stay readable) and
    flushed one by one; non-finite values are written as ``NaN``/``Infinity``,
    which :func:`json.loads` and :meth:`History.from_jsonl` read back. With
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
        if append and keep is not None and self.path.exists() and _drop_partial_line(self.path) > 0:
            _keep_lines(self.path, keep)
        self._file, _ = _open_log(self.path, append)

    def log(self, record: Mapping[str, Any]) -> None:
        """Write ``record`` as one line and flush."""
        self._file.write(json.dumps(_checked(record), ensure_ascii=False) + "\n")
        self._file.flush()

    def flush(self) -> None:
        """Flush the file (already done after each record)."""
        if not self._file.closed:
            self._file.flush()

    def close(self) -> None:
        """Close the file."""
        self._file.close()


class TensorBoardLogger(Logger):
    """TensorBoard scalars through :class:`torch.utils.tensorboard.SummaryWriter`.

    Each value becomes the scalar ``f"{split}/{name}"`` at ``global_step=step``,
    so train and eval values fall into two groups. Resuming simply adds an
    event file to the same directory; TensorBoard reads them together. The
    writer flushes on its own schedule, on :meth:`flush` and on :meth:`close`.

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
            from torch.utils.tensorboard import SummaryWriter
        except ImportError as exc:
            raise ImportError(
                "TensorBoardLogger needs TensorBoard: pip install tensorboard "
                "(or pass tensorboard=False to default_loggers)"
            ) from exc
        self.log_dir = Path(log_dir)
        self._writer = SummaryWriter(log_dir=str(self.log_dir))

    def log(self, record: Mapping[str, Any]) -> None:
        """Add one scalar per value of ``record``."""
        r = _checked(record)
        for name, value in r["values"].items():
            self._writer.add_scalar(f"{r['split']}/{name}", value, global_step=r["step"])

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


# --------------------------------------------------------------------------- progress


def short_name(name: str, width: int = 24) -> str:
    """Shorten ``name`` to at most ``width`` characters for display.

    The rule: a name of at most ``width`` characters is kept whole; a longer
    one keeps its first ``(width - 1) // 2`` and its last
    ``width - 1 - (width - 1) // 2`` characters around an ellipsis ``…``.
    The end gets the extra character because term names ``"p ≤ q"`` differ
    most in their target side. Two names may shorten alike; :class:`Progress`
    tells them apart (see there).

    Parameters
    ----------
    name : str
        The name.
    width : int, default 24
        The most characters to keep, at least 3.

    Examples
    --------
    >>> short_name("total")
    'total'
    >>> short_name("abcdefghij", width=7)
    'abc…hij'
    """
    if width < 3:
        raise ValueError(f"width must be at least 3, got {width}")
    if len(name) <= width:
        return name
    head = (width - 1) // 2
    tail = width - 1 - head
    return f"{name[:head]}…{name[-tail:]}"


class Progress:
    """A progress bar that shows the running mean of each value.

    A :func:`tqdm.auto.tqdm` bar over ``total`` steps (or an unknown number);
    each :meth:`update` advances it by one step and shows, after the bar, the
    mean of each value over all the updates since the bar began that had it.
    ``"total"`` comes first, then the names in the order first seen.

    The keys shown are short: a name is shortened by :func:`short_name` to
    ``width`` characters; if that key is already shown for another name, the
    suffix ``~2`` (then ``~3``, ...) is added to the later name, shortened to
    fit. Keys are given in the order names are first seen and never change
    while the bar lives, so the same run always shows the same keys;
    :attr:`keys` lists them.

    Parameters
    ----------
    total : int or None, default None
        The number of steps, if known.
    desc : str or None, default None
        A label before the bar (e.g. ``"stage 0 · epoch 3"``).
    disable : bool, default False
        Show nothing (the means are still kept).
    file : file-like or None, default None
        Where to draw the bar; None is standard error.
    leave : bool, default True
        Keep the finished bar on screen.
    width : int, default 24
        The most characters of a key (suffixes aside).

    Examples
    --------
    >>> with Progress(total=2, disable=True) as bar:
    ...     bar.update({"total": 1.0})
    ...     bar.update({"total": 2.0})
    >>> bar.means, bar.n
    ({'total': 1.5}, 2)
    """

    def __init__(
        self,
        total: int | None = None,
        *,
        desc: str | None = None,
        disable: bool = False,
        file: Any = None,
        leave: bool = True,
        width: int = 24,
    ) -> None:
        if width < 3:
            raise ValueError(f"width must be at least 3, got {width}")
        self.width = width
        self.n = 0
        self._sums: dict[str, float] = {}
        self._counts: dict[str, int] = {}
        self._keys: dict[str, str] = {}
        self._bar = tqdm(total=total, desc=desc, disable=disable, file=file, leave=leave, unit="step")

    @property
    def means(self) -> dict[str, float]:
        """The running mean of each value, by full name, ``"total"`` first."""
        return {name: self._sums[name] / self._counts[name] for name in self._order()}

    @property
    def keys(self) -> dict[str, str]:
        """The key shown for each name seen so far."""
        return dict(self._keys)

    def postfix(self) -> dict[str, str]:
        """What the bar shows after itself: key to formatted running mean."""
        return {self._keys[name]: f"{mean:.4g}" for name, mean in self.means.items()}

    def update(self, values: Mapping[str, Any]) -> None:
        """Count one step with its ``values`` (name to float-like) and redraw."""
        for name, value in values.items():
            value = float(value)
            if name not in self._sums:
                self._sums[name], self._counts[name] = 0.0, 0
                self._keys[name] = self._new_key(name)
            self._sums[name] += value
            self._counts[name] += 1
        self.n += 1
        if not self._bar.disable:
            self._bar.set_postfix(self.postfix(), refresh=False)
        self._bar.update(1)

    def close(self) -> None:
        """Finish the bar (drawing its final state unless disabled)."""
        self._bar.close()

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _order(self) -> list[str]:
        names = list(self._sums)
        return ["total", *(n for n in names if n != "total")] if "total" in self._sums else names

    def _new_key(self, name: str) -> str:
        taken = set(self._keys.values())
        key, count = short_name(name, self.width), 1
        while key in taken:
            count += 1
            suffix = f"~{count}"
            key = short_name(name, max(3, self.width - len(suffix))) + suffix
        return key


# --------------------------------------------------------------------------- history


def _legend_shape(names: Iterable[str], per_column: int = 8, most_columns: int = 4) -> tuple[int, int, float]:
    """(rows, columns, width in inches) of a small-font legend of ``names``.

    One column up to ``per_column`` names, then up to ``most_columns``; the width
    allows the line sample and about 0.06 in a character of the longest name.
    """
    names = list(names)
    columns = max(1, min(most_columns, math.ceil(len(names) / per_column)))
    longest = max((len(n) for n in names), default=0)
    return math.ceil(len(names) / columns), columns, columns * (0.7 + 0.065 * longest)


def _line_style(index: int) -> dict[str, str]:
    """The colour and dash of the ``index``-th name: the same in every subplot of a figure."""
    return {"color": f"C{index % 10}", "linestyle": ("-", "--", ":", "-.")[index // 10 % 4]}


def _split_rank(split: str) -> int:
    return SPLITS.index(split)


class History(Logger):
    """The records of a run, in the order logged (append-only).

    A :class:`History` is also a :class:`Logger`, so the trainer can log to it
    alongside the files. Queries take a ``split`` (``"train"`` by default).

    Parameters
    ----------
    records : iterable of records, optional
        Records to start with; each is checked and copied.
    """

    def __init__(self, records: Iterable[Mapping[str, Any]] = ()) -> None:
        self._records: list[Record] = []
        for record in records:
            self.log(record)

    # -- building

    def log(self, record: Mapping[str, Any]) -> None:
        """Append a checked copy of ``record``."""
        self._records.append(_checked(record))

    append = log

    @classmethod
    def from_jsonl(cls, path: str | os.PathLike[str]) -> History:
        """Read the records of a :class:`JSONLinesLogger` file.

        Blank lines are skipped. A last line without its newline that is not
        valid JSON (a crash cut it short) is ignored; a bad line anywhere else
        raises ``ValueError`` naming the line.
        """
        history = cls()
        text = Path(path).read_text(encoding="utf-8")
        lines = text.split("\n")
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                if number == len(lines):  # the unfinished last line of a crashed run
                    break
                raise ValueError(f"{path}:{number}: not a JSON record: {exc}") from exc
            try:
                history.log(record)
            except (TypeError, ValueError) as exc:
                raise ValueError(f"{path}:{number}: {exc}") from exc
        return history

    # -- reading

    @property
    def records(self) -> tuple[Record, ...]:
        """All records, oldest first."""
        return tuple(self._records)

    def __len__(self) -> int:
        return len(self._records)

    def __iter__(self) -> Iterator[Record]:
        return iter(self.records)

    def rows(self) -> list[tuple[int, int, int, str, str, float]]:
        """The records in tidy form: ``(stage, epoch, step, split, name, value)`` per value."""
        return [
            (r["stage"], r["epoch"], r["step"], r["split"], name, value)
            for r in self._records
            for name, value in r["values"].items()
        ]

    def names(self, split: str | None = "train") -> list[str]:
        """The value names of ``split`` (every split if None): ``"total"`` first, then in the order first logged."""
        seen: dict[str, None] = {}
        for r in self._select(split):
            seen.update(dict.fromkeys(r["values"]))
        return ["total", *(n for n in seen if n != "total")] if "total" in seen else list(seen)

    def last(self, name: str, split: str = "train") -> float:
        """The latest value of ``name`` in ``split``.

        Raises
        ------
        KeyError
            If no record of ``split`` has ``name``.
        """
        for r in reversed(self._records):
            if r["split"] == split and name in r["values"]:
                return r["values"][name]
        raise KeyError(f"no {split} value named {name!r}; known: {self.names(split)}")

    def mean(self, name: str, split: str = "train", stage: int | None = None, epoch: int | None = None) -> float:
        """The mean of ``name`` over the records of ``split`` (and ``stage``, ``epoch`` when given).

        Raises
        ------
        KeyError
            If no such record has ``name``.
        """
        values = [r["values"][name] for r in self._select(split, stage, epoch) if name in r["values"]]
        if not values:
            where = "".join(f", {k} {v}" for k, v in (("stage", stage), ("epoch", epoch)) if v is not None)
            raise KeyError(f"no {split} value named {name!r}{where}; known: {self.names(split)}")
        return math.fsum(values) / len(values)

    def summary(self) -> str:
        """A text table of results.

        One line per stage and split (train before eval), giving the stage's
        last epoch for that split and the mean of each value over that epoch;
        ``-`` where a value was not logged. Columns are every value name of
        every split, ``"total"`` first, then in the order first logged.
        """
        if not self._records:
            return "(no records)"
        names = self.names(split=None)
        groups = sorted({(r["stage"], r["split"]) for r in self._records}, key=lambda g: (g[0], _split_rank(g[1])))
        table = [["stage", "split", "epoch", *names]]
        for stage, split in groups:
            epoch = max(r["epoch"] for r in self._select(split, stage))
            records = self._select(split, stage, epoch)
            cells = [str(stage), split, str(epoch)]
            for name in names:
                values = [r["values"][name] for r in records if name in r["values"]]
                cells.append(f"{math.fsum(values) / len(values):.6g}" if values else "-")
            table.append(cells)
        widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
        lines = []
        for row in table:
            cells = [cell.ljust(w) if i == 1 else cell.rjust(w) for i, (cell, w) in enumerate(zip(row, widths))]
            lines.append("  ".join(cells).rstrip())
        return "\n".join(lines)

    # -- plotting

    def figure(self, split: str = "train") -> Figure:
        """A matplotlib figure of the values of ``split`` against step.

        One subplot per stage, side by side: stages are where the set of terms
        changes, so each subplot has one line per value name of its stage, with
        a legend below it (in up to four columns when long, the figure growing
        to hold it); a name keeps its colour (and dash) in every subplot,
        ``"total"`` first. A subplot's y axis is logarithmic when all its
        finite values are positive; non-finite values leave gaps. With no
        records of ``split`` the figure holds a single note saying so.

        The figure has an Agg canvas of its own: the global matplotlib
        backend and :mod:`matplotlib.pyplot` are not touched.
        """
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        stages = sorted({r["stage"] for r in self._select(split)})
        # Legends sit below their subplots; long ones wrap into columns and the figure grows
        # by a row of text per legend row, so constrained layout can always place them.
        shapes = [_legend_shape(self._stage_names(split, s)) for s in stages]
        width = sum(max(5.2, w) for _, _, w in shapes)
        rows = max((r for r, _, _ in shapes), default=0)
        fig = Figure(figsize=(max(6.4, width), max(5.6, 4.4 + 0.2 * rows)), layout="constrained")
        FigureCanvasAgg(fig)
        axes = fig.subplots(1, max(1, len(stages)), squeeze=False)[0]
        fig.suptitle(f"{split} values by stage" if stages else f"{split} values")
        if not stages:
            axes[0].text(0.5, 0.5, f"no {split} records", ha="center", va="center", transform=axes[0].transAxes)
            axes[0].set_axis_off()
        styles = {name: _line_style(i) for i, name in enumerate(self.names(split))}
        for ax, stage in zip(axes, stages):
            self._plot_stage(ax, split, stage, styles)
        return fig

    def plot(self, path: str | os.PathLike[str], *, split: str = "train", dpi: int = 110) -> Path:
        """Write :meth:`figure` as a PNG to ``path`` atomically (see :func:`write_atomic`).

        Returns
        -------
        pathlib.Path
            ``path``.
        """
        buffer = io.BytesIO()
        self.figure(split).savefig(buffer, format="png", dpi=dpi)
        return write_atomic(path, buffer.getvalue())

    def _plot_stage(self, ax: Any, split: str, stage: int, styles: dict[str, dict[str, str]]) -> None:
        series: dict[str, tuple[list[int], list[float]]] = {}
        for r in self._select(split, stage):
            for name, value in r["values"].items():
                steps, values = series.setdefault(name, ([], []))
                steps.append(r["step"])
                values.append(value if math.isfinite(value) else math.nan)
        finite = [v for _, values in series.values() for v in values if math.isfinite(v)]
        log = bool(finite) and min(finite) > 0
        for name in (n for n in styles if n in series):
            steps, values = series[name]
            marker = "o" if len(steps) <= 50 else None
            ax.plot(steps, values, label=name, marker=marker, markersize=3, linewidth=1.2, **styles[name])
        if log:
            ax.set_yscale("log")
        ax.set_title(f"stage {stage}")
        ax.set_xlabel("step")
        ax.set_ylabel("value (log scale)" if log else "value")
        ax.grid(True, alpha=0.3)
        ax.legend(
            loc="upper center",
            bbox_to_anchor=(0.5, -0.15),
            fontsize="small",
            frameon=False,
            ncols=_legend_shape(series)[1],
        )

    def _stage_names(self, split: str, stage: int) -> set[str]:
        return {name for r in self._select(split, stage) for name in r["values"]}

    def _select(self, split: str | None, stage: int | None = None, epoch: int | None = None) -> list[Record]:
        return [
            r
            for r in self._records
            if (split is None or r["split"] == split)
            and (stage is None or r["stage"] == stage)
            and (epoch is None or r["epoch"] == epoch)
        ]
