"""Optimisers as stateful reparametrisations (Cruttwell et al., section on optimisers).

An optimiser is a lens ``(P × S, P × S) ⇄ (P, P')`` on the parameter port of a
model: its forward part hands the model the parameters it is to be evaluated
at (``p`` itself for most optimisers; the look-ahead point ``p + γs`` for the
paper's Nesterov momentum, :func:`lookahead_nesterov`) and keeps ``(p, s)``,
and its backward part turns the *change* ``p'`` that the backward pass
delivers at the parameter port into the *updated* parameters and state
``(p_new, s_new)``. Precomposing a model's parameter port with it
(:meth:`Optimiser.reparametrise`, a 2-cell of Para) gives a parametric lens
whose backward pass *is* one training step.

Parameters and states are named pytrees (nested dicts of tensors). A state
mirrors its parameters down to each tensor, where it holds a dict of that
tensor's state under torch's own names (``"step"``, ``"exp_avg"``,
``"exp_avg_sq"``, ``"sum"``, ``"square_avg"``, ``"momentum_buffer"``), so
one leaf's state is exactly what ``torch.optim`` keeps per parameter and
:class:`~learning_diagrams.lenses.bridges.LensOptimizer` reuses it.

A model's buffers (:func:`~learning_diagrams.lenses.derivative.from_module`)
sit among its parameters, and their change is an :class:`~.lens.Assign` of
their new value: every optimiser stores that value as it is and leaves the
leaf's state alone. Leaves that are not floating point (batch norm's count)
have no state and are handed to the model as they are.

Sign conventions
----------------
The paper writes learning as gradient *ascent* on the change that reaches the
parameters: the basic update is ``p ↦ p + p'``, and *descent* comes from the
learning-rate lens sending the change ``-α`` back into the loss
(:func:`~learning_diagrams.lenses.parts.learning_rate`). We keep that split:

* the change ``p'`` reaching an optimiser is ``dℓ · ∇ℓ`` where ``dℓ`` is what the
  learning-rate lens returns; with ``learning_rate(1.0)`` it is ``-∇ℓ``, the
  descent direction (``maximise=True`` gives ``+∇ℓ``, ascent);
* every optimiser *moves the parameters along* ``p'``: :func:`sgd` is
  ``p + lr · p'``, and Adam, AdaGrad, RMSprop and the momentum buffers keep
  their moments of ``p'``. With ``p' = -g`` each update is bit for bit
  ``torch.optim``'s update for the gradient ``g`` (negation is exact in floating
  point, and ``p'²`` equals ``g²``); the first moments and momentum buffers
  are torch's negated.

So the learning rate of ``torch.optim`` is the optimiser's ``lr``, and the
learning-rate lens carries the sign (and, for plain gradient descent, may carry
the scale instead: ``gradient_descent(lr=1.0)`` with ``learning_rate(α)`` is
the paper's ``p - α∇ℓ``).

Laws
----
Reparametrising twice is reparametrising once by the composite, and a step
of the reparametrised model is ``p + lr · p'``:

>>> import torch
>>> from learning_diagrams.lenses import Lens, Para
>>> scale = Para(Lens(lambda pa: (pa[0]["w"] * pa[1], pa), lambda pa, db: ({"w": pa[1] * db}, pa[0]["w"] * db)),
...              {"w": torch.tensor(3.0)}, "scale")
>>> learner = gradient_descent(lr=0.5).reparametrise(scale)
>>> sorted(learner.params)
['state', 'w']
>>> y, residual = learner.fwd((learner.params, torch.tensor(2.0)))
>>> new, dx = learner.bwd(residual, torch.tensor(-1.0))     # the change -1 at the output
>>> y, new["w"], dx                                          # w + 0.5 · (2 · -1)
(tensor(6.), tensor(2.), tensor(-3.))
>>> adam().init({"w": torch.zeros(2)})["w"]["step"]
tensor(0.)
>>> adam(lr=0.01).clipped(0.5)
adam(lr=0.01, betas=(0.9, 0.999), eps=1e-08, weight_decay=0.0, amsgrad=False).clipped(0.5)

The paper's Nesterov momentum has a forward part: the model sees ``p + γs``.

>>> opt = lookahead_nesterov(lr=0.1, momentum=0.5)
>>> p, s = {"w": torch.tensor(1.0)}, {"w": {"velocity": torch.tensor(2.0)}}
>>> opt.lens().fwd((p, s))[0], opt.lens()((p, s))       # 1 + 0.5 · 2
({'w': tensor(2.)}, {'w': tensor(2.)})
>>> opt.update(p, s, {"w": torch.tensor(-4.0)})        # s' = 0.5 · 2 + 0.1 · -4, p + s'
({'w': tensor(1.6000)}, {'w': {'velocity': tensor(0.6000)}})
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Callable, Iterator, Mapping

import torch

from ..core.errors import ConflictError, OptionError
from . import _foreach as foreach
from .lens import Assign, Lens
from .para import Para

__all__ = [
    "Optimiser",
    "clip",
    "sgd",
    "gradient_descent",
    "momentum",
    "nesterov",
    "lookahead_nesterov",
    "adagrad",
    "adam",
    "rmsprop",
    "tree_map",
]

Tree = Any
LeafInit = Callable[[torch.Tensor, Mapping[str, Any]], dict[str, Any]]
LeafStep = Callable[
    [torch.Tensor, dict[str, Any], torch.Tensor, Mapping[str, Any]], tuple[torch.Tensor, dict[str, Any]]
]
LeafGet = Callable[[torch.Tensor, dict[str, Any], Mapping[str, Any]], torch.Tensor]
Tensors = list[torch.Tensor]
States = list[dict[str, Any]]
LeavesStep = Callable[[Tensors, States, Tensors, Mapping[str, Any], bool, float], tuple[Tensors, States]]
LeavesGet = Callable[[Tensors, States, Mapping[str, Any]], Tensors]


def tree_map(fn: Callable[..., Any], tree: Tree, *rest: Tree) -> Tree:
    """``fn`` on every tensor of ``tree`` (nested dicts, tuples and lists), with the matching entries of ``rest``."""
    if isinstance(tree, dict):
        return {k: tree_map(fn, v, *(r[k] for r in rest)) for k, v in tree.items()}
    if isinstance(tree, (tuple, list)):
        return type(tree)(tree_map(fn, v, *(r[i] for r in rest)) for i, v in enumerate(tree))
    return fn(tree, *rest)


def _walk(leaf: Callable[..., tuple[Any, Any]], p: Tree, s: Tree, dp: Tree) -> tuple[Tree, Tree]:
    """Walk the parameters; at each tensor, its state is the dict at the same place in ``s``."""
    if isinstance(p, dict):
        pairs = {k: _walk(leaf, p[k], s[k], dp[k]) for k in p}
        return {k: v[0] for k, v in pairs.items()}, {k: v[1] for k, v in pairs.items()}
    if isinstance(p, (tuple, list)):
        entries = [_walk(leaf, *x) for x in zip(p, s, dp)]
        return type(p)(v[0] for v in entries), type(p)(v[1] for v in entries)
    return leaf(p, s, dp)


def _gather(p: Tree, s: Tree, dp: Tree, into: tuple[list, list, list], take: Callable[[Any, Any], bool]) -> None:
    """Append to ``into`` the ``(p, s, dp)`` of every tensor of ``p`` that ``take(p, dp)`` picks, in ``_walk``'s order.

    Leaves are handled in their parent's loop, not by a call each: a step walks
    every parameter tensor, and a Python call per tensor is most of its cost.
    """
    ps, ss, cs = into
    if not isinstance(p, (dict, tuple, list)):
        if take(p, dp):
            ps.append(p)
            ss.append(s)
            cs.append(dp)
        return
    for k, v in p.items() if isinstance(p, dict) else enumerate(p):
        if isinstance(v, (dict, tuple, list)):
            _gather(v, s[k], dp[k], into, take)
        elif take(v, dp[k]):
            ps.append(v)
            ss.append(s[k])
            cs.append(dp[k])


def _scatter(p: Tree, s: Tree, dp: Tree, stepped: Iterator[tuple[Any, Any]]) -> tuple[Tree, Tree]:
    """The new ``(params, state)``: each tensor's from ``stepped`` (in :func:`_gather`'s order), or its ``Assign``'s."""
    if not isinstance(p, (dict, tuple, list)):
        return (dp.value, s) if isinstance(dp, Assign) else next(stepped)
    new_p: dict[Any, Any] = {}
    new_s: dict[Any, Any] = {}
    for k, v in p.items() if isinstance(p, dict) else enumerate(p):
        d = dp[k]
        if isinstance(v, (dict, tuple, list)):
            new_p[k], new_s[k] = _scatter(v, s[k], d, stepped)
        elif isinstance(d, Assign):
            new_p[k], new_s[k] = d.value, s[k]
        else:
            new_p[k], new_s[k] = next(stepped)
    if isinstance(p, dict):
        return new_p, new_s
    return type(p)(new_p.values()), type(p)(new_s.values())


