"""Drawing diagrams: every name in the SVG, pairs coloured pair by pair, files, missing Graphviz."""

from __future__ import annotations

import os
import re
import shutil
import xml.etree.ElementTree as ET

import graphviz
import pytest
import torch
from torch import nn

import learning_diagrams as ld
from learning_diagrams.io import drawing as draw_module
from learning_diagrams.core.errors import GraphvizNotFoundError, UnsupportedFormatError
from learning_diagrams.io.drawing import draw, repr_svg, to_graphviz

needs_dot = pytest.mark.skipif(
    shutil.which("dot") is None,
    reason="Graphviz's dot program is not installed (apt-get install graphviz, brew install graphviz, "
    "or conda install -c conda-forge graphviz)",
)

SVG = "{http://www.w3.org/2000/svg}"


class DeepNN(nn.Linear):
    pass


class LightNN(nn.Linear):
    pass


def distillation(relate: bool = True) -> ld.Diagram:
    """The paper's Figure 1: two pairs, sharing the edges x and student."""
    d = (
        ld.Diagram()
        .space("N", data=[(torch.randn(8, 4), torch.randint(3, (8,)))])
        .space("X")
        .space("L")
        .space("Y", loss=ld.losses.cross_entropy)
        .space("G", loss=ld.losses.KLDivergence(temperature=2.0))
        .map("x", "N", "X", lambda b: b[0])
        .map("y", "N", "Y", lambda b: b[1])
        .map("teacher", "X", "L", DeepNN(4, 3), trainable=False)
        .map("student", "X", "L", LightNN(4, 3))
        .map("hard", "L", "Y", nn.Identity())
        .map("soft", "L", "G", nn.Identity())
    )
    if relate:
        d.relate("x·student·hard", "y", weight=0.75).relate("x·student·soft", "x·teacher·soft", weight=0.25)
    return d


def svg_texts(svg: str) -> list[str]:
    root = ET.fromstring(svg.encode("utf-8"))
    assert root.tag == f"{SVG}svg"
    return [t.text.strip() for t in root.iter(f"{SVG}text") if t.text and t.text.strip()]


def edge_attrs(graph: graphviz.Digraph) -> dict[str, dict[str, str]]:
    """Each edge's DOT attributes, keyed by edge name (read back from its tooltip)."""
    found = {}
    for line in graph.body:
        if "->" not in line:
            continue
        attrs = dict(re.findall(r'(\w+)=("(?:[^"\\]|\\.)*"|\S+?)(?=[ \]])', line))
        attrs = {k: v.strip('"') for k, v in attrs.items()}
        found[attrs["tooltip"].split(":")[0]] = attrs
    return found


def assert_names_everything(svg: str, d: ld.Diagram) -> None:
    texts = svg_texts(svg)
    for vertex in d.spaces:
        assert vertex in texts, f"vertex {vertex!r} not among the SVG's texts {texts}"
    for edge in d.maps:
        assert any(t == edge or t.startswith(f"{edge}:") for t in texts), f"edge {edge!r} not in {texts}"


# -- what the drawing says ----------------------------------------------------------


@needs_dot
def test_svg_is_valid_and_names_every_vertex_and_edge():
    d = distillation()
    svg = draw(d)
    assert isinstance(svg, str) and svg.lstrip().startswith("<?xml")
    assert_names_everything(svg, d)
    texts = svg_texts(svg)
    assert "student: LightNN" in texts and "teacher: DeepNN" in texts
    assert "(cross_entropy)" in texts and "(kl_div(T=2.0))" in texts  # losses under their vertex
    assert "x·student·hard ≤ y" in texts and "x·student·soft ≤ x·teacher·soft" in texts  # the legend
    assert "weight 0.75" in texts and "weight 0.25" in texts


@needs_dot
def test_awkward_names_are_escaped():
    odd = ld.losses.Loss(lambda a, b: (a - b).abs().mean(), symmetric=True, name='say "hi" \\ <b>')
    d = (
        ld.Diagram()
        .space("node", data=[0])
        .space("Ω")
        .space("graph", loss=odd)
        .map("edge", "node", "Ω", None)
        .map("strict", "Ω", "graph", None)
        .map("subgraph", "node", "graph", None)
    )
    svg = draw(d, title='a <title> & "quotes"')
    assert_names_everything(svg, d)
    texts = svg_texts(svg)
    assert '(say "hi" \\ <b>)' in texts
    assert 'a <title> & "quotes"' in texts


