"""Distillation with a transfer set: a student with few labels learns from a teacher's soft targets.

Hinton, Vinyals and Dean (*Distilling the knowledge in a neural network*, 2015)
train the small model on a *transfer set*: inputs the teacher labels with its
softened outputs, which need no labels of their own. Here the teacher, an MLP
64-256-10, is trained on all 1,437 training labels of scikit-learn's digits; the
student, an MLP 64-32-10, sees the labels of only 10 % of the training images
(stratified by class, drawn with the seed) and the teacher's soft targets on the
other 90 %, whose labels are dropped. One diagram holds the whole regime:

* two data vertices: ``N``, the labelled images (batches ``(images, labels)``),
  and ``U``, the unlabelled ones (batches ``(images,)``: the labels are not kept,
  so no path can read them);
* ``x·student·hard ≤ y`` at ``(Y, cross-entropy)``, from ``N``;
* ``u·student·soft ≤ u·teacher·soft`` at ``(G, T²·KL at T = 4)``, from ``U``, the
  teacher frozen (``trainable=False``).

``ld.fit`` draws one batch from each data vertex at every step (the ``"steps"``
policy: each data set cycles on its own), and its frozen-output cache computes
the teacher's logits once per unlabelled image, not once per step. Three stages
per seed, each ``--steps`` steps of Adam: the teacher on all labels, the student
alone on its few labels (the same initial weights as the distilled student), and
the transfer diagram. The example prints the diagram's drawing, its compiled
pairs, one batch's shapes along every path, the loss terms as training goes, and
the test accuracy (digits' 360 test images) of the three models, mean ± standard
deviation over the seeds, with the distilled student's gain over the student alone.

``python -m learning_diagrams.examples.transfer`` (``make demo``) runs it in
about half a minute on two CPU cores; ``--resume`` continues (or re-reads) a run
from its checkpoints.
"""

from __future__ import annotations

import argparse
import copy
import operator
import shlex
import shutil
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Sequence

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import learning_diagrams as ld
from learning_diagrams.examples import datasets, machine
from learning_diagrams.examples.distillation import classifier

__all__ = [
    "mlp",
    "transfer_distillation",
    "split",
    "transfer_sets",
    "stages",
    "demo",
    "main",
    "TEMPERATURE",
    "FRACTION",
    "STEPS",
    "BATCH_SIZE",
    "LR",
    "SEEDS",
]

#: The regime's settings (``--temperature``, ``--labelled-fraction``, ``--steps``, ``--batch-size``, ``--seeds``).
TEMPERATURE, FRACTION, STEPS, BATCH_SIZE, LR, SEEDS = 4.0, 0.1, 1500, 64, 1e-3, (0, 1, 2)

#: Hidden widths of the teacher and the student (both MLPs on the 64 pixels of a digit).
TEACHER_WIDTH, STUDENT_WIDTH = 256, 32

#: A batch's images and labels, the maps ``x``, ``u`` and ``y``.
images, labels = operator.itemgetter(0), operator.itemgetter(1)

#: The rows of the result table, in order.
MODELS = ("teacher", "student alone", "distilled student")


def mlp(hidden: int, inputs: int = 64, classes: int = 10) -> nn.Sequential:
    """``inputs``-``hidden``-``classes`` with a ReLU; flattens ``(n, 1, 8, 8)`` images first."""
    return nn.Sequential(nn.Flatten(), nn.Linear(inputs, hidden), nn.ReLU(), nn.Linear(hidden, classes))


def transfer_distillation(
    teacher: nn.Module,
    student: nn.Module,
    labelled: Any,
    unlabelled: Any,
    temperature: float = TEMPERATURE,
    soft_weight: float = 1.0,
    label_weight: float = 1.0,
) -> ld.Diagram:
    """The transfer-set regime: labels from ``N``, the frozen teacher's soft targets on ``U``.

    Parameters
    ----------
    teacher, student : nn.Module
        Images to logits; the teacher is frozen (eval mode, no gradients).
    labelled : data of batches ``(images, labels)``
        The data of ``N``.
    unlabelled : data of batches ``(images,)``
        The data of ``U`` (a batch's first element is read; anything after it is ignored).
    temperature : float
        Of ``G``'s loss, ``T²·KL(softmax(t/T) ‖ softmax(s/T))``.
    soft_weight, label_weight : float
        The weights of the two pairs.

    Returns
    -------
    ld.Diagram
        Compiling to ``label_weight · CE(student(x), y) + soft_weight · T²·KL(teacher(u), student(u))``.

    Examples
    --------
    >>> d = transfer_distillation(mlp(256), mlp(32), [], [])
    >>> for pair in d.parallel_pairs():
    ...     print(pair)
    x·student·hard ≤ y  (at Y, weight 1)
    u·student·soft ≤ u·teacher·soft  (at G, weight 1)
    """
    return (
        ld.Diagram()
        .space("N", data=labelled)
        .space("U", data=unlabelled)
        .space("X")
        .space("L")
        .space("Y", loss=ld.losses.cross_entropy)
        .space("G", loss=ld.losses.KLDivergence(temperature=temperature))
        .map("x", "N", "X", images)
        .map("y", "N", "Y", labels)
        .map("u", "U", "X", images)
        .map("teacher", "X", "L", teacher, trainable=False)
        .map("student", "X", "L", student)
        .map("hard", "L", "Y", nn.Identity())
        .map("soft", "L", "G", nn.Identity())
        .relate("x·student·hard", "y", weight=label_weight)
        .relate("u·student·soft", "u·teacher·soft", weight=soft_weight)
    )