def _stepped(p: Any, dp: Any) -> bool:
    return not isinstance(dp, Assign)


def _stateful(p: Any) -> bool:
    """Whether a leaf has optimiser state: floating-point tensors do, counts and indices do not."""
    return isinstance(p, torch.Tensor) and (p.is_floating_point() or p.is_complex())


@dataclass(frozen=True, eq=False)
class Optimiser:
    """A stateful optimiser, given by what it does to one tensor.

    ``init_leaf(p, hyper)`` is the state of a fresh tensor ``p``;
    ``step_leaf(p, state, change, hyper) -> (p_new, state_new)`` is the backward
    map at one tensor (it must not modify its arguments). ``hyper`` holds the
    hyperparameters under torch's names, so that a torch parameter group can
    override them. ``get_leaf(p, state, hyper)``, when given, is the forward part
    at one tensor: the value the model is evaluated at (by default ``p``).
    ``clip``, when set, clamps the updated parameters to ``[-clip, clip]``
    (as :func:`clip` does), as a Wasserstein GAN's critic needs.

    ``step_leaves(ps, states, changes, hyper, own, along)`` and ``get_leaves(ps,
    states, hyper)``, when given, are ``step_leaf`` and ``get_leaf`` over lists of
    tensors at once (with ``torch._foreach_*``: one call per operation rather than
    one per operation and tensor), and every step uses them. They must agree with
    the single-tensor maps tensor by tensor, return new tensors unless ``own`` is
    true, and never modify the state dicts they are given; :meth:`step_tensors`
    says what ``own`` and ``along`` are. The library's optimisers have both.
    """

    name: str
    hyper: Mapping[str, Any]
    init_leaf: LeafInit = field(repr=False)
    step_leaf: LeafStep = field(repr=False)
    clip: float | None = None
    get_leaf: LeafGet | None = field(default=None, repr=False)
    step_leaves: LeavesStep | None = field(default=None, repr=False)
    get_leaves: LeavesGet | None = field(default=None, repr=False)

    # -- the maps -------------------------------------------------------------------
    def init(self, params: Tree) -> Tree:
        """The initial state of ``params``: one dict of named tensors per floating-point parameter tensor."""
        return tree_map(lambda p: self.init_leaf(p, self.hyper) if _stateful(p) else {}, params)

    def get(self, params: Tree, state: Tree) -> Tree:
        """The forward map: the parameters the model is evaluated at (``params`` itself without ``get_leaf``)."""
        look, looks = self.get_leaf, self.get_leaves
        if look is None:
            return params
        if looks is None:

            def leaf(p: Any, s: Any, _: Any) -> tuple[Any, None]:
                return (look(p, s, self.hyper) if _stateful(p) else p), None

            return _walk(leaf, params, state, params)[0]
        into: tuple[list, list, list] = ([], [], [])
        _gather(params, state, params, into, lambda p, _: _stateful(p))
        seen = iter(looks(into[0], into[1], self.hyper) if into[0] else [])
        return tree_map(lambda p: next(seen) if _stateful(p) else p, params)

    def update(self, params: Tree, state: Tree, change: Tree, *, donate: bool = False) -> tuple[Tree, Tree]:
        """The backward map: the parameters and state after a step along ``change``.

        An :class:`~.lens.Assign` change (a buffer's new value) is stored as it is,
        unclipped, and its leaf's state left untouched. The other tensors are
        stepped together (:meth:`step_tensors`). No argument is modified, unless
        ``donate``: then the caller gives ``params`` and ``state`` up, and their
        tensors are overwritten with the new values and returned (in place, as
        ``torch.optim`` steps; :func:`~.learner.train` donates after its first step,
        when the tensors it holds are ones the optimiser made).
        """
        into: tuple[Tensors, States, Tensors] = ([], [], [])
        _gather(params, state, change, into, _stepped)
        ps, ss, cs = into
        return _scatter(params, state, change, iter(zip(*self.step_tensors(ps, ss, cs, own=donate))))

    def step_tensors(
        self,
        ps: Tensors,
        states: States,
        changes: Tensors,
        hyper: Mapping[str, Any] | None = None,
        *,
        own: bool = False,
        along: float = 1.0,
    ) -> tuple[Tensors, States]:
        """The backward map on lists of tensors: their new values and states, clamped when :attr:`clip` is set.

        Through ``step_leaves`` when the optimiser has it, else ``step_leaf`` tensor by
        tensor. ``hyper`` overrides the optimiser's (a torch parameter group's).

        ``own``: the caller gives up ``ps`` and the states' tensors, and the new values
        are written into them, in place (what ``torch.optim`` does), so the lists
        returned hold the same tensors. Otherwise every tensor returned is new and
        nothing given is modified. Step counters are replaced, never written in
        place; tensors at the same count share one new counter.

        ``along``: ``1`` when ``changes`` are changes to move along (the convention of
        this module), ``-1`` when they are gradients to move against (torch's, as
        :class:`~.bridges.LensOptimizer` hands them over, with no pass to negate
        them). The batched steps then keep their moments of odd degree (Adam's first
        moment, the momentum buffers) in the convention of what they are given, that
        is as torch keeps them; negation being exact, the parameters are the same bit
        for bit.
        """
        h = self.hyper if hyper is None else hyper
        if not ps:
            return [], []
        if self.step_leaves is not None:
            new, after = self.step_leaves(ps, states, changes, h, own, along)
        else:
            if along != 1.0:
                changes = [c * along for c in changes]
            pairs = [self.step_leaf(p, dict(s), c, h) for p, s, c in zip(ps, states, changes)]
            new, after = [x[0] for x in pairs], [x[1] for x in pairs]
            if own:
                with torch.no_grad():
                    torch._foreach_copy_(ps, new)
                new = ps
        c = self.clip
        if c is not None:
            if not own:
                new = list(torch._foreach_clamp_min(new, -c))
            else:
                torch._foreach_clamp_min_(new, -c)
            torch._foreach_clamp_max_(new, c)
        return new, after

    def lens(self, *, donate: bool = False) -> Lens:
        """The optimiser as a lens ``P × S ⇄ P`` on pairs ``(params, state)``.

        Forward: ``(p, s) ↦ get(p, s)`` (``p`` for all but :func:`lookahead_nesterov`).
        Backward: ``((p, s), p') ↦ (p_new, s_new)``; with ``clip`` set, the clamp acts
        on the parameters the optimiser returns, as :func:`clip` composed after it
        would (but not on buffers). With ``donate``, the backward part overwrites the
        ``(p, s)`` its forward part kept (:meth:`update`): the same lens for a caller
        that gives them up, whose backward part may run once per forward pass.
        """
        return Lens(
            lambda ps: (self.get(*ps), ps),
            lambda ps, dp: self.update(ps[0], ps[1], dp, donate=donate),
            self.name,
            lambda ps: self.get(*ps),
        )

    def reparametrise(self, model: Para, state_key: str = "state", *, donate: bool = False) -> Para:
        """``model`` with its parameter port precomposed with this optimiser.

        The new parameters are ``{**model.params, state_key: state}``; the backward
        part of the result returns the *updated* parameters and state (not a change).
        Give each optimised part its own ``state_key`` when two are composed.
        ``donate`` reparametrises by :meth:`lens` ``(donate=True)``.
        """
        if state_key in model.params:
            raise ConflictError(
                f"{model.name} already has a parameter named {state_key!r}; pass another "
                f"state_key, e.g. optimiser.reparametrise(model, state_key={state_key + '_opt'!r})"
            )
        keys = tuple(model.params)
        pack = Lens(
            lambda q: (({k: q[k] for k in keys}, q[state_key]), None),
            lambda _, ps: {**ps[0], state_key: ps[1]},
            "pack",
        )
        r = replace(
            pack >> self.lens(donate=donate),
            name=self.name if self.clip is None else f"clip({self.clip:g})·{self.name}",
        )
        return model.reparametrise(r, {**model.params, state_key: self.init(model.params)})

    __call__ = reparametrise

    # -- variants -------------------------------------------------------------------
    def clipped(self, c: float) -> Optimiser:
        """This optimiser followed by clamping the parameters to ``[-c, c]``."""
        return replace(self, clip=float(c))

    def with_hyper(self, **hyper: Any) -> Optimiser:
        """The same optimiser with some hyperparameters changed."""
        unknown = set(hyper) - set(self.hyper)
        if unknown:
            raise OptionError(f"{self.name} has no hyperparameters {sorted(unknown)}; it has {sorted(self.hyper)}")
        return replace(self, hyper={**self.hyper, **hyper})

    def __repr__(self) -> str:
        """As the call that makes it, e.g. ``adam(lr=0.001, ...).clipped(0.01)``."""
        factory = "sgd" if self.name in ("gradient_descent", "momentum", "nesterov") else self.name
        args = ", ".join(f"{k}={v!r}" for k, v in self.hyper.items())
        return f"{factory}({args})" + ("" if self.clip is None else f".clipped({self.clip!r})")


