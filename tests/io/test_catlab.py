"""Catlab compatibility, tested against real ACSet JSON and a real ACSet reader and writer.

* Files Catlab wrote (``fixtures/catlab``, their origins in its README) load with ``ld.load`` as
  diagram skeletons, their extra attributes kept as metadata.
* Files ``ld.save`` writes are read by AlgebraicJulia's Python ``acsets`` package with the schema
  the library ships (``schema.json``, as ``learning-diagrams schema`` prints it), and obey the
  rules Catlab's reader (ACSets.jl's ``parse_json_acset``) relies on, looked up in that schema as
  ``acsets`` reads it.
* Files ``acsets`` writes, of its own graph schema (Catlab's ``SchGraph``, as Catlab prints it) and
  of ours, load with ``ld.load``.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest
import torch
from hypothesis import given, settings
from torch import nn

import learning_diagrams as ld
from learning_diagrams import losses
from learning_diagrams.core.errors import FileFormatError
from learning_diagrams.io import metadata, schema_text
from learning_diagrams.structure.homsearch import homomorphisms

with warnings.catch_warnings():  # acsets 0.0.2 was written for pydantic 1: pydantic 2 warns on import
    warnings.simplefilter("ignore")
    import acsets

from test_files import diagrams, distillation, fresh_env, structure

# acsets calls pydantic 1's API (parse_obj, dict, json), which pydantic 2 keeps but deprecates.
pytestmark = [
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
    pytest.mark.filterwarnings("ignore::UserWarning:pydantic.*"),
]

FIXTURES = Path(__file__).parent / "fixtures" / "catlab"


def write(path: Path, acset: acsets.ACSet) -> None:
    """``acset`` as acsets writes it (its ``to_json_file`` passes ``by_alias`` twice to pydantic 2: its text, then)."""
    path.write_text(acset.to_json_str(), encoding="utf-8")


def read_schema(obj) -> acsets.Schema:
    return acsets.Schema.from_catlab("LearningDiagram", acsets.CatlabSchema.parse_obj(obj))


@pytest.fixture(scope="module")
def schema() -> acsets.Schema:
    """The library's schema as the acsets package reads it."""
    return read_schema(json.loads(schema_text()))


# -- Catlab's files, read by ld.load ------------------------------------------------------------------


def test_a_catlab_0_14_graph_without_ids_loads_as_a_skeleton():
    d = ld.load(FIXTURES / "catlab-0.14.12-graph.json")
    assert list(d.spaces) == ["V1", "V2", "V3", "V4"]
    assert [(m.name, m.src, m.tgt) for m in d.maps.values()] == [("E1", "V1", "V2"), ("E2", "V2", "V3")]
    assert all(m.fn is None and m.trainable for m in d.maps.values())
    assert all(s.data is None and s.loss is None and s.type is None for s in d.spaces.values())
    assert metadata(d) == {"V": {}, "E": {}, "tables": {}}


def test_labels_name_the_parts_when_they_are_identifiers_and_stay_metadata_otherwise():
    d = ld.load(FIXTURES / "catlab-0.14.12-velabeled-graph.json")
    assert list(d.spaces) == ["a", "b", "c", "d"]  # vlabel: identifiers
    assert [(m.name, m.src, m.tgt) for m in d.maps.values()] == [("E1", "a", "b"), ("E2", "b", "c")]
    assert metadata(d)["E"] == {"E1": {"elabel": "e₁"}, "E2": {"elabel": "e₂"}}  # e₁ is no identifier


def test_catlab_files_with_ids_attribute_variables_and_attribute_tables_load():
    d = ld.load(FIXTURES / "algebraicrewriting-graph-E.json")
    assert [(m.name, m.src, m.tgt) for m in d.maps.values()] == [("E1", "V2", "V1")]
    d = ld.load(FIXTURES / "algebraicrewriting-weightedgraph-E.json")
    assert metadata(d) == {"V": {}, "E": {"E1": {"weight": {"_var": 1}}}, "tables": {"Weight": 1}}
    d = ld.load(FIXTURES / "algebraicrewriting-weightedgraph-V.json")
    assert list(d.spaces) == ["V1"] and d.maps == {} and metadata(d)["tables"] == {"Weight": 0}
    d = ld.load(FIXTURES / "algebraicrewriting-lv-E.json")
    assert [(m.name, m.src, m.tgt) for m in d.maps.values()] == [("E1", "V2", "V1")]
    assert metadata(d) == {
        "V": {"V1": {"grass_eng": {"_var": 1}}, "V2": {"grass_eng": {"_var": 2}}},
        "E": {"E1": {"dir": {"_var": 1}}},
        "tables": {"Sheep": 0, "Wolf": 0, "Dir": 1, "Eng": 2},
    }


