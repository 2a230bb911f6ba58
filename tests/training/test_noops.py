"""No silent no-ops: a regime with nothing to train, a module hidden in a function, empty data, bad counts."""

import warnings

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import learning_diagrams as ld
from learning_diagrams.core.errors import OptionError, TypeMismatchError

QUIET = dict(progress=False, log_dir=False)
HIDDEN = r"edge 'f' is a plain function that reaches module {} \(a Linear, 4 parameters\), which the compiled loss"


def data(n=4):
    x = torch.randn(8, 3)
    return [(x, x.sum(dim=1, keepdim=True))] * n


def regression(f, source=None, trainable=True):
    return (
        ld.Diagram()
        .space("N", data=data() if source is None else source)
        .space("X")
        .space("Y", loss=ld.losses.mse)
        .map("x", "N", "X", lambda b: b[0])
        .map("y", "N", "Y", lambda b: b[1])
        .map("f", "X", "Y", f, trainable=trainable)
        .relate("x·f", "y")
    )


# ---------------------------------------------------------------------------- nothing to train


def test_a_lambda_calling_a_model_is_refused_by_fit_naming_the_hidden_module():
    student = nn.Linear(3, 1)
    before = [p.detach().clone() for p in student.parameters()]
    with pytest.raises(OptionError, match="^the diagram has nothing to train") as refused:
        ld.fit(regression(lambda v: student(v)), epochs=2, **QUIET)
    message = str(refused.value)
    assert "'x' (a plain function), 'f' (a plain function that calls module 'student'), 'y'" in message
    assert "A plain function (a lambda, a def) hides the parameters of any module it calls" in message
    assert "write the edge in the text syntax (ld.parse)" in message
    assert all(torch.equal(a, b) for a, b in zip(before, student.parameters()))


def test_a_lambda_calling_a_model_is_warned_about_when_compiled():
    student = nn.Linear(3, 1)
    with pytest.warns(UserWarning, match=HIDDEN.format("'student'")) as warned:
        regression(lambda v: student(v)).compile()
    assert "Give the module itself to the edge (d.map('f', src, tgt, module)" in str(warned[0].message)


def test_the_text_syntax_registers_the_model_its_lambda_calls():
    student = nn.Linear(3, 1)
    text = """
        N => [data]
        X => Tensor
        Y => mse
        x: N -> X => b -> b[0]
        y: N -> Y => b -> b[1]
        f: X -> Y => v -> student(v)
        x.f <= y
    """
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        d = ld.parse(text, {"data": data(), "student": student})
        history = ld.fit(d, **QUIET)
    assert len(history) == 4


def test_a_regime_of_frozen_maps_is_refused_naming_them():
    with pytest.raises(OptionError, match=r"'f' \(frozen\).*unfreeze a frozen map with d.unfreeze"):
        ld.fit(regression(nn.Linear(3, 1), trainable=False), **QUIET)


def test_parameters_that_all_have_requires_grad_off_are_refused():
    model = nn.Linear(3, 1).requires_grad_(False)
    with pytest.raises(OptionError, match=r"'f' \(a Linear whose parameters all have requires_grad=False\)"):
        ld.fit(regression(model), **QUIET)


def test_a_later_stage_with_nothing_to_train_is_refused_before_the_first_stage_trains():
    first, second = nn.Linear(3, 1), nn.Linear(3, 1)
    before = [p.detach().clone() for p in first.parameters()]
    stages = [ld.Stage(regression(first), name="warm-up"), ld.Stage(regression(second, trainable=False), name="tune")]
    with pytest.raises(OptionError, match="^stage 'tune' has nothing to train"):
        ld.fit(stages, **QUIET)
    assert all(torch.equal(a, b) for a, b in zip(before, first.parameters()))


# ---------------------------------------------------------------------------- empty data and bad counts


@pytest.mark.parametrize(
    "empty",
    [[], torch.zeros(0, 3), DataLoader(TensorDataset(torch.zeros(0, 3)), batch_size=2)],
    ids=["list", "tensor", "loader"],
)
def test_empty_data_is_an_error_naming_its_vertex(empty):
    d = regression(nn.Linear(3, 1)).space("M", data=empty).space("Z", loss=ld.losses.mse)
    d.map("m", "M", "Z", nn.Identity()).map("n", "M", "Z", nn.Linear(3, 3)).relate("m", "n")
    with pytest.raises(TypeMismatchError, match="^the data of vertex 'M' has no batches$"):
        ld.fit(d, **QUIET)


@pytest.mark.parametrize(
    "option, value",
    [("epochs", -1), ("max_steps", 0), ("max_steps", -3), ("log_every", 0), ("checkpoint_every", 0), ("keep", 0)],
)
def test_counts_that_cannot_be_are_refused(option, value):
    with pytest.raises(OptionError, match=rf"^{option} must be"):
        ld.fit(regression(nn.Linear(3, 1)), **{option: value}, **QUIET)


def test_a_stage_with_negative_epochs_is_refused():
    with pytest.raises(OptionError, match=r"^stage 'a': epochs must be an int of at least 0, got -1"):
        ld.fit([ld.Stage(regression(nn.Linear(3, 1)), epochs=-1, name="a")], **QUIET)


def test_max_steps_one_takes_one_step_and_a_resumed_run_that_reached_it_takes_none(tmp_path):
    model = nn.Linear(3, 1)
    history = ld.fit(regression(model), epochs=3, max_steps=1, checkpoint_dir=tmp_path, **QUIET)
    assert [r["step"] for r in history.records] == [1]
    after = [p.detach().clone() for p in model.parameters()]
    again = ld.fit(regression(model), epochs=3, max_steps=1, checkpoint_dir=tmp_path, resume=tmp_path, **QUIET)
    assert len(again) == 0
    assert all(torch.equal(a, b) for a, b in zip(after, model.parameters()))
