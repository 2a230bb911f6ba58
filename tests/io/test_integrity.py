"""Loaded weights are the weights that were saved: a diagram and its weights saved as one unit,
their SHA-256 checked, dtypes as well as shapes, and metadata aliases that cannot replace a tensor."""

from __future__ import annotations

import copy
import hashlib
import json
import os
import re
import struct

import pytest
import safetensors
import torch
from torch import nn

import learning_diagrams as ld
from learning_diagrams.core.errors import FileFormatError
from learning_diagrams.io.files import load, save, weights_path

from legacy_layout import legacy_text


def first(batch):
    return batch[0]


def tied_model():
    shared = nn.Linear(3, 3)
    return nn.Sequential(shared, nn.ReLU(), shared)


def diagram(seed=0, relations=1):
    """A small diagram with two models, one of them with tied weights, and its env."""
    torch.manual_seed(seed)
    f, g = nn.Linear(3, 3), tied_model()
    data = [torch.ones(2, 3)]
    d = ld.Diagram().space("A", data=data).space("B", loss=ld.losses.mse).map("f", "A", "B", f).map("g", "A", "B", g)
    for _ in range(relations):
        d.relate("f", "g")
    return d, {"ds": data, "f": f, "g": g}


def fresh(env):
    out = dict(env)
    for name in ("f", "g"):
        out[name] = copy.deepcopy(env[name])
        with torch.no_grad():
            for p in out[name].parameters():
                p.add_(7.0)
    return out


def weights_of(env):
    return {f"{n}.{k}": v.clone() for n in ("f", "g") for k, v in env[n].state_dict().items()}


