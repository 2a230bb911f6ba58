r"""A text syntax for learning diagrams, after Listing 1 of the paper.

One statement a line; ``#`` starts a comment. Unicode ``⇒ → · ≤`` and ASCII
``=> -> . <=`` mean the same and mix freely.

* ``N ⇒ [train_ds]`` declares a vertex whose data is ``train_ds``;
  ``Z ⇒ (Any, Tensor)`` one with a type; ``Y ⇒ {Tensor, cross_entropy}`` one
  with a type and a loss. Each element of a set is a loss if it is a
  :class:`~learning_diagrams.losses.Loss` or callable and not a type, and a
  type otherwise; a set has at most one of each, and ``Y ⇒ mse`` is read as
  ``Y ⇒ {mse}``.
* A type may be written as in Julia: ``Vector{Float64}``, ``Matrix{Float32}``,
  ``Array{Float32, 3}``, ``Tuple{A, B}``, ``Float64`` (:mod:`.julia` has the
  table). Braces right after a name are its type parameters; braces right
  after ``⇒`` are a set, so ``Y ⇒ {Vector{Float64}, cross_entropy}`` is a set
  holding a type and a loss.
* ``f: A → B ⇒ rhs`` declares an edge. ``rhs`` is an expression for a
  callable (``lstm``, ``heads[3]``) or a lambda ``(x, y) → lstm(x)``; without
  ``⇒ rhs`` the map is ``env['f']``.
* ``f · g ≤ h`` relates two parallel paths; ``id(X)`` is the identity path of
  ``X``, and ``@ 0.5`` after a relation sets its weight.
* The statements may stand inside Listing 1's Julia block, ``@LD begin`` (or
  ``diagram = @LD begin``) on the first line and ``end`` on the last.

Names come from the ``env`` mapping, then from a default namespace: ``Any``,
``Tensor``, the library's losses by name (:data:`learning_diagrams.core.losses.LIBRARY`)
and the Julia types of :mod:`.julia`.
Lambdas are interpreted by :class:`Lambda`, never evaluated as Python: their
language (:mod:`.lambdas`) has names, number and string literals, calls,
indexing, slices, tuples and type applications, and nothing else (no
attributes, no operators).

Expressions nest at most 100 levels (calls, indexing and tuples inside one
another), a number literal has at most 100 characters and a string literal at
most 1,000 (:mod:`.limits`): past them, a :class:`DiagramSyntaxError` gives
the line and column, before anything is built.

>>> import torch
>>> d = parse('''
... X ⇒ [batches]              # the data set: an indexing vertex
... Y ⇒ {Tensor, mse}
... f: X → Y ⇒ x → double(x)
... g: X → Y
... f ≤ g
... ''', {"batches": [torch.ones(2)], "double": lambda x: 2 * x, "g": torch.nn.Identity()})
>>> sorted(d.maps), d.maps["f"].fn
(['f', 'g'], Lambda(x → double(x)))
>>> Lambda.parse("(a, (b, c)) -> (c[1:], b, a)")((1, (2, "xyz")))
('yz', 2, 1)
>>> parse("Z ⇒ (Any, Vector{Float64})").spaces["Z"].type
(typing.Any, TensorType(None, dtype=torch.float64))
"""

from __future__ import annotations

import difflib
import types
import typing
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import torch
from lark import Lark, Token, Tree
from lark.exceptions import UnexpectedCharacters, UnexpectedInput, UnexpectedToken

from ..core.arrays import is_dtype
from ..core.diagram import Diagram
from ..core.errors import (
    DiagramError,
    DiagramSyntaxError,
    InvalidNameError,
    MapError,
    TypeMismatchError,
    UnknownNameError,
)
from ..core.messages import located
from ..core.losses import LIBRARY, Loss
from ..core.types import TensorType
from . import julia
from .lambdas import (
    Call,
    Const,
    Expr,
    Index,
    Name,
    Pattern,
    Slice,
    Tuple,
    TypeApply,
    evaluate,
    free_names,
    pattern_names,
    show,
    type_applications,
)
from .limits import bounded_messages, check_text_brackets, check_text_tree, clipped, excerpt

__all__ = ["parse", "Lambda"]

