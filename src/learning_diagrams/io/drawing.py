"""Drawing learning diagrams with Graphviz, compiled pairs coloured as in the paper's Figure 1.

:func:`to_graphviz` turns a :class:`~learning_diagrams.core.diagram.Diagram` into a
``graphviz.Digraph``; :func:`draw` renders it to SVG text or writes a file
(``.svg``, ``.png``, ``.pdf``, ... through Graphviz's ``dot`` program, or the
DOT source itself, ``.dot``/``.gv``, which needs no program).

How a diagram is drawn
----------------------
* **Vertices.** A data (indexing) vertex is a grey-filled cylinder; a vertex
  with a loss has a double border and its loss under its name
  (``Y`` / ``(cross_entropy)``); any other vertex is an ellipse. The tooltip
  gives the vertex's role, type annotation and data source.
* **Edges.** Labelled by name and what they compute (``student: LightNN``: a
  module's class, a named function, a text-syntax lambda's source). A frozen
  map is dashed, with ``(frozen)`` under its name (grey when on no pair); a
  trainable map kept in eval mode shows ``(eval)``.
* **Pairs.** Each compiled parallel pair (``d.parallel_pairs()``) takes the
  next colour of :data:`PALETTE` (red, blue, green, orange, ...), and every
  edge on one of its two paths is drawn in it, thicker. An edge on the paths
  of several pairs is drawn in all their colours side by side
  (``color="red:blue"``) and its label in violet, as the paper draws the
  models that both pairs use. A legend under the drawing lists each pair's
  term ``first ≤ second``, its vertex, loss and weight in its colour.
* A diagram that does not compile (``parallel_pairs()`` raises a
  :class:`~learning_diagrams.core.errors.DiagramError`) is drawn without colours,
  the legend saying why.

Everything is emitted in declaration order, so the same diagram always gives
the same DOT source.

>>> import learning_diagrams as ld
>>> d = (ld.Diagram().space("N", data=[0]).space("X").space("Y", loss=ld.losses.mse)
...      .map("x", "N", "X", None).map("f", "X", "Y", None).map("y", "N", "Y", None)
...      .relate("x·f", "y"))
>>> g = to_graphviz(d)
>>> for line in g.body[:6]: print(line.strip())
N [label=N fillcolor=gray95 shape=cylinder style=filled tooltip="N: data (list)"]
X [label=X shape=ellipse tooltip="X: space"]
Y [label="Y\\n(mse)" peripheries=2 shape=ellipse tooltip="Y: space with the loss mse (symmetric)"]
N -> X [label=x color=red fontcolor=red penwidth=2 tooltip="x: N → X"]
X -> Y [label=f color=red fontcolor=red penwidth=2 tooltip="f: X → Y"]
N -> Y [label=y color=red fontcolor=red penwidth=2 tooltip="y: N → Y"]
>>> "x·f ≤ y" in g.graph_attr["label"]
True
"""

from __future__ import annotations

import functools
import html
import os
import shutil
from pathlib import Path
from typing import Any

import graphviz

from ..core.diagram import Diagram, Map, Pair, Space
from ..core.errors import DiagramError, GraphvizError, GraphvizNotFoundError, UnsupportedFormatError
from .atomic import write_atomic

__all__ = ["to_graphviz", "draw", "repr_svg", "PALETTE"]

#: The colours of compiled pairs, in the order of ``d.parallel_pairs()`` (cycled past ten).
PALETTE: tuple[str, ...] = (
    "red",
    "blue",
    "forestgreen",
    "darkorange",
    "deeppink",
    "cyan4",
    "gold3",
    "saddlebrown",
    "slateblue",
    "olivedrab",
)
#: Label colour of an edge that lies on the paths of two or more pairs (the paper's violet).
SHARED = "darkviolet"
#: Colour of a frozen edge that lies on no pair's paths.
FROZEN = "gray50"

