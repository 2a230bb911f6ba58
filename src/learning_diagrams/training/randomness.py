"""The random state of a training run: seeding it, reading it, setting it back.

A run is seeded once (:func:`seed_all`); a checkpoint keeps the state of every
generator (:func:`rng_state`) so that a resumed run draws what the uninterrupted
run would have (:func:`set_rng_state`).
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

__all__ = ["seed_all", "rng_state", "set_rng_state"]


def seed_all(seed: int) -> None:
    """Seed every random number generator a training run draws from: Python's, NumPy's and torch's.

    ``torch.manual_seed`` also seeds (or, before they start, queues seeding for) the
    accelerators, which costs about 0.15 ms even where there is none, as it records
    where each queued call came from; with no accelerator at all (``torch.accelerator``),
    seeding the CPU generator alone is the same thing.

    >>> seed_all(3); a = (random.random(), np.random.rand(), torch.rand(1))
    >>> seed_all(3); a == (random.random(), np.random.rand(), torch.rand(1))
    True
    """
    random.seed(seed)
    np.random.seed(seed % 2**32)
    if torch.accelerator.is_available():
        torch.manual_seed(seed)
    else:
        torch.default_generator.manual_seed(seed)


def rng_state() -> dict[str, Any]:
    """The states of every random number generator a training run draws from.

    Returns
    -------
    dict
        ``"python"`` (:mod:`random`), ``"numpy"`` (NumPy's global generator,
        its key as an int64 tensor), ``"torch"`` (the CPU generator) and
        ``"cuda"`` (a list, one state per CUDA device; empty without CUDA),
        all plain data that ``torch.load(weights_only=True)`` loads.

    >>> state = rng_state()
    >>> a = torch.rand(2)
    >>> set_rng_state(state)
    >>> torch.equal(a, torch.rand(2))
    True
    """
    version, internal, gauss_next = random.getstate()
    name, keys, pos, has_gauss, cached_gaussian = np.random.get_state(legacy=True)
    return {
        "python": {"version": int(version), "internal": [int(i) for i in internal], "gauss_next": gauss_next},
        "numpy": {
            "bit_generator": str(name),
            "keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached_gaussian": float(cached_gaussian),
        },
        "torch": torch.get_rng_state(),
        "cuda": [s.cpu() for s in torch.cuda.get_rng_state_all()] if torch.cuda.is_available() else [],
    }


def set_rng_state(state: Mapping[str, Any]) -> None:
    """Restore the generators from a :func:`rng_state` dict (also after a save and load).

    Parameters
    ----------
    state
        As returned by :func:`rng_state`. CUDA states are restored for the
        devices present, up to as many as were saved; without CUDA they are
        ignored (resuming on another number of GPUs then cannot repeat the
        uninterrupted run's draws on the GPUs).
    """
    py = state["python"]
    random.setstate((py["version"], tuple(py["internal"]), py["gauss_next"]))
    nps = state["numpy"]
    keys = torch.as_tensor(nps["keys"]).cpu().numpy().astype(np.uint32)
    np.random.set_state((nps["bit_generator"], keys, nps["pos"], nps["has_gauss"], nps["cached_gaussian"]))
    torch.set_rng_state(torch.as_tensor(state["torch"]).cpu())
    cuda = state.get("cuda") or []
    if cuda and torch.cuda.is_available():
        for device in range(min(len(cuda), torch.cuda.device_count())):
            torch.cuda.set_rng_state(torch.as_tensor(cuda[device]).cpu(), device)
