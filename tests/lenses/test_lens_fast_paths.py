"""The fast paths give what the plain ones give: vjp on one autograd graph, composites of
reverse derivatives traced once, batched (foreach) optimiser steps, donated updates, and
LensOptimizer's in-place step on the gradients."""

import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from learning_diagrams.lenses import Lens, Para, R, derivative, optim, parts, same
from learning_diagrams.lenses.bridges import LensOptimizer
from learning_diagrams.lenses.derivative import Derivative, vjp
from learning_diagrams.lenses.learner import supervised, train

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py

DT = torch.float64


def equal(x, y):
    """Bit for bit, through dicts, tuples and lists."""
    if isinstance(x, dict):
        return isinstance(y, dict) and x.keys() == y.keys() and all(equal(x[k], y[k]) for k in x)
    if isinstance(x, (tuple, list)):
        return len(x) == len(y) and all(equal(a, b) for a, b in zip(x, y))
    if isinstance(x, torch.Tensor):
        return isinstance(y, torch.Tensor) and x.dtype == y.dtype and torch.equal(x, y)
    return x == y


# -- vjp -------------------------------------------------------------------------------------------------------


def fn(p, x):
    return {"y": torch.tanh(p["w"] @ x + p["b"]), "z": (p["w"] ** 2).sum() * x}, x.sum()


def primals(seed=0):
    g = torch.Generator().manual_seed(seed)
    return {"w": torch.randn(3, 2, generator=g, dtype=DT), "b": torch.randn(3, generator=g, dtype=DT)}, torch.randn(
        2, generator=g, dtype=DT
    )


def test_vjp_equals_torch_func_vjp_and_its_pullback_may_run_twice():
    p, x = primals()
    value, pullback, aux = vjp(fn, p, x, has_aux=True)
    expected, expected_pullback, expected_aux = torch.func.vjp(fn, p, x, has_aux=True)
    g = torch.Generator().manual_seed(1)
    cotangent = {"y": torch.randn(3, generator=g, dtype=DT), "z": torch.randn(2, generator=g, dtype=DT)}
    assert equal(value, expected) and equal(aux, expected_aux)
    assert not value["y"].requires_grad and value["y"].grad_fn is None  # detached, as torch.func's
    got = pullback(cotangent)
    want = expected_pullback(cotangent)
    assert all(
        torch.allclose(a, b, atol=1e-12)
        for a, b in zip([got[0]["w"], got[0]["b"], got[1]], [*want[0].values(), want[1]])
    )
    assert equal(pullback(cotangent), got)  # the graph is kept: a second pullback gives the same
    with pytest.raises(ValueError, match="one change for each output"):
        pullback({"y": cotangent["y"]})


def test_vjp_gives_zeros_to_what_the_value_ignores_and_to_integer_primals():
    w, idx = torch.randn(4, 2, dtype=DT), torch.tensor([3, 0])
    value, pullback = vjp(lambda w, i, unused: w[i].sum(0), w, idx, torch.ones(5, dtype=DT))
    dw, di, du = pullback(torch.ones(2, dtype=DT))
    assert torch.equal(dw, torch.tensor([[1.0, 1], [0, 0], [0, 0], [1, 1]], dtype=DT))
    assert torch.equal(di, torch.zeros(2)) and torch.equal(du, torch.zeros(5, dtype=DT))


def test_vjp_takes_torch_funcs_path_inside_transforms_and_for_tracked_primals(monkeypatch):
    calls = []
    real = torch.func.vjp
    monkeypatch.setattr(torch.func, "vjp", lambda *a, **k: calls.append(1) or real(*a, **k))
    a = torch.randn(3, dtype=DT)
    vjp(torch.sin, a)
    assert calls == []  # a training step: plain autograd
    vjp(torch.sin, a.clone().requires_grad_())
    assert len(calls) == 1  # an outer autograd graph tracks the primal
    second = torch.func.grad(lambda x: vjp(torch.sin, x)[1](torch.ones(3, dtype=DT))[0].sum())(a)
    assert torch.allclose(second, -torch.sin(a))  # d/da Σ cos a, through the transform
    assert len(calls) == 2


