"""Any ``nn.Module`` as a part: integer inputs, buffers carried as state, and calls without ``vjp``."""

import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import learning_diagrams as ld
from learning_diagrams.core.errors import ConflictError
from learning_diagrams.lenses import Assign, Lens, Para, bridges, derivative, parts, same
from learning_diagrams.lenses.learner import input_as_parameter, supervised, train
from learning_diagrams.lenses.optim import adam, lookahead_nesterov, sgd, tree_map

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


def max_diff(a, b):
    return max((a[k] - b[k]).abs().max().item() for k in a)


def classes(n=40, seed=1):
    """Batches of 8 rows with a 3-class label, for models on ``R⁴``."""
    g = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(n):
        x = torch.randn(8, 4, generator=g) * 3 + 1  # off-centre and wide: batch norm has something to track
        out.append((x, (x[:, 0] > 1).long() + (x[:, 1] > 2).long()))
    return out


def torch_train(module, data, make):
    opt = make(module.parameters())
    for x, y in data:
        opt.zero_grad()
        F.cross_entropy(module(x), y).backward()
        opt.step()


# -- integer inputs ------------------------------------------------------------------------------------------


def test_an_embedding_takes_indices_and_their_change_is_zero():
    torch.manual_seed(0)
    emb = nn.Embedding(10, 3)
    part = parts.module(emb, "emb")
    idx = torch.tensor([[1, 2, 2], [7, 0, 1]])
    y, residual = part.fwd((part.params, idx))
    dy = torch.randn(2, 3, 3)
    dp, didx = part.bwd(residual, dy)
    assert torch.equal(y, emb(idx)) and torch.equal(part(idx), y)
    (emb(idx) * dy).sum().backward()
    assert torch.allclose(dp["emb"]["weight"], emb.weight.grad)
    assert torch.equal(didx, torch.zeros(2, 3))  # an index has no direction to move in


def test_an_embedding_model_trains_as_torch_adam_does():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Embedding(12, 5), nn.Flatten(), nn.Linear(15, 3))
    g = torch.Generator().manual_seed(2)
    data = [(idx, idx[:, 0] % 3) for idx in (torch.randint(12, (8, 3), generator=g) for _ in range(60))]
    part = parts.module(copy.deepcopy(net), "net")
    result = train(supervised(part, parts.softmax_cross_entropy(), adam(lr=0.05)), data)
    torch_train(net, data, lambda ps: torch.optim.Adam(ps, lr=0.05))
    assert max_diff(dict(net.named_parameters()), result.params["net"]) < 1e-6
    assert max_diff(part.params["net"], result.params["net"]) > 0.1  # it did move
    assert sum(result.losses[-10:]) < 0.5 * sum(result.losses[:10])


def test_para_derivative_of_an_index_lookup_gives_indices_the_zero_change():
    table = {"t": {"rows": torch.arange(6.0).reshape(3, 2)}}
    lookup = derivative.para_derivative(lambda p, i: p["t"]["rows"][i], table, "t")
    y, residual = lookup.fwd((lookup.params, torch.tensor([2, 2])))
    dp, di = lookup.bwd(residual, torch.ones(2, 2))
    assert torch.equal(dp["t"]["rows"], torch.tensor([[0.0, 0.0], [0.0, 0.0], [2.0, 2.0]]))
    assert torch.equal(di, torch.zeros(2))


# -- buffers ---------------------------------------------------------------------------------------------------


def bn_net(seed=0):
    # No bias before the batch norm: its gradient is zero but for rounding, which Adam would amplify.
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(4, 6, bias=False), nn.BatchNorm1d(6), nn.ReLU(), nn.Linear(6, 3))


def test_a_module_parts_parameters_are_its_state_dict():
    net = bn_net()
    part = parts.module(net, "net")
    assert list(part.params["net"]) == list(net.state_dict())
    assert all(torch.equal(part.params["net"][k], v) for k, v in net.state_dict().items())


