"""Homomorphism search: checked against brute force on random multigraphs, exact counts, and the actions."""

from itertools import product

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

import learning_diagrams as ld
from learning_diagrams.structure import homsearch as hom
from learning_diagrams.core.errors import DiagramError, TypeMismatchError, UnknownNameError
from learning_diagrams.core.errors import (
    AmbiguousHomomorphismError,
    NoHomomorphismError,
    SearchOptionError,
    TooManyHomomorphismsError,
)
from learning_diagrams.structure.homsearch import (
    homomorphism,
    homomorphisms,
    is_homomorphic,
)
from learning_diagrams.structure.morphisms import DiagramMorphism, agrees

from strategies import graphs

MONIC = {False: "", "V": "V", "E": "E", "VE": "VE", True: "VE"}


# -- building and brute force ---------------------------------------------------------
def as_diagram(graph, vertex_prefix="V", edge_prefix="e", fns=None, losses=None):
    """A diagram with ``graph``'s shape, renamed; wildcard parts unless ``fns``/``losses`` say otherwise."""
    d = ld.Diagram()
    for i, v in enumerate(graph.vertices):
        d.space(f"{vertex_prefix}{v[1:]}", loss=(losses or {}).get(i))
    for i, e in enumerate(graph.edges):
        s, t = graph.src(e), graph.tgt(e)
        fn, trainable = (fns or {}).get(i, (None, True))
        d.map(f"{edge_prefix}{e[1:]}", f"{vertex_prefix}{s[1:]}", f"{vertex_prefix}{t[1:]}", fn, trainable=trainable)
    return d


def brute_force(pattern, diagram, monic="", keep=lambda fv, fe: True):
    """Every assignment of vertices and edges (itertools.product), kept when natural, monic and ``keep``.

    Vertices vary slowest and the diagram's parts are tried in declaration order,
    so the list is in the order the search promises.
    """
    P, D = pattern.graph, diagram.graph
    found = []
    for vs in product(D.vertices, repeat=len(P.vertices)):
        fv = dict(zip(P.vertices, vs))
        if "V" in monic and len(set(vs)) < len(vs):
            continue
        for es in product(D.edges, repeat=len(P.edges)):
            if "E" in monic and len(set(es)) < len(es):
                continue
            fe = dict(zip(P.edges, es))
            natural = all(D.src(fe[e]) == fv[P.src(e)] and D.tgt(fe[e]) == fv[P.tgt(e)] for e in P.edges)
            if natural and keep(fv, fe):
                found.append((fv, fe))
    return found


def plain(morphisms):
    return [(dict(m.vertices), dict(m.edges)) for m in morphisms]


def path(n):
    d = ld.Diagram()
    for i in range(n):
        d.space(f"V{i}")
    for i in range(n - 1):
        d.map(f"e{i}", f"V{i}", f"V{i + 1}", None)
    return d


def cycle(n):
    d = ld.Diagram()
    for i in range(n):
        d.space(f"V{i}")
    for i in range(n):
        d.map(f"e{i}", f"V{i}", f"V{(i + 1) % n}", None)
    return d


def loops(k, parallel=0):
    """One vertex with ``k`` self-loops, or (``parallel > 0``) ``parallel`` edges A → B."""
    d = ld.Diagram().space("A")
    if parallel:
        d.space("B")
    for i in range(parallel or k):
        d.map(f"f{i}", "A", "B" if parallel else "A", None)
    return d


def discrete(n):
    d = ld.Diagram()
    for i in range(n):
        d.space(f"W{i}")
    return d


edge = loops(0, parallel=1)  # A → B, one edge f0


patterns, targets = graphs(max_vertices=3, max_edges=4), graphs(max_vertices=4, max_edges=6)


# -- against brute force --------------------------------------------------------------
@given(patterns, targets)
@settings(max_examples=120, deadline=None)
def test_every_search_equals_brute_force_in_order(pg, dg):
    pattern, diagram = as_diagram(pg, "P", "p"), as_diagram(dg)
    everything = brute_force(pattern, diagram)
    for monic, parts in MONIC.items():
        found = homomorphisms(pattern, diagram, monic=monic)
        for m in found:  # constructing a morphism checks naturality again
            DiagramMorphism(pattern, diagram, m.vertices, m.edges)
            assert m.is_monic(parts)
        expected = [
            (fv, fe)
            for fv, fe in everything
            if ("V" not in parts or len(set(fv.values())) == len(fv))
            and ("E" not in parts or len(set(fe.values())) == len(fe))
        ]
        assert plain(found) == expected, monic
        assert is_homomorphic(pattern, diagram, monic=monic) == bool(expected)


