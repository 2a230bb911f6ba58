"""Autoencoders and norm regularisation as learning diagrams, on scikit-learn's digits.

The paper (section 2) says two regimes were worked out but not shown:
autoencoders and norm-based regularisation. Both are one or two lines of
diagram here, and both are checked against their hand-written forms.

**The autoencoder** is the paper's cycle ``x: N → X``, ``enc: X → Z``,
``dec: Z → X`` with the mean squared error on ``X``. A path never uses an edge
twice, so the cycle is followed once and the only compiled pair is
``x·enc·dec ≤ x``: the loss is ``F.mse_loss(dec(enc(x)), x)``.

**An L2 penalty** is a pair of paths into a space ``R`` whose loss is the
squared norm ``d(a, b) = ‖a − b‖²`` (a sum of squares, not a mean): one path
``weights: N → R`` reads the classifier's weight matrix (the same parameter
tensor the classifier trains), the other ``zero: N → R`` gives the zero vector.
``relate("weights", "zero", weight=λ)`` adds ``λ‖W‖²`` to the cross-entropy of
``x·model ≤ y``: logistic regression with weight decay.

For each regime the example checks, on one batch, that the compiled loss and
its gradients equal the hand-written loss's; then it trains the diagram with
``ld.fit`` and the hand-written loss with a hand-written loop, from the same
initial weights on the same batches in the same order, and compares the two
training curves step by step. The penalty is also compared with
``torch.optim.SGD(weight_decay=2λ)``, torch's own form of it.

Run it with ``python -m learning_diagrams.examples.autoencoder`` (add
``--draw docs/examples`` to draw both diagrams and the reconstructions,
``--full`` for a wider autoencoder trained longer, ``--device cuda`` for a GPU).
"""

from __future__ import annotations

import argparse
import copy
import functools
import time
from pathlib import Path
from typing import Any, Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

import learning_diagrams as ld
from learning_diagrams.examples import machine

Batch = tuple[torch.Tensor, torch.Tensor]


# -- data --------------------------------------------------------------------------


def digits(seed: int = 0) -> tuple[Batch, Batch]:
    """scikit-learn's 1,797 8×8 digits, flattened to 64 values in [0, 1], split 80/20 by class."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    data = load_digits()
    images = torch.tensor(data.data, dtype=torch.float32) / 16.0
    labels = torch.tensor(data.target)
    train, test = train_test_split(range(len(labels)), test_size=0.2, stratify=labels, random_state=seed)
    return (images[train], labels[train]), (images[test], labels[test])


def make_batches(data: Batch, batch_size: int, seed: int) -> list[Batch]:
    """The training set shuffled once and cut into batches: a list, which the trainer reads in order.

    Giving the same list to ``ld.fit`` and to a hand-written loop makes both see the
    same batches in the same order, so their curves can be compared step by step.
    """
    images, labels = data
    order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(seed))
    return [(images[i], labels[i]) for i in order.split(batch_size)]


def images(batch: Batch) -> torch.Tensor:
    return batch[0]


def labels(batch: Batch) -> torch.Tensor:
    return batch[1]


# -- the autoencoder -------------------------------------------------------------------


def encoder(hidden: int, code: int) -> nn.Module:
    return nn.Sequential(nn.Linear(64, hidden), nn.ReLU(), nn.Linear(hidden, code))


def decoder(hidden: int, code: int) -> nn.Module:
    return nn.Sequential(nn.Linear(code, hidden), nn.ReLU(), nn.Linear(hidden, 64), nn.Sigmoid())


def autoencoder(enc: nn.Module, dec: nn.Module, data: Any) -> ld.Diagram:
    """The cycle ``N → X → Z → X``; its one compiled pair is ``x·enc·dec ≤ x`` at ``(X, mse)``."""
    return (
        ld.Diagram()
        .space("N", data=data)
        .space("X", loss=ld.losses.mse)
        .space("Z")
        .map("x", "N", "X", images)
        .map("enc", "X", "Z", enc)
        .map("dec", "Z", "X", dec)
        .relate("x·enc·dec", "x")  # the reconstruction is the prediction, the image the target
    )


def autoencoder_by_hand(enc: nn.Module, dec: nn.Module, batch: Batch) -> torch.Tensor:
    """The hand-written form."""
    x = batch[0]
    return F.mse_loss(dec(enc(x)), x)


# -- norm regularisation ---------------------------------------------------------------


def _squared_norm(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return (a - b).pow(2).sum()


#: ``d(a, b) = ‖a − b‖²``, a sum of squares over every entry: ``d(w, 0) = ‖w‖²``.
squared_norm = ld.Loss(_squared_norm, symmetric=True, name="squared_norm")


class Weights(nn.Module):
    """The edge ``weights: N → R``: ignores the batch and returns ``model.weight``, flattened.

    It holds the classifier itself, so the penalty's gradient reaches the very
    tensor that the edge ``model`` trains (the trainer gives each parameter to one
    optimiser group, however many edges hold it). Biases are not penalised, as
    usual with weight decay.
    """

    def __init__(self, model: nn.Linear):
        super().__init__()
        self.model = model

    def forward(self, batch: Any) -> torch.Tensor:
        return self.model.weight.flatten()


class Zero:
    """The edge ``zero: N → R``: the zero vector of ``R``, on the batch's device."""

    __name__ = "zero"

    def __init__(self, size: int):
        self.size = size

    def __call__(self, batch: Batch) -> torch.Tensor:
        return batch[0].new_zeros(self.size)


