"""Few-shot classification as learning diagrams: the paper's section 2.4, after Tian et al. (2020).

"Rethinking few-shot image classification: a good embedding is all you need?"
(RFS): train a backbone as one classifier over the meta-train classes, freeze
it, and for each N-way K-shot episode of unseen classes fit a linear classifier
on its L2-normalised features. Here every step is a diagram:

1. **Pretraining** (the paper's Figure 2, top): one classifier square over the
   meta-train classes, ``x·m·h ≤ y`` at ``Y`` (cross-entropy), trained by ``ld.fit``.
2. **Meta-test**: each episode is a classifier square ``x_e·m·h_e ≤ y_e`` whose data
   ``N_e`` is the episode's support set and whose head ``h_e`` is a new 5-way linear
   layer on L2-normalised features. Many episodes' squares are glued along the
   backbone ``X --m--> F`` by a colimit (Figure 2, bottom; ``--glue`` of them at a
   time, 50 by default), ``m`` is frozen by homomorphism search
   (``ld.homsearch.freeze``), and one ``ld.fit`` fits every head at once: the
   heads are independent, so the glued loss's gradient in each head is its own
   episode's. Each head then scores its query set along its compiled pair
   (``ld.Trainer().evaluate``, accuracy at ``Y_e``).
3. **RFS itself** on the very same episodes: the same frozen backbone's features,
   L2-normalised, and scikit-learn's ``LogisticRegression`` (C=1, lbfgs), as in
   the RFS code. The heads of step 2 minimise the same objective (mean
   cross-entropy plus ``‖W‖² / (2·C·n)`` for ``n`` support images, the bias not
   penalised), by Adam with a cosine schedule instead of L-BFGS, so the two should
   agree within their intervals. Beside them, **the per-episode loop**
   (:func:`loop_heads`): what a user writes today in plain PyTorch, one head at a
   time, with the objective, optimiser and schedule of step 2; its accuracies are
   step 2's, episode by episode.
4. **Meta-training** (``--meta-train``, on with ``--full``): the paper's variant in
   which the backbone is trained on many glued tasks at once. The meta-train
   classes are cut into 5-class tasks (``--meta-rounds`` random cuts), each task a
   classifier square with its own 5-way head, all glued along one trainable
   backbone and trained by one ``ld.fit``. The backbone is then evaluated as in 2
   and 3, on the same episodes.

Accuracy is reported as the mean over episodes ± the 95% confidence interval
``1.96·s/√n`` (``s`` the sample standard deviation over ``n`` episodes), for
1-shot and 5-shot, 5-way, 15 queries per class. A second table gives each
meta-test method's wall time beside its accuracy: the glued heads (``ld.fit``), the
per-episode loop and RFS's logistic regression, each timed from the images to the
query accuracies (the backbone's passes included: the glued heads and the loop embed
each episode's images, RFS every image once).

``--fuse`` fits the glued heads with ``ld.fit(fuse=True)``: the heads of a glued
diagram, one family of parallel maps, run as one batched call with stacked
parameters. ``--glue 600 --fuse`` fits all 600 episodes of a shot setting as one
glued diagram (``bench/fewshot.py`` times that against the loop and scikit-learn).

Data (``--data``):

* ``glyphs`` (default): :mod:`~learning_diagrams.examples.glyphs`, 143 character
  classes × 63 fonts, 28×28, rendered from four Debian font packages; split 92 /
  23 / 28 meta-train / meta-val / meta-test classes. Without the fonts the example
  prints the ``apt-get install`` line and falls back to ``digits``.
* ``digits``: scikit-learn's 1,797 digits (MNIST layout, 28×28), a stand-in that
  every machine has: 5 meta-train and 5 meta-test classes.

Backbones (``--backbone``): ``small`` (default), four conv-BN-ReLU-max-pool blocks
of 64 channels (``--width``), 64 features (the "Conv-4" of the few-shot literature;
112 k parameters); ``resnet12``, the ResNet-12 of RFS (64-160-320-640 channels, 640
features, 12.4 M parameters; 30 pretraining epochs take half an hour on two CPU cores).

Run it with ``python -m learning_diagrams.examples.fewshot [--device cuda] [--full]``;
``--draw docs/examples/fewshot.svg`` draws three glued episode squares. Only the
public API is used.
"""

from __future__ import annotations

import argparse
import math
import os
import random
import statistics
import time
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import learning_diagrams as ld
from learning_diagrams.examples import datasets, glyphs, machine

__all__ = [
    "ClassSet",
    "Episode",
    "Backbone",
    "Conv4",
    "ResNet12",
    "L2Normalize",
    "few_shot_head",
    "FrozenFeatures",
    "load_classes",
    "make_backbone",
    "square",
    "backbone_diagram",
    "glue_episodes",
    "sample_episodes",
    "pretrain",
    "meta_train",
    "fit_heads",
    "loop_heads",
    "rfs",
    "mean_ci",
    "main",
]


# -- the class sets ------------------------------------------------------------------------


