"""Hypothesis strategies shared by the tests: random multigraphs with cycles,
parallel edges and self-loops."""

from __future__ import annotations

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
