"""The parametric-lens learners of :mod:`learning_diagrams.lenses`, each beside a plain PyTorch baseline.

After Cruttwell, Gavranović, Ghani, Wilson and Zanasi, "Deep learning with
parametric lenses", whose Python library (numeric-optics) trained three models
on Iris. Every learner here is the paper's closed parametric lens ::

    optimiser(model) >> loss map >> learning rate

(the model's parameter port reparametrised by the optimiser, the label plugged
into the loss map's parameter port), and one training step is one
forward-then-backward pass through it. Each is run beside the same thing
written with ``nn.Module``, autograd and ``torch.optim``: the same
architecture, the *same initial weights* (copied from the lens's parameters),
the same optimiser and hyperparameters, the same batches in the same order.

* **Iris** (the paper's three models): ``linear`` (``x Wᵀ``, 4 → 3, no bias),
  ``dense`` (linear, bias, sigmoid, 4 → 3) and ``hidden`` (two sigmoid dense
  layers, 4 → 20 → 3); the paper's loss, the mean squared error against one-hot
  labels, and its optimiser, plain gradient descent. Features standardised with
  the training set's mean and deviation, a fixed stratified split of 100 training
  and 50 test flowers, batches reshuffled every epoch.
* **Digits**: a small convolutional classifier (``conv2d(1→8, 3×3, pad 1) >> relu
  >> max_pool(2) >> flatten >> dense(128→10)``) on scikit-learn's bundled 8×8
  digits (1,437 training, 360 test images), softmax cross-entropy and Adam.
* **Deep dreaming**: the trained digits model with its ports exchanged (the image
  is the parameter, the weights the input), reparametrised by Adam (lr 0.01, 40
  steps) clipped to ``[-1, 1]``, a one-hot dot product as the loss map and a
  learning rate that *maximises*: for each class, an input dreamed from faint
  noise and one from a real digit of another class. Baseline:
  ``torch.optim.Adam`` on the input tensor, then a clamp.
* **A Wasserstein GAN** on a 2-D mixture of four Gaussians: the critic's learner
  is ``rmsprop.clipped(c)(critic) >> dot product(±1/N) >> maximise``; the
  generator's loss map is the critic itself (its current weights plugged in,
  held fixed). Baseline: the same loop with ``torch.optim`` and a clamp, drawing
  the same noise and the same data in the same order.

Run it with ``python -m learning_diagrams.examples.lenses`` (about half a minute
on one CPU thread); ``--out DIR`` chooses where ``lenses-dream.png`` and
``lenses-gan.png`` go (default: the current folder), ``--full`` trains longer
(Iris one flower per step at learning rate 0.01 for 400 epochs, numeric-optics'
step size, rate and length, with this example's loss, features, initialisation
and test split; a few minutes). ``--numeric-optics`` runs Iris under
numeric-optics' own protocol instead (:func:`run_numeric_optics`: its data,
loss, initialisation and order; training accuracy on all 150 flowers), where the
lens learners reproduce the figures of numeric-optics' code.
"""

from __future__ import annotations

import argparse
import io
import math
import time
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

import learning_diagrams as ld
from learning_diagrams.examples import machine
from learning_diagrams.io import write_atomic
from learning_diagrams.lenses import Para, adam, dream, parts, rmsprop, sgd, supervised, train, wgan

__all__ = [
    "IRIS_MODELS",
    "DIGITS_MODEL",
    "GENERATOR",
    "CRITIC",
    "iris",
    "digits",
    "epoch_batches",
    "build",
    "describe",
    "compare",
    "run_iris",
    "run_numeric_optics",
    "numeric_optics_init",
    "numeric_optics_batches",
    "run_digits",
    "run_dream",
    "run_gan",
    "mixture",
    "sliced_w1",
    "main",
]

Batch = tuple[torch.Tensor, torch.Tensor]

# -- models, as layer specs built twice: as parametric lenses and as nn.Modules --------------------------

#: The paper's three Iris models.
IRIS_MODELS: dict[str, list[tuple]] = {
    "linear": [("linear", 4, 3)],
    "dense": [("dense", 4, 3, "sigmoid")],
    "hidden": [("dense", 4, 20, "sigmoid"), ("dense", 20, 3, "sigmoid")],
}

#: The convolutional digits classifier.
DIGITS_MODEL: list[tuple] = [("conv", 1, 8, 3, 1), ("relu",), ("pool", 2), ("flatten",), ("dense", 128, 10, None)]

#: The GAN's generator (noise in R², samples in R²) and critic (R² → R).
GENERATOR: list[tuple] = [("dense", 2, 32, "tanh"), ("dense", 32, 32, "tanh"), ("dense", 32, 2, None)]
CRITIC: list[tuple] = [("dense", 2, 64, "relu"), ("dense", 64, 64, "relu"), ("dense", 64, 1, None)]

_TORCH_ACTIVATIONS: dict[str | None, Callable[[], nn.Module]] = {
    "sigmoid": nn.Sigmoid,
    "relu": nn.ReLU,
    "tanh": nn.Tanh,
    None: nn.Identity,
}

Pairs = list[tuple[str, str, torch.Tensor]]


