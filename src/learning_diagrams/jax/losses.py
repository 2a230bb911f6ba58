"""The JAX formulas of the library's losses: the values of their PyTorch formulas, on JAX arrays.

The losses themselves (name, symmetry, per-sample form) are specified once, in the
core (:mod:`learning_diagrams.core.losses`); each back end holds its formulas. Here
each library loss's name is given its formula as a batch mean (:data:`FORMULAS`,
``torch.nn.functional``'s defaults: ``cross_entropy`` takes class indices, with
``-100`` ignored, or class probabilities, its class axis the second of a batch)
and per sample (:data:`PER_SAMPLE`, one value per sample, whose mean is the former).
The tests compare every one with its PyTorch counterpart on the same numbers.

>>> import jax.numpy as jnp
>>> from learning_diagrams.core import losses
>>> float(loss_function(losses.KLDivergence(temperature=2.0))(jnp.zeros((1, 3)), jnp.zeros((1, 3))))
0.0
>>> loss_function(losses.mse, "sum")(jnp.ones((3, 2)), jnp.zeros((3, 2))).tolist()
[1.0, 1.0, 1.0]
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import jax
import jax.numpy as jnp

from ..core.errors import UnknownNameError
from ..core.losses import Formula, Loss, computed_by

__all__ = ["FORMULAS", "PER_SAMPLE", "formula", "loss_function", "returns_scalar"]

Array = jax.Array

#: ``torch.nn.functional.cross_entropy``'s default ``ignore_index``: targets equal to it count for nothing.
IGNORE_INDEX = -100


def _per_sample(elementwise: Array) -> Array:
    """One value per sample: the mean of each sample's elements (a 0-d or 1-d array is samples of one element)."""
    if elementwise.ndim <= 1:
        return elementwise.reshape(-1)
    return elementwise.reshape(elementwise.shape[0], -1).mean(axis=1)


def _same_shape(name: str, prediction: Array, target: Array) -> None:
    if prediction.shape != target.shape:
        raise ValueError(
            f"{name} compares arrays of the same shape, got {tuple(prediction.shape)} and {tuple(target.shape)}"
        )


def _squared(prediction: Array, target: Array) -> Array:
    _same_shape("mse", prediction, target)
    return jnp.square(prediction - target)


def _absolute(prediction: Array, target: Array) -> Array:
    _same_shape("l1", prediction, target)
    return jnp.abs(prediction - target)


def _cross_entropy_entries(logits: Array, target: Array) -> tuple[Array, Array]:
    """Each sample's (and position's) cross-entropy, and whether it counts (an index of -100 does not).

    The class axis is the second of a batch (``(N, C, d1, ...)``), the only one of an
    unbatched ``(C,)``, as in ``torch.nn.functional.cross_entropy``.
    """
    axis = 0 if logits.ndim == 1 else 1
    log_p = jax.nn.log_softmax(logits, axis=axis)
    if jnp.issubdtype(target.dtype, jnp.integer):
        counts = target != IGNORE_INDEX
        picked = jnp.take_along_axis(log_p, jnp.expand_dims(jnp.where(counts, target, 0), axis), axis=axis)
        return jnp.where(counts, -jnp.squeeze(picked, axis), 0.0), counts
    _same_shape("cross_entropy with class probabilities", logits, target)
    entries = -jnp.sum(target * log_p, axis=axis)
    return entries, jnp.ones(entries.shape, dtype=bool)


def cross_entropy(logits: Array, target: Array) -> Array:
    """The mean cross-entropy over the samples (and positions) that count, as PyTorch's default computes it."""
    entries, counts = _cross_entropy_entries(logits, target)
    return entries.sum() / counts.sum()


def cross_entropy_per_sample(logits: Array, target: Array) -> Array:
    """Each sample's cross-entropy (averaged over its positions; an ignored one counts as 0, as in PyTorch)."""
    return _per_sample(_cross_entropy_entries(logits, target)[0])


def _kl_entries(prediction: Array, target: Array, temperature: float) -> Array:
    """``p_t · (log p_t - log p_s)`` entry by entry, at temperature ``T``; ``0 · log 0 = 0``, with no NaN."""
    _same_shape("kl_div", prediction, target)
    log_p_s = jax.nn.log_softmax(prediction / temperature, axis=-1)
    log_p_t = jax.nn.log_softmax(target / temperature, axis=-1)
    p_t = jnp.exp(log_p_t)
    return p_t * jnp.where(p_t > 0, log_p_t - log_p_s, 0.0)


def kl_div(prediction: Array, target: Array, *, temperature: float = 1.0) -> Array:
    """Hinton's distillation loss (see :class:`~learning_diagrams.core.losses.KLDivergence`)."""
    batch = prediction.shape[0] if prediction.ndim > 1 else 1
    return _kl_entries(prediction, target, temperature).sum() * (temperature**2 / batch)


def kl_div_per_sample(prediction: Array, target: Array, *, temperature: float = 1.0) -> Array:
    """Hinton's distillation loss of each sample: ``T² · KL`` summed over its entries (a 1-d input is one sample)."""
    entries = _kl_entries(prediction, target, temperature)
    rows = entries.reshape(1, -1) if prediction.ndim <= 1 else entries.reshape(prediction.shape[0], -1)
    return rows.sum(axis=1) * temperature**2


