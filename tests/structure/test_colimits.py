"""Colimits of learning diagrams: the paper's Figure 2, many heads on one backbone, the
universal property against brute force, naming, and conflicts."""

from __future__ import annotations

from itertools import product
from typing import Any

import pytest
import torch
from hypothesis import event, given, settings
from hypothesis import strategies as st
from torch import nn

import learning_diagrams as ld
from learning_diagrams.core.errors import NotCoconeError, ShapeError
from learning_diagrams.structure.colimits import (
    Colimit,
    coequalizer,
    colimit,
    coproduct,
    glue,
    inclusion,
    pushout,
)
from learning_diagrams.core.errors import ConflictError, NotNaturalError
from learning_diagrams.structure.morphisms import DiagramMorphism

from strategies import graphs

# -- the paper's pieces ----------------------------------------------------------


def batch(seed: int, n: int = 16):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 4, generator=g), torch.randint(3, (n,), generator=g)


def first(b):
    return b[0]


def second(b):
    return b[1]


def square(backbone, head, data, *, i: str = "", loss=ld.losses.cross_entropy, weight=1.0):
    """A classifier square N → X → F → Y, N → Y with x·m·h ≤ y; names suffixed by ``i``."""
    return (
        ld.Diagram()
        .space(f"N{i}", data=data)
        .space("X")
        .space("F")
        .space(f"Y{i}", loss=loss)
        .map(f"x{i}", f"N{i}", "X", first)
        .map(f"y{i}", f"N{i}", f"Y{i}", second)
        .map("m", "X", "F", backbone)
        .map(f"h{i}", "F", f"Y{i}", head)
        .relate(f"x{i}·m·h{i}", f"y{i}", weight=weight)
    )


def backbone_only():
    return ld.Diagram().space("X").space("F").map("m", "X", "F", None)


def ends(d: ld.Diagram) -> dict[str, tuple[str, str]]:
    return {e: (d.graph.src(e), d.graph.tgt(e)) for e in d.graph.edges}


def checked(f: DiagramMorphism) -> DiagramMorphism:
    """The same assignment, rebuilt with every naturality check."""
    return DiagramMorphism(f.dom, f.codom, f.vertices, f.edges)


class Counting(nn.Module):
    def __init__(self, inner: nn.Module):
        super().__init__()
        self.inner, self.calls = inner, 0

    def forward(self, x):
        self.calls += 1
        return self.inner(x)


# -- Figure 2, top ------------------------------------------------------------------


def figure2_top():
    data = ld.Diagram().space("N", data=[batch(0)]).space("X").space("Y", loss=ld.losses.cross_entropy)
    data.map("x", "N", "X", first).map("y", "N", "Y", second)
    m, h = nn.Linear(4, 5), nn.Linear(5, 3)
    pair = ld.Diagram().space("X").space("F").space("Y").map("m", "X", "F", m).map("h", "F", "Y", h)
    point_x, point_y = ld.Diagram().space("X"), ld.Diagram().space("Y")
    # The figure's shape: data ← X → pair, data ← Y → pair (the two dashed identifications).
    shape = [data, pair, point_x, point_y]
    arrows = [
        (2, 0, inclusion(point_x, data)),
        (2, 1, inclusion(point_x, pair)),
        (3, 0, inclusion(point_y, data)),
        (3, 1, inclusion(point_y, pair)),
    ]
    return colimit(shape, arrows), m, h


def test_figure2_top_glues_a_data_set_and_a_classifier_into_the_square():
    C, m, h = figure2_top()
    apex = C.apex
    assert apex.graph.vertices == ("N", "X", "Y", "F")
    assert ends(apex) == {"x": ("N", "X"), "y": ("N", "Y"), "m": ("X", "F"), "h": ("F", "Y")}
    assert apex.spaces["Y"].loss == ld.losses.cross_entropy and apex.maps["m"].fn is m
    assert len(C.legs) == 4 and C.legs[1].vertices == {"X": "X", "F": "F", "Y": "Y"}
    # The relation spans both pieces, so it is declared on the apex; before, nothing is oriented.
    with pytest.raises(ld.errors.OrientationError, match="y and x·m·h at Y"):
        apex.parallel_pairs()
    apex.relate("x·m·h", "y")
    assert [p.name for p in apex.parallel_pairs()] == ["x·m·h ≤ y"]