def test_a_skeleton_is_a_diagram_to_search_and_to_save(tmp_path):
    d = ld.load(FIXTURES / "catlab-0.14.12-graph.json")
    two_steps = ld.Diagram().space("A").space("B").space("C").map("f", "A", "B", None).map("g", "B", "C", None)
    [m] = homomorphisms(two_steps, d)
    assert dict(m.edges) == {"f": "E1", "g": "E2"}
    with pytest.raises(FileNotFoundError, match="names no weights file"):
        ld.load(FIXTURES / "catlab-0.14.12-graph.json", weights=True)
    ld.save(d, tmp_path / "skeleton.json")
    assert structure(ld.load(tmp_path / "skeleton.json")) == structure(d)


@pytest.mark.parametrize(
    ("obj", "message"),
    [
        ({"V": [{}]}, "no table 'E': a Catlab graph has tables V and E"),
        ({"V": [{}], "E": [{"src": 1}]}, "table E, _id 1 (edge 'E1'): no 'tgt'"),
        ({"V": [{}], "E": [{"src": 1, "tgt": 2}]}, "field 'tgt': 2 is not an id of table V (it has ids 1 to 1)"),
        ({"V": [{"_id": 2}], "E": []}, "table V, row 1: '_id' is 2, but ids are 1-based"),
        ({"V": [{}], "E": [], "Sheep": [{"_id": 1, "loc": 1}]}, "table Sheep, row 1: has column(s) 'loc'"),
        ({"V": [{"w": {"_var": -1}}], "E": []}, "table V, _id 1 (vertex 'V1'), field 'w': an attribute variable is"),
        ({"V": "all", "E": []}, "table V: expected a list of rows, got the string 'all'"),
        ([], "an ACSet JSON file is an object with a key per table, got a list"),
    ],
)
def test_a_file_that_is_no_catlab_graph_is_refused_naming_the_place(obj, message):
    with pytest.raises(FileFormatError) as info:
        ld.io.from_json(obj)
    assert message in str(info.value)


def test_names_from_labels_fall_back_to_ids_when_not_all_usable():
    for labels in (["a", "a"], ["a", None], ["a", 3], ["a", "b·c"]):
        d = ld.io.from_json({"V": [{"label": x} for x in labels], "E": []})
        assert list(d.spaces) == ["V1", "V2"], labels
        assert metadata(d)["V"]["V1"] == {"label": "a"}


# -- what ld.save writes, read by acsets -----------------------------------------------------------


def test_the_shipped_schema_is_catlabs_layout_and_the_cli_prints_it(schema, capsys):
    from learning_diagrams.cli import main

    obj = json.loads(schema_text())
    assert {"Ob", "Hom", "AttrType", "Attr", "equations", "version"} <= set(obj)  # ACSets.jl's parser needs each
    assert {"ACSetSchema", "Catlab", "ACSets"} <= set(obj["version"])  # old and new acset.schema.json's "required"
    names = [f.name for f in schema.homs + schema.attrs]
    assert len(names) == len(set(names))  # a column's name tells its table
    assert [o.name for o in schema.obs] == ["V", "E", "Path", "Step", "R", "Diagram"]
    assert main(["schema"]) == 0
    assert json.loads(capsys.readouterr().out) == obj


def acsets_reads(text: str, schema: acsets.Schema) -> acsets.ACSet:
    """The ACSet acsets reads from ``text``, checked against what Catlab's reader relies on."""
    acset = acsets.ACSet.read_json("d", schema, text)
    obj = json.loads(text)
    ob_names = [o.name for o in schema.obs]
    # Catlab adds parts to a table for every top-level key: each must be an object or attribute type.
    assert set(obj) <= set(ob_names) | {t.name for t in schema.attrtypes}
    # acsets keeps what its schema knows and writes it back: nothing of ours was dropped or retyped.
    assert acset.to_json_obj() == {name: obj[name] for name in ob_names}
    for ob in schema.obs:
        for i, row in enumerate(obj[ob.name], 1):
            assert row["_id"] == i
            for f in schema.homs_outof(ob):  # foreign keys: ids of rows of the codomain
                assert 1 <= row[f.name] <= acset.nparts(schema.from_string(f.codom))
            for f in schema.attrs_outof(ob):  # attribute variables: rows of their attribute type's table
                value = row[f.name]
                if isinstance(value, dict) and "_var" in value:
                    assert 1 <= value["_var"] <= len(obj[f.codom])
    return acset


