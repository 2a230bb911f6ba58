"""Few-shot heads at scale: 600 episodes' heads as one glued, fused diagram against the per-episode loop and sklearn.

RFS's meta-test fits one linear head per episode on the frozen backbone's features
(:mod:`learning_diagrams.examples.fewshot`). Three ways of fitting the heads of the
same ``--episodes`` episodes (600; 60 with ``--quick``) of each shot setting
(5-way 1-shot and 5-shot, 15 queries a class), side by side in one process:

* (a) the per-episode loop, as a user writes it today
  (:func:`~learning_diagrams.examples.fewshot.loop_heads`): for each episode a new
  head, 100 full-batch Adam steps, then its query accuracy;
* (b) one glued diagram of all the episodes, fitted by one ``ld.fit(fuse=True)``
  (:func:`~learning_diagrams.examples.fewshot.fit_heads` with ``glue`` = the number of
  episodes): the whole call, gluing the squares, compiling, fitting, then
  ``ld.Trainer().evaluate`` on every query set (``--glue N``: diagrams of ``N``
  episodes instead; ``--unfused`` also times ``fuse=False``);
* (c) RFS's own protocol, scikit-learn's ``LogisticRegression`` (lbfgs, C=1) per
  episode (:func:`~learning_diagrams.examples.fewshot.rfs`).

(a) and (b) minimise the same objective with the same optimiser and schedule (Adam,
learning rate 0.1 on a cosine schedule, weight decay ``1 / (C·n_support)`` on the
weights only), so their accuracies agree episode by episode; (c) minimises it with
L-BFGS, and agrees within the intervals. All three accuracies are printed (mean ±
95% CI), and the run fails (exit status 1) if (a) or (c) does not agree with (b).

**The backbone is left out of every timing.** The benchmark is of the head fitting:
the Conv-4 backbone (pretrained ``--pretrain-epochs`` epochs, 1 by default, on the
5 meta-train digits; 0: its random initialisation, fixed by the seed) embeds the
1,797 images once, before any timing, and the three methods then read those
features, their backbone the identity. (Each method embeds as it would otherwise:
(a) and (b) every episode's support and query set, (c) every image once; so with
the backbone in, the embedding would weigh differently on the two sides.)
``--with-backbone`` times them with the real backbone instead.

The data: scikit-learn's digits (every machine has them; the glyph fonts may be
missing), the 5 meta-test digits. Before timing, each method runs once on two
episodes (first-call costs out of the figures); then the methods take turns for
``--rounds`` rounds (3), and each one's median wall time is shown. One thread
(``--threads``) for torch and for the BLAS under numpy and scipy alike
(``threadpoolctl``): the tensors are small, and a BLAS spinning on every core is at
the mercy of whatever else runs. On a GPU each method's result is read back
(``.item()``), so the times include the work.

Run: ``.venv/bin/python bench/fewshot.py [--quick] [--episodes N] [--shots 1,5] [--steps N]
[--threads N] [--device cpu] [--pretrain-epochs N] [--rounds N] [--unfused] [--glue N] [--with-backbone]``.
It prints the machine line, then per shot setting each method's wall time and
accuracy, the ratios (b)/(a) and (b)/(c), and the goal ((b) ≤ 0.2 of (a)).
"""

from __future__ import annotations

import argparse
import statistics
import time
from dataclasses import replace
from typing import Callable, Sequence

import sklearn.linear_model  # noqa: F401  (loaded before threadpool_limits, which limits loaded libraries only)
import torch
from sidebyside import machine_line
from threadpoolctl import threadpool_limits  # scikit-learn's own dependency
from torch import nn

from learning_diagrams.examples import fewshot, machine

#: The glued, fused fit's target, as a fraction of the per-episode loop's wall time.
GOAL = 0.2


class Precomputed(fewshot.Backbone):
    """The identity on features already computed: the backbone of the timed methods."""

    def __init__(self, features: int):
        super().__init__()
        self.features = features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


@torch.no_grad()
def embed(backbone: nn.Module, images: torch.Tensor, device: torch.device) -> torch.Tensor:
    """``backbone``'s features of every image, in eval mode, 512 at a time, back on the CPU."""
    backbone.eval().to(device)
    return torch.cat([backbone(images[i : i + 512].to(device)).cpu() for i in range(0, len(images), 512)])


def as_features(episodes: Sequence[fewshot.Episode], table: torch.Tensor) -> list[fewshot.Episode]:
    """The episodes with their images replaced by their rows of ``table`` (the indices are the class set's)."""
    return [
        replace(
            e,
            support=(table[e.support_indices], e.support[1]),
            query=(table[e.query_indices], e.query[1]),
        )
        for e in episodes
    ]


def rounds_of(methods: dict[str, Callable[[], list[float]]], rounds: int) -> dict[str, tuple[float, list[float]]]:
    """Each method's median wall time over ``rounds`` calls and its accuracies (the same at every call).

    The methods take turns, the one to go first moving on each round, so that none
    always runs on a machine another has just warmed (or a neighbour has just loaded).
    """
    labels = list(methods)
    seconds: dict[str, list[float]] = {label: [] for label in labels}
    values: dict[str, list[float]] = {}
    for r in range(rounds):
        for label in labels[r % len(labels) :] + labels[: r % len(labels)]:
            start = time.perf_counter()
            got = methods[label]()
            seconds[label].append(time.perf_counter() - start)
            if values.setdefault(label, got) != got:
                raise AssertionError(f"{label}: another call gave other accuracies")
    return {label: (statistics.median(seconds[label]), values[label]) for label in labels}


