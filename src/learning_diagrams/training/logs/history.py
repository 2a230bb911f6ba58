"""History: the records of a run in memory, with queries, a text summary and a plot.

>>> from learning_diagrams.training.logs import make_record
>>> history = History()
>>> history.log(make_record(0, 0, 1, "train", {"total": 2.0}))
>>> history.log(make_record(0, 1, 2, "train", {"total": 1.0}))
>>> history.last("total"), history.mean("total", epoch=0), len(history)
(1.0, 2.0, 2)
"""

from __future__ import annotations

import io
import json
import math
import os
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ...core.errors import FileFormatError
from ...io.atomic import write_atomic
from .loggers import Logger
from . import plotting
from .records import SPLITS, Record, checked

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure

__all__ = ["History"]


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
        self._records.append(checked(record))

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
        return plotting.figure(self, split)

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

    def _select(self, split: str | None, stage: int | None = None, epoch: int | None = None) -> list[Record]:
        return [
            r
            for r in self._records
            if (split is None or r["split"] == split)
            and (stage is None or r["stage"] == stage)
            and (epoch is None or r["epoch"] == epoch)
        ]
