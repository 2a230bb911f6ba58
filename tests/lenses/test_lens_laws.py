"""Laws of lenses, parametric lenses and reverse derivatives, on random smooth maps.

The random maps are small compositions of affine maps with random matrices and
elementwise functions (sin, tanh, x², exp(0.3x)); each carries a hand-written
reverse derivative, so the same map gives two lenses: ``R(fn)`` (through
``torch.func.vjp``) and ``by_hand(fn, grad)``. Everything is float64.

Sections: the category laws of ``Lens`` (``>>``, ``@``, ``swap``, the
comonoid ``copy``/``discard``); the laws of ``Para`` (composition, parameter
merging, reparametrisation); reverse derivatives against autograd and finite
differences; the axioms RD.1–RD.7 of a Cartesian reverse differential category
(Cockett et al.; as recalled in Cruttwell et al., "Deep learning with
parametric lenses"); and the "no recomputation" property of ``R``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

import pytest
import torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from torch import nn
from torch.func import functional_call, jvp

from learning_diagrams.core.errors import ConflictError
from learning_diagrams.lenses import R, Lens, Para, by_hand, from_module, para_derivative, same

DT = torch.float64
LAWS = settings(max_examples=40, deadline=None)
FEW = settings(max_examples=20, deadline=None)
EXACT = 1e-10  # two computations of the same float64 quantity


# -- comparing values ---------------------------------------------------------
def close(x: Any, y: Any, atol: float = EXACT, rtol: float = 1e-9) -> bool:
    """Tuples, dicts and tensors, compared entry by entry (shapes must agree)."""
    if isinstance(x, tuple):
        return isinstance(y, tuple) and len(x) == len(y) and all(close(a, b, atol, rtol) for a, b in zip(x, y))
    if isinstance(x, dict):
        return isinstance(y, dict) and x.keys() == y.keys() and all(close(x[k], y[k], atol, rtol) for k in x)
    if isinstance(x, torch.Tensor):
        return isinstance(y, torch.Tensor) and x.shape == y.shape and torch.allclose(x, y, atol=atol, rtol=rtol)
    return x == y


def same_para(f: Para, g: Para, a: Any, db: Any, atol: float = EXACT) -> bool:
    """Two parametric lenses agree: the same parameters, and the same lens at those parameters."""
    return close(f.params, g.params) and same(f.lens, g.lens, (f.params, a), db, atol=atol)


# -- random smooth maps ---------------------------------------------------------
ELEMENTWISE: dict[str, tuple[Callable, Callable]] = {
    "sin": (torch.sin, lambda a, db: torch.cos(a) * db),
    "tanh": (torch.tanh, lambda a, db: (1 - torch.tanh(a) ** 2) * db),
    "square": (lambda a: a * a, lambda a, db: 2 * a * db),
    "exp": (lambda a: torch.exp(0.3 * a), lambda a, db: 0.3 * torch.exp(0.3 * a) * db),
}


@dataclass(frozen=True)
class Smooth:
    """A smooth map ``R^n → R^m`` with its hand-written reverse derivative ``grad(a, db)``."""

    fn: Callable[[torch.Tensor], torch.Tensor]
    grad: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    n: int
    m: int
    name: str

    def then(self, other: Smooth) -> Smooth:
        f, g = self, other
        return Smooth(
            lambda a: g.fn(f.fn(a)), lambda a, db: f.grad(a, g.grad(f.fn(a), db)), f.n, g.m, f"{g.name}∘{f.name}"
        )

    def __repr__(self) -> str:
        return f"Smooth({self.name}: {self.n}→{self.m})"


def affine(gen: torch.Generator, n: int, m: int) -> Smooth:
    w = torch.randn(m, n, generator=gen, dtype=DT) / math.sqrt(n)
    b = torch.randn(m, generator=gen, dtype=DT) * 0.5
    return Smooth(lambda a: w @ a + b, lambda a, db: w.T @ db, n, m, f"affine{m}x{n}")


def elementwise(kind: str, n: int) -> Smooth:
    fn, grad = ELEMENTWISE[kind]
    return Smooth(fn, grad, n, n, kind)


dims = st.integers(1, 3)
seeds = st.integers(0, 2**31 - 1)
kinds = st.sampled_from(sorted(ELEMENTWISE))


@st.composite
def smooth_maps(draw, n: int, m: int) -> Smooth:
    gen = torch.Generator().manual_seed(draw(seeds))
    shape = draw(st.sampled_from(["affine", "layer", "mlp", "elementwise"] if n == m else ["affine", "layer", "mlp"]))
    if shape == "affine":
        return affine(gen, n, m)
    if shape == "layer":
        return affine(gen, n, m).then(elementwise(draw(kinds), m))
    if shape == "mlp":
        h = draw(dims)
        return affine(gen, n, h).then(elementwise("tanh", h)).then(affine(gen, h, m)).then(elementwise(draw(kinds), m))
    f = elementwise(draw(kinds), n)
    return f.then(elementwise(draw(kinds), n)) if draw(st.booleans()) else f


@st.composite
def lenses(draw, n: int, m: int) -> Lens:
    """The lens of a random smooth map: its reverse derivative through vjp, or by hand."""
    f = draw(smooth_maps(n, m))
    return R(f.fn, f"R({f.name})") if draw(st.booleans()) else by_hand(f.fn, f.grad, f"hand({f.name})")


@st.composite
def vectors(draw, n: int) -> torch.Tensor:
    return torch.randn(n, generator=torch.Generator().manual_seed(draw(seeds)), dtype=DT)


def autograd_reverse(fn: Callable, a: torch.Tensor, db: torch.Tensor) -> torch.Tensor:
    """``J_fn(a)ᵀ db`` by ordinary autograd."""
    a = a.detach().requires_grad_(True)
    (g,) = torch.autograd.grad((fn(a) * db).sum(), a, allow_unused=True)
    return torch.zeros_like(a) if g is None else g


def finite_differences(fn: Callable, a: torch.Tensor, db: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """``⟨db, (fn(a + εe_i) − fn(a − εe_i)) / 2ε⟩`` for each coordinate ``i``."""
    out = torch.empty_like(a)
    for i in range(a.numel()):
        e = torch.zeros_like(a).reshape(-1)
        e[i] = eps
        e = e.reshape(a.shape)
        out.reshape(-1)[i] = ((fn(a + e) * db).sum() - (fn(a - e) * db).sum()) / (2 * eps)
    return out


def matches_finite_differences(lens: Lens, fn: Callable, a: torch.Tensor, db: torch.Tensor) -> bool:
    b, r = lens.fwd(a)
    return close(b, fn(a)) and close(lens.bwd(r, db), finite_differences(fn, a, db), atol=1e-6, rtol=1e-6)


# ===========================================================================
# Lens: a symmetric monoidal category
# ===========================================================================
@LAWS
@given(st.data())
def test_then_is_associative(data):
    """``(f >> g) >> h == f >> (g >> h)``."""
    n = data.draw(st.lists(dims, min_size=4, max_size=4))
    f, g, h = (data.draw(lenses(n[i], n[i + 1])) for i in range(3))
    a, dd = data.draw(vectors(n[0])), data.draw(vectors(n[3]))
    assert same((f >> g) >> h, f >> (g >> h), a, dd, atol=EXACT)


@LAWS
@given(st.data())
def test_identity_is_a_unit_of_then(data):
    """``id >> f == f == f >> id``."""
    n, m = data.draw(dims), data.draw(dims)
    f = data.draw(lenses(n, m))
    a, db = data.draw(vectors(n)), data.draw(vectors(m))
    assert same(Lens.id() >> f, f, a, db, atol=EXACT)
    assert same(f >> Lens.id(), f, a, db, atol=EXACT)


@LAWS
@given(st.data())
def test_interchange_law(data):
    """``(f @ g) >> (h @ k) == (f >> h) @ (g >> k)``."""
    n = data.draw(st.lists(dims, min_size=3, max_size=3))
    m = data.draw(st.lists(dims, min_size=3, max_size=3))
    f, h = data.draw(lenses(n[0], n[1])), data.draw(lenses(n[1], n[2]))
    g, k = data.draw(lenses(m[0], m[1])), data.draw(lenses(m[1], m[2]))
    ac = (data.draw(vectors(n[0])), data.draw(vectors(m[0])))
    dbd = (data.draw(vectors(n[2])), data.draw(vectors(m[2])))
    assert same((f @ g) >> (h @ k), (f >> h) @ (g >> k), ac, dbd, atol=EXACT)


@LAWS
@given(st.data())
def test_tensor_is_a_functor(data):
    """``id @ id == id`` on pairs, and ``f @ g == (f @ id) >> (id @ g) == (id @ g) >> (f @ id)``."""
    n, m, p, q = (data.draw(dims) for _ in range(4))
    f, g = data.draw(lenses(n, m)), data.draw(lenses(p, q))
    ac = (data.draw(vectors(n)), data.draw(vectors(p)))
    dbd = (data.draw(vectors(m)), data.draw(vectors(q)))
    assert same(Lens.id() @ Lens.id(), Lens.id(), ac, ac, atol=EXACT)
    assert same((f @ Lens.id()) >> (Lens.id() @ g), f @ g, ac, dbd, atol=EXACT)
    assert same((Lens.id() @ g) >> (f @ Lens.id()), f @ g, ac, dbd, atol=EXACT)


@LAWS
@given(st.data())
def test_swap_is_its_own_inverse_and_natural(data):
    """``swap >> swap == id``; ``(f @ g) >> swap == swap >> (g @ f)``."""
    n, m, p, q = (data.draw(dims) for _ in range(4))
    f, g = data.draw(lenses(n, m)), data.draw(lenses(p, q))
    ac = (data.draw(vectors(n)), data.draw(vectors(p)))
    dbd = (data.draw(vectors(m)), data.draw(vectors(q)))
    assert same(Lens.swap() >> Lens.swap(), Lens.id(), ac, ac, atol=EXACT)
    assert same((f @ g) >> Lens.swap(), Lens.swap() >> (g @ f), ac, (dbd[1], dbd[0]), atol=EXACT)


def unit_left() -> Lens:
    """``λ⁻¹: A ⇄ () × A``: ``a ↦ ((), a)``, back ``((), da) ↦ da``."""
    return Lens(lambda a: (((), a), None), lambda r, d: d[1], "λ⁻¹")


def unit_right() -> Lens:
    """``ρ⁻¹: A ⇄ A × ()``."""
    return Lens(lambda a: ((a, ()), None), lambda r, d: d[0], "ρ⁻¹")


def assoc() -> Lens:
    """``(A × B) × C ⇄ A × (B × C)``."""
    return Lens(lambda x: ((x[0][0], (x[0][1], x[1])), None), lambda r, d: ((d[0], d[1][0]), d[1][1]), "assoc")


@LAWS
@given(n=dims, a_=st.data())
def test_copy_discard_counit(n, a_):
    """Counit laws of the comonoid (copy, discard), up to the unitors.

    Products are Python tuples and the unit object is ``()``, so ``() × A`` is
    the type of pairs ``((), a)``, not ``A``: ``copy >> (discard @ id)`` is the
    unitor ``λ⁻¹: a ↦ ((), a)`` (whose backward part reads ``da`` off
    ``((), da)``), and it is the identity once followed by the projection
    ``snd``. Likewise on the right with ``ρ⁻¹`` and ``fst``. The literal
    ``copy >> (discard @ id) == id`` does not hold (its output is a pair).
    """
    a, da = a_.draw(vectors(n)), a_.draw(vectors(n))
    copy, discard, id_ = Lens.copy(), Lens.discard(), Lens.id()
    assert same(copy >> (discard @ id_), unit_left(), a, ((), da), atol=EXACT)
    assert same(copy >> (id_ @ discard), unit_right(), a, (da, ()), atol=EXACT)
    assert same(copy >> (discard @ id_) >> Lens.snd(), id_, a, da, atol=EXACT)
    assert same(copy >> (id_ @ discard) >> Lens.fst(), id_, a, da, atol=EXACT)
    assert not same(copy >> (discard @ id_), id_, a, da)


@LAWS
@given(n=dims, data=st.data())
def test_copy_is_coassociative_and_cocommutative(n, data):
    """``copy >> (copy @ id) >> assoc == copy >> (id @ copy)``; ``copy >> swap == copy``."""
    a = data.draw(vectors(n))
    d3 = (data.draw(vectors(n)), (data.draw(vectors(n)), data.draw(vectors(n))))
    d2 = (data.draw(vectors(n)), data.draw(vectors(n)))
    copy, id_ = Lens.copy(), Lens.id()
    assert same(copy >> (copy @ id_) >> assoc(), copy >> (id_ @ copy), a, d3, atol=EXACT)
    assert same(copy >> Lens.swap(), copy, a, d2, atol=EXACT)


@LAWS
@given(st.data())
def test_copy_and_discard_are_natural_for_additive_lenses(data):
    """``f >> copy == copy >> (f @ f)`` and ``f >> discard == discard`` when ``f.bwd`` is additive (RD.2).

    A lens whose backward part is not additive (``db ↦ db³``) breaks the first.
    """
    n, m = data.draw(dims), data.draw(dims)
    f = data.draw(lenses(n, m))
    a, d2 = data.draw(vectors(n)), (data.draw(vectors(m)), data.draw(vectors(m)))
    assert same(f >> Lens.copy(), Lens.copy() >> (f @ f), a, d2, atol=1e-9)
    assert same(f >> Lens.discard(), Lens.discard(), a, (), atol=EXACT)
    cube = Lens(lambda a: (a, None), lambda r, db: db**3, "cube-back")
    assume(((d2[0] + d2[1]) ** 3 - d2[0] ** 3 - d2[1] ** 3).abs().max() > 1e-6)
    assert not same(cube >> Lens.copy(), Lens.copy() >> (cube @ cube), d2[0], d2)


def test_lens_laws_fail_for_a_wrong_composite():
    """``same`` notices a composite in the wrong order (the law tests above have teeth)."""
    x, dy = torch.tensor([0.3, -1.2], dtype=DT), torch.tensor([1.0, 2.0], dtype=DT)
    f, g = R(torch.sin), R(lambda a: a * a)
    assert not same(f >> g, g >> f, x, dy)
    assert not same(f @ g, g @ f, (x, x), (dy, dy))


# ===========================================================================
# Para: parametric lenses
# ===========================================================================
@dataclass(frozen=True)
class RandomPara:
    """A random parametric lens ``R^n → R^m`` and ``plain(params, a)``, the same function in plain torch."""

    para: Para
    plain: Callable[[dict, torch.Tensor], torch.Tensor]

    def __repr__(self) -> str:
        return f"RandomPara({self.para.name}, {self.para.lens.name})"


def _hand_para(name: str, gen: torch.Generator, n: int, m: int) -> RandomPara:
    """``s * tanh(W a)`` with a hand-written backward part."""
    w, s = torch.randn(m, n, generator=gen, dtype=DT), torch.randn(m, generator=gen, dtype=DT)

    def plain(p, a):
        return p[name]["s"] * torch.tanh(p[name]["W"] @ a)

    def fwd(pa):
        p, a = pa
        t = torch.tanh(p[name]["W"] @ a)
        return p[name]["s"] * t, (p[name], a, t)

    def bwd(res, db):
        q, a, t = res
        dh = (1 - t**2) * q["s"] * db
        return {name: {"W": torch.outer(dh, a), "s": t * db}}, q["W"].T @ dh

    return RandomPara(Para(Lens(fwd, bwd, f"hand-{name}"), {name: {"W": w, "s": s}}, name), plain)


@st.composite
def paras(draw, n: int, m: int, name: str) -> RandomPara:
    gen = torch.Generator().manual_seed(draw(seeds))
    how = draw(st.sampled_from(["vjp", "module", "hand"]))
    if how == "hand":
        return _hand_para(name, gen, n, m)
    if how == "module":
        h = draw(dims)
        module = nn.Sequential(nn.Linear(n, h), nn.Tanh(), nn.Linear(h, m)).to(DT)
        with torch.no_grad():
            for v in module.parameters():
                v.copy_(torch.randn(v.shape, generator=gen, dtype=DT))
        return RandomPara(from_module(module, name), lambda p, a: functional_call(module, p[name], (a,)))
    act, _ = ELEMENTWISE[draw(kinds)]

    def fn(p, a):
        return act(p[name]["w"] @ a + p[name]["b"])

    params = {name: {"w": torch.randn(m, n, generator=gen, dtype=DT), "b": torch.randn(m, generator=gen, dtype=DT)}}
    return RandomPara(para_derivative(fn, params, name), fn)


NAMES = ["dense", "enc", "dec", "head", "w", "layer 1"]
distinct_names = st.lists(st.sampled_from(NAMES), min_size=4, max_size=4, unique=True)


def grads_by_autograd(plain: Callable, params: dict, a: torch.Tensor, db: torch.Tensor) -> tuple[dict, torch.Tensor]:
    """``(dparams, da)`` of ``⟨db, plain(params, a)⟩`` by ordinary autograd."""
    leaves = {k: {j: v.detach().requires_grad_(True) for j, v in d.items()} for k, d in params.items()}
    a = a.detach().requires_grad_(True)
    flat = [v for d in leaves.values() for v in d.values()]
    grads = torch.autograd.grad((plain(leaves, a) * db).sum(), [*flat, a])
    it = iter(grads)
    return {k: {j: next(it) for j in d} for k, d in leaves.items()}, grads[-1]


@FEW
@given(st.data())
def test_para_then_is_associative_with_units(data):
    """``(f >> g) >> h == f >> (g >> h)``; ``lift(id) >> f == f == f >> lift(id)``; parameters are the union."""
    names = data.draw(distinct_names)
    n = data.draw(st.lists(dims, min_size=4, max_size=4))
    f, g, h = (data.draw(paras(n[i], n[i + 1], names[i])).para for i in range(3))
    a, dd = data.draw(vectors(n[0])), data.draw(vectors(n[3]))
    assert same_para((f >> g) >> h, f >> (g >> h), a, dd)
    assert list(((f >> g) >> h).params) == names[:3]
    unit = Para.lift(Lens.id())
    assert same_para(unit >> f, f, a, data.draw(vectors(n[1])))
    assert same_para(f >> unit, f, a, data.draw(vectors(n[1])))


@FEW
@given(st.data())
def test_para_interchange_law(data):
    """``(f @ g) >> (h @ k) == (f >> h) @ (g >> k)`` for parametric lenses."""
    names = data.draw(distinct_names)
    n = data.draw(st.lists(dims, min_size=3, max_size=3))
    m = data.draw(st.lists(dims, min_size=3, max_size=3))
    f, h = data.draw(paras(n[0], n[1], names[0])).para, data.draw(paras(n[1], n[2], names[1])).para
    g, k = data.draw(paras(m[0], m[1], names[2])).para, data.draw(paras(m[1], m[2], names[3])).para
    ac = (data.draw(vectors(n[0])), data.draw(vectors(m[0])))
    dbd = (data.draw(vectors(n[2])), data.draw(vectors(m[2])))
    left, right = (f @ g) >> (h @ k), (f >> h) @ (g >> k)
    assert left.params.keys() == right.params.keys()
    assert same(left.lens, right.lens, (left.params, ac), dbd, atol=EXACT)


@LAWS
@given(st.data())
def test_lift_is_a_functor(data):
    """``lift(f) >> lift(g) == lift(f >> g)``, ``lift(f) @ lift(g) == lift(f @ g)``; no parameters, no changes to them."""
    n, m, p = (data.draw(dims) for _ in range(3))
    f, g = data.draw(lenses(n, m)), data.draw(lenses(m, p))
    a, dc = data.draw(vectors(n)), data.draw(vectors(p))
    assert same_para(Para.lift(f) >> Para.lift(g), Para.lift(f >> g), a, dc)
    assert same_para(
        Para.lift(f) @ Para.lift(g), Para.lift(f @ g), (a, data.draw(vectors(m))), (data.draw(vectors(m)), dc)
    )
    assert Para.lift(f).bwd(Para.lift(f).fwd(({}, a))[1], data.draw(vectors(m)))[0] == {}


@FEW
@given(st.data())
def test_para_composition_merges_parameters(data):
    """``(f >> g).params == {**f.params, **g.params}`` and its backward part gives each part's gradient, by name.

    The oracle is autograd on the plain composite ``g(q, f(p, a))``; likewise for ``f @ g``.
    """
    names = data.draw(distinct_names)
    n, m, p = (data.draw(dims) for _ in range(3))
    f, g = data.draw(paras(n, m, names[0])), data.draw(paras(m, p, names[1]))
    a, dc = data.draw(vectors(n)), data.draw(vectors(p))
    fg = f.para >> g.para
    assert list(fg.params) == names[:2] and close(fg.params, {**f.para.params, **g.para.params})
    c, res = fg.fwd((fg.params, a))
    dparams, da = fg.bwd(res, dc)
    want = grads_by_autograd(lambda q, x: g.plain(q, f.plain(q, x)), fg.params, a, dc)
    assert close(c, g.plain(fg.params, f.plain(fg.params, a)))
    assert close((dparams, da), want)

    h = data.draw(paras(p, m, names[2]))
    fh = f.para @ h.para
    assert list(fh.params) == [names[0], names[2]]
    x, dy = (a, data.draw(vectors(p))), (data.draw(vectors(m)), data.draw(vectors(m)))
    (b, d), res = fh.fwd((fh.params, x))
    dparams, (da, dx) = fh.bwd(res, dy)
    assert close(b, f.plain(fh.params, x[0])) and close(d, h.plain(fh.params, x[1]))
    want_f, want_h = (
        grads_by_autograd(f.plain, f.para.params, x[0], dy[0]),
        grads_by_autograd(h.plain, h.para.params, x[1], dy[1]),
    )
    assert close(dparams, {**want_f[0], **want_h[0]}) and close((da, dx), (want_f[1], want_h[1]))


@FEW
@given(st.data())
def test_parameter_names_must_differ(data):
    """Composing (either way) two parametric lenses with a parameter name in common raises ConflictError, naming it."""
    name, other = data.draw(st.lists(st.sampled_from(NAMES), min_size=2, max_size=2, unique=True))
    n = data.draw(dims)
    f, g = data.draw(paras(n, n, name)).para, data.draw(paras(n, n, name)).para
    h = data.draw(paras(n, n, other)).para
    with pytest.raises(ConflictError, match=name):
        f >> g
    with pytest.raises(ConflictError, match=name):
        f @ g
    with pytest.raises(ConflictError, match=name):
        (f >> h) >> g
    assert list((f >> h).params) == [name, other]  # distinct names compose


def leafwise(fns: dict[tuple[str, str], str], by_vjp: bool, name: str) -> Lens:
    """A reparametrisation ``P' ⇄ P`` acting on each leaf ``params[k][j]`` by the elementwise map ``fns[k, j]``."""

    def forward(q):
        return {k: {j: ELEMENTWISE[fns[k, j]][0](v) for j, v in d.items()} for k, d in q.items()}

    def backward(q, dp):
        return {k: {j: ELEMENTWISE[fns[k, j]][1](v, dp[k][j]) for j, v in d.items()} for k, d in q.items()}

    return R(forward, name) if by_vjp else by_hand(forward, backward, name)