def build(spec: Sequence[tuple], seed: int = 0, prefix: str = "") -> tuple[Para, nn.Sequential, Pairs]:
    """A model twice: as a parametric lens, and as an ``nn.Sequential`` holding the same initial weights.

    ``spec`` is a list of layers: ``("linear", n_in, n_out)`` (no bias), ``("dense", n_in,
    n_out, activation)``, ``("conv", c_in, c_out, k, padding)``, ``("relu",)``,
    ``("pool", k)``, ``("flatten",)``. Layer ``i`` is named ``f"{prefix}{kind}{i}"``
    and seeded from ``seed``. Returns ``(para, module, pairs)`` where each pair
    ``(layer name, "weight" | "bias", module parameter)`` ties a lens parameter to
    the module's.

    >>> model, net, pairs = build(IRIS_MODELS["hidden"])
    >>> sorted(model.params), [(n, k, tuple(p.shape)) for n, k, p in pairs][:2]
    (['dense0', 'dense1'], [('dense0', 'weight', (20, 4)), ('dense0', 'bias', (20,))])
    >>> x = torch.randn(5, 4)
    >>> bool((model(x) - net(x)).abs().max() < 1e-6)
    True
    """
    lenses: list[Para] = []
    modules: list[nn.Module] = []
    pairs: Pairs = []
    for i, layer in enumerate(spec):
        kind, args = layer[0], layer[1:]
        name, s = f"{prefix}{kind}{i}", 1000 * seed + 10 * i
        lens: Para
        module: nn.Module
        if kind == "linear":
            n_in, n_out = args
            lens, module = parts.linear(n_in, n_out, name, seed=s), nn.Linear(n_in, n_out, bias=False)
            pairs.append((name, "weight", module.weight))
        elif kind == "dense":
            n_in, n_out, activation = args
            lens, linear = parts.dense(n_in, n_out, name, activation=activation, seed=s), nn.Linear(n_in, n_out)
            module = nn.Sequential(linear, _TORCH_ACTIVATIONS[activation]())
            pairs += [(name, "weight", linear.weight), (name, "bias", linear.bias)]
        elif kind == "conv":
            c_in, c_out, k, padding = args
            lens = parts.conv2d(c_in, c_out, k, name, padding=padding, seed=s)
            module = nn.Conv2d(c_in, c_out, k, padding=padding)
            assert module.bias is not None  # a convolution has a bias unless made with bias=False
            pairs += [(name, "weight", module.weight), (name, "bias", module.bias)]
        elif kind == "relu":
            lens, module = parts.relu(), nn.ReLU()
        elif kind == "pool":
            lens, module = parts.max_pool(args[0]), nn.MaxPool2d(args[0])
        elif kind == "flatten":
            lens, module = parts.flatten(), nn.Flatten()
        else:
            raise ld.errors.OptionError(f"unknown layer {layer!r}")
        lenses.append(lens)
        modules.append(module)
    model, net = parts.chain(*lenses), nn.Sequential(*modules)
    load(pairs, model.params)
    return model, net, pairs


def load(pairs: Pairs, params: dict[str, Any]) -> None:
    """Copy lens parameters into the module parameters they are paired with."""
    with torch.no_grad():
        for name, key, p in pairs:
            p.copy_(params[name][key])


def param_diff(pairs: Pairs, params: dict[str, Any]) -> float:
    """The largest difference between a lens parameter and its module twin."""
    return max(float((params[name][key] - p.detach()).abs().max()) for name, key, p in pairs)


def describe(spec: Sequence[tuple]) -> str:
    """A layer spec as a lens composite.

    >>> describe(IRIS_MODELS["hidden"])
    'dense(4→20, sigmoid) >> dense(20→3, sigmoid)'
    >>> describe(DIGITS_MODEL)
    'conv2d(1→8, 3×3, pad 1) >> relu >> max_pool(2) >> flatten >> dense(128→10)'
    """
    words = []
    for kind, *args in spec:
        if kind == "linear":
            words.append(f"linear({args[0]}→{args[1]})")
        elif kind == "dense":
            words.append(f"dense({args[0]}→{args[1]}{'' if args[2] is None else ', ' + args[2]})")
        elif kind == "conv":
            words.append(f"conv2d({args[0]}→{args[1]}, {args[2]}×{args[2]}, pad {args[3]})")
        elif kind == "pool":
            words.append(f"max_pool({args[0]})")
        else:
            words.append(kind)
    return " >> ".join(words)


# -- data ------------------------------------------------------------------------------------------------


def iris(seed: int = 0) -> tuple[Batch, Batch]:
    """scikit-learn's Iris: a stratified split of 100 training and 50 test flowers, standardised by the training set.

    >>> (x, y), (x_test, y_test) = iris()
    >>> x.shape, x_test.shape, torch.bincount(y_test).tolist()
    (torch.Size([100, 4]), torch.Size([50, 4]), [17, 17, 16])
    """
    from sklearn.datasets import load_iris
    from sklearn.model_selection import train_test_split

    data = load_iris()
    x, y = torch.tensor(data.data, dtype=torch.float32), torch.tensor(data.target, dtype=torch.int64)
    tr, te = train_test_split(range(len(y)), test_size=50, stratify=data.target, random_state=seed)
    mean, std = x[tr].mean(0), x[tr].std(0)
    x = (x - mean) / std
    return (x[tr], y[tr]), (x[te], y[te])


def digits(seed: int = 0) -> tuple[Batch, Batch]:
    """scikit-learn's 8×8 digits as ``(n, 1, 8, 8)`` images in ``[0, 1]``: 1,437 training and 360 test images."""
    from learning_diagrams.examples.datasets import digits as load_digits

    train_set, test_set = load_digits(seed=seed)
    return tuple(train_set.tensors), tuple(test_set.tensors)  # type: ignore[return-value]