GRAMMAR = r"""
start: (_NL | statement _NL)*
function: expr _ARROW expr

?statement: vertex | edge | relation
vertex: NAME _DARROW spec
edge: NAME _COLON NAME _ARROW NAME [_DARROW rhs]
relation: path _LEQ path [_AT number]

spec: _LSQB expr _RSQB                                -> data_spec
    | _LBRACE expr (_COMMA expr)* _COMMA? _RBRACE     -> set_spec
    | expr                                            -> bare_spec
rhs: expr (_ARROW expr)?
path: NAME (_DOT NAME)*                               -> edge_path
    | NAME _LPAR NAME _RPAR                           -> identity_path

?expr: NAME                                           -> name
     | STRING                                         -> string
     | number
     | expr _LPAR _RPAR                               -> call
     | expr _LPAR expr (_COMMA expr)* _COMMA? _RPAR   -> call
     | expr _LSQB key _RSQB                           -> index
     | _LPAR expr _RPAR
     | _LPAR _RPAR                                    -> tuple
     | _LPAR expr _COMMA _RPAR                        -> tuple
     | _LPAR expr (_COMMA expr)+ _COMMA? _RPAR        -> tuple
     | NAME _LBRACE _RBRACE                           -> type_apply
     | NAME _LBRACE expr (_COMMA expr)* _COMMA? _RBRACE -> type_apply
number: MINUS? (INT | FLOAT)
key: integer                                          -> integer_key
   | STRING                                           -> string_key
   | [integer] _COLON [integer]                       -> slice_key
integer: MINUS? INT

NAME: /[^\W\d]\w*/
INT: /[0-9]+/
FLOAT: /[0-9]+\.[0-9]+([eE][-+]?[0-9]+)?|[0-9]+[eE][-+]?[0-9]+/
STRING: /'[^'\\\n]*'|"[^"\\\n]*"/
MINUS: "-"
_DARROW: "⇒" | "=>"
_ARROW: "→" | "->"
_LEQ: "≤" | "<="
_DOT: "·" | "."
_COLON: ":"
_COMMA: ","
_AT: "@"
_LPAR: "("
_RPAR: ")"
_LSQB: "["
_RSQB: "]"
_LBRACE: "{"
_RBRACE: "}"
_NL: /\r?\n/
COMMENT: /#[^\n]*/
SPACE: /[ \t\f\r]+/
%ignore SPACE
%ignore COMMENT
"""

_PARSER = Lark(
    GRAMMAR,
    parser="lalr",
    start=["start", "function"],
    propagate_positions=True,
    maybe_placeholders=True,
)


# ---------------------------------------------------------------------------
# Lambdas as modules


def _describe(value: Any) -> str:
    if isinstance(value, (tuple, list)):
        return f"a {type(value).__name__} of {len(value)} item{'s' * (len(value) != 1)}"
    if isinstance(value, torch.Tensor):
        return f"a Tensor of shape {tuple(value.shape)}"
    return f"a value of type {type(value).__name__}"


