"""Parts, learners and bridges: Iris, loss-map derivatives, deep dreaming, a WGAN, the diagram-as-loss bridge."""

import pytest
import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits, load_iris
from torch import nn

import learning_diagrams as ld
from learning_diagrams.lenses.bridges import diagram_learner, diagram_loss, load_params
from learning_diagrams.lenses.learner import dream, input_as_parameter, supervised, train, wgan
from learning_diagrams.lenses.optim import adam, gradient_descent, rmsprop, sgd
from learning_diagrams.lenses.parts import (
    avg_pool,
    chain,
    conv2d,
    dense,
    dot_product,
    flatten,
    learning_rate,
    loss_scaled,
    max_pool,
    module,
    quadratic_error,
    relu,
    sigmoid,
    softmax,
    softmax_cross_entropy,
    tanh,
)


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


def minibatches(x, y, size, seed):
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))
    return [(x[i], y[i]) for i in order.split(size)]


# -- supervised learning ----------------------------------------------------------------


def test_supervised_learner_reduces_the_loss_on_iris():
    iris = load_iris()
    x = torch.tensor(iris.data, dtype=torch.float32)
    x = (x - x.mean(0)) / x.std(0)
    y = torch.tensor(iris.target)
    model = dense(4, 16, "d1") >> dense(16, 3, "d2", activation=None)
    learner = supervised(model, softmax_cross_entropy(), adam(lr=0.01))
    before = F.cross_entropy(learner.predict(x), y).item()
    batches = minibatches(x, y, 30, 0)
    result = train(learner, batches, epochs=20)
    after = F.cross_entropy(learner.predict(x, result.params), y).item()
    assert len(result.losses) == 20 * 5
    assert result.losses[0] == pytest.approx(F.cross_entropy(learner.predict(batches[0][0]), batches[0][1]).item())
    assert sum(result.losses[-5:]) < 0.5 * sum(result.losses[:5])
    assert after < 0.3 < before
    assert (learner.predict(x, result).argmax(1) == y).float().mean() > 0.9


def test_train_refuses_a_one_shot_iterator_for_several_epochs():
    x, y = torch.randn(8, 4, generator=torch.Generator().manual_seed(0)), torch.arange(8) % 3
    learner = supervised(dense(4, 3, "d", activation=None), softmax_cross_entropy(), sgd(lr=0.1))
    with pytest.raises(ld.errors.TypeMismatchError, match=r"epochs=3.*one-shot iterator \(a generator\)"):
        train(learner, ((x, y) for _ in range(4)), epochs=3)
    with pytest.raises(TypeError, match=r"list_iterator.*list\(batches\)"):
        train(learner, iter([(x, y)] * 4), epochs=2)
    assert len(train(learner, ((x, y) for _ in range(4))).losses) == 4  # one epoch: one pass is all it takes
    assert len(train(learner, [(x, y)] * 4, epochs=3).losses) == 12
    assert len(train(learner, torch.utils.data.DataLoader(list(zip(x, y)), batch_size=4), epochs=3).losses) == 6


def test_the_closed_learner_backward_is_one_training_step():
    x, y = torch.randn(8, 4, generator=torch.Generator().manual_seed(0)), torch.arange(8) % 3
    learner = supervised(dense(4, 3, "d", activation=None), softmax_cross_entropy(), adam(lr=0.1))
    q = learner.initial
    stepped, loss = learner.step(q, x, y)
    out, residual = learner.para.fwd(({**q, "label": y}, x))
    new, _ = learner.para.bwd(residual, ())
    assert out == ()
    assert torch.equal(new["d"]["weight"], stepped["d"]["weight"])
    assert new["state"]["d"]["weight"]["step"].item() == 1
    assert not torch.equal(new["d"]["weight"], q["d"]["weight"])


