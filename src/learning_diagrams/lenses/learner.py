"""Learners: a model, a loss map, a learning rate and an optimiser, composed.

Supervised learning is the closed parametric lens (Cruttwell et al., figure 2)::

    optimiser(model) >> loss map >> learning rate   :   (P × S) × A → 1

whose parameter port also takes the label (the loss map's parameter). One
training step is one pass through it: forward from the input to the loss,
then backward from the change that the learning rate asks of the loss to the
updated parameters and state, which the optimiser's backward part returns.
:func:`supervised` builds a :class:`Learner`, :func:`train` runs it over batches.

The same pieces, plugged differently, give the paper's other examples:

* **deep dreaming** (:func:`dream`): the input becomes the parameter
  (:func:`input_as_parameter`) and the model's parameters become the input; the
  optimiser then updates an image to raise a class score (a dot product with a
  one-hot label, maximised);
* **a Wasserstein GAN** (:func:`wgan`): the critic is trained to maximise
  ``mean C(real) - mean C(fake)`` (a dot product with the label ``±1/N``) by an
  optimiser composed with a clipping reparametrisation; the generator's loss map
  is the critic itself, with the critic's current parameters plugged into the
  loss map's parameter port like a label, maximising ``mean C(G(z))``.

>>> import torch
>>> from learning_diagrams.lenses import parts, optim
>>> x = torch.randn(32, 2, generator=torch.Generator().manual_seed(0))
>>> y = x @ torch.tensor([[1.0], [-2.0]]) + 0.5
>>> learner = supervised(parts.dense(2, 1, "f", activation=None), parts.quadratic_error(), optim.sgd(lr=0.1))
>>> result = train(learner, [(x, y)] * 100)
>>> result.losses[0] > 1.0 > 1e-4 > result.losses[-1]
True
>>> learner.predict(torch.zeros(1, 2), result.params)
tensor([[0.5000]])
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any, Iterable, NamedTuple

import torch

from ..core.errors import ConflictError, TypeMismatchError
from .lens import Lens
from .optim import Optimiser
from .para import Para
from .parts import dot_product, learning_rate

__all__ = ["Learner", "Trained", "supervised", "train", "input_as_parameter", "dream", "Dreamed", "wgan", "WGAN"]


class Trained(NamedTuple):
    """What :func:`train` returns: the model's parameters, the loss at each step, and the optimiser's state."""

    params: dict[str, Any]
    losses: list[float]
    state: Any


@dataclass(frozen=True, eq=False)
class Learner:
    """``optimiser(model) >> loss_map >> rate``, with what a training loop needs.

    Parameters
    ----------
    model : Para
        ``P × A → B``.
    loss_map : Para, optional
        ``B → L``, whose parameter named ``label_key`` is the label; its other
        parameters (a learned loss's, such as a critic's) are held fixed: they are
        plugged in at each step and their changes dropped. ``None`` when the model's
        output already is the loss (a compiled diagram, :mod:`.bridges`).
    optimiser : Optimiser
        Reparametrises the model's parameter port.
    rate : Para or Lens
        A learning-rate lens ``L ⇄ 1`` (:func:`~.parts.learning_rate`); a plain lens is lifted.
    state_key : str
        The name of the optimiser's state among the learner's parameters.
    label_key : str, optional
        The loss map's label parameter; by default its only parameter.
    """

    model: Para
    loss_map: Para | None
    optimiser: Optimiser
    rate: Para
    state_key: str = "state"
    label_key: str | None = None

    def __post_init__(self) -> None:
        if isinstance(self.rate, Lens):
            object.__setattr__(self, "rate", Para.lift(self.rate))
        if self.loss_map is not None and self.label_key is None:
            if len(self.loss_map.params) != 1:
                raise ConflictError(
                    f"loss map {self.loss_map.name} has parameters {sorted(self.loss_map.params)}: say which "
                    f"one is the label, e.g. supervised(model, loss_map, optimiser, label_key='label')"
                )
            object.__setattr__(self, "label_key", next(iter(self.loss_map.params)))

    @cached_property
    def open(self) -> Para:
        """``optimiser(model) >> loss_map``: from the parameters, state and label to the loss."""
        reparametrised = self.optimiser.reparametrise(self.model, self.state_key)
        return reparametrised if self.loss_map is None else reparametrised >> self.loss_map

    @cached_property
    def para(self) -> Para:
        """The closed learner ``optimiser(model) >> loss_map >> rate``: its backward pass is one step."""
        return self.open >> self.rate

    @cached_property
    def _donating(self) -> Para:
        """:attr:`open` with the optimiser's backward part overwriting what it updates (``Optimiser.lens(donate=True)``)."""
        reparametrised = self.optimiser.reparametrise(self.model, self.state_key, donate=True)
        return reparametrised if self.loss_map is None else reparametrised >> self.loss_map

    @property
    def initial(self) -> dict[str, Any]:
        """The starting parameters and state: ``{**model.params, state_key: state}``."""
        return {**self.model.params, self.state_key: self.open.params[self.state_key]}

    def step(
        self,
        q: dict[str, Any],
        x: Any,
        y: Any = None,
        loss_params: dict[str, Any] | None = None,
        *,
        donate: bool = False,
    ) -> tuple[dict[str, Any], torch.Tensor]:
        """One step from parameters and state ``q`` on input ``x`` and label ``y``: ``(new q, loss)``.

        ``loss_params`` override the loss map's fixed parameters. This runs the
        closed learner :attr:`para` in two halves, to read the loss between them.
        ``donate`` gives ``q`` up: its tensors may be overwritten by the new values
        (in place, as ``torch.optim`` steps), so ``q`` must not be read afterwards,
        nor be shared with anything that is (:func:`train` donates after its first step).
        """
        fixed = {} if self.loss_map is None else {**self.loss_map.params, **(loss_params or {})}
        if self.label_key is not None:
            fixed[self.label_key] = y
        learner = self._donating if donate else self.open
        loss, residual = learner.fwd(({**q, **fixed}, x))
        _, r = self.rate.fwd(({}, loss))
        _, dloss = self.rate.bwd(r, ())
        new, _ = learner.bwd(residual, dloss)
        return {k: new[k] for k in q}, loss.detach()

    def predict(self, x: Any, params: Trained | dict[str, Any] | None = None) -> Any:
        """The model's output on ``x`` with the given (by default its initial) parameters."""
        if isinstance(params, Trained):
            params = params.params
        params = self.model.params if params is None else {k: params[k] for k in self.model.params}
        with torch.no_grad():
            return self.model(x, params)