@st.composite
def reparametrisations(draw, template: dict, name: str) -> tuple[Lens, dict]:
    gen = torch.Generator().manual_seed(draw(seeds))
    fns = {(k, j): draw(kinds) for k, d in template.items() for j in d}
    values = {k: {j: torch.randn(v.shape, generator=gen, dtype=DT) for j, v in d.items()} for k, d in template.items()}
    return leafwise(fns, draw(st.booleans()), name), values


@FEW
@given(st.data())
def test_reparametrisations_compose(data):
    """``f.reparametrise(r1, p1).reparametrise(r2, p2) == f.reparametrise(r2 >> r1, p2)``; ``f.reparametrise(id, f.params) == f``.

    The parameter change of the reparametrised lens is ``r``'s backward part applied to ``f``'s (checked by autograd).
    """
    name = data.draw(st.sampled_from(NAMES))
    n, m = data.draw(dims), data.draw(dims)
    f = data.draw(paras(n, m, name))
    r1, p1 = data.draw(reparametrisations(f.para.params, "r1"))
    r2, p2 = data.draw(reparametrisations(f.para.params, "r2"))
    a, db = data.draw(vectors(n)), data.draw(vectors(m))
    twice = f.para.reparametrise(r1, p1).reparametrise(r2, p2)
    assert same_para(twice, f.para.reparametrise(r2 >> r1, p2), a, db)
    assert same_para(f.para.reparametrise(Lens.id(), f.para.params), f.para, a, db)
    assert close(twice(a), f.plain(r1(r2(p2)), a))
    b, res = twice.fwd((p2, a))
    assert close(twice.bwd(res, db), grads_by_autograd(lambda q, x: f.plain(r1(r2(q)), x), p2, a, db))


