"""Knowledge distillation as a learning diagram, on scikit-learn's bundled digits.

The paper's Figure 1, following the official PyTorch distillation tutorial's
recipe (teacher ``DeepNN``, student ``LightNN``, adapted to 8×8 images; Adam
lr 1e-3, batch 128, temperature 2, soft-target weight 0.25 and label weight
0.75, students started from the same seed). Three diagrams share model
objects:

* ``teacher``: ``x·teacher·hard ≤ y``, the teacher trained on labels;
* ``student``: ``x·student·hard ≤ y``, the student trained on labels alone;
* ``distilled``: ``x·student·hard ≤ y`` and ``x·student·soft ≤ x·teacher·soft``
  with the teacher frozen.

Run it with ``make demo`` or ``python -m learning_diagrams.examples.distillation``.
It uses only the public API: ``ld.fit`` runs the three diagrams as stages and
scores each on the test set along its compiled pair.
"""

from __future__ import annotations

import argparse
import time

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import learning_diagrams as ld


class DeepNN(nn.Module):
    """The tutorial's teacher, for 1×8×8 images."""

    def __init__(self, num_classes: int = 10):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 128, 3, padding=1), nn.ReLU(),
            nn.Conv2d(128, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(64, 64, 3, padding=1), nn.ReLU(),
            nn.Conv2d(64, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        )
        self.classifier = nn.Sequential(
            nn.Flatten(), nn.Linear(32 * 2 * 2, 512), nn.ReLU(), nn.Dropout(0.1), nn.Linear(512, num_classes)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


class LightNN(nn.Module):
    """The tutorial's student, for 1×8×8 images."""

    def __init__(self, num_classes: int = 10):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(16, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        )
        self.classifier = nn.Sequential(
            nn.Flatten(), nn.Linear(16 * 2 * 2, 256), nn.ReLU(), nn.Dropout(0.1), nn.Linear(256, num_classes)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


def digits(seed: int = 0) -> tuple[TensorDataset, TensorDataset]:
    """scikit-learn's 1,797 8×8 digits, scaled to [0, 1], split 80/20 by class."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    data = load_digits()
    images = torch.tensor(data.images, dtype=torch.float32).unsqueeze(1) / 16.0
    labels = torch.tensor(data.target)
    train, test = train_test_split(range(len(labels)), test_size=0.2, stratify=labels, random_state=seed)
    return TensorDataset(images[train], labels[train]), TensorDataset(images[test], labels[test])


def classifier(model: nn.Module, data: DataLoader) -> ld.Diagram:
    """``N → X → L → Y`` with labels ``N → Y``; the model maps images to logits."""
    return (
        ld.Diagram()
        .space("N", data=data)
        .space("X")
        .space("L")
        .space("Y", loss=ld.losses.cross_entropy)
        .map("x", "N", "X", lambda batch: batch[0])
        .map("y", "N", "Y", lambda batch: batch[1])
        .map("model", "X", "L", model)
        .map("hard", "L", "Y", nn.Identity())
        .relate("x·model·hard", "y")
    )


def distillation(teacher: nn.Module, student: nn.Module, data: DataLoader, temperature: float = 2.0,
                 soft_weight: float = 0.25, label_weight: float = 0.75) -> ld.Diagram:
    """The paper's Figure 1: two pairs, one at the labels Y, one at the soft targets G."""
    return (
        ld.Diagram()
        .space("N", data=data)
        .space("X")
        .space("L")
        .space("Y", loss=ld.losses.cross_entropy)
        .space("G", loss=ld.losses.KLDivergence(temperature=temperature))
        .map("x", "N", "X", lambda batch: batch[0])
        .map("y", "N", "Y", lambda batch: batch[1])
        .map("teacher", "X", "L", teacher, trainable=False)
        .map("student", "X", "L", student)
        .map("hard", "L", "Y", nn.Identity())
        .map("soft", "L", "G", nn.Identity())
        .relate("x·student·hard", "y", weight=label_weight)
        .relate("x·student·soft", "x·teacher·soft", weight=soft_weight)
    )


def loader(data: TensorDataset, seed: int) -> DataLoader:
    return DataLoader(data, batch_size=128, shuffle=True, generator=torch.Generator().manual_seed(seed))


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=20, help="epochs per stage (default 20)")
    parser.add_argument("--seed", type=int, default=42, help="seed of the models and batch order")
    parser.add_argument("--log-dir", default="runs/distillation", help="where logs and losses.png go")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    train_set, test_set = digits()

    torch.manual_seed(args.seed)
    teacher = DeepNN()
    torch.manual_seed(args.seed)
    student = LightNN()
    torch.manual_seed(args.seed)
    distilled = LightNN()

    shown = distillation(teacher, distilled, loader(train_set, args.seed))
    print("Compiled pairs of the distillation diagram:")
    for pair in shown.parallel_pairs():
        print(f"  {pair}")
    first = next(iter(DataLoader(train_set, batch_size=4)))
    print("\nOne batch through every path (diagram.check):")
    print("  " + str(shown.check({"N": first})).replace("\n", "\n  "))

    print(f"\nTraining on digits ({len(train_set)} train / {len(test_set)} test images, "
          f"{args.epochs} epochs a stage), logging to {args.log_dir}:")
    train_loader, test_loader = loader(train_set, args.seed), DataLoader(test_set, batch_size=512)
    history = ld.fit(
        [
            ld.Stage(classifier(teacher, train_loader), name="teacher"),
            ld.Stage(classifier(student, train_loader), name="student"),
            ld.Stage(shown, name="distilled"),
        ],
        epochs=args.epochs, lr=1e-3, seed=args.seed, log_dir=args.log_dir, progress=not args.quiet,
        eval_data={"N": test_loader}, metrics={"Y": "accuracy"},
    )
    print(history.summary())

    names = ("teacher", "student", "distilled student")
    last_eval = {r["stage"]: r["values"] for r in history.records if r["split"] == "eval"}
    results = {
        name: 100 * next(v for k, v in last_eval[i].items() if k.startswith("accuracy["))
        for i, name in enumerate(names)
    }
    print("\nTest accuracy (%), along each stage's compiled pair at Y")
    print(f"  {'model':<18} {'accuracy':>8}")
    for name, value in results.items():
        print(f"  {name:<18} {value:>8.2f}")
    print(f"\nDone in {time.perf_counter() - start:.1f} s on the CPU.")
    return results


if __name__ == "__main__":
    main()
