"""ld.jax.fit: it trains, logs every term, evaluates, refuses NaN, and resumes bit for bit."""

from __future__ import annotations

import json

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import learning_diagrams as ld
from learning_diagrams.core.errors import CheckpointError, NonFiniteError, OptionError


class Linear(eqx.Module):
    w: jax.Array
    b: jax.Array

    def __call__(self, x):
        return x @ self.w + self.b


def data(seed: int = 0, batches: int = 4):
    rng = np.random.default_rng(seed)
    true = rng.normal(size=(3, 2)).astype(np.float32)
    out = []
    for _ in range(batches):
        x = rng.normal(size=(8, 3)).astype(np.float32)
        out.append((x, x @ true))
    return out


def regression(train, model=None, **options):
    model = model if model is not None else Linear(jnp.zeros((3, 2)), jnp.zeros(2))
    return (
        ld.Diagram(**options)
        .space("N", data=train)
        .space("X")
        .space("Y", loss=ld.losses.mse)
        .map("x", "N", "X", lambda b: b[0])
        .map("y", "N", "Y", lambda b: b[1])
        .map("f", "X", "Y", model)
        .relate("x·f", "y", weight=0.5)
    )


QUIET = dict(progress=False, log_dir=False)


def test_it_trains_and_logs_every_term_by_name(tmp_path):
    trained = ld.jax.fit(
        regression(data()), epochs=30, optimizer=optax.adam(0.05), log_dir=tmp_path / "run", progress=False
    )
    steps, losses = trained.history.series()[0]["x·f ≤ y"]
    assert steps[0] == 1 and losses[-1] < losses[0] / 20
    assert isinstance(trained.modules["f"], Linear) and trained.modules["f"].w is trained.params["f"].w
    lines = (tmp_path / "run" / "log.jsonl").read_text().splitlines()
    assert len(lines) == 30 * 4 and set(json.loads(lines[0])["values"]) == {"total", "x·f ≤ y"}
    assert (tmp_path / "run" / "log.csv").exists()


def test_held_out_data_is_evaluated_each_epoch():
    trained = ld.jax.fit(regression(data()), epochs=2, eval_data={"N": data(seed=1)}, **QUIET)
    evals = [r for r in trained.history.records if r["split"] == "eval"]
    assert [r["epoch"] for r in evals] == [0, 1] and set(evals[0]["values"]) == {"total", "x·f ≤ y"}


def test_a_resumed_run_ends_bit_for_bit_as_the_unbroken_one(tmp_path):
    optimiser = optax.adam(0.01)
    whole = ld.jax.fit(regression(data()), epochs=3, optimizer=optimiser, checkpoint_dir=tmp_path / "a", **QUIET)
    ld.jax.fit(regression(data()), epochs=1, optimizer=optimiser, checkpoint_dir=tmp_path / "b", **QUIET)
    resumed = ld.jax.fit(
        regression(data()), epochs=3, optimizer=optimiser, checkpoint_dir=tmp_path / "b", resume=tmp_path / "b", **QUIET
    )
    for a, b in zip(jax.tree_util.tree_leaves(whole.params), jax.tree_util.tree_leaves(resumed.params)):
        assert np.array_equal(np.asarray(a), np.asarray(b))
    tail = [r["values"] for r in whole.history.records[4:]]
    assert tail == [r["values"] for r in resumed.history.records]
    assert (tmp_path / "b" / "latest").read_text().strip() == "step-000000012"


def test_resuming_from_a_different_optimiser_is_refused(tmp_path):
    ld.jax.fit(regression(data()), epochs=1, optimizer=optax.sgd(0.1), checkpoint_dir=tmp_path, **QUIET)
    with pytest.raises(CheckpointError, match="same diagram and optimiser"):
        ld.jax.fit(regression(data()), epochs=2, optimizer=optax.adam(0.1), resume=tmp_path, **QUIET)


class NanAt(eqx.Module):
    """A linear map whose output is NaN on the batch whose first input is ``at``."""

    inner: Linear
    at: float = eqx.field(static=True)

    def __call__(self, x):
        y = self.inner(x)
        return jnp.where(x[0, 0] == self.at, jnp.nan, y)


def test_a_nan_step_is_refused_unapplied_naming_it():
    train = data()
    model = NanAt(Linear(jnp.zeros((3, 2)), jnp.zeros(2)), at=float(train[2][0][0, 0]))
    with pytest.raises(NonFiniteError, match=r"step 3: the total loss or a gradient is not finite"):
        ld.jax.fit(regression(train, model), epochs=1, optimizer=optax.sgd(0.1), log_every=4, **QUIET)


def test_skip_goes_on_without_the_nan_step_and_says_so():
    train = data()
    model = NanAt(Linear(jnp.zeros((3, 2)), jnp.zeros(2)), at=float(train[2][0][0, 0]))
    with pytest.warns(RuntimeWarning, match=r"2 step\(s\) were skipped.*the first at step 3"):
        trained = ld.jax.fit(regression(train, model), epochs=2, optimizer=optax.sgd(0.1), on_nonfinite="skip", **QUIET)
    assert all(np.isfinite(np.asarray(leaf)).all() for leaf in jax.tree_util.tree_leaves(trained.params))