# ===========================================================================
# Reverse derivatives against autograd and finite differences
# ===========================================================================
@LAWS
@given(st.data())
def test_R_agrees_with_autograd_and_finite_differences(data):
    """``R(f).bwd(residual, db) == ∇_a ⟨f(a), db⟩`` by autograd (1e-10) and by central differences (1e-6)."""
    n, m = data.draw(dims), data.draw(dims)
    f = data.draw(smooth_maps(n, m))
    a, db = data.draw(vectors(n)), data.draw(vectors(m))
    b, res = R(f.fn).fwd(a)
    da = R(f.fn).bwd(res, db)
    assert close(b, f.fn(a))
    assert close(da, autograd_reverse(f.fn, a, db), atol=1e-10)
    assert close(da, finite_differences(f.fn, a, db), atol=1e-6, rtol=1e-6)


def _module(kind: str, n: int, m: int, gen: torch.Generator) -> nn.Module:
    if kind == "linear":
        module = nn.Linear(n, m)
    elif kind == "mlp":
        module = nn.Sequential(nn.Linear(n, 4), nn.Tanh(), nn.Linear(4, m))
    else:  # buffers too: batch norm in eval mode reads its running statistics
        module = nn.Sequential(nn.Linear(n, 3), nn.BatchNorm1d(3), nn.Sigmoid(), nn.Linear(3, m, bias=False)).eval()
    module = module.to(DT)
    with torch.no_grad():
        for v in module.parameters():
            v.copy_(torch.randn(v.shape, generator=gen, dtype=DT))
        for k, v in module.named_buffers():
            if k.endswith("running_mean"):
                v.copy_(torch.randn(v.shape, generator=gen, dtype=DT))
            elif k.endswith("running_var"):
                v.copy_(torch.rand(v.shape, generator=gen, dtype=DT) + 0.5)
    return module