def clip(c: float) -> Lens:
    """The clipping reparametrisation ``P × S ⇄ P × S``: forward the identity, backward clamps the new parameters.

    Its backward part receives *values* (what an optimiser returns), not changes.

    >>> clip(0.5).bwd(None, ({"w": torch.tensor([2.0, -0.1])}, {}))
    ({'w': tensor([ 0.5000, -0.1000])}, {})
    """
    return Lens(
        lambda ps: (ps, None),
        lambda _, ps: (tree_map(lambda t: t.clamp(-c, c), ps[0]), ps[1]),
        f"clip({c:g})",
    )


# -----------------------------------------------------------------------------
# The optimisers. Each step follows torch.optim's single-tensor update, op for
# op, with the change c = -grad in place of the gradient (see the module notes).


def _step_count(s: dict[str, Any]) -> tuple[torch.Tensor, float]:
    t = s["step"] + 1
    return t, float(t)


def _decay(p: torch.Tensor, c: torch.Tensor, h: Mapping[str, Any]) -> torch.Tensor:
    # torch: grad + wd · p; so the change is c - wd · p.
    return c.add(p, alpha=-h["weight_decay"]) if h["weight_decay"] != 0 else c


def _sgd_init(p: torch.Tensor, h: Mapping[str, Any]) -> dict[str, Any]:
    return {"momentum_buffer": None} if h["momentum"] != 0 else {}


