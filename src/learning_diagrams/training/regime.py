"""Refusing a regime that would train nothing, before it runs.

A stage whose compiled pairs reach no trainable parameter would run its epochs,
log its losses and leave every weight bitwise unchanged. The usual cause is a
plain function that calls a model (``lambda v: student(v)``): the compiled loss
registers modules given to edges, and a function hides the modules it calls.
:func:`refuse_nothing_to_train` raises an
:class:`~learning_diagrams.core.errors.OptionError` that names every map on the
stage's pairs and says what each is.

>>> import torch, learning_diagrams as ld
>>> student = torch.nn.Linear(2, 1)
>>> d = (ld.Diagram().space("N", data=[(torch.ones(4, 2), torch.zeros(4, 1))]).space("X")
...      .space("Y", loss=ld.losses.mse).map("x", "N", "X", lambda b: b[0])
...      .map("y", "N", "Y", lambda b: b[1]).map("f", "X", "Y", torch.nn.Linear(2, 1), trainable=False)
...      .relate("x·f", "y"))
>>> print(describe_maps(d, d.compiled_pairs()))
'x' (a plain function), 'f' (frozen), 'y' (a plain function)
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from torch import nn

from ..core.diagram import Diagram, Pair
from ..core.errors import OptionError
from ..core.messages import NOTHING_TO_TRAIN
from ..torch.finite import hidden_modules

__all__ = ["describe_maps", "trainable_parameters", "refuse_nothing_to_train"]


def _edges(pairs: Iterable[Pair]) -> list[str]:
    return list(dict.fromkeys(e for pair in pairs for path in (pair.first, pair.second) for e in path))


def describe_maps(diagram: Diagram, pairs: Iterable[Pair]) -> str:
    """Each map on ``pairs``'s paths by name, with what it is: frozen, a plain function, a module without parameters..."""
    edges = _edges(pairs)
    registered: list[nn.Module] = []
    for e in edges:
        fn = diagram.maps[e].fn
        if isinstance(fn, nn.Module):
            registered.append(fn)
    described = []
    for e in edges:
        m = diagram.maps[e]
        if isinstance(m.fn, nn.Module):
            params = list(m.fn.parameters())
            if not m.trainable:
                what = "frozen"
            elif not params:
                what = f"a {type(m.fn).__name__} without parameters"
            elif not any(p.requires_grad for p in params):
                what = f"a {type(m.fn).__name__} whose parameters all have requires_grad=False"
            else:
                what = f"a {type(m.fn).__name__}"
        else:
            hidden = [label for label, _ in hidden_modules(m.fn, registered)] if m.fn is not None else []
            what = "a plain function" + (f" that calls module {', '.join(hidden)}" if hidden else "")
        described.append(f"{e!r} ({what})")
    return ", ".join(described)


def trainable_parameters(diagram: Diagram, pairs: Iterable[Pair]) -> int:
    """How many parameter tensors the trainable module edges on ``pairs`` hold (shared ones once).

    The ``requires_grad`` flags are not looked at: compiling sets those of frozen
    maps, and a later stage may compile a map trainable again.
    """
    seen: set[int] = set()
    for e in _edges(pairs):
        m = diagram.maps[e]
        if m.trainable and isinstance(m.fn, nn.Module):
            seen.update(id(p) for p in m.fn.parameters())
    return len(seen)


def refuse_nothing_to_train(
    what: str,
    diagram: Diagram,
    weights: Mapping[str, float] | None = None,
    *,
    params: Any = None,
    pairs: Sequence[Pair] | None = None,
) -> None:
    """Raise :class:`OptionError` if ``diagram``'s compiled pairs have nothing to train.

    ``what`` names the stage in the message. With ``params`` (the parameters that
    reach the optimisers) the test is exact: none of them; without, it is
    :func:`trainable_parameters`, which a run can tell before any stage starts.
    ``pairs`` are the diagram's compiled pairs with ``weights``, when the caller has them.
    """
    if pairs is None:
        pairs = diagram.compiled_pairs(weights)
    empty = not list(params) if params is not None else trainable_parameters(diagram, pairs) == 0
    if empty:
        raise OptionError(NOTHING_TO_TRAIN.format(what=what, maps=describe_maps(diagram, pairs)))
