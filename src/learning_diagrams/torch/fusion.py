"""Parallel maps on PyTorch: a family of a compiled loss's edges run as one batched call.

The families (:mod:`learning_diagrams.core.families`) of a compiled loss, with
PyTorch's structural signature of a map: the module's class, its mode, and the
name, shape, dtype and ``requires_grad`` of each parameter and buffer; a module
with hooks, one without parameters, or a plain function has none.
``compile(fuse=True)`` runs each family as one :class:`FusedFamily`:

* **Stacked storage.** Each parameter name of the members becomes one tensor
  stacked along a new first dimension, ``(members, *shape)``, and each member's own
  parameter becomes a view of its slice (its ``.data``): ``state_dict()`` keys and
  values, ``load_state_dict``, checkpoints and ``ld.save`` see each member as it
  was, and an update of the stacked tensor is an update of every member. The
  compiled loss's ``parameters()`` give the stacked tensors in place of the
  members' own, so that ``torch.optim`` steps one tensor per name instead of one
  per member; elementwise optimisers (SGD, Adam, ...) make the same updates. The
  gradient is the stacked tensor's ``.grad``; a member's own ``.grad`` stays None.
* **One call.** ``nn.Linear`` members reading one value are one matrix product
  (``F.linear`` with the weights side by side); reading different values of one
  shape (glued few-shot heads, each on its own episode), one batched product
  (``baddbmm``); other modules, one ``torch.func.vmap`` of ``functional_call``
  over the stacked tensors. Inputs of different shapes are called member by member,
  still on the stacked tensors (exact; slower).
* **Terms at once.** Where each member ends one pair's path, on the same side, with
  a library loss reduced by the mean, the family's terms are one call of the loss's
  per-sample form on the stacked values, averaged per member: each term keeps its
  name and value (to floating-point reassociation), and their sum joins the total.

>>> import torch, learning_diagrams as ld
>>> d = ld.Diagram().space("N", data=[(torch.ones(4, 8), torch.zeros(4, 3, dtype=torch.long))]).space("X")
>>> d = d.map("x", "N", "X", lambda b: b[0])
>>> for i in range(3):
...     d = (d.space(f"Y{i}", loss=ld.losses.cross_entropy).map(f"head{i}", "X", f"Y{i}", torch.nn.Linear(8, 2))
...           .map(f"y{i}", "N", f"Y{i}", lambda b, i=i: b[1][:, i]).relate(f"x·head{i}", f"y{i}"))
>>> loss = d.compile(fuse=True)
>>> [f.family.edges for f in loss.fused], [tuple(p.shape) for p in loss.parameters()]
([('head0', 'head1', 'head2')], [(3, 2, 8), (3, 2)])
>>> d.maps["head1"].fn.weight.data_ptr() == loss.fused[0].stacked[0][1].data_ptr()
True
"""

from __future__ import annotations

import contextlib
import copy
import functools
import weakref
from collections.abc import Callable, Hashable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..core import families as core
from ..core.diagram import Map
from ..core.losses import Formula, Loss
from ..core.program import Fused
from .losses import PER_SAMPLE, SHARED_TARGET, loss_function, returns_scalar

if TYPE_CHECKING:
    from .compiled import CompiledLoss

__all__ = ["signature", "families", "FusedFamily", "fuse", "partial_view", "own_storage"]


def _hooked(module: nn.Module) -> bool:
    return any(
        getattr(m, name)
        for m in module.modules()
        for name in ("_forward_hooks", "_forward_pre_hooks", "_backward_hooks", "_backward_pre_hooks")
    )


def signature(m: Map) -> Hashable | None:
    """What makes two maps' modules interchangeable but for their numbers; None for a plain function,
    a module with hooks, or one without parameters (nothing to stack)."""
    module = m.fn
    if not isinstance(module, nn.Module) or _hooked(module):
        return None
    params = list(module.named_parameters())
    if not params:
        return None
    tensors = [*params, *module.named_buffers()]
    return (
        type(module),
        module.training,
        tuple((name, tuple(t.shape), t.dtype, t.device, t.requires_grad) for name, t in tensors),
    )


