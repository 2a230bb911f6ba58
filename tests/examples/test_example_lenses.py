"""The parametric-lens examples: each lens learner beside its plain PyTorch baseline, run small."""

import matplotlib.image
import numpy as np
import pytest
import torch
from sklearn.datasets import load_iris

from learning_diagrams.examples import lenses as ex

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """One short run of every experiment (a few epochs and steps), writing its PNGs to a temporary folder."""
    out = tmp_path_factory.mktemp("lenses")
    threads = torch.get_num_threads()
    results = ex.main(
        [
            "--iris-epochs",
            "20",
            "--digits-epochs",
            "3",
            "--dream-steps",
            "20",
            "--gan-steps",
            "60",
            "--out",
            str(out),
            "--quiet",
        ]
    )
    assert torch.get_num_threads() == threads  # the example restores torch's thread count
    return results, out


# -- supervised learning -----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(ex.IRIS_MODELS))
def test_iris_accuracy_is_within_two_points_of_pytorch(run, name):
    r = run[0]["iris"][name]
    assert r["steps"] == 20 * 10  # 100 flowers in batches of 10, 20 epochs
    assert r["lenses"] > 60  # learned something (chance is 34%), so the comparison means something
    assert abs(r["diff"]) <= 2
    assert r["param_diff"] < 1e-4  # the updates are torch.optim's: the weights agree, not only the accuracy
    assert r["final_loss"] < r["first_loss"]


def test_digits_conv_accuracy_is_within_two_points_of_pytorch(run):
    r = run[0]["digits"]
    assert r["model"].startswith("conv2d(1→8")
    assert r["lenses"] > 80
    assert abs(r["diff"]) <= 2
    assert r["param_diff"] < 1e-4 and r["loss_diff"] < 1e-4


def test_the_comparison_notices_a_baseline_that_differs():
    """The same comparison, with the baseline's learning rate changed: the weights and curves part."""
    train_set, test = ex.iris()
    batches = ex.epoch_batches(train_set, 10, 5, 0, ex.one_hot)
    r = ex.compare(
        ex.IRIS_MODELS["dense"],
        batches,
        test,
        loss="mse",
        optimiser="sgd",
        hyper={"lr": 0.5},
        baseline_hyper={"lr": 0.05},
    )
    assert r["param_diff"] > 1e-2 and r["loss_diff"] > 1e-3


# -- Iris under numeric-optics' protocol ---------------------------------------------------------------------


def numeric_optics_by_hand(name, epochs):
    """numeric-optics' Iris run, written out in numpy from its code (experiments/iris.py and its library).

    numpy's generator seeded 2; weights N(0, 0.01²), drawn last layer first, biases zero; each epoch one
    permutation shuffled in place; per flower, the change of ŷ is η (ŷ - y) with η = -0.01 (the loss
    ½ Σ (ŷ - y)²), passed back through sigmoid and ``W x + b``, and every parameter updated by ``p + p'``.
    """
    rng = np.random.RandomState(2)
    data = load_iris()
    x, y = data.data, np.eye(3)[data.target]
    sizes = {"linear": [(4, 3)], "dense": [(4, 3)], "hidden": [(4, 20), (20, 3)]}[name]
    weights = [None] * len(sizes)
    for i in reversed(range(len(sizes))):
        weights[i] = rng.normal(0, 0.01, (sizes[i][1], sizes[i][0]))
    biases = [np.zeros(n_out) for _, n_out in sizes]
    affine_only = name == "linear"
    order = np.array(range(len(y)))
    for _ in range(epochs):
        rng.shuffle(order)
        for i in order:
            values = [x[i]]
            for w, b in zip(weights, biases):
                z = w @ values[-1] + (0 if affine_only else b)
                values.append(z if affine_only else 1 / (1 + np.exp(-z)))
            change = -0.01 * (values[-1] - y[i])
            for layer in reversed(range(len(weights))):
                if not affine_only:
                    change = change * values[layer + 1] * (1 - values[layer + 1])
                back = weights[layer].T @ change
                weights[layer] = weights[layer] + np.outer(change, values[layer])
                biases[layer] = biases[layer] + change
                change = back
    return weights, biases