@given(patterns, targets, st.sampled_from(list(MONIC)), st.data())
@settings(max_examples=80, deadline=None)
def test_take_returns_a_prefix_of_the_full_list(pg, dg, monic, data):
    pattern, diagram = as_diagram(pg, "P", "p"), as_diagram(dg)
    full = homomorphisms(pattern, diagram, monic=monic)
    take = data.draw(st.integers(0, len(full) + 2))
    assert homomorphisms(pattern, diagram, monic=monic, take=take) == full[:take]


@given(patterns, targets, st.sampled_from(list(MONIC)), st.booleans(), st.data())
@settings(max_examples=100, deadline=None)
def test_initial_equals_filtered_brute_force(pg, dg, monic, nested, data):
    pattern, diagram = as_diagram(pg, "P", "p"), as_diagram(dg)
    P, D = pattern.graph, diagram.graph
    pins_v = data.draw(st.dictionaries(st.sampled_from(P.vertices), st.sampled_from(D.vertices), max_size=2))
    pins_e = {}
    if P.edges and D.edges:
        pins_e = data.draw(st.dictionaries(st.sampled_from(P.edges), st.sampled_from(D.edges), max_size=2))
    initial = {"V": pins_v, "E": pins_e} if nested else {**pins_v, **pins_e}
    found = homomorphisms(pattern, diagram, monic=monic, initial=initial)
    expected = brute_force(
        pattern,
        diagram,
        MONIC[monic],
        keep=lambda fv, fe: all(fv[k] == w for k, w in pins_v.items()) and all(fe[k] == x for k, x in pins_e.items()),
    )
    assert plain(found) == expected


@given(patterns, targets, st.sampled_from(list(MONIC)), st.data())
@settings(max_examples=100, deadline=None)
def test_where_equals_filtered_brute_force(pg, dg, monic, data):
    pattern, diagram = as_diagram(pg, "P", "p"), as_diagram(dg)
    P, D = pattern.graph, diagram.graph
    allowed = {}
    for part in data.draw(st.lists(st.sampled_from(P.vertices + P.edges), unique=True, max_size=3)):
        universe = D.vertices if P.has_vertex(part) else D.edges
        allowed[part] = set(data.draw(st.lists(st.sampled_from(universe), unique=True))) if universe else set()
    where = {part: (lambda x, ok=ok: x.name in ok) for part, ok in allowed.items()}
    found = homomorphisms(pattern, diagram, monic=monic, where=where)
    expected = brute_force(
        pattern,
        diagram,
        MONIC[monic],
        keep=lambda fv, fe: all({**fv, **fe}[part] in ok for part, ok in allowed.items()),
    )
    assert plain(found) == expected


MODELS = [None, nn.Identity(), nn.Linear(1, 1)]
LOSSES = [None, ld.losses.mse, ld.losses.l1]


@given(patterns, targets, st.data())
@settings(max_examples=100, deadline=None)
def test_semantic_matching_equals_brute_force_with_agrees(pg, dg, data):
    def semantics(graph, wild):
        fns = {
            i: (data.draw(st.sampled_from(MODELS if wild else MODELS[1:])), data.draw(st.booleans()))
            for i in range(len(graph.edges))
        }
        losses = {i: data.draw(st.sampled_from(LOSSES)) for i in range(len(graph.vertices))}
        return fns, losses

    pattern = as_diagram(pg, "P", "p", *semantics(pg, wild=True))
    diagram = as_diagram(dg, "V", "e", *semantics(dg, wild=False))
    found = homomorphisms(pattern, diagram)
    expected = brute_force(
        pattern,
        diagram,
        keep=lambda fv, fe: (
            all(agrees(pattern.spaces[a], diagram.spaces[b]) for a, b in fv.items())
            and all(agrees(pattern.maps[a], diagram.maps[b]) for a, b in fe.items())
        ),
    )
    assert plain(found) == expected
    assert plain(homomorphisms(pattern, diagram, semantic=False)) == brute_force(pattern, diagram)


def onto(images, universe):
    return set(images) == set(universe)