def _sgd_step(p, s, c, h):
    c = _decay(p, c, h)
    if h["momentum"] != 0:
        buf = s["momentum_buffer"]
        # torch starts the buffer at the first gradient itself (no dampening).
        buf = c.detach().clone() if buf is None else buf.mul(h["momentum"]).add(c, alpha=1 - h["dampening"])
        s = {"momentum_buffer": buf}
        c = c.add(buf, alpha=h["momentum"]) if h["nesterov"] else buf
    return p.add(c, alpha=h["lr"]), s


def sgd(
    lr: float = 1e-3, momentum: float = 0.0, dampening: float = 0.0, nesterov: bool = False, weight_decay: float = 0.0
) -> Optimiser:
    """Stochastic gradient descent with optional momentum, as ``torch.optim.SGD``.

    Backward, at each tensor (with ``c = p'``, ``μ`` the momentum, ``τ`` the dampening)::

        b ← c on the first step, else μ b + (1 - τ) c
        p ← p + lr · (c + μ b)    (Nesterov)   or   p + lr · b   (momentum)   or   p + lr · c

    The paper's Nesterov momentum (:func:`lookahead_nesterov`) stores ``p`` and
    evaluates the model at the look-ahead point ``p + γs``; torch's (used here,
    forward the identity) is the same method with the stored parameter being that
    look-ahead point.
    """
    if nesterov and (momentum <= 0 or dampening != 0):
        raise OptionError("Nesterov momentum requires a momentum and zero dampening, as in torch.optim.SGD")
    name = "nesterov" if nesterov else "momentum" if momentum else "gradient_descent"
    hyper = dict(lr=lr, momentum=momentum, dampening=dampening, nesterov=nesterov, weight_decay=weight_decay)
    return Optimiser(name, hyper, _sgd_init, _sgd_step, step_leaves=foreach.sgd)


