"""The PyTorch formulas of the library's losses.

The losses themselves, their names and symmetry, are specified in the core
(:mod:`learning_diagrams.core.losses`); here each library loss's name is given
its formula on tensors. :func:`loss_function` is what compilation calls, once
per pair: the formula of a library loss, or a user's own function.

>>> import torch
>>> from learning_diagrams.core import losses
>>> loss_function(losses.KLDivergence(temperature=2.0))(torch.zeros(1, 3), torch.zeros(1, 3)).item()
0.0
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

from ..core.errors import UnknownNameError
from ..core.losses import Formula, Loss

__all__ = ["FORMULAS", "formula", "loss_function"]


def _rows(x: Tensor) -> Tensor:
    """View ``x`` as ``(batch, features)``; a 1-d tensor is one unbatched vector."""
    if x.dim() == 0:
        raise ValueError("cosine needs a vector or a batch of vectors, got a 0-d tensor")
    return x.reshape(1, -1) if x.dim() == 1 else x.reshape(x.shape[0], -1)


def cosine(prediction: Tensor, target: Tensor) -> Tensor:
    """Mean over the batch of ``1 - cosine_similarity``, everything after the batch dimension flattened."""
    if prediction.shape != target.shape:
        raise ValueError(
            f"cosine compares tensors of the same shape, got {tuple(prediction.shape)} and {tuple(target.shape)}"
        )
    return (1 - F.cosine_similarity(_rows(prediction), _rows(target), dim=-1)).mean()


def kl_div(prediction: Tensor, target: Tensor, *, temperature: float = 1.0) -> Tensor:
    """Hinton's distillation loss (see :class:`~learning_diagrams.core.losses.KLDivergence`)."""
    if prediction.shape != target.shape:
        raise ValueError(
            f"kl_div compares logits of the same shape, got {tuple(prediction.shape)} and {tuple(target.shape)}"
        )
    log_p_s = F.log_softmax(prediction / temperature, dim=-1)
    log_p_t = F.log_softmax(target / temperature, dim=-1)
    p_t = log_p_t.exp()
    # 0 * log 0 = 0: where the target puts no mass the term is 0, with no NaN
    # in the value or the gradient (even for -inf logits).
    diff = torch.where(p_t > 0, log_p_t - log_p_s, torch.zeros_like(log_p_t))
    batch = prediction.shape[0] if prediction.dim() > 1 else 1
    return (p_t * diff).sum() / batch * temperature**2


#: The formula of each library loss, by the name of its :class:`~learning_diagrams.core.losses.Formula`.
FORMULAS: dict[str, Callable[..., Tensor]] = {
    "mse": F.mse_loss,
    "l1": F.l1_loss,
    "cross_entropy": F.cross_entropy,
    "kl_div": kl_div,
    "cosine": cosine,
    "binary_cross_entropy": F.binary_cross_entropy,
    "binary_cross_entropy_with_logits": F.binary_cross_entropy_with_logits,
}


@functools.cache
def formula(spec: Formula) -> Callable[[Tensor, Tensor], Tensor]:
    """The PyTorch function a library loss's :class:`~learning_diagrams.core.losses.Formula` stands for."""
    if spec.name not in FORMULAS:
        raise UnknownNameError(f"the PyTorch back end has no formula for the loss {spec.name!r}")
    fn = FORMULAS[spec.name]
    return functools.partial(fn, **dict(spec.params)) if spec.params else fn


def loss_function(loss: Loss) -> Callable[[Tensor, Tensor], Tensor]:
    """What computing ``loss`` on tensors calls: a library loss's formula, or the user's own function."""
    return formula(loss.fn) if isinstance(loss.fn, Formula) else loss.fn