def brute_force_surjective(pattern, diagram, monic="", epic=""):
    """Brute force kept when injective on ``monic`` and surjective on ``epic`` (each "", "V", "E" or "VE")."""
    D = diagram.graph
    return brute_force(
        pattern,
        diagram,
        monic,
        keep=lambda fv, fe: (
            ("V" not in epic or onto(fv.values(), D.vertices)) and ("E" not in epic or onto(fe.values(), D.edges))
        ),
    )


# Larger patterns into smaller diagrams, so that surjections exist; small enough for product().
bigger, smaller = graphs(max_vertices=4, max_edges=4), graphs(max_vertices=3, max_edges=3)


@given(bigger, smaller, st.sampled_from(list(MONIC)), st.sampled_from(list(MONIC)))
@settings(max_examples=150, deadline=None)
def test_epic_equals_brute_force_in_order(pg, dg, epic, monic):
    pattern, diagram = as_diagram(pg, "P", "p"), as_diagram(dg)
    found = homomorphisms(pattern, diagram, epic=epic, monic=monic)
    expected = brute_force_surjective(pattern, diagram, MONIC[monic], MONIC[epic])
    assert plain(found) == expected, (epic, monic)
    assert is_homomorphic(pattern, diagram, epic=epic, monic=monic) == bool(expected)
    for m in found:
        DiagramMorphism(pattern, diagram, m.vertices, m.edges)


@given(patterns, targets, st.sampled_from(list(MONIC)), st.data())
@settings(max_examples=120, deadline=None)
def test_iso_is_monic_and_epic_and_equals_brute_force(pg, dg, iso, data):
    pattern, diagram = as_diagram(pg, "P", "p"), as_diagram(dg)
    if data.draw(st.booleans()):  # a relabelled copy of the pattern: isomorphisms exist
        order = data.draw(st.permutations(pg.vertices))
        diagram = as_diagram(pg)
        renamed = {f"V{v[1:]}": f"V{w[1:]}" for v, w in zip(pg.vertices, order)}
        relabelled = ld.Diagram()
        for v in diagram.spaces:
            relabelled.space(v)
        for e, m in reversed(list(diagram.maps.items())):
            relabelled.map(e, renamed[m.src], renamed[m.tgt], None)
        diagram = relabelled
    parts = MONIC[iso]
    found = homomorphisms(pattern, diagram, iso=iso)
    assert plain(found) == brute_force_surjective(pattern, diagram, parts, parts), iso
    assert found == homomorphisms(pattern, diagram, monic=iso, epic=iso)
    assert plain(homomorphisms(pattern, diagram, iso="V", monic="E")) == brute_force_surjective(
        pattern, diagram, "VE", "V"
    )


@given(patterns, targets, st.sampled_from(list(MONIC)), st.data())
@settings(max_examples=60, deadline=None)
def test_take_and_initial_with_epic_agree_with_the_full_list(pg, dg, epic, data):
    pattern, diagram = as_diagram(pg, "P", "p"), as_diagram(dg)
    full = homomorphisms(pattern, diagram, epic=epic)
    take = data.draw(st.integers(0, len(full) + 1))
    assert homomorphisms(pattern, diagram, epic=epic, take=take) == full[:take]
    pins = data.draw(
        st.dictionaries(st.sampled_from(pattern.graph.vertices), st.sampled_from(diagram.graph.vertices), max_size=2)
    )
    pinned = homomorphisms(pattern, diagram, epic=epic, initial={"V": pins})
    assert pinned == [m for m in full if all(m.vertices[k] == w for k, w in pins.items())]


# -- exact counts --------------------------------------------------------------
@pytest.mark.parametrize(
    "pattern, diagram, monic, count",
    [
        (path(3), path(4), False, 2),  # a path of two edges in a path of three
        (path(2), path(5), False, 4),  # an edge goes to any edge
        (path(4), loops(1), False, 1),  # everything maps to the terminal graph, once
        (loops(1), path(4), False, 0),  # a loop needs a loop
        (loops(2), loops(3), False, 9),  # two loops into three: 3²
        (loops(2), loops(3), "E", 6),  # injectively: 3·2
        (loops(0, parallel=2), loops(0, parallel=3), False, 9),
        (loops(0, parallel=2), loops(0, parallel=3), True, 6),
        (loops(0, parallel=2), loops(0, parallel=3), "V", 9),
        (cycle(2), cycle(3), False, 0),  # a 2-cycle does not wind round a 3-cycle
        (cycle(3), cycle(3), False, 3),  # rotations
        (cycle(6), cycle(3), False, 3),  # winding twice
        (cycle(6), cycle(3), "V", 0),
        (cycle(12), cycle(12), True, 12),  # 12^24 assignments; the search sees 12
        (path(6), path(30), True, 25),
        (discrete(2), path(3), False, 9),  # isolated vertices go anywhere
        (discrete(2), path(3), "V", 6),
        (discrete(0), discrete(0), True, 1),  # the empty morphism
        (discrete(1), discrete(0), False, 0),
    ],
)
def test_exact_counts(pattern, diagram, monic, count):
    assert len(homomorphisms(pattern, diagram, monic=monic)) == count


