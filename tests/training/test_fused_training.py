"""ld.fit with fused families: checkpoints and resume across a fused run, and DDP with a fused family."""

from __future__ import annotations

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import learning_diagrams as ld

QUIET = dict(progress=False, log_dir=False)


def data(n: int = 16, heads: int = 4) -> TensorDataset:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, 6, generator=g)
    return TensorDataset(x, torch.randint(3, (n, heads), generator=g))


def models(heads: int = 4) -> tuple[nn.Module, list[nn.Module]]:
    """The same seeded backbone and heads in every process."""
    torch.manual_seed(1)
    return nn.Sequential(nn.Linear(6, 8), nn.ReLU()), [nn.Linear(8, 3) for _ in range(heads)]


def heads_diagram(backbone, heads, loader) -> ld.Diagram:
    d = ld.Diagram().space("N", data=loader).space("X").space("F")
    d.map("x", "N", "X", lambda b: b[0]).map("backbone", "X", "F", backbone)
    for i, head in enumerate(heads):
        d.space(f"Y{i}", loss=ld.losses.cross_entropy).map(f"head{i}", "F", f"Y{i}", head)
        d.map(f"y{i}", "N", f"Y{i}", lambda b, i=i: b[1][:, i]).relate(f"x·backbone·head{i}", f"y{i}")
    return d


def weights(backbone, heads) -> list[torch.Tensor]:
    return [p.detach().clone() for m in [backbone, *heads] for p in m.parameters()]


def test_a_fused_run_stopped_and_resumed_ends_as_the_uninterrupted_one_bit_for_bit(tmp_path):
    options = dict(epochs=3, lr=0.01, fuse=True, cache=False, **QUIET)
    loader = DataLoader(data(), batch_size=4, shuffle=True)
    whole = models()
    ld.fit(heads_diagram(*whole, loader), **options)
    stopped = models()
    ld.fit(heads_diagram(*stopped, loader), checkpoint_dir=tmp_path, max_steps=6, **options)
    resumed = models()  # a fresh process: new modules, the weights and Adam's state from the checkpoint
    ld.fit(heads_diagram(*resumed, loader), checkpoint_dir=tmp_path, resume=tmp_path, **options)
    assert all(torch.equal(a, b) for a, b in zip(weights(*whole), weights(*resumed)))
    assert not all(torch.equal(a, b) for a, b in zip(weights(*whole), weights(*models())))


def _ddp_worker(rank, world, init_file, out_file):
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        backbone, heads = models()
        loader = DataLoader(data(), batch_size=4)
        d = heads_diagram(backbone, heads, loader)
        ld.fit(d, epochs=2, optimizer=torch.optim.SGD, lr=0.1, strategy="ddp", fuse=True, cache=False, **QUIET)
        if rank == 0:
            torch.save(weights(backbone, heads), out_file)
    finally:
        dist.destroy_process_group()


def test_two_process_ddp_with_a_fused_family_ends_with_the_single_process_parameters(tmp_path):
    # The family runs as one module under one DistributedDataParallel: its stacked gradients are reduced once.
    mp.spawn(_ddp_worker, args=(2, str(tmp_path / "init"), str(tmp_path / "ddp.pt")), nprocs=2, join=True)
    backbone, heads = models()
    loader = DataLoader(data(), batch_size=8)
    ld.fit(heads_diagram(backbone, heads, loader), epochs=2, optimizer=torch.optim.SGD, lr=0.1, cache=False, **QUIET)
    ddp = torch.load(tmp_path / "ddp.pt", weights_only=True)
    for a, b in zip(ddp, weights(backbone, heads)):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)
