"""Evaluating a diagram's paths, as every back end must: the semantics written once.

A compiled loss evaluates, on one batch per indexing vertex, the two paths of
every compiled pair. What any back end must honour is fixed here:

* **Each path prefix is evaluated once per batch.** :func:`plan` lists one
  :class:`Step` per prefix of the given paths, and :class:`Evaluator` caches
  each prefix's value, so a backbone shared by fifty heads runs once.
* **A call does only what a hand-written loss would.** :class:`Program` is the
  same evaluation laid out once, when a loss is compiled, as a flat list of
  operations on numbered slots: it calls the maps' functions directly, and
  drops each prefix's value as soon as no later operation or term reads it.
  A failing map is reported exactly as :meth:`Map.__call__` reports it.
* **Frozen maps are constants.** A step carries ``grad``: whether gradients
  must flow through it, which they must when its map is trainable or a
  trainable map with parameters precedes it on its path. A back end runs the
  other steps without autograd (:meth:`Evaluator.apply`).
* **A term is** ``weight * loss(first, second)``, named by its pair, a failing
  loss reported with its pair and vertex (:class:`Term`). Under the reduction
  ``"sum"`` the loss is the per-sample form, and the term is
  ``weight * (size / |B|) * Σ_{x∈B} d(first x, second x)``, ``size`` the
  number of samples in the data set of the pair's source (unscaled when unknown).
* **A non-finite term is traced to its first non-finite value**: the batch,
  then the prefixes of the first path, then those of the second, in order
  (:func:`first_nonfinite`); :func:`explain_nonfinite` says which in words.

A dry run checks the value at every vertex against the vertex's annotation
(:func:`check_value`) and reports what it saw (:class:`CheckReport`).

>>> from learning_diagrams.core import Diagram
>>> d = Diagram().space("N", data=[3]).space("X").map("f", "N", "X", abs).map("g", "X", "X", lambda v: v + 1)
>>> steps = plan([d.path("f·g")], d.maps, parametric=lambda fn: False)
>>> [(prefix, step.grad) for prefix, step in steps.items()]
[(('f',), True), (('f', 'g'), True)]
>>> Evaluator(steps).value(("f", "g"), {(): -3})
4
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import heapq
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NoReturn

from .arrays import is_array
from .errors import MapError, TypeMismatchError
from .graph import Path
from .messages import (
    LOSS_FAILED,
    LOSS_NOT_SCALAR,
    NONFINITE_BATCH,
    NONFINITE_EDGE,
    NONFINITE_LOSS,
    NONFINITE_TERM,
    PER_SAMPLE_NOT_VECTOR,
    UNKNOWN_SIZE,
)
from .types import conforms, describe

if TYPE_CHECKING:
    from .diagram import Diagram, Map, Pair

__all__ = [
    "Step",
    "plan",
    "Evaluator",
    "Program",
    "Operation",
    "Term",
    "first_nonfinite",
    "explain_nonfinite",
    "CheckReport",
    "check_value",
]


@dataclass(frozen=True)
class Step:
    """Apply ``map`` to the value of the prefix one edge shorter.

    ``along`` is the prefix as a path (for error messages); ``grad`` says whether
    gradients must flow through the step.
    """

    map: Map
    along: Path
    grad: bool


def plan(
    paths: Iterable[Path], maps: Mapping[str, Map], *, parametric: Callable[[Any], bool]
) -> dict[tuple[str, ...], Step]:
    """One :class:`Step` per non-empty prefix of ``paths``, keyed by the prefix's edges.

    ``parametric(fn)`` tells whether a map's function holds parameters (a
    ``torch.nn.Module`` on PyTorch): a trainable map with parameters makes every
    later step of its path need gradients, even a frozen one.
    """
    steps: dict[tuple[str, ...], Step] = {}
    for path in paths:
        upstream = False
        for i, e in enumerate(path.edges):
            m = maps[e]
            steps[path.edges[: i + 1]] = Step(m, Path(path.source, m.tgt, path.edges[: i + 1]), m.trainable or upstream)
            upstream = upstream or (m.trainable and parametric(m.fn))
    return steps


class Evaluator:
    """The values of paths on one batch, each prefix computed once.

    ``values`` maps prefixes (tuples of edge names) to their values and starts as
    ``{(): batch}``; :meth:`value` fills it in as it goes. Back ends override
    :meth:`apply` to run the steps that need no gradients without autograd.
    """

    def __init__(self, steps: Mapping[tuple[str, ...], Step]):
        self.steps = dict(steps)

    def value(self, edges: tuple[str, ...], values: dict[tuple[str, ...], Any]) -> Any:
        """The value of the path ``edges``, reusing and caching the values of its prefixes."""
        known = len(edges)
        while edges[:known] not in values:
            known -= 1
        x = values[edges[:known]]
        for i in range(known, len(edges)):
            prefix = edges[: i + 1]
            x = values[prefix] = self.apply(self.steps[prefix], x)
        return x

    def apply(self, step: Step, x: Any) -> Any:
        """Run one step (with autograd, if the back end has one)."""
        return step.map(x, along=step.along)


@dataclass(frozen=True)
class Operation:
    """One operation of a :class:`Program`: apply ``step`` to slot ``source``, into slot ``target``.

    ``prefix`` is the path whose value it computes; ``drop`` the slots that no later
    operation or term reads, emptied after it.
    """

    step: Step
    prefix: tuple[str, ...]
    source: int
    target: int
    drop: tuple[int, ...]


class Program:
    """The evaluation of ``pairs`` laid out once as a flat list of operations: what every call runs.

    It computes what :class:`Evaluator` computes (each prefix once, then the terms
    in pair order) without its per-call work: the values live in numbered slots
    (first one batch per source, in ``sources`` order, then one per distinct
    prefix), each operation names the slot it reads and the slot it writes, and
    after each operation or term the slots that nothing later reads are emptied,
    so a prefix's value is dropped as soon as no remaining path needs it (unless
    ``keep``, for a caller that traces values afterwards).

    **Order.** Prefixes are evaluated pair by pair, each pair's first path, then its
    second, except that a step needing no gradient (a frozen map that no
    trainable module precedes, run without autograd) runs as soon as its input is
    ready, as a hand-written distillation step runs its teacher first: the
    transient memory of frozen work then never sits on top of the activations
    that trainable maps keep for the backward pass. Frozen maps are in eval mode,
    so this moves no random draw of a module's own.

    Parameters
    ----------
    pairs : sequence of Pair
        The pairs to evaluate, all starting at one of ``sources``.
    steps : mapping of prefix to Step
        At least one step per prefix of the pairs' paths (:func:`plan`).
    terms : sequence of Term
        One per pair, in the same order.
    sources : sequence of str
        The vertices whose batches a call gives, in the order it gives them.
    keep : bool
        Keep every value until the call returns (for :meth:`values`).
    given : sequence of (source, prefix)
        Prefixes whose values a call gives, after the batches (a cache of frozen
        outputs): they are not computed, nor are the prefixes only they need.
    identity : callable, optional
        ``identity(fn)`` tells whether a map's function returns its argument itself
        (a ``torch.nn.Identity`` without hooks): such a step is no operation, its
        prefix's value is its argument, read from the same slot, as a hand-written
        loss would not call it either.

    Examples
    --------
    >>> from learning_diagrams.core import Diagram, losses
    >>> d = Diagram().space("N", data=[0]).space("Y", loss=losses.l1).space("X")
    >>> d = d.map("f", "N", "X", lambda v: v + 1).map("g", "X", "Y", abs).map("h", "N", "Y", abs).relate("f·g", "h")
    >>> pair = d.parallel_pairs()[0]
    >>> steps = plan([d.path("f·g"), d.path("h")], d.maps, parametric=lambda fn: False)
    >>> import numpy as np
    >>> program = Program([pair], steps, [Term(pair, lambda a, b: np.float64(a - b))], ["N"])
    >>> [(op.prefix, op.source, op.target, op.drop) for op in program.operations]
    [(('f',), 0, 1, ()), (('f', 'g'), 1, 2, (1,)), (('h',), 0, 3, (0,))]
    >>> terms, slots = program.run([-3], contextlib.nullcontext)
    >>> [float(t) for t in terms], slots
    ([-1.0], [None, None, None, None])
    """

    def __init__(
        self,
        pairs: Sequence[Pair],
        steps: Mapping[tuple[str, ...], Step],
        terms: Sequence[Term],
        sources: Sequence[str],
        *,
        keep: bool = False,
        given: Sequence[tuple[str, tuple[str, ...]]] = (),
        identity: Callable[[Any], bool] | None = None,
    ):
        self.pairs, self.sources, self.keep = tuple(pairs), tuple(sources), keep
        self.given = tuple(given)
        self.names = tuple(pair.name for pair in self.pairs)  # a Pair computes its name at each access
        inputs = [(s, ()) for s in self.sources] + list(self.given)
        slots: dict[tuple[str, tuple[str, ...]], int] = {key: i for i, key in enumerate(inputs)}
        # The prefixes some path needs computed: back from each end, up to a given value.
        needed: set[tuple[str, tuple[str, ...]]] = set()
        for pair in self.pairs:
            for path in (pair.first, pair.second):
                for i in range(len(path), 0, -1):
                    if (pair.source, path[:i]) in slots:
                        break
                    needed.add((pair.source, path[:i]))
        planned: list[tuple[tuple[str, ...], Step, int, int]] = []
        count = len(inputs)  # slots in use: an identity step's prefix shares its argument's
        for pair in self.pairs:
            for path in (pair.first, pair.second):
                for i in range(len(path)):
                    prefix = path[: i + 1]
                    if (pair.source, prefix) in needed and (pair.source, prefix) not in slots:
                        step, source = steps[prefix], slots[pair.source, path[:i]]
                        if identity is not None and step.map.fn is not None and identity(step.map.fn):
                            slots[pair.source, prefix] = source
                            continue
                        slots[pair.source, prefix], count = count, count + 1
                        planned.append((prefix, step, source, count - 1))
        self.slots = slots
        planned = _frozen_first(planned, len(inputs))
        ends = [(slots[p.source, p.first], slots[p.source, p.second]) for p in self.pairs]
        # The last position (operations first, then terms) that reads each slot: it is emptied there.
        last: dict[int, int] = {}
        for position, (_, _, source, _) in enumerate(planned):
            last[source] = position
        for position, (a, b) in enumerate(ends, len(planned)):
            last[a] = last[b] = position
        drops: dict[int, list[int]] = {}
        if not keep:
            for slot, position in last.items():
                drops.setdefault(position, []).append(slot)
        self.operations = tuple(
            Operation(step, prefix, source, target, tuple(sorted(drops.get(position, ()))))
            for position, (prefix, step, source, target) in enumerate(planned)
        )
        self.terms = tuple(terms)
        self._ends = tuple(ends)
        # The hot loops read plain tuples. A term: (Term, its function when the term is direct, else None,
        # its weight unless 1, the two slots, slots to empty); a direct term is computed in the loop, as a
        # hand-written loss computes it: the function, then the weight (no multiplication by 1).
        self._term_ops = tuple(
            (
                term,
                term.fn if term.direct else None,
                term.pair.weight if term.pair.weight != 1.0 else None,
                a,
                b,
                tuple(sorted(drops.get(position, ()))),
            )
            for position, (term, (a, b)) in enumerate(zip(self.terms, ends), len(planned))
        )
        # An operation: (function, source, target, needs gradients, slots to empty, step). An edge without
        # a function gets one that raises, so the failure is reported as Map.__call__ does.
        self._ops: tuple[tuple[Callable[[Any], Any], int, int, bool, tuple[int, ...], Step], ...] = tuple(
            (op.step.map.fn or _no_function, op.source, op.target, op.step.grad, op.drop, op.step)
            for op in self.operations
        )
        self._blank = [None] * (count - len(inputs))
        # Without ``keep`` every slot is emptied by the end, so a call needs no list of them: it runs the
        # same operations and terms written out as straight-line code (see _straight_line).
        emptied = {slot for _, _, _, _, drop, _ in self._ops for slot in drop}
        emptied.update(slot for *_, drop in self._term_ops for slot in drop)
        self._inputs = len(inputs)
        # Past STRAIGHT_LINE_LIMIT operations and terms the loop runs instead: Python's compiler takes
        # time more than linear in a function's size, and a step of thousands of maps is not overhead-bound.
        small = len(self._ops) + len(self._term_ops) <= STRAIGHT_LINE_LIMIT
        straight = small and len(emptied) == count
        self._straight = _straight_line(self._ops, self._term_ops, self._inputs) if straight else None

    def __getstate__(self) -> dict[str, Any]:
        # The straight-line function is made by exec, so pickle cannot name it (ddp_spawn pickles a
        # compiled loss): a flag goes instead, and the function is made again where the program is loaded.
        return {**self.__dict__, "_straight": self._straight is not None}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._straight = _straight_line(self._ops, self._term_ops, self._inputs) if state["_straight"] else None

    def run(
        self, batches: Sequence[Any], quiet: Callable[[], contextlib.AbstractContextManager[Any]], *, terms: bool = True
    ) -> tuple[list[Any], list[Any]]:
        """The weighted terms of the pairs on ``batches`` (one per source, then one per ``given`` prefix), and the
        slots as they end.

        ``quiet()`` is the back end's context without gradients (``torch.no_grad``),
        entered around each step that needs none. A map that raises is reported as
        :meth:`Map.__call__` reports it (:class:`MapError` naming edge, path and value);
        a loss, as :class:`Term` reports it. With ``terms=False`` only the paths are
        evaluated (see :meth:`outputs`).
        """
        if terms and self._straight is not None:
            return self._straight(quiet, *batches), [None] * (len(batches) + len(self._blank))
        slots = [*batches, *self._blank]
        for fn, source, target, grad, drop, step in self._ops:
            try:  # free when nothing raises (Python 3.11's zero-cost exceptions)
                if grad:
                    slots[target] = fn(slots[source])
                else:
                    with quiet():
                        slots[target] = fn(slots[source])
            except Exception as err:
                _failed(step, slots[source], err)
            if drop:
                for slot in drop:
                    slots[slot] = None
        values = []
        if terms:
            for term, direct, weight, a, b, drop in self._term_ops:
                if direct is None:
                    value = term(slots[a], slots[b])
                else:
                    try:
                        value = direct(slots[a], slots[b])
                    except Exception as err:
                        term.failed(slots[a], slots[b], err)
                    if weight is not None:
                        value = weight * value
                values.append(value)
                if drop:
                    for slot in drop:
                        slots[slot] = None
        return values, slots

    def outputs(self, slots: Sequence[Any]) -> list[tuple[Pair, Any, Any]]:
        """Each pair with the values of its two paths, from the slots of a call run with ``terms=False``."""
        return [(pair, slots[a], slots[b]) for pair, (a, b) in zip(self.pairs, self._ends)]

    def values(self, slots: Sequence[Any]) -> dict[str, dict[tuple[str, ...], Any]]:
        """The slots of a call as :meth:`Evaluator.value` fills them: by source, the value of each prefix."""
        found: dict[str, dict[tuple[str, ...], Any]] = {s: {} for s in self.sources}
        for (source, prefix), slot in self.slots.items():
            found[source][prefix] = slots[slot]
        return found


#: The most operations and terms a :class:`Program` writes out as straight-line code.
STRAIGHT_LINE_LIMIT = 2_000


def _straight_line(
    ops: Sequence[tuple[Callable[[Any], Any], int, int, bool, tuple[int, ...], Step]],
    term_ops: Sequence[tuple[Term, Callable[[Any, Any], Any] | None, float | None, int, int, tuple[int, ...]]],
    inputs: int,
) -> Callable[..., list[Any]]:
    """What :meth:`Program.run` computes with every slot emptied by the end, as one function of straight-line code.

    ``run(quiet, *inputs)`` returns the terms. Each slot is a local variable and each
    operation one line, calling the map's function on one variable into another (in
    ``quiet()`` when it needs no gradient); each term one line, then its weight; an
    emptied slot is deleted where the loop would empty it. The same calls in the same
    order, on the same values, without the loop's work: unpacking a tuple, indexing a
    list, testing flags, at every operation of every call. A failure is reported
    exactly as the loop reports it.
    """
    names: dict[str, Any] = {"_failed": _failed}
    args = ", ".join(f"s{i}" for i in range(inputs))
    lines = [f"def run(quiet{', ' if args else ''}{args}):"]

    def forget(drop: tuple[int, ...]) -> None:
        if drop:
            lines.append(f"    del {', '.join(f's{slot}' for slot in drop)}")

    for k, (fn, source, target, grad, drop, step) in enumerate(ops):
        names[f"f{k}"], names[f"step{k}"] = fn, step
        indent = "    " if grad else "        "
        if not grad:
            lines.append("    with quiet():")
        lines += [
            f"{indent}try:",
            f"{indent}    s{target} = f{k}(s{source})",
            f"{indent}except Exception as err:",
            f"{indent}    _failed(step{k}, s{source}, err)",
        ]
        forget(drop)
    for k, (term, direct, weight, a, b, drop) in enumerate(term_ops):
        names[f"t{k}"], names[f"d{k}"], names[f"w{k}"] = term, direct, weight
        if direct is None:
            lines.append(f"    v{k} = t{k}(s{a}, s{b})")
        else:
            lines += [
                "    try:",
                f"        v{k} = d{k}(s{a}, s{b})",
                "    except Exception as err:",
                f"        t{k}.failed(s{a}, s{b}, err)",
            ]
            if weight is not None:
                lines.append(f"    v{k} = w{k} * v{k}")
        forget(drop)
    lines.append(f"    return [{', '.join(f'v{k}' for k in range(len(term_ops)))}]")
    exec(_code("\n".join(lines)), names)  # only names and numbers of ours
    # Taken out of its own globals: a function its globals hold is a reference cycle, which would keep
    # the maps it calls alive until the garbage collector runs, not until the program is dropped (a
    # DistributedDataParallel wrapper then dies at exit, when destroying it can deadlock).
    return names.pop("run")


@functools.lru_cache(maxsize=32)
def _code(source: str) -> Any:
    """``source`` compiled, once: a code object holds no value, only the names it reads.

    Compiling is most of what laying out a program costs, and the text depends only on
    the program's shape (slot numbers, which steps need gradients, which terms have a
    weight), so a loss compiled again (each ``ld.fit`` compiles its diagram) finds its
    code here; the functions and weights are bound by ``exec`` into a fresh namespace.
    """
    return compile(source, "<learning_diagrams program>", "exec")


def _frozen_first(
    planned: list[tuple[tuple[str, ...], Step, int, int]], ready: int
) -> list[tuple[tuple[str, ...], Step, int, int]]:
    """``planned`` (prefix, step, source slot, target slot) reordered so that each step needing no gradient
    runs as soon as its source slot is ready; the others keep their order. Slots below ``ready`` are batches.
    """
    waiting: dict[int, list[int]] = {}  # a slot's readers that need no gradient, by position in planned
    for position, (_, step, source, _) in enumerate(planned):
        if not step.grad:
            waiting.setdefault(source, []).append(position)
    if not waiting:
        return planned
    order: list[int] = []
    placed: set[int] = set()
    runnable: list[int] = []

    def settle(slot: int) -> None:
        for position in waiting.pop(slot, ()):
            heapq.heappush(runnable, position)

    def drain() -> None:
        while runnable:
            position = heapq.heappop(runnable)
            order.append(position)
            placed.add(position)
            settle(planned[position][3])

    for slot in range(ready):
        settle(slot)
    drain()
    for position in range(len(planned)):
        if position not in placed:
            order.append(position)
            settle(planned[position][3])
            drain()
    return [planned[position] for position in order]


def _no_function(_: Any) -> NoReturn:
    raise TypeError("the edge has no function")


def _failed(step: Step, x: Any, err: Exception) -> NoReturn:
    """Raise what ``step.map(x, along=step.along)`` raises when the map's function raises ``err``."""
    if step.map.fn is not None:

        def again(_: Any) -> NoReturn:
            raise err

        step = dataclasses.replace(step, map=dataclasses.replace(step.map, fn=again))
    step.map(x, along=step.along)  # raises: MapError from err, or the edge has no function
    raise err  # pragma: no cover - Map.__call__ always raises here


