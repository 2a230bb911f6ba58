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
    ROW_NAMES,
    TEMPERATURE,
    DeepNN,
    EpochBatches,
    LightNN,
    Regressor,
    classifier,
    cosine_distillation,
    distillation,
    load,
    mean_std,
    regressor_distillation,
)

__all__ = ["Conv2d", "Linear", "Sequential", "from_torch", "one_step_gap", "demo", "experiment"]


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


def from_torch(module: nn.Module) -> Any:
    """The Equinox twin of a network of the example (``DeepNN``, ``LightNN``), with its weights.

    Dropout is left out: a JAX map is called on the batch alone, without a random key.
    """
    if isinstance(module, nn.Conv2d):  # a layer alone (the regressor)
        return Conv2d(_array(module.weight), _array(module.bias))
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


def flatten(feature_maps: jax.Array) -> jax.Array:
    """The edge ``flatten: S → H`` on JAX: the student's feature maps as vectors."""
    return feature_maps.reshape(feature_maps.shape[0], -1)


def pool(feature_maps: jax.Array) -> jax.Array:
    """The edge ``pool: T → H`` on JAX: the teacher's flattened feature maps, average-pooled by 2 (``avg_pool1d``)."""
    flat = feature_maps.reshape(feature_maps.shape[0], -1)
    return flat[:, : flat.shape[1] // 2 * 2].reshape(flat.shape[0], -1, 2).mean(axis=-1)


def _tutorial_kl(prediction: jax.Array, target: jax.Array) -> jax.Array:
    soft_targets = jax.nn.softmax(target / TEMPERATURE, axis=-1)
    soft_prob = jax.nn.log_softmax(prediction / TEMPERATURE, axis=-1)
    return jnp.sum(soft_targets * (jnp.log(soft_targets) - soft_prob)) / soft_prob.shape[0] * TEMPERATURE**2


def _tutorial_cosine(prediction: jax.Array, target: jax.Array) -> jax.Array:
    # torch.nn.functional.cosine_embedding_loss with target 1: its 1e-12 added to each squared norm
    dot = jnp.sum(prediction * target, axis=-1)
    squares = (jnp.sum(prediction**2, axis=-1) + 1e-12) * (jnp.sum(target**2, axis=-1) + 1e-12)
    return jnp.mean(1 - dot / jnp.sqrt(squares))


#: The tutorial's formulas of ``G`` and ``H`` on JAX (``--losses tutorial``).
TUTORIAL_KL = ld.Loss(_tutorial_kl, symmetric=False, name=f"tutorial_kl(T={TEMPERATURE:g})")
TUTORIAL_COSINE = ld.Loss(_tutorial_cosine, symmetric=True, name="cosine_embedding")


class _Split(eqx.Module):
    """A network of the example in its two parts, as the cosine and regressor diagrams use it."""

    features: Any
    classifier: Any

    def __call__(self, x: jax.Array) -> jax.Array:
        return self.classifier(self.features(x))


def _split(module: DeepNN | LightNN) -> _Split:
    """The Equinox twin of a network of the example, in its two parts (``features``, ``classifier``)."""
    return _Split(from_torch(module.features), from_torch(module.classifier))


def _variant(variant: str, teacher: _Split, student: _Split, regressor: Any, data: Any, losses: str) -> ld.Diagram:
    tutorial = losses == "tutorial"
    if variant == "kd":
        return distillation(teacher, student, data, soft_loss=TUTORIAL_KL if tutorial else None)
    if variant == "cosine":
        hidden = TUTORIAL_COSINE if tutorial else None
        return cosine_distillation(teacher, student, data, hidden_loss=hidden, vectors=(flatten, pool))
    return regressor_distillation(teacher, student, regressor, data)


def run_seed(seed: int, args: Any, train_set: TensorDataset, test_set: TensorDataset, side: int) -> dict[str, Any]:
    """Teacher, student alone and one distilled student per variant, by diagram on JAX, from PyTorch's weights."""
    torch.manual_seed(seed)
    teacher = _split(DeepNN(side=side))
    torch.manual_seed(seed)
    initial = LightNN(side=side)  # every student starts from these weights
    regressor = from_torch(Regressor())
    options = dict(epochs=args.epochs, optimizer=optax.adam(LR), seed=seed, progress=not args.quiet)
    out: dict[str, Any] = {"diagram": {}, "seconds": {}}

    def one(name: str, d: ld.Diagram, edge: str) -> Any:
        t0 = time.perf_counter()
        trained = ld.jax.fit(d, **options)
        out["seconds"][name] = time.perf_counter() - t0
        return trained

    batches = lambda: EpochBatches(train_set, args.batch_size, seed)  # noqa: E731  (the PyTorch run's order)
    trained = one("teacher", classifier(teacher, batches()), "model").modules["model"]
    out["diagram"]["teacher"] = accuracy(trained, test_set)
    alone = one("student", classifier(_split(initial), batches()), "model").modules["model"]
    out["diagram"]["student"] = accuracy(alone, test_set)
    for variant in args.variants:
        student = _split(initial)
        run = one(variant, _variant(variant, trained, student, regressor, batches(), args.losses), "student")
        if variant == "kd":
            distilled = run.modules["student"]
        else:
            distilled = _Split(run.modules["student_features"], run.modules["student_classifier"])
        out["diagram"][variant] = accuracy(distilled, test_set)
    return out


def experiment(args: Any) -> dict[str, Any]:
    """The comparison run on JAX: every seed and variant by diagram, trained by ``ld.jax.fit``."""
    start = time.perf_counter()
    train_set, test_set, side = load(args)
    names = ["teacher", "student", *args.variants]
    print(
        f"Distillation on JAX, {args.dataset} ({len(train_set)} training / {len(test_set)} test images, "
        f"{side}×{side}), {args.epochs} epochs, batch {args.batch_size}, Adam lr {LR:g}; seeds "
        f"{', '.join(map(str, args.seeds))}; variants {', '.join(args.variants)}; losses at G and H: {args.losses}'s"
    )
    runs = []
    for seed in args.seeds:
        t0 = time.perf_counter()
        run = run_seed(seed, args, train_set, test_set, side)
        runs.append(run)
        row = ", ".join(f"{n} {run['diagram'][n]:.2f}" for n in names)
        print(f"  seed {seed} ({time.perf_counter() - t0:.0f} s): {row}")
    accuracy_ = {n: [r["diagram"][n] for r in runs] for n in names}
    print(f"\nTest accuracy (%) on JAX, mean ± std over {len(args.seeds)} seed{'s' if len(args.seeds) > 1 else ''}")
    print(f"  {'model':<22} {'diagram (JAX)':>14}")
    for n in names:
        print(f"  {ROW_NAMES[n]:<22} {mean_std(accuracy_[n]):>14}")
    seconds = time.perf_counter() - start
    print(f"\nDone in {seconds:.1f} s on {machine.describe('cpu')}, jax {jax.__version__}.")
    return {
        "accuracy": {"diagram": accuracy_},
        "seeds": list(args.seeds),
        "variants": list(args.variants),
        "seconds": seconds,
    }


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
