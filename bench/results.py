"""Run every benchmark and write what each printed to ``bench/RESULTS.md``.

Each benchmark measures the library side by side with its counterpart in one run (hand-written
PyTorch, ``torch.optim``, networkx, the same run before a kill ...) and prints its own ratios and
machine line; this script runs them one after the other, each in its own process, and collects
their output under one heading each, with the date and the commands. A benchmark that fails is
reported as failed (its output kept) and makes the exit status 1: the file never pretends.

Run: ``.venv/bin/python bench/results.py [--quick] [--only NAME ...] [--out bench/RESULTS.md]``
(``make bench`` runs it in full; ``--quick`` runs each benchmark's own quick mode).
"""

from __future__ import annotations

import argparse
import datetime
import platform
import subprocess
import sys
import time
from pathlib import Path

import torch

from learning_diagrams.io.atomic import write_atomic

BENCH = Path(__file__).resolve().parent

#: name → (what it measures, arguments in full, arguments in quick mode).
BENCHMARKS: dict[str, tuple[str, list[str], list[str]]] = {
    "compiled_loss": ("a compiled loss's training step against the same loss written by hand", [], ["--quick"]),
    "fusion": (
        "parallel maps run as one (compile(fuse=True)): 50 heads and an ensemble of 8 students, against the hand loop",
        [],
        ["--quick"],
    ),
    "fewshot": (
        "600 few-shot episode heads fitted as one glued, fused diagram against the per-episode loop and scikit-learn",
        [],
        ["--quick"],
    ),
    "fit": ("ld.fit over an epoch against the same hand-written loop", ["--compile"], ["--quick"]),
    "cache": ("10 epochs of distillation from a frozen teacher: ld.fit's cache against the hand loop", [], ["--quick"]),
    "memory": ("a step's peak memory against the hand-written step", [], ["--quick"]),
    "scaling": ("compiling diagrams of 1,001 to 100,001 edges: time and memory, log-log slope", [], ["--quick"]),
    "jax_step": (
        "a jitted diagram step on JAX against the same step written by hand, and against PyTorch",
        [],
        ["--quick"],
    ),
    "lenses": ("lens learners and optimisers against torch and torch.optim", [], ["--quick"]),
    "homsearch": ("homomorphism search against networkx's VF2 matcher", [], ["--vertices", "30", "--edges", "90"]),
    "soak": ("resident memory over a long run", [], ["--steps", "2000", "--every", "500"]),
    "crash": ("runs killed at random moments, resumed, compared bit for bit", [], ["--trials", "3"]),
    "fuzz": (
        "fuzzed texts and files: escapes and worst time per KB",
        ["--bombs"],
        ["--parser", "500", "--loader", "200"],
    ),
}


def machine() -> str:
    return (
        f"{platform.machine()} {platform.processor() or platform.system()}, "
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, Python {platform.python_version()}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="each benchmark's quick mode")
    parser.add_argument("--only", nargs="+", choices=list(BENCHMARKS), help="run these only")
    parser.add_argument("--out", type=Path, default=BENCH / "RESULTS.md")
    args = parser.parse_args(argv)
    chosen = args.only or list(BENCHMARKS)
    sections, failed = [], []
    for name in chosen:
        what, full, quick = BENCHMARKS[name]
        command = [sys.executable, str(BENCH / f"{name}.py"), *(quick if args.quick else full)]
        shown = " ".join(["python", f"bench/{name}.py", *command[2:]])
        print(f"== {name}: {shown}", flush=True)
        start = time.perf_counter()
        result = subprocess.run(command, capture_output=True, text=True)
        seconds = time.perf_counter() - start
        output = (result.stdout + result.stderr).strip()
        print(output, flush=True)
        status = "" if result.returncode == 0 else f" — **failed** (exit status {result.returncode})"
        if result.returncode:
            failed.append(name)
        sections.append(f"## {name}{status}\n\n{what}. `{shown}` ({seconds:.0f} s):\n\n```\n{output}\n```\n")
    header = (
        f"# Benchmark results\n\nWritten by `bench/results.py{' --quick' if args.quick else ''}` "
        f"(`make bench`) on {datetime.date.today().isoformat()}, {machine()}. Every ratio is ours "
        f"divided by the counterpart, measured side by side in one run.\n\n"
    )
    write_atomic(args.out, (header + "\n".join(sections)).encode())  # never a half-written file
    print(f"wrote {args.out}" + (f"; failed: {', '.join(failed)}" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