@dataclass
class ClassSet:
    """Images of many classes and a split of the classes into meta-train / meta-val / meta-test.

    ``images``: ``float32 (n, 1, 28, 28)`` in ``[0, 1]``; ``labels``: ``int64 (n,)`` into
    ``names``; ``splits``: ``{"train": [...], "val": [...], "test": [...]}`` class indices.
    """

    name: str
    images: torch.Tensor
    labels: torch.Tensor
    names: list[str]
    splits: dict[str, list[int]]
    notes: list[str] = field(default_factory=list)

    def indices(self, split: str) -> dict[int, list[int]]:
        """Image indices of each class of ``split``, by class."""
        by_class: dict[int, list[int]] = {c: [] for c in self.splits[split]}
        for i, label in enumerate(self.labels.tolist()):
            if label in by_class:
                by_class[label].append(i)
        return by_class

    def subset(self, split: str) -> TensorDataset:
        """The images of ``split``'s classes, labels renumbered ``0..C-1`` in class order."""
        classes = self.splits[split]
        relabel = torch.full((len(self.names),), -1, dtype=torch.int64)
        relabel[classes] = torch.arange(len(classes))
        keep = relabel[self.labels] >= 0
        return TensorDataset(self.images[keep], relabel[self.labels[keep]])


def load_classes(name: str = "glyphs", *, seed: int = 0) -> ClassSet:
    """The class set ``glyphs`` or ``digits``; ``glyphs`` raises :class:`~.glyphs.FontsMissingError`.

    >>> digits = load_classes("digits")
    >>> digits.images.shape, {k: len(v) for k, v in digits.splits.items()}
    (torch.Size([1797, 1, 28, 28]), {'train': 5, 'val': 0, 'test': 5})
    """
    if name == "glyphs":
        data = glyphs.glyphs()
        images, labels = data.tensors()
        splits = glyphs.split_classes(data.classes)
        versions = glyphs.font_package_versions()
        notes = [f"{len(data.font_names)} font files from " + ", ".join(f"{p} {v}" for p, v in versions.items())]
        if any(v not in ("?", glyphs.PINNED_VERSIONS[p]) for p, v in versions.items()):
            notes.append(
                "note: not the pinned font versions ("
                + ", ".join(f"{p} {v}" for p, v in glyphs.PINNED_VERSIONS.items())
                + "); the images, and so the numbers, "
                "may differ from docs/examples/fewshot.md"
            )
        return ClassSet("glyphs", images, labels, list(data.classes), splits, notes)
    if name == "digits":
        train, test = datasets.digits(size=20, pad=4, seed=seed)
        images = torch.cat([train.tensors[0], test.tensors[0]])
        labels = torch.cat([train.tensors[1], test.tensors[1]])
        names = [str(d) for d in range(10)]
        return ClassSet(
            "digits",
            images,
            labels,
            names,
            glyphs.split_classes(names, (0.5, 0.0, 0.5)),
            ["scikit-learn's 8×8 digits, scaled to 20×20 and centred in 28×28"],
        )
    raise ld.errors.OptionError(f"--data {name!r}: known class sets are glyphs, digits")


# -- the models ------------------------------------------------------------------------------


class Backbone(nn.Module):
    """A backbone: a module from images to ``features`` numbers each (:class:`Conv4`, :class:`ResNet12`)."""

    features: int


class Conv4(Backbone):
    """Four blocks conv 3×3 (64) → BatchNorm → ReLU → max-pool 2: 1×28×28 images to 64 features."""

    def __init__(self, channels: int = 64):
        super().__init__()
        blocks, width = [], 1
        for _ in range(4):
            blocks += [nn.Conv2d(width, channels, 3, padding=1), nn.BatchNorm2d(channels), nn.ReLU(), nn.MaxPool2d(2)]
            width = channels
        self.net = nn.Sequential(*blocks, nn.Flatten())
        self.features = channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class _ResBlock(nn.Module):
    """RFS's ResNet-12 block: three conv 3×3-BN (LeakyReLU 0.1), a 1×1 shortcut, max-pool 2."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(cin, cout, 3, padding=1, bias=False),
            nn.BatchNorm2d(cout),
            nn.LeakyReLU(0.1),
            nn.Conv2d(cout, cout, 3, padding=1, bias=False),
            nn.BatchNorm2d(cout),
            nn.LeakyReLU(0.1),
            nn.Conv2d(cout, cout, 3, padding=1, bias=False),
            nn.BatchNorm2d(cout),
        )
        self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, bias=False), nn.BatchNorm2d(cout))
        self.out = nn.Sequential(nn.LeakyReLU(0.1), nn.MaxPool2d(2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.body(x) + self.shortcut(x))


class ResNet12(Backbone):
    """The ResNet-12 of RFS (channels 64, 160, 320, 640; no DropBlock), average-pooled to 640 features."""

    def __init__(self, channels: Sequence[int] = (64, 160, 320, 640), in_channels: int = 1):
        super().__init__()
        widths = [in_channels, *channels]
        self.net = nn.Sequential(
            *(_ResBlock(a, b) for a, b in zip(widths, widths[1:])), nn.AdaptiveAvgPool2d(1), nn.Flatten()
        )
        self.features = channels[-1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


BACKBONES: dict[str, Callable[[], Backbone]] = {"small": Conv4, "resnet12": ResNet12}


def make_backbone(name: str, width: int = 64) -> Backbone:
    """A new backbone ``small`` (:class:`Conv4` of ``width`` channels) or ``resnet12`` (:class:`ResNet12`).

    ``.features`` is the size of its output.
    """
    if name not in BACKBONES:
        raise ld.errors.OptionError(f"--backbone {name!r}: known backbones are {', '.join(BACKBONES)}")
    return Conv4(width) if name == "small" else BACKBONES[name]()


class L2Normalize(nn.Module):
    """Rows scaled to unit Euclidean norm (RFS normalises features before its classifier)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(x, dim=-1)


