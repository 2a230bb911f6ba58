"""Compilation of a learning diagram to one composite loss on JAX: a pure function of arrays.

A diagram's edges hold Equinox modules (``equinox.Module``: their arrays are the
parameters) or plain JAX functions. :class:`CompiledLoss` splits each trainable
module into its arrays and the rest (``equinox.partition``): :attr:`~CompiledLoss.params`
is the pytree of the trainable maps' arrays, keyed by edge name, and
``loss(params, batches)`` is a pure function of it and of one batch per indexing
vertex, which ``jax.jit``, ``jax.grad`` and ``optax`` take as they are. It returns
:class:`Losses` ``(total, terms)``, the same terms, named, weighted and in the same
order as the PyTorch compilation of the diagram, since both run one
:class:`~learning_diagrams.core.evaluation.Program` laid out from the same pairs.

* Each distinct path prefix is evaluated once per call: a backbone shared by fifty
  heads runs once (XLA then fuses what it can).
* A frozen map's arrays are constants: no gradient reaches them, and the value of a
  prefix that no trainable module precedes is put under ``jax.lax.stop_gradient``.
  Gradients still flow *through* a frozen map that follows a trainable one.
  Frozen modules are switched to inference (``equinox.nn.inference_mode``).
* A map receives the whole batch, as on PyTorch. Equinox's own layers take one
  sample (``eqx.nn.Linear`` maps a vector); put the batch axis on inside a module::

      class Batched(eqx.Module):
          layer: eqx.nn.Linear
          def __call__(self, x):
              return jax.vmap(self.layer)(x)

>>> import jax, jax.numpy as jnp, equinox as eqx
>>> import learning_diagrams as ld
>>> class Scale(eqx.Module):
...     w: jax.Array
...     def __call__(self, x):
...         return x * self.w
>>> d = (ld.Diagram().space("N", data=[(jnp.ones((4, 2)), jnp.zeros((4, 2)))]).space("X")
...      .space("Y", loss=ld.losses.mse).map("x", "N", "X", lambda b: b[0])
...      .map("y", "N", "Y", lambda b: b[1]).map("f", "X", "Y", Scale(jnp.array(2.0))).relate("x·f", "y"))
>>> loss = ld.jax.compile(d)
>>> list(loss.params), float(loss.params["f"].w)
(['f'], 2.0)
>>> total, terms = loss(loss.params, {"N": (jnp.ones((4, 2)), jnp.zeros((4, 2)))})
>>> float(total), list(terms)
(4.0, ['x·f ≤ y'])
>>> float(jax.grad(lambda p: loss(p, {"N": (jnp.ones((4, 2)), jnp.zeros((4, 2)))}).total)(loss.params)["f"].w)
4.0
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import types
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

import equinox as eqx
import jax

from ..core.diagram import Diagram, Map, Pair
from ..core.errors import NoBatchError, UnknownNameError
from ..core.evaluation import Program, Step, Term, known_sizes, plan
from ..core.losses import check_reduction
from ..core.messages import HIDDEN_ARRAYS, NOT_A_SOURCE
from ..core.reach import found_in, reached
from .data import DataSource
from .losses import loss_function, returns_scalar

__all__ = ["CompiledLoss", "Losses"]


class Losses(NamedTuple):
    """What a compiled loss returns: the total and every weighted term by name (a pytree).

    ``total == sum(terms.values())``.
    """

    total: jax.Array
    terms: dict[str, jax.Array]


#: The functions of the edges during one call: each trainable module put together from the
#: call's ``params``. A context variable, so that calls in two threads do not see each other's.
_FUNCTIONS: contextvars.ContextVar[Mapping[str, Callable[[Any], Any]]] = contextvars.ContextVar("functions")


@dataclasses.dataclass(frozen=True)
class _Edge:
    """What a program calls for an edge: the edge's function in the current call (see :data:`_FUNCTIONS`).

    ``stop``: the step needs no gradient (no trainable module precedes it), so its
    value is put under ``jax.lax.stop_gradient``.
    """

    name: str
    stop: bool = False

    def __call__(self, x: Any) -> Any:
        y = _FUNCTIONS.get()[self.name](x)
        return jax.tree_util.tree_map(_stopped, y) if self.stop else y


def _stopped(value: Any) -> Any:
    return jax.lax.stop_gradient(value) if isinstance(value, jax.Array) else value


def _parametric(fn: Any) -> bool:
    """Whether ``fn`` holds parameters: an Equinox module with an array in it."""
    return isinstance(fn, eqx.Module) and bool(jax.tree_util.tree_leaves(eqx.filter(fn, eqx.is_array)))


class CompiledLoss:
    """The composite loss of a learning diagram on JAX: ``loss(params, batches) -> Losses``.

    Parameters
    ----------
    pairs : sequence of Pair
        The compiled pairs, each ``first ≤ second``.
    maps : mapping of edge name to Map
        At least every edge on the pairs' paths; their functions Equinox modules or
        JAX functions.
    data : mapping of vertex name to data
        The data of the pairs' source vertices (kept for training; a call is given
        its batches).
    reduction : {"mean", "sum"}
        How each term reduces over its batch, as on PyTorch (``"sum"`` scales by the
        data set's size over the batch's where the size is known: an array's
        length, or the lengths of a list of batches: :attr:`.data.DataSource.size`).
    """

    def __init__(
        self, pairs: Sequence[Pair], maps: Mapping[str, Map], data: Mapping[str, Any], *, reduction: str = "mean"
    ):
        check_reduction(reduction)
        self.reduction = reduction
        self.pairs = tuple(pairs)
        used = dict.fromkeys(e for pair in self.pairs for path in (pair.first, pair.second) for e in path)
        # A snapshot: later edits of the diagram do not change a compiled loss.
        self._maps = {e: dataclasses.replace(maps[e]) for e in used}
        params: dict[str, Any] = {}
        self._rest: dict[str, Any] = {}  # a trainable module's parts that are not arrays
        self._fixed: dict[str, Callable[[Any], Any]] = {}  # frozen modules and plain functions
        for name, m in self._maps.items():
            fn = m.fn
            if m.trainable and _parametric(fn):
                params[name], self._rest[name] = eqx.partition(fn, eqx.is_array)
            elif isinstance(fn, eqx.Module):
                self._fixed[name] = eqx.nn.inference_mode(fn, value=True) if not m.trainable else fn
            elif fn is not None:
                self._fixed[name] = fn
        #: The trainable maps' arrays, keyed by edge name: what ``jax.grad`` and ``optax`` update.
        self.params: dict[str, Any] = params
        self._warn_hidden_modules()
        steps = plan([path for pair in self.pairs for path in pair.paths], self._maps, parametric=_parametric)
        self._steps = {prefix: _calling(step) for prefix, step in steps.items()}
        self.sources = tuple(dict.fromkeys(pair.source for pair in self.pairs))
        self._data = {s: data[s] for s in self.sources}
        sizes = self._sizes() if reduction == "sum" else {}
        self._terms = Term.of_pairs(self.pairs, reduction, sizes, function=loss_function, scalar=returns_scalar)
        self._programs: dict[tuple[tuple[str, ...], bool], Program] = {}
        self._program(self.sources)

    def _warn_hidden_modules(self) -> None:
        """Warn of each Equinox module with arrays that a plain-function edge reaches and no edge holds."""
        inside = _module_ids(m.fn for m in self._maps.values() if isinstance(m.fn, eqx.Module))
        for m in self._maps.values():
            if m.fn is None or isinstance(m.fn, eqx.Module):
                continue
            for name, value in reached(m.fn):
                for label, module in found_in(name, value, _parametric):
                    if id(module) in inside:
                        continue
                    inside.add(id(module))  # warned of once
                    arrays = jax.tree_util.tree_leaves(eqx.filter(module, eqx.is_array))
                    kind, count = f"a {type(module).__name__}", sum(leaf.size for leaf in arrays)
                    message = HIDDEN_ARRAYS.format(edge=m.name, module=label, kind=kind, count=count)
                    warnings.warn(message, UserWarning, stacklevel=4)

    @classmethod
    def from_diagram(
        cls,
        diagram: Diagram,
        *,
        weights: Mapping[str, float] | None = None,
        reduction: str = "mean",
        data: Mapping[str, Any] | None = None,
    ) -> CompiledLoss:
        """Compile ``diagram``; ``weights`` override term weights by term name, ``data`` the vertices' data."""
        check_reduction(reduction)
        pairs = diagram.compiled_pairs(weights)
        sources = diagram.require_data(dict.fromkeys(pair.source for pair in pairs), data)
        return cls(pairs, diagram.maps, sources, reduction=reduction)

    def _sizes(self) -> dict[str, int]:
        """The size of each source's data set, where it is known; a warning for each where it is not."""
        return known_sizes(self._data, lambda data, vertex: DataSource(data, vertex).size, stacklevel=5)

    def _program(self, present: tuple[str, ...], *, keep: bool = False) -> Program:
        program = self._programs.get((present, keep))
        if program is None:
            pairs = [pair for pair in self.pairs if pair.source in present]
            terms = [self._terms[pair.name] for pair in pairs]
            program = Program(pairs, self._steps, terms, present, keep=keep, identity=self._identity)
            self._programs[present, keep] = program
        return program

    def _identity(self, fn: Any) -> bool:
        """Whether an edge's function returns its argument (``equinox.nn.Identity``): a program reads the argument."""
        return isinstance(fn, _Edge) and type(self._maps[fn.name].fn) is eqx.nn.Identity

    @property
    def data(self) -> Mapping[str, Any]:
        """The data of each source vertex (read-only)."""
        return types.MappingProxyType(self._data)

    @property
    def maps(self) -> Mapping[str, Map]:
        """The compiled edges, as they were when compiled (read-only)."""
        return types.MappingProxyType(self._maps)

    @property
    def terms(self) -> tuple[str, ...]:
        """The names of the terms, in the order a call returns them."""
        return tuple(self._terms)

    def functions(self, params: Mapping[str, Any]) -> dict[str, Callable[[Any], Any]]:
        """Every edge's function, the trainable modules put together from ``params`` (``equinox.combine``)."""
        functions = dict(self._fixed)
        for name, rest in self._rest.items():
            functions[name] = eqx.combine(params[name], rest)
        return functions

    def outputs(self, params: Mapping[str, Any], batches: Mapping[str, Any]) -> list[tuple[Pair, Any, Any]]:
        """Each compiled pair whose source has a batch, with the values of its two paths (what metrics score)."""
        present = self._present(batches)
        program = self._program(present, keep=True)
        token = _FUNCTIONS.set(self.functions(params))
        try:
            _, _, slots = program.run([batches[s] for s in present], contextlib.nullcontext, terms=False)
        finally:
            _FUNCTIONS.reset(token)
        return program.outputs(slots)

    def term(self, pair: Pair, first: Any, second: Any, *, scaled: bool = True) -> Any:
        """The weighted term of ``pair`` on its two paths' values (``scaled=False``: a batch's own sum under "sum")."""
        return self._terms[pair.name](first, second, scaled=scaled)

    def _present(self, batches: Mapping[str, Any]) -> tuple[str, ...]:
        """The sources with a batch in ``batches``, checked: a key that is no source is refused, and so is no batch."""
        for vertex in batches:
            if vertex not in self.sources:
                raise UnknownNameError(
                    NOT_A_SOURCE.format(what="a batch", vertex=vertex, sources=", ".join(self.sources))
                )
        present = tuple(s for s in self.sources if batches.get(s) is not None)
        if not present:
            raise NoBatchError(f"no source vertex has a batch in this call (sources: {', '.join(self.sources)})")
        return present

    def __call__(self, params: Mapping[str, Any], batches: Mapping[str, Any]) -> Losses:
        """The total and the terms on one batch per source in ``batches`` (a source left out has none)."""
        present = self._present(batches)
        program = self._program(present)
        token = _FUNCTIONS.set(self.functions(params))
        try:
            values, total, _ = program.run([batches[s] for s in present], contextlib.nullcontext)
        finally:
            _FUNCTIONS.reset(token)
        return Losses(total, dict(zip(program.names, values)))


def _module_ids(modules: Any) -> set[int]:
    """The ids of ``modules`` and of every Equinox module inside them (a module's fields, and their items)."""
    ids: set[int] = set()
    pending = list(modules)
    while pending:
        node = pending.pop()
        if isinstance(node, eqx.Module):
            if id(node) in ids:
                continue
            ids.add(id(node))
            pending.extend(getattr(node, f.name, None) for f in dataclasses.fields(node))
        elif isinstance(node, (list, tuple)):
            pending.extend(node)
        elif isinstance(node, dict):
            pending.extend(node.values())
    return ids


def _calling(step: Step) -> Step:
    """``step`` with its map's function replaced by the :class:`_Edge` that finds it at each call."""
    edge = _Edge(step.map.name, stop=not step.grad) if step.map.fn is not None else None
    return dataclasses.replace(step, map=dataclasses.replace(step.map, fn=edge))
