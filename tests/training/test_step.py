"""What a training step does besides a hand-written loop's work: moving batches, checking gradients."""

from typing import NamedTuple

import pytest
import torch
from torch import nn

import learning_diagrams as ld
from learning_diagrams.training.nonfinite import GradientCheck, Guard
from learning_diagrams.torch.data import to_device

QUIET = dict(progress=False, log_dir=False)


class Pair(NamedTuple):
    x: torch.Tensor
    y: torch.Tensor


def test_a_batch_already_on_the_device_is_returned_itself():
    cpu = torch.device("cpu")
    batch = {"N": (torch.ones(2), [torch.zeros(1), "label"]), "M": Pair(torch.ones(1), torch.ones(1))}
    assert to_device(batch, cpu) is batch


def test_a_batch_elsewhere_is_rebuilt_with_every_tensor_moved():
    meta = torch.device("meta")
    batch = {"N": (torch.ones(2), [torch.zeros(1), "label"]), "M": Pair(torch.ones(1), torch.ones(1))}
    moved = to_device(batch, meta)
    assert moved is not batch and set(moved) == {"N", "M"}
    (a, (b, label)), pair = moved["N"], moved["M"]
    assert a.device == b.device == meta and label == "label"
    assert type(pair) is Pair and pair.x.device == meta
    assert batch["N"][0].device.type == "cpu"  # the batch given is left as it was


def test_a_gradient_flag_stays_set_until_reset_and_parameters_without_gradients_are_passed_over():
    w, unused = nn.Parameter(torch.zeros(2)), nn.Parameter(torch.zeros(3))
    check = GradientCheck([w, unused])
    w.grad = torch.tensor([1.0, float("nan")])
    assert [float(f) for f in check()] == [1.0]  # unused has no gradient: not a failure
    w.grad = torch.tensor([1.0, 2.0])
    assert [float(f) for f in check()] == [1.0]
    check.reset()
    assert [float(f) for f in check()] == [0.0]
    unused.grad = torch.tensor([0.0, float("inf"), 0.0])
    assert [float(f) for f in check()] == [1.0]


def test_gradients_of_two_dtypes_are_each_checked():
    single, double = nn.Parameter(torch.zeros(2)), nn.Parameter(torch.zeros(2, dtype=torch.float64))
    check = GradientCheck([single, double])
    single.grad, double.grad = torch.ones(2), torch.ones(2, dtype=torch.float64)
    assert [float(f) for f in check()] == [0.0]
    double.grad = torch.tensor([1.0, float("inf")], dtype=torch.float64)  # the second kernel call's
    assert [float(f) for f in check()] == [1.0]
    assert single.grad.tolist() == [1.0, 1.0] and double.grad.tolist() == [1.0, float("inf")]  # left as they were


def test_a_total_given_joins_the_check_and_keeps_its_value():
    w = nn.Parameter(torch.zeros(2))
    check = GradientCheck([w])
    w.grad = torch.ones(2)
    total = torch.tensor(2.5)
    assert [float(f) for f in check(total)] == [0.0] and total.item() == 2.5
    assert [float(f) for f in check(torch.tensor(float("nan")))] == [1.0]  # finite gradients, a NaN total
    check.reset()
    # A total of another dtype than the gradients' is checked on its own, its flag added.
    assert [float(f) for f in check(torch.tensor(float("inf"), dtype=torch.float64))] == [0.0, 1.0]
    assert [float(f) for f in check(torch.tensor(1.0, dtype=torch.float64))] == [0.0, 0.0]


def test_a_guard_reading_covered_flags_finds_a_nan_total_and_names_it():
    guard = Guard("raise", max_skips=1, device=torch.device("cpu"))
    w = nn.Parameter(torch.zeros(2))
    w.grad = torch.ones(2)
    check, total = GradientCheck([w]), torch.tensor(float("nan"))
    values, finite = guard.check(total, {}, check(total), want=False, boundary=True, params=[w], covered=True)
    assert (values, finite) == ({}, False) and guard.what == "the total loss is nan"
    check.reset()
    values, finite = guard.check(
        torch.tensor(1.0), {}, check(torch.tensor(1.0)), want=False, boundary=True, params=[w], covered=True
    )
    assert (values, finite) == ({}, True) and guard.what == ""


def test_a_guard_told_its_device_later_remembers_that_devices_random_state(monkeypatch):
    # The Lightning adapter makes its guard before it knows the device, and sets it when training starts.
    guard = Guard("raise", max_skips=1, device=torch.device("cpu"))
    assert len(guard.remember()) == 1
    cuda_state = torch.zeros(8, dtype=torch.uint8)
    monkeypatch.setattr(torch.cuda, "get_rng_state", lambda device=None: cuda_state)
    guard.device = torch.device("cuda", 0)
    cpu_state, device_state = guard.remember()
    assert torch.equal(cpu_state, torch.get_rng_state()) and device_state is cuda_state


class NanGradientAt(nn.Module):
    """A linear map whose output's gradient is NaN at call ``at`` (the loss itself stays finite)."""

    def __init__(self, at: int):
        super().__init__()
        self.linear, self.at, self.calls = nn.Linear(3, 1), at, 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        out = self.linear(x)
        if self.calls == self.at:
            out.register_hook(lambda g: torch.full_like(g, float("nan")))
        return out


def test_a_step_skipped_for_its_gradient_leaves_the_next_steps_to_train():
    torch.manual_seed(0)
    x = torch.randn(4, 3)
    f = NanGradientAt(at=2)
    d = (
        ld.Diagram()
        .space("N", data=[(x, x.sum(dim=1, keepdim=True))] * 4)
        .space("X")
        .space("Y", loss=ld.losses.mse)
        .map("x", "N", "X", lambda b: b[0])
        .map("y", "N", "Y", lambda b: b[1])
        .map("f", "X", "Y", f)
        .relate("x·f", "y")
    )
    weights = []

    class Weights:  # a logger: called after each step, it keeps the weights as they are then
        def log(self, record):
            weights.append(f.linear.weight.detach().clone())

    with pytest.warns(RuntimeWarning, match=r"^1 optimiser step\(s\) were skipped .* step 2: a gradient holds nan"):
        history = ld.fit(d, epochs=1, on_nonfinite="skip", log_every=1, lr=0.1, loggers=[Weights()], **QUIET)
    assert all(bool(torch.isfinite(v).all()) for v in (f.linear.weight, f.linear.bias))
    assert len(history.records) == 4
    # step 2 was skipped; steps 3 and 4, whose gradients are finite, each moved the weights
    assert torch.equal(weights[0], weights[1])
    assert not torch.equal(weights[1], weights[2]) and not torch.equal(weights[2], weights[3])
