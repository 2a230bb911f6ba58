"""Learning Boolean circuits by reverse-derivative ascent (RDA): the XOR loss, learning rate and update.

The closed learner (:func:`supervised`) is the model reparametrised by
:func:`xor_update`, then :func:`xor_loss`, then :func:`xor_learning_rate`; one
step of RDA (:func:`rda_step`) is one pass through it, forward to the error
and back, and flips exactly the parameters whose reverse derivative at the
error is 1. Why these three lenses (Z2 has no step size but 1, and ``-1 = 1``):
see :mod:`learning_diagrams.lenses.boolean`.

A truth table learns XOR in one epoch: each step flips the one entry it read, where it was wrong.

>>> from learning_diagrams.lenses.boolean import lookup_table
>>> x = torch.tensor([[False, False], [True, False], [False, True], [True, True]])
>>> y = x[:, :1] ^ x[:, 1:]
>>> model, mistakes = rda(lookup_table(2), x, y)
>>> accuracy(model, x, y), mistakes
(1.0, [2, 0])
"""

from __future__ import annotations

import torch

from ..lens import Lens
from ..para import Para
from .z2 import z2_add

__all__ = ["xor_loss", "xor_learning_rate", "xor_update", "supervised", "rda_step", "rda", "accuracy"]


# -- loss, learning rate, update -------------------------------------------------------------


def xor_loss() -> Lens:
    """The loss map ``(y, label) ⇄ l = y ⊕ label`` (the XOR gate, wire by wire); backward ``dl ↦ (dl, dl)``."""
    return Lens(lambda yt: (yt[0] ^ yt[1], None), lambda r, dl: (dl, dl), "xor_loss")


def xor_learning_rate() -> Lens:
    """The learning rate ``(l ⇄ ())`` closing the loop: backward gives the change ``dl = l``.

    It is the identity: Z2's only non-zero scalar is 1.
    """
    return Lens(lambda l: ((), l), lambda l, _: l, "xor_learning_rate")


def xor_update() -> Lens:
    """The update ``p ⇄ p``: forward the parameters, backward ``(p, dp) ↦ p ⊕ dp``."""
    return Lens(lambda p: (p, p), z2_add, "xor_update")


def supervised(model: Para) -> Lens:
    """The closed learning lens of Cruttwell et al.: ``(model reparametrised by the update) ; loss ; learning rate``.

    On ``((params, x), label)`` its forward part ends in ``()``; its backward
    part, on ``()``, gives ``((new params, dx), dlabel)``.
    """
    learner = model.reparametrise(xor_update(), model.params)
    return (learner.lens @ Lens.id()) >> xor_loss() >> xor_learning_rate()


def rda_step(model: Para, x: torch.Tensor, label: torch.Tensor) -> tuple[Para, int]:
    """One step of reverse-derivative ascent: ``p ↦ p ⊕ R[f]_p(p, x, f(p, x) ⊕ label)``.

    Returns the updated model and how many examples of the batch were wrong.
    Over a batch the parameter change is the XOR of the examples' changes;
    :func:`rda` uses batches of one.
    """
    closed = supervised(model)
    _, residual = closed.fwd(((model.params, x), label))
    loss = residual[1]
    (params, _), _ = closed.bwd(residual, ())
    return model.with_params(params), int(loss.reshape(loss.shape[:-1].numel(), loss.shape[-1]).any(-1).sum())


def rda(
    model: Para,
    x: torch.Tensor,
    y: torch.Tensor,
    epochs: int = 10,
    generator: torch.Generator | None = None,
) -> tuple[Para, list[int]]:
    """Online reverse-derivative ascent over ``(x, y)`` (bool ``(n, …)``), one example per step.

    Each epoch visits the examples in an order drawn from ``generator`` (in
    order without one). Stops early after an epoch with no mistake: RDA has
    reached a fixed point there. Returns the model and the mistakes per epoch.
    """
    history = []
    for _ in range(epochs):
        order = torch.randperm(len(x), generator=generator) if generator is not None else torch.arange(len(x))
        mistakes = 0
        for i in order.tolist():
            model, wrong = rda_step(model, x[i : i + 1], y[i : i + 1])
            mistakes += wrong
        history.append(mistakes)
        if mistakes == 0:
            break
    return model, history


def accuracy(model: Para, x: torch.Tensor, y: torch.Tensor) -> float:
    """The fraction of examples whose every output wire is right."""
    return (model(x) == y).all(-1).float().mean().item()