def test_figure2_top_is_the_pushout_along_the_two_shared_spaces():
    C, _, _ = figure2_top()
    data, pair = C.diagrams[0], C.diagrams[1]
    shared = ld.Diagram().space("X").space("Y")
    P = pushout(inclusion(shared, data), inclusion(shared, pair))
    assert P.apex.graph.vertices == C.apex.graph.vertices and ends(P.apex) == ends(C.apex)
    u = C.universal([P.legs[0], P.legs[1]])  # the point legs are derived from the arrows
    assert u.is_monic() and dict(u.vertices) == {v: v for v in C.apex.graph.vertices}


def test_figure2_top_compiled_loss_trains_the_classifier_and_the_encoder():
    torch.manual_seed(0)
    C, m, h = figure2_top()
    loss = C.apex.relate("x·m·h", "y").compile()
    assert {id(p) for p in loss.parameters()} == {id(p) for p in [*m.parameters(), *h.parameters()]}
    optimiser = torch.optim.Adam(loss.parameters(), lr=0.05)
    start = loss().total.item()
    for _ in range(60):
        optimiser.zero_grad()
        total, _ = loss()
        total.backward()
        assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in m.parameters())
        optimiser.step()
    assert loss().total.item() < 0.7 * start


# -- Figure 2, bottom ----------------------------------------------------------------


def figure2_bottom():
    backbone, h1, h2 = nn.Linear(4, 3), nn.Linear(3, 3), nn.Linear(3, 3)
    s1 = square(backbone, h1, [batch(1)], i="1")
    s2 = square(backbone, h2, [batch(2)], i="2")
    along = backbone_only()
    return pushout(inclusion(along, s1), inclusion(along, s2)), backbone, h1, h2


def test_figure2_bottom_glues_two_squares_along_the_backbone():
    P, backbone, h1, h2 = figure2_bottom()
    apex = P.apex
    assert apex.graph.vertices == ("N1", "X", "F", "Y1", "N2", "Y2")
    assert ends(apex) == {
        "x1": ("N1", "X"),
        "y1": ("N1", "Y1"),
        "m": ("X", "F"),
        "h1": ("F", "Y1"),
        "x2": ("N2", "X"),
        "y2": ("N2", "Y2"),
        "h2": ("F", "Y2"),
    }
    assert apex.maps["m"].fn is backbone and apex.maps["h1"].fn is h1 and apex.maps["h2"].fn is h2
    assert [str(r) for r in apex.relations] == ["x1·m·h1 ≤ y1", "x2·m·h2 ≤ y2"]
    assert [p.name for p in apex.parallel_pairs()] == ["x1·m·h1 ≤ y1", "x2·m·h2 ≤ y2"]
    s1, s2, along = P.diagrams
    assert P.legs[2].dom is along and P.legs[0]("m") == P.legs[1]("m") == P.legs[2]("m") == "m"
    for leg in P.legs:
        checked(leg)


def test_figure2_bottom_backbone_learns_from_both_heads_and_each_head_from_its_own_task():
    P, backbone, h1, h2 = figure2_bottom()
    loss = P.apex.compile()
    assert sum(p.numel() for p in loss.parameters()) == 15 + 12 + 12
    _, terms = loss()
    params = {"m": list(backbone.parameters()), "h1": list(h1.parameters()), "h2": list(h2.parameters())}
    flat = [p for ps in params.values() for p in ps]
    for name, own, other in (("x1·m·h1 ≤ y1", "h1", "h2"), ("x2·m·h2 ≤ y2", "h2", "h1")):
        grads = dict(zip(map(id, flat), torch.autograd.grad(terms[name], flat, retain_graph=True, allow_unused=True)))
        for key in ("m", own):
            assert all(grads[id(p)] is not None and grads[id(p)].abs().sum() > 0 for p in params[key])
        assert all(grads[id(p)] is None for p in params[other])


def test_figure2_bottom_with_the_same_names_in_both_squares_suffixes_the_diagram_index():
    backbone = nn.Linear(4, 3)
    s1, s2 = square(backbone, nn.Linear(3, 3), [batch(1)]), square(backbone, nn.Linear(3, 3), [batch(2)])
    P = glue(s1, s2, along=backbone_only())
    assert P.apex.graph.vertices == ("N_0", "X", "F", "Y_0", "N_1", "Y_1")
    assert P.apex.graph.edges == ("x_0", "y_0", "m", "h_0", "x_1", "y_1", "h_1")
    assert [p.name for p in P.apex.parallel_pairs()] == ["x_0·m·h_0 ≤ y_0", "x_1·m·h_1 ≤ y_1"]
    assert P.legs[1]("h") == "h_1" and P.legs[1]("Y") == "Y_1"


