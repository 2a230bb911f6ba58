"""Limits on what the readers accept, so that every input is answered in bounded time and memory.

The text syntax (:mod:`.syntax`) and the diagram files (:mod:`.acset`,
:mod:`.config`) are read by code that recurses on nesting, and error messages
show the values they refuse. Without limits, a short input can exhaust the
stack (a few hundred nested calls), the CPU (a number of thousands of digits)
or the memory (a YAML alias expanded in a message). So:

| limit | value | where |
| --- | --- | --- |
| :data:`MAX_NESTING` | 100 levels | calls, indexing and tuples in the text syntax (brackets: 101) |
| :data:`MAX_NUMBER_LENGTH` | 100 characters | a number literal of the text syntax |
| :data:`MAX_STRING_LENGTH` | 1,000 characters | a string literal of the text syntax |
| :data:`MAX_FILE_DEPTH` | 64 levels | lists and mappings in a JSON or YAML file |
| :data:`MAX_SHOWN` | 80 characters | a value shown in an error message (a whole message: 800) |
| YAML anchors and aliases | refused | diagram files and training configs (:mod:`.config`) |
| duplicate keys | found with a set | JSON and YAML: linear time |

Each is checked before the recursive work starts, by a loop (never by
recursion), and refused with a :class:`~learning_diagrams.core.errors.DiagramSyntaxError`
(the text syntax: line and column) or a
:class:`~learning_diagrams.core.errors.FileFormatError` (files: line and column
of the text). Real diagrams stay far inside them: a diagram file nests about
six levels, a lambda a handful.

>>> shown("x" * 1000)[:20], len(shown("x" * 1000)) <= MAX_SHOWN
("'xxxxxxxxxxxxxxxxxxx", True)
>>> shown(10**5000)
'an integer of about 5001 digits'
>>> json_depth('{"a": [[1], {"b": "[[["}]}')
3
"""

from __future__ import annotations

import contextlib
import math
import re
import reprlib
from collections.abc import Iterator
from typing import Any

from lark import Token, Tree

from ..core.errors import DiagramError, DiagramSyntaxError, FileFormatError

__all__ = [
    "MAX_NESTING",
    "MAX_NUMBER_LENGTH",
    "MAX_STRING_LENGTH",
    "MAX_FILE_DEPTH",
    "MAX_SHOWN",
    "shown",
    "clipped",
    "bounded_messages",
    "line_and_column",
    "check_text_tree",
    "check_text_brackets",
    "check_json_depth",
    "json_depth",
    "excerpt",
]

#: Calls, indexing and tuples nested in one another in the text syntax.
MAX_NESTING = 100
#: Characters of a number literal in the text syntax (a float's 17 significant digits need 25).
MAX_NUMBER_LENGTH = 100
#: Characters of a string literal in the text syntax, between its quotes.
MAX_STRING_LENGTH = 1000
#: Lists and mappings nested in one another in a JSON or YAML diagram file (real files nest about 6).
MAX_FILE_DEPTH = 64
#: Characters of a value shown in an error message.
MAX_SHOWN = 80


class _Shown(reprlib.Repr):
    """``reprlib`` with small bounds, and integers too long to convert named by their size."""

    def __init__(self) -> None:
        super().__init__()
        self.maxlevel, self.maxdict, self.maxlist, self.maxtuple = 3, 4, 6, 6
        self.maxset = self.maxfrozenset = self.maxdeque = self.maxarray = 6
        self.maxstring, self.maxother = MAX_SHOWN, MAX_SHOWN

    def repr_int(self, x: int, level: int) -> str:
        if x.bit_length() > 200:  # str() of a huge int is quadratic, and refused past 4,300 digits
            return f"an integer of about {int(math.log10(abs(x))) + 1} digits"
        return super().repr_int(x, level)

    def repr_dict(self, x: dict[Any, Any], level: int) -> str:
        # reprlib sorts the keys of a dict first (every key, for the four it shows): keep the order.
        if not x:
            return "{}"
        if level <= 0:
            return "{...}"
        items = []
        for k, v in list(x.items())[: self.maxdict]:
            items.append(f"{self.repr1(k, level - 1)}: {self.repr1(v, level - 1)}")
        if len(x) > self.maxdict:
            items.append("...")
        return "{" + ", ".join(items) + "}"


_SHOWN = _Shown()


def shown(value: Any, limit: int = MAX_SHOWN) -> str:
    """A ``repr`` of ``value`` for an error message: at most ``limit`` characters, in bounded time.

    Nested lists and mappings are cut after a few items and levels, so a value
    that shares itself many times over (a YAML alias bomb) costs no more than
    a small one.
    """
    try:
        text = _SHOWN.repr(value)
    except Exception:  # a value whose own __repr__ fails
        text = f"a {type(value).__name__}"
    return text if len(text) <= limit else text[: limit - 1] + "…"


def clipped(text: Any, limit: int = MAX_SHOWN) -> str:
    """``text`` itself when it is a short string, else cut to ``limit`` characters (other values: :func:`shown`)."""
    if not isinstance(text, str):
        return shown(text, limit)
    return text if len(text) <= limit else text[: limit - 1] + "…"


@contextlib.contextmanager
def bounded_messages(limit: int = 800) -> Iterator[None]:
    """Cut the message of a :class:`DiagramError` raised inside to ``limit`` characters, keeping its class.

    For errors of the layers below (the core's builders), which show the names
    they are given whole: a name read from a file can be a megabyte long.
    """
    try:
        yield
    except DiagramSyntaxError:
        raise
    except DiagramError as err:
        message = str(err)
        if len(message) <= limit:
            raise
        cut = f"{message[: limit - 60]}… (cut: the message had {len(message)} characters)"
        try:
            shorter = type(err)(cut)
        except Exception:  # an error class with another constructor
            shorter = DiagramError(cut)
        raise shorter from err