@FEW
@given(kind=st.sampled_from(["linear", "mlp", "batchnorm"]), n=dims, m=dims, batch=st.integers(1, 3), seed=seeds)
def test_para_of_a_module_agrees_with_autograd_and_finite_differences(kind, n, m, batch, seed):
    """``from_module(module, name)``: the change of each named parameter and of the input is autograd's on the module itself,
    and central differences' (1e-6); its buffers (eval mode) come back assigned unchanged."""
    gen = torch.Generator().manual_seed(seed)
    module = _module(kind, n, m, gen)
    lens = from_module(module, "net")
    x = torch.randn(batch, n, generator=gen, dtype=DT)
    dy = torch.randn(batch, m, generator=gen, dtype=DT)
    assert lens.params["net"].keys() == module.state_dict().keys()  # parameters and buffers
    y, res = lens.fwd((lens.params, x))
    dparams, dx = lens.bwd(res, dy)
    assert close(y, module(x)) and close(lens(x), y)

    xg = x.detach().requires_grad_(True)
    names, values = zip(*module.named_parameters())
    grads = torch.autograd.grad((module(xg) * dy).sum(), [*values, xg])
    buffers = dict(module.named_buffers())
    assert {k: v.value for k, v in dparams["net"].items() if k in buffers}.keys() == buffers.keys()
    assert all(torch.equal(dparams["net"][k].value, v) for k, v in buffers.items())
    assert close({k: v for k, v in dparams["net"].items() if k not in buffers}, dict(zip(names, grads[:-1])))
    assert close(dx, grads[-1])

    for k, v in lens.params["net"].items():
        if k in buffers:
            continue

        def at(value, k=k):
            return functional_call(module, {**lens.params["net"], k: value}, (x,))

        assert close(dparams["net"][k], finite_differences(at, v, dy), atol=1e-6, rtol=1e-6), k
    assert close(
        dx, finite_differences(lambda x_: functional_call(module, lens.params["net"], (x_,)), x, dy), atol=1e-6
    )


