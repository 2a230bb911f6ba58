"""The compiled loss and non-finite numbers: ``check_finite``, ``explain_nonfinite``, and modules hidden in functions."""

import functools
import math
import warnings

import pytest
import torch
from torch import nn

import learning_diagrams as ld

TERM = "x·f ≤ y"
HIDDEN = r"edge 'f' is a plain function that reaches module {} \(a Linear, 4 parameters\), which the compiled loss"


def batches(n=3, nan_at=None):
    g = torch.Generator().manual_seed(0)
    out = []
    for step in range(1, n + 1):
        x = torch.randn(4, 3, generator=g)
        if step == nan_at:
            x[0, 0] = math.nan
        out.append((x, x.sum(dim=1, keepdim=True)))
    return out


def regression(f, data=None, loss=ld.losses.mse):
    return (
        ld.Diagram()
        .space("N", data=batches() if data is None else data)
        .space("X")
        .space("Y", loss=loss)
        .map("x", "N", "X", lambda b: b[0])
        .map("y", "N", "Y", lambda b: b[1])
        .map("f", "X", "Y", f)
        .relate("x·f", "y")
    )


class Broken(nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(3, 1)

    def forward(self, v):
        return self.linear(v) * math.nan


GLOBAL_MODEL = nn.Linear(3, 1)


def through_a_global(v):
    return GLOBAL_MODEL(v)


def with_a_default(model):
    return lambda v, m=model: m(v)


class Holder:
    def __init__(self):
        self.model = nn.Linear(3, 1)

    def run(self, v):
        return self.model(v)


# ---------------------------------------------------------------------------- the compiled loss


def test_a_compiled_loss_with_check_finite_names_the_term_and_the_first_non_finite_edge():
    d = regression(Broken())
    with pytest.raises(ld.NonFiniteError, match=rf"^term {TERM!r} is nan: edge 'f' \(X → Y, path x·f\) is the first"):
        d.compile(check_finite=True)()
    total, _ = d.compile()()  # without the check, a NaN is returned as PyTorch would
    assert math.isnan(total.item())


def test_check_finite_names_the_batch_and_the_loss_too():
    nan_batch = regression(nn.Linear(3, 1), batches(nan_at=1))
    with pytest.raises(ld.NonFiniteError, match="the batch at vertex 'N' already holds non-finite numbers"):
        ld.torch.compile(nan_batch, check_finite=True)()
    inf = ld.losses.Loss(lambda p, t: (p - t).pow(2).mean() * math.inf, name="inf", symmetric=False)
    with pytest.raises(ld.NonFiniteError, match="every value along its paths is finite; the loss inf at vertex 'Y'"):
        ld.CompiledLoss.from_diagram(regression(nn.Linear(3, 1), loss=inf), check_finite=True)()


def test_check_finite_can_be_switched_on_a_compiled_loss():
    loss = regression(Broken()).compile()
    loss.check_finite = True
    with pytest.raises(ld.NonFiniteError):
        loss()


def test_explain_nonfinite_is_none_when_all_is_finite():
    loss = regression(nn.Linear(3, 1)).compile()
    assert loss.explain_nonfinite({"N": batches()[0]}) is None


def test_a_loss_whose_gradient_is_not_finite_on_finite_values_is_named():
    root = ld.losses.Loss(lambda p, t: (p - p.detach()).abs().sqrt().mean(), name="root", symmetric=False)
    loss = regression(nn.Linear(3, 1), loss=root).compile()
    assert loss.explain_nonfinite({"N": batches()[0]}) == (
        f"the gradient of term {TERM!r} is not finite: the loss root at vertex 'Y' gives a non-finite gradient "
        "on finite values"
    )


# ---------------------------------------------------------------------------- modules hidden in functions


@pytest.mark.parametrize(
    "make, name",
    [
        (lambda: through_a_global, "'GLOBAL_MODEL'"),
        (lambda: with_a_default(nn.Linear(3, 1)), "default 0"),
        (lambda: nn.Linear(3, 1).forward, "self"),
        (lambda: functools.partial(nn.Linear(3, 1)), "the function of the partial"),
        (lambda: Holder().run, "self.model"),
    ],
    ids=["global", "default", "bound-method", "partial", "attribute-of-self"],
)
def test_every_way_a_plain_function_can_hold_a_model_is_warned_about(make, name):
    with pytest.warns(UserWarning, match=HIDDEN.format(name.replace(".", r"\."))):
        regression(make()).compile()


def test_no_warning_for_modules_the_loss_registers_or_that_have_no_parameters():
    model, relu = nn.Linear(3, 1), nn.ReLU()
    d = regression(model).map("g", "X", "Y", lambda v: model(relu(v))).relate("x·g", "y")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        d.compile()
