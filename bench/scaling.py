"""Compiling large diagrams: time and memory against the number of edges, and the log-log slope.

Two shapes whose paths grow linearly with their size, each with one data vertex ``N`` and
one relation per head, at default settings (the explosion guard as it ships):

* backbone: ``N →x→ X →h_i→ Y_i``, labels ``N →y_i→ Y_i``, ``x·h_i ≤ y_i``: 2·heads + 1 edges;
* separate: ``N →x_i→ X_i →h_i→ Y_i``, labels ``N →y_i→ Y_i``, ``x_i·h_i ≤ y_i``: 3·heads edges.

For each size, in a fresh process (so that its peak resident set is its own), it times
``d.parallel_pairs()`` and ``d.compiled_pairs()`` (the best of a few runs on small sizes),
records the peak RSS of the pure-Python part and the peak that ``tracemalloc`` sees while
the pairs are derived (a separate, traced run), then imports torch and the library's PyTorch
back end (a cost a process pays once, whatever the diagram) and times ``d.compile()`` once, with
its peak RSS. The slope is the least-squares fit of ``log(time)`` against
``log(edges)`` over the sizes: 1 is linear, 2 quadratic.

Run: ``.venv/bin/python bench/scaling.py [--quick] [--shapes backbone separate] [--max-paths N]``.
``--quick`` (a few seconds) runs 1,001 to 5,001 edges in this process, without compile or RSS.
``--max-paths`` passes a guard to ``Diagram`` (to measure a version whose default guard trips).
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import subprocess
import sys
import time
import tracemalloc
from typing import Any, Callable

import learning_diagrams as ld

#: Edge counts of the backbone shape (the separate shape rounds each to a multiple of 3).
SIZES = [1_001, 2_001, 5_001, 10_001, 20_001, 50_001, 100_001]
QUICK_SIZES = [1_001, 2_001, 5_001]


def backbone(edges: int, **options: Any) -> ld.Diagram:
    """One backbone edge ``x`` shared by ``(edges - 1) // 2`` heads, each with its label and relation."""
    d = ld.Diagram(**options).space("N", indexing=True).space("X").map("x", "N", "X", abs)
    for i in range((edges - 1) // 2):
        d.space(f"Y{i}", loss=ld.losses.mse).map(f"h{i}", "X", f"Y{i}", abs).map(f"y{i}", "N", f"Y{i}", abs)
        d.relate(f"x·h{i}", f"y{i}")
    return d


def separate(edges: int, **options: Any) -> ld.Diagram:
    """``round(edges / 3)`` heads, each with its own input edge, label and relation."""
    d = ld.Diagram(**options).space("N", indexing=True)
    for i in range(max(1, round(edges / 3))):
        d.space(f"X{i}").space(f"Y{i}", loss=ld.losses.mse)
        d.map(f"x{i}", "N", f"X{i}", abs).map(f"h{i}", f"X{i}", f"Y{i}", abs).map(f"y{i}", "N", f"Y{i}", abs)
        d.relate(f"x{i}·h{i}", f"y{i}")
    return d


SHAPES: dict[str, Callable[..., ld.Diagram]] = {"backbone": backbone, "separate": separate}


def peak_rss_mb() -> float:
    """This process's peak resident set size so far, in MB."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10


def best_of(fn: Callable[[], Any], seconds: float) -> tuple[float, Any]:
    """The shortest of repeated runs of ``fn`` within about ``seconds`` (at least one), and its result."""
    times, result, spent = [], None, 0.0
    while not times or spent < seconds and len(times) < 5:
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
        spent += times[-1]
    return min(times), result


def measure(shape: str, edges: int, options: dict[str, Any], *, compile_too: bool, rss: bool) -> dict[str, Any]:
    """Every figure of one point: the diagram's size, times in seconds, memory in MB."""
    start = time.perf_counter()
    d = SHAPES[shape](edges, **options)
    row: dict[str, Any] = {"shape": shape, "edges": len(d.graph.edges), "build": time.perf_counter() - start}
    row["rss_built"] = peak_rss_mb() if rss else None
    row["pairs"], pairs = best_of(d.parallel_pairs, 1.0)
    row["compiled_pairs"], _ = best_of(d.compiled_pairs, 1.0)
    row["n_pairs"], row["n_paths"] = len(pairs), len(d.paths())
    row["rss_pairs"] = peak_rss_mb() if rss else None
    tracemalloc.start()
    d.parallel_pairs()
    row["traced_peak"] = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    row["compile"] = row["rss_compile"] = None
    if compile_too:
        import torch

        import learning_diagrams.torch  # noqa: F401  (the back end's import, once a process, is not compile's cost)

        data = {"N": torch.zeros(4, 1)}
        start = time.perf_counter()
        d.compile(data=data)
        row["compile"] = time.perf_counter() - start
        row["rss_compile"] = peak_rss_mb() if rss else None
    return row


def slope(points: list[tuple[float, float]]) -> float | None:
    """The least-squares slope of ``log y`` against ``log x``, or None with fewer than two points."""
    logs = [(math.log(x), math.log(y)) for x, y in points if x > 0 and y and y > 0]
    if len(logs) < 2:
        return None
    mx, my = sum(a for a, _ in logs) / len(logs), sum(b for _, b in logs) / len(logs)
    var = sum((a - mx) ** 2 for a, _ in logs)
    return sum((a - mx) * (b - my) for a, b in logs) / var if var else None


def show(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


COLUMNS = [
    ("pairs", "parallel_pairs s", 3),
    ("compiled_pairs", "compiled_pairs s", 3),
    ("compile", "compile() s", 3),
    ("traced_peak", "traced peak MB", 1),
    ("rss_pairs", "peak RSS MB", 1),
    ("rss_compile", "RSS compile MB", 1),
]


def report(rows: list[dict[str, Any]]) -> None:
    head = f"{'shape':<9} {'edges':>8} {'paths':>8} {'pairs':>7} {'build s':>8} " + " ".join(
        f"{title:>{max(len(title), 8)}}" for _, title, _ in COLUMNS
    )
    print(head)
    for r in rows:
        cells = " ".join(f"{show(r[key], d):>{max(len(title), 8)}}" for key, title, d in COLUMNS)
        print(f"{r['shape']:<9} {r['edges']:>8,} {r['n_paths']:>8,} {r['n_pairs']:>7,} {r['build']:>8.3f} {cells}")
    for shape in dict.fromkeys(r["shape"] for r in rows):
        mine = [r for r in rows if r["shape"] == shape]
        fits = [f"{key} {show(slope([(r['edges'], r[key]) for r in mine]), 2)}" for key, _, _ in COLUMNS]
        print(f"log-log slope against edges, {shape}: " + ", ".join(fits))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1,001 to 5,001 edges, in this process: a few seconds")
    parser.add_argument("--shapes", nargs="+", choices=list(SHAPES), default=list(SHAPES))
    parser.add_argument("--sizes", nargs="+", type=int, help="edge counts (default: 1,001 to 100,001)")
    parser.add_argument("--max-paths", type=int, help="the Diagram's max_paths (default: the library's)")
    parser.add_argument("--no-compile", action="store_true", help="skip d.compile() (and torch)")
    parser.add_argument("--point", nargs=2, metavar=("SHAPE", "EDGES"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    options = {} if args.max_paths is None else {"max_paths": args.max_paths}
    if args.point:  # one point, in a process of its own, as JSON for the parent
        shape, edges = args.point[0], int(args.point[1])
        print(json.dumps(measure(shape, edges, options, compile_too=not args.no_compile, rss=True)))
        return 0
    sizes = args.sizes or (QUICK_SIZES if args.quick else SIZES)
    print(
        f"Python {sys.version.split()[0]}, learning-diagrams {ld.__version__}; "
        f"{'default guard' if args.max_paths is None else f'max_paths={args.max_paths}'}; times are the best "
        f"of up to 5 runs within 1 s (compile: one run); traced peak: tracemalloc during parallel_pairs"
    )
    rows = []
    for shape in args.shapes:
        for edges in sizes:
            if args.quick:
                rows.append(measure(shape, edges, options, compile_too=False, rss=False))
                continue
            command = [sys.executable, __file__, "--point", shape, str(edges)]
            command += ["--no-compile"] if args.no_compile else []
            command += [] if args.max_paths is None else ["--max-paths", str(args.max_paths)]
            done = subprocess.run(command, capture_output=True, text=True)
            if done.returncode:
                print(done.stdout + done.stderr, file=sys.stderr)
                return 1
            rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
    report(rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
