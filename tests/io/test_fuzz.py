"""Fuzzing the readers with hypothesis: ``ld.parse`` on generated and mutated texts, ``ld.load`` on
mutated JSON, YAML and safetensors files. Only a ``DiagramError`` may escape (or an ``OSError``
for a file), and each input is answered within the deadline. ``bench/fuzz.py`` runs longer."""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import json
import struct
from datetime import timedelta
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch import nn

import learning_diagrams as ld
from learning_diagrams.core.errors import DiagramError
from learning_diagrams.io.config import dump_yaml, read_yaml

from legacy_layout import legacy_text

FUZZ = settings(
    max_examples=150,
    deadline=timedelta(seconds=2),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.function_scoped_fixture],
)


def harmless(*args):
    return args[0] if len(args) == 1 else args


class Tensor:
    """Stands in for torch.Tensor: a fuzzed text could call Tensor(99999, 99999)."""


ENV = {"ds": [torch.zeros(2)], "f": harmless, "g": nn.Identity(), "heads": [harmless] * 3, "Tensor": Tensor}

SEEDS = [
    "X ⇒ [ds]\nY ⇒ {Tensor, mse}\nf: X → Y ⇒ x → f(x)\ng: X → Y\nf ≤ g\n",
    "N => [ds]\nZ => (Any, Tensor)\nY => cross_entropy\nz: N -> Z => (a, (b, c)) -> (c[1:], b, a)\n"
    "y: Z -> Y => heads[-1]\nz.y <= z.y @ 0.5\nid(Y) <= id(Y)\n",
]
TOKENS = ["⇒", "=>", "→", "->", "·", ".", "≤", "<=", ":", ",", "@", "(", ")", "[", "]", "{", "}", "-", "#"]
TOKENS += ["\n", " ", "'", '"', "id", "X", "Y", "f", "g", "x", "ds", "heads", "mse", "Any", "0", "1.5e3", "'s'"]


@st.composite
def texts(draw):
    """Tokens of the syntax in any order; statements with a random piece where an expression goes; or a
    seed text edited a few times. Pieces include deep nesting and long literals."""
    pieces = st.one_of(
        st.sampled_from(TOKENS),
        st.text(max_size=3),
        st.integers(1, 6000).map(lambda n: "9" * n),
        st.integers(1, 3000).map(lambda n: "'" + "s" * n + "'"),
        st.integers(90, 1500).map(lambda n: "g(" * n + "x" + ")" * n),
        st.integers(90, 1500).map(lambda n: "x" + "[0]" * n),
        st.integers(90, 1500).map(lambda n: "(" * n + "x" + ",)" * n),
    )
    mode = draw(st.sampled_from(["tokens", "statement", "edits"]))
    if mode == "tokens":
        return "".join(draw(st.lists(pieces, max_size=40)))
    if mode == "statement":
        piece = draw(pieces)
        template = draw(st.sampled_from(STATEMENTS))
        return "A ⇒ [ds]\nB ⇒ mse\ng: A → B\n" + template.format(piece)
    text = draw(st.sampled_from(SEEDS))
    for _ in range(draw(st.integers(1, 5))):
        i = draw(st.integers(0, len(text)))
        j = draw(st.integers(i, min(len(text), i + 10)))
        text = text[:i] + draw(st.one_of(pieces, st.just(""))) + text[j:]
    return text


STATEMENTS = ["C ⇒ [{}]", "C ⇒ {{{}, mse}}", "f: A → B ⇒ x → {}", "f: A → B ⇒ {}", "g ≤ g @ {}", "f: A → B ⇒ {} → x"]


@given(texts())
@FUZZ
def test_parse_raises_only_library_errors(text):
    with contextlib.suppress(DiagramError):  # anything else fails the test
        ld.parse(text, ENV)