def supervised(
    model: Para,
    loss_map: Para,
    optimiser: Optimiser,
    rate: Para | None = None,
    *,
    state_key: str = "state",
    label_key: str | None = None,
) -> Learner:
    """The supervised learner ``optimiser(model) >> loss_map >> rate``.

    ``rate`` defaults to ``learning_rate(1.0)``: descent, with the step size the
    optimiser's own ``lr`` (as in ``torch.optim``).
    """
    return Learner(model, loss_map, optimiser, learning_rate(1.0) if rate is None else rate, state_key, label_key)


def train(
    learner: Learner, batches: Iterable[Any], *, epochs: int = 1, start: Trained | dict[str, Any] | None = None
) -> Trained:
    """Run ``learner`` over ``batches`` (``epochs`` times): forward, backward, update for each.

    Each batch is ``(x, y)`` when the learner has a label, else the input alone.
    ``start`` continues from an earlier result (parameters and optimiser state).
    Returns the trained model parameters, the loss at each step (before its
    update) and the optimiser state.

    With ``epochs > 1`` the batches are gone over again each epoch, so they must
    be a collection (a list, a ``DataLoader``), not a one-shot iterator, which would
    be empty after the first epoch:

    >>> train(None, (b for b in []), epochs=3)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    learning_diagrams.core.errors.TypeMismatchError: train(..., epochs=3) ... a one-shot iterator (a generator), ...
    """
    if epochs > 1 and iter(batches) is batches:  # an iterator is its own iterator: it runs out after one pass
        raise TypeMismatchError(
            f"train(..., epochs={epochs}) goes over its batches {epochs} times, but they are a one-shot iterator "
            f"(a {type(batches).__name__}), empty after the first epoch; pass a list (list(batches)) or another "
            "collection"
        )
    if isinstance(start, Trained):
        q = {**start.params, learner.state_key: start.state}
    else:
        q = dict(learner.initial if start is None else start)
    losses: list[float] = []
    # After the first step every tensor of q is one the optimiser made (its batched
    # steps return new tensors), held by this loop alone: later steps may update it
    # in place, as torch.optim does, instead of allocating each tensor afresh.
    donate = False
    for _ in range(epochs):
        for batch in batches:
            x, y = batch if learner.label_key is not None else (batch, None)
            q, loss = learner.step(q, x, y, donate=donate)
            donate = learner.optimiser.step_leaves is not None
            losses.append(float(loss))
    state = q.pop(learner.state_key)
    return Trained(q, losses, state)


# -----------------------------------------------------------------------------
# Deep dreaming: the optimiser on the input.


