"""Non-finite numbers stop a run, naming the step, the term and the edge; finite checkpoints survive.

The six scenarios each break a small regression at a known step, with checkpoints
written as it goes, and check what the error says and that the newest checkpoint
is finite and loads. Then "skip" and "warn" (the compiled loss's own check: tests/torch/test_finite.py).
"""

import math

import pytest
import torch
from torch import nn

import learning_diagrams as ld
from learning_diagrams.training.checkpoint import latest_checkpoint, load_checkpoint

QUIET = dict(progress=False, log_dir=False)
TERM = "x·f ≤ y"


def batches(n=10, nan_at=None):
    """``n`` batches (x, y) of a linear target; the batch of step ``nan_at`` holds a NaN."""
    g = torch.Generator().manual_seed(0)
    out = []
    for step in range(1, n + 1):
        x = torch.randn(4, 3, generator=g)
        if step == nan_at:
            x[0, 0] = math.nan
        out.append((x, x.sum(dim=1, keepdim=True)))
    return out


def regression(f, data, loss=ld.losses.mse):
    return (
        ld.Diagram()
        .space("N", data=data)
        .space("X")
        .space("Y", loss=loss)
        .map("x", "N", "X", lambda b: b[0])
        .map("y", "N", "Y", lambda b: b[1])
        .map("f", "X", "Y", f)
        .relate("x·f", "y")
    )


class BreaksAt(nn.Module):
    """A linear map whose output is NaN from its ``at``-th call on (as a diverged model stays diverged)."""

    def __init__(self, at):
        super().__init__()
        torch.manual_seed(0)
        self.linear, self.at, self.calls = nn.Linear(3, 1), at, 0

    def forward(self, v):
        self.calls += 1
        out = self.linear(v)
        return out * math.nan if self.calls >= self.at else out


class NaNGradient(torch.autograd.Function):
    """The identity, whose gradient is NaN."""

    @staticmethod
    def forward(ctx, v):
        return v.clone()

    @staticmethod
    def backward(ctx, grad):
        return grad * math.nan


def assert_finite_checkpoint(directory, step, module):
    """The newest checkpoint is ``step``'s, loads into ``module``, and holds finite weights."""
    folder = latest_checkpoint(directory)
    assert folder is not None and folder.name == f"step-{step:09d}"
    fresh = {k: torch.full_like(v, 7.0) for k, v in module.state_dict().items()}
    module.load_state_dict(fresh)
    load_checkpoint(folder, module=module)
    assert all(torch.isfinite(v).all() for v in module.state_dict().values())
    assert not any(torch.equal(module.state_dict()[k], fresh[k]) for k in fresh)


def models_of(diagram):
    """The module the trainer checkpoints for a one-stage diagram."""
    return nn.ModuleDict({f"s0_{name}": m.fn for name, m in diagram.maps.items() if isinstance(m.fn, nn.Module)})


# ---------------------------------------------------------------------------- the six scenarios


def test_a_map_returning_nan_at_step_7_stops_the_run_there_naming_term_and_edge(tmp_path):
    d = regression(BreaksAt(7), batches(5))  # epochs of 5 steps: a checkpoint at step 5
    with pytest.raises(ld.NonFiniteError, match=r"^step 7: the total loss is nan") as caught:
        ld.fit(d, epochs=3, checkpoint_dir=tmp_path, **QUIET)
    message = str(caught.value)
    assert f"term {TERM!r} is nan" in message
    assert "edge 'f' (X → Y, path x·f) is the first along its paths whose output is not finite" in message
    assert_finite_checkpoint(tmp_path, 5, models_of(d))


def test_sgd_with_a_huge_learning_rate_stops_at_the_first_step_that_overflows(tmp_path):
    torch.manual_seed(0)
    d = regression(nn.Linear(3, 1), batches())
    with pytest.raises(ld.NonFiniteError, match=r"^step \d+: ") as caught:
        ld.fit(d, epochs=5, optimizer=torch.optim.SGD, lr=1e6, checkpoint_dir=tmp_path, checkpoint_every=1, **QUIET)
    message = str(caught.value)
    step = int(message.split()[1].rstrip(":"))
    assert 1 < step < 50
    assert f"term {TERM!r} is inf" in message or "a gradient holds" in message
    assert "'f'" in message or "the loss mse at vertex 'Y'" in message
    assert "a lower lr or clip_grad_norm" in message
    assert_finite_checkpoint(tmp_path, step - 1, models_of(d))


