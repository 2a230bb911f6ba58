"""Training a learning diagram with Lightning: :class:`DiagramModule`, a ``LightningModule``.

The adapter holds the diagram's compiled loss as a submodule, so that Lightning
moves it to the device, checkpoints it and wraps it for its strategy (DDP,
FSDP, DeepSpeed, several nodes), precision and logger. (The test suite runs
single-process and two-process DDP on CPU.) Lightning is an optional
extra: ``import learning_diagrams`` never imports it, and importing this module
without it fails with an ``ImportError`` that says
``pip install 'learning-diagrams[lightning]'``.

What the module does, hook by hook:

* ``train_dataloader()`` combines the ``DataLoader`` of every source vertex
  (``module.loss.sources``) into one Lightning ``CombinedLoader``; each step's
  batch is a dict vertex → batch. Lightning processes each loader inside it,
  so under a distributed strategy every loader gets its ``DistributedSampler``.
* ``training_step`` computes the compiled loss on that dict, logs every term
  by its name under ``train/`` (``"train/x·student·hard ≤ y"``) and the sum as
  ``"train/total"``, and returns the total.
* ``validation_step`` (when ``val_data`` is given) logs the same terms under
  ``val/``, averaged over the epoch and across processes.
* ``configure_optimizers`` builds the optimiser over the trainable maps'
  parameters only (``module.loss.parameters()``), and refuses a diagram with
  nothing to train, naming its maps.
* ``on_before_optimizer_step`` checks that the totals since the last optimiser
  step and the gradients are finite (one fetch), and by ``on_nonfinite`` raises
  :class:`~learning_diagrams.core.errors.NonFiniteError` naming the step, the term
  and the first edge whose output was not finite, skips the optimiser step (its
  gradients are dropped), or warns; see :mod:`learning_diagrams.training.nonfinite`.
* ``on_save_checkpoint`` refuses, with a ``NonFiniteError``, to let a checkpoint
  whose weights are not finite be written (Lightning cannot skip a save), so
  ``ModelCheckpoint`` never deletes a finite checkpoint for it.

Frozen outputs are computed once per sample (``cache="auto"``, as in ``ld.fit``; see
:mod:`learning_diagrams.torch.cache`): the training and validation loaders of a
``TensorDataset`` (any map-style dataset with ``cache=True``) yield their batches keyed
by sample index, and the compiled loss reuses what a frozen teacher computed in the
first epoch.

Frozen maps stay frozen and in eval mode throughout: compilation turns their
gradients off, :meth:`CompiledLoss.train <learning_diagrams.torch.compiled.CompiledLoss.train>`
keeps them in eval mode, and Lightning's saving and restoring of the modules'
modes around validation restores them to eval mode.

>>> import operator, torch
>>> from torch.utils.data import DataLoader, TensorDataset
>>> import learning_diagrams as ld
>>> from learning_diagrams.integrations.lightning import DiagramModule
>>> data = TensorDataset(torch.randn(16, 2), torch.randn(16, 1))
>>> d = (ld.Diagram().space("N", data=DataLoader(data, batch_size=4))
...      .space("X").space("Y", loss=ld.losses.mse)
...      .map("x", "N", "X", operator.itemgetter(0)).map("y", "N", "Y", operator.itemgetter(1))
...      .map("f", "X", "Y", torch.nn.Linear(2, 1)).relate("x·f", "y"))
>>> module = DiagramModule(d, optimizer=torch.optim.SGD, lr=0.1)
>>> batch, batch_idx, _ = next(iter(module.train_dataloader()))   # a dict vertex → batch
>>> list(batch), batch_idx, list(module.losses(batch).terms)
(['N'], 0, ['x·f ≤ y'])
>>> module.configure_optimizers().defaults["lr"]
0.1

and then, with any strategy, precision and logger::

    import lightning
    trainer = lightning.Trainer(max_epochs=2, accelerator="cpu", devices=2, strategy="ddp_spawn")
    trainer.fit(module)          # logs "train/x·f ≤ y" and "train/total" every step

Under a distributed strategy Lightning replaces each training loader's sampler with a
``DistributedSampler`` that **shuffles** (seeded by ``PL_GLOBAL_SEED``, else 0, and the epoch),
even when the ``DataLoader`` itself does not shuffle; validation loaders are not shuffled.
``lightning.seed_everything(seed)`` sets ``PL_GLOBAL_SEED``; with
``Trainer(use_distributed_sampler=False)`` the loaders are left alone, and splitting the data
between processes is then up to you.

``strategy="ddp_spawn"`` pickles the module into each process, so every map
(and the optimiser factory, if any) must then be picklable: a module,
``operator.itemgetter`` or a function defined at module level, not a lambda.
``strategy="ddp"`` launches the script again instead and has no such limit.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping
from contextlib import nullcontext
from typing import Any, Literal

import torch
from torch.utils.data import DataLoader

try:
    import lightning.pytorch as pl
    from lightning.fabric.utilities.warnings import PossibleUserWarning
    from lightning.pytorch.utilities.combined_loader import CombinedLoader
except ImportError as err:  # pragma: no cover - exercised in a subprocess by the tests
    raise ImportError(
        "learning_diagrams.integrations.lightning needs Lightning (the package 'lightning', version 2.2 or later), "
        "which is not installed: pip install 'learning-diagrams[lightning]'"
    ) from err

from ..core.diagram import Diagram
from ..core.errors import NonFiniteError, OptionError, TypeMismatchError
from ..core.messages import NONFINITE_CHECKPOINT, NOTHING_TO_TRAIN, listed
from ..torch import CompiledLoss, Losses
from ..torch.cache import DEFAULT_CACHE_BYTES, FrozenCache
from ..torch.data import batch_size
from ..torch.finite import nonfinite_maps
from ..training.nonfinite import Guard, gradient_flags
from ..training.regime import describe_maps

__all__ = ["DiagramModule", "TRAINING_MODES"]

#: The ``CombinedLoader`` modes that Lightning's fit loop accepts for training.
Mode = Literal["max_size_cycle", "min_size", "max_size"]
TRAINING_MODES: tuple[Mode, ...] = ("max_size_cycle", "min_size", "max_size")

#: Lightning's warning at the start of fit when some module is in eval mode (frozen maps are, by design).
_EVAL_MODE_WARNING = r"Found \d+ module\(s\) in eval mode at the start of training"


class DiagramModule(pl.LightningModule):
    """A ``LightningModule`` that trains a learning diagram on its compiled loss.

    Parameters
    ----------
    diagram : Diagram
        The diagram to train. It is compiled once, here: later edits of the
        diagram do not change the module. The data of every source vertex of
        the compiled pairs must be a ``torch.utils.data.DataLoader``.
    optimizer : optimiser class or callable, default ``torch.optim.Adam``
        Either an optimiser class, called as
        ``optimizer(params, lr=lr, **optimizer_kwargs)``, or a factory
        ``params -> optimiser`` (``functools.partial(torch.optim.SGD, lr=0.1,
        momentum=0.9)``, say), called with the trainable parameters only. A
        factory may also return anything that Lightning's
        ``configure_optimizers`` may return, such as
        ``{"optimizer": ..., "lr_scheduler": ...}``.
    lr : float, optional
        Learning rate for an optimiser class; 1e-3 when left out. Give it to
        the factory instead when ``optimizer`` is a factory.
    optimizer_kwargs : mapping, optional
        More keyword arguments for an optimiser class (``weight_decay``,
        ``momentum``, ...); not with a factory.
    weights : mapping of term name to weight, optional
        Passed to :meth:`Diagram.compile <learning_diagrams.core.diagram.Diagram.compile>`.
    mode : {"max_size_cycle", "min_size", "max_size"}
        How the sources' loaders combine into one training step, in
        Lightning's ``CombinedLoader`` terms. It only matters when the pairs
        start at several source vertices whose loaders differ in length:

        * ``"max_size_cycle"`` (default): an epoch lasts as long as the
          longest loader; shorter ones start again, so every step computes
          every term.
        * ``"min_size"``: an epoch ends with the shortest loader; every step
          computes every term, and the longer loaders' last batches are not
          seen in that epoch.
        * ``"max_size"``: an epoch lasts as long as the longest loader; an
          exhausted loader yields ``None``, and the steps that lack its batch
          compute only the terms of the other sources (the terms left out
          are logged as NaN in those steps). Under DDP a map then gets no
          gradient in some steps: use
          ``strategy="ddp_find_unused_parameters_true"``.

        Lightning's fourth mode, ``"sequential"``, is refused: its fit loop
        does not support it.
    val_data : mapping of vertex to DataLoader, optional
        Validation data of some or all source vertices. Then every epoch
        logs, under ``val/``, the terms of the pairs starting at those
        vertices and their sum, each averaged over the epoch and across
        processes. The loaders are combined in ``"max_size"`` mode, so every
        validation batch of every vertex is seen once.
    on_nonfinite : {"raise", "skip", "warn"}
        What a training step whose total or gradient is NaN or infinite does, as
        in :class:`~learning_diagrams.training.Trainer`: raise
        :class:`~learning_diagrams.core.errors.NonFiniteError`, skip the optimiser
        step (dropping its gradients), or warn. Under fp16 with a gradient scaler,
        overflowed gradients are the scaler's to skip.
    max_skips : int
        With ``"skip"``, this many consecutive skipped steps raise.

    Attributes
    ----------
    loss : CompiledLoss
        The compiled loss, a submodule: checkpoints hold its state under
        ``"loss."``. Restore one with
        ``DiagramModule.load_from_checkpoint(path, diagram=diagram)``.

    Notes
    -----
    Each logged value is given the batch size of its source vertex's batch
    (``"train/total"`` and ``"val/total"`` that of the first source), so that
    Lightning weights epoch averages correctly and need not guess. The
    ``train/`` values are each process's own step values (no synchronisation);
    the ``val/`` values are synchronised across processes.
    """

    def __init__(
        self,
        diagram: Diagram,
        optimizer: type[torch.optim.Optimizer] | Callable[[Any], Any] = torch.optim.Adam,
        lr: float | None = None,
        optimizer_kwargs: Mapping[str, Any] | None = None,
        weights: Mapping[str, float] | None = None,
        mode: Mode = "max_size_cycle",
        val_data: Mapping[str, DataLoader] | None = None,
        on_nonfinite: str = "raise",
        max_skips: int = 10,
        cache: bool | str = "auto",
        cache_bytes: int = DEFAULT_CACHE_BYTES,
    ):
        super().__init__()
        if mode == "sequential":
            raise OptionError(
                "mode 'sequential' cannot train: Lightning's fit loop does not support "
                f"CombinedLoader(mode='sequential'); choose one of {', '.join(map(repr, TRAINING_MODES))}"
            )
        if mode not in TRAINING_MODES:
            raise OptionError(f"unknown mode {mode!r}; choose one of {', '.join(map(repr, TRAINING_MODES))}")
        _check_optimizer(optimizer, lr, optimizer_kwargs)
        self.loss: CompiledLoss = diagram.compile(weights=weights)
        self.optimizer, self.lr, self.mode = optimizer, lr, mode
        self.optimizer_kwargs = dict(optimizer_kwargs or {})
        self.loss.cache = FrozenCache(cache, cache_bytes=cache_bytes) if cache is not False else None
        keyed = self.loss.cache.keyed if self.loss.cache is not None else lambda loader, _: loader
        self.train_data = {v: keyed(_loader(diagram.spaces[v].data, v, "data"), v) for v in self.loss.sources}
        self.val_data = {}
        self.loss.check_sources(val_data or {}, "val_data")
        for v, loader in (val_data or {}).items():
            self.val_data[v] = keyed(_loader(loader, v, "validation data"), v)
        if not self.val_data:
            # Lightning validates when these hooks are overridden; with no validation data, there is nothing to run.
            self.validation_step = self.val_dataloader = None  # type: ignore[method-assign,assignment]
        self._frozen = tuple(e for e in self.loss.maps if e not in self.loss.trainable_maps())
        self._quiet: warnings.catch_warnings | None = None
        if isinstance(max_skips, bool) or not isinstance(max_skips, int) or max_skips < 1:
            raise OptionError(f"max_skips must be an int of at least 1, got {max_skips!r}")
        # The device is the CPU for the guard's reading of numbers until the first step says otherwise.
        self._guard = Guard(on_nonfinite, max_skips=max_skips, device=torch.device("cpu"))
        self._last: tuple[Mapping[str, Any], tuple[torch.Tensor, ...]] | None = None  # batch, RNG: to explain
        self._nothing_to_train = NOTHING_TO_TRAIN.format(
            what="the diagram", maps=describe_maps(diagram, self.loss.pairs)
        )

    # -- data -----------------------------------------------------------------
    def train_dataloader(self) -> CombinedLoader:
        """The sources' loaders, combined: each batch is a dict vertex → batch."""
        return _combined(self.train_data, self.mode)

    def val_dataloader(self) -> CombinedLoader:
        """The validation loaders, combined in ``"max_size"`` mode (every batch seen once)."""
        return _combined(self.val_data, "max_size")

    # -- steps ----------------------------------------------------------------
    def losses(self, batch: Mapping[str, Any]) -> Losses:
        """The compiled loss on a dict vertex → batch, leaving out the pairs of vertices whose batch is ``None``.

        Raises
        ------
        NoBatchError
            (a ``ValueError``) when no vertex has a batch.
        """
        self.loss.check_sources(batch, "a batch")
        # A source without a batch is given None: the compiled loss skips its pairs (and draws nothing).
        return self.loss({v: batch.get(v) for v in self.loss.sources})

    def training_step(self, batch: Mapping[str, Any], batch_idx: int) -> torch.Tensor:
        """Compute, log (under ``train/``) and return the composite loss of one combined batch."""
        self._guard.device = self.device
        self._last = (batch, self._guard.remember())
        total = self._step(batch, "train")
        self._guard.check(total, {}, [], want=False, boundary=False)  # kept on its device until the optimiser step
        return total

    def validation_step(self, batch: Mapping[str, Any], batch_idx: int) -> torch.Tensor:
        """Compute and log (under ``val/``) the composite loss of one combined validation batch."""
        return self._step(batch, "val")

    def _step(self, batch: Mapping[str, Any], stage: str) -> torch.Tensor:
        total, terms = self.losses(batch)
        sizes = {v: batch_size(b) for v, b in batch.items() if b is not None}
        sync = stage != "train"
        for pair in self.loss.pairs:
            if pair.name in terms:
                self.log(f"{stage}/{pair.name}", terms[pair.name], batch_size=sizes[pair.source], sync_dist=sync)
            elif stage == "train":  # Lightning would log the term's value of an earlier step again
                self.log(f"{stage}/{pair.name}", float("nan"), batch_size=1)
        self.log(f"{stage}/total", total, prog_bar=True, batch_size=next(iter(sizes.values())), sync_dist=sync)
        return total

    # -- optimisation ---------------------------------------------------------
    def configure_optimizers(self) -> Any:
        """The optimiser over the trainable maps' parameters (frozen maps' are left out).

        These are ``self.loss.parameters()``, collected from the trainable edges' modules
        so that they are right in a copy of the module too (a process of ``ddp_spawn``).
        """
        params = self._trainable()
        if not any(p.requires_grad for p in params):
            raise OptionError(self._nothing_to_train)
        if isinstance(self.optimizer, type):
            return self.optimizer(params, lr=1e-3 if self.lr is None else self.lr, **self.optimizer_kwargs)
        return self.optimizer(params)

    def _trainable(self) -> list[torch.nn.Parameter]:
        modules = self.loss.trainable_maps().values()
        return list(dict.fromkeys(p for m in modules for p in m.parameters()))

    # -- non-finite numbers -----------------------------------------------------
    def on_before_optimizer_step(self, optimizer: torch.optim.Optimizer) -> None:
        """Check the totals since the last optimiser step and the gradients; raise, skip or warn.

        A skipped step drops the gradients (``p.grad = None``), so the optimiser leaves
        every parameter and its state alone.
        """
        params = self._trainable()
        scaled = getattr(getattr(self.trainer, "precision_plugin", None), "scaler", None) is not None
        flags = [] if scaled else gradient_flags(params)  # a GradScaler skips overflowed gradients itself
        _, finite = self._guard.check(None, {}, flags, want=False, boundary=True, params=params)
        step = self.trainer.global_step + 1
        if not self._guard.apply(finite, boundary=True, step=step, explain=self._explain):
            for p in params:
                p.grad = None

    def _explain(self) -> str:
        if self._last is None:  # pragma: no cover - a step always runs first
            return "no batch to re-run"
        batch, rng = self._last
        plugin = getattr(self.trainer, "precision_plugin", None)
        context = plugin.forward_context if plugin is not None else nullcontext
        return self._guard.explain(self.loss, {v: batch.get(v) for v in self.loss.sources}, rng, context)

    def on_train_end(self) -> None:
        """Warns once if steps were skipped (``on_nonfinite="skip"``)."""
        self._guard.finish()

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Refuses (raises :class:`NonFiniteError`) to let a checkpoint with non-finite weights be written."""
        bad = nonfinite_maps(self.loss.maps)
        if bad:
            callback = getattr(self.trainer, "checkpoint_callback", None)
            last = getattr(callback, "last_model_path", "") or getattr(callback, "best_model_path", "")
            raise NonFiniteError(
                NONFINITE_CHECKPOINT.format(
                    step=self.trainer.global_step, maps=listed(map(repr, bad)), last=last or "there is none yet"
                )
            )

    # -- modes ----------------------------------------------------------------
    def on_fit_start(self) -> None:
        """Silences Lightning's warning about modules in eval mode if the frozen maps are all it would be about.

        Lightning warns when training starts with a module in eval mode; frozen maps are, by design.
        When any other module is in eval mode, the warning is left alone.
        """
        frozen = {id(m) for e in self._frozen for m in self.loss.maps[e].modules()}
        if frozen and all(m.training or id(m) in frozen for m in self.modules()):
            self._quiet = warnings.catch_warnings()
            self._quiet.__enter__()
            warnings.filterwarnings("ignore", message=_EVAL_MODE_WARNING, category=PossibleUserWarning)

    def on_train_start(self) -> None:
        """Ends the silencing begun in :meth:`on_fit_start` (call it from an override)."""
        self._unquiet()

    def teardown(self, stage: str) -> None:
        """Ends the silencing begun in :meth:`on_fit_start` if fit stopped early (call it from an override)."""
        self._unquiet()

    def _unquiet(self) -> None:
        if self._quiet is not None:
            quiet, self._quiet = self._quiet, None
            quiet.__exit__(None, None, None)


def _check_optimizer(optimizer: Any, lr: float | None, kwargs: Mapping[str, Any] | None) -> None:
    if not callable(optimizer):
        raise TypeMismatchError(
            f"optimizer must be an optimiser class (torch.optim.Adam) or a factory params -> optimiser, "
            f"got a {type(optimizer).__name__}"
        )
    if isinstance(optimizer, type):
        if kwargs and "lr" in kwargs:
            raise OptionError("give the learning rate as lr=..., not in optimizer_kwargs")
    elif lr is not None or kwargs:
        raise OptionError(
            "optimizer is a factory params -> optimiser, so it sets its own learning rate and options; "
            "leave out lr and optimizer_kwargs, or pass an optimiser class"
        )


def _combined(loaders: Mapping[str, DataLoader], mode: Mode) -> CombinedLoader:
    with warnings.catch_warnings():
        # Lightning (2.6 at least) builds a torch pytree ``LeafSpec``, deprecated since torch 2.10:
        # Lightning-AI/pytorch-lightning#21326. Nothing a user can act on.
        warnings.filterwarnings(
            "ignore", message=r"`isinstance\(treespec, LeafSpec\)` is deprecated", category=FutureWarning
        )
        return CombinedLoader(dict(loaders), mode)


def _loader(data: Any, vertex: str, what: str) -> DataLoader:
    if not isinstance(data, DataLoader):
        raise TypeMismatchError(
            f"the {what} of vertex {vertex!r} is a {type(data).__name__}, but Lightning needs a "
            f"torch.utils.data.DataLoader (it gives each one a DistributedSampler under DDP); "
            f"give the vertex a DataLoader: DataLoader(dataset, batch_size=...)"
        )
    return data