def gradient_descent(lr: float = 1e-3, weight_decay: float = 0.0) -> Optimiser:
    """Plain gradient descent ``p ← p + lr · p'`` (stateless); ``lr=1`` is the paper's update ``p + p'``."""
    return sgd(lr, weight_decay=weight_decay)


def momentum(lr: float = 1e-3, momentum: float = 0.9, dampening: float = 0.0, weight_decay: float = 0.0) -> Optimiser:
    """Momentum: :func:`sgd` with a momentum buffer in the state."""
    return sgd(lr, momentum, dampening, False, weight_decay)


def nesterov(lr: float = 1e-3, momentum: float = 0.9, weight_decay: float = 0.0) -> Optimiser:
    """Nesterov momentum as torch writes it: :func:`sgd` with ``nesterov=True``; forward the identity.

    The stored parameter is the look-ahead point of :func:`lookahead_nesterov`
    (the paper's form): see there for the change of variables between the two.
    """
    return sgd(lr, momentum, 0.0, True, weight_decay)


def _lookahead_init(p, h):
    return {"velocity": torch.zeros_like(p)}


def _lookahead_get(p, s, h):
    return p.add(s["velocity"], alpha=h["momentum"])


def _lookahead_step(p, s, c, h):
    # The change arrived at the look-ahead point, where torch's weight decay is taken too.
    c = _decay(_lookahead_get(p, s, h), c, h)
    v = s["velocity"].mul(h["momentum"]).add(c, alpha=h["lr"])
    return p.add(v), {"velocity": v}