WRONG_BACKWARDS: dict[str, Callable[[Smooth], Callable]] = {
    "negated": lambda f: lambda a, db: -f.grad(a, db),
    "doubled": lambda f: lambda a, db: 2 * f.grad(a, db),
    "off by 1%": lambda f: lambda a, db: 1.01 * f.grad(a, db),
    "at the output": lambda f: lambda a, db: f.grad(f.fn(a) if f.n == f.m else a + 0.1, db),
}


@LAWS
@given(st.data())
def test_by_hand_lenses_pass_the_check_iff_their_backward_is_right(data):
    """``by_hand(f, grad)`` with the right ``grad`` matches finite differences; a wrong one fails the same check."""
    n, m = data.draw(dims), data.draw(dims)
    f = data.draw(smooth_maps(n, m))
    a, db = data.draw(vectors(n)), data.draw(vectors(m))
    assert matches_finite_differences(by_hand(f.fn, f.grad), f.fn, a, db)
    wrong = WRONG_BACKWARDS[data.draw(st.sampled_from(sorted(WRONG_BACKWARDS)))](f)
    assume((wrong(a, db) - f.grad(a, db)).abs().max() > 1e-4)
    assert not matches_finite_differences(by_hand(f.fn, wrong), f.fn, a, db)


# ===========================================================================
# The axioms of a Cartesian reverse differential category, numerically
# ===========================================================================
@LAWS
@given(st.data())
def test_rd1_R_is_additive_in_the_map(data):
    """RD.1: ``R[f + g] = R[f] + R[g]`` and ``R[0] = 0``."""
    n, m = data.draw(dims), data.draw(dims)
    f, g = data.draw(smooth_maps(n, m)), data.draw(smooth_maps(n, m))
    a, db = data.draw(vectors(n)), data.draw(vectors(m))
    rf, rg, rfg = R(f.fn), R(g.fn), R(lambda x: f.fn(x) + g.fn(x))
    assert close(rfg.bwd(rfg.fwd(a)[1], db), rf.bwd(rf.fwd(a)[1], db) + rg.bwd(rg.fwd(a)[1], db))
    zero = R(lambda x: torch.zeros(m, dtype=DT))
    assert close(zero.bwd(zero.fwd(a)[1], db), torch.zeros(n, dtype=DT))