def test_plain_gradient_descent_is_p_minus_alpha_grad():
    x, y = torch.randn(8, 4, generator=torch.Generator().manual_seed(0)), torch.randn(8, 2)
    model = dense(4, 2, "d", activation="sigmoid")
    learner = supervised(model, quadratic_error(), gradient_descent(lr=1.0), rate=learning_rate(0.1))
    new, _ = learner.step(learner.initial, x, y)
    w = model.params["d"]["weight"].clone().requires_grad_()
    F.mse_loss(torch.sigmoid(x @ w.T + model.params["d"]["bias"]), y).backward()
    assert torch.allclose(new["d"]["weight"], w.detach() - 0.1 * w.grad, atol=1e-7)


def test_learning_rate_sign_conventions():
    loss = torch.tensor(2.0)

    def change(rate):
        return rate.bwd(rate.fwd(({}, loss))[1], ())[1]

    assert change(learning_rate(0.1)).item() == pytest.approx(-0.1)
    assert change(learning_rate(0.1, maximise=True)).item() == pytest.approx(0.1)
    assert change(loss_scaled(0.1)).item() == pytest.approx(-0.2)
    assert change(loss_scaled(0.1, maximise=True)).item() == pytest.approx(0.2)
    assert learning_rate(0.1).fwd(({}, loss))[0] == ()


# -- loss maps and layers against autograd ----------------------------------------------


def loss_map_grads(loss_map, y_hat, label, dl):
    value, residual = loss_map.fwd(({"label": label}, y_hat))
    dparams, dy_hat = loss_map.bwd(residual, dl)
    return value, dy_hat, dparams["label"]


def autograd_grads(fn, y_hat, label, dl):
    y_hat = y_hat.clone().requires_grad_()
    label = label.clone().requires_grad_() if torch.is_floating_point(label) else label
    value = fn(y_hat, label)
    inputs = (y_hat, label) if label.requires_grad else (y_hat,)
    grads = torch.autograd.grad(value, inputs, dl)
    return value.detach(), grads[0], grads[1] if len(grads) > 1 else torch.zeros(label.shape)


G = torch.Generator().manual_seed(3)
Z = torch.randn(6, 4, generator=G)
ROWS = torch.softmax(torch.randn(6, 4, generator=G), dim=1)
LOSS_CASES = {
    "quadratic mean": (quadratic_error(), lambda z, y: F.mse_loss(z, y), ROWS),
    "quadratic sum": (quadratic_error(reduction="sum"), lambda z, y: F.mse_loss(z, y, reduction="sum"), ROWS),
    "cross-entropy indices": (softmax_cross_entropy(), F.cross_entropy, torch.tensor([0, 3, 1, 2, 2, 0])),
    "cross-entropy one-hot": (
        softmax_cross_entropy(),
        F.cross_entropy,
        F.one_hot(torch.tensor([0, 3, 1, 2, 2, 0]), 4).float(),
    ),
    "cross-entropy probabilities": (softmax_cross_entropy(), F.cross_entropy, ROWS),
    "cross-entropy sum": (
        softmax_cross_entropy(reduction="sum"),
        lambda z, y: F.cross_entropy(z, y, reduction="sum"),
        ROWS,
    ),
    "dot product": (dot_product(), lambda z, y: (z * y).sum(), ROWS),
}


@pytest.mark.parametrize("case", list(LOSS_CASES))
def test_loss_map_derivatives_match_autograd(case):
    loss_map, reference, label = LOSS_CASES[case]
    dl = torch.tensor(-0.7)
    value, dz, dy = loss_map_grads(loss_map, Z, label, dl)
    ref_value, ref_dz, ref_dy = autograd_grads(reference, Z, label, dl)
    assert torch.allclose(value, ref_value, atol=1e-6)
    assert torch.allclose(dz, ref_dz, atol=1e-6)
    assert torch.allclose(dy, ref_dy, atol=1e-6)
    assert dz.abs().max() > 1e-3


