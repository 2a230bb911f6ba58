"""Bounded readers: nesting and literal limits in the text syntax and the files, YAML aliases refused,
linear duplicate-key checks, and error messages that show a bounded part of what they refuse."""

from __future__ import annotations

import json
import time

import pytest
import torch
import yaml

import learning_diagrams as ld
from learning_diagrams.core.errors import (
    DiagramError,
    DiagramSyntaxError,
    FileFormatError,
    TypeMismatchError,
    UnknownNameError,
)
from learning_diagrams.io.config import read_yaml
from learning_diagrams.io.limits import (
    MAX_FILE_DEPTH,
    MAX_NESTING,
    MAX_NUMBER_LENGTH,
    MAX_STRING_LENGTH,
    json_depth,
    shown,
)
from learning_diagrams.io.syntax import Lambda, parse


def identity(*args):
    return args[0] if len(args) == 1 else args


ENV = {"g": identity, "x0": [[0, 1]], "ds": [torch.zeros(2)]}


def calls(n: int) -> str:
    return "g(" * n + "x" + ")" * n


def indexes(n: int) -> str:
    return "x" + "[0]" * n


def tuples(n: int) -> str:
    return "(" * n + "x" + ",)" * n


# -- the text syntax ---------------------------------------------------------------------------


@pytest.mark.parametrize("nested", [calls, indexes, tuples], ids=["calls", "indexes", "tuples"])
def test_expressions_nest_up_to_the_limit_and_no_further(nested):
    inside = nested(MAX_NESTING - 1)  # one more level: the lambda's body is an expression of its own
    f = Lambda.parse(f"x → {inside}", ENV)
    assert f.source.startswith("x → ")
    text = f"A ⇒ [ds]\nB ⇒ mse\nf: A → B ⇒ x → {nested(MAX_NESTING + 1)}\n"
    with pytest.raises(DiagramSyntaxError, match=f"nested more than {MAX_NESTING}") as info:
        parse(text, ENV)
    assert info.value.line == 3 and info.value.column > 10


@pytest.mark.parametrize("nested", [calls, indexes, tuples], ids=["calls", "indexes", "tuples"])
def test_deep_nesting_is_refused_quickly_not_by_recursion(nested):
    text = f"f: A → B ⇒ x → {nested(20_000)}"
    start = time.perf_counter()
    with pytest.raises(DiagramSyntaxError, match="nested more than"):
        parse(text, ENV)
    assert time.perf_counter() - start < 5.0


def test_496_nested_calls_are_a_syntax_error_not_a_recursion_error():
    with pytest.raises(DiagramSyntaxError, match="line 1, column"):
        parse("f: A -> B => x -> " + calls(496), ENV)


def test_brackets_in_strings_and_comments_do_not_count_as_nesting():
    text = f"A ⇒ [g('{'(' * 500}')]  # {'[' * 500}\n"
    assert parse(text, ENV).spaces["A"].data == "(" * 500


@pytest.mark.parametrize(
    ("literal", "ok"),
    [
        ("9" * MAX_NUMBER_LENGTH, True),
        ("9" * (MAX_NUMBER_LENGTH + 1), False),
        ("1" * 4301, False),
        ("1." + "5" * MAX_NUMBER_LENGTH, False),
        (f"'{'s' * MAX_STRING_LENGTH}'", True),
        (f'"{"s" * (MAX_STRING_LENGTH + 1)}"', False),
    ],
)
def test_number_and_string_literals_have_a_size_limit(literal, ok):
    text = f"A ⇒ [g({literal})]"
    if ok:
        parse(text, ENV)
        return
    with pytest.raises(DiagramSyntaxError, match="literal has at most") as info:
        parse(text, ENV)
    assert (info.value.line, info.value.column) == (1, 8)


def test_a_long_relation_weight_is_refused_at_its_place():
    text = "A ⇒ [ds]\nB ⇒ mse\nf: A → B ⇒ g\nf ≤ f @ " + "1" * 5000
    with pytest.raises(DiagramSyntaxError, match="a number of 5000 characters") as info:
        parse(text, ENV)
    assert (info.value.line, info.value.column) == (4, 9)


@pytest.mark.parametrize("text", [None, b"A => B", 3, ["A => [x]"]])
def test_parse_of_something_not_a_string_is_a_type_mismatch(text):
    with pytest.raises(TypeMismatchError, match="takes the text to read, a str") as info:
        parse(text)
    assert isinstance(info.value, TypeError) and isinstance(info.value, DiagramError)
    with pytest.raises(TypeMismatchError):
        Lambda.parse(text)


