"""Tests of the text syntax: Listing 1, the lambda interpreter, and every error."""

from __future__ import annotations

import builtins
import copy
import re
import typing
from pathlib import Path

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from learning_diagrams import losses
from learning_diagrams.core.errors import (
    DiagramError,
    DiagramSyntaxError,
    DuplicateNameError,
    InvalidNameError,
    MapError,
    NotParallelError,
    UnknownNameError,
)
from learning_diagrams.core.types import TensorType
from learning_diagrams.io.syntax import Lambda, parse

LISTING_1 = """\
N ⇒ [train_ds]
Z_I_x_Y ⇒ (Any, Tensor)
Z_L ⇒ Any
Y ⇒ {Tensor, cross_entropy}
CNN_x_Y: N → Z_I_x_Y ⇒ x → (v_model(x[0]), x[1])
LSTM: Z_I_x_Y → Z_L ⇒ (x, y) → lstm(x)
Label: Z_I_x_Y → Y ⇒ (x, y) → y
Prediction: Z_L → Y ⇒ x → predict(x)
CNN_x_Y · LSTM · Prediction ≤ CNN_x_Y · Label
"""

ASCII = {"⇒": "=>", "→": "->", "·": ".", "≤": "<="}


class TinyLSTM(torch.nn.Module):
    """Stands in for the paper's LSTM: a linear layer from features to a state."""

    def __init__(self) -> None:
        super().__init__()
        self.cell = torch.nn.Linear(5, 6)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.cell(x))


def predict(z: torch.Tensor) -> torch.Tensor:
    return z[:, :3]


@pytest.fixture
def env() -> dict[str, typing.Any]:
    torch.manual_seed(0)
    batch = (torch.randn(8, 4), torch.randint(3, (8,)))
    return {
        "train_ds": [batch],
        "v_model": torch.nn.Linear(4, 5),
        "lstm": TinyLSTM(),
        "predict": predict,
    }


def structure(d) -> tuple:
    """What a diagram says, with lambdas compared by their pattern and AST."""

    def fn(f):
        return ("λ", f.pattern, f.body) if isinstance(f, Lambda) else f

    return (
        {n: (s.data, s.loss, s.type) for n, s in d.spaces.items()},
        {n: (m.src, m.tgt, fn(m.fn), m.trainable) for n, m in d.maps.items()},
        [(r.first.edges, r.second.edges, r.weight) for r in d.relations],
    )


# ---------------------------------------------------------------------------
# Listing 1


def test_listing_1_parses_to_its_diagram(env):
    d = parse(LISTING_1, env)
    assert list(d.spaces) == ["N", "Z_I_x_Y", "Z_L", "Y"]
    assert d.spaces["N"].data is env["train_ds"]
    assert d.spaces["Z_I_x_Y"].type == (typing.Any, torch.Tensor)
    assert d.spaces["Z_L"].type is typing.Any and d.spaces["Z_L"].loss is None
    assert d.spaces["Y"].loss is losses.cross_entropy and d.spaces["Y"].type is torch.Tensor
    ends = {n: (m.src, m.tgt) for n, m in d.maps.items()}
    assert ends == {
        "CNN_x_Y": ("N", "Z_I_x_Y"),
        "LSTM": ("Z_I_x_Y", "Z_L"),
        "Label": ("Z_I_x_Y", "Y"),
        "Prediction": ("Z_L", "Y"),
    }
    assert all(isinstance(m.fn, Lambda) and m.trainable for m in d.maps.values())
    assert repr(d.maps["CNN_x_Y"].fn) == "Lambda(x → (v_model(x[0]), x[1]))"
    [relation] = d.relations
    assert relation.first.edges == ("CNN_x_Y", "LSTM", "Prediction")
    assert relation.second.edges == ("CNN_x_Y", "Label")
    assert relation.weight == 1.0


def test_listing_1_in_ascii_has_the_same_structure(env):
    ascii_text = LISTING_1
    for unicode, ascii in ASCII.items():
        ascii_text = ascii_text.replace(unicode, ascii)
    assert not any(c in ascii_text for c in ASCII)
    assert structure(parse(ascii_text, env)) == structure(parse(LISTING_1, env))
    assert repr(parse(ascii_text, env).maps["LSTM"].fn) == "Lambda((x, y) -> lstm(x))"


