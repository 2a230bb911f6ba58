"""Kill a training run at random moments, resume it, and compare with an unbroken run, bit for bit.

Each trial trains the same two-stage regime (a teacher with dropout, then a student
distilled from it; shuffled data, Adam, a step scheduler) with a checkpoint after
every step (``keep=3``) and logs to CSV and JSON lines. The run is SIGKILLed a few
times (at a random moment, or while a checkpoint is being written), and restarted
from its checkpoint directory each time, until it finishes. The trial is
*bit-exact* when its final checkpoint holds the same weights (every tensor of
``model.safetensors``, byte for byte) and the same state (optimisers,
schedulers, RNG, data order) as the unbroken run's, and its ``log.jsonl`` and
``log.csv`` are the same, byte for byte. (The weight files' own bytes, and so a
checksum of them, are not compared: safetensors writes the names of tied tensors
in an order that varies from run to run.)

Runs are forked from one server process that has imported torch (and computed
nothing, so forking is safe): a kill and restart costs milliseconds, not an
import of torch.

Run: ``.venv/bin/python bench/crash.py [--trials 20] [--kills 3] [--seed 0]``; it
prints each trial and ``k/N bit-exact``. The test suite runs a few trials
(``tests/training/test_crash.py``).
"""

from __future__ import annotations

import argparse
import contextlib
import mmap
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import IO, Any

#: Epochs of each of the two stages of a run; an epoch is 5 steps.
EPOCHS = 4


# ---------------------------------------------------------------------------- the run (in a child)


def _regime(epochs: int) -> list[Any]:
    import torch
    from torch import nn
    from torch.utils.data import DataLoader, TensorDataset

    import learning_diagrams as ld

    g = torch.Generator().manual_seed(0)
    x = torch.randn(40, 6, generator=g)
    data = DataLoader(TensorDataset(x, x[:, :3].argmax(dim=1)), batch_size=8, shuffle=True)

    def mlp(seed: int, width: int) -> nn.Module:
        torch.manual_seed(seed)
        return nn.Sequential(nn.Linear(6, width), nn.ReLU(), nn.Dropout(0.2), nn.Linear(width, 3))

    teacher, student = mlp(1, 32), mlp(2, 8)
    teach = (
        ld.Diagram()
        .space("N", data=data)
        .space("X")
        .space("L")
        .space("Y", loss=ld.losses.cross_entropy)
        .map("x", "N", "X", lambda b: b[0])
        .map("y", "N", "Y", lambda b: b[1])
        .map("model", "X", "L", teacher)
        .map("hard", "L", "Y", nn.Identity())
        .relate("x·model·hard", "y")
    )
    distil = (
        ld.Diagram()
        .space("N", data=data)
        .space("X")
        .space("L")
        .space("Y", loss=ld.losses.cross_entropy)
        .space("G", loss=ld.losses.KLDivergence(temperature=2.0))
        .map("x", "N", "X", lambda b: b[0])
        .map("y", "N", "Y", lambda b: b[1])
        .map("teacher", "X", "L", teacher, trainable=False)
        .map("student", "X", "L", student)
        .map("hard", "L", "Y", nn.Identity())
        .map("soft", "L", "G", nn.Identity())
        .relate("x·student·hard", "y", weight=0.75)
        .relate("x·student·soft", "x·teacher·soft", weight=0.25)
    )
    return [ld.Stage(teach, epochs=epochs, name="teacher"), ld.Stage(distil, epochs=epochs, name="distil", lr=5e-3)]


def _run(folder: Path, epochs: int) -> None:
    """Train (or resume) the regime in ``folder``; mark checkpoint writes in ``folder/phase``."""
    import torch

    import learning_diagrams as ld
    from learning_diagrams.training import trainer
    from learning_diagrams.training.checkpoint import latest_checkpoint

    torch.set_num_threads(1)  # the same arithmetic in every process
    with open(folder / "phase", "r+b") as f:
        phase = mmap.mmap(f.fileno(), 1)
    save = trainer.save_checkpoint

    def marked(*args: Any, **kwargs: Any) -> Any:
        phase[0] = 1
        try:
            return save(*args, **kwargs)
        finally:
            phase[0] = 0

    trainer.save_checkpoint = marked  # type: ignore[assignment]
    ckpt = folder / "ckpt"
    resume = ckpt if latest_checkpoint(ckpt) is not None else None
    ld.fit(
        _regime(epochs),
        seed=3,
        checkpoint_dir=ckpt,
        checkpoint_every=1,
        keep=3,
        log_dir=folder / "logs",
        resume=resume,
        progress=False,
        plot=False,
        scheduler=lambda o: torch.optim.lr_scheduler.StepLR(o, 1, gamma=0.9),
    )


