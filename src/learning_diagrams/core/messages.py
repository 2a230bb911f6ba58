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
    "INTO_INDEXING",
    "NO_DATA",
    "NO_PER_SAMPLE",
    "PER_SAMPLE_NOT_VECTOR",
    "UNKNOWN_SIZE",
    "MAP_NEEDS_CALLABLE",
    "MAP_HAS_NO_FUNCTION",
    "MAP_FAILED",
    "LOSS_FAILED",
    "LOSS_NOT_SCALAR",
    "ONE_SHOT_ITERATOR",
    "NOT_A_DATA_SOURCE",
    "NO_BATCHES",
    "NONFINITE_TERM",
    "NONFINITE_TOTAL",
    "NONFINITE_BATCH",
    "NONFINITE_EDGE",
    "NONFINITE_LOSS",
    "NONFINITE_GRADIENT",
    "NONFINITE_GRADIENT_EDGE",
    "NONFINITE_GRADIENT_LOSS",
    "NONFINITE_WEIGHTS",
    "NONFINITE_CHECKPOINT",
    "NOTHING_TO_TRAIN",
    "HIDDEN_MODULE",
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

#: A batch, or data, given for a vertex that is not indexing: ``what`` is "a batch", "data", ...
NOT_INDEXING = "{what} was given for {vertex!r}, which is not an indexing vertex (indexing vertices: {indexing})"

#: An edge that ends at an indexing vertex; ``why`` cites the paper's Ind, ``fix`` says what to do.
INTO_INDEXING = (
    "edge {edge!r} ({src} → {tgt}) ends at indexing vertex {tgt!r}, and no edge may end at one: {why}; {fix}"
)

#: Indexing vertices that a compiled loss, or a dry run, must draw batches from but that have no data.
NO_DATA = (
    "no data at indexing vertex {vertices}, where batches are drawn; give it data: "
    "d.space({vertex!r}, data=loader), ld.assign_data(...), d.compile(data={{{vertex!r}: loader}}) "
    "or ld.fit(d, data={{{vertex!r}: loader}})"
)

#: ``reduction="sum"`` and a loss that has no per-sample form.
NO_PER_SAMPLE = (
    "reduction='sum' sums per-sample losses, but the loss {loss} at vertex {target!r} (pair {pair!r}) "
    "has no per-sample form; give it one, ld.Loss(fn, symmetric=..., per_sample=fn_per_sample) "
    "returning one value per sample, or compile with reduction='mean'"
)

#: A per-sample loss that returned something other than one value per sample.
PER_SAMPLE_NOT_VECTOR = (
    "the per-sample form of the loss {loss} at vertex {target!r} returned {value} for pair {pair!r}; "
    "a per-sample loss returns one value per sample, a 1-d array as long as the batch"
)

#: ``reduction="sum"`` over data whose size is unknown: the batch sums are not scaled.
UNKNOWN_SIZE = (
    "reduction='sum': the size of the data set at vertex {vertex!r} is unknown (a {kind}), so each "
    "batch's sum is not scaled to the data set; give a DataLoader over a sized dataset, a list of "
    "batches or a tensor to get the paper's sum over the data set"
)

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

#: A term whose value is not finite, and where it first went so: ``culprit`` is one of the three below.
NONFINITE_TERM = "term {pair!r} is {value}: {culprit}"

#: A total that is not finite although each term is (their sum overflows).
NONFINITE_TOTAL = "the total is {value} although every term is finite: their sum overflows"

#: The batch of a source vertex holds non-finite numbers before any edge runs.
NONFINITE_BATCH = "the batch at vertex {vertex!r} already holds non-finite numbers"

#: The first edge along a pair's paths whose output is not finite.
NONFINITE_EDGE = "edge {name!r} ({src} → {tgt}, path {path}) is the first along its paths whose output is not finite"

#: Every value along a pair's paths is finite: the loss made the term non-finite.
NONFINITE_LOSS = "every value along its paths is finite; the loss {loss} at vertex {target!r} gave {value}"