def test_a_pullback_made_outside_a_transform_is_differentiable_inside_it():
    a, u = torch.randn(3, dtype=DT), torch.randn(3, dtype=DT)
    _, pullback = vjp(lambda x: x.sin() * x, a)
    jacobian_t = torch.func.jacrev(lambda d: pullback(d)[0])(torch.ones(3, dtype=DT))  # linear in d: J_fᵀ
    assert torch.allclose(jacobian_t, torch.diag(a.cos() * a + a.sin()))
    d = torch.ones(3, dtype=DT, requires_grad=True)  # an outer autograd graph through the cotangent
    (pullback(d)[0] * u).sum().backward()
    assert torch.allclose(d.grad, (a.cos() * a + a.sin()) * u)


# -- composites of reverse derivatives ------------------------------------------------------------------------


def unfused(lens):
    """The same lens, not known to be a reverse derivative: composites with it are built part by part."""
    return Lens(lens.fwd, lens.bwd, lens.name, lens.get)


def test_composites_of_reverse_derivatives_are_reverse_derivatives_and_equal_the_part_by_part_ones():
    f, g = R(torch.tanh, "tanh"), R(lambda a: a * a.exp(), "h")
    a, dc = torch.randn(4, dtype=DT), torch.randn(4, dtype=DT)
    for fused, plain in [(f >> g, unfused(f) >> g), (f @ g, unfused(f) @ g), ((f >> g) @ f, (unfused(f) >> g) @ f)]:
        assert isinstance(fused, Derivative) and not isinstance(plain, Derivative)
    assert same(f >> g, unfused(f) >> g, a, dc, atol=0)
    assert same(f @ g, unfused(f) @ g, (a, a), (dc, dc), atol=0)
    lifted = Para.lift(f)
    assert isinstance(lifted.lens, Derivative) and same(lifted, Para.lift(unfused(f)), ({}, a), dc, atol=0)
    assert (f >> g).name == "(tanh >> h)" and (f @ g).name == "(tanh @ h)"


def mlp():
    return parts.dense(4, 20, "d1", activation="sigmoid") >> parts.dense(20, 3, "d2", activation="sigmoid")


def test_a_dense_network_is_traced_once_per_step(monkeypatch):
    traced = []
    real = derivative.vjp
    monkeypatch.setattr(derivative, "vjp", lambda *a, **k: traced.append(1) or real(*a, **k))
    model = mlp()
    assert isinstance(model.lens, Derivative)  # linear >> bias >> sigmoid, regrouped, twice: one reverse derivative
    learner = supervised(model, parts.quadratic_error(), optim.adam(lr=0.01))
    learner.step(learner.initial, torch.randn(1, 4), torch.rand(1, 3))
    assert len(traced) == 1


def test_a_fused_network_trains_bit_for_bit_as_the_part_by_part_one():
    """The fused MLP against the same layers composed part by part (each a separate graph)."""

    def layer(n_in, n_out, name):
        lin = parts.linear(n_in, n_out, name + ".linear")
        b = parts.bias(n_out, name + ".bias", fan_in=n_in)
        act = parts.sigmoid()
        return [Para(unfused(p.lens), p.params, p.name) for p in (lin, b, act)]

    plain = parts.chain(*layer(4, 20, "d1"), *layer(20, 3, "d2"))
    fused = parts.chain(
        parts.linear(4, 20, "d1.linear"),
        parts.bias(20, "d1.bias", fan_in=4),
        parts.sigmoid(),
        parts.linear(20, 3, "d2.linear"),
        parts.bias(3, "d2.bias", fan_in=20),
        parts.sigmoid(),
    )
    assert isinstance(fused.lens, Derivative) and not isinstance(plain.lens, Derivative)
    g = torch.Generator().manual_seed(0)
    data = [(torch.randn(5, 4, generator=g), torch.rand(5, 3, generator=g)) for _ in range(20)]
    results = [train(supervised(m, parts.quadratic_error(), optim.adam(lr=0.05)), data) for m in (plain, fused)]
    assert equal(results[0].params, results[1].params) and results[0].losses == results[1].losses


# -- batched optimiser steps ------------------------------------------------------------------------------------

OPTIMISERS = {
    "sgd": optim.sgd(lr=0.1),
    "sgd decay": optim.sgd(lr=0.1, weight_decay=0.01),
    "momentum": optim.momentum(lr=0.05, momentum=0.8, dampening=0.3, weight_decay=0.01),
    "nesterov": optim.nesterov(lr=0.05, momentum=0.9),
    "adagrad": optim.adagrad(lr=0.05, lr_decay=0.01, initial_accumulator_value=0.1, weight_decay=0.01),
    "adam": optim.adam(lr=0.01, betas=(0.8, 0.99), weight_decay=0.01),
    "amsgrad": optim.adam(lr=0.01, amsgrad=True),
    "rmsprop": optim.rmsprop(lr=0.01, weight_decay=0.01),
    "rmsprop centred momentum": optim.rmsprop(lr=0.01, momentum=0.9, centered=True),
    "lookahead": optim.lookahead_nesterov(lr=0.05, momentum=0.9, weight_decay=0.01),
    "adam clipped": optim.adam(lr=0.1).clipped(0.05),
}