class Lambda(torch.nn.Module):
    """A map written ``params → body`` in the text syntax, as a module.

    The body is interpreted, never evaluated as Python. Every environment
    value the body names that is an :class:`torch.nn.Module` is a submodule
    (in :attr:`env`, keyed by its name), so the lambda's parameters are those
    of the models it calls; other values it names are kept in
    :attr:`constants`.

    Parameters
    ----------
    pattern : str or tuple
        The parameters: a name, or a (nested) tuple of names that the input
        is destructured against.
    body : Expr
        The body, an AST of :class:`Name`, :class:`Const`, :class:`Call`,
        :class:`Index` and :class:`Tuple`.
    env : Mapping[str, Any], optional
        Values for the names of ``body`` that are not parameters.
    source : str, optional
        The text the lambda was written as, shown by ``repr``.

    Raises
    ------
    UnknownNameError
        If ``body`` names something that is neither a parameter nor in ``env``.

    Examples
    --------
    >>> net = torch.nn.Linear(2, 2)
    >>> f = Lambda.parse("(x, y) -> (net(x), y)", {"net": net})
    >>> f
    Lambda((x, y) -> (net(x), y))
    >>> [p is q for p, q in zip(f.parameters(), net.parameters())]
    [True, True]
    """

    def __init__(
        self,
        pattern: Pattern,
        body: Expr,
        env: Mapping[str, Any] | None = None,
        source: str | None = None,
    ):
        super().__init__()
        env = {} if env is None else env
        bound = set(pattern_names(pattern))
        used = {n.id for n in free_names(body) if n.id not in bound}
        missing = sorted(used - env.keys())
        if missing:
            raise UnknownNameError(_unknown_name_message(missing[0], env.keys() | bound))
        self.pattern, self.body = pattern, body
        self.source = source if source is not None else f"{show(pattern)} → {show(body)}"
        self.__name__ = self.source  # a lambda is named by what it was written as (drawings show it)
        self.env, self.constants = torch.nn.ModuleDict(), {}
        for name in sorted(used):
            if not isinstance(env[name], torch.nn.Module):
                self.constants[name] = env[name]
            elif hasattr(self.env, name):
                raise InvalidNameError(
                    f"the model named {name!r} clashes with an attribute of "
                    "torch.nn.ModuleDict; give it another name in env"
                )
            else:
                self.env[name] = env[name]

    @classmethod
    def parse(cls, source: str, env: Mapping[str, Any] | None = None) -> Lambda:
        """The lambda written ``source`` (e.g. ``"(x, y) → f(x)"``), names from ``env``.

        Names not in ``env`` fall back to the default namespace, as in :func:`parse`.
        """
        _check_arguments(source, env, "Lambda.parse")
        tree = _parse_tree(source, start="function")
        return _Compiler(source, env).function(tree)

    def forward(self, x: Any) -> Any:
        scope = {**self.constants, **self.env}
        self._bind(self.pattern, x, scope)
        return evaluate(self.body, scope)

    def _bind(self, pattern: Pattern, value: Any, scope: dict[str, Any]) -> None:
        if isinstance(pattern, str):
            scope[pattern] = value
            return
        if not isinstance(value, (tuple, list)) or len(value) != len(pattern):
            raise MapError(
                f"{self!r} cannot match the pattern {show(pattern)} against "
                f"{_describe(value)}; it needs a tuple or list of {len(pattern)} items"
            )
        for sub, item in zip(pattern, value):
            self._bind(sub, item, scope)

    def __repr__(self) -> str:
        return f"Lambda({self.source})"


# ---------------------------------------------------------------------------
# Statements: from the parse tree to builder calls.


DEFAULTS: Mapping[str, Any] = types.MappingProxyType(
    {
        "Any": typing.Any,
        "Tensor": torch.Tensor,
        **julia.NAMES,
        **LIBRARY,
    }
)
"""The names every text may use unless ``env`` shadows them: ``Any``, ``Tensor``, the Julia types
of :mod:`.julia` and the library's losses."""


def _is_type(value: Any) -> bool:
    return (
        isinstance(value, (type, tuple, types.GenericAlias, types.UnionType, TensorType, julia.JuliaType))
        or value is typing.Any
        or type(value).__module__ == "typing"
        or is_dtype(value)
    )


def _is_loss(value: Any) -> bool:
    return isinstance(value, Loss) or (callable(value) and not _is_type(value))


def _unknown_name_message(name: str, known: Iterable[str]) -> str:
    message = f"unknown name {clipped(name)!r}"
    close = difflib.get_close_matches(name, sorted(known), n=3)
    if close:
        message += f"; did you mean {' or '.join(repr(c) for c in close)}?"
    return message


def parse(text: str, env: Mapping[str, Any] | None = None) -> Diagram:
    """The learning diagram that ``text`` declares, its names taken from ``env``.

    Parameters
    ----------
    text : str
        Statements in the text syntax (see the module documentation).
    env : Mapping[str, Any], optional
        Values for the names in ``text``: data sets, models, callables,
        losses, types. They shadow the default namespace (``Any``, ``Tensor``
        and the losses of :mod:`learning_diagrams.core.losses`).

    Returns
    -------
    Diagram
        The diagram, built statement by statement with
        :meth:`Diagram.space`, :meth:`Diagram.map` and :meth:`Diagram.relate`.

    Raises
    ------
    DiagramSyntaxError
        If ``text`` is not in the syntax, with the line and column.
    UnknownNameError
        If ``text`` names something neither in ``env`` nor a default.
    TypeMismatchError
        If ``text`` is not a string, or ``env`` not a mapping (also a :class:`TypeError`).
    DiagramError
        Any error of the builder, its message prefixed with the line and
        column of the statement.
    """
    _check_arguments(text, env, "parse")
    text = julia.unwrap_block(text)
    compiler = _Compiler(text, env)
    diagram = Diagram()
    for statement in _parse_tree(text + "\n", start="start").children:
        compiler.statement(diagram, statement)
    return diagram


