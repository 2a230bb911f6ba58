"""The JAX back end: a diagram compiled to one composite loss, a pure function of arrays.

:func:`compile` gives a :class:`CompiledLoss` (:mod:`.compiled`): ``loss.params`` is the
pytree of the trainable maps' arrays (Equinox modules split by ``equinox.partition``) and
``loss(params, batches)`` returns ``(total, terms)``, which ``jax.jit`` and ``jax.grad``
take as they are. The library's losses have their JAX formulas in :mod:`.losses`, with
the values of their PyTorch formulas. ``Diagram.compile(backend="jax")`` comes here.
This package never imports torch.

>>> import jax.numpy as jnp, learning_diagrams as ld
>>> d = (ld.Diagram().space("N", data=jnp.ones((4, 2))).space("Y", loss=ld.losses.mse)
...      .map("f", "N", "Y", lambda x: 2 * x).map("g", "N", "Y", lambda x: x).relate("f", "g"))
>>> loss = ld.jax.compile(d)
>>> total, terms = loss(loss.params, {"N": jnp.ones((4, 2))})
>>> float(total), list(terms), loss.params
(1.0, ['f ≤ g'], {})
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..core.diagram import Diagram
from .checking import check
from .compiled import CompiledLoss, Losses
from .data import DataSource
from .losses import formula, loss_function
from .training import Trained, fit

__all__ = ["compile", "fit", "Trained", "check", "CompiledLoss", "Losses", "DataSource", "formula", "loss_function"]


def compile(
    diagram: Diagram,
    *,
    weights: Mapping[str, float] | None = None,
    reduction: str = "mean",
    data: Mapping[str, Any] | None = None,
) -> CompiledLoss:
    """The composite loss of ``diagram`` on JAX; ``weights`` override term weights by term name.

    ``reduction`` is ``"mean"`` or ``"sum"`` (see :class:`CompiledLoss`); ``data`` gives
    indexing vertices their data.
    """
    return CompiledLoss.from_diagram(diagram, weights=weights, reduction=reduction, data=data)