@pytest.mark.parametrize("optimiser", ["adam", "sgd"])
def test_batch_norm_in_training_mode_trains_and_tracks_statistics_as_torch_does(optimiser):
    """Parameters and running statistics (and the count) after 40 steps equal torch's; eval mode then reads them."""
    make, lens_optimiser = {
        "adam": (lambda ps: torch.optim.Adam(ps, lr=0.01), adam(lr=0.01)),
        "sgd": (lambda ps: torch.optim.SGD(ps, lr=0.05, momentum=0.9), sgd(lr=0.05, momentum=0.9)),
    }[optimiser]
    data = classes()
    ours, theirs = bn_net(), bn_net()
    part = parts.module(ours, "net")
    result = train(supervised(part, parts.softmax_cross_entropy(), lens_optimiser), data)
    torch_train(theirs, data, make)

    state = theirs.state_dict()
    assert result.params["net"].keys() == state.keys()
    assert max_diff(state, result.params["net"]) < 1e-5
    assert result.params["net"]["1.num_batches_tracked"].item() == len(data)
    assert result.params["net"]["1.num_batches_tracked"].dtype == torch.int64
    assert (result.params["net"]["1.running_mean"] - part.params["net"]["1.running_mean"]).abs().max() > 0.1
    assert torch.equal(part.params["net"]["1.running_mean"], torch.zeros(6))  # the part's own values are untouched
    assert torch.equal(ours[1].running_mean, torch.zeros(6))  # and so is the module: it is used as a function

    x = data[0][0]
    ours.eval(), theirs.eval()
    learner = supervised(part, parts.softmax_cross_entropy(), lens_optimiser)
    predicted = learner.predict(x, result)
    with torch.no_grad():
        assert torch.allclose(predicted, theirs(x), atol=1e-5)  # eval mode reads the trained statistics
    ours.load_state_dict(result.params["net"])  # the parameters are a state dict
    with torch.no_grad():
        assert torch.allclose(ours(x), theirs(x), atol=1e-5)


def test_in_eval_mode_the_buffers_come_back_unchanged_and_the_optimiser_keeps_them():
    net = bn_net().eval()
    part = parts.module(net, "net")
    result = train(supervised(part, parts.softmax_cross_entropy(), adam(lr=0.01)), classes(5))
    for k in ("1.running_mean", "1.running_var", "1.num_batches_tracked"):
        assert torch.equal(result.params["net"][k], part.params["net"][k])
    assert max_diff({"w": net[0].weight.detach()}, {"w": result.params["net"]["0.weight"]}) > 1e-4


def test_optimisers_assign_buffers_without_stepping_or_clipping_them():
    params = {"w": torch.tensor([1.0, -1.0]), "running_var": torch.tensor([4.0]), "count": torch.tensor(3)}
    change = {
        "w": torch.tensor([10.0, 10.0]),
        "running_var": Assign(torch.tensor([5.0])),
        "count": Assign(torch.tensor(4)),
    }
    for optimiser in (
        sgd(lr=0.1, weight_decay=0.5).clipped(1.5),
        adam(lr=0.1).clipped(1.5),
        lookahead_nesterov(lr=0.1),
    ):
        state = optimiser.init(params)
        assert state["count"] == {}  # an integer leaf has no optimiser state
        new, new_state = optimiser.update(params, state, change)
        assert torch.equal(new["running_var"], torch.tensor([5.0])) and torch.equal(new["count"], torch.tensor(4))
        assert new_state["running_var"] is state["running_var"] and new_state["count"] == {}
        assert not torch.equal(new["w"], params["w"])
    looked = lookahead_nesterov(momentum=0.5).get(params, lookahead_nesterov().init(params))
    assert looked["count"] is params["count"]  # handed on as it is (p + γs would make it a float)


def test_a_clipped_optimiser_clamps_parameters_but_not_running_statistics():
    data = classes(10)
    result = train(
        supervised(parts.module(bn_net(), "net"), parts.softmax_cross_entropy(), sgd(lr=0.5).clipped(0.01)), data
    )
    weights = [v for k, v in result.params["net"].items() if k.endswith(("weight", "bias"))]
    assert max(v.abs().max().item() for v in weights) <= 0.01
    assert result.params["net"]["1.running_var"].max().item() > 0.1  # not clamped to 0.01


