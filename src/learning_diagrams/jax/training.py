"""Training a diagram on JAX: ``ld.jax.fit``, one jit-compiled step, the PyTorch trainer's data and logs.

``fit(diagram, epochs=..., optimizer=optax.adam(1e-3))`` compiles the diagram
(:mod:`.compiled`), draws one batch per data vertex per step under the same data
policies (:mod:`learning_diagrams.batches`, each pass of each source seeded from
``seed``), and runs one ``jax.jit``-compiled step: the loss and its gradient, the
optax update. It logs every term by name (:mod:`learning_diagrams.logs`: a
:class:`~learning_diagrams.logs.History`, CSV and JSON Lines files under
``log_dir``, a progress bar), evaluates the terms on held-out data at the end of
each epoch, and writes resumable checkpoints (the arrays in safetensors, the rest
in JSON). It returns a :class:`Trained`: the trained arrays, the modules they make,
and the history.

**Non-finite numbers, without a synchronisation per step.** The step itself
tests the total and every gradient; a step that is not finite leaves the
parameters and the optimiser's state as they were, on the device (``jnp.where``),
and counts itself in a small state that is read only where values are read
anyway: at the steps that log, and at the end of each epoch. Then, by
``on_nonfinite``: ``"raise"`` (the default) stops with
:class:`~learning_diagrams.core.errors.NonFiniteError` naming the first such step
(no update of it, or of any later non-finite step, was applied); ``"skip"``
goes on, and stops after ``max_skips`` consecutive skipped steps; ``"warn"``
applies the update anyway and warns. With ``log_every=1`` every step is read.

>>> import jax, jax.numpy as jnp, equinox as eqx, optax, numpy as np
>>> import learning_diagrams as ld
>>> class Scale(eqx.Module):
...     w: jax.Array
...     def __call__(self, x):
...         return x * self.w
>>> x = np.linspace(-1, 1, 32, dtype=np.float32)
>>> d = (ld.Diagram().space("N", data=[(x, 3 * x)]).space("X").space("Y", loss=ld.losses.mse)
...      .map("x", "N", "X", lambda b: b[0]).map("y", "N", "Y", lambda b: b[1])
...      .map("f", "X", "Y", Scale(jnp.array(0.0))).relate("x·f", "y"))
>>> trained = ld.jax.fit(d, epochs=200, optimizer=optax.sgd(0.5), log_dir=False, progress=False)
>>> round(float(trained.params["f"].w), 3), trained.history.last("x·f ≤ y") < 1e-6
(3.0, True)
"""

from __future__ import annotations

import json
import os
import shutil
import time
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import safetensors.numpy

from ..batches import CombinedBatches, Stream
from ..core.diagram import Diagram
from ..core.errors import CheckpointError, NonFiniteError, OptionError
from ..core.metrics import resolve
from ..io.atomic import write_atomic
from ..logs import History, Logger, Progress, default_loggers, make_record
from .compiled import CompiledLoss
from .data import DataSource
from .metrics import METRICS, evaluate

__all__ = ["fit", "Trained", "ON_NONFINITE"]

#: The values of ``on_nonfinite``.
ON_NONFINITE = ("raise", "skip", "warn")

_ARRAYS, _STATE, _LATEST = "arrays.safetensors", "state.json", "latest"


class Trained(NamedTuple):
    """What :func:`fit` returns: the trained arrays, the modules they make, and the history."""

    params: dict[str, Any]
    modules: dict[str, Any]
    history: History


class _Stream(Stream):
    """A source's batches, read by the JAX back end's :class:`~.data.DataSource`."""

    def __init__(self, vertex: str, data: Any, seed: int):
        super().__init__(vertex, data, seed, source=DataSource)


