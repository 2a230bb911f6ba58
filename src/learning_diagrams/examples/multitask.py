"""Multi-task learning as a learning diagram: two data sets, their own heads, one backbone.

The paper's Figure 2 (bottom). For each task ``t`` a classifier square::

    N_t --x_t--> X --m--> F --h_t--> Y_t        x_t·m·h_t ≤ y_t
    N_t --y_t------------------------> Y_t      (cross-entropy at Y_t)

with its own data ``N_t``, labels ``Y_t`` and head ``h_t``, and the same
backbone ``m: X → F`` (one module object) in every square. ``ld.glue`` glues the
squares along the backbone diagram ``X --m--> F``: the apex has one ``X``, one
``F``, one edge ``m`` and one head per task, and compiles to one pair per task,
so ``ld.fit`` trains every head on its task and the backbone on all of them at
once (the backbone runs once per batch of each task).

The comparison: each task trained alone, its single square with the same
backbone architecture and the very same initial weights (seeded), trained by
``ld.fit`` for the same number of steps, i.e. on the same number of batches of
its own data as it gets in the glued run. Test accuracy of each head, along the
compiled pair ``x_t·m·h_t ≤ y_t``.

Tasks (``--tasks``, comma-separated):

* ``digits``: scikit-learn's 8×8 digits laid out as MNIST (scaled to 20×20,
  centred in 28×28); 1,437 training and 360 test images, always available.
* ``fashion``: Fashion-MNIST from the Debian package ``dataset-fashion-mnist``
  (``make data``) or ``--fashion-root``; 5,000 of its 60,000 training images by
  default, all with ``--full``; its 10,000 test images.
* ``digits-rotated``: the digits turned a quarter turn, a second glyph alphabet.
  When several digits tasks are chosen, each trains on its own disjoint,
  class-balanced share of the digits training images (two data sets, not one
  seen twice); each is tested on all 360 test images.

The default is ``digits,fashion``; without Fashion-MNIST it falls back to
``digits,digits-rotated`` and says so.

Run it with ``python -m learning_diagrams.examples.multitask [--device cuda] [--full]``;
``--draw docs/examples/multitask.svg`` draws the glued diagram. Only the public
API is used.
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import time
from dataclasses import dataclass

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import learning_diagrams as ld
from learning_diagrams.examples import datasets, machine

__all__ = ["Backbone", "Task", "square", "backbone_diagram", "glued", "load_tasks", "main", "TASKS"]

#: Task names known to ``--tasks``.
TASKS = ("digits", "fashion", "digits-rotated")
DEFAULT_TASKS = ("digits", "fashion")
FALLBACK_TASKS = ("digits", "digits-rotated")


class Backbone(nn.Module):
    """A small CNN, 1×28×28 images to ``features`` features (shared by every task)."""

    def __init__(self, features: int = 64):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(1, 8, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(8, 16, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Linear(16 * 7 * 7, features),
            nn.ReLU(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


@dataclass
class Task:
    """One task: its name, training and test sets, and number of classes."""

    name: str
    train: TensorDataset
    test: TensorDataset
    classes: int = 10

    @property
    def key(self) -> str:
        """The name as it appears in vertex and edge names (``digits-rotated`` → ``digits_rotated``)."""
        return self.name.replace("-", "_")


def square(task: Task, backbone: nn.Module, head: nn.Module, data: DataLoader) -> ld.Diagram:
    """The classifier square of ``task``: ``x_t·m·h_t ≤ y_t`` at ``Y_t``, backbone ``m: X → F``."""
    t = task.key
    return (
        ld.Diagram()
        .space(f"N_{t}", data=data)
        .space("X")
        .space("F")
        .space(f"Y_{t}", loss=ld.losses.cross_entropy)
        .map(f"x_{t}", f"N_{t}", "X", images)
        .map(f"y_{t}", f"N_{t}", f"Y_{t}", labels)
        .map("m", "X", "F", backbone)
        .map(f"h_{t}", "F", f"Y_{t}", head)
        .relate(f"x_{t}·m·h_{t}", f"y_{t}")
    )


def backbone_diagram(backbone: nn.Module | None = None) -> ld.Diagram:
    """``X --m--> F``: what the squares share, the diagram they are glued along."""
    return ld.Diagram().space("X").space("F").map("m", "X", "F", backbone)


def glued(squares: list[ld.Diagram], backbone: nn.Module | None = None) -> ld.Colimit:
    """The squares glued along the backbone (a multi-way pushout); ``.apex`` is the diagram.

    >>> data = TensorDataset(torch.zeros(4, 1, 28, 28), torch.zeros(4, dtype=torch.int64))
    >>> m = Backbone()
    >>> squares = [square(Task(name, data, data), m, nn.Linear(64, 10), DataLoader(data, batch_size=2))
    ...            for name in ("digits", "fashion")]
    >>> colim = glued(squares, m)
    >>> colim.apex.graph
    Graph(vertices=['N_digits', 'X', 'F', 'Y_digits', 'N_fashion', 'Y_fashion'], edges=[x_digits: N_digits → X, y_digits: N_digits → Y_digits, m: X → F, h_digits: F → Y_digits, x_fashion: N_fashion → X, y_fashion: N_fashion → Y_fashion, h_fashion: F → Y_fashion])
    >>> [pair.name for pair in colim.apex.parallel_pairs()]
    ['x_digits·m·h_digits ≤ y_digits', 'x_fashion·m·h_fashion ≤ y_fashion']
    >>> colim.legs[1]("m"), colim.legs[1]("h_fashion"), colim.apex.maps["m"].fn is m
    ('m', 'h_fashion', True)
    """
    return ld.glue(*squares, along=backbone_diagram(backbone))


def images(batch):
    """``x_t``: a batch's images."""
    return batch[0]


