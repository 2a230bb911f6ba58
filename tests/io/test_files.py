"""Saving and loading diagrams: ACSet JSON, the YAML config form, safetensors weights."""

from __future__ import annotations

import copy
import json
import os
import re
import tempfile
import typing
from pathlib import Path as FilePath

import pytest
import safetensors
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

import learning_diagrams as ld
from learning_diagrams import losses
from learning_diagrams.core.errors import DiagramError, UnknownNameError
from learning_diagrams.core.errors import FileFormatError
from learning_diagrams.io.files import (
    FORMAT,
    from_config,
    from_json,
    load,
    save,
    to_config,
    to_json,
    weights_path,
)
from learning_diagrams.core.graph import Path

from strategies import graphs


# --- helpers --------------------------------------------------------------------------------------


def first(batch):
    return batch[0]


def second(batch):
    return batch[1]


def distillation(teacher=None, student=None, data=None):
    """The knowledge-distillation diagram (the paper's Figure 1) and the env that names its parts."""
    teacher = teacher if teacher is not None else nn.Linear(4, 3)
    student = student if student is not None else nn.Linear(4, 3)
    data = data if data is not None else [(torch.randn(8, 4), torch.randint(3, (8,)))]
    hard, soft = nn.Identity(), nn.Identity()
    d = (
        ld.Diagram()
        .space("N", data=data)
        .space("X", type=ld.TensorType(None, 4, dtype=torch.float32))
        .space("L")
        .space("Y", loss=losses.cross_entropy)
        .space("G", loss=losses.KLDivergence(temperature=2.0))
        .map("x", "N", "X", first)
        .map("y", "N", "Y", second)
        .map("teacher", "X", "L", teacher, trainable=False)
        .map("student", "X", "L", student)
        .map("hard", "L", "Y", hard, training=False)
        .map("soft", "L", "G", soft)
        .relate("x·student·hard", "y", weight=0.75)
        .relate("x·student·soft", "x·teacher·soft", weight=0.25)
    )
    env = {
        "train_ds": data,
        "first": first,
        "second": second,
        "teacher": teacher,
        "student": student,
        "hard": hard,
        "soft": soft,
    }
    return d, env


def fresh_env(env):
    """The same names bound to new modules of the same shapes (and the same data and functions)."""
    out = dict(env)
    for name, obj in env.items():
        if isinstance(obj, nn.Module):
            out[name] = copy.deepcopy(obj)
            with torch.no_grad():
                for p in out[name].parameters():
                    p.add_(1.0)
    return out


def structure(d):
    """Everything a file should preserve: names, ends, flags, losses, types, relations, options."""
    return (
        [
            (s.name, id(s.data) if s.data is not None else None, type(s.loss), s.loss, s.type, s.indexing)
            for s in d.spaces.values()
        ],
        [
            (m.name, m.src, m.tgt, id(m.fn) if m.fn is not None else None, m.trainable, m.training)
            for m in d.maps.values()
        ],
        [(r.first, r.second, r.weight) for r in d.relations],
        (d.max_length, d.max_paths, d.cycles),
    )


def pairs_or_error(d):
    try:
        return [str(p) for p in d.parallel_pairs()]
    except DiagramError as err:
        return f"{type(err).__name__}: {err}"


# --- round trips ----------------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".json", ".yaml"])
def test_distillation_round_trip_preserves_structure_relations_and_pairs(tmp_path, suffix):
    d, env = distillation()
    save(d, tmp_path / f"kd{suffix}", names=env)
    e = load(tmp_path / f"kd{suffix}", env)
    assert structure(e) == structure(d)
    assert e.maps["teacher"].trainable is False and e.maps["hard"].training is False
    assert isinstance(e.spaces["G"].loss, losses.KLDivergence) and e.spaces["G"].loss.temperature == 2.0
    assert e.spaces["Y"].loss is losses.cross_entropy
    assert (
        [str(p) for p in e.parallel_pairs()]
        == [str(p) for p in d.parallel_pairs()]
        == [
            "x·student·hard ≤ y  (at Y, weight 0.75)",
            "x·student·soft ≤ x·teacher·soft  (at G, weight 0.25)",
        ]
    )
    total, terms = e.compile()()
    assert torch.isfinite(total) and list(terms) == ["x·student·hard ≤ y", "x·student·soft ≤ x·teacher·soft"]