@pytest.mark.parametrize(
    "pattern, diagram, options, count",
    [
        (cycle(3), cycle(3), {"iso": True}, 3),  # the rotations are the automorphisms
        (cycle(6), cycle(3), {"epic": True}, 3),  # winding twice covers everything
        (cycle(6), cycle(3), {"iso": True}, 0),  # but is no bijection
        (path(4), path(4), {"iso": True}, 1),
        (path(3), path(2), {"epic": "V"}, 0),  # two edges cannot both land on the one edge's ends
        (loops(2), loops(2), {"iso": True}, 2),  # swap the loops or not
        (loops(3), loops(2), {"epic": "E"}, 6),  # surjections of 3 loops onto 2: 2³ - 2
        (loops(0, parallel=2), loops(0, parallel=2), {"iso": "E"}, 2),
        (loops(0, parallel=3), loops(0, parallel=2), {"epic": True}, 6),
        (discrete(3), discrete(3), {"iso": True}, 6),  # 3!
        (discrete(3), discrete(2), {"epic": "V"}, 6),  # surjections 3 → 2
        (discrete(2), discrete(3), {"epic": "V"}, 0),  # too few: fails before looking
        (discrete(0), discrete(0), {"iso": True}, 1),  # the empty morphism
        (cycle(12), cycle(12), {"iso": True}, 12),
    ],
)
def test_exact_counts_of_surjections_and_isomorphisms(pattern, diagram, options, count):
    assert len(homomorphisms(pattern, diagram, **options)) == count


def test_epic_with_fewer_pattern_parts_fails_before_looking_at_any_part():
    calls = []
    assert homomorphisms(path(3), path(4), epic="V", where={"V0": recorder(calls)}) == []
    assert calls == []
    with pytest.raises(NoHomomorphismError, match=r"a surjective map needs at least as many parts in the pattern"):
        homomorphism(discrete(2), discrete(3), epic=True)
    with pytest.raises(
        NoHomomorphismError, match=r"\(epic=True\): a surjective map .*2 vertices and 0 edges into 3 and 0"
    ):
        homomorphism(discrete(2), discrete(3), epic=True)


def test_bad_epic_and_iso_are_named():
    with pytest.raises(SearchOptionError, match=r"epic='X' cannot be read"):
        homomorphisms(edge, path(3), epic="X")
    with pytest.raises(SearchOptionError, match=r"iso=\['V', 'F'\] cannot be read"):
        homomorphisms(edge, path(3), iso=["V", "F"])


def test_actions_take_epic_and_iso():
    d = nic()
    whole = ld.Diagram()
    for v in d.spaces:
        whole.space(v)
    for e, m in d.maps.items():
        whole.map(e, m.src, m.tgt, None)
    [m] = homomorphisms(whole, d, iso=True)
    assert dict(m.edges) == {e: e for e in d.maps}
    with pytest.raises(NoHomomorphismError, match=r"\(epic='V'\): a surjective map .*; nothing to freeze"):
        hom.freeze(d, one_edge, "enc", epic="V")  # one edge cannot cover four vertices
    assert all(m.trainable for m in d.maps.values())


def test_matches_come_in_declaration_order_of_the_images():
    found = homomorphisms(edge, cycle(3))
    assert [m("f0") for m in found] == ["e0", "e1", "e2"]
    assert homomorphisms(path(3), path(4))[0].vertices == {"V0": "V0", "V1": "V1", "V2": "V2"}


# -- failing early --------------------------------------------------------------
def recorder(calls):
    def predicate(part):
        calls.append(part.name)
        return True

    return predicate


