"""The distillation demo on JAX: the same diagrams, the tutorial's networks as Equinox modules.

``python -m learning_diagrams.examples.distillation --backend jax`` runs this. The
teacher ``DeepNN`` and student ``LightNN`` are made by PyTorch from the demo's seed,
exactly as the PyTorch run makes them, and their weights copied into Equinox
modules (:func:`from_torch`: convolutions in PyTorch's ``NCHW``/``OIHW`` layout,
so the numbers are the same). The diagrams are the example's own
(:func:`~learning_diagrams.examples.distillation.classifier`,
:func:`~learning_diagrams.examples.distillation.distillation`), given these modules
and compiled by ``ld.jax``. First, one step from the same weights: the ``kd``
diagram's loss and gradients on JAX against PyTorch's (dropout off on both sides).
Then the teacher, the student alone and the distilled student are trained by
``ld.jax.fit`` (Adam, lr 1e-3, batches of 128 in a seeded order) and their test
accuracies printed beside each other.

The JAX networks have no dropout (a map is called on the batch alone, with no
random key): their accuracies may differ from the PyTorch run's by that.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import learning_diagrams as ld
from learning_diagrams.examples import datasets, machine
from learning_diagrams.examples.distillation import (
    BATCH_SIZE,
    LR,
    DeepNN,
    LightNN,
    classifier,
    distillation,
)

__all__ = ["Conv2d", "Linear", "Sequential", "from_torch", "one_step_gap", "demo"]


class Conv2d(eqx.Module):
    """A 3×3 convolution with padding 1 over a batch, ``NCHW`` and ``OIHW`` as in ``torch.nn.Conv2d``."""

    weight: jax.Array
    bias: jax.Array

    def __call__(self, x: jax.Array) -> jax.Array:
        y = jax.lax.conv_general_dilated(
            x, self.weight, window_strides=(1, 1), padding=((1, 1), (1, 1)), dimension_numbers=("NCHW", "OIHW", "NCHW")
        )
        return y + self.bias[None, :, None, None]


class Linear(eqx.Module):
    """``x @ weight.T + bias`` over a batch, as ``torch.nn.Linear``."""

    weight: jax.Array
    bias: jax.Array

    def __call__(self, x: jax.Array) -> jax.Array:
        return x @ self.weight.T + self.bias


class _Layer(eqx.Module):
    """A layer without arrays: ``"relu"``, ``"pool"`` (2×2 max pooling) or ``"flatten"``."""

    kind: str = eqx.field(static=True)

    def __call__(self, x: jax.Array) -> jax.Array:
        if self.kind == "relu":
            return jax.nn.relu(x)
        if self.kind == "pool":
            return jax.lax.reduce_window(x, -jnp.inf, jax.lax.max, (1, 1, 2, 2), (1, 1, 2, 2), "VALID")
        return x.reshape(x.shape[0], -1)


class Sequential(eqx.Module):
    """Its layers, one after the other."""

    layers: tuple[Any, ...]

    def __call__(self, x: jax.Array) -> jax.Array:
        for layer in self.layers:
            x = layer(x)
        return x


def _array(p: torch.Tensor | None) -> jax.Array:
    if p is None:  # the networks of the example all have biases
        raise TypeError("a layer without a bias has no Equinox twin here")
    return jnp.asarray(p.detach().cpu().numpy())


def from_torch(module: nn.Module) -> Sequential:
    """The Equinox twin of a network of the example (``DeepNN``, ``LightNN``), with its weights.

    Dropout is left out: a JAX map is called on the batch alone, without a random key.
    """
    layers: list[Any] = []
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            layers.append(Conv2d(_array(m.weight), _array(m.bias)))
        elif isinstance(m, nn.Linear):
            layers.append(Linear(_array(m.weight), _array(m.bias)))
        elif isinstance(m, nn.ReLU):
            layers.append(_Layer("relu"))
        elif isinstance(m, nn.MaxPool2d):
            layers.append(_Layer("pool"))
        elif isinstance(m, nn.Flatten):
            layers.append(_Layer("flatten"))
    return Sequential(tuple(layers))


def one_step_gap(teacher: nn.Module, student: nn.Module, batch: tuple[torch.Tensor, torch.Tensor]) -> dict[str, float]:
    """The ``kd`` diagram's loss and student gradients on JAX and PyTorch from the same weights: their largest gaps.

    Both in eval mode (no dropout). Returns ``{"loss": |Δ total|, "terms": max |Δ term|, "gradients": max |Δ|}``.
    """
    teacher, student = teacher.eval(), student.eval()
    ours = ld.jax.compile(distillation(from_torch(teacher), from_torch(student), [batch]))
    theirs = distillation(teacher, student, [batch]).compile()
    theirs.eval()  # the trainable student too: no dropout on either side
    x, y = batch
    jax_batch = (jnp.asarray(x.numpy()), jnp.asarray(y.numpy()))
    (total, terms), grads = jax.value_and_grad(lambda p: ours(p, {"N": jax_batch}), has_aux=True)(ours.params)
    expected_total, expected_terms = theirs({"N": batch})
    expected_total.backward()
    torch_grads = [p.grad.numpy() for p in student.parameters() if p.grad is not None]
    jax_grads = [layer for layer in grads["student"].layers if isinstance(layer, (Conv2d, Linear))]
    pairs = [(g.weight, t_w) for g, t_w in zip(jax_grads, torch_grads[0::2])]
    pairs += [(g.bias, t_b) for g, t_b in zip(jax_grads, torch_grads[1::2])]
    return {
        "loss": abs(float(total) - expected_total.item()),
        "terms": max(abs(float(terms[n]) - expected_terms[n].item()) for n in terms),
        "gradients": max(float(np.max(np.abs(np.asarray(a) - b))) for a, b in pairs),
    }


def accuracy(model: Any, data: TensorDataset) -> float:
    """Test accuracy (%) of a JAX network on a PyTorch data set."""
    x, y = (t.numpy() for t in data.tensors)
    predicted = np.asarray(eqx.filter_jit(model)(jnp.asarray(x))).argmax(axis=1)
    return 100.0 * float(np.mean(predicted == y))


def demo(args: Any) -> dict[str, float]:
    """The demo's three models on JAX: one step checked against PyTorch, then trained by ``ld.jax.fit``."""
    start = time.perf_counter()
    train_set, test_set = datasets.digits()
    torch.manual_seed(args.seed)
    teacher = DeepNN()
    torch.manual_seed(args.seed)
    student = LightNN()
    first = next(iter(DataLoader(train_set, batch_size=BATCH_SIZE)))
    gap = one_step_gap(teacher, student, first)
    print(
        "One step of the distillation diagram from the same weights, JAX against PyTorch (dropout off): "
        f"|Δ loss| {gap['loss']:.1e}, max |Δ term| {gap['terms']:.1e}, max |Δ gradient| {gap['gradients']:.1e}"
    )

    def loader() -> DataLoader:  # batches of 128 in a seeded order, their tensors made arrays as they are drawn
        return DataLoader(
            train_set, batch_size=BATCH_SIZE, shuffle=True, generator=torch.Generator().manual_seed(args.seed)
        )

    options = dict(epochs=args.epochs, optimizer=optax.adam(LR), seed=args.seed, progress=not args.quiet)
    logs = Path(args.log_dir) / "jax"
    print(
        f"\nTraining on digits with ld.jax.fit ({len(train_set)} train / {len(test_set)} test images, "
        f"{args.epochs} epochs a model), logging to {logs}/<model>:"
    )
    teacher_run = ld.jax.fit(classifier(from_torch(teacher), loader()), log_dir=logs / "teacher", **options)
    student_run = ld.jax.fit(classifier(from_torch(student), loader()), log_dir=logs / "student", **options)
    trained_teacher, trained_student = teacher_run.modules["model"], student_run.modules["model"]
    torch.manual_seed(args.seed)
    kd = distillation(trained_teacher, from_torch(LightNN()), loader())
    distilled = ld.jax.fit(kd, log_dir=logs / "distilled", **options).modules["student"]
    results = {
        "teacher": accuracy(trained_teacher, test_set),
        "student": accuracy(trained_student, test_set),
        "distilled student": accuracy(distilled, test_set),
    }
    print("\nTest accuracy (%) on JAX")
    print(f"  {'model':<18} {'accuracy':>8}")
    for name, value in results.items():
        print(f"  {name:<18} {value:>8.2f}")
    print(f"\nDone in {time.perf_counter() - start:.1f} s on {machine.describe('cpu')}, jax {jax.__version__}.")
    return {**results, **{f"gap_{k}": v for k, v in gap.items()}}