def few_shot_head(features: int, ways: int) -> nn.Sequential:
    """An episode's head ``h_e``: L2-normalise, then a linear layer to ``ways`` logits, started at zero."""
    linear = nn.Linear(features, ways)
    nn.init.zeros_(linear.weight)
    nn.init.zeros_(linear.bias)
    return nn.Sequential(L2Normalize(), linear)


class FrozenFeatures(nn.Module):
    """A frozen backbone whose output is remembered per input tensor while it stays frozen.

    In the glued meta-test diagram the backbone is frozen and each support set is
    one fixed tensor drawn at every step, so its features never change: they are
    computed at the first step and reused, and fitting 50 heads costs 50 backbone
    passes instead of 50 per step. An input changed in place (a new ``_version``)
    or a backbone that trains is computed afresh. :meth:`clear` forgets everything.

    >>> memo = FrozenFeatures(nn.Linear(3, 2)).requires_grad_(False)
    >>> x = torch.ones(4, 3)
    >>> memo(x) is memo(x), memo(x) is memo(x.clone())
    (True, False)
    """

    def __init__(self, backbone: nn.Module):
        super().__init__()
        self.backbone = backbone
        self._memo: dict[int, tuple[torch.Tensor, int, torch.Tensor]] = {}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if torch.is_grad_enabled() and any(p.requires_grad for p in self.backbone.parameters()):
            return self.backbone(x)
        hit = self._memo.get(id(x))
        if hit is not None and hit[0] is x and hit[1] == x._version:
            return hit[2]
        out = self.backbone(x)
        self._memo[id(x)] = (x, x._version, out)  # holds x, so its id is not reused meanwhile
        return out

    def clear(self) -> None:
        self._memo.clear()


# -- the diagrams -----------------------------------------------------------------------------


def images(batch):
    """``x``: a batch's images."""
    return batch[0]


def labels(batch):
    """``y``: a batch's labels."""
    return batch[1]


def square(key: str, backbone: nn.Module | None, head: nn.Module | None, data=None) -> ld.Diagram:
    """The classifier square of ``key``: ``x_key·m·h_key ≤ y_key`` at ``Y_key`` (cross-entropy).

    ``N_key --x_key--> X --m--> F --h_key--> Y_key`` and ``N_key --y_key--> Y_key``.
    """
    k = key
    return (
        ld.Diagram()
        .space(f"N_{k}", data=data)
        .space("X")
        .space("F")
        .space(f"Y_{k}", loss=ld.losses.cross_entropy)
        .map(f"x_{k}", f"N_{k}", "X", images)
        .map(f"y_{k}", f"N_{k}", f"Y_{k}", labels)
        .map("m", "X", "F", backbone)
        .map(f"h_{k}", "F", f"Y_{k}", head)
        .relate(f"x_{k}·m·h_{k}", f"y_{k}")
    )


def backbone_diagram(backbone: nn.Module | None = None) -> ld.Diagram:
    """``X --m--> F``: what the squares share. With ``backbone`` given it is also a search
    pattern that matches only the edge carrying that very module."""
    return ld.Diagram().space("X").space("F").map("m", "X", "F", backbone)


@dataclass
class Episode:
    """One N-way K-shot episode: ``classes[j]`` has label ``j``; support and query sets as tensors."""

    index: int
    classes: list[int]
    support: tuple[torch.Tensor, torch.Tensor]
    query: tuple[torch.Tensor, torch.Tensor]
    support_indices: list[int]
    query_indices: list[int]

    @property
    def ways(self) -> int:
        return len(self.classes)


def sample_episodes(
    classes: ClassSet, split: str, count: int, *, ways: int = 5, shots: int = 1, queries: int = 15, seed: int = 0
) -> list[Episode]:
    """``count`` episodes from ``split``'s classes, each drawn from its own seed ``(seed, shots, index)``.

    Episode ``i`` picks ``ways`` classes of the split (labels ``0..ways-1`` in the
    order drawn) and, in each, ``shots + queries`` distinct images: the first
    ``shots`` are the support set, the rest the query set. ``random.Random`` seeded
    with a string: the same episodes on every machine and version.

    >>> eps = sample_episodes(load_classes("digits"), "test", 2, shots=5)
    >>> [e.support[0].shape for e in eps], eps[0].query[1].tolist()[:16]
    ([torch.Size([25, 1, 28, 28]), torch.Size([25, 1, 28, 28])], [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1])
    """
    by_class = classes.indices(split)
    usable = [c for c, idx in by_class.items() if len(idx) >= shots + queries]
    if len(usable) < ways:
        raise ld.errors.OptionError(
            f"split {split!r} of {classes.name} has {len(usable)} classes with at least "
            f"{shots + queries} images; a {ways}-way {shots}-shot episode with {queries} queries "
            f"per class needs {ways}"
        )
    episodes = []
    for index in range(count):
        rng = random.Random(f"fewshot/{seed}/{shots}/{index}")
        chosen = rng.sample(usable, ways)
        support, query = [], []
        for c in chosen:
            picked = rng.sample(by_class[c], shots + queries)
            support += picked[:shots]
            query += picked[shots:]

        def part(idx: list[int], per: int) -> tuple[torch.Tensor, torch.Tensor]:
            return classes.images[idx], torch.arange(ways).repeat_interleave(per)

        episodes.append(Episode(index, chosen, part(support, shots), part(query, queries), support, query))
    return episodes