def test_weights_round_trip_into_fresh_modules(tmp_path):
    d, env = distillation()
    save(d, tmp_path / "kd.json", names=env)
    with safetensors.safe_open(str(weights_path(tmp_path / "kd.json")), framework="pt") as f:
        assert sorted(f.keys()) == ["student.bias", "student.weight", "teacher.bias", "teacher.weight"]
    fresh = fresh_env(env)
    assert not torch.equal(fresh["teacher"].weight, env["teacher"].weight)
    e = load(tmp_path / "kd.json", fresh)
    for name in ("teacher", "student"):
        assert e.maps[name].fn is fresh[name]
        for key, value in env[name].state_dict().items():
            assert torch.equal(fresh[name].state_dict()[key], value), (name, key)


def test_a_model_on_two_edges_and_tied_weights_are_stored_once(tmp_path):
    shared = nn.Linear(3, 3)
    tied = nn.Sequential(shared, nn.ReLU(), shared)  # one tensor under two keys of one module
    d = (
        ld.Diagram()
        .space("A", data=[torch.ones(1, 3)])
        .space("B", loss=losses.mse)
        .map("a", "A", "B", tied)
        .map("b", "A", "B", tied)
        .relate("a", "b")
    )
    save(d, tmp_path / "d.json")
    rows = json.loads((tmp_path / "d.json").read_text())["E"]
    assert [r["fn"] for r in rows] == ["a", "a"]  # the first edge's name, for both edges
    with safetensors.safe_open(str(weights_path(tmp_path / "d.json")), framework="pt") as f:
        assert sorted(f.keys()) == ["a.0.bias", "a.0.weight"]
        assert f.metadata()["a.2.weight"] == "a.0.weight"
    other = nn.Linear(3, 3)
    fresh = nn.Sequential(other, nn.ReLU(), other)
    e = load(tmp_path / "d.json", {"A": d.spaces["A"].data, "a": fresh})
    assert e.maps["a"].fn is e.maps["b"].fn is fresh
    assert torch.equal(other.weight, shared.weight) and torch.equal(other.bias, shared.bias)


def test_weights_that_do_not_fit_are_reported_in_one_error(tmp_path):
    d, env = distillation()
    save(d, tmp_path / "kd.json", names=env)
    bad = dict(fresh_env(env), teacher=nn.Linear(4, 5), hard=nn.Linear(3, 3), student=lambda x: x)
    with pytest.raises(FileFormatError) as info:
        load(tmp_path / "kd.json", bad)
    message = str(info.value)
    assert "missing keys (in the modules, not in the file): hard.bias, hard.weight" in message
    assert "unexpected keys (in the file, not in the modules): student.bias, student.weight" in message
    assert "teacher.weight: [3, 4] in the file, [5, 4] in the modules" in message
    for change, expected in [
        ({"hard": nn.Linear(3, 3)}, r"missing keys \(in the modules, not in the file\): hard.bias, hard.weight"),
        ({"student": torch.relu}, r"unexpected keys \(in the file, not in the modules\): student.bias"),
    ]:
        with pytest.raises(FileFormatError, match=expected):
            load(tmp_path / "kd.json", dict(fresh_env(env), **change))
    load(tmp_path / "kd.json", bad, weights=False)  # the structure alone still loads
    tensors = weights_path(tmp_path / "kd.json")
    os.remove(tensors)
    with pytest.raises(FileNotFoundError, match=re.escape(tensors.name)):
        load(tmp_path / "kd.json", env, weights=True)


# --- random diagrams ------------------------------------------------------------------------------

annotations = st.recursive(
    st.sampled_from(
        [
            None,
            typing.Any,
            torch.Tensor,
            int,
            float,
            str,
            torch.float16,
            torch.int64,
            ld.TensorType(None, 10),
            ld.TensorType(3, None, dtype=torch.bfloat16),
            ld.TensorType(),
        ]
    ),
    lambda inner: st.lists(inner, max_size=3).map(tuple),
    max_leaves=5,
)
library_losses = st.one_of(
    st.none(),
    st.sampled_from([v for v in vars(losses).values() if isinstance(v, losses.Loss)]),
    st.floats(1e-6, 1e6).map(lambda t: losses.KLDivergence(temperature=t)),
)


@st.composite
def diagrams(draw):
    """Random multigraphs with random spaces, maps with no function and relations between parallel paths."""
    g = draw(graphs(max_vertices=4, max_edges=5))
    max_length = draw(st.one_of(st.none(), st.integers(0, 4)))
    cycles = "simple" if max_length is None else draw(st.sampled_from(["simple", "walks"]))  # walks need a bound
    d = ld.Diagram(max_length=max_length, max_paths=draw(st.integers(1000, 9999)), cycles=cycles)
    env = {}
    targets = {g.tgt(e) for e in g.edges}
    for v in g.vertices:
        source = v not in targets  # no edge ends at an indexing vertex
        data = [v] if source and draw(st.booleans()) else None
        if data is not None:
            env[v] = data
        indexing = data is not None or (source and draw(st.booleans()))  # an indexing vertex may have no data yet
        d.space(v, data=data, loss=draw(library_losses), type=draw(annotations), indexing=indexing)
    for e in g.edges:
        d.map(e, g.src(e), g.tgt(e), None, trainable=draw(st.booleans()), training=draw(st.booleans()))
    parallel = [(p, q) for _, paths in d.paths().items() for p in paths for q in paths]
    if parallel:
        weights = st.floats(-1e3, 1e3, allow_nan=False, allow_infinity=False)
        for p, q in draw(st.lists(st.sampled_from(parallel), max_size=4)):
            d.relate(p, q, weight=draw(weights))
    return d, env


