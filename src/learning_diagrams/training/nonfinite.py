"""What a training run does when a loss, a term, a gradient or a weight is NaN or infinite.

The trainer's option ``on_nonfinite`` picks one of three answers, at the first
step whose total (so any term) or gradient is not finite:

``"raise"`` (the default)
    stop with :class:`~learning_diagrams.core.errors.NonFiniteError`, before the
    optimisers step, naming the step, the term and the first edge along its
    paths whose output was not finite (or the batch, or the loss, or the edge
    at which the gradient turns non-finite);
``"skip"``
    leave the optimisers alone for that step (gradients are dropped) and count
    it, as ``torch.amp.GradScaler`` does with an overflow; after ``max_skips``
    consecutive skipped steps, raise as ``"raise"`` would. A run that skipped
    steps warns once at its end, naming the first;
``"warn"``
    warn (a :class:`RuntimeWarning` naming the same things) and go on.

Finding *where* costs a second evaluation of the step (:meth:`Guard.explain`),
with the random state and the buffers of before the step, so normal steps pay
only for one check of the total and one of the gradients
(:func:`gradient_flags`: one pass over them, exact element by element, no
synchronisation): both are folded into the numbers fetched for the logs, or,
when nothing is logged, into one fetch per optimiser step.

Whatever the answer, a checkpoint whose weights are not finite is never written
(:meth:`Guard.refuse_checkpoint`), so retention never deletes the last finite
one.

>>> guard = Guard("skip", max_skips=2, device=torch.device("cpu"))
>>> values, finite = guard.check(torch.tensor(1.0), {"x·f ≤ y": torch.tensor(1.0)}, [torch.tensor(0.0)],
...                              want=True, boundary=True)
>>> values, finite
({'total': 1.0, 'x·f ≤ y': 1.0}, True)
"""

from __future__ import annotations

import math
import operator
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from typing import Any

import torch
from torch import nn

from ..core.errors import NonFiniteError, OptionError
from ..core.messages import NONFINITE_CHECKPOINT, NONFINITE_WEIGHTS, listed
from ..torch import CompiledLoss
from ..torch.finite import nonfinite_maps
from . import distributed

__all__ = ["ON_NONFINITE", "Guard", "GradientCheck", "gradient_flags", "gradient_norms", "gradients_finite"]

#: The values of the trainer's ``on_nonfinite`` option.
ON_NONFINITE = ("raise", "skip", "warn")

_HINT = (
    " (on_nonfinite='skip' skips such steps and 'warn' goes on; a lower lr or clip_grad_norm "
    "helps a run whose weights diverge)"
)
_EARLIER = "the total loss of a step since the last optimiser step was not finite"
_EARLIER_GONE = (
    "that step's batch is no longer held, so where cannot be told; with log_every=1 (or the progress "
    "bar) every step is checked as it runs"
)
_RERUN_FINITE = (
    "re-running the step found every value and gradient finite: the non-finite number came from "
    "random draws or from state that a map keeps"
)


def gradient_flags(params: Iterable[torch.Tensor]) -> list[torch.Tensor]:
    """Numbers, on the gradients' devices (no synchronisation), all 0 when every gradient of ``params`` is finite.

    One 0-d tensor per device, 1 when a gradient element there is NaN or
    infinite: exact element by element (a norm may overflow on finite elements)
    and one pass over the gradients, by the kernel ``torch.amp.GradScaler`` checks
    them with (``torch._amp_foreach_non_finite_check_and_unscale_``), given a
    scale of 1, which leaves every number as it is. Gradients that kernel does not
    take (sparse or complex) get a flag each.

    >>> w = torch.zeros(3, requires_grad=True)
    >>> w.grad = torch.tensor([1.0, float("nan"), 2.0])
    >>> [float(f) for f in gradient_flags([w])], w.grad.tolist()[0]
    ([1.0], 1.0)
    """
    by_device: dict[torch.device, dict[torch.dtype, list[torch.Tensor]]] = {}
    flags: list[torch.Tensor] = []
    for p in params:
        g = p.grad
        if g is None:
            continue
        if g.is_sparse or g.is_complex() or not g.is_floating_point():
            values = g.coalesce().values() if g.is_sparse else g
            flags.append(torch.logical_not(torch.isfinite(values).all()).to(torch.float32))
        else:
            by_device.setdefault(g.device, {}).setdefault(g.dtype, []).append(g)
    for device, by_dtype in by_device.items():
        found = torch.zeros((), device=device)
        scale = torch.ones((), device=device)
        for grads in by_dtype.values():  # the kernel takes one dtype at a time, as GradScaler gives it
            torch._amp_foreach_non_finite_check_and_unscale_(grads, found, scale)
        flags.append(found)
    return flags


