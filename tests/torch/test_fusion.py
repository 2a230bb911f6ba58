"""Fused families on PyTorch: stacked storage, one call, terms at once, against the unfused compilation."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

import learning_diagrams as ld
from learning_diagrams.core import Diagram
from learning_diagrams.core import losses as library
from learning_diagrams.core.errors import MapError, OptionError
from learning_diagrams.torch.fusion import families as torch_families
from learning_diagrams.training.checkpoint import load_checkpoint, save_checkpoint


def test_pytorch_signatures_tell_linear_heads_apart_by_shape_and_hooks():
    d = Diagram().space("N", data=[(torch.ones(4, 8), torch.zeros(4, 5, dtype=torch.long))]).space("X")
    d.map("x", "N", "X", lambda b: b[0])
    modules = [nn.Linear(8, 2), nn.Linear(8, 2), nn.Linear(8, 2), nn.Linear(8, 2), nn.Linear(8, 3)]
    modules[3].register_forward_hook(lambda *args: None)
    for i, m in enumerate(modules):
        d.space(f"Y{i}", loss=library.cross_entropy).map(f"head{i}", "X", f"Y{i}", m)
        d.map(f"y{i}", "N", f"Y{i}", lambda b, i=i: b[1][:, i]).relate(f"x·head{i}", f"y{i}")
    assert [f.edges for f in torch_families(d.compile())] == [("head0", "head1", "head2")]


def heads_diagram(backbone, heads, batch, loss=library.cross_entropy, data=None):
    d = Diagram().space("N", data=data or [batch]).space("X").space("F")
    d.map("x", "N", "X", lambda b: b[0]).map("backbone", "X", "F", backbone)
    for i, head in enumerate(heads):
        d.space(f"Y{i}", loss=loss).map(f"head{i}", "F", f"Y{i}", head)
        d.map(f"y{i}", "N", f"Y{i}", lambda b, i=i: b[1][:, i]).relate(
            f"x·backbone·head{i}", f"y{i}", weight=1 + i / 10
        )
    return d


def episodes_diagram(heads, batches):
    """Glued few-shot squares: each head on its own source's features, through one frozen backbone."""
    d = Diagram().space("X").space("F").map("m", "X", "F", nn.Linear(6, 8), trainable=False)
    for i, (head, batch) in enumerate(zip(heads, batches)):
        d.space(f"N{i}", data=[batch]).space(f"Y{i}", loss=library.cross_entropy)
        d.map(f"x{i}", f"N{i}", "X", lambda b: b[0]).map(f"y{i}", f"N{i}", f"Y{i}", lambda b: b[1])
        d.map(f"h{i}", "F", f"Y{i}", head).relate(f"x{i}·m·h{i}", f"y{i}")
    return d


def run(loss, batches):
    """The total and terms of one call, and the gradient of every parameter the loss exposes, by the members'."""
    loss.zero_grad(set_to_none=True)
    total, terms = loss(batches)
    total.backward()
    return total.detach(), {k: v.detach() for k, v in terms.items()}


def member_grads(loss, modules):
    """Each module's parameters' gradients, read from a fused loss's stacked tensors where they are members."""
    found = []
    for m in modules:
        for name, p in m.named_parameters():
            for family in loss.fused:
                if m in family.members:
                    k, i = family.names.index(name), family.members.index(m)
                    found.append(family.stacked[k].grad[i])
                    break
            else:
                found.append(p.grad)
    return found


def assert_same(plain, fused, plain_grads, fused_grads):
    torch.testing.assert_close(fused[0], plain[0], rtol=1e-6, atol=1e-6)
    assert list(plain[1]) == list(fused[1])
    for k in plain[1]:
        torch.testing.assert_close(fused[1][k], plain[1][k], rtol=1e-6, atol=1e-6)
    for a, b in zip(plain_grads, fused_grads):
        torch.testing.assert_close(b, a, rtol=1e-5, atol=1e-6)


