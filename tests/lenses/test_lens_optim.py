"""Lens optimisers against torch.optim, and the LensOptimizer bridge."""

import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import learning_diagrams as ld
from learning_diagrams.lenses import from_module
from learning_diagrams.lenses.bridges import LensOptimizer
from learning_diagrams.lenses.learner import supervised, train
from learning_diagrams.lenses.optim import (
    adagrad,
    adam,
    clip,
    gradient_descent,
    lookahead_nesterov,
    momentum,
    nesterov,
    rmsprop,
    sgd,
    tree_map,
)
from learning_diagrams.lenses.parts import softmax_cross_entropy

QUIET = dict(progress=False, log_dir=False)
STEPS = 100


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


def net(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 3))


def batches(n=STEPS, seed=1):
    g = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(n):
        x = torch.randn(16, 4, generator=g)
        out.append((x, (x[:, 0] + x[:, 1] > 0).long() + (x[:, 2] > 1).long()))
    return out


def torch_run(make, data):
    model = net()
    opt = make(model.parameters())
    for x, y in data:
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        opt.step()
    return {k: v.detach() for k, v in model.named_parameters()}


def lens_run(optimiser, data):
    learner = supervised(from_module(net(), "net"), softmax_cross_entropy(), optimiser)
    return train(learner, data).params["net"]


def max_diff(a, b):
    return max((a[k] - b[k]).abs().max().item() for k in a)


CASES = {
    "sgd": (lambda ps: torch.optim.SGD(ps, lr=0.1), gradient_descent(lr=0.1)),
    "sgd default lr": (lambda ps: torch.optim.SGD(ps), sgd()),
    "momentum": (lambda ps: torch.optim.SGD(ps, lr=0.05, momentum=0.9), momentum(lr=0.05, momentum=0.9)),
    "momentum dampening": (
        lambda ps: torch.optim.SGD(ps, lr=0.05, momentum=0.8, dampening=0.3),
        momentum(lr=0.05, momentum=0.8, dampening=0.3),
    ),
    "nesterov": (lambda ps: torch.optim.SGD(ps, lr=0.05, momentum=0.9, nesterov=True), nesterov(lr=0.05, momentum=0.9)),
    "sgd weight decay 0": (lambda ps: torch.optim.SGD(ps, lr=0.1, weight_decay=0), sgd(lr=0.1, weight_decay=0)),
    "adagrad": (lambda ps: torch.optim.Adagrad(ps), adagrad()),
    "adagrad non-default": (
        lambda ps: torch.optim.Adagrad(ps, lr=0.05, lr_decay=0.01, initial_accumulator_value=0.1),
        adagrad(lr=0.05, lr_decay=0.01, initial_accumulator_value=0.1),
    ),
    "adam": (lambda ps: torch.optim.Adam(ps), adam()),
    "adam non-default": (
        lambda ps: torch.optim.Adam(ps, lr=0.01, betas=(0.8, 0.99), eps=1e-6, weight_decay=0),
        adam(lr=0.01, betas=(0.8, 0.99), eps=1e-6, weight_decay=0),
    ),
    "adam amsgrad": (lambda ps: torch.optim.Adam(ps, lr=0.01, amsgrad=True), adam(lr=0.01, amsgrad=True)),
    "rmsprop": (lambda ps: torch.optim.RMSprop(ps, lr=1e-3), rmsprop(lr=1e-3)),
}


@pytest.mark.parametrize("case", list(CASES))
def test_lens_optimiser_matches_torch_optim_over_100_steps(case):
    make, optimiser = CASES[case]
    data = batches()
    expected = torch_run(make, data)
    got = lens_run(optimiser, data)
    start = dict(net().named_parameters())
    assert max_diff(expected, {k: v.detach() for k, v in start.items()}) > 1e-3  # it did move
    assert max_diff(expected, got) < 1e-6


def test_a_wrong_hyperparameter_is_caught_by_the_comparison():
    data = batches(20)
    expected = torch_run(lambda ps: torch.optim.Adam(ps), data)
    assert max_diff(expected, lens_run(adam(betas=(0.9, 0.99)), data)) > 1e-6
    assert max_diff(expected, lens_run(adam(eps=1e-4), data)) > 1e-6