def glue_episodes(
    episodes: Sequence[Episode], backbone: nn.Module, features: int, device: torch.device | str = "cpu"
) -> ld.Colimit:
    """One square per episode (its support set, a new head), glued along ``X --m--> F``; ``m`` frozen.

    Each square's data ``N_e`` is the support set, one full batch (on ``device``).
    The squares' ``m`` is the one ``backbone`` object; after the pushout, the edge
    that carries it is frozen by homomorphism search, the paper's "set the encoder
    to eval mode". ``.apex`` is the diagram; ``.legs[i]`` finds episode ``i``'s parts.

    >>> eps = sample_episodes(load_classes("digits"), "test", 3)
    >>> colim = glue_episodes(eps, FrozenFeatures(Conv4()), 64)
    >>> colim.apex.graph.edges[:5], colim.apex.maps["m"].trainable
    (('x_0', 'y_0', 'm', 'h_0', 'x_1'), False)
    >>> [pair.name for pair in colim.apex.parallel_pairs()]
    ['x_0·m·h_0 ≤ y_0', 'x_1·m·h_1 ≤ y_1', 'x_2·m·h_2 ≤ y_2']
    """
    squares = [
        square(str(e.index), backbone, few_shot_head(features, e.ways), tuple(t.to(device) for t in e.support))
        for e in episodes
    ]  # on the device already, so each step draws the very same tensors
    colim = ld.glue(*squares, along=backbone_diagram())
    # Every support set reaches every head through the one m (x_e·m·h_f: n² paths, n + 3 from each N_e):
    # the path guard, sized for paths that grow linearly with the diagram, would stop at about 50 episodes.
    # (The paths are counted, never listed: the n pairs come from the relations alone, core/universe.py.)
    n = len(squares)
    colim.apex.max_paths = max(colim.apex.max_paths, n * n + 10 * n + 10)
    ld.homsearch.freeze(colim.apex, backbone_diagram(backbone), "m")
    return colim


# -- training ----------------------------------------------------------------------------------


def pretrain(
    classes: ClassSet,
    backbone: Backbone,
    *,
    epochs: int,
    batch_size: int = 64,
    lr: float = 1e-3,
    seed: int = 0,
    device: str = "auto",
    progress: bool = True,
    log_dir=False,
) -> ld.Diagram:
    """Train ``backbone`` as one classifier over the meta-train classes: a single square, ``ld.fit``.

    Returns the square (its head ``h_train`` is a linear layer to every meta-train class).
    """
    data = classes.subset("train")
    torch.manual_seed(seed)
    head = nn.Linear(backbone.features, len(classes.splits["train"]))
    loader = DataLoader(data, batch_size=batch_size, shuffle=True)
    d = square("train", backbone, head, loader)
    ld.fit(d, epochs=epochs, lr=lr, seed=seed, device=device, progress=progress, log_dir=log_dir, log_every=10)
    return d


def meta_train(
    classes: ClassSet,
    backbone: Backbone,
    *,
    epochs: int,
    rounds: int = 4,
    ways: int = 5,
    batch_size: int = 20,
    lr: float = 1e-3,
    seed: int = 0,
    device: str = "auto",
    progress: bool = True,
    log_dir=False,
) -> ld.Colimit:
    """Train ``backbone`` on many glued ``ways``-class tasks at once: the paper's meta-training.

    Each of ``rounds`` seeded shuffles of the meta-train classes is cut into tasks of
    ``ways`` classes (leftover classes wait for the next shuffle); each task is a
    classifier square with all its classes' images and its own linear head; all are
    glued along the one trainable backbone and trained by one ``ld.fit``
    (``policy="max_size_cycle"``: a step is one batch of every task).
    """
    train = classes.splits["train"]
    by_class = classes.indices("train")
    rng = random.Random(f"fewshot/meta-train/{seed}")
    tasks: list[list[int]] = []
    for _ in range(rounds):
        order = rng.sample(train, len(train))
        tasks += [order[i : i + ways] for i in range(0, len(order) - ways + 1, ways)]
    if not tasks:
        raise ld.errors.OptionError(f"{len(train)} meta-train classes do not make one {ways}-class task")
    torch.manual_seed(seed)
    squares = []
    for t, task in enumerate(tasks):
        idx = [i for c in task for i in by_class[c]]
        y = torch.tensor([j for j, c in enumerate(task) for _ in by_class[c]])
        loader = DataLoader(TensorDataset(classes.images[idx], y), batch_size=batch_size, shuffle=True)
        squares.append(square(f"t{t}", backbone, nn.Linear(backbone.features, ways), loader))
    colim = ld.glue(*squares, along=backbone_diagram())
    ld.fit(
        colim.apex,
        epochs=epochs,
        lr=lr,
        seed=seed,
        device=device,
        progress=progress,
        log_dir=log_dir,
        log_every=10,
        policy="max_size_cycle",
        plot=False,
    )  # a plot of 72 terms says nothing: the logs do
    return colim


