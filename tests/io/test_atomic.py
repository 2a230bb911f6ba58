"""The one atomic writer: old file or new, never a mix; the folder must exist; permissions kept."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from learning_diagrams.io.atomic import TMP_PREFIX, write_atomic, write_atomic_many


def test_write_atomic_replaces_and_leaves_no_temp_files(tmp_path: Path) -> None:
    path = write_atomic(tmp_path / "file.bin", b"first")
    assert path.read_bytes() == b"first"
    write_atomic(path, bytearray(b"second"))
    assert path.read_bytes() == b"second"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file.bin"]


def test_a_missing_folder_is_refused_and_nothing_is_written(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"the folder .*missing' does not exist"):
        write_atomic(tmp_path / "missing" / "file.bin", b"data")
    assert list(tmp_path.iterdir()) == []


def test_a_replaced_file_keeps_its_permissions_and_a_new_one_gets_the_usual_ones(tmp_path: Path) -> None:
    umask = os.umask(0)
    os.umask(umask)
    new = write_atomic(tmp_path / "new.bin", b"x")
    assert stat.S_IMODE(new.stat().st_mode) == 0o666 & ~umask
    kept = tmp_path / "kept.bin"
    kept.write_bytes(b"old")
    kept.chmod(0o600)
    write_atomic(kept, b"new")
    assert stat.S_IMODE(kept.stat().st_mode) == 0o600 and kept.read_bytes() == b"new"


def test_many_files_are_staged_before_any_is_replaced(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    a, b = tmp_path / "a.bin", tmp_path / "b.bin"
    write_atomic_many([(a, b"a1"), (b, b"b1")])
    real, replaced = os.replace, []

    def replace(src, dst):
        replaced.append(Path(dst).name)
        return real(src, dst)

    monkeypatch.setattr(os, "replace", replace)
    with pytest.raises(FileNotFoundError):  # the second file's folder is missing: nothing is replaced
        write_atomic_many([(a, b"a2"), (tmp_path / "nowhere" / "b.bin", b"b2")])
    assert replaced == [] and a.read_bytes() == b"a1"
    write_atomic_many([(a, b"a2"), (b, b"b2")])
    assert replaced == ["a.bin", "b.bin"]  # in the order given: the committing file last
    assert (a.read_bytes(), b.read_bytes()) == (b"a2", b"b2")
    assert not any(p.name.startswith(TMP_PREFIX) for p in tmp_path.iterdir())


def test_a_kill_leaves_its_temporary_file_and_the_previous_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_atomic(tmp_path / "file.bin", b"previous")

    class Kill(BaseException):
        pass

    def replace(src, dst):
        raise Kill

    monkeypatch.setattr(os, "replace", replace)
    with pytest.raises(Kill):
        write_atomic(path, b"next")
    monkeypatch.undo()
    assert path.read_bytes() == b"previous"
    assert [p.name.startswith(TMP_PREFIX) for p in sorted(tmp_path.iterdir())] == [True, False]