# -- twenty heads on one backbone -------------------------------------------------------


def twenty_squares(backbone, shared_data=None):
    return [
        square(backbone, nn.Linear(3, 3), shared_data if shared_data is not None else [batch(k)]) for k in range(20)
    ]


def test_twenty_heads_glued_at_once_share_one_backbone_that_runs_once_per_batch():
    backbone = Counting(nn.Linear(4, 3))
    squares = twenty_squares(backbone)
    P = glue(*squares, along=backbone_only())
    apex = P.apex
    heads = [e for e in apex.graph.edges if apex.graph.src(e) == "F"]
    assert heads == [f"h_{k}" for k in range(20)]
    assert [e for e in apex.graph.edges if apex.maps[e].fn is backbone] == ["m"]
    assert [v for v in apex.graph.vertices if v in ("X", "F")] == ["X", "F"]
    pairs = apex.parallel_pairs()
    assert [p.name for p in pairs] == [f"x_{k}·m·h_{k} ≤ y_{k}" for k in range(20)]
    loss = apex.compile()
    total, terms = loss()
    assert len(terms) == 20 and backbone.calls == 20  # twenty data sets: one batch each
    total.backward()
    assert backbone.inner.weight.grad.abs().sum() > 0


def test_twenty_heads_on_one_data_set_run_the_backbone_once():
    backbone = Counting(nn.Linear(4, 3))
    squares = twenty_squares(backbone, shared_data=[batch(0)])
    along = ld.Diagram().space("N").space("X").space("F").map("x", "N", "X", None).map("m", "X", "F", None)
    apex = glue(*squares, along=along).apex
    assert apex.indexing == ("N",)
    total, terms = apex.compile()()
    assert list(terms) == [f"x·m·h_{k} ≤ y_{k}" for k in range(20)] and backbone.calls == 1


def test_twenty_heads_by_repeated_binary_pushouts_give_an_isomorphic_apex():
    backbone = nn.Linear(4, 3)
    squares, along = twenty_squares(backbone), backbone_only()
    at_once = glue(*squares, along=along)

    # Repeated binary pushouts, keeping track of where each square lands.
    apex, along_to_apex = squares[0], inclusion(along, squares[0])
    landing = [DiagramMorphism.identity(squares[0])]
    for s in squares[1:]:
        P = pushout(along_to_apex, inclusion(along, s))
        landing = [leg >> P.legs[0] for leg in landing] + [P.legs[1]]
        apex, along_to_apex = P.apex, P.legs[2]
    assert all(leg.codom is apex for leg in landing)

    u = at_once.universal(landing)
    assert u.codom is apex and u.is_monic()
    assert len(apex.graph.vertices) == len(at_once.apex.graph.vertices) == 2 + 2 * 20
    assert len(apex.graph.edges) == len(at_once.apex.graph.edges) == 1 + 3 * 20
    inverse = DiagramMorphism(
        apex, at_once.apex, {b: a for a, b in u.vertices.items()}, {b: a for a, b in u.edges.items()}
    )  # checked: u is an isomorphism
    assert u >> inverse == DiagramMorphism.identity(at_once.apex)
    for k in range(len(squares)):
        assert at_once.legs[k] >> u == landing[k]
    for v, w in u.vertices.items():
        a, b = at_once.apex.spaces[v], apex.spaces[w]
        assert a.data is b.data and a.loss == b.loss
    for e, f in u.edges.items():
        assert at_once.apex.maps[e].fn is apex.maps[f].fn
    assert {(u.path(r.first), u.path(r.second)) for r in at_once.apex.relations} == {
        (r.first, r.second) for r in apex.relations
    }
    assert len(apex.parallel_pairs()) == 20


# -- names and order ----------------------------------------------------------------------


def test_coproduct_of_a_diagram_with_itself_suffixes_every_name_and_keeps_declaration_order():
    d = ld.Diagram().space("X").space("Y").map("f", "X", "Y", None).map("g", "X", "Y", None)
    C = coproduct(d, d)
    assert C.apex.graph.vertices == ("X_0", "Y_0", "X_1", "Y_1")
    assert C.apex.graph.edges == ("f_0", "g_0", "f_1", "g_1")
    assert C[1] is C.leg(1) is C.legs[1] and len(C) == 2 and list(C) == list(C.legs)
    assert dict(C[1].edges) == {"f": "f_1", "g": "g_1"}


