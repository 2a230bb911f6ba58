"""Frozen outputs computed once: the values at path prefixes made only of frozen maps, kept per sample.

A frozen teacher's logits depend only on the sample, so a distillation run that
recomputes them every epoch does the teacher's work ``epochs`` times for nothing
(torchdistill caches them by hand). A :class:`FrozenCache` does it from the
diagram: it finds, in a compiled loss, the prefixes worth keeping and computes
each once per sample.

**What is cached.** A prefix of a compiled path is *fixed* when every map on it
is a frozen module (``trainable=False``: compilation holds it in eval mode,
without gradients) or a plain function that reaches no module with parameters
but frozen ones (a function of its input, such as ``lambda b: b[0]``). The cache
keeps the fixed prefixes that hold a frozen module and that something else
reads: a map that is not fixed, or a loss (:func:`frozen_prefixes`); in Figure 1
of the paper, ``x·teacher``. A fixed prefix is checked, the first time it is
computed, to draw no random numbers (PyTorch's and Python's generators are
compared before and after); one that does (augmentation in a function, a
module that samples in eval mode) is never cached, with a warning.

**Which data.** A key names a sample or a batch of the data set itself, so the
data must be fixed too:

* ``cache="auto"`` (what ``ld.fit`` does by default) caches data the library
  can see is fixed: a tensor or a tuple of tensors (one full batch), a list or
  tuple of batches made of tensors (keyed by position: the same batch at the
  same place of every pass), and a ``DataLoader`` over a ``TensorDataset``
  (keyed by sample index, whatever the batches and their shuffling);
* ``cache=True`` also caches any list of batches, and any ``DataLoader`` over a
  map-style dataset, keyed by sample index: it takes ``dataset[i]`` to be the
  same sample at every epoch, so it is not for datasets that augment at random;
* ``cache=False`` never caches; nor is any other data (iterable datasets,
  generators of batches) ever cached.

A sample's key is its index; the cache learns it by wrapping the ``DataLoader``
in one that loads ``(index, sample)`` through the same sampler, workers and
collation (:meth:`FrozenCache.keyed`), so batches, their order and their
seeding are those of the loader itself.

**Invalidation.** An entry is used only while what it was computed from is
unchanged: the same maps (a prefix is keyed by its edges' functions, so a
swapped map, an unfrozen one or a re-assigned data set has other keys), the
same weights and buffers of its frozen modules (their storage and version
counters: ``load_state_dict``, an optimiser step or ``.to(device)`` invalidate
it), and the same batch tensors (by identity and version, for data keyed by
position). An entry that a later map modified in place is dropped, and its
prefix no longer cached, with a warning.

**Memory.** Values are kept in the memory of the device they were computed on
up to ``cache_bytes`` (default 1 GiB); past it, on a GPU, in host memory up to
``cache_bytes`` more; past that, on disk in memory-mapped files in a temporary
folder removed when the cache is closed or collected.

**Exactness.** A cached value is, bit for bit, a value the frozen maps compute.
Data keyed by position is computed on the batch itself, the first time it comes,
so where the same batches recur (a full batch, a list of batches) losses equal
the uncached run's bit for bit. Data keyed by sample is computed once for every
sample, the first time a batch misses, in the data set's own order and in
batches of the loader's batch size (loaded and collated as the loader does): the
values kept do not depend on the shuffling, so a run resumed from a checkpoint,
whose cache starts empty, computes the same ones and ends bit for bit where the
unbroken run ends. They equal the uncached run's bit for bit where a sample's
output does not depend on its place among the others in a batch; CPU and GPU
kernels do not promise that (PyTorch's CPU matrix products can round a row
differently, by an ulp or so, at another place or batch size), and there the
cached run differs from the uncached one by such roundings. Under
``torch.compile`` the graph after a cached value is another graph than the
uncached run's, which inductor may also round differently in the last bit.

>>> import torch
>>> from torch.utils.data import DataLoader, TensorDataset
>>> cache = FrozenCache()
>>> loader = cache.keyed(DataLoader(TensorDataset(torch.arange(6.0)), batch_size=4), "N")
>>> [(b.batch[0].tolist(), b.key.indices.tolist()) for b in loader]
[([0.0, 1.0, 2.0, 3.0], [0, 1, 2, 3]), ([4.0, 5.0], [4, 5])]
>>> [b.key.index for b in cache.keyed([torch.ones(2), torch.zeros(2)], "N")]
[0, 1]
>>> cache.keyed(iter([]).__class__, "N") is iter([]).__class__   # not data the cache can key: as it is
True
"""

