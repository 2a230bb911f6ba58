"""Checkpoints: save and resume a compiled loss and everything its training holds.

A checkpoint is one folder, written so that a crash at any moment leaves the
last good checkpoint loadable, and loaded so that reading it never runs code
from the file.

On-disk layout
--------------
::

    directory/
        step-000000100/           one complete checkpoint per saved step
            model.safetensors     every weight of the module (safetensors.torch.save_model:
                                  a tensor shared by two keys, one model on two edges,
                                  is stored once)
            state.pt              the rest (optimisers, schedulers, scaler, counters,
                                  RNG and data-order state): plain data, torch.save;
                                  also the SHA-256 of model.safetensors (see below)
        step-000000200/
        latest                    the name of the newest committed folder, "step-000000200\\n"

Folder names are ``step-{step:09d}`` (steps past 999 999 999 just get more
digits; folders are ordered by the number, not the text). A folder is
*complete* when both files are present. Names beginning with ``.tmp-`` are
work in progress or debris, and ``.old-step-…-<random>`` is a checkpoint moved
aside while the same step is being saved again.

Atomicity protocol
------------------
:func:`save_checkpoint` proceeds in this order; what a crash (a kill, a power
cut) at each point leaves behind, and what happens next:

1. The state is checked to be plain data (see below), before anything is
   written: a :class:`TypeError` leaves the disk untouched.
2. Both files are written into a fresh ``directory/.tmp-step-…-<random>/``
   and fsynced, and so is that folder. *Crash:* a partial ``.tmp-`` folder,
   ignored by :func:`latest_checkpoint`, deleted by the next successful save.
3. The folder is renamed to ``step-…`` (one atomic ``os.rename``) and
   ``directory`` is fsynced. If that step was saved before, the old folder is
   first renamed aside to ``.old-step-…-<random>``, the new one renamed in,
   then the old one deleted. *Crash before the rename:* as in 2. *Crash
   between the two renames:* ``step-…`` is absent and its orphaned
   ``.old-step-…`` copy stands in for it: :func:`latest_checkpoint` returns
   that copy, and the next save renames it back into place before anything
   else. *Crash after both:* a leftover ``.old-`` copy, deleted by the next
   save.
4. ``latest`` is rewritten atomically (``.tmp-latest-<random>``, fsync,
   ``os.replace``, fsync ``directory``). This is the **commit point**: a
   crash before it leaves ``latest`` naming the previous checkpoint, and
   :func:`latest_checkpoint` returns that previous checkpoint even though
   the new folder may be complete on disk (the resumed run will simply save
   that step again, replacing the folder as in 3). ``latest`` is trusted
   only while it names a complete folder; if it is missing, unreadable or
   names nothing complete, the newest complete folder by step number wins.
5. Retention: with ``keep``, the oldest ``step-…`` folders beyond ``keep`` are
   renamed to ``.tmp-del-…`` and deleted (never the one just written), and any
   ``.tmp-`` debris left by earlier crashes is removed. *Crash:* only
   ``.tmp-`` debris, removed by the next save.

Integrity
---------
``state.pt`` records the SHA-256 of ``model.safetensors`` under :data:`CHECKSUM_KEY`
(which the state returned by :func:`load_checkpoint` and :func:`load_state` lacks,
and a state to save may not use). Loading checks it before any weight is copied,
and each weight's shape **and dtype** (:func:`learning_diagrams.io.weights.misfit`).
A file that cannot be read as what was saved (``state.pt`` truncated, empty or
refused; ``model.safetensors`` damaged; a checksum that does not match) raises
:class:`~learning_diagrams.core.errors.CheckpointError` naming it; a checkpoint
from before the checksum loads unchecked. :func:`latest_checkpoint` falls back
past unreadable checkpoints to the newest readable one, warning what it skipped.
:func:`save_checkpoint` refuses NaN or infinite weights (:class:`~learning_diagrams.core.errors.NonFiniteError`
naming the keys) before writing anything: a checkpoint is something to resume from.

An ordinary exception during a save (disk full, say) removes the save's own
temporary folder and puts a moved-aside folder back before propagating; a
:class:`BaseException` such as :class:`KeyboardInterrupt` leaves the debris
for the next save, like a kill would. One process writes to a directory at a
time: a save deletes every ``.tmp-`` entry it finds there.

The weights_only policy
-----------------------
Weights go through safetensors, which stores only tensors. ``state.pt`` is
read with ``torch.load(..., weights_only=True)``, which refuses any pickled
object other than tensors and plain data, so a checkpoint from elsewhere can
not run code when loaded (a refused file raises
:class:`~learning_diagrams.core.errors.CheckpointError`, caused by
:class:`pickle.UnpicklingError`). To make sure what is saved will load, the
state may hold only tensors, numbers (bool, int, float, complex), strings,
bytes, None, ``torch.Size``, ``torch.dtype``, ``torch.device``, and lists,
tuples and dicts (``OrderedDict`` too) of these; :func:`save_checkpoint`
raises a :class:`TypeError` naming the key path of anything else (a NumPy
array, a namedtuple, an arbitrary object). :func:`~.randomness.rng_state` returns
its states in that form.

>>> import tempfile, torch
>>> model = torch.nn.Linear(2, 1)
>>> with tempfile.TemporaryDirectory() as root:
...     path = save_checkpoint(root, module=model, state={"step": 7}, step=7)
...     print(path.name, sorted(p.name for p in path.iterdir()))
...     fresh = torch.nn.Linear(2, 1)
...     print(load_checkpoint(root, module=fresh), torch.equal(fresh.weight, model.weight))
step-000000007 ['model.safetensors', 'state.pt']
{'step': 7} True
"""