def test_a_glued_class_takes_its_first_members_name():
    a = ld.Diagram().space("P")
    b = ld.Diagram().space("img").space("Y").map("f", "img", "Y", None)
    c = ld.Diagram().space("X").space("Z").map("g", "X", "Z", None)
    P = pushout(inclusion(a, b, {"P": "img"}), inclusion(a, c, {"P": "X"}))
    assert P.apex.graph.vertices == ("img", "Y", "Z")
    assert P.legs[1]("X") == P.legs[2]("P") == "img"


def test_a_suffixed_name_that_is_taken_gets_a_further_suffix():
    d0 = ld.Diagram().space("X")
    d1 = ld.Diagram().space("X").space("X_0")
    assert coproduct(d0, d1).apex.graph.vertices == ("X_0_2", "X_1", "X_0")


def test_vertices_and_edges_are_separate_namespaces():
    d0 = ld.Diagram().space("f").map("f", "f", "f", None)
    C = coproduct(d0, ld.Diagram().space("g"))
    assert C.apex.graph.vertices == ("f", "g") and C.apex.graph.edges == ("f",)


def test_settings_of_the_apex():
    a, b = ld.Diagram(max_length=3, max_paths=50), ld.Diagram(max_length=5, max_paths=10)
    apex = coproduct(a, b).apex
    assert (apex.max_length, apex.max_paths) == (5, 50)
    assert coproduct(a, ld.Diagram()).apex.max_length is None


def test_the_apex_enumerates_walks_when_every_diagram_does():
    a, b = ld.Diagram(cycles="walks", max_length=2), ld.Diagram(cycles="walks", max_length=4)
    apex = coproduct(a, b).apex
    assert (apex.cycles, apex.max_length) == ("walks", 4)
    mixed = coproduct(a, ld.Diagram(max_length=3)).apex
    assert (mixed.cycles, mixed.max_length) == ("simple", 3)


def test_gluing_carries_the_indexing_flag_of_a_vertex_without_data():
    task = (
        ld.Diagram()
        .space("N", indexing=True)
        .space("X")
        .space("Y", loss=ld.losses.cross_entropy)
        .map("x", "N", "X", first)
        .map("y", "N", "Y", lambda b: b[1])
    )
    model = ld.Diagram().space("X").space("Y").space("N").map("f", "X", "Y", nn.Linear(4, 3))
    shared = ld.Diagram().space("X").space("Y").space("N")
    apex = pushout(inclusion(shared, task), inclusion(shared, model)).apex.relate("x·f", "y")
    assert apex.spaces["N"].indexing and apex.indexing == ("N",) and apex.spaces["N"].data is None
    assert [p.name for p in apex.parallel_pairs()] == ["x·f ≤ y"]
    assert list(apex.compile(data={"N": [batch(0)]})().terms) == ["x·f ≤ y"]


def test_gluing_an_edge_into_a_vertex_glued_with_an_indexing_one_is_refused():
    data = ld.Diagram().space("N", indexing=True)
    other = ld.Diagram().space("X").space("N").map("back", "X", "N", None)
    with pytest.raises(ConflictError, match=r"gluing edge 'back' of diagram 1: edge 'back' \(X → N\) ends at indexing"):
        along = ld.Diagram().space("N")
        pushout(inclusion(along, data), inclusion(along, other))


# -- semantics: agreement and conflicts ----------------------------------------------------


def two_y(loss0, loss1, type0=None, type1=None, data0=None, data1=None):
    b = ld.Diagram().space("Y", loss=loss0, type=type0, data=data0)
    c = ld.Diagram().space("Y", loss=loss1, type=type1, data=data1)
    a = ld.Diagram().space("Y")
    return inclusion(a, b), inclusion(a, c)


def test_gluing_a_vertex_with_two_losses_is_a_conflict_naming_both():
    with pytest.raises(
        ConflictError,
        match=r"vertex Y of diagram 0 and vertex Y of diagram 1 are glued "
        r"but carry different losses: mse, cross_entropy",
    ):
        pushout(*two_y(ld.losses.mse, ld.losses.cross_entropy))


def test_gluing_a_vertex_with_two_data_sets_or_two_types_is_a_conflict():
    with pytest.raises(ConflictError, match=r"different data: list \(one object\), list \(another object\)"):
        pushout(*two_y(None, None, data0=[batch(0)], data1=[batch(0)]))
    with pytest.raises(ConflictError, match="different types: Tensor, int"):
        pushout(*two_y(None, None, type0=torch.Tensor, type1=int))