def fit(
    diagram: Diagram,
    *,
    epochs: int = 1,
    optimizer: optax.GradientTransformation | None = None,
    seed: int = 0,
    data: Mapping[str, Any] | None = None,
    weights: Mapping[str, float] | None = None,
    reduction: str = "mean",
    policy: str = "max_size_cycle",
    steps_per_epoch: int | None = None,
    log_every: int = 1,
    log_dir: str | os.PathLike[str] | bool = False,
    progress: bool = True,
    eval_data: Mapping[str, Any] | None = None,
    metrics: Mapping[str, Any] | None = None,
    checkpoint_dir: str | os.PathLike[str] | None = None,
    resume: str | os.PathLike[str] | None = None,
    on_nonfinite: str = "raise",
    max_skips: int = 10,
) -> Trained:
    """Train ``diagram`` on JAX; see the module docstring.

    Parameters
    ----------
    diagram : Diagram
        Its edges hold Equinox modules or JAX functions.
    epochs : int
    optimizer : optax.GradientTransformation, optional
        Default ``optax.adam(1e-3)``.
    seed : int
        Seeds the data order (each pass of each source; see :mod:`learning_diagrams.batches`).
    data, weights, reduction
        As :func:`learning_diagrams.jax.compile` takes them.
    policy, steps_per_epoch
        The data policy (:mod:`learning_diagrams.batches`).
    log_every : int
        Log (and read the non-finite state) every this many steps.
    log_dir : path, True or False
        Where the CSV and JSON Lines logs go (``True``: ``runs/<time>``; ``False``: none).
    progress : bool
        Show a progress bar.
    eval_data : mapping of vertex to data, optional
        Held-out data: the terms and ``metrics``, averaged over its batches (weighted by
        batch size), logged with ``split="eval"`` at the end of each epoch (:mod:`.metrics`).
    metrics : mapping of vertex to metric(s), optional
        ``{"Y": "accuracy"}``, callables, or a mapping of name to metric, as ``ld.fit`` takes them.
    checkpoint_dir : path, optional
        A checkpoint at the end of each epoch (``step-000000040/``, and ``latest``).
    resume : path, optional
        A checkpoint folder or a ``checkpoint_dir``: the run continues from there and
        ends where the uninterrupted run would have, bit for bit.
    on_nonfinite : {"raise", "skip", "warn"}
    max_skips : int
    """
    if on_nonfinite not in ON_NONFINITE:
        raise OptionError(f"on_nonfinite {on_nonfinite!r} is not one of {', '.join(map(repr, ON_NONFINITE))}")
    for name, value, least in (("epochs", epochs, 0), ("log_every", log_every, 1), ("max_skips", max_skips, 1)):
        if not isinstance(value, int) or value < least:
            raise OptionError(f"{name}={value!r} must be an integer of at least {least}")
    optimizer = optimizer if optimizer is not None else optax.adam(1e-3)
    loss = CompiledLoss.from_diagram(diagram, weights=weights, reduction=reduction, data=data)
    if not jax.tree_util.tree_leaves(loss.params):
        raise OptionError(
            "the diagram has no trainable array to train: no trainable edge holds an Equinox module with arrays "
            f"(edges: {', '.join(loss.maps)}); unfreeze one, or give an edge a module"
        )
    resolve(metrics or {}, {pair.target for pair in loss.pairs}, METRICS)  # refused now, not after an epoch
    batches = CombinedBatches(loss.data, policy=policy, steps_per_epoch=steps_per_epoch, seed=seed, stream=_Stream)
    step = _step(loss, optimizer, on_nonfinite)
    params, opt_state = loss.params, optimizer.init(loss.params)
    guard = _Guard(on_nonfinite, max_skips)
    epoch0, start, number = 0, 0, 0
    folder = Path(checkpoint_dir) if checkpoint_dir is not None else None
    if resume is not None:
        params, opt_state, saved = _load(Path(resume), (params, opt_state))
        epoch0, start, number = saved["epoch"], saved["start"], saved["step"]
        batches.load_state_dict(saved["data"])
        guard.load(saved["nonfinite"])
    history = History()
    loggers: list[Logger] = []
    if log_dir is not False:
        directory = Path(log_dir) if log_dir is not True else Path("runs") / time.strftime("%Y%m%d-%H%M%S")
        if resume is not None and (directory / "log.jsonl").exists():
            history = History.from_jsonl(directory / "log.jsonl")
        loggers = default_loggers(directory, append=resume is not None, keep=len(history) if resume else None)
    state = jnp.zeros((3,), jnp.int32).at[2].set(-1)  # on device: non-finite steps, consecutive ones, the first
    try:
        for epoch in range(epoch0, epochs):
            length = len(batches)
            bar = Progress(total=length - start, desc=f"train {epoch + 1}/{epochs}") if progress else None
            try:
                for k, drawn in enumerate(batches.epoch(start), start):
                    number += 1
                    params, opt_state, state, total, terms = step(params, opt_state, state, drawn, jnp.asarray(number))
                    if number % log_every == 0 or k + 1 == length:
                        state = guard.read(state)
                        values = {"total": float(total), **{name: float(v) for name, v in terms.items()}}
                        if number % log_every == 0:
                            _log(history, loggers, make_record(0, epoch, number, "train", values))
                        if bar is not None:
                            bar.update(values)
                    elif bar is not None:
                        bar.update({})
            finally:
                if bar is not None:
                    bar.close()
            start = 0
            if eval_data:
                values = evaluate(loss, params, eval_data, metrics)
                _log(history, loggers, make_record(0, epoch, number, "eval", values))
            if folder is not None:
                _save(folder, (params, opt_state), epoch + 1, 0, number, batches.state_dict(), guard.state())
        guard.finish()
    finally:
        for logger in loggers:
            logger.close()
    functions = loss.functions(params)
    return Trained(params, {name: functions[name] for name in params}, history)