from __future__ import annotations

import collections
import os
import pickle
import re
import secrets
import shutil
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import safetensors
import safetensors.torch
import torch
from torch import nn

from ..core.errors import CheckpointError, ConflictError, NonFiniteError, OptionError, TypeMismatchError
from ..core.messages import NOT_SAFETENSORS, SHA256_MISMATCH
from ..io.atomic import TMP_PREFIX, fsync_dir, write_atomic
from ..io.limits import clipped
from ..io.weights import misfit, sha256_of, sort_header
from ..torch.fusion import own_storage

__all__ = [
    "save_checkpoint",
    "load_checkpoint",
    "latest_checkpoint",
    "load_state",
    "MODEL_FILE",
    "STATE_FILE",
    "LATEST_FILE",
    "CHECKSUM_KEY",
]

#: Name of the weights file inside a checkpoint folder.
MODEL_FILE = "model.safetensors"
#: Name of the plain-data state file inside a checkpoint folder.
STATE_FILE = "state.pt"
#: Name of the file, in the directory of checkpoints, that names the newest committed folder.
LATEST_FILE = "latest"
#: The key of ``state.pt`` that holds the SHA-256 of ``model.safetensors``.
CHECKSUM_KEY = "__model_sha256__"

_STEP_RE = re.compile(r"step-(\d{9,})")
_ASIDE_RE = re.compile(r"\.old-step-(\d{9,})-[0-9a-f]+")

# Exact types (not subclasses: an IntEnum or a namedtuple pickles as its own class,
# which weights_only loading refuses).
_PLAIN_LEAVES = (type(None), bool, int, float, complex, str, bytes, torch.Size, torch.dtype, torch.device)
_TENSOR_TYPES = (torch.Tensor, nn.Parameter)
_CONTAINERS = (list, tuple, dict, collections.OrderedDict)


# ---------------------------------------------------------------------------- saving


