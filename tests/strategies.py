"""Hypothesis strategies shared by the tests: random multigraphs with cycles,
parallel edges and self-loops."""

from __future__ import annotations

from itertools import product

from hypothesis import strategies as st

from learning_diagrams.core.graph import Graph, Path


@st.composite
def graphs(draw, max_vertices: int = 4, max_edges: int = 6) -> Graph:
    n = draw(st.integers(1, max_vertices))
    vertices = [f"V{i}" for i in range(n)]
    ends = draw(st.lists(st.tuples(st.sampled_from(vertices), st.sampled_from(vertices)), max_size=max_edges))
    g = Graph()
    for v in vertices:
        g.add_vertex(v)
    for i, (s, t) in enumerate(ends):
        g.add_edge(f"e{i}", s, t)
    return g


def dfs_paths(graph: Graph, max_length: int | None = None) -> dict[tuple[str, str], set[Path]]:
    """The oracle: every path that uses no edge twice, by depth-first search."""
    found: dict[tuple[str, str], set[Path]] = {}

    def visit(path: Path) -> None:
        found.setdefault((path.source, path.target), set()).add(path)
        if max_length is not None and len(path) >= max_length:
            return
        for e in graph.out_edges(path.target):
            if e not in path.edges:
                visit(Path(path.source, graph.tgt(e), path.edges + (e,)))

    for v in graph.vertices:
        visit(Path.id(v))
    return found


def brute_force_walks(graph: Graph, max_length: int, *, simple: bool = False) -> dict[tuple[str, str], set[Path]]:
    """The oracle for walks: every sequence of at most ``max_length`` edges whose ends meet, tried one by one.

    With ``simple=True``, only those that use no edge twice.
    """
    found: dict[tuple[str, str], set[Path]] = {}
    for v in graph.vertices:
        found.setdefault((v, v), set()).add(Path.id(v))
    for length in range(1, max_length + 1):
        for edges in product(graph.edges, repeat=length):
            if simple and len(set(edges)) < length:
                continue
            if all(graph.tgt(e) == graph.src(f) for e, f in zip(edges, edges[1:])):
                s, t = graph.src(edges[0]), graph.tgt(edges[-1])
                found.setdefault((s, t), set()).add(Path(s, t, edges))
    return found