@given(diagrams())
@settings(max_examples=60, deadline=None)
def test_random_diagrams_round_trip_through_both_layouts(case):
    d, env = case
    assert structure(from_json(json.loads(json.dumps(to_json(d))), env)) == structure(d)
    with tempfile.TemporaryDirectory() as folder:
        for suffix in (".json", ".yaml"):
            save(d, FilePath(folder) / f"d{suffix}")
            e = load(FilePath(folder) / f"d{suffix}", env)
            assert structure(e) == structure(d), suffix
            assert all(m.fn is None for m in e.maps.values())
            assert pairs_or_error(e) == pairs_or_error(d), suffix


# --- the layouts ----------------------------------------------------------------------------------

TINY_JSON = """\
{
  "V": [
    {
      "_id": 1,
      "vname": "A",
      "data": "ds",
      "loss": {
        "_var": 1
      },
      "vtype": "Tensor",
      "indexing": true
    },
    {
      "_id": 2,
      "vname": "B",
      "data": {
        "_var": 2
      },
      "loss": "mse",
      "vtype": {
        "_var": 1
      },
      "indexing": false
    }
  ],
  "E": [
    {
      "_id": 1,
      "src": 1,
      "tgt": 2,
      "ename": "f",
      "fn": "absolute",
      "trainable": true,
      "training": true
    },
    {
      "_id": 2,
      "src": 2,
      "tgt": 2,
      "ename": "g",
      "fn": {
        "_var": 3
      },
      "trainable": false,
      "training": true
    }
  ],
  "Path": [
    {
      "_id": 1,
      "path_src": 1,
      "path_tgt": 2
    },
    {
      "_id": 2,
      "path_src": 1,
      "path_tgt": 2
    },
    {
      "_id": 3,
      "path_src": 2,
      "path_tgt": 2
    },
    {
      "_id": 4,
      "path_src": 2,
      "path_tgt": 2
    }
  ],
  "Step": [
    {
      "_id": 1,
      "path": 1,
      "edge": 1
    },
    {
      "_id": 2,
      "path": 2,
      "edge": 1
    },
    {
      "_id": 3,
      "path": 2,
      "edge": 2
    },
    {
      "_id": 4,
      "path": 4,
      "edge": 2
    }
  ],
  "R": [
    {
      "_id": 1,
      "first": 1,
      "second": 2,
      "weight": 0.5
    },
    {
      "_id": 2,
      "first": 3,
      "second": 4,
      "weight": 1.0
    }
  ],
  "Diagram": [
    {
      "_id": 1,
      "format": "learning-diagrams/2",
      "max_length": 3,
      "max_paths": 10000,
      "cycles": "simple",
      "weights_file": {
        "_var": 4
      },
      "weights_sha256": {
        "_var": 1
      }
    }
  ],
  "Name": [
    {
      "_id": 1
    },
    {
      "_id": 2
    },
    {
      "_id": 3
    },
    {
      "_id": 4
    }
  ],
  "TypeSpec": [
    {
      "_id": 1
    }
  ],
  "Bool": [],
  "Real": [],
  "Count": [],
  "Text": [],
  "Digest": [
    {
      "_id": 1
    }
  ]
}
"""

# The same diagram in the first layout (learning-diagrams/1), as files written before the ACSet layout hold it.
LEGACY_TINY_JSON = """\
{
  "format": "learning-diagrams/1",
  "V": [
    {
      "_id": 1,
      "name": "A",
      "data": "ds",
      "loss": null,
      "type": "Tensor"
    },
    {
      "_id": 2,
      "name": "B",
      "data": null,
      "loss": "mse",
      "type": null
    }
  ],
  "E": [
    {
      "_id": 1,
      "src": 1,
      "tgt": 2,
      "name": "f",
      "fn": "absolute",
      "trainable": true,
      "training": true
    },
    {
      "_id": 2,
      "src": 2,
      "tgt": 2,
      "name": "g",
      "fn": null,
      "trainable": false,
      "training": true
    }
  ],
  "R": [
    {
      "_id": 1,
      "src": 1,
      "tgt": 2,
      "first": [
        1
      ],
      "second": [
        1,
        2
      ],
      "weight": 0.5
    },
    {
      "_id": 2,
      "src": 2,
      "tgt": 2,
      "first": [],
      "second": [
        2
      ],
      "weight": 1.0
    }
  ],
  "options": {
    "max_length": 3,
    "max_paths": 10000
  },
  "weights": null
}
"""