def save_checkpoint(
    directory: str | os.PathLike[str],
    *,
    module: nn.Module,
    state: Mapping[str, Any],
    step: int,
    keep: int | None = 3,
) -> Path:
    """Atomically save ``module``'s weights and ``state`` as checkpoint ``step``.

    Parameters
    ----------
    directory
        Directory of checkpoints; created if missing.
    module
        The module whose ``state_dict()`` is saved to ``model.safetensors``
        (a tensor under two keys is stored once).
    state
        Everything else, as plain data (see the module docstring): optimiser,
        scheduler and scaler state dicts, counters, :func:`~.randomness.rng_state`, ...
    step
        The step number; the folder is ``step-{step:09d}``. Saving a step that
        exists already replaces it, safely.
    keep
        How many ``step-…`` folders to keep (the one just written always
        among them); ``None`` keeps all.

    Returns
    -------
    Path
        The checkpoint folder just written and committed.

    Raises
    ------
    TypeError
        If ``state`` holds something ``torch.load(weights_only=True)`` would
        refuse; the message names its key path. Nothing is written then.
    ValueError
        If ``step`` is negative or ``keep`` is below 1, or ``state`` uses the
        key :data:`CHECKSUM_KEY`.
    NonFiniteError
        If a weight of ``module`` holds a NaN or an infinity; the message
        names the keys. Nothing is written then.
    """
    if isinstance(step, bool) or not isinstance(step, int) or step < 0:
        raise OptionError(f"step must be a non-negative int, got {step!r}")
    if keep is not None and (isinstance(keep, bool) or not isinstance(keep, int) or keep < 1):
        raise OptionError(f"keep must be None or an int of at least 1, got {keep!r}")
    if not isinstance(state, Mapping):
        raise TypeMismatchError(f"state must be a dict, got {type(state).__name__}")
    if CHECKSUM_KEY in state:
        raise OptionError(f"state may not use the key {CHECKSUM_KEY!r}: the checkpoint keeps its checksum there")
    _check_plain(state, "state", set())
    _check_finite(module)

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    _restore_aside(directory)

    name = f"step-{step:09d}"
    final = directory / name
    tmp = _fresh_dir(directory, f"{TMP_PREFIX}{name}-")
    try:
        with own_storage(module):  # safetensors refuses fused members' views of their stacks
            safetensors.torch.save_model(module, str(tmp / MODEL_FILE))
        sort_header(tmp / MODEL_FILE)  # the same weights, the same bytes and checksum
        _fsync_file(tmp / MODEL_FILE)
        saved = dict(state) if type(state) is not collections.OrderedDict else collections.OrderedDict(state)
        saved[CHECKSUM_KEY] = sha256_of(tmp / MODEL_FILE)
        with open(tmp / STATE_FILE, "wb") as f:
            torch.save(saved, f)
            f.flush()
            os.fsync(f.fileno())
        fsync_dir(tmp)
        _move_into_place(tmp, final, directory)
    except Exception:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    _write_latest(directory, name)

    if keep is not None:
        others = sorted((s for s, p in _step_folders(directory).items() if p != final), reverse=True)
        for s in others[keep - 1 :]:
            _remove_tree(directory / f"step-{s:09d}", directory)
    _remove_debris(directory)
    return final


def _move_into_place(tmp: Path, final: Path, directory: Path) -> None:
    """Rename the finished ``tmp`` folder to ``final``, replacing an old one safely."""
    if not final.exists():
        os.rename(tmp, final)
        fsync_dir(directory)
        return
    aside = directory / f".old-{final.name}-{secrets.token_hex(4)}"
    os.rename(final, aside)
    try:
        os.rename(tmp, final)
    except BaseException:
        os.rename(aside, final)  # put the old checkpoint back; a kill here is undone by _restore_aside
        raise
    fsync_dir(directory)
    shutil.rmtree(aside, ignore_errors=True)


def _write_latest(directory: Path, name: str) -> None:
    write_atomic(directory / LATEST_FILE, (name + "\n").encode("utf-8"))


def _restore_aside(directory: Path) -> None:
    """Undo a replacement interrupted between its two renames; drop finished ones' leftovers."""
    for entry in directory.iterdir():
        match = _ASIDE_RE.fullmatch(entry.name)
        if not match or not entry.is_dir():
            continue
        home = directory / f"step-{match.group(1)}"
        if not _is_complete(home) and _is_complete(entry):
            if home.exists():
                _remove_tree(home, directory)
            os.rename(entry, home)
            fsync_dir(directory)
        else:
            _remove_tree(entry, directory)


def _remove_debris(directory: Path) -> None:
    for entry in directory.iterdir():
        if entry.name.startswith(TMP_PREFIX):
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)


def _remove_tree(path: Path, directory: Path) -> None:
    """Delete a folder so that a crash part-way leaves only ``.tmp-`` debris."""
    doomed = directory / f"{TMP_PREFIX}del-{path.name}-{secrets.token_hex(4)}"
    os.rename(path, doomed)
    shutil.rmtree(doomed, ignore_errors=True)


def _fresh_dir(directory: Path, prefix: str) -> Path:
    while True:
        path = directory / f"{prefix}{secrets.token_hex(4)}"
        try:
            path.mkdir()  # honours the umask, unlike tempfile.mkdtemp's 0700
            return path
        except FileExistsError:  # pragma: no cover - 32 random bits
            continue


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDWR)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _check_finite(module: nn.Module) -> None:
    """Raise a NonFiniteError naming every weight of ``module`` that holds a NaN or an infinity."""
    weights = [
        (k, t) for k, t in module.state_dict().items() if isinstance(t, torch.Tensor) and t.device.type != "meta"
    ]
    bad = [k for k, t in weights if (t.is_floating_point() or t.is_complex()) and not bool(torch.isfinite(t).all())]
    if bad:
        shown = ", ".join(bad[:20]) + (f" and {len(bad) - 20} more" if len(bad) > 20 else "")
        raise NonFiniteError(
            f"the weights {shown} hold NaN or infinite values: no checkpoint was written "
            f"(resume from the last one, and lower the learning rate or clip gradients)"
        )


