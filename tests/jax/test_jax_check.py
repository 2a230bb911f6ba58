"""The JAX back end's dry run and data sources, and the core's actions on a diagram of Equinox modules."""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch

import learning_diagrams as ld
from learning_diagrams.core.errors import NoBatchError, TypeMismatchError
from learning_diagrams.jax import DataSource
from learning_diagrams.jax.data import as_arrays


class Linear(eqx.Module):
    w: jax.Array

    def __call__(self, x):
        return x @ self.w


def regression(model, data=None):
    return (
        ld.Diagram()
        .space("N", data=data if data is not None else [(np.ones((4, 3), np.float32), np.zeros((4, 2), np.float32))])
        .space("X")
        .space("Y", loss=ld.losses.mse, type=ld.TensorType(None, 2))
        .map("x", "N", "X", lambda b: b[0])
        .map("y", "N", "Y", lambda b: b[1])
        .map("f", "X", "Y", model)
        .relate("x·f", "y")
    )


def test_check_reports_every_vertex_as_a_jax_array_and_every_term():
    report = regression(Linear(jnp.ones((3, 2)))).check(backend="jax")
    assert ("Y", "x·f", "Array[float32, (4, 2)]") in report.rows
    assert report.terms == {"x·f ≤ y": pytest.approx(9.0)}


def test_check_names_the_edge_whose_value_breaks_its_vertex_type():
    with pytest.raises(TypeMismatchError, match=r"edge 'f' \(X → Y\) gave a Array\[float32, \(4, 5\)\]"):
        regression(Linear(jnp.ones((3, 5)))).check(backend="jax")


def test_check_needs_a_batch_for_a_vertex_without_data():
    d = ld.Diagram().space("N", indexing=True).space("Y").map("f", "N", "Y", lambda b: b)
    with pytest.raises(NoBatchError, match=r"backend='jax'"):
        ld.jax.check(d)
    assert ld.jax.check(d, {"N": jnp.ones(2)}).rows[-1] == ("Y", "f", "Array[float32, (2,)]")


def test_a_data_source_refuses_a_one_shot_iterator_and_converts_torch_batches():
    with pytest.raises(TypeMismatchError, match="'N'"):
        DataSource(iter([np.ones(2)]), "N")
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.arange(6.0)), batch_size=4)
    first = next(iter(DataSource(loader, "N")))
    assert isinstance(first[0], np.ndarray) and first[0].tolist() == [0.0, 1.0, 2.0, 3.0]
    assert DataSource(loader, "N").size is None and len(DataSource(loader, "N")) == 2
    assert as_arrays(("label", jnp.ones(1)))[0] == "label"


def test_freezing_and_swapping_act_on_a_jax_diagram_as_on_any():
    d = regression(Linear(jnp.ones((3, 2))))
    assert list(ld.jax.compile(d).params) == ["f"]
    d.freeze("f")
    assert ld.jax.compile(d).params == {}
    d.unfreeze("f")
    new = Linear(jnp.zeros((3, 2)))
    edge = ld.Diagram().space("A").space("B").map("model", "A", "B", None)
    ld.structure.homsearch.swap(d, edge, {"model": new}, where={"model": lambda m: isinstance(m.fn, Linear)})
    loss = ld.jax.compile(d)
    assert loss.params["f"].w.sum() == 0
    batch = (jnp.ones((4, 3)), jnp.zeros((4, 2)))
    assert float(loss(loss.params, {"N": batch}).total) == 0.0
