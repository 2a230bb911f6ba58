"""Metrics of a vertex, as every back end reads them: ``{"Y": "accuracy"}`` and its other forms.

A metric belongs to a vertex: for every compiled pair ending there, it scores the
pair's first path (the prediction) against its second (the target). A vertex's
metrics are given as a metric, a list of them, or a mapping of name to metric; a
metric is the name of one a back end knows (``"accuracy"``), a callable
``(prediction, target) -> number`` (a batch mean), or a kind of metric a back end
recognises itself (torchmetrics' on PyTorch). Each is reported as
``f"{name}[{pair}]"``: the name it is given under, else the known metric's name or
the callable's ``__name__``. :func:`resolve` reads them, once per back end's
evaluation.

>>> def top1(p, t): return 1.0
>>> resolve({"Y": ["accuracy", top1]}, {"Y"}, {"accuracy": abs})
{'Y': [('accuracy', <built-in function abs>), ('top1', <function top1 at ...>)]}
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from typing import Any

from .errors import DuplicateNameError, TypeMismatchError, UnknownNameError

__all__ = ["resolve"]


def _named(spec: Any) -> list[tuple[str | None, Any]]:
    """The metrics of one vertex with the names they are given (None: named after themselves)."""
    if isinstance(spec, Mapping):
        return list(spec.items())
    return [(None, item) for item in (spec if isinstance(spec, (list, tuple)) else [spec])]


def resolve(
    metrics: Mapping[str, Any],
    targets: Collection[str],
    known: Mapping[str, Callable[[Any, Any], Any]],
    *,
    recognise: Callable[[Any, str], tuple[str, Any] | None] = lambda item, vertex: None,
    kinds: str = "",
) -> dict[str, list[tuple[str, Any]]]:
    """Each vertex's metrics as ``(name, metric)``, checked.

    ``targets`` are the vertices where compiled pairs end; ``known`` the back end's
    metrics by name; ``recognise(item, vertex)`` names a metric of the back end's own
    kind (or returns None, or raises for one it refuses), and ``kinds`` describes those
    kinds in the message for an item that is no metric.

    Raises
    ------
    UnknownNameError
        If a metric is given for a vertex where no pair ends, or a metric name is unknown.
    DuplicateNameError
        If two metrics of a vertex have the same name.
    TypeMismatchError
        If an item is no metric.
    """
    resolved: dict[str, list[tuple[str, Any]]] = {}
    for vertex, spec in metrics.items():
        if vertex not in targets:
            raise UnknownNameError(
                f"metric given for vertex {vertex!r}, where no compiled pair ends "
                f"(pairs end at: {', '.join(sorted(targets))})"
            )
        chosen = resolved.setdefault(vertex, [])
        for given, item in _named(spec):
            own = recognise(item, vertex)
            if own is not None:
                name, metric = own
            elif isinstance(item, str):
                if item not in known:
                    raise UnknownNameError(f"unknown metric {item!r} (known: {', '.join(known)})")
                name, metric = item, known[item]
            elif callable(item):
                name, metric = getattr(item, "__name__", "metric"), item
            else:
                raise TypeMismatchError(
                    f"metric {item!r} for vertex {vertex!r} is none of: a metric name ({', '.join(known)}), "
                    f"a callable (prediction, target) -> number{kinds}"
                )
            name = given if given is not None else name
            if any(name == other for other, _ in chosen):
                raise DuplicateNameError(
                    f"two metrics of vertex {vertex!r} are named {name!r}; give them as a mapping "
                    f'of name to metric, e.g. {{"{vertex}": {{"top1": ..., "top5": ...}}}}'
                )
            chosen.append((name, metric))
    return resolved