# -- files -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """A diagram saved with its weights in both layouts: the texts and the weights bytes."""
    folder = tmp_path_factory.mktemp("seeds")
    torch.manual_seed(0)
    f, g = nn.Linear(3, 3), nn.Sequential(nn.Linear(3, 3), nn.ReLU())
    d = (
        ld.Diagram(max_length=3)
        .space("A", data=[torch.ones(3)], type=ld.TensorType(None, 3, dtype=torch.float32))
        .space("B", loss=ld.losses.KLDivergence(temperature=2.0), type=(torch.Tensor, int))
        .map("f", "A", "B", f)
        .map("g", "A", "B", g, trainable=False)
        .map("h", "B", "B", None)
        .relate("f·h", "g", weight=0.5)
    )
    env = {"ds": d.spaces["A"].data, "f": f, "g": g}
    out = {}
    for suffix in (".json", ".yaml"):
        ld.save(d, folder / f"seed{suffix}", names=env)
        out[suffix] = (folder / f"seed{suffix}").read_text(encoding="utf-8")
    tensors = ld.io.weights_path(folder / "seed.json")
    out["weights"] = tensors.read_bytes()
    entry = {"file": tensors.name, "sha256": hashlib.sha256(out["weights"]).hexdigest()}
    out["legacy"] = legacy_text(d, env, entry)  # the first JSON layout, which files saved before hold
    out["env"] = env
    return out


def weights_name(obj) -> str:
    """The weights file a diagram file's data names, in any of the layouts."""
    return obj["Diagram"][0]["weights_file"] if "Diagram" in obj else obj["weights"]["file"]


COUNTER = itertools.count()


def load_case(tmp_path: Path, suffix: str, text: str, weights: bytes, weights_name: str, env) -> None:
    case = tmp_path / f"case{next(COUNTER)}"
    case.mkdir()
    (case / f"d{suffix}").write_text(text, encoding="utf-8", errors="surrogatepass")
    (case / weights_name).write_bytes(weights)
    with contextlib.suppress(DiagramError, OSError):  # anything else fails the test
        ld.load(case / f"d{suffix}", dict(env))


json_values = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(-(10**30), 10**30),
        st.floats(allow_nan=False),
        st.text(max_size=20),
        st.sampled_from(["mse", "kl_div(T=0)", "Tensor", "f", "../x.safetensors", "0" * 64]),
    ),
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)),
    max_leaves=20,
)


