"""Compilation of a learning diagram to one composite loss, an ordinary ``torch.nn.Module``.

The composite loss is the sum, over the compiled parallel pairs ``p ≤ q``
(:meth:`~learning_diagrams.core.diagram.Diagram.parallel_pairs`), of
``weight * loss(p(x), q(x))`` on one batch ``x`` per indexing vertex. How a
term reduces over its batch ``B`` is its ``reduction``
(:mod:`learning_diagrams.core.losses`): ``"mean"`` (the default),
``(1/|B|) Σ_{x∈B} d``, estimates the paper's sum over the data set ``X``
divided by ``|X|``; ``"sum"``, ``(|X|/|B|) Σ_{x∈B} d``, estimates the paper's
``Σ_{x∈X} d`` itself, ``|X|`` read from the source's data
(:attr:`~learning_diagrams.torch.data.DataSource.size`).

* Each distinct path prefix is evaluated once per batch: a backbone shared by
  fifty heads runs once.
* A call does no more than the same loss written by hand: its evaluation is laid
  out once, at compile time, as a flat list of operations
  (:class:`~learning_diagrams.core.evaluation.Program`) that calls the maps'
  functions directly and drops each prefix's value as soon as no remaining path
  needs it; nothing is synchronised with the device.
* Frozen maps stay in eval mode and have ``requires_grad`` off; a frozen map
  that no trainable module precedes on its path runs under
  ``torch.no_grad()``. Gradients still flow *through* a frozen map that
  follows a trainable one.
* ``parameters()`` are exactly the trainable maps' parameters, so any
  ``torch.optim`` optimiser works on it; ``state_dict()`` holds every map.
* With ``check_finite=True`` a call whose total is not finite raises
  :class:`~learning_diagrams.core.errors.NonFiniteError` naming the term and the
  first edge along its paths whose output is not finite (one check of the total
  per call; the values it traces are those of the call itself).
* A plain-function edge that reaches a module with parameters (a lambda calling
  ``student``) is warned about when compiled: the compiled loss cannot register,
  train, freeze, move or save that module.

>>> import torch
>>> import learning_diagrams as ld
>>> d = (ld.Diagram().space("N", data=[(torch.ones(4, 2), torch.zeros(4, 1))])
...      .space("X").space("Y", loss=ld.losses.mse)
...      .map("x", "N", "X", lambda b: b[0]).map("y", "N", "Y", lambda b: b[1])
...      .map("f", "X", "Y", torch.nn.Linear(2, 1)).relate("x·f", "y"))
>>> loss = d.compile()
>>> total, terms = loss()                      # draws a batch from N itself
>>> list(terms), bool(total == terms["x·f ≤ y"])
(['x·f ≤ y'], True)
>>> sum(p.numel() for p in loss.parameters())
3
"""

from __future__ import annotations

import dataclasses
import types
import warnings
import weakref
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, NamedTuple

import torch
from torch import nn

from ..core.diagram import Diagram, Map, Pair
from ..core.errors import ConflictError, InvalidNameError, NoBatchError, NonFiniteError, OptionError, UnknownNameError
from ..core.evaluation import Program, Step, Term, known_sizes, explain_nonfinite, first_nonfinite, plan
from ..core.losses import check_reduction
from ..core.messages import HIDDEN_MODULE, NONFINITE_TOTAL, NOT_A_SOURCE
from . import finite, fusion
from .cache import FrozenCache, frozen_prefixes
from .data import DataSource
from .keyed import Keyed
from .losses import loss_function, returns_scalar

__all__ = ["CompiledLoss", "Losses"]

#: The ``requires_grad`` flags of modules that compilation froze, as they were before,
#: so that compiling them on a trainable edge later (after ``unfreeze``) restores them.
_FROZEN: weakref.WeakKeyDictionary[nn.Module, dict[str, bool]] = weakref.WeakKeyDictionary()


def _thaw(module: nn.Module) -> None:
    flags = _FROZEN.pop(module, None)
    if flags is not None:
        for name, p in module.named_parameters():
            p.requires_grad_(flags.get(name, True))