def input_as_parameter(model: Para, x: Any, name: str = "input") -> Para:
    """``model`` with its ports exchanged: the parameter is ``{name: x}``, the input the model's parameters.

    Backward returns ``({name: dx}, dparams)``: reparametrised by an optimiser, it
    updates the input.
    """

    def fwd(pa: tuple[dict, Any]) -> tuple[Any, Any]:
        q, p = pa
        return model.lens.fwd((p, q[name]))

    def bwd(residual: Any, db: Any) -> tuple[dict, Any]:
        dp, dx = model.lens.bwd(residual, db)
        return {name: dx}, dp

    def get(pa: tuple[dict, Any]) -> Any:
        return model.lens((pa[1], pa[0][name]))

    return Para(Lens(fwd, bwd, f"dream({model.name})", get), {name: x}, f"dream({model.name})")


class Dreamed(NamedTuple):
    """What :func:`dream` returns: the final input and the target's score before each step."""

    image: torch.Tensor
    scores: list[float]


def dream(model: Para, image: torch.Tensor, target: int, optimiser: Optimiser, *, steps: int = 100) -> Dreamed:
    """Deep dreaming: update ``image`` (a batch) to raise the model's output at class ``target``.

    The model's parameters stay fixed (they are the input now); the loss map is a
    dot product with the one-hot label of ``target`` (the summed class score), and
    the learning rate maximises. An optimiser with ``.clipped(c)`` keeps the pixels
    in ``[-c, c]``.
    """
    dreaming = input_as_parameter(model, image, "image")
    out = model(image)
    label = torch.zeros_like(out)
    label[..., target] = 1.0
    learner = Learner(dreaming, dot_product(), optimiser, learning_rate(1.0, maximise=True))
    result = train(learner, [(model.params, label)] * steps)
    return Dreamed(result.params["image"], result.losses)


# -----------------------------------------------------------------------------
# A Wasserstein GAN.


class WGAN(NamedTuple):
    """What :func:`wgan` returns: both players' parameters and the critic's Wasserstein estimates.

    ``estimates[i]`` is ``mean C(real) - mean C(fake)`` at critic step ``i`` (before its update).
    """

    generator: dict[str, Any]
    critic: dict[str, Any]
    estimates: list[float]


def wgan(
    generator: Para,
    critic: Para,
    data: torch.Tensor,
    *,
    noise_dim: int,
    generator_optimiser: Optimiser,
    critic_optimiser: Optimiser,
    clip: float = 0.01,
    n_critic: int = 5,
    steps: int = 200,
    batch_size: int = 64,
    seed: int = 0,
) -> WGAN:
    """Train a Wasserstein GAN with weight clipping on samples ``data`` ``(M, d)``.

    Each step trains the critic ``n_critic`` times, then the generator once:

    * critic learner: ``critic_optimiser.clipped(clip)(critic) >> dot_product >> rate(maximise)``
      on the batch ``[real; G(z)]`` with the label ``[+1/N; -1/N]``, i.e. it maximises
      ``mean C(real) - mean C(fake)``; the clamp to ``[-clip, clip]`` is a
      reparametrisation composed with the optimiser;
    * generator learner: ``generator_optimiser(generator) >> (critic >> dot_product) >> rate(maximise)``
      on noise ``z`` with the label ``1/N``: the critic is the generator's (learned)
      loss map, its current parameters plugged in and held fixed, and the generator
      maximises ``mean C(G(z))``.

    ``generator`` and ``critic`` need distinct parameter names. The critic maps ``(N, d)`` to ``(N, 1)``.
    """
    g = torch.Generator().manual_seed(seed)
    critic_learner = Learner(
        critic, dot_product(), critic_optimiser.clipped(clip), learning_rate(1.0, maximise=True), "critic_state"
    )
    generator_learner = Learner(
        generator,
        critic >> dot_product(),
        generator_optimiser,
        learning_rate(1.0, maximise=True),
        "generator_state",
        label_key="label",
    )
    qc, qg = critic_learner.initial, generator_learner.initial
    n = batch_size
    sign = torch.cat([torch.full((n, 1), 1.0 / n), torch.full((n, 1), -1.0 / n)])
    estimates: list[float] = []
    for _ in range(steps):
        gen = {k: qg[k] for k in generator.params}
        for _ in range(n_critic):
            real = data[torch.randint(len(data), (n,), generator=g)]
            with torch.no_grad():
                fake = generator(torch.randn(n, noise_dim, generator=g), gen)
            qc, estimate = critic_learner.step(qc, torch.cat([real, fake]), sign)
            estimates.append(float(estimate))
        crit = {k: qc[k] for k in critic.params}
        qg, _ = generator_learner.step(qg, torch.randn(n, noise_dim, generator=g), sign[:n], loss_params=crit)
    return WGAN({k: qg[k] for k in generator.params}, {k: qc[k] for k in critic.params}, estimates)
