"""Continuing a log file: what a crash or a resume leaves to cut before writing on.

A crash may leave a last line half written; a run resumed from a checkpoint must
drop the records logged after that checkpoint, or they would be in the file
twice. These helpers cut a file back to whole lines and to a count of records,
and open it to write on.

>>> import pathlib, tempfile
>>> path = pathlib.Path(tempfile.mkdtemp()) / "log.jsonl"
>>> _ = path.write_bytes(b'{"a": 1}\\n{"a": 2}\\n{"a"')
>>> drop_partial_line(path), path.read_bytes()
(18, b'{"a": 1}\\n{"a": 2}\\n')
>>> keep_lines(path, 1); path.read_bytes()
b'{"a": 1}\\n'
"""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path

from ..io.atomic import write_atomic

__all__ = ["drop_partial_line", "keep_lines", "keep_csv_records", "open_log"]


def drop_partial_line(path: Path) -> int:
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


def keep_lines(path: Path, count: int) -> None:
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


def keep_csv_records(path: Path, count: int) -> None:
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


def open_log(path: Path, append: bool) -> tuple[io.TextIOWrapper, bool]:
    """Open a line-oriented log for writing; return the file and whether it is new (empty)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fresh = not (append and path.exists() and drop_partial_line(path) > 0)
    return open(path, "a" if append else "w", encoding="utf-8", newline=""), fresh
