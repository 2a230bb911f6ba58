"""No declared relation is dropped, and the paper's preorder on edges: which pairs each relation yields."""

from itertools import combinations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import learning_diagrams as ld
from learning_diagrams.core.errors import ConflictError, NoLossError, OrientationError
from learning_diagrams.core.graph import Path
from learning_diagrams.core.pairs import derive
from learning_diagrams.core.paths import PathMatrix, edge_order, enumerate_paths

from strategies import brute_force_walks, dfs_paths, graphs


def autoencoder(**options):
    """x: N → X, enc: X → Z, dec: Z → X, the reconstruction loss at X."""
    return (
        ld.Diagram(**options)
        .space("N", indexing=True)
        .space("X", loss=ld.losses.mse)
        .space("Z")
        .map("x", "N", "X", abs)
        .map("enc", "X", "Z", abs)
        .map("dec", "Z", "X", abs)
    )


def loop(**options):
    """y: N → Y with a loop r: Y → Y and a loss at Y."""
    d = ld.Diagram(**options).space("N", indexing=True).space("Y", loss=ld.losses.l1)
    return d.map("y", "N", "Y", abs).map("r", "Y", "Y", abs)


def distillation(**options):
    """The paper's Figure 1 with logits L (no loss), read as labels Y and soft targets G."""
    return (
        ld.Diagram(**options)
        .space("N", indexing=True)
        .space("X")
        .space("L")
        .space("Y", loss=ld.losses.cross_entropy)
        .space("G", loss=ld.losses.KLDivergence(temperature=2.0))
        .map("x", "N", "X", abs)
        .map("y", "N", "Y", abs)
        .map("teacher", "X", "L", abs, trainable=False)
        .map("student", "X", "L", abs)
        .map("hard", "L", "Y", abs)
        .map("soft", "L", "G", abs)
    )


def names(d):
    return [str(p) for p in d.parallel_pairs()]


# --- 1. no relation is dropped ---------------------------------------------------------------


def test_a_relation_whose_paths_repeat_an_edge_compiles_its_own_pair_with_its_weight():
    d = autoencoder().relate("x·enc·dec", "x").relate("x·enc·dec·enc·dec", "x", weight=5)
    assert names(d) == [
        "x·enc·dec ≤ x  (at X, weight 1)",
        "x·enc·dec·enc·dec ≤ x  (at X, weight 5)",
        "x·enc·dec·enc·dec ≤ x·enc·dec  (at X, weight 1)",  # the first, whiskered by enc·dec
    ]


def test_a_relation_longer_than_max_length_compiles_its_own_pair():
    d = (
        ld.Diagram(max_length=1)
        .space("N", indexing=True)
        .space("X")
        .space("Y", loss=ld.losses.mse)
        .map("x", "N", "X", abs)
        .map("f", "X", "Y", abs)
        .map("y", "N", "Y", abs)
        .relate("x·f", "y")
    )
    assert names(d) == ["x·f ≤ y  (at Y, weight 1)"]


def test_a_relation_that_needs_a_repeated_edge_says_so_and_how_to_get_it():
    with pytest.raises(
        NoLossError,
        match=r"relation r·r ≤ r compiles no pair: its whiskerings .* such as y·r·r ≤ y·r, are not among the "
        r"diagram's paths \(y·r·r uses edge 'r' twice, and simple paths use no edge twice\); enumerate walks, "
        r"Diagram\(cycles='walks', max_length=3\), or declare the whiskered relation itself "
        r"\(d.relate\('y·r·r', 'y·r'\)\)",
    ):
        loop().relate("r·r", "r").parallel_pairs()
    assert names(loop(cycles="walks", max_length=3).relate("r·r", "r")) == ["y·r·r ≤ y·r  (at Y, weight 1)"]
    assert names(loop().relate("r·r", "r").relate("y·r·r", "y·r")) == ["y·r·r ≤ y·r  (at Y, weight 1)"]


def test_a_relation_cut_off_by_max_length_says_so():
    d = distillation(max_length=2).relate("student", "teacher")
    with pytest.raises(NoLossError, match=r"x·student·hard has 3 edges, more than max_length=2\); raise max_length"):
        d.parallel_pairs()


def test_a_relation_that_reaches_no_loss_or_no_data_is_named():
    d = distillation().space("H").map("u", "X", "H", abs).map("v", "X", "H", abs).relate("u", "v")
    with pytest.raises(NoLossError, match=r"relation u ≤ v compiles no pair: it ends at vertex 'H', which has no loss"):
        d.parallel_pairs()
    d = distillation().space("S").map("s", "S", "X", abs).relate("s·student", "s·teacher")
    with pytest.raises(NoLossError, match=r"no path leads from an indexing vertex \(N\) to its source 'S'"):
        d.parallel_pairs()


def test_every_relation_that_yields_nothing_is_listed():
    d = loop().space("H").map("u", "Y", "H", abs).map("v", "Y", "H", abs).relate("u", "v").relate("r·r", "r")
    with pytest.raises(NoLossError, match=r"2 relations compile no pair:\n  relation u ≤ v .*\n  relation r·r ≤ r"):
        d.parallel_pairs()


