"""Finiteness on PyTorch: which value, gradient or weight of a compiled loss is NaN or infinite.

A training run that meets a NaN must say where it came from. These are the
checks a compiled loss and the trainer use once they know that something is
not finite (they never run on a normal step):

* :func:`is_finite` tests any value an edge may give (a tensor, or tuples,
  lists and dicts of them);
* :func:`explain` re-evaluates the pairs on one batch and names the first
  non-finite value along the paths of the first non-finite term (the batch, an
  edge, or the loss itself), else the edge at which a term's gradient turns
  non-finite, going back from the loss;
* :func:`nonfinite_maps` names the maps whose weights are not finite;
* :func:`hidden_modules` finds the modules with parameters that a plain
  function reaches (through its closure, defaults, globals or ``self``), which
  the compiled loss cannot register.

>>> import math, torch
>>> is_finite((torch.ones(2), {"a": torch.tensor([1.0, math.inf])}))
False
>>> is_finite(("text", 3, torch.arange(3)))
True
>>> net = torch.nn.Linear(2, 2)
>>> [(name, type(m).__name__) for name, m in hidden_modules(lambda v: net(v) + 1)]
[("'net'", 'Linear')]
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from ..core.evaluation import explain_nonfinite, first_nonfinite
from ..core.reach import found_in, reached
from ..core.messages import (
    NONFINITE_GRADIENT,
    NONFINITE_GRADIENT_EDGE,
    NONFINITE_GRADIENT_LOSS,
    NONFINITE_TOTAL,
)

if TYPE_CHECKING:  # pragma: no cover
    from .compiled import CompiledLoss

__all__ = ["is_finite", "describe_value", "explain", "nonfinite_maps", "hidden_modules", "registered_ids"]


def is_finite(value: Any) -> bool:
    """Whether every floating-point number in ``value`` is finite.

    Tensors, Python floats, and tuples, lists and dicts of them are looked into;
    anything else (integers, strings, objects) counts as finite.
    """
    if isinstance(value, torch.Tensor):
        if not (value.is_floating_point() or value.is_complex()):
            return True
        return bool(torch.isfinite(value).all())
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, (tuple, list)):
        return all(is_finite(v) for v in value)
    if isinstance(value, Mapping):
        return all(is_finite(v) for v in value.values())
    return True


def describe_value(value: Any) -> str:
    """``"nan"``, ``"inf"`` or ``"-inf"``: what a non-finite scalar is, for messages."""
    number = float(value.detach().float()) if isinstance(value, torch.Tensor) else float(value)
    return str(number)


def explain(loss: CompiledLoss, batches: Mapping[str, Any]) -> str | None:
    """Why the compiled loss is not finite on ``batches``: a sentence naming term and edge, or None.

    Evaluates every pair whose source has a batch, with autograd on, through the
    loss's own maps (not their distributed wrappers). The first term (in pair
    order) whose value is not finite is explained by :func:`explain_nonfinite`;
    if every value is finite, the first term whose gradient is not finite is
    traced back from the loss to the edge where it turns so. Returns None when
    every value and gradient is finite.
    """
    with torch.enable_grad():
        outputs, values = loss.trace(batches, draw=False, plain=True)
        terms = [(pair, loss.term(pair, first, second)) for pair, first, second in outputs]
        for pair, term in terms:
            if not is_finite(term):
                prefix = first_nonfinite(pair, values[pair.source], is_finite)
                return explain_nonfinite(pair, prefix, loss.steps, describe_value(term))
        if terms and not is_finite(sum(t for _, t in terms)):
            return NONFINITE_TOTAL.format(value=describe_value(sum(t for _, t in terms)))
        for pair, term in terms:
            culprit = _gradient_culprit(loss, pair, term, values[pair.source])
            if culprit is not None:
                return NONFINITE_GRADIENT.format(pair=pair.name, culprit=culprit)
    return None


def _gradient_culprit(
    loss: CompiledLoss, pair: Any, term: torch.Tensor, values: Mapping[tuple[str, ...], Any]
) -> str | None:
    """Where the gradient of ``term`` turns non-finite, going back from the loss; None if it never does."""
    if not term.requires_grad:
        return None
    trainable = loss.trainable_maps()
    prefixes = [path[: i + 1] for path in (pair.first, pair.second) for i in range(len(path))]
    outputs = {p: values[p] for p in prefixes if isinstance(values.get(p), torch.Tensor) and values[p].requires_grad}
    params = {
        e: [p for p in trainable[e].parameters() if p.requires_grad]
        for e in dict.fromkeys(e for path in (pair.first, pair.second) for e in path)
        if e in trainable
    }
    inputs = [*outputs.values(), *(p for ps in params.values() for p in ps)]
    if not inputs:
        return None
    grads = torch.autograd.grad(term, inputs, retain_graph=True, allow_unused=True)
    if all(g is None or is_finite(g) for g in grads):
        return None
    by_output = dict(zip(outputs, grads[: len(outputs)]))
    flat = iter(grads[len(outputs) :])
    by_map = {e: [next(flat) for _ in ps] for e, ps in params.items()}
    for path in (pair.first, pair.second):
        downstream = NONFINITE_GRADIENT_LOSS.format(loss=pair.loss.name, target=pair.target)
        for i in reversed(range(len(path))):
            step = loss.steps[path[: i + 1]]
            here = NONFINITE_GRADIENT_EDGE.format(
                name=step.map.name, src=step.map.src, tgt=step.map.tgt, path=step.along
            )
            gradient = by_output.get(path[: i + 1])
            if gradient is not None and not is_finite(gradient):
                return downstream  # finite at the output of the edge after this one (or at the loss)
            if not all(g is None or is_finite(g) for g in by_map.get(path[i], [])):
                return here
            downstream = here
    return "a gradient of its maps' parameters is not finite"


def nonfinite_maps(maps: Mapping[str, nn.Module] | nn.ModuleDict) -> list[str]:
    """The names of the maps whose parameters or floating-point buffers are not all finite.

    One reduction per tensor and one synchronisation per map: meant for the
    moments before a checkpoint is written, not for every step.
    """
    bad = []
    for name, module in maps.items():
        tensors = [t.detach() for t in (*module.parameters(), *module.buffers()) if t.is_floating_point()]
        if tensors and not bool(torch.stack([torch.isfinite(t).all() for t in tensors]).all()):
            bad.append(name)
    return bad


def _is_module(value: Any) -> bool:
    return isinstance(value, nn.Module)


def registered_ids(registered: Iterable[nn.Module]) -> frozenset[int]:
    """The ids of ``registered`` modules and of every module inside them: ``hidden_modules``'s ``inside``."""
    return frozenset(id(m) for r in registered for m in r.modules())


def hidden_modules(
    fn: Callable[..., Any], registered: Iterable[nn.Module] = (), *, inside: frozenset[int] | None = None
) -> list[tuple[str, nn.Module]]:
    """The modules with parameters that the plain callable ``fn`` reaches, and how to name each.

    Looked into: a function's closure cells, default arguments and the globals its
    code names (nested functions' too); a bound method's ``self``; a
    ``functools.partial``'s function and arguments; another callable object's
    attributes. Lists, tuples and dicts found there are looked into one level
    deep, and so are the attributes of an object that is neither (``self`` of a
    closure). Modules that are ``registered`` (or inside one that is) are left out,
    as are modules without parameters. ``fn`` itself being a module reaches nothing.
    ``inside`` is :func:`registered_ids` of ``registered``, for a caller that asks of many
    functions with the same modules registered.
    """
    if isinstance(fn, nn.Module):
        return []
    if inside is None:
        inside = registered_ids(registered)
    found: dict[int, tuple[str, nn.Module]] = {}
    for name, value in reached(fn):
        for label, module in found_in(name, value, _is_module):
            if id(module) not in inside and id(module) not in found and any(True for _ in module.parameters()):
                found[id(module)] = (label, module)
    return list(found.values())
