"""Weights files: the state dicts of a diagram's modules in safetensors, and the strict check of a fit.

:func:`weights_bytes` writes the ``state_dict`` of every module, keyed
``"<fn name>.<key>"`` (so a module's name may not contain ``.``); a module on
several edges is stored once, and a tensor that one module holds under two keys
(tied weights) once, the other key recorded in the file's metadata as
``{"<alias>": "<kept key>"}``; the header's keys are written sorted, so the same
weights give the same bytes. :func:`load_weights` loads a file into modules, in
place and strictly. :func:`misfit` is the one strict check, used here and by
checkpoints: every missing key, unexpected key, shape mismatch and dtype
mismatch, in one message. A dtype is checked as well as a shape because
``load_state_dict`` converts what it copies: a float tensor relabelled as
integers in a file's header would load as other numbers, silently.

**Aliases are refused where they would replace a tensor.** An alias in the
metadata must name a key the file does *not* hold, and stand for one it does
(never for another alias): a file whose metadata says ``{"f.weight": "g.weight"}``
while it holds ``f.weight`` is refused (with :class:`FileFormatError`), rather
than one of the two being chosen silently.

A diagram file records the SHA-256 of its weights file (:mod:`.files`), and a
checkpoint that of its ``model.safetensors``; :func:`sha256_of` computes it,
reading the file in blocks.

>>> import torch
>>> print(misfit({"f.weight": torch.zeros(2, 2), "f.bias": torch.zeros(2)},
...              {"f.weight": ((3, 2), torch.float32), "f.bias": ((2,), torch.int32), "g.bias": ((2,), "F32")},
...              "the modules"))
  unexpected keys (in the file, not in the modules): g.bias
  shape mismatches: f.weight: [3, 2] in the file, [2, 2] in the modules
  dtype mismatches: f.bias: int32 in the file, float32 in the modules
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Union

import safetensors
import safetensors.torch
import torch
from torch import nn

from ..core.errors import FileFormatError
from ..core.messages import NOT_SAFETENSORS
from .limits import clipped, shown

__all__ = ["weights_bytes", "load_weights", "misfit", "storage_of", "sha256_of", "sort_header", "dtype_of", "Stored"]

#: What the strict check needs of a stored tensor: its shape and its dtype (a torch dtype, or a
#: safetensors dtype name such as ``"F32"``).
Stored = tuple[Sequence[int], Union[torch.dtype, str]]

#: The safetensors dtype names, as torch dtypes (where this torch has them).
_DTYPES: dict[str, torch.dtype] = {
    name: getattr(torch, attr)
    for name, attr in {
        "BOOL": "bool",
        "U8": "uint8",
        "I8": "int8",
        "U16": "uint16",
        "I16": "int16",
        "U32": "uint32",
        "I32": "int32",
        "U64": "uint64",
        "I64": "int64",
        "F16": "float16",
        "BF16": "bfloat16",
        "F32": "float32",
        "F64": "float64",
        "C64": "complex64",
        "F8_E4M3": "float8_e4m3fn",
        "F8_E5M2": "float8_e5m2",
        "F8_E4M3FNUZ": "float8_e4m3fnuz",
        "F8_E5M2FNUZ": "float8_e5m2fnuz",
    }.items()
    if hasattr(torch, attr)
}


def dtype_of(name: str) -> torch.dtype | str:
    """The torch dtype of a safetensors dtype name (``"F32"``), or the name itself when torch has none."""
    return _DTYPES.get(name, name)


def sha256_of(path: str | os.PathLike[str]) -> str:
    """The SHA-256 of the file at ``path``, as 64 hexadecimal digits (read in 1 MiB blocks)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def storage_of(t: torch.Tensor) -> tuple[Any, ...]:
    """Identity of a tensor's memory, so that two keys holding the same tensor count as one.

    Empty tensors (which share the null pointer) and meta tensors are each their own.
    """
    ptr = t.untyped_storage().data_ptr() if t.device.type != "meta" else 0
    if ptr == 0:
        ptr = id(t)
    return (t.device, ptr, t.storage_offset(), tuple(t.shape), tuple(t.stride()), t.dtype)


def misfit(
    expected: Mapping[str, torch.Tensor], stored: Mapping[str, Stored], what: str, *, tied: bool = False
) -> str | None:
    """Why the tensors ``stored`` (key → (shape, dtype)) do not load into ``expected`` (a state dict), or ``None``.

    ``what`` names the receiver in the message. With ``tied``, a key of ``expected``
    missing from ``stored`` is fine when its tensor shares memory with one that is stored
    (``safetensors.torch.save_model`` saves tied weights once). The message has one
    line per kind of problem that occurs; each lists at most 50 keys, then a count.
    """
    covered = {storage_of(t) for k, t in expected.items() if k in stored} if tied else set()
    missing = sorted(k for k, t in expected.items() if k not in stored and storage_of(t) not in covered)
    unexpected = sorted(k for k in stored if k not in expected)
    shapes, dtypes = [], []
    for k, t in expected.items():
        if k not in stored:
            continue
        shape, dtype = stored[k]
        if tuple(shape) != tuple(t.shape):
            shapes.append(f"{k}: {list(shape)} in the file, {list(t.shape)} in {what}")
        found = dtype_of(dtype) if isinstance(dtype, str) else dtype
        if found != t.dtype:
            dtypes.append(f"{k}: {_dtype_name(found)} in the file, {_dtype_name(t.dtype)} in {what}")
    lines = []
    if missing:
        lines.append(f"  missing keys (in {what}, not in the file): {_keys(missing)}")
    if unexpected:
        lines.append(f"  unexpected keys (in the file, not in {what}): {_keys(unexpected)}")
    if shapes:
        lines.append(f"  shape mismatches: {_keys(sorted(shapes), '; ')}")
    if dtypes:
        lines.append(f"  dtype mismatches: {_keys(sorted(dtypes), '; ')}")
    return "\n".join(lines) if lines else None