def split(targets: torch.Tensor, fraction: float = FRACTION, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Indices of the labelled and the unlabelled part of a training set: stratified by class, seeded.

    The labelled part is ``round(fraction · n)`` indices holding each class in its share
    (scikit-learn's ``train_test_split`` with ``stratify``); the unlabelled part is the rest.

    >>> labelled, unlabelled = split(torch.arange(100) % 10, 0.2, seed=0)
    >>> len(labelled), len(unlabelled), torch.bincount(torch.arange(100)[labelled] % 10).tolist()
    (20, 80, [2, 2, 2, 2, 2, 2, 2, 2, 2, 2])

    Raises
    ------
    OptionError
        (``ld.errors.OptionError``) unless ``0 < fraction < 1`` and both parts hold every class.
    """
    from sklearn.model_selection import train_test_split

    classes, n = len(torch.unique(targets)), len(targets)
    if not 0.0 < fraction < 1.0 or min(round(fraction * n), n - round(fraction * n)) < classes:
        raise ld.errors.OptionError(
            f"a labelled fraction of {fraction:g} of {n} images leaves a part without every one of the "
            f"{classes} classes; choose one between {classes / n:.3f} and {1 - classes / n:.3f}"
        )
    indices = torch.arange(n)
    labelled, unlabelled = train_test_split(
        indices, train_size=round(fraction * n), stratify=targets, random_state=seed
    )
    return labelled, unlabelled


def transfer_sets(
    train: TensorDataset, fraction: float = FRACTION, seed: int = 0
) -> tuple[TensorDataset, TensorDataset]:
    """The labelled set ``(images, labels)`` and the transfer set ``(images,)``, its labels dropped (:func:`split`)."""
    x, y = train.tensors
    labelled, unlabelled = split(y, fraction, seed)
    return TensorDataset(x[labelled], y[labelled]), TensorDataset(x[unlabelled])


def loader(data: TensorDataset, batch_size: int) -> DataLoader:
    """Shuffled batches; ``ld.fit`` seeds every pass's order from its ``seed``."""
    return DataLoader(data, batch_size=batch_size, shuffle=True)


def stages(
    train: TensorDataset, seed: int, fraction: float, batch_size: int, temperature: float
) -> tuple[list[ld.Stage], nn.Module]:
    """The seed's three stages (teacher, student alone, distilled student) and its teacher.

    Each model is made after ``torch.manual_seed(seed)``, so the student alone and the
    distilled student start from the same weights.
    """
    labelled, unlabelled = transfer_sets(train, fraction, seed)
    torch.manual_seed(seed)
    teacher = mlp(TEACHER_WIDTH)
    torch.manual_seed(seed)
    alone = mlp(STUDENT_WIDTH)
    distilled = copy.deepcopy(alone)
    d = transfer_distillation(
        teacher, distilled, loader(labelled, batch_size), loader(unlabelled, batch_size), temperature
    )
    return [
        ld.Stage(classifier(teacher, loader(train, batch_size), "teacher"), name="teacher"),
        ld.Stage(classifier(alone, loader(labelled, batch_size), "student"), name="student alone"),
        ld.Stage(d, name="distilled student"),
    ], teacher


# -- the demo ------------------------------------------------------------------------------------


def draw(d: ld.Diagram, folder: Path) -> Path:
    """``folder/transfer.svg``; without Graphviz's ``dot``, the DOT source ``transfer.dot`` and a note."""
    folder.mkdir(parents=True, exist_ok=True)
    try:
        return Path(d.draw(folder / "transfer.svg", title="distillation with a transfer set"))
    except ld.errors.GraphvizNotFoundError as error:
        print(f"note: {error}")
        return Path(d.draw(folder / "transfer.dot", title="distillation with a transfer set"))


def show(d: ld.Diagram, folder: Path) -> Path:
    """Draw ``d``, print its vertices, edges and compiled pairs, and one batch's shapes along every path."""
    drawing = draw(d, folder)
    print(f"\nThe diagram, {'its DOT source in' if drawing.suffix == '.dot' else 'drawn to'} {drawing}:")
    print("  " + d.summary().replace("\n", "\n  "))
    batches = {v: next(iter(DataLoader(d.spaces[v].data.dataset, batch_size=4))) for v in ("N", "U")}
    print("\nOne batch of 4 from each data vertex through every path (diagram.check):")
    print("  " + str(d.check(batches)).replace("\n", "\n  "))
    return drawing


def count_rows(module: nn.Module, counter: list[int]) -> Any:
    """Add to ``counter[0]`` the rows of every input ``module`` runs on while frozen; returns the hook's handle."""

    def hook(m: nn.Module, inputs: tuple[Any, ...]) -> None:
        if not any(p.requires_grad for p in m.parameters()):
            counter[0] += len(inputs[0])

    return module.register_forward_pre_hook(hook)


def run_seed(
    seed: int, args: argparse.Namespace, train: TensorDataset, test: TensorDataset, first: bool = False
) -> dict[str, Any]:
    """Train one seed's three stages with one ``ld.fit``: their test accuracies and the frozen teacher's work.

    ``first``: draw and print the transfer diagram before training. With ``args.resume`` a seed
    that has checkpoints continues from its latest; otherwise its folder starts empty.
    """
    regime, teacher = stages(train, seed, args.labelled_fraction, args.batch_size, args.temperature)
    folder = args.log_dir / f"seed{seed}"
    checkpoints = folder / "checkpoints"
    resume = checkpoints if args.resume and (checkpoints / "latest").exists() else None
    if resume is None and folder.exists():
        shutil.rmtree(folder)  # a fresh run: no old logs or checkpoints to mix with
    drawing = show(regime[2].diagram, args.log_dir) if first else None
    if first:
        print(
            f"\nTraining, {args.steps:,} steps a stage" + ("" if args.quiet else ", a bar per stage with every term:")
        )
    frozen = [0]
    handle = count_rows(teacher, frozen)
    try:
        history = ld.fit(
            regime,
            epochs=1,
            policy="steps",
            steps_per_epoch=args.steps,
            lr=LR,
            seed=seed,
            device=args.device,
            log_dir=folder,
            checkpoint_dir=checkpoints,
            progress=not args.quiet,
            eval_data={"N": DataLoader(test, batch_size=512)},
            metrics={"Y": "accuracy"},
            resume=resume,
        )
    finally:
        handle.remove()
    evaluated = {r["stage"]: r["values"] for r in history.records if r["split"] == "eval"}
    accuracy = {
        name: 100 * next(v for k, v in evaluated[i].items() if k.startswith("accuracy["))
        for i, name in enumerate(MODELS)
    }
    unlabelled = len(regime[2].diagram.spaces["U"].data.dataset)
    return {**accuracy, "frozen images": frozen[0], "unlabelled": unlabelled, "resumed": resume, "drawing": drawing}


def report(seed: int, run: dict[str, Any], seconds: float, steps: int, batch_size: int) -> str:
    """One line for a seed: its accuracies, and on how many images the frozen teacher ran."""
    accuracies = ", ".join(f"{name} {run[name]:.2f}" for name in MODELS)
    work = (
        f"the frozen teacher ran on {run['frozen images']:,} images ({run['unlabelled']:,} unlabelled, each once; "
        f"{steps:,} steps × {batch_size} = {steps * batch_size:,} without the cache)"
    )
    if run["resumed"] is not None:
        work = f"resumed from {run['resumed']}; the frozen teacher ran on {run['frozen images']:,} images since"
    return f"seed {seed} ({seconds:.1f} s): {accuracies}; {work}"


def mean_std(values: Sequence[float], sign: str = "") -> str:
    """``"mean ± sample std"`` (``± 0.00`` for one value)."""
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.fmean(values):{sign}.2f} ± {std:.2f}"


def table(results: dict[str, list[float]], labelled: int, total: int) -> str:
    """The result table: the three models, then the distilled student's gain over the student alone."""
    rows = {
        f"teacher ({total:,} labels)": mean_std(results["teacher"]),
        f"student alone ({labelled} labels)": mean_std(results["student alone"]),
        "distilled student": mean_std(results["distilled student"]),
        "gain (distilled − alone)": mean_std(results["gain"], sign="+"),
    }
    width = max(map(len, rows))
    return "\n".join(f"  {name:<{width}}  {value:>14}" for name, value in rows.items())


def demo(args: argparse.Namespace) -> dict[str, Any]:
    """Print the diagram, train every seed, print the table and where the run went; returns the numbers."""
    start = time.perf_counter()
    train, test = datasets.digits()
    labelled, unlabelled = (len(s) for s in transfer_sets(train, args.labelled_fraction, args.seeds[0]))
    print(
        f"Distillation with a transfer set on scikit-learn's digits ({len(train):,} training, {len(test)} test images).\n"
        f"Teacher MLP 64-{TEACHER_WIDTH}-10 on all {len(train):,} labels; student MLP 64-{STUDENT_WIDTH}-10 on "
        f"{labelled} labels ({args.labelled_fraction:.0%}, stratified) and on the teacher's soft targets "
        f"(T = {args.temperature:g}) for the other {unlabelled:,} images;\nthe same student alone on its "
        f"{labelled} labels. Adam lr {LR:g}, batches of {args.batch_size}, seeds {', '.join(map(str, args.seeds))}."
    )
    results: dict[str, list[Any]] = {name: [] for name in (*MODELS, "gain", "frozen images")}
    drawing = None
    for seed in args.seeds:
        t0 = time.perf_counter()
        run = run_seed(seed, args, train, test, first=seed == args.seeds[0])
        drawing = drawing or run["drawing"]
        for name in (*MODELS, "frozen images"):
            results[name].append(run[name])
        results["gain"].append(run["distilled student"] - run["student alone"])
        print(report(seed, run, time.perf_counter() - t0, args.steps, args.batch_size), flush=True)
    many = len(args.seeds) > 1
    print(f"\nTest accuracy (%), mean ± std over {len(args.seeds)} seed{'s' * many}:")
    print(table(results, labelled, len(train)))
    log_dir = args.log_dir
    print(
        f"\nLogs (log.csv, log.jsonl, TensorBoard events), the loss plot (losses.png) and checkpoints of each seed "
        f"are in {log_dir}/seed<N>/ (checkpoints/ at the end of every stage); the drawing is {drawing}."
        f"\nResume (or re-read) the run from its checkpoints:\n  {args.command} --resume"
        f"\nRe-plot the losses of every seed (each seed's losses.png):\n"
        f"  {shlex.quote(args.python)} -m learning_diagrams plot {shlex.quote(str(log_dir))}/seed* "
        f"--stages {shlex.quote(','.join(MODELS))}"
    )
    seconds = time.perf_counter() - start
    print(f"\nDone in {seconds:.1f} s on {machine.describe(args.device)}.")
    return {**results, "seeds": list(args.seeds), "drawing": drawing, "seconds": seconds}


def interpreter() -> str:
    """The Python running this, as a command to type here: ``.venv/bin/python`` under ``make demo``, else ``python``."""
    try:
        return str(Path(sys.executable).relative_to(Path.cwd()))
    except ValueError:  # an interpreter outside the working directory: the one on PATH, presumably
        return "python"


def _seeds(text: str) -> list[int]:
    return [int(v) for v in text.split(",") if v]


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Parse ``argv`` (default: the command line) and run :func:`demo` with ``--threads`` torch threads."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=_seeds, default=list(SEEDS), help="comma separated (default 0,1,2)")
    parser.add_argument("--steps", type=int, default=STEPS, help=f"steps of every stage (default {STEPS})")
    parser.add_argument(
        "--batch-size", type=int, default=BATCH_SIZE, help=f"of every data vertex (default {BATCH_SIZE})"
    )
    parser.add_argument(
        "--labelled-fraction", type=float, default=FRACTION, help=f"the student's labelled share (default {FRACTION:g})"
    )
    parser.add_argument(
        "--temperature", type=float, default=TEMPERATURE, help=f"of the soft targets (default {TEMPERATURE:g})"
    )
    parser.add_argument(
        "--log-dir", type=Path, default=Path("runs/transfer"), help="where logs, plots, checkpoints and the drawing go"
    )
    parser.add_argument("--resume", action="store_true", help="continue each seed from its checkpoints (same options)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.add_argument("--device", default="cpu", help="cpu (default), cuda, cuda:1, ...")
    parser.add_argument(
        "--threads", type=int, default=1, help="torch CPU threads during the run (default 1; 0 keeps torch's setting)"
    )
    args = parser.parse_args(argv)
    if not args.seeds or len(set(args.seeds)) < len(args.seeds):
        parser.error(f"--seeds needs one seed or more, each once (got {args.seeds})")
    if args.steps < 1 or args.batch_size < 1 or args.temperature <= 0:
        parser.error("--steps and --batch-size must be at least 1, --temperature positive")
    given = sys.argv[1:] if argv is None else argv
    args.python = interpreter()
    args.command = shlex.join(
        [args.python, "-m", "learning_diagrams.examples.transfer", *(a for a in given if a != "--resume")]
    )
    try:  # a fraction that leaves a class out of a part is refused before anything runs
        split(datasets.digits()[0].tensors[1], args.labelled_fraction)
    except ld.errors.OptionError as error:
        parser.error(f"--labelled-fraction: {error}")
    with machine.threads(args.threads):
        return demo(args)


if __name__ == "__main__":
    main()
