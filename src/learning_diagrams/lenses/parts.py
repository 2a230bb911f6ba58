"""The parts of a learner as parametric lenses: layers, loss maps and learning rates.

Every part is a :class:`~learning_diagrams.lenses.para.Para` (parameterless
parts have ``params == {}``), so parts compose with ``>>`` and their parameter
dicts merge by name: ``dense(4, 8, "d1") >> dense(8, 3, "d2", activation=None)``
has parameters ``{"d1": {"weight", "bias"}, "d2": {...}}``.

Layers
    :func:`linear` (``x Wᵀ``), :func:`bias` (``x + b``), :func:`dense`
    (linear >> bias >> activation, regrouped under one name), :func:`conv2d`,
    :func:`max_pool`, :func:`avg_pool`, :func:`flatten`, the activations
    :func:`relu`, :func:`sigmoid`, :func:`tanh`, :func:`softmax`, and any
    ``nn.Module`` through :func:`module` (its buffers carried as state). Initial values follow ``nn.Linear`` /
    ``nn.Conv2d`` (uniform in ``±1/√fan_in``) drawn from a generator seeded by
    ``seed`` (by default a checksum of the part's name, so that two parts differ).
    Their backward parts are reverse derivatives through ``torch.func.vjp``.

Loss maps
    A loss map ``B → L`` whose *parameter is the label*: ``{name: label}``
    (``name="label"`` by default), so that supervised learning is composition
    and each batch's labels are plugged into the parameter port.
    :func:`quadratic_error`, :func:`softmax_cross_entropy`, :func:`dot_product`.
    Their backward parts are written out by hand (and tested against autograd);
    the change of a class-index label is zero.

Learning rates
    A lens ``(L, L') ⇄ (1, 1)``: forward discards the loss, backward returns the
    change of loss that the learner asks for.

Sign conventions
----------------
A learner minimises by default. :func:`learning_rate` ``(α)`` returns the loss
change ``-α`` (the paper's convention: the change requested of the loss is
"down by α"), so the change reaching the parameters is ``-α ∇ℓ``, and every
optimiser of :mod:`.optim` moves the parameters *along* the change it receives
(the paper's ``p ↦ p + p'``): descent. ``maximise=True`` returns ``+α``: ascent
(deep dreaming, a GAN's critic). :func:`loss_scaled` returns ``∓α · ℓ``.
Optimisers that match ``torch.optim`` carry their own ``lr``; use them with
``learning_rate(1.0)`` (the default of :func:`~.learner.supervised`).

>>> import torch
>>> model = dense(2, 3, "d1", activation="tanh") >> dense(3, 2, "d2", activation=None)
>>> sorted(model.params), sorted(model.params["d1"]), model(torch.ones(5, 2)).shape
(['d1', 'd2'], ['bias', 'weight'], torch.Size([5, 2]))
>>> loss = quadratic_error()
>>> l, res = loss.fwd(({"label": torch.tensor([1.0, 2.0])}, torch.tensor([1.0, 4.0])))
>>> l, loss.bwd(res, torch.tensor(1.0))         # mean of squares: dŷ = 2 (ŷ - y) dℓ / n
(tensor(2.), ({'label': tensor([-0., -2.])}, tensor([0., 2.])))
>>> learning_rate(0.1).bwd(learning_rate(0.1).fwd(({}, l))[1], ())
({}, tensor(-0.1000))
"""

from __future__ import annotations

import functools
import math
import zlib
from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch import nn

from ..core.errors import ConflictError, OptionError
from .derivative import Derivative, R, from_module, para_derivative
from .lens import Lens
from .para import Para

__all__ = [
    "linear",
    "bias",
    "dense",
    "conv2d",
    "max_pool",
    "avg_pool",
    "flatten",
    "relu",
    "sigmoid",
    "tanh",
    "softmax",
    "module",
    "chain",
    "regroup",
    "quadratic_error",
    "softmax_cross_entropy",
    "dot_product",
    "learning_rate",
    "loss_scaled",
]


