"""Families of parallel maps: the edges a compiled loss could run as one batched call.

A hand-written loop over fifty heads calls each in turn; a diagram knows more. A
*family* is a set of edges that

* are structurally identical: the back end's ``signature(map)`` is the same, and not
  ``None`` (PyTorch: the module's class and its parameters' and buffers' shapes and
  dtypes; a plain function has none);
* are trained alike: all trainable or all frozen, all in the same mode, and in the
  same ``group`` (a trainer puts maps with a learning rate or optimiser of their own
  in groups of their own);
* each reads one value: it is applied, on every compiled path that takes it, to one
  path prefix from one source, and ends that path. Members may read the same value
  (heads of one backbone, an ensemble) or different ones (glued few-shot heads, each
  on its own episode's features), which a back end stacks when their shapes agree;
* feed pairs that carry the same loss (their weights may differ: each term keeps
  its own weight and name);
* are distinct maps (a module on two edges is one map, not two members).

:func:`families` finds them in a compiled loss's pairs; fusing them (stacked
parameters, one batched call) is a back end's work. The search is exact on the
rules above and linear in the pairs' lengths.

>>> from learning_diagrams.core import Diagram, losses
>>> d = Diagram().space("N", data=[0]).space("F")
>>> d = d.map("x", "N", "F", abs)
>>> for i in range(3):
...     d = (d.space(f"Y{i}", loss=losses.mse).map(f"h{i}", "F", f"Y{i}", lambda v, i=i: v * i)
...           .map(f"y{i}", "N", f"Y{i}", abs).relate(f"x·h{i}", f"y{i}"))
>>> def signature(m):
...     return "scale" if m.name.startswith("h") else None
>>> [(f.edges, f.shared) for f in families(d.compiled_pairs(), d.maps, signature=signature)]
[(('h0', 'h1', 'h2'), True)]
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass

from .diagram import Map, Pair
from .losses import Loss

__all__ = ["Family", "families", "MIN_MEMBERS"]

#: The fewest members a family has: fewer are not worth a batched call.
MIN_MEMBERS = 3


@dataclass(frozen=True)
class Family:
    """Edges that run as one, each ending its paths: member ``edges[i]`` is applied to ``inputs[i]``.

    An input is ``(source, prefix)``: the value of the path ``prefix`` from ``source``.
    ``pairs`` are the names of the compiled pairs whose paths take a member, in pair order.
    """

    edges: tuple[str, ...]
    inputs: tuple[tuple[str, tuple[str, ...]], ...]
    pairs: tuple[str, ...]

    @property
    def shared(self) -> bool:
        """Whether every member reads the same value."""
        return len(set(self.inputs)) == 1


def families(
    pairs: Sequence[Pair],
    maps: Mapping[str, Map],
    *,
    signature: Callable[[Map], Hashable | None],
    least: int = MIN_MEMBERS,
    group: Callable[[str], Hashable] | None = None,
) -> list[Family]:
    """The families among the edges of ``pairs`` (see the module docstring), each of ``least`` members or more.

    ``group(edge)``, when given, keeps edges of different groups apart. Families are
    listed by their first member's first appearance, members in the order the pairs
    first take them.
    """
    # Where each edge is taken: (source, prefix before it, whether it ends the path), and by which pairs.
    uses: dict[str, set[tuple[str, tuple[str, ...], bool]]] = {}
    taken_by: dict[str, list[str]] = {}
    losses: dict[str, set[Loss]] = {}
    order: list[str] = []
    for pair in pairs:
        for path in (pair.first, pair.second):
            for i, e in enumerate(path):
                if e not in uses:
                    uses[e], taken_by[e], losses[e] = set(), [], set()
                    order.append(e)
                uses[e].add((pair.source, path[:i], i == len(path) - 1))
                if pair.name not in taken_by[e]:
                    taken_by[e].append(pair.name)
                losses[e].add(pair.loss)
    # Candidates: an edge taken at one prefix only, always last, with one loss, of a map with a signature.
    groups: dict[Hashable, list[str]] = {}
    seen_functions: set[int] = set()
    read: dict[str, tuple[str, tuple[str, ...]]] = {}
    for e in order:
        m = maps[e]
        if len(uses[e]) != 1 or len(losses[e]) != 1 or m.fn is None:
            continue
        source, prefix, last = next(iter(uses[e]))
        if not last or id(m.fn) in seen_functions:
            continue
        kind = signature(m)
        if kind is None:
            continue
        seen_functions.add(id(m.fn))
        key = (kind, m.trainable, m.training, next(iter(losses[e])), group(e) if group is not None else None)
        groups.setdefault(key, []).append(e)
        read[e] = (source, prefix)
    return [
        Family(
            edges=tuple(members),
            inputs=tuple(read[e] for e in members),
            pairs=tuple(dict.fromkeys(name for e in members for name in taken_by[e])),
        )
        for members in groups.values()
        if len(members) >= least
    ]
