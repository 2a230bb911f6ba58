"""Recognising the arrays, dtypes and modules of the back ends without importing them.

The core is torch-free, yet it describes values (``Tensor[float32, (8, 3)]``),
checks dtypes, and sets a PyTorch module's mode. It does so by duck typing and,
for PyTorch's own classes, the idiom of ``array_api_compat``: an object can only
be a ``torch.Tensor`` if ``torch`` has been imported already, so the check looks
in :data:`sys.modules` and never imports anything.

>>> is_array([1.0]), is_torch_module(abs), dtype_name("torch.float32")
(False, False, 'float32')
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any, TypeGuard

if TYPE_CHECKING:  # for the annotations only: the core never imports torch
    import torch

__all__ = ["is_array", "is_torch_tensor", "is_torch_module", "is_dtype", "dtype_name", "array_kind"]


def is_torch_tensor(value: Any) -> TypeGuard[torch.Tensor]:
    """Whether ``value`` is a ``torch.Tensor`` (``False`` whenever torch is not imported)."""
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(value, torch.Tensor)


def is_torch_module(value: Any) -> TypeGuard[torch.nn.Module]:
    """Whether ``value`` is a ``torch.nn.Module`` (``False`` whenever torch is not imported)."""
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(value, torch.nn.Module)


def is_array(value: Any) -> bool:
    """Whether ``value`` is an array of some back end: it has a ``shape`` and a ``dtype``."""
    return not isinstance(value, type) and hasattr(value, "shape") and hasattr(value, "dtype")


def array_kind(value: Any) -> str:
    """What to call an array in messages: ``"Tensor"`` for PyTorch's, ``"Array"`` for JAX's (a concrete
    array or a tracer), else its class name (``"ndarray"``)."""
    if is_torch_tensor(value):
        return "Tensor"
    if type(value).__module__.partition(".")[0] in ("jax", "jaxlib"):
        return "Array"
    return type(value).__name__


def is_dtype(value: Any) -> bool:
    """Whether ``value`` is a dtype of PyTorch or NumPy (JAX's dtypes are NumPy's)."""
    return not isinstance(value, (str, type)) and any(
        cls.__name__ == "dtype" and cls.__module__ in ("torch", "numpy") for cls in type(value).__mro__
    )


def dtype_name(dtype: Any) -> str:
    """A dtype's name without its library: ``torch.float32``, ``numpy.dtype('float32')`` → ``'float32'``."""
    name = getattr(dtype, "name", None)  # NumPy and JAX dtypes
    if isinstance(name, str):
        return name
    return str(dtype).removeprefix("torch.")
