"""The optimisers' backward parts over every parameter tensor at once, with ``torch._foreach_*``.

Each function here is the batched form of one optimiser's single-tensor step in
:mod:`.optim`: given the lists of parameter tensors ``ps``, their states ``ss``
(one dict each, under torch's names) and their changes ``cs``, it returns the
new parameters and states, doing at every tensor exactly the operations of the
single-tensor step, in the same order (a ``torch._foreach_*`` op on the CPU is
that op on each tensor), so the two agree bit for bit. What is saved is the
Python: one call per operation instead of one per operation and tensor, which
is what ``torch.optim`` does with ``foreach=True``.

``own`` and ``along`` are those of :meth:`~.optim.Optimiser.step_tensors`: with
``own`` the parameters and moments are overwritten in place (the caller gave
them up), and ``along=-1`` takes gradients in place of changes. Step counters
are never written in place: leaves at the same count share one new counter
tensor, so that the count is read once per step rather than once per tensor.

>>> import torch
>>> p, c = [torch.tensor([1.0, 2.0])], [torch.tensor([0.5, -0.5])]
>>> new, state = adam(p, [{"step": torch.tensor(0.0), "exp_avg": torch.zeros(2), "exp_avg_sq": torch.zeros(2)}], c,
...                   {"lr": 0.1, "betas": (0.9, 0.999), "eps": 1e-8, "weight_decay": 0.0, "amsgrad": False}, False, 1.0)
>>> new, state[0]["step"], p                     # the first Adam step moves each entry by lr along the change
([tensor([1.1000, 1.9000])], tensor(1.), [tensor([1., 2.])])
"""

from __future__ import annotations

from typing import Any, Callable, Mapping, Union

import torch

__all__ = ["sgd", "adagrad", "adam", "rmsprop", "lookahead", "lookahead_get"]

Tensors = list[torch.Tensor]
States = list[dict[str, Any]]
Scalars = Union[float, list[float]]


def _apply(own: bool, op: str, xs: Tensors, *args: Any, **kwargs: Any) -> Tensors:
    """``torch._foreach_<op>_`` on ``xs`` when they are the caller's to overwrite (and ``xs`` returned), else ``_foreach_<op>``."""
    if not xs:
        return []
    if own:
        getattr(torch, f"_foreach_{op}_")(xs, *args, **kwargs)
        return xs
    return list(getattr(torch, f"_foreach_{op}")(xs, *args, **kwargs))


def _count(ss: States) -> tuple[list[Any], Scalars]:
    """The leaves' step counters plus one, and their values: one float when every leaf is at the same count.

    Leaves at the same count share one new counter, so the next step reads it once.
    """
    new: list[Any] = []
    values: list[float] = []
    by_id: dict[int, tuple[Any, float]] = {}
    by_value: dict[tuple[Any, ...], Any] = {}
    for s in ss:
        old = s["step"]
        hit = by_id.get(id(old))
        if hit is None:
            t = old + 1
            value = float(t)
            key = (value, type(t), getattr(t, "dtype", None), getattr(t, "device", None))
            hit = by_id[id(old)] = (by_value.setdefault(key, t), value)
        new.append(hit[0])
        values.append(hit[1])
    return new, (values[0] if len(by_value) == 1 else values)


def _each(values: Scalars, fn: Callable[[float], float]) -> Scalars:
    return fn(values) if isinstance(values, float) else [fn(v) for v in values]


def _decay(ps: Tensors, cs: Tensors, h: Mapping[str, Any], along: float) -> Tensors:
    # torch: grad + wd · p; so the change is c - wd · p.
    return list(torch._foreach_add(cs, ps, alpha=-along * h["weight_decay"])) if h["weight_decay"] != 0 else cs


def sgd(ps: Tensors, ss: States, cs: Tensors, h: Mapping[str, Any], own: bool, along: float) -> tuple[Tensors, States]:
    """:func:`~.optim.sgd`'s step: plain, with momentum, or Nesterov's (torch's form)."""
    c = _decay(ps, cs, h, along)
    mu = h["momentum"]
    if mu == 0:
        return _apply(own, "add", ps, c, alpha=along * h["lr"]), [{} for _ in ps]
    bufs: list[Any] = [s["momentum_buffer"] for s in ss]
    going = [i for i, b in enumerate(bufs) if b is not None]
    moved = _apply(own, "mul", [bufs[i] for i in going], mu)
    if moved:
        torch._foreach_add_(moved, [c[i] for i in going], alpha=1 - h["dampening"])
    for i, b in zip(going, moved):
        bufs[i] = b
    bufs = [c[i].detach().clone() if b is None else b for i, b in enumerate(bufs)]  # torch starts at the first change
    if h["nesterov"] and own and along == -1.0:
        # torch's own gradients, given up as torch.optim's are (LensOptimizer): g + μ·b is written into
        # them, as torch.optim.SGD(nesterov=True, foreach=True) writes it into p.grad.
        torch._foreach_add_(c, bufs, alpha=mu)
        step = c
    else:
        step = list(torch._foreach_add(c, bufs, alpha=mu)) if h["nesterov"] else bufs
    return _apply(own, "add", ps, step, alpha=along * h["lr"]), [{"momentum_buffer": b} for b in bufs]