def test_adam_keeps_its_step_counter_in_the_state():
    learner = supervised(from_module(net(), "net"), softmax_cross_entropy(), adam())
    result = train(learner, batches(7))
    assert result.state["net"]["0.weight"]["step"].item() == 7
    assert set(result.state["net"]["0.weight"]) == {"step", "exp_avg", "exp_avg_sq"}


def test_clipping_composes_with_the_optimiser():
    learner = supervised(from_module(net(), "net"), softmax_cross_entropy(), sgd(lr=1.0).clipped(0.05))
    result = train(learner, batches(5))
    assert max(v.abs().max().item() for v in result.params["net"].values()) <= torch.tensor(0.05).item()
    new, _ = sgd(lr=1.0).clipped(0.5).update({"w": torch.zeros(2)}, {"w": {}}, {"w": torch.tensor([2.0, -0.25])})
    assert torch.equal(new["w"], torch.tensor([0.5, -0.25]))
    # the clip's backward acts on what the optimiser returns
    ps = ({"w": torch.tensor([3.0, -3.0, 0.01])}, {})
    assert torch.equal(clip(1.0).bwd(None, ps)[0]["w"], torch.tensor([1.0, -1.0, 0.01]))


def test_lens_optimizer_matches_torch_adam_step_by_step():
    data = batches(30)
    a, b = net(), net()
    ta, tb = torch.optim.Adam(a.parameters(), lr=0.01), LensOptimizer(b.parameters(), adam(lr=0.01))
    for x, y in data:
        for model, opt in ((a, ta), (b, tb)):
            opt.zero_grad()
            F.cross_entropy(model(x), y).backward()
            opt.step()
    assert max_diff(dict(a.named_parameters()), dict(b.named_parameters())) < 1e-6


def diagram(model, data):
    return (
        ld.Diagram()
        .space("N", data=data)
        .space("X")
        .space("Y", loss=ld.losses.cross_entropy)
        .map("x", "N", "X", lambda b: b[0])
        .map("y", "N", "Y", lambda b: b[1])
        .map("f", "X", "Y", model)
        .relate("x·f", "y")
    )


def test_lens_optimizer_trains_a_diagram_in_fit_as_torch_adam_does():
    data = batches(8)
    ours, theirs = net(), net()
    h = ld.fit(diagram(ours, data), epochs=3, optimizer=lambda groups: LensOptimizer(groups, adam(lr=1e-2)), **QUIET)
    ld.fit(diagram(theirs, data), epochs=3, optimizer=torch.optim.Adam, lr=1e-2, **QUIET)
    assert h.last("x·f ≤ y") < h.records[0]["values"]["x·f ≤ y"]
    assert max_diff(dict(ours.named_parameters()), dict(theirs.named_parameters())) < 1e-6
    assert max_diff(dict(ours.named_parameters()), dict(net().named_parameters())) > 1e-3


def test_lens_optimizer_takes_per_group_learning_rates():
    a, b = net(), net()
    opt = LensOptimizer([{"params": a[0].parameters(), "lr": 0.0}, {"params": a[2].parameters()}], sgd(lr=0.5))
    x, y = batches(1)[0]
    F.cross_entropy(a(x), y).backward()
    opt.step()
    assert torch.equal(a[0].weight, b[0].weight)
    assert not torch.equal(a[2].weight, b[2].weight)