def lookahead_nesterov(lr: float = 1e-3, momentum: float = 0.9, weight_decay: float = 0.0) -> Optimiser:
    """Nesterov momentum as the paper (and Sutskever et al., 2013) write it: the model sees ``p + γs``.

    The state ``s`` is the velocity (``"velocity"``, zero at first), ``γ`` the momentum::

        forward    (p, s) ↦ p + γ s
        backward   s ← γ s + lr · c,   p ← p + s        (c = p', the change at p + γs)

    the lens (get, put) of the paper with its learning rate moved into ``lr``.
    It is torch's Nesterov (:func:`nesterov`, ``torch.optim.SGD(nesterov=True)``)
    after the change of variables ``p_torch = p + γs``: started from the same
    parameters, the two take the gradient ``g`` at the same points and make the
    same steps, torch's momentum buffer being ``b = -s / lr``. (With ``c = -g``:
    ``s₊ = γs - lr·g = -lr·b₊`` where ``b₊ = γb + g``, and
    ``p₊ + γs₊ = p + (1 + γ)s₊ = (p + γs) - lr·(g + γb₊)``, torch's step.)
    Weight decay is taken at the look-ahead point, as torch takes it at its
    parameter. A ``torch.optim`` optimiser stores one tensor per parameter, so this
    form has no :class:`~.bridges.LensOptimizer`; use :func:`nesterov` there.
    """
    hyper = dict(lr=lr, momentum=momentum, weight_decay=weight_decay)
    return Optimiser(
        "lookahead_nesterov",
        hyper,
        _lookahead_init,
        _lookahead_step,
        get_leaf=_lookahead_get,
        step_leaves=foreach.lookahead,
        get_leaves=foreach.lookahead_get,
    )


def _adagrad_init(p, h):
    return {"step": torch.tensor(0.0), "sum": torch.full_like(p, h["initial_accumulator_value"])}


def _adagrad_step(p, s, c, h):
    t, step = _step_count(s)
    c = _decay(p, c, h)
    clr = h["lr"] / (1 + (step - 1) * h["lr_decay"])
    total = s["sum"].addcmul(c, c, value=1)
    std = total.sqrt().add(h["eps"])
    return p.addcdiv(c, std, value=clr), {"step": t, "sum": total}