def families(
    loss: CompiledLoss, *, least: int = core.MIN_MEMBERS, group: Callable[[str], Hashable] | None = None
) -> list[core.Family]:
    """The families of parallel maps among ``loss``'s edges (see :mod:`learning_diagrams.core.families`)."""
    return core.families(loss.pairs, loss.edges, signature=signature, least=least, group=group)


#: The attribute of a member's tensor that names its stacked tensor (weakly) and its place in it.
_STACK = "_learning_diagrams_stack"


def _stack(tensors: Sequence[Tensor], parameter: bool) -> Tensor:
    """One tensor ``(len(tensors), *shape)`` whose slices the ``tensors`` become views of (their ``.data``).

    Tensors that already are, in order, the slices of one stacked tensor (a loss compiled
    again) keep it, so that an optimiser made on the first compilation still steps them.
    """
    known = [getattr(t, _STACK, None) for t in tensors]
    first = known[0][0]() if known[0] is not None else None
    if first is not None and first.shape[0] == len(tensors):
        size = first.element_size() * first[0].numel()
        if all(
            k is not None and k[0]() is first and k[1] == i and t.data_ptr() == first.data_ptr() + i * size
            for i, (t, k) in enumerate(zip(tensors, known))
        ):
            return first
    data = torch.stack([t.detach() for t in tensors])
    stacked: Tensor = nn.Parameter(data, requires_grad=tensors[0].requires_grad) if parameter else data
    _point(tensors, stacked)
    return stacked


def _point(tensors: Sequence[Tensor], stacked: Tensor) -> None:
    """Make each of ``tensors`` (its ``.data``) the view of its slice of ``stacked``, and mark it so."""
    for i, t in enumerate(tensors):
        t.data = stacked.data[i]
        setattr(t, _STACK, (weakref.ref(stacked), i))


def partial_view(tensor: Tensor) -> bool:
    """Whether ``tensor`` sees only part of its storage (a fused member's parameter, a slice of its stack)."""
    if tensor.device.type == "meta":
        return False
    return tensor.untyped_storage().nbytes() > tensor.numel() * tensor.element_size()


@contextlib.contextmanager
def own_storage(module: nn.Module) -> Iterator[None]:
    """Meanwhile, each parameter and buffer of ``module`` that is a :func:`partial_view` has memory of its own.

    What it holds at the end is copied back into its view, which it is again. For
    safetensors, which refuses to save or load tensors that share part of a storage
    (``save_model``, ``load_model``): checkpoints of fused members go through here.
    """
    swapped: list[tuple[Tensor, Tensor]] = []
    seen: set[int] = set()
    for m in module.modules():
        for t in [*m._parameters.values(), *m._buffers.values()]:
            if t is not None and id(t) not in seen and partial_view(t):
                seen.add(id(t))
                swapped.append((t, t.data))
                t.data = t.data.clone()
    try:
        yield
    finally:
        with torch.no_grad():
            for t, view in swapped:
                view.copy_(t.data)
                t.data = view