def same(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def header(data):
    (n,) = struct.unpack("<Q", data[:8])
    return json.loads(data[8 : 8 + n]), data[8 + n :]


def with_header(head, body):
    raw = json.dumps(head).encode()
    raw += b" " * (-len(raw) % 8)
    return struct.pack("<Q", len(raw)) + raw + body


def record_sha(path, data):
    """Make the diagram file at ``path`` record the SHA-256 of ``data`` (so that only the content is checked)."""
    text = path.read_text(encoding="utf-8")
    old = re.search(r"[0-9a-f]{64}", text).group()
    path.write_text(text.replace(old, hashlib.sha256(data).hexdigest()), encoding="utf-8")


# -- the layout --------------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".json", ".yaml"])
def test_the_diagram_file_names_its_weights_file_and_records_its_sha256(tmp_path, suffix):
    d, env = diagram()
    save(d, tmp_path / f"d{suffix}", names=env)
    tensors = weights_path(tmp_path / f"d{suffix}")
    digest = hashlib.sha256(tensors.read_bytes()).hexdigest()
    assert tensors.name == f"d.{digest[:12]}.safetensors" and tensors.parent == tmp_path
    text = (tmp_path / f"d{suffix}").read_text(encoding="utf-8")
    if suffix == ".json":
        row = json.loads(text)["Diagram"][0]
        assert (row["weights_file"], row["weights_sha256"]) == (tensors.name, digest)
    else:
        assert f"weights: {{file: {tensors.name}, sha256: {digest}}}\n" in text
    loaded = fresh(env)
    load(tmp_path / f"d{suffix}", loaded)
    assert same(weights_of(loaded), weights_of(env))


def test_a_diagram_without_modules_or_saved_without_weights_records_none(tmp_path):
    d = ld.Diagram().space("A", data=[1]).space("B", loss=ld.losses.mse).map("f", "A", "B", abs)
    save(d, tmp_path / "plain.yaml", names={"ds": d.spaces["A"].data, "f": abs})
    assert "weights: null\n" in (tmp_path / "plain.yaml").read_text(encoding="utf-8")
    assert weights_path(tmp_path / "plain.yaml") is None and list(tmp_path.glob("*.safetensors")) == []
    d2, env = diagram()
    save(d2, tmp_path / "d.json", names=env, weights=False)
    row = json.loads((tmp_path / "d.json").read_text())["Diagram"][0]
    assert set(row["weights_file"]) == set(row["weights_sha256"]) == {"_var"}  # unset, as Catlab writes it
    load(tmp_path / "d.json", env)  # nothing to load, and it says nothing
    with pytest.raises(FileNotFoundError, match=r"d\.json: names no weights file .*weights=False"):
        load(tmp_path / "d.json", env, weights=True)


def test_saving_again_replaces_the_weights_file_and_removes_the_old_one(tmp_path):
    d, env = diagram()
    save(d, tmp_path / "d.json", names=env)
    old = weights_path(tmp_path / "d.json")
    with torch.no_grad():
        env["f"].weight.add_(1.0)
    save(d, tmp_path / "d.json", names=env)
    new = weights_path(tmp_path / "d.json")
    assert (
        new != old and not old.exists() and sorted(p.name for p in tmp_path.iterdir()) == sorted(["d.json", new.name])
    )
    save(d, tmp_path / "d.json", names=env)  # the same weights: the same file, kept
    assert weights_path(tmp_path / "d.json") == new and new.exists()
    save(d, tmp_path / "d.json", names=env, weights=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.json"]


def test_the_two_layouts_of_one_stem_keep_each_others_weights(tmp_path):
    d, env = diagram()
    save(d, tmp_path / "d.json", names=env)
    with torch.no_grad():
        env["f"].weight.add_(1.0)
    save(d, tmp_path / "d.yaml", names=env)
    with torch.no_grad():
        env["f"].weight.add_(1.0)
    save(d, tmp_path / "d.json", names=env)
    for suffix in (".json", ".yaml"):
        assert weights_path(tmp_path / f"d{suffix}").exists()
        load(tmp_path / f"d{suffix}", fresh(env))
    assert len(list(tmp_path.glob("*.safetensors"))) == 2


def legacy(tmp_path, suffix=".json"):
    """A diagram file as written before the weights entry: weights in ``<stem>.safetensors`` (JSON: the first layout)."""
    d, env = diagram()
    save(d, tmp_path / f"old{suffix}", names=env)
    tensors = weights_path(tmp_path / f"old{suffix}")
    tensors.rename(tmp_path / "old.safetensors")
    text = (tmp_path / f"old{suffix}").read_text(encoding="utf-8")
    if suffix == ".json":
        obj = json.loads(legacy_text(d, env))
        del obj["weights"]
        text = json.dumps(obj, indent=2)
    else:
        text = re.sub(r"weights: .*\n", "", text)
    (tmp_path / f"old{suffix}").write_text(text, encoding="utf-8")
    return d, env


@pytest.mark.parametrize("suffix", [".json", ".yaml"])
def test_a_file_from_before_the_weights_entry_still_loads_its_weights(tmp_path, suffix):
    d, env = legacy(tmp_path, suffix)
    assert weights_path(tmp_path / f"old{suffix}") == tmp_path / "old.safetensors"
    loaded = fresh(env)
    load(tmp_path / f"old{suffix}", loaded)
    assert same(weights_of(loaded), weights_of(env))
    (tmp_path / "old.safetensors").unlink()
    untouched = fresh(env)
    load(tmp_path / f"old{suffix}", untouched)  # no weights file: the structure alone, as before
    assert same(weights_of(untouched), weights_of(fresh(env)))
    with pytest.raises(FileNotFoundError, match="has no weights file old.safetensors"):
        load(tmp_path / f"old{suffix}", env, weights=True)


def test_saving_over_a_file_from_before_the_entry_removes_its_old_weights(tmp_path):
    d, env = legacy(tmp_path)
    save(d, tmp_path / "old.json", names=env)
    assert not (tmp_path / "old.safetensors").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["old.json", weights_path(tmp_path / "old.json").name])


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        (
            {"file": "../elsewhere.safetensors", "sha256": "0" * 64},
            "'weights', file: expected the name of a .safetensors",
        ),
        ({"file": "/etc/passwd", "sha256": "0" * 64}, "no folder part"),
        ({"file": "d.safetensors", "sha256": "XYZ"}, "sha256: expected 64 lowercase hexadecimal digits"),
        ({"file": "d.safetensors"}, "missing 'sha256'"),
        ({"file": "d.safetensors", "sha256": "0" * 64, "signed": True}, "unknown key(s) 'signed'"),
        ("d.safetensors", "expected null or a mapping"),
    ],
)
def test_a_malformed_weights_entry_of_the_first_layout_is_refused_naming_it(tmp_path, entry, message):
    d, env = diagram()
    (tmp_path / "d.json").write_text(legacy_text(d, env, entry))
    with pytest.raises(FileFormatError, match=re.escape(message)):
        load(tmp_path / "d.json", env)


