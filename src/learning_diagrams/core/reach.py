"""What a plain callable reaches: the values it holds or names, and the modules among them.

A map given as a plain function (a lambda calling ``student``) holds its models out
of a compiled loss's sight: the loss can neither train, freeze, move nor save them.
Each back end warns of such *hidden* modules; this module is the walk they share,
whatever a module is on their arrays (``torch.nn.Module`` with parameters, an Equinox
module with arrays).

>>> class Box:
...     pass
>>> box = Box()
>>> f = lambda x: box.value + x
>>> [name for name, _ in reached(f)]
["'box'"]
>>> list(found_in("'box'", [1, box, "a"], lambda v: isinstance(v, Box)))
[("'box'[1]", <...Box object at ...>)]
"""

from __future__ import annotations

import functools
import types
from collections.abc import Callable, Iterator, Mapping
from typing import Any

__all__ = ["reached", "found_in"]


def reached(fn: Any) -> Iterator[tuple[str, Any]]:
    """The named values a callable holds or names: closure, defaults, globals, ``self``, a partial's arguments.

    Looked into: a function's closure cells, default arguments and the globals its
    code names (nested functions' too); a bound method's ``self``; a
    ``functools.partial``'s function and arguments; another callable object's
    attributes.
    """
    if isinstance(fn, functools.partial):
        yield "the function of the partial", fn.func
        yield from reached(fn.func)
        yield from ((f"argument {i} of the partial", a) for i, a in enumerate(fn.args))
        yield from ((f"argument {k!r} of the partial", a) for k, a in fn.keywords.items())
        return
    if isinstance(fn, types.MethodType):
        yield "self", fn.__self__
        fn = fn.__func__
    if isinstance(fn, types.FunctionType):
        code = fn.__code__
        for name, cell in zip(code.co_freevars, fn.__closure__ or ()):
            try:
                yield repr(name), cell.cell_contents
            except ValueError:  # an empty cell: a name not yet bound
                continue
        yield from ((f"default {i}", v) for i, v in enumerate(fn.__defaults__ or ()))
        yield from ((repr(k), v) for k, v in (fn.__kwdefaults__ or {}).items())
        for name in _global_names(code):
            if name in fn.__globals__:
                yield repr(name), fn.__globals__[name]
    elif not isinstance(fn, (types.BuiltinFunctionType, type)) and hasattr(fn, "__dict__"):
        yield from ((f"attribute {k!r}", v) for k, v in vars(fn).items())


def _global_names(code: types.CodeType) -> Iterator[str]:
    yield from code.co_names
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            yield from _global_names(const)


def found_in(name: str, value: Any, wanted: Callable[[Any], bool]) -> Iterator[tuple[str, Any]]:
    """The ``wanted`` values in ``value``: itself, the items of a container, or the attributes of a plain object.

    Containers (lists, tuples, sets, dicts) and plain objects are looked into one level deep.
    """
    if wanted(value):
        yield name, value
    elif isinstance(value, (list, tuple, set, frozenset)):
        yield from ((f"{name}[{i}]", v) for i, v in enumerate(value) if wanted(v))
    elif isinstance(value, Mapping):
        yield from ((f"{name}[{k!r}]", v) for k, v in value.items() if wanted(v))
    elif not isinstance(value, (type, types.ModuleType, types.FunctionType, types.BuiltinFunctionType)) and hasattr(
        value, "__dict__"
    ):
        try:
            attributes = vars(value)
        except TypeError:  # pragma: no cover - an object without a writable __dict__
            return
        yield from ((f"{name}.{k}", v) for k, v in attributes.items() if wanted(v))