def adagrad(
    ps: Tensors, ss: States, cs: Tensors, h: Mapping[str, Any], own: bool, along: float
) -> tuple[Tensors, States]:
    """:func:`~.optim.adagrad`'s step."""
    steps, t = _count(ss)
    c = _decay(ps, cs, h, along)
    clr = _each(t, lambda v: along * (h["lr"] / (1 + (v - 1) * h["lr_decay"])))
    total = _apply(own, "addcmul", [s["sum"] for s in ss], c, c, value=1)
    std = list(torch._foreach_sqrt(total))
    torch._foreach_add_(std, h["eps"])
    new = _apply(own, "addcdiv", ps, c, std, clr)
    return new, [{"step": k, "sum": g} for k, g in zip(steps, total)]


def adam(ps: Tensors, ss: States, cs: Tensors, h: Mapping[str, Any], own: bool, along: float) -> tuple[Tensors, States]:
    """:func:`~.optim.adam`'s step, with AMSGrad's maximum when asked."""
    steps, t = _count(ss)
    beta1, beta2 = h["betas"]
    c = _decay(ps, cs, h, along)
    m = _apply(own, "lerp", [s["exp_avg"] for s in ss], c, 1 - beta1)
    v = _apply(own, "mul", [s["exp_avg_sq"] for s in ss], beta2)
    torch._foreach_addcmul_(v, c, c, value=1 - beta2)
    step_size = _each(t, lambda k: along * (h["lr"] / (1 - beta1**k)))
    root = _each(t, lambda k: (1 - beta2**k) ** 0.5)
    new = [{"step": k, "exp_avg": a, "exp_avg_sq": b} for k, a, b in zip(steps, m, v)]
    if h["amsgrad"]:
        v = _apply(own, "maximum", [s["max_exp_avg_sq"] for s in ss], v)
        for s, top in zip(new, v):
            s["max_exp_avg_sq"] = top
    denom = list(torch._foreach_sqrt(v))
    torch._foreach_div_(denom, root)
    torch._foreach_add_(denom, h["eps"])  # ε after the bias correction, as torch
    return _apply(own, "addcdiv", ps, m, denom, step_size), new


def rmsprop(
    ps: Tensors, ss: States, cs: Tensors, h: Mapping[str, Any], own: bool, along: float
) -> tuple[Tensors, States]:
    """:func:`~.optim.rmsprop`'s step, centred or not, with or without momentum."""
    steps, _ = _count(ss)
    c = _decay(ps, cs, h, along)
    a = h["alpha"]
    square = _apply(own, "mul", [s["square_avg"] for s in ss], a)
    torch._foreach_addcmul_(square, c, c, value=1 - a)
    new: States = [{"step": k, "square_avg": q} for k, q in zip(steps, square)]
    if h["centered"]:
        g = _apply(own, "lerp", [s["grad_avg"] for s in ss], c, 1 - a)
        avg = list(torch._foreach_addcmul(square, g, g, value=-1))
        torch._foreach_sqrt_(avg)
        for s, x in zip(new, g):
            s["grad_avg"] = x
    else:
        avg = list(torch._foreach_sqrt(square))
    torch._foreach_add_(avg, h["eps"])
    if h["momentum"] > 0:
        buf = _apply(own, "mul", [s["momentum_buffer"] for s in ss], h["momentum"])
        torch._foreach_addcdiv_(buf, c, avg)
        for s, b in zip(new, buf):
            s["momentum_buffer"] = b
        return _apply(own, "add", ps, buf, alpha=along * h["lr"]), new
    return _apply(own, "addcdiv", ps, c, avg, along * h["lr"]), new


def lookahead_get(ps: Tensors, ss: States, h: Mapping[str, Any]) -> Tensors:
    """:func:`~.optim.lookahead_nesterov`'s forward part: the look-ahead points ``p + γs``."""
    return list(torch._foreach_add(ps, [s["velocity"] for s in ss], alpha=h["momentum"]))


def lookahead(
    ps: Tensors, ss: States, cs: Tensors, h: Mapping[str, Any], own: bool, along: float
) -> tuple[Tensors, States]:
    """:func:`~.optim.lookahead_nesterov`'s step: ``s ← γ s + lr · c``, ``p ← p + s``."""
    # The change arrived at the look-ahead point, where torch's weight decay is taken too.
    c = _decay(lookahead_get(ps, ss, h), cs, h, along) if h["weight_decay"] != 0 else cs
    v = _apply(own, "mul", [s["velocity"] for s in ss], h["momentum"])
    torch._foreach_add_(v, c, alpha=along * h["lr"])
    return _apply(own, "add", ps, v), [{"velocity": x} for x in v]
