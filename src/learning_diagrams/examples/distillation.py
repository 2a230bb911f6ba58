"""Knowledge distillation as learning diagrams, beside the PyTorch tutorial's hand-written loops.

The paper's Figure 1 and Table 2 compare distillation written as a learning
diagram with the official PyTorch knowledge-distillation tutorial. This example
follows the tutorial's protocol: teacher ``DeepNN`` and student ``LightNN``
(their shapes adapted to one-channel images), no augmentation, Adam lr 1e-3,
batch 128, 10 epochs, every student starting from the same seeded weights, and
its three ways of letting the teacher teach, each a diagram here:

* ``kd`` (Hinton's soft targets): ``x·student·hard ≤ y`` at ``(Y, cross-entropy)``
  with weight 0.75 and ``x·student·soft ≤ x·teacher·soft`` at
  ``(G, T²·KL at T = 2)`` with weight 0.25;
* ``cosine`` (hidden representations): the student's flattened feature maps
  against the teacher's, average-pooled to the student's size, at
  ``(H, 1 − cosine similarity)`` with weight 0.25, plus the cross-entropy (0.75);
* ``regressor`` (feature maps, FitNets' hint): a trainable edge
  ``regressor: S → M`` maps the student's feature maps to the teacher's shape,
  compared with the teacher's at ``(M, mse)`` with weight 0.25, plus the
  cross-entropy (0.75).

The default run (``python -m learning_diagrams.examples.distillation``; ``make demo``
runs :mod:`.transfer`, distillation with a transfer set) is the fast one on scikit-learn's digits: it prints the compiled pairs of the
``kd`` diagram, one batch's shapes along every path, and the test accuracy of
the teacher, the student trained alone and the distilled student, trained by
``ld.fit`` as three stages.

The comparison run starts with any of ``--variants``, ``--seeds``,
``--dataset``, ``--hand``, ``--limit`` or ``--full``. For every seed it trains
the teacher, the student alone and one distilled student per variant, each with
``ld.fit`` on its diagram; with ``--hand`` the tutorial's loops
(``train``, ``train_knowledge_distillation``, ``train_cosine_loss``,
``train_mse_loss``, written out below) train copies of the same initial weights
on the same batches in the same order with the same optimiser, and the two loss
curves are compared step by step. It prints a table ``model | diagram |
hand-written`` of test accuracies, mean ± standard deviation over the seeds.
``--full`` is the tutorial's whole protocol on Fashion-MNIST (60,000 training
images, 10 epochs, seeds 0, 1, 2, every variant, with ``--hand``).
``--draw DIR`` draws every variant's diagram into ``DIR``. ``--backend jax`` runs the
demo and the comparison run (without ``--hand``) on JAX (:mod:`.distillation_jax`).

In the comparison run the spaces ``G`` and ``H`` carry the tutorial's own
formulas (:func:`tutorial_kl`, :data:`tutorial_cosine`), so that the two loss
curves agree exactly and any difference would be the diagram's doing;
``--losses library`` gives them the library's ``ld.losses.KLDivergence`` and
``ld.losses.cosine`` instead, the same quantities up to rounding (about 1e-7
a batch, which Adam can amplify over many steps).
"""

from __future__ import annotations

import argparse
import copy
import functools
import math
import statistics
import time
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import torch
import torch.nn.functional as F
from torch import nn, optim
from torch.utils.data import DataLoader, Sampler, TensorDataset

import learning_diagrams as ld
from learning_diagrams.examples import datasets, machine

__all__ = [
    "DeepNN",
    "LightNN",
    "Regressor",
    "classifier",
    "distillation",
    "cosine_distillation",
    "regressor_distillation",
    "variant_diagram",
    "tutorial_kl",
    "tutorial_cosine",
    "EpochBatches",
    "EpochOrder",
    "epoch_loader",
    "VARIANTS",
    "LOSSES",
    "main",
]

Batch = tuple[torch.Tensor, torch.Tensor]

#: The tutorial's variants, by the name ``--variants`` takes.
VARIANTS = ("kd", "cosine", "regressor")

#: The tutorial's protocol.
TEMPERATURE, SOFT_WEIGHT, LABEL_WEIGHT, LR, BATCH_SIZE, EPOCHS = 2.0, 0.25, 0.75, 1e-3, 128, 10

#: Which loss functions the spaces G (soft targets) and H (hidden representations) carry: ``--losses``.
LOSSES = ("tutorial", "library")


# -- the tutorial's two loss formulas, as losses of a space ------------------------------------


def _tutorial_kl(prediction: torch.Tensor, target: torch.Tensor, *, temperature: float) -> torch.Tensor:
    soft_targets = F.softmax(target / temperature, dim=-1)
    soft_prob = F.log_softmax(prediction / temperature, dim=-1)
    return torch.sum(soft_targets * (soft_targets.log() - soft_prob)) / soft_prob.size()[0] * (temperature**2)


def tutorial_kl(temperature: float = TEMPERATURE) -> ld.Loss:
    """``T²·KL(softmax(t/T) ‖ softmax(s/T))`` computed as the tutorial writes it (student first, teacher second).

    The same quantity as ``ld.losses.KLDivergence(temperature)``, which computes
    the teacher's probabilities as ``exp(log_softmax)`` and guards ``0·log 0``:
    the two differ by rounding (about 1e-7).
    """
    return ld.Loss(
        functools.partial(_tutorial_kl, temperature=temperature),
        symmetric=False,
        name=f"tutorial_kl(T={temperature:g})",
    )