@LAWS
@given(st.data())
def test_rd2_R_is_additive_in_its_second_argument(data):
    """RD.2: ``R[f](a, db + db') = R[f](a, db) + R[f](a, db')`` and ``R[f](a, 0) = 0`` (one residual, reused)."""
    n, m = data.draw(dims), data.draw(dims)
    f = R(data.draw(smooth_maps(n, m)).fn)
    a, db, db2 = data.draw(vectors(n)), data.draw(vectors(m)), data.draw(vectors(m))
    _, res = f.fwd(a)
    assert close(f.bwd(res, db + db2), f.bwd(res, db) + f.bwd(res, db2))
    assert close(f.bwd(res, torch.zeros(m, dtype=DT)), torch.zeros(n, dtype=DT), atol=0, rtol=0)


@LAWS
@given(st.data())
def test_rd3_R_of_identity_and_projections(data):
    """RD.3: ``R[id] = π₁`` (the identity lens), ``R[π₀]`` and ``R[π₁]`` are the projection lenses ``fst``, ``snd``."""
    n, m = data.draw(dims), data.draw(dims)
    a, c, da, dc = data.draw(vectors(n)), data.draw(vectors(m)), data.draw(vectors(n)), data.draw(vectors(m))
    assert same(R(lambda x: x), Lens.id(), a, da, atol=0)
    assert same(R(lambda ac: ac[0]), Lens.fst(), (a, c), da, atol=0)
    assert same(R(lambda ac: ac[1]), Lens.snd(), (a, c), dc, atol=0)