def _decayed(name: str | None, p: torch.Tensor) -> bool:
    """Whether ``p`` is a weight (L2-penalised) rather than a bias: by its name where given, else by its rank.

    The name decides when the trainer gives one (``"h_3.1.weight"``; a fused family's
    stacked tensor ``(members, out)`` of biases has two dimensions, yet is a bias).
    """
    if name is not None:
        return name.rsplit(".", 1)[-1] == "weight"
    return p.dim() > 1


def _adam_with_l2(lr: float, weight_decay: float):
    """An optimiser factory: Adam, the L2 penalty on each head's weights only (not biases), like sklearn's.

    Weights and biases are told apart by the last component of the parameter's name
    (the ``"param_names"`` of each group the trainer passes, aligned with its
    ``"params"``), or by their rank where no names are given. The parameters are
    regrouped into one group of weights and one of biases (per learning rate a map was
    given), so that Adam's step over 600 heads is two groups, not 1,200.

    >>> w, b = nn.Parameter(torch.ones(3, 2, 4)), nn.Parameter(torch.ones(3, 2))  # stacked: 3 heads
    >>> o = _adam_with_l2(0.1, 0.5)([{"params": [w, b], "param_names": ["h.1.weight", "h.1.bias"]}])
    >>> [(len(g["params"]), g["weight_decay"]) for g in o.param_groups]
    [(1, 0.5), (1, 0.0)]
    """

    def make(groups: list[dict]) -> torch.optim.Optimizer:
        merged: dict[tuple[float, str], dict] = {}
        for group in groups:
            params = list(group["params"])
            names = group.get("param_names") or [None] * len(params)
            options = {k: v for k, v in group.items() if k not in ("params", "param_names", "map")}
            for name, p in zip(names, params):
                decay = weight_decay if _decayed(name, p) else 0.0
                key = (decay, repr(sorted(options.items())))
                merged.setdefault(key, {**options, "params": [], "weight_decay": decay})["params"].append(p)
        return torch.optim.Adam(list(merged.values()), lr=lr)

    return make


def fit_heads(
    episodes: Sequence[Episode],
    backbone: Backbone,
    *,
    glue: int = 50,
    steps: int = 100,
    lr: float = 0.1,
    C: float = 1.0,
    seed: int = 0,
    device: str = "auto",
    fuse: bool = False,
    on_colimit: Callable[[ld.Colimit], None] | None = None,
) -> list[float]:
    """Query accuracy (%) of each episode's head, fitted in glued diagrams of ``glue`` episodes.

    For each chunk: :func:`glue_episodes` (the backbone frozen, its features of each
    support set remembered), one ``ld.fit`` of ``steps`` full-batch steps (Adam,
    learning rate ``lr`` on a cosine schedule, weight decay ``1 / (C · n_support)``
    on the weights), then ``ld.Trainer().evaluate`` on the query sets, accuracy at
    every ``Y_e``. ``on_colimit`` sees each glued diagram after fitting.

    ``fuse=True`` is ``ld.fit(..., fuse=True)``: the heads of a chunk, one family of
    parallel maps, run as one batched call; with ``glue=len(episodes)`` every episode
    is one glued diagram trained at once. The accuracies are those of ``fuse=False``
    (the heads are independent either way) and of :func:`loop_heads`.
    """
    memo = FrozenFeatures(backbone)
    dev = machine.device(device)
    accuracies: list[float] = []
    for start in range(0, len(episodes), glue):
        chunk = episodes[start : start + glue]
        colim = glue_episodes(chunk, memo, backbone.features, device=dev)
        d = colim.apex
        shots = len(chunk[0].support[1])
        ld.fit(
            d,
            epochs=1,
            policy="steps",
            steps_per_epoch=steps,
            seed=seed,
            device=device,
            progress=False,
            log_dir=False,
            optimizer=_adam_with_l2(lr, 1.0 / (C * shots)),
            scheduler=lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, steps),
            scheduler_interval="step",
            fuse=fuse,
        )
        queries = {leg(f"N_{e.index}"): e.query for leg, e in zip(colim.legs, chunk)}
        metrics = {leg(f"Y_{e.index}"): "accuracy" for leg, e in zip(colim.legs, chunk)}
        values = ld.Trainer(device=device, progress=False).evaluate(d, queries, metrics)
        accuracies += [100 * values[f"accuracy[x_{e.index}·m·h_{e.index} ≤ y_{e.index}]"] for e in chunk]
        if on_colimit is not None:
            on_colimit(colim)
        memo.clear()
    return accuracies