from __future__ import annotations

import math
import random
import shutil
import tempfile
import warnings
import weakref
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, IterableDataset, TensorDataset

from ..core.diagram import Map, Pair
from ..core.errors import OptionError
from ..core.evaluation import Evaluator
from .data import DataSource, batch_size, is_full_batch, to_device
from .finite import hidden_modules, registered_ids
from .keyed import (
    KeyedBatches,
    IndexedDataset,
    Samples,
    SampleSource,
    keyed_loader,
    leaves,
)

if TYPE_CHECKING:
    from .compiled import CompiledLoss

__all__ = ["FrozenCache", "frozen_prefixes", "CACHE_MODES", "DEFAULT_CACHE_BYTES"]

#: The values of ``ld.fit(cache=...)``.
CACHE_MODES = ("auto", True, False)

#: The default of ``cache_bytes``: what the cache keeps in the device's memory (and, on a GPU, in host memory).
DEFAULT_CACHE_BYTES = 2**30


# -- which prefixes -----------------------------------------------------------------------------


def frozen_prefixes(pairs: Sequence[Pair], maps: Mapping[str, Map]) -> dict[str, tuple[tuple[str, ...], ...]]:
    """By source vertex, the prefixes of ``pairs``' paths that a cache keeps (see the module docstring).

    A prefix is kept when every map on it is fixed (a frozen module, or a plain
    function reaching no module with parameters but frozen ones), one of them is
    a frozen module, and something reads it that is not fixed: a map extending it
    that is not, or a pair ending there.

    >>> import torch
    >>> from learning_diagrams.core import Diagram, losses
    >>> d = (Diagram().space("N", data=[0]).space("X").space("L").space("G", loss=losses.mse)
    ...      .map("x", "N", "X", lambda b: b).map("teacher", "X", "L", torch.nn.Linear(2, 2), trainable=False)
    ...      .map("student", "X", "L", torch.nn.Linear(2, 2)).map("soft", "L", "G", torch.nn.Identity())
    ...      .relate("x·student·soft", "x·teacher·soft"))
    >>> frozen_prefixes(d.compiled_pairs(), d.maps)
    {'N': (('x', 'teacher'),)}
    """
    frozen = [m.fn for m in maps.values() if isinstance(m.fn, nn.Module) and not m.trainable]
    fixed_map: dict[str, bool] = {}
    reaches: dict[int, bool] = {}  # by function: whether it reaches a module that is not frozen (asked once)
    inside = registered_ids(frozen)
    for name, m in maps.items():
        if isinstance(m.fn, nn.Module):
            fixed_map[name] = not m.trainable
        elif m.fn is None:
            fixed_map[name] = False
        else:
            if id(m.fn) not in reaches:
                reaches[id(m.fn)] = bool(hidden_modules(m.fn, inside=inside))
            fixed_map[name] = not reaches[id(m.fn)]
    kept: dict[str, dict[tuple[str, ...], None]] = {}
    for pair in pairs:
        for path in (pair.first, pair.second):
            for i in range(1, len(path) + 1):
                prefix = path[:i]
                if not all(fixed_map[e] for e in prefix):
                    break
                holds_module = any(isinstance(maps[e].fn, nn.Module) for e in prefix)
                read_by_other = i == len(path) or not fixed_map[path[i]]
                if holds_module and read_by_other:
                    kept.setdefault(pair.source, {})[prefix] = None
    return {source: tuple(prefixes) for source, prefixes in kept.items()}