@LAWS
@given(st.data())
def test_rd4_R_of_pairings_and_of_the_terminal_map(data):
    """RD.4: ``R[⟨f, g⟩] = copy >> (R[f] @ R[g])`` (backward: ``R[f](a, db) + R[g](a, dc)``), ``R[!] = discard`` (zero);
    and, with RD.3, ``R[f × g] = R[f] @ R[g]``."""
    n, m, p = (data.draw(dims) for _ in range(3))
    f, g = data.draw(smooth_maps(n, m)), data.draw(smooth_maps(n, p))
    a, dbc = data.draw(vectors(n)), (data.draw(vectors(m)), data.draw(vectors(p)))
    assert same(R(lambda x: (f.fn(x), g.fn(x))), Lens.copy() >> (R(f.fn) @ R(g.fn)), a, dbc, atol=EXACT)
    assert same(R(lambda x: ()), Lens.discard(), a, (), atol=0)
    h = data.draw(smooth_maps(m, p))
    ab = (a, data.draw(vectors(m)))
    assert same(R(lambda x: (f.fn(x[0]), h.fn(x[1]))), R(f.fn) @ R(h.fn), ab, (dbc[0], dbc[1]), atol=EXACT)


@LAWS
@given(st.data())
def test_rd5_chain_rule(data):
    """RD.5: ``R[f ; g](a, dc) = R[f](a, R[g](f(a), dc))``, that is ``R(g ∘ f) == R(f) >> R(g)`` as lenses;
    also against autograd on ``g ∘ f`` and against the hand-written composite."""
    n, m, p = (data.draw(dims) for _ in range(3))
    f, g = data.draw(smooth_maps(n, m)), data.draw(smooth_maps(m, p))
    a, dc = data.draw(vectors(n)), data.draw(vectors(p))
    whole = f.then(g)
    assert same(R(whole.fn), R(f.fn) >> R(g.fn), a, dc, atol=EXACT)
    assert same(R(f.fn) >> R(g.fn), by_hand(f.fn, f.grad) >> by_hand(g.fn, g.grad), a, dc, atol=EXACT)
    composite = R(f.fn) >> R(g.fn)
    assert close(composite.bwd(composite.fwd(a)[1], dc), autograd_reverse(whole.fn, a, dc))