def tensors(seed):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(s, generator=g) for s in [(3, 2), (5,), (), (2, 2, 2)]]


def by_leaf(opt, ps, ss, cs):
    pairs = [opt.step_leaf(p, dict(s), c, opt.hyper) for p, s, c in zip(ps, ss, cs)]
    news = [p if opt.clip is None else p.clamp(-opt.clip, opt.clip) for p, _ in pairs]
    return news, [s for _, s in pairs]


@pytest.mark.parametrize("name", list(OPTIMISERS))
def test_batched_steps_equal_the_single_tensor_steps_bit_for_bit(name):
    opt = OPTIMISERS[name]
    ps = tensors(0)
    ss = [opt.init_leaf(p, opt.hyper) for p in ps]
    ref_ps, ref_ss = ps, ss
    own_ps, own_ss = copy.deepcopy((ps, ss))
    for step in range(4):
        cs = tensors(step + 1)
        given, snapshot = (ps, ss), copy.deepcopy((ps, ss))
        ref_ps, ref_ss = by_leaf(opt, ref_ps, ref_ss, cs)
        ps, ss = opt.step_tensors(ps, ss, cs)
        assert equal(given, snapshot)  # nothing given was modified
        kept_ps = own_ps
        own_ps, own_ss = opt.step_tensors(own_ps, own_ss, cs, own=True)
        assert all(a is b for a, b in zip(own_ps, kept_ps))  # in place
        assert equal(ps, ref_ps) and equal(ss, ref_ss) and equal(own_ps, ref_ps) and equal(own_ss, ref_ss), step


@pytest.mark.parametrize("name", [n for n in OPTIMISERS if n != "lookahead"])
def test_against_the_gradient_the_parameters_are_the_same_and_odd_moments_are_torchs(name):
    opt = OPTIMISERS[name]
    ps, ss = tensors(0), [opt.init_leaf(p, opt.hyper) for p in tensors(0)]
    qs, ts = copy.deepcopy((ps, ss))
    for step in range(4):
        cs = tensors(step + 1)
        ps, ss = opt.step_tensors(ps, ss, cs)
        qs, ts = opt.step_tensors(qs, ts, [-c for c in cs], own=True, along=-1.0)
        assert equal(ps, qs), step
        for s, t in zip(ss, ts):
            for k in s:
                odd = k in ("exp_avg", "momentum_buffer", "grad_avg")
                assert torch.equal(s[k], -t[k] if odd else t[k]), (step, k)


def test_leaves_at_different_counts_step_as_alone():
    """A tensor added to the model mid-way has its own step count (and, for momentum, no buffer yet)."""
    for opt in (optim.adam(lr=0.01), optim.momentum(lr=0.1), optim.adagrad(lr_decay=0.1)):
        ps = tensors(0)
        ss = [opt.init_leaf(p, opt.hyper) for p in ps]
        older, _ = opt.step_tensors(ps[:2], ss[:2], tensors(1)[:2])
        ss = opt.step_tensors(ps[:2], ss[:2], tensors(1)[:2])[1] + ss[2:]
        cs = tensors(2)
        assert equal(opt.step_tensors(ps, ss, cs), by_leaf(opt, ps, ss, cs))


def test_an_optimiser_of_ones_own_takes_the_single_tensor_path():
    mine = optim.Optimiser(
        "halving", {"lr": 0.5}, lambda p, h: {}, lambda p, s, c, h: (p.add(c, alpha=h["lr"]) * 0.5, {})
    )
    ps = [torch.ones(2)]
    new, _ = mine.step_tensors(ps, [{}], [torch.ones(2)])
    assert torch.equal(new[0], torch.full((2,), 0.75)) and torch.equal(ps[0], torch.ones(2))
    assert torch.equal(mine.step_tensors(ps, [{}], [torch.ones(2)], own=True)[0][0], ps[0])
    assert torch.equal(ps[0], torch.full((2,), 0.75))
    w = nn.Parameter(torch.ones(2))
    (w.sum()).backward()
    LensOptimizer([w], mine).step()  # along -grad
    assert torch.equal(w.detach(), torch.full((2,), 0.25))


