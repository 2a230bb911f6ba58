"""Plug-ins: the layers above the core that a diagram's methods reach, registered by name.

The core says what a diagram *is*; compiling it (an array back end) and drawing
it (a renderer) are done by layers above it. Those layers are registered here,
each by a name and the dotted path of the module that implements it, and the
module is imported the first time it is needed. So the core never imports
them, ``import learning_diagrams.core`` stays light and torch-free, and a
diagram's :meth:`~learning_diagrams.core.diagram.Diagram.compile` still works
without the user importing a back end first. The package's ``__init__``
registers the built-in plug-ins; another package may register its own.

A back end module provides ``compile(diagram, *, weights)``,
``check(diagram, batches)`` and ``formula(loss)`` (the callable a library
loss stands for on its arrays); a renderer provides ``draw(diagram, path,
**options)`` and ``repr_svg(diagram)``.

>>> registered("backend"), load("backend", "torch").__name__
(('torch', 'jax'), 'learning_diagrams.torch')
>>> load("backend", "nowhere")
Traceback (most recent call last):
...
learning_diagrams.core.errors.OptionError: no backend named 'nowhere' is registered (backends: torch, jax)
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any

from .errors import OptionError

__all__ = ["register", "load", "for_value", "registered"]

KINDS = ("backend", "renderer")

#: kind → name → the dotted path of the module.
_MODULES: dict[str, dict[str, str]] = {kind: {} for kind in KINDS}
#: The top-level package of an array type → the back end that computes with it.
_ARRAYS: dict[str, str] = {}


def register(kind: str, name: str, module: str, *, arrays: tuple[str, ...] = ()) -> None:
    """Register the module ``module`` (a dotted path, imported on first use) as the ``kind`` named ``name``.

    ``arrays`` names the top-level packages whose arrays a back end computes with
    (``("torch",)``), so that a library loss called on such arrays finds its formula there.
    """
    if kind not in KINDS:
        raise OptionError(f"unknown kind of plug-in {kind!r}; kinds: {', '.join(KINDS)}")
    _MODULES[kind][name] = module
    for package in arrays:
        _ARRAYS[package] = name


def registered(kind: str) -> tuple[str, ...]:
    """The names registered for ``kind``, in registration order."""
    return tuple(_MODULES[kind])


def load(kind: str, name: str) -> ModuleType:
    """The module of the ``kind`` named ``name``, imported now if it was not yet."""
    modules = _MODULES[kind]
    if name not in modules:
        known = ", ".join(modules) or "none"
        raise OptionError(f"no {kind} named {name!r} is registered ({kind}s: {known})")
    return importlib.import_module(modules[name])


def for_value(value: Any) -> ModuleType:
    """The back end that computes with arrays like ``value`` (found by the package of its class)."""
    package = type(value).__module__.partition(".")[0]
    if package not in _ARRAYS:
        raise OptionError(
            f"no back end computes with a {type(value).__name__} (from {package!r}); "
            f"back ends: {', '.join(_MODULES['backend']) or 'none'}"
        )
    return load("backend", _ARRAYS[package])