def test_parse_with_an_env_that_is_not_a_mapping_is_a_type_mismatch():
    with pytest.raises(TypeMismatchError, match="env must be a mapping"):
        parse("A ⇒ [x]", [("x", 1)])


def test_a_syntax_error_on_a_very_long_line_shows_a_bounded_excerpt():
    text = "A ⇒ [" + "x, " * 100_000 + "]"
    with pytest.raises(DiagramSyntaxError) as info:
        parse(text, {"x": 1})
    assert len(str(info.value)) < 1000
    with pytest.raises(DiagramSyntaxError) as info:
        parse("A ⇒ " + "x" * 100_000 + " ?", {})
    assert len(str(info.value)) < 1000 and info.value.column == 100_006


def test_an_evaluation_error_message_is_bounded():
    def loud(*args):
        raise ValueError("no " * 100_000)

    with pytest.raises(DiagramSyntaxError, match="could not evaluate") as info:
        parse(f"A ⇒ [loud({'x, ' * 1000}x)]", {"loud": loud, "x": 1})
    assert len(str(info.value)) < 2000


# -- files -------------------------------------------------------------------------------------

TINY_YAML = """\
spaces: {A: {data: ds}, B: {loss: mse}}
maps: {f: {src: A, tgt: B, fn: null}}
relations: [[f, f, 0.5]]
options: {max_paths: 100}
"""


def nested_type(depth: int) -> dict:
    spec: object = "Tensor"
    for _ in range(depth):
        spec = {"tuple": [spec]}
    return spec  # type: ignore[return-value]


@pytest.mark.parametrize("suffix", [".json", ".yaml"])
def test_files_nest_up_to_the_limit_and_no_further(tmp_path, suffix):
    d = ld.Diagram().space("A", data=[1]).space("B", loss=ld.losses.mse).map("f", "A", "B", None)
    obj = ld.io.to_json(d, {"ds": d.spaces["A"].data}) if suffix == ".json" else ld.io.to_config(d)
    # the file's own levels (top, V, row / spaces, vertex) plus the type spec's: 2 per tuple
    spare = (MAX_FILE_DEPTH - 4) // 2
    for depth, ok in ((spare, True), (spare + 2, False)):
        if suffix == ".json":
            obj["V"][0]["vtype"] = nested_type(depth)
            text = json.dumps(obj)
        else:
            obj["spaces"]["A"] = {"data": "ds", "type": nested_type(depth)}
            text = ld.io.config.dump_yaml(obj)
        (tmp_path / f"d{suffix}").write_text(text, encoding="utf-8")
        if ok:
            ld.load(tmp_path / f"d{suffix}", {"ds": [1]})
            continue
        with pytest.raises(FileFormatError, match=rf"d{suffix}: line \d+, column \d+: .*nested more than"):
            ld.load(tmp_path / f"d{suffix}", {"ds": [1]})


@pytest.mark.parametrize(
    ("suffix", "text"),
    [
        (".json", "[" * 100_000 + "]" * 100_000),
        (".json", '{"a":' * 100_000 + "1" + "}" * 100_000),
        (".json", '{"format": "learning-diagrams/1", "V": ' + "[" * 1000 + "]" * 1000 + "}"),
        (".json", '{"Diagram": [], "V": [{"vtype": ' + "[" * 1000 + "]" * 1000 + "}]}"),
        (".yaml", "[" * 100_000 + "]" * 100_000),
        (".yaml", "".join(f"{'  ' * i}- \n" for i in range(1000))),
        (".yaml", "spaces: " + "{a: " * 1000 + "1" + "}" * 1000),
    ],
    ids=["json-lists", "json-objects", "json-rows", "json-acset", "yaml-flow", "yaml-block", "yaml-mappings"],
)
def test_nesting_far_past_the_limit_is_refused_quickly(tmp_path, suffix, text):
    (tmp_path / f"deep{suffix}").write_text(text, encoding="utf-8")
    start = time.perf_counter()
    with pytest.raises(FileFormatError, match="nested more than 64 levels deep"):
        ld.load(tmp_path / f"deep{suffix}", {})
    assert time.perf_counter() - start < 5.0


def test_json_depth_skips_brackets_inside_strings():
    assert json_depth('{"a": "[[[[{{{{", "b": [["\\"]"]]}') == 3


def test_from_json_of_a_self_containing_object_is_refused_not_a_recursion_error():
    obj = ld.io.to_json(ld.Diagram().space("A"))
    loop: list = []
    loop.append(loop)
    obj["V"][0]["vtype"] = loop
    with pytest.raises(FileFormatError, match="nested more than"):
        ld.io.from_json(obj)


