"""``ld.fit`` passes the paper's loss on (``reduction=``, also per stage) and gives indexing vertices
their data (``data=``); held-out terms under ``"sum"`` are exact sums."""

import pytest
import torch
from torch import nn

import learning_diagrams as ld
from learning_diagrams.core.errors import NoBatchError, OptionError, UnknownNameError


class OnInputs(nn.Module):
    """A linear model applied to the inputs of a ``(inputs, labels)`` batch."""

    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(3, 3)

    def forward(self, batch):
        return self.linear(batch[0])


def task(data=None, f=None, **space):
    """N → Y twice: a model f (a linear one by default) and the labels y, related f ≤ y."""
    return (
        ld.Diagram()
        .space("N", data=data, **space)
        .space("Y", loss=ld.losses.mse)
        .map("f", "N", "Y", f if f is not None else OnInputs())
        .map("y", "N", "Y", lambda b: b[1])
        .relate("f", "y")
    )


def samples(n, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 3, generator=g), torch.randn(n, 3, generator=g)


def test_fit_and_stage_pass_the_reduction_on():
    torch.manual_seed(0)
    d = task(samples(20))
    summed = ld.fit(d, epochs=1, reduction="sum", log_dir=False, progress=False, lr=1e-3)
    mean = ld.fit(ld.Stage(d, reduction="mean"), epochs=1, reduction="sum", log_dir=False, progress=False, lr=0)
    assert summed.records[0]["values"]["f ≤ y"] > 10 * mean.records[0]["values"]["f ≤ y"]  # 20 samples, summed
    with pytest.raises(OptionError, match=r"reduction='total' is not one of"):
        ld.fit(d, reduction="total", log_dir=False, progress=False)
    with pytest.raises(OptionError, match=r"stage 1: reduction='total'"):
        ld.fit(ld.Stage(d, reduction="total"), log_dir=False, progress=False)


def test_held_out_terms_under_sum_are_the_exact_sum_over_the_held_out_data():
    x, y = samples(50, seed=3)
    held_out = [(x[i : i + 16], y[i : i + 16]) for i in range(0, 50, 16)]
    loss = task(samples(10), f=lambda b: b[0]).compile(reduction="sum")
    values = ld.Trainer(log_dir=False, progress=False, device="cpu").evaluate(loss, {"N": held_out})
    assert values["f ≤ y"] == pytest.approx(float(((x - y) ** 2).mean(dim=1).sum()), rel=1e-5)
    mean = ld.Trainer(log_dir=False, progress=False, device="cpu").evaluate(
        task(samples(10), f=lambda b: b[0]), {"N": held_out}
    )
    assert mean["f ≤ y"] == pytest.approx(float(((x - y) ** 2).mean()), rel=1e-5)


def test_fit_gives_data_to_indexing_vertices_declared_without_it():
    torch.manual_seed(0)
    d = task(indexing=True)
    history = ld.fit(d, data={"N": [samples(8)]}, epochs=2, lr=0.05, log_dir=False, progress=False)
    assert len(history) == 2 and d.spaces["N"].data is None
    with pytest.raises(NoBatchError, match=r"no data at indexing vertex 'N'"):
        ld.fit(d, epochs=1, log_dir=False, progress=False)
    with pytest.raises(UnknownNameError, match=r"data was given for 'Y', which is not an indexing vertex"):
        ld.fit(d, data={"N": [samples(4)], "Y": [samples(4)]}, epochs=1, log_dir=False, progress=False)
