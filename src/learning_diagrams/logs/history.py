"""History: the records of a run in memory, with queries, a text summary and a plot.

The numbers are kept compactly, so that a long run's history stays small: each
record's step in an ``array('q')``, its values in one ``array('d')`` (8 bytes a
value), and its stage, epoch, split and value names once per run of
consecutive records that share them. A 20,000-step run logging two values
every step holds about 500 KB; records are rebuilt as dicts when read.

>>> from learning_diagrams.logs import make_record
>>> history = History()
>>> history.log(make_record(0, 0, 1, "train", {"total": 2.0}))
>>> history.log(make_record(0, 1, 2, "train", {"total": 1.0}))
>>> history.last("total"), history.mean("total", epoch=0), len(history)
(1.0, 2.0, 2)
>>> history.records[1]
{'stage': 0, 'epoch': 1, 'step': 2, 'split': 'train', 'values': {'total': 1.0}}
"""

from __future__ import annotations

import io
import json
import math
import os
from array import array
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from ..core.errors import FileFormatError, OptionError, TypeMismatchError
from ..io.atomic import write_atomic
from . import plotting
from .loggers import Logger
from .records import SPLITS, Record, checked

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure

__all__ = ["History"]


def _split_rank(split: str) -> int:
    return SPLITS.index(split)