#: Formats written as DOT source, without running Graphviz.
SOURCE_FORMATS = frozenset({"dot", "gv"})

INSTALL_HINT = (
    "install Graphviz's dot program: apt-get install graphviz (Debian/Ubuntu), "
    "brew install graphviz (macOS) or conda install -c conda-forge graphviz; "
    "the graphviz Python package does not include it. Writing a .dot file "
    "(draw(d, 'diagram.dot')) needs no dot program"
)


# -----------------------------------------------------------------------------
# The graph


def to_graphviz(diagram: Diagram, *, pairs: bool = True, title: str | None = None) -> graphviz.Digraph:
    """The diagram as a ``graphviz.Digraph``, its compiled pairs coloured pair by pair.

    Parameters
    ----------
    diagram : Diagram
    pairs : bool
        Colour the compiled parallel pairs and list them in a legend. When the
        diagram does not compile, the legend says why and nothing is coloured.
    title : str, optional
        A caption shown above the legend.
    """
    compiled, failure = _pairs(diagram) if pairs else ([], None)
    colours = [PALETTE[i % len(PALETTE)] for i in range(len(compiled))]
    on_edge: dict[str, list[str]] = {}
    for pair, colour in zip(compiled, colours):
        for edge in dict.fromkeys(pair.first + pair.second):
            if colour not in on_edge.setdefault(edge, []):
                on_edge[edge].append(colour)

    g = graphviz.Digraph(
        name="learning_diagram",
        graph_attr={"rankdir": "LR", "fontname": "Helvetica", "labelloc": "b", "nodesep": "0.4"},
        node_attr={"fontname": "Helvetica"},
        edge_attr={"fontname": "Helvetica"},
    )
    for space in diagram.spaces.values():
        g.node(space.name, **_vertex_attrs(space))
    for m in diagram.maps.values():
        g.edge(m.src, m.tgt, **_edge_attrs(m, on_edge.get(m.name, [])))
    legend = _legend(
        diagram, compiled, colours, failure, pairs=pairs, title=title, shared=any(len(c) > 1 for c in on_edge.values())
    )
    if legend:
        g.graph_attr["label"] = legend
    return g


def _pairs(diagram: Diagram) -> tuple[list[Pair], DiagramError | None]:
    try:
        return list(diagram.parallel_pairs()), None
    except DiagramError as err:
        return [], err


def _text(*lines: str) -> str:
    """A DOT label of plain text lines: backslashes literal, never read as HTML."""
    return graphviz.nohtml("\\n".join(line.replace("\\", "\\\\") for line in lines))


def _vertex_attrs(space: Space) -> dict[str, str]:
    attrs = {"label": _text(space.name) if space.loss is None else _text(space.name, f"({space.loss.name})")}
    roles = []
    if space.is_indexing:
        attrs.update(shape="cylinder", style="filled", fillcolor="gray95")
        name = getattr(space.data, "__name__", None)
        shown = "not given yet" if space.data is None else name if isinstance(name, str) else type(space.data).__name__
        roles.append(f"data ({shown})")
    else:
        attrs["shape"] = "ellipse"
    if space.loss is not None:
        attrs["peripheries"] = "2"
        kind = "symmetric" if space.loss.symmetric else "asymmetric"
        roles.append(f"space with the loss {space.loss.name} ({kind})")
    tip = f"{space.name}: {', '.join(roles) or 'space'}"
    if space.type is not None:
        tip += f"; type {_show_type(space.type)}"
    attrs["tooltip"] = _text(tip)
    return attrs


def _edge_attrs(m: Map, colours: list[str]) -> dict[str, str]:
    model = _model_name(m.fn)
    if model == m.name:  # a function named as its edge: say it once
        model = None
    lines = [f"{m.name}: {model}" if model else m.name]
    if not m.trainable:
        lines.append("(frozen)")
    elif not m.training:
        lines.append("(eval)")
    attrs = {"label": _text(*lines)}
    if colours:
        attrs.update(color=":".join(colours), fontcolor=SHARED if len(colours) > 1 else colours[0], penwidth="2")
    elif not m.trainable:
        attrs.update(color=FROZEN, fontcolor=FROZEN)
    if not m.trainable:
        attrs["style"] = "dashed"
    attrs["tooltip"] = _text(f"{m.name}: {m.src} → {m.tgt}" + (f", {model}" if model else ""))
    return attrs