def tiny():
    ds = [torch.ones(2)]
    d = (
        ld.Diagram(max_length=3)
        .space("A", data=ds, type=torch.Tensor)
        .space("B", loss=losses.mse)
        .map("f", "A", "B", abs)
        .map("g", "B", "B", None, trainable=False)
        .relate("f", "f·g", weight=0.5)
        .relate("id(B)", "g")
    )
    return d, {"ds": ds, "absolute": abs}


def test_json_follows_the_acset_layout_exactly(tmp_path):
    d, env = tiny()
    save(d, tmp_path / "tiny.json", names=env)
    assert (tmp_path / "tiny.json").read_text(encoding="utf-8") == TINY_JSON
    assert to_json(d, env) == json.loads(TINY_JSON)
    e = load(tmp_path / "tiny.json", env)
    assert e.maps["g"].fn is None and e.maps["f"].fn is abs  # an unset fn loads as no function
    assert e.relations[1].first == Path.id("B") and str(e.relations[1]) == "id(B) ≤ g"
    assert structure(e) == structure(d)


def test_files_of_the_first_layout_still_load(tmp_path):
    d, env = tiny()
    (tmp_path / "old.json").write_text(LEGACY_TINY_JSON, encoding="utf-8")
    assert structure(load(tmp_path / "old.json", env)) == structure(d)
    assert structure(from_json(json.loads(LEGACY_TINY_JSON), env)) == structure(d)
    assert weights_path(tmp_path / "old.json") is None  # it records "weights": null
    save(load(tmp_path / "old.json", env), tmp_path / "old.json", names=env)  # saving again writes the new layout
    assert "Diagram" in json.loads((tmp_path / "old.json").read_text()) and "format" not in json.loads(
        (tmp_path / "old.json").read_text()
    )


def test_identity_paths_round_trip_in_both_layouts(tmp_path):
    d = (
        ld.Diagram()
        .space("N", data=[1])
        .space("X", loss=losses.l1)
        .map("x", "N", "X", None)
        .map("loop", "X", "X", None)
        .relate("id(X)", "loop")
        .relate("x·loop", "x", weight=2.0)
    )
    for suffix in (".json", ".yaml"):
        save(d, tmp_path / f"d{suffix}", weights=False)
        e = load(tmp_path / f"d{suffix}", {"N": d.spaces["N"].data})
        assert [(r.first, r.second, r.weight) for r in e.relations] == [
            (Path.id("X"), Path("X", "X", ("loop",)), 1.0),
            (Path("N", "X", ("x", "loop")), Path("N", "X", ("x",)), 2.0),
        ]
    tables = json.loads((tmp_path / "d.json").read_text())
    assert tables["R"][0] == {"_id": 1, "first": 1, "second": 2, "weight": 1.0}
    assert tables["Path"][:2] == [{"_id": 1, "path_src": 2, "path_tgt": 2}, {"_id": 2, "path_src": 2, "path_tgt": 2}]
    assert [s for s in tables["Step"] if s["path"] in (1, 2)] == [{"_id": 1, "path": 2, "edge": 2}]  # id(X): no step
    assert "- [id(X), loop]" in (tmp_path / "d.yaml").read_text(encoding="utf-8")
    assert not (tmp_path / "d.safetensors").exists()  # weights=False writes none
    assert weights_path(tmp_path / "d.json") is None and list(tmp_path.glob("*.safetensors")) == []


def test_yaml_form_is_written_by_name(tmp_path):
    d, env = distillation()
    save(d, tmp_path / "kd.yaml", names=env)
    text = (tmp_path / "kd.yaml").read_text(encoding="utf-8")
    assert text.startswith(f"format: {FORMAT}\nspaces:\n  N: {{data: train_ds}}\n")
    assert "  teacher: {src: X, tgt: L, fn: teacher, trainable: false}\n" in text
    assert "  hard: {src: L, tgt: Y, fn: hard, training: false}\n" in text
    assert "  G: {loss: kl_div(T=2.0)}\n" in text
    assert "- {first: x·student·hard, second: y, weight: 0.75}\n" in text
    assert to_config(d, env)["maps"]["x"] == {"src": "N", "tgt": "X", "fn": "first"}
    assert weights_path(tmp_path / "kd.yaml").exists()


