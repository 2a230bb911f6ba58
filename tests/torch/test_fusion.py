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