@pytest.fixture(scope="module")
def numeric_optics():
    return ex.main(["--numeric-optics", "--iris-epochs", "4", "--quiet"])


@pytest.mark.parametrize("name", list(ex.IRIS_MODELS))
def test_the_numeric_optics_mode_takes_numeric_optics_steps(numeric_optics, name):
    """Four epochs of each model under ``--numeric-optics``: numeric-optics' own update, step for step (float64)."""
    assert set(numeric_optics) == {"files", "iris", "seconds"}  # Iris alone
    r = numeric_optics["iris"][name]
    assert r["steps"] == 4 * 150
    weights, biases = numeric_optics_by_hand(name, 4)
    layers = sorted(r["params"])
    assert len(layers) == len(weights)
    for layer, w, b in zip(layers, weights, biases):
        assert r["params"][layer]["weight"].dtype == torch.float64
        assert np.abs(r["params"][layer]["weight"].numpy() - w).max() < 1e-12
        if name != "linear":
            assert np.abs(r["params"][layer]["bias"].numpy() - b).max() < 1e-12
    assert r["param_diff"] < 1e-12 and r["lenses"] == r["torch"]  # the torch loop takes the same steps
    assert r["numeric_optics"] is None  # its figures are for its 400 epochs only


def test_numeric_optics_draws_the_last_layers_weights_first():
    params = ex.numeric_optics_init(ex.IRIS_MODELS["hidden"], np.random.RandomState(2))
    first = np.random.RandomState(2).normal(0, 0.01, (3, 20))
    assert np.array_equal(params["dense1"]["weight"].numpy(), first)
    assert torch.equal(params["dense0"]["bias"], torch.zeros(20, dtype=torch.float64))
    assert 0.008 < float(params["dense0"]["weight"].std()) < 0.012


def test_the_lens_and_torch_twins_start_from_the_same_weights():
    model, net, pairs = ex.build(ex.DIGITS_MODEL, seed=3)
    x = torch.rand(4, 1, 8, 8)
    assert torch.allclose(model(x), net(x), atol=1e-6)
    assert ex.param_diff(pairs, model.params) == 0.0
    other, _, _ = ex.build(ex.DIGITS_MODEL, seed=4)
    assert not torch.allclose(model(x), other(x))


# -- deep dreaming -------------------------------------------------------------------------------------------


def test_dreaming_raises_each_target_score(run):
    dream = run[0]["dream"]
    assert [row["target"] for row in dream["rows"]] == list(range(10))
    for row in dream["rows"]:
        for before, after in zip(row["before"], row["after"]):
            assert after > before + 1.0
        assert row["scores"][-1] > row["scores"][0]
        assert row["image"].abs().max() <= 1.0  # the clipped optimiser kept the pixels in [-1, 1]
        assert row["image_diff"] < 1e-4  # torch.optim.Adam on the input dreams the same image
    assert dream["hits"] >= 10  # at least half the dreamed inputs are now classified as their target


# -- the GAN ---------------------------------------------------------------------------------------------------


def test_gan_matches_pytorch_and_moves_towards_the_data(run):
    gan = run[0]["gan"]
    assert len(gan["estimates"]) == len(gan["torch_estimates"]) == 60 * 5
    assert gan["estimate_diff"] < 1e-4 and gan["generator_diff"] < 1e-4
    assert gan["critic_max"] <= 0.05 + 1e-7
    assert gan["sliced_w1"]["lenses"] < 0.75 * gan["sliced_w1"]["before"]


# -- the PNGs -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["lenses-dream.png", "lenses-gan.png"])
def test_pngs_are_written_and_valid(run, name):
    results, out = run
    path = out / name
    assert path in results["files"]
    assert path.read_bytes()[:8] == PNG_SIGNATURE
    image = matplotlib.image.imread(path)
    assert image.ndim == 3 and image.shape[0] > 200 and image.shape[1] > 500
    assert image[..., :3].std() > 0.05  # something is drawn
    assert not list(out.glob(".*.tmp"))  # written atomically: no temporary files left