def epoch_batches(
    data: Batch, batch_size: int, epochs: int, seed: int, target: Callable[[torch.Tensor], torch.Tensor] = lambda y: y
) -> list[Batch]:
    """``epochs`` passes over ``data``, reshuffled each pass, cut into batches ``(x, target(y))``.

    One list for both learners, so that they see the same batches in the same order.

    >>> b = epoch_batches((torch.arange(10.0), torch.arange(10)), 4, 2, 0)
    >>> [len(x) for x, _ in b], sorted(torch.cat([y for _, y in b[:3]]).tolist()) == list(range(10))
    ([4, 4, 2, 4, 4, 2], True)
    """
    x, y = data
    g = torch.Generator().manual_seed(seed)
    batches = []
    for _ in range(epochs):
        order = torch.randperm(len(y), generator=g)
        batches += [(x[i], target(y[i])) for i in order.split(batch_size)]
    return batches


def one_hot(y: torch.Tensor, classes: int = 3) -> torch.Tensor:
    return F.one_hot(y, classes).to(torch.float32)


# -- supervised learning: the lens learner beside the torch loop --------------------------------------------

#: Loss maps: the lens part and the torch function.
LOSSES: dict[str, tuple[Callable[[], Para], Callable[[torch.Tensor, torch.Tensor], torch.Tensor]]] = {
    "mse": (parts.quadratic_error, F.mse_loss),
    "cross_entropy": (parts.softmax_cross_entropy, F.cross_entropy),
}

#: Optimisers: the lens reparametrisation and the torch.optim class (same hyperparameter names).
OPTIMISERS: dict[str, tuple[Callable[..., Any], type[torch.optim.Optimizer]]] = {
    "sgd": (sgd, torch.optim.SGD),
    "adam": (adam, torch.optim.Adam),
    "rmsprop": (rmsprop, torch.optim.RMSprop),
}


def accuracy(scores: torch.Tensor, labels: torch.Tensor) -> float:
    """Percent of rows whose largest score is at the label."""
    return 100.0 * float((scores.argmax(1) == labels).float().mean())


def compare(
    spec: Sequence[tuple],
    batches: list[Batch],
    test: Batch,
    *,
    loss: str,
    optimiser: str,
    hyper: dict[str, Any],
    seed: int = 0,
    baseline_hyper: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Train ``spec`` as a lens learner and as an ``nn.Module`` with ``torch.optim``, from the same weights.

    The lens learner is ``supervised(model, loss map, optimiser(**hyper))`` run by
    :func:`~learning_diagrams.lenses.train`; the baseline is the usual loop
    (``zero_grad``, loss, ``backward``, ``step``) over the same ``batches``.
    ``baseline_hyper`` overrides some of the baseline's hyperparameters (to see
    that the comparison notices). Returns both test accuracies (percent), their
    difference, the largest difference between the trained parameters and
    between the two training curves, and the seconds each took.
    """
    model, net, pairs = build(spec, seed)
    lens_loss, torch_loss = LOSSES[loss]
    lens_optimiser, torch_optimiser = OPTIMISERS[optimiser]
    learner = supervised(model, lens_loss(), lens_optimiser(**hyper))

    start = time.perf_counter()
    result = train(learner, batches)
    lens_seconds = time.perf_counter() - start

    start = time.perf_counter()
    opt = torch_optimiser(net.parameters(), **{**hyper, **(baseline_hyper or {})})
    losses = []
    for x, y in batches:
        opt.zero_grad()
        value = torch_loss(net(x), y)
        value.backward()
        opt.step()
        losses.append(float(value.detach()))
    torch_seconds = time.perf_counter() - start

    x_test, y_test = test
    lens_accuracy = accuracy(learner.predict(x_test, result), y_test)
    with torch.no_grad():
        torch_accuracy = accuracy(net(x_test), y_test)
    return {
        "model": describe(spec),
        "lenses": lens_accuracy,
        "torch": torch_accuracy,
        "diff": lens_accuracy - torch_accuracy,
        "param_diff": param_diff(pairs, result.params),
        "loss_diff": max(abs(a - b) for a, b in zip(result.losses, losses)),
        "first_loss": result.losses[0],
        "final_loss": result.losses[-1],
        "steps": len(batches),
        "lens_seconds": lens_seconds,
        "torch_seconds": torch_seconds,
        "params": result.params,
        "module": net,
    }


def run_iris(args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    """The paper's three Iris models, each as a lens learner and as a torch baseline."""
    train_set, test = iris(args.seed)
    batches = epoch_batches(train_set, args.iris_batch, args.iris_epochs, args.seed, one_hot)
    hyper = {"lr": args.iris_lr}
    _say(
        args,
        f"\nIris: {len(train_set[1])} training / {len(test[1])} test flowers; mean squared error against "
        f"one-hot labels, sgd(lr={args.iris_lr:g}), batches of {args.iris_batch}, {args.iris_epochs} epochs "
        f"({len(batches)} steps)",
    )
    results = {
        name: compare(spec, batches, test, loss="mse", optimiser="sgd", hyper=hyper, seed=args.seed)
        for name, spec in IRIS_MODELS.items()
    }
    _table(args, "test accuracy (%)", results)
    return results


