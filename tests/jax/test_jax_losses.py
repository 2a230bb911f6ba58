"""Every library loss's JAX formula against its PyTorch formula, on the same numbers."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest
import torch

from learning_diagrams.core import losses
from learning_diagrams.jax import losses as jax_losses
from learning_diagrams.jax.losses import loss_function
from learning_diagrams.torch.losses import loss_function as torch_loss_function

rng = np.random.default_rng(0)
LOGITS = rng.normal(size=(6, 5)).astype(np.float32) * 3
OTHER = rng.normal(size=(6, 5)).astype(np.float32) * 3
PROBABILITIES = (1 / (1 + np.exp(-LOGITS))).astype(np.float32)
BITS = (rng.random(size=(6, 5)) > 0.5).astype(np.float32)
LABELS = rng.integers(0, 5, size=6)
SOFT = np.exp(OTHER) / np.exp(OTHER).sum(axis=1, keepdims=True)

CASES = {
    "mse": (losses.mse, LOGITS, OTHER),
    "l1": (losses.l1, LOGITS, OTHER),
    "cross_entropy, indices": (losses.cross_entropy, LOGITS, LABELS),
    "cross_entropy, one ignored": (losses.cross_entropy, LOGITS, np.where(np.arange(6) == 2, -100, LABELS)),
    "cross_entropy, probabilities": (losses.cross_entropy, LOGITS, SOFT.astype(np.float32)),
    "cross_entropy, (N, C, d)": (
        losses.cross_entropy,
        rng.normal(size=(3, 5, 4)).astype(np.float32),
        rng.integers(0, 5, size=(3, 4)),
    ),
    "kl_div": (losses.kl_div, LOGITS, OTHER),
    "kl_div, T=3": (losses.KLDivergence(temperature=3.0), LOGITS, OTHER),
    "kl_div, -inf logits": (
        losses.KLDivergence(temperature=2.0),
        np.zeros((2, 3), np.float32),
        np.array([[0.0, 0.0, -np.inf], [1e4, 0.0, -1e4]], np.float32),
    ),
    "cosine": (losses.cosine, LOGITS, OTHER),
    "cosine, a zero row": (losses.cosine, np.vstack([np.zeros((1, 5), np.float32), LOGITS[1:]]), OTHER),
    "binary_cross_entropy": (losses.binary_cross_entropy, PROBABILITIES, BITS),
    "binary_cross_entropy, 0 and 1": (
        losses.binary_cross_entropy,
        np.array([[0.0, 1.0, 0.5]], np.float32),
        np.array([[1.0, 0.0, 1.0]], np.float32),
    ),
    "binary_cross_entropy_with_logits": (losses.binary_cross_entropy_with_logits, LOGITS * 10, BITS),
}


@pytest.mark.parametrize("reduction", ["mean", "sum"])
@pytest.mark.parametrize("case", list(CASES))
def test_the_jax_formula_gives_the_pytorch_value(case: str, reduction: str) -> None:
    loss, prediction, target = CASES[case]
    got = loss_function(loss, reduction)(jnp.asarray(prediction), jnp.asarray(target))
    expected = torch_loss_function(loss, reduction)(torch.from_numpy(prediction), torch.from_numpy(np.asarray(target)))
    assert got.shape == tuple(expected.shape)
    np.testing.assert_allclose(np.asarray(got), expected.numpy(), rtol=1e-5, atol=1e-5)


def test_every_library_loss_has_both_jax_forms() -> None:
    names = {loss.fn.name for loss in losses.LIBRARY.values() if isinstance(loss.fn, losses.Formula)}
    assert names <= set(jax_losses.FORMULAS) and names <= set(jax_losses.PER_SAMPLE)
    assert set(jax_losses.FORMULAS) == set(jax_losses.PER_SAMPLE)


def test_shapes_that_differ_are_refused_naming_the_loss() -> None:
    with pytest.raises(ValueError, match=r"mse compares.*\(2, 3\).*\(2, 1\)"):
        loss_function(losses.mse)(jnp.zeros((2, 3)), jnp.zeros((2, 1)))