def test_unset_attributes_agree_with_anything_and_the_set_one_is_kept():
    data = [batch(0)]
    apex = pushout(*two_y(None, ld.losses.mse, type0=Any, type1=torch.Tensor, data0=data)).apex
    y = apex.spaces["Y"]
    assert y.loss == ld.losses.mse and y.type is torch.Tensor and y.data is data
    apex = pushout(*two_y(ld.losses.mse, ld.losses.mse, data0=data, data1=data)).apex
    assert apex.spaces["Y"].loss == ld.losses.mse and apex.spaces["Y"].data is data


def test_gluing_an_edge_with_two_model_objects_is_a_conflict_naming_both():
    s1, s2 = (
        square(nn.Linear(4, 3), nn.Linear(3, 3), [batch(1)], i="1"),
        square(nn.Linear(4, 3), nn.Linear(3, 3), [batch(2)], i="2"),
    )
    with pytest.raises(
        ConflictError,
        match=r"edge m of diagram 0 and edge m of diagram 1 are glued but carry "
        r"different functions: Linear \(one object\), Linear \(another object\)",
    ):
        glue(s1, s2, along=backbone_only())


def test_gluing_one_module_frozen_and_trainable_is_a_conflict():
    m = nn.Linear(2, 2)
    b = ld.Diagram().space("X").space("F").map("m", "X", "F", m)
    c = ld.Diagram().space("X").space("F").map("m", "X", "F", m, trainable=False)
    with pytest.raises(
        ConflictError, match="edge m of diagram 0 and edge m of diagram 1 .* trainable flags: True, False"
    ):
        glue(b, c, along=backbone_only())
    # A pattern edge with no function leaves the flags to the edge that has one.
    pattern = ld.Diagram().space("X").space("F").map("m", "X", "F", None, trainable=True)
    along = backbone_only()
    P = pushout(inclusion(along, pattern), inclusion(along, c))
    assert P.apex.maps["m"].fn is m and P.apex.maps["m"].trainable is False


def test_gluing_one_relation_with_two_weights_is_a_conflict_naming_both():
    m, h, data = nn.Linear(4, 3), nn.Linear(3, 3), [batch(0)]
    s1, s2 = square(m, h, data), square(m, h, data, weight=0.5)
    whole = ld.Diagram().space("N").space("X").space("F").space("Y")
    for name, s, t in (("x", "N", "X"), ("y", "N", "Y"), ("m", "X", "F"), ("h", "F", "Y")):
        whole.map(name, s, t, None)
    with pytest.raises(
        ConflictError,
        match=r"relation x·m·h ≤ y of diagram 0 and relation x·m·h ≤ y of diagram 1 "
        r"are glued into x·m·h ≤ y but carry different weights: 1, 0.5",
    ):
        glue(s1, s2, along=whole)
    # The same relation with the same weight is carried once.
    apex = glue(s1, square(m, h, data), along=whole).apex
    assert [str(r) for r in apex.relations] == ["x·m·h ≤ y"] and apex.graph.edges == ("x", "y", "m", "h")


# -- errors on shapes and cocones ----------------------------------------------------------


def test_universal_refuses_what_is_not_a_cocone():
    P, _, _, _ = figure2_bottom()
    s1, s2, _ = P.diagrams
    to_other = coproduct(s1, s2)
    with pytest.raises(
        NotCoconeError,
        match="arrow 1 .*sends vertex 'X' to 'X', which leg 1 sends to 'X_1', but leg 2 sends 'X' to 'X_0'",
    ):
        P.universal([to_other.legs[0], to_other.legs[1]])
    with pytest.raises(NotCoconeError, match="leg 0 does not start at diagram 0"):
        P.universal([to_other.legs[1], to_other.legs[1]])
    with pytest.raises(NotCoconeError, match="one apex"):
        P.universal([P.legs[0], to_other.legs[1]])
    with pytest.raises(NotCoconeError, match="no leg given for diagram 1"):
        to_other.universal([to_other.legs[0]])
    with pytest.raises(NotCoconeError, match="4 legs given for a colimit of 3"):
        P.universal([*P.legs, P.legs[0]])


def test_the_colimit_of_nothing_is_empty_and_maps_anywhere():
    C = colimit([])
    assert C.apex.graph.vertices == () and C.legs == ()
    target = ld.Diagram().space("A")
    u = C.universal([], codom=target)
    assert u.codom is target and dict(u.vertices) == {}
    with pytest.raises(NotCoconeError, match="codom="):
        C.universal([])


