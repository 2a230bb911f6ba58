"""The PyTorch formulas of the library's losses.

The losses themselves, their names and symmetry, are specified in the core
(:mod:`learning_diagrams.core.losses`); here each library loss's name is given
its formula on tensors, as a batch mean (:data:`FORMULAS`, the
:mod:`torch.nn.functional` defaults) and per sample (:data:`PER_SAMPLE`, one
value per sample, whose mean is the former). :func:`loss_function` is what
compilation calls, once per pair: the formula of a library loss, or a user's
own function, in the form its reduction needs.

>>> import torch
>>> from learning_diagrams.core import losses
>>> loss_function(losses.KLDivergence(temperature=2.0))(torch.zeros(1, 3), torch.zeros(1, 3)).item()
0.0
>>> loss_function(losses.mse, "sum")(torch.ones(3, 2), torch.zeros(3, 2)).tolist()
[1.0, 1.0, 1.0]
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

from ..core.errors import UnknownNameError
from ..core.losses import Formula, Loss, computed_by

__all__ = ["FORMULAS", "PER_SAMPLE", "SHARED_TARGET", "formula", "loss_function", "returns_scalar"]


def _rows(x: Tensor) -> Tensor:
    """View ``x`` as ``(batch, features)``; a 1-d tensor is one unbatched vector."""
    if x.dim() == 0:
        raise ValueError("cosine needs a vector or a batch of vectors, got a 0-d tensor")
    return x.reshape(1, -1) if x.dim() == 1 else x.reshape(x.shape[0], -1)


def _per_sample(elementwise: Tensor) -> Tensor:
    """One value per sample: the mean of each sample's elements (a 0-d or 1-d tensor is samples of one element)."""
    if elementwise.dim() <= 1:
        return elementwise.reshape(-1)
    return elementwise.reshape(elementwise.shape[0], -1).mean(dim=1)


def cosine_per_sample(prediction: Tensor, target: Tensor) -> Tensor:
    """``1 - cosine_similarity`` of each sample, everything after the batch dimension flattened."""
    if prediction.shape != target.shape:
        raise ValueError(
            f"cosine compares tensors of the same shape, got {tuple(prediction.shape)} and {tuple(target.shape)}"
        )
    return 1 - F.cosine_similarity(_rows(prediction), _rows(target), dim=-1)


def cosine(prediction: Tensor, target: Tensor) -> Tensor:
    """Mean over the batch of ``1 - cosine_similarity``, everything after the batch dimension flattened."""
    return cosine_per_sample(prediction, target).mean()


def _kl_entries(prediction: Tensor, target: Tensor, temperature: float) -> Tensor:
    """``p_t · (log p_t - log p_s)`` entry by entry, at temperature ``T``."""
    if prediction.shape != target.shape:
        raise ValueError(
            f"kl_div compares logits of the same shape, got {tuple(prediction.shape)} and {tuple(target.shape)}"
        )
    if temperature != 1.0:  # x / 1 is x: no operation for it
        prediction, target = prediction / temperature, target / temperature
    return _kl_of_logs(F.log_softmax(prediction, dim=-1), F.log_softmax(target, dim=-1))


def _kl_of_logs(log_p_s: Tensor, log_p_t: Tensor) -> Tensor:
    """``p_t · (log p_t - log p_s)`` entry by entry, from the two sides' log-probabilities."""
    p_t = log_p_t.exp()
    # 0 * log 0 = 0: where the target puts no mass the term is 0, with no NaN
    # in the value or the gradient (even for -inf logits). The scalar 0 needs no
    # tensor of zeros: one operation fewer than zeros_like, and the same numbers.
    return p_t * torch.where(p_t > 0, log_p_t - log_p_s, 0.0)


def kl_div(prediction: Tensor, target: Tensor, *, temperature: float = 1.0) -> Tensor:
    """Hinton's distillation loss (see :class:`~learning_diagrams.core.losses.KLDivergence`)."""
    batch = prediction.shape[0] if prediction.dim() > 1 else 1
    # One multiplication by T²/|B| (a Python number), not a division then a multiplication: an
    # operation fewer forwards and backwards; the same value to rounding.
    return _kl_entries(prediction, target, temperature).sum() * (temperature**2 / batch)


def kl_div_per_sample(prediction: Tensor, target: Tensor, *, temperature: float = 1.0) -> Tensor:
    """Hinton's distillation loss of each sample: ``T² · KL`` summed over its entries (a 1-d input is one sample)."""
    entries = _kl_entries(prediction, target, temperature)
    rows = entries.reshape(1, -1) if prediction.dim() <= 1 else entries.reshape(prediction.shape[0], -1)
    return rows.sum(dim=1) * temperature**2