def labels(batch):
    """``y_t``: a batch's labels."""
    return batch[1]


# -- data ------------------------------------------------------------------------


def _digits_shares(count: int, seed: int) -> list[TensorDataset]:
    """The MNIST-layout digits training set cut into ``count`` disjoint class-balanced shares."""
    train, _ = datasets.digits(size=20, pad=4, seed=seed)
    x, y = train.tensors
    order = torch.randperm(len(y), generator=torch.Generator().manual_seed(seed))
    order = order[torch.argsort(y[order], stable=True)]  # shuffled within each class
    return [TensorDataset(x[order[i::count]], y[order[i::count]]) for i in range(count)]


def load_tasks(
    names: list[str],
    *,
    full: bool = False,
    fashion_train: int = 5000,
    fashion_root: str = datasets.FASHION_MNIST_ROOT,
    digits_limit: int | None = None,
    test_limit: int | None = None,
    seed: int = 0,
) -> list[Task]:
    """The tasks of ``names``; raises :class:`~.datasets.DataMissingError` without Fashion-MNIST."""
    unknown = [n for n in names if n not in TASKS]
    if unknown or len(set(names)) != len(names) or len(names) < 1:
        raise ld.errors.OptionError(
            f"--tasks: {','.join(names)} is not a list of distinct tasks among {', '.join(TASKS)}"
        )
    digit_tasks = [n for n in names if n.startswith("digits")]
    shares = _digits_shares(len(digit_tasks), seed) if len(digit_tasks) > 1 else None
    _, digits_test = datasets.digits(size=20, pad=4, seed=seed, test_limit=test_limit)
    tasks = []
    for name in names:
        if name == "fashion":
            train, test = datasets.fashion_mnist(
                fashion_root, limit=None if full else fashion_train, test_limit=test_limit
            )
        else:
            train = shares[digit_tasks.index(name)] if shares else datasets.digits(size=20, pad=4, seed=seed)[0]
            test = digits_test
            if digits_limit is not None:
                train = TensorDataset(*(t[:digits_limit] for t in train.tensors))
            if name == "digits-rotated":
                train, test = (
                    TensorDataset(torch.rot90(s.tensors[0], 1, dims=(2, 3)), s.tensors[1]) for s in (train, test)
                )
        tasks.append(Task(name, train, test))
    return tasks