# -- the stores -----------------------------------------------------------------------------------


def _flat(value: Any) -> list[torch.Tensor] | None:
    """A value's tensors when it is a tensor or a flat tuple or list of tensors, else None."""
    if isinstance(value, torch.Tensor):
        return [value]
    if isinstance(value, (tuple, list)) and value and all(isinstance(v, torch.Tensor) for v in value):
        return list(value)
    return None


def _rebuilt(kind: type | None, tensors: list[torch.Tensor]) -> Any:
    """The value of kind ``kind`` (None: one tensor; else the tuple or list type) made of ``tensors``."""
    return tensors[0] if kind is None else kind(tensors)


def _kind(value: Any) -> type | None:
    return None if isinstance(value, torch.Tensor) else type(value)


def _nbytes(tensors: Sequence[torch.Tensor]) -> int:
    return sum(t.numel() * t.element_size() for t in tensors)


def _device(batch: Any) -> torch.device:
    """Where a batch lives: the device of its first tensor (the CPU if it has none)."""
    found = leaves(batch)
    if found:
        return found[0].device
    if isinstance(batch, (tuple, list)):
        for item in batch:
            if isinstance(item, torch.Tensor):
                return item.device
    return torch.device("cpu")


class _Entry:
    """One batch's value of a prefix (data keyed by position) and where it is kept.

    ``where`` is ``"device"`` (``value`` is the value itself, with the ``versions``
    of its tensors when kept), ``"host"`` (``value`` is its tensors in pinned host
    memory) or ``"disk"`` (its tensors are in ``file``).
    """

    __slots__ = ("token", "where", "value", "kind", "versions", "file")

    def __init__(self, token: Any, where: str, value: Any, kind: type | None, versions: Any, file: Path | None):
        self.token, self.where, self.value, self.kind, self.versions, self.file = (
            token,
            where,
            value,
            kind,
            versions,
            file,
        )


class _Rows:
    """Every sample's value of a prefix (data keyed by sample): one tensor of rows per tensor of the value."""

    def __init__(self, kind: type | None, rows: list[torch.Tensor], size: int):
        self.kind, self.rows = kind, rows
        self.filled = torch.zeros(size, dtype=torch.bool)
        self.count = 0


class _Store:
    """The values of one prefix of one source on one data set, valid for the weights they were computed with."""

    def __init__(self, weights: tuple[tuple[int, int], ...]):
        self.weights = weights
        self.entries: dict[int, _Entry] = {}
        self.rows: _Rows | None = None
        self.used = {"device": 0, "host": 0, "disk": 0}  # what it counts against the budgets
        self.files: list[Path] = []