class GradientCheck:
    """:func:`gradient_flags` of a fixed list of parameters, grouped by device and dtype once.

    A trainer checks the same parameters at every optimiser step: their grouping
    (a gradient has its parameter's device and dtype), a scale of 1 per device and
    the flag the kernel sets are made when the check is, so a call only gathers
    the gradients and runs the kernel. A flag, once set, stays set until
    :meth:`reset` (a step that found a non-finite number calls it). Gradients the
    kernel does not take (sparse or complex) make the call fall back on
    :func:`gradient_flags`.

    >>> w = torch.zeros(2, requires_grad=True)
    >>> check = GradientCheck([w])
    >>> w.grad = torch.tensor([1.0, 2.0])
    >>> [float(f) for f in check()]
    [0.0]
    >>> w.grad = torch.tensor([1.0, float("inf")])
    >>> [float(f) for f in check()]
    [1.0]
    >>> check.reset()
    >>> w.grad = torch.tensor([1.0, 2.0])
    >>> [float(f) for f in check()]
    [0.0]
    """

    def __init__(self, params: Iterable[torch.Tensor]):
        self.params = list(params)
        groups: dict[torch.device, dict[torch.dtype, list[torch.Tensor]]] = {}
        for p in self.params:
            groups.setdefault(p.device, {}).setdefault(p.dtype, []).append(p)
        self._flags = [torch.zeros((), device=device) for device in groups]
        #: The device and dtype of the first kernel call's gradients, which a step's total may join.
        self._first = next(((d, t) for d, by_dtype in groups.items() for t in by_dtype), None)
        # One kernel call per device and dtype, laid out flat: (parameters, the device's flag, its scale of 1).
        self._calls = [
            (params, found, torch.ones((), device=device))
            for found, (device, by_dtype) in zip(self._flags, groups.items())
            for params in by_dtype.values()
        ]

    def __call__(self, total: torch.Tensor | None = None) -> list[torch.Tensor]:
        """One flag per device, 0 when every gradient there is finite (see :func:`gradient_flags`).

        With ``total`` (a step's loss), the flags also cover it: where it has the device and
        dtype of the first gradients it joins their kernel call, so that one check, and one
        number read, tells whether a step may go on (a step that finds a flag set then looks
        at the total alone to say which was not finite).
        """
        extra = None if total is None else total.detach()
        try:
            for k, (params, found, scale) in enumerate(self._calls):
                grads = list(map(_GRAD, params))  # gathered without a loop in Python
                if k == 0 and extra is not None and (extra.device, extra.dtype) == self._first:
                    grads.append(extra)  # the kernel multiplies it by 1 in place: its value stays
                    extra = None
                try:  # every parameter has a gradient, as a rule
                    torch._amp_foreach_non_finite_check_and_unscale_(grads, found, scale)
                except TypeError:  # some have none (a map no batch reached): the kernel took nothing
                    grads = [g for g in grads if g is not None]
                    if grads:
                        torch._amp_foreach_non_finite_check_and_unscale_(grads, found, scale)
        except (RuntimeError, NotImplementedError, TypeError):  # sparse or complex gradients
            self.reset()  # whatever the kernel set before it failed
            extra = None if total is None else total.detach()
            flags = gradient_flags(self.params)
            return flags if extra is None else [*flags, torch.logical_not(torch.isfinite(extra)).to(torch.float32)]
        if extra is not None:  # another device or dtype than the first gradients' (or no gradient at all)
            return [*self._flags, torch.logical_not(torch.isfinite(extra)).to(torch.float32)]
        return self._flags

    def reset(self) -> None:
        """Clear the flags, after a step that found a non-finite number (they stay set until then)."""
        for found in self._flags:
            found.zero_()