def _model_name(fn: Any, width: int = 40) -> str | None:
    """What an edge computes, in a few characters: a function's name, else its class's.

    Objects may name themselves: a text-syntax lambda is named by what it was written as.
    """
    if fn is None:
        return None
    if isinstance(fn, functools.partial):
        return _model_name(fn.func, width)
    name = getattr(fn, "__name__", None)  # functions, classes, and objects that name themselves
    if not isinstance(name, str):
        return type(fn).__name__  # a module or another callable object
    if name == "<lambda>":
        return None
    return name if len(name) <= width else name[: width - 1] + "…"


def _show_type(annotation: Any) -> str:
    if annotation is Any:
        return "Any"
    if isinstance(annotation, tuple):
        return "(" + ", ".join(_show_type(a) for a in annotation) + ")"
    if isinstance(annotation, type):
        return annotation.__name__
    return str(annotation)


def _legend(
    diagram: Diagram,
    compiled: list[Pair],
    colours: list[str],
    failure: DiagramError | None,
    *,
    pairs: bool,
    title: str | None,
    shared: bool,
) -> str | None:
    """The graph's HTML-like label: title, one row per pair in its colour, or why there is none."""
    rows = []
    if title:
        rows.append(f'<TR><TD COLSPAN="4"><B>{_html(title)}</B></TD></TR>')
    if pairs and failure is not None:
        message = f"{type(failure).__name__}: {failure}"
        rows.append(
            '<TR><TD COLSPAN="4" ALIGN="LEFT" BALIGN="LEFT"><FONT COLOR="firebrick">'
            f"pairs not drawn: the diagram does not compile<BR/>{_html(message)}</FONT></TD></TR>"
        )
    elif pairs and not compiled:
        rows.append('<TR><TD COLSPAN="4">no pair of parallel paths compiles</TD></TR>')
    elif pairs:
        rows.append('<TR><TD COLSPAN="4" ALIGN="LEFT"><I>compiled pairs: weight · loss(first, second)</I></TD></TR>')
        for pair, colour in zip(compiled, colours):
            rows.append(
                f'<TR><TD BGCOLOR="{colour}" FIXEDSIZE="TRUE" WIDTH="14" HEIGHT="14"> </TD>'
                f'<TD ALIGN="LEFT"><FONT COLOR="{colour}">{_html(pair.name)}</FONT></TD>'
                f'<TD ALIGN="LEFT">at {_html(pair.target)}, {_html(pair.loss.name)}</TD>'
                f'<TD ALIGN="RIGHT">weight {pair.weight:g}</TD></TR>'
            )
    keys = []
    if any(s.is_indexing for s in diagram.spaces.values()):
        keys.append("cylinder: data")
    if any(s.loss is not None for s in diagram.spaces.values()):
        keys.append("double border: loss")
    if any(not m.trainable for m in diagram.maps.values()):
        keys.append("dashed: frozen")
    if shared:
        keys.append("violet label: on several pairs")
    if keys and rows:
        rows.append(
            f'<TR><TD COLSPAN="4" ALIGN="LEFT"><FONT POINT-SIZE="10" COLOR="gray40">'
            f"{_html(', '.join(keys))}</FONT></TD></TR>"
        )
    if not rows:
        return None
    return f'<<TABLE BORDER="0" CELLBORDER="0" CELLSPACING="2" CELLPADDING="2">{"".join(rows)}</TABLE>>'