def test_shapes_refuse_morphisms_that_do_not_fit():
    a, b = ld.Diagram().space("X"), ld.Diagram().space("X")
    f, g = inclusion(a, b), inclusion(b, a)
    with pytest.raises(ShapeError, match="share one domain"):
        pushout(f, g)
    with pytest.raises(ShapeError, match="not parallel"):
        coequalizer(f, g)
    with pytest.raises(ShapeError, match="arrow 0 \\(1 → 0\\): its morphism's domain is not diagram 1"):
        colimit([a, b], [(1, 0, f)])
    with pytest.raises(ShapeError, match="names diagram 2"):
        colimit([a, b], [(0, 2, f)])
    with pytest.raises(ShapeError, match="at least one"):
        pushout()


def test_inclusion_maps_parts_by_name_unless_told_otherwise():
    sub = backbone_only()
    d = ld.Diagram().space("img").space("F").map("m", "img", "F", None).map("n", "img", "F", None)
    assert dict(inclusion(sub, d, {"X": "img"}, {"m": "n"}).edges) == {"m": "n"}
    with pytest.raises(NotNaturalError, match="vertex 'X' has no vertex of its name .* vertices=\\{'X': ...\\}"):
        inclusion(sub, d)
    with pytest.raises(NotNaturalError, match="'Q' is not in the sub-diagram"):
        inclusion(sub, d, {"X": "img", "Q": "F"})
    with pytest.raises(NotNaturalError, match="edge 'm'"):
        inclusion(sub, d, {"X": "F"})


# -- the universal property against brute force ----------------------------------------------


def to_diagram(g: ld.Graph, extra: bool = False) -> ld.Diagram:
    d = ld.Diagram()
    for v in g.vertices:
        d.space(v)
    for e in g.edges:
        d.map(e, g.src(e), g.tgt(e), None)
    if extra:  # a vertex with a loop: something always maps here
        d.space("T").map("t", "T", "T", None)
    return d


def homs(d: ld.Diagram, e: ld.Diagram, allowed_v=None, allowed_e=None):
    """Every morphism d → e (as vertex and edge dicts) within the allowed images, by brute force."""
    dv, de, ev, ee = d.graph.vertices, d.graph.edges, e.graph.vertices, e.graph.edges
    for images in product(*[sorted((allowed_v or {}).get(v, ev)) for v in dv]):
        vmap = dict(zip(dv, images))
        options = [
            [
                h
                for h in ee
                if (e.graph.src(h), e.graph.tgt(h)) == (vmap[d.graph.src(x)], vmap[d.graph.tgt(x)])
                and h in (allowed_e or {}).get(x, ee)
            ]
            for x in de
        ]
        for choice in product(*options):
            yield vmap, dict(zip(de, choice))


def count_factorisations(C: Colimit, cocone: list[DiagramMorphism]) -> int:
    """How many morphisms apex → Q make every triangle commute (brute force, constrained by the triangles)."""
    apex, target = C.apex, cocone[0].codom
    allowed_v = {v: set(target.graph.vertices) for v in apex.graph.vertices}
    allowed_e = {e: set(target.graph.edges) for e in apex.graph.edges}
    for leg, q in zip(C.legs, cocone):
        for v, w in leg.vertices.items():
            allowed_v[w] &= {q.vertices[v]}
        for e, f in leg.edges.items():
            allowed_e[f] &= {q.edges[e]}
    return sum(1 for _ in homs(apex, target, allowed_v, allowed_e))


def oracle_classes(parts, pairs):
    """Blocks of the equivalence generated by ``pairs`` on ``parts``, by naive merging of sets."""
    blocks = [{p} for p in parts]
    for x, y in pairs:
        bx = next(b for b in blocks if x in b)
        by = next(b for b in blocks if y in b)
        if bx is not by:
            blocks.remove(by)
            bx |= by
    return blocks


def assert_quotient(C: Colimit, glued: list[int], pairs_v, pairs_e):
    """The apex's parts are exactly the classes of the glued diagrams' parts."""
    for pairs, parts_of, leg_of in (
        (pairs_v, lambda d: d.graph.vertices, lambda leg: leg.vertices),
        (pairs_e, lambda d: d.graph.edges, lambda leg: leg.edges),
    ):
        parts = [(i, x) for i in glued for x in parts_of(C.diagrams[i])]
        blocks = oracle_classes(parts, pairs)
        image = {(i, x): leg_of(C.legs[i])[x] for i, x in parts}
        assert len(parts_of(C.apex)) == len(blocks)
        for block in blocks:
            assert len({image[p] for p in block}) == 1
        assert len({image[next(iter(b))] for b in blocks}) == len(blocks)