@settings(max_examples=30, deadline=None)
@given(st.data())
def test_unicode_and_ascii_mix_freely(data):
    env = {"train_ds": [0], "v_model": abs, "lstm": abs, "predict": abs}
    pieces = re.split("([⇒→·≤])", LISTING_1)
    mixed = "".join(data.draw(st.sampled_from([p, ASCII[p]])) if p in ASCII else p for p in pieces)
    assert structure(parse(mixed, env)) == structure(parse(LISTING_1, env))


def test_listing_1_compiles_and_trains_the_models_inside_lambdas(env):
    d = parse(LISTING_1, env)
    loss = d.compile()
    params = {id(p) for p in loss.parameters()}
    for model in (env["v_model"], env["lstm"]):
        assert all(id(p) in params for p in model.parameters())
    total, terms = loss({"N": env["train_ds"][0]})
    assert list(terms) == ["CNN_x_Y·LSTM·Prediction ≤ CNN_x_Y·Label"]
    assert torch.isfinite(total) and total.ndim == 0
    total.backward()
    assert env["v_model"].weight.grad is not None and env["v_model"].weight.grad.abs().sum() > 0
    assert env["lstm"].cell.weight.grad is not None


def test_comments_blank_lines_indentation_and_crlf():
    text = "# a diagram\r\n\r\n   X ⇒ [xs]   # data\r\n\tY ⇒ {mse}\r\nf: X → Y ⇒ f # the map\r\n"
    d = parse(text, {"xs": [0], "f": abs})
    assert list(d.spaces) == ["X", "Y"] and d.maps["f"].fn is abs
    assert parse("", {}).spaces == {} and parse("# nothing\n\n", {}).maps == {}


def test_edges_values_weights_and_identity_paths():
    heads = [torch.nn.Linear(2, 2), torch.nn.Linear(2, 2)]
    env = {"xs": [0], "heads": heads, "g": abs, "make": lambda k: heads[k]}
    d = parse(
        """
        X ⇒ [xs]
        Y ⇒ mse                 # a bare loss is a one-element set
        f: X → Y ⇒ heads[1]
        g: X → Y
        h: X → Y ⇒ make(0)
        e: Y → Y ⇒ y -> y
        f ≤ g @ 0.25
        g.e <= h @ 2
        e ≤ id(Y) @ -1.5e-1
        """,
        env,
    )
    assert d.spaces["Y"].loss is losses.mse and d.spaces["Y"].type is None
    assert d.maps["f"].fn is heads[1] and d.maps["g"].fn is abs and d.maps["h"].fn is heads[0]
    assert [(r.first.edges, r.second.edges, r.weight) for r in d.relations] == [
        (("f",), ("g",), 0.25),
        (("g", "e"), ("h",), 2.0),
        (("e",), (), -0.15),
    ]


def test_env_overrides_the_default_namespace():
    custom = losses.Loss(lambda a, b: (a - b).abs().sum(), symmetric=True, name="custom")
    d = parse("Y ⇒ {Tensor, mse}", {"mse": custom, "Tensor": int})
    assert d.spaces["Y"].loss is custom and d.spaces["Y"].type is int


def test_set_elements_are_classified_as_loss_or_type():
    def hinge(a, b):
        return (1 - a * b).clamp(min=0).mean()

    d = parse(
        "A ⇒ {hinge, Tensor}\nB ⇒ {Any, kl_div}\nC ⇒ {module_loss}\nD ⇒ {(Tensor, Any)}",
        {"hinge": hinge, "module_loss": torch.nn.MSELoss()},
    )
    assert d.spaces["A"].loss.fn is hinge and d.spaces["A"].type is torch.Tensor
    assert d.spaces["B"].loss is losses.kl_div and d.spaces["B"].type is typing.Any
    assert isinstance(d.spaces["C"].loss.fn, torch.nn.MSELoss) and d.spaces["C"].type is None
    assert d.spaces["D"].type == (torch.Tensor, typing.Any) and d.spaces["D"].loss is None


# ---------------------------------------------------------------------------
# The lambda interpreter


