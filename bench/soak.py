"""A long run's memory: 20,000 steps of a tiny diagram through ``ld.fit``, logging every step.

The resident set size (RSS, from ``/proc/self/statm``, else ``resource``) is printed
every 1,000 steps by a logger riding along with the run's own (``log.csv``,
``log.jsonl``, TensorBoard when installed, and the in-memory ``History``). A run
whose memory is bounded grows by a few bytes a value logged, so the growth from
step 1,000 (when every cache has been filled) to the end should stay well under
5 MB.

Run: ``.venv/bin/python bench/soak.py [--steps 20000] [--every 1000] [--progress]``.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from torch import nn

import learning_diagrams as ld
from learning_diagrams.logs import Logger


def rss_mb() -> float:
    """The resident set size of this process, in MB."""
    try:
        with open("/proc/self/statm", encoding="ascii") as f:
            pages = int(f.read().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / 2**20
    except OSError:  # no /proc: the peak, which is what resource knows
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak / 2**20 if sys.platform == "darwin" else peak / 2**10


class RSSLogger(Logger):
    """Prints the RSS every ``every`` training steps, and keeps those readings."""

    def __init__(self, every: int) -> None:
        self.every, self.readings, self.start = every, [], time.perf_counter()

    def log(self, record: Any) -> None:
        if record["split"] == "train" and record["step"] % self.every == 0:
            reading = rss_mb()
            self.readings.append((record["step"], reading))
            elapsed = time.perf_counter() - self.start
            print(f"step {record['step']:>6}  RSS {reading:8.2f} MB  ({elapsed:5.1f} s)", flush=True)


def diagram() -> ld.Diagram:
    torch.manual_seed(0)
    x = torch.randn(64, 4)
    batches = [(x[i : i + 8], x[i : i + 8].sum(dim=1, keepdim=True)) for i in range(0, 64, 8)]
    student, teacher = nn.Linear(4, 1), nn.Linear(4, 1)
    return (
        ld.Diagram()
        .space("N", data=batches)
        .space("X")
        .space("Y", loss=ld.losses.mse)
        .map("x", "N", "X", lambda b: b[0])
        .map("y", "N", "Y", lambda b: b[1])
        .map("student", "X", "Y", student)
        .map("teacher", "X", "Y", teacher, trainable=False)
        .relate("x·student", "y")
        .relate("x·student", "x·teacher", weight=0.1)
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20_000)
    parser.add_argument("--every", type=int, default=1_000)
    parser.add_argument("--progress", action="store_true", help="show the progress bar too")
    args = parser.parse_args()
    torch.set_num_threads(1)
    rss = RSSLogger(args.every)
    print(f"before fit: RSS {rss_mb():.2f} MB")
    with tempfile.TemporaryDirectory() as root:
        history = ld.fit(
            diagram(),
            policy="steps",
            steps_per_epoch=args.every,
            epochs=args.steps // args.every,
            log_every=1,
            log_dir=Path(root) / "logs",
            loggers=[rss],
            progress=args.progress,
            plot=False,
        )
    (first_step, first), (last_step, last) = rss.readings[0], rss.readings[-1]
    print(
        f"{len(history)} records, {len(history.names())} values each; RSS grew {last - first:+.2f} MB from step "
        f"{first_step} to step {last_step} ({(last - first) * 2**20 / max(1, last_step - first_step):.0f} bytes a step)"
    )


if __name__ == "__main__":
    main()