def _check_plain(value: Any, path: str, open_containers: set[int]) -> None:
    """Raise a TypeError naming ``path`` if ``value`` would not load with ``weights_only=True``."""
    kind = type(value)
    if kind in _PLAIN_LEAVES or kind in _TENSOR_TYPES:
        return
    if kind not in _CONTAINERS:
        raise TypeMismatchError(
            f"{path} is a {kind.__module__}.{kind.__qualname__}, which torch.load(weights_only=True) "
            f"cannot load; checkpoint state may hold only tensors, numbers, strings, bools, None, and "
            f"lists, tuples and dicts of these (convert it, to a tensor, a list or a dict of its fields)"
        )
    if id(value) in open_containers:
        raise TypeMismatchError(f"{path} contains itself; checkpoint state must be a tree of plain data")
    open_containers.add(id(value))
    if kind in (list, tuple):
        for i, item in enumerate(value):
            _check_plain(item, f"{path}[{i}]", open_containers)
    else:
        for key, item in value.items():
            _check_plain(key, f"a key of {path} ({key!r})", open_containers)
            _check_plain(item, f"{path}[{key!r}]", open_containers)
    open_containers.discard(id(value))


# ---------------------------------------------------------------------------- finding


def _is_complete(folder: Path) -> bool:
    return (folder / MODEL_FILE).is_file() and (folder / STATE_FILE).is_file()


def _step_folders(directory: Path) -> dict[int, Path]:
    """Every ``step-…`` folder by step number, complete or not."""
    found = {}
    for entry in directory.iterdir():
        match = _STEP_RE.fullmatch(entry.name)
        if match and entry.is_dir():
            found[int(match.group(1))] = entry
    return found


def _loadable(directory: Path) -> dict[int, Path]:
    """Complete checkpoints by step: ``step-…`` folders, else an orphaned ``.old-step-…`` copy."""
    found = {s: p for s, p in _step_folders(directory).items() if _is_complete(p)}
    for entry in sorted(directory.iterdir()):
        match = _ASIDE_RE.fullmatch(entry.name)
        if match and int(match.group(1)) not in found and _is_complete(entry):
            found[int(match.group(1))] = entry
    return found


def latest_checkpoint(directory: str | os.PathLike[str]) -> Path | None:
    """The checkpoint folder to resume from in ``directory``, or ``None`` if there is none.

    Each candidate is read to check it (``state.pt`` whole, ``model.safetensors``
    hashed): this costs about one reading of the checkpoint returned.

    Parameters
    ----------
    directory
        A directory of checkpoints written by :func:`save_checkpoint`.

    Returns
    -------
    Path or None
        The complete folder that the ``latest`` file names; if ``latest`` is
        missing, unreadable or names no complete folder, the complete folder
        with the highest step; ``None`` if there is no complete folder (or no
        ``directory``). Where a same-step replacement was interrupted, the
        folder returned may be its moved-aside copy ``.old-step-…``.

    Warns
    -----
    UserWarning
        When the folder it would return cannot be read (a file truncated,
        damaged or refused, a checksum that does not match): it falls back to
        the newest readable one, the warning naming each folder skipped and why.
    """
    folder, skipped = _pick(Path(directory))
    _warn_skipped(directory, skipped, folder)
    return folder


def _warn_skipped(directory: str | os.PathLike[str], skipped: list[tuple[Path, str]], folder: Path | None) -> None:
    if skipped:
        why = "; ".join(f"{p.name} ({problem})" for p, problem in skipped)
        then = f"using {folder.name}" if folder is not None else "no readable checkpoint is left"
        warnings.warn(f"{directory}: skipped unreadable checkpoint(s) {why}; {then}", stacklevel=3)


