"""The parametric-lens examples: each lens learner beside its plain PyTorch baseline, run small."""

import matplotlib.image
import pytest
import torch

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
