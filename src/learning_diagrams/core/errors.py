"""The library's errors: one hierarchy, each also a matching built-in.

Every error the library raises on bad input is a :class:`DiagramError`, and
also the built-in exception a Python user would reach for, so that both
``except ld.DiagramError`` and ``except KeyError`` work. Messages name the
offending vertex, edge, relation or text position, and say how to fix it; the
texts that several places raise are templates in :mod:`.messages`.

Every error class of the library is defined here, whichever layer raises it.

>>> issubclass(UnknownNameError, KeyError) and issubclass(UnknownNameError, DiagramError)
True
>>> str(UnknownNameError("no vertex named 'Z'"))
"no vertex named 'Z'"
"""

from __future__ import annotations

__all__ = [
    "DiagramError",
    # names and structure
    "UnknownNameError",
    "DuplicateNameError",
    "InvalidNameError",
    "NotParallelError",
    "NotComposableError",
    "NotNaturalError",
    "PathExplosionError",
    # what compiles
    "NoLossError",
    "NoIndexingVertexError",
    "NothingToCompileError",
    "OrientationError",
    # running a diagram
    "MapError",
    "TypeMismatchError",
    "ConflictError",
    "NoBatchError",
    "OptionError",
    "NonFiniteError",
    # text and files
    "DiagramSyntaxError",
    "FileFormatError",
    "ConfigError",
    "CheckpointError",
    # homomorphisms and colimits
    "NoHomomorphismError",
    "TooManyHomomorphismsError",
    "AmbiguousHomomorphismError",
    "SearchOptionError",
    "NotCoconeError",
    "ShapeError",
    # drawing
    "GraphvizError",
    "GraphvizNotFoundError",
    "UnsupportedFormatError",
]


class DiagramError(Exception):
    """Base class of every error raised by learning-diagrams on bad input."""


# -- names and structure ------------------------------------------------------------


class UnknownNameError(DiagramError, KeyError):
    """A vertex, edge, path or environment name that does not exist."""

    def __str__(self) -> str:  # KeyError would quote the whole message
        return str(self.args[0]) if self.args else ""


class DuplicateNameError(DiagramError, ValueError):
    """A vertex or edge declared twice."""


class InvalidNameError(DiagramError, ValueError):
    """A name that cannot be used for a vertex or an edge."""


class NotParallelError(DiagramError, ValueError):
    """A relation between paths that do not share source and target."""


class NotComposableError(DiagramError, ValueError):
    """Two paths, edges or morphisms whose boundaries do not match."""


class NotNaturalError(DiagramError, ValueError):
    """A vertex and edge assignment that does not preserve sources and targets."""


class PathExplosionError(DiagramError, RuntimeError):
    """Path enumeration that exceeds the configured limit."""


# -- what compiles ---------------------------------------------------------------------


class NoLossError(DiagramError, ValueError):
    """A declared relation from which no loss term follows: none of its whiskerings runs from an
    indexing vertex to a vertex with a loss among the diagram's paths (the message says why)."""


class NoIndexingVertexError(DiagramError, ValueError):
    """A diagram with no indexing vertex: none is declared ``indexing=True`` or carries data."""


class NothingToCompileError(DiagramError, ValueError):
    """A diagram whose compiled loss would have no term."""


class OrientationError(DiagramError, ValueError):
    """An asymmetric loss whose pairs have no orientation."""


# -- running a diagram -----------------------------------------------------------------


class MapError(DiagramError, RuntimeError):
    """A map that failed on the value it was given, named with its edge and vertex."""


class TypeMismatchError(DiagramError, TypeError):
    """A value that does not fit the type annotation of its vertex, or an argument of the wrong kind."""


class ConflictError(DiagramError, ValueError):
    """Parts that must agree do not: one model both frozen and trainable, an edge into an indexing
    vertex, one relation declared with two weights, say."""


class NoBatchError(DiagramError, ValueError):
    """No batch to be had: a compiled loss called with none for any of its source vertices, or an
    indexing vertex without data where batches must be drawn (compiling, a dry run)."""


class OptionError(DiagramError, ValueError):
    """An option with a value that cannot be used: an unknown policy, a negative count, a temperature ≤ 0."""


class NonFiniteError(DiagramError, FloatingPointError):
    """A loss, a term, a gradient or a weight that is NaN or infinite, named with its step, term and edge."""


# -- text and files ---------------------------------------------------------------------


class DiagramSyntaxError(DiagramError, SyntaxError):
    """A mistake in the text syntax, with its line and column.

    >>> e = DiagramSyntaxError("unexpected '→'", text="A → B", line=1, column=3)
    >>> print(e)
    line 1, column 3: unexpected '→'
        A → B
          ^
    """

    def __init__(self, message: str, *, text: str = "", line: int = 0, column: int = 0):
        super().__init__(message)
        self.message, self.text, self.line, self.column = message, text, line, column
        # SyntaxError's own fields, so tracebacks point at the place too.
        self.lineno, self.offset = line, column

    def __str__(self) -> str:
        where = f"line {self.line}, column {self.column}: {self.message}"
        if not self.text:
            return where
        return f"{where}\n    {self.text}\n    {' ' * (self.column - 1)}^"


class FileFormatError(DiagramError, ValueError):
    """A malformed diagram or weights file (the message names the place), or a diagram that
    a file format cannot hold (the message names the vertex or edge)."""


class ConfigError(DiagramError, ValueError):
    """A training config, or an ``--env`` reference, that cannot be used."""


class CheckpointError(FileFormatError):
    """A checkpoint file that cannot be read, or whose contents are not what was saved; names the file."""


# -- homomorphisms and colimits ------------------------------------------------------------


class NoHomomorphismError(DiagramError, LookupError):
    """A search that had to find a match (``homomorphism``, or an action) found none."""


class TooManyHomomorphismsError(DiagramError, ValueError):
    """A search that found more matches than ``at_most=`` allows."""


class AmbiguousHomomorphismError(TooManyHomomorphismsError):
    """``homomorphism`` found more than one match (and ``first=True`` was not given)."""


class SearchOptionError(OptionError):
    """A search option that cannot be read: a bad ``monic=``, ``take=``, or a name that is ambiguous."""


class NotCoconeError(DiagramError, ValueError):
    """Morphisms given to ``Colimit.universal`` that do not form a cocone."""


class ShapeError(DiagramError, ValueError):
    """An arrow of a colimit's shape whose domain or codomain is not the diagram it names."""


# -- drawing ---------------------------------------------------------------------------------


class GraphvizError(DiagramError, RuntimeError):
    """Graphviz could not render a drawing."""


class GraphvizNotFoundError(GraphvizError):
    """Graphviz's ``dot`` program is not installed (or not on ``PATH``)."""


class UnsupportedFormatError(DiagramError, ValueError):
    """An output format that a drawing cannot be written in."""
