"""A real task for RDA: scikit-learn's digits, binarised, learned by a lookup table.

:func:`binary_digits` reads the 8×8 digits as 64 bits (``pixel > 7``);
:func:`digits_experiment` learns one-vs-rest "is it a ``digit``" with a
:func:`~.parametric.lookup_table` on the ``k`` most telling pixels, by
:func:`~.learning.rda`. With the defaults (seed 0, one epoch) 98.3% of the 360
test digits come out right, where always answering "no" scores 90.0%.
"""

from __future__ import annotations

from typing import Any

import torch

from ..para import Para
from .circuit import Circuit
from .learning import accuracy, rda
from .parametric import lookup_table

__all__ = ["binary_digits", "digits_experiment"]


def binary_digits(
    digit: int = 0, seed: int = 0
) -> tuple[tuple[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]:
    """scikit-learn's 8×8 digits as 64 bits (``pixel > 7`` of 0..16), labelled "is it ``digit``".

    Split 80/20, stratified by digit, with ``seed`` (as
    :func:`learning_diagrams.examples.datasets.digits`). Returns
    ``((x_train, y_train), (x_test, y_test))``; ``x`` is ``(n, 64)``, ``y`` is ``(n, 1)``, all bool.
    """
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    data = load_digits()
    x = torch.tensor(data.data > 7)
    y = torch.tensor(data.target == digit).unsqueeze(-1)
    train, test = train_test_split(range(len(y)), test_size=0.2, stratify=data.target, random_state=seed)
    return (x[train], y[train]), (x[test], y[test])


def digits_experiment(k: int = 8, digit: int = 0, epochs: int = 1, seed: int = 0) -> dict[str, Any]:
    """Learn "is it ``digit``" on binarised digits with a :func:`lookup_table` on ``k`` pixels, by RDA.

    The ``k`` pixels are those whose frequency differs most between the
    classes on the training split; the model is ``select those pixels >> table``,
    one parametric lens. Returns the accuracies, the majority baseline
    (always "no") on the test split, the pixels and the trained model.
    """
    (xtr, ytr), (xte, yte) = binary_digits(digit, seed)
    pos, neg = xtr[ytr[:, 0]].float().mean(0), xtr[~ytr[:, 0]].float().mean(0)
    pixels = torch.argsort((pos - neg).abs(), descending=True, stable=True)[:k].tolist()
    model = Para.lift(Circuit.select(64, pixels, "pixels").lens()) >> lookup_table(k, 1, "table")
    model, history = rda(model, xtr, ytr, epochs, torch.Generator().manual_seed(seed))
    return {
        "train_accuracy": accuracy(model, xtr, ytr),
        "test_accuracy": accuracy(model, xte, yte),
        "baseline": 1.0 - yte.float().mean().item(),
        "mistakes": history,
        "pixels": pixels,
        "model": model,
    }