#: A parameter's gradient (``operator.attrgetter``: gathering them calls no Python function).
_GRAD = operator.attrgetter("grad")


def gradient_norms(params: Iterable[torch.Tensor]) -> list[torch.Tensor]:
    """The 2-norm of each gradient of ``params``, on its device (no synchronisation).

    A norm is finite when every element of its gradient is, and NaN and infinities
    propagate through it; it may also overflow on finite elements (about 1e19 in
    float32), which :func:`gradients_finite` then tells apart. (The 2-norm, not the
    max-norm: ``torch._foreach_norm`` computes it several times faster on a CPU.)
    """
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return []
    try:
        return list(torch._foreach_norm(grads))  # one kernel per device and dtype
    except (RuntimeError, TypeError, NotImplementedError):  # pragma: no cover - sparse gradients, say
        return [torch.linalg.vector_norm(g.coalesce().values() if g.is_sparse else g) for g in grads]


def _held(params: Iterable[torch.Tensor]) -> str:
    """What the first non-finite gradient of ``params`` holds, as its 2-norm says it: ``"nan"`` or ``"inf"``."""
    norms = [n for n in gradient_norms(params) if not math.isfinite(n)]
    return str(float(norms[0])) if norms else "nan"


def gradients_finite(params: Iterable[torch.Tensor]) -> bool:
    """Whether every gradient element of ``params`` is finite: exact, and slower than a norm."""
    return all(bool(torch.isfinite(p.grad).all()) for p in params if p.grad is not None)