def test_monic_on_vertices_with_more_pattern_vertices_fails_before_looking_at_any_part():
    calls = []
    assert homomorphisms(path(5), path(4), monic="V", where={"V0": recorder(calls)}) == []
    assert calls == []
    assert len(homomorphisms(path(5), path(4), where={"V0": recorder(calls)})) == 0
    assert calls  # without monic the search does look


def test_monic_on_edges_with_more_pattern_edges_fails_at_once():
    calls = []
    assert len(homomorphisms(loops(3), loops(2))) == 8
    assert homomorphisms(loops(3), loops(2), monic=["E"], where={"A": recorder(calls)}) == []
    assert calls == []
    with pytest.raises(NoHomomorphismError, match=r"injective map needs at least as many parts.*3 edges into 1 and 2"):
        homomorphism(loops(3), loops(2), monic=["E"])


def test_monic_prunes_vertices_by_degree_before_calling_predicates():
    star = ld.Diagram().space("C").space("X").space("Y").map("a", "C", "X", None).map("b", "C", "Y", None)
    calls = []
    found = homomorphisms(star, path(4), monic=True, where={"C": recorder(calls)})
    assert found == [] and calls == []  # no vertex of a path has two out-edges
    assert len(homomorphisms(star, path(4), where={"C": recorder(calls)})) == 3 and calls


# -- homomorphism, is_homomorphic --------------------------------------------------------------
def test_homomorphism_unique():
    m = homomorphism(path(3), path(4), initial={"V0": "V1"})
    assert dict(m.edges) == {"e0": "e1", "e1": "e2"}


def test_homomorphism_none_says_which_part_has_no_candidate():
    with pytest.raises(
        NoHomomorphismError, match=r"no part of the diagram can be the image of pattern edge 'f0'"
    ) as err:
        homomorphism(edge, path(3), where={"f0": hom.frozen})
    assert isinstance(err.value, LookupError) and isinstance(err.value, DiagramError)
    with pytest.raises(NoHomomorphismError, match=r"each pattern part has candidates, but they do not fit together"):
        homomorphism(cycle(2), cycle(3))


def test_homomorphism_ambiguous_says_how_many():
    with pytest.raises(
        AmbiguousHomomorphismError,
        match=r"found 5 homomorphisms .*\{f0↦e0\}, \{f0↦e1\}, \{f0↦e2\}, \.\.\.; pass first=True",
    ):
        homomorphism(edge, cycle(5))
    with pytest.raises(ValueError):
        homomorphism(edge, cycle(5))


def test_homomorphism_first_is_the_first_in_order():
    five = cycle(5)
    assert homomorphism(edge, five, first=True) == homomorphisms(edge, five)[0]
    assert homomorphism(edge, five, first=True, initial={"B": "V3"}).edges["f0"] == "e2"
    with pytest.raises(NoHomomorphismError):
        homomorphism(loops(1), five, first=True)


def test_at_most_raises_when_there_are_more():
    assert len(homomorphisms(edge, cycle(3), at_most=3)) == 3
    with pytest.raises(TooManyHomomorphismsError, match=r"more than at_most=2"):
        homomorphisms(edge, cycle(3), at_most=2)


# -- options ------------------------------------------------------------------------------
def test_unknown_names_in_initial_and_where_are_named():
    with pytest.raises(
        UnknownNameError,
        match=r"initial= names 'Z', 'g', which the pattern does not have \(vertices: A, B; edges: f0\)",
    ):
        homomorphisms(edge, path(3), initial={"A": "V0", "Z": "V1", "g": "e0"})
    with pytest.raises(UnknownNameError, match=r"where= names edge 'A'"):
        homomorphisms(edge, path(3), where={"E": {"A": hom.trainable}})
    with pytest.raises(
        UnknownNameError,
        match=r"initial= sends vertex 'A' to 'Q', which is no vertex of the diagram \(vertices: V0, V1, V2\)",
    ):
        homomorphisms(edge, path(3), initial={"A": "Q"})
    with pytest.raises(UnknownNameError, match=r"initial= sends edge 'f0' to 'V0'"):
        homomorphisms(edge, path(3), initial={"E": {"f0": "V0"}})


def test_a_name_that_is_both_a_vertex_and_an_edge_must_say_which():
    pattern = ld.Diagram().space("f").space("B").map("f", "f", "B", None)
    with pytest.raises(SearchOptionError, match=r"'f', which the pattern has both as a vertex and as an edge"):
        homomorphisms(pattern, path(3), initial={"f": "V0"})
    assert [m("B") for m in homomorphisms(pattern, path(3), initial={"V": {"f": "V1"}})] == ["V2"]
    assert [m("B") for m in homomorphisms(pattern, path(3), initial={"E": {"f": "e0"}})] == ["V1"]


