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
                                  RNG and data-order state): plain data, torch.save
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
:class:`pickle.UnpicklingError`). To make sure what is saved will load, the
state may hold only tensors, numbers (bool, int, float, complex), strings,
bytes, None, ``torch.Size``, ``torch.dtype``, ``torch.device``, and lists,
tuples and dicts (``OrderedDict`` too) of these; :func:`save_checkpoint`
raises a :class:`TypeError` naming the key path of anything else (a NumPy
array, a namedtuple, an arbitrary object). :func:`rng_state` returns its
states in that form.

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
import random
import re
import secrets
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import safetensors
import safetensors.torch
import torch
from torch import nn

from ..core.errors import ConflictError, OptionError, TypeMismatchError
from ..io.atomic import TMP_PREFIX, fsync_dir, write_atomic
from ..io.weights import misfit

__all__ = [
    "save_checkpoint",
    "load_checkpoint",
    "latest_checkpoint",
    "rng_state",
    "set_rng_state",
    "MODEL_FILE",
    "STATE_FILE",
    "LATEST_FILE",
]

#: Name of the weights file inside a checkpoint folder.
MODEL_FILE = "model.safetensors"
#: Name of the plain-data state file inside a checkpoint folder.
STATE_FILE = "state.pt"
#: Name of the file, in the directory of checkpoints, that names the newest committed folder.
LATEST_FILE = "latest"

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
        scheduler and scaler state dicts, counters, :func:`rng_state`, ...
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
        If ``step`` is negative or ``keep`` is below 1.
    """
    if isinstance(step, bool) or not isinstance(step, int) or step < 0:
        raise OptionError(f"step must be a non-negative int, got {step!r}")
    if keep is not None and (isinstance(keep, bool) or not isinstance(keep, int) or keep < 1):
        raise OptionError(f"keep must be None or an int of at least 1, got {keep!r}")
    if not isinstance(state, Mapping):
        raise TypeMismatchError(f"state must be a dict, got {type(state).__name__}")
    _check_plain(state, "state", set())

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    _restore_aside(directory)

    name = f"step-{step:09d}"
    final = directory / name
    tmp = _fresh_dir(directory, f"{TMP_PREFIX}{name}-")
    try:
        safetensors.torch.save_model(module, str(tmp / MODEL_FILE))
        _fsync_file(tmp / MODEL_FILE)
        with open(tmp / STATE_FILE, "wb") as f:
            torch.save(state, f)
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
    """
    directory = Path(directory)
    if not directory.is_dir():
        return None
    candidates = _loadable(directory)
    try:
        named = (directory / LATEST_FILE).read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError):
        named = ""
    match = _STEP_RE.fullmatch(named)
    if match and int(match.group(1)) in candidates:
        return candidates[int(match.group(1))]
    return candidates[max(candidates)] if candidates else None


# ---------------------------------------------------------------------------- loading


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
        else may be, and shapes must agree.
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
    ConflictError
        (a ``ValueError``) if the weights do not fit ``module``: one message
        lists the missing keys, the unexpected keys and the shape
        mismatches. ``module`` is left untouched.
    pickle.UnpicklingError
        If ``state.pt`` holds anything but plain data (``weights_only``
        refuses it; no code from the file runs). ``module`` is left untouched.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no checkpoint at {str(path)!r}: it does not exist")
    if not path.is_dir():
        raise NotADirectoryError(f"{str(path)!r} is a file; give a checkpoint folder or a directory of checkpoints")
    if path.is_dir() and not (path / MODEL_FILE).exists() and not (path / STATE_FILE).exists():
        folder = latest_checkpoint(path)
        if folder is None:
            raise FileNotFoundError(f"no complete checkpoint in {str(path)!r}")
    else:
        folder = path
    for file in (MODEL_FILE, STATE_FILE):
        if not (folder / file).is_file():
            raise FileNotFoundError(f"checkpoint {str(folder)!r} is incomplete: {file} is missing")

    state_file = folder / STATE_FILE
    try:
        state = torch.load(state_file, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:
        raise pickle.UnpicklingError(
            f"{str(state_file)!r} holds more than plain data, and torch.load(weights_only=True) refused "
            f"to load it (so no code from it ran); save_checkpoint never writes such a file: do not load "
            f"it unless you trust its origin. torch said: {e}"
        ) from e

    model_file = folder / MODEL_FILE
    _check_fits(module, model_file)
    device = str(torch.device(map_location)) if isinstance(map_location, str | torch.device) else "cpu"
    try:
        safetensors.torch.load_model(module, model_file, strict=True, device=device)
    except RuntimeError as e:  # what the check above could not foresee
        raise ConflictError(f"the weights in {str(model_file)!r} do not fit the module: {e}") from e
    return state


def _check_fits(module: nn.Module, model_file: Path) -> None:
    """Raise one ConflictError listing every key and shape that does not match, before loading."""
    with safetensors.safe_open(str(model_file), framework="pt") as f:
        stored = {key: tuple(f.get_slice(key).get_shape()) for key in f.keys()}  # noqa: SIM118
    problem = misfit(module.state_dict(), stored, "the module", tied=True)
    if problem:
        raise ConflictError(
            f"the weights in {str(model_file)!r} do not fit the {type(module).__name__}:\n{problem}\n"
            f"  was the diagram compiled with the same models and edge names as when it was saved?"
        )


# ---------------------------------------------------------------------------- RNG


def rng_state() -> dict[str, Any]:
    """The states of every random number generator a training run draws from.

    Returns
    -------
    dict
        ``"python"`` (:mod:`random`), ``"numpy"`` (NumPy's global generator,
        its key as an int64 tensor), ``"torch"`` (the CPU generator) and
        ``"cuda"`` (a list, one state per CUDA device; empty without CUDA),
        all plain data that ``torch.load(weights_only=True)`` loads.

    >>> state = rng_state()
    >>> a = torch.rand(2)
    >>> set_rng_state(state)
    >>> torch.equal(a, torch.rand(2))
    True
    """
    version, internal, gauss_next = random.getstate()
    name, keys, pos, has_gauss, cached_gaussian = np.random.get_state(legacy=True)
    return {
        "python": {"version": int(version), "internal": [int(i) for i in internal], "gauss_next": gauss_next},
        "numpy": {
            "bit_generator": str(name),
            "keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached_gaussian": float(cached_gaussian),
        },
        "torch": torch.get_rng_state(),
        "cuda": [s.cpu() for s in torch.cuda.get_rng_state_all()] if torch.cuda.is_available() else [],
    }


def set_rng_state(state: Mapping[str, Any]) -> None:
    """Restore the generators from a :func:`rng_state` dict (also after a save and load).

    Parameters
    ----------
    state
        As returned by :func:`rng_state`. CUDA states are restored for the
        devices present, up to as many as were saved; without CUDA they are
        ignored (resuming on another number of GPUs then cannot repeat the
        uninterrupted run's draws on the GPUs).
    """
    py = state["python"]
    random.setstate((py["version"], tuple(py["internal"]), py["gauss_next"]))
    nps = state["numpy"]
    keys = torch.as_tensor(nps["keys"]).cpu().numpy().astype(np.uint32)
    np.random.set_state((nps["bit_generator"], keys, nps["pos"], nps["has_gauss"], nps["cached_gaussian"]))
    torch.set_rng_state(torch.as_tensor(state["torch"]).cpu())
    cuda = state.get("cuda") or []
    if cuda and torch.cuda.is_available():
        for device in range(min(len(cuda), torch.cuda.device_count())):
            torch.cuda.set_rng_state(torch.as_tensor(cuda[device]).cpu(), device)
