"""Losses: the Lawvere metrics that a space of a learning diagram may carry.

A *loss* on a space is read as a Lawvere metric ``d(a, b)``: a non-negative
number with ``d(x, x) = 0`` that need not be symmetric. A diagram compiles to a
sum of ``loss(p(x), q(x))`` over pairs of parallel paths ``p <= q``, and the
argument order is fixed throughout the library:

* the **first** argument is the *prediction* side (a student's logits, a
  model's output);
* the **second** argument is the *target* side (labels, a teacher's logits).

A :class:`Loss` is a callable ``fn(prediction, target) -> scalar tensor``
together with an explicit ``symmetric`` flag. The flag matters: when a user
declares no relation between two parallel paths, the library compares them in
a fixed order, which only makes sense when ``d(a, b) == d(b, a)``. A plain
callable cannot tell us that, so :func:`as_loss` treats it as asymmetric; wrap
it as ``Loss(fn, symmetric=True)`` to declare symmetry.

**Reductions.** Every loss is a per-sample distance ``d(a, b)`` reduced over a
batch ``B``. Called directly, a library loss reduces by the mean, exactly as
its :mod:`torch.nn.functional` counterpart does by default; its per-sample form,
``loss.per_sample(a, b)``, gives one value per sample (a 1-d array), whose mean
is the loss. A compiled diagram reduces each term by :data:`REDUCTIONS`:

* ``"mean"`` (the default): ``(1/|B|) Σ_{x∈B} d(p x, q x)``, the batch mean, an
  unbiased estimate of the paper's ``ℓ(p, q) / |X|`` for the term's data set ``X``;
* ``"sum"``: ``(|X|/|B|) Σ_{x∈B} d(p x, q x)``, an unbiased estimate of the
  paper's ``ℓ(p, q) = Σ_{x∈X} d(p x, q x)`` (exactly it when the batch is the
  whole data set), which needs every loss's per-sample form. A user's own
  :class:`Loss` gives it as ``per_sample=``.

A library loss's per-sample ``d`` is, for one sample: the mean of its elements'
squared (``mse``) or absolute (``l1``) differences, or binary cross entropies;
``-log softmax(a)[y]`` (``cross_entropy``, averaged over positions for spatial
targets); ``T² · KL`` summed over its classes (``kl_div``); ``1 - cos`` of the
flattened sample (``cosine``).

**Specifications here, formulas in the back ends.** This module is torch-free:
a library loss is a :class:`Loss` whose function is a :class:`Formula`, the
loss's name and parameters. Each array back end holds the formulas
(:mod:`learning_diagrams.torch.losses` for PyTorch) and compiles a
diagram's losses to them once; calling a library loss directly, ``mse(a, b)``,
finds the back end of its arguments. A user's own :class:`Loss` carries its own
function, which runs on whatever arrays it accepts.

============================================  =========  ====================================
loss                                          symmetric  compares
============================================  =========  ====================================
:data:`mse`                                   yes        values (mean squared error)
:data:`l1`                                    yes        values (mean absolute error)
:data:`cosine`                                yes        directions (1 - cosine similarity)
:data:`cross_entropy`                         no         logits vs. class indices or probabilities
:data:`kl_div` / :class:`KLDivergence`        no         logits vs. logits (distillation)
:data:`binary_cross_entropy`                  no         probabilities vs. probabilities
:data:`binary_cross_entropy_with_logits`      no         logits vs. probabilities
============================================  =========  ====================================

:data:`cross_entropy` and the binary cross entropies are not Lawvere metrics
on their own: ``d(p, p)`` is the entropy of ``p``, not zero. They are still the
right losses to compare a prediction with a target, and are marked asymmetric.
:data:`cosine` is a Lawvere metric on non-zero vectors (it compares directions
only, and ``d(0, 0) = 1``).

Laws
----
``d(x, x) = 0`` for the metrics:

>>> import torch
>>> from learning_diagrams.core import losses
>>> x = torch.tensor([[1.0, -2.0, 0.5], [0.0, 3.0, -1.0]])
>>> losses.mse(x, x).item(), losses.l1(x, x).item()
(0.0, 0.0)
>>> abs(losses.cosine(x, x).item()) < 1e-6
True
>>> losses.kl_div(x, x).item(), losses.KLDivergence(temperature=4.0)(x, x).item()
(0.0, 0.0)

and the symmetric ones satisfy ``d(a, b) = d(b, a)``; the others do not:

>>> y = torch.tensor([[0.0, 1.0, 2.0], [1.0, 1.0, -1.0]])
>>> losses.mse.symmetric, bool(losses.mse(x, y) == losses.mse(y, x))
(True, True)
>>> losses.kl_div.symmetric, bool(torch.isclose(losses.kl_div(x, y), losses.kl_div(y, x)))
(False, False)

Each loss is the batch mean of its per-sample form:

>>> labels = torch.tensor([2, 0])
>>> all(torch.allclose(d(x, y), d.per_sample(x, y).mean()) for d in (losses.mse, losses.l1, losses.cosine,
...     losses.KLDivergence(temperature=3.0))), bool(torch.isclose(losses.cross_entropy(x, labels),
...     losses.cross_entropy.per_sample(x, labels).mean()))
(True, True)
>>> losses.mse.per_sample(x, y).shape
torch.Size([2])
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from . import plugins
from .errors import OptionError, TypeMismatchError
from .messages import NO_PER_SAMPLE

__all__ = [
    "Loss",
    "Formula",
    "KLDivergence",
    "REDUCTIONS",
    "check_reduction",
    "computed_by",
    "as_loss",
    "by_name",
    "is_library",
    "LIBRARY",
    "mse",
    "l1",
    "cross_entropy",
    "kl_div",
    "cosine",
    "binary_cross_entropy",
    "binary_cross_entropy_with_logits",
]

Array = Any  # an array of whichever back end computes the loss

#: How a compiled diagram reduces each term over its batch (see the module docstring).
REDUCTIONS = ("mean", "sum")


def check_reduction(reduction: object) -> None:
    """Raise :class:`OptionError` unless ``reduction`` is one of :data:`REDUCTIONS`.

    >>> check_reduction("median")
    Traceback (most recent call last):
    ...
    learning_diagrams.core.errors.OptionError: reduction='median' is not one of 'mean', 'sum'
    """
    if reduction not in REDUCTIONS:
        raise OptionError(f"reduction={reduction!r} is not one of {', '.join(map(repr, REDUCTIONS))}")


def computed_by(
    loss: Loss,
    reduction: str,
    formula: Callable[[Formula], Callable[..., Array]],
    *,
    pair: str = "",
    target: str = "",
) -> Callable[..., Array]:
    """What computing ``loss`` calls on a back end whose formula of a library loss is ``formula(spec)``.

    A library loss's formula, or the user's own function; with ``reduction="sum"``
    the loss's per-sample form, and a loss without one raises
    :class:`~learning_diagrams.core.errors.OptionError` naming it (and ``pair`` and
    ``target``, if given). Each back end's ``loss_function`` is this with its formulas.

    >>> computed_by(mse, "mean", lambda spec: spec.name)
    'mse'
    >>> computed_by(as_loss(lambda a, b: a), "sum", str)
    Traceback (most recent call last):
    ...
    learning_diagrams.core.errors.OptionError: reduction='sum' sums per-sample losses, but the loss <lambda> ...
    """
    check_reduction(reduction)
    fn = loss.fn if reduction == "mean" else loss.per_sample
    if fn is None:
        raise OptionError(NO_PER_SAMPLE.format(loss=loss.name, target=target, pair=pair))
    return formula(fn) if isinstance(fn, Formula) else fn


def _rebuild(cls: type[Loss], state: dict[str, Any]) -> Loss:
    """Recreate a frozen :class:`Loss` from its fields (for pickle and copy)."""
    obj = cls.__new__(cls)
    for key, value in state.items():
        object.__setattr__(obj, key, value)
    return obj


@dataclass(frozen=True)
class Formula:
    """A loss the library names, whose formula each array back end holds.

    ``name`` picks the formula (``"mse"``, ``"kl_div"``) and ``params`` are its
    keyword arguments (``(("temperature", 2.0),)``); ``per_sample`` picks its
    per-sample form (one value per sample) rather than its batch mean. Calling it
    runs the formula of the back end whose arrays it is given.

    >>> import torch
    >>> Formula("mse")(torch.ones(2), torch.zeros(2)).item()
    1.0
    >>> Formula("mse", per_sample=True)(torch.ones(2, 3), torch.zeros(2, 3)).tolist()
    [1.0, 1.0]
    """

    name: str
    params: tuple[tuple[str, Any], ...] = ()
    per_sample: bool = False

    def __call__(self, prediction: Array, target: Array) -> Array:
        return plugins.for_value(prediction).formula(self)(prediction, target)


class Loss:
    """A loss ``d(prediction, target)`` with an explicit symmetry flag.

    Parameters
    ----------
    fn : callable
        ``fn(prediction, target) -> Array``, a scalar. The first argument is
        the prediction side, the second the target side.
    symmetric : bool
        Keyword-only and required: whether ``fn(a, b) == fn(b, a)`` for all
        ``a, b``. Only symmetric losses may be compiled over pairs of paths
        that carry no declared orientation.
    name : str, optional
        Shown in ``repr`` and in error messages; defaults to ``fn.__name__``.
    per_sample : callable, optional
        ``per_sample(prediction, target) -> Array``, one value per sample (a 1-d
        array as long as the batch) whose mean is ``fn``'s value; compiling with
        ``reduction="sum"`` needs it. Library losses have theirs; a :class:`Loss`
        given as ``fn`` lends its own.

    Examples
    --------
    >>> import torch
    >>> def sq(a, b):
    ...     return ((a - b) ** 2).sum()
    >>> d = Loss(sq, symmetric=True)
    >>> d
    Loss(sq, symmetric=True)
    >>> d(torch.tensor([1.0, 2.0]), torch.tensor([0.0, 0.0])).item()
    5.0
    >>> d.per_sample is None
    True
    >>> rows = Loss(sq, symmetric=True, per_sample=lambda a, b: ((a - b) ** 2).sum(dim=1))
    >>> rows.per_sample(torch.ones(2, 2), torch.zeros(2, 2)).tolist()
    [2.0, 2.0]

    A loss is immutable:

    >>> d.symmetric = False
    Traceback (most recent call last):
    ...
    AttributeError: Loss is immutable; build a new one instead
    """

    __slots__ = ("fn", "symmetric", "name", "per_sample")

    fn: Callable[[Array, Array], Array]
    symmetric: bool
    name: str
    per_sample: Callable[[Array, Array], Array] | None

    def __init__(
        self,
        fn: Callable[[Array, Array], Array],
        *,
        symmetric: bool,
        name: str | None = None,
        per_sample: Callable[[Array, Array], Array] | None = None,
    ) -> None:
        if not callable(fn):
            raise TypeMismatchError(f"Loss needs a callable fn(prediction, target), got {fn!r} ({type(fn).__name__})")
        if not isinstance(symmetric, bool):
            raise TypeMismatchError(
                f"Loss(symmetric=...) must be True or False, got {symmetric!r} ({type(symmetric).__name__})"
            )
        if name is None:
            name = _name_of(fn)
        elif not isinstance(name, str):
            raise TypeMismatchError(f"Loss(name=...) must be a str, got {name!r} ({type(name).__name__})")
        if per_sample is None:
            if isinstance(fn, Formula):  # a library formula has its per-sample form in every back end
                per_sample = dataclasses.replace(fn, per_sample=True)
            elif isinstance(fn, Loss):
                per_sample = fn.per_sample
        elif not callable(per_sample):
            raise TypeMismatchError(
                f"Loss(per_sample=...) must be a callable per_sample(prediction, target), got "
                f"{per_sample!r} ({type(per_sample).__name__})"
            )
        object.__setattr__(self, "fn", fn)
        object.__setattr__(self, "symmetric", symmetric)
        object.__setattr__(self, "name", name)
        object.__setattr__(self, "per_sample", per_sample)

    def __call__(self, prediction: Array, target: Array) -> Array:
        """Return ``d(prediction, target)``."""
        return self.fn(prediction, target)

    def __repr__(self) -> str:
        return f"Loss({self.name}, symmetric={self.symmetric})"

    def __setattr__(self, key: str, value: Any) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable; build a new one instead")

    def __delattr__(self, key: str) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable; build a new one instead")

    def _fields(self) -> dict[str, Any]:
        fields: dict[str, Any] = {}
        for cls in reversed(type(self).__mro__):
            for slot in cls.__dict__.get("__slots__", ()):
                fields[slot] = getattr(self, slot)
        fields.update(getattr(self, "__dict__", {}))
        return fields

    def _key(self) -> tuple[Any, ...]:
        return (self.fn, self.symmetric, self.name, self.per_sample)

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        assert isinstance(other, Loss)  # the same type as self
        return self._key() == other._key()

    def __hash__(self) -> int:
        return hash((type(self), self._key()))

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (type(self), self._fields()))


def _name_of(fn: Callable[..., Any]) -> str:
    name = getattr(fn, "__name__", None)
    if isinstance(name, str):
        return name
    name = getattr(fn, "name", None)  # e.g. a Loss wrapped again
    if isinstance(name, str):
        return name
    return type(fn).__name__


def as_loss(obj: Loss | Callable[[Array, Array], Array] | None) -> Loss | None:
    """Turn what a user gave as a loss into a :class:`Loss`.

    Parameters
    ----------
    obj : Loss, callable or None
        A :class:`Loss` is returned as is. Any other callable
        ``fn(prediction, target)`` becomes ``Loss(fn, symmetric=False)``: a plain
        callable says nothing about symmetry, so it is treated as asymmetric.
        Wrap it as ``Loss(fn, symmetric=True)`` to declare it symmetric.
        ``None`` (no loss) stays ``None``.

    Returns
    -------
    Loss or None

    Raises
    ------
    TypeMismatchError
        For anything else (also a :class:`TypeError`), naming what was given.

    Examples
    --------
    >>> as_loss(mse) is mse
    True
    >>> def hinge(a, b):
    ...     return (1 - a * b).clamp(min=0).mean()
    >>> as_loss(hinge)
    Loss(hinge, symmetric=False)
    >>> as_loss(None) is None
    True
    >>> try:
    ...     as_loss("mse")
    ... except TypeError as e:
    ...     print(e)
    a loss must be a Loss, a callable fn(prediction, target) or None, got 'mse' (str); did you mean learning_diagrams.losses.mse?
    """
    if obj is None or isinstance(obj, Loss):
        return obj
    expected = "a loss must be a Loss, a callable fn(prediction, target) or None"
    if isinstance(obj, type):
        raise TypeMismatchError(
            f"{expected}, got the class {obj.__qualname__}; pass an instance, e.g. {obj.__qualname__}()"
        )
    if callable(obj):
        return Loss(obj, symmetric=False)
    hint = ""
    if isinstance(obj, str) and obj in LIBRARY:
        hint = f"; did you mean learning_diagrams.losses.{obj}?"
    raise TypeMismatchError(f"{expected}, got {obj!r} ({type(obj).__name__}){hint}")


class KLDivergence(Loss):
    """Hinton's distillation loss ``KL(softmax(t / T) || softmax(s / T)) * T**2``.

    With prediction logits ``s`` (student) and target logits ``t`` (teacher),
    classes along the last dimension::

        p_t = softmax(t / T)
        log_p_s = log_softmax(s / T)
        loss = sum(p_t * (log(p_t) - log_p_s)) / batch_size * T**2

    as in PyTorch's knowledge-distillation tutorial (``batch_size`` is the size
    of the first dimension; a 1-d input is one distribution). The ``T**2``
    keeps gradient magnitudes comparable across temperatures. Entries where
    ``p_t`` is 0 contribute 0, so saturated or ``-inf`` teacher logits give no
    NaN.

    Parameters
    ----------
    temperature : float, default 1.0
        The softening temperature ``T > 0``.

    Examples
    --------
    >>> import torch
    >>> kd = KLDivergence(temperature=2.0)
    >>> kd
    KLDivergence(temperature=2.0)
    >>> kd.name, kd.symmetric
    ('kl_div(T=2.0)', False)
    >>> s, t = torch.zeros(1, 3), torch.tensor([[0.0, 0.0, -float("inf")]])
    >>> round(kd(s, t).item(), 4)  # 4 * log(3 / 2)
    1.6219
    """

    __slots__ = ("temperature",)

    temperature: float

    def __init__(self, temperature: float = 1.0) -> None:
        if isinstance(temperature, bool) or not isinstance(temperature, (int, float)):
            raise TypeMismatchError(
                f"KLDivergence(temperature=...) must be a number, got {temperature!r} ({type(temperature).__name__})"
            )
        temperature = float(temperature)
        if not (math.isfinite(temperature) and temperature > 0):
            raise OptionError(f"KLDivergence(temperature=...) must be positive and finite, got {temperature}")
        super().__init__(
            Formula("kl_div", (("temperature", temperature),)),
            symmetric=False,
            name=f"kl_div(T={temperature})",
        )
        object.__setattr__(self, "temperature", temperature)

    def __repr__(self) -> str:
        return f"KLDivergence(temperature={self.temperature})"

    def _key(self) -> tuple[Any, ...]:
        return (self.temperature,)


#: Mean squared error, ``F.mse_loss``. Symmetric.
mse = Loss(Formula("mse"), symmetric=True, name="mse")
#: Mean absolute error, ``F.l1_loss``. Symmetric.
l1 = Loss(Formula("l1"), symmetric=True, name="l1")
#: ``F.cross_entropy(logits, target)``: the target is class indices (an integer
#: tensor) or class probabilities (a float tensor shaped like the logits).
#: Asymmetric.
cross_entropy = Loss(Formula("cross_entropy"), symmetric=False, name="cross_entropy")
#: Distillation KL divergence at temperature 1, ``KLDivergence()``. Asymmetric.
kl_div = KLDivergence()
#: Mean over the batch of ``1 - cosine_similarity``, everything after the batch
#: dimension flattened; equal to ``nn.CosineEmbeddingLoss()(a, b, ones(batch))``.
#: Symmetric.
cosine = Loss(Formula("cosine"), symmetric=True, name="cosine")
#: ``F.binary_cross_entropy(probabilities, target)``. Asymmetric.
binary_cross_entropy = Loss(Formula("binary_cross_entropy"), symmetric=False, name="binary_cross_entropy")
#: ``F.binary_cross_entropy_with_logits(logits, target)``. Asymmetric.
binary_cross_entropy_with_logits = Loss(
    Formula("binary_cross_entropy_with_logits"), symmetric=False, name="binary_cross_entropy_with_logits"
)

#: The library's losses by name: the one table that files, the text syntax and the command line read.
LIBRARY: Mapping[str, Loss] = MappingProxyType(
    {
        "mse": mse,
        "l1": l1,
        "cross_entropy": cross_entropy,
        "kl_div": kl_div,
        "cosine": cosine,
        "binary_cross_entropy": binary_cross_entropy,
        "binary_cross_entropy_with_logits": binary_cross_entropy_with_logits,
    }
)

_KL_NAME = re.compile(r"kl_div\(\s*(?:T|temperature)\s*=\s*([0-9]+(?:\.[0-9]*)?(?:[eE][-+]?[0-9]+)?)\s*\)")


def by_name(name: str) -> Loss | None:
    """The library loss called ``name``: a key of :data:`LIBRARY`, or ``kl_div(T=<temperature>)``.

    ``None`` when there is none; a temperature that is not positive raises :class:`OptionError`.

    >>> by_name("mse") is mse, by_name("kl_div(T=2.0)"), by_name("hinge")
    (True, KLDivergence(temperature=2.0), None)
    """
    if name in LIBRARY:
        return LIBRARY[name]
    match = _KL_NAME.fullmatch(name)
    return KLDivergence(temperature=float(match.group(1))) if match else None


def is_library(loss: Loss) -> bool:
    """Whether ``loss`` is a library loss, so that its name alone stands for it (in files, say)."""
    return isinstance(loss.fn, Formula) and by_name(loss.name) == loss