# -- donated updates ------------------------------------------------------------------------------------------


def test_update_leaves_its_arguments_alone_unless_they_are_donated():
    opt = optim.adam(lr=0.1)
    params = {"a": {"w": torch.ones(3)}, "b": torch.zeros(2)}
    state = opt.init(params)
    change = {"a": {"w": torch.ones(3)}, "b": torch.ones(2)}
    kept = copy.deepcopy((params, state))
    new, after = opt.update(params, state, change)
    assert equal((params, state), kept)
    donated, donated_after = opt.update(params, state, change, donate=True)
    assert equal((donated, donated_after), (new, after))
    assert donated["a"]["w"] is params["a"]["w"] and donated_after["b"]["exp_avg"] is state["b"]["exp_avg"]


def test_train_donates_only_the_tensors_it_made_and_ends_where_plain_steps_end():
    model = mlp()
    start = copy.deepcopy(model.params)
    learner = supervised(model, parts.quadratic_error(), optim.adam(lr=0.05))
    g = torch.Generator().manual_seed(3)
    data = [(torch.randn(2, 4, generator=g), torch.rand(2, 3, generator=g)) for _ in range(15)]
    result = train(learner, data)
    assert equal(model.params, start)  # the model's own values were not overwritten
    q = learner.initial
    for x, y in data:
        q, _ = learner.step(q, x, y)
    assert equal(result.params, {k: q[k] for k in model.params}) and equal(result.state, q["state"])


# -- LensOptimizer ------------------------------------------------------------------------------------------------


def net():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 3))


@pytest.mark.parametrize(
    "make, lens",
    [
        (lambda ps: torch.optim.Adam(ps, lr=0.01, weight_decay=0.01), optim.adam(lr=0.01, weight_decay=0.01)),
        (lambda ps: torch.optim.SGD(ps, lr=0.05, momentum=0.9, nesterov=True), optim.nesterov(lr=0.05)),
        (lambda ps: torch.optim.RMSprop(ps, lr=0.01, centered=True), optim.rmsprop(lr=0.01, centered=True)),
    ],
)
def test_lens_optimizer_keeps_torch_optims_state_and_loads_its_state_dict(make, lens):
    g = torch.Generator().manual_seed(1)
    data = [(torch.randn(16, 4, generator=g), torch.randint(3, (16,), generator=g)) for _ in range(20)]
    a, b = net(), net()
    ta, lb = make(a.parameters()), LensOptimizer(b.parameters(), lens)

    def run(model, opt, part):
        for x, y in part:
            opt.zero_grad()
            F.cross_entropy(model(x), y).backward()
            opt.step()

    run(a, ta, data[:10])
    run(b, lb, data[:10])
    for pa, pb in zip(a.parameters(), b.parameters()):
        assert torch.equal(pa, pb)
        for k, v in ta.state[pa].items():
            assert torch.allclose(lb.state[pb][k], v, atol=1e-7), k
    c = copy.deepcopy(a)
    lc = LensOptimizer(c.parameters(), lens)
    lc.load_state_dict(copy.deepcopy(ta.state_dict()))  # torch's state dict, continued by the lens optimiser
    run(a, ta, data[10:])
    run(c, lc, data[10:])
    assert all(torch.allclose(pa, pc, atol=1e-6) for pa, pc in zip(a.parameters(), c.parameters()))


def test_lens_optimizer_nesterov_leaves_the_gradients_as_torchs_foreach_sgd_does():
    g = torch.Generator().manual_seed(2)
    data = [(torch.randn(16, 4, generator=g), torch.randint(3, (16,), generator=g)) for _ in range(3)]
    a, b = net(), net()
    ta = torch.optim.SGD(a.parameters(), lr=0.05, momentum=0.9, nesterov=True, foreach=True)
    lb = LensOptimizer(b.parameters(), optim.nesterov(lr=0.05))
    for x, y in data:
        for model, opt in ((a, ta), (b, lb)):
            opt.zero_grad()
            F.cross_entropy(model(x), y).backward()
            opt.step()
        for pa, pb in zip(a.parameters(), b.parameters()):
            assert torch.equal(pa, pb) and torch.equal(pa.grad, pb.grad)  # g + μ·b, written into p.grad by both