@pytest.mark.parametrize(
    ("source", "argument", "expected"),
    [
        ("x → x", 7, 7),
        ("(a, b) → (b, a)", (1, 2), (2, 1)),
        ("(a, b) -> a", [1, 2], 1),
        ("((a, b), c) → (a, (b, c))", ((1, 2), 3), (1, (2, 3))),
        ("(a, (b, (c,))) → c", (1, [2, (3,)]), 3),
        ("x → x[0]", "abc", "a"),
        ("x → x[-1]", [1, 2, 3], 3),
        ("x → (x[1:3], x[:2], x[1:], x[:], x[-2:])", "abcde", ("bc", "ab", "bcde", "abcde", "de")),
        ("x → x['k']['j']", {"k": {"j": 5}}, 5),
        ("x → (\"it's\", 'say \"hi\"', '')", None, ("it's", 'say "hi"', "")),
        ("x → (1, -2, 3.5, -0.25, 1e3, 2.5E-1)", None, (1, -2, 3.5, -0.25, 1000.0, 0.25)),
        ("x → (x,)", 1, (1,)),
        ("x → ()", 1, ()),
        ("x → ((x))", 1, 1),
        ("x → pair(x, 'b',)", "a", ("a", "b")),
        ("x → const()", None, 42),
        ("x → curry(x)(2)", 1, (1, 2)),
    ],
)
def test_lambda_evaluates(source, argument, expected):
    env = {
        "pair": lambda a, b: (a, b),
        "const": lambda: 42,
        "curry": lambda a: lambda b: (a, b),
    }
    assert Lambda.parse(source, env)(argument) == expected


def test_parameters_shadow_env_and_only_named_modules_are_registered():
    x, used, unused = torch.nn.Linear(1, 1), torch.nn.Linear(2, 2), torch.nn.Linear(3, 3)
    f = Lambda.parse("(x, y) → (x, used(y))", {"x": x, "used": used, "unused": unused, "k": 3})
    assert list(f.env) == ["used"] and f.constants == {}
    assert f((5, torch.ones(2)))[0] == 5
    g = Lambda.parse("x → f(x, k)", {"f": max, "k": 3})
    assert g.constants == {"f": max, "k": 3} and list(g.env) == []
    assert g(1) == 3


def test_lambda_registers_env_modules_and_gradients_flow(env):
    f = Lambda.parse("x → (v_model(x[0]), x[1])", env)
    assert dict(f.named_parameters()) == {
        "env.v_model.weight": env["v_model"].weight,
        "env.v_model.bias": env["v_model"].bias,
    }
    assert set(f.state_dict()) == {"env.v_model.weight", "env.v_model.bias"}
    features, label = f(env["train_ds"][0])
    assert label is env["train_ds"][0][1]
    features.sum().backward()
    assert env["v_model"].weight.grad is not None and env["v_model"].weight.grad.abs().sum() > 0
    clone = copy.deepcopy(f)
    assert clone.env["v_model"] is not env["v_model"] and repr(clone) == repr(f)


def test_lambda_built_from_an_ast_shows_its_source():
    f = Lambda.parse("(a,(b ,c))->f( a , b[1:] )", {"f": lambda *a: a})
    assert repr(f) == "Lambda((a,(b ,c))->f( a , b[1:] ))"
    rebuilt = Lambda(f.pattern, f.body, {"f": lambda *a: a})
    assert repr(rebuilt) == "Lambda((a, (b, c)) → f(a, b[1:]))"
    assert rebuilt((1, ("xyz", 3))) == f((1, ("xyz", 3))) == (1, "yz")
    with pytest.raises(UnknownNameError, match="unknown name 'f'"):
        Lambda(f.pattern, f.body, {})


# ---------------------------------------------------------------------------
# The lambda language is interpreted, never evaluated as Python


def test_python_builtins_are_not_names():
    with pytest.raises(UnknownNameError, match=r"line 1, column 5: unknown name '__import__'"):
        Lambda.parse("x → __import__('os')")
    with pytest.raises(UnknownNameError, match="unknown name 'open'"):
        parse("A ⇒ Any\nf: A → A ⇒ x → open('/etc/passwd')")


@pytest.mark.parametrize(
    "source",
    [
        "x → __import__('os').system('echo hi')",  # no attribute access
        "x → x.__class__",
        "x → x + 1",  # no operators
        "x → [x]",  # no lists
        "x → (lambda: 1)",
        "x → f(*x)",
        "x → f(y=1)",
        "x → x[0:2:1]",  # no slice steps
        "x → x[f]",  # keys are literals
    ],
)
def test_python_that_is_not_the_language_is_a_syntax_error(source):
    with pytest.raises(DiagramSyntaxError, match=r"^line 1, column \d+: unexpected"):
        Lambda.parse(source, {"f": abs})