def known_sizes(data: Mapping[str, Any], size: Callable[[Any, str], int | None], *, stacklevel: int) -> dict[str, int]:
    """The size of each source's data set (``size(data, vertex)``, a back end's reading), where it is
    known; a ``UserWarning`` for each where it is not (``reduction="sum"`` then leaves its sums unscaled)."""
    sizes = {}
    for vertex, source in data.items():
        n = size(source, vertex)
        if n is None:
            message = UNKNOWN_SIZE.format(vertex=vertex, kind=type(source).__name__)
            warnings.warn(message, UserWarning, stacklevel=stacklevel + 1)
        else:
            sizes[vertex] = n
    return sizes


@dataclass(frozen=True)
class Term:
    """The term ``weight * loss(first, second)`` of a pair, with the back end's formula of its loss.

    With ``reduction="sum"``, ``fn`` is the loss's per-sample form (one value per
    sample) and the term is their sum, scaled by ``size / |B|`` when the size of
    the source's data set is known: the unbiased estimate of the paper's sum over
    the data set. Called with ``scaled=False`` it is the batch's own sum.

    ``scalar=True`` says that ``fn`` always returns a scalar (a back end's own
    batch-mean formula, such as ``torch.nn.functional.mse_loss``): under the
    reduction ``"mean"`` the term is then ``fn``'s value, weighted, and a
    :class:`Program` computes it without a call of its own (:attr:`direct`). Any
    other function's value is checked to be a scalar, at every call.

    >>> from learning_diagrams.core import Diagram, losses
    >>> pair = Diagram().space("N", data=[0]).space("Y", loss=losses.l1).map("f", "N", "Y", abs).map(
    ...     "g", "N", "Y", abs).relate("f", "g").parallel_pairs()[0]
    >>> import numpy as np
    >>> term = Term(pair, lambda a, b: np.abs(a - b), reduction="sum", size=10)
    >>> float(term(np.array([1.0, 2.0]), np.zeros(2))), float(term(np.array([1.0, 2.0]), np.zeros(2), scaled=False))
    (15.0, 3.0)
    """

    pair: Pair
    fn: Callable[[Any, Any], Any]
    reduction: str = "mean"
    size: int | None = None
    scalar: bool = False

    @classmethod
    def of_pairs(
        cls,
        pairs: Sequence[Pair],
        reduction: str,
        sizes: Mapping[str, int],
        *,
        function: Callable[..., Callable[[Any, Any], Any]],
        scalar: Callable[[Any, str], bool],
    ) -> dict[str, Term]:
        """Each pair's term by name, with a back end's ``function(loss, reduction, pair=, target=)``
        (its ``loss_function``) and ``scalar(loss, reduction)`` (its ``returns_scalar``); ``sizes``
        are the known data set sizes by source vertex (for ``reduction="sum"``)."""
        return {
            pair.name: cls(
                pair,
                function(pair.loss, reduction, pair=pair.name, target=pair.target),
                reduction,
                sizes.get(pair.source),
                scalar=scalar(pair.loss, reduction),
            )
            for pair in pairs
        }

    @property
    def direct(self) -> bool:
        """Whether the term is ``weight * fn(first, second)`` with nothing to check or reduce."""
        return self.scalar and self.reduction == "mean"

    def __call__(self, first: Any, second: Any, *, scaled: bool = True) -> Any:
        try:
            value = self.fn(first, second)
        except Exception as err:
            self.failed(first, second, err)
        if self.reduction == "sum":
            value = self._sum(value, scaled)
        if not (is_array(value) and len(value.shape) == 0):  # a sum of terms must be a scalar to train on
            p = self.pair
            raise TypeMismatchError(
                LOSS_NOT_SCALAR.format(loss=p.loss.name, target=p.target, value=describe(value), pair=p.name)
            )
        return value if self.pair.weight == 1.0 else self.pair.weight * value

    def failed(self, first: Any, second: Any, err: Exception) -> NoReturn:
        """Raise :class:`MapError`, from ``err``, naming the loss, its vertex and its pair, for ``fn`` raising ``err``."""
        raise MapError(
            LOSS_FAILED.format(
                loss=self.pair.loss.name,
                target=self.pair.target,
                pair=self.pair.name,
                first=describe(first),
                second=describe(second),
                error=type(err).__name__,
                message=err,
            )
        ) from err

    def _sum(self, per_sample: Any, scaled: bool) -> Any:
        """``Σ`` of the per-sample values, times ``size / |B|`` when ``scaled`` and the size is known."""
        if not (is_array(per_sample) and len(per_sample.shape) == 1):
            p = self.pair
            raise TypeMismatchError(
                PER_SAMPLE_NOT_VECTOR.format(loss=p.loss.name, target=p.target, value=describe(per_sample), pair=p.name)
            )
        total = per_sample.sum()
        count = per_sample.shape[0]
        return total * (self.size / count) if scaled and self.size is not None and count else total