class FusedFamily(nn.Module):
    """The members of a family as one module: stacked parameters and buffers, one call for all.

    ``stacked[k]`` is the stacked tensor of the ``k``-th parameter name (``names[k]``),
    ``buffers[k]`` of the ``k``-th buffer name; the members' own tensors are views of
    their slices. The members are not submodules (their parameters are these), so
    ``parameters()`` are the stacked tensors, and ``DistributedDataParallel`` can wrap
    the family as one module.
    """

    def __init__(self, family: core.Family, modules: Sequence[nn.Module], loss: Loss):
        super().__init__()
        self.family = family
        self.members: tuple[nn.Module, ...] = tuple(modules)  # a tuple: not registered as submodules
        first = modules[0]
        self.names = [name for name, _ in first.named_parameters()]
        self.buffer_names = [name for name, _ in first.named_buffers()]
        self.stacked = nn.ParameterList(
            [_stack([m.get_parameter(n) for m in modules], parameter=True) for n in self.names]
        )
        self.buffers_ = [_stack([m.get_buffer(n) for m in modules], parameter=False) for n in self.buffer_names]
        self.linear = type(first) is nn.Linear
        #: An ``nn.Sequential`` of ``nn.Linear`` layers and elementwise activations: batched products layer by layer.
        self.chain = type(first) is nn.Sequential and all(type(c) in _CHAIN for c in first)
        # A copy of the first member with its tensors on the meta device: the shape functional_call runs.
        self._base = None if self.linear or self.chain else copy.deepcopy(first).to("meta")
        # The terms at once: a library loss reduced by the mean, with its per-sample form (and its form
        # against one shared target, where it has one).
        fn = loss.fn
        self._mean = self._per_sample = self._shared = None
        if isinstance(fn, Formula) and returns_scalar(loss) and fn.name in PER_SAMPLE:
            self._mean, self._per_sample = loss_function(loss), loss_function(loss, "sum")
            if fn.name in SHARED_TARGET:
                self._shared = functools.partial(SHARED_TARGET[fn.name], **dict(fn.params))

    def repoint(self) -> None:
        """Make each member's tensors views of the stacked ones again (after ``.to()`` moved both)."""
        for n, stacked in zip(self.names, self.stacked):
            _point([m.get_parameter(n) for m in self.members], stacked)
        for n, stacked in zip(self.buffer_names, self.buffers_):
            _point([m.get_buffer(n) for m in self.members], stacked)

    def _apply(self, fn: Callable[[Tensor], Tensor], recurse: bool = True) -> FusedFamily:
        super()._apply(fn, recurse)
        self.buffers_ = [fn(b) for b in self.buffers_]
        return self

    def fused(self, terms: bool = True) -> Fused:
        """The core's description of this family's one call (and terms, unless ``terms=False``)."""
        return Fused(self.family, self, self.terms if terms and self._per_sample is not None else None)

    # -- the one call -------------------------------------------------------------------
    def forward(self, members: tuple[int, ...], *inputs: Any) -> Any:
        """The outputs of ``members`` (positions in the family) on ``inputs``: a tensor ``(len(members), ...)``,
        or a list where the inputs' shapes differ."""
        everyone = len(members) == len(self.members)
        index = None if everyone else torch.tensor(members, device=self.stacked[0].device)
        params = [p if index is None else p.index_select(0, index) for p in self.stacked]
        buffers = [b if index is None else b.index_select(0, index) for b in self.buffers_]
        x = inputs[0]
        shared = all(v is x for v in inputs)
        if not shared and not all(
            isinstance(v, Tensor) and isinstance(x, Tensor) and v.shape == x.shape for v in inputs
        ):
            return [self._one(params, buffers, k, v) for k, v in enumerate(inputs)]
        if self.linear:
            return _linear(params, x if shared else torch.stack(inputs), shared)
        if self.chain:
            return self._chain(params, x if shared else torch.stack(inputs), shared)
        base = self._base
        assert base is not None  # made for every family that is not of nn.Linear members

        def one(p: list[Tensor], b: list[Tensor], v: Any) -> Any:
            return torch.func.functional_call(
                base, ({**dict(zip(self.names, p)), **dict(zip(self.buffer_names, b))}), (v,)
            )

        if shared:
            return torch.func.vmap(one, in_dims=(0, 0, None))(params, buffers, x)
        return torch.func.vmap(one, in_dims=(0, 0, 0))(params, buffers, torch.stack(inputs))

    def _chain(self, params: list[Tensor], x: Tensor, shared: bool) -> Tensor:
        """An ``nn.Sequential`` member's layers in turn, on every member at once."""
        named = dict(zip(self.names, params))
        layers: nn.Sequential = self.members[0]  # type: ignore[assignment]  # checked in __init__ (chain)
        for i, layer in enumerate(layers):
            if type(layer) is nn.Linear:
                bias = named.get(f"{i}.bias")
                x = _linear([named[f"{i}.weight"], *([bias] if bias is not None else [])], x, shared)
                shared = False
            else:  # elementwise: the same on every member's slice
                x = layer(x)
        return x  # stacked by the first nn.Linear (a member with parameters has one)

    def _one(self, params: list[Tensor], buffers: list[Tensor], k: int, x: Any) -> Any:
        """Member ``k``'s output alone, on the stacked tensors' slices (so gradients reach them)."""
        state = {
            **{n: p[k] for n, p in zip(self.names, params)},
            **{n: b[k] for n, b in zip(self.buffer_names, buffers)},
        }
        return torch.func.functional_call(self.members[0], state, (x,))

    # -- the terms at once --------------------------------------------------------------
    def terms(
        self, members: tuple[int, ...], weights: tuple[float, ...], first: bool, stacked: Any, *others: Any
    ) -> tuple[list[Tensor], Tensor]:
        """The weighted terms of ``members``' pairs and their sum (see :class:`~learning_diagrams.core.program.Fused`)."""
        per_sample = self._per_sample
        assert per_sample is not None  # fused() offers terms only with a per-sample form
        other = others[0]
        # (members, batch, ...): the per-sample form needs each member's output to be a batch.
        if isinstance(stacked, Tensor) and stacked.dim() >= 3 and isinstance(other, Tensor):
            count, batch = stacked.shape[:2]
            values = None
            if all(o is other for o in others):
                if first and self._shared is not None and other.shape == stacked.shape[1:]:
                    values = self._shared(stacked, other)  # the one target's work done once
                other = other.expand(count, *other.shape)
            elif all(isinstance(o, Tensor) and o.shape == other.shape for o in others):
                other = torch.stack(others)
            else:
                other = None
            if values is None and other is not None and other.shape[:2] == stacked.shape[:2]:
                a, b = (stacked, other) if first else (other, stacked)
                values = per_sample(a.flatten(0, 1), b.flatten(0, 1)).view(count, batch).mean(dim=1)
            if values is not None:
                if any(w != 1.0 for w in weights):
                    values = values * torch.tensor(weights, dtype=values.dtype, device=values.device)
                return list(values.unbind(0)), values.sum()
        # Shapes that do not stack: each term as the unfused loss computes it.
        mean = self._mean
        assert mean is not None
        found = []
        for k, o in enumerate(others):
            value = mean(stacked[k], o) if first else mean(o, stacked[k])
            found.append(value if weights[k] == 1.0 else weights[k] * value)
        return found, sum(found[1:], start=found[0])