def test_an_initial_assignment_that_breaks_naturality_gives_no_match():
    assert homomorphisms(edge, path(3), initial={"A": "V0", "f0": "e1"}) == []
    assert homomorphisms(edge, path(3), initial={"A": "V0", "B": "V0"}) == []
    assert homomorphisms(discrete(2), path(3), initial={"W0": "V0", "W1": "V0"}, monic="V") == []
    assert len(homomorphisms(discrete(2), path(3), initial={"W0": "V0", "W1": "V0"})) == 1


@pytest.mark.parametrize("monic", ["X", ["V", "F"], 1, "v"])
def test_bad_monic(monic):
    with pytest.raises(SearchOptionError, match=r"monic=.* cannot be read"):
        homomorphisms(edge, path(3), monic=monic)


def test_bad_take_and_where_values():
    with pytest.raises(SearchOptionError, match=r"take=-1 is not a count"):
        homomorphisms(edge, path(3), take=-1)
    with pytest.raises(TypeMismatchError, match=r"where= gives edge 'f0' a str, which is not a predicate"):
        homomorphisms(edge, path(3), where={"f0": "trainable"})
    with pytest.raises(TypeMismatchError, match=r"initial= must be a dict"):
        homomorphisms(edge, path(3), initial=[("A", "V0")])


def test_a_list_of_predicates_must_all_hold():
    found = homomorphisms(edge, cycle(4), where={"f0": [lambda m: m.name != "e0", lambda m: m.name != "e3"]})
    assert [m("f0") for m in found] == ["e1", "e2"]


# -- semantics ------------------------------------------------------------------------------
def models_diagram():
    """Images X with a convolutional encoder and a linear one, labels Y with cross-entropy, features F with MSE."""
    conv = nn.Sequential(nn.Conv2d(1, 2, 3), nn.Flatten())
    return (
        ld.Diagram()
        .space("N", data=[0])
        .space("X")
        .space("Y", loss=ld.losses.cross_entropy)
        .space("F", loss=ld.losses.mse)
        .map("x", "N", "X", lambda b: b)
        .map("conv", "X", "F", conv)
        .map("linear", "X", "F", nn.Linear(4, 4), trainable=False)
        .map("head", "F", "Y", nn.Linear(4, 2))
    )


def test_a_pattern_naming_a_model_matches_only_that_model():
    d = models_diagram()
    named = ld.Diagram().space("A").space("B").map("g", "A", "B", d.maps["conv"].fn)
    assert [m("g") for m in homomorphisms(named, d)] == ["conv"]
    assert len(homomorphisms(named, d, semantic=False)) == 4
    twin = ld.Diagram().space("A").space("B").map("g", "A", "B", d.maps["conv"].fn, trainable=False)
    assert homomorphisms(twin, d) == []  # the same model, but the pattern asks for it frozen


def test_a_pattern_space_with_a_loss_matches_only_spaces_with_that_loss():
    d = models_diagram()
    into = ld.Diagram().space("A").space("B", loss=ld.losses.cross_entropy).map("g", "A", "B", None)
    assert [m("g") for m in homomorphisms(into, d)] == ["head"]


def test_ready_made_predicates():
    d = models_diagram()
    one = ld.Diagram().space("A").space("B").map("g", "A", "B", None)

    def images(**where):
        return [m("g") for m in homomorphisms(one, d, where=where)]

    assert images(g=hom.trainable) == ["conv", "head"]  # "x", a plain function, has nothing to train
    assert images(g=hom.frozen) == ["linear"]
    assert images(g=hom.is_module(nn.Linear)) == ["linear", "head"]
    assert images(g=hom.is_module((nn.Sequential, nn.Conv2d))) == ["conv"]
    assert images(g=hom.contains_module(nn.Conv2d)) == ["conv"]
    assert images(g=[hom.trainable, hom.is_module(nn.Linear)]) == ["head"]
    assert images(B=hom.has_loss(ld.losses.cross_entropy)) == ["head"]
    assert images(B=hom.has_loss()) == ["conv", "linear", "head"]
    assert images(A=hom.has_data) == ["x"]