def _dtype_name(dtype: torch.dtype | str) -> str:
    return str(dtype).removeprefix("torch.")


def _keys(items: list[str], sep: str = ", ", at_most: int = 50) -> str:
    listed = sep.join(items[:at_most])
    return listed if len(items) <= at_most else f"{listed}{sep}... and {len(items) - at_most} more"


def weights_bytes(modules: Mapping[str, nn.Module]) -> bytes:
    """The state dicts of ``modules`` (fn name → module) as safetensors bytes, shared tensors once."""
    tensors: dict[str, torch.Tensor] = {}
    aliases: dict[str, str] = {}
    seen: dict[tuple[Any, ...], str] = {}
    stored: set[int] = set()
    for name, module in modules.items():
        if id(module) in stored:
            continue
        stored.add(id(module))
        for key, t in module.state_dict().items():
            full = f"{name}.{key}"
            if not isinstance(t, torch.Tensor):
                raise FileFormatError(f"module {name!r}: its state {key!r} is a {type(t).__name__}, not a tensor")
            view = storage_of(t)
            if view in seen:
                aliases[full] = seen[view]
                continue
            seen[view] = full
            tensors[full] = t.detach().to("cpu", copy=True).contiguous()
    data = safetensors.torch.save(tensors, metadata={"format": "pt", **aliases})
    size = int.from_bytes(data[:8], "little")
    return _sorted_header(data[8 : 8 + size]) + data[8 + size :]


def _sorted_header(header: bytes) -> bytes:
    """A safetensors header (its length, then its JSON) with the keys sorted: the same weights, the same bytes.

    safetensors writes the metadata from a hash map, in an order that changes
    from run to run; the tensors' own order and offsets are fixed. So the
    SHA-256 of a weights file depends on the weights alone.
    """
    text = json.dumps(json.loads(header), sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    text += b" " * (-len(text) % 8)  # safetensors pads the header to 8 bytes
    return len(text).to_bytes(8, "little") + text


def sort_header(path: str | os.PathLike[str]) -> None:
    """Sort the header of the safetensors file at ``path`` in place (see :func:`_sorted_header`).

    Sorting keeps the header's length (the same compact JSON, reordered), so
    only the header is rewritten; should the length differ, the whole file is.
    """
    with open(path, "r+b") as f:
        size = int.from_bytes(f.read(8), "little")
        header = f.read(size)
        sorted_ = _sorted_header(header)
        if len(sorted_) == 8 + size:
            f.seek(0)
            f.write(sorted_)
            return
        rest = f.read()
        f.seek(0)
        f.write(sorted_ + rest)
        f.truncate()


def load_weights(file: Path, modules: Mapping[str, nn.Module]) -> None:
    """Load ``file`` into ``modules`` (fn name → module) in place, strictly.

    Raises
    ------
    FileFormatError
        For a file safetensors cannot read, metadata whose aliases would replace a
        tensor or stand for none, or weights that do not fit the modules (every
        missing, unexpected and mismatched key, shape and dtype listed); no module
        is changed then. The message starts with the file.
    """
    try:
        with safetensors.safe_open(str(file), framework="pt") as f:
            metadata = f.metadata() or {}
            stored = {key: f.get_tensor(key) for key in f.keys()}  # noqa: SIM118 - safe_open is not a dict
    except Exception as err:  # safetensors raises its own error type for a damaged header
        raise FileFormatError(NOT_SAFETENSORS.format(file=file, reason=clipped(str(err), 300))) from err
    held = set(stored)
    for alias, kept in metadata.items():
        if alias == "format":
            continue
        if alias in held:
            raise FileFormatError(
                f"{file}: its metadata makes {shown(alias)} an alias of {shown(kept)}, but the file holds a "
                f"tensor {shown(alias)} of its own; refused, rather than replace one with the other"
            )
        if kept not in held:
            raise FileFormatError(
                f"{file}: its metadata makes {shown(alias)} an alias of {shown(kept)}, which the file does not hold"
            )
        stored[alias] = stored[kept]
    unique: dict[str, nn.Module] = {}
    for name, module in modules.items():
        if any(module is other for other in unique.values()):
            continue
        if "." in name:
            raise FileFormatError(
                f"{file}: the module named {shown(name)} cannot be matched to its weights (a '.' in its name)"
            )
        unique[name] = module
    expected = {f"{n}.{k}": t for n, m in unique.items() for k, t in m.state_dict().items()}
    problem = misfit(expected, {k: (tuple(t.shape), t.dtype) for k, t in stored.items()}, "the modules")
    if problem:
        raise FileFormatError(
            f"{file}: the weights do not fit the modules of env ({', '.join(unique) or 'none'}):\n{problem}"
        )
    for name, module in unique.items():
        prefix = f"{name}."
        module.load_state_dict({k[len(prefix) :]: v for k, v in stored.items() if k.startswith(prefix)}, strict=True)