def line_and_column(text: str, pos: int) -> tuple[int, int]:
    """The 1-based line and column of the character at ``pos`` of ``text``."""
    line = text.count("\n", 0, pos) + 1
    return line, pos - (text.rfind("\n", 0, pos) + 1) + 1


def excerpt(line: str, column: int, width: int = 200) -> str:
    """``line`` to show under an error message: whole when short, else up to the column (or nothing).

    The caret of a :class:`~learning_diagrams.core.errors.DiagramSyntaxError`
    is drawn ``column - 1`` spaces in, so the excerpt always starts at the
    line's first character; a line too long to show up to its column is not shown.
    """
    if len(line) <= width:
        return line
    if column > width - 20:
        return ""
    return line[:width] + " …"


# -- the text syntax -------------------------------------------------------------------------

_NESTING_RULES = frozenset({"call", "index", "tuple", "type_apply"})

# A string or a comment (skipped: brackets inside do not nest), or a bracket.
_TEXT_TOKENS = re.compile(r"'[^'\n]*'|\"[^\"\n]*\"|#[^\n]*|[()\[\]{}]")


def check_text_brackets(text: str) -> None:
    """Refuse a text of the text syntax whose brackets nest past :data:`MAX_NESTING` (plus one for a
    vertex's ``[...]`` or ``{...}``), by a scan before parsing, so that such a text costs no parse.

    Brackets bound nesting from below only (``x[0][0]`` nests twice inside one
    pair), so :func:`check_text_tree` still checks the tree.
    """
    depth = 0
    for match in _TEXT_TOKENS.finditer(text):
        token = match.group()
        if token in ("(", "[", "{"):
            depth += 1
            if depth > MAX_NESTING + 1:
                line, column = line_and_column(text, match.start())
                raise _syntax_error(
                    f"brackets are nested more than {MAX_NESTING + 1} levels deep here; "
                    f"name the inner parts in env instead",
                    text.split("\n"),
                    line,
                    column,
                )
        elif token in (")", "]", "}"):
            depth = max(depth - 1, 0)


def check_text_tree(tree: Tree, lines: list[str]) -> None:
    """Refuse a parse tree of the text syntax that nests too deep or holds too long a literal.

    The parser (LALR) is a loop, but turning its tree into expressions, and
    evaluating and showing them, recurses once per level: this bounds that
    before it starts. It walks the tree with an explicit stack.

    Raises
    ------
    DiagramSyntaxError
        At the line and column of the first construct past a limit.
    """
    stack: list[tuple[Tree | Token, int]] = [(tree, 0)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, Token):
            _check_literal(node, lines)
            continue
        if not isinstance(node, Tree):
            continue  # maybe_placeholders leaves None for an absent optional part
        if node.data in _NESTING_RULES:
            depth += 1
            if depth > MAX_NESTING:
                line, column = node.meta.line, node.meta.column
                raise _syntax_error(
                    f"expressions are nested more than {MAX_NESTING} levels deep here (calls, indexing and "
                    f"tuples inside one another); name the inner parts in env instead",
                    lines,
                    line,
                    column,
                )
        stack.extend((child, depth) for child in reversed(node.children))


def _check_literal(token: Token, lines: list[str]) -> None:
    if token.type in ("INT", "FLOAT") and len(token) > MAX_NUMBER_LENGTH:
        what = f"a number of {len(token)} characters; a number literal has at most {MAX_NUMBER_LENGTH}"
    elif token.type == "STRING" and len(token) - 2 > MAX_STRING_LENGTH:
        what = f"a string of {len(token) - 2} characters; a string literal has at most {MAX_STRING_LENGTH}"
    else:
        return
    raise _syntax_error(what, lines, token.line or 1, token.column or 1)


def _syntax_error(message: str, lines: list[str], line: int, column: int) -> DiagramSyntaxError:
    source = lines[line - 1].rstrip("\r") if 0 < line <= len(lines) else ""
    return DiagramSyntaxError(message, text=excerpt(source, column), line=line, column=column)


# -- JSON ----------------------------------------------------------------------------------------

# A JSON string (escapes included, possibly unterminated), or a bracket outside strings.
_JSON_TOKENS = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"?|[\[\]{}]', re.DOTALL)


def json_depth(text: str) -> int:
    """How deep the arrays and objects of the JSON ``text`` nest (a scan, not a parse)."""
    deepest = 0
    for depth, _ in _openings(text):
        deepest = max(deepest, depth)
    return deepest


def _openings(text: str) -> Iterator[tuple[int, int]]:
    """``(depth, position)`` of each ``[`` and ``{`` outside the strings of the JSON ``text``."""
    depth = 0
    for match in _JSON_TOKENS.finditer(text):
        bracket = match.group()
        if bracket in ("[", "{"):
            depth += 1
            yield depth, match.start()
        elif bracket in ("]", "}"):
            depth -= 1


def check_json_depth(text: str) -> None:
    """Refuse JSON ``text`` whose arrays and objects nest deeper than :data:`MAX_FILE_DEPTH`.

    :func:`json.loads` recurses once per level; the scan runs first, in a loop.

    Raises
    ------
    FileFormatError
        Naming the line and column of the first bracket past the limit.
    """
    for depth, position in _openings(text):
        if depth <= MAX_FILE_DEPTH:
            continue
        line, column = line_and_column(text, position)
        raise FileFormatError(
            f"line {line}, column {column}: lists and objects are nested more than {MAX_FILE_DEPTH} "
            f"levels deep; a diagram file nests a few levels"
        )