# -----------------------------------------------------------------------------
# Layers


def _generator(seed: int | None, name: str) -> torch.Generator:
    return torch.Generator().manual_seed(zlib.crc32(name.encode()) if seed is None else seed)


def _uniform(shape: tuple[int, ...], bound: float, g: torch.Generator) -> torch.Tensor:
    return torch.empty(shape).uniform_(-bound, bound, generator=g)


def linear(n_in: int, n_out: int, name: str, *, seed: int | None = None) -> Para:
    """``x ↦ x Wᵀ`` with ``W`` of shape ``(n_out, n_in)``; parameters ``{name: {"weight": W}}``."""
    w = _uniform((n_out, n_in), 1 / math.sqrt(n_in), _generator(seed, name))
    return para_derivative(lambda p, x: F.linear(x, p[name]["weight"]), {name: {"weight": w}}, name)


def bias(n: int, name: str, *, fan_in: int | None = None, seed: int | None = None) -> Para:
    """``x ↦ x + b``; parameters ``{name: {"bias": b}}``, uniform in ``±1/√fan_in`` (zeros without ``fan_in``)."""
    b = torch.zeros(n) if fan_in is None else _uniform((n,), 1 / math.sqrt(fan_in), _generator(seed, name + ".bias"))
    return para_derivative(lambda p, x: x + p[name]["bias"], {name: {"bias": b}}, name)


def dense(n_in: int, n_out: int, name: str, activation: Para | str | None = "relu", *, seed: int | None = None) -> Para:
    """A dense layer: :func:`linear` ``>>`` :func:`bias` ``>>`` ``activation``.

    ``activation`` is a parameterless part, one of the names ``"relu"``, ``"sigmoid"``,
    ``"tanh"``, ``"softmax"``, or ``None`` for an affine layer. The parameters are
    regrouped (:func:`regroup`) as ``{name: {"weight": W, "bias": b}}``.
    """
    if isinstance(activation, str):
        if activation not in _ACTIVATIONS:
            raise OptionError(f"unknown activation {activation!r}; use one of {sorted(_ACTIVATIONS)}, a Para, or None")
        activation = _ACTIVATIONS[activation]()
    parts = linear(n_in, n_out, name + ".linear", seed=seed) >> bias(
        n_out, name + ".bias", fan_in=n_in, seed=None if seed is None else seed + 1
    )
    if activation is not None:
        parts = parts >> activation
    return regroup(parts, name)


def conv2d(
    c_in: int, c_out: int, kernel_size: int, name: str, *, stride: int = 1, padding: int = 0, seed: int | None = None
) -> Para:
    """A 2-D convolution (``F.conv2d``); parameters ``{name: {"weight": (c_out, c_in, k, k), "bias": (c_out,)}}``."""
    g = _generator(seed, name)
    bound = 1 / math.sqrt(c_in * kernel_size * kernel_size)
    params = {
        name: {
            "weight": _uniform((c_out, c_in, kernel_size, kernel_size), bound, g),
            "bias": _uniform((c_out,), bound, g),
        }
    }

    def fn(p: dict, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, p[name]["weight"], p[name]["bias"], stride=stride, padding=padding)

    return para_derivative(fn, params, name)


def _lift(fn: Callable[[torch.Tensor], torch.Tensor], name: str) -> Para:
    return Para.lift(R(fn, name))


def max_pool(kernel_size: int, stride: int | None = None) -> Para:
    """2-D max pooling, parameterless."""
    return _lift(functools.partial(F.max_pool2d, kernel_size=kernel_size, stride=stride), f"max_pool({kernel_size})")


def avg_pool(kernel_size: int, stride: int | None = None) -> Para:
    """2-D average pooling, parameterless."""
    return _lift(functools.partial(F.avg_pool2d, kernel_size=kernel_size, stride=stride), f"avg_pool({kernel_size})")