def test_a_path_related_to_itself_and_a_relation_with_two_weights_are_refused_by_name():
    with pytest.raises(NoLossError, match=r"relation y ≤ y compiles no pair: it relates a path to itself"):
        loop().relate("y", "y").parallel_pairs()
    with pytest.raises(ConflictError, match=r"relation y·r ≤ y is declared twice, with weights 1 and 2"):
        loop().relate("y·r", "y").relate("y·r", "y", weight=2).parallel_pairs()
    assert names(loop().relate("y·r", "y").relate("y·r", "y")) == ["y·r ≤ y  (at Y, weight 1)"]


def test_a_pair_declared_both_ways_keeps_the_weight_of_either_declaration():
    d = loop().relate("y", "y·r", weight=3)
    assert names(d.relate("y·r", "y", weight=3)) == ["y ≤ y·r  (at Y, weight 3)"]
    assert names(loop().relate("y·r", "y", weight=3).relate("y", "y·r", weight=3)) == ["y ≤ y·r  (at Y, weight 3)"]
    with pytest.raises(ConflictError, match=r"relations y ≤ y·r \(weight 3\) and y·r ≤ y \(weight 2\)"):
        loop().relate("y", "y·r", weight=3).relate("y·r", "y", weight=2).parallel_pairs()


def test_compiling_a_diagram_whose_only_relation_yields_nothing_no_longer_says_add_a_relation():
    with pytest.raises(NoLossError, match=r"relation r·r ≤ r compiles no pair") as info:
        loop().relate("r·r", "r").compile()
    assert "add a relation" not in str(info.value)


# --- 2. the paper's preorder on edges ---------------------------------------------------------


def test_a_relation_between_edges_into_a_vertex_without_a_loss_is_whiskered_to_the_losses():
    d = distillation().relate("student", "teacher")
    assert names(d) == [
        "x·student·hard ≤ x·teacher·hard  (at Y, weight 1)",
        "x·student·soft ≤ x·teacher·soft  (at G, weight 1)",
    ]


def test_the_paper_distillation_reads_the_same_with_edge_relations():
    by_paths = distillation().relate("x·student·hard", "y").relate("x·student·soft", "x·teacher·soft")
    by_edges = distillation().relate("x·student·hard", "y").relate("student", "teacher")
    assert "x·student·soft ≤ x·teacher·soft  (at G, weight 1)" in names(by_edges)
    assert set(names(by_paths)) <= set(names(by_edges))


# --- explain: each relation and its pairs ---------------------------------------------------------


def test_explain_lists_each_relation_with_the_pairs_it_yields():
    d = distillation().relate("x·student·hard", "y", weight=0.75).relate("student", "teacher")
    assert str(d.explain()) == "\n".join(
        [
            "x·student·hard ≤ y  (weight 0.75)",
            "    x·student·hard ≤ y  (at Y, weight 0.75)",
            "student ≤ teacher  (weight 1)",
            "    x·student·hard ≤ x·teacher·hard  (at Y, weight 1)",
            "    x·student·soft ≤ x·teacher·soft  (at G, weight 1)",
        ]
    )


def test_explain_sets_apart_pairs_that_need_several_relations_and_says_why_a_relation_yields_none():
    d = loop(cycles="walks", max_length=2).space("M").map("m", "N", "M", abs).map("k", "M", "Y", abs)
    d.relate("m·k", "y·r").relate("y·r", "y").relate("m", "m")
    explained = d.explain()
    (first, mine, _), (second, theirs, _), (third, none, why) = explained.relations
    assert [p.name for p in mine] == ["m·k ≤ y·r"] and [p.name for p in theirs] == ["y·r ≤ y"]
    assert none == () and why.startswith("it relates a path to itself")
    assert [p.name for p in explained.together] == ["m·k ≤ y"]  # transitivity across the first two
    assert "from several relations together" in str(explained) and "    no pair: it relates" in str(explained)


def test_explain_lists_unoriented_pairs_instead_of_raising():
    d = distillation().relate("student", "teacher").relate("teacher", "student")
    with pytest.raises(OrientationError):
        d.parallel_pairs()
    assert "not compiled, for want of an orientation" in str(d.explain())


def test_without_relations_explain_lists_every_pair():
    d = loop(cycles="walks", max_length=2)
    assert str(d.explain()) == "no relation: every pair compiles\n    y ≤ y·r  (at Y, weight 1)"


# --- the property: every relation yields a pair, or an error names it ------------------------


