"""Para(Lens): parametric lenses, whose parameters are named pytrees.

A parametric lens ``f: A → B`` with parameters ``P`` is a lens ``P × A ⇄ B``:
its backward part returns a change of the parameters and a change of the
input. Here ``P`` is a dict of named entries (each a tensor or a nested dict),
and :class:`Para` carries the current values beside the lens. Composition puts
the two parameter dicts side by side (their names must differ), so a learner's
parameters read ``{"dense1": {...}, "dense2": {...}}`` rather than nested
tuples. A lens ``r: P' ⇄ P`` *reparametrises* ``f`` (the 2-cells of Para):
optimisers are such reparametrisations.

Laws
----
>>> import torch
>>> from learning_diagrams.lenses.lens import Lens, same
>>> scale = Para(Lens(lambda pa: (pa[0]["w"] * pa[1], pa), lambda pa, db: ({"w": pa[1] * db}, pa[0]["w"] * db)), {"w": torch.tensor(3.0)}, "scale")
>>> shift = Para(Lens(lambda pa: (pa[0]["b"] + pa[1], None), lambda r, db: ({"b": db}, db)), {"b": torch.tensor(1.0)}, "shift")
>>> model = scale >> shift
>>> sorted(model.params), model(torch.tensor(2.0))
(['b', 'w'], tensor(7.))
>>> x, dy = (model.params, torch.tensor(2.0)), torch.tensor(1.0)
>>> same((scale >> shift) >> Para.lift(Lens.id()), scale >> (shift >> Para.lift(Lens.id())), x, dy)
True
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from ..core.category import Monoidal
from ..core.errors import ConflictError
from .lens import Lens

__all__ = ["Para"]


@dataclass(frozen=True)
class Para(Monoidal):
    """A parametric lens ``P × A ⇄ B`` (``lens`` acts on pairs ``(params, a)``) with its parameters."""

    lens: Lens
    params: dict[str, Any]
    name: str = "para"

    def __call__(self, a: Any, params: dict[str, Any] | None = None) -> Any:
        """The forward value at ``a`` with the current (or the given) parameters.

        Runs the lens's get map: no residual is kept, so no ``vjp`` is traced.
        """
        return self.lens((self.params if params is None else params, a))

    def fwd(self, pa: tuple[dict[str, Any], Any]) -> tuple[Any, Any]:
        return self.lens.fwd(pa)

    def bwd(self, residual: Any, db: Any) -> tuple[dict[str, Any], Any]:
        return self.lens.bwd(residual, db)

    @staticmethod
    def lift(lens: Lens) -> Para:
        """A lens as a parametric lens with no parameters."""
        lifted = lens.derivative_of(lambda pa: lens(pa[1]), lens.name) or Lens(
            lambda pa: lens.fwd(pa[1]), lambda r, db: ({}, lens.bwd(r, db)), lens.name, lambda pa: lens(pa[1])
        )
        return Para(lifted, {}, lens.name)

    def with_params(self, params: dict[str, Any]) -> Para:
        """The same lens with other parameter values."""
        return replace(self, params=params)

    def then(self, other: Para) -> Para:
        """``self`` then ``other``; the parameters are the union of both, by name."""
        f, g = self, other
        fk, gk = _disjoint(f, g)

        def fwd(pa: tuple[dict, Any]) -> tuple[Any, Any]:
            p, a = pa
            b, r = f.lens.fwd(({k: p[k] for k in fk}, a))
            c, s = g.lens.fwd(({k: p[k] for k in gk}, b))
            return c, (r, s)

        def bwd(residual: Any, dc: Any) -> tuple[dict, Any]:
            r, s = residual
            dq, db = g.lens.bwd(s, dc)
            dp, da = f.lens.bwd(r, db)
            return {**dp, **dq}, da

        def get(pa: tuple[dict, Any]) -> Any:
            p, a = pa
            return g.lens(({k: p[k] for k in gk}, f.lens(({k: p[k] for k in fk}, a))))

        name = f"({f.name} >> {g.name})"
        lens = f.lens.derivative_of(get, name, g.lens) or Lens(fwd, bwd, name, get)
        return Para(lens, {**f.params, **g.params}, name)

    def tensor(self, other: Para) -> Para:
        """``self`` beside ``other`` on pairs ``(a, c)``; the parameters are the union of both."""
        f, g = self, other
        fk, gk = _disjoint(f, g)

        def fwd(pa: tuple[dict, tuple[Any, Any]]) -> tuple[Any, Any]:
            p, (a, c) = pa
            (b, r), (d, s) = f.lens.fwd(({k: p[k] for k in fk}, a)), g.lens.fwd(({k: p[k] for k in gk}, c))
            return (b, d), (r, s)

        def bwd(residual: Any, dbd: tuple[Any, Any]) -> tuple[dict, tuple[Any, Any]]:
            dp, da = f.lens.bwd(residual[0], dbd[0])
            dq, dc = g.lens.bwd(residual[1], dbd[1])
            return {**dp, **dq}, (da, dc)

        def get(pa: tuple[dict, tuple[Any, Any]]) -> tuple[Any, Any]:
            p, (a, c) = pa
            return f.lens(({k: p[k] for k in fk}, a)), g.lens(({k: p[k] for k in gk}, c))

        name = f"({f.name} @ {g.name})"
        lens = f.lens.derivative_of(get, name, g.lens) or Lens(fwd, bwd, name, get)
        return Para(lens, {**f.params, **g.params}, name)

    def reparametrise(self, r: Lens, params: dict[str, Any]) -> Para:
        """Precompose the parameter port with ``r: P' ⇄ P``; ``params`` are the new ``P'`` values.

        ``f.reparametrise(r1, p1).reparametrise(r2, p2)`` equals ``f.reparametrise(r2 >> r1, p2)``.
        """
        f = self

        def fwd(pa: tuple[Any, Any]) -> tuple[Any, Any]:
            q, a = pa
            p, rr = r.fwd(q)
            b, s = f.lens.fwd((p, a))
            return b, (rr, s)

        def bwd(residual: Any, db: Any) -> tuple[Any, Any]:
            rr, s = residual
            dp, da = f.lens.bwd(s, db)
            return r.bwd(rr, dp), da

        def get(qa: tuple[Any, Any]) -> Any:
            return f.lens((r(qa[0]), qa[1]))

        name = f"{f.name}[{r.name}]"
        return Para(f.lens.derivative_of(get, name, r) or Lens(fwd, bwd, name, get), params, name)

    def __repr__(self) -> str:
        return f"Para({self.name}, params={list(self.params)})"


def _disjoint(f: Para, g: Para) -> tuple[tuple[str, ...], tuple[str, ...]]:
    clash = set(f.params) & set(g.params)
    if clash:
        raise ConflictError(
            f"parametric lenses {f.name} and {g.name} both have parameters named "
            f"{', '.join(sorted(clash))}; give the parts distinct names"
        )
    return tuple(f.params), tuple(g.params)