def test_lens_optimizer_state_dict_round_trip():
    data = batches(20)
    a = net()
    opt = LensOptimizer(a.parameters(), adam(lr=0.01))

    def run(model, opt, part):
        for x, y in part:
            opt.zero_grad()
            F.cross_entropy(model(x), y).backward()
            opt.step()

    run(a, opt, data[:10])
    saved_model, saved_opt = copy.deepcopy(a.state_dict()), copy.deepcopy(opt.state_dict())
    assert saved_opt["state"][0]["step"].item() == 10
    run(a, opt, data[10:])

    b = net()
    b.load_state_dict(saved_model)
    opt_b = LensOptimizer(b.parameters(), adam(lr=0.01))
    opt_b.load_state_dict(saved_opt)
    run(b, opt_b, data[10:])
    assert max_diff(dict(a.named_parameters()), dict(b.named_parameters())) == 0

    fresh = net()
    fresh.load_state_dict(saved_model)
    run(fresh, LensOptimizer(fresh.parameters(), adam(lr=0.01)), data[10:])  # without the moments: differs
    assert max_diff(dict(a.named_parameters()), dict(fresh.named_parameters())) > 1e-6


def test_optimiser_state_key_must_not_clash():
    model = from_module(net(), "state")
    with pytest.raises(ld.errors.ConflictError, match="state_key"):
        adam().reparametrise(model)


# -- the paper's Nesterov momentum: an optimiser with a forward part ----------------------------------------------


@pytest.mark.parametrize("weight_decay", [0.0, 0.01])
def test_lookahead_nesterov_is_torch_nesterov_after_the_change_of_variables(weight_decay):
    """With ``p_torch = p + γs``: torch's parameters, its losses at every step and its momentum buffers (``-s / lr``)."""
    lr, gamma, data = 0.05, 0.9, batches()
    model = net()
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=gamma, nesterov=True, weight_decay=weight_decay)
    torch_losses = []
    for x, y in data:
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        torch_losses.append(loss.item())

    learner = supervised(
        from_module(net(), "net"), softmax_cross_entropy(), lookahead_nesterov(lr, gamma, weight_decay)
    )
    result = train(learner, data)
    p, s = result.params["net"], result.state["net"]
    looked = {k: p[k] + gamma * s[k]["velocity"] for k in p}
    assert max_diff(dict(model.named_parameters()), looked) < 1e-5
    assert max(abs(a - b) for a, b in zip(result.losses, torch_losses)) < 1e-5
    buffers = {k: opt.state[v]["momentum_buffer"] for k, v in model.named_parameters()}
    assert max_diff(buffers, {k: -s[k]["velocity"] / lr for k in s}) < 1e-4
    assert max_diff(p, looked) > 1e-4  # the stored p is not the look-ahead point: the forward part matters


def test_lookahead_nesterovs_forward_part_hands_the_model_p_plus_gamma_s():
    opt = lookahead_nesterov(lr=0.1, momentum=0.5)
    p = {"w": torch.tensor([1.0, 2.0])}
    s = {"w": {"velocity": torch.tensor([2.0, -2.0])}}
    assert torch.equal(opt.lens().fwd((p, s))[0]["w"], torch.tensor([2.0, 1.0]))
    assert torch.equal(opt.lens()((p, s))["w"], torch.tensor([2.0, 1.0]))
    assert opt.lens().fwd((p, s))[1] == (p, s)  # the residual is the stored pair, which the backward part updates
    new, state = opt.update(p, s, {"w": torch.tensor([1.0, 1.0])})  # s' = 0.5 s + 0.1 · 1, p + s'
    assert torch.allclose(state["w"]["velocity"], torch.tensor([1.1, -0.9]))
    assert torch.allclose(new["w"], torch.tensor([2.1, 1.1]))
    assert repr(opt) == "lookahead_nesterov(lr=0.1, momentum=0.5, weight_decay=0.0)"
    model = from_module(net(), "net")  # reparametrised, the model is evaluated at p + γs
    x = batches(1)[0][0]
    velocity = tree_map(lambda t: torch.full_like(t, 0.01), opt.init(model.params))
    seen = opt.reparametrise(model)(x, {**model.params, "state": velocity})
    shifted = model(x, {"net": {k: v + 0.5 * 0.01 for k, v in model.params["net"].items()}})
    assert torch.allclose(seen, shifted) and not torch.allclose(seen, model(x))


def test_the_torch_bridge_refuses_an_optimiser_with_a_forward_part():
    with pytest.raises(ld.errors.OptionError, match="nesterov"):
        LensOptimizer(net().parameters(), lookahead_nesterov())
