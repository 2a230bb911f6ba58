"""One training step of ``ld.fit``, laid out once per stage: the work a hand-written loop does, and its checks.

What happens at each step, in order: the batches are moved to the device; the
compiled loss runs under autocast when ``precision`` asks for it; the total
(divided by ``accumulate`` when it is more than 1) is back-propagated (through a
``GradScaler`` for fp16); every ``accumulate`` steps (and at the end of an
epoch) gradients are unscaled, checked, clipped to ``clip_grad_norm``, the
optimisers step and are zeroed, and step-interval schedulers step.

Everything that does not change from step to step (the autocast context, the
optimisers' parameters, the device) is worked out when the stage starts, so a
step adds to a hand-written loop only the non-finite checks of
:mod:`~learning_diagrams.training.nonfinite`: one test of the total and one of
the gradients per optimiser step, read with the logged values when there are
any (on a GPU, one synchronisation).

>>> import torch
>>> to_device({"N": (torch.ones(2), [torch.zeros(1)], "label")}, torch.device("cpu"))
{'N': (tensor([1., 1.]), [tensor([0.])], 'label')}
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from typing import Any

import torch

from ..torch import CompiledLoss
from ..torch.data import to_device
from .nonfinite import GradientCheck, Guard

__all__ = ["TrainingStep"]

#: The autocast dtype of each ``precision`` that has one.
_AUTOCAST = {"bf16": torch.bfloat16, "16": torch.float16}


class TrainingStep:
    """One step of a stage: forward, backward and, every ``accumulate`` steps, the optimisers.

    Parameters
    ----------
    loss : CompiledLoss
        The stage's loss (its own maps, for explaining a non-finite step).
    forward : callable
        What computes the losses: ``loss`` itself, or ``torch.compile(loss)``.
    optimizers, schedulers : sequences
        The stage's optimisers and their schedulers.
    scaler : torch.amp.GradScaler or None
        The loss scaler of fp16 training.
    guard : Guard
        The run's watch over non-finite numbers.
    device : torch.device
        Where batches are moved.
    precision : {"32", "bf16", "16"}
    accumulate : int
    clip_grad_norm : float or None
    scheduler_interval : {"epoch", "step"}
    """

    def __init__(
        self,
        *,
        loss: CompiledLoss,
        forward: Callable[..., Any],
        optimizers: Sequence[torch.optim.Optimizer],
        schedulers: Sequence[Any],
        scaler: torch.amp.GradScaler | None,
        guard: Guard,
        device: torch.device,
        precision: str,
        accumulate: int,
        clip_grad_norm: float | None,
        scheduler_interval: str,
    ):
        self.loss, self.forward, self.guard, self.device = loss, forward, guard, device
        self.optimizers, self.scaler = list(optimizers), scaler
        self.schedulers = list(schedulers) if scheduler_interval == "step" else []
        self.accumulate, self.clip_grad_norm = accumulate, clip_grad_norm
        self.params = [p for o in self.optimizers for g in o.param_groups for p in g["params"]]
        self.gradient_flags = GradientCheck(self.params)
        dtype = _AUTOCAST.get(precision)
        self.autocast: Callable[[], AbstractContextManager[Any]] = (
            (lambda: torch.autocast(device.type, dtype=dtype)) if dtype is not None else nullcontext
        )
        self._plain = dtype is None  # full precision: the forward pass runs in no context at all

    def __call__(self, batches: Mapping[str, Any], k: int, length: int, *, step: int, want: bool) -> dict[str, float]:
        """Step ``k`` (from 0) of an epoch of ``length`` steps, the run's step number ``step``.

        Returns the values to log when ``want``, else ``{}``: reading them is the one
        synchronisation of a step, and the finiteness checks ride on it.
        """
        guard, scaler = self.guard, self.scaler
        moved = to_device(batches, self.device)
        rng = guard.remember()
        if self._plain:
            total, terms = self.forward(moved)
        else:
            with self.autocast():
                total, terms = self.forward(moved)
        scaled = total / self.accumulate if self.accumulate != 1 else total  # x / 1 is x: no node for it
        (scaler.scale(scaled) if scaler is not None else scaled).backward()
        boundary = (k + 1) % self.accumulate == 0 or k + 1 == length
        flags: list[torch.Tensor] = []
        if boundary:
            if scaler is not None:
                for o in self.optimizers:
                    scaler.unscale_(o)
            else:  # with a GradScaler, overflowed gradients are its to skip (it lowers its scale)
                flags = self.gradient_flags(total)  # the total joins the gradients' check: one number
        values, finite = guard.check(
            total, terms, flags, want=want, boundary=boundary, params=self.params, covered=bool(flags)
        )
        if not finite:
            self.gradient_flags.reset()  # a flag it set stays set until then
        proceed = guard.apply(
            finite,
            boundary=boundary,
            step=step,
            explain=lambda: guard.explain(self.loss, moved, rng, self.autocast),
        )
        if boundary:
            if proceed:
                if self.clip_grad_norm is not None:
                    torch.nn.utils.clip_grad_norm_(self.params, self.clip_grad_norm)
                for o in self.optimizers:
                    scaler.step(o) if scaler is not None else o.step()
            for o in self.optimizers:
                o.zero_grad(set_to_none=True)
            if scaler is not None:
                scaler.update()
            for s in self.schedulers:
                s.step()
        return values