def kl_div_stacked(prediction: Tensor, target: Tensor, *, temperature: float = 1.0) -> Tensor:
    """Hinton's distillation loss of each of ``members`` predictions ``(members, batch, ...)`` against one
    target ``(batch, ...)``: ``(members,)``, each the batch mean (what :func:`kl_div` gives member by member).

    The predictions' log-softmax is ``x - logsumexp(x)``: the same numbers to rounding, and on the CPU
    several times faster than ``log_softmax``'s kernel (forwards and backwards) on the short rows of
    logits that many members stack up; the target's, computed once, is as :func:`kl_div` computes it.
    """
    if prediction.shape[1:] != target.shape:
        raise ValueError(
            f"kl_div compares logits of the same shape, got {tuple(prediction.shape[1:])} and {tuple(target.shape)}"
        )
    if temperature != 1.0:
        prediction, target = prediction / temperature, target / temperature
    entries = _kl_of_logs(prediction - prediction.logsumexp(dim=-1, keepdim=True), F.log_softmax(target, dim=-1))
    return entries.reshape(prediction.shape[0], prediction.shape[1], -1).sum(dim=2).mean(dim=1) * temperature**2


def _elementwise(fn: Callable[..., Tensor]) -> Callable[[Tensor, Tensor], Tensor]:
    """The per-sample form of a ``torch.nn.functional`` loss: its ``reduction="none"``, averaged per sample."""

    def per_sample(prediction: Tensor, target: Tensor) -> Tensor:
        return _per_sample(fn(prediction, target, reduction="none"))

    per_sample.__name__ = per_sample.__qualname__ = f"{fn.__name__}_per_sample"
    return per_sample


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


#: The library losses whose formula is in :data:`FORMULAS` from the start: each reduces by the mean, to a
#: 0-d tensor whatever its arguments (or raises), so its value needs no check (see :func:`returns_scalar`).
_SCALAR = frozenset(FORMULAS)


#: The per-sample formula of each library loss: one value per sample, whose mean is its formula.
PER_SAMPLE: dict[str, Callable[..., Tensor]] = {
    "mse": _elementwise(F.mse_loss),
    "l1": _elementwise(F.l1_loss),
    "cross_entropy": _elementwise(F.cross_entropy),
    "kl_div": kl_div_per_sample,
    "cosine": cosine_per_sample,
    "binary_cross_entropy": _elementwise(F.binary_cross_entropy),
    "binary_cross_entropy_with_logits": _elementwise(F.binary_cross_entropy_with_logits),
}


#: Library losses with a form for many predictions ``(members, batch, ...)`` against one target
#: ``(batch, ...)``: one batch mean per member, the target's own work done once (fused families, :mod:`.fusion`).
SHARED_TARGET: dict[str, Callable[..., Tensor]] = {"kl_div": kl_div_stacked}


@functools.cache
def formula(spec: Formula) -> Callable[[Tensor, Tensor], Tensor]:
    """The PyTorch function a library loss's :class:`~learning_diagrams.core.losses.Formula` stands for."""
    table = PER_SAMPLE if spec.per_sample else FORMULAS
    if spec.name not in table:
        form = "per-sample formula" if spec.per_sample else "formula"
        raise UnknownNameError(f"the PyTorch back end has no {form} for the loss {spec.name!r}")
    fn = table[spec.name]
    return functools.partial(fn, **dict(spec.params)) if spec.params else fn


def loss_function(
    loss: Loss, reduction: str = "mean", *, pair: str = "", target: str = ""
) -> Callable[[Tensor, Tensor], Tensor]:
    """What computing ``loss`` on tensors calls: a library loss's formula, or the user's own function.

    With ``reduction="sum"`` it is the loss's per-sample form; a loss without one raises
    :class:`~learning_diagrams.core.errors.OptionError` naming it (and ``pair`` and ``target``, if given).
    """
    return computed_by(loss, reduction, formula, pair=pair, target=target)


def returns_scalar(loss: Loss, reduction: str = "mean") -> bool:
    """Whether :func:`loss_function` of ``loss`` under ``reduction`` always returns a scalar.

    True for a library loss's batch-mean formula (each reduces to a 0-d tensor, as
    its :mod:`torch.nn.functional` counterpart does by default), whose value a
    compiled loss then does not check (:class:`~learning_diagrams.core.evaluation.Term`);
    False for a user's own function and for per-sample forms.

    >>> from learning_diagrams.core import losses
    >>> returns_scalar(losses.mse), returns_scalar(losses.mse, "sum"), returns_scalar(losses.as_loss(lambda a, b: a))
    (True, False, False)
    """
    fn = loss.fn
    return reduction == "mean" and isinstance(fn, Formula) and not fn.per_sample and fn.name in _SCALAR