# -- the run ---------------------------------------------------------------------


def _models(tasks: list[Task], seed: int, features: int) -> tuple[Backbone, dict[str, nn.Module]]:
    """A backbone and one head per task, from ``seed``: the same weights every time."""
    torch.manual_seed(seed)
    backbone = Backbone(features)
    return backbone, {t.name: nn.Linear(features, t.classes) for t in tasks}


def _loader(data: TensorDataset, batch_size: int, shuffle: bool = True) -> DataLoader:
    return DataLoader(data, batch_size=batch_size, shuffle=shuffle)


def _accuracies(diagram: ld.Diagram, tasks: list[Task], device: str, batch_size: int) -> dict[str, float]:
    """Test accuracy (%) of each task's head along its compiled pair."""
    data = {f"N_{t.key}": _loader(t.test, 4 * batch_size, shuffle=False) for t in tasks}
    metrics = {f"Y_{t.key}": "accuracy" for t in tasks}
    values = ld.Trainer(device=device).evaluate(diagram, data, metrics)
    return {t.name: 100 * values[f"accuracy[x_{t.key}·m·h_{t.key} ≤ y_{t.key}]"] for t in tasks}


def _cell(values: list[float]) -> str:
    if len(values) == 1:
        return f"{values[0]:.2f}"
    return f"{statistics.mean(values):.2f} ± {statistics.stdev(values):.2f}"


