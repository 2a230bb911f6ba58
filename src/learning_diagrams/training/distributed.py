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
* Held-out data is evaluated in shares, each sample by exactly one process
  (:func:`held_out_share`, no sample padded or repeated), and the sums are
  added over the processes (:func:`sum_over_processes`), so every process
  gets the means over all the data. Evaluation calls the maps themselves, not
  their DDP wrappers (a wrapper may broadcast buffers in its forward, and
  processes with different numbers of held-out batches would then wait on
  each other); :func:`broadcast_buffers` first gives every process rank 0's
  buffers, as the wrappers' next forward would.
* Logs, plots and checkpoints are written by rank 0; the others wait at a barrier.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from typing import Any, Callable

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, Dataset, DistributedSampler, IterableDataset, RandomSampler

from ..core.errors import TypeMismatchError
from ..torch.data import DEFAULT_BATCH_SIZE, is_full_batch, loading_options

__all__ = [
    "wanted",
    "setup",
    "rank",
    "local_rank",
    "world_size",
    "barrier",
    "wrapper",
    "shard",
    "held_out_share",
    "sum_over_processes",
    "broadcast_buffers",
]


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
        sampler: DistributedSampler[int] = DistributedSampler(
            data.dataset,
            num_replicas=world_size(),
            rank=rank(),
            shuffle=isinstance(data.sampler, RandomSampler),
            seed=seed,
            drop_last=data.drop_last,
        )
        return _with_sampler(data, sampler)
    if isinstance(data, list):
        return data[rank() :: world_size()]
    return data


def held_out_share(data: Any) -> Any | None:
    """This process's share of a data vertex's held-out data; None when it has none.

    Each sample goes to exactly one process, so that sums over the processes are
    sums over the data (a ``DistributedSampler`` pads the shares to one length
    with repeated samples, which would count them twice):

    * a ``DataLoader`` with a batch size, over a map-style dataset: samples
      ``rank, rank + world_size, ...``, in batches of the loader's size (a loader
      whose sampler is already a ``DistributedSampler`` is the user's share, kept);
    * a map-style ``Dataset``: the same, batched as a single process would;
    * a list or tuple of batches: dealt round-robin;
    * anything else (one full batch, a loader with its own batch sampler or over an
      iterable dataset, another iterable): evaluated whole by rank 0.
    """
    if isinstance(data, Dataset) and not isinstance(data, IterableDataset):
        data = DataLoader(data, batch_size=DEFAULT_BATCH_SIZE)
    if isinstance(data, DataLoader):
        if isinstance(data.sampler, DistributedSampler):
            return data
        if data.batch_size is not None and not isinstance(data.dataset, IterableDataset):
            indices = range(rank(), len(data.dataset), world_size())  # type: ignore[arg-type]
            if not indices:
                return None
            return _with_sampler(data, indices)
    elif isinstance(data, (list, tuple)) and not is_full_batch(data):
        return data[rank() :: world_size()] or None
    return data if rank() == 0 else None


def sum_over_processes(values: Sequence[float]) -> list[float]:
    """``values`` added element-wise over the processes, in float64; every process gets the sums.

    Without a process group, the values as they are.
    """
    if not dist.is_initialized():
        return list(values)
    nccl = dist.get_backend() == "nccl"  # NCCL reduces CUDA tensors only
    device = torch.device("cuda", torch.cuda.current_device()) if nccl else torch.device("cpu")
    sums = torch.tensor(list(values), dtype=torch.float64, device=device)
    dist.all_reduce(sums)
    return sums.tolist()


def broadcast_buffers(modules: Iterable[nn.Module]) -> None:
    """Give every process rank 0's buffers of ``modules`` (BatchNorm statistics, say), each module once."""
    if not dist.is_initialized():
        return
    seen: set[int] = set()
    for module in modules:
        if id(module) in seen:
            continue
        seen.add(id(module))
        for buffer in module.buffers():
            dist.broadcast(buffer, src=0)


def _with_sampler(loader: DataLoader, sampler: Any) -> DataLoader:
    """``loader`` again, over the same dataset with the same batching and workers, drawing from ``sampler``."""
    return DataLoader(
        loader.dataset,
        batch_size=loader.batch_size,
        sampler=sampler,
        drop_last=loader.drop_last,
        **loading_options(loader),
    )