@pytest.mark.parametrize(
    "yaml_text",
    [
        "spaces: {A: &a {data: ds}, B: *a}",
        "base: &b {loss: mse}\nspaces: {A: {<<: *b}}",
        "spaces: {A: {type: &t Tensor}}",
    ],
    ids=["alias", "merge", "anchor"],
)
def test_yaml_anchors_and_aliases_are_refused_naming_the_place(tmp_path, yaml_text):
    (tmp_path / "a.yaml").write_text(yaml_text, encoding="utf-8")
    with pytest.raises(FileFormatError, match=r"a\.yaml: line \d, column \d+: an (anchor|alias) .*not read in diagram"):
        ld.load(tmp_path / "a.yaml", {"ds": [1]})


def alias_bomb(levels: int) -> str:
    anchors = ["&a0 [x,x,x,x,x,x,x,x,x]"] + [f"&a{i} [" + ",".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, levels)]
    return f"spaces: {{X: {{}}}}\nmaps:\n  f: {{src: X, tgt: X, trainable: [{', '.join(anchors)}]}}\n"


def test_an_alias_bomb_is_refused_at_once_with_a_short_message(tmp_path):
    (tmp_path / "bomb.yaml").write_text(alias_bomb(12), encoding="utf-8")  # 9**12 values if expanded
    start = time.perf_counter()
    with pytest.raises(FileFormatError, match="an anchor") as info:
        ld.load(tmp_path / "bomb.yaml", {})
    assert time.perf_counter() - start < 1.0 and len(str(info.value)) < 500


def test_save_never_writes_anchors_even_for_shared_values():
    shared = {"tensor": {"shape": [None, 3], "dtype": None}}
    text = ld.io.config.dump_yaml({"spaces": {"A": {"type": shared}, "B": {"type": shared}}})
    assert "&" not in text and "*" not in text
    assert read_yaml(text)["spaces"]["B"]["type"] == shared


def test_the_duplicate_key_check_costs_about_what_reading_costs():
    n = 16_000
    text = "spaces:\n" + "".join(f"  v{i}: {{}}\n" for i in range(n)) + "  v0: {}\n"
    start = time.perf_counter()
    yaml.safe_load(text)  # the same loader, without the check
    plain = time.perf_counter() - start
    start = time.perf_counter()
    with pytest.raises(FileFormatError, match="found duplicate key 'v0'"):
        read_yaml(text)
    checked = time.perf_counter() - start
    assert checked < 3 * plain + 0.5, (checked, plain)  # a quadratic check took 4x at 16,000 keys, 16x at 64,000


def test_yaml_duplicate_keys_of_other_types_are_found():
    with pytest.raises(FileFormatError, match="duplicate key 1"):
        read_yaml("{1: a, 2: b, 1: c}")
    with pytest.raises(FileFormatError, match="found unhashable key"):
        read_yaml("{[1, 2]: a}")  # an unhashable key is refused too


@pytest.mark.parametrize(
    ("suffix", "text", "message"),
    [
        (
            ".json",
            '{"format": "learning-diagrams/1", "V": [], "options": {"max_paths": ' + "9" * 5000 + "}}",
            "a number",
        ),
        (".yaml", "options: {max_paths: " + "9" * 5000 + "}", "a value cannot be read"),
        (".yaml", "spaces: {A: {data: 2001-13-45}}", "a value cannot be read"),
        (".yaml", "spaces: {A: {data: !!int 0x" + "f" * 5000 + "}}", "got an integer of about 6021 digits"),
    ],
    ids=["json-int", "yaml-int", "yaml-date", "yaml-hex"],
)
def test_values_python_cannot_build_or_show_are_file_format_errors(tmp_path, suffix, text, message):
    (tmp_path / f"v{suffix}").write_text(text, encoding="utf-8")
    with pytest.raises(FileFormatError, match=message) as info:
        ld.load(tmp_path / f"v{suffix}", {})
    assert len(str(info.value)) < 1000


HUGE = ["x" * 1_000_000, list(range(100_000)), {f"k{i}": i for i in range(100_000)}, 10**10_000]