def test_parsing_and_running_never_call_eval_exec_or_compile(env, monkeypatch):
    def forbidden(*args, **kwargs):
        raise AssertionError("Python was evaluated")

    for name in ("eval", "exec", "compile"):
        monkeypatch.setattr(builtins, name, forbidden)
    d = parse(LISTING_1, env)
    assert d.maps["LSTM"].fn(d.maps["CNN_x_Y"].fn(env["train_ds"][0])).shape == (8, 6)


def test_the_module_has_no_eval_or_exec():
    import learning_diagrams.io.syntax as syntax

    text = Path(syntax.__file__).read_text(encoding="utf-8")
    assert not re.search(r"\b(eval|exec|compile)\(|__import__|importlib", text)


# An oracle: random expressions of the language, written out, evaluate to the
# same value (or raise the same exception) as the same text run by Python.

ORACLE_ENV = {
    "f": lambda *args: ("f", *args),
    "g": lambda x: x,
    "data": {"k": [1, 2, 3], "s": "text"},
}

leaf_values = st.one_of(
    st.integers(-3, 3),
    st.text(alphabet="abc", max_size=4),
    st.just(ORACLE_ENV["data"]),
)
values = st.recursive(leaf_values, lambda kids: st.lists(kids, max_size=4) | st.lists(kids, max_size=4).map(tuple))
shapes = st.recursive(st.just("leaf"), lambda kids: st.lists(kids, min_size=1, max_size=3).map(tuple), max_leaves=5)


def name_leaves(shape, names):
    if shape == "leaf":
        names.append(f"p{len(names)}")
        return names[-1]
    return tuple(name_leaves(sub, names) for sub in shape)


def pattern_text(pattern):
    if isinstance(pattern, str):
        return pattern
    items = [pattern_text(p) for p in pattern]
    return f"({items[0]},)" if len(items) == 1 else f"({', '.join(items)})"


def matching_value(pattern, draw):
    if isinstance(pattern, str):
        return draw(values)
    items = [matching_value(p, draw) for p in pattern]
    return draw(st.sampled_from([tuple(items), items]))


strings = st.text(
    alphabet=st.characters(categories=["L", "N", "P", "S", "Zs"], exclude_characters="'\"\\"),
    max_size=5,
)
numbers = st.one_of(
    st.integers(-1000, 1000).map(str),
    st.floats(allow_nan=False, allow_infinity=False).map(repr),
)
keys = st.one_of(
    st.integers(-4, 4).map(str),
    st.sampled_from(["'k'", "'s'", '"x"']),
    st.tuples(st.none() | st.integers(-4, 4), st.none() | st.integers(-4, 4)).map(
        lambda b: ":".join("" if i is None else str(i) for i in b)
    ),
)


def expressions(names):
    """Texts of expressions; Python warns when a literal is called or indexed, so none is."""
    callables = {"name", "call", "index"}
    atoms = st.one_of(
        st.sampled_from(names + list(ORACLE_ENV)).map(lambda n: (n, "name")),
        numbers.map(lambda n: (n, "number")),
        strings.map(lambda s: (f"'{s}'" if "'" not in s else f'"{s}"', "string")),
    )

    def extend(kids):
        calls = st.tuples(kids.filter(lambda k: k[1] in callables), st.lists(kids, max_size=3)).map(
            lambda t: (f"{t[0][0]}({', '.join(a for a, _ in t[1])})", "call")
        )
        indexes = st.tuples(kids.filter(lambda k: k[1] in callables), keys).map(
            lambda t: (f"{t[0][0]}[{t[1]}]", "index")
        )
        tuples = st.lists(kids, max_size=3).map(
            lambda items: (pattern_text(tuple(t for t, _ in items)) if items else "()", "tuple")
        )
        return calls | indexes | tuples

    return st.recursive(atoms, extend, max_leaves=8).map(lambda e: e[0])