def loop_heads(
    episodes: Sequence[Episode],
    backbone: Backbone,
    *,
    steps: int = 100,
    lr: float = 0.1,
    C: float = 1.0,
    seed: int = 0,
    device: str = "auto",
) -> list[float]:
    """Query accuracy (%) of each episode's head, fitted one episode at a time by a hand-written loop.

    What a user writes today without the diagrams, in plain PyTorch: for each episode,
    the frozen backbone (eval mode, no gradient) embeds the support set once; a new
    :func:`few_shot_head` is trained for ``steps`` full-batch steps of Adam, learning
    rate ``lr`` on a cosine schedule stepped every step, weight decay
    ``1 / (C · n_support)`` on the weight only; then the backbone embeds the query set
    and the head scores it. The objective, optimiser and schedule are those
    :func:`fit_heads` gives ``ld.fit``, so the accuracies are the same episode by
    episode (up to the order of floating-point sums).

    >>> eps = sample_episodes(load_classes("digits"), "test", 2, shots=5)
    >>> backbone = Conv4(8)
    >>> loop_heads(eps, backbone, steps=20, device="cpu") == fit_heads(eps, backbone, steps=20, device="cpu")
    True
    """
    dev = machine.device(device)
    backbone.eval().to(dev)
    torch.manual_seed(seed)  # nothing here draws: the heads start at zero and the batches are whole
    accuracies = []
    for e in episodes:
        with torch.no_grad():
            support = backbone(e.support[0].to(dev))
        labels = e.support[1].to(dev)
        head = few_shot_head(backbone.features, e.ways).to(dev)
        linear = head[1]
        assert isinstance(linear, nn.Linear)
        optimiser = torch.optim.Adam(
            [
                {"params": [linear.weight], "weight_decay": 1.0 / (C * len(labels))},
                {"params": [linear.bias], "weight_decay": 0.0},
            ],
            lr=lr,
        )
        schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, steps)
        for _ in range(steps):
            loss = F.cross_entropy(head(support), labels)
            loss.backward()
            optimiser.step()
            optimiser.zero_grad(set_to_none=True)
            schedule.step()
        with torch.no_grad():
            predicted = head(backbone(e.query[0].to(dev))).argmax(-1)
        accuracies.append(100 * (predicted == e.query[1].to(dev)).float().mean().item())
    return accuracies


@torch.no_grad()
def _features(backbone: nn.Module, x: torch.Tensor, device: torch.device) -> np.ndarray:
    """L2-normalised features of ``x`` by ``backbone`` in eval mode, 512 images at a time."""
    backbone.eval().to(device)
    out = torch.cat([backbone(x[i : i + 512].to(device)) for i in range(0, len(x), 512)])
    return F.normalize(out, dim=-1).cpu().double().numpy()


def rfs(
    episodes: Sequence[Episode], backbone: nn.Module, images: torch.Tensor, *, C: float = 1.0, device: str = "auto"
) -> list[float]:
    """Query accuracy (%) of the RFS protocol on each episode.

    The backbone (in eval mode) embeds every image the episodes use, once
    (``images`` is the class set's image tensor, which the episodes' indices point
    into); the features are L2-normalised; ``LogisticRegression(C=C, max_iter=1000)``
    (lbfgs, multinomial, as in the RFS code) is fitted on each support set and
    scores its query set.
    """
    from sklearn.linear_model import LogisticRegression

    used = sorted({i for e in episodes for i in (*e.support_indices, *e.query_indices)})
    table = _features(backbone, images[used], machine.device(device))
    row = {i: k for k, i in enumerate(used)}
    accuracies = []
    for e in episodes:
        support = table[[row[i] for i in e.support_indices]]
        query = table[[row[i] for i in e.query_indices]]
        classifier = LogisticRegression(C=C, max_iter=1000).fit(support, e.support[1].numpy())
        accuracies.append(100 * float((classifier.predict(query) == e.query[1].numpy()).mean()))
    return accuracies


def mean_ci(values: Sequence[float]) -> tuple[float, float]:
    """The mean and the half-width of its 95% confidence interval, ``1.96·s/√n`` (``s``: sample std).

    >>> mean_ci([80.0, 90.0, 100.0])
    (90.0, 11.316065...)
    >>> mean_ci([75.0])
    (75.0, 0.0)
    """
    values = list(values)
    if len(values) < 2:
        return (float(values[0]) if values else math.nan, 0.0)
    return statistics.fmean(values), 1.96 * statistics.stdev(values) / math.sqrt(len(values))


#: The meta-test's methods, as the tables name them.
METHODS = {
    "glued heads": "glued heads (ld.fit)",
    "loop": "per-episode loop (PyTorch)",
    "RFS": "RFS (LogisticRegression)",
}


def _cell(values: Sequence[float]) -> str:
    mean, ci = mean_ci(values)
    return f"{mean:.2f} ± {ci:.2f}"


