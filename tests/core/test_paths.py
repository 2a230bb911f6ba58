from itertools import combinations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import learning_diagrams as ld
from learning_diagrams.core.errors import OptionError, PathExplosionError
from learning_diagrams.core.graph import Graph, Path
from learning_diagrams.core.paths import PathMatrix, enumerate_paths, parallel_paths

from strategies import brute_force_walks, dfs_paths, graphs


@given(graphs(), st.one_of(st.none(), st.integers(0, 4)))
@settings(max_examples=150, deadline=None)
def test_enumeration_equals_depth_first_oracle(g, max_length):
    matrix = enumerate_paths(g, max_length=max_length)
    oracle = dfs_paths(g, max_length)
    assert {k: set(v) for k, v in matrix.items()} == oracle
    assert all(len(set(v)) == len(v) for _, v in matrix.items())  # no path listed twice


@given(graphs(max_edges=5))
@settings(max_examples=150, deadline=None)
def test_parallel_pairs_equal_oracle_pairs(g):
    pairs = {frozenset(pq) for pq in parallel_paths(enumerate_paths(g))}
    oracle = {frozenset(pq) for paths in dfs_paths(g).values() for pq in combinations(paths, 2)}
    assert pairs == oracle


@given(graphs(), st.data())
@settings(max_examples=100, deadline=None)
def test_rows_are_the_rows_of_the_full_matrix(g, data):
    rows = data.draw(st.lists(st.sampled_from(g.vertices), unique=True))
    full, some = enumerate_paths(g), enumerate_paths(g, rows)
    assert some == PathMatrix(g.vertices, {k: v for k, v in full.items() if k[0] in rows})


@given(graphs(max_edges=4))
@settings(max_examples=60, deadline=None)
def test_matrix_product_is_associative_with_identity_units(g):
    A, I = PathMatrix.adjacency(g), PathMatrix.identity(g)
    assert (A @ A) @ A == A @ (A @ A)
    assert I @ A == A == A @ I
    assert (A + I) @ A == A @ A + A


def test_each_entry_is_ordered_shortest_first_then_by_edge_declaration():
    g = Graph()
    for v in "AB":
        g.add_vertex(v)
    g.add_edge("z", "A", "B")
    g.add_edge("loop", "A", "A")
    g.add_edge("a", "A", "B")
    assert [str(p) for p in enumerate_paths(g)["A", "B"]] == ["z", "a", "loop·z", "loop·a"]


def test_autoencoder_cycle_pairs_the_round_trip_with_the_encoding_edge():
    g = Graph()
    for v in "NXZ":
        g.add_vertex(v)
    g.add_edge("x", "N", "X"), g.add_edge("enc", "X", "Z"), g.add_edge("dec", "Z", "X")
    assert [(str(p), str(q)) for p, q in parallel_paths(enumerate_paths(g, ["N"]))] == [("x", "x·enc·dec")]


def test_self_loop_is_used_at_most_once():
    g = Graph()
    g.add_vertex("A")
    g.add_edge("f", "A", "A")
    assert list(enumerate_paths(g)["A", "A"]) == [Path.id("A"), Path("A", "A", ("f",))]


def test_explosion_names_the_count_and_the_busiest_entry():
    g = Graph()
    for v in "ABCDEF":
        g.add_vertex(v)
    for i, (s, t) in enumerate(zip("ABCDE", "BCDEF")):
        for j in range(4):
            g.add_edge(f"e{i}_{j}", s, t)  # 4**5 = 1024 paths from A to F
    with pytest.raises(
        PathExplosionError,
        match=r"found 794 paths, more than max_paths=500, by length 4; most of them \(256\) from A to E",
    ):
        enumerate_paths(g, max_paths=500)
    assert len(enumerate_paths(g, max_paths=2000)["A", "F"]) == 4**5


# --- walks: the paper's I + A + … + A^k --------------------------------------------------------


@given(graphs(max_edges=5), st.integers(0, 3))
@settings(max_examples=150, deadline=None)
def test_walks_equal_the_brute_force_oracle(g, k):
    matrix = enumerate_paths(g, cycles="walks", max_length=k)
    assert {key: set(v) for key, v in matrix.items()} == brute_force_walks(g, k)
    assert all(len(set(v)) == len(v) for _, v in matrix.items())


@given(graphs(max_edges=5), st.integers(0, 4))
@settings(max_examples=100, deadline=None)
def test_simple_paths_are_the_walks_that_use_no_edge_twice(g, k):
    simple = enumerate_paths(g, max_length=k)
    assert {key: set(v) for key, v in simple.items()} == brute_force_walks(g, k, simple=True)


@given(graphs(max_edges=4))
@settings(max_examples=60, deadline=None)
def test_the_walk_product_is_associative_with_identity_units(g):
    A, I = PathMatrix.adjacency(g), PathMatrix.identity(g)

    def mul(a, b):
        return a.times(b, simple=False)

    assert mul(mul(A, A), A) == mul(A, mul(A, A))
    assert mul(I, A) == A == mul(A, I)


def test_walks_follow_a_cycle_as_often_as_the_bound_allows():
    g = Graph()
    for v in "NX":
        g.add_vertex(v)
    g.add_edge("x", "N", "X"), g.add_edge("a", "X", "X")
    assert [str(p) for p in enumerate_paths(g, cycles="walks", max_length=3)["N", "X"]] == ["x", "x·a", "x·a·a"]
    assert [str(p) for p in enumerate_paths(g, max_length=3)["N", "X"]] == ["x", "x·a"]  # simple: a once


@pytest.mark.parametrize(
    "options, message",
    [
        ({"cycles": "walks"}, r"cycles='walks' needs max_length=k"),
        ({"cycles": "trails"}, r"cycles='trails' is not one of 'simple', 'walks'"),
        ({"max_length": -1}, r"max_length must be None or an int of at least 0, got -1"),
    ],
)
def test_the_cycle_policy_is_checked_where_a_diagram_is_made(options, message):
    with pytest.raises(OptionError, match=message):
        ld.Diagram(**options)
    with pytest.raises(OptionError, match=message):
        enumerate_paths(Graph(), **options)


def test_a_walks_diagram_compiles_the_pairs_of_its_walks():
    d = (
        ld.Diagram(cycles="walks", max_length=3)
        .space("N", indexing=True)
        .space("X", loss=ld.losses.mse)
        .map("x", "N", "X", abs)
        .map("a", "X", "X", abs)
    )
    assert [p.name for p in d.parallel_pairs()] == ["x ≤ x·a", "x ≤ x·a·a", "x·a ≤ x·a·a"]
    assert [p.name for p in d.relate("a", "id(X)").parallel_pairs()] == ["x·a ≤ x", "x·a·a ≤ x", "x·a·a ≤ x·a"]
