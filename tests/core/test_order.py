from itertools import product

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from learning_diagrams.core.errors import NotParallelError
from learning_diagrams.core.graph import Graph, Path
from learning_diagrams.core.order import Preorder
from learning_diagrams.core.paths import enumerate_paths, parallel_paths

from strategies import graphs


@st.composite
def preorders(draw, walks=False):
    g = draw(graphs(max_vertices=3, max_edges=4 if not walks else 3))
    universe = enumerate_paths(g, cycles="walks", max_length=3) if walks else enumerate_paths(g)
    candidates = list(parallel_paths(universe))
    if candidates:
        picked = draw(st.lists(st.sampled_from(candidates), max_size=4))
        relations = [(p, q) if draw(st.booleans()) else (q, p) for p, q in picked]
    else:
        relations = []
    return g, list(universe), relations


def factorisations(g, x):
    along = g.vertices_along(x)
    for i in range(len(x) + 1):
        for j in range(i, len(x) + 1):
            yield x.edges[:i], Path(along[i], along[j], x.edges[i:j]), x.edges[j:]


def oracle_closure(g, universe, relations):
    """The smallest relation on the universe closed under the three rules, by naive iteration."""
    members = set(universe)
    closure = set(relations) | {(p, p) for p in universe}
    while True:
        new = {(p, r) for (p, q), (q2, r) in product(closure, closure) if q == q2}
        for p, q in closure:
            for x in universe:
                for a, s, b in factorisations(g, x):
                    y = Path(x.source, x.target, a + q.edges + b)
                    if s == p and y in members:
                        new.add((x, y))
        if new <= closure:
            return closure
        closure |= new


@given(preorders())
@settings(max_examples=120, deadline=None)
def test_preorder_is_reflexive_transitive_and_whiskered(case):
    g, universe, relations = case
    leq = Preorder(g, universe, relations)
    members = set(universe)
    related = set(leq.pairs())
    assert all(leq(p, p) for p in universe)
    assert all(leq(p, q) for p, q in relations)
    for (p, q), (q2, r) in product(related, related):
        if q == q2:
            assert leq(p, r)
    for p, q in related:
        for x in universe:
            for a, s, b in factorisations(g, x):
                y = Path(x.source, x.target, a + q.edges + b)
                if s == p and y in members:
                    assert leq(x, y), f"{p} ≤ {q} but not {x} ≤ {y}"


@given(preorders())
@settings(max_examples=80, deadline=None)
def test_preorder_is_the_smallest_such_relation(case):
    g, universe, relations = case
    leq = Preorder(g, universe, relations)
    oracle = oracle_closure(g, universe, relations)
    assert set(leq.pairs()) == {(p, q) for p, q in oracle if p != q}


@given(preorders(walks=True))
@settings(max_examples=60, deadline=None)
def test_preorder_on_walks_is_the_smallest_such_relation(case):
    g, universe, relations = case
    leq = Preorder(g, universe, relations)
    assert set(leq.pairs()) == {(p, q) for p, q in oracle_closure(g, universe, relations) if p != q}


@given(preorders(walks=True))
@settings(max_examples=40, deadline=None)
def test_whiskerings_are_every_context_of_a_relation_in_the_universe(case):
    g, universe, relations = case
    leq = Preorder(g, universe, relations)
    members = set(universe)
    for p, q in relations:
        expected = {
            (x, Path(x.source, x.target, a + q.edges + b))
            for x in members
            for a, s, b in factorisations(g, x)
            if s == p and Path(x.source, x.target, a + q.edges + b) in members
        }
        assert set(leq.whiskerings(p, q)) == expected
        alone = leq.restricted([(p, q)])
        assert set(alone.pairs()) == {(x, y) for x, y in oracle_closure(g, universe, [(p, q)]) if x != y}


def test_only_parallel_paths_are_related():
    g = Graph()
    for v in "ABC":
        g.add_vertex(v)
    g.add_edge("f", "A", "B")
    g.add_edge("g", "A", "C")
    with pytest.raises(NotParallelError, match=r"relation f ≤ g .* f goes A → B but g goes A → C"):
        Preorder(g, [], [(g.path("f"), g.path("g"))])


def test_identity_relations_whisker_into_cycles():
    g = Graph()
    for v in "NXZ":
        g.add_vertex(v)
    g.add_edge("x", "N", "X"), g.add_edge("enc", "X", "Z"), g.add_edge("dec", "Z", "X")
    leq = Preorder(g, enumerate_paths(g), [(g.path("enc.dec"), g.path("id(X)"))])
    assert leq(g.path("x.enc.dec"), g.path("x"))
    assert not leq(g.path("x"), g.path("x.enc.dec"))
