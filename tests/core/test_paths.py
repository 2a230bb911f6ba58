from itertools import combinations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import learning_diagrams as ld
from learning_diagrams.core.errors import OptionError, PathExplosionError
from learning_diagrams.core.graph import Graph, Path
from learning_diagrams.core.paths import PathMatrix, edge_order, enumerate_paths, parallel_paths, path_bound

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


def matrix_powers(g, rows=None, max_length=None, simple=True):
    """The oracle for order: ``I + A + A² + …`` by the matrix product as it stands, each entry sorted after."""
    A, power = PathMatrix.adjacency(g), PathMatrix.identity(g, rows)
    total, length = power, 0
    while power and (max_length is None or length < max_length):
        power, length = power.times(A, simple=simple), length + 1
        total = total + power
    return total.sorted(edge_order(g))


@given(graphs(max_edges=5), st.data())
@settings(max_examples=150, deadline=None)
def test_enumeration_lists_the_entries_and_their_paths_in_the_order_of_the_matrix_powers(g, data):
    rows = data.draw(st.one_of(st.none(), st.lists(st.sampled_from(g.vertices), unique=True)))
    walks = data.draw(st.booleans())
    k = data.draw(st.integers(0, 3) if walks else st.one_of(st.none(), st.integers(0, 4)))
    found = enumerate_paths(g, rows, max_length=k, cycles="walks" if walks else "simple")
    assert list(found.items()) == list(matrix_powers(g, rows, k, simple=not walks).items())


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


# --- the explosion guard: linear growth passes at any size, multiplying paths stop ---------------


def shared_backbone(heads):
    """``N →x→ X →h_i→ Y_i`` with labels ``N →y_i→ Y_i`` and ``x·h_i ≤ y_i``: 2·heads + 1 edges."""
    d = ld.Diagram().space("N", indexing=True).space("X").map("x", "N", "X", abs)
    for i in range(heads):
        d.space(f"Y{i}", loss=ld.losses.mse).map(f"h{i}", "X", f"Y{i}", abs).map(f"y{i}", "N", f"Y{i}", abs)
        d.relate(f"x·h{i}", f"y{i}")
    return d


def separate_heads(heads):
    """``N →x_i→ X_i →h_i→ Y_i`` with labels ``N →y_i→ Y_i`` and ``x_i·h_i ≤ y_i``: 3·heads edges."""
    d = ld.Diagram().space("N", indexing=True)
    for i in range(heads):
        d.space(f"X{i}").space(f"Y{i}", loss=ld.losses.mse)
        d.map(f"x{i}", "N", f"X{i}", abs).map(f"h{i}", f"X{i}", f"Y{i}", abs).map(f"y{i}", "N", f"Y{i}", abs)
        d.relate(f"x{i}·h{i}", f"y{i}")
    return d


def doubled_chain(links, graph=None, prefix="A"):
    """A chain of ``links`` doubled edges: ``2**links`` paths from its first vertex to its last."""
    g = Graph() if graph is None else graph
    for i in range(links + 1):
        g.add_vertex(f"{prefix}{i}")
    for i in range(links):
        g.add_edge(f"{prefix.lower()}{i}_0", f"{prefix}{i}", f"{prefix}{i + 1}")
        g.add_edge(f"{prefix.lower()}{i}_1", f"{prefix}{i}", f"{prefix}{i + 1}")
    return g


@pytest.mark.parametrize(
    "shape, heads, first, last",
    [
        (shared_backbone, 5_000, "x·h0 ≤ y0", "x·h4999 ≤ y4999"),  # 10,001 edges, 20,003 paths
        (separate_heads, 3_334, "x0·h0 ≤ y0", "x3333·h3333 ≤ y3333"),  # 10,002 edges, 20,005 paths
    ],
)
def test_the_guard_lets_a_diagram_whose_paths_grow_linearly_compile_at_the_defaults(shape, heads, first, last):
    d = shape(heads)
    assert len(d.graph.edges) > 10_000 and len(d.paths()) > 2 * d.max_paths  # twice what the old guard allowed
    pairs = d.parallel_pairs()
    assert len(pairs) == heads and (pairs[0].name, pairs[-1].name) == (first, last)


def test_the_guard_still_stops_paths_that_double_at_each_step_at_the_defaults():
    g = doubled_chain(30)  # 2**30 paths from A0 to A30: (31 - k)·2**k of length k
    with pytest.raises(
        PathExplosionError,
        match=r"^path enumeration found 12255 paths, more than max_paths=10000, by length 8; most of them "
        r"\(256\) from A0 to A8\. Bound it with max_length=\.\.\., raise max_paths=\.\.\., or remove cycles$",
    ):
        enumerate_paths(g)
    d = ld.Diagram()
    for v in g.vertices:
        d.space(v, indexing=v == "A0", loss=ld.losses.mse if v == "A30" else None)
    for e in g.edges:
        d.map(e, g.src(e), g.tgt(e), abs)
    with pytest.raises(PathExplosionError, match=r"found 16383 paths, .* by length 13; most of them \(8192\) from A0"):
        d.parallel_pairs()  # without relations, only the rows of indexing vertices: 2**14 - 1 paths


def test_on_a_large_graph_the_guard_scales_with_its_size_and_says_so():
    d = shared_backbone(5_000)
    g = doubled_chain(40, d.graph)  # hung from nothing: 2**40 paths beside 20,003 linear ones
    size = len(g.vertices) + len(g.edges)
    assert size == 15_124 and path_bound(g) == 151_240
    with pytest.raises(
        PathExplosionError,
        match=r"^path enumeration found 265720 paths, more than the 151240 that max_paths=10000 per 1000 vertices "
        r"and edges allows this graph of 15124, by length 12; most of them \(4096\) from A0 to A12\. Bound it",
    ):
        enumerate_paths(g)


def test_past_the_guard_the_paths_of_the_last_length_are_counted_not_built():
    g = Graph()
    g.add_vertex("A")
    for i in range(300):
        g.add_edge(f"e{i}", "A", "A")  # 300 loops: 90,000 walks of 2 edges, 9,699 of them built
    with pytest.raises(
        PathExplosionError, match=r"found 90301 paths, more than max_paths=10000, by length 2; most of them \(90301\)"
    ):
        enumerate_paths(g, cycles="walks", max_length=3)