def test_pairs_get_their_own_colours_and_shared_edges_all_of_them():
    d = distillation()
    edges = edge_attrs(to_graphviz(d))
    red, blue = edges["y"]["color"], edges["teacher"]["color"]
    assert red != blue
    assert red == edges["hard"]["color"] and blue == edges["soft"]["color"]
    for shared in ("x", "student"):
        assert set(edges[shared]["color"].split(":")) == {red, blue}
        assert edges[shared]["fontcolor"] == draw_module.SHARED
    for name in d.maps:
        assert edges[name]["penwidth"] == "2"  # every edge of this diagram lies on a pair
    legend = to_graphviz(d).graph_attr["label"]
    assert f'<FONT COLOR="{red}">x·student·hard ≤ y</FONT>' in legend
    assert f'<FONT COLOR="{blue}">x·student·soft ≤ x·teacher·soft</FONT>' in legend


def test_edges_say_what_they_compute():
    net, head = nn.Linear(4, 4), nn.Linear(4, 1)
    d = ld.parse(
        """
    N ⇒ [ds]
    X ⇒ Any
    Y ⇒ {Tensor, mse}
    f: N → X ⇒ (a, b) → net(a)
    g: X → Y ⇒ head
    h: N → Y ⇒ (a, b) → b
    k: N → Y ⇒ (a, b) → net(net(net(net(net(net(net(a)))))))
    f · g ≤ h
    """,
        env={"ds": [(torch.ones(2, 4), torch.ones(2, 1))], "net": net, "head": head},
    )
    d.map("named", "N", "X", sorted).map("anonymous", "N", "X", lambda b: b).map("none", "N", "X", None)
    labels = {name: a["label"] for name, a in edge_attrs(to_graphviz(d)).items()}
    assert labels["f"] == "f: (a, b) → net(a)"
    assert labels["g"] == "g: Linear"
    assert labels["k"].startswith("k: (a, b) → net(net(") and labels["k"].endswith("…")
    assert (labels["named"], labels["anonymous"], labels["none"]) == ("named: sorted", "anonymous", "none")


def test_three_pairs_take_the_palette_in_order():
    d = ld.Diagram().space("N", data=[0]).space("Z")
    d.map("enc", "N", "Z", nn.Linear(2, 2))
    for i in range(3):
        d.space(f"Y{i}", loss=ld.losses.mse).map(f"head{i}", "Z", f"Y{i}", None).map(f"y{i}", "N", f"Y{i}", None)
        d.relate(f"enc·head{i}", f"y{i}")
    edges = edge_attrs(to_graphviz(d))
    assert [edges[f"y{i}"]["color"] for i in range(3)] == list(draw_module.PALETTE[:3])
    assert edges["enc"]["color"] == ":".join(draw_module.PALETTE[:3])


def test_frozen_and_eval_maps_are_marked():
    d = distillation().map("probe", "L", "X", nn.Linear(3, 4), trainable=False)
    d.maps["soft"].training = False
    edges = edge_attrs(to_graphviz(d))
    assert edges["teacher"]["style"] == "dashed" and "(frozen)" in edges["teacher"]["label"]
    assert "style" not in edges["student"] and "(frozen)" not in edges["student"]["label"]
    assert "(eval)" in edges["soft"]["label"] and "style" not in edges["soft"]
    # a frozen map on no pair is grey; one on a pair keeps its pair's colour
    assert edges["probe"]["color"] == draw_module.FROZEN and edges["probe"]["style"] == "dashed"
    assert edges["teacher"]["color"] != draw_module.FROZEN


def test_vertices_show_data_and_losses():
    source = to_graphviz(distillation()).source
    assert re.search(r"\tN \[.*shape=cylinder", source)
    assert re.search(r'\tY \[label="Y\\n\(cross_entropy\)" peripheries=2', source)
    assert re.search(r"\tX \[label=X shape=ellipse", source)
    assert "peripheries" not in re.search(r"\tX \[.*", source).group(0)


def test_no_pairs_draws_the_structure_only():
    g = to_graphviz(distillation(), pairs=False)
    edges = edge_attrs(g)
    assert all("penwidth" not in a for a in edges.values())
    assert "label" not in g.graph_attr
    assert edges["teacher"]["color"] == draw_module.FROZEN


def test_output_is_deterministic_and_in_declaration_order():
    first, second = to_graphviz(distillation()).source, to_graphviz(distillation()).source
    assert first == second
    body = [line.split(" [")[0].strip() for line in to_graphviz(distillation()).body if " [" in line]
    assert body == ["N", "X", "L", "Y", "G", "N -> X", "N -> Y", "X -> L", "X -> L", "L -> Y", "L -> G"]


def test_a_diagram_that_does_not_compile_is_drawn_with_the_reason():
    d = distillation(relate=False)  # asymmetric losses with no orientation
    with pytest.raises(ld.errors.OrientationError):
        d.parallel_pairs()
    g = to_graphviz(d)
    assert all("penwidth" not in a for a in edge_attrs(g).values())
    assert "does not compile" in g.graph_attr["label"] and "OrientationError" in g.graph_attr["label"]
    no_data = ld.Diagram().space("A").space("B", loss=ld.losses.mse).map("f", "A", "B", None)
    assert "NoIndexingVertexError" in to_graphviz(no_data).graph_attr["label"]


