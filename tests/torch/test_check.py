import torch
from torch import nn

import learning_diagrams as ld


def autoencoder():
    encoder, decoder = nn.Linear(6, 2), nn.Linear(2, 6)
    encoder.train(), decoder.train()
    d = (
        ld.Diagram()
        .space("N", data=[torch.randn(5, 6)])
        .space("X", loss=ld.losses.mse, type=ld.TensorType(None, 6, dtype=torch.float32))
        .space("Z", type=ld.TensorType(None, 2))
        .map("x", "N", "X", nn.Identity())
        .map("enc", "X", "Z", encoder)
        .map("dec", "Z", "X", decoder)
    )
    return d, encoder, decoder


def test_check_reports_every_path_with_shape_and_dtype():
    d, _, _ = autoencoder()
    report = d.check()
    assert report.rows == (
        ("N", "id(N)", "Tensor[float32, (5, 6)]"),
        ("X", "x", "Tensor[float32, (5, 6)]"),
        ("Z", "x·enc", "Tensor[float32, (5, 2)]"),
        ("X", "x·enc·dec", "Tensor[float32, (5, 6)]"),
    )
    assert list(report.terms) == ["x ≤ x·enc·dec"]
    text = str(report)
    assert "x·enc·dec" in text and "term x ≤ x·enc·dec" in text


def test_check_uses_the_given_batch_and_restores_modes_without_gradients():
    d, encoder, decoder = autoencoder()
    decoder.eval()
    report = d.check({"N": torch.zeros(2, 6)})
    assert report.rows[0][2] == "Tensor[float32, (2, 6)]"
    assert encoder.training and not decoder.training
    assert encoder.weight.grad is None


def test_check_of_a_diagram_with_no_loss_reports_shapes_only():
    d = ld.Diagram().space("N", data=torch.ones(3, 2)).space("Y").map("f", "N", "Y", nn.Linear(2, 4))
    report = d.check()
    assert report.rows[-1] == ("Y", "f", "Tensor[float32, (3, 4)]") and report.terms == {}


def test_check_runs_the_paths_of_a_declared_relation_that_enumeration_leaves_out():
    d = (
        ld.Diagram()
        .space("N", data=torch.ones(2, 3))
        .space("X", loss=ld.losses.mse)
        .space("Z")
        .map("x", "N", "X", nn.Identity())
        .map("enc", "X", "Z", nn.Linear(3, 2))
        .map("dec", "Z", "X", nn.Linear(2, 3))
        .relate("x·enc·dec·enc·dec", "x", weight=5)
    )
    report = d.check()
    assert list(report.terms) == ["x·enc·dec·enc·dec ≤ x"]
    assert ("X", "x·enc·dec·enc·dec", "Tensor[float32, (2, 3)]") in report.rows
