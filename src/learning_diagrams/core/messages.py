"""The texts of the errors that several places raise, as templates, written once.

Each template is formatted with :meth:`str.format` where the error is raised;
the error classes are in :mod:`.errors`. :func:`located` puts a position (a
line of a text, a field of a file) in front of an error's message.

>>> NOT_COMPOSABLE.format("f", "g", "B", "C")
'f does not compose with g: B != C'
>>> did_you_mean("stuent", ["student", "teacher"])
" (did you mean 'student'?)"
"""

from __future__ import annotations

import contextlib
import difflib
from collections.abc import Iterable, Iterator

from .errors import DiagramError, DiagramSyntaxError

__all__ = [
    "NOT_COMPOSABLE",
    "NOT_PARALLEL",
    "NOT_A_SOURCE",
    "NOT_INDEXING",
    "MAP_NEEDS_CALLABLE",
    "MAP_HAS_NO_FUNCTION",
    "MAP_FAILED",
    "LOSS_FAILED",
    "LOSS_NOT_SCALAR",
    "ONE_SHOT_ITERATOR",
    "NOT_A_DATA_SOURCE",
    "NO_BATCHES",
    "NO_TRAINABLE_PARAMETERS",
    "did_you_mean",
    "listed",
    "located",
]

#: Two things composed whose boundaries differ: ``(first, second, first's end, second's start)``.
NOT_COMPOSABLE = "{} does not compose with {}: {} != {}"

#: A relation between paths that do not share their ends.
NOT_PARALLEL = (
    "relation {first} ≤ {second} is between paths that are not parallel: "
    "{first} goes {first.source} → {first.target} but {second} goes {second.source} → {second.target}"
)

#: Something given for a vertex that no compiled pair starts at (a batch, held-out data, ...).
NOT_A_SOURCE = "{what} was given for {vertex!r}, which is not a source of any compiled pair (sources: {sources})"

#: A batch given to a dry run for a vertex that carries no data.
NOT_INDEXING = "a batch was given for {vertex!r}, which is not an indexing vertex (indexing vertices: {indexing})"

#: An edge given something that cannot run.
MAP_NEEDS_CALLABLE = "{where} needs a torch.nn.Module or a callable, got a {kind}"

#: A wildcard edge (``fn=None``, in a pattern) asked to run.
MAP_HAS_NO_FUNCTION = "edge {name!r} ({src} → {tgt}) has no function to run"

#: A map that raised on its input.
MAP_FAILED = "edge {name!r} ({src} → {tgt}) failed on the value at vertex {src!r}{via}, a {value}: {error}: {message}"

#: A loss that raised on the two values of a pair.
LOSS_FAILED = (
    "the loss {loss} at vertex {target!r} failed on pair {pair!r}, first {first}, second {second}: {error}: {message}"
)

#: A loss that returned something other than a scalar array.
LOSS_NOT_SCALAR = (
    "the loss {loss} at vertex {target!r} returned {value} for pair {pair!r}; a loss returns a scalar "
    "tensor (reduce it, with .mean() or .sum())"
)

#: Data that can be iterated once only.
ONE_SHOT_ITERATOR = (
    "the data of vertex {vertex!r} is a one-shot iterator ({kind}); it cannot start a second pass. "
    "Give a list of batches or a DataLoader instead"
)

#: Data that cannot be iterated at all.
NOT_A_DATA_SOURCE = (
    "the data of vertex {vertex!r} is a {kind}, which is not a source of batches; "
    "give a DataLoader, a Dataset, a tensor or a list of batches"
)

#: Data whose pass yields nothing.
NO_BATCHES = "the data of vertex {vertex!r} has no batches"

#: A compiled loss with nothing to train.
NO_TRAINABLE_PARAMETERS = (
    "the compiled loss has no trainable parameters: every map on its pairs is frozen or a "
    "plain function; unfreeze a map (diagram.unfreeze(name)) to train it"
)


def did_you_mean(name: str, known: Iterable[object]) -> str:
    """``" (did you mean 'x' or 'y'?)"`` for the names of ``known`` closest to ``name``, else ``""``."""
    close = difflib.get_close_matches(name, sorted({k for k in known if isinstance(k, str)}), n=3)
    return f" (did you mean {' or '.join(map(repr, close))}?)" if close else ""


def listed(names: Iterable[object], empty: str = "none") -> str:
    """``"a, b, c"``, or ``empty`` when there is nothing to list."""
    return ", ".join(map(str, names)) or empty


@contextlib.contextmanager
def located(where: str) -> Iterator[None]:
    """Re-raise a :class:`DiagramError` with ``where`` in front of its message, keeping its class.

    Used wherever an error raised by a builder call should say which line of a text or
    which field of a file it came from. A message that already starts with ``where`` is
    left alone; a :class:`DiagramSyntaxError` keeps its own position.

    >>> from learning_diagrams.core.errors import UnknownNameError
    >>> with located("line 3, column 1"):
    ...     raise UnknownNameError("no vertex named 'Z'")
    Traceback (most recent call last):
    ...
    learning_diagrams.core.errors.UnknownNameError: line 3, column 1: no vertex named 'Z'
    """
    try:
        yield
    except DiagramSyntaxError:
        raise
    except DiagramError as err:
        message = str(err)
        if message.startswith(where):
            raise
        try:
            relocated = type(err)(f"{where}: {message}")
        except Exception:  # an error class with another constructor
            relocated = DiagramError(f"{where}: {message}")
        raise relocated from err