def _rows(x: Array) -> Array:
    """``x`` as ``(batch, features)``; a 1-d array is one unbatched vector."""
    if x.ndim == 0:
        raise ValueError("cosine needs a vector or a batch of vectors, got a 0-d array")
    return x.reshape(1, -1) if x.ndim == 1 else x.reshape(x.shape[0], -1)


def cosine_per_sample(prediction: Array, target: Array) -> Array:
    """``1 - cosine_similarity`` of each sample, everything after the batch axis flattened.

    Each vector is divided by its norm, the norm clamped below at ``1e-8``, as
    ``torch.nn.functional.cosine_similarity`` does.
    """
    _same_shape("cosine", prediction, target)
    a, b = _rows(prediction), _rows(target)
    eps = 1e-8
    a = a / jnp.maximum(jnp.linalg.norm(a, axis=-1, keepdims=True), eps)
    b = b / jnp.maximum(jnp.linalg.norm(b, axis=-1, keepdims=True), eps)
    return 1 - jnp.sum(a * b, axis=-1)


def cosine(prediction: Array, target: Array) -> Array:
    """Mean over the batch of ``1 - cosine_similarity``."""
    return cosine_per_sample(prediction, target).mean()


def _binary_cross_entropy(probabilities: Array, target: Array) -> Array:
    """Entry by entry; each logarithm clamped below at -100, as PyTorch clamps it (no infinity at 0 or 1)."""
    _same_shape("binary_cross_entropy", probabilities, target)
    log_p = jnp.maximum(jnp.log(probabilities), -100.0)
    log_q = jnp.maximum(jnp.log1p(-probabilities), -100.0)
    return -(target * log_p + (1 - target) * log_q)


def _binary_cross_entropy_with_logits(logits: Array, target: Array) -> Array:
    """Entry by entry, in the stable form ``max(x, 0) - x·y + log(1 + e^{-|x|})``."""
    _same_shape("binary_cross_entropy_with_logits", logits, target)
    return jnp.maximum(logits, 0) - logits * target + jnp.log1p(jnp.exp(-jnp.abs(logits)))


def _mean_of(entries: Callable[[Array, Array], Array]) -> Callable[[Array, Array], Array]:
    def mean(prediction: Array, target: Array) -> Array:
        return entries(prediction, target).mean()

    return mean


def _per_sample_of(entries: Callable[[Array, Array], Array]) -> Callable[[Array, Array], Array]:
    def per_sample(prediction: Array, target: Array) -> Array:
        return _per_sample(entries(prediction, target))

    return per_sample


#: The formula of each library loss, by the name of its :class:`~learning_diagrams.core.losses.Formula`.
FORMULAS: dict[str, Callable[..., Array]] = {
    "mse": _mean_of(_squared),
    "l1": _mean_of(_absolute),
    "cross_entropy": cross_entropy,
    "kl_div": kl_div,
    "cosine": cosine,
    "binary_cross_entropy": _mean_of(_binary_cross_entropy),
    "binary_cross_entropy_with_logits": _mean_of(_binary_cross_entropy_with_logits),
}

#: The per-sample formula of each library loss: one value per sample, whose mean is its formula.
PER_SAMPLE: dict[str, Callable[..., Array]] = {
    "mse": _per_sample_of(_squared),
    "l1": _per_sample_of(_absolute),
    "cross_entropy": cross_entropy_per_sample,
    "kl_div": kl_div_per_sample,
    "cosine": cosine_per_sample,
    "binary_cross_entropy": _per_sample_of(_binary_cross_entropy),
    "binary_cross_entropy_with_logits": _per_sample_of(_binary_cross_entropy_with_logits),
}


@functools.cache
def formula(spec: Formula) -> Callable[[Array, Array], Array]:
    """The JAX function a library loss's :class:`~learning_diagrams.core.losses.Formula` stands for."""
    table = PER_SAMPLE if spec.per_sample else FORMULAS
    if spec.name not in table:
        form = "per-sample formula" if spec.per_sample else "formula"
        raise UnknownNameError(f"the JAX back end has no {form} for the loss {spec.name!r}")
    fn = table[spec.name]
    return functools.partial(fn, **dict(spec.params)) if spec.params else fn


def loss_function(loss: Loss, reduction: str = "mean", *, pair: str = "", target: str = "") -> Callable[..., Array]:
    """What computing ``loss`` on JAX arrays calls: a library loss's formula, or the user's own function.

    With ``reduction="sum"`` it is the loss's per-sample form; a loss without one raises
    :class:`~learning_diagrams.core.errors.OptionError` naming it (and ``pair`` and ``target``, if given).
    """
    return computed_by(loss, reduction, formula, pair=pair, target=target)


def returns_scalar(loss: Loss, reduction: str = "mean") -> bool:
    """Whether :func:`loss_function` of ``loss`` under ``reduction`` always returns a scalar (a library batch mean)."""
    fn = loss.fn
    return reduction == "mean" and isinstance(fn, Formula) and not fn.per_sample and fn.name in FORMULAS
