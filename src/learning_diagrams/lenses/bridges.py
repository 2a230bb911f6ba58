"""Bridges between lens learners and the rest of learning-diagrams.

:class:`LensOptimizer`
    A lens optimiser (:mod:`.optim`) as a ``torch.optim.Optimizer``: parameter
    groups, ``step()``, ``zero_grad()``, ``state_dict()`` / ``load_state_dict()``,
    learning-rate schedulers. So ``ld.fit(diagram, optimizer=lambda groups:
    LensOptimizer(groups, adam(lr=1e-3)))`` trains a diagram with it. Each
    parameter's state is the optimiser's state of one tensor, under torch's names.
    ``step()`` runs the optimiser's batched update (``Optimiser.step_tensors``) over each
    group at once, in place, as ``torch.optim`` with ``foreach=True`` does, on the
    gradients themselves (``along=-1``: descent, with no pass to negate them), so
    its updates equal ``torch.optim``'s and its state is torch's too, first
    moments and momentum buffers included: a ``torch.optim`` state dict loads into
    it. (An optimiser of your own, without a batched update, is stepped tensor by
    tensor along ``-p.grad``, the convention of :mod:`.optim`: its first moments
    are torch's negated.)

:func:`diagram_loss`
    A compiled learning diagram as a parametric lens. The reading chosen: the
    diagram's composite loss is a map ``P × Batch → L`` where ``P`` is the
    parameters of its trainable maps, ``{edge: {parameter name: tensor}}`` (a
    module on two edges appears once, under its first edge). Forward: the total
    loss on a batch (one batch per data vertex, or ``None`` to draw them), through
    ``torch.func.functional_call``; backward: ``(dP, None)`` by ``vjp``
    (:func:`~.derivative.vjp`, ``torch.func.vjp``'s semantics on one autograd graph):
    the parameters' changes, and no change for the data. It already ends in the
    loss, so it needs no loss map: :func:`diagram_learner` reparametrises it by an
    optimiser and closes it with a learning rate, and :func:`load_params` writes
    trained values back into the modules.

>>> import torch, learning_diagrams as ld
>>> from learning_diagrams.lenses import optim
>>> net = torch.nn.Linear(2, 1)
>>> d = (ld.Diagram().space("N", data=[(torch.ones(4, 2), torch.zeros(4, 1))]).space("X")
...      .space("Y", loss=ld.losses.mse).map("x", "N", "X", lambda b: b[0])
...      .map("y", "N", "Y", lambda b: b[1]).map("f", "X", "Y", net).relate("x·f", "y"))
>>> compiled = d.compile()
>>> loss = diagram_loss(compiled)
>>> sorted(loss.params["f"])
['bias', 'weight']
>>> from learning_diagrams.lenses.learner import train
>>> result = train(diagram_learner(compiled, optim.adam(lr=0.1)), [None] * 50)
>>> result.losses[-1] < result.losses[0]
True
>>> load_params(compiled, result.params)
>>> bool(compiled().total < result.losses[0])
True
"""

from __future__ import annotations

from typing import Any, Callable, Iterable, cast

import torch
from torch.func import functional_call

from ..core.errors import OptionError
from ..torch import CompiledLoss
from .derivative import vjp
from .lens import Lens
from .learner import Learner
from .optim import Optimiser
from .para import Para
from .parts import learning_rate

__all__ = ["LensOptimizer", "diagram_loss", "diagram_learner", "load_params"]