def regularised(model: nn.Linear, data: Any, lam: float) -> ld.Diagram:
    """Logistic regression ``x·model ≤ y`` plus the penalty pair ``weights ≤ zero`` at ``(R, ‖·‖²)``."""
    return (
        ld.Diagram()
        .space("N", data=data)
        .space("X")
        .space("Y", loss=ld.losses.cross_entropy)
        .space("R", loss=squared_norm)
        .map("x", "N", "X", images)
        .map("y", "N", "Y", labels)
        .map("model", "X", "Y", model)
        .map("weights", "N", "R", Weights(model))
        .map("zero", "N", "R", Zero(model.weight.numel()))
        .relate("x·model", "y")
        .relate("weights", "zero", weight=lam)
    )


def regularised_by_hand(model: nn.Linear, batch: Batch, lam: float) -> torch.Tensor:
    """The hand-written form: ``cross_entropy + λ‖W‖²``."""
    x, y = batch
    return F.cross_entropy(model(x), y) + lam * model.weight.pow(2).sum()


def _cross_entropy(model: nn.Module, batch: Batch) -> torch.Tensor:
    """``cross_entropy`` alone, for an optimiser that regularises by itself (torch's weight decay)."""
    return F.cross_entropy(model(batch[0]), batch[1])


# -- checks -------------------------------------------------------------------------------


def compare_on_batch(
    compiled: ld.CompiledLoss, by_hand: Callable[[Batch], torch.Tensor], params: Sequence[nn.Parameter], batch: Batch
) -> dict[str, float]:
    """The compiled loss and ``by_hand`` on the same batch: values, and the largest gradient gap."""

    def value_and_grads(fn: Callable[[], torch.Tensor]) -> tuple[float, list[torch.Tensor]]:
        for p in params:
            p.grad = None
        value = fn()
        value.backward()
        # A parameter the loss does not reach has gradient zero (torch leaves its .grad None).
        grads = [torch.zeros_like(p) if p.grad is None else p.grad.detach().clone() for p in params]
        for p in params:
            p.grad = None
        return value.item(), grads

    diagram, g_diagram = value_and_grads(lambda: compiled(N=batch).total)
    hand, g_hand = value_and_grads(lambda: by_hand(batch))
    return {
        "diagram": diagram,
        "hand": hand,
        "loss_diff": abs(diagram - hand),
        "grad_diff": max((a - b).abs().max().item() for a, b in zip(g_diagram, g_hand)),
        "grad_norm": sum((g.pow(2).sum() for g in g_hand), torch.zeros(())).sqrt().item(),
    }


def train_by_hand(
    loss_fn: Callable[[Batch], torch.Tensor],
    optimiser: torch.optim.Optimizer,
    batches: list[Batch],
    epochs: int,
    device: torch.device,
    after_epoch: Callable[[], float] | None = None,
) -> tuple[list[float], list[float]]:
    """The loop ``ld.fit`` replaces: returns the loss at every step and ``after_epoch()`` per epoch."""
    curve, evaluations = [], []
    for _ in range(epochs):
        for x, y in batches:
            loss = loss_fn((x.to(device), y.to(device)))
            loss.backward()
            optimiser.step()
            optimiser.zero_grad(set_to_none=True)
            curve.append(loss.item())
        if after_epoch is not None:
            evaluations.append(after_epoch())
    return curve, evaluations