# -- actions -------------------------------------------------------------------------------
class Encoder(nn.Module):
    """CNN_x_Y of the paper's Listing 1: x → (v_model(x[0]), x[1])."""

    def __init__(self):
        super().__init__()
        self.v_model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.AdaptiveAvgPool2d(1), nn.Flatten())

    def forward(self, x):
        return self.v_model(x[0]), x[1]


class First(nn.Module):
    def __init__(self, module):
        super().__init__()
        self.module = module

    def forward(self, xy):
        return self.module(xy[0])


def nic():
    """The NIC diagram of the paper's Listing 1, with small modules."""
    torch.manual_seed(0)
    batch = (torch.randn(4, 3, 8, 8), torch.randint(5, (4,)))
    return (
        ld.Diagram()
        .space("N", data=[batch])
        .space("Z_I_x_Y")
        .space("Z_L")
        .space("Y", loss=ld.losses.cross_entropy)
        .map("CNN_x_Y", "N", "Z_I_x_Y", Encoder())
        .map("LSTM", "Z_I_x_Y", "Z_L", First(nn.Sequential(nn.Linear(4, 6), nn.BatchNorm1d(6))))
        .map("Label", "Z_I_x_Y", "Y", lambda xy: xy[1])
        .map("Prediction", "Z_L", "Y", nn.Linear(6, 5))
        .relate("CNN_x_Y·LSTM·Prediction", "CNN_x_Y·Label")
    )


one_edge = ld.Diagram().space("A").space("B").map("enc", "A", "B", None)
vision = {"where": {"enc": hom.contains_module(nn.Conv2d)}}


def test_set_eval_keeps_the_vision_encoder_in_eval_mode_through_training():
    d = nic()
    matches = hom.set_eval(d, one_edge, "enc", **vision)
    assert [m("enc") for m in matches] == ["CNN_x_Y"]
    encoder, lstm = d.maps["CNN_x_Y"].fn, d.maps["LSTM"].fn
    assert d.maps["CNN_x_Y"].training is False and d.maps["LSTM"].training is True
    assert d.maps["CNN_x_Y"].trainable  # its parameters still train
    assert not encoder.training and lstm.training  # the module is put in eval mode at once
    loss = d.compile().train()
    assert not encoder.training and lstm.training
    stats = encoder.v_model[1].running_mean.clone()
    lstm_stats = lstm.module[1].running_mean.clone()
    loss().total.backward()
    assert torch.equal(encoder.v_model[1].running_mean, stats)  # BatchNorm statistics fixed
    assert not torch.equal(lstm.module[1].running_mean, lstm_stats)
    assert encoder.v_model[0].weight.grad is not None


def test_set_train_undoes_set_eval():
    d = nic()
    hom.set_eval(d, one_edge, "enc", **vision)
    matches = hom.set_train(d, one_edge, ["enc"], initial={"enc": "CNN_x_Y"})
    assert len(matches) == 1 and d.maps["CNN_x_Y"].training and d.maps["CNN_x_Y"].fn.training
    d.compile().train()
    assert d.maps["CNN_x_Y"].fn.training


def test_freeze_and_unfreeze_every_match():
    d = nic()
    module_edge = {"where": {"enc": hom.is_module(nn.Module)}}
    matches = hom.freeze(d, one_edge, "enc", **module_edge)
    assert [m("enc") for m in matches] == ["CNN_x_Y", "LSTM", "Prediction"]
    assert {name: m.trainable for name, m in d.maps.items()} == {
        "CNN_x_Y": False,
        "LSTM": False,
        "Label": True,
        "Prediction": False,
    }
    hom.unfreeze(d, one_edge, "enc", initial={"enc": "LSTM"})
    assert [name for name, m in d.maps.items() if m.trainable] == ["LSTM", "Label"]


def test_actions_on_a_pattern_with_no_match_raise_and_change_nothing():
    d = nic()
    before = {name: (m.fn, m.trainable, m.training) for name, m in d.maps.items()}
    nothing = {"where": {"enc": hom.is_module(nn.LSTM)}}
    for act, arg in [
        (hom.freeze, "enc"),
        (hom.unfreeze, "enc"),
        (hom.set_eval, "enc"),
        (hom.set_train, "enc"),
        (hom.swap, {"enc": nn.Identity()}),
        (hom.swap_each, {"enc": lambda m: nn.Identity()}),
    ]:
        with pytest.raises(NoHomomorphismError, match=rf"pattern edge 'enc'; nothing to {act.__name__}"):
            act(d, one_edge, arg, **nothing)
    for act in (hom.assign_data, hom.assign_data_each):
        with pytest.raises(NoHomomorphismError, match=rf"nothing to {act.__name__}"):
            act(d, loops(1), {"A": (lambda m: [1]) if act is hom.assign_data_each else [1]})
    assert {name: (m.fn, m.trainable, m.training) for name, m in d.maps.items()} == before
    assert d.indexing == ("N",)