def test_fused_heads_give_the_unfused_terms_and_gradients_from_stacked_parameters():
    torch.manual_seed(0)
    backbone = nn.Sequential(nn.Linear(6, 8), nn.ReLU())
    heads = [nn.Linear(8, 3) for _ in range(7)]
    batch = (torch.randn(16, 6), torch.randint(3, (16, 7)))
    d = heads_diagram(backbone, heads, batch)
    keys = d.compile().state_dict()
    plain_loss = d.compile()
    plain = run(plain_loss, {"N": batch})
    plain_grads = [p.grad.clone() for m in [backbone, *heads] for p in m.parameters()]
    plain_loss.zero_grad(set_to_none=True)
    fused_loss = d.compile(fuse=True)
    (family,) = fused_loss.fused
    assert family.family.edges == tuple(f"head{i}" for i in range(7)) and family.linear
    # parameters(): the backbone's, then one stacked tensor per name where head0's were
    assert [tuple(p.shape) for p in fused_loss.parameters()] == [(8, 6), (8,), (7, 3, 8), (7, 3)]
    assert [n for n, _ in fused_loss.named_parameters()][2:] == ["fused.0.weight", "fused.0.bias"]
    fused = run(fused_loss, {"N": batch})
    assert_same(plain, fused, plain_grads, member_grads(fused_loss, [backbone, *heads]))
    assert heads[3].weight.grad is None  # the gradient is the stacked tensor's
    # each head keeps its tensors: same keys, values the views of the stacked slices
    state = fused_loss.state_dict()
    assert state.keys() == keys.keys()
    assert torch.equal(state["maps.head3.weight"], family.stacked[0][3])
    assert heads[3].weight.data_ptr() == family.stacked[0][3].data_ptr()


@pytest.mark.parametrize("norm", [False, True], ids=["layer-by-layer", "vmap"])
def test_sequential_members_and_a_frozen_member_that_leaves(norm):
    torch.manual_seed(1)
    middle = (lambda: nn.LayerNorm(5)) if norm else nn.Tanh
    heads = [nn.Sequential(nn.Linear(4, 5), middle(), nn.Linear(5, 3)) for _ in range(5)]
    batch = (torch.randn(10, 4), torch.randint(3, (10, 5)))
    d = heads_diagram(nn.Identity(), heads, batch)
    d.freeze("head4")
    plain_loss = d.compile()
    plain = run(plain_loss, {"N": batch})
    plain_grads = [p.grad.clone() for m in heads[:4] for p in m.parameters()]
    fused_loss = d.compile(fuse=True)
    assert [len(f.members) for f in fused_loss.fused] == [4] and fused_loss.fused[0].chain is not norm
    fused = run(fused_loss, {"N": batch})
    assert_same(plain, fused, plain_grads, member_grads(fused_loss, heads[:4]))


def test_heads_on_different_inputs_stack_them_and_inputs_of_other_shapes_run_one_by_one():
    torch.manual_seed(2)
    heads = [nn.Linear(8, 5) for _ in range(4)]
    batches = [(torch.randn(6, 6), torch.randint(5, (6,))) for _ in range(4)]
    d = episodes_diagram(heads, batches)
    given = {f"N{i}": b for i, b in enumerate(batches)}
    plain = run(d.compile(), given)
    plain_grads = [p.grad.clone() for m in heads for p in m.parameters()]
    fused_loss = d.compile(fuse=True)
    assert [f.family.shared for f in fused_loss.fused] == [False]
    fused = run(fused_loss, given)
    assert_same(plain, fused, plain_grads, member_grads(fused_loss, heads))
    # one episode of another size: that call runs member by member, on the same stacked tensors
    ragged = {**given, "N2": (torch.randn(9, 6), torch.randint(5, (9,)))}
    plain = run(d.compile(), ragged)
    plain_grads = [p.grad.clone() for m in heads for p in m.parameters()]
    fused = run(fused_loss, ragged)
    assert_same(plain, fused, plain_grads, member_grads(fused_loss, heads))
    # a source without a batch: the others' members still run as one
    partial = {**given, "N1": None}
    torch.testing.assert_close(fused_loss(partial).total, d.compile()(partial).total, rtol=1e-6, atol=1e-6)


