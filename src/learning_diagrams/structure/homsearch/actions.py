"""Acting on every match of a pattern: freeze, set eval, swap models, assign data.

Each action finds the homomorphisms ``pattern → diagram`` (taking the options of
:func:`~learning_diagrams.structure.homsearch.homomorphisms`), acts on the images
of the named pattern parts in every match, and returns the matches. A pattern
with no match raises :class:`~learning_diagrams.core.errors.NoHomomorphismError`
and leaves the diagram as it was.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from ...core.arrays import is_torch_module
from ...core.diagram import Diagram
from ...core.errors import NoHomomorphismError, TypeMismatchError, UnknownNameError
from ..morphisms import DiagramMorphism
from .engine import explain_none, homomorphisms

__all__ = ["freeze", "unfreeze", "set_eval", "set_train", "swap", "swap_each", "assign_data", "assign_data_each"]


def _matches(diagram: Diagram, pattern: Diagram, options: Mapping[str, Any], action: str) -> list[DiagramMorphism]:
    found = homomorphisms(pattern, diagram, **options)
    if not found:
        raise NoHomomorphismError(f"{explain_none(pattern, diagram, options)}; nothing to {action}")
    return found


def _pattern_parts(pattern: Diagram, names: str | Iterable[str], kind: str, action: str) -> list[str]:
    names = [names] if isinstance(names, str) else list(names)
    has = pattern.graph.has_vertex if kind == "vertex" else pattern.graph.has_edge
    unknown = [n for n in names if not has(n)]
    if unknown:
        known = pattern.graph.vertices if kind == "vertex" else pattern.graph.edges
        raise UnknownNameError(
            f"{action} names {', '.join(map(repr, unknown))}, which is no {kind} of the pattern "
            f"({'vertices' if kind == 'vertex' else 'edges'}: {', '.join(known) or 'none'})"
        )
    return names


def _images(matches: list[DiagramMorphism], parts: list[str]) -> list[str]:
    """The distinct images of ``parts`` over all matches, in match order."""
    return list(dict.fromkeys(m(p) for m in matches for p in parts))


def freeze(diagram: Diagram, pattern: Diagram, edges: str | Iterable[str], **options: Any) -> list[DiagramMorphism]:
    """Freeze the images of the pattern's ``edges`` in every match; return the matches.

    Takes the options of :func:`homomorphisms`. Like ``diagram.freeze``, this
    takes effect at the next ``compile()``.

    Raises
    ------
    NoHomomorphismError
        when the pattern has no match (the diagram is left as it was).

    >>> import learning_diagrams as ld
    >>> from learning_diagrams.structure.homsearch import has_loss, is_module
    >>> from torch import nn
    >>> d = ld.Diagram().space("X").space("Y").map("f", "X", "Y", nn.Linear(2, 2)).map("g", "X", "Y", abs)
    >>> [m("h") for m in freeze(d, ld.Diagram().space("A").space("B").map("h", "A", "B", None), "h",
    ...                         where={"h": is_module(nn.Module)})]
    ['f']
    >>> d.maps["f"].trainable, d.maps["g"].trainable
    (False, True)
    """
    parts = _pattern_parts(pattern, edges, "edge", "freeze")
    found = _matches(diagram, pattern, options, "freeze")
    diagram.freeze(*_images(found, parts))
    return found


def unfreeze(diagram: Diagram, pattern: Diagram, edges: str | Iterable[str], **options: Any) -> list[DiagramMorphism]:
    """Make the images of the pattern's ``edges`` trainable in every match; return the matches.

    The counterpart of :func:`freeze`, with the same options and errors.
    """
    parts = _pattern_parts(pattern, edges, "edge", "unfreeze")
    found = _matches(diagram, pattern, options, "unfreeze")
    diagram.unfreeze(*_images(found, parts))
    return found


def set_eval(diagram: Diagram, pattern: Diagram, edges: str | Iterable[str], **options: Any) -> list[DiagramMorphism]:
    """Keep the images of the pattern's ``edges`` in eval mode; return the matches.

    Each image map gets ``training=False`` (the compiled loss keeps it in eval mode
    while it trains, so its BatchNorm statistics and dropout stay fixed), and its
    module, if it is an ``nn.Module``, is put in eval mode now. Takes the options of
    :func:`homomorphisms`; raises :class:`NoHomomorphismError` when nothing matches.
    """
    return _set_mode(diagram, pattern, edges, options, False)


def set_train(diagram: Diagram, pattern: Diagram, edges: str | Iterable[str], **options: Any) -> list[DiagramMorphism]:
    """Undo :func:`set_eval`: the images get ``training=True`` and their modules ``.train()``.

    A frozen map stays in eval mode in the compiled loss all the same.
    """
    return _set_mode(diagram, pattern, edges, options, True)


def _set_mode(
    diagram: Diagram, pattern: Diagram, edges: Any, options: Mapping[str, Any], mode: bool
) -> list[DiagramMorphism]:
    action = "set_train" if mode else "set_eval"
    parts = _pattern_parts(pattern, edges, "edge", action)
    found = _matches(diagram, pattern, options, action)
    for name in _images(found, parts):
        m = diagram.maps[name]
        m.training = mode
        if is_torch_module(m.fn):
            m.fn.train(mode)
    return found


def swap(diagram: Diagram, pattern: Diagram, new: Mapping[str, Any], **options: Any) -> list[DiagramMorphism]:
    """Give the images of pattern edges new functions: ``new = {pattern edge: module or callable}``.

    Every image of a pattern edge, in every match, gets the *same* object; use
    :func:`swap_each` for one new model per image. ``trainable`` and ``training``
    are kept. Takes effect at the next ``compile()``. Returns the matches.

    Raises
    ------
    NoHomomorphismError
        when the pattern has no match (the diagram is left as it was).
    TypeMismatchError
        when a new value is neither a module nor a callable.

    >>> import learning_diagrams as ld
    >>> from learning_diagrams.structure.homsearch import has_loss, is_module
    >>> from torch import nn
    >>> d = ld.Diagram().space("X").space("Y").map("cnn", "X", "Y", nn.Conv2d(3, 4, 3))
    >>> vit = nn.Identity()
    >>> _ = swap(d, ld.Diagram().space("A").space("B").map("enc", "A", "B", None), {"enc": vit},
    ...          where={"enc": is_module(nn.Conv2d)})
    >>> d.maps["cnn"].fn is vit
    True
    """
    _check_functions(new, "swap")
    return _assign(diagram, pattern, new, options, action="swap", kind="edge", each=False)


def swap_each(
    diagram: Diagram, pattern: Diagram, factories: Mapping[str, Callable[[DiagramMorphism], Any]], **options: Any
) -> list[DiagramMorphism]:
    """Like :func:`swap`, but each image gets its own function: ``factory(match)``.

    ``factories = {pattern edge: factory}``. The factory is called once per
    distinct image edge, with the first match (in the result order) that reaches
    it, so two matches sharing an image never build two models for it.

    >>> import learning_diagrams as ld
    >>> from learning_diagrams.structure.homsearch import has_loss, is_module
    >>> from torch import nn
    >>> d = ld.Diagram().space("X").space("Y").map("a", "X", "Y", None).map("b", "X", "Y", None)
    >>> edge = ld.Diagram().space("A").space("B").map("h", "A", "B", None)
    >>> _ = swap_each(d, edge, {"h": lambda match: nn.Linear(2, 2)})
    >>> d.maps["a"].fn is not d.maps["b"].fn, type(d.maps["b"].fn).__name__
    (True, 'Linear')
    """
    return _assign(diagram, pattern, factories, options, action="swap_each", kind="edge", each=True)


def assign_data(diagram: Diagram, pattern: Diagram, data: Mapping[str, Any], **options: Any) -> list[DiagramMorphism]:
    """Give the images of pattern vertices data: ``data = {pattern vertex: data source}``.

    Every image, in every match, gets the same data object (``None`` removes
    the data; the vertex stays indexing if it was declared ``indexing=True``).
    Data makes a vertex indexing, and no edge may end at an indexing vertex (the
    paper's functor to Ind): an image with incoming edges is refused with a
    :class:`~learning_diagrams.core.errors.ConflictError`, before anything
    changes. Use :func:`assign_data_each` for data that depends on the match.
    Returns the matches; raises :class:`NoHomomorphismError` when there is none.

    >>> import learning_diagrams as ld
    >>> from learning_diagrams.structure.homsearch import has_loss, is_module
    >>> d = ld.Diagram().space("N").space("Y", loss=ld.losses.mse).map("f", "N", "Y", abs)
    >>> source = ld.Diagram().space("S").space("T").map("f", "S", "T", None)
    >>> [m("S") for m in assign_data(d, source, {"S": [0.0, 1.0]}, where={"T": has_loss()})], d.indexing
    (['N'], ('N',))
    """
    return _assign(diagram, pattern, data, options, action="assign_data", kind="vertex", each=False)


def assign_data_each(
    diagram: Diagram, pattern: Diagram, factories: Mapping[str, Callable[[DiagramMorphism], Any]], **options: Any
) -> list[DiagramMorphism]:
    """Like :func:`assign_data`, with ``factory(match)`` called once per distinct image vertex."""
    return _assign(diagram, pattern, factories, options, action="assign_data_each", kind="vertex", each=True)


def _assign(
    diagram: Diagram,
    pattern: Diagram,
    values: Mapping[str, Any],
    options: Mapping[str, Any],
    *,
    action: str,
    kind: str,
    each: bool,
) -> list[DiagramMorphism]:
    """Give the image of each pattern part named in ``values`` its value (a function for an edge,
    data for a vertex) in every match. With ``each``, the values are factories, each called once
    per distinct image with the first match (in the result order) that reaches it."""
    if each:
        for p, factory in values.items():
            if not callable(factory):
                raise TypeMismatchError(
                    f"{action} needs a factory (a function of the match) for {kind} {p!r}, "
                    f"got a {type(factory).__name__}"
                )
    parts = _pattern_parts(pattern, list(values), kind, action)
    found = _matches(diagram, pattern, options, action)
    made: dict[str, Any] = {}
    if each:
        for m in found:
            for p in parts:
                if m(p) not in made:
                    made[m(p)] = values[p](m)
                    if kind == "edge":
                        _check_functions({p: made[m(p)]}, action)
    else:
        made = {name: values[p] for p in parts for name in _images(found, [p])}
    if kind == "vertex":  # data makes a vertex indexing: refuse one with incoming edges, changing nothing
        diagram.check_indexing(name for name, value in made.items() if value is not None)
    for name, value in made.items():
        if kind == "edge":
            diagram.maps[name].fn = value
        else:
            diagram.spaces[name].data = value
    return found


def _check_functions(new: Mapping[str, Any], action: str) -> None:
    for p, fn in new.items():
        if fn is not None and not callable(fn):
            raise TypeMismatchError(
                f"{action} gives pattern edge {p!r} a {type(fn).__name__}; an edge needs a torch.nn.Module or a callable"
            )