@LAWS
@given(st.data())
def test_rd6_R_is_linear_in_its_second_argument(data):
    """RD.6: ``db ↦ R[f](a, db)`` is linear: it scales, and its own reverse derivative, at any base point ``db₀``,
    is ``da ↦ J_f(a) da`` (the forward derivative, by ``torch.func.jvp``), whatever ``db₀``."""
    n, m = data.draw(dims), data.draw(dims)
    f = data.draw(smooth_maps(n, m))
    a, db, db0 = data.draw(vectors(n)), data.draw(vectors(m)), data.draw(vectors(m))
    da, k = data.draw(vectors(n)), data.draw(st.floats(-3, 3))
    rf = R(f.fn)
    _, res = rf.fwd(a)
    assert close(rf.bwd(res, k * db), k * rf.bwd(res, db))
    jf = jvp(f.fn, (a,), (da,))[1]
    for base in (db, db0):
        back = R(lambda d: rf.bwd(rf.fwd(a)[1], d))
        assert close(back.bwd(back.fwd(base)[1], da), jf)


@LAWS
@given(st.data())
def test_rd7_mixed_partial_derivatives_commute(data):
    """RD.7: second derivatives are symmetric: ``⟨db, D²f(a)(u, v)⟩ = ⟨db, D²f(a)(v, u)⟩``, each computed by
    differentiating ``a ↦ ⟨R[f](a, db), u⟩`` with ``R`` again and pairing with ``v``."""
    n, m = data.draw(dims), data.draw(dims)
    f = data.draw(smooth_maps(n, m))
    a, db, u, v = data.draw(vectors(n)), data.draw(vectors(m)), data.draw(vectors(n)), data.draw(vectors(n))
    rf = R(f.fn)

    def second(u_, v_):
        outer = R(lambda x: (rf.bwd(rf.fwd(x)[1], db) * u_).sum())
        return (outer.bwd(outer.fwd(a)[1], torch.ones((), dtype=DT)) * v_).sum()

    assert close(second(u, v), second(v, u), atol=1e-9)
    # and it is the second derivative: central differences of the first
    eps = 1e-5
    fd = ((rf.bwd(rf.fwd(a + eps * v)[1], db) - rf.bwd(rf.fwd(a - eps * v)[1], db)) * u).sum() / (2 * eps)
    assert close(second(u, v), fd, atol=1e-6, rtol=1e-6)


# ===========================================================================
# No recomputation
# ===========================================================================
@FEW
@given(st.data())
def test_R_runs_the_map_once_per_forward_and_never_backward(data):
    """``R(f)``: one call of ``f`` in ``fwd``, none in ``bwd`` (however many times); likewise in composites and ``para``."""
    n, m, p = (data.draw(dims) for _ in range(3))
    f, g = data.draw(smooth_maps(n, m)), data.draw(smooth_maps(m, p))
    calls = {"f": 0, "g": 0}

    def counted(name, fn):
        def run(x):
            calls[name] += 1
            return fn(x)

        return run

    lens = R(counted("f", f.fn)) >> R(counted("g", g.fn))
    a, dc = data.draw(vectors(n)), data.draw(vectors(p))
    _, res = lens.fwd(a)
    assert calls == {"f": 1, "g": 1}
    lens.bwd(res, dc)
    lens.bwd(res, 2 * dc)
    assert calls == {"f": 1, "g": 1}

    module = _module("mlp", n, m, torch.Generator().manual_seed(data.draw(seeds)))
    forwards = []
    module.register_forward_hook(lambda *args: forwards.append(1))
    layer = from_module(module, "net")
    _, res = layer.fwd((layer.params, a))
    layer.bwd(res, data.draw(vectors(m)))
    assert len(forwards) == 1