HAND_WRITTEN = """\
# distillation, written by hand
spaces:
  N: {data: train_ds}
  X: {}
  L:
  Y: {loss: cross_entropy, type: Tensor}
  G: {loss: kl_div(T=2.0), type: {tensor: {shape: [null, 3], dtype: float32}}}
maps:
  x: {src: N, tgt: X, fn: first}
  y: {src: N, tgt: Y, fn: second}
  f: {src: X, tgt: L, fn: model, trainable: true}
  g: {src: X, tgt: L, fn: teacher, trainable: false}
  hard: {src: L, tgt: Y, fn: identity}
  soft: {src: L, tgt: G, fn: identity}
  probe: {src: X, tgt: L, fn: null}
  identity: {src: L, tgt: L}
relations:
  - [x·f·hard, y]
  - {first: x.f.soft, second: x.g.soft, weight: 0.25}
options: {max_length: 4}
"""


def test_a_hand_written_yaml_config_loads(tmp_path):
    (tmp_path / "config.yaml").write_text(HAND_WRITTEN, encoding="utf-8")
    env = {
        "train_ds": [(torch.randn(8, 4), torch.randint(3, (8,)))],
        "first": first,
        "second": second,
        "model": nn.Linear(4, 3),
        "teacher": nn.Linear(4, 3),
        "identity": nn.Identity(),
    }
    d = load(tmp_path / "config.yaml", env)
    assert list(d.spaces) == ["N", "X", "L", "Y", "G"] and d.max_length == 4
    assert d.spaces["Y"].type is torch.Tensor
    assert d.spaces["G"].type == ld.TensorType(None, 3, dtype=torch.float32)
    assert d.maps["f"].fn is env["model"] and d.maps["g"].trainable is False and d.maps["f"].trainable
    assert d.maps["probe"].fn is None and d.maps["identity"].fn is env["identity"]  # no fn key: the edge's name
    assert [str(p) for p in d.parallel_pairs()] == [
        "x·f·hard ≤ y  (at Y, weight 1)",
        "x·f·soft ≤ x·g·soft  (at G, weight 0.25)",
    ]
    total, _ = d.compile()()
    assert torch.isfinite(total)


def test_losses_are_saved_by_name_and_custom_ones_need_a_name(tmp_path):
    def sq(a, b):
        return ((a - b) ** 2).mean()

    custom = losses.Loss(sq, symmetric=True)
    library = [v for v in vars(losses).values() if isinstance(v, losses.Loss)] + [losses.KLDivergence(0.5)]
    d = ld.Diagram()
    for i, loss in enumerate([*library, custom, sq]):
        d.space(f"V{i}", loss=loss)
    save(d, tmp_path / "d.json", names={"plain": sq})
    names = [row["loss"] for row in json.loads((tmp_path / "d.json").read_text())["V"]]
    assert names[-3:] == ["kl_div(T=0.5)", "sq", "plain"] and "kl_div(T=1.0)" in names
    with pytest.raises(UnknownNameError, match=r"table V, _id 9 \(vertex 'V8'\), field 'loss': no loss named 'sq'"):
        load(tmp_path / "d.json")  # library losses need no env, the custom one does
    e = load(tmp_path / "d.json", {"sq": custom, "plain": sq})
    assert [(type(s.loss), s.loss) for s in e.spaces.values()] == [(type(s.loss), s.loss) for s in d.spaces.values()]
    assert (
        e.spaces["V7"].loss.temperature == 0.5 and e.spaces["V8"].loss.symmetric and not e.spaces["V9"].loss.symmetric
    )
    with pytest.raises(FileFormatError, match="vertex 'A'.*names="):
        to_json(ld.Diagram().space("A", loss=losses.Loss(sq, symmetric=True, name="mse")))  # would load as mse


def test_what_cannot_be_named_or_written_is_refused_at_save(tmp_path):
    class Custom:
        pass

    with pytest.raises(FileFormatError, match="vertex 'X': its type .*Custom cannot be written"):
        save(ld.Diagram().space("X", type=(torch.Tensor, Custom)), tmp_path / "d.json")
    assert list(tmp_path.iterdir()) == []  # nothing written
    d, env = distillation()
    with pytest.raises(FileFormatError, match="'teacher' would stand for two different objects"):
        to_json(d, names={"teacher": env["student"]})
    with pytest.raises(FileFormatError, match="edge 'teacher'.*without '.'"):
        to_json(d, names={"teacher.v1": env["teacher"]})
    with pytest.raises(FileFormatError, match="unknown suffix '.txt'"):
        save(d, tmp_path / "d.txt")


# --- bad files ------------------------------------------------------------------------------------