def first_nonfinite(
    pair: Pair, values: Mapping[tuple[str, ...], Any], finite: Callable[[Any], bool]
) -> tuple[str, ...] | None:
    """The first prefix along ``pair``'s paths whose value in ``values`` is not finite, else None.

    The order is the order of evaluation: the batch (the empty prefix), then each
    prefix of ``pair.first``, then each of ``pair.second``. ``finite(value)`` is the
    back end's test; prefixes missing from ``values`` are passed over.

    >>> from learning_diagrams.core import Diagram, losses
    >>> d = Diagram().space("N", data=[1.0]).space("Y", loss=losses.l1)
    >>> d = d.space("X").map("f", "N", "X", abs).map("g", "X", "Y", abs).map("h", "N", "Y", abs).relate("f·g", "h")
    >>> pair = d.parallel_pairs()[0]
    >>> first_nonfinite(pair, {(): 1.0, ("f",): 2.0, ("f", "g"): float("nan")}, lambda v: v == v)
    ('f', 'g')
    """
    prefixes = [(), *(path[: i + 1] for path in (pair.first, pair.second) for i in range(len(path)))]
    for prefix in prefixes:
        if prefix in values and not finite(values[prefix]):
            return prefix
    return None


def explain_nonfinite(
    pair: Pair, prefix: tuple[str, ...] | None, steps: Mapping[tuple[str, ...], Step], value: str
) -> str:
    """Say in words why the term of ``pair`` is ``value`` ("nan", "inf"): its first non-finite prefix.

    ``prefix`` is what :func:`first_nonfinite` found: ``()`` is the batch, ``None``
    means every value was finite and the loss itself gave ``value``.
    """
    if prefix is None:
        culprit = NONFINITE_LOSS.format(loss=pair.loss.name, target=pair.target, value=value)
    elif not prefix:
        culprit = NONFINITE_BATCH.format(vertex=pair.source)
    else:
        step = steps[prefix]
        culprit = NONFINITE_EDGE.format(name=step.map.name, src=step.map.src, tgt=step.map.tgt, path=step.along)
    return NONFINITE_TERM.format(pair=pair.name, value=value, culprit=culprit)


def check_value(diagram: Diagram, path: Path, value: Any) -> None:
    """Raise :class:`TypeMismatchError` if ``value``, at the end of ``path``, does not fit its vertex's annotation."""
    annotation = diagram.spaces[path.target].type
    reason = conforms(value, annotation)
    if reason:
        if path.edges:
            e = path.edges[-1]
            by = f"edge {e!r} ({diagram.graph.src(e)} → {path.target}) gave a {describe(value)} at"
        else:
            by = f"the batch is a {describe(value)} at"
        raise TypeMismatchError(
            f"{by} vertex {path.target!r} (path {path}), which is annotated {annotation!r}: {reason}"
        )


@dataclass(frozen=True)
class CheckReport:
    """What a dry run saw: one row ``(vertex, path, value description)`` per path, and each term."""

    rows: tuple[tuple[str, str, str], ...]
    terms: dict[str, float]

    def __str__(self) -> str:
        table = [("vertex", "path", "value"), *self.rows]
        widths = [max(len(row[i]) for row in table) for i in range(3)]
        lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in table]
        lines.insert(1, "  ".join("-" * w for w in widths))
        lines += [f"term {name} = {value:.6g}" for name, value in self.terms.items()]
        return "\n".join(lines)