class FrozenCache:
    """Values at the prefixes :func:`frozen_prefixes` picks, computed once per sample and kept (see the module).

    Parameters
    ----------
    mode : {"auto", True, False}
        Which data is cached (see the module docstring); ``False`` caches nothing.
    cache_bytes : int
        The most kept in the device's memory and, on a GPU, in host memory; the rest
        goes to disk.
    folder : path, optional
        Where values past the memory budgets go (default: a new temporary folder,
        made when first needed and removed by :meth:`close`).

    Attributes
    ----------
    hits, misses : int
        Lookups of a prefix on a batch that found every value, and those that computed it.
    """

    def __init__(self, mode: bool | str = "auto", *, cache_bytes: int = DEFAULT_CACHE_BYTES, folder: Any = None):
        if mode not in CACHE_MODES or (isinstance(mode, int) and not isinstance(mode, bool)):
            raise OptionError(f"cache {mode!r} is not one of 'auto', True, False")
        if isinstance(cache_bytes, bool) or not isinstance(cache_bytes, int) or cache_bytes < 0:
            raise OptionError(f"cache_bytes must be an int of at least 0, got {cache_bytes!r}")
        self.mode, self.cache_bytes = mode, cache_bytes
        self._given_folder = Path(folder) if folder is not None else None
        self._folder: Path | None = None
        self._files = 0
        self._data: dict[int, Any] = {}  # token -> the data object: held, so that its id stays its own
        self._stores: dict[tuple[Any, ...], _Store] = {}
        self._shunned: set[tuple[str, tuple[str, ...]]] = set()  # prefixes found random or modified in place
        self.used = {"device": 0, "host": 0, "disk": 0}
        self.hits = self.misses = 0
        self._finalizer: weakref.finalize | None = None

    # -- keyed data ---------------------------------------------------------------------------
    def keyed(self, data: Any, vertex: str) -> Any:
        """``data`` as data whose batches come :class:`Keyed`, when this cache can key it; else ``data`` itself.

        A bare map-style dataset is first wrapped as :class:`~learning_diagrams.torch.data.DataSource`
        wraps it. Keyed data yields the same batches in the same order as ``data``.
        """
        if isinstance(data, Dataset) and not isinstance(data, IterableDataset):
            data = DataSource(data, vertex).data
        if self.mode is False or isinstance(data, (KeyedBatches, Iterator)) or not hasattr(data, "__iter__"):
            return data
        if is_full_batch(data):
            return self._register(KeyedBatches([data], id(data)), data) if batch_size(data) else data
        if isinstance(data, DataLoader):
            dataset = data.dataset
            if (
                isinstance(dataset, (IterableDataset, IndexedDataset)) or data.batch_sampler is None
            ):  # no batches of indices
                return data
            if self.mode is True or isinstance(dataset, TensorDataset):
                chunk = getattr(data.batch_sampler, "batch_size", None)
                return self._register(keyed_loader(data, id(dataset)), SampleSource(dataset, data.collate_fn, chunk))
            return data
        tensors_only = isinstance(data, (list, tuple)) and all(leaves(batch) is not None for batch in data)
        if isinstance(data, (list, tuple)) and data and (self.mode is True or tensors_only):
            return self._register(KeyedBatches(data, id(data)), data)
        return data

    def _register(self, keyed: Any, data: Any) -> Any:
        self._data[id(data.dataset if isinstance(data, SampleSource) else data)] = data
        return keyed

    # -- lookups ------------------------------------------------------------------------------
    @torch.compiler.disable  # Python bookkeeping: under torch.compile it runs as it is, between two graphs
    def values(
        self, loss: CompiledLoss, present: Sequence[str], inputs: Sequence[Any], keys: Mapping[str, Any]
    ) -> tuple[tuple[tuple[str, tuple[str, ...]], ...], list[Any]]:
        """The cached prefixes of ``loss`` for this call, and their values: found, or computed and kept.

        ``inputs`` are the batches of the ``present`` sources, ``keys`` the keys of
        those that came keyed. A call runs ``loss``'s program with these values given.
        """
        given: list[tuple[str, tuple[str, ...]]] = []
        values: list[Any] = []
        for source, batch in zip(present, inputs):
            key = keys.get(source)
            prefixes = loss.frozen.get(source, ()) if key is not None else ()
            wanted = [p for p in prefixes if (source, p) not in self._shunned]
            if not wanted:
                continue
            device = _device(batch)
            stores = [self._store(loss, source, p, key) for p in wanted]
            found = [self._find(store, source, p, key, device) for store, p in zip(stores, wanted)]
            missed = any(v is None for v in found)
            if missed and isinstance(key, Samples):
                # Every sample's value is computed in batches of the data set's own order, not this batch:
                # what is kept is then the same whatever the shuffling, in this run and in a resumed one.
                self._fill(loss, source, wanted, stores, key, device)
                found = [
                    None if (source, p) in self._shunned else self._find(store, source, p, key, device)
                    for store, p in zip(stores, wanted)
                ]
            if any(v is None for v in found):
                computed, known = self._compute(loss, source, wanted, batch)
                if not isinstance(key, Samples):
                    for store, prefix, value in zip(stores, wanted, computed):
                        if value is not None:
                            self._keep(store, source, prefix, key, value)
                # The prefixes computed on the way are given too, so that this step computes nothing twice.
                wanted, found = list(known), list(known.values())
            self.misses += missed
            self.hits += not missed
            for prefix, value in zip(wanted, found):
                if value is not None:
                    given.append((source, prefix))
                    values.append(value)
        return tuple(given), values

    def _fill(
        self,
        loss: CompiledLoss,
        source: str,
        prefixes: Sequence[tuple[str, ...]],
        stores: Sequence[_Store],
        key: Samples,
        device: torch.device,
    ) -> None:
        """Compute and keep the value of ``prefixes`` at every sample not kept yet, in index order.

        The samples are loaded and collated as the data's loader does, in batches of its
        batch size, and moved to ``device``.
        """
        data: SampleSource = self._data[key.data]
        size = len(data.dataset)  # type: ignore[arg-type]
        kept = [
            store.rows.filled if store.rows is not None else torch.zeros(size, dtype=torch.bool) for store in stores
        ]
        missing = torch.nonzero(~torch.stack(kept).all(0)).flatten()
        for chunk in missing.split(data.chunk or len(key.indices)):
            batch = to_device(data.load(chunk.tolist()), device)
            computed, _ = self._compute(loss, source, prefixes, batch)
            for store, prefix, value in zip(stores, prefixes, computed):
                if value is not None and (source, prefix) not in self._shunned:
                    self._keep(store, source, prefix, Samples(key.data, chunk), value)

    def _store(self, loss: CompiledLoss, source: str, prefix: tuple[str, ...], key: Any) -> _Store:
        """The store of ``prefix`` on the data of ``key``, emptied if the frozen weights changed since."""
        maps = [loss.steps[prefix[: i + 1]].map for i in range(len(prefix))]
        tensors = [t for m in maps if isinstance(m.fn, nn.Module) for t in (*m.fn.parameters(), *m.fn.buffers())]
        weights = tuple((t.data_ptr(), t._version) for t in tensors)
        name = (key.data, isinstance(key, Samples), source, prefix, tuple(id(m.fn) for m in maps))
        store = self._stores.get(name)
        if store is None or store.weights != weights:
            if store is not None:
                self._forget(store)
            store = self._stores[name] = _Store(weights)
        return store

    def _find(self, store: _Store, source: str, prefix: tuple[str, ...], key: Any, device: torch.device) -> Any:
        """The kept value of ``prefix`` on the batch of ``key``, on ``device``; None if it is not kept (whole)."""
        if isinstance(key, Samples):
            rows = store.rows
            if rows is None or (rows.count < len(rows.filled) and not bool(rows.filled[key.indices].all())):
                return None
            picked = [r.index_select(0, key.indices.to(r.device)) for r in rows.rows]
            return _rebuilt(rows.kind, [t.to(device, non_blocking=True) for t in picked])
        entry = store.entries.get(key.index)
        if entry is None or entry.token != key.token:
            return None
        if entry.where == "disk":
            assert entry.file is not None
            loaded = torch.load(entry.file, weights_only=True, mmap=True)
            return _rebuilt(entry.kind, [t.to(device) for t in loaded])
        if entry.where == "host":
            return _rebuilt(entry.kind, [t.to(device, non_blocking=True) for t in entry.value])
        if entry.versions is not None and entry.versions != tuple(t._version for t in _flat(entry.value) or ()):
            # A later map wrote into the kept value: it is not the prefix's value any more.
            self._shun(source, prefix, "a later map modified it in place")
            del store.entries[key.index]
            return None
        return entry.value

    def _compute(
        self, loss: CompiledLoss, source: str, prefixes: Sequence[tuple[str, ...]], batch: Any
    ) -> tuple[list[Any], dict[tuple[str, ...], Any]]:
        """The values of ``prefixes`` on ``batch``, without gradients (None for one found to draw random numbers,
        not to be kept), and the value of every prefix computed on the way, for this step.

        They are computed as the loss's program computes them (the same steps on the
        same batch), so the values are the uncached run's.
        """
        before = _random_state()
        evaluator = Evaluator(loss.steps)
        known: dict[tuple[str, ...], Any] = {(): batch}
        computed: list[Any] = []
        drew = False
        with torch.no_grad():
            for prefix in prefixes:
                value = evaluator.value(prefix, known)
                if not drew and not _same_random_state(_random_state(), before):
                    drew = True  # this prefix, and every one after it, may hold a draw
                if drew:
                    self._shun(source, prefix, "computing it draws random numbers")
                computed.append(value)
        # Every value is used in this step (the draws happened); only those before the first draw are kept.
        kept = [None if drew and (source, p) in self._shunned else v for p, v in zip(prefixes, computed)]
        del known[()]
        return kept, known

    def _keep(self, store: _Store, source: str, prefix: tuple[str, ...], key: Any, value: Any) -> None:
        """Keep ``value``, the value of ``prefix`` on the batch of ``key``, where the budgets allow."""
        tensors = _flat(value)
        if isinstance(key, Samples):
            if tensors is None or any(t.ndim == 0 or t.shape[0] != len(key.indices) for t in tensors):
                self._shun(source, prefix, "its value is not a tensor (or a tuple of tensors) with one row per sample")
                return
            rows = store.rows
            if rows is None:
                size = len(self._data[key.data].dataset)
                shapes = [(size, *t.shape[1:]) for t in tensors]
                need = sum(math.prod(s) * t.element_size() for s, t in zip(shapes, tensors))
                rows = store.rows = _Rows(_kind(value), self._allocate(store, shapes, tensors, need), size)
            new = ~rows.filled[key.indices]
            # The first value computed for a sample is kept (see "Exactness" in the module docstring).
            where, chosen = (key.indices, None) if bool(new.all()) else (key.indices[new], new)
            for r, t in zip(rows.rows, tensors):
                part = t if chosen is None else t[chosen.to(t.device)]
                r.index_copy_(0, where.to(r.device), part.to(r.device))
            rows.count += len(where)
            rows.filled[where] = True
            return
        if tensors is None:  # not tensors: kept as it is
            store.entries[key.index] = _Entry(key.token, "device", value, None, None, None)
            return
        need = _nbytes(tensors)
        if self.used["device"] + need <= self.cache_bytes:
            self._count(store, "device", need)
            versions = tuple(t._version for t in tensors)
            store.entries[key.index] = _Entry(key.token, "device", value, None, versions, None)
        elif tensors[0].device.type != "cpu" and self.used["host"] + need <= self.cache_bytes:
            self._count(store, "host", need)
            host = [t.to("cpu").pin_memory() for t in tensors]
            store.entries[key.index] = _Entry(key.token, "host", host, _kind(value), None, None)
        else:
            self._count(store, "disk", need)
            file = self._save(tensors)
            store.files.append(file)
            store.entries[key.index] = _Entry(key.token, "disk", None, _kind(value), None, file)

    def _allocate(
        self, store: _Store, shapes: list[tuple[int, ...]], like: list[torch.Tensor], need: int
    ) -> list[torch.Tensor]:
        """Room for every sample's rows: on the device, in host memory, or in memory-mapped files."""
        device = like[0].device
        if self.used["device"] + need <= self.cache_bytes:
            self._count(store, "device", need)
            return [torch.empty(s, dtype=t.dtype, device=device) for s, t in zip(shapes, like)]
        if device.type != "cpu" and self.used["host"] + need <= self.cache_bytes:
            self._count(store, "host", need)
            return [torch.empty(s, dtype=t.dtype, pin_memory=True) for s, t in zip(shapes, like)]
        self._count(store, "disk", need)
        rows = []
        for s, t in zip(shapes, like):
            file = self._new_file()
            store.files.append(file)
            rows.append(torch.from_file(str(file), shared=True, size=math.prod(s), dtype=t.dtype).view(s))
        return rows

    def _count(self, store: _Store, where: str, need: int) -> None:
        self.used[where] += need
        store.used[where] += need

    def _save(self, tensors: list[torch.Tensor]) -> Path:
        file = self._new_file()
        torch.save([t.detach().cpu() for t in tensors], file)
        return file

    def _new_file(self) -> Path:
        if self._folder is None:
            if self._given_folder is not None:
                self._given_folder.mkdir(parents=True, exist_ok=True)
                self._folder = Path(tempfile.mkdtemp(prefix="frozen-cache-", dir=self._given_folder))
            else:
                self._folder = Path(tempfile.mkdtemp(prefix="learning-diagrams-cache-"))
            self._finalizer = weakref.finalize(self, shutil.rmtree, self._folder, ignore_errors=True)
        self._files += 1
        return self._folder / f"{self._files}.bin"

    def _shun(self, source: str, prefix: tuple[str, ...], why: str) -> None:
        if (source, prefix) in self._shunned:
            return
        self._shunned.add((source, prefix))
        where = "·".join(prefix)
        warnings.warn(
            f"the value at {where} (from {source!r}) is not cached: {why}; it is computed at every step",
            UserWarning,
            stacklevel=5,
        )

    def _forget(self, store: _Store) -> None:
        """Drop a store's values: its bytes leave the budgets, its files the disk."""
        for where, n in store.used.items():
            self.used[where] -= n
        store.entries.clear()
        store.rows = None
        for file in store.files:
            file.unlink(missing_ok=True)

    def clear(self) -> None:
        """Forget every value (the folder on disk stays until :meth:`close`)."""
        for store in self._stores.values():
            self._forget(store)
        self._stores.clear()
        self.used = dict.fromkeys(self.used, 0)

    def close(self) -> None:
        """Forget every value and remove the folder on disk, if one was made."""
        self.clear()
        self._data.clear()
        if self._finalizer is not None:
            self._finalizer()
            self._folder, self._finalizer = None, None

    def __getstate__(self) -> dict[str, Any]:
        """A copy for another process (``ddp_spawn``): the same options and keyed data, no values."""
        return {"mode": self.mode, "cache_bytes": self.cache_bytes, "folder": self._given_folder, "data": self._data}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["mode"], cache_bytes=state["cache_bytes"], folder=state["folder"])  # type: ignore[misc]
        self._data = dict(state["data"])  # keys name data by its id in the first process

    def summary(self) -> str:
        """One line: hits, misses and the bytes kept in each place."""
        kept = ", ".join(f"{where} {n / 2**20:.1f} MiB" for where, n in self.used.items() if n)
        return f"frozen-output cache: {self.hits} hits, {self.misses} misses" + (f"; {kept}" if kept else "")

    def __repr__(self) -> str:
        return f"FrozenCache(mode={self.mode!r}, cache_bytes={self.cache_bytes}): {self.summary()}"


def _random_state() -> tuple[Any, ...]:
    """What a map that draws random numbers changes: PyTorch's generators (CPU, and CUDA if started) and Python's."""
    cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else []
    return torch.get_rng_state(), cuda, random.getstate()


def _same_random_state(a: tuple[Any, ...], b: tuple[Any, ...]) -> bool:
    return (
        torch.equal(a[0], b[0])
        and len(a[1]) == len(b[1])
        and all(torch.equal(x, y) for x, y in zip(a[1], b[1]))
        and a[2] == b[2]
    )