_WORDS = {
    "NAME": "a name",
    "STRING": "a string",
    "INT": "a number",
    "FLOAT": "a number",
    "MINUS": "a number",
    "_DARROW": "'⇒'",
    "_ARROW": "'→'",
    "_LEQ": "'≤'",
    "_DOT": "'·'",
    "_COLON": "':'",
    "_COMMA": "','",
    "_AT": "'@'",
    "_LPAR": "'('",
    "_RPAR": "')'",
    "_LSQB": "'['",
    "_RSQB": "']'",
    "_LBRACE": "'{'",
    "_RBRACE": "'}'",
    "_NL": "the end of the line",
    "$END": "the end of the text",
}


def _check_arguments(text: Any, env: Any, where: str) -> None:
    if not isinstance(text, str):
        raise TypeMismatchError(f"{where} takes the text to read, a str; got a {type(text).__name__}")
    if env is not None and not isinstance(env, Mapping):
        raise TypeMismatchError(
            f"{where}: env must be a mapping from names to objects, e.g. {{'model': model}}; got a {type(env).__name__}"
        )


def _parse_tree(text: str, start: str) -> Tree:
    check_text_brackets(text)  # a cheap scan first: a text nested far too deep costs no parse
    try:
        tree = _PARSER.parse(text, start=start)
    except (UnexpectedCharacters, UnexpectedToken) as e:
        raise _syntax_error(text, start, e) from None
    check_text_tree(tree, text.split("\n"))  # before the compiler recurses on the tree
    return tree


def _syntax_error(text: str, start: str, e: UnexpectedCharacters | UnexpectedToken) -> DiagramSyntaxError:
    """A lark error in plain words: what was found, what was expected, after what."""
    lines = text.split("\n")
    line, column = e.line, e.column
    if isinstance(e, UnexpectedToken):
        message = f"unexpected {_describe_token(e.token)}"
        expected = set(e.accepts or e.expected)
        if e.token.type == "$END":
            line, column = len(lines), len(lines[-1]) + 1
    elif e.char in "'\"":
        message = f"unterminated string: it must end with {e.char} on the same line"
        expected = set()
    else:
        message = f"unexpected character {e.char!r}"
        expected = _accepts(text[: e.pos_in_stream], start)
    source = lines[line - 1].rstrip("\r")
    if {"_DARROW", "_COLON"} <= expected:
        message += "; expected '⇒' (a vertex), ':' (an edge) or '≤' (a relation)"
    elif expected:
        words = list(dict.fromkeys(w for t, w in _WORDS.items() if t in expected))
        if "_NL" in expected and "$END" in expected:  # a blank line or the end: say one
            words.remove("the end of the text")
        message += f"; expected {_or(words)}"
    previous = _previous_token(source[: column - 1])
    if expected and previous is not None:
        message += f" after {clipped(previous, 40)!r}"
    return DiagramSyntaxError(message, text=excerpt(source, column), line=line, column=column)


def _accepts(prefix: str, start: str) -> set[str]:
    """The terminals the parser accepts after ``prefix`` (which lexes)."""
    parser = _PARSER.parse_interactive(prefix, start=start)
    parser.exhaust_lexer()
    return parser.accepts()


def _describe_token(token: Token) -> str:
    if token.type == "$END":
        return "end of text"
    if token.type == "_NL":
        return "end of line"
    if token.type == "NAME":
        return f"name {clipped(token.value, 40)!r}"
    return repr(clipped(token.value, 40))


def _or(words: list[str]) -> str:
    return words[0] if len(words) == 1 else f"{', '.join(words[:-1])} or {words[-1]}"


def _previous_token(prefix: str) -> str | None:
    try:
        tokens = list(_PARSER.lex(prefix))
    except UnexpectedInput:
        return None
    return tokens[-1].value if tokens else None