# -- the run --------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> dict:
    """Run the comparison; returns the class set, episodes, per-episode accuracies and wall times, a glued diagram."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--data", choices=("glyphs", "digits"), help="class set (default glyphs, or digits without the fonts)"
    )
    parser.add_argument(
        "--backbone",
        choices=tuple(BACKBONES),
        default="small",
        help="small (Conv-4, default) or resnet12 (RFS's; 38 times the compute)",
    )
    parser.add_argument("--width", type=int, default=64, help="channels of the small backbone (default 64)")
    parser.add_argument(
        "--full", action="store_true", help="600 episodes, 30 pretraining epochs, and the meta-training variant"
    )
    parser.add_argument("--episodes", type=int, help="episodes per shot (default 100, 600 with --full)")
    parser.add_argument("--shots", default="1,5", help="comma-separated (default 1,5)")
    parser.add_argument("--ways", type=int, default=5)
    parser.add_argument("--queries", type=int, default=15, help="query images per class (default 15)")
    parser.add_argument("--split", choices=("test", "val"), default="test", help="classes of the episodes")
    parser.add_argument("--pretrain-epochs", type=int, help="default 10, 30 with --full")
    parser.add_argument("--batch-size", type=int, default=64, help="pretraining batch (default 64)")
    parser.add_argument("--lr", type=float, default=1e-3, help="Adam's learning rate for the backbones")
    parser.add_argument("--glue", type=int, default=50, help="episodes glued into one diagram (default 50)")
    parser.add_argument("--head-steps", type=int, default=100, help="full-batch steps fitting the heads")
    parser.add_argument("--head-lr", type=float, default=0.1, help="Adam's first learning rate for the heads")
    parser.add_argument(
        "--fuse", action="store_true", help="ld.fit(fuse=True): each glued diagram's heads run as one batched call"
    )
    parser.add_argument("--C", type=float, default=1.0, help="inverse L2 strength, both methods (default 1)")
    parser.add_argument("--meta-train", action="store_true", help="also the meta-training variant (on with --full)")
    parser.add_argument("--meta-epochs", type=int, help="meta-training epochs (default: pretraining's / rounds)")
    parser.add_argument("--meta-rounds", type=int, default=4, help="shuffles of the classes cut into tasks")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="auto", help="auto (CUDA when there is one), cpu, cuda, ...")
    parser.add_argument("--threads", type=int, help="torch CPU threads for the run (default: torch's choice)")
    parser.add_argument("--draw", metavar="PATH", help="draw three glued episode squares there (.svg, .png, ...)")
    parser.add_argument("--log-dir", default="runs/fewshot", help="pretraining logs go there")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    args = parser.parse_args(argv)
    with machine.threads(args.threads):
        return _run(parser, args)


def _meta_test(
    method: str,
    episodes: Sequence[Episode],
    backbone: Backbone,
    classes: ClassSet,
    args: argparse.Namespace,
    on_colimit: Callable[[ld.Colimit], None] | None,
) -> list[float]:
    """Query accuracies of ``method`` (a key of :data:`METHODS`) on ``episodes``, with the run's options."""
    if method == "glued heads":
        return fit_heads(
            episodes,
            backbone,
            glue=args.glue,
            steps=args.head_steps,
            lr=args.head_lr,
            C=args.C,
            seed=args.seed,
            device=args.device,
            fuse=args.fuse,
            on_colimit=on_colimit,
        )
    if method == "loop":
        options = dict(steps=args.head_steps, lr=args.head_lr, C=args.C, seed=args.seed, device=args.device)
        return loop_heads(episodes, backbone, **options)
    return rfs(episodes, backbone, classes.images, C=args.C, device=args.device)