# -- Iris under numeric-optics' protocol ----------------------------------------------------------------------

#: Training accuracy (%) on all 150 flowers that numeric-optics' own code (statusfailed/numeric-optics-python,
#: ``experiments/iris.py``, commit 5cb8316) gives: after its last step, and what its script prints (measured
#: after the first step of the last epoch). Run with numpy 2.4, on scikit-learn's Iris and, alike, with the two
#: flowers where UCI's file differs from it.
NUMERIC_OPTICS_ACCURACY: dict[str, tuple[float, float]] = {
    "linear": (70.67, 66.67),
    "dense": (96.00, 94.67),
    "hidden": (98.00, 96.67),
}


def numeric_optics_init(spec: Sequence[tuple], rng: Any) -> dict[str, Any]:
    """Initial parameters as numeric-optics draws them: weights ``N(0, 0.01²)`` from ``rng``, biases zero (float64).

    numeric-optics composes parameters as ``(f >> g).param() = (g.param(), f.param())``,
    so the last layer's weights are drawn first. Layer ``i`` is named as :func:`build` names it.

    >>> p = numeric_optics_init(IRIS_MODELS["hidden"], np.random.RandomState(2))
    >>> p["dense1"]["weight"].shape, float(p["dense1"]["weight"][0, 0]) == np.random.RandomState(2).normal(0, 0.01)
    (torch.Size([3, 20]), True)
    """
    params: dict[str, Any] = {}
    for i in reversed(range(len(spec))):
        kind, n_in, n_out = spec[i][:3]
        weight = torch.from_numpy(rng.normal(0.0, 0.01, (n_out, n_in)))
        params[f"{kind}{i}"] = {"weight": weight}
        if kind == "dense":
            params[f"{kind}{i}"]["bias"] = torch.zeros(n_out, dtype=torch.float64)
    return params


def numeric_optics_batches(data: Batch, epochs: int, rng: Any) -> list[Batch]:
    """One flower per step, in numeric-optics' order: one permutation of the flowers, shuffled in place each epoch.

    >>> b = numeric_optics_batches((torch.arange(3.0)[:, None], torch.eye(3)), 2, np.random.RandomState(0))
    >>> [int(x) for x, _ in b], b[0][0].shape
    ([2, 1, 0, 0, 2, 1], torch.Size([1, 1]))
    """
    x, y = data
    order = np.arange(len(y))
    batches = []
    for _ in range(epochs):
        rng.shuffle(order)  # in place, so each epoch shuffles the last one's order, as numeric-optics does
        batches += [(x[i : i + 1], y[i : i + 1]) for i in order.tolist()]
    return batches