def adagrad(
    lr: float = 1e-2,
    lr_decay: float = 0.0,
    weight_decay: float = 0.0,
    initial_accumulator_value: float = 0.0,
    eps: float = 1e-10,
) -> Optimiser:
    """AdaGrad, as ``torch.optim.Adagrad``: ``G ← G + c²``, ``p ← p + lr_t · c / (√G + ε)``.

    ``G`` starts at ``initial_accumulator_value``; ``lr_t = lr / (1 + (t - 1) · lr_decay)``.
    """
    hyper = dict(
        lr=lr,
        lr_decay=lr_decay,
        weight_decay=weight_decay,
        initial_accumulator_value=initial_accumulator_value,
        eps=eps,
    )
    return Optimiser("adagrad", hyper, _adagrad_init, _adagrad_step, step_leaves=foreach.adagrad)


def _adam_init(p, h):
    s = {"step": torch.tensor(0.0), "exp_avg": torch.zeros_like(p), "exp_avg_sq": torch.zeros_like(p)}
    if h["amsgrad"]:
        s["max_exp_avg_sq"] = torch.zeros_like(p)
    return s


def _adam_step(p, s, c, h):
    t, step = _step_count(s)
    beta1, beta2 = h["betas"]
    c = _decay(p, c, h)
    m = s["exp_avg"].lerp(c, 1 - beta1)
    v = s["exp_avg_sq"].mul(beta2).addcmul(c, c, value=1 - beta2)
    new = {"step": t, "exp_avg": m, "exp_avg_sq": v}
    bias_correction1 = 1 - beta1**step
    bias_correction2 = 1 - beta2**step
    step_size = h["lr"] / bias_correction1
    if h["amsgrad"]:
        v = new["max_exp_avg_sq"] = torch.maximum(s["max_exp_avg_sq"], v)
    denom = (v.sqrt() / bias_correction2**0.5).add(h["eps"])  # ε after the bias correction, as torch
    return p.addcdiv(m, denom, value=step_size), new


def adam(
    lr: float = 1e-3,
    betas: tuple[float, float] = (0.9, 0.999),
    eps: float = 1e-8,
    weight_decay: float = 0.0,
    amsgrad: bool = False,
) -> Optimiser:
    """Adam, as ``torch.optim.Adam``; the state holds the step counter ``t`` and both moments.

    ``m ← β₁ m + (1 - β₁) c``, ``v ← β₂ v + (1 - β₂) c²``, and
    ``p ← p + (lr / (1 - β₁ᵗ)) · m / (√v / √(1 - β₂ᵗ) + ε)``.
    """
    hyper = dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay, amsgrad=amsgrad)
    return Optimiser("adam", hyper, _adam_init, _adam_step, step_leaves=foreach.adam)


def _rmsprop_init(p, h):
    s = {"step": torch.tensor(0.0), "square_avg": torch.zeros_like(p)}
    if h["momentum"] > 0:
        s["momentum_buffer"] = torch.zeros_like(p)
    if h["centered"]:
        s["grad_avg"] = torch.zeros_like(p)
    return s


def _rmsprop_step(p, s, c, h):
    t, _ = _step_count(s)
    c = _decay(p, c, h)
    a = h["alpha"]
    new = {"step": t, "square_avg": s["square_avg"].mul(a).addcmul(c, c, value=1 - a)}
    if h["centered"]:
        g = new["grad_avg"] = s["grad_avg"].lerp(c, 1 - a)
        avg = new["square_avg"].addcmul(g, g, value=-1).sqrt()
    else:
        avg = new["square_avg"].sqrt()
    avg = avg.add(h["eps"])
    if h["momentum"] > 0:
        buf = new["momentum_buffer"] = s["momentum_buffer"].mul(h["momentum"]).addcdiv(c, avg)
        return p.add(buf, alpha=h["lr"]), new
    return p.addcdiv(c, avg, value=h["lr"]), new


def rmsprop(
    lr: float = 1e-2,
    alpha: float = 0.99,
    eps: float = 1e-8,
    weight_decay: float = 0.0,
    momentum: float = 0.0,
    centered: bool = False,
) -> Optimiser:
    """RMSprop, as ``torch.optim.RMSprop``: ``v ← α v + (1 - α) c²``, ``p ← p + lr · c / (√v + ε)``."""
    hyper = dict(lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay, momentum=momentum, centered=centered)
    return Optimiser("rmsprop", hyper, _rmsprop_init, _rmsprop_step, step_leaves=foreach.rmsprop)
