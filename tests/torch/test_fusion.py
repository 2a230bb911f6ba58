"""The families of parallel maps a PyTorch compiled loss has (torch.fusion's signatures)."""

from __future__ import annotations

import torch
from torch import nn

from learning_diagrams.core import Diagram
from learning_diagrams.core import losses as library
from learning_diagrams.torch.fusion import families as torch_families


def test_pytorch_signatures_tell_linear_heads_apart_by_shape_and_hooks():
    d = Diagram().space("N", data=[(torch.ones(4, 8), torch.zeros(4, 5, dtype=torch.long))]).space("X")
    d.map("x", "N", "X", lambda b: b[0])
    modules = [nn.Linear(8, 2), nn.Linear(8, 2), nn.Linear(8, 2), nn.Linear(8, 2), nn.Linear(8, 3)]
    modules[3].register_forward_hook(lambda *args: None)
    for i, m in enumerate(modules):
        d.space(f"Y{i}", loss=library.cross_entropy).map(f"head{i}", "X", f"Y{i}", m)
        d.map(f"y{i}", "N", f"Y{i}", lambda b, i=i: b[1][:, i]).relate(f"x·head{i}", f"y{i}")
    assert [f.edges for f in torch_families(d.compile())] == [("head0", "head1", "head2")]


def heads_diagram(backbone, heads, batch):
    d = Diagram().space("N", data=[batch]).space("X").space("F")
    d.map("x", "N", "X", lambda b: b[0]).map("backbone", "X", "F", backbone)
    for i, head in enumerate(heads):
        d.space(f"Y{i}", loss=library.cross_entropy).map(f"head{i}", "F", f"Y{i}", head)
        d.map(f"y{i}", "N", f"Y{i}", lambda b, i=i: b[1][:, i]).relate(
            f"x·backbone·head{i}", f"y{i}", weight=1 + i / 10
        )
    return d


def terms_and_grads(loss, batch, params):
    for p in params:
        p.grad = None
    total, terms = loss({"N": batch})
    total.backward()
    return total.detach(), {k: v.detach() for k, v in terms.items()}, [p.grad.clone() for p in params]


def test_fused_heads_give_the_unfused_terms_and_gradients():
    torch.manual_seed(0)
    backbone = nn.Sequential(nn.Linear(6, 8), nn.ReLU())
    heads = [nn.Linear(8, 3) for _ in range(7)]
    batch = (torch.randn(16, 6), torch.randint(3, (16, 7)))
    d = heads_diagram(backbone, heads, batch)
    params = [p for m in [backbone, *heads] for p in m.parameters()]
    plain = terms_and_grads(d.compile(), batch, params)
    fused_loss = d.compile(fuse=True)
    assert len(fused_loss.fused) == 1 and len(fused_loss.fused[0].modules) == 7
    fused = terms_and_grads(fused_loss, batch, params)
    assert torch.allclose(plain[0], fused[0], rtol=1e-6, atol=1e-7)
    assert list(plain[1]) == list(fused[1])
    assert all(torch.allclose(plain[1][k], fused[1][k], rtol=1e-6, atol=1e-7) for k in plain[1])
    assert all(torch.allclose(a, b, rtol=1e-5, atol=1e-6) for a, b in zip(plain[2], fused[2]))
    assert fused_loss.state_dict().keys() == d.compile().state_dict().keys()  # each head keeps its tensors


def test_fused_modules_of_other_kinds_run_under_vmap_and_a_frozen_member_leaves():
    torch.manual_seed(1)
    heads = [nn.Sequential(nn.Linear(4, 5), nn.Tanh(), nn.Linear(5, 3)) for _ in range(4)]
    batch = (torch.randn(10, 4), torch.randint(3, (10, 4)))
    d = heads_diagram(nn.Identity(), heads, batch)
    d.freeze("head3")
    params = [p for m in heads[:3] for p in m.parameters()]
    plain = terms_and_grads(d.compile(), batch, params)
    fused_loss = d.compile(fuse=True)
    assert [len(f.modules) for f in fused_loss.fused] == [3] and not fused_loss.fused[0].linear
    fused = terms_and_grads(fused_loss, batch, params)
    assert torch.allclose(plain[0], fused[0], rtol=1e-6, atol=1e-7)
    assert all(torch.allclose(a, b, rtol=1e-5, atol=1e-6) for a, b in zip(plain[2], fused[2]))


def test_a_call_that_raised_leaves_nothing_for_the_next_call_to_read():
    torch.manual_seed(2)
    heads = [nn.Linear(4, 3) for _ in range(3)]
    batch = (torch.randn(5, 4), torch.randint(3, (5, 3)))
    d = heads_diagram(nn.Identity(), heads, batch)
    loss = d.compile(fuse=True)
    family = loss.fused[0]
    family.output(batch[0], 0)  # as if a call had stopped after its first member
    with torch.no_grad():
        heads[1].weight.add_(1.0)
    expected = d.compile()({"N": batch}).total
    assert torch.allclose(loss({"N": batch}).total, expected, rtol=1e-6)