def test_unknown_env_name_names_the_place_and_suggests(tmp_path):
    d, env = distillation()
    save(d, tmp_path / "kd.json", names=env)
    typo = {("train_sd" if k == "train_ds" else k): v for k, v in env.items()}
    with pytest.raises(UnknownNameError) as info:
        load(tmp_path / "kd.json", typo)
    assert str(info.value) == (
        f"{tmp_path / 'kd.json'}: table V, _id 1 (vertex 'N'), field 'data': env has no 'train_ds', "
        "the data of vertex 'N' (did you mean 'train_sd'?); pass it: env={'train_ds': ...}"
    )
    no_teacher = {k: v for k, v in env.items() if k != "teacher"}
    with pytest.raises(
        UnknownNameError,
        match=r"table E, _id 3 \(edge 'teacher'\), field 'fn': .*"
        r"the function of edge 'teacher' \(X → L\)",
    ):
        load(tmp_path / "kd.json", no_teacher)
    obj = to_json(d, env)
    obj["V"][4]["loss"] = "kl_dvi(T=2.0)"
    with pytest.raises(UnknownNameError, match=r"_id 5 \(vertex 'G'\), field 'loss'.*did you mean 'kl_div\(T=1.0\)'"):
        from_json(obj, env)


def mutate(path, value, text=TINY_JSON):
    """A copy of the tiny diagram's JSON with ``value`` at ``path`` (a missing key when value is DELETE)."""
    obj = json.loads(text)
    *parents, last = path
    target = obj
    for key in parents:
        target = target[key]
    if value is DELETE:
        del target[last]
    else:
        target[last] = value
    return obj