def train_curve(history: ld.History) -> list[float]:
    return [r["values"]["total"] for r in history.records if r["split"] == "train"]


def eval_values(history: ld.History, key: str) -> list[float]:
    return [r["values"][key] for r in history.records if r["split"] == "eval"]


def max_gap(a: Sequence[float], b: Sequence[float]) -> float:
    if len(a) != len(b):
        return float("inf")
    return max((abs(u - v) for u, v in zip(a, b)), default=0.0)


def epoch_means(curve: Sequence[float], steps: int) -> list[float]:
    return [sum(curve[i : i + steps]) / steps for i in range(0, len(curve), steps)]


# -- the two runs ---------------------------------------------------------------------------


def run_autoencoder(
    args: argparse.Namespace, train: Batch, test: Batch, device: torch.device, draw: Path | None
) -> dict[str, Any]:
    hidden, code = (128, 16) if args.full else (32, 8)
    torch.manual_seed(args.seed)
    enc, dec = encoder(hidden, code), decoder(hidden, code)
    hand_enc, hand_dec = copy.deepcopy(enc), copy.deepcopy(dec)  # the same initial weights
    batches = make_batches(train, args.batch_size, args.seed)
    d = autoencoder(enc, dec, batches)

    pairs = d.parallel_pairs()
    print(f"Autoencoder (64 → {hidden} → {code} → {hidden} → 64), compiled pairs:")
    for pair in pairs:
        print(f"  {pair}")
    if draw is not None:
        print(f"  drawn to {d.draw(draw / 'autoencoder.svg')}")

    probe = compare_on_batch(
        d.compile(), lambda b: autoencoder_by_hand(enc, dec, b), [*enc.parameters(), *dec.parameters()], batches[0]
    )
    print(
        f"  on one batch: diagram {probe['diagram']:.8f}, F.mse_loss(dec(enc(x)), x) "
        f"{probe['hand']:.8f}; |Δ loss| = {probe['loss_diff']:.1e}, "
        f"max |Δ gradient| = {probe['grad_diff']:.1e}"
    )

    test_batch = (test[0].to(device), test[1].to(device))

    @torch.no_grad()
    def test_mse(e: nn.Module, dd: nn.Module) -> float:
        return autoencoder_by_hand(e, dd, test_batch).item()

    enc.to(device), dec.to(device), hand_enc.to(device), hand_dec.to(device)
    before = test_mse(enc, dec)
    history = ld.fit(
        d,
        epochs=args.epochs,
        lr=args.ae_lr,
        seed=args.seed,
        device=str(device),
        log_dir=False,
        progress=not args.quiet,
        eval_data={"N": [test]},
    )
    optimiser = torch.optim.Adam([*hand_enc.parameters(), *hand_dec.parameters()], lr=args.ae_lr)
    hand_curve, hand_test = train_by_hand(
        lambda b: autoencoder_by_hand(hand_enc, hand_dec, b),
        optimiser,
        batches,
        args.epochs,
        device,
        lambda: test_mse(hand_enc, hand_dec),
    )
    curve, diagram_test = train_curve(history), eval_values(history, "total")
    steps = len(batches)
    diagram_epochs, hand_epochs = epoch_means(curve, steps), epoch_means(hand_curve, steps)

    print(
        f"\nReconstruction mse, {len(train[0])} training / {len(test[0])} test images, "
        f"batch {args.batch_size}, Adam lr {args.ae_lr:g} (test mse before training: {before:.5f})"
    )
    print(
        f"  {'epoch':>5}  {'train, diagram':>14}  {'train, by hand':>14}  {'test, diagram':>13}  {'test, by hand':>13}"
    )
    shown = sorted({0, 1, 4, 9, 19, 49, 99, args.epochs - 1} & set(range(args.epochs)))
    for e in shown:
        print(
            f"  {e + 1:>5}  {diagram_epochs[e]:>14.6f}  {hand_epochs[e]:>14.6f}  "
            f"{diagram_test[e]:>13.6f}  {hand_test[e]:>13.6f}"
        )
    gap = max_gap(curve, hand_curve)
    print(f"  {len(curve)} steps; largest gap between the two curves, step by step: {gap:.1e}")

    if draw is not None:
        print(f"  reconstructions drawn to {reconstructions(enc, dec, test, draw / 'autoencoder-reconstructions.png')}")
    return {
        "pairs": [p.name for p in pairs],
        "loss": probe["diagram"],
        "loss_diff": probe["loss_diff"],
        "grad_diff": probe["grad_diff"],
        "grad_norm": probe["grad_norm"],
        "steps": len(curve),
        "curve_gap": gap,
        "first_step": curve[0],
        "last_epoch_train": diagram_epochs[-1],
        "first_epoch_train": diagram_epochs[0],
        "test_before": before,
        "test_diagram": diagram_test[-1],
        "test_hand": hand_test[-1],
    }


