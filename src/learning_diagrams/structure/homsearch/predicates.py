"""Ready-made predicates for the ``where=`` option of homomorphism search.

A predicate takes a diagram's :class:`~learning_diagrams.core.diagram.Space` or
:class:`~learning_diagrams.core.diagram.Map` and returns a bool:
``where={"enc": trainable}`` keeps the matches whose image of ``enc`` is trainable.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ...core.arrays import is_torch_module
from ...core.diagram import Map, Space

__all__ = ["Predicate", "trainable", "frozen", "is_module", "contains_module", "has_loss", "has_data"]

Predicate = Callable[[Any], bool]


def trainable(part: Map) -> bool:
    """Whether a map trains: it is not frozen and holds parameters (a module with some): ``where={"f": trainable}``.

    A plain function has nothing to train, even on an edge that is not frozen.

    >>> from torch import nn
    >>> import learning_diagrams as ld
    >>> trainable(ld.Map("f", "A", "B", nn.Linear(2, 2))), trainable(ld.Map("g", "A", "B", abs))
    (True, False)
    """
    return bool(part.trainable) and is_torch_module(part.fn) and any(True for _ in part.fn.parameters())


def frozen(part: Map) -> bool:
    """Whether a map is frozen: ``where={"f": frozen}``."""
    return not part.trainable


def is_module(cls: type | tuple[type, ...]) -> Predicate:
    """A predicate: the map's ``fn`` is an instance of ``cls`` (a class or a tuple of classes).

    >>> from torch import nn
    >>> import learning_diagrams as ld
    >>> is_module(nn.Linear)(ld.Map("f", "A", "B", nn.Linear(2, 2))), is_module(nn.Conv2d)(ld.Map("g", "A", "B", abs))
    (True, False)
    """

    def predicate(part: Map) -> bool:
        return isinstance(part.fn, cls)

    predicate.__qualname__ = predicate.__name__ = f"is_module({_class_names(cls)})"
    return predicate


def contains_module(cls: type | tuple[type, ...]) -> Predicate:
    """A predicate: the map's ``fn`` is an ``nn.Module`` with a submodule (or itself) of class ``cls``.

    >>> from torch import nn
    >>> import learning_diagrams as ld
    >>> contains_module(nn.ReLU)(ld.Map("f", "A", "B", nn.Sequential(nn.Linear(2, 2), nn.ReLU())))
    True
    """

    def predicate(part: Map) -> bool:
        return is_torch_module(part.fn) and any(isinstance(m, cls) for m in part.fn.modules())

    predicate.__qualname__ = predicate.__name__ = f"contains_module({_class_names(cls)})"
    return predicate


def has_loss(loss: Any = None) -> Predicate:
    """A predicate on spaces: it has a loss (``has_loss()``), or a loss equal to ``loss``.

    >>> import learning_diagrams as ld
    >>> has_loss(ld.losses.mse)(ld.Space("Y", loss=ld.losses.mse)), has_loss()(ld.Space("X"))
    (True, False)
    """

    def predicate(part: Space) -> bool:
        return part.loss is not None if loss is None else part.loss == loss

    predicate.__qualname__ = predicate.__name__ = "has_loss()" if loss is None else f"has_loss({loss!r})"
    return predicate


def has_data(part: Space) -> bool:
    """Whether a space carries data (is an indexing vertex): ``where={"N": has_data}``."""
    return part.data is not None


def _class_names(cls: type | tuple[type, ...]) -> str:
    classes = cls if isinstance(cls, tuple) else (cls,)
    return ", ".join(getattr(c, "__name__", repr(c)) for c in classes)