def test_terms_of_a_loss_without_a_per_sample_form_are_computed_one_by_one():
    torch.manual_seed(3)
    heads = [nn.Linear(8, 3) for _ in range(3)]
    batch = (torch.randn(5, 8), torch.randn(5, 3, 3))
    own = library.as_loss(lambda a, b: ((a - b) ** 2).mean())
    d = heads_diagram(nn.Identity(), heads, batch, loss=own)
    plain = run(d.compile(), {"N": batch})
    fused_loss = d.compile(fuse=True)
    assert len(fused_loss.fused) == 1
    program = fused_loss._program(fused_loss.sources, keep=False)
    assert not program._fused_term_ops and [op.select for op in program.operations if op.select is not None] == [
        0,
        1,
        2,
    ]
    fused = run(fused_loss, {"N": batch})
    torch.testing.assert_close(fused[0], plain[0], rtol=1e-6, atol=1e-6)


def test_adam_on_the_stacked_tensors_makes_the_updates_of_adam_on_each_member():
    torch.manual_seed(4)
    heads = [nn.Linear(8, 3) for _ in range(6)]
    backbone = nn.Linear(5, 8)
    batch = (torch.randn(12, 5), torch.randint(3, (12, 6)))
    twins = copy.deepcopy((backbone, heads))
    plain_loss = heads_diagram(*twins, batch).compile()
    fused_loss = heads_diagram(backbone, heads, batch).compile(fuse=True)
    for loss in (plain_loss, fused_loss):
        optimiser = torch.optim.Adam(loss.parameters(), lr=0.01)
        for _ in range(5):
            optimiser.zero_grad()
            loss({"N": batch}).total.backward()
            optimiser.step()
    for a, b in zip(twins[1], heads):
        torch.testing.assert_close(b.weight, a.weight, rtol=1e-5, atol=1e-6)
    assert len(optimiser.param_groups[0]["params"]) == 4  # backbone weight and bias, two stacked tensors


def test_compiling_again_keeps_the_stacked_tensors_and_a_swapped_member_makes_new_ones():
    heads = [nn.Linear(4, 2) for _ in range(4)]
    batch = (torch.randn(3, 4), torch.randint(2, (3, 4)))
    d = heads_diagram(nn.Identity(), heads, batch)
    first = d.compile(fuse=True)
    again = d.compile(fuse=True)
    assert again.fused[0].stacked[0] is first.fused[0].stacked[0]
    d.maps["head2"].fn = nn.Linear(4, 2)
    swapped = d.compile(fuse=True)
    assert swapped.fused[0].family.edges == ("head0", "head1", "head2", "head3")
    assert swapped.fused[0].stacked[0] is not first.fused[0].stacked[0]
    torch.testing.assert_close(swapped({"N": batch}).total, d.compile()({"N": batch}).total, rtol=1e-6, atol=1e-6)


def test_state_dicts_and_checkpoints_read_and_write_the_members_through_the_stack(tmp_path):
    torch.manual_seed(5)
    heads = [nn.Linear(4, 2) for _ in range(3)]
    batch = (torch.randn(3, 4), torch.randint(2, (3, 3)))
    loss = heads_diagram(nn.Identity(), heads, batch).compile(fuse=True)
    modules = nn.ModuleDict({f"h{i}": h for i, h in enumerate(heads)})
    saved = {k: v.clone() for k, v in modules.state_dict().items()}
    save_checkpoint(tmp_path, module=modules, state={}, step=1)
    assert torch.equal(heads[1].weight, saved["h1.weight"])
    assert heads[1].weight.data_ptr() == loss.fused[0].stacked[0][1].data_ptr()  # still a view after saving
    with torch.no_grad():
        loss.fused[0].stacked[0].zero_()
    assert not heads[2].weight.any()
    load_checkpoint(tmp_path, module=modules)
    torch.testing.assert_close(loss.fused[0].stacked[0][2], saved["h2.weight"])
    modules.load_state_dict({k: torch.ones_like(v) for k, v in saved.items()})
    assert bool((loss.fused[0].stacked[1] == 1).all())