def run_norm(
    args: argparse.Namespace, train: Batch, test: Batch, device: torch.device, draw: Path | None
) -> dict[str, Any]:
    torch.manual_seed(args.seed)
    initial = nn.Linear(64, 10)
    batches = make_batches(train, args.batch_size, args.seed)
    test_batch = (test[0].to(device), test[1].to(device))
    probe_lam = max(args.lambdas) or 1e-2

    probe_model = copy.deepcopy(initial)
    d = regularised(probe_model, batches, probe_lam)
    pairs = d.parallel_pairs()
    print(f"\nLogistic regression with an L2 penalty (λ = {probe_lam:g} shown), compiled pairs:")
    for pair in pairs:
        print(f"  {pair}")
    if draw is not None:
        print(f"  drawn to {d.draw(draw / 'autoencoder-norm.svg')}")
    probe = compare_on_batch(
        d.compile(),
        lambda b: regularised_by_hand(probe_model, b, probe_lam),
        list(probe_model.parameters()),
        batches[0],
    )
    print(
        f"  on one batch: diagram {probe['diagram']:.8f}, cross_entropy + λ‖W‖² {probe['hand']:.8f}; "
        f"|Δ loss| = {probe['loss_diff']:.1e}, max |Δ gradient| = {probe['grad_diff']:.1e}"
    )

    @torch.no_grad()
    def accuracy(model: nn.Module) -> float:
        return 100 * (model(test_batch[0]).argmax(-1) == test_batch[1]).float().mean().item()

    runs: dict[float, dict[str, float]] = {}
    for lam in args.lambdas:
        model, hand, decayed = (copy.deepcopy(initial).to(device) for _ in range(3))
        history = ld.fit(
            regularised(model, batches, lam),
            epochs=args.epochs,
            optimizer=torch.optim.SGD,
            lr=args.norm_lr,
            seed=args.seed,
            device=str(device),
            log_dir=False,
            progress=not args.quiet,
        )
        hand_curve, _ = train_by_hand(
            functools.partial(regularised_by_hand, hand, lam=lam),
            torch.optim.SGD(hand.parameters(), lr=args.norm_lr),
            batches,
            args.epochs,
            device,
        )
        # torch's own weight decay: SGD adds weight_decay · W to the gradient, the gradient of λ‖W‖² when 2λ.
        sgd = torch.optim.SGD(
            [{"params": [decayed.weight], "weight_decay": 2 * lam}, {"params": [decayed.bias]}], lr=args.norm_lr
        )
        train_by_hand(functools.partial(_cross_entropy, decayed), sgd, batches, args.epochs, device)
        curve = train_curve(history)
        runs[lam] = {
            "norm_diagram": model.weight.pow(2).sum().item(),
            "norm_hand": hand.weight.pow(2).sum().item(),
            "norm_weight_decay": decayed.weight.pow(2).sum().item(),
            "accuracy_diagram": accuracy(model),
            "accuracy_hand": accuracy(hand),
            "accuracy_weight_decay": accuracy(decayed),
            "curve_gap": max_gap(curve, hand_curve),
            "weight_decay_gap": max(
                (a - b).abs().max().item() for a, b in zip(model.parameters(), decayed.parameters())
            ),
            "steps": len(curve),
            "final_loss": curve[-1],
        }

    print(
        f"\n‖W‖² and test accuracy after {args.epochs} epochs of SGD (lr {args.norm_lr:g}, batch {args.batch_size}); "
        f"three forms of the penalty from the same initial weights"
    )
    print(
        f"  {'λ':>6}  {'‖W‖² diagram':>12}  {'by hand':>9}  {'SGD wd=2λ':>9}  {'acc % diagram':>13}  "
        f"{'by hand':>7}  {'SGD wd=2λ':>9}  {'curve gap':>9}  {'|ΔW| vs wd':>10}"
    )
    for lam, r in runs.items():
        print(
            f"  {lam:>6g}  {r['norm_diagram']:>12.4f}  {r['norm_hand']:>9.4f}  {r['norm_weight_decay']:>9.4f}  "
            f"{r['accuracy_diagram']:>13.2f}  {r['accuracy_hand']:>7.2f}  {r['accuracy_weight_decay']:>9.2f}  "
            f"{r['curve_gap']:>9.1e}  {r['weight_decay_gap']:>10.1e}"
        )
    return {
        "pairs": [p.name for p in pairs],
        "lambda": probe_lam,
        "loss_diff": probe["loss_diff"],
        "grad_diff": probe["grad_diff"],
        "grad_norm": probe["grad_norm"],
        "runs": runs,
    }