@st.composite
def spans(draw, same: bool | None = None):
    """Diagrams B, C and morphisms f: A → B, g: A → C (C is B when ``same``); any such span can come out."""
    b = to_diagram(draw(graphs(max_vertices=3, max_edges=3)))
    same = draw(st.booleans()) if same is None else same
    c = b if same else to_diagram(draw(graphs(max_vertices=3, max_edges=3)))
    pairs: list[tuple[str, str]] = []

    def vertex(pair):
        existing = [k for k, p in enumerate(pairs) if p == pair]
        k = draw(st.integers(0, len(existing)))
        if k < len(existing):
            return existing[k]
        pairs.append(pair)
        return len(pairs) - 1

    for _ in range(draw(st.integers(0, 2))):
        vertex((draw(st.sampled_from(b.graph.vertices)), draw(st.sampled_from(c.graph.vertices))))
    edges = []
    if b.graph.edges and c.graph.edges:
        for _ in range(draw(st.integers(0, 3))):
            eb, ec = draw(st.sampled_from(b.graph.edges)), draw(st.sampled_from(c.graph.edges))
            s = vertex((b.graph.src(eb), c.graph.src(ec)))
            t = vertex((b.graph.tgt(eb), c.graph.tgt(ec)))
            edges.append((s, t, eb, ec))
    a = ld.Diagram()
    for k in range(len(pairs)):
        a.space(f"a{k}")
    for k, (s, t, _, _) in enumerate(edges):
        a.map(f"d{k}", f"a{s}", f"a{t}", None)
    f = DiagramMorphism(
        a, b, {f"a{k}": p[0] for k, p in enumerate(pairs)}, {f"d{k}": x[2] for k, x in enumerate(edges)}
    )
    g = DiagramMorphism(
        a, c, {f"a{k}": p[1] for k, p in enumerate(pairs)}, {f"d{k}": x[3] for k, x in enumerate(edges)}
    )
    return f, g


def targets():
    return graphs(max_vertices=2, max_edges=3).map(lambda g: to_diagram(g, extra=True))


def constant(d: ld.Diagram, q: ld.Diagram) -> DiagramMorphism:
    return DiagramMorphism(d, q, dict.fromkeys(d.graph.vertices, "T"), dict.fromkeys(d.graph.edges, "t"))


def agreeing(draw, d, q, fixed_v, fixed_e, label):
    """A random morphism d → q sending each part in ``fixed_*`` (pairs: part, image) to its image,
    or None when there is none."""
    allowed_v: dict[str, set[str]] = {}
    allowed_e: dict[str, set[str]] = {}
    for allowed, fixed, everything in ((allowed_v, fixed_v, q.graph.vertices), (allowed_e, fixed_e, q.graph.edges)):
        for part, image in fixed:
            allowed[part] = allowed.get(part, set(everything)) & {image}
    options = list(homs(d, q, allowed_v, allowed_e))
    if not options:
        return None
    event(f"{label}: a cocone from search")
    vmap, emap = draw(st.sampled_from(options))
    return DiagramMorphism(d, q, vmap, emap)


LAW_SETTINGS = settings(max_examples=150, deadline=None)


@LAW_SETTINGS
@given(data=st.data(), span=spans(), q=targets())
def test_pushout_is_the_quotient_and_factors_every_cocone_uniquely(data, span, q):
    f, g = span
    P = pushout(f, g)
    b, c, a = P.diagrams
    assert (b, c, a) == (f.codom, g.codom, f.dom)
    for leg in P.legs:
        checked(leg)
    assert f >> P.legs[0] == P.legs[2] == g >> P.legs[1]
    assert_quotient(
        P, [0, 1], [((0, f(v)), (1, g(v))) for v in a.graph.vertices], [((0, f(e)), (1, g(e))) for e in a.graph.edges]
    )

    q1 = agreeing(data.draw, b, q, [], [], "pushout q1")
    q2 = agreeing(
        data.draw,
        c,
        q,
        [(g(v), q1(f(v))) for v in a.graph.vertices],
        [(g(e), q1(f(e))) for e in a.graph.edges],
        "pushout q2",
    )
    if q2 is None:
        q1, q2 = constant(b, q), constant(c, q)
    u = P.universal([q1, q2])
    checked(u)
    assert P.legs[0] >> u == q1 and P.legs[1] >> u == q2 and P.legs[2] >> u == f >> q1
    assert count_factorisations(P, [q1, q2, f >> q1]) == 1

    # Any pair of morphisms that disagrees on A is refused.
    r1 = agreeing(data.draw, b, q, [], [], "other")
    r2 = agreeing(data.draw, c, q, [], [], "other")
    if (f >> r1) != (g >> r2):
        with pytest.raises(NotCoconeError, match="not a cocone"):
            P.universal([r1, r2])