def _log(history: History, loggers: list[Logger], record: Any) -> None:
    history.log(record)
    for logger in loggers:
        logger.log(record)


def _step(loss: CompiledLoss, optimizer: optax.GradientTransformation, mode: str) -> Any:
    """The jitted training step: ``(params, opt_state, state, batches, number) -> (params, opt_state, state, total, terms)``."""

    def step(params: Any, opt_state: Any, state: jax.Array, batches: Any, number: jax.Array) -> Any:
        (total, terms), grads = jax.value_and_grad(lambda p: loss(p, batches), has_aux=True)(params)
        updates, new_opt_state = optimizer.update(grads, opt_state, params)
        new_params = optax.apply_updates(params, updates)
        finite = jnp.isfinite(total) & jnp.all(
            jnp.asarray([jnp.all(jnp.isfinite(g)) for g in jax.tree_util.tree_leaves(grads)] or [True])
        )
        if mode != "warn":  # a step that is not finite changes nothing (on the device: no synchronisation)
            new_params = jax.tree_util.tree_map(lambda a, b: jnp.where(finite, a, b), new_params, params)
            new_opt_state = jax.tree_util.tree_map(lambda a, b: jnp.where(finite, a, b), new_opt_state, opt_state)
        bad = jnp.logical_not(finite).astype(jnp.int32)
        first = jnp.where((state[2] < 0) & (bad > 0), number, state[2])
        state = jnp.stack([state[0] + bad, jnp.where(bad > 0, state[1] + 1, 0), first])
        return new_params, new_opt_state, state, total, terms

    return eqx.filter_jit(step)