#: A term whose gradient is not finite although its value is, and where it turns so.
NONFINITE_GRADIENT = "the gradient of term {pair!r} is not finite: {culprit}"

#: Going back from the loss, the first edge whose input or parameters get a non-finite gradient.
NONFINITE_GRADIENT_EDGE = (
    "going back from the loss, it turns non-finite at edge {name!r} ({src} → {tgt}, path {path}), "
    "whose gradient at its output is finite"
)

#: The loss itself gives a non-finite gradient at its inputs.
NONFINITE_GRADIENT_LOSS = "the loss {loss} at vertex {target!r} gives a non-finite gradient on finite values"

#: Maps whose weights (parameters or buffers) are not finite.
NONFINITE_WEIGHTS = "the weights of {maps} are not finite (an earlier optimiser step made them so)"

#: A checkpoint refused because its weights are not finite.
NONFINITE_CHECKPOINT = (
    "the checkpoint of step {step} was not written: the weights of {maps} are not finite; "
    "the last checkpoint written is kept ({last})"
)

#: A regime (or stage) in which no trainable parameter reaches an optimiser.
NOTHING_TO_TRAIN = (
    "{what} has nothing to train: no trainable parameter reaches an optimiser. The maps on its "
    "compiled pairs: {maps}. A plain function (a lambda, a def) hides the parameters of any module it "
    "calls: give the module itself to the edge (d.map(name, src, tgt, module)), or write the edge in "
    "the text syntax (ld.parse), whose lambdas register the modules they call; unfreeze a frozen map "
    "with d.unfreeze(name)"
)

#: A plain-function edge that calls a module with parameters: the module is not registered.
#: A plain-function edge that reaches an Equinox module with arrays that no edge holds (the JAX back end).
HIDDEN_ARRAYS = (
    "edge {edge!r} is a plain function that reaches the Equinox module {module} ({kind}, {count} array "
    "elements), which no edge of the compiled loss holds: its arrays are constants, never trained. Give "
    "the module itself to an edge (d.map({edge!r}, src, tgt, module), with trainable=False to keep it fixed)"
)

HIDDEN_MODULE = (
    "edge {edge!r} is a plain function that reaches module {module} ({kind}, {count} parameters), "
    "which the compiled loss does not register: its parameters are neither trained nor frozen, nor "
    "moved, nor saved. Give the module itself to the edge (d.map({edge!r}, src, tgt, module), with "
    "trainable=False to keep it fixed), or write the edge in the text syntax (ld.parse), whose "
    "lambdas register the modules they call"
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


# -- files and checkpoints whose content is not what was saved ---------------------------------

__all__ += ["SHA256_MISMATCH", "NOT_SAFETENSORS"]

#: A weights file whose SHA-256 is not the one recorded with it (a diagram file's entry, a checkpoint's state).
SHA256_MISMATCH = (
    "{file}: its SHA-256 is {found:.16}…, but {record} records {expected:.16}…: the file is damaged, "
    "or not the one saved with it; no weight was loaded"
)

#: A file that safetensors cannot read (truncated, damaged, not safetensors at all).
NOT_SAFETENSORS = "{file}: not a readable safetensors file ({reason})"

# -- path enumeration ------------------------------------------------------------------------------

__all__ += ["PATH_EXPLOSION", "PATH_ALLOWANCE"]

#: Path enumeration past its guard (``core.paths.enumerate_paths``); ``allowed`` is ``max_paths={max_paths}``
#: itself on a small graph, else :data:`PATH_ALLOWANCE`.
PATH_EXPLOSION = (
    "path enumeration found {found} paths, more than {allowed}, by length {length}; most of them ({worst}) "
    "from {u} to {v}. Bound it with max_length=..., raise max_paths=..., or remove cycles"
)

#: The guard's bound on a graph of more than 1,000 vertices and edges.
PATH_ALLOWANCE = "the {bound} that max_paths={max_paths} per 1000 vertices and edges allows this graph of {size}"