class _Row(NamedTuple):
    """One record as stored: its place, its value names, and where its values start in the column."""

    stage: int
    epoch: int
    step: int
    split: str
    names: tuple[str, ...]
    offset: int


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
        self._steps = array("q")  # one per record
        self._values = array("d")  # every value of every record, in order
        # Runs of consecutive records with the same (stage, epoch, split, names): where each starts.
        self._run_starts = array("q")
        self._run_stages = array("q")
        self._run_epochs = array("q")
        self._run_splits = array("b")
        self._run_names = array("l")  # index into _names
        self._names: list[tuple[str, ...]] = []
        self._name_ids: dict[tuple[str, ...], int] = {}
        for record in records:
            self.log(record)

    # -- building

    def log(self, record: Mapping[str, Any]) -> None:
        """Append a checked copy of ``record``."""
        r = checked(record)
        for key in ("stage", "epoch", "step"):
            if not -(2**63) <= r[key] < 2**63:  # what an array('q') holds
                raise OptionError(f"record {key} {r[key]} is out of range (a signed 64-bit integer)")
        names = tuple(r["values"])
        name_id = self._name_ids.setdefault(names, len(self._names))
        if name_id == len(self._names):
            self._names.append(names)
        split = _split_rank(r["split"])
        runs = len(self._run_starts)
        if not runs or (
            self._run_stages[-1],
            self._run_epochs[-1],
            self._run_splits[-1],
            self._run_names[-1],
        ) != (r["stage"], r["epoch"], split, name_id):
            self._run_stages.append(r["stage"])
            self._run_epochs.append(r["epoch"])
            self._run_splits.append(split)
            self._run_names.append(name_id)
            self._run_starts.append(len(self._steps))
        self._steps.append(r["step"])
        self._values.extend(r["values"].values())

    append = log

    @classmethod
    def from_jsonl(cls, path: str | os.PathLike[str]) -> History:
        """Read the records of a :class:`JSONLinesLogger` file.

        Blank lines are skipped. A last line without its newline that is not
        valid JSON (a crash cut it short) is ignored; a bad line anywhere else
        raises :class:`~learning_diagrams.core.errors.FileFormatError`
        (a ``ValueError``) naming the line.
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
                raise FileFormatError(f"{path}:{number}: not a JSON record: {exc}") from exc
            try:
                history.log(record)
            except (TypeError, ValueError) as exc:
                raise FileFormatError(f"{path}:{number}: {exc}") from exc
        return history

    # -- the stored rows

    def _rows(self, reverse: bool = False) -> Iterator[_Row]:
        """Every record as stored, oldest first (or newest first)."""
        runs = len(self._run_starts)
        ends = [*self._run_starts[1:], len(self._steps)]
        order = reversed(range(runs)) if reverse else range(runs)
        offset = len(self._values) if reverse else 0
        for i in order:
            stage, epoch = self._run_stages[i], self._run_epochs[i]
            split, names = SPLITS[self._run_splits[i]], self._names[self._run_names[i]]
            n, span = len(names), range(self._run_starts[i], ends[i])
            for j in reversed(span) if reverse else span:
                if reverse:
                    offset -= n
                yield _Row(stage, epoch, self._steps[j], split, names, offset)
                if not reverse:
                    offset += n

    def _record(self, row: _Row) -> Record:
        values = dict(zip(row.names, self._values[row.offset : row.offset + len(row.names)]))
        return {"stage": row.stage, "epoch": row.epoch, "step": row.step, "split": row.split, "values": values}

    def _value(self, row: _Row, name: str) -> float | None:
        try:
            return self._values[row.offset + row.names.index(name)]
        except ValueError:
            return None

    # -- reading

    @property
    def records(self) -> tuple[Record, ...]:
        """All records, oldest first (new dicts, built from the stored numbers)."""
        return tuple(self)

    def __len__(self) -> int:
        return len(self._steps)

    def __iter__(self) -> Iterator[Record]:
        return (self._record(row) for row in self._rows())

    def rows(self) -> list[tuple[int, int, int, str, str, float]]:
        """The records in tidy form: ``(stage, epoch, step, split, name, value)`` per value."""
        return [
            (r.stage, r.epoch, r.step, r.split, name, self._values[r.offset + i])
            for r in self._rows()
            for i, name in enumerate(r.names)
        ]

    def names(self, split: str | None = "train") -> list[str]:
        """The value names of ``split`` (every split if None): ``"total"`` first, then in the order first logged."""
        seen: dict[str, None] = {}
        for i in range(len(self._run_starts)):
            if split is None or SPLITS[self._run_splits[i]] == split:
                seen.update(dict.fromkeys(self._names[self._run_names[i]]))
        return ["total", *(n for n in seen if n != "total")] if "total" in seen else list(seen)

    def last(self, name: str, split: str = "train") -> float:
        """The latest value of ``name`` in ``split``.

        Raises
        ------
        KeyError
            If no record of ``split`` has ``name``.
        """
        for row in self._rows(reverse=True):
            if row.split == split:
                value = self._value(row, name)
                if value is not None:
                    return value
        raise KeyError(f"no {split} value named {name!r}; known: {self.names(split)}")

    def mean(self, name: str, split: str = "train", stage: int | None = None, epoch: int | None = None) -> float:
        """The mean of ``name`` over the records of ``split`` (and ``stage``, ``epoch`` when given).

        Raises
        ------
        KeyError
            If no such record has ``name``.
        """
        values = [v for v in (self._value(r, name) for r in self._select(split, stage, epoch)) if v is not None]
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
        if not len(self):
            return "(no records)"
        names = self.names(split=None)
        last_epoch: dict[tuple[int, str], int] = {}
        for i in range(len(self._run_starts)):
            key = (self._run_stages[i], SPLITS[self._run_splits[i]])
            last_epoch[key] = max(last_epoch.get(key, self._run_epochs[i]), self._run_epochs[i])
        groups = sorted(last_epoch, key=lambda g: (g[0], _split_rank(g[1])))
        table = [["stage", "split", "epoch", *names]]
        for stage, split in groups:
            epoch = last_epoch[(stage, split)]
            rows = list(self._select(split, stage, epoch))
            cells = [str(stage), split, str(epoch)]
            for name in names:
                values = [v for v in (self._value(r, name) for r in rows) if v is not None]
                cells.append(f"{math.fsum(values) / len(values):.6g}" if values else "-")
            table.append(cells)
        widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
        lines = []
        for row in table:
            cells = [cell.ljust(w) if i == 1 else cell.rjust(w) for i, (cell, w) in enumerate(zip(row, widths))]
            lines.append("  ".join(cells).rstrip())
        return "\n".join(lines)

    def series(self, split: str = "train") -> dict[int, dict[str, tuple[list[int], list[float]]]]:
        """The values of ``split`` as curves: stage → name → (steps, values), names in the order first logged."""
        curves: dict[int, dict[str, tuple[list[int], list[float]]]] = {}
        for row in self._select(split):
            stage = curves.setdefault(row.stage, {})
            for i, name in enumerate(row.names):
                steps, values = stage.setdefault(name, ([], []))
                steps.append(row.step)
                values.append(self._values[row.offset + i])
        return dict(sorted(curves.items()))

    # -- plotting

    def figure(self, split: str = "train", *, stages: Mapping[int, str] | Sequence[str] | None = None) -> Figure:
        """A matplotlib figure of the values of ``split`` against step.

        One subplot per stage, side by side: stages are where the set of terms
        changes, so each subplot has one line per value name of its stage, with
        a legend below it (in up to four columns when long, the figure growing
        to hold it); a name keeps its colour (and dash) in every subplot,
        ``"total"`` first. A subplot's y axis is logarithmic when all its
        finite values are positive; non-finite values leave gaps. With no
        records of ``split`` the figure holds a single note saying so. A subplot
        is titled with its stage's name in ``stages`` (by stage index; a
        sequence names stages 0, 1, ...), else ``stage <index>``: the records
        hold the index only.

        The figure has an Agg canvas of its own: the global matplotlib
        backend and :mod:`matplotlib.pyplot` are not touched.
        """
        if isinstance(stages, str):  # a sequence too, of one-letter names
            raise TypeMismatchError(
                f"stages must name each stage, a sequence or a mapping of names, not the string {stages!r}"
            )
        return plotting.figure(self, split, dict(enumerate(stages)) if isinstance(stages, Sequence) else stages)

    def plot(
        self,
        path: str | os.PathLike[str],
        *,
        split: str = "train",
        dpi: int = 110,
        stages: Mapping[int, str] | Sequence[str] | None = None,
    ) -> Path:
        """Write :meth:`figure` as a PNG to ``path`` atomically (see :func:`write_atomic`).

        Returns
        -------
        pathlib.Path
            ``path``.
        """
        buffer = io.BytesIO()
        self.figure(split, stages=stages).savefig(buffer, format="png", dpi=dpi)
        return write_atomic(path, buffer.getvalue())

    def _select(self, split: str | None, stage: int | None = None, epoch: int | None = None) -> Iterator[_Row]:
        return (
            r
            for r in self._rows()
            if (split is None or r.split == split)
            and (stage is None or r.stage == stage)
            and (epoch is None or r.epoch == epoch)
        )