def cell(values: Sequence[float]) -> str:
    mean, ci = fewshot.mean_ci(values)
    return f"{mean:.2f} ± {ci:.2f}"


def agree(a: list[float], b: list[float]) -> bool:
    """Whether the two methods' mean accuracies are within the sum of their 95% intervals."""
    (ma, ca), (mb, cb) = fewshot.mean_ci(a), fewshot.mean_ci(b)
    return abs(ma - mb) <= ca + cb + 1e-9


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="60 episodes a shot: well under a minute")
    parser.add_argument("--episodes", type=int, help="episodes per shot setting (default 600, quick 60)")
    parser.add_argument("--shots", default="1,5", help="comma-separated (default 1,5)")
    parser.add_argument("--steps", type=int, default=100, help="full-batch steps fitting each head (default 100)")
    parser.add_argument("--threads", type=int, default=1, help="torch's and BLAS's threads (default 1: small tensors)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--pretrain-epochs", type=int, default=1, help="backbone pretraining (0: random init)")
    parser.add_argument("--unfused", action="store_true", help="also time (b) with fuse=False")
    parser.add_argument("--glue", type=int, help="episodes per glued diagram in (b) (default: all of them)")
    parser.add_argument("--with-backbone", action="store_true", help="time the methods with the backbone in")
    parser.add_argument("--rounds", type=int, default=3, help="calls of each method; the median is shown")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    with threadpool_limits(limits=args.threads):  # numpy's and scipy's BLAS too, for scikit-learn's side
        return run(args)


def run(args: argparse.Namespace) -> int:
    count = args.episodes or (60 if args.quick else 600)
    shots = [int(k) for k in args.shots.split(",")]
    device = machine.device(args.device)

    classes = fewshot.load_classes("digits", seed=args.seed)
    torch.manual_seed(args.seed)
    backbone = fewshot.Conv4()
    start = time.perf_counter()
    if args.pretrain_epochs:
        fewshot.pretrain(
            classes, backbone, epochs=args.pretrain_epochs, seed=args.seed, device=args.device, progress=False
        )
    backbone.eval().requires_grad_(False)
    if args.with_backbone:
        net, images, where = backbone, classes.images, "backbone timed in (each method embeds its images)"
    else:
        table = embed(backbone, classes.images, device)
        net, images, where = Precomputed(table.shape[1]), table, "backbone out of the timing (features precomputed)"
    prepared = time.perf_counter() - start
    print(
        machine_line(
            f"device {args.device}; digits, 5-way, {count} episodes a shot, {args.steps} steps a head; "
            f"Conv-4 pretrained {args.pretrain_epochs} epoch(s); {where}"
        )
    )
    print(f"(pretraining and embedding, untimed: {prepared:.1f} s)", flush=True)

    glued = f"diagrams of {args.glue}" if args.glue else "one diagram"
    labels = {
        "a": "(a) per-episode loop",
        "b": f"(b) ld.fit, {glued}, fused",
        "b'": f"(b') ld.fit, {glued}, unfused",
        "c": "(c) sklearn LogisticRegression",
    }

    def methods(episodes: list[fewshot.Episode]) -> dict[str, Callable[[], list[float]]]:
        head = dict(steps=args.steps, seed=args.seed, device=args.device)
        glue = args.glue or len(episodes)
        chosen: dict[str, Callable[[], list[float]]] = {
            "a": lambda: fewshot.loop_heads(episodes, net, **head),
            "b": lambda: fewshot.fit_heads(episodes, net, glue=glue, fuse=True, **head),
        }
        if args.unfused:
            chosen["b'"] = lambda: fewshot.fit_heads(episodes, net, glue=glue, fuse=False, **head)
        chosen["c"] = lambda: fewshot.rfs(episodes, net, images, device=args.device)
        return chosen

    ok = True
    print(f"{'shots':<7} {'method':<36} {'wall (s)':>9} {'accuracy (%)':>14}   (median of {args.rounds} calls)")
    for k in shots:
        episodes = fewshot.sample_episodes(classes, "test", count, shots=k, seed=args.seed)
        if not args.with_backbone:
            episodes = as_features(episodes, table)
        for warm in methods(episodes[:2]).values():  # first-call costs (lazy imports, allocations) out
            warm()
        results = rounds_of(methods(episodes), args.rounds)
        for key, (seconds, accuracy) in results.items():
            print(f"{k}-shot  {labels[key]:<36} {seconds:>9.2f} {cell(accuracy):>14}", flush=True)
        (ta, a), (tb, b), (tc, c) = results["a"], results["b"], results["c"]
        same = sum(abs(x - y) < 1e-3 for x, y in zip(a, b))
        largest = max(abs(x - y) for x, y in zip(a, b))
        print(
            f"{k}-shot  (b)/(a) {tb / ta:.3f} (goal ≤ {GOAL}: {'met' if tb / ta <= GOAL else 'not met'}), "
            f"(b)/(c) {tb / tc:.3f}; (b) = (a) on {same} of {count} episodes (largest difference "
            f"{largest:.2f} points); (b) − (c) {cell([x - y for x, y in zip(b, c)])}"
        )
        for other, values in (("(a)", a), ("(c)", c)):
            if not agree(b, values):
                print(f"{k}-shot  the accuracies of (b) and {other} disagree beyond their intervals")
                ok = False
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