def test_a_diagram_with_nothing_to_train_and_bad_options_are_refused():
    d = regression(data())
    d.freeze("f")
    with pytest.raises(OptionError, match="no trainable array"):
        ld.jax.fit(d, **QUIET)
    with pytest.raises(OptionError, match="on_nonfinite"):
        ld.jax.fit(regression(data()), on_nonfinite="ignore", **QUIET)


def test_a_shuffling_dataloader_is_seeded_by_the_run_and_resumes_bit_for_bit(tmp_path):
    import torch

    x = np.random.default_rng(3).normal(size=(40, 3)).astype(np.float32)
    dataset = torch.utils.data.TensorDataset(torch.from_numpy(x), torch.from_numpy(x[:, :2] * 2))

    def loader():  # its own generator unseeded: the run's seed decides the order
        return torch.utils.data.DataLoader(dataset, batch_size=8, shuffle=True)

    options = dict(optimizer=optax.adam(0.01), seed=7, **QUIET)
    whole = ld.jax.fit(regression(loader()), epochs=3, **options)
    again = ld.jax.fit(regression(loader()), epochs=3, **options)
    assert [r["values"] for r in whole.history.records] == [r["values"] for r in again.history.records]
    ld.jax.fit(regression(loader()), epochs=1, checkpoint_dir=tmp_path, **options)
    resumed = ld.jax.fit(regression(loader()), epochs=3, resume=tmp_path, **options)
    assert [r["values"] for r in whole.history.records[5:]] == [r["values"] for r in resumed.history.records]
    other = ld.jax.fit(regression(loader()), epochs=1, optimizer=optax.adam(0.01), seed=8, **QUIET)
    assert [r["values"] for r in other.history.records] != [r["values"] for r in whole.history.records[:5]]


def test_held_out_terms_and_accuracy_equal_the_pytorch_evaluation():
    import torch
    from torch import nn

    from learning_diagrams.jax.metrics import evaluate

    torch.manual_seed(0)
    linear = nn.Linear(3, 4)
    x, y = torch.randn(50, 3), torch.randint(4, (50,))
    held_out = [(x[:32], y[:32]), (x[32:], y[32:])]

    def classifier(model, data):
        return (
            ld.Diagram()
            .space("N", data=data)
            .space("X")
            .space("Y", loss=ld.losses.cross_entropy)
            .map("x", "N", "X", lambda b: b[0])
            .map("y", "N", "Y", lambda b: b[1])
            .map("f", "X", "Y", model)
            .relate("x·f", "y")
        )

    twin = Linear(jnp.asarray(linear.weight.detach().numpy().T), jnp.asarray(linear.bias.detach().numpy()))
    jax_data = [(a.numpy(), b.numpy()) for a, b in held_out]
    ours = ld.jax.compile(classifier(twin, jax_data))
    got = evaluate(ours, ours.params, {"N": jax_data}, {"Y": "accuracy"})
    expected = ld.training.evaluate(classifier(linear, held_out).compile(), {"N": held_out}, {"Y": "accuracy"})
    assert set(got) == set(expected) == {"total", "x·f ≤ y", "accuracy[x·f ≤ y]"}
    assert all(abs(got[k] - expected[k]) < 1e-6 for k in got)
    trained = ld.jax.fit(classifier(twin, jax_data), eval_data={"N": jax_data}, metrics={"Y": "accuracy"}, **QUIET)
    assert "accuracy[x·f ≤ y]" in trained.history.records[-1]["values"]
    with pytest.raises(ld.errors.UnknownNameError, match="unknown metric 'top9'"):
        ld.jax.fit(classifier(twin, jax_data), eval_data={"N": jax_data}, metrics={"Y": "top9"}, **QUIET)


def test_two_data_vertices_follow_the_data_policy_and_the_bar_shows_the_terms(capsys):
    first, second = data(seed=1, batches=4), data(seed=2, batches=2)
    model = Linear(jnp.zeros((3, 2)), jnp.zeros(2))
    d = (
        ld.Diagram()
        .space("A", data=first)
        .space("B", data=second)
        .space("X")
        .space("Y", loss=ld.losses.mse)
        .map("xa", "A", "X", lambda b: b[0])
        .map("ya", "A", "Y", lambda b: b[1])
        .map("xb", "B", "X", lambda b: b[0])
        .map("yb", "B", "Y", lambda b: b[1])
        .map("f", "X", "Y", model)
        .relate("xa·f", "ya")
        .relate("xb·f", "yb")
    )
    shortest = ld.jax.fit(d, epochs=2, policy="min_size", log_dir=False, progress=True)
    assert [r["step"] for r in shortest.history.records] == [1, 2, 3, 4]
    assert set(shortest.history.records[0]["values"]) == {"total", "xa·f ≤ ya", "xb·f ≤ yb"}
    assert "train 2/2" in capsys.readouterr().err
    longest = ld.jax.fit(d, epochs=1, policy="max_size", **QUIET)  # B runs out: its pair sits out
    assert [set(r["values"]) for r in longest.history.records][2:] == [{"total", "xa·f ≤ ya"}] * 2