DELETE = object()


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (
            ["Diagram", 0, "format"],
            "learning-diagrams/3",
            "field 'format': 'learning-diagrams/3', but this version reads 'learning-diagrams/2'",
        ),
        (["Diagram"], [{}, {}], "table Diagram: has 2 rows, but a file holds one diagram"),
        (["E", 0, "src"], 7, "table E, _id 1 (edge 'f'), field 'src': 7 is not an id of table V (it has ids 1 to 2)"),
        (["E", 1, "tgt"], 0, "table E, _id 2 (edge 'g'), field 'tgt': 0 is not an id of table V"),
        (["V", 1, "_id"], 3, "table V, row 2: '_id' is 3, but ids are 1-based and follow the row order"),
        (["E", 0, "_id"], True, "table E, row 1: '_id' is True"),
        (["E", 0, "tgt"], DELETE, "table E, _id 1 (edge 'f'), field 'tgt': missing (a foreign key is always set"),
        (
            ["V", 0, "colour"],
            "red",
            "table V, row 1: unknown column(s) 'colour' (a V row has 'vname', 'data', 'loss', 'vtype', 'indexing', and an '_id')",
        ),
        (["V", 0, "src"], 1, "table V, row 1: unknown column(s) 'src'"),  # a column of another table
        (
            ["Colours"],
            [],
            "unknown table(s) 'Colours': a learning-diagrams ACSet has the tables 'V', 'E', 'Path', 'Step', 'R', 'Diagram'",
        ),
        (
            ["Name", 0, "value"],
            "x",
            "table Name, row 1: has column(s) 'value', but an attribute type's table has rows of an '_id' alone",
        ),
        (["E", 1, "trainable"], "no", "table E, _id 2 (edge 'g'), field 'trainable': expected true or false"),
        (
            ["E", 1, "fn"],
            {"_var": 9},
            "field 'fn': {'_var': 9} is no row of its attribute type's table (it has 4 rows)",
        ),
        (["E", 1, "fn"], {"_var": 0}, "field 'fn': an attribute variable is {\"_var\": n}, n ≥ 1"),
        (["E", 1, "fn"], {"_var": 1, "x": 2}, "field 'fn': an attribute variable is"),
        (
            ["Step", 2, "edge"],
            1,
            "table Step, _id 3 (step of path 2), field 'edge': edge 'f' starts at 'A', but the path is at 'B'",
        ),
        (
            ["Step", 0, "path"],
            9,
            "table Step, _id 1 (step), field 'path': 9 is not an id of table Path (it has ids 1 to 4)",
        ),
        (["Path", 0, "path_tgt"], 1, "table Path, _id 1 (path), field 'path_tgt': it ends at 'B', not 'A'"),
        (
            ["Path", 2, "path_tgt"],
            1,
            "field 'path_tgt': the identity path (no step) needs path_src == path_tgt, not 'A'",
        ),
        (["R", 0, "second"], 5, "table R, _id 1 (relation), field 'second': 5 is not an id of table Path"),
        (["R", 0, "second"], 4, "relation f ≤ g is between paths that are not parallel"),
        (["R", 0, "weight"], float("nan"), "field 'weight': a weight is a finite number"),
        (["V", 0, "vtype"], {"tensor": {"shape": "n"}}, "field 'vtype'.tensor.shape: expected a list"),
        (["V", 0, "data"], 3, "field 'data': expected a name (a non-empty string), got 3"),
        (["V", 0, "vname"], "", "field 'vname': expected a name (a non-empty string)"),
        (["V", 0, "indexing"], 1, "field 'indexing': expected true or false, got 1"),
        (["Diagram", 0, "max_paths"], 0, "field 'max_paths': expected an integer ≥ 1"),
        (["Diagram", 0, "max_length"], -1, "field 'max_length': expected null or an integer ≥ 0"),
        (["Diagram", 0, "cycles"], "loops", "field 'cycles': expected 'simple' or 'walks', got the string 'loops'"),
        (["Diagram", 0, "weights_sha256"], "0" * 64, "field 'weights_sha256': is set, but not its pair"),
        (["V", 1, "vname"], "A", "table V, _id 2 (vertex 'A'): vertex 'A' is declared twice"),
        (["V", 1, "vname"], None, "table E, _id 1 (edge 'f'), field 'fn': env has no 'absolute'"),  # B is V2 now
    ],
)
def test_malformed_json_names_the_row(path, value, message):
    _, env = tiny()
    from_json(json.loads(TINY_JSON), env)  # the unmutated file loads
    with pytest.raises(DiagramError) as info:
        from_json(mutate(path, value), {} if "env has no" in message else env)
    assert message in str(info.value)


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (
            ["format"],
            DELETE,
            "table R, row 1: has column(s) 'src', 'tgt', 'first', 'second', 'weight'",
        ),  # a Catlab graph?
        (["format"], "learning-diagrams/2", "'format' is 'learning-diagrams/2', but this version reads"),
        (["E", 0, "src"], 7, "table E, _id 1 (edge 'f'), field 'src': 7 is not an id of table V (it has ids 1 to 2)"),
        (["E", 1, "tgt"], 0, "table E, _id 2 (edge 'g'), field 'tgt': 0 is not an id of table V"),
        (["V", 1, "_id"], 3, "table V, row 2: '_id' is 3, but ids are 1-based and follow the row order"),
        (["E", 0, "_id"], True, "table E, row 1: '_id' is True"),
        (["E", 0, "tgt"], DELETE, "table E, row 1: missing 'tgt'"),
        (["V", 0, "colour"], "red", "table V, row 1: unknown key(s) 'colour'"),
        (["E", 1, "trainable"], "no", "table E, _id 2 (edge 'g'), field 'trainable': expected true or false"),
        (["R", 0, "second"], [2, 1], "table R, _id 1 (relation), field 'second': the path does not run from src"),
        (["R", 1, "second"], [3], "table R, _id 2 (relation), field 'second'[0]: 3 is not an id of table E"),
        (["R", 0, "first"], [], "field 'first': the identity path (an empty list) needs src == tgt"),
        (["R", 0, "weight"], float("nan"), "field 'weight': a weight is a finite number"),
        (["V", 0, "type"], {"tensor": {"shape": "n"}}, "field 'type'.tensor.shape: expected a list"),
        (["V", 0, "data"], 3, "field 'data': expected a name (a non-empty string) or null"),
        (["options", "max_paths"], 0, "max_paths: expected an integer ≥ 1"),
        (["V", 1, "name"], "A", "table V, _id 2 (vertex 'A'): vertex 'A' is declared twice"),
        (["extra"], [], "the top level: unknown key(s) 'extra'"),
    ],
)
def test_malformed_legacy_json_names_the_row(path, value, message):
    _, env = tiny()
    from_json(json.loads(LEGACY_TINY_JSON), env)  # the unmutated file loads
    with pytest.raises(DiagramError) as info:
        from_json(mutate(path, value, LEGACY_TINY_JSON), env)
    assert message in str(info.value)


def test_malformed_files_name_the_file(tmp_path):
    (tmp_path / "dup.json").write_text(TINY_JSON.replace('"vname": "A",', '"vname": "A", "vname": "B",'))
    with pytest.raises(FileFormatError, match=r"dup.json: duplicate key 'vname'"):
        load(tmp_path / "dup.json", tiny()[1])
    (tmp_path / "v3.json").write_text(TINY_JSON.replace("learning-diagrams/2", "learning-diagrams/3"))
    with pytest.raises(FileFormatError, match="v3.json: table Diagram, _id 1 .*'learning-diagrams/3'"):
        load(tmp_path / "v3.json", tiny()[1])
    (tmp_path / "v2.json").write_text(LEGACY_TINY_JSON.replace(FORMAT, "learning-diagrams/2"))
    with pytest.raises(FileFormatError, match="v2.json: 'format' is 'learning-diagrams/2'"):
        load(tmp_path / "v2.json", tiny()[1])
    (tmp_path / "broken.json").write_text(TINY_JSON[:200])
    with pytest.raises(FileFormatError, match="broken.json: not valid JSON"):
        load(tmp_path / "broken.json", tiny()[1])


