"""Weights files: the state dicts of a diagram's modules in safetensors, and the strict check of a fit.

:func:`weights_bytes` writes the ``state_dict`` of every module, keyed
``"<fn name>.<key>"`` (so a module's name may not contain ``.``); a module on
several edges is stored once, and a tensor that one module holds under two keys
(tied weights) once, the other key recorded in the file's metadata as
``{"<alias>": "<kept key>"}``. :func:`load_weights` loads a file into modules, in
place and strictly. :func:`misfit` is the one strict check, used here and by
checkpoints: every missing key, unexpected key and shape mismatch, in one message.

>>> import torch
>>> print(misfit({"f.weight": torch.zeros(2, 2), "f.bias": torch.zeros(2)}, {"f.weight": (3, 2), "g.bias": (2,)}, "the modules"))
  missing keys (in the modules, not in the file): f.bias
  unexpected keys (in the file, not in the modules): g.bias
  shape mismatches: f.weight: [3, 2] in the file, [2, 2] in the modules
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import safetensors
import safetensors.torch
import torch
from torch import nn

from ..core.errors import FileFormatError

__all__ = ["weights_bytes", "load_weights", "misfit", "storage_of"]


def storage_of(t: torch.Tensor) -> tuple[Any, ...]:
    """Identity of a tensor's memory, so that two keys holding the same tensor count as one.

    Empty tensors (which share the null pointer) and meta tensors are each their own.
    """
    ptr = t.untyped_storage().data_ptr() if t.device.type != "meta" else 0
    if ptr == 0:
        ptr = id(t)
    return (t.device, ptr, t.storage_offset(), tuple(t.shape), tuple(t.stride()), t.dtype)


def misfit(
    expected: Mapping[str, torch.Tensor], stored: Mapping[str, tuple[int, ...]], what: str, *, tied: bool = False
) -> str | None:
    """Why tensors with the shapes ``stored`` (key → shape) do not load into ``expected`` (a state dict), or ``None``.

    ``what`` names the receiver in the message. With ``tied``, a key of ``expected``
    missing from ``stored`` is fine when its tensor shares memory with one that is stored
    (``safetensors.torch.save_model`` saves tied weights once).
    """
    covered = {storage_of(t) for k, t in expected.items() if k in stored} if tied else set()
    missing = sorted(k for k, t in expected.items() if k not in stored and storage_of(t) not in covered)
    unexpected = sorted(k for k in stored if k not in expected)
    shapes = sorted(
        f"{k}: {list(stored[k])} in the file, {list(t.shape)} in {what}"
        for k, t in expected.items()
        if k in stored and tuple(stored[k]) != tuple(t.shape)
    )
    lines = []
    if missing:
        lines.append(f"  missing keys (in {what}, not in the file): {', '.join(missing)}")
    if unexpected:
        lines.append(f"  unexpected keys (in the file, not in {what}): {', '.join(unexpected)}")
    if shapes:
        lines.append(f"  shape mismatches: {'; '.join(shapes)}")
    return "\n".join(lines) if lines else None


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
    return safetensors.torch.save(tensors, metadata={"format": "pt", **aliases})


def load_weights(file: Path, modules: Mapping[str, nn.Module]) -> None:
    """Load ``file`` into ``modules`` (fn name → module) in place, strictly.

    Raises
    ------
    FileFormatError
        For a file safetensors cannot read, or weights that do not fit the modules
        (every missing, unexpected and mismatched key listed); no module is changed then.
    """
    try:
        with safetensors.safe_open(str(file), framework="pt") as f:
            metadata = f.metadata() or {}
            stored = {key: f.get_tensor(key) for key in f.keys()}  # noqa: SIM118 - safe_open is not a dict
    except Exception as err:  # safetensors raises its own error type for a damaged header
        raise FileFormatError(f"{file}: not a readable safetensors file: {err}") from err
    for alias, kept in metadata.items():
        if alias == "format":
            continue
        if kept not in stored:
            raise FileFormatError(f"{file}: metadata says {alias!r} is {kept!r}, which the file does not hold")
        stored[alias] = stored[kept]
    unique: dict[str, nn.Module] = {}
    for name, module in modules.items():
        if any(module is other for other in unique.values()):
            continue
        if "." in name:
            raise FileFormatError(
                f"{file}: the module named {name!r} cannot be matched to its weights (a '.' in its name)"
            )
        unique[name] = module
    expected = {f"{n}.{k}": t for n, m in unique.items() for k, t in m.state_dict().items()}
    problem = misfit(expected, {k: tuple(t.shape) for k, t in stored.items()}, "the modules")
    if problem:
        raise FileFormatError(
            f"{file}: the weights do not fit the modules of env ({', '.join(unique) or 'none'}):\n{problem}"
        )
    for name, module in unique.items():
        prefix = f"{name}."
        module.load_state_dict({k[len(prefix) :]: v for k, v in stored.items() if k.startswith(prefix)}, strict=True)