def outcome(fn, argument):
    try:
        return "value", fn(argument)
    except Exception as e:  # the same operations fail the same way
        return "error", type(e)


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_the_interpreter_agrees_with_python(data):
    names: list[str] = []
    pattern = name_leaves(data.draw(shapes), names)
    body = data.draw(expressions(names))
    arrow = data.draw(st.sampled_from(["→", "->"]))
    source = f"{pattern_text(pattern)} {arrow} {body}"
    python = f"def oracle(argument):\n    {pattern_text(pattern)} = argument\n    return {body}\n"
    namespace = dict(ORACLE_ENV)
    exec(python, namespace)  # the test's oracle; the library never does this
    argument = matching_value(pattern, data.draw)

    f = Lambda.parse(source, ORACLE_ENV)
    assert f.pattern == pattern
    assert outcome(f, argument) == outcome(namespace["oracle"], argument)
    shown = Lambda(f.pattern, f.body, ORACLE_ENV).source  # written out by show()
    assert Lambda.parse(shown, ORACLE_ENV).body == f.body


# ---------------------------------------------------------------------------
# Errors, by their messages


def test_a_missing_arrow_is_a_syntax_error_at_its_line_and_column():
    text = "N ⇒ [xs]\nZ ⇒ Any\nY {Tensor, mse}\n"
    with pytest.raises(DiagramSyntaxError) as info:
        parse(text, {"xs": [0]})
    e = info.value
    assert (e.line, e.column, e.text) == (3, 3, "Y {Tensor, mse}")
    assert e.message == ("unexpected '{'; expected '⇒' (a vertex), ':' (an edge) or '≤' (a relation) after 'Y'")
    assert str(e).endswith("Y {Tensor, mse}\n      ^")
    assert isinstance(e, SyntaxError) and e.lineno == 3


@pytest.mark.parametrize(
    ("text", "line", "column", "message"),
    [
        ("A ⇒ Any\nf: A → A lstm", 2, 10, "unexpected name 'lstm'; expected '⇒' or the end of the line after 'A'"),
        ("A ⇒ Any B ⇒ Any", 1, 9, "unexpected name 'B'; expected '(', '[', '{' or the end of the line after 'Any'"),
        ("A ⇒ (Any", 1, 9, "unexpected end of line; expected ',', '(', ')' or '[' after 'Any'"),
        ("A ⇒ $", 1, 5, "unexpected character '$'; expected a name, a string, a number, '(', '[' or '{' after '⇒'"),
        ("\n\n  ⇒ Any", 3, 3, "unexpected '⇒'; expected a name or the end of the line"),
        (
            "A ⇒ Any\nf: A → A ⇒ x → f(x;",
            2,
            19,
            "unexpected character ';'; expected ',', '(', ')', '[' or '{' after 'x'",
        ),
        ("A ⇒ Any\nf: A → A ⇒ x → 'oops", 2, 16, "unterminated string: it must end with ' on the same line"),
        ("A ⇒ Any\nf ≤ g @", 2, 8, "unexpected end of line; expected a number after '@'"),
        ("A ⇒ {}", 1, 6, "unexpected '}'; expected a name, a string, a number or '(' after '{'"),
        ("f: A → B ⇒ (x,\ny) → x", 1, 15, "unexpected end of line"),
        ("A ⇒ Any\nfoo(A) ≤ id(A)", 2, 1, "a path is edge names joined by '·', or id(X); not foo(A)"),
        ("A ⇒ Any\nf: A → A ⇒ (x, x) → x", 2, 12, "the parameter 'x' appears twice"),
        ("A ⇒ Any\nf: A → A ⇒ f(x) → x", 2, 12, "a lambda's parameters are a name or a tuple of names; not 'f(x)'"),
        ("A ⇒ [xs[3]]", 1, 6, "could not evaluate 'xs[3]': IndexError: list index out of range"),
    ],
)
def test_syntax_errors(text, line, column, message):
    with pytest.raises(DiagramSyntaxError) as info:
        parse(text, {"xs": [0], "f": abs})
    e = info.value
    assert (e.line, e.column) == (line, column)
    assert e.message.startswith(message)
    assert e.text == text.split("\n")[line - 1]