def main(argv: list[str] | None = None) -> dict:
    """Run the comparison; returns the tasks, the last seed's glued Colimit and every accuracy."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--tasks",
        help=f"comma-separated, among {', '.join(TASKS)} (default: digits,fashion, "
        f"or digits,digits-rotated without Fashion-MNIST)",
    )
    parser.add_argument(
        "--full", action="store_true", help="all 60,000 Fashion-MNIST training images, 2 epochs, 3 seeds"
    )
    parser.add_argument(
        "--epochs",
        type=int,
        help="epochs of every run, each as long as the largest task's pass "
        "(default 10, 2 with --full: 400 or 938 steps with digits,fashion)",
    )
    parser.add_argument("--seeds", type=int, help="how many seeds (default 1, 3 with --full)")
    parser.add_argument("--seed", type=int, default=0, help="the first seed (default 0)")
    parser.add_argument("--batch-size", type=int, default=128, help="per task and step (default 128)")
    parser.add_argument("--lr", type=float, default=1e-3, help="Adam's learning rate (default 1e-3)")
    parser.add_argument("--features", type=int, default=64, help="size of the backbone's output F (default 64)")
    parser.add_argument(
        "--fashion-train", type=int, default=5000, help="Fashion-MNIST training images without --full (default 5000)"
    )
    parser.add_argument(
        "--fashion-root",
        default=datasets.FASHION_MNIST_ROOT,
        help="folder of the Fashion-MNIST idx files (default: the Debian package's)",
    )
    parser.add_argument("--digits-limit", type=int, help="at most this many digits training images per task")
    parser.add_argument("--test-limit", type=int, help="at most this many test images per task")
    parser.add_argument("--device", default="auto", help="auto (CUDA when there is one), cpu, cuda, ...")
    parser.add_argument("--threads", type=int, help="torch CPU threads for the run (default: torch's choice)")
    parser.add_argument("--draw", metavar="PATH", help="draw the glued diagram there (.svg, .png, ...)")
    parser.add_argument("--log-dir", default="runs/multitask", help="where each run's logs go")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    args = parser.parse_args(argv)
    with machine.threads(args.threads):
        return _run(parser, args)


def _run(parser: argparse.ArgumentParser, args: argparse.Namespace) -> dict:
    start = time.perf_counter()
    seeds = [args.seed + k for k in range(args.seeds or (3 if args.full else 1))]
    epochs = args.epochs or (2 if args.full else 10)
    load = dict(
        full=args.full,
        fashion_train=args.fashion_train,
        fashion_root=args.fashion_root,
        digits_limit=args.digits_limit,
        test_limit=args.test_limit,
        seed=args.seed,
    )
    if args.tasks:
        names = [n.strip() for n in args.tasks.split(",")]
        try:
            tasks = load_tasks(names, **load)
        except datasets.DataMissingError as error:
            parser.exit(2, f"{parser.prog}: error: {error}\n")
    else:
        try:
            tasks = load_tasks(list(DEFAULT_TASKS), **load)
        except datasets.DataMissingError as error:
            print(f"{error}\n\nFalling back to two digits tasks: {','.join(FALLBACK_TASKS)}.\n")
            tasks = load_tasks(list(FALLBACK_TASKS), **load)

    steps = max(math.ceil(len(t.train) / args.batch_size) for t in tasks)
    print("Tasks (one data set and one head each, one shared backbone):")
    for t in tasks:
        print(
            f"  {t.name:<15} {len(t.train):>6} train / {len(t.test):>6} test images, "
            f"{tuple(t.train.tensors[0].shape[1:])}, {t.classes} classes"
        )
    print(
        f"Each run: {epochs} epochs × {steps} steps of one batch of {args.batch_size} per task "
        f"(glued: policy max_size_cycle; alone: the same {steps} steps an epoch on the task's own data)."
    )

    accuracy: dict[str, dict[str, list[float]]] = {t.name: {"alone": [], "glued": []} for t in tasks}
    colim = None
    common = dict(epochs=epochs, lr=args.lr, device=args.device, progress=not args.quiet, log_every=10)
    for seed in seeds:
        backbone, heads = _models(tasks, seed, args.features)
        squares = [square(t, backbone, heads[t.name], _loader(t.train, args.batch_size)) for t in tasks]
        colim = glued(squares, backbone)
        d = colim.apex
        if seed == seeds[0]:
            print(f"\nThe glued diagram: {d.graph}")
            print("Compiled pairs:")
            for pair in d.parallel_pairs():
                print(f"  {pair}")
            if args.draw:
                print(f"Drawn to {d.draw(args.draw, title='multi-task: squares glued along m: X → F')}")
        print(f"\nSeed {seed}: training the glued diagram on {', '.join(t.name for t in tasks)} at once")
        ld.fit(
            d, policy="max_size_cycle", seed=seed, log_dir=os.path.join(args.log_dir, f"seed{seed}", "glued"), **common
        )
        for task, value in _accuracies(d, tasks, args.device, args.batch_size).items():
            accuracy[task]["glued"].append(value)
        for t in tasks:
            backbone_t, heads_t = _models(tasks, seed, args.features)  # the glued run's initial weights
            alone = square(t, backbone_t, heads_t[t.name], _loader(t.train, args.batch_size))
            print(f"Seed {seed}: training {t.name} alone")
            ld.fit(
                alone,
                policy="steps",
                steps_per_epoch=steps,
                seed=seed,
                log_dir=os.path.join(args.log_dir, f"seed{seed}", t.name),
                **common,
            )
            accuracy[t.name]["alone"].append(_accuracies(alone, [t], args.device, args.batch_size)[t.name])
        print(
            "  "
            + ", ".join(
                f"{task}: alone {v['alone'][-1]:.2f}, glued {v['glued'][-1]:.2f}" for task, v in accuracy.items()
            )
        )

    spread = "mean ± std (n-1) over seeds " if len(seeds) > 1 else "seed "
    print(f"\nTest accuracy (%) of each task's head, {spread}{', '.join(map(str, seeds))}")
    print(f"| {'task':<15} | {'alone':>15} | {'glued':>15} |")
    print(f"| {'-' * 15} | {'-' * 14}: | {'-' * 14}: |")
    for task, v in accuracy.items():
        print(f"| {task:<15} | {_cell(v['alone']):>15} | {_cell(v['glued']):>15} |")
    print(f"\nDone in {time.perf_counter() - start:.1f} s on {machine.describe(args.device)}.")
    return {"tasks": tasks, "colimit": colim, "accuracy": accuracy, "seeds": seeds, "steps_per_epoch": steps}


if __name__ == "__main__":
    main()