def test_a_nan_batch_is_named_as_the_batch_of_its_vertex(tmp_path):
    torch.manual_seed(0)
    d = regression(nn.Linear(3, 1), batches(nan_at=5))
    with pytest.raises(ld.NonFiniteError, match=r"^step 5: the total loss is nan") as caught:
        ld.fit(d, epochs=1, checkpoint_dir=tmp_path, checkpoint_every=2, **QUIET)
    assert f"term {TERM!r} is nan: the batch at vertex 'N' already holds non-finite numbers" in str(caught.value)
    assert_finite_checkpoint(tmp_path, 4, models_of(d))


def test_a_loss_returning_inf_is_named_as_the_loss_on_finite_values(tmp_path):
    calls = 0

    def blows_up(prediction, target):  # inf from its 5th call on
        nonlocal calls
        calls += 1
        return (prediction - target).pow(2).mean() + (math.inf if calls >= 5 else 0.0)

    torch.manual_seed(0)
    d = regression(nn.Linear(3, 1), batches(), loss=ld.losses.Loss(blows_up, name="blows_up", symmetric=False))
    with pytest.raises(ld.NonFiniteError, match=r"^step 5: the total loss is inf") as caught:
        ld.fit(d, epochs=1, checkpoint_dir=tmp_path, checkpoint_every=1, **QUIET)
    assert (
        f"term {TERM!r} is inf: every value along its paths is finite; the loss blows_up at vertex 'Y' gave inf"
        in str(caught.value)
    )
    assert_finite_checkpoint(tmp_path, 4, models_of(d))


def test_a_nan_gradient_on_finite_values_is_traced_to_the_edge_that_makes_it(tmp_path):
    calls = 0

    def tail(v):  # the identity, with a NaN gradient from its 3rd call on
        nonlocal calls
        calls += 1
        return NaNGradient.apply(v) if calls >= 3 else v

    torch.manual_seed(0)
    d = ld.Diagram().space("N", data=batches()).space("X").space("H").space("Y", loss=ld.losses.mse)
    d.map("x", "N", "X", lambda b: b[0]).map("y", "N", "Y", lambda b: b[1])
    d.map("f", "X", "H", nn.Linear(3, 1)).map("g", "H", "Y", tail).relate("x·f·g", "y")
    with pytest.raises(ld.NonFiniteError, match=r"^step 3: a gradient holds nan") as caught:
        ld.fit(d, epochs=1, checkpoint_dir=tmp_path, checkpoint_every=1, **QUIET)
    assert (
        "the gradient of term 'x·f·g ≤ y' is not finite: going back from the loss, it turns non-finite at "
        "edge 'g' (H → Y, path x·f·g), whose gradient at its output is finite" in str(caught.value)
    )
    assert_finite_checkpoint(tmp_path, 2, models_of(d))


@pytest.mark.parametrize("mode", ["raise", "warn"])
def test_a_checkpointing_run_with_keep_3_never_deletes_its_last_finite_checkpoint(tmp_path, mode):
    d = regression(BreaksAt(7), batches())
    options = dict(epochs=1, checkpoint_dir=tmp_path, checkpoint_every=1, keep=3, on_nonfinite=mode, **QUIET)
    if mode == "raise":
        with pytest.raises(ld.NonFiniteError, match=rf"^step 7: the total loss is nan; term {TERM!r} is nan"):
            ld.fit(d, **options)
    else:  # the run goes on with NaN weights; every later checkpoint is refused, saying so
        with pytest.warns(RuntimeWarning) as warned:
            ld.fit(d, **options)
        messages = [str(w.message) for w in warned]
        assert messages[0].startswith(f"step 7: the total loss is nan; term {TERM!r} is nan: edge 'f'")
        refusals = [m for m in messages if m.startswith("the checkpoint of step")]
        assert sorted({int(m.split()[4]) for m in refusals}) == [7, 8, 9, 10]  # step 10 twice: step and epoch end
        assert all("the weights of 'f' are not finite" in m and "step-000000006" in m for m in refusals)
        assert "step 8: the total loss is nan (not finite since step 7); going on" in messages
    assert sorted(p.name for p in tmp_path.glob("step-*")) == [f"step-{s:09d}" for s in (4, 5, 6)]
    assert_finite_checkpoint(tmp_path, 6, models_of(d))


# ---------------------------------------------------------------------------- skip and warn