class _Guard:
    """Reads the step's non-finite state where values are read anyway, and acts on it (see the module)."""

    def __init__(self, mode: str, max_skips: int):
        self.mode, self.max_skips = mode, max_skips
        self.skipped, self.first_skip = 0, -1

    def read(self, state: jax.Array) -> jax.Array:
        bad, consecutive, first = (int(v) for v in np.asarray(state))
        if bad:
            if self.mode == "raise":
                raise NonFiniteError(
                    f"step {first}: the total loss or a gradient is not finite; its update was not applied "
                    f"({bad} such step(s) since the last check, none applied); on_nonfinite='skip' skips such steps "
                    f"and 'warn' goes on; a lower learning rate helps a run whose weights diverge"
                )
            if self.mode == "warn":
                warnings.warn(f"step {first}: the total loss or a gradient is not finite; going on", RuntimeWarning, 3)
            else:
                self.skipped += bad
                self.first_skip = first if self.first_skip < 0 else self.first_skip
                if consecutive >= self.max_skips:
                    raise NonFiniteError(
                        f"{consecutive} consecutive steps were skipped (max_skips={self.max_skips}), the total loss "
                        f"or a gradient not finite; the first skipped at step {first}"
                    )
        return jnp.asarray([0, consecutive, -1], jnp.int32)

    def finish(self) -> None:
        if self.skipped:
            warnings.warn(
                f"{self.skipped} step(s) were skipped because a loss or gradient was not finite "
                f"(on_nonfinite='skip'); the first at step {self.first_skip}",
                RuntimeWarning,
                stacklevel=3,
            )

    def state(self) -> dict[str, int]:
        return {"skipped": self.skipped, "first_skip": self.first_skip}

    def load(self, state: Mapping[str, int]) -> None:
        self.skipped, self.first_skip = int(state["skipped"]), int(state["first_skip"])


# -- checkpoints --------------------------------------------------------------------------------------
def _save(directory: Path, tree: Any, epoch: int, start: int, step: int, data: Any, nonfinite: Any) -> None:
    """Write ``directory/step-<step>/`` (the arrays, then the state), then point ``latest`` at it.

    The folder is written under a temporary name and renamed when complete, so a crash leaves
    the last complete checkpoint as ``latest``.
    """
    directory.mkdir(parents=True, exist_ok=True)
    name = f"step-{step:09d}"
    work = directory / f".tmp-{name}"
    if work.exists():
        shutil.rmtree(work)
    work.mkdir()
    leaves = jax.tree_util.tree_leaves(tree)
    arrays = {f"{i:06d}": np.asarray(leaf) for i, leaf in enumerate(leaves)}
    write_atomic(work / _ARRAYS, safetensors.numpy.save(arrays))
    state = {"epoch": epoch, "start": start, "step": step, "data": data, "nonfinite": nonfinite, "leaves": len(leaves)}
    write_atomic(work / _STATE, json.dumps(state).encode())
    final = directory / name
    if final.exists():
        shutil.rmtree(final)
    os.replace(work, final)
    write_atomic(directory / _LATEST, f"{name}\n".encode())


def _load(path: Path, like: Any) -> tuple[Any, Any, dict[str, Any]]:
    """The arrays (in the structure of ``like``) and the state of the checkpoint at ``path``."""
    folder = path
    if not (folder / _STATE).exists():
        latest = path / _LATEST
        if not latest.exists():
            raise CheckpointError(f"no checkpoint to resume from in {str(path)!r}")
        folder = path / latest.read_text().strip()
    try:
        state = json.loads((folder / _STATE).read_text())
        arrays = safetensors.numpy.load_file(str(folder / _ARRAYS))
    except (OSError, ValueError) as err:
        raise CheckpointError(f"the checkpoint in {str(folder)!r} cannot be read: {err}") from err
    leaves, treedef = jax.tree_util.tree_flatten(like)
    if state["leaves"] != len(leaves) or len(arrays) != len(leaves):
        raise CheckpointError(
            f"the checkpoint in {str(folder)!r} holds {len(arrays)} arrays, this run's parameters and optimiser "
            f"state {len(leaves)}: was it written by the same diagram and optimiser?"
        )
    restored = [jnp.asarray(arrays[f"{i:06d}"], dtype=leaf.dtype) for i, leaf in enumerate(leaves)]
    for i, (new, old) in enumerate(zip(restored, leaves)):
        if new.shape != old.shape:
            raise CheckpointError(f"array {i} of the checkpoint has shape {new.shape}, this run's {old.shape}")
    params, opt_state = jax.tree_util.tree_unflatten(treedef, restored)
    return params, opt_state, state