@pytest.mark.parametrize(
    "place",
    [
        ["maps", "f", "trainable"],
        ["relations", 0],
        ["relations", 0, 2],
        ["relations", 0, 0],
        ["spaces", "A", "type"],
        ["spaces", "A", "data"],
        ["options", "max_paths"],
        ["format"],
    ],
)
def test_error_messages_show_a_bounded_part_of_any_value(place):
    huge_values = [value for value in HUGE if not isinstance(value, int)]
    for value in huge_values:
        obj = yaml.safe_load(TINY_YAML)
        target = obj
        for key in place[:-1]:
            target = target[key]
        target[place[-1]] = value
        start = time.perf_counter()
        with pytest.raises(DiagramError) as info:
            ld.io.from_config(obj, {"ds": [1]})
        assert len(str(info.value)) < 1000, place
        assert time.perf_counter() - start < 1.0


@pytest.mark.parametrize(
    "place",
    [
        ["V", 0, "vname"],
        ["V", 0, "data"],
        ["V", 0, "vtype"],
        ["V", 0, "indexing"],
        ["V", 0, "_id"],
        ["E", 0, "src"],
        ["E", 0, "fn"],
        ["E", 0, "trainable"],
        ["E", 0, "_var"],
        ["R", 0, "weight"],
        ["R", 0, "first"],
        ["Step", 0, "edge"],
        ["Diagram", 0, "format"],
        ["Diagram", 0, "max_paths"],
        ["Diagram", 0, "cycles"],
        ["Diagram", 0, "weights_file"],
        ["Name", 0, "_id"],
        ["V"],
        ["Huge"],
    ],
)
def test_acset_error_messages_show_a_bounded_part_of_any_value(place):
    d = ld.Diagram().space("A", data=[1]).space("B", loss=ld.losses.mse).map("f", "A", "B", None).relate("f", "f")
    seed = ld.io.to_json(d, {"ds": d.spaces["A"].data})
    for value in [*HUGE, {"_var": 10**6}]:
        obj = json.loads(json.dumps(seed))
        target = obj
        for key in place[:-1]:
            target = target[key]
        target[place[-1]] = value
        start = time.perf_counter()
        try:
            ld.io.from_json(obj, {"ds": [1]})
        except DiagramError as err:
            assert len(str(err)) < 1000, place
        assert time.perf_counter() - start < 1.0, place


def test_shown_is_bounded_for_huge_and_shared_values():
    shared: list = ["x"] * 9
    for _ in range(30):
        shared = [shared] * 9  # 9**31 values if expanded
    for value in (shared, 10**100_000, "y" * 10**6, {i: [i] * 1000 for i in range(1000)}, b"z" * 10**6):
        start = time.perf_counter()
        assert len(shown(value)) <= 80
        assert time.perf_counter() - start < 0.1


def test_every_missing_env_name_is_listed_in_one_error(tmp_path):
    (tmp_path / "d.yaml").write_text(
        "spaces: {A: {data: ds}, B: {loss: my_loss}}\nmaps: {f: {src: A, tgt: B}, g: {src: A, tgt: B, fn: net}}\n",
        encoding="utf-8",
    )
    with pytest.raises(UnknownNameError) as info:
        ld.load(tmp_path / "d.yaml", {"f": identity})
    message = str(info.value)
    assert "3 names are missing from env:" in message
    for place in (
        "spaces.A.data: env has no 'ds'",
        "spaces.B.loss: no loss named 'my_loss'",
        "maps.g.fn: env has no 'net'",
    ):
        assert place in message
    assert message.endswith("pass them: env={'ds': ..., 'my_loss': ..., 'net': ...}")


def test_a_name_used_in_many_places_is_listed_once_and_the_list_is_bounded():
    spaces = {f"V{i}": {"data": f"ds{i}"} for i in range(500)} | {"W": {"data": "ds0"}}
    with pytest.raises(UnknownNameError, match="500 names are missing") as info:
        ld.io.from_config({"spaces": spaces})
    assert "and 450 more" in str(info.value) and str(info.value).count("'ds0'") == 2  # its place, and pass them


@pytest.mark.parametrize("path", [None, 3, ["d.json"]])
def test_load_and_save_of_something_not_a_path_are_type_mismatches(path):
    with pytest.raises(TypeMismatchError, match="a str or a path-like object") as info:
        ld.load(path)
    assert isinstance(info.value, TypeError)
    with pytest.raises(TypeMismatchError):
        ld.save(ld.Diagram(), path)


def test_load_with_an_env_or_weights_of_the_wrong_kind_is_a_type_mismatch(tmp_path):
    (tmp_path / "d.yaml").write_text(TINY_YAML, encoding="utf-8")
    with pytest.raises(TypeMismatchError, match="env must be a mapping"):
        ld.load(tmp_path / "d.yaml", [("ds", [1])])
    with pytest.raises(TypeMismatchError, match="weights must be True, False or None"):
        ld.load(tmp_path / "d.yaml", {"ds": [1]}, weights="yes")
