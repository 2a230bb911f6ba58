"""A compiled loss's evaluation laid out once, as a flat list of operations on numbered slots.

:class:`Program` computes what :class:`~learning_diagrams.core.evaluation.Evaluator`
computes (each prefix once, then the terms in pair order, then their total) without
its per-call work, and drops each value as soon as nothing later reads it. A back end
may give it :class:`Fused` families (:mod:`learning_diagrams.core.families`): the
members of each run as one operation, and their terms as one when they can.

>>> import contextlib
>>> from learning_diagrams.core import Diagram, losses
>>> from learning_diagrams.core.evaluation import Term, plan
>>> d = Diagram().space("N", data=[0]).space("Y", loss=losses.l1).space("X")
>>> d = d.map("f", "N", "X", lambda v: v + 1).map("g", "X", "Y", abs).map("h", "N", "Y", abs).relate("f·g", "h")
>>> pair = d.parallel_pairs()[0]
>>> steps = plan([d.path("f·g"), d.path("h")], d.maps, parametric=lambda fn: False)
>>> import numpy as np
>>> program = Program([pair], steps, [Term(pair, lambda a, b: np.float64(a - b))], ["N"])
>>> [(op.prefix, op.reads, op.target, op.drop) for op in program.operations]
[(('f',), (0,), 1, ()), (('f', 'g'), (1,), 2, (1,)), (('h',), (0,), 3, (0,))]
>>> terms, total, slots = program.run([-3], contextlib.nullcontext)
>>> [float(t) for t in terms], float(total), slots
([-1.0], -1.0, [None, None, None, None])
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import functools
import heapq
import operator
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NoReturn

from .errors import MapError

if TYPE_CHECKING:
    from .diagram import Pair
    from .evaluation import Step, Term
    from .families import Family

__all__ = ["Program", "Operation", "Fused", "STRAIGHT_LINE_LIMIT"]

#: The most operations and terms a :class:`Program` writes out as straight-line code.
STRAIGHT_LINE_LIMIT = 2_000

Key = tuple[str, tuple[str, ...]]  # (source vertex, prefix)


@dataclass(frozen=True)
class Fused:
    """A family whose members a back end runs as one operation.

    ``call(members, *inputs)`` gets the positions of the members a program computes
    (in ``family.edges``, in order) and their inputs, one per member (the same object
    where members read one value), and returns a value whose ``[k]`` is the ``k``-th
    listed member's output. ``terms``, when given, computes the members' terms at
    once: ``terms(members, weights, first, stacked, *others)`` returns the weighted
    terms of the members' pairs and their sum, where ``stacked`` is ``call``'s
    value, ``others`` the other side of each member's pair and ``first`` whether the
    members are the pairs' first paths. A program uses it when each listed member
    ends the paths of exactly one pair, always on the same side, and every such
    term is direct (:attr:`~learning_diagrams.core.evaluation.Term.direct`).
    """

    family: Family
    call: Callable[..., Any]
    terms: Callable[..., tuple[Sequence[Any], Any]] | None = None

    def inputs(self) -> dict[Key, tuple[int, str]]:
        """By the ``(source, prefix)`` each member computes: its position and its edge."""
        return {
            (src, (*pre, e)): (j, e) for j, (e, (src, pre)) in enumerate(zip(self.family.edges, self.family.inputs))
        }


@dataclass(frozen=True)
class Operation:
    """One operation of a :class:`Program`: a function of the slots ``reads``, into slot ``target``.

    A map's operation has its ``step`` and the ``prefix`` it computes; a family's
    (``fused``) computes every member at once into one slot, and each member's own
    slot, where something reads it, is a selection from that one (``select``: the
    member's place in it). ``drop``: the slots that nothing later reads, emptied after it.
    """

    prefix: tuple[str, ...]
    reads: tuple[int, ...]
    target: int
    drop: tuple[int, ...]
    step: Step | None = None
    fused: Fused | None = None
    select: int | None = None


class Program:
    """The evaluation of ``pairs`` laid out once as a flat list of operations: what every call runs.

    The values live in numbered slots (first one batch per source, in ``sources``
    order, then one per distinct prefix); each operation names the slots it reads
    and the slot it writes, and after each operation or term the slots that nothing
    later reads are emptied (unless ``keep``, for a caller that traces values).

    **Order.** Prefixes are evaluated pair by pair, each pair's first path, then its
    second, except that a step needing no gradient (a frozen map that no trainable
    module precedes, run without autograd) runs as soon as its input is ready, as a
    hand-written distillation step runs its teacher first: the transient memory of
    frozen work then never sits on top of the activations that trainable maps keep
    for the backward pass. A fused family runs where its last member would have.
    Frozen maps are in eval mode, so this moves no random draw of a module's own.

    Parameters
    ----------
    pairs : sequence of Pair
        The pairs to evaluate, all starting at one of ``sources``.
    steps : mapping of prefix to Step
        At least one step per prefix of the pairs' paths
        (:func:`~learning_diagrams.core.evaluation.plan`).
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
        prefix's value is its argument, read from the same slot.
    fused : sequence of Fused
        Families whose members run as one operation (disjoint; members whose prefix
        is given, or that no pair here needs, are left out of it).
    """

    def __init__(
        self,
        pairs: Sequence[Pair],
        steps: Mapping[tuple[str, ...], Step],
        terms: Sequence[Term],
        sources: Sequence[str],
        *,
        keep: bool = False,
        given: Sequence[Key] = (),
        identity: Callable[[Any], bool] | None = None,
        fused: Sequence[Fused] = (),
    ):
        self.pairs, self.sources, self.keep = tuple(pairs), tuple(sources), keep
        self.given = tuple(given)
        self.names = tuple(pair.name for pair in self.pairs)  # a Pair computes its name at each access
        self.terms = tuple(terms)
        inputs = [(s, ()) for s in self.sources] + list(self.given)
        slots: dict[Key, int] = {key: i for i, key in enumerate(inputs)}
        # The prefixes some path needs computed: back from each end, up to a given value.
        needed: set[Key] = set()
        for pair in self.pairs:
            for path in (pair.first, pair.second):
                for i in range(len(path), 0, -1):
                    if (pair.source, path[:i]) in slots:
                        break
                    needed.add((pair.source, path[:i]))
        # Each fused member this program computes, by the key of its prefix: (family, position).
        member: dict[Key, tuple[int, int]] = {}
        for f, family in enumerate(fused):
            for key, (j, _) in family.inputs().items():
                if key in needed and key not in slots:
                    member[key] = (f, j)
        waiting = collections.Counter(f for f, _ in member.values())
        arrived: dict[int, list[tuple[int, int, Key]]] = {f: [] for f in waiting}  # (position, input slot, key)
        planned: list[_Planned] = []
        count = len(inputs)  # slots in use: an identity step's prefix shares its argument's
        for pair in self.pairs:
            for path in (pair.first, pair.second):
                for i in range(len(path)):
                    key = (pair.source, path[: i + 1])
                    if key not in needed or key in slots:
                        continue
                    step, source = steps[key[1]], slots[pair.source, path[:i]]
                    if key in member:
                        f, j = member[key]
                        slots[key], count = count, count + 1  # the member's own slot, filled where it is read
                        arrived[f].append((j, source, key))
                        if len(arrived[f]) == waiting[f]:  # the last member's input is ready: the family runs here
                            members = arrived[f]
                            op = _Planned(key[1], tuple(s for _, s, _ in members), count, True, None)
                            op.fused = (fused[f], tuple(j for j, _, _ in members))
                            op.keys = tuple(k for _, _, k in members)
                            op.member_steps = tuple(steps[k[1]] for k in op.keys)
                            op.grad = any(m.grad for m in op.member_steps)
                            planned.append(op)
                            count += 1
                        continue
                    if identity is not None and step.map.fn is not None and identity(step.map.fn):
                        slots[key] = source
                        continue
                    slots[key], count = count, count + 1
                    planned.append(_Planned(key[1], (source,), slots[key], step.grad, step))
        self.slots = slots
        ends_of = [(slots[p.source, p.first], slots[p.source, p.second]) for p in self.pairs]
        # A family's terms are computed at once where each member ends one pair's path, all on one side:
        # by the index of the family's first pair, (family op, the pairs in member order, their other sides, first?).
        at_once: dict[int, tuple[_Planned, tuple[int, ...], tuple[int, ...], bool]] = {}
        for op in planned:
            if op.fused is None:
                continue
            places = {key: k for k, key in enumerate(op.keys)}
            ends = [
                (index, places[pair.source, path], first)
                for index, pair in enumerate(self.pairs)
                for first, path in ((True, pair.first), (False, pair.second))
                if (pair.source, path) in places
            ]
            usable = (
                op.fused[0].terms is not None
                and sorted(k for _, k, _ in ends) == list(range(len(places)))
                and len({index for index, _, _ in ends}) == len(ends)
                and len({first for _, _, first in ends}) == 1
                and all(self.terms[index].direct for index, _, _ in ends)
            )
            if usable:
                first = ends[0][2]
                indices = tuple(index for _, index in sorted((k, index) for index, k, _ in ends))
                others = tuple(ends_of[i][1] if first else ends_of[i][0] for i in indices)
                at_once[min(indices)] = (op, indices, others, first)
        in_families = {i for _, indices, _, _ in at_once.values() for i in indices}
        # A member's own slot, where anything but its family's terms reads it, is a selection from the family's.
        read_elsewhere = {s for index, ends in enumerate(ends_of) if index not in in_families for s in ends}
        expanded: list[_Planned] = []
        for op in planned:
            expanded.append(op)
            for k, key in enumerate(op.keys):
                if keep or slots[key] in read_elsewhere:
                    expanded.append(_Planned(op.prefix, (op.target,), slots[key], op.grad, None, select=k))
        planned = _frozen_first(expanded, len(inputs))
        # The terms in pair order; a family's terms at once, where its first pair's term is.
        term_ops: list[tuple[str, Any]] = [
            ("fused", at_once[index]) if index in at_once else ("term", index)
            for index in range(len(self.pairs))
            if index in at_once or index not in in_families
        ]
        # The last position (operations first, then terms) that reads each slot: it is emptied there.
        last: dict[int, int] = {}
        for position, op in enumerate(planned):
            for slot in op.reads:
                last[slot] = position
        for position, (kind, what) in enumerate(term_ops, len(planned)):
            reads = (what[0].target, *what[2]) if kind == "fused" else ends_of[what]
            for slot in reads:
                last[slot] = position
        drops: dict[int, list[int]] = {}
        if not keep:
            for slot, position in last.items():
                drops.setdefault(position, []).append(slot)
        self.operations = tuple(
            Operation(
                op.prefix,
                op.reads,
                op.target,
                tuple(sorted(drops.get(position, ()))),
                op.step,
                op.fused[0] if op.fused is not None and op.select is None else None,
                op.select,
            )
            for position, op in enumerate(planned)
        )
        self._ends = tuple(ends_of)
        # The hot loops read plain tuples. An operation: (function, slots read, target, needs gradients, slots to
        # empty, how a failure is reported). A map without a function gets one that raises, as Map.__call__ does.
        self._ops = tuple(_operation(op, operation.drop) for op, operation in zip(planned, self.operations))
        # A term: (Term, its function when direct, else None, its weight unless 1, the two slots, slots to empty);
        # a family's terms: (function of the family's slot and the others, the pair indices, the slots, to empty).
        self._term_ops: list[tuple[Term, Any, Any, int, int, tuple[int, ...]]] = []
        self._fused_term_ops: list[tuple[Callable[..., Any], tuple[int, ...], tuple[int, ...], tuple[int, ...]]] = []
        self._order: list[tuple[bool, int]] = []  # (a family's terms?, index in its list)
        for position, (kind, what) in enumerate(term_ops, len(planned)):
            drop = tuple(sorted(drops.get(position, ())))
            if kind == "fused":
                op, indices, others, first = what
                assert op.fused is not None
                weights = tuple(self.terms[i].pair.weight for i in indices)
                members = op.fused[1]
                fn = functools.partial(op.fused[0].terms, members, weights, first)
                self._order.append((True, len(self._fused_term_ops)))
                self._fused_term_ops.append((fn, indices, (op.target, *others), drop))
            else:
                term = self.terms[what]
                a, b = ends_of[what]
                weight = term.pair.weight if term.pair.weight != 1.0 else None
                self._order.append((False, len(self._term_ops)))
                self._term_ops.append((term, term.fn if term.direct else None, weight, a, b, drop))
        self._single = [i for i in range(len(self.pairs)) if i not in in_families]  # each single term's pair
        self._blank = [None] * (count - len(inputs))
        self._inputs = len(inputs)
        # Without ``keep`` every slot is emptied by the end, so a call needs no list of them: it runs the same
        # operations and terms written out as straight-line code (see _straight_line). Past STRAIGHT_LINE_LIMIT
        # operations and terms the loop runs instead: Python's compiler takes time more than linear in a
        # function's size, and a step of thousands of maps is not overhead-bound.
        written = {op.target for op in planned} | set(range(len(inputs)))
        emptied = {slot for *_, drop, _ in self._ops for slot in drop}
        emptied.update(slot for *_, drop in self._term_ops for slot in drop)
        emptied.update(slot for *_, drop in self._fused_term_ops for slot in drop)
        small = len(self._ops) + len(self._order) <= STRAIGHT_LINE_LIMIT
        self._straight_ok = small and emptied == written
        self._straight = self._make_straight() if self._straight_ok else None

    def _make_straight(self) -> Callable[..., tuple[list[Any], Any]]:
        return _straight_line(self._ops, self._term_ops, self._fused_term_ops, self._order, self._single, self._inputs)

    def __getstate__(self) -> dict[str, Any]:
        # The straight-line function is made by exec, so pickle cannot name it (ddp_spawn pickles a
        # compiled loss): it is made again where the program is loaded.
        return {**self.__dict__, "_straight": None}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._straight = self._make_straight() if self._straight_ok else None

    def run(
        self, batches: Sequence[Any], quiet: Callable[[], contextlib.AbstractContextManager[Any]], *, terms: bool = True
    ) -> tuple[list[Any], Any, list[Any]]:
        """The weighted terms of the pairs on ``batches`` (one per source, then one per ``given`` prefix), their
        total (``None`` without terms), and the slots as they end.

        ``quiet()`` is the back end's context without gradients (``torch.no_grad``),
        entered around each step that needs none. A map that raises is reported as
        :meth:`~learning_diagrams.core.diagram.Map.__call__` reports it (:class:`MapError`
        naming edge, path and value); a loss, as :class:`~learning_diagrams.core.evaluation.Term`
        reports it. The total adds the terms in pair order (a family's terms, at its first
        pair, by their own sum). With ``terms=False`` only the paths are evaluated.
        """
        if terms and self._straight is not None:
            found, sum_ = self._straight(quiet, *batches)
            return found, sum_, [None] * (len(batches) + len(self._blank))
        slots = [*batches, *self._blank]
        for fn, reads, target, grad, drop, report in self._ops:
            args = [slots[r] for r in reads]
            try:  # free when nothing raises (Python 3.11's zero-cost exceptions)
                if grad:
                    slots[target] = fn(*args)
                else:
                    with quiet():
                        slots[target] = fn(*args)
            except Exception as err:
                report(err, *args)
            if drop:
                for slot in drop:
                    slots[slot] = None
        if not terms:
            return [], None, slots
        values: list[Any] = [None] * len(self.pairs)
        total: Any = None
        for fused, k in self._order:
            if fused:
                fn, indices, reads, drop = self._fused_term_ops[k]
                found, subtotal = fn(*[slots[r] for r in reads])
                for index, value in zip(indices, found):
                    values[index] = value
            else:
                term, direct, weight, a, b, drop = self._term_ops[k]
                if direct is None:
                    subtotal = term(slots[a], slots[b])
                else:
                    try:
                        subtotal = direct(slots[a], slots[b])
                    except Exception as err:
                        term.failed(slots[a], slots[b], err)
                    if weight is not None:
                        subtotal = weight * subtotal
                values[self._single[k]] = subtotal
            total = subtotal if total is None else total + subtotal
            if drop:
                for slot in drop:
                    slots[slot] = None
        return values, total, slots

    def outputs(self, slots: Sequence[Any]) -> list[tuple[Pair, Any, Any]]:
        """Each pair with the values of its two paths, from the slots of a call run with ``terms=False``."""
        return [(pair, slots[a], slots[b]) for pair, (a, b) in zip(self.pairs, self._ends)]

    def values(self, slots: Sequence[Any]) -> dict[str, dict[tuple[str, ...], Any]]:
        """The slots of a call as :meth:`Evaluator.value` fills them: by source, the value of each prefix."""
        found: dict[str, dict[tuple[str, ...], Any]] = {s: {} for s in self.sources}
        for (source, prefix), slot in self.slots.items():
            found[source][prefix] = slots[slot]
        return found


class _Planned:
    """An operation while a :class:`Program` is laid out (see :class:`Operation`)."""

    def __init__(
        self,
        prefix: tuple[str, ...],
        reads: tuple[int, ...],
        target: int,
        grad: bool,
        step: Step | None,
        *,
        select: int | None = None,
    ):
        self.prefix, self.reads, self.target, self.grad, self.step, self.select = (
            prefix,
            reads,
            target,
            grad,
            step,
            select,
        )
        self.fused: tuple[Fused, tuple[int, ...]] | None = None  # the family and the positions of its members here
        self.keys: tuple[Key, ...] = ()  # each member's (source, prefix), in the order of those positions
        self.member_steps: tuple[Step, ...] = ()


def _operation(
    op: _Planned, drop: tuple[int, ...]
) -> tuple[Callable[..., Any], tuple[int, ...], int, bool, tuple[int, ...], Callable[..., NoReturn]]:
    """The tuple a call's loop (and the straight-line code) runs for ``op``."""
    if op.select is not None:
        return operator.itemgetter(op.select), op.reads, op.target, op.grad, drop, _cannot_fail
    if op.fused is not None:
        fused, members = op.fused
        report = _FusedFailure(fused, members, op.member_steps)
        return functools.partial(fused.call, members), op.reads, op.target, op.grad, drop, report
    step = op.step
    assert step is not None
    return step.map.fn or _no_function, op.reads, op.target, op.grad, drop, functools.partial(_failed, step)


def _straight_line(
    ops: Sequence[tuple[Callable[..., Any], tuple[int, ...], int, bool, tuple[int, ...], Callable[..., NoReturn]]],
    term_ops: Sequence[tuple[Term, Any, Any, int, int, tuple[int, ...]]],
    fused_term_ops: Sequence[tuple[Callable[..., Any], tuple[int, ...], tuple[int, ...], tuple[int, ...]]],
    order: Sequence[tuple[bool, int]],
    single: Sequence[int],
    inputs: int,
) -> Callable[..., tuple[list[Any], Any]]:
    """What :meth:`Program.run` computes with every slot emptied by the end, as one function of straight-line code.

    ``run(quiet, *inputs)`` returns the terms and their total. Each slot is a local
    variable and each operation one line, calling a function on variables into another
    (in ``quiet()`` when it needs no gradient); each term one line, then its weight; an
    emptied slot is deleted where the loop would empty it. The same calls in the same
    order, on the same values, without the loop's work. A failure is reported exactly
    as the loop reports it.
    """
    names: dict[str, Any] = {}
    args = ", ".join(f"s{i}" for i in range(inputs))
    lines = [f"def run(quiet{', ' if args else ''}{args}):"]

    def forget(drop: tuple[int, ...]) -> None:
        if drop:
            lines.append(f"    del {', '.join(f's{slot}' for slot in drop)}")

    for k, (fn, reads, target, grad, drop, report) in enumerate(ops):
        names[f"f{k}"], names[f"r{k}"] = fn, report
        indent = "    " if grad else "        "
        if not grad:
            lines.append("    with quiet():")
        call = ", ".join(f"s{r}" for r in reads)
        if report is _cannot_fail:
            lines.append(f"{indent}s{target} = f{k}({call})")
        else:
            lines += [
                f"{indent}try:",
                f"{indent}    s{target} = f{k}({call})",
                f"{indent}except Exception as err:",
                f"{indent}    r{k}(err, {call})",
            ]
        forget(drop)
    index = range(len(single) + sum(len(indices) for _, indices, _, _ in fused_term_ops))
    summands = []
    for fused, k in order:
        if fused:
            fn, indices, reads, drop = fused_term_ops[k]
            names[f"T{k}"] = fn
            targets = "".join(f"v{i}, " for i in indices)
            lines.append(f"    ({targets}), u{k} = T{k}({', '.join(f's{r}' for r in reads)})")
            summands.append(f"u{k}")
        else:
            term, direct, weight, a, b, drop = term_ops[k]
            i = single[k]
            names[f"t{k}"], names[f"d{k}"], names[f"w{k}"] = term, direct, weight
            if direct is None:
                lines.append(f"    v{i} = t{k}(s{a}, s{b})")
            else:
                lines += [
                    "    try:",
                    f"        v{i} = d{k}(s{a}, s{b})",
                    "    except Exception as err:",
                    f"        t{k}.failed(s{a}, s{b}, err)",
                ]
                if weight is not None:
                    lines.append(f"    v{i} = w{k} * v{i}")
            summands.append(f"v{i}")
        forget(drop)
    total = " + ".join(summands) or "None"
    lines.append(f"    return [{', '.join(f'v{i}' for i in index)}], {total}")
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


def _frozen_first(planned: list[_Planned], ready: int) -> list[_Planned]:
    """``planned`` reordered so that each operation needing no gradient runs as soon as the slots it reads are
    ready; the others keep their order. Slots below ``ready`` are batches."""
    if all(op.grad for op in planned):
        return planned
    waiting: dict[int, list[int]] = {}  # a slot's readers that need no gradient, by position in planned
    missing: dict[int, int] = {}
    for position, op in enumerate(planned):
        if not op.grad:
            reads = set(op.reads)
            missing[position] = len(reads)
            for slot in reads:
                waiting.setdefault(slot, []).append(position)
    order: list[int] = []
    placed: set[int] = set()
    runnable: list[int] = []

    def settle(slot: int) -> None:
        for position in waiting.pop(slot, ()):
            missing[position] -= 1
            if missing[position] == 0:
                heapq.heappush(runnable, position)

    def drain() -> None:
        while runnable:
            position = heapq.heappop(runnable)
            order.append(position)
            placed.add(position)
            settle(planned[position].target)

    for slot in range(ready):
        settle(slot)
    drain()
    for position in range(len(planned)):
        if position not in placed:
            order.append(position)
            placed.add(position)
            settle(planned[position].target)
            drain()
    return [planned[position] for position in order]


def _no_function(_: Any) -> NoReturn:
    raise TypeError("the edge has no function")


def _failed(step: Step, err: Exception, x: Any) -> NoReturn:
    """Raise what ``step.map(x, along=step.along)`` raises when the map's function raises ``err``."""
    if step.map.fn is not None:

        def again(_: Any) -> NoReturn:
            raise err

        step = dataclasses.replace(step, map=dataclasses.replace(step.map, fn=again))
    step.map(x, along=step.along)  # raises: MapError from err, or the edge has no function
    raise err  # pragma: no cover - Map.__call__ always raises here


def _cannot_fail(err: Exception, *args: Any) -> NoReturn:
    raise err


class _FusedFailure:
    """Report a family's failed call as the failing member's own map would report it.

    Each member is called alone on its input, in order; the first that raises is
    reported by its :class:`~learning_diagrams.core.diagram.Map` (edge, path, value).
    If every member succeeds alone, the family's failure is reported as such.
    """

    def __init__(self, fused: Fused, members: tuple[int, ...], steps: tuple[Step, ...]):
        self.fused, self.members, self.steps = fused, members, steps

    def __call__(self, err: Exception, *inputs: Any) -> NoReturn:
        for step, x in zip(self.steps, inputs):
            step.map(x, along=step.along)  # a member that fails alone raises MapError here
        edges = self.fused.family.edges
        raise MapError(
            f"the fused call of the family {', '.join(edges[j] for j in self.members)} failed "
            f"({type(err).__name__}: {err}), though each member succeeds alone; compile with fuse=False"
        ) from err
