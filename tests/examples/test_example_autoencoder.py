"""The autoencoder and norm-regularisation example: the diagrams equal their hand-written forms."""

import copy
import shutil

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import learning_diagrams as ld
from learning_diagrams.examples import autoencoder as ex

EPOCHS = 2
HAS_DOT = shutil.which("dot") is not None  # drawing needs Graphviz's dot; the rest of the run does not


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """One short run of the example (two epochs, two penalty weights), drawing into a temporary folder."""
    folder = tmp_path_factory.mktemp("autoencoder")
    draw = ["--draw", str(folder)] if HAS_DOT else []
    results = ex.main(["--epochs", str(EPOCHS), "--lambdas", "0,0.01", "--quiet", *draw])
    return results, folder


def batch(n=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 64, generator=g), torch.randint(0, 10, (n,), generator=g)


# -- the autoencoder ---------------------------------------------------------------


def test_the_cycle_is_followed_once_and_compiles_to_one_pair():
    d = ex.autoencoder(ex.encoder(8, 2), ex.decoder(8, 2), [batch()])
    assert [str(p) for p in d.paths()["N", "X"]] == ["x", "x·enc·dec"]
    assert [p.name for p in d.parallel_pairs()] == ["x·enc·dec ≤ x"]


def test_autoencoder_loss_and_gradients_equal_hand_written_mse(run):
    ae = run[0]["autoencoder"]
    assert ae["pairs"] == ["x·enc·dec ≤ x"]
    assert ae["loss"] > 0 and ae["grad_norm"] > 0  # something to compare
    assert ae["loss_diff"] <= 1e-6
    assert ae["grad_diff"] <= 1e-6


def test_compare_on_batch_sees_a_different_loss():
    """The check itself can fail: the same diagram against a wrong hand-written form."""
    torch.manual_seed(0)
    enc, dec = ex.encoder(8, 2), ex.decoder(8, 2)
    b = batch()
    loss = ex.autoencoder(enc, dec, [b]).compile()
    wrong = ex.compare_on_batch(
        loss, lambda b: F.l1_loss(dec(enc(b[0])), b[0]), [*enc.parameters(), *dec.parameters()], b
    )
    assert wrong["loss_diff"] > 1e-3 and wrong["grad_diff"] > 1e-4


def test_autoencoder_trains_step_for_step_like_the_hand_written_loop(run):
    ae = run[0]["autoencoder"]
    batches_per_epoch = -(-1437 // 64)
    assert ae["steps"] == EPOCHS * batches_per_epoch
    assert ae["curve_gap"] <= 1e-6
    assert abs(ae["test_diagram"] - ae["test_hand"]) <= 1e-6


def test_autoencoder_training_lowers_the_reconstruction_error(run):
    ae = run[0]["autoencoder"]
    assert ae["last_epoch_train"] < ae["first_epoch_train"] < ae["first_step"]
    assert ae["test_diagram"] < 0.6 * ae["test_before"]


# -- the norm penalty ---------------------------------------------------------------


def test_penalty_is_a_pair_of_paths_into_R():
    d = ex.regularised(nn.Linear(64, 10), [batch()], 0.5)
    pairs = d.parallel_pairs()
    assert [(p.name, p.target, p.weight) for p in pairs] == [("x·model ≤ y", "Y", 1.0), ("weights ≤ zero", "R", 0.5)]
    w = torch.tensor([3.0, -4.0])
    assert ex.squared_norm(w, torch.zeros(2)).item() == 25.0 and ex.squared_norm.symmetric


def test_penalised_loss_and_gradients_equal_hand_written_form(run):
    norm = run[0]["norm"]
    assert norm["pairs"] == ["x·model ≤ y", "weights ≤ zero"]
    assert norm["lambda"] == 0.01 and norm["grad_norm"] > 0
    assert norm["loss_diff"] <= 1e-6
    assert norm["grad_diff"] <= 1e-6


def test_penalty_alone_is_weight_decay_on_the_shared_tensor():
    """One SGD step on ``λ‖W‖²`` alone scales the classifier's own weight by ``1 − 2λ·lr``; the bias stays."""
    torch.manual_seed(0)
    model = nn.Linear(64, 10)
    before = copy.deepcopy(model)
    lam, lr = 0.1, 0.5
    d = (
        ld.Diagram()
        .space("N", data=[batch()])
        .space("R", loss=ex.squared_norm)
        .map("weights", "N", "R", ex.Weights(model))
        .map("zero", "N", "R", ex.Zero(640))
        .relate("weights", "zero", weight=lam)
    )
    history = ld.fit(d, epochs=1, optimizer=torch.optim.SGD, lr=lr, log_dir=False, progress=False, device="cpu")
    assert history.records[0]["values"]["total"] == pytest.approx(lam * before.weight.pow(2).sum().item(), rel=1e-6)
    torch.testing.assert_close(model.weight, (1 - 2 * lam * lr) * before.weight, rtol=1e-6, atol=1e-7)
    torch.testing.assert_close(model.bias, before.bias, rtol=0, atol=0)


def test_penalised_training_matches_hand_written_loop_and_weight_decay(run):
    runs = run[0]["norm"]["runs"]
    assert set(runs) == {0.0, 0.01}
    for r in runs.values():
        assert r["steps"] == EPOCHS * -(-1437 // 64)
        assert r["curve_gap"] <= 1e-6
        assert r["norm_diagram"] == pytest.approx(r["norm_hand"], rel=1e-6)
        assert r["weight_decay_gap"] <= 1e-5
        assert r["accuracy_diagram"] == r["accuracy_hand"]


def test_penalty_shrinks_the_weights_and_keeps_accuracy(run):
    runs = run[0]["norm"]["runs"]
    assert runs[0.01]["norm_diagram"] < 0.8 * runs[0.0]["norm_diagram"]
    assert runs[0.0]["accuracy_diagram"] > 85
    assert runs[0.01]["accuracy_diagram"] > runs[0.0]["accuracy_diagram"] - 8


@pytest.mark.skipif(not HAS_DOT, reason="Graphviz's dot is not installed (apt-get install graphviz)")
def test_pictures_are_drawn(run):
    folder = run[1]
    for name in ("autoencoder.svg", "autoencoder-norm.svg"):
        svg = (folder / name).read_text()
        assert svg.lstrip().startswith("<?xml") or "<svg" in svg
    assert "x·enc·dec ≤ x" in (folder / "autoencoder.svg").read_text()
    assert "weights ≤ zero" in (folder / "autoencoder-norm.svg").read_text()
    assert (folder / "autoencoder-reconstructions.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
