"""Training a diagram without writing a loop: :class:`Trainer`, :func:`fit` and :class:`Stage`.

``ld.fit(diagram, epochs=10)`` compiles the diagram, draws one batch per data
vertex per step (:mod:`~learning_diagrams.training.loaders`), steps one
optimiser over every trainable map (or one per map, on request), logs every
loss term by name, and returns the :class:`~learning_diagrams.logs.History`.
A list of :class:`Stage` objects (or diagrams) that share model objects runs as
consecutive stages: train a teacher, then distil.

What happens at each step, in order: the batches are moved to the device; the
compiled loss runs under autocast when ``precision`` asks for it; the total,
divided by ``accumulate``, is back-propagated (through a ``GradScaler`` for
fp16); every ``accumulate`` steps (and at the end of an epoch) gradients are
unscaled, checked, clipped to ``clip_grad_norm``, the optimisers step and are
zeroed, and step-interval schedulers step (:mod:`~learning_diagrams.training.step`,
laid out once per stage so that a step does what a hand-written loop does, and
its checks). Epoch-interval schedulers step after each epoch, then held-out data
is evaluated and a checkpoint written. Logging and the progress bar read numbers
only at the steps that show them.

A *step* is one batch per data vertex; ``max_steps``, ``checkpoint_every`` and the
logged ``step`` count steps over the whole run, across stages.

Nothing fails silently: a step whose loss or gradient is NaN or infinite stops
the run naming the step, the term and the edge (``on_nonfinite``, see
:mod:`~learning_diagrams.training.nonfinite`); a checkpoint whose weights are not
finite is never written; a regime with nothing to train, data with no batch, and
counts that cannot be (``epochs=-1``, ``max_steps=0``) are refused before any step.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import os
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence, Union

import torch
from torch import nn

from ..core.diagram import Diagram, Pair
from ..core.errors import OptionError, TypeMismatchError, UnknownNameError
from ..core.losses import check_reduction
from ..core.messages import NOT_INDEXING, located
from ..torch import CompiledLoss
from ..torch.cache import DEFAULT_CACHE_BYTES, FrozenCache
from . import distributed
from .checkpoint import latest_checkpoint, load_checkpoint, load_state, save_checkpoint
from .loaders import CombinedBatches
from ..logs import History, Logger, Progress, as_logger, default_loggers
from ..logs.trackers import plain_options
from .metrics import evaluate
from .randomness import rng_state, seed_all, set_rng_state
from .nonfinite import ON_NONFINITE, Guard
from .regime import refuse_nothing_to_train
from ..torch.data import to_device
from .step import TrainingStep

__all__ = ["Trainer", "Stage", "fit"]

OptimizerSpec = Union[type, Callable[..., torch.optim.Optimizer]]

#: PyTorch's warning when a scheduler steps before any optimiser step of the process.
_SCHEDULER_FIRST = r"Detected call of `lr_scheduler.step\(\)` before `optimizer.step\(\)`"


@dataclass
class Stage:
    """One stage of a regime: a diagram with its own epochs, optimiser settings and reduction.

    Fields left ``None`` take the trainer's.
    """

    diagram: Diagram
    epochs: int | None = None
    optimizer: OptimizerSpec | None = None
    lr: float | None = None
    lrs: Mapping[str, float] | None = None
    weights: Mapping[str, float] | None = None
    name: str | None = None
    reduction: str | None = None


@dataclass
class Trainer:
    """Fits diagrams; every option has a default a careful user would expect.

    Parameters
    ----------
    epochs : int
        Epochs per stage (a stage may override).
    max_steps : int, optional
        Stop after this many steps in all (a checkpoint is written there when
        ``checkpoint_dir`` is set), e.g. to stop mid-epoch and resume later.
    policy : {"max_size_cycle", "min_size", "max_size", "steps"}
        How data sets of different sizes are combined (see
        :mod:`~learning_diagrams.training.loaders`); ``steps_per_epoch`` for "steps".
    optimizer : torch.optim.Optimizer subclass, or callable ``param_groups -> Optimizer``
        The optimiser of every trainable map not named in ``optimizers``. A class
        is called with ``lr=lr`` and ``optimizer_kwargs``; a callable gets the
        parameter groups alone.
    lr : float
        Learning rate for optimiser classes.
    lrs : mapping of edge name to float
        Per-map learning rates (each map is its own parameter group).
    optimizers : mapping of edge name to optimizer spec
        Maps with an optimiser of their own.
    scheduler : callable ``optimizer -> LRScheduler``
        Applied to every optimiser; steps per ``scheduler_interval`` ("epoch" or "step").
    clip_grad_norm : float, optional
        Clip the gradient norm of all trainable parameters before each step.
    accumulate : int
        Accumulate gradients over this many steps before each optimiser step.
    device : str
        "auto" (CUDA when there is one), "cpu", "cuda", "cuda:1", ...
    precision : {"32", "bf16", "16"}
        bf16/fp16 autocast; fp16 also scales the loss with a GradScaler.
    compile : bool or str
        ``torch.compile`` the compiled loss (a string names the backend).
    seed : int
        Seeds Python, NumPy and torch at the start of a run, and the data order.
    deterministic : bool
        ``torch.use_deterministic_algorithms(True)`` during the run.
    log_dir : str or Path, optional
        Where ``log.csv``, ``log.jsonl``, TensorBoard events (when installed) and
        ``losses.png`` go; default ``runs/<date-time>``; ``False`` writes nothing.
    log_every : int
        Log every this many steps.
    loggers : sequence of loggers
        More places for the records, besides ``log_dir``'s files (also with
        ``log_dir=False``): our :class:`~learning_diagrams.logs.Logger`
        objects (anything with ``log(record)``), and any object with Lightning's
        logger interface ``log_metrics(metrics, step)``, so that Weights & Biases,
        MLflow, aim and the rest plug in through Lightning's own loggers (see
        :mod:`~learning_diagrams.logs.trackers`). Each gets the run's
        plain-data options once at the start (``log_hyperparams``) and is
        finalised at the end with ``"success"`` or ``"failed"``; the trainer does
        not close them. Under DDP only rank 0 logs.
    progress : bool
        Show a progress bar with the running value of every term.
    checkpoint_dir : str or Path, optional
        Write a checkpoint at the end of every epoch (and every ``checkpoint_every``
        steps, and at ``max_steps``), keeping the last ``keep``.
    eval_data : mapping of vertex to held-out data
        Evaluated after every epoch, along the compiled paths; under DDP each
        process evaluates its share and the results are reduced.
    metrics : mapping of vertex to metric name(s), callables or torchmetrics metrics
        E.g. ``{"Y": "accuracy"}`` or ``{"Y": torchmetrics.Accuracy(task="multiclass", num_classes=10)}``
        (see :mod:`~learning_diagrams.training.metrics`).
    strategy : {"auto", "single", "ddp"}
        "ddp" trains with ``torch.distributed`` (launch with ``torchrun``); "auto"
        picks it when a process group exists or ``WORLD_SIZE`` > 1.
    on_nonfinite : {"raise", "skip", "warn"}
        At a step whose total, a term or a gradient is NaN or infinite: raise
        :class:`~learning_diagrams.core.errors.NonFiniteError` naming the step, the
        term and the first edge whose output was not finite; skip the optimiser
        step (and count it); or warn and go on. See
        :mod:`~learning_diagrams.training.nonfinite`. (With ``precision="16"`` the
        GradScaler's own skipping of overflowed gradients is left to it.)
    max_skips : int
        With ``"skip"``, this many consecutive skipped steps raise.
    reduction : {"mean", "sum"}
        How each loss term reduces over its batch (a stage may override): ``"mean"``,
        the batch mean; ``"sum"``, the per-sample losses summed and scaled by
        ``|data set| / |batch|``, an unbiased estimate of the paper's sum over the
        data set (see ``Diagram.compile``). Held-out terms are then exact sums
        over the held-out data.
    data : mapping of indexing vertex to data
        The data of the run, by vertex name, in place of the diagrams' own (an
        indexing vertex declared without data gets it here); each name must be an
        indexing vertex of some stage's diagram.
    cache : {"auto", True, False}
        Compute the outputs of frozen maps once per sample and reuse them in later
        epochs, stages and held-out evaluations (:mod:`~learning_diagrams.torch.cache`):
        ``"auto"`` where the data is provably fixed (tensors, ``TensorDataset``, lists
        of tensor batches), in a run of more than one epoch in all (one pass could
        reuse nothing) and in :meth:`evaluate`; ``True`` also for any map-style
        dataset, keyed by sample index (not for random augmentation), in any run;
        ``False`` never.
    fuse : bool or "auto"
        Run each family of parallel maps (heads of one backbone, an ensemble, glued
        few-shot heads) as one batched call with stacked parameters
        (:mod:`~learning_diagrams.torch.fusion`); maps given their own learning rate or
        optimiser are never fused with others. ``"auto"`` is ``True``.
    cache_bytes : int
        What the cache keeps in the device's memory (and, on a GPU, as much again in
        host memory); the rest goes to memory-mapped files on disk.
    """

    epochs: int = 1
    max_steps: int | None = None
    policy: str = "max_size_cycle"
    steps_per_epoch: int | None = None
    optimizer: OptimizerSpec = torch.optim.Adam
    lr: float = 1e-3
    optimizer_kwargs: Mapping[str, Any] = field(default_factory=dict)
    lrs: Mapping[str, float] | None = None
    optimizers: Mapping[str, OptimizerSpec] | None = None
    scheduler: Callable[[torch.optim.Optimizer], Any] | None = None
    scheduler_interval: str = "epoch"
    clip_grad_norm: float | None = None
    accumulate: int = 1
    device: str = "auto"
    precision: str = "32"
    compile: bool | str = False
    seed: int = 0
    deterministic: bool = False
    log_dir: str | os.PathLike | bool | None = None
    log_every: int = 1
    loggers: Sequence[Any] = ()
    progress: bool = True
    plot: bool = True
    checkpoint_dir: str | os.PathLike | None = None
    checkpoint_every: int | None = None
    keep: int | None = 3
    eval_data: Mapping[str, Any] | None = None
    metrics: Mapping[str, Any] | None = None
    strategy: str = "auto"
    on_nonfinite: str = "raise"
    max_skips: int = 10
    reduction: str = "mean"
    data: Mapping[str, Any] | None = None
    cache: bool | str = "auto"
    cache_bytes: int = DEFAULT_CACHE_BYTES
    fuse: bool | str = False

    def __post_init__(self) -> None:
        check_reduction(self.reduction)
        # The cache of evaluate(); each fit has its own (checks the options now).
        self._cache = FrozenCache(self.cache, cache_bytes=self.cache_bytes) if self.cache is not False else None
        if self.precision not in ("32", "bf16", "16"):
            raise OptionError(f"precision {self.precision!r} is not one of '32', 'bf16', '16'")
        if self.scheduler_interval not in ("epoch", "step"):
            raise OptionError(f"scheduler_interval {self.scheduler_interval!r} is not 'epoch' or 'step'")
        if self.strategy not in ("auto", "single", "ddp"):
            raise OptionError(f"strategy {self.strategy!r} is not 'auto', 'single' or 'ddp'")
        if self.on_nonfinite not in ON_NONFINITE:
            raise OptionError(f"on_nonfinite {self.on_nonfinite!r} is not one of {', '.join(map(repr, ON_NONFINITE))}")
        for name, least in (("accumulate", 1), ("epochs", 0), ("log_every", 1), ("max_skips", 1)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < least:
                raise OptionError(f"{name} must be an int of at least {least}, got {value!r}")
        for name in ("max_steps", "checkpoint_every", "steps_per_epoch", "keep"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise OptionError(f"{name} must be None or an int of at least 1, got {value!r}")
        if any(callable(getattr(self.loggers, method, None)) for method in ("log", "log_metrics")):
            self.loggers = (self.loggers,)  # one logger, given alone
        if not isinstance(self.loggers, (list, tuple)):
            raise TypeMismatchError(
                f"loggers takes a list of loggers, got an object of type {type(self.loggers).__name__}"
            )
        for logger in self.loggers:
            as_logger(logger)  # refuses what is no logger now, not at the end of the first step
        for name in ("max_steps", "checkpoint_every"):
            value = getattr(self, name)
            if value is not None and self.accumulate > 1 and value % self.accumulate:
                raise OptionError(
                    f"{name}={value} is not a multiple of accumulate={self.accumulate}: checkpoints "
                    f"are written between optimiser steps only"
                )

    # -- the run ----------------------------------------------------------------
    def fit(
        self, regime: Diagram | Stage | Sequence[Diagram | Stage], *, resume: str | os.PathLike | None = None
    ) -> History:
        """Train ``regime`` (a diagram, a stage, or a sequence of them, run in order).

        ``resume`` is a checkpoint folder or a ``checkpoint_dir``: the run continues
        from there (models, optimisers, schedulers, scaler, step, RNG and data order
        restored) and ends where the uninterrupted run would have.
        """
        stages = _as_stages(regime)
        run = _Run(self, stages)
        return run.go(resume)

    def evaluate(
        self, diagram: Diagram | CompiledLoss, data: Mapping[str, Any], metrics: Mapping[str, Any] | None = None
    ) -> dict[str, float]:
        """Loss terms and metrics of ``diagram`` on held-out ``data`` (see :func:`~.metrics.evaluate`).

        Under DDP each process evaluates its share of ``data`` and every process gets the
        values over all of it: call it in every process, with the same arguments.
        """
        if isinstance(diagram, Diagram):
            given = {v: d for v, d in {**(self.data or {}), **data}.items() if v in diagram.indexing}
            loss = diagram.compile(reduction=self.reduction, data=given)
        else:
            loss = diagram
        shard = distributed.wanted(self.strategy)
        if shard:
            distributed.setup(self.device)
        device = _device(self.device, distributed.local_rank())
        loss.to(device)
        chosen = metrics if metrics is not None else self.metrics
        own = loss.cache
        if own is None:  # a loss that has its own cache keeps it; one without uses the trainer's, for this call
            loss.cache = self._cache
        try:
            return evaluate(loss, data, chosen, move=lambda b: to_device(b, device), shard=shard)
        finally:
            loss.cache = own


def fit(
    regime: Diagram | Stage | Sequence[Diagram | Stage], *, resume: str | os.PathLike | None = None, **options: Any
) -> History:
    """Train ``regime`` with a :class:`Trainer` made of ``options``; returns the History.

    >>> import torch, learning_diagrams as ld
    >>> _ = torch.manual_seed(0)
    >>> d = (ld.Diagram().space("N", data=[(torch.ones(4, 2), torch.zeros(4, 1))]).space("X")
    ...      .space("Y", loss=ld.losses.mse).map("x", "N", "X", lambda b: b[0])
    ...      .map("y", "N", "Y", lambda b: b[1]).map("f", "X", "Y", torch.nn.Linear(2, 1))
    ...      .relate("x·f", "y"))
    >>> history = ld.fit(d, epochs=3, lr=0.1, log_dir=False, progress=False)
    >>> history.last("x·f ≤ y") < history.records[0]["values"]["x·f ≤ y"]
    True
    """
    return Trainer(**options).fit(regime, resume=resume)


# -----------------------------------------------------------------------------
# The run: one object per fit, holding what changes as it goes.


class _Run:
    def __init__(self, trainer: Trainer, stages: list[Stage]):
        self.t, self.stages = trainer, stages
        self.distributed = distributed.wanted(trainer.strategy)
        if self.distributed:
            distributed.setup(trainer.device)
        self.rank0 = distributed.rank() == 0
        self.device = _device(trainer.device, distributed.local_rank())
        self.history = History()
        self.step = 0
        self.guard = Guard(
            trainer.on_nonfinite, max_skips=trainer.max_skips, device=self.device, distributed=self.distributed
        )
        # One cache for the run: its stages and held-out evaluations share the frozen outputs. Under "auto",
        # only for a run of more than one epoch in all: a single pass over the data could never reuse a value.
        epochs = sum(s.epochs if s.epochs is not None else trainer.epochs for s in stages)
        wanted = trainer.cache is True or (trainer.cache == "auto" and epochs > 1)
        self.cache = FrozenCache(trainer.cache, cache_bytes=trainer.cache_bytes) if wanted else None

    @functools.cached_property
    def models(self) -> nn.ModuleDict:
        """Every model of every stage, for checkpoints (made when one is first written or read).

        Stages share model objects, and a model trained only in an early stage must
        survive a resume in a later one.
        """
        return nn.ModuleDict(
            {
                f"s{i}_{name}": m.fn
                for i, s in enumerate(self.stages)
                for name, m in s.diagram.maps.items()
                if isinstance(m.fn, nn.Module)
            }
        )

    @functools.cached_property
    def names(self) -> dict[str, str]:
        """The edge name of each key of :attr:`models`."""
        return {
            f"s{i}_{name}": name
            for i, s in enumerate(self.stages)
            for name in s.diagram.maps
            if f"s{i}_{name}" in self.models
        }

    # -- set-up -------------------------------------------------------------------
    def go(self, resume: str | os.PathLike | None) -> History:
        t = self.t
        _check_data(t.data, self.stages)
        # Before anything runs, not when stage 3 starts; each stage's pairs and data are worked out once.
        self.compiled = [self._pairs_and_data(index) for index in range(len(self.stages))]
        state = self._read_resume(resume) if resume is not None else None
        if state is not None:
            self.guard.load_state_dict(state.get("nonfinite", {}))
        if state is None:
            seed_all(t.seed)
        owned = self._loggers(append=state is not None, keep=state.get("records") if state else None)
        self.loggers = [*owned, *(as_logger(logger) for logger in t.loggers if self.rank0)]
        deterministic = torch.are_deterministic_algorithms_enabled()
        torch.use_deterministic_algorithms(t.deterministic or deterministic)
        status = "failed"
        try:
            if self.loggers:  # the options as loggers take them, worked out only for one
                options = plain_options({f.name: getattr(t, f.name) for f in dataclasses.fields(t)})
                for logger in self.loggers:
                    logger.log_hyperparams(options)
            first = int(state["stage"]) if state else 0
            for index in range(first, len(self.stages)):
                if not self._stage(index, state if index == first else None):
                    break
            status = "success"
            self.guard.finish()
        finally:
            if self.cache is not None:
                self.cache.close()
            torch.use_deterministic_algorithms(deterministic)
            for logger in self.loggers:
                logger.finalize(status)
            for logger in owned:  # the loggers passed in are their owner's to close
                logger.close()
        if self.rank0 and self.log_dir and t.plot and len(self.history):
            names = {i: s.name for i, s in enumerate(self.stages) if s.name}
            self.history.plot(self.log_dir / "losses.png", stages=names)
        return self.history

    def _read_resume(self, resume: str | os.PathLike) -> dict:
        path = Path(resume)
        folder = path if (path / "state.pt").exists() else latest_checkpoint(path)
        if folder is None:
            raise FileNotFoundError(f"no checkpoint to resume from in {str(path)!r}")
        self.resume_folder = folder
        return load_state(folder)

    def _loggers(self, *, append: bool, keep: int | None) -> list[Logger]:
        """The loggers of ``log_dir``; a resumed run's files keep the ``keep`` records its checkpoint had logged."""
        t = self.t
        self.log_dir = None
        if t.log_dir is False or not self.rank0:
            return []
        given = t.log_dir if isinstance(t.log_dir, (str, os.PathLike)) else None  # True: the default folder
        self.log_dir = Path(given) if given else Path("runs") / time.strftime("%Y%m%d-%H%M%S")
        loggers = default_loggers(self.log_dir, append=append, keep=keep)
        if append and (self.log_dir / "log.jsonl").exists():
            self.history = History.from_jsonl(self.log_dir / "log.jsonl")
        return loggers

    # -- one stage ----------------------------------------------------------------
    def _stage(self, index: int, state: dict | None) -> bool:
        """Run stage ``index`` (from ``state`` when resuming); False when max_steps stopped the run."""
        t, stage = self.t, self.stages[index]
        label = stage.name or (f"stage {index + 1}" if len(self.stages) > 1 else "train")
        loss = _to(self._compile(index), self.device)
        # Evaluation calls the maps themselves: under DDP, an unwrapped copy of the loss (see distributed).
        held_out = loss
        if self.distributed:
            held_out = _to(self._compile(index), self.device) if t.eval_data else loss
            loss.wrap(distributed.wrapper(self.device))
        loss.cache = held_out.cache = self.cache
        backend = t.compile if isinstance(t.compile, str) else "inductor"  # torch.compile's default
        forward: Callable[..., Any] = torch.compile(loss, backend=backend) if t.compile else loss
        optimizers = self._optimizers(loss, stage)
        params = [p for group in (o.param_groups for o in optimizers) for g in group for p in g["params"]]
        refuse_nothing_to_train(self._label(index), stage.diagram, pairs=self.compiled[index][0], params=params)
        schedulers = [t.scheduler(o) for o in optimizers] if t.scheduler else []
        scaler = torch.amp.GradScaler(self.device.type) if t.precision == "16" else None
        sources = dict(loss.data)
        if self.distributed:
            sources = {v: distributed.shard(data, t.seed) for v, data in sources.items()}
        if self.cache is not None:  # batches come keyed, where the data is fixed (see torch.cache)
            sources = {v: self.cache.keyed(data, v) for v, data in sources.items()}
        data = CombinedBatches(sources, policy=t.policy, steps_per_epoch=t.steps_per_epoch, seed=t.seed + index)
        first_epoch, start = 0, 0
        if state is not None:
            load_checkpoint(self.resume_folder, module=self.models, map_location=self.device)
            for o, s in zip(optimizers, state["optimizers"]):
                o.load_state_dict(s)
            for sch, s in zip(schedulers, state["schedulers"]):
                sch.load_state_dict(s)
            if scaler is not None and state.get("scaler"):
                scaler.load_state_dict(state["scaler"])
            data.load_state_dict(state["data"])
            set_rng_state(state["rng"])
            first_epoch, start, self.step = int(state["epoch"]), int(state["start"]), int(state["step"])
        context = dict(index=index, loss=loss, optimizers=optimizers, schedulers=schedulers, scaler=scaler, data=data)
        step = TrainingStep(
            loss=loss,
            forward=forward,
            optimizers=optimizers,
            schedulers=schedulers,
            scaler=scaler,
            guard=self.guard,
            device=self.device,
            precision=t.precision,
            accumulate=t.accumulate,
            clip_grad_norm=t.clip_grad_norm,
            scheduler_interval=t.scheduler_interval,
        )
        epochs = stage.epochs if stage.epochs is not None else t.epochs
        shown = t.progress and self.rank0  # the bar shows every step's values
        # Read once: the loop below runs at every step, beside work as small as a hand-written loop's.
        log_every, accumulate, max_steps, every = t.log_every, t.accumulate, t.max_steps, t.checkpoint_every
        logs = self.rank0
        for epoch in range(first_epoch, epochs):
            if max_steps is not None and self.step >= max_steps:  # a resumed run that had reached it
                return False
            loss.train()
            length = len(data)
            # Without a bar to show, none is made: the step reads numbers only when it logs.
            progress = Progress(total=length - start, desc=f"{label} {epoch + 1}/{epochs}") if shown else None
            try:
                for k, batches in enumerate(data.epoch(start), start):
                    number = self.step + 1
                    log = logs and number % log_every == 0
                    values = step(batches, k, length, step=number, want=log or shown)
                    self.step = number
                    if progress is not None:
                        progress.update(values)
                    if log:
                        self._log({"stage": index, "epoch": epoch, "step": number, "split": "train", "values": values})
                    if max_steps is not None and number >= max_steps:
                        self._save(context, epoch, k + 1)
                        return False
                    if every and number % every == 0 and ((k + 1) % accumulate == 0 or k + 1 == length):
                        self._save(context, epoch, k + 1)  # between optimiser steps only
            finally:
                if progress is not None:
                    progress.close()
            resumed_at_its_end, start = start >= length, 0
            if t.scheduler_interval == "epoch":
                with warnings.catch_warnings():
                    if resumed_at_its_end:  # the optimisers did step this epoch, in the run that saved it
                        warnings.filterwarnings("ignore", message=_SCHEDULER_FIRST, category=UserWarning)
                    for s in schedulers:
                        s.step()
            if t.eval_data:
                if self.distributed:
                    distributed.broadcast_buffers(loss.trainable_maps().values())
                values = evaluate(
                    held_out, t.eval_data, t.metrics, move=lambda b: to_device(b, self.device), shard=self.distributed
                )
                if self.rank0:
                    self._log({"stage": index, "epoch": epoch, "step": self.step, "split": "eval", "values": values})
            self._save(context, epoch + 1, 0)
        return True

    def _pairs_and_data(self, index: int) -> tuple[list[Pair], dict[str, Any]]:
        """Stage ``index``'s compiled pairs and the data of their sources, refused if it trains nothing.

        Worked out once per run (path enumeration and the preorder are the costly part
        of compiling) and checked before any stage runs: every source of a pair needs data.
        """
        stage = self.stages[index]
        pairs = stage.diagram.compiled_pairs(stage.weights)
        refuse_nothing_to_train(self._label(index), stage.diagram, pairs=pairs)
        given = {v: d for v, d in (self.t.data or {}).items() if v in stage.diagram.indexing}
        return pairs, stage.diagram.require_data(dict.fromkeys(p.source for p in pairs), given)

    def _compile(self, index: int) -> CompiledLoss:
        """Stage ``index``'s loss, as ``diagram.compile(weights=..., reduction=..., data=...)`` makes it.

        With ``fuse``, maps given a learning rate or an optimiser of their own are each kept
        out of the families of the others (each in a group of its own).
        """
        stage = self.stages[index]
        reduction = stage.reduction if stage.reduction is not None else self.t.reduction
        pairs, data = self.compiled[index]
        own = {*(self.t.lrs or {}), *(stage.lrs or {}), *(self.t.optimizers or {})}
        groups = {name: name for name in own}
        return CompiledLoss(pairs, stage.diagram.maps, data, reduction=reduction, fuse=self.t.fuse, groups=groups)

    # -- optimisers -------------------------------------------------------------------
    def _optimizers(self, loss: CompiledLoss, stage: Stage) -> list[torch.optim.Optimizer]:
        """One parameter group per trainable map, grouped by optimiser spec."""
        t = self.t
        maps = loss.trainable_maps()
        lrs = {**(t.lrs or {}), **(stage.lrs or {})}
        for name in [*lrs, *(t.optimizers or {})]:
            if name not in maps:
                raise UnknownNameError(
                    f"learning rate or optimiser given for {name!r}, which is no trainable map of "
                    f"the compiled diagram (trainable maps: {', '.join(maps) or 'none'})"
                )
        default = stage.optimizer or t.optimizer
        by_spec: dict[int, tuple[OptimizerSpec, list[dict]]] = {}
        seen: set[int] = set()
        # A fused family is one group of its stacked tensors, where its first member's group would be.
        family_of = {e: family for family in loss.fused for e in family.family.edges}
        for name, module in maps.items():
            family = family_of.get(name)
            label = name
            if family is not None:
                if name != family.family.edges[0]:
                    continue
                label = f"{name}…{family.family.edges[-1]}"
                named = [(f"{label}.{n}", p) for n, p in zip(family.names, family.stacked)]
            else:
                named = [(f"{name}.{n}", p) for n, p in module.named_parameters()]
            named = [(n, p) for n, p in named if p.requires_grad and id(p) not in seen]
            seen.update(id(p) for _, p in named)
            if not named:
                continue
            group: dict[str, Any] = {
                "params": [p for _, p in named],
                "param_names": [n for n, _ in named],
                "map": label,
            }
            if name in lrs:
                group["lr"] = lrs[name]
            spec = (t.optimizers or {}).get(name, default)
            by_spec.setdefault(id(spec), (spec, []))[1].append(group)
        lr = stage.lr if stage.lr is not None else t.lr
        return [_make_optimizer(spec, groups, lr, t.optimizer_kwargs) for spec, groups in by_spec.values()]

    # -- records and checkpoints -----------------------------------------------------
    def _log(self, record: dict) -> None:
        self.history.log(record)
        for logger in self.loggers:
            logger.log(record)

    def _last_saved(self) -> str:
        folder = latest_checkpoint(self.t.checkpoint_dir) if self.t.checkpoint_dir else None
        return str(folder) if folder is not None else "there is none yet"

    def _label(self, index: int) -> str:
        stage = self.stages[index]
        if stage.name or len(self.stages) > 1:
            return f"stage {stage.name or index + 1!r}"
        return "the diagram"

    def _save(self, context: dict, epoch: int, start: int) -> None:
        t = self.t
        if not t.checkpoint_dir:
            return
        # Weights that are not finite are never written: retention would delete finite checkpoints for them.
        # Every process looks (their weights are the same), so that under "raise" they stop together.
        refused = self.guard.refuse_checkpoint(self.models, self.names, self.step, self._last_saved, say=self.rank0)
        if self.rank0 and not refused:
            state = {
                "stage": context["index"],
                "epoch": epoch,
                "start": start,
                "step": self.step,
                "records": len(self.history),
                "optimizers": [o.state_dict() for o in context["optimizers"]],
                "schedulers": [s.state_dict() for s in context["schedulers"]],
                "scaler": context["scaler"].state_dict() if context["scaler"] is not None else {},
                "data": context["data"].state_dict(),
                "rng": rng_state(),
                "nonfinite": self.guard.state_dict(),
            }
            save_checkpoint(t.checkpoint_dir, module=self.models, state=state, step=self.step, keep=t.keep)
        distributed.barrier()