def _pick(directory: Path) -> tuple[Path | None, list[tuple[Path, str]]]:
    """The folder :func:`latest_checkpoint` returns, and the unreadable ones it skipped, with why."""
    if not directory.is_dir():
        return None, []
    candidates = _loadable(directory)
    try:
        named = (directory / LATEST_FILE).read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError):
        named = ""
    match = _STEP_RE.fullmatch(named)
    order = [candidates[int(match.group(1))]] if match and int(match.group(1)) in candidates else []
    order += [candidates[s] for s in sorted(candidates, reverse=True) if candidates[s] not in order]
    skipped = []
    for folder in order:
        try:
            _verify(folder, _read_state(folder / STATE_FILE, "cpu"))
        except CheckpointError as err:
            skipped.append((folder, str(err).removeprefix(f"{folder}{os.sep}")))
            continue
        return folder, skipped
    return None, skipped


# ---------------------------------------------------------------------------- loading


def load_state(folder: str | os.PathLike[str], *, map_location: Any = "cpu") -> dict[str, Any]:
    """The ``state`` saved in the checkpoint ``folder`` (its ``state.pt``), read with ``weights_only=True``.

    What resuming needs before the models are built; :func:`load_checkpoint`
    reads it too, with the weights.

    Parameters
    ----------
    folder
        A checkpoint folder (``step-…``), e.g. as :func:`latest_checkpoint` returns.
    map_location
        Where the state's tensors go (``torch.load``'s ``map_location``).

    Returns
    -------
    dict
        The ``state`` given to :func:`save_checkpoint` (without :data:`CHECKSUM_KEY`).

    Raises
    ------
    FileNotFoundError
        If ``folder`` has no ``state.pt``.
    CheckpointError
        If ``state.pt`` cannot be read (truncated, empty, damaged), holds more than
        plain data (``weights_only`` refused it, and no code from it ran) or is not a
        dict; the message names the file.
    """
    file = Path(folder) / STATE_FILE
    if not file.is_file():
        raise FileNotFoundError(f"no checkpoint state at {str(file)!r}: it does not exist")
    state = _read_state(file, map_location)
    state.pop(CHECKSUM_KEY, None)
    return state


def _read_state(file: Path, map_location: Any) -> dict[str, Any]:
    """``state.pt`` read with weights_only=True; any failure to read it is a CheckpointError naming it."""
    try:
        state = torch.load(file, map_location=map_location, weights_only=True)
    except FileNotFoundError:
        raise
    except pickle.UnpicklingError as e:  # torch's weights_only unpickler: a refused object, or bytes not a pickle
        found = re.search(r"WeightsUnpickler error:\s*(.*?)\s*(?:Check the documentation|$)", str(e), re.S)
        said = clipped(found.group(1) if found else str(e), 200)
        if "global" not in said.lower():
            raise CheckpointError(f"{file}: cannot be read, it is truncated or damaged ({said})") from e
        raise CheckpointError(
            f"{file}: holds more than plain data, and torch.load(weights_only=True) refused to load it "
            f"(so no code from it ran); save_checkpoint never writes such a file: do not load it unless "
            f"you trust its origin. torch said: {said}"
        ) from e
    except Exception as e:  # torch raises RuntimeError, EOFError, ... for a truncated or damaged file
        said = f"{type(e).__name__}: {clipped(str(e), 200)}" if str(e) else type(e).__name__
        raise CheckpointError(f"{file}: cannot be read, it is truncated or damaged ({said})") from e
    if not isinstance(state, dict):
        raise CheckpointError(f"{file}: holds a {type(state).__name__}, not the dict of state save_checkpoint writes")
    return state


#: Model files whose checksum matched, by path, with what identified the file then (this process only).
_VERIFIED: dict[Path, tuple[int, ...]] = {}


def _verify(folder: Path, state: Mapping[str, Any]) -> None:
    """Check ``model.safetensors`` against the checksum in ``state``, and that its header reads."""
    model_file, expected = folder / MODEL_FILE, state.get(CHECKSUM_KEY)
    try:
        info = model_file.stat()
        identity = (info.st_ino, info.st_size, info.st_mtime_ns, info.st_ctime_ns)
        found = sha256_of(model_file) if expected is not None and _VERIFIED.get(model_file) != identity else None
    except OSError as e:
        raise CheckpointError(f"{model_file}: cannot be read ({e.strerror or type(e).__name__})") from e
    if found is not None:
        if found != expected:
            raise CheckpointError(
                SHA256_MISMATCH.format(file=model_file, found=found, record=STATE_FILE, expected=clipped(expected))
            )
        if len(_VERIFIED) > 32:
            _VERIFIED.clear()
        _VERIFIED[model_file] = identity
    _header(model_file)