def _tutorial_cosine(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return F.cosine_embedding_loss(prediction, target, torch.ones(prediction.size(0), device=prediction.device))


#: ``nn.CosineEmbeddingLoss`` with target 1, the batch mean of ``1 − cos(a, b)``, as the tutorial computes it.
#: The same quantity as ``ld.losses.cosine`` (``F.cosine_similarity``), up to rounding.
tutorial_cosine = ld.Loss(_tutorial_cosine, symmetric=True, name="cosine_embedding")


# -- models ------------------------------------------------------------------------------


class DeepNN(nn.Module):
    """The tutorial's teacher, for one-channel ``side × side`` images (``side`` divisible by 4).

    ``features`` ends with feature maps of shape ``(32, side/4, side/4)``;
    ``classifier`` flattens them and maps them to logits.
    """

    def __init__(self, num_classes: int = 10, side: int = 8):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 128, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(128, 64, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(64, 64, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(64, 32, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
        )
        self.classifier = nn.Sequential(
            nn.Flatten(), nn.Linear(32 * (side // 4) ** 2, 512), nn.ReLU(), nn.Dropout(0.1), nn.Linear(512, num_classes)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


class LightNN(nn.Module):
    """The tutorial's student: feature maps ``(16, side/4, side/4)``, then the classifier."""

    def __init__(self, num_classes: int = 10, side: int = 8):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(16, 16, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
        )
        self.classifier = nn.Sequential(
            nn.Flatten(), nn.Linear(16 * (side // 4) ** 2, 256), nn.ReLU(), nn.Dropout(0.1), nn.Linear(256, num_classes)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


def Regressor() -> nn.Module:
    """The tutorial's regressor: a 3×3 convolution from the student's 16 channels to the teacher's 32."""
    return nn.Conv2d(16, 32, 3, padding=1)


def flatten(feature_maps: torch.Tensor) -> torch.Tensor:
    """The edge ``flatten: S → H``: the student's hidden representation, the classifier's input."""
    return torch.flatten(feature_maps, 1)


def pool(feature_maps: torch.Tensor) -> torch.Tensor:
    """The edge ``pool: T → H``: the teacher's flattened feature maps, average-pooled by 2 to the student's size."""
    return F.avg_pool1d(torch.flatten(feature_maps, 1), 2)


def images(batch: Batch) -> torch.Tensor:
    return batch[0]


def labels(batch: Batch) -> torch.Tensor:
    return batch[1]


# -- the diagrams ----------------------------------------------------------------------------


def classifier(model: Any, data: Any, name: str = "model") -> ld.Diagram:
    """``N → X → L → Y`` with labels ``N → Y``; the edge ``name`` maps images to logits: ``x·model·hard ≤ y``.

    ``model`` is a ``torch.nn.Module``, or, compiled on JAX, an Equinox module (:mod:`.distillation_jax`).
    """
    return (
        ld.Diagram()
        .space("N", data=data)
        .space("X")
        .space("L")
        .space("Y", loss=ld.losses.cross_entropy)
        .map("x", "N", "X", images)
        .map("y", "N", "Y", labels)
        .map(name, "X", "L", model)
        .map("hard", "L", "Y", nn.Identity())
        .relate(f"x·{name}·hard", "y")
    )


def distillation(
    teacher: Any,
    student: Any,
    data: Any,
    temperature: float = TEMPERATURE,
    soft_weight: float = SOFT_WEIGHT,
    label_weight: float = LABEL_WEIGHT,
    soft_loss: ld.Loss | None = None,
) -> ld.Diagram:
    """The paper's Figure 1 (variant ``kd``): one pair at the labels Y, one at the soft targets G.

    Logits have their own space ``L``, mapped to ``Y`` and ``G`` by identities:
    a relation into ``Y`` would be carried along any edge out of ``Y``. ``G``
    carries ``soft_loss``, by default ``ld.losses.KLDivergence(temperature)``. The models are
    ``torch.nn.Module`` objects, or, compiled on JAX, Equinox modules (:mod:`.distillation_jax`).
    """
    return (
        ld.Diagram()
        .space("N", data=data)
        .space("X")
        .space("L")
        .space("Y", loss=ld.losses.cross_entropy)
        .space("G", loss=soft_loss or ld.losses.KLDivergence(temperature=temperature))
        .map("x", "N", "X", images)
        .map("y", "N", "Y", labels)
        .map("teacher", "X", "L", teacher, trainable=False)
        .map("student", "X", "L", student)
        .map("hard", "L", "Y", nn.Identity())
        .map("soft", "L", "G", nn.Identity())
        .relate("x·student·hard", "y", weight=label_weight)
        .relate("x·student·soft", "x·teacher·soft", weight=soft_weight)
    )


def _student_half(d: ld.Diagram, student: Any, data: Any, label_weight: float) -> ld.Diagram:
    """What the cosine and regressor diagrams share: data, the student in two parts, the labels."""
    return (
        d.space("N", data=data)
        .space("X")
        .space("S")  # the student's feature maps
        .space("L")  # logits
        .space("Y", loss=ld.losses.cross_entropy)
        .map("x", "N", "X", images)
        .map("y", "N", "Y", labels)
        .map("student_features", "X", "S", student.features)
        .map("student_classifier", "S", "L", student.classifier)
        .map("hard", "L", "Y", nn.Identity())
        .relate("x·student_features·student_classifier·hard", "y", weight=label_weight)
    )


def cosine_distillation(
    teacher: Any,
    student: Any,
    data: Any,
    hidden_weight: float = SOFT_WEIGHT,
    label_weight: float = LABEL_WEIGHT,
    hidden_loss: ld.Loss | None = None,
    vectors: tuple[Callable[[Any], Any], Callable[[Any], Any]] | None = None,
) -> ld.Diagram:
    """Variant ``cosine``: hidden representations compared at ``(H, cosine)``.

    ``student_features: X → S`` and ``teacher_features: X → T`` (frozen) give the
    two networks' feature maps; ``flatten: S → H`` and ``pool: T → H`` make them
    vectors of one size. ``H`` is its own space, so the relation into it is
    carried along no other edge. ``H`` carries ``hidden_loss``, by default
    ``ld.losses.cosine`` (``1 − cosine similarity``, batch mean). ``vectors`` are the
    functions of ``flatten`` and ``pool``, by default :func:`flatten` and :func:`pool`
    (the JAX run gives its own).
    """
    to_vector, pooled = vectors if vectors is not None else (flatten, pool)
    d = _student_half(ld.Diagram(), student, data, label_weight)
    return (
        d.space("T")  # the teacher's feature maps
        .space("H", loss=hidden_loss or ld.losses.cosine)  # hidden representations, 1 - cosine similarity
        .map("teacher_features", "X", "T", teacher.features, trainable=False)
        .map("flatten", "S", "H", to_vector)
        .map("pool", "T", "H", pooled)
        .relate("x·student_features·flatten", "x·teacher_features·pool", weight=hidden_weight)
    )


def regressor_distillation(
    teacher: Any,
    student: Any,
    regressor: Any,
    data: Any,
    feature_weight: float = SOFT_WEIGHT,
    label_weight: float = LABEL_WEIGHT,
) -> ld.Diagram:
    """Variant ``regressor``: the trainable edge ``regressor: S → M`` and the frozen teacher's features ``X → M``, at ``(M, mse)``."""
    d = _student_half(ld.Diagram(), student, data, label_weight)
    return (
        d.space("M", loss=ld.losses.mse)  # feature maps of the teacher's shape
        .map("teacher_features", "X", "M", teacher.features, trainable=False)
        .map("regressor", "S", "M", regressor)
        .relate("x·student_features·regressor", "x·teacher_features", weight=feature_weight)
    )


def variant_diagram(
    variant: str,
    teacher: nn.Module,
    student: nn.Module,
    regressor: nn.Module | None,
    data: Any,
    losses: str = "library",
) -> ld.Diagram:
    """The diagram of ``variant`` (one of :data:`VARIANTS`) with the tutorial's weights.

    ``losses="library"`` gives ``G`` and ``H`` the library's ``KLDivergence`` and
    ``cosine``; ``"tutorial"`` gives them :func:`tutorial_kl` and
    :data:`tutorial_cosine`, the tutorial's own formulas for the same quantities.
    """
    if losses not in LOSSES:
        raise ld.errors.OptionError(f"unknown losses {losses!r}; choose from {', '.join(LOSSES)}")
    tutorial = losses == "tutorial"
    if variant == "kd":
        return distillation(teacher, student, data, soft_loss=tutorial_kl(TEMPERATURE) if tutorial else None)
    if variant == "cosine":
        return cosine_distillation(teacher, student, data, hidden_loss=tutorial_cosine if tutorial else None)
    if variant == "regressor":
        if regressor is None:
            raise ld.errors.OptionError("the regressor variant needs a regressor module")
        return regressor_distillation(teacher, student, regressor, data)
    raise ld.errors.OptionError(f"unknown variant {variant!r}; choose from {', '.join(VARIANTS)}")


# -- data ----------------------------------------------------------------------------------------


class EpochBatches:
    """The training set in batches, reshuffled at every epoch from a seeded permutation.

    ``epoch(e)`` is the list of batches of epoch ``e``: the permutation of
    ``torch.Generator().manual_seed(seed · 1,000,003 + e)``, cut into batches.
    Iterating the object gives epoch 0, then 1, then 2, ...: ``ld.fit`` opens
    one pass of its data per epoch, so the diagram sees ``epoch(0)``,
    ``epoch(1)``, ... in order, and the hand-written loop asks for the same lists
    by number. Make a fresh object for every run.
    """

    def __init__(self, data: TensorDataset, batch_size: int, seed: int):
        self.images, self.labels = data.tensors
        self.batch_size, self.seed, self.passes = batch_size, seed, 0

    def __len__(self) -> int:
        return math.ceil(len(self.labels) / self.batch_size)

    def epoch(self, e: int) -> list[Batch]:
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + e)
        order = torch.randperm(len(self.labels), generator=generator)
        return [(self.images[i], self.labels[i]) for i in order.split(self.batch_size)]

    def __iter__(self) -> Iterator[Batch]:
        batches = self.epoch(self.passes)
        self.passes += 1
        return iter(batches)


class EpochOrder(Sampler[list[int]]):
    """The batch order of :class:`EpochBatches`, as a ``DataLoader``'s batch sampler: the same indices.

    ``DataLoader(data, batch_sampler=EpochOrder(len(data), batch_size, seed))`` yields,
    pass after pass, exactly ``EpochBatches(data, batch_size, seed).epoch(0)``,
    ``epoch(1)``, ...; being a loader over a ``TensorDataset``, its batches come
    with their samples' indices, so ``ld.fit`` computes the frozen teacher once per
    image (``cache="auto"``, see :mod:`learning_diagrams.torch.cache`).
    """

    def __init__(self, size: int, batch_size: int, seed: int):
        self.size, self.batch_size, self.seed, self.passes = size, batch_size, seed, 0

    def __len__(self) -> int:
        return math.ceil(self.size / self.batch_size)

    def __iter__(self) -> Iterator[list[int]]:
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + self.passes)
        self.passes += 1
        order = torch.randperm(self.size, generator=generator)
        return iter([batch.tolist() for batch in order.split(self.batch_size)])


def epoch_loader(data: TensorDataset, batch_size: int, seed: int) -> DataLoader:
    """``data`` in the batches of :class:`EpochBatches`, as a ``DataLoader`` (see :class:`EpochOrder`)."""
    return DataLoader(data, batch_sampler=EpochOrder(len(data), batch_size, seed))


def held_out(data: TensorDataset, batch_size: int = 256) -> list[Batch]:
    """The test set in batches of ``batch_size``, in order."""
    x, y = data.tensors
    return [(x[i : i + batch_size], y[i : i + batch_size]) for i in range(0, len(y), batch_size)]


# -- the tutorial, written out: models that return two outputs, the loss of one batch, the loops --------


class ModifiedDeepNNCosine(DeepNN):
    """The tutorial's teacher for the cosine variant: logits and the pooled, flattened feature maps."""

    # As in the tutorial, a subclass whose forward returns two outputs where its base returns the logits.
    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:  # type: ignore[override]
        x = self.features(x)
        flattened_conv_output = torch.flatten(x, 1)
        logits = self.classifier(x)
        return logits, F.avg_pool1d(flattened_conv_output, 2)


class ModifiedLightNNCosine(LightNN):
    """The tutorial's student for the cosine variant: logits and the flattened feature maps."""

    # As in the tutorial, a subclass whose forward returns two outputs where its base returns the logits.
    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:  # type: ignore[override]
        x = self.features(x)
        flattened_conv_output = torch.flatten(x, 1)
        logits = self.classifier(x)
        return logits, flattened_conv_output


class ModifiedDeepNNRegressor(DeepNN):
    """The tutorial's teacher for the regressor variant: logits and the last feature maps."""

    # As in the tutorial, a subclass whose forward returns two outputs where its base returns the logits.
    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:  # type: ignore[override]
        conv_feature_map = self.features(x)
        return self.classifier(conv_feature_map), conv_feature_map


class ModifiedLightNNRegressor(LightNN):
    """The tutorial's student for the regressor variant: logits and the regressor's output.

    The regressor is created after the features and the classifier (the tutorial
    creates it between them), so that the student's own weights are those of
    every other student of the same seed.
    """

    def __init__(self, num_classes: int = 10, side: int = 8):
        super().__init__(num_classes, side)
        self.regressor = Regressor()

    # As in the tutorial, a subclass whose forward returns two outputs where its base returns the logits.
    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:  # type: ignore[override]
        x = self.features(x)
        regressor_output = self.regressor(x)
        return self.classifier(x), regressor_output


def tutorial_ce_loss(model: nn.Module, inputs: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """The loss of one batch in the tutorial's ``train``."""
    return nn.CrossEntropyLoss()(model(inputs), labels)


def tutorial_kd_loss(
    teacher: nn.Module,
    student: nn.Module,
    inputs: torch.Tensor,
    labels: torch.Tensor,
    T: float = TEMPERATURE,
    soft_target_loss_weight: float = SOFT_WEIGHT,
    ce_loss_weight: float = LABEL_WEIGHT,
) -> torch.Tensor:
    """The loss of one batch in the tutorial's ``train_knowledge_distillation``."""
    with torch.no_grad():
        teacher_logits = teacher(inputs)
    student_logits = student(inputs)
    soft_targets = F.softmax(teacher_logits / T, dim=-1)
    soft_prob = F.log_softmax(student_logits / T, dim=-1)
    # KL(soft targets || student), scaled by T² as in Hinton et al.
    soft_targets_loss = torch.sum(soft_targets * (soft_targets.log() - soft_prob)) / soft_prob.size()[0] * (T**2)
    label_loss = nn.CrossEntropyLoss()(student_logits, labels)
    return soft_target_loss_weight * soft_targets_loss + ce_loss_weight * label_loss


def tutorial_cosine_loss(
    teacher: nn.Module,
    student: nn.Module,
    inputs: torch.Tensor,
    labels: torch.Tensor,
    hidden_rep_loss_weight: float = SOFT_WEIGHT,
    ce_loss_weight: float = LABEL_WEIGHT,
) -> torch.Tensor:
    """The loss of one batch in the tutorial's ``train_cosine_loss`` (models returning two outputs)."""
    with torch.no_grad():
        _, teacher_hidden_representation = teacher(inputs)
    student_logits, student_hidden_representation = student(inputs)
    hidden_rep_loss = nn.CosineEmbeddingLoss()(
        student_hidden_representation,
        teacher_hidden_representation,
        target=torch.ones(inputs.size(0), device=inputs.device),
    )
    label_loss = nn.CrossEntropyLoss()(student_logits, labels)
    return hidden_rep_loss_weight * hidden_rep_loss + ce_loss_weight * label_loss


def tutorial_mse_loss(
    teacher: nn.Module,
    student: nn.Module,
    inputs: torch.Tensor,
    labels: torch.Tensor,
    feature_map_weight: float = SOFT_WEIGHT,
    ce_loss_weight: float = LABEL_WEIGHT,
) -> torch.Tensor:
    """The loss of one batch in the tutorial's ``train_mse_loss`` (models returning two outputs)."""
    with torch.no_grad():
        _, teacher_feature_map = teacher(inputs)
    student_logits, regressor_feature_map = student(inputs)
    hidden_rep_loss = nn.MSELoss()(regressor_feature_map, teacher_feature_map)
    label_loss = nn.CrossEntropyLoss()(student_logits, labels)
    return feature_map_weight * hidden_rep_loss + ce_loss_weight * label_loss


def tutorial_loop(
    step_loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    student: nn.Module,
    teacher: nn.Module | None,
    batches: EpochBatches,
    epochs: int,
    learning_rate: float,
    device: torch.device,
    seed: int,
) -> list[float]:
    """The tutorial's training loop (all four share it); returns the loss at every step.

    One addition to the tutorial: ``torch.manual_seed(seed)`` first, as
    ``ld.fit(seed=seed)`` does, so that both draw the same dropout masks.
    """
    optimizer = optim.Adam(student.parameters(), lr=learning_rate)
    if teacher is not None:
        teacher.to(device)
        teacher.eval()  # teacher in evaluation mode
    student.to(device)
    student.train()
    torch.manual_seed(seed)
    curve = []
    for epoch in range(epochs):
        for inputs, labels in batches.epoch(epoch):
            inputs, labels = inputs.to(device), labels.to(device)
            optimizer.zero_grad()
            loss = step_loss(inputs, labels)
            loss.backward()
            optimizer.step()
            curve.append(loss.item())
    return curve


def train(model, batches, epochs, learning_rate, device, seed):
    """The tutorial's ``train``: cross-entropy alone (the teacher, and the student alone)."""
    return tutorial_loop(
        lambda x, y: tutorial_ce_loss(model, x, y), model, None, batches, epochs, learning_rate, device, seed
    )


def train_knowledge_distillation(
    teacher, student, batches, epochs, learning_rate, T, soft_target_loss_weight, ce_loss_weight, device, seed
):
    return tutorial_loop(
        lambda x, y: tutorial_kd_loss(teacher, student, x, y, T, soft_target_loss_weight, ce_loss_weight),
        student,
        teacher,
        batches,
        epochs,
        learning_rate,
        device,
        seed,
    )


def train_cosine_loss(
    teacher, student, batches, epochs, learning_rate, hidden_rep_loss_weight, ce_loss_weight, device, seed
):
    return tutorial_loop(
        lambda x, y: tutorial_cosine_loss(teacher, student, x, y, hidden_rep_loss_weight, ce_loss_weight),
        student,
        teacher,
        batches,
        epochs,
        learning_rate,
        device,
        seed,
    )


def train_mse_loss(teacher, student, batches, epochs, learning_rate, feature_map_weight, ce_loss_weight, device, seed):
    return tutorial_loop(
        lambda x, y: tutorial_mse_loss(teacher, student, x, y, feature_map_weight, ce_loss_weight),
        student,
        teacher,
        batches,
        epochs,
        learning_rate,
        device,
        seed,
    )


@torch.no_grad()
def accuracy_by_hand(model: nn.Module, batches: Sequence[Batch], device: torch.device) -> float:
    """The tutorial's ``test`` and ``test_multiple_outputs``: accuracy in %, the first output when there are two."""
    model.to(device)
    model.eval()
    correct = total = 0
    for inputs, labels in batches:
        inputs, labels = inputs.to(device), labels.to(device)
        outputs = model(inputs)
        if isinstance(outputs, tuple):
            outputs = outputs[0]
        _, predicted = torch.max(outputs.data, 1)
        total += labels.size(0)
        correct += int((predicted == labels).sum())
    return 100 * correct / total


def hand_models(
    variant: str, teacher: nn.Module, student: nn.Module, regressor: nn.Module | None, side: int
) -> tuple[nn.Module, nn.Module]:
    """The tutorial's models of ``variant``, new objects loaded from ``teacher``, ``student`` (and ``regressor``) by state dict."""
    classes = {
        "kd": (DeepNN, LightNN),
        "cosine": (ModifiedDeepNNCosine, ModifiedLightNNCosine),
        "regressor": (ModifiedDeepNNRegressor, ModifiedLightNNRegressor),
    }[variant]
    device = next(student.parameters()).device
    t, s = (cls(side=side).to(device) for cls in classes)
    t.load_state_dict(teacher.state_dict())
    state = dict(student.state_dict())
    if variant == "regressor":
        if regressor is None:
            raise ld.errors.OptionError("the regressor variant needs a regressor module")
        state.update({f"regressor.{k}": v for k, v in regressor.state_dict().items()})
    s.load_state_dict(state)
    return t, s


def hand_step_loss(
    variant: str, teacher: nn.Module, student: nn.Module
) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    losses: dict[str, Callable[..., torch.Tensor]] = {
        "kd": tutorial_kd_loss,
        "cosine": tutorial_cosine_loss,
        "regressor": tutorial_mse_loss,
    }
    fn = losses[variant]
    return lambda x, y: fn(teacher, student, x, y)


def train_hand(
    variant: str,
    teacher: nn.Module,
    student: nn.Module,
    batches: EpochBatches,
    epochs: int,
    device: torch.device,
    seed: int,
) -> list[float]:
    """The tutorial's loop of ``variant`` with its protocol's weights."""
    if variant == "kd":
        return train_knowledge_distillation(
            teacher, student, batches, epochs, LR, TEMPERATURE, SOFT_WEIGHT, LABEL_WEIGHT, device, seed
        )
    if variant == "cosine":
        return train_cosine_loss(teacher, student, batches, epochs, LR, SOFT_WEIGHT, LABEL_WEIGHT, device, seed)
    return train_mse_loss(teacher, student, batches, epochs, LR, SOFT_WEIGHT, LABEL_WEIGHT, device, seed)


# -- the comparison run -------------------------------------------------------------------------------


def fit_curve(
    d: ld.Diagram, epochs: int, seed: int, device: torch.device, quiet: bool, cache: bool | str = "auto"
) -> list[float]:
    """``ld.fit`` the diagram with the tutorial's optimiser; the total loss at every step."""
    history = ld.fit(
        d,
        epochs=epochs,
        optimizer=torch.optim.Adam,
        lr=LR,
        seed=seed,
        device=str(device),
        log_dir=False,
        progress=not quiet,
        cache=cache,
    )
    return [r["values"]["total"] for r in history.records if r["split"] == "train"]


def diagram_accuracy(model: nn.Module, batches: Sequence[Batch], device: torch.device) -> float:
    """Test accuracy (%) along the compiled pair ``x·model·hard ≤ y`` of the classifier diagram."""
    d = classifier(model, batches)
    values = ld.Trainer(device=str(device)).evaluate(d, {"N": batches}, {"Y": "accuracy"})
    return 100 * values["accuracy[x·model·hard ≤ y]"]


def max_gap(a: Sequence[float], b: Sequence[float]) -> float:
    if len(a) != len(b):
        return math.inf
    return max((abs(u - v) for u, v in zip(a, b)), default=0.0)


def run_seed(
    seed: int,
    args: argparse.Namespace,
    train_set: TensorDataset,
    test_set: list[Batch],
    side: int,
    device: torch.device,
) -> dict[str, Any]:
    """Teacher, student alone and one distilled student per variant, by diagram (and by hand)."""
    torch.manual_seed(seed)
    teacher = DeepNN(side=side)
    torch.manual_seed(seed)
    student = LightNN(side=side)  # every student starts from these weights
    regressor = Regressor()
    hand = {"teacher": copy.deepcopy(teacher).to(device)}
    initial_student, initial_regressor = copy.deepcopy(student), copy.deepcopy(regressor)
    teacher.to(device), student.to(device), regressor.to(device)
    batches = lambda: EpochBatches(train_set, args.batch_size, seed)  # noqa: E731  (a fresh pass counter per run)
    # The diagrams read the same batches as a DataLoader, which keys them by image for the cache.
    loader = lambda: epoch_loader(train_set, args.batch_size, seed)  # noqa: E731
    out: dict[str, Any] = {"diagram": {}, "hand": {}, "gap": {}, "steps": {}, "seconds": {}}

    def one(name: str, d: ld.Diagram, model: nn.Module, by_hand: Callable[[], tuple[list[float], nn.Module]] | None):
        t0 = time.perf_counter()
        curve = fit_curve(d, args.epochs, seed, device, args.quiet, cache=args.cache != "off" and "auto")
        out["seconds"][name] = time.perf_counter() - t0
        out["diagram"][name] = diagram_accuracy(model, test_set, device)
        out["steps"][name] = len(curve)
        if by_hand is not None:
            hand_curve, hand_model = by_hand()
            out["hand"][name] = accuracy_by_hand(hand_model, test_set, device)
            out["gap"][name] = max_gap(curve, hand_curve)

    one(
        "teacher",
        classifier(teacher, loader()),
        teacher,
        (lambda: (train(hand["teacher"], batches(), args.epochs, LR, device, seed), hand["teacher"]))
        if args.hand
        else None,
    )
    alone = copy.deepcopy(initial_student).to(device)
    hand_alone = copy.deepcopy(initial_student).to(device)
    one(
        "student",
        classifier(alone, loader()),
        alone,
        (lambda: (train(hand_alone, batches(), args.epochs, LR, device, seed), hand_alone)) if args.hand else None,
    )
    for variant in args.variants:
        s = copy.deepcopy(initial_student).to(device)
        r = copy.deepcopy(initial_regressor).to(device) if variant == "regressor" else None
        d = variant_diagram(variant, teacher, s, r, loader(), args.losses)

        def by_hand(variant=variant):
            t, hs = hand_models(
                variant,
                hand["teacher"],
                copy.deepcopy(initial_student).to(device),
                copy.deepcopy(initial_regressor).to(device),
                side,
            )
            return train_hand(variant, t, hs, batches(), args.epochs, device, seed), hs

        one(variant, d, s, by_hand if args.hand else None)
    return out


def mean_std(values: Sequence[float]) -> str:
    if not values:
        return "–"
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.fmean(values):.2f} ± {std:.2f}"


ROW_NAMES = {
    "teacher": "teacher",
    "student": "student alone",
    "kd": "distilled, kd",
    "cosine": "distilled, cosine",
    "regressor": "distilled, regressor",
}


def load(args: argparse.Namespace) -> tuple[TensorDataset, TensorDataset, int]:
    if args.dataset == "fashion":
        train_set, test_set = datasets.fashion_mnist(args.fashion_root, limit=args.limit, test_limit=args.test_limit)
        return train_set, test_set, 28
    train_set, test_set = datasets.digits(limit=args.limit, test_limit=args.test_limit)
    return train_set, test_set, 8


def experiment(args: argparse.Namespace) -> dict[str, Any]:
    start = time.perf_counter()
    device = torch.device(args.device)
    train_set, test_data, side = load(args)
    test_set = held_out(test_data)
    names = ["teacher", "student", *args.variants]
    print(
        f"Distillation on {args.dataset} ({len(train_set)} training / {len(test_data)} test images, "
        f"{side}×{side}), {args.epochs} epochs, batch {args.batch_size}, Adam lr {LR:g}, T = {TEMPERATURE:g}, "
        f"weights {SOFT_WEIGHT:g} (teacher) / {LABEL_WEIGHT:g} (labels); seeds {', '.join(map(str, args.seeds))}; "
        f"variants {', '.join(args.variants)}; losses at G and H: {args.losses}'s; "
        f"hand-written loops: {'yes' if args.hand else 'no'}"
    )
    for variant in args.variants:
        d = variant_diagram(variant, DeepNN(side=side), LightNN(side=side), Regressor(), [], args.losses)
        print(f"  {variant}: " + "; ".join(str(p) for p in d.parallel_pairs()))

    runs = []
    for seed in args.seeds:
        t0 = time.perf_counter()
        run = run_seed(seed, args, train_set, test_set, side, device)
        runs.append(run)
        row = ", ".join(f"{n} {run['diagram'][n]:.2f}" + (f"/{run['hand'][n]:.2f}" if args.hand else "") for n in names)
        print(f"  seed {seed} ({time.perf_counter() - t0:.0f} s): {row}")
        print("    ld.fit wall time: " + ", ".join(f"{n} {run['seconds'][n]:.1f} s" for n in names))

    accuracy = {
        side_: {n: [r[side_][n] for r in runs] for n in names}
        for side_ in ("diagram", "hand")
        if side_ == "diagram" or args.hand
    }
    print(f"\nTest accuracy (%), mean ± std over {len(args.seeds)} seed{'s' if len(args.seeds) > 1 else ''}")
    print(f"  {'model':<22} {'diagram':>14}" + (f" {'hand-written':>14}" if args.hand else ""))
    for n in names:
        print(
            f"  {ROW_NAMES[n]:<22} {mean_std(accuracy['diagram'][n]):>14}"
            + (f" {mean_std(accuracy['hand'][n]):>14}" if args.hand else "")
        )
    gaps = {n: max(r["gap"][n] for r in runs) for n in names} if args.hand else {}
    if args.hand:
        steps = runs[0]["steps"]["teacher"]
        print(f"\nLargest |diagram loss − hand-written loss| over every step ({steps} steps a run) and seed:")
        print("  " + ", ".join(f"{n} {gaps[n]:.1e}" for n in names))
    seconds = time.perf_counter() - start
    print(f"\nDone in {seconds:.1f} s on {machine.describe(device)}.")
    return {
        "accuracy": accuracy,
        "curve_gap": gaps,
        "steps": runs[0]["steps"],
        "seeds": list(args.seeds),
        "variants": list(args.variants),
        "losses": args.losses,
        "seconds": seconds,
        "fit_seconds": {n: [r["seconds"][n] for r in runs] for n in names},
        "cache": args.cache,
    }


# -- the demo ------------------------------------------------------------------------------------


def loader(data: TensorDataset, seed: int) -> DataLoader:
    return DataLoader(data, batch_size=BATCH_SIZE, shuffle=True, generator=torch.Generator().manual_seed(seed))


def demo(args: argparse.Namespace) -> dict[str, float]:
    start = time.perf_counter()
    train_set, test_set = datasets.digits()

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

    print(
        f"\nTraining on digits ({len(train_set)} train / {len(test_set)} test images, "
        f"{args.epochs} epochs a stage), logging to {args.log_dir}:"
    )
    train_loader, test_loader = loader(train_set, args.seed), DataLoader(test_set, batch_size=512)
    history = ld.fit(
        [
            ld.Stage(classifier(teacher, train_loader), name="teacher"),
            ld.Stage(classifier(student, train_loader), name="student"),
            ld.Stage(shown, name="distilled"),
        ],
        epochs=args.epochs,
        lr=LR,
        seed=args.seed,
        log_dir=args.log_dir,
        progress=not args.quiet,
        eval_data={"N": test_loader},
        metrics={"Y": "accuracy"},
        device=args.device,
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
    print(f"\nDone in {time.perf_counter() - start:.1f} s on {machine.describe(args.device)}.")
    return results


def draw(folder: Path, losses: str = "library") -> list[Path]:
    """Draw every variant's diagram: ``distillation.svg`` (kd), ``distillation-cosine.svg``, ``distillation-regressor.svg``."""
    folder.mkdir(parents=True, exist_ok=True)
    names = {"kd": "distillation.svg", "cosine": "distillation-cosine.svg", "regressor": "distillation-regressor.svg"}
    return [
        Path(variant_diagram(v, DeepNN(), LightNN(), Regressor(), [], losses).draw(folder / names[v])) for v in VARIANTS
    ]


def _list(kind: Callable[[str], Any]) -> Callable[[str], list]:
    return lambda text: [kind(v) for v in text.split(",") if v]


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--epochs",
        type=int,
        default=None,
        help="epochs of every run (default: 20 for the demo, 10 for the comparison run)",
    )
    parser.add_argument("--seed", type=int, default=42, help="seed of the demo's models and batch order")
    parser.add_argument("--log-dir", default="runs/distillation", help="where the demo's logs and losses.png go")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.add_argument("--device", default="cpu", help="cpu (default), cuda, cuda:1, ...")
    parser.add_argument(
        "--threads", type=int, default=1, help="torch CPU threads during the run (default 1; 0 keeps torch's setting)"
    )
    parser.add_argument("--draw", type=Path, default=None, metavar="DIR", help="draw every variant's diagram into DIR")
    parser.add_argument(
        "--backend",
        choices=("torch", "jax"),
        default="torch",
        help="the array library of the demo: torch (default) or jax (the same diagrams, Equinox modules "
        "copied from the PyTorch ones, ld.jax.fit; needs the [jax] extra)",
    )
    group = parser.add_argument_group("the comparison run (any of these starts it)")
    group.add_argument(
        "--full",
        action="store_true",
        help="the tutorial's whole protocol: Fashion-MNIST, 10 epochs, seeds 0,1,2, every variant, --hand",
    )
    group.add_argument(
        "--variants", type=_list(str), default=None, help="comma separated, of kd,cosine,regressor (default all)"
    )
    group.add_argument("--seeds", type=_list(int), default=None, help="comma separated (default 0,1,2)")
    group.add_argument(
        "--dataset", choices=("digits", "fashion"), default=None, help="default digits (fashion with --full)"
    )
    group.add_argument("--hand", action="store_true", help="run the tutorial's hand-written loops beside the diagrams")
    group.add_argument(
        "--losses",
        choices=LOSSES,
        default="tutorial",
        help="the losses of G and H: the tutorial's formulas (default; the curves then agree "
        "exactly) or the library's KLDivergence and cosine (equal up to rounding); "
        "--draw draws these too",
    )
    group.add_argument("--limit", type=int, default=None, help="keep only the first LIMIT training images")
    group.add_argument("--test-limit", type=int, default=None, help="keep only the first TEST_LIMIT test images")
    group.add_argument("--batch-size", type=int, default=BATCH_SIZE)
    group.add_argument(
        "--cache",
        choices=("auto", "off"),
        default="auto",
        help="ld.fit's frozen-output cache: auto (default; the frozen teacher runs once per image) or off",
    )
    group.add_argument(
        "--fashion-root", default=datasets.FASHION_MNIST_ROOT, help="folder of Fashion-MNIST's idx files"
    )
    args = parser.parse_args(argv)

    comparison = (
        args.full
        or args.hand
        or any(v is not None for v in (args.variants, args.seeds, args.dataset, args.limit, args.test_limit))
    )
    if args.full:
        args.dataset = args.dataset or "fashion"
        args.hand = True
    args.dataset = args.dataset or "digits"
    args.variants = args.variants or list(VARIANTS)
    for v in args.variants:
        if v not in VARIANTS:
            parser.error(f"unknown variant {v!r}; choose from {', '.join(VARIANTS)}")
    args.seeds = args.seeds if args.seeds is not None else [0, 1, 2]
    if args.epochs is None:
        args.epochs = EPOCHS if comparison else 20
    if args.backend == "jax" and args.hand:
        parser.error("--hand runs the tutorial's hand-written PyTorch loops: a PyTorch run (--backend torch)")

    with machine.threads(args.threads):
        if args.draw is not None:
            for path in draw(args.draw, args.losses):
                print(f"drawn: {path}")
        if args.backend == "jax":  # imported here: the PyTorch run needs no JAX
            from learning_diagrams.examples import distillation_jax

            return distillation_jax.experiment(args) if comparison else distillation_jax.demo(args)
        try:
            return experiment(args) if comparison else demo(args)
        except datasets.DataMissingError as error:  # Fashion-MNIST asked for and not there: say how to get it
            raise SystemExit(f"error: {error}") from None


if __name__ == "__main__":
    main()
