"""Homomorphism search against networkx's VF2 matcher, side by side on the same graphs.

networkx only finds injective matches, so the comparison is on monic search:
the number of monomorphisms of a path pattern into random directed graphs
(``DiGraphMatcher.subgraph_monomorphisms_iter``, simple graphs so that both
count the same thing), then the same search through ``ld.homomorphisms(...,
monic=True)``. Both counts must agree; the script prints each time and the ratio.

Run: ``.venv/bin/python bench/homsearch.py [--vertices 60] [--edges 180] [--pattern 4]``.
"""

from __future__ import annotations

import argparse
import random
import time

import networkx as nx
from networkx.algorithms.isomorphism import DiGraphMatcher

import learning_diagrams as ld


def random_digraph(n: int, m: int, seed: int) -> nx.DiGraph:
    rng = random.Random(seed)
    g = nx.DiGraph()
    g.add_nodes_from(range(n))
    while g.number_of_edges() < m:
        u, v = rng.randrange(n), rng.randrange(n)
        if u != v:
            g.add_edge(u, v)
    return g


def as_diagram(g: nx.DiGraph) -> ld.Diagram:
    d = ld.Diagram()
    for v in g.nodes:
        d.space(f"v{v}")
    for i, (u, v) in enumerate(g.edges):
        d.map(f"e{i}", f"v{u}", f"v{v}", None)
    return d


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vertices", type=int, default=60)
    parser.add_argument("--edges", type=int, default=180)
    parser.add_argument("--pattern", type=int, default=4, help="vertices of the path pattern")
    parser.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args()
    pattern = nx.DiGraph([(i, i + 1) for i in range(args.pattern - 1)])
    print(f"{'seed':>4} {'matches':>8} {'ours (s)':>9} {'networkx (s)':>12} {'ratio':>6}")
    for seed in range(args.seeds):
        g = random_digraph(args.vertices, args.edges, seed)
        start = time.perf_counter()
        theirs = sum(1 for _ in DiGraphMatcher(g, pattern).subgraph_monomorphisms_iter())
        t_nx = time.perf_counter() - start
        target, pat = as_diagram(g), as_diagram(pattern)
        start = time.perf_counter()
        ours = len(ld.homomorphisms(pat, target, monic=True))
        t_ours = time.perf_counter() - start
        assert ours == theirs, (ours, theirs)
        print(f"{seed:>4} {ours:>8} {t_ours:>9.3f} {t_nx:>12.3f} {t_ours / t_nx:>6.2f}")


if __name__ == "__main__":
    main()