def test_a_lambda_cut_short_points_at_the_end_of_the_text():
    with pytest.raises(DiagramSyntaxError) as info:
        Lambda.parse("x → f(")
    assert (info.value.line, info.value.column) == (1, 7)
    assert info.value.message == ("unexpected end of text; expected a name, a string, a number, '(' or ')' after '('")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("A ⇒ Anny", "line 1, column 5: unknown name 'Anny'; did you mean 'Any'?"),
        (
            "A ⇒ Any\nf: A → A ⇒ x → lstn(x[0])",
            "line 2, column 16: unknown name 'lstn'; did you mean 'lstm'?",
        ),
        ("A ⇒ Any\nf: A → A ⇒ (x, y) → (x, z)", "line 2, column 25: unknown name 'z'"),
        ("A ⇒ Any\nlstn: A → A", "line 2, column 1: unknown name 'lstn'; did you mean 'lstm'?"),
        ("A ⇒ {Tensor, crossentropy}", "column 14: unknown name 'crossentropy'; did you mean 'cross_entropy'"),
    ],
)
def test_unknown_names_are_reported_where_they_are(text, message):
    with pytest.raises(UnknownNameError) as info:
        parse(text, {"lstm": abs})
    assert message in str(info.value)
    assert isinstance(info.value, KeyError)


@pytest.mark.parametrize(
    ("text", "column", "message"),
    [
        ("Y ⇒ {mse, Tensor, l1}", 19, "vertex 'Y' is given two losses, 'mse' and 'l1'"),
        ("Y ⇒ {Tensor, mse, Any}", 19, "vertex 'Y' is given two types, 'Tensor' and 'Any'"),
    ],
)
def test_a_set_holds_at_most_one_loss_and_one_type(text, column, message):
    with pytest.raises(DiagramSyntaxError, match=re.escape(message)) as info:
        parse(text)
    assert (info.value.line, info.value.column) == (1, column)


def test_wrong_arity_at_call_time_names_the_pattern_and_the_value():
    f = Lambda.parse("(x, (y, z)) → z")
    with pytest.raises(
        MapError,
        match=re.escape(
            "Lambda((x, (y, z)) → z) cannot match the pattern (y, z) against a tuple of 3 items; "
            "it needs a tuple or list of 2 items"
        ),
    ):
        f((1, (2, 3, 4)))
    with pytest.raises(MapError, match=r"pattern \(x, \(y, z\)\) against a Tensor of shape \(2, 2\)"):
        f(torch.zeros(2, 2))
    with pytest.raises(MapError, match="against a value of type int"):
        f(1)


def test_wrong_arity_in_a_compiled_diagram_names_the_edge():
    batch = (torch.zeros(2), torch.zeros(2), torch.zeros(2))
    d = parse("A ⇒ [ds]\nB ⇒ mse\nf: A → B ⇒ (x, y) → x\ng: A → B ⇒ (x, y) → y\nf ≤ g", {"ds": [batch]})
    with pytest.raises(MapError, match=r"edge 'f' .*pattern \(x, y\) against a tuple of 3 items"):
        d.compile()({"A": batch})


@pytest.mark.parametrize(
    ("text", "error", "message"),
    [
        ("A ⇒ Any\nA ⇒ Any", DuplicateNameError, "line 2, column 1: vertex 'A' is declared twice"),
        ("A ⇒ Any\n  f: A → B ⇒ g", UnknownNameError, "line 2, column 3: edge 'f' refers to no vertex named 'B'"),
        ("A ⇒ Any\nB ⇒ Any\nf: A → B ⇒ g\nh: B → A ⇒ g\nf ≤ h", NotParallelError, "line 5, column 1: relation f ≤ h"),
        ("A ⇒ Any\nf ≤ g", UnknownNameError, "line 2, column 1: path 'f' names no edge 'f'"),
        ("A ⇒ Any\nid(B) ≤ id(A)", UnknownNameError, "line 2, column 1: identity path id(B)"),
        ("A ⇒ Any\nf: A → A ⇒ k", DiagramError, "line 2, column 1: edge 'f' (A → A) needs a torch.nn.Module"),
        ("A ⇒ 3", DiagramError, "line 1, column 1: vertex 'A': 3 is not a type annotation"),
    ],
)
def test_builder_errors_keep_their_class_and_gain_a_position(text, error, message):
    with pytest.raises(error) as info:
        parse(text, {"g": abs, "k": 3})
    assert str(info.value).startswith(message)
    assert type(info.value.__cause__) is type(info.value)


def test_a_model_name_that_clashes_with_module_dict_is_refused():
    with pytest.raises(InvalidNameError, match="line 2, column 12: the model named 'keys'"):
        parse("A ⇒ Any\nf: A → A ⇒ x → keys(x)", {"keys": torch.nn.Identity()})


