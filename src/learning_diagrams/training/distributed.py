"""Native ``torch.distributed`` data parallelism for the trainer (launch with ``torchrun``).

* One process per device; the process group is set up from torchrun's
  environment (``nccl`` on CUDA, ``gloo`` on the CPU) unless one exists.
* Each data vertex gets its own ``DistributedSampler``: a DataLoader is rebuilt
  around its dataset with the same batch size (per process, as in Lightning),
  collate function and workers; it shuffles if the original did. A list of
  batches is dealt round-robin; a tensor (one full batch) is used whole by
  every process.
* Only trainable maps are wrapped, each module in its own
  ``DistributedDataParallel``; frozen maps and plain functions are not. A
  module on several edges (tied weights) gets one wrapper, called once per edge
  in a step, and its gradients are reduced once (tested against one process).
  Because every map the compiled loss calls lies on a compared path, a wrapped
  module that runs in a step always receives gradients, and a head whose data
  vertex has no batch in a step is not called at all. So there is no
  "expected to have finished reduction in the prior iteration" error and no
  need for ``find_unused_parameters``. (Each process must run the same maps in
  a step, which the combined batches guarantee: every process draws the same
  number of steps.)
* Logs, plots and checkpoints are written by rank 0; the others wait at a barrier.
"""

from __future__ import annotations

import os
from typing import Any, Callable

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, DistributedSampler, RandomSampler

from ..core.errors import TypeMismatchError

__all__ = ["wanted", "setup", "rank", "local_rank", "world_size", "barrier", "wrapper", "shard"]


def wanted(strategy: str) -> bool:
    """Whether the run is distributed: asked for, or launched by torchrun."""
    if strategy == "single":
        return False
    return strategy == "ddp" or dist.is_initialized() or int(os.environ.get("WORLD_SIZE", "1")) > 1


def setup(device: str) -> None:
    """Join the process group torchrun describes, unless this process already has one."""
    if dist.is_initialized():
        return
    cuda = torch.cuda.is_available() and device in ("auto", "cuda") or device.startswith("cuda")
    dist.init_process_group(backend="nccl" if cuda else "gloo")
    if cuda:
        torch.cuda.set_device(local_rank())


def rank() -> int:
    return dist.get_rank() if dist.is_initialized() else 0


def world_size() -> int:
    return dist.get_world_size() if dist.is_initialized() else 1


def local_rank() -> int:
    return int(os.environ.get("LOCAL_RANK", "0"))


def barrier() -> None:
    if dist.is_initialized():
        dist.barrier()


def wrapper(device: torch.device) -> Callable[[nn.Module], nn.Module]:
    """Wrap one trainable module in DDP (modules with nothing to train are left as they are)."""

    def wrap(module: nn.Module) -> nn.Module:
        if not any(p.requires_grad for p in module.parameters()):
            return module
        ids = [device.index] if device.type == "cuda" else None
        return DistributedDataParallel(module, device_ids=ids)

    return wrap


def shard(data: Any, seed: int) -> Any:
    """This process's share of a data vertex's data."""
    if isinstance(data, DataLoader):
        if data.batch_size is None:
            raise TypeMismatchError(
                "a DataLoader with a custom batch_sampler cannot be sharded automatically; give each "
                "process its share yourself (a DataLoader with a DistributedSampler)"
            )
        if isinstance(data.sampler, DistributedSampler):
            return data
        sampler = DistributedSampler(
            data.dataset,
            num_replicas=world_size(),
            rank=rank(),
            shuffle=isinstance(data.sampler, RandomSampler),
            seed=seed,
            drop_last=data.drop_last,
        )
        return DataLoader(
            data.dataset,
            batch_size=data.batch_size,
            sampler=sampler,
            num_workers=data.num_workers,
            collate_fn=data.collate_fn,
            pin_memory=data.pin_memory,
            drop_last=data.drop_last,
            timeout=data.timeout,
            worker_init_fn=data.worker_init_fn,
            persistent_workers=data.persistent_workers,
        )
    if isinstance(data, list):
        return data[rank() :: world_size()]
    return data