class Losses(NamedTuple):
    """What a compiled loss returns: the total and every weighted term by name.

    ``total == sum(terms.values())``.
    """

    total: torch.Tensor
    terms: dict[str, torch.Tensor]


class CompiledLoss(nn.Module):
    """The composite loss of a learning diagram.

    Call it with one batch per indexing vertex, ``loss({"N": batch})`` or
    ``loss(N=batch)``; vertices left out draw their next batch from their own
    data, and vertices given ``None`` have no batch in this call: the pairs that
    start there are skipped (as in Lightning's combined loaders when a data set
    runs out). It returns :class:`Losses` ``(total, terms)``.

    Parameters
    ----------
    pairs : sequence of Pair
        The compiled pairs, each ``first ≤ second``.
    maps : mapping of edge name to Map
        At least every edge on the pairs' paths.
    data : mapping of vertex name to data source
        The data of the pairs' source vertices, for drawing batches.
    check_finite : bool
        Raise :class:`~learning_diagrams.core.errors.NonFiniteError` when a call's
        total is not finite, naming the term and the first edge along its paths
        whose output is not finite (or the batch, or the loss). Also an attribute,
        to switch on and off.
    reduction : {"mean", "sum"}
        How each term reduces over its batch (see the module docstring); ``"sum"``
        needs every loss's per-sample form.
    fuse : bool or "auto"
        Run each family of parallel maps (structurally identical modules, each reading
        one value, ending at one kind of loss: :mod:`.fusion`) as one call on stacked
        parameters, and their terms as one where they can. Each term keeps its name and
        value (to floating-point reassociation); ``parameters()`` give each family's
        stacked tensors in place of its members' own, which become views of their
        slices (``state_dict()`` is unchanged). ``"auto"`` is ``True``: the families are
        found, never named. Off by default.
    groups : mapping of edge name to a hashable, optional
        With ``fuse``: edges of different groups are never fused together (a trainer
        puts maps with a learning rate or optimiser of their own in groups of their own).

    Warns
    -----
    UserWarning
        For each plain-function edge that reaches a module with parameters that no
        edge registers (see :func:`~learning_diagrams.torch.finite.hidden_modules`);
        with ``reduction="sum"``, for each source whose data set's size is unknown
        (its batch sums are then not scaled).
    """

    def __init__(
        self,
        pairs: Sequence[Pair],
        maps: Mapping[str, Map],
        data: Mapping[str, Any],
        *,
        check_finite: bool = False,
        reduction: str = "mean",
        fuse: bool | str = False,
        groups: Mapping[str, Any] | None = None,
    ):
        super().__init__()
        check_reduction(reduction)
        if not (isinstance(fuse, bool) or fuse == "auto"):  # 1 or "yes" would fuse as True does: refused, not guessed
            raise OptionError(
                f"fuse must be True (or 'auto', the same) or False, got {fuse!r}; fuse=True finds the families "
                f"of parallel maps itself and runs each of three or more as one call"
            )
        self.check_finite, self.reduction = check_finite, reduction
        self.pairs = tuple(pairs)
        used = dict.fromkeys(e for pair in self.pairs for path in (pair.first, pair.second) for e in path)
        # A snapshot: later edits of the diagram do not change a compiled loss.
        self._maps = {e: dataclasses.replace(maps[e]) for e in used}
        self.maps = nn.ModuleDict()
        for name, m in self._maps.items():
            if isinstance(m.fn, nn.Module):
                if hasattr(self.maps, name):
                    raise InvalidNameError(
                        f"edge name {name!r} clashes with an attribute of torch.nn.ModuleDict; rename the edge"
                    )
                self.maps[name] = m.fn
        self._freeze()
        self._warn_hidden_modules()
        paths = [path for pair in self.pairs for path in pair.paths]
        self._steps = plan(paths, self._maps, parametric=_parametric)  # the maps themselves, always
        self._wrapped_steps = dict(self._steps)  # through the maps' wrappers after wrap()
        #: With ``fuse=True``, the families of parallel maps, each run as one call (see :mod:`.fusion`).
        self.fused: list[fusion.FusedFamily] = fusion.fuse(self, groups.get if groups else None) if fuse else []
        self._fusions = [f.fused(terms=reduction == "mean") for f in self.fused]
        self.sources = tuple(dict.fromkeys(pair.source for pair in self.pairs))
        self._data = {s: data[s] for s in self.sources}
        sizes = self._sizes() if reduction == "sum" else {}
        self._terms = Term.of_pairs(self.pairs, reduction, sizes, function=loss_function, scalar=returns_scalar)
        self._draws: dict[str, Iterator[Any]] = {}
        self._wrappers: list[nn.Module] = []
        self._programs: dict[tuple[Any, ...], Program] = {}
        self._program(self.sources, keep=False)  # the one a call with every batch runs, built now
        #: By source vertex, the prefixes a frozen-output cache keeps (see :mod:`.cache`).
        self.frozen = frozen_prefixes(self.pairs, self._maps)
        #: The frozen-output cache that calls use (``None``: none); ``ld.fit`` sets one.
        self.cache: FrozenCache | None = None

    def _program(
        self, present: tuple[str, ...], *, keep: bool, plain: bool = False, given: tuple[Any, ...] = ()
    ) -> Program:
        """The program of the pairs whose source is in ``present``, built once.

        ``keep``: every value kept until the call returns; ``plain``: the maps
        themselves, not their wrappers (see :meth:`wrap`); ``given``: the
        ``(source, prefix)`` whose values a call gives (from the cache).
        """
        program = self._programs.get((present, keep, plain, given))
        if program is None:
            pairs = [pair for pair in self.pairs if pair.source in present]
            terms = [self._terms[name] for name in (pair.name for pair in pairs)]
            steps, fused = (self._steps, ()) if plain else (self._wrapped_steps, self._fusions)
            program = Program(pairs, steps, terms, present, keep=keep, given=given, identity=_identity, fused=fused)
            self._programs[present, keep, plain, given] = program
        return program

    @classmethod
    def from_diagram(
        cls,
        diagram: Diagram,
        *,
        weights: Mapping[str, float] | None = None,
        check_finite: bool = False,
        reduction: str = "mean",
        data: Mapping[str, Any] | None = None,
        fuse: bool | str = False,
    ) -> CompiledLoss:
        """Compile ``diagram``; ``weights`` override term weights by term name, ``data`` the vertices' data.

        See the class for ``check_finite`` and ``reduction``. Every source of a compiled
        pair needs data (:class:`~learning_diagrams.core.errors.NoBatchError` otherwise).
        """
        check_reduction(reduction)
        pairs = diagram.compiled_pairs(weights)
        sources = diagram.require_data(dict.fromkeys(pair.source for pair in pairs), data)
        return cls(pairs, diagram.maps, sources, check_finite=check_finite, reduction=reduction, fuse=fuse)

    def _sizes(self) -> dict[str, int]:
        """The size of each source's data set, where it is known; a warning for each where it is not."""
        return known_sizes(self._data, lambda data, vertex: DataSource(data, vertex).size, stacklevel=6)

    @property
    def edges(self) -> Mapping[str, Map]:
        """The compiled edges by name, as :class:`~learning_diagrams.core.diagram.Map` objects (read-only snapshot)."""
        return types.MappingProxyType(self._maps)

    @property
    def data(self) -> Mapping[str, Any]:
        """The data of each source vertex, that batches are drawn from (read-only)."""
        return types.MappingProxyType(self._data)

    # -- modes and parameters -------------------------------------------------
    def _freeze(self) -> None:
        # A parameter is trained or frozen as a whole, so no parameter may be reached from a
        # trainable edge and a frozen one: the same module on both, or a part of one module
        # that the other holds (``teacher`` frozen, ``teacher.head`` trained; a lambda calling it).
        by_module: dict[int, Map] = {}
        by_param: dict[int, tuple[Map, str]] = {}
        for m in self._maps.values():
            if not isinstance(m.fn, nn.Module):
                continue
            other = by_module.setdefault(id(m.fn), m)
            if other.trainable != m.trainable:
                trainable, frozen = (m, other) if m.trainable else (other, m)
                raise ConflictError(
                    f"one module is on trainable edge {trainable.name!r} and frozen edge "
                    f"{frozen.name!r}; freeze or unfreeze both, or give one a copy"
                )
            for key, p in m.fn.named_parameters():
                other, other_key = by_param.setdefault(id(p), (m, key))
                if other.trainable != m.trainable:
                    (trainable, t_key), (frozen, f_key) = sorted(
                        ((m, key), (other, other_key)), key=lambda e: not e[0].trainable
                    )
                    raise ConflictError(
                        f"trainable edge {trainable.name!r} and frozen edge {frozen.name!r} share a parameter "
                        f"({t_key!r} of the one, {f_key!r} of the other); freeze or unfreeze both, "
                        f"or give one a copy"
                    )
        for m in self._maps.values():
            if not isinstance(m.fn, nn.Module):
                continue
            if m.trainable:
                _thaw(m.fn)
            else:
                if m.fn not in _FROZEN:  # its flags as the user left them, read once (not rebuilt at each compile)
                    _FROZEN[m.fn] = {name: p.requires_grad for name, p in m.fn.named_parameters()}
                m.fn.requires_grad_(False).eval()

    def _warn_hidden_modules(self) -> None:
        inside = finite.registered_ids(self.maps.values())
        for m in self._maps.values():
            if m.fn is None or isinstance(m.fn, nn.Module):
                continue
            for label, module in finite.hidden_modules(m.fn, inside=inside):
                count = sum(p.numel() for p in module.parameters())
                kind = f"a {type(module).__name__}"
                message = HIDDEN_MODULE.format(edge=m.name, module=label, kind=kind, count=count)
                warnings.warn(message, UserWarning, stacklevel=4)

    def trainable_maps(self) -> dict[str, nn.Module]:
        """The modules of the trainable edges by edge name (a module on two edges appears twice)."""
        return {name: self.maps[name] for name, m in self._maps.items() if m.trainable and name in self.maps}

    def wrap(self, wrapper: Callable[[nn.Module], nn.Module]) -> None:
        """Call every trainable module through ``wrapper(module)`` (one wrapper per module object).

        The wrapped modules stay registered as they were, so ``state_dict()`` keys do not
        change; only the calls go through the wrappers. Used to put each trainable map, and
        only those, under ``DistributedDataParallel``.
        """
        wrapped: dict[int, nn.Module] = {}
        members = {e for family in self.fused for e in family.family.edges}
        for k, family in enumerate(self.fused):  # a family runs as one module: it is wrapped whole
            if any(p.requires_grad for p in family.parameters()):
                wrapped[id(family)] = wrapper(family)
                self._fusions[k] = dataclasses.replace(self._fusions[k], call=wrapped[id(family)])
        for name, module in self.trainable_maps().items():
            if name in members:
                continue
            if id(module) not in wrapped:
                wrapped[id(module)] = wrapper(module)
            m = self._maps[name] = dataclasses.replace(self._maps[name], fn=wrapped[id(module)])
            steps = self._wrapped_steps
            for prefix, step in steps.items():
                if step.map.name == name:
                    steps[prefix] = dataclasses.replace(step, map=m)
        self._wrappers = list(wrapped.values())  # a plain list: not registered, state_dict unchanged
        self._programs.clear()  # their operations call the maps themselves: lay them out again
        self._program(self.sources, keep=False)
        for w in self._wrappers:
            w.training = self.training

    def named_parameters(self, prefix: str = "", recurse: bool = True, remove_duplicate: bool = True):
        """The trainable maps' parameters (frozen maps' are left out)."""
        # Computed at each call, not kept: ids do not survive a copy or a pickle (ddp_spawn).
        frozen = {
            id(p)
            for m in self._maps.values()
            if not m.trainable and isinstance(m.fn, nn.Module)
            for p in m.fn.parameters()
        }
        # A fused family's members' parameters are views of its stacked tensors: those, where its first member's were.
        members = fusion.members_of(self.fused)
        for name, p in super().named_parameters(prefix, recurse, remove_duplicate):
            if id(p) in frozen:
                continue
            if id(p) not in members:
                yield name, p
                continue
            f, k, i = members[id(p)]
            if i == 0:
                family = self.fused[f]
                yield f"{prefix}{'.' if prefix else ''}fused.{f}.{family.names[k]}", family.stacked[k]

    def _apply(self, fn: Callable[..., Any], recurse: bool = True) -> CompiledLoss:
        super()._apply(fn, recurse)
        for family in self.fused:  # moved or converted apart from their members: views of the stacks again
            family._apply(fn)
            family.repoint()
        return self

    def train(self, mode: bool = True) -> CompiledLoss:
        """Set the trainable maps' mode; frozen maps, and maps with ``training=False``, stay in eval mode."""
        super().train(mode)
        for w in self._wrappers:
            w.training = mode
        for m in self._maps.values():
            if isinstance(m.fn, nn.Module) and not (m.trainable and m.training):
                m.fn.eval()
        return self

    # -- evaluation -----------------------------------------------------------
    def draw(self) -> dict[str, Any]:
        """The next batch of every source vertex, from its own data."""
        return {s: self._draw(s) for s in self.sources}

    def _draw(self, source: str) -> Any:
        if source not in self._draws:
            data = self._data[source]
            if self.cache is not None:  # drawn batches come keyed, where the cache can key them
                data = self.cache.keyed(data, source)
            self._draws[source] = DataSource(data, source).forever()
        return next(self._draws[source])

    def forward(self, batches: Mapping[str, Any] | None = None, /, **named: Any) -> Losses:
        given = {**(batches or {}), **named} if named else batches if batches is not None else {}
        inputs, present, keys = self._inputs(given, draw=True)
        cached: tuple[Any, ...] = ()
        if keys and self.cache is not None:
            cached, found = self.cache.values(self, present, inputs, keys)
            inputs += found
        program = self._program(present, keep=self.check_finite, given=cached)
        values, total, slots = program.run(inputs, torch.no_grad)  # total: the terms added in order, no `0 +`
        if not values:
            raise NoBatchError(f"no source vertex has a batch in this call (sources: {', '.join(self.sources)})")
        terms = dict(zip(program.names, values))
        if self.check_finite and not bool(torch.isfinite(total).all()):
            raise NonFiniteError(self._why_nonfinite(program.pairs, program.values(slots), terms, total))
        return Losses(total, terms)

    def _why_nonfinite(
        self, pairs: Sequence[Pair], values: Mapping[str, Any], terms: Mapping[str, Any], total: Any
    ) -> str:
        for pair in pairs:
            term = terms[pair.name]
            if not finite.is_finite(term):
                prefix = first_nonfinite(pair, values[pair.source], finite.is_finite)
                return explain_nonfinite(pair, prefix, self._steps, finite.describe_value(term))
        return NONFINITE_TOTAL.format(value=finite.describe_value(total))

    @property
    def steps(self) -> Mapping[tuple[str, ...], Step]:
        """The evaluation plan: one step per path prefix, calling the maps themselves (read-only)."""
        return types.MappingProxyType(self._steps)

    def outputs(self, batches: Mapping[str, Any] | None = None, draw: bool = True) -> list[tuple[Pair, Any, Any]]:
        """Each compiled pair with the values of its two paths on one batch per source vertex.

        Metrics use it to score the paths that the loss compares. A source given
        ``None`` has no batch; with ``draw=False`` nothing is drawn either. Only the
        pairs whose source has a batch are computed.
        """
        return self.trace(batches, draw=draw)[0]

    def trace(
        self, batches: Mapping[str, Any] | None = None, *, draw: bool = True, plain: bool = False
    ) -> tuple[list[tuple[Pair, Any, Any]], dict[str, dict[tuple[str, ...], Any]]]:
        """:meth:`outputs`, and the value of every path prefix by source vertex (``()``: the batch).

        ``plain=True`` calls the maps themselves rather than their distributed
        wrappers (see :meth:`wrap`), as a diagnosis that runs in one process must.
        The paths are evaluated as a call evaluates them, in the same order.
        """
        inputs, present, keys = self._inputs(batches or {}, draw=draw)
        cached: tuple[Any, ...] = ()
        if keys and self.cache is not None and not plain:
            cached, found = self.cache.values(self, present, inputs, keys)
            inputs += found
        program = self._program(present, keep=True, plain=plain, given=cached)
        _, _, slots = program.run(inputs, torch.no_grad, terms=False)
        return program.outputs(slots), program.values(slots)

    def _inputs(self, given: Mapping[str, Any], *, draw: bool) -> tuple[list[Any], tuple[str, ...], dict[str, Any]]:
        """The batch of each source that has one in this call (given, else drawn when ``draw``), those sources,
        and the keys of the batches that came :class:`~.keyed.Keyed` (unwrapped: the maps see the batch).

        A source given ``None`` has none; so has one not given when nothing is drawn.
        """
        if given:
            self.check_sources(given, "a batch")
        inputs, present, keys = [], [], {}
        for s in self.sources:
            batch = given[s] if s in given else self._draw(s) if draw else None
            if batch is not None:
                if type(batch) is Keyed:
                    batch, keys[s] = batch
                inputs.append(batch)
                present.append(s)
        return inputs, tuple(present), keys

    def term(self, pair: Pair, first: Any, second: Any, *, scaled: bool = True) -> torch.Tensor:
        """The weighted term of ``pair`` (a compiled pair of this loss) on its two paths' values.

        Under ``reduction="sum"``, ``scaled=False`` leaves the batch's sum unscaled by
        ``|data set| / |batch|`` (held-out data is summed batch by batch).
        """
        return self._terms[pair.name](first, second, scaled=scaled)

    def check_sources(self, given: Mapping[str, Any], what: str) -> None:
        """Raise :class:`UnknownNameError` if ``given`` has a key that is no source vertex of a compiled pair."""
        for vertex in given:
            if vertex not in self.sources:
                raise UnknownNameError(NOT_A_SOURCE.format(what=what, vertex=vertex, sources=", ".join(self.sources)))

    def explain_nonfinite(self, batches: Mapping[str, Any]) -> str | None:
        """Why this loss, or its gradient, is not finite on ``batches``; None if all is finite.

        See :func:`~learning_diagrams.torch.finite.explain`. It evaluates the pairs
        once more, with autograd but leaving every ``.grad`` alone; in training mode
        that draws random numbers and updates BatchNorm statistics, which a caller
        that goes on training saves and restores around it (the trainer does).
        """
        return finite.explain(self, batches)

    def extra_repr(self) -> str:
        lines = [f"({i}): {pair.weight:g} * {pair.loss.name}[{pair.name}]" for i, pair in enumerate(self.pairs)]
        return "\n".join(lines + (["reduction=sum"] if self.reduction == "sum" else []))


def _parametric(fn: Any) -> bool:
    return isinstance(fn, nn.Module)


def _identity(fn: Any) -> bool:
    """Whether calling ``fn`` only returns its argument: a ``torch.nn.Identity`` that no hook watches.

    A program reads such an edge's argument rather than calling it (see
    :class:`~learning_diagrams.core.evaluation.Program`); the hooks are looked at
    when the program is laid out, at compile time.
    """
    hooks = torch.nn.modules.module
    return type(fn) is nn.Identity and not (
        fn._forward_hooks
        or fn._forward_pre_hooks
        or fn._backward_hooks
        or fn._backward_pre_hooks
        or hooks._global_forward_hooks
        or hooks._global_forward_pre_hooks
        or hooks._global_backward_hooks
        or hooks._global_backward_pre_hooks
    )