def test_two_assignments_to_one_buffer_do_not_add():
    with pytest.raises(ConflictError, match="used twice"):
        Assign(torch.zeros(1)) + Assign(torch.zeros(1))


# -- calls run the get map, without vjp -----------------------------------------------------------------------


@pytest.fixture
def no_vjp(monkeypatch):
    """``torch.func.vjp`` made to fail where the lenses call it: anything that still runs it raises."""

    def refuse(*args, **kwargs):
        raise AssertionError("vjp was called")

    monkeypatch.setattr(derivative, "vjp", refuse)


def test_calling_a_part_or_predicting_runs_no_vjp(no_vjp):
    net = bn_net().eval()
    x = torch.randn(5, 4)
    part = parts.module(net, "net")
    with torch.no_grad():
        assert torch.equal(part(x), net(x))
    mlp = parts.dense(4, 8, "d1", activation="tanh") >> parts.dense(8, 3, "d2", activation=None)
    learner = supervised(mlp, parts.softmax_cross_entropy(), lookahead_nesterov(lr=0.1))
    assert learner.predict(x).shape == (5, 3)
    assert learner.open(x, {**learner.initial, "label": torch.zeros(5, dtype=torch.long)}).shape == ()
    with pytest.raises(AssertionError, match="vjp was called"):
        part.fwd((part.params, x))  # the forward part keeps its residual, so it does trace


def test_a_call_in_training_mode_leaves_the_statistics_alone():
    net = bn_net()
    part = parts.module(net, "net")
    x = torch.randn(5, 4)
    before = {k: v.clone() for k, v in part.params["net"].items()}
    part(x)
    part.fwd((part.params, x))
    assert all(torch.equal(before[k], v) for k, v in part.params["net"].items())
    assert torch.equal(net[1].running_mean, torch.zeros(6))


def test_every_get_map_agrees_with_its_forward_part():
    """Composites, lifts and reparametrisations compose their get maps; each gives what ``fwd`` gives."""
    x = torch.randn(5, 4)
    model = parts.dense(4, 4, "d1", activation="sigmoid") >> parts.module(bn_net(), "net")
    side = parts.dense(4, 2, "d3")
    cases = {
        "then": (model, x),
        "tensor": (model @ side, (x, x)),
        "lift": (Para.lift(Lens.copy()) >> (model @ side), x),
        "nesterov": (lookahead_nesterov(momentum=0.5).reparametrise(model), x),
        "adam": (adam().reparametrise(model), x),
        "regroup": (parts.regroup(model, "all"), x),
    }
    for name, (para, a) in cases.items():
        params = para.params
        if "state" in params:  # a non-zero state, so that Nesterov's look-ahead point is not p
            params = {**params, "state": tree_map(lambda t: t + 0.1 if t.is_floating_point() else t, params["state"])}
        value, _ = para.fwd((params, a))
        called = para(a, params)
        for c, v in zip(called, value) if isinstance(value, tuple) else [(called, value)]:
            assert torch.allclose(c, v, atol=1e-6), name
        assert same(para, para, (params, a), value), name


def test_the_dreaming_and_diagram_lenses_are_called_without_vjp(no_vjp, monkeypatch):
    model = parts.dense(4, 3, "d", activation=None)
    x = torch.randn(2, 4)
    dreaming = input_as_parameter(model, x)
    assert torch.equal(dreaming(model.params), model(x))
    monkeypatch.setattr(bridges, "vjp", derivative.vjp)  # the bridge imports vjp itself: refuse it there too
    net = nn.Linear(4, 1)
    d = (
        ld.Diagram()
        .space("N", data=[(x, torch.zeros(2, 1))])
        .space("X")
        .space("Y", loss=ld.losses.mse)
        .map("x", "N", "X", lambda b: b[0])
        .map("y", "N", "Y", lambda b: b[1])
        .map("f", "X", "Y", net)
        .relate("x·f", "y")
    )
    compiled = d.compile()
    loss = bridges.diagram_loss(compiled)
    assert torch.allclose(loss(None), compiled().total)