def serve() -> None:
    """Read ``folder<TAB>epochs`` lines from stdin; fork a run for each; print ``pid N`` then ``exit N STATUS``."""
    import importlib

    # Imported once, before any fork (nothing is computed here, so forking is safe): what a run
    # would import on its way, torch.use_deterministic_algorithms's inductor config included.
    for name in ("torch", "torch._inductor.config", "safetensors.torch", "learning_diagrams.training"):
        importlib.import_module(name)
    with contextlib.suppress(ImportError):  # TensorBoard is optional
        importlib.import_module("torch.utils.tensorboard")

    for line in sys.stdin:
        name, epochs = line.rstrip("\n").split("\t")
        folder = Path(name)
        pid = os.fork()
        if pid == 0:
            try:
                _run(folder, int(epochs))
                os._exit(0)
            except BaseException:
                (folder / "error.txt").write_text(traceback.format_exc())
                os._exit(1)
        print(f"pid {pid}", flush=True)
        _, status = os.waitpid(pid, 0)
        print(f"exit {pid} {status}", flush=True)


# ---------------------------------------------------------------------------- the parent


class Server:
    """A ``serve()`` process: forks runs on request."""

    def __init__(self, epochs: int = EPOCHS) -> None:
        self.epochs = epochs
        self.process = subprocess.Popen(
            [sys.executable, __file__, "serve"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        assert self.process.stdin is not None and self.process.stdout is not None
        self.stdin: IO[str] = self.process.stdin
        self.stdout: IO[str] = self.process.stdout

    def start(self, folder: Path) -> int:
        self.stdin.write(f"{folder}\t{self.epochs}\n")
        self.stdin.flush()
        word, pid = self.stdout.readline().split()
        assert word == "pid", word
        return int(pid)

    def wait(self, pid: int) -> int:
        word, done, status = self.stdout.readline().split()
        assert (word, int(done)) == ("exit", pid), (word, done)
        return int(status)

    def close(self) -> None:
        self.stdin.close()
        self.process.wait(timeout=60)
        self.stdout.close()


def _fresh(folder: Path) -> None:
    folder.mkdir(parents=True)
    (folder / "phase").write_bytes(b"\0")


def run_whole(server: Server, folder: Path) -> float:
    """An unbroken run in ``folder``; returns the duration of a run in seconds (of a second, warm one)."""
    durations = []
    for attempt in (folder.with_name(folder.name + "-warm-up"), folder):
        _fresh(attempt)
        start = time.perf_counter()
        status = server.wait(server.start(attempt))
        if status:
            raise RuntimeError(f"the unbroken run failed:\n{(attempt / 'error.txt').read_text()}")
        durations.append(time.perf_counter() - start)
    return durations[-1]


def run_killed(server: Server, folder: Path, kills: int, duration: float, rng: random.Random) -> dict[str, int]:
    """Run in ``folder``, SIGKILLing it ``kills`` times, then let it finish. Counts the kinds of kills."""
    _fresh(folder)
    counts = {"kills": 0, "during a checkpoint write": 0}
    with open(folder / "phase", "r+b") as f, mmap.mmap(f.fileno(), 1) as phase:
        finished = _kill(server, folder, phase, kills, duration, rng, counts)
    if not finished:
        status = server.wait(server.start(folder))
        if status:
            raise RuntimeError(f"the last run failed:\n{(folder / 'error.txt').read_text()}")
    return counts


def _kill(
    server: Server, folder: Path, phase: mmap.mmap, kills: int, duration: float, rng: random.Random, counts: dict
) -> bool:
    """Start and SIGKILL runs in ``folder`` ``kills`` times; True if one finished before its kill."""
    for _ in range(kills):
        pid = server.start(folder)
        if rng.random() < 0.5:  # wait for a checkpoint write, then kill somewhere inside it
            deadline = time.perf_counter() + duration
            while phase[0] == 0 and time.perf_counter() < deadline:
                pass
            time.sleep(rng.uniform(0, 0.003))
        else:
            time.sleep(rng.uniform(0, 0.9 * duration))
        writing = phase[0] == 1
        with contextlib.suppress(ProcessLookupError):  # it finished first, and was reaped
            os.kill(pid, signal.SIGKILL)
        status = server.wait(pid)
        if os.WIFSIGNALED(status):
            counts["kills"] += 1
            counts["during a checkpoint write"] += writing
        phase[0] = 0
        if os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0:
            return True  # it finished before the kill
        if os.WIFEXITED(status):
            raise RuntimeError(f"a run failed:\n{(folder / 'error.txt').read_text()}")
    return False


def differences(whole: Path, cut: Path) -> list[str]:
    """What differs between two finished runs' final checkpoints and logs (empty: bit-exact)."""
    import torch
    from safetensors.torch import load_file

    from learning_diagrams.training import checkpoint
    from learning_diagrams.training.checkpoint import latest_checkpoint

    found = []
    a, b = latest_checkpoint(whole / "ckpt"), latest_checkpoint(cut / "ckpt")
    if a is None or b is None or a.name != b.name:
        return [f"final checkpoints {a} and {b}"]
    if not _same(load_file(a / "model.safetensors"), load_file(b / "model.safetensors")):
        found.append("weights")
    sa = torch.load(a / "state.pt", weights_only=True)
    sb = torch.load(b / "state.pt", weights_only=True)
    checksum = getattr(checkpoint, "CHECKSUM_KEY", None)  # of the file's bytes, compared above tensor by tensor
    for s in (sa, sb):
        s.pop(checksum, None)
    if not _same(sa, sb):
        found.append("state (optimisers, schedulers, RNG, data order)")
    for name in ("log.jsonl", "log.csv"):
        if (whole / "logs" / name).read_bytes() != (cut / "logs" / name).read_bytes():
            found.append(name)
    return found


def _same(a: Any, b: Any) -> bool:
    import torch

    if type(a) is not type(b):
        return False
    if isinstance(a, torch.Tensor):  # bit for bit: NaN equals NaN, -0.0 differs from 0.0
        same_kind = a.dtype == b.dtype and a.shape == b.shape
        return same_kind and _bytes(a).equal(_bytes(b))
    if isinstance(a, dict):
        return list(a) == list(b) and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return bool(a == b)


def _bytes(t: Any) -> Any:
    import torch

    return t.detach().cpu().reshape(-1).contiguous().view(torch.uint8)


def trials(
    n: int, kills: int, seed: int, root: Path, *, epochs: int = EPOCHS, echo: Any = print
) -> tuple[int, list[dict[str, Any]]]:
    """Run ``n`` trials under ``root``; returns how many were bit-exact, and each trial's report."""
    rng = random.Random(seed)
    server = Server(epochs)
    try:
        duration = run_whole(server, root / "whole")
        reports = []
        for i in range(n):
            folder = root / f"trial-{i:02d}"
            counts = run_killed(server, folder, kills, duration, rng)
            diff = differences(root / "whole", folder)
            reports.append({**counts, "differences": diff})
            echo(
                f"trial {i + 1:2d}: {counts['kills']} kills ({counts['during a checkpoint write']} during a "
                f"checkpoint write): {'bit-exact' if not diff else 'differs in ' + ', '.join(diff)}"
            )
            shutil.rmtree(folder)
    finally:
        server.close()
    return sum(not r["differences"] for r in reports), reports


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--kills", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=EPOCHS, help="epochs of each of the two stages (5 steps each)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as root:
        start = time.perf_counter()
        exact, reports = trials(args.trials, args.kills, args.seed, Path(root), epochs=args.epochs)
        kills = sum(r["kills"] for r in reports)
        writing = sum(r["during a checkpoint write"] for r in reports)
        print(
            f"{exact}/{args.trials} bit-exact ({kills} kills, {writing} during a checkpoint write; "
            f"{10 * args.epochs} steps a run; {time.perf_counter() - start:.1f} s)"
        )


if __name__ == "__main__":
    if sys.argv[1:] == ["serve"]:
        serve()
    else:
        main()