@pytest.mark.parametrize(
    ("column", "value", "message"),
    [
        ("weights_file", "../elsewhere.safetensors", "field 'weights_file': expected the name of a .safetensors"),
        ("weights_file", "/etc/passwd", "(no folder part), got the string '/etc/passwd'"),
        (
            "weights_file",
            3,
            "field 'weights_file': expected the name of a .safetensors file beside the diagram file (no folder part), got 3 (a int)",
        ),
        ("weights_sha256", "XYZ", "field 'weights_sha256': expected 64 lowercase hexadecimal digits"),
        (
            "weights_sha256",
            {"_var": 1},
            "field 'weights_sha256': {'_var': 1} is no row of its attribute type's table (it has 0 rows)",
        ),
        ("weights_sha256", None, "field 'weights_file': is set, but not its pair"),
        ("signed", True, "table Diagram, row 1: unknown column(s) 'signed'"),
    ],
)
def test_a_malformed_weights_entry_is_refused_naming_it(tmp_path, column, value, message):
    d, env = diagram()
    save(d, tmp_path / "d.json", names=env)
    obj = json.loads((tmp_path / "d.json").read_text())
    obj["Diagram"][0][column] = value
    (tmp_path / "d.json").write_text(json.dumps(obj))
    with pytest.raises(FileFormatError, match=re.escape(message)):
        load(tmp_path / "d.json", env)


# -- what is loaded is what was saved ----------------------------------------------------------


def test_a_weights_file_whose_sha256_differs_is_refused_before_any_weight_is_loaded(tmp_path):
    d, env = diagram(seed=0)
    save(d, tmp_path / "a.json", names=env)
    d_other, env_other = diagram(seed=1)
    save(d_other, tmp_path / "b.json", names=env_other)
    tensors = weights_path(tmp_path / "a.json")
    tensors.write_bytes(weights_path(tmp_path / "b.json").read_bytes())  # a valid file, but not a's
    loaded = fresh(env)
    before = weights_of(loaded)
    with pytest.raises(FileFormatError, match=rf"{re.escape(str(tensors))}: its SHA-256 is .*a\.json records"):
        load(tmp_path / "a.json", loaded)
    assert same(weights_of(loaded), before)


@pytest.mark.parametrize("cut", [0, 7, 100, -1])
def test_a_truncated_weights_file_is_a_file_format_error_naming_it(tmp_path, cut):
    d, env = diagram()
    save(d, tmp_path / "d.json", names=env)
    tensors = weights_path(tmp_path / "d.json")
    data = tensors.read_bytes()[:cut]
    tensors.write_bytes(data)
    with pytest.raises(FileFormatError, match="its SHA-256 is"):
        load(tmp_path / "d.json", fresh(env))
    record_sha(tmp_path / "d.json", data)  # past the checksum, safetensors itself refuses it
    with pytest.raises(FileFormatError, match=rf"{re.escape(str(tensors))}: not a readable safetensors file"):
        load(tmp_path / "d.json", fresh(env))


def test_a_weight_relabelled_to_another_dtype_is_refused_not_converted(tmp_path):
    d, env = diagram()
    save(d, tmp_path / "d.json", names=env)
    tensors = weights_path(tmp_path / "d.json")
    head, body = header(tensors.read_bytes())
    head["f.weight"]["dtype"] = "I32"  # the same bytes, read as integers: other values
    data = with_header(head, body)
    tensors.write_bytes(data)
    record_sha(tmp_path / "d.json", data)
    loaded = fresh(env)
    before = weights_of(loaded)
    with pytest.raises(
        FileFormatError, match=r"dtype mismatches: f\.weight: int32 in the file, float32 in the modules"
    ):
        load(tmp_path / "d.json", loaded)
    assert same(weights_of(loaded), before)


def test_a_metadata_alias_cannot_replace_a_tensor_the_file_holds(tmp_path):
    d, env = diagram()
    save(d, tmp_path / "d.json", names=env)
    tensors = weights_path(tmp_path / "d.json")
    head, body = header(tensors.read_bytes())
    assert head["__metadata__"]["g.2.weight"] == "g.0.weight"  # the tied weight, stored once
    head["__metadata__"]["f.bias"] = "g.0.bias"  # would put g's bias in f's place
    data = with_header(head, body)
    tensors.write_bytes(data)
    record_sha(tmp_path / "d.json", data)
    loaded = fresh(env)
    before = weights_of(loaded)
    with pytest.raises(
        FileFormatError, match="makes 'f.bias' an alias of 'g.0.bias', but the file holds a tensor 'f.bias'"
    ):
        load(tmp_path / "d.json", loaded)
    assert same(weights_of(loaded), before)
    head["__metadata__"] = {"format": "pt", "g.2.weight": "nothing.here"}
    data = with_header(head, body)
    tensors.write_bytes(data)
    record_sha(tmp_path / "d.json", data)
    with pytest.raises(FileFormatError, match="an alias of 'nothing.here', which the file does not hold"):
        load(tmp_path / "d.json", loaded)