def test_acsets_reads_a_saved_diagram_with_the_shipped_schema(tmp_path, schema):
    d, env = distillation()
    d.space("M", indexing=True)  # an indexing vertex without its data
    ld.save(d, tmp_path / "kd.json", names=env)
    acset = acsets_reads((tmp_path / "kd.json").read_text(encoding="utf-8"), schema)
    V, E, R = (schema.from_string(t) for t in ("V", "E", "R"))
    assert [acset.subpart(i, schema.from_string("vname")) for i in acset.parts(V)] == list(d.spaces)
    assert [acset.subpart(i, schema.from_string("ename")) for i in acset.parts(E)] == list(d.maps)
    assert acset.subpart(0, schema.from_string("data")) == "train_ds"
    assert acset.subpart(5, schema.from_string("indexing")) is True
    assert acset.subpart(2, schema.from_string("trainable")) is False  # teacher
    assert [acset.subpart(i, schema.from_string("weight")) for i in acset.parts(R)] == [0.75, 0.25]
    file = acset.subpart(0, schema.from_string("weights_file"))
    assert file == ld.io.weights_path(tmp_path / "kd.json").name
    # acsets' own tables, written over the file: ld.load reads the same diagram, and its weights
    (tmp_path / "kd.json").write_text(acset.to_json_str(), encoding="utf-8")
    assert structure(ld.load(tmp_path / "kd.json", env)) == structure(d)
    loaded = fresh_env(env)
    ld.load(tmp_path / "kd.json", loaded)
    assert torch.equal(loaded["student"].weight, env["student"].weight)


@given(diagrams())
@settings(max_examples=40, deadline=None)
def test_acsets_reads_every_saved_diagram_and_what_it_writes_back_loads_the_same(schema, case):
    d, env = case
    text = json.dumps(ld.io.to_json(d))
    acset = acsets_reads(text, schema)
    rewritten = acset.to_json_str()  # acsets writes unset attributes as null and no attribute tables
    assert structure(ld.io.from_json(json.loads(rewritten), env)) == structure(d)


# -- what acsets writes, read by ld.load ------------------------------------------------------------


def test_a_graph_acsets_writes_from_catlabs_own_graph_schema_loads(tmp_path):
    graph_schema = read_schema(json.loads((FIXTURES / "catlab-0.14.12-schgraph.json").read_text()))
    g = acsets.ACSet("g", graph_schema)
    V, E = (graph_schema.from_string(t) for t in ("V", "E"))
    src, tgt = (graph_schema.from_string(f) for f in ("src", "tgt"))
    g.add_parts(V, 3)
    for s, t in [(0, 1), (1, 2), (2, 2)]:
        e = g.add_part(E)
        g.set_subpart(e, src, s)
        g.set_subpart(e, tgt, t)
    write(tmp_path / "g.json", g)
    d = ld.load(tmp_path / "g.json")
    assert list(d.spaces) == ["V1", "V2", "V3"]
    assert [(m.src, m.tgt) for m in d.maps.values()] == [("V1", "V2"), ("V2", "V3"), ("V3", "V3")]


def test_a_labelled_graph_acsets_writes_loads_with_its_labels(tmp_path):
    labelled = acsets.Schema(
        "LabelledGraph",
        [acsets.Ob(name="V"), acsets.Ob(name="E")],
        [acsets.Hom(name="src", dom="E", codom="V"), acsets.Hom(name="tgt", dom="E", codom="V")],
        [acsets.AttrType(name="Label", ty="str"), acsets.AttrType(name="Weight", ty="float")],
        [
            acsets.Attr(name="vlabel", dom="V", codom="Label"),
            acsets.Attr(name="elabel", dom="E", codom="Label"),
            acsets.Attr(name="weight", dom="E", codom="Weight"),
        ],
    )
    g = acsets.ACSet("g", labelled)
    for name in ("images", "features"):
        g.set_subpart(g.add_part("V"), labelled.from_string("vlabel"), name)
    e = g.add_part("E")
    for f, x in (("src", 0), ("tgt", 1), ("elabel", "encoder"), ("weight", 0.5)):
        g.set_subpart(e, labelled.from_string(f), x)
    g.add_part("E")  # an edge acsets writes with src and tgt... unset: no graph edge
    with pytest.raises(FileFormatError, match="table E, _id 2 .*field 'src'"):
        ld.io.from_json(json.loads(g.to_json_str()))
    g = acsets.ACSet("g", labelled)
    for name in ("images", "features"):
        g.set_subpart(g.add_part("V"), labelled.from_string("vlabel"), name)
    e = g.add_part("E")
    for f, x in (("src", 0), ("tgt", 1), ("elabel", "encoder")):
        g.set_subpart(e, labelled.from_string(f), x)
    write(tmp_path / "g.json", g)
    d = ld.load(tmp_path / "g.json")
    assert list(d.spaces) == ["images", "features"] and list(d.maps) == ["encoder"]
    assert metadata(d)["E"] == {"encoder": {"weight": None}}  # acsets writes an unset attribute as null