def _to(loss: CompiledLoss, device: torch.device) -> CompiledLoss:
    """``loss.to(device)``, which walks and re-assigns every parameter and buffer: skipped when all are there."""
    tensors = itertools.chain(nn.Module.named_parameters(loss), loss.named_buffers())  # frozen maps' too
    return loss if all(t.device == device for _, t in tensors) else loss.to(device)


def _check_data(data: Mapping[str, Any] | None, stages: list[Stage]) -> None:
    """Refuse data given for a name that is no indexing vertex of any stage's diagram."""
    indexing = dict.fromkeys(v for s in stages for v in s.diagram.indexing)
    for vertex in data or {}:
        if vertex not in indexing:
            raise UnknownNameError(
                NOT_INDEXING.format(what="data", vertex=vertex, indexing=", ".join(indexing) or "none")
                + " of any stage's diagram"
            )


def _as_stages(regime: Diagram | Stage | Sequence[Diagram | Stage]) -> list[Stage]:
    items = [regime] if isinstance(regime, (Diagram, Stage)) else list(regime)
    stages = [item if isinstance(item, Stage) else Stage(item) for item in items]
    for i, s in enumerate(stages):
        if not isinstance(s.diagram, Diagram):
            raise TypeMismatchError(f"stage {i} is a {type(s.diagram).__name__}, not an ld.Diagram or ld.Stage")
        if s.epochs is not None and (isinstance(s.epochs, bool) or not isinstance(s.epochs, int) or s.epochs < 0):
            raise OptionError(f"stage {s.name or i + 1!r}: epochs must be an int of at least 0, got {s.epochs!r}")
        if s.reduction is not None:
            with located(f"stage {s.name or i + 1!r}"):
                check_reduction(s.reduction)
    return stages


def _make_optimizer(
    spec: OptimizerSpec, groups: list[dict], lr: float, kwargs: Mapping[str, Any]
) -> torch.optim.Optimizer:
    make: Callable[..., torch.optim.Optimizer] = spec
    if isinstance(spec, type) and issubclass(spec, torch.optim.Optimizer):
        return make(groups, lr=lr, **kwargs)
    return make(groups)


def _device(name: str, local_rank: int) -> torch.device:
    if name == "auto":
        return torch.device("cuda", local_rank) if torch.cuda.is_available() else torch.device("cpu")
    return torch.device(name)