class _Compiler:
    """Turns parse trees into builder calls, names resolved in one scope."""

    def __init__(self, text: str, env: Mapping[str, Any] | None):
        self.text, self.lines = text, text.split("\n")
        self.scope = {**DEFAULTS, **(env or {})}

    # -- statements ---------------------------------------------------------

    def statement(self, diagram: Diagram, tree: Tree) -> None:
        getattr(self, tree.data)(diagram, tree)

    def vertex(self, diagram: Diagram, tree: Tree) -> None:
        name, spec = _token(tree.children[0]), _tree(tree.children[1])
        if spec.data == "data_spec":
            kwargs = {"data": self.value(spec.children[0])}
        else:
            kwargs = self.loss_and_type(name, spec.children)
        self.located(tree, diagram.space, str(name), **kwargs)

    def loss_and_type(self, vertex: Token, elements: list[Tree]) -> dict[str, Any]:
        found: dict[str, Tree] = {}
        kwargs: dict[str, Any] = {}
        for element in elements:
            self.check_bare_constructors(self.expr(element))
            value = self.value(element)
            kind, kinds = ("loss", "losses") if _is_loss(value) else ("type", "types")
            if kind in found:
                raise self.syntax_error(
                    element,
                    f"vertex {clipped(str(vertex))!r} is given two {kinds}, "
                    f"{clipped(self.source(found[kind]))!r} and {clipped(self.source(element))!r}; "
                    "a vertex has at most one loss and one type",
                )
            found[kind], kwargs[kind] = element, value
        return kwargs

    def edge(self, diagram: Diagram, tree: Tree) -> None:
        name, src, tgt, rhs = tree.children
        if rhs is None:
            name = _token(name)
            fn = self.lookup(name.value, name.line or 0, name.column or 0)
        elif len(rhs.children) == 2:
            fn = self.function(rhs)
        else:
            fn = self.value(rhs.children[0])
        self.located(tree, diagram.map, str(name), str(src), str(tgt), fn)

    def relation(self, diagram: Diagram, tree: Tree) -> None:
        first, second, weight = tree.children
        kwargs = {} if weight is None else {"weight": self.number(weight)}
        self.located(tree, diagram.relate, self.path(first), self.path(second), **kwargs)

    def path(self, tree: Tree) -> list[str] | str:
        if tree.data == "edge_path":
            return [str(token) for token in tree.children]
        head, vertex = tree.children
        if head != "id":
            raise self.syntax_error(head, f"a path is edge names joined by '·', or id(X); not {head}({vertex})")
        return f"id({vertex})"

    def located(self, tree: Tree, method: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Call the builder (or :class:`Lambda`), its errors located at ``tree``."""
        line, column = tree.meta.line, tree.meta.column
        try:
            with located(f"line {line}, column {column}"), bounded_messages():
                return method(*args, **kwargs)
        except DiagramSyntaxError as e:
            raise DiagramSyntaxError(e.message, text=self.line_text(line, column), line=line, column=column) from e

    # -- expressions --------------------------------------------------------

    def function(self, tree: Tree) -> Lambda:
        params, body = (self.expr(child) for child in tree.children)
        pattern = self.pattern(params, tree.children[0])
        names = pattern_names(pattern)
        for name in names:
            if names.count(name) > 1:
                raise self.syntax_error(tree, f"the parameter {name!r} appears twice")
        self.check_names(body, bound=set(names))
        self.check_type_applications(body, bound=set(names))
        return self.located(tree, Lambda, pattern, body, self.scope, source=self.source(tree))

    def pattern(self, expr: Expr, tree: Tree) -> Pattern:
        match expr:
            case Name(id):
                return id
            case Tuple(items):
                return tuple(self.pattern(item, tree) for item in items)
        raise self.syntax_error(
            tree,
            f"a lambda's parameters are a name or a tuple of names; not {clipped(self.source(tree))!r}",
        )

    def value(self, tree: Tree) -> Any:
        """Evaluate the expression ``tree`` now, in the scope."""
        expr = self.expr(tree)
        self.check_names(expr, bound=set())
        self.check_type_applications(expr, bound=set())
        try:
            return evaluate(expr, self.scope)
        except Exception as e:
            raise self.syntax_error(
                tree, f"could not evaluate {clipped(self.source(tree))!r}: {type(e).__name__}: {clipped(str(e), 300)}"
            ) from e

    def check_names(self, expr: Expr, bound: set[str]) -> None:
        for name in free_names(expr):
            if name.id not in bound:
                self.lookup(name.id, name.line, name.column, bound)

    def lookup(self, name: str, line: int, column: int, bound: Iterable[str] = ()) -> Any:
        if name not in self.scope:
            known = self.scope.keys() | set(bound)
            raise UnknownNameError(f"line {line}, column {column}: {_unknown_name_message(name, known)}")
        return self.scope[name]

    def expr(self, tree: Tree) -> Expr:
        kids = tree.children
        match tree.data:
            case "name":
                token = _token(kids[0])
                return Name(token.value, token.line or 0, token.column or 0)
            case "string":
                return Const(_token(kids[0]).value[1:-1])
            case "number":
                return Const(self.number(tree))
            case "call":
                return Call(self.expr(kids[0]), tuple(self.expr(k) for k in kids[1:]))
            case "index":
                return Index(self.expr(kids[0]), self.key(kids[1]))
            case "tuple":
                return Tuple(tuple(self.expr(k) for k in kids))
            case "type_apply":
                head = _token(kids[0])
                params = tuple(self.type_parameter(_tree(k), head.value) for k in kids[1:])
                line, column = head.line or 0, head.column or 0
                return TypeApply(Name(head.value, line, column), params, line, column)
        raise AssertionError(f"unknown parse tree {tree.data}")  # pragma: no cover

    def type_parameter(self, tree: Tree, head: str) -> Expr:
        """A parameter of ``head{...}``: a type (a name, a type application) or a whole number."""
        expr = self.expr(tree)
        if isinstance(expr, (Name, TypeApply)) or (isinstance(expr, Const) and type(expr.value) is int):
            return expr
        raise self.syntax_error(
            tree,
            f"a parameter of {clipped(head, 40)}{{...}} is a type (Float64, Any, Vector{{Float64}}, ...) or a "
            f"whole number, not {clipped(self.source(tree))!r}",
        )

    def check_type_applications(self, expr: Expr, bound: set[str]) -> None:
        """Evaluate each type application of ``expr`` once, innermost first, so that a wrong one is
        reported at its own line and column. Those naming a lambda's parameters wait for the call."""
        for node in type_applications(expr):
            if any(n.id in bound for n in free_names(node)):
                continue
            head = evaluate(node.head, self.scope)
            params = tuple(evaluate(p, self.scope) for p in node.params)
            try:
                if not isinstance(head, julia.JuliaType) and not hasattr(head, "__getitem__"):
                    raise TypeMismatchError(
                        f"{clipped(node.head.id, 40)} takes no type parameters; a parametric type is one of "
                        f"{', '.join(julia.CONSTRUCTORS)}"
                    )
                head[params]
            except Exception as e:
                why = str(e) if isinstance(e, DiagramError) else f"{type(e).__name__}: {clipped(str(e), 300)}"
                raise DiagramSyntaxError(
                    f"{clipped(show(node), 80)}: {why}",
                    text=self.line_text(node.line, node.column),
                    line=node.line,
                    column=node.column,
                ) from e

    def check_bare_constructors(self, expr: Expr) -> None:
        """Refuse a parametric type without its parameters (``Vector`` for ``Vector{Float64}``) as a type."""
        heads = {id(node.head) for node in type_applications(expr)}
        for name in free_names(expr):
            value = self.scope.get(name.id)
            if id(name) not in heads and isinstance(value, julia.JuliaType):
                raise DiagramSyntaxError(
                    f"{name.id} needs its type parameters: write {value.example()}",
                    text=self.line_text(name.line, name.column),
                    line=name.line,
                    column=name.column,
                )

    def key(self, tree: Tree) -> int | str | Slice:
        match tree.data:
            case "integer_key":
                return self.integer(_tree(tree.children[0]))
            case "string_key":
                return _token(tree.children[0]).value[1:-1]
        start, stop = (None if k is None else self.integer(_tree(k)) for k in tree.children)
        return Slice(start, stop)

    @staticmethod
    def number(tree: Tree) -> int | float:
        *sign, digits = tree.children
        digits = _token(digits)
        value = int(digits) if digits.type == "INT" else float(digits)
        return -value if sign else value

    @classmethod
    def integer(cls, tree: Tree) -> int:
        value = cls.number(tree)
        assert isinstance(value, int), "the grammar's integer rule reads digits only"
        return value

    # -- positions ----------------------------------------------------------

    def source(self, tree: Tree) -> str:
        return self.text[tree.meta.start_pos : tree.meta.end_pos]

    def line_text(self, line: int, column: int) -> str:
        return excerpt(self.lines[line - 1].rstrip("\r"), column)

    def syntax_error(self, where: Tree | Token, message: str) -> DiagramSyntaxError:
        line = (where.line if isinstance(where, Token) else where.meta.line) or 1
        column = (where.column if isinstance(where, Token) else where.meta.column) or 1
        return DiagramSyntaxError(message, text=self.line_text(line, column), line=line, column=column)


def _token(node: Tree | Token) -> Token:
    """A child the grammar makes a token (lark types children as either)."""
    assert isinstance(node, Token), f"expected a token, got {node!r}"
    return node


def _tree(node: Tree | Token) -> Tree:
    """A child the grammar makes a tree."""
    assert isinstance(node, Tree), f"expected a tree, got {node!r}"
    return node
