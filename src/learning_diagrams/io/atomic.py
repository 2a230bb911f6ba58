"""Atomic file writes: a reader, or a crash, sees the old file or the new one, never a mix.

The one writer of the library: plots, drawings, diagram files and their
weights, logs cut back on resume, and the checkpoints' ``latest`` file all
write through it, so the protocol is written once. Each file's bytes go to a
temporary file beside it (``.tmp-<name>-<random>``), which is flushed and
``fsync``-ed, then moved over the file with :func:`os.replace`, and the folder
is ``fsync``-ed.

Choices, the same for every caller:

* **The folder must exist.** A missing parent folder raises
  :class:`FileNotFoundError` naming it, as :func:`open` would: a writer does not
  guess paths. (Run folders, ``log_dir`` and ``checkpoint_dir``, are created by
  the trainer, which owns them.)
* **Permissions**: a replaced file keeps its permission bits; a new file gets
  the usual ones (``0o666`` less the umask).
* **Failure** (an :class:`Exception`) removes the temporary files and leaves
  every previous file as it was. A :class:`BaseException` that is not an
  :class:`Exception` (``KeyboardInterrupt``, ``SystemExit``) leaves the
  temporary files, as a kill would: nothing that runs then can be trusted to
  finish, and a ``.tmp-`` file is harmless (checkpoints remove theirs at the next save).

>>> import tempfile, pathlib
>>> folder = pathlib.Path(tempfile.mkdtemp())
>>> write_atomic(folder / "a.txt", b"one").read_bytes()
b'one'
>>> write_atomic(folder / "missing" / "a.txt", b"one")  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
FileNotFoundError: cannot write 'a.txt': the folder ... does not exist
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Sequence
from pathlib import Path

__all__ = ["write_atomic", "write_atomic_many", "fsync_dir", "TMP_PREFIX"]

#: Temporary files start with this; a crash can leave one behind, and the next write may remove it.
TMP_PREFIX = ".tmp-"


def write_atomic(path: str | os.PathLike[str], data: bytes) -> Path:
    """Replace the file at ``path`` with ``data`` atomically; return ``path`` as a :class:`~pathlib.Path`.

    Raises
    ------
    FileNotFoundError
        When the folder of ``path`` does not exist; nothing is written.
    OSError
        When writing fails; the previous file is left as it was.
    """
    path = Path(path)
    write_atomic_many([(path, data)])
    return path


def write_atomic_many(writes: Sequence[tuple[str | os.PathLike[str], bytes]]) -> None:
    """Write each ``(path, data)``: all to temporary files first, then each moved into place, in order.

    A failure before the moves leaves every previous file as it was; the moves
    themselves are one :func:`os.replace` each, so put the file that commits the
    others (a diagram file after its weights, say) last. Each move is made
    durable (its folder fsynced) before the next, so that after a power cut a
    later file is never in place without the earlier ones.
    """
    staged: list[tuple[Path, Path]] = []
    try:
        for target, data in writes:
            target = Path(target)
            staged.append((_stage(target, data), target))
        for tmp, target in staged:
            os.replace(tmp, target)
            fsync_dir(target.parent)
    except Exception:
        for tmp, _ in staged:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
        raise


def _stage(target: Path, data: bytes) -> Path:
    """``data`` in a new, fsynced temporary file beside ``target``, with ``target``'s permissions."""
    if not target.parent.is_dir():
        raise FileNotFoundError(f"cannot write {target.name!r}: the folder {str(target.parent)!r} does not exist")
    try:
        mode = target.stat().st_mode & 0o777
    except FileNotFoundError:
        mode = None
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    while True:
        tmp = target.with_name(f"{TMP_PREFIX}{target.name}-{secrets.token_hex(6)}")
        try:
            fd = os.open(tmp, flags, 0o666)
        except FileExistsError:  # pragma: no cover - 48 random bits collided
            continue
        break
    try:
        with os.fdopen(fd, "wb") as f:
            if mode is not None:
                with contextlib.suppress(OSError):
                    os.fchmod(f.fileno(), mode)
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
    except Exception:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return tmp


def fsync_dir(directory: str | os.PathLike[str]) -> None:
    """Make a rename in ``directory`` durable where the platform allows it."""
    if os.name != "posix":  # pragma: no cover
        return
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # pragma: no cover
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover - some file systems refuse
        pass
    finally:
        os.close(fd)