def reconstructions(enc: nn.Module, dec: nn.Module, test: Batch, path: Path, n: int = 12) -> Path:
    """A PNG: ``n`` test digits (top row) and their reconstructions ``dec(enc(x))`` (bottom row)."""
    from matplotlib.figure import Figure  # its own canvas: the global backend is left alone

    device = next(enc.parameters()).device
    x = test[0][:n]
    with torch.no_grad():
        y = dec(enc(x.to(device))).cpu()
    fig = Figure(figsize=(n * 0.8, 1.55), dpi=100)
    axes = fig.subplots(2, n)
    for i in range(n):
        for row, value in enumerate((x[i], y[i])):
            ax = axes[row, i]
            ax.imshow(value.reshape(8, 8).numpy(), cmap="gray_r", vmin=0, vmax=1)
            ax.set_xticks([]), ax.set_yticks([])
    axes[0, 0].set_ylabel("x", rotation=0, labelpad=10)
    axes[1, 0].set_ylabel("x·enc·dec", rotation=0, labelpad=28)
    fig.subplots_adjust(left=0.08, right=0.99, top=0.97, bottom=0.03, wspace=0.08, hspace=0.08)
    fig.savefig(path)
    return path


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=None, help="epochs of every run (default 20; 100 with --full)")
    parser.add_argument("--full", action="store_true", help="a wider autoencoder (64-128-16), trained longer")
    parser.add_argument("--device", default="cpu", help="cpu (default), cuda, cuda:1, ...")
    parser.add_argument("--seed", type=int, default=0, help="seed of the models, the split and the batches")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--ae-lr", type=float, default=1e-2, help="Adam's learning rate for the autoencoder")
    parser.add_argument("--norm-lr", type=float, default=0.5, help="SGD's learning rate for the classifier")
    parser.add_argument(
        "--lambdas",
        type=lambda s: [float(v) for v in s.split(",")],
        default=[0.0, 1e-3, 1e-2],
        help="penalty weights, comma separated (default 0,0.001,0.01)",
    )
    parser.add_argument(
        "--draw",
        type=Path,
        default=None,
        metavar="DIR",
        help="draw both diagrams (SVG) and the reconstructions (PNG) into DIR",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch CPU threads during the run (default 1: these models are too small to gain "
        "from more, and lose much when the cores are shared); 0 keeps torch's setting",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    args = parser.parse_args(argv)
    if args.epochs is None:
        args.epochs = 100 if args.full else 20
    start = time.perf_counter()
    device = torch.device(args.device)
    if args.draw is not None:
        args.draw.mkdir(parents=True, exist_ok=True)
    train, test = digits(args.seed)

    with machine.threads(args.threads):
        results: dict[str, Any] = {
            "autoencoder": run_autoencoder(args, train, test, device, args.draw),
            "norm": run_norm(args, train, test, device, args.draw),
        }
        where = machine.describe(device)
    results["seconds"] = time.perf_counter() - start
    print(f"\nDone in {results['seconds']:.1f} s on {where}.")
    return results


if __name__ == "__main__":
    main()
