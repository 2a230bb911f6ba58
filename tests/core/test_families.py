"""Families of parallel maps: structurally identical edges, each reading one value, ending at one kind of loss."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from learning_diagrams.core import Diagram, losses
from learning_diagrams.core.diagram import Map, Pair
from learning_diagrams.core.families import families


class Head:
    """A stand-in module: its signature is its shape."""

    def __init__(self, shape: tuple[int, int]):
        self.shape = shape

    def __call__(self, x):
        return x


def signature(m):
    return ("Head", m.fn.shape) if isinstance(m.fn, Head) else None


def heads(n: int, shapes=None, loss=losses.cross_entropy) -> Diagram:
    d = Diagram().space("N", data=[0]).space("X").space("F")
    d.map("x", "N", "X", abs).map("backbone", "X", "F", Head((8, 4)))
    for i in range(n):
        d.space(f"Y{i}", loss=loss)
        d.map(f"y{i}", "N", f"Y{i}", abs).map(f"head{i}", "F", f"Y{i}", Head(shapes[i] if shapes else (4, 2)))
        d.relate(f"x·backbone·head{i}", f"y{i}", weight=1.0 + i)
    return d


def found(d: Diagram, **options):
    return [(f.inputs[0][1], f.edges) for f in families(d.compiled_pairs(), d.maps, signature=signature, **options)]


def test_fifty_heads_on_one_backbone_are_one_family_with_every_pair():
    d = heads(50)
    (family,) = families(d.compiled_pairs(), d.maps, signature=signature)
    assert family.shared and family.inputs[0] == ("N", ("x", "backbone"))
    assert family.edges == tuple(f"head{i}" for i in range(50))
    assert family.pairs == tuple(f"x·backbone·head{i} ≤ y{i}" for i in range(50))


def test_a_frozen_member_and_a_member_of_another_shape_leave_the_family():
    d = heads(6, shapes=[(4, 2)] * 5 + [(4, 3)])
    d.freeze("head0")
    assert found(d) == [(("x", "backbone"), ("head1", "head2", "head3", "head4"))]
    assert found(d, least=1) == [
        (("x", "backbone"), ("head0",)),
        (("x", "backbone"), ("head1", "head2", "head3", "head4")),
        (("x", "backbone"), ("head5",)),
    ]


def test_fewer_than_three_members_make_no_family_and_plain_functions_none():
    assert found(heads(2)) == []
    d = heads(4)
    for i in range(4):
        d.maps[f"head{i}"].fn = abs
    assert found(d) == []


def test_a_map_taken_at_two_prefixes_or_not_last_is_no_member():
    d = heads(4)
    d.space("Z", loss=losses.cross_entropy).map("again", "N", "Z", abs)
    d.map("via", "X", "Z", abs)
    # head0 now also runs after `x` alone: it reads two values
    d.map("h0x", "X", "F", abs)
    d.relate("x·h0x·head0", "x·backbone·head0")
    assert found(d) == [(("x", "backbone"), ("head1", "head2", "head3"))]


def test_heads_on_different_inputs_are_one_family_unless_their_groups_differ():
    d = heads(3)
    d.space("M", data=[1]).map("x2", "M", "X", abs)
    for i in range(3, 6):
        d.space(f"Y{i}", loss=losses.cross_entropy).map(f"y{i}", "M", f"Y{i}", abs)
        d.map(f"head{i}", "X", f"Y{i}", Head((4, 2))).relate(f"x2·head{i}", f"y{i}")
    (family,) = families(d.compiled_pairs(), d.maps, signature=signature)
    assert family.edges == tuple(f"head{i}" for i in range(6)) and not family.shared
    assert family.inputs == (("N", ("x", "backbone")),) * 3 + (("M", ("x2",)),) * 3
    apart = families(d.compiled_pairs(), d.maps, signature=signature, group=lambda e: e in ("head0", "head4"))
    assert [f.edges for f in apart] == [("head1", "head2", "head3", "head5")]


def test_one_module_on_two_edges_is_one_member_and_other_losses_split():
    d = heads(4)
    d.maps["head3"].fn = d.maps["head2"].fn
    assert found(d) == [(("x", "backbone"), ("head0", "head1", "head2"))]
    mixed = heads(6)
    for i in (3, 4, 5):
        mixed.spaces[f"Y{i}"].loss = losses.mse
    assert found(mixed) == [
        (("x", "backbone"), ("head0", "head1", "head2")),
        (("x", "backbone"), ("head3", "head4", "head5")),
    ]


def test_a_group_is_kept_apart():
    d = heads(6)
    assert found(d, group=lambda e: e in ("head0", "head1", "head2")) == [
        (("x", "backbone"), ("head0", "head1", "head2")),
        (("x", "backbone"), ("head3", "head4", "head5")),
    ]


# -- properties on random pairs ------------------------------------------------------------------

EDGES = [f"e{i}" for i in range(8)]


@st.composite
def regimes(draw):
    """Random maps (signatures A, B or none; trainable or not; some sharing a function) and random pairs."""
    functions = [object() for _ in range(6)]
    maps, kinds = {}, {}
    for e in EDGES:
        kinds[e] = draw(st.sampled_from(["A", "B", None]))
        maps[e] = Map(e, "S", "T", draw(st.sampled_from(functions)), trainable=draw(st.booleans()))
    maps["label"] = Map("label", "S", "T", abs)
    pairs = []
    for i in range(draw(st.integers(1, 10))):
        path = tuple(draw(st.lists(st.sampled_from(EDGES), min_size=1, max_size=3, unique=True)))
        loss = draw(st.sampled_from([losses.mse, losses.l1]))
        pairs.append(Pair(draw(st.sampled_from(["N", "M"])), f"Y{i}", path, ("label",), loss))
    return pairs, maps, kinds


@settings(max_examples=200, deadline=None)
@given(regimes(), st.integers(1, 3))
def test_families_are_disjoint_uniform_and_maximal(regime, least):
    pairs, maps, kinds = regime
    found = families(pairs, maps, signature=lambda m: kinds.get(m.name), least=least)
    members = [e for f in found for e in f.edges]
    assert len(members) == len(set(members))  # disjoint
    assert len({id(maps[e].fn) for e in members}) == len(members)  # distinct functions

    def uses(e):
        return {
            (p.source, path[: path.index(e)], path.index(e) == len(path) - 1, p.loss)
            for p in pairs
            for path in (p.first, p.second)
            if e in path
        }

    for f in found:
        assert len(f.edges) >= least
        for e, read in zip(f.edges, f.inputs):  # every member: one use, the last edge, at its input, one signature
            ((source, prefix, last, _),) = {(s, pre, la, None) for s, pre, la, _ in uses(e)}
            assert ((source, prefix), last) == (read, True)
            assert kinds[e] is not None and len({loss for *_, loss in uses(e)}) == 1
        keys = {(kinds[e], maps[e].trainable, next(iter(uses(e)))[3]) for e in f.edges}
        assert len(keys) == 1  # one signature, trained alike, one loss

    # Maximal: an edge that could join a family is left out only for a function another candidate took.
    def candidate(e):
        u = uses(e)
        return len(u) == 1 and kinds[e] is not None and next(iter(u))[2] and len({x[3] for x in u}) == 1

    for f in found:
        key = (kinds[f.edges[0]], maps[f.edges[0]].trainable, next(iter(uses(f.edges[0])))[3])
        for e in set(EDGES) - set(members):
            if not candidate(e):
                continue
            loss = next(iter(uses(e)))[3]
            if (kinds[e], maps[e].trainable, loss) == key:
                assert any(maps[e].fn is maps[o].fn for o in EDGES if o != e and candidate(o))