def test_skip_leaves_the_weights_of_a_non_finite_step_untouched_and_says_so_at_the_end(tmp_path):
    torch.manual_seed(0)
    model = nn.Linear(3, 1)
    d = regression(model, batches(nan_at=3))
    with pytest.warns(RuntimeWarning, match=r"^1 optimiser step\(s\) were skipped") as warned:
        history = ld.fit(
            d, epochs=1, on_nonfinite="skip", checkpoint_dir=tmp_path, checkpoint_every=1, keep=None, **QUIET
        )
    assert len(warned) == 1
    assert "the first at step 3: the total loss is nan" in str(warned[0].message)
    assert "the batch at vertex 'N'" in str(warned[0].message)
    after = {}
    for step in (2, 3, 4):
        module = models_of(d)
        load_checkpoint(tmp_path / f"step-{step:09d}", module=module)
        after[step] = {k: v.clone() for k, v in module.state_dict().items()}
    assert all(torch.equal(after[2][k], after[3][k]) for k in after[2])  # step 3 was skipped
    assert not all(torch.equal(after[3][k], after[4][k]) for k in after[3])  # step 4 was not
    assert all(torch.isfinite(p).all() for p in model.parameters())
    assert math.isnan(history.records[2]["values"]["total"])  # the skipped step is logged as it was


def test_skip_raises_after_max_skips_consecutive_skipped_steps():
    d = regression(BreaksAt(2), batches())
    with pytest.raises(ld.NonFiniteError, match=r"^3 consecutive optimiser steps were skipped \(max_skips=3\)") as e:
        ld.fit(d, epochs=1, on_nonfinite="skip", max_skips=3, **QUIET)
    assert f"the last at step 4: the total loss is nan; term {TERM!r} is nan: edge 'f'" in str(e.value)


def test_skip_under_accumulation_skips_the_optimiser_step_the_bad_batch_feeds(tmp_path):
    torch.manual_seed(0)
    d = regression(nn.Linear(3, 1), batches(nan_at=3))
    with pytest.warns(RuntimeWarning, match=r"^1 optimiser step\(s\) were skipped"):
        ld.fit(
            d,
            epochs=1,
            accumulate=2,
            on_nonfinite="skip",
            checkpoint_dir=tmp_path,
            checkpoint_every=2,
            keep=None,
            **QUIET,
        )
    after = {}
    for step in (2, 4, 6):
        module = models_of(d)
        load_checkpoint(tmp_path / f"step-{step:09d}", module=module)
        after[step] = {k: v.clone() for k, v in module.state_dict().items()}
    assert all(torch.equal(after[2][k], after[4][k]) for k in after[2])  # steps 3-4 fed a skipped step
    assert not all(torch.equal(after[4][k], after[6][k]) for k in after[4])


def test_accumulated_steps_not_logged_are_checked_at_the_optimiser_step():
    d = regression(BreaksAt(3), batches())
    with pytest.raises(ld.NonFiniteError, match=r"^step 4: the total loss is nan"):
        ld.fit(d, epochs=1, accumulate=2, log_every=2, **QUIET)  # broken from step 3 on: step 4 is too
    d = regression(nn.Linear(3, 1), batches(nan_at=3))
    earlier = r"^step 4: the total loss of a step since the last optimiser step was not finite; that step's batch"
    with pytest.raises(ld.NonFiniteError, match=earlier):
        ld.fit(d, epochs=1, accumulate=2, log_every=2, **QUIET)


def test_a_finite_run_is_unchanged_by_the_checks_and_warns_nothing():
    def run(mode):
        torch.manual_seed(0)
        model = nn.Linear(3, 1)
        history = ld.fit(regression(model, batches()), epochs=2, on_nonfinite=mode, **QUIET)
        return [p.detach().clone() for p in model.parameters()], history.rows()

    (raised, rows), (skipped, skip_rows) = run("raise"), run("skip")
    assert all(torch.equal(a, b) for a, b in zip(raised, skipped)) and rows == skip_rows


def test_bad_on_nonfinite_and_max_skips_are_refused():
    with pytest.raises(ld.DiagramError, match="on_nonfinite 'ignore' is not one of 'raise', 'skip', 'warn'"):
        ld.Trainer(on_nonfinite="ignore")
    with pytest.raises(ValueError, match="max_skips must be an int of at least 1, got 0"):
        ld.Trainer(max_skips=0)
