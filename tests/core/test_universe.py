"""A universe kept bounded answers as the same universe listed: membership, contexts and the path guard."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import learning_diagrams as ld
from learning_diagrams.core.errors import PathExplosionError
from learning_diagrams.core.graph import Graph
from learning_diagrams.core.paths import enumerate_paths
from learning_diagrams.core.universe import Bounded, Enumerated, count_paths, universe

from strategies import brute_force_walks, graphs


@st.composite
def bounded_cases(draw):
    """A graph read as walks within ``max_length``, or as an acyclic graph's paths (edges kept forward only)."""
    g = draw(graphs(max_vertices=4, max_edges=5))
    walks = draw(st.booleans())
    if not walks:
        order = {v: i for i, v in enumerate(g.vertices)}
        forward = Graph()
        for v in g.vertices:
            forward.add_vertex(v)
        for e, (s, t) in g.ends.items():
            if order[s] < order[t]:
                forward.add_edge(e, s, t)
        g = forward
    max_length = draw(st.integers(0, 3)) if walks else draw(st.one_of(st.none(), st.integers(0, 3)))
    tried = [p for paths in brute_force_walks(g, 4).values() for p in sorted(paths, key=str)]
    extra = draw(st.lists(st.sampled_from(tried), max_size=3)) if tried else []
    return g, "walks" if walks else "simple", max_length, extra, tried


@given(bounded_cases())
@settings(max_examples=150, deadline=None)
def test_a_bounded_universe_holds_and_places_the_paths_of_the_listed_one(case):
    g, cycles, max_length, extra, tried = case
    lazy = universe(g, extra, max_length=max_length, cycles=cycles)
    listed = Enumerated(g, [*enumerate_paths(g, max_length=max_length, cycles=cycles), *extra])
    assert isinstance(lazy, Bounded)
    assert count_paths(g, max_length, 10**6) == len(enumerate_paths(g, max_length=max_length, cycles=cycles))
    for s in tried:
        assert (s in lazy) == (s in listed), s
        assert sorted(lazy.contexts(s), key=str) == sorted(listed.contexts(s), key=str), s


def test_a_graph_with_a_cycle_read_as_simple_paths_is_listed():
    g = ld.Diagram().space("A").space("B").map("f", "A", "B", abs).map("g", "B", "A", abs).graph
    assert isinstance(universe(g, []), Enumerated)
    assert isinstance(universe(g, [], cycles="walks", max_length=2), Bounded)


def doubled_chain(n):
    """A0 → A1 → … → An with two edges a_i, b_i each step: 2^(j-i) paths from A_i to A_j."""
    d = ld.Diagram().space("A0", indexing=True)
    for i in range(1, n + 1):
        d.space(f"A{i}", loss=ld.losses.mse)
        d.map(f"a{i}", f"A{i - 1}", f"A{i}", abs).map(f"b{i}", f"A{i - 1}", f"A{i}", abs)
    return d.relate("a1", "b1")


def test_the_path_guard_holds_however_the_paths_are_kept():
    d = doubled_chain(14)  # 2^0·15 + 2^1·14 + … + 2^14·1 paths, far more than 10,000
    with pytest.raises(PathExplosionError, match=r"more than max_paths=10000"):
        d.parallel_pairs()
    d.max_paths = 10**6  # allowed, and never listed: a1 ≤ b1 whiskered by each of the 2^14 - 1 paths after it
    pairs = d.parallel_pairs()
    assert len(pairs) == 2**14 - 1
    assert all(p.first[0] == "a1" and p.second == ("b1",) + p.first[1:] for p in pairs)