def test_actions_check_the_pattern_names_they_are_given():
    d = nic()
    with pytest.raises(
        UnknownNameError, match=r"freeze names 'decoder', which is no edge of the pattern \(edges: enc\)"
    ):
        hom.freeze(d, one_edge, "decoder")
    with pytest.raises(UnknownNameError, match=r"assign_data names 'enc', which is no vertex of the pattern"):
        hom.assign_data(d, one_edge, {"enc": [0]})


def test_swap_gives_every_image_the_same_object_and_keeps_flags():
    d = nic()
    d.freeze("Prediction")
    new = nn.Identity()
    matches = hom.swap(d, one_edge, {"enc": new}, where={"enc": hom.is_module(nn.Linear)})
    assert [m("enc") for m in matches] == ["Prediction"]
    assert d.maps["Prediction"].fn is new and not d.maps["Prediction"].trainable
    both = ld.Diagram().space("A").space("B").space("C").map("f", "A", "B", None).map("g", "B", "C", None)
    hom.swap(d, both, {"g": new}, where={"f": hom.is_module(Encoder)})
    assert d.maps["LSTM"].fn is new and d.maps["Label"].fn is new
    with pytest.raises(TypeMismatchError, match=r"swap gives pattern edge 'enc' a int"):
        hom.swap(d, one_edge, {"enc": 3})
    assert d.maps["CNN_x_Y"].fn is not None and isinstance(d.maps["CNN_x_Y"].fn, Encoder)


def test_swap_each_builds_one_model_per_image():
    d = nic()
    seen = []

    def factory(match):
        seen.append(match("g"))
        return nn.Identity()

    both = ld.Diagram().space("A").space("B").space("C").map("f", "A", "B", None).map("g", "B", "C", None)
    matches = hom.swap_each(d, both, {"g": factory}, semantic=True)
    assert [(m("f"), m("g")) for m in matches] == [("CNN_x_Y", "LSTM"), ("CNN_x_Y", "Label"), ("LSTM", "Prediction")]
    assert seen == ["LSTM", "Label", "Prediction"]
    fns = [d.maps[name].fn for name in seen]
    assert all(isinstance(fn, nn.Identity) for fn in fns) and len({id(fn) for fn in fns}) == 3


def test_swap_each_calls_the_factory_once_per_distinct_image():
    d = (
        ld.Diagram()
        .space("X")
        .space("Y")
        .space("Z")
        .map("p", "X", "Y", None)
        .map("q", "Y", "Z", None)
        .map("r", "Y", "Z", None)
    )
    both = ld.Diagram().space("A").space("B").space("C").map("f", "A", "B", None).map("g", "B", "C", None)
    calls = []
    matches = hom.swap_each(d, both, {"f": lambda m: calls.append(m("f")) or nn.Identity()})
    assert len(matches) == 2 and calls == ["p"]


def test_assign_data_to_every_match():
    d = (
        ld.Diagram()
        .space("N1")
        .space("N2")
        .space("Y", loss=ld.losses.mse)
        .space("Z")
        .map("f", "N1", "Y", abs)
        .map("g", "N2", "Y", abs)
        .map("h", "N1", "Z", abs)
    )
    source = ld.Diagram().space("S").space("T").map("k", "S", "T", None)
    batches = [torch.zeros(2)]
    matches = hom.assign_data(d, source, {"S": batches}, where={"T": hom.has_loss()})
    assert [m("S") for m in matches] == ["N1", "N2"]
    assert d.indexing == ("N1", "N2") and d.spaces["N1"].data is batches and d.spaces["N2"].data is batches
    hom.assign_data_each(d, source, {"S": lambda m: [torch.full((2,), float(m("S")[-1]))]}, initial={"k": "g"})
    assert d.spaces["N2"].data[0].tolist() == [2.0, 2.0] and d.spaces["N1"].data is batches
    hom.assign_data(d, source, {"S": None}, initial={"T": "Z"})
    assert d.indexing == ("N2",)