def _html(text: str) -> str:
    """Text for an HTML-like label: markup characters escaped, newlines as left-aligned breaks."""
    return '<BR ALIGN="LEFT"/>'.join(html.escape(line, quote=True) for line in str(text).split("\n"))


# -----------------------------------------------------------------------------
# Rendering


def draw(
    diagram: Diagram,
    path: str | os.PathLike | None = None,
    *,
    format: str | None = None,
    pairs: bool = True,
    title: str | None = None,
) -> Any:
    """Draw the diagram: SVG text, or a file written atomically.

    Parameters
    ----------
    diagram : Diagram
    path : path-like, optional
        Where to write. The format comes from its suffix (``.svg``, ``.png``,
        ``.pdf``, ``.dot``/``.gv`` for the DOT source, any other format
        Graphviz knows) unless ``format`` is given. The drawing is rendered
        first, then written to a temporary file in the same folder that
        replaces ``path``, so ``path`` is never left half written.
    format : str, optional
        The output format; with no ``path``, ``"svg"`` by default.
    pairs, title
        As for :func:`to_graphviz`.

    Returns
    -------
    pathlib.Path
        When ``path`` is given: the file written.
    str or bytes
        Otherwise: the SVG text (or DOT source for ``"dot"``; bytes for other formats).

    Raises
    ------
    GraphvizNotFoundError
        When rendering needs Graphviz's ``dot`` program and it is not installed.
    UnsupportedFormatError
        For a format (or suffix) that is not one Graphviz writes.
    """
    graph = to_graphviz(diagram, pairs=pairs, title=title)
    if path is None:
        fmt = _check_format(format or "svg", "format")
        if fmt in SOURCE_FORMATS:
            return graph.source
        data = _render(graph, fmt)
        return data.decode("utf-8") if fmt == "svg" else data
    path = Path(path)
    if format is not None:
        fmt = _check_format(format, "format")
    elif path.suffix:
        fmt = _check_format(path.suffix[1:], f"the suffix of {str(path)!r}")
    else:
        raise UnsupportedFormatError(
            f"cannot tell which format to write {str(path)!r} in: give it a suffix "
            f"(.svg, .png, .pdf, .dot) or pass format='svg'"
        )
    data = graph.source.encode("utf-8") if fmt in SOURCE_FORMATS else _render(graph, fmt)
    return write_atomic(path, data)


def _check_format(fmt: str, where: str) -> str:
    fmt = fmt.lower().lstrip(".")
    if fmt in SOURCE_FORMATS or fmt in graphviz.FORMATS:
        return fmt
    raise UnsupportedFormatError(
        f"{where}: {fmt!r} is not a format Graphviz can write; use svg, png, pdf or dot "
        f"(DOT source, written without Graphviz)"
    )


def _render(graph: graphviz.Digraph, fmt: str) -> bytes:
    if shutil.which("dot") is None:
        raise GraphvizNotFoundError(
            f"Graphviz's dot program is not on PATH, so the diagram cannot be drawn as {fmt}; {INSTALL_HINT}"
        )
    try:
        return graph.pipe(format=fmt, quiet=True)
    except graphviz.ExecutableNotFound as err:
        raise GraphvizNotFoundError(
            f"Graphviz's dot program could not be run, so the diagram cannot be drawn as {fmt}; {INSTALL_HINT}"
        ) from err
    except graphviz.CalledProcessError as err:
        stderr = err.stderr.decode("utf-8", "replace") if isinstance(err.stderr, bytes) else err.stderr
        raise GraphvizError(f"Graphviz's dot failed to draw the diagram as {fmt}: {(stderr or '').strip()}") from err


# -----------------------------------------------------------------------------
# Jupyter (Diagram._repr_mimebundle_ adds this drawing to its text table)


def repr_svg(diagram: Diagram) -> str | None:
    """The drawing as SVG text for Jupyter; ``None`` when Graphviz's dot is missing (the renderer's protocol)."""
    try:
        return draw(diagram)
    except GraphvizError:
        return None