@st.composite
def related_diagrams(draw):
    """Random multigraphs with indexing vertices (no edge into them: a data vertex ``D`` with edges out
    of it, and perhaps others), losses, and relations between parallel paths that may use an edge twice
    or exceed ``max_length``."""
    g = draw(graphs(max_vertices=3, max_edges=4))
    walks = draw(st.booleans())
    max_length = draw(st.integers(1, 3)) if walks else draw(st.one_of(st.none(), st.integers(1, 3)))
    d = ld.Diagram(max_length=max_length, cycles="walks" if walks else "simple").space("D", indexing=True)
    targets = {g.tgt(e) for e in g.edges}
    for v in g.vertices:
        indexing = v not in targets and draw(st.booleans())
        d.space(v, indexing=indexing, loss=ld.losses.mse if draw(st.booleans()) else None)
    for e in g.edges:
        d.map(e, g.src(e), g.tgt(e), abs)
    for i, v in enumerate(draw(st.lists(st.sampled_from(g.vertices), min_size=1, max_size=2))):
        if not d.spaces[v].is_indexing:
            d.map(f"d{i}", "D", v, abs)
    walks_of_3 = brute_force_walks(d.graph, 3)
    parallel = [(p, q) for paths in walks_of_3.values() for p in paths for q in paths if p != q]
    for p, q in draw(st.lists(st.sampled_from(parallel), min_size=1, max_size=3, unique=True)) if parallel else []:
        d.relate(p, q)
    return d


def oracle_yields(d, relation):
    """Whether a whiskering of ``relation`` runs from an indexing vertex to a loss, among the diagram's paths,
    computed from the oracles of path enumeration."""
    found = brute_force_walks(d.graph, d.max_length) if d.cycles == "walks" else dfs_paths(d.graph, d.max_length)
    universe = {p for paths in found.values() for p in paths} | {p for r in d.relations for p in (r.first, r.second)}
    p, q = relation.first, relation.second
    for x in universe:
        if not (d.spaces[x.source].is_indexing and d.spaces[x.target].loss is not None):
            continue
        along = d.graph.vertices_along(x)
        for i in range(len(x) + 1):
            for j in range(i, len(x) + 1):
                if x.edges[i:j] == p.edges and (along[i], along[j]) == (p.source, p.target):
                    y = Path(x.source, x.target, x.edges[:i] + q.edges + x.edges[j:])
                    if y in universe:
                        return True
    return False


@given(related_diagrams())
@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_every_declared_relation_yields_a_pair_or_is_named_in_an_error(d):
    barren = [r for r in d.relations if not oracle_yields(d, r)]
    try:
        pairs = d.parallel_pairs()
    except NoLossError as err:
        assert barren and all(f"relation {r} compiles no pair" in str(err) for r in barren)
        return
    except OrientationError:
        assert not barren
        return
    assert not barren
    explained = d.explain()
    assert all(mine for _, mine, _ in explained.relations)
    compiled = {(Path(p.source, p.target, p.first), Path(p.source, p.target, p.second)) for p in pairs}
    for r in d.relations:
        if d.spaces[r.first.source].is_indexing and d.spaces[r.first.target].loss is not None:
            assert (r.first, r.second) in compiled or (r.second, r.first) in compiled  # its own pair


@given(related_diagrams())
@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_the_paths_considered_are_those_enumerated_then_the_relations_own_in_order(d):
    found = enumerate_paths(d.graph, max_length=d.max_length, max_paths=d.max_paths, cycles=d.cycles)
    known, extra = set(found), {}
    for r in d.relations:
        for p in (r.first, r.second):
            if p not in known:
                known.add(p)
                extra.setdefault((p.source, p.target), []).append(p)
    expected = (found + PathMatrix(d.graph.vertices, extra)).sorted(edge_order(d.graph))
    assert list(d.paths().items()) == list(expected.items())


@given(related_diagrams())
@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_explain_attributes_to_each_relation_the_pairs_its_closure_alone_relates_either_way(d):
    try:
        pairs = d.parallel_pairs()
    except (NoLossError, OrientationError):
        return
    leq = d.preorder()
    for r, mine, _ in d.explain().relations:
        alone = leq.restricted([(r.first, r.second)])
        assert mine == tuple(p for p in pairs if alone(*p.paths) or alone(*reversed(p.paths)))


def listed_derivation(d):
    """The oracle: every parallel pair from data to a loss among the listed paths, in matrix order, kept
    when the preorder on the listed paths relates it (each enumerated, none skipped)."""
    paths = d.paths()
    leq = d.preorder(paths)
    found = []
    for source in d.indexing:
        for target, space in d.spaces.items():
            if space.loss is not None:
                for p, q in combinations(paths[source, target], 2):
                    if leq(p, q) or leq(q, p):
                        found.append(f"{p} ≤ {q}" if leq(p, q) else f"{q} ≤ {p}")
    barren = [
        r
        for r in d.relations
        if not any(
            x.source in d.indexing and d.spaces[x.target].loss is not None
            for x, _ in leq.whiskerings(r.first, r.second)
        )
        or r.first == r.second
    ]
    return found, barren


@given(related_diagrams())
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_the_pairs_found_from_the_closure_are_those_of_every_listed_candidate_in_order(d):
    derived = derive(d)
    found, barren = listed_derivation(d)
    assert [pair.name for pair in derived.pairs] == found
    assert [r for r, _ in derived.barren] == barren