# ---------------------------------------------------------------------------
# Listing 1 as the paper prints it: a Julia block, with Julia types

# Copied from the paper's text (Listing 1 of "Learning diagrams", /work/shared/papers/learning-diagrams.md
# in the project's workspace), from "diagram = @LD begin" to "end", unchanged.
PAPER_LISTING_1 = """\
diagram = @LD begin
  N ⇒ [train_ds]
  Z_I_x_Y ⇒ (Any, Vector{Float64})
  Z_L ⇒ Any
  Y ⇒ {Vector{Float64}, cross_entropy}
  CNN_x_Y: N → Z_I_x_Y ⇒ x → (v_model(x[0]), x[1])
  LSTM: Z_I_x_Y → Z_L ⇒ (x, y) → lstm(x)
  Label: Z_I_x_Y → Y ⇒ (x, y) → y
  Prediction: Z_L → Y ⇒ x → predict(x)
  CNN_x_Y · LSTM · Prediction ≤ CNN_x_Y · Label
end
"""

PAPER = Path("/work/shared/papers/learning-diagrams.md")


@pytest.mark.skipif(not PAPER.exists(), reason="the paper's text is not in this workspace")
def test_the_listing_is_the_papers_text():
    assert PAPER_LISTING_1 in PAPER.read_text(encoding="utf-8")


def test_listing_1_as_printed_parses_with_its_julia_types(env):
    d = parse(PAPER_LISTING_1, env)
    vector = TensorType(None, dtype=torch.float64)
    assert d.spaces["Z_I_x_Y"].type == (typing.Any, vector)
    assert d.spaces["Y"].type == vector and d.spaces["Y"].loss is losses.cross_entropy
    assert d.spaces["Z_L"].type is typing.Any and d.spaces["N"].data is env["train_ds"]
    [relation] = d.relations
    assert (relation.first.edges, relation.second.edges) == (("CNN_x_Y", "LSTM", "Prediction"), ("CNN_x_Y", "Label"))
    body = "\n".join(PAPER_LISTING_1.splitlines()[1:-1])  # without "diagram = @LD begin" and "end"
    assert structure(parse(body, env)) == structure(d)
    assert structure(parse(PAPER_LISTING_1.replace("diagram = @LD", "@LD"), env)) == structure(d)
    # The same diagram as the ASCII listing with Tensor for Vector{Float64}, but for the two types.
    plain = structure(parse(LISTING_1, env))
    assert structure(d)[1:] == plain[1:]


def test_an_error_inside_the_block_keeps_its_line_and_column(env):
    broken = PAPER_LISTING_1.replace("Vector{Float64})", "Vector{Float64)")
    with pytest.raises(DiagramSyntaxError) as info:
        parse(broken, env)
    assert (info.value.line, info.value.column) == (3, 33)
    assert info.value.message.startswith("unexpected ')'; expected ',', '(', '[' or '}' after 'Float64'")
    assert info.value.text == "  Z_I_x_Y ⇒ (Any, Vector{Float64)"


@pytest.mark.parametrize(
    ("spec", "annotation"),
    [
        ("Vector{Float64}", TensorType(None, dtype=torch.float64)),
        ("Vector{Any}", TensorType(None)),
        ("AbstractVector{Int64}", TensorType(None, dtype=torch.int64)),
        ("Matrix{Float32}", TensorType(None, None, dtype=torch.float32)),
        ("Array{Float16, 3}", TensorType(None, None, None, dtype=torch.float16)),
        ("Array{Bool}", torch.bool),
        ("Array{Any}", torch.Tensor),
        ("Tuple{Vector{Float64}, Int}", (TensorType(None, dtype=torch.float64), torch.int64)),
        ("Tuple{}", ()),
        ("Tuple{Any,}", (typing.Any,)),
        ("NTuple{2, Matrix{UInt8}}", (TensorType(None, None, dtype=torch.uint8),) * 2),
        ("Float64", torch.float64),
        ("(Any, Tuple{Float32, ComplexF64})", (typing.Any, (torch.float32, torch.complex128))),
        ("{Matrix{Float32}, mse}", TensorType(None, None, dtype=torch.float32)),
    ],
)
def test_julia_types_map_onto_annotations(spec, annotation):
    assert parse(f"Z ⇒ {spec}").spaces["Z"].type == annotation