def run_numeric_optics(args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    """The paper's three Iris models under numeric-optics' protocol, as lens learners and as torch loops.

    numeric-optics (``experiments/iris.py``) trains on all 150 flowers with their raw
    features and one-hot labels, one flower per step, in the order of a permutation
    shuffled each epoch by numpy's generator seeded 2; the weights are ``N(0, 0.01²)``
    from that generator (:func:`numeric_optics_init`), the biases zero; the loss
    ``½ Σ (ŷ - y)²`` with learning rate ``η = 0.01`` and the update ``p + p'``, for
    400 epochs, in float64; and it reports the accuracy on the same 150 flowers.
    Here the loss is ``Σ (ŷ - y)²`` (``quadratic_error(reduction="sum")``,
    ``F.mse_loss(reduction="sum")``) with ``sgd(lr=0.005)``: the same steps.
    """
    from sklearn.datasets import load_iris

    data = load_iris()
    x = torch.tensor(data.data, dtype=torch.float64)
    y = torch.tensor(data.target, dtype=torch.int64)
    reference = args.seed == 2 and args.iris_epochs == 400 and args.iris_lr == 0.005
    _say(
        args,
        f"\nIris under numeric-optics' protocol: all {len(y)} flowers, raw features, one flower per step in "
        f"numpy's shuffled order (seed {args.seed}), weights N(0, 0.01²) and zero biases drawn as numeric-optics "
        f"draws them;\n  sum of squared errors, sgd(lr={args.iris_lr:g}) (numeric-optics: ½Σ(ŷ - y)², η = "
        f"{2 * args.iris_lr:g}), {args.iris_epochs} epochs, float64",
    )
    results = {}
    for name, spec in IRIS_MODELS.items():
        # numeric-optics seeds numpy's global generator (np.random.seed(2)), then draws the weights,
        # then shuffles; each model is its own run of its script, so each starts the stream afresh.
        rng = np.random.RandomState(args.seed)
        init = numeric_optics_init(spec, rng)
        batches = numeric_optics_batches((x, one_hot(y).to(torch.float64)), args.iris_epochs, rng)
        results[name] = _numeric_optics_compare(spec, init, batches, (x, y), args.iris_lr)
        results[name]["numeric_optics"] = NUMERIC_OPTICS_ACCURACY[name] if reference else None
    _say(
        args,
        f"  {'model':<8} {'composite':<44}  {'lenses':>7} {'PyTorch':>8} {'numeric-optics':>15}  "
        f"{'max |Δparam|':>12}  {'lens s':>6} {'torch s':>7}",
    )
    for name, r in results.items():
        theirs = "—" if r["numeric_optics"] is None else f"{r['numeric_optics'][0]:.2f}"
        _say(
            args,
            f"  {name:<8} {r['model']:<44}  {r['lenses']:>7.2f} {r['torch']:>8.2f} {theirs:>15}  "
            f"{r['param_diff']:>12.2e}  {r['lens_seconds']:>6.1f} {r['torch_seconds']:>7.1f}",
        )
    printed = " / ".join(f"{r['printed']:.2f}" for r in results.values())
    theirs = " / ".join(
        "—" if r["numeric_optics"] is None else f"{r['numeric_optics'][1]:.2f}" for r in results.values()
    )
    _say(
        args,
        "  (training accuracy (%) on all 150 flowers after the last step; numeric-optics: its own code on this "
        f"protocol;\n  its script prints the accuracy after the first step of the last epoch: lenses {printed}, "
        f"numeric-optics {theirs})",
    )
    return results


def _numeric_optics_compare(
    spec: Sequence[tuple], init: dict[str, Any], batches: list[Batch], data: Batch, lr: float
) -> dict[str, Any]:
    """Train ``spec`` from ``init`` as a lens learner and as a float64 torch loop; training accuracies."""
    model, net, pairs = build(spec)
    model = model.with_params(init)
    net = net.double()  # in place: the pairs still name its parameters
    load(pairs, init)
    x, y = data
    last = len(batches) - len(y) + 1  # after the first step of the last epoch, where numeric-optics' script reports

    learner = supervised(model, parts.quadratic_error(reduction="sum"), sgd(lr=lr))
    start = time.perf_counter()
    head = train(learner, batches[:last])
    printed = accuracy(learner.predict(x, head), y)
    result = train(learner, batches[last:], start=head)
    lens_seconds = time.perf_counter() - start

    start = time.perf_counter()
    opt = torch.optim.SGD(net.parameters(), lr=lr)
    for xb, yb in batches:
        opt.zero_grad()
        F.mse_loss(net(xb), yb, reduction="sum").backward()
        opt.step()
    torch_seconds = time.perf_counter() - start
    with torch.no_grad():
        torch_accuracy = accuracy(net(x), y)
    return {
        "model": describe(spec),
        "lenses": accuracy(learner.predict(x, result), y),
        "torch": torch_accuracy,
        "printed": printed,
        "param_diff": param_diff(pairs, result.params),
        "steps": len(batches),
        "losses": head.losses + result.losses,
        "lens_seconds": lens_seconds,
        "torch_seconds": torch_seconds,
        "params": result.params,
    }


def run_digits(args: argparse.Namespace, data: tuple[Batch, Batch]) -> dict[str, Any]:
    """The convolutional digits classifier, as a lens learner and as a torch baseline."""
    train_set, test = data
    batches = epoch_batches(train_set, 64, args.digits_epochs, args.seed)
    hyper = {"lr": 0.01}
    _say(
        args,
        f"\nDigits: {len(train_set[1])} training / {len(test[1])} test 8×8 images; softmax cross-entropy, "
        f"adam(lr=0.01), batches of 64, {args.digits_epochs} epochs ({len(batches)} steps)",
    )
    result = compare(DIGITS_MODEL, batches, test, loss="cross_entropy", optimiser="adam", hyper=hyper, seed=args.seed)
    _table(args, "test accuracy (%)", {"conv": result})
    return result


def _table(args: argparse.Namespace, title: str, results: dict[str, dict[str, Any]]) -> None:
    width = max(len(r["model"]) for r in results.values())
    _say(
        args,
        f"  {'model':<8} {'composite':<{width}}  {'lenses':>7} {'PyTorch':>8} {'diff':>6}  "
        f"{'max |Δparam|':>12} {'max |Δloss|':>11}  {'lens s':>6} {'torch s':>7}",
    )
    for name, r in results.items():
        _say(
            args,
            f"  {name:<8} {r['model']:<{width}}  {r['lenses']:>7.2f} {r['torch']:>8.2f} {r['diff']:>+6.2f}  "
            f"{r['param_diff']:>12.2e} {r['loss_diff']:>11.2e}  {r['lens_seconds']:>6.1f} "
            f"{r['torch_seconds']:>7.1f}",
        )
    _say(args, f"  ({title}; Δ: lenses minus PyTorch, over the trained parameters and over every step's loss)")


# -- deep dreaming -----------------------------------------------------------------------------------------


def run_dream(args: argparse.Namespace, trained: dict[str, Any], data: tuple[Batch, Batch]) -> dict[str, Any]:
    """Dream an input for each class, from noise and from a test digit of another class.

    ``trained`` is :func:`compare`'s result for the digits model; the baseline
    optimises the same starting tensors with ``torch.optim.Adam`` and a clamp,
    on the torch twin loaded with the same trained weights.
    """
    model, net, pairs = build(DIGITS_MODEL, args.seed)
    model = model.with_params(trained["params"])
    load(pairs, trained["params"])
    _, (x_test, y_test) = data
    g = torch.Generator().manual_seed(args.seed)
    noise = 0.1 * torch.randn(1, 1, 8, 8, generator=g)
    lr, clip, steps = 0.01, 1.0, args.dream_steps
    _say(
        args,
        f"\nDeep dreaming: the digits model with its ports exchanged, adam(lr={lr:g}).clipped({clip:g}), "
        f"{steps} steps; score = the class's logit (start → dreamed), p = its softmax probability",
    )
    _say(
        args,
        f"  {'class':>5}  {'from noise':>18} {'p':>5}  {'from digit':>12} {'score':>16} {'p':>5}  {'max |Δimage|':>12}",
    )
    rows = []
    for target in range(10):
        start_class = (target + 5) % 10
        digit = x_test[y_test == start_class][:1]
        start = torch.cat([noise, digit])
        dreamed = dream(model, start, target, adam(lr=lr).clipped(clip), steps=steps)
        with torch.no_grad():
            before, after = model(start), model(dreamed.image)
        p = torch.softmax(after, 1)[:, target]

        image = start.clone().requires_grad_(True)
        opt = torch.optim.Adam([image], lr=lr)
        for _ in range(steps):
            opt.zero_grad()
            (-net(image)[:, target].sum()).backward()
            opt.step()
            with torch.no_grad():
                image.clamp_(-clip, clip)
        row = {
            "target": target,
            "start_class": start_class,
            "before": before[:, target].tolist(),
            "after": after[:, target].tolist(),
            "p_after": p.tolist(),
            "argmax_after": after.argmax(1).tolist(),
            "scores": dreamed.scores,
            "image_diff": float((dreamed.image - image.detach()).abs().max()),
            "start": start,
            "image": dreamed.image,
        }
        rows.append(row)
        _say(
            args,
            f"  {target:>5}  {row['before'][0]:>7.2f} → {row['after'][0]:>7.2f} {p[0]:>5.2f}  "
            f"{'a ' + str(start_class):>12} {row['before'][1]:>6.2f} → {row['after'][1]:>6.2f} {p[1]:>5.2f}  "
            f"{row['image_diff']:>12.2e}",
        )
    hits = sum(a == row["target"] for row in rows for a in row["argmax_after"])
    _say(
        args,
        f"  The model's class is the target for {hits} of {2 * len(rows)} dreamed inputs; "
        f"max |Δimage|: lenses minus torch.optim.Adam on the input",
    )
    return {"rows": rows, "hits": hits, "steps": steps}


def dream_png(rows: list[dict[str, Any]], path: Path) -> Path:
    """A grid: for each class, the input dreamed from noise, a real digit, and that digit dreamed.

    Each image is drawn on its own symmetric scale (grey 0, black its largest
    positive value, white its largest negative one), so the faint dreams from noise show.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(len(rows) * 0.85 + 1.2, 3.3), dpi=100)
    FigureCanvasAgg(fig)
    axes = fig.subplots(3, len(rows))
    labels = ["dreamed\nfrom noise", "start\ndigit", "dreamed\nfrom digit"]
    for j, row in enumerate(rows):
        images = (row["image"][0], row["start"][1], row["image"][1])
        for i, image in enumerate(images):
            ax = axes[i, j]
            bound = max(float(image.abs().max()), 1e-6)  # each image on its own symmetric scale: grey is 0
            ax.imshow(image.reshape(8, 8).numpy(), cmap="gray_r", vmin=-bound, vmax=bound)
            ax.set_xticks([]), ax.set_yticks([])
        axes[0, j].set_title(f"→ {row['target']}", fontsize=10)
    for i, label in enumerate(labels):
        axes[i, 0].set_ylabel(label, rotation=0, ha="right", va="center", fontsize=9)
    fig.subplots_adjust(left=0.11, right=0.99, top=0.9, bottom=0.02, wspace=0.08, hspace=0.1)
    return _save(fig, path)


# -- a Wasserstein GAN ---------------------------------------------------------------------------------------

#: The four centres of the GAN's data.
CENTRES = torch.tensor([[2.0, 2.0], [-2.0, 2.0], [-2.0, -2.0], [2.0, -2.0]])


def mixture(n: int, seed: int, std: float = 0.3) -> torch.Tensor:
    """``n`` points from an even mixture of Gaussians (deviation ``std``) at :data:`CENTRES`."""
    g = torch.Generator().manual_seed(seed)
    return CENTRES[torch.randint(len(CENTRES), (n,), generator=g)] + std * torch.randn(n, 2, generator=g)


def sliced_w1(a: torch.Tensor, b: torch.Tensor, projections: int = 256, seed: int = 0) -> float:
    """The sliced 1-Wasserstein distance between two equal-sized samples of R²: W1 averaged over directions.

    >>> x = torch.randn(500, 2, generator=torch.Generator().manual_seed(1))
    >>> sliced_w1(x, x), round(sliced_w1(x, x + torch.tensor([3.0, 0.0])), 1)
    (0.0, 1.9)
    """
    g = torch.Generator().manual_seed(seed)
    angles = 2 * math.pi * torch.rand(projections, generator=g)
    directions = torch.stack([angles.cos(), angles.sin()])
    pa, pb = (a @ directions).sort(0).values, (b @ directions).sort(0).values
    return float((pa - pb).abs().mean())


def run_gan(args: argparse.Namespace) -> dict[str, Any]:
    """The lens WGAN and the same WGAN in plain PyTorch, from the same weights, noise and data."""
    data = mixture(2048, args.seed)
    generator, g_net, g_pairs = build(GENERATOR, args.seed, "g_")
    critic, c_net, c_pairs = build(CRITIC, args.seed + 1, "c_")
    settings = dict(noise_dim=2, clip=0.05, n_critic=5, steps=args.gan_steps, batch_size=64, seed=args.seed)
    g_hyper: dict[str, Any] = {"lr": 2e-3, "betas": (0.5, 0.9)}
    c_hyper: dict[str, Any] = {"lr": 2e-3}
    _say(
        args,
        f"\nWasserstein GAN on a mixture of {len(CENTRES)} Gaussians in R² ({len(data)} points): generator "
        f"{describe(GENERATOR)}, adam(lr=2e-3, betas=(0.5, 0.9));\n  critic {describe(CRITIC)}, "
        f"rmsprop(lr=2e-3).clipped({settings['clip']}), {settings['n_critic']} critic steps per generator "
        f"step, {args.gan_steps} generator steps",
    )

    start = time.perf_counter()
    result = wgan(
        generator, critic, data, generator_optimiser=adam(**g_hyper), critic_optimiser=rmsprop(**c_hyper), **settings
    )
    lens_seconds = time.perf_counter() - start

    start = time.perf_counter()
    baseline = _torch_wgan(g_net, c_net, data, g_hyper, c_hyper, **settings)
    torch_seconds = time.perf_counter() - start

    z = torch.randn(2000, 2, generator=torch.Generator().manual_seed(args.seed + 7))
    real = mixture(2000, args.seed + 8)
    with torch.no_grad():
        before = generator(z)
        after = generator(z, result.generator)
        after_torch = g_net(z)
    distance = {
        "before": sliced_w1(before, real),
        "lenses": sliced_w1(after, real),
        "torch": sliced_w1(after_torch, real),
        "floor": sliced_w1(mixture(2000, args.seed + 9), real),
    }
    estimates, torch_estimates = result.estimates, baseline
    k = max(1, min(50, len(estimates) // 4))
    out = {
        "estimates": estimates,
        "torch_estimates": torch_estimates,
        "first": sum(estimates[:k]) / k,
        "last": sum(estimates[-k:]) / k,
        "torch_first": sum(torch_estimates[:k]) / k,
        "torch_last": sum(torch_estimates[-k:]) / k,
        "window": k,
        "estimate_diff": max(abs(a - b) for a, b in zip(estimates, torch_estimates)),
        "generator_diff": param_diff(g_pairs, result.generator),
        "critic_max": max(float(v.abs().max()) for layer in result.critic.values() for v in layer.values()),
        "sliced_w1": distance,
        "real": real,
        "before": before,
        "after": after,
        "lens_seconds": lens_seconds,
        "torch_seconds": torch_seconds,
    }
    _say(args, f"  {'':<34} {'lenses':>8} {'PyTorch':>8}")
    _say(args, f"  {f'Wasserstein estimate, first {k} steps':<34} {out['first']:>8.4f} {out['torch_first']:>8.4f}")
    _say(args, f"  {f'Wasserstein estimate, last {k} steps':<34} {out['last']:>8.4f} {out['torch_last']:>8.4f}")
    _say(args, f"  {'sliced W1 to the data, before':<34} {distance['before']:>8.3f} {distance['before']:>8.3f}")
    _say(args, f"  {'sliced W1 to the data, after':<34} {distance['lenses']:>8.3f} {distance['torch']:>8.3f}")
    _say(args, f"  {'seconds':<34} {lens_seconds:>8.1f} {torch_seconds:>8.1f}")
    _say(
        args,
        f"  (sliced W1 between two samples of the data itself: {distance['floor']:.3f}; "
        f"max |Δestimate| {out['estimate_diff']:.1e}, max |Δgenerator| {out['generator_diff']:.1e}, "
        f"critic weights within ±{out['critic_max']:.3g})",
    )
    return out


def _torch_wgan(
    generator: nn.Module,
    critic: nn.Module,
    data: torch.Tensor,
    g_hyper: dict[str, Any],
    c_hyper: dict[str, Any],
    *,
    noise_dim: int,
    clip: float,
    n_critic: int,
    steps: int,
    batch_size: int,
    seed: int,
) -> list[float]:
    """:func:`~learning_diagrams.lenses.wgan`'s loop with autograd, ``torch.optim`` and a clamp; the estimates."""
    g = torch.Generator().manual_seed(seed)
    g_opt, c_opt = (
        torch.optim.Adam(generator.parameters(), **g_hyper),
        torch.optim.RMSprop(critic.parameters(), **c_hyper),
    )
    n = batch_size
    estimates = []
    for _ in range(steps):
        for _ in range(n_critic):
            real = data[torch.randint(len(data), (n,), generator=g)]
            with torch.no_grad():
                fake = generator(torch.randn(n, noise_dim, generator=g))
            c_opt.zero_grad()
            scores = critic(torch.cat([real, fake]))
            estimate = scores[:n].mean() - scores[n:].mean()
            (-estimate).backward()
            c_opt.step()
            with torch.no_grad():
                for p in critic.parameters():
                    p.clamp_(-clip, clip)
            estimates.append(float(estimate.detach()))
        g_opt.zero_grad()
        (-critic(generator(torch.randn(n, noise_dim, generator=g))).mean()).backward()
        g_opt.step()
    return estimates


def gan_png(gan: dict[str, Any], path: Path) -> Path:
    """Real and generated samples before and after training, and the critic's estimates over training."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(12, 3.9), dpi=100)
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, 3)
    real = gan["real"][:1000].numpy()
    for ax, key, title in ((axes[0], "before", "before training"), (axes[1], "after", "after training (lenses)")):
        fake = gan[key][:1000].numpy()
        ax.scatter(real[:, 0], real[:, 1], s=3, alpha=0.4, color="tab:blue", label="data")
        ax.scatter(fake[:, 0], fake[:, 1], s=3, alpha=0.4, color="tab:orange", label="generator")
        ax.set_title(
            f"{title}: sliced W1 {gan['sliced_w1']['before' if key == 'before' else 'lenses']:.2f}", fontsize=10
        )
        ax.set_xlim(-4, 4), ax.set_ylim(-4, 4), ax.set_aspect("equal")
        ax.legend(loc="upper center", fontsize=8, markerscale=3, ncol=2)
    ax = axes[2]
    for key, label, color in (("estimates", "lenses", "tab:green"), ("torch_estimates", "PyTorch", "tab:red")):
        values = torch.tensor(gan[key])
        width = max(1, min(25, len(values) // 10))
        smooth = values.unfold(0, width, 1).mean(1) if len(values) >= width else values
        ax.plot(
            range(width - 1, width - 1 + len(smooth)),
            smooth.numpy(),
            color=color,
            label=label,
            linestyle="-" if key == "estimates" else "--",
            linewidth=1.2,
        )
    ax.set_xlabel("critic step"), ax.set_ylabel("mean C(real) − mean C(fake)")
    ax.set_title("the critic's Wasserstein estimate (moving mean)", fontsize=10)
    ax.legend(fontsize=8)
    fig.subplots_adjust(left=0.04, right=0.99, top=0.91, bottom=0.12, wspace=0.25)
    return _save(fig, path)


# -- running it ---------------------------------------------------------------------------------------------


def _save(fig: Any, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)  # --out names a folder to write into
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return write_atomic(path, buffer.getvalue())


def _say(args: argparse.Namespace, text: str) -> None:
    if not args.quiet:
        print(text)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run the four experiments, print their tables, write the two PNGs; return every number."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    length = parser.add_mutually_exclusive_group()
    length.add_argument(
        "--full",
        action="store_true",
        help="longer runs: Iris one flower per step, lr 0.01, 400 epochs (this example's loss, features and split)",
    )
    length.add_argument(
        "--numeric-optics",
        action="store_true",
        help="Iris under numeric-optics' own protocol (training accuracy on all 150 flowers); only Iris by default",
    )
    parser.add_argument(
        "--seed", type=int, help="seed of the weights, splits, batches and noise (default 0; 2 with --numeric-optics)"
    )
    parser.add_argument("--out", type=Path, default=Path("."), help="folder for the PNGs (default: here)")
    parser.add_argument("--iris-epochs", type=int, help="default 200 (400 with --full or --numeric-optics)")
    parser.add_argument("--iris-batch", type=int, help="default 10 (1 with --full; always 1 with --numeric-optics)")
    parser.add_argument("--iris-lr", type=float, help="default 0.5 (0.01 with --full, 0.005 with --numeric-optics)")
    parser.add_argument("--digits-epochs", type=int, help="default 15 (40 with --full)")
    parser.add_argument("--dream-steps", type=int, help="default 40 (longer runs only sharpen adversarial patterns)")
    parser.add_argument("--gan-steps", type=int, help="generator steps, default 600 (2000 with --full)")
    parser.add_argument(
        "--only",
        help="comma-separated experiments to run (dream needs digits); default iris,digits,dream,gan "
        "(iris with --numeric-optics)",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch CPU threads during the run (default 1; restored after); 0 keeps torch's",
    )
    parser.add_argument("--quiet", action="store_true", help="print nothing")
    args = parser.parse_args(argv)
    defaults = {  # quick, --full, --numeric-optics
        "seed": (0, 0, 2),
        "iris_epochs": (200, 400, 400),
        "iris_batch": (10, 1, 1),
        "iris_lr": (0.5, 0.01, 0.005),
        "digits_epochs": (15, 40, 15),
        "dream_steps": (40, 40, 40),
        "gan_steps": (600, 2000, 600),
        "only": ("iris,digits,dream,gan", "iris,digits,dream,gan", "iris"),
    }
    for key, (quick, full, theirs) in defaults.items():
        if getattr(args, key) is None:
            setattr(args, key, theirs if args.numeric_optics else full if args.full else quick)
    only = {name.strip() for name in args.only.split(",")}
    unknown = only - {"iris", "digits", "dream", "gan"}
    if unknown:
        parser.error(f"unknown experiments {sorted(unknown)}")
    if "dream" in only:
        only.add("digits")

    start = time.perf_counter()
    results: dict[str, Any] = {"files": []}
    with machine.threads(args.threads):
        if "iris" in only:
            results["iris"] = run_numeric_optics(args) if args.numeric_optics else run_iris(args)
        if "digits" in only:
            data = digits(args.seed)
            results["digits"] = run_digits(args, data)
        if "dream" in only:
            results["dream"] = run_dream(args, results["digits"], data)
            results["files"].append(dream_png(results["dream"]["rows"], args.out / "lenses-dream.png"))
        if "gan" in only:
            results["gan"] = run_gan(args)
            results["files"].append(gan_png(results["gan"], args.out / "lenses-gan.png"))
        where = machine.describe("cpu")
    results["seconds"] = time.perf_counter() - start
    for path in results["files"]:
        _say(args, f"\nWrote {path}")
    _say(args, f"\nDone in {results['seconds']:.1f} s on {where}.")
    return results


if __name__ == "__main__":
    main()