@LAW_SETTINGS
@given(data=st.data(), span=spans(same=False), q=targets())
def test_coproduct_is_the_disjoint_union_and_factors_every_pair_uniquely(data, span, q):
    f, g = span
    b, c = f.codom, g.codom
    C = coproduct(b, c)
    assert len(C.apex.graph.vertices) == len(b.graph.vertices) + len(c.graph.vertices)
    assert len(C.apex.graph.edges) == len(b.graph.edges) + len(c.graph.edges)
    assert_quotient(C, [0, 1], [], [])
    q1 = agreeing(data.draw, b, q, [], [], "coproduct")
    q2 = agreeing(data.draw, c, q, [], [], "coproduct")
    u = C.universal([q1, q2])
    checked(u)
    assert C.legs[0] >> u == q1 and C.legs[1] >> u == q2
    assert count_factorisations(C, [q1, q2]) == 1


@LAW_SETTINGS
@given(data=st.data(), span=spans(same=True), q=targets())
def test_coequalizer_is_the_quotient_and_factors_every_coequalizing_morphism_uniquely(data, span, q):
    f, g = span
    a, b = f.dom, f.codom
    Q = coequalizer(f, g)
    assert Q.diagrams == (b, a)
    for leg in Q.legs:
        checked(leg)
    assert f >> Q.legs[0] == g >> Q.legs[0] == Q.legs[1]
    assert_quotient(
        Q, [0], [((0, f(v)), (0, g(v))) for v in a.graph.vertices], [((0, f(e)), (0, g(e))) for e in a.graph.edges]
    )
    candidates = [DiagramMorphism(b, q, vm, em) for vm, em in homs(b, q)]
    coequalizing = [k for k in candidates if f >> k == g >> k]
    event(f"coequalizing morphisms: {min(len(coequalizing), 3)}")
    k = data.draw(st.sampled_from(coequalizing))  # never empty: the constant map to T coequalizes
    u = Q.universal([k])
    checked(u)
    assert Q.legs[0] >> u == k
    assert count_factorisations(Q, [k, f >> k]) == 1
    # The morphisms that factor through the coequalizer are exactly the coequalizing ones.
    through = {DiagramMorphism(Q.apex, q, vm, em) for vm, em in homs(Q.apex, q)}
    assert {(tuple(x.vertices.items()), tuple(x.edges.items())) for x in (Q.legs[0] >> t for t in through)} == {
        (tuple(x.vertices.items()), tuple(x.edges.items())) for x in coequalizing
    }
    bad = [k for k in candidates if f >> k != g >> k]
    if bad:
        with pytest.raises(NotCoconeError, match="not a cocone"):
            Q.universal([bad[0]])


def test_brute_force_oracles_count_exactly_on_tiny_graphs():
    # A 2-vertex path maps into a 3-vertex path in exactly two ways.
    path2 = ld.Diagram().space("A").space("B").map("f", "A", "B", None)
    path3 = ld.Diagram().space("P").space("Q").space("R").map("u", "P", "Q", None).map("v", "Q", "R", None)
    assert len(list(homs(path2, path3))) == 2
    # Two parallel edges into a vertex with two loops: 2 × 2 ways.
    loops = ld.Diagram().space("T").map("s", "T", "T", None).map("t", "T", "T", None)
    parallel = ld.Diagram().space("A").space("B").map("f", "A", "B", None).map("g", "A", "B", None)
    assert len(list(homs(parallel, loops))) == 4
    C = coproduct(parallel)
    cocone = [inclusion(parallel, loops, {"A": "T", "B": "T"}, {"f": "s", "g": "t"})]
    assert count_factorisations(C, cocone) == 1
    assert oracle_classes([1, 2, 3, 4], [(1, 2), (3, 2)]) == [{1, 2, 3}, {4}]