def _header(model_file: Path) -> dict[str, tuple[tuple[int, ...], str]]:
    """Each key of ``model_file`` with its shape and dtype name; CheckpointError when it cannot be read."""
    try:
        with safetensors.safe_open(str(model_file), framework="pt") as f:
            return {
                key: (tuple(f.get_slice(key).get_shape()), f.get_slice(key).get_dtype())
                for key in f.keys()  # noqa: SIM118 - safe_open is not a dict
            }
    except Exception as e:  # safetensors raises its own SafetensorError for a damaged file
        raise CheckpointError(NOT_SAFETENSORS.format(file=model_file, reason=clipped(str(e), 200))) from e


def load_checkpoint(
    path: str | os.PathLike[str],
    *,
    module: nn.Module,
    map_location: Any = "cpu",
) -> dict[str, Any]:
    """Load a checkpoint's weights into ``module`` and return its state.

    Parameters
    ----------
    path
        A checkpoint folder, or a directory of checkpoints (then
        :func:`latest_checkpoint` picks the folder).
    module
        Receives the weights, strictly: every key of ``module.state_dict()``
        must be in the file (or share its tensor with one that is), nothing
        else may be, and shapes and dtypes must agree.
    map_location
        Where the state's tensors go (``torch.load``'s ``map_location``). The
        weights are read onto that device too when it is a device or a device
        string, else onto the CPU, and then copied into ``module``'s own
        parameters and buffers, wherever they are.

    Returns
    -------
    dict
        The ``state`` given to :func:`save_checkpoint`.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist, holds no complete checkpoint, or is a
        checkpoint folder with a file missing.
    CheckpointError
        (a ``ValueError``) if a file of the checkpoint cannot be read as what
        was saved: ``state.pt`` truncated, empty, damaged, or holding more than
        plain data (``weights_only`` refuses it; no code from the file runs);
        ``model.safetensors`` damaged, or not matching the checksum in
        ``state.pt``. The message names the file; ``module`` is left untouched.
        Given a directory whose checkpoints are all unreadable, it lists them.
    ConflictError
        (a ``ValueError``) if the weights do not fit ``module``: one message
        lists the missing keys, the unexpected keys and the shape and dtype
        mismatches. ``module`` is left untouched.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no checkpoint at {str(path)!r}: it does not exist")
    if not path.is_dir():
        raise NotADirectoryError(f"{str(path)!r} is a file; give a checkpoint folder or a directory of checkpoints")
    folder = path
    if not (path / MODEL_FILE).exists() and not (path / STATE_FILE).exists():
        found, skipped = _pick(path)
        if found is None and skipped:
            why = "; ".join(f"{p.name}: {problem}" for p, problem in skipped)
            raise CheckpointError(f"no readable checkpoint in {str(path)!r}: {why}")
        if found is None:
            raise FileNotFoundError(f"no complete checkpoint in {str(path)!r}")
        _warn_skipped(path, skipped, folder := found)
    for file in (MODEL_FILE, STATE_FILE):
        if not (folder / file).is_file():
            raise FileNotFoundError(f"checkpoint {str(folder)!r} is incomplete: {file} is missing")

    state = _read_state(folder / STATE_FILE, map_location)
    _verify(folder, state)
    state.pop(CHECKSUM_KEY, None)
    model_file = folder / MODEL_FILE
    _check_fits(module, model_file)
    device = str(torch.device(map_location)) if isinstance(map_location, str | torch.device) else "cpu"
    try:
        with own_storage(module):
            safetensors.torch.load_model(module, model_file, strict=True, device=device)
    except RuntimeError as e:  # what the check above could not foresee
        raise ConflictError(f"the weights in {str(model_file)!r} do not fit the module: {e}") from e
    except Exception as e:  # safetensors' own error: the file changed or is damaged past its header
        raise CheckpointError(f"{model_file}: cannot be read ({clipped(str(e), 200)})") from e
    return state


def _check_fits(module: nn.Module, model_file: Path) -> None:
    """Raise one ConflictError listing every key, shape and dtype that does not match, before loading."""
    problem = misfit(module.state_dict(), _header(model_file), "the module", tied=True)
    if problem:
        raise ConflictError(
            f"the weights in {str(model_file)!r} do not fit the {type(module).__name__}:\n{problem}\n"
            f"  was the diagram compiled with the same models and edge names as when it was saved?"
        )