def test_braces_after_the_arrow_are_a_set_and_after_a_name_type_parameters():
    d = parse("Y ⇒ {Vector{Float64}, cross_entropy}\nZ ⇒ {Vector{Float64}}\nW ⇒ {Tensor}")
    assert d.spaces["Y"].loss is losses.cross_entropy and d.spaces["Y"].type == TensorType(None, dtype=torch.float64)
    assert d.spaces["Z"].type == TensorType(None, dtype=torch.float64) and d.spaces["Z"].loss is None
    assert d.spaces["W"].type is torch.Tensor
    # env shadows the Julia names, as it shadows every default
    assert parse("Z ⇒ Vector{Float64}", {"Float64": torch.float32}).spaces["Z"].type == TensorType(
        None, dtype=torch.float32
    )
    assert parse("@LD begin\nend").spaces == {}  # an empty block is an empty diagram


@pytest.mark.parametrize(
    ("text", "line", "column", "message"),
    [
        ("Z ⇒ (Any, Vector{Float64)", 1, 25, "unexpected ')'; expected ',', '(', '[' or '}' after 'Float64'"),
        ("Y ⇒ {Vector{Float64}, mse", 1, 26, "unexpected end of line; expected ',', '(', '[' or '}' after 'mse'"),
        (
            "A ⇒ Any\nZ ⇒ Vector{}",
            2,
            5,
            "Vector{}: Vector takes 1 parameter (the element type), got 0: write Vector{Float64}",
        ),
        (
            "Z ⇒ (Any, Vector{Float64, 2})",
            1,
            11,
            "Vector{Float64, 2}: Vector takes 1 parameter (the element type), got 2",
        ),
        ("Z ⇒ Vector{3}", 1, 5, "Vector{3}: the element type of Vector is a number type"),
        ("Z ⇒ Tuple{Int64, Vector{Float32, 1}}", 1, 18, "Vector{Float32, 1}: Vector takes 1 parameter"),
        ("Z ⇒ NTuple{Float64, 2}", 1, 5, "NTuple{Float64, 2}: the length of NTuple is a whole number ≥ 0"),
        (
            "Z ⇒ Array{Float32, 3.5}",
            1,
            20,
            "a parameter of Array{...} is a type (Float64, Any, Vector{Float64}, ...) or a whole number, not '3.5'",
        ),
        ("Z ⇒ Vector{f(x)}", 1, 12, "a parameter of Vector{...} is a type"),
        ("Z ⇒ (Any, Vector)", 1, 11, "Vector needs its type parameters: write Vector{Float64}"),
        ("Z ⇒ {Matrix, mse}", 1, 6, "Matrix needs its type parameters: write Matrix{Float32}"),
        ("Z ⇒ mse{Float64}", 1, 5, "mse{Float64}: mse takes no type parameters"),
        ("Z ⇒ Tuple{Vector}", 1, 11, "Vector needs its type parameters: write Vector{Float64}"),
        ("Z ⇒ f(x){Float64}", 1, 9, "unexpected '{'; expected '(', '[' or the end of the line after ')'"),
        (
            "Z ⇒ {Vector{Float64}, Matrix{Float32}}",
            1,
            23,
            "vertex 'Z' is given two types, 'Vector{Float64}' and 'Matrix{Float32}'",
        ),
        ("diagram = @LD begin\nZ ⇒ Any\n", 1, 11, "'@LD begin' opens a block that no 'end' closes"),
        ("Z ⇒ Any\nend  # done", 2, 1, "'end' closes a block that no '@LD begin' opened"),
    ],
)
def test_julia_type_errors_name_their_line_and_column(text, line, column, message):
    with pytest.raises(DiagramSyntaxError) as info:
        parse(text, {"f": abs, "x": 1})
    e = info.value
    assert (e.line, e.column) == (line, column), e
    assert e.message.startswith(message), e.message
    assert e.text == text.split("\n")[line - 1]


def test_a_type_application_in_a_lambda_is_checked_when_it_names_no_parameter():
    assert Lambda.parse("x → (x, Vector{Float64})")(1) == (1, TensorType(None, dtype=torch.float64))
    with pytest.raises(DiagramSyntaxError, match=r"column 9: Vector\{Float64, 1\}: Vector takes 1 parameter"):
        Lambda.parse("x → (x, Vector{Float64, 1})")