@pytest.mark.parametrize(
    ("text", "error", "message"),
    [
        ("spaces: {X: {}}\nmaps: {f: {src: Q, tgt: X}}", UnknownNameError, "maps.f.src: no space named 'Q'"),
        ("spaces: {X: {}}\nmaps: {f: {tgt: X}}", FileFormatError, "maps.f.src: missing"),
        (
            "spaces: {X: {}}\nmaps: {f: {src: X, tgt: X, trainable: maybe}}",
            FileFormatError,
            "maps.f.trainable: expected true or false",
        ),
        ("spaces:\n  no: {}\n", FileFormatError, "spaces: the key False is not a name"),
        ("spaces: {X: {colour: red}}", FileFormatError, "spaces.X: unknown key(s) 'colour'"),
        (
            "spaces: {X: {type: Tensr}}",
            UnknownNameError,
            "spaces.X.type: unknown type 'Tensr' (did you mean 'Tensor'?)",
        ),
        (
            "spaces: {X: {}}\nmaps: {f: {src: X, tgt: X, fn: null}}\nrelations: [[f, h]]",
            UnknownNameError,
            "relations[0].second: path 'h' names no edge 'h'",
        ),
        ("spaces: {X: {}}\nrelations: [[id(X)]]", FileFormatError, "relations[0]: a relation is [first, second]"),
        ("spaces: {X: {}}\nspaces: {Y: {}}", FileFormatError, "found duplicate key 'spaces'"),
        ("format: learning-diagrams/0\n", FileFormatError, "format: 'learning-diagrams/0', but this version reads"),
        ("options: {max_length: -1}", FileFormatError, "options, max_length: expected null or an integer ≥ 0"),
    ],
)
def test_malformed_yaml_names_the_key_path(tmp_path, text, error, message):
    (tmp_path / "c.yml").write_text(text, encoding="utf-8")
    with pytest.raises(error) as info:
        load(tmp_path / "c.yml", {})
    assert message in str(info.value)


@pytest.mark.parametrize(
    "smuggled",
    [
        "!!python/object/apply:os.system ['touch {marker}']",
        "!!python/object/new:subprocess.check_output [['touch', '{marker}']]",
        "!!python/name:os.system",
    ],
)
def test_yaml_that_smuggles_code_is_refused_unrun(tmp_path, smuggled):
    marker = tmp_path / "ran"
    (tmp_path / "evil.yaml").write_text(f"spaces:\n  N:\n    data: {smuggled.format(marker=marker)}\n")
    with pytest.raises(FileFormatError, match="refused YAML"):
        load(tmp_path / "evil.yaml", {})
    assert not marker.exists()


def test_json_strings_are_names_never_code(tmp_path):
    marker = tmp_path / "ran"
    code = f"__import__('os').system('touch {marker}')"
    obj = json.loads(TINY_JSON)
    obj["E"][0]["fn"] = code
    with pytest.raises(UnknownNameError, match="env has no"):
        from_json(obj, {"ds": [1], "__import__": __import__})  # only a name of exactly that text would bind
    obj = json.loads(TINY_JSON)
    obj["V"][1]["loss"] = f"kl_div(T={code})"
    with pytest.raises(UnknownNameError, match="no loss named"):
        from_json(obj, {"ds": [1], "absolute": abs})
    assert not marker.exists()


def test_config_form_refuses_a_non_mapping():
    with pytest.raises(FileFormatError, match="a diagram config is a mapping"):
        from_config(["spaces"])


# --- atomic writes --------------------------------------------------------------------------------


def test_a_failed_write_leaves_the_old_files_whole(tmp_path, monkeypatch):
    d, env = distillation()
    save(d, tmp_path / "kd.json", names=env)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    assert sorted(before) == sorted(["kd.json", weights_path(tmp_path / "kd.json").name])

    d.relate("x·teacher·hard", "y", weight=0.5)
    with torch.no_grad():
        env["teacher"].weight.zero_()

    def disk_full(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", disk_full)
    with pytest.raises(OSError, match="No space left"):
        save(d, tmp_path / "kd.json", names=env)
    monkeypatch.undo()
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before  # old content, no temporary left
    save(d, tmp_path / "kd.json", names=env)
    assert len(load(tmp_path / "kd.json", fresh_env(env)).relations) == 3
