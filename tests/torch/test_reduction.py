"""The paper's loss, selectable: ``reduction="sum"`` estimates ℓ(f, g) = Σ_{x∈X} d(f x, g x);
``reduction="mean"`` (the default) is the batch mean."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import learning_diagrams as ld
from learning_diagrams.core.errors import OptionError, TypeMismatchError
from learning_diagrams.torch.losses import FORMULAS, PER_SAMPLE


def task(name, data, *, f=None, loss=ld.losses.mse):
    """N → Y twice: a model f and the labels y, related f ≤ y."""
    return (
        ld.Diagram()
        .space(f"N{name}", data=data)
        .space(f"Y{name}", loss=loss)
        .map(f"f{name}", f"N{name}", f"Y{name}", f if f is not None else (lambda b: b[0]))
        .map(f"y{name}", f"N{name}", f"Y{name}", lambda b: b[1])
        .relate(f"f{name}", f"y{name}")
    )


class OnInputs(nn.Module):
    """A linear model applied to the inputs of a ``(inputs, labels)`` batch."""

    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(3, 3)

    def forward(self, batch):
        return self.linear(batch[0])


def samples(n, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 3, generator=g), torch.randn(n, 3, generator=g)


# --- per-sample forms ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "loss, a, b",
    [
        (ld.losses.mse, torch.randn(5, 2, 3), torch.randn(5, 2, 3)),
        (ld.losses.l1, torch.randn(5, 4), torch.randn(5, 4)),
        (ld.losses.cosine, torch.randn(5, 2, 3), torch.randn(5, 2, 3)),
        (ld.losses.cross_entropy, torch.randn(5, 4), torch.randint(4, (5,))),
        (ld.losses.cross_entropy, torch.randn(5, 4, 2, 2), torch.randint(4, (5, 2, 2))),
        (ld.losses.cross_entropy, torch.randn(5, 4), torch.softmax(torch.randn(5, 4), -1)),
        (ld.losses.kl_div, torch.randn(5, 4), torch.randn(5, 4)),
        (ld.losses.KLDivergence(temperature=3.0), torch.randn(5, 4), torch.randn(5, 4)),
        (ld.losses.binary_cross_entropy, torch.rand(5, 3), torch.rand(5, 3)),
        (ld.losses.binary_cross_entropy_with_logits, torch.randn(5, 3), torch.rand(5, 3)),
    ],
)
def test_every_library_loss_is_the_batch_mean_of_its_per_sample_form(loss, a, b):
    per_sample = loss.per_sample(a, b)
    assert per_sample.shape == (5,)
    assert torch.allclose(per_sample.mean(), loss(a, b), atol=1e-6)


def test_every_library_formula_has_a_per_sample_formula():
    assert set(PER_SAMPLE) == set(FORMULAS)
    assert all(loss.per_sample is not None for loss in ld.losses.LIBRARY.values())


def test_a_users_loss_gives_its_per_sample_form_and_a_wrapper_lends_it():
    def rows(a, b):
        return ((a - b) ** 2).sum(dim=1)

    mine = ld.Loss(lambda a, b: rows(a, b).mean(), symmetric=True, per_sample=rows)
    assert mine.per_sample is rows and ld.Loss(mine, symmetric=True).per_sample is rows
    assert ld.Loss(ld.losses.mse, symmetric=True).per_sample == ld.losses.mse.per_sample
    with pytest.raises(TypeMismatchError, match=r"per_sample=...\) must be a callable"):
        ld.Loss(rows, symmetric=True, per_sample=3)


# --- compiling with reduction="sum" ----------------------------------------------------------


@pytest.mark.parametrize(
    "data, batches",
    [
        (samples(100), 1),  # a tensor tuple: the whole data set, one batch
        ([tuple(t[i : i + 25] for t in samples(100)) for i in range(0, 100, 25)], 4),  # a list of batches
        (DataLoader(TensorDataset(*samples(100)), batch_size=25), 4),  # a loader over a sized dataset
        (TensorDataset(*samples(100)), 4),  # a bare dataset (batches of 32: 32, 32, 32, 4)
    ],
)
def test_sum_scales_each_batch_to_the_data_set_and_a_pass_estimates_the_papers_sum(data, batches):
    x, y = samples(100)
    exact = ((x - y) ** 2).mean(dim=1).sum()  # Σ_{x∈X} d(f x, g x), d the per-sample mse
    loss = task("", data).compile(reduction="sum")
    values = [loss().terms["f ≤ y"] for _ in range(batches)]
    if batches == 1:
        assert torch.allclose(values[0], exact)
    for value, (bx, by) in zip(values, _batches(data)):
        assert torch.allclose(value, ((bx - by) ** 2).mean(dim=1).sum() * 100 / len(bx))
    mean = task("", data).compile()
    first = next(iter(_batches(data)))
    assert torch.allclose(mean().terms["f ≤ y"], ((first[0] - first[1]) ** 2).mean())


def _batches(data):
    if isinstance(data, tuple):
        return [data]
    if isinstance(data, TensorDataset):
        return list(DataLoader(data, batch_size=32))
    return list(data)


def test_glued_tasks_weigh_by_the_size_of_their_data_sets_under_sum_only():
    big, small = samples(100, seed=1), samples(10, seed=1)
    small = (big[0][:10], big[1][:10])  # the same per-sample errors, ten times fewer of them
    d = ld.coproduct(task("A", big), task("B", small)).apex
    by_mean, by_sum = d.compile()().terms, d.compile(reduction="sum")().terms
    per_sample = ((big[0][:10] - big[1][:10]) ** 2).mean(dim=1)
    big_sum = ((big[0] - big[1]) ** 2).mean(dim=1).sum()
    assert torch.allclose(by_sum["fA ≤ yA"], big_sum) and torch.allclose(by_sum["fB ≤ yB"], per_sample.sum())
    ratio = by_sum["fA ≤ yA"] / by_sum["fB ≤ yB"]
    assert torch.allclose(ratio, big_sum / per_sample.sum())  # about 10: the paper's ratio
    assert torch.allclose(by_mean["fA ≤ yA"] / by_mean["fB ≤ yB"], big_sum / 100 / per_sample.mean())


def test_contractivity_of_theorem_4_3_holds_under_sum_and_fails_under_mean():
    # X has a duplicated sample; p: X → X' merges it (surjective, 1-Lipschitz), q = id.
    values = torch.tensor([[1.0], [0.0], [0.0]]), torch.zeros(3, 1)
    merged = values[0][:2], values[1][:2]
    ell = {r: task("", values).compile(reduction=r)().total for r in ("sum", "mean")}
    ell_merged = {r: task("", merged).compile(reduction=r)().total for r in ("sum", "mean")}
    assert ell["sum"] >= ell_merged["sum"]  # ℓ(f, g) ≥ ℓ(f', g'): 1 ≥ 1
    assert ell["mean"] < ell_merged["mean"]  # 1/3 < 1/2: the mean is not contractive


@given(st.integers(1, 6), st.data())
@settings(max_examples=40, deadline=None)
def test_contractivity_under_sum_for_random_quotients_of_a_data_set(m, data):
    # X' = m samples; X = a surjection onto them (each sample at least once, some repeated).
    quotient = samples(m, seed=data.draw(st.integers(0, 1000)))
    extra = data.draw(st.lists(st.integers(0, m - 1), max_size=6))
    index = torch.tensor(list(range(m)) + extra)
    full = tuple(t[index] for t in quotient)
    f = OnInputs()
    ell = task("", full, f=f).compile(reduction="sum")().total
    ell_quotient = task("", quotient, f=f).compile(reduction="sum")().total
    assert ell >= ell_quotient - 1e-5


def test_sum_needs_the_per_sample_form_of_every_loss():
    d = task("", samples(4), loss=ld.Loss(lambda a, b: ((a - b) ** 2).mean(), symmetric=True, name="mine"))
    with pytest.raises(OptionError, match=r"reduction='sum' sums per-sample losses, but the loss mine at vertex 'Y'"):
        d.compile(reduction="sum")
    with pytest.raises(OptionError, match=r"reduction='median' is not one of 'mean', 'sum'"):
        d.compile(reduction="median")
    bad = ld.Loss(lambda a, b: ((a - b) ** 2).mean(), symmetric=True, name="bad", per_sample=lambda a, b: (a - b) ** 2)
    with pytest.raises(TypeMismatchError, match=r"per-sample form of the loss bad at vertex 'Y' returned"):
        task("", samples(4), loss=bad).compile(reduction="sum")()


def test_a_data_set_of_unknown_size_is_summed_unscaled_with_a_warning():
    class Batches:  # re-iterable, but no length
        def __iter__(self):
            return iter([samples(4)])

    with pytest.warns(UserWarning, match=r"the size of the data set at vertex 'N' is unknown \(a Batches\)"):
        loss = task("", Batches()).compile(reduction="sum")
    x, y = samples(4)
    assert torch.allclose(loss().terms["f ≤ y"], ((x - y) ** 2).mean(dim=1).sum())
    assert "reduction=sum" in repr(loss)