def test_the_tied_weights_alias_still_loads(tmp_path):
    d, env = diagram()
    save(d, tmp_path / "d.json", names=env)
    loaded = fresh(env)
    load(tmp_path / "d.json", loaded)
    assert loaded["g"][0].weight is loaded["g"][2].weight and torch.equal(loaded["g"][0].weight, env["g"][0].weight)


# -- a save is one unit --------------------------------------------------------------------------


class Crash(BaseException):
    """A kill: nothing of the save runs after it."""


def crash_at(monkeypatch, k):
    """Make the k-th file-system call of the save (open, write, fsync, replace, unlink) kill it."""
    calls = [0]

    def wrap(real):
        def call(*args, **kwargs):
            calls[0] += 1
            if calls[0] == k:
                raise Crash
            return real(*args, **kwargs)

        return call

    for name in ("open", "fsync", "replace", "unlink", "fdopen"):
        monkeypatch.setattr(os, name, wrap(getattr(os, name)))
    return calls


@pytest.mark.parametrize("suffix", [".json", ".yaml"])
def test_a_save_killed_at_any_point_leaves_the_old_pair_or_the_new_pair(tmp_path, monkeypatch, suffix):
    d, env = diagram(relations=1)
    path = tmp_path / f"d{suffix}"
    save(d, path, names=env)
    old = weights_of(env)
    new_d = copy.deepcopy(d)
    new_d.relate("g", "f", weight=0.5)
    new_env = {"ds": new_d.spaces["A"].data, "f": new_d.maps["f"].fn, "g": new_d.maps["g"].fn}
    with torch.no_grad():
        new_env["f"].weight.mul_(-1.0)
    new = weights_of(new_env)
    outcomes = set()
    for k in range(1, 100):
        with monkeypatch.context() as patch:
            calls = crash_at(patch, k)
            try:
                save(new_d, path, names=new_env)
                finished = True
            except Crash:
                finished = False
        loaded_env = fresh(env)
        e = load(path, loaded_env)
        which = "new" if len(e.relations) == 2 else "old"
        assert same(weights_of(loaded_env), new if which == "new" else old), (k, which)
        outcomes.add(which)
        save(d, path, names=env)  # back to the old pair for the next point
        if finished:
            break
    assert outcomes == {"old", "new"} and calls[0] >= 6, (outcomes, calls[0])
    leftovers = [p.name for p in tmp_path.iterdir() if p.name.startswith(".tmp-")]
    assert len(list(tmp_path.glob("*.safetensors"))) == 1, leftovers  # each save tidied the ones before


def test_a_failed_write_of_the_new_pair_leaves_the_old_pair_and_no_new_file(tmp_path, monkeypatch):
    d, env = diagram()
    save(d, tmp_path / "d.json", names=env)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    with torch.no_grad():
        env["f"].weight.add_(1.0)
    real = os.replace

    def full(src, dst):
        if str(dst).endswith(".json"):
            raise OSError(28, "No space left on device")
        return real(src, dst)

    monkeypatch.setattr(os, "replace", full)
    with pytest.raises(OSError, match="No space left"):
        save(d, tmp_path / "d.json", names=env)
    monkeypatch.undo()
    after = {p.name: p.read_bytes() for p in tmp_path.iterdir() if not p.name.startswith(".tmp-")}
    assert {k: v for k, v in after.items() if k in before} == before  # the new weights file may stay: unnamed
    loaded = fresh(env)
    load(tmp_path / "d.json", loaded)
    with safetensors.safe_open(str(weights_path(tmp_path / "d.json")), "pt") as f:
        assert torch.equal(loaded["f"].weight, f.get_tensor("f.weight"))
    save(d, tmp_path / "d.json", names=env)
    assert len(list(tmp_path.glob("*.safetensors"))) == 1  # the next save removes the unnamed file