def flatten(start_dim: int = 1) -> Para:
    """Flatten every dimension from ``start_dim`` on, parameterless."""
    return _lift(lambda x: x.flatten(start_dim), "flatten")


def relu() -> Para:
    """``max(x, 0)``, parameterless."""
    return _lift(torch.relu, "relu")


def sigmoid() -> Para:
    """``1 / (1 + e⁻ˣ)``, parameterless."""
    return _lift(torch.sigmoid, "sigmoid")


def tanh() -> Para:
    """``tanh x``, parameterless."""
    return _lift(torch.tanh, "tanh")


def softmax(dim: int = -1) -> Para:
    """``softmax`` along ``dim``, parameterless."""
    return _lift(functools.partial(torch.softmax, dim=dim), "softmax")


_ACTIVATIONS = {"relu": relu, "sigmoid": sigmoid, "tanh": tanh, "softmax": softmax}


def module(m: nn.Module, name: str) -> Para:
    """Any ``nn.Module`` as a part; parameters ``{name: m.state_dict()}`` (see :func:`~.derivative.from_module`).

    Integer inputs (an embedding's indices) get the zero change; buffers (batch
    norm's running statistics) are carried with the parameters, updated by each
    training step in training mode and read in eval mode; calling the part runs
    the module alone, with no ``vjp``.
    """
    return from_module(m, name)


def chain(*parts: Para) -> Para:
    """``parts[0] >> parts[1] >> ...``."""
    return functools.reduce(Para.then, parts)


def regroup(model: Para, name: str) -> Para:
    """``model`` with its parameters ``{k: {...}, ...}`` regrouped as one entry ``{name: {...}}``.

    A reparametrisation by a lens that only renames: forward splits ``{name: {...}}``
    back into the parts' entries, backward merges the parts' changes. The inner
    names of the parts must differ.
    """
    groups = {k: tuple(v) for k, v in model.params.items()}
    inner = [i for ks in groups.values() for i in ks]
    if len(set(inner)) != len(inner):
        raise ConflictError(f"cannot regroup {model.name} under {name!r}: inner parameter names repeat ({inner})")

    def parts_of(q: dict[str, Any]) -> dict[str, Any]:
        return {k: {i: q[name][i] for i in ks} for k, ks in groups.items()}

    # Backward merges the changes by hand (a buffer's Assign passes through), which is
    # the derivative of the renaming: declared so, a model of reverse derivatives
    # regrouped stays one (one traced graph; Derivative.derivative_of).
    split = Derivative(
        lambda q: (parts_of(q), None),
        lambda _, dp: {name: {i: v for d in dp.values() for i, v in d.items()}},
        f"regroup({name})",
        parts_of,
    )
    merged = {name: {i: v for d in model.params.values() for i, v in d.items()}}
    reparametrised = model.reparametrise(split, merged)
    return Para(reparametrised.lens, merged, name)


# -----------------------------------------------------------------------------
# Loss maps: Para whose parameter is the label.


def _reduce(per: torch.Tensor, reduction: str) -> tuple[torch.Tensor, float]:
    if reduction == "mean":
        return per.mean(), 1.0 / max(per.numel(), 1)
    if reduction == "sum":
        return per.sum(), 1.0
    raise OptionError(f"reduction {reduction!r} is not 'mean' or 'sum'")


def _loss_map(fwd: Callable, bwd: Callable, label: Any, name: str, title: str) -> Para:
    def lens_fwd(pa: tuple[dict, torch.Tensor]) -> tuple[torch.Tensor, Any]:
        return fwd(pa[1], pa[0][name])

    def lens_bwd(residual: Any, dl: torch.Tensor) -> tuple[dict, torch.Tensor]:
        dy_hat, dlabel = bwd(residual, dl)
        return {name: dlabel}, dy_hat

    return Para(Lens(lens_fwd, lens_bwd, title), {name: label}, title)