def places(value, at=()):
    found = [at]
    if isinstance(value, dict):
        for k, v in value.items():
            found += places(v, (*at, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            found += places(v, (*at, i))
    return found


@st.composite
def mutated_objects(draw, obj):
    obj = json.loads(json.dumps(obj))
    for _ in range(draw(st.integers(1, 3))):
        at = draw(st.sampled_from(places(obj)))
        if not at:
            continue
        parent = obj
        for key in at[:-1]:
            parent = parent[key]
        if isinstance(parent, dict) and draw(st.booleans()):
            del parent[at[-1]]
        else:
            parent[at[-1]] = draw(json_values)
    return obj


@st.composite
def mutated_bytes(draw, data: bytes):
    out = bytearray(data)
    for _ in range(draw(st.integers(1, 4))):
        i = draw(st.integers(0, len(out)))
        op = draw(st.sampled_from(["flip", "cut", "insert", "truncate", "nest"]))
        if op == "flip" and out:
            out[min(i, len(out) - 1)] ^= 1 << draw(st.integers(0, 7))
        elif op == "cut":
            del out[i : i + draw(st.integers(1, 40))]
        elif op == "insert":
            out[i:i] = draw(st.binary(min_size=1, max_size=8))
        elif op == "truncate":
            del out[i:]
        else:
            n = draw(st.sampled_from([63, 65, 3000]))
            out[i:i] = b"[" * n + b"]" * n
    return bytes(out)


@given(data=st.data(), layout=st.sampled_from([".json", "legacy", ".yaml"]), structural=st.booleans())
@FUZZ
def test_load_of_a_mutated_diagram_file_raises_only_library_errors(saved, tmp_path, data, layout, structural):
    text, suffix = saved[layout], ".yaml" if layout == ".yaml" else ".json"
    obj = json.loads(text) if suffix == ".json" else read_yaml(text)
    if structural:
        mutated = data.draw(mutated_objects(obj))
        text = json.dumps(mutated) if suffix == ".json" else dump_yaml(mutated)
    else:
        text = data.draw(mutated_bytes(text.encode())).decode("utf-8", "replace")
    load_case(tmp_path, suffix, text, saved["weights"], weights_name(obj), saved["env"])


YAML_PIECES = ["&a [x]", "*a", "!!python/name:os.system", "!!binary aGk=", "!!set {a}", "2001-13-45", "{<<: {a: 1}}"]
YAML_PIECES += ["? [a]\n  : b", "---\n---", "'unterminated", "- - - -", "\t", "\x00", "!!int 0x" + "f" * 3000]


@given(data=st.data())
@FUZZ
def test_load_of_yaml_with_anchors_tags_and_odd_scalars_raises_only_library_errors(saved, tmp_path, data):
    lines = saved[".yaml"].split("\n")
    for _ in range(data.draw(st.integers(1, 3))):
        k = data.draw(st.integers(0, len(lines) - 1))
        piece = data.draw(st.sampled_from(YAML_PIECES))
        if ":" in lines[k] and data.draw(st.booleans()):
            lines[k] = f"{lines[k].split(':', 1)[0]}: {piece}"
        else:
            lines.insert(k, piece)
    weights_name = read_yaml(saved[".yaml"])["weights"]["file"]
    load_case(tmp_path, ".yaml", "\n".join(lines), saved["weights"], weights_name, saved["env"])


@st.composite
def mutated_headers(draw, data: bytes):
    (n,) = struct.unpack("<Q", data[:8])
    header, body = json.loads(data[8 : 8 + n]), data[8 + n :]
    keys = sorted(k for k in header if k != "__metadata__")
    key = draw(st.sampled_from(keys))
    change = draw(st.sampled_from(["dtype", "shape", "offsets", "alias", "dangling", "twin"]))
    if change == "dtype":
        header[key]["dtype"] = draw(st.sampled_from(["I32", "F16", "F64", "BOOL", "U8", "X", 3]))
    elif change == "shape":
        header[key]["shape"] = draw(st.sampled_from([[3, 4], [9], [], [-1], [10**12], "3"]))
    elif change == "offsets":
        a, b = header[key]["data_offsets"]
        header[key]["data_offsets"] = draw(st.sampled_from([[a, b + 4], [b, a], [0, len(body) + 8], [a, a]]))
    elif change == "alias":
        header.setdefault("__metadata__", {})[draw(st.sampled_from(keys))] = key
    elif change == "dangling":
        header.setdefault("__metadata__", {})["f.extra"] = draw(st.sampled_from([*keys, "nothing"]))
    else:
        header[draw(st.sampled_from(keys))] = header[key]
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    return struct.pack("<Q", len(raw)) + raw + body


@given(data=st.data(), how=st.sampled_from(["matching sha", "legacy file", "as is"]), header=st.booleans())
@FUZZ
def test_load_of_mutated_weights_raises_only_library_errors(saved, tmp_path, data, how, header):
    weights = data.draw(mutated_headers(saved["weights"]) if header else mutated_bytes(saved["weights"]))
    obj = json.loads(saved[".json"])
    name = weights_name(obj)
    if how == "matching sha":  # past the checksum: safetensors and the strict check must refuse it
        obj["Diagram"][0]["weights_sha256"] = hashlib.sha256(weights).hexdigest()
    elif how == "legacy file":  # the first layout without its entry: no checksum at all, <stem>.safetensors
        obj = json.loads(saved["legacy"])
        del obj["weights"]
        name = "d.safetensors"
    load_case(tmp_path, ".json", json.dumps(obj), weights, name, saved["env"])
