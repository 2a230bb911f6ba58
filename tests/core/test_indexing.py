"""Indexing vertices are structure (the paper's functor β to Ind): declared with or without data,
data given later, and no edge ends at one."""

import pytest
import torch
from torch import nn

import learning_diagrams as ld
from learning_diagrams.core.errors import ConflictError, NoBatchError, UnknownNameError


def square(**space):
    """N → X → Y with labels N → Y; ``space`` are N's options."""
    return (
        ld.Diagram()
        .space("N", **space)
        .space("X")
        .space("Y", loss=ld.losses.mse)
        .map("x", "N", "X", lambda b: b[0])
        .map("y", "N", "Y", lambda b: b[1])
        .map("f", "X", "Y", nn.Linear(3, 1))
        .relate("x·f", "y")
    )


def batch(n=4):
    return torch.randn(n, 3), torch.randn(n, 1)


def test_an_indexing_vertex_without_data_lists_its_pairs_but_compiles_only_with_data():
    d = square(indexing=True)
    assert d.indexing == ("N",) and d.spaces["N"].data is None
    assert [p.name for p in d.parallel_pairs()] == ["x·f ≤ y"]
    assert "N (indexing)" in d.summary()
    with pytest.raises(NoBatchError, match=r"no data at indexing vertex 'N', where batches are drawn; give it data"):
        d.compile()
    with pytest.raises(NoBatchError, match=r"no data at indexing vertex 'N'.*or give the dry run a batch: d.check\("):
        d.check()
    loss = d.compile(data={"N": [batch()]})
    assert list(loss().terms) == ["x·f ≤ y"] and d.spaces["N"].data is None  # the diagram is not changed
    assert list(d.check({"N": batch()}).terms) == ["x·f ≤ y"]


def test_data_implies_indexing_and_compile_data_names_only_indexing_vertices():
    d = square(data=[batch()])
    assert d.spaces["N"].indexing and d.spaces["N"].is_indexing
    with pytest.raises(UnknownNameError, match=r"data was given for 'X', which is not an indexing vertex"):
        d.compile(data={"X": [batch()]})


def test_an_edge_into_an_indexing_vertex_is_refused_citing_ind():
    d = square(indexing=True)
    with pytest.raises(ConflictError, match=r"edge 'back' \(Y → N\) ends at indexing vertex 'N'.*paper's Ind"):
        d.map("back", "Y", "N", abs)
    d.space("M", data=[batch()])
    with pytest.raises(ConflictError, match=r"edge 'copy' \(M → N\).*would send an edge between two indexing"):
        d.map("copy", "M", "N", abs)
    with pytest.raises(ConflictError, match=r"edge 'loop' \(N → N\) ends at indexing vertex 'N'"):
        d.map("loop", "N", "N", abs)
    assert "back" not in d.maps and "copy" not in d.maps and "loop" not in d.maps


def test_data_set_on_a_vertex_with_incoming_edges_is_refused_when_pairs_are_derived():
    d = square()
    d.spaces["N"].data = [batch()]
    assert d.indexing == ("N",)
    d.spaces["X"].data = [batch()]  # set by hand: edge x ends at X
    with pytest.raises(ConflictError, match=r"edge 'x' \(N → X\) ends at indexing vertex 'X'"):
        d.parallel_pairs()


def test_assign_data_keeps_working_and_refuses_a_vertex_with_incoming_edges():
    d = square()
    source = ld.Diagram().space("S").space("T").map("k", "S", "T", None)
    data = [batch()]
    ld.assign_data(d, source, {"S": data}, initial={"k": "x"})
    assert d.indexing == ("N",) and list(d.compile()().terms) == ["x·f ≤ y"]
    with pytest.raises(ConflictError, match=r"edge 'x' \(N → X\) ends at indexing vertex 'X'.*cannot take data"):
        ld.assign_data(d, source, {"T": data}, initial={"k": "x"})
    assert d.spaces["X"].data is None  # nothing changed
    ld.assign_data(d, source, {"S": None}, initial={"k": "x"})
    assert d.indexing == ()  # data removed: N was not declared indexing
