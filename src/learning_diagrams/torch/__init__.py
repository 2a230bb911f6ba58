"""The PyTorch back end: a diagram compiled to one composite loss, an ordinary ``torch.nn.Module``.

:func:`compile` gives a :class:`CompiledLoss` (:mod:`.compiled`); :func:`check` runs every
path once and reports what each vertex holds (:mod:`.checking`); the data of indexing
vertices is read by :class:`DataSource` (:mod:`.data`); frozen outputs are computed once per
sample by a :class:`FrozenCache` (:mod:`.cache`); the library's losses have their
PyTorch formulas in :mod:`.losses`. ``Diagram.compile()`` and ``Diagram.check()`` come here.

>>> import torch, learning_diagrams as ld
>>> d = (ld.Diagram().space("N", data=torch.ones(4, 2)).space("Y", loss=ld.losses.mse)
...      .map("f", "N", "Y", torch.nn.Linear(2, 2)).map("g", "N", "Y", torch.nn.Identity()).relate("f", "g"))
>>> loss = ld.torch.compile(d)
>>> type(loss).__name__, list(loss().terms)
('CompiledLoss', ['f ≤ g'])
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..core.diagram import Diagram
from .cache import FrozenCache
from .checking import CheckReport, check
from .compiled import CompiledLoss, Losses
from .keyed import Keyed
from .data import DEFAULT_BATCH_SIZE, DataSource, batch_size, is_full_batch
from .losses import formula, loss_function

__all__ = [
    "compile",
    "check",
    "CompiledLoss",
    "Losses",
    "FrozenCache",
    "Keyed",
    "CheckReport",
    "DataSource",
    "DEFAULT_BATCH_SIZE",
    "batch_size",
    "is_full_batch",
    "formula",
    "loss_function",
]


def compile(
    diagram: Diagram,
    *,
    weights: Mapping[str, float] | None = None,
    check_finite: bool = False,
    reduction: str = "mean",
    data: Mapping[str, Any] | None = None,
    fuse: bool | str = False,
) -> CompiledLoss:
    """The composite loss of ``diagram``; ``weights`` override term weights by term name.

    With ``check_finite=True`` a call whose total is not finite raises
    :class:`~learning_diagrams.core.errors.NonFiniteError` naming the term and the first
    edge along its paths whose output is not finite. ``reduction`` is ``"mean"`` or
    ``"sum"`` (see :class:`CompiledLoss`); ``data`` gives indexing vertices their data;
    ``fuse=True`` runs each family of parallel maps as one call (:mod:`.fusion`).
    """
    return CompiledLoss.from_diagram(
        diagram, weights=weights, check_finite=check_finite, reduction=reduction, data=data, fuse=fuse
    )