@needs_dot
def test_a_diagram_that_does_not_compile_renders():
    d = distillation(relate=False)
    svg = draw(d)
    assert_names_everything(svg, d)
    assert any("OrientationError" in t for t in svg_texts(svg))


# -- files ----------------------------------------------------------------------------


@needs_dot
def test_png_and_pdf_files(tmp_path):
    d = distillation()
    png = draw(d, tmp_path / "kd.png")
    assert png == tmp_path / "kd.png"
    assert png.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    pdf = draw(d, str(tmp_path / "kd.out"), format="pdf")
    assert pdf.read_bytes().startswith(b"%PDF-")
    svg = draw(d, tmp_path / "kd.SVG")
    assert_names_everything(svg.read_text(encoding="utf-8"), d)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["kd.SVG", "kd.out", "kd.png"]  # no temporary files


def test_dot_files_need_no_dot_program(tmp_path, monkeypatch):
    monkeypatch.setattr(draw_module.shutil, "which", lambda name: None)
    monkeypatch.setenv("PATH", str(tmp_path / "nowhere"))
    d = distillation()
    for name in ("kd.dot", "kd.gv"):
        written = draw(d, tmp_path / name)
        assert written.read_text(encoding="utf-8") == to_graphviz(d).source
    assert draw(d, format="dot") == to_graphviz(d).source
    with pytest.raises(GraphvizNotFoundError):
        draw(d, tmp_path / "kd.svg")
    assert not (tmp_path / "kd.svg").exists()


def test_missing_dot_says_how_to_install_it(tmp_path, monkeypatch):
    def missing(*args, **kwargs):
        raise graphviz.ExecutableNotFound(["dot"])

    monkeypatch.setattr(draw_module.shutil, "which", lambda name: "/usr/bin/dot")
    monkeypatch.setattr(graphviz.Digraph, "pipe", missing)
    (tmp_path / "kd.svg").write_text("old")
    with pytest.raises(GraphvizNotFoundError) as info:
        draw(distillation(), tmp_path / "kd.svg")
    err = info.value
    assert isinstance(err, ld.DiagramError) and isinstance(err, RuntimeError)
    assert isinstance(err.__cause__, graphviz.ExecutableNotFound)
    message = str(err)
    for hint in ("apt-get install graphviz", "brew install graphviz", "conda install -c conda-forge graphviz", ".dot"):
        assert hint in message
    assert (tmp_path / "kd.svg").read_text() == "old"  # nothing half written
    assert [p.name for p in tmp_path.iterdir()] == ["kd.svg"]


def test_failed_write_keeps_the_old_file(tmp_path, monkeypatch):
    target = tmp_path / "kd.dot"
    target.write_text("old")

    def broken(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(draw_module.os, "replace", broken)
    with pytest.raises(OSError, match="disk full"):
        draw(distillation(), target)
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["kd.dot"]


def test_writing_replaces_an_existing_file_with_usual_permissions(tmp_path):
    target = tmp_path / "kd.dot"
    target.write_text("old")
    draw(distillation(), target)
    assert target.read_text(encoding="utf-8").startswith("digraph")
    umask = os.umask(0)
    os.umask(umask)
    assert target.stat().st_mode & 0o777 == 0o666 & ~umask


def test_unknown_formats_are_refused(tmp_path):
    d = distillation()
    for bad in (tmp_path / "kd.docx", tmp_path / "kd"):
        with pytest.raises(UnsupportedFormatError) as info:
            draw(d, bad)
        assert isinstance(info.value, ValueError) and isinstance(info.value, ld.DiagramError)
    with pytest.raises(UnsupportedFormatError, match="svg, png, pdf or dot"):
        draw(d, format="word")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        draw(d, tmp_path / "missing" / "kd.dot")
    assert list(tmp_path.iterdir()) == []


# -- Jupyter --------------------------------------------------------------------------


@needs_dot
def test_jupyter_reprs_give_svg():
    d = distillation()
    svg = repr_svg(d)
    assert_names_everything(svg, d)
    assert d._repr_mimebundle_() == {"image/svg+xml": svg, "text/plain": d.summary()}
    assert d._repr_mimebundle_(include=["text/plain"]) == {"text/plain": d.summary()}


def test_jupyter_reprs_fall_back_when_dot_is_missing(monkeypatch):
    monkeypatch.setattr(draw_module.shutil, "which", lambda name: None)
    d = distillation()
    assert repr_svg(d) is None
    bundle = d._repr_mimebundle_()  # a table of vertices, edges and pairs instead of nothing useful
    assert list(bundle) == ["text/plain"]
    assert (
        "x·student·soft ≤ x·teacher·soft" in bundle["text/plain"] and "teacher: X → L (frozen)" in bundle["text/plain"]
    )