def _run(parser: argparse.ArgumentParser, args: argparse.Namespace) -> dict:
    start = time.perf_counter()
    try:
        shots = [int(s) for s in args.shots.split(",")]
    except ValueError:
        parser.error(f"--shots {args.shots!r} is not a comma-separated list of numbers")
    episodes_n = args.episodes or (600 if args.full else 100)
    pretrain_epochs = args.pretrain_epochs or (30 if args.full else 10)
    meta = args.meta_train or args.full
    meta_epochs = args.meta_epochs or max(1, round(pretrain_epochs / args.meta_rounds))
    try:
        classes = load_classes(args.data or "glyphs", seed=args.seed)
    except datasets.DataMissingError as error:
        if args.data == "glyphs":
            parser.exit(2, f"{parser.prog}: error: {error}\n")
        print(f"{error}\n\nFalling back to the digits class set.\n")
        classes = load_classes("digits", seed=args.seed)

    split_sizes = ", ".join(f"{len(v)} {k}" for k, v in classes.splits.items())
    print(
        f"Class set {classes.name}: {len(classes.names)} classes ({split_sizes}), {len(classes.labels)} images "
        f"{tuple(classes.images.shape[1:])}"
    )
    for note in classes.notes:
        print(f"  {note}")
    print(
        f"Episodes: {episodes_n} per shot, {args.ways}-way {'/'.join(map(str, shots))}-shot, {args.queries} "
        f"queries per class, from the {len(classes.splits[args.split])} {args.split} classes; seed {args.seed}."
    )
    episodes = {
        k: sample_episodes(
            classes, args.split, episodes_n, ways=args.ways, shots=k, queries=args.queries, seed=args.seed
        )
        for k in shots
    }

    torch.manual_seed(args.seed)
    backbone = make_backbone(args.backbone, args.width)
    params = sum(p.numel() for p in backbone.parameters())
    print(
        f"\nPretraining the {args.backbone} backbone ({params:,} parameters) as one classifier over the "
        f"{len(classes.splits['train'])} meta-train classes: {pretrain_epochs} epochs, batch {args.batch_size}."
    )
    log = lambda name: os.path.join(args.log_dir, name) if args.log_dir else False  # noqa: E731
    square_d = pretrain(
        classes,
        backbone,
        epochs=pretrain_epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        seed=args.seed,
        device=args.device,
        progress=not args.quiet,
        log_dir=log("pretrain"),
    )
    print(f"The pretraining square: {square_d.graph}")
    print("Compiled pair:", *square_d.parallel_pairs())
    backbones = {"pretrained": backbone}
    meta_colim = None

    if meta:
        torch.manual_seed(args.seed)
        meta_backbone = make_backbone(args.backbone, args.width)
        print(
            f"\nMeta-training a new {args.backbone} backbone on glued {args.ways}-class tasks: "
            f"{args.meta_rounds} cuts of the meta-train classes, {meta_epochs} epochs."
        )
        meta_colim = meta_train(
            classes,
            meta_backbone,
            epochs=meta_epochs,
            rounds=args.meta_rounds,
            ways=args.ways,
            lr=args.lr,
            seed=args.seed,
            device=args.device,
            progress=not args.quiet,
            log_dir=log("meta-train"),
        )
        heads = [name for name in meta_colim.apex.maps if name.startswith("h_")]
        print(
            f"The meta-training diagram: {len(heads)} task squares glued along m: X → F, "
            f"{len(meta_colim.apex.parallel_pairs())} compiled pairs."
        )
        backbones["meta-trained"] = meta_backbone

    glued: list[ld.Colimit] = []
    if args.draw:
        first = episodes[shots[0]][:3]
        drawing = glue_episodes(first, FrozenFeatures(backbone), backbone.features)
        print(
            f"\nDrawn to {drawing.apex.draw(args.draw, title=f'{len(first)} episodes glued along the frozen m: X → F')}"
        )

    accuracy: dict[tuple[str, str, int], list[float]] = {}
    seconds: dict[tuple[str, str, int], float] = {}
    fused = "fused, " if args.fuse else ""
    for name, net in backbones.items():
        for k in shots:
            print(
                f"\n{name} backbone, {k}-shot: fitting {episodes_n} heads in glued diagrams of {args.glue} "
                f"episodes ({fused}{args.head_steps} steps each), then one episode at a time by a hand-written "
                "loop, then RFS's logistic regression, on the same episodes"
            )
            for method in METHODS:
                t0 = time.perf_counter()
                keep = None if glued or method != "glued heads" else glued.append
                accuracy[(name, method, k)] = _meta_test(method, episodes[k], net, classes, args, keep)
                seconds[(name, method, k)] = time.perf_counter() - t0
            print(
                "  "
                + ", ".join(
                    f"{method} {_cell(accuracy[(name, method, k)])} ({seconds[(name, method, k)]:.1f} s)"
                    for method in METHODS
                )
            )

    colim = glued[0]
    print(
        f"\nOne glued meta-test diagram: {len(colim.apex.spaces)} spaces, {len(colim.apex.maps)} maps; "
        f"m frozen: {not colim.apex.maps['m'].trainable}; first pairs: "
        + ", ".join(p.name for p in colim.apex.parallel_pairs()[:2])
        + ", ..."
    )
    print(
        f"\nQuery accuracy (%), {args.ways}-way, mean ± 95% confidence interval (1.96·s/√n) over "
        f"{episodes_n} {args.split} episodes; {classes.name}, {args.backbone} backbone"
    )
    header = "| backbone     | method                      | " + " | ".join(f"{k}-shot".rjust(13) for k in shots) + " |"
    print(header)
    print("| ------------ | --------------------------- | " + " | ".join("-" * 12 + ":" for _ in shots) + " |")
    for name in backbones:
        for method, label in METHODS.items():
            cells = " | ".join(_cell(accuracy[(name, method, k)]).rjust(13) for k in shots)
            print(f"| {name:<12} | {label:<27} | {cells} |")
    print(
        f"\nMeta-test wall time (s) and query accuracy (%), {episodes_n} episodes a shot: each method embeds the "
        f"support and query images by the frozen backbone, fits every head and scores it; glued diagrams of "
        f"{args.glue} episodes, {'fused' if args.fuse else 'not fused'} (--fuse); {machine.describe(args.device)}"
    )
    print(
        "| backbone     | method                      | "
        + " | ".join(f"{k}-shot time".rjust(11) + " | " + f"{k}-shot accuracy".rjust(15) for k in shots)
        + " |"
    )
    print(
        "| ------------ | --------------------------- | "
        + " | ".join("-" * 10 + ": | " + "-" * 14 + ":" for _ in shots)
        + " |"
    )
    for name in backbones:
        for method, label in METHODS.items():
            cells = " | ".join(
                f"{seconds[(name, method, k)]:11.2f} | {_cell(accuracy[(name, method, k)]):>15}" for k in shots
            )
            print(f"| {name:<12} | {label:<27} | {cells} |")
    print("\nPaired difference, glued heads − RFS, same episodes (mean ± 95% CI):")
    for name in backbones:
        diffs = ", ".join(
            f"{k}-shot {_cell([a - b for a, b in zip(accuracy[(name, 'glued heads', k)], accuracy[(name, 'RFS', k)])])}"
            for k in shots
        )
        print(f"  {name}: {diffs}")
    print(f"\nDone in {time.perf_counter() - start:.1f} s on {machine.describe(args.device)}.")
    return {
        "classes": classes,
        "episodes": episodes,
        "accuracy": accuracy,
        "seconds": seconds,
        "colimit": colim,
        "pretrain": square_d,
        "meta_colimit": meta_colim,
        "backbones": backbones,
    }


if __name__ == "__main__":
    main()