def test_layers_backward_match_an_nn_module():
    model = chain(
        conv2d(1, 3, 3, "c", padding=1),
        relu(),
        max_pool(2),
        conv2d(3, 2, 3, "c2", padding=1),
        tanh(),
        avg_pool(2),
        flatten(),
        dense(8, 5, "d", activation=sigmoid()),
        softmax(),
    )
    net = nn.Sequential(
        nn.Conv2d(1, 3, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(3, 2, 3, padding=1),
        nn.Tanh(),
        nn.AvgPool2d(2),
        nn.Flatten(),
        nn.Linear(8, 5),
        nn.Sigmoid(),
        nn.Softmax(-1),
    )
    with torch.no_grad():
        for i, key in ((0, "c"), (3, "c2"), (7, "d")):
            net[i].weight.copy_(model.params[key]["weight"])
            net[i].bias.copy_(model.params[key]["bias"])
    x = torch.randn(2, 1, 8, 8, generator=torch.Generator().manual_seed(0), requires_grad=True)
    db = torch.randn(2, 5, generator=torch.Generator().manual_seed(1))
    out, residual = model.fwd((model.params, x.detach()))
    dp, dx = model.bwd(residual, db)
    (net(x) * db).sum().backward()
    assert torch.allclose(out, net(x).detach(), atol=1e-6)
    assert torch.allclose(dx, x.grad, atol=1e-6)
    for i, key in ((0, "c"), (3, "c2"), (7, "d")):
        assert torch.allclose(dp[key]["weight"], net[i].weight.grad, atol=1e-6)
        assert torch.allclose(dp[key]["bias"], net[i].bias.grad, atol=1e-6)


def test_parts_initialise_from_their_seed():
    assert torch.equal(dense(3, 2, "a").params["a"]["weight"], dense(3, 2, "a").params["a"]["weight"])
    assert not torch.equal(dense(3, 2, "a").params["a"]["weight"], dense(3, 2, "b").params["b"]["weight"])
    assert torch.equal(dense(3, 2, "a", seed=1).params["a"]["weight"], dense(3, 2, "b", seed=1).params["b"]["weight"])
    assert dense(3, 2, "a").params["a"]["weight"].abs().max() <= 3**-0.5
    assert sorted(module(nn.Linear(2, 3), "m").params["m"]) == ["bias", "weight"]
    with pytest.raises(ValueError, match="unknown activation"):
        dense(2, 2, "a", activation="gelu")


# -- deep dreaming -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def digits_model():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    digits = load_digits()
    x = torch.tensor(digits.images, dtype=torch.float32).unsqueeze(1) / 16
    y = torch.tensor(digits.target)
    model = chain(
        conv2d(1, 4, 3, "conv", padding=1), relu(), max_pool(2), flatten(), dense(64, 10, "out", activation=None)
    )
    result = train(supervised(model, softmax_cross_entropy(), adam(lr=0.01)), minibatches(x, y, 64, 0), epochs=2)
    torch.set_num_threads(n)
    return model.with_params(result.params), x, y


def test_deep_dreaming_raises_the_target_class_score(digits_model):
    model, x, y = digits_model
    assert (model(x).argmax(1) == y).float().mean() > 0.8
    start = x[y == 1][:1]  # an image of a 1, dreamt towards a 7
    dreamt = dream(model, start, 7, adam(lr=0.05).clipped(1.0), steps=60)
    assert dreamt.scores[-1] > dreamt.scores[0] + 1.0
    assert model(dreamt.image)[0, 7] > model(start)[0, 7] + 1.0
    assert model(dreamt.image).argmax().item() == 7
    assert dreamt.image.abs().max() <= 1.0
    # the model's parameters did not move: they were the input
    swapped = input_as_parameter(model, start, "image")
    _, residual = swapped.fwd((swapped.params, model.params))
    dq, dp = swapped.bwd(residual, torch.ones(1, 10))
    assert set(dq) == {"image"} and set(dp) == set(model.params)


# -- a Wasserstein GAN -------------------------------------------------------------------


def test_wgan_generator_moves_towards_the_data_and_the_critic_stays_clipped():
    g = torch.Generator().manual_seed(0)
    centres = torch.tensor([[2.0, 2.0], [4.0, 0.0]])
    data = centres[torch.randint(2, (512,), generator=g)] + 0.3 * torch.randn(512, 2, generator=g)
    generator = dense(2, 16, "g1", activation="tanh") >> dense(16, 2, "g2", activation=None)
    critic = dense(2, 32, "c1") >> dense(32, 1, "c2", activation=None)
    z = torch.randn(512, 2, generator=g)
    before = (generator(z).mean(0) - data.mean(0)).norm()
    result = wgan(
        generator,
        critic,
        data,
        noise_dim=2,
        generator_optimiser=adam(lr=5e-3, betas=(0.5, 0.9)),
        critic_optimiser=rmsprop(lr=5e-3),
        clip=0.1,
        n_critic=5,
        steps=100,
    )
    after = (generator(z, result.generator).mean(0) - data.mean(0)).norm()
    assert before > 2.0
    assert after < 0.25 * before
    assert len(result.estimates) == 500
    limit = torch.tensor(0.1)
    assert all(v.abs().max() <= limit for layer in result.critic.values() for v in layer.values())
    assert any(v.abs().max() == limit for layer in result.critic.values() for v in layer.values())


# -- the diagram as a loss map -----------------------------------------------------------


def two_term_diagram(seed=0):
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(32, 3, generator=g)
    data = [(x[i : i + 8], (x[i : i + 8, 0] > 0).long()) for i in range(0, 32, 8)]
    shared, head, frozen = nn.Linear(3, 4), nn.Linear(4, 2), nn.Linear(3, 4)
    d = (
        ld.Diagram()
        .space("N", data=data)
        .space("X")
        .space("H", loss=ld.losses.mse)
        .space("Y", loss=ld.losses.cross_entropy)
        .map("x", "N", "X", lambda b: b[0])
        .map("y", "N", "Y", lambda b: b[1])
        .map("enc", "X", "H", shared)
        .map("teacher", "X", "H", frozen, trainable=False)
        .map("head", "H", "Y", head)
        .relate("x·enc·head", "y")
        .relate("x·enc", "x·teacher", weight=0.5)
    )
    return d, data


def test_diagram_loss_gives_the_gradients_of_the_compiled_loss():
    d, data = two_term_diagram()
    compiled = d.compile()
    loss = diagram_loss(compiled)
    assert sorted(loss.params) == ["enc", "head"]
    batch = {"N": data[1]}
    value, residual = loss.fwd((loss.params, batch))
    dparams, dbatch = loss.bwd(residual, torch.tensor(1.0))
    compiled.zero_grad()
    total = compiled(batch).total
    total.backward()
    assert dbatch is None
    assert torch.allclose(value, total.detach())
    for edge in ("enc", "head"):
        module = compiled.maps[edge]
        assert torch.allclose(dparams[edge]["weight"], module.weight.grad, atol=1e-7)
        assert torch.allclose(dparams[edge]["bias"], module.bias.grad, atol=1e-7)
        assert module.weight.grad.abs().max() > 0


def test_diagram_learner_trains_like_torch_adam():
    d, data = two_term_diagram()
    compiled = d.compile()
    result = train(diagram_learner(compiled, adam(lr=0.05)), [{"N": b} for b in data], epochs=5)
    reference, _ = two_term_diagram()
    ref = reference.compile()
    opt = torch.optim.Adam(ref.parameters(), lr=0.05)
    for _ in range(5):
        for b in data:
            opt.zero_grad()
            ref({"N": b}).total.backward()
            opt.step()
    assert result.losses[-1] < result.losses[0]
    load_params(compiled, result.params)
    for (name, ours), (_, theirs) in zip(compiled.named_parameters(), ref.named_parameters()):
        assert torch.allclose(ours, theirs, atol=1e-6), name
    assert not torch.allclose(compiled.maps["head"].weight, two_term_diagram()[0].maps["head"].fn.weight)


def test_learner_needs_to_know_which_loss_parameter_is_the_label():
    critic = dense(2, 1, "c", activation=None)
    with pytest.raises(ld.errors.ConflictError, match="label"):
        supervised(dense(2, 2, "g", activation=None), critic >> dot_product(), sgd())