def quadratic_error(label: torch.Tensor | None = None, *, reduction: str = "mean", name: str = "label") -> Para:
    """``ℓ(ŷ; y) = mean (ŷ - y)²`` (as ``F.mse_loss``; ``reduction="sum"`` sums).

    The paper's ``½ Σ (ŷ - y)²`` is ``reduction="sum"`` with half the learning rate.
    Backward: ``dŷ = 2 (ŷ - y) dℓ / n``, ``dy = -dŷ``.
    """

    def fwd(y_hat, y):
        diff = y_hat - y
        loss, scale = _reduce(diff * diff, reduction)
        return loss, (diff, scale)

    def bwd(residual, dl):
        diff, scale = residual
        d = diff * (2 * scale * dl)
        return d, -d

    return _loss_map(fwd, bwd, label, name, "quadratic_error")


def softmax_cross_entropy(label: torch.Tensor | None = None, *, reduction: str = "mean", name: str = "label") -> Para:
    """``ℓ(z; y) = -Σⱼ yⱼ log softmax(z)ⱼ``, averaged over the batch (as ``F.cross_entropy``).

    ``z`` are logits ``(N, C)``; the label is class indices ``(N,)`` (integers) or
    one-hot / probability rows ``(N, C)``. Backward: ``dz = (softmax(z) Σⱼyⱼ - y) dℓ / N``
    and, for rows, ``dy = -log softmax(z) dℓ / N``; class indices get a zero change.
    """

    def fwd(z, y):
        logp = torch.log_softmax(z, dim=-1)
        hard = not torch.is_floating_point(y)
        rows = F.one_hot(y, z.shape[-1]).to(z.dtype) if hard else y
        loss, scale = _reduce(-(rows * logp).sum(-1), reduction)
        return loss, (logp, rows, hard, y, scale)

    def bwd(residual, dl):
        logp, rows, hard, y, scale = residual
        g = rows * -(scale * dl)  # the change of log softmax(z); then through log softmax:
        dz = g - logp.exp() * g.sum(-1, keepdim=True)
        dy = torch.zeros(y.shape, dtype=logp.dtype) if hard else logp * -(scale * dl)
        return dz, dy

    return _loss_map(fwd, bwd, label, name, "softmax_cross_entropy")


def dot_product(label: torch.Tensor | None = None, *, name: str = "label") -> Para:
    """``ℓ(ŷ; y) = Σ y · ŷ``: the class score when ``y`` is one-hot, a critic's mean with ``y = ±1/N``.

    Backward: ``dŷ = y dℓ``, ``dy = ŷ dℓ``.
    """

    def fwd(y_hat, y):
        return (y * y_hat).sum(), (y_hat, y)

    def bwd(residual, dl):
        y_hat, y = residual
        return y * dl, y_hat * dl

    return _loss_map(fwd, bwd, label, name, "dot_product")


# -----------------------------------------------------------------------------
# Learning rates: lenses (L, L') ⇄ (1, 1).


def learning_rate(alpha: float, *, maximise: bool = False) -> Para:
    """The constant learning rate: backward returns the loss change ``-α`` (``+α`` to maximise)."""
    change = alpha if maximise else -alpha
    return Para.lift(Lens(lambda l: ((), l), lambda l, _: torch.full_like(l, change), f"rate({change:g})"))


def loss_scaled(alpha: float, *, maximise: bool = False) -> Para:
    """A learning rate scaled by the loss: backward returns ``-α · ℓ`` (``+α · ℓ`` to maximise).

    Composed with a loss ``ℓ`` it descends ``½ α ℓ²``: steps shrink as the loss does.
    """
    change = alpha if maximise else -alpha
    return Para.lift(Lens(lambda l: ((), l), lambda l, _: change * l.detach(), f"rate({change:g}·ℓ)"))