class LensOptimizer(torch.optim.Optimizer):
    """A lens optimiser where a ``torch.optim.Optimizer`` is expected.

    >>> from learning_diagrams.lenses.optim import adam
    >>> w = torch.nn.Parameter(torch.ones(3))
    >>> opt = LensOptimizer([w], adam(lr=0.1))
    >>> (w * w).sum().backward(); opt.step(); opt.zero_grad()
    >>> w.detach(), sorted(opt.state[w])
    (tensor([0.9000, 0.9000, 0.9000]), ['exp_avg', 'exp_avg_sq', 'step'])
    """

    def __init__(self, params: Iterable[Any], optimiser: Optimiser):
        if optimiser.get_leaf is not None:  # torch evaluates the model at the tensor it stores
            raise OptionError(
                f"{optimiser!r} evaluates the model at another point than the parameters it stores (its forward "
                "part is not (p, s) ↦ p), which a torch.optim optimizer cannot express; for Nesterov momentum use "
                "nesterov(...), torch's form of the same method"
            )
        self.optimiser = optimiser
        super().__init__(params, dict(optimiser.hyper))

    @torch.no_grad()
    def step(self, closure: Any = None) -> Any:
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        opt = self.optimiser
        for group in self.param_groups:
            hyper = {k: group[k] for k in opt.hyper}
            ps, states, grads = [], [], []
            for p in group["params"]:
                grad = p.grad
                if grad is None:
                    continue
                if grad.is_sparse:
                    raise RuntimeError("LensOptimizer does not take sparse gradients")
                state = self.state.get(p)  # present once initialised, even when empty (plain SGD's)
                if state is None:
                    state = self.state[p] = opt.init_leaf(p.detach(), hyper)
                ps.append(p)
                states.append(state)
                grads.append(grad)
            if not ps:
                continue
            # The optimiser owns its state and the parameters, as torch.optim does: one
            # foreach update over the group, in place, against the gradients.
            _, after = opt.step_tensors(ps, states, grads, hyper, own=True, along=-1.0)
            for state, new in zip(states, after):
                state.update(new)
        return loss

    def __repr__(self) -> str:
        return f"LensOptimizer({self.optimiser!r}, groups={len(self.param_groups)})"


def _names(compiled: CompiledLoss) -> dict[str, dict[str, str]]:
    """``{edge: {parameter name: full dotted name}}`` for the trainable parameters."""
    grouped: dict[str, dict[str, str]] = {}
    for full, _ in compiled.named_parameters():
        head, _, rest = full.partition(".")
        edge, _, inner = rest.partition(".") if head == "maps" else (full, "", "")
        grouped.setdefault(edge, {})[inner or full] = full
    return grouped


def diagram_loss(compiled: CompiledLoss, name: str = "diagram") -> Para:
    """The compiled diagram's composite loss as a parametric lens ``P × Batch → L`` (see the module notes).

    The parameters start as detached copies of the modules' current values. A loss
    compiled with ``fuse=True`` is refused (:class:`~learning_diagrams.core.errors.OptionError`):
    its families' stacked tensors are no attributes that ``functional_call`` can replace.
    """
    if getattr(compiled, "fused", None):
        edges = ", ".join(e for family in compiled.fused for e in family.family.edges[:3])
        raise OptionError(
            f"diagram_loss takes a loss compiled without fuse=True; this one fuses families ({edges}, ...) "
            f"whose stacked parameters functional_call cannot replace: compile the diagram again without fuse"
        )
    names = _names(compiled)
    current = dict(compiled.named_parameters())
    params = {edge: {k: current[full].detach().clone() for k, full in inner.items()} for edge, inner in names.items()}

    def total(p: dict[str, Any], batch: Any) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        flat = {names[e][k]: v for e, inner in p.items() for k, v in inner.items()}
        out = functional_call(compiled, flat, (batch,))
        return out.total, {k: t.detach() for k, t in out.terms.items()}

    def fwd(pa: tuple[dict, Any]) -> tuple[torch.Tensor, Any]:
        p, batch = pa
        # torch annotates vjp's result as either arity; with has_aux it is the triple.
        with_aux = cast("tuple[torch.Tensor, Callable[..., Any], Any]", vjp(lambda q: total(q, batch), p, has_aux=True))
        loss, pullback, _terms = with_aux
        return loss, pullback

    def bwd(pullback: Any, dl: torch.Tensor) -> tuple[dict, None]:
        return pullback(dl)[0], None

    return Para(Lens(fwd, bwd, name, lambda pa: total(*pa)[0]), params, name)


def diagram_learner(
    compiled: CompiledLoss, optimiser: Optimiser, rate: Para | None = None, *, state_key: str = "state"
) -> Learner:
    """``optimiser(diagram_loss(compiled)) >> rate``: :func:`~.learner.train` it on batches (``None`` draws)."""
    return Learner(diagram_loss(compiled), None, optimiser, learning_rate(1.0) if rate is None else rate, state_key)


def load_params(compiled: CompiledLoss, params: dict[str, Any]) -> None:
    """Copy parameters ``{edge: {name: tensor}}`` (as :func:`diagram_loss` names them) into the modules."""
    names = _names(compiled)
    current = dict(compiled.named_parameters())
    with torch.no_grad():
        for edge, inner in params.items():
            for k, v in inner.items():
                current[names[edge][k]].copy_(v)