def test_a_member_that_fails_is_named_as_its_own_map_would_be():
    heads = [nn.Linear(4, 2) for _ in range(3)]
    batches = [(torch.randn(3, 6), torch.randint(2, (3,))) for _ in range(3)]
    d = episodes_diagram(heads, batches)
    d.maps["m"].fn = nn.Linear(6, 5).requires_grad_(False)  # every head now gets 5 features, not 4
    with pytest.raises(MapError, match="h0"):
        d.compile(fuse=True)({f"N{i}": b for i, b in enumerate(batches)})


@pytest.mark.parametrize("fuse", ["yes", 1, None])
def test_fuse_is_true_auto_or_false_and_anything_else_is_refused_rather_than_read_as_true(fuse):
    d = episodes_diagram([nn.Linear(4, 2) for _ in range(3)], [(torch.randn(3, 6), torch.randint(2, (3,)))] * 3)
    with pytest.raises(OptionError, match=r"fuse must be True \(or 'auto', the same\) or False, got .*finds the"):
        d.compile(fuse=fuse)
    assert [len(f.family.edges) for f in d.compile(fuse="auto").fused] == [3]
    assert d.compile(fuse=False).fused == []


def test_moving_the_loss_moves_the_stacks_and_keeps_the_members_views():
    heads = [nn.Linear(4, 2) for _ in range(3)]
    loss = heads_diagram(nn.Identity(), heads, (torch.randn(3, 4), torch.randint(2, (3, 3)))).compile(fuse=True)
    loss.double()
    assert loss.fused[0].stacked[0].dtype == torch.float64 and heads[1].weight.dtype == torch.float64
    assert heads[1].weight.data_ptr() == loss.fused[0].stacked[0][1].data_ptr()


def test_fit_with_fuse_trains_as_without_and_a_head_with_its_own_rate_leaves_the_family():
    torch.manual_seed(6)
    backbone, heads = nn.Linear(5, 8), [nn.Linear(8, 3) for _ in range(5)]
    batch = (torch.randn(12, 5), torch.randint(3, (12, 5)))
    twins = copy.deepcopy((backbone, heads))
    options = dict(epochs=4, lr=0.01, log_dir=False, progress=False, cache=False)
    plain = ld.fit(heads_diagram(*twins, batch, data=[batch] * 3), **options)
    fused = ld.fit(heads_diagram(backbone, heads, batch, data=[batch] * 3), fuse=True, **options)
    for name in plain.records[-1]["values"]:
        assert fused.last(name) == pytest.approx(plain.last(name), rel=1e-5)
    for a, b in zip(twins[1], heads):
        torch.testing.assert_close(b.weight, a.weight, rtol=1e-5, atol=1e-6)
    # head1 with a rate of its own is kept out of the family: the same weights as unfused with that rate
    own = dict(options, lrs={"head1": 0.1}, epochs=2)
    ld.fit(heads_diagram(*twins, batch, data=[batch] * 3), **own)
    ld.fit(heads_diagram(backbone, heads, batch, data=[batch] * 3), fuse=True, **own)
    for a, b in zip(twins[1], heads):
        torch.testing.assert_close(b.weight, a.weight, rtol=1e-5, atol=1e-6)


def test_lens_adam_steps_the_stacked_tensors_as_it_steps_each_member_and_the_lens_bridge_refuses_fusion():
    from learning_diagrams.lenses.bridges import LensOptimizer, diagram_loss
    from learning_diagrams.lenses.optim import adam

    torch.manual_seed(7)
    heads = [nn.Linear(8, 3) for _ in range(4)]
    batch = (torch.randn(6, 8), torch.randint(3, (6, 4)))
    twins = copy.deepcopy(heads)
    for loss in (
        heads_diagram(nn.Identity(), twins, batch).compile(),
        heads_diagram(nn.Identity(), heads, batch).compile(fuse=True),
    ):
        optimiser = LensOptimizer(loss.parameters(), adam(lr=0.05))
        for _ in range(3):
            optimiser.zero_grad()
            loss({"N": batch}).total.backward()
            optimiser.step()
    for a, b in zip(twins, heads):
        torch.testing.assert_close(b.weight, a.weight, rtol=1e-5, atol=1e-6)
    with pytest.raises(ld.errors.OptionError, match="fuse"):
        diagram_loss(loss)