def build_with_acsets(schema: acsets.Schema) -> acsets.ACSet:
    """The knowledge-distillation diagram's structure, built part by part with acsets in our schema."""
    a = acsets.ACSet("kd", schema)

    def part(table, **values):
        i = a.add_part(table)
        for column, value in values.items():
            a.set_subpart(i, schema.from_string(column), value)
        return i

    N, X, L, Y = (part("V", vname=n) for n in ("N", "X", "L", "Y"))
    a.set_subpart(N, schema.from_string("data"), "train_ds")
    a.set_subpart(Y, schema.from_string("loss"), "cross_entropy")
    a.set_subpart(X, schema.from_string("vtype"), {"tensor": {"shape": [None, 4], "dtype": "float32"}})
    x = part("E", src=N, tgt=X, ename="x", fn="first")
    y = part("E", src=N, tgt=Y, ename="y", fn="second")
    teacher = part("E", src=X, tgt=L, ename="teacher", trainable=False)
    student = part("E", src=X, tgt=L, ename="student")
    hard = part("E", src=L, tgt=Y, ename="hard", fn="hard", training=False)
    p, q = part("Path", path_src=N, path_tgt=Y), part("Path", path_src=N, path_tgt=Y)
    for path, edges in ((p, (x, student, hard)), (q, (y,))):
        for e in edges:
            part("Step", path=path, edge=e)
    part("R", first=p, second=q, weight=0.75)
    part("Diagram", format="learning-diagrams/2", max_length=3)
    return a, teacher


def test_a_diagram_acsets_writes_in_our_schema_loads_with_defaults_for_what_it_leaves_unset(tmp_path, schema):
    a, _ = build_with_acsets(schema)
    write(tmp_path / "kd.json", a)
    env = {"train_ds": [0], "first": abs, "second": abs, "teacher": abs, "student": abs, "hard": abs}
    d = ld.load(tmp_path / "kd.json", env)
    assert list(d.spaces) == ["N", "X", "L", "Y"] and d.spaces["N"].is_indexing
    assert d.spaces["X"].type == ld.TensorType(None, 4, dtype=torch.float32)
    assert d.spaces["Y"].loss is losses.cross_entropy
    assert {m.name: (m.fn is not None, m.trainable, m.training) for m in d.maps.values()} == {
        "x": (True, True, True),
        "y": (True, True, True),
        "teacher": (False, False, True),  # fn unset: no function; trainable set false
        "student": (False, True, True),
        "hard": (True, True, False),
    }
    assert [str(r) for r in d.relations] == ["x·student·hard ≤ y"] and d.relations[0].weight == 0.75
    assert (d.max_length, d.cycles, ld.io.weights_path(tmp_path / "kd.json")) == (3, "simple", None)


def test_acsets_without_a_diagram_row_or_names_loads_with_every_default(tmp_path, schema):
    a = acsets.ACSet("bare", schema)
    v = a.add_parts("V", 2)
    e = a.add_part("E")
    a.set_subpart(e, schema.from_string("src"), v[0])
    a.set_subpart(e, schema.from_string("tgt"), v[1])
    obj = json.loads(a.to_json_str())
    assert obj["Diagram"] == []
    d = ld.io.from_json(obj)
    assert list(d.spaces) == ["V1", "V2"] and list(d.maps) == ["E1"]
    assert (d.max_length, d.max_paths, d.cycles) == (None, ld.Diagram().max_paths, "simple")


def test_a_model_saved_with_the_diagram_loads_from_an_acsets_rewrite(tmp_path, schema):
    torch.manual_seed(0)
    model = nn.Linear(2, 2)
    d = ld.Diagram().space("A", data=[torch.ones(1, 2)]).space("B", loss=losses.mse).map("f", "A", "B", model)
    d.map("g", "A", "B", None).relate("f", "g")
    ld.save(d, tmp_path / "d.json", names={"ds": d.spaces["A"].data})
    rewritten = acsets_reads((tmp_path / "d.json").read_text(encoding="utf-8"), schema).to_json_str()
    (tmp_path / "d.json").write_text(rewritten, encoding="utf-8")  # the weights file and its SHA-256 survive
    fresh = nn.Linear(2, 2)
    ld.load(tmp_path / "d.json", {"ds": [torch.ones(1, 2)], "f": fresh})
    assert torch.equal(fresh.weight, model.weight)