#: The layers of an ``nn.Sequential`` member that :class:`FusedFamily` runs layer by layer: ``nn.Linear`` and
#: activations that act on each entry alone (so on a stack of members as on each member).
_CHAIN = frozenset(
    {nn.Linear, nn.ReLU, nn.Tanh, nn.Sigmoid, nn.GELU, nn.SiLU, nn.LeakyReLU, nn.ELU, nn.Softplus, nn.Mish, nn.Identity}
)


def _linear(params: list[Tensor], x: Tensor, shared: bool) -> Tensor:
    """``nn.Linear`` members on ``x`` (one input for all, or one per member stacked first)."""
    weight, bias = params[0], params[1] if len(params) > 1 else None
    count, out, features = weight.shape
    if shared:  # one matrix product with the weights side by side, then (members, ..., out)
        y = F.linear(x, weight.reshape(count * out, features), None if bias is None else bias.reshape(-1))
        return y.unflatten(-1, (count, out)).movedim(-2, 0)
    if x.dim() == 3 and bias is not None:
        return torch.baddbmm(bias.unsqueeze(1), x, weight.transpose(1, 2))
    y = torch.matmul(x.reshape(count, -1, features), weight.transpose(1, 2))
    if bias is not None:
        y = y + bias.unsqueeze(1)
    return y.reshape(*x.shape[:-1], out)


def fuse(loss: CompiledLoss, group: Callable[[str], Hashable] | None = None) -> list[FusedFamily]:
    """The fused families of ``loss``: each family's members' tensors stacked (see :class:`FusedFamily`)."""
    fused = []
    for family in families(loss, group=group):
        modules = [loss.edges[e].fn for e in family.edges]
        pair = next(p for p in loss.pairs if p.name == family.pairs[0])
        fused.append(FusedFamily(family, [m for m in modules if isinstance(m, nn.Module)], pair.loss))
    return fused


def members_of(fused: Sequence[FusedFamily]) -> Mapping[int, tuple[int, int, int]]:
    """By id of each member's parameter: (family, parameter name's place, member's place)."""
    return {
        id(m.get_parameter(n)): (f, k, i)
        for f, family in enumerate(fused)
        for k, n in enumerate(family.names)
        for i, m in enumerate(family.members)
    }