class Guard:
    """The trainer's watch over non-finite numbers: checks, counts, explains, refuses.

    Parameters
    ----------
    mode : {"raise", "skip", "warn"}
        See the module docstring.
    max_skips : int
        With ``"skip"``, how many consecutive skipped steps end the run.
    device : torch.device
        Where the run computes: on a CPU numbers are read one by one (no device
        to wait for), elsewhere stacked and fetched at once.
    distributed : bool
        Whether processes must agree: then every decision is taken at an optimiser
        step, on flags summed over the processes.
    """

    def __init__(self, mode: str, *, max_skips: int, device: torch.device, distributed: bool = False):
        if mode not in ON_NONFINITE:
            raise OptionError(f"on_nonfinite {mode!r} is not one of {', '.join(map(repr, ON_NONFINITE))}")
        self.mode, self.max_skips, self.device, self.distributed = mode, max_skips, device, distributed
        self.skipped = 0  # optimiser steps skipped in the run
        self.consecutive = 0  # of them, since the last step taken
        self.first_skip: str | None = None  # why the first was skipped, for the warning at the end
        self.streak_start: int | None = None  # "warn": the first step of the current non-finite streak
        self._pending: list[torch.Tensor] = []  # totals since the last optimiser step, not yet checked
        self._doomed = False  # "skip": a total since the last optimiser step was not finite
        self.what = ""  # what the last check found not finite, in words

    @property
    def device(self) -> torch.device:
        """Where the run computes (settable: the Lightning adapter learns it when training starts)."""
        return self._device

    @device.setter
    def device(self, device: torch.device) -> None:
        # Its kind is looked up once, not at every step (a ``torch.device``'s ``type`` is made on each access).
        self._device, self._kind = device, torch.device(device).type

    # -- state carried by checkpoints --------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {"skipped": self.skipped, "consecutive": self.consecutive, "first_skip": self.first_skip or ""}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.skipped, self.consecutive = int(state.get("skipped", 0)), int(state.get("consecutive", 0))
        self.first_skip = state.get("first_skip") or None

    # -- every step ---------------------------------------------------------------------
    def remember(self) -> tuple[torch.Tensor, ...]:
        """The random state before a step's forward pass, for :meth:`explain` to run it again alike."""
        if self._kind == "cuda":
            return torch.get_rng_state(), torch.cuda.get_rng_state(self.device)
        return (torch.default_generator.get_state(),)  # what torch.get_rng_state() returns, one call fewer

    def check(
        self,
        total: torch.Tensor | None,
        terms: Mapping[str, torch.Tensor],
        flags: Sequence[torch.Tensor],
        *,
        want: bool,
        boundary: bool,
        params: Sequence[torch.Tensor] = (),
        covered: bool = False,
    ) -> tuple[dict[str, float], bool]:
        """The logged values of a step (when ``want``) and whether it is finite, in one fetch.

        ``flags`` are the :func:`gradient_flags` of ``params``, given at an optimiser step
        (``boundary``); ``params`` are looked at again only to say what a flagged
        gradient holds. ``total`` may be None at an optimiser step that checks only
        what is kept (the Lightning adapter keeps each step's total and checks at its
        optimiser step). Between optimiser steps a total that is not fetched for the
        logs is kept, on its device, and checked at the next optimiser step; under DDP
        every total is, so that all processes decide together. :attr:`what` then says
        what was not finite. ``covered`` says that ``flags`` cover ``total`` too
        (:class:`GradientCheck` given it): then an optimiser step that logs nothing reads
        the flags alone, one number, and looks further only when one is set.
        """
        quick = covered and boundary and not want and not self._pending and not self.distributed
        if quick and not any(self._fetch(list(flags))):
            self.what = ""
            return {}, True
        if total is None:  # the step's own total is the last one kept
            total = self._pending.pop() if self._pending else torch.zeros((), device=self.device)
        # Read as they are (:meth:`_fetch` detaches what it stacks); only a kept total is detached, so
        # that it does not hold its step's graph.
        if not (boundary or (want and not self.distributed)):
            self._pending.append(total.detach())
            return (dict(zip(["total", *terms], self._fetch([total, *terms.values()]))) if want else {}), True
        # One fetch: the total (the first logged value), the logged terms, the totals kept, the flags.
        fetched = [total, *terms.values()] if want else [total]
        n = len(fetched)
        pending = self._pending if boundary else []
        if pending:
            fetched += pending
        numbers = self._fetch([*fetched, *flags] if flags else fetched)
        values = dict(zip(["total", *terms], numbers)) if want else {}  # zip stops at the names
        loss = numbers[0]
        earlier = numbers[n : n + len(pending)]
        flagged = any(numbers[n + len(pending) :])
        if not math.isfinite(loss):
            self.what = f"the total loss is {loss}"
        elif earlier and not all(math.isfinite(x) for x in earlier):
            self.what = _EARLIER
        elif flagged:
            self.what = f"a gradient holds {_held(params)}"
        else:
            self.what = ""
        finite = not self.what
        if boundary:
            self._pending.clear()
            if self.distributed:
                others = distributed.sum_over_processes([0.0 if finite else 1.0])[0] - (0.0 if finite else 1.0)
                if finite and others:
                    self.what, finite = "the loss or a gradient of another process is not finite", False
        return values, finite

    def _fetch(self, tensors: list[torch.Tensor]) -> list[float]:
        if not tensors:
            return []
        if self._kind == "cpu":
            return [t.item() for t in tensors]
        return torch.stack([t.detach().to(torch.float64) for t in tensors]).tolist()  # one synchronisation

    def apply(self, finite: bool, *, boundary: bool, step: int, explain: Callable[[], str]) -> bool:
        """Act on a step's verdict (from :meth:`check`); True when the optimisers may step.

        ``explain()`` says where the non-finite number is; it is called only when needed.
        """
        if finite and not (boundary and self._doomed):
            if boundary:
                self.consecutive, self.streak_start = 0, None
            return True
        if not finite and self.mode == "raise":
            raise NonFiniteError(f"step {step}: {self.what}; {explain()}{_HINT}")
        if not finite and self.mode == "warn":
            if self.streak_start is None:
                self.streak_start = step
                message = f"step {step}: {self.what}; {explain()}; going on (on_nonfinite='warn')"
            else:
                message = f"step {step}: {self.what} (not finite since step {self.streak_start}); going on"
            warnings.warn(message, RuntimeWarning, stacklevel=4)
            return True
        # "skip": the optimiser step that this step's gradients feed is skipped.
        if not finite and self.first_skip is None:
            self.first_skip = f"step {step}: {self.what}; {explain()}"
        if not boundary:
            self._doomed = True
            return True
        self._doomed = False
        self.skipped += 1
        self.consecutive += 1
        if self.consecutive >= self.max_skips:
            last = f"{self.what}; {explain()}" if not finite else "a total loss before it was not finite"
            raise NonFiniteError(
                f"{self.consecutive} consecutive optimiser steps were skipped (max_skips={self.max_skips}), "
                f"the last at step {step}: {last}{_HINT}"
            )
        return False

    def finish(self) -> None:
        """At the end of a run that skipped steps, say so once."""
        if self.skipped:
            warnings.warn(
                f"{self.skipped} optimiser step(s) were skipped because a loss or gradient was not finite "
                f"(on_nonfinite='skip'); the first at {self.first_skip}",
                RuntimeWarning,
                stacklevel=3,
            )

    # -- finding where ------------------------------------------------------------------------
    def explain(
        self,
        loss: CompiledLoss,
        batches: Mapping[str, Any],
        rng: tuple[torch.Tensor, ...],
        autocast: Callable[[], AbstractContextManager[Any]],
    ) -> str:
        """Say where the step on ``batches`` went non-finite: evaluate it again, as it ran.

        The random state is set back to ``rng`` (the state before the step) inside a
        fork, and the buffers of the maps (BatchNorm statistics) are restored
        afterwards, so the run continues as if the check had not run.
        """
        if self.what == _EARLIER:
            return _EARLIER_GONE
        buffers = [(b, b.detach().clone()) for b in loss.buffers()]
        devices = [self.device] if self.device.type == "cuda" else []
        try:
            with torch.random.fork_rng(devices=devices), autocast():
                torch.set_rng_state(rng[0])
                if devices:
                    torch.cuda.set_rng_state(rng[1], self.device)
                why = loss.explain_nonfinite(batches)
        except Exception as err:  # the diagnosis must not hide the finding
            why = f"(re-running the step to find where failed: {type(err).__name__}: {err})"
        finally:
            with torch.no_grad():
                for b, saved in buffers:
                    b.copy_(saved)
        weights = nonfinite_maps(loss.trainable_maps())
        found = why if why is not None else _RERUN_FINITE
        if weights:
            found += "; " + NONFINITE_WEIGHTS.format(maps=listed(map(repr, weights)))
        return found

    # -- checkpoints -------------------------------------------------------------------------
    def refuse_checkpoint(
        self,
        models: Mapping[str, nn.Module] | nn.ModuleDict,
        names: Mapping[str, str],
        step: int,
        last: Callable[[], str],
        *,
        say: bool = True,
    ) -> bool:
        """True when a weight of ``models`` is not finite: then raise (``"raise"``) or warn (if ``say``).

        ``names`` gives each key of ``models`` the name to show (its edge's); ``last()``
        says which checkpoint stays the latest.
        """
        bad = nonfinite_maps(models)
        if not bad:
            return False
        shown = listed(repr(n) for n in dict.fromkeys(names.get(k, k) for k in bad))
        message = NONFINITE_CHECKPOINT.format(step=step, maps=shown, last=last())
        if self.mode == "raise":
            raise NonFiniteError(message)
        if say:
            warnings.warn(message, RuntimeWarning, stacklevel=4)
        return True
