"""A griffe extension: the library's reST-flavoured docstrings, read as Markdown.

The docstrings are numpy style and written for doctest and Sphinx; mkdocstrings renders
them as Markdown. This extension rewrites each docstring's text in memory (the sources are
never touched) before griffe parses it:

* a doctest block (``>>>`` lines and their output) becomes a fenced ``pycon`` code block,
  where Markdown would read ``>>>`` as three nested block quotes and ``x[1]`` as a link;
* a Sphinx role (:class:`~a.B`, :func:`.f`, :mod:`x <a.x>`) becomes inline code, linked
  to the object's page through an *optional* autorefs reference when griffe knows the
  object (so an unknown name, ``os.replace`` say, is plain code and never a warning);
* a reST definition list (a term, its definition indented under it) becomes a Markdown
  one (the ``def_list`` extension), where Markdown would run it into one paragraph;
* reST's ``::`` before a literal block becomes ``:`` (the indented block is already
  Markdown's code block).

numpy's own sections (Parameters, Returns, ...) are left to griffe's parser, except that
a role on an entry's first line (a name or a type) becomes plain text, and a section whose
entries are bullets (a list written under a "Modules" heading, say), which griffe would read
as entries named "* ...", becomes a bold title over the list.

Why by hand: no maintained griffe extension reads Sphinx roles or doctest blocks in free
text (the official griffe-sphinx reads ``#:`` comments only), and rewriting every docstring in
Markdown would lose the doctest and Sphinx forms the library's docstrings keep.

Loaded by mkdocs.yml (``plugins.mkdocstrings.handlers.python.options.extensions``).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from griffe import Extension, Module, Object

ROLE = re.compile(r":(?:py:)?(?:class|func|meth|mod|data|attr|exc|obj|const):`(?P<body>[^`]+)`")
FENCE = re.compile(r"^\s*(```|~~~)")
DOCTEST_FLAG = re.compile(r"\s*#\s*doctest:\s*[+-].*$")
LIST_ITEM = re.compile(r"^\s*([*+-]|\d+[.)])\s")
NOT_A_TERM = re.compile(r"^\s*([*+-]\s|\d+[.)]\s|>>>|\.\.\.|\||```|~~~|:)")
# The numpy sections that griffe's numpy parser reads into entries itself.
NUMPY_SECTIONS = {
    "deprecated", "parameters", "other parameters", "type parameters", "returns", "yields", "receives",
    "raises", "warns", "attributes", "functions", "methods", "classes", "type aliases", "modules",
}  # fmt: skip


class MarkdownDocstrings(Extension):
    """Rewrites every docstring of a package once griffe has loaded all of it."""

    def on_package(self, *, pkg: Module, loader: Any, **kwargs: Any) -> None:
        objects: dict[str, Object] = {}
        _collect(pkg, objects)
        for obj in objects.values():
            if obj.docstring is not None:
                text = _bulleted_sections(obj.docstring.value)
                text = _doctests_fenced(text)
                text = _definition_lists(text)
                text = _literal_markers(text)
                obj.docstring.value = _roles(text, obj, objects)


def _collect(obj: Object, objects: dict[str, Object]) -> None:
    objects[obj.path] = obj
    for member in obj.members.values():
        if not member.is_alias:
            _collect(member, objects)  # type: ignore[arg-type]


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def _is_underline(line: str) -> bool:
    return len(line.strip()) >= 3 and set(line.strip()) == {"-"}


def _states(lines: list[str]) -> Iterator[tuple[str, bool, bool]]:
    """Each line with whether it is in a numpy section griffe parses, and whether in a fence."""
    section, fenced = "", False
    for i, line in enumerate(lines):
        following = lines[i + 1] if i + 1 < len(lines) else ""
        if FENCE.match(line):
            fenced = not fenced
        if not fenced and _is_underline(following) and line.strip() and not line.startswith(" "):
            section = line.strip().lower()
        yield line, section in NUMPY_SECTIONS, fenced


def _bulleted_sections(text: str) -> str:
    """A numpy section header over a bullet list (not numpy entries) as a bold title."""
    lines = text.split("\n")
    for i in range(len(lines) - 2):
        title, underline = lines[i].strip(), lines[i + 1]
        if title.lower() in NUMPY_SECTIONS and not lines[i].startswith(" ") and _is_underline(underline):
            first = next((line for line in lines[i + 2 :] if line.strip()), "")
            if LIST_ITEM.match(first):
                lines[i], lines[i + 1] = f"**{title}**", ""
    return "\n".join(lines)


def _doctests_fenced(text: str) -> str:
    """Each run of doctest lines (from ``>>>`` to the next blank line) in a ``pycon`` fence."""
    lines, out, fenced = text.split("\n"), [], False
    i = 0
    while i < len(lines):
        line = lines[i]
        if FENCE.match(line):
            fenced = not fenced
        if fenced or not line.lstrip().startswith(">>>"):
            out.append(line)
            i += 1
            continue
        indent = line[: _indent(line)]
        block = []
        while i < len(lines) and lines[i].strip():
            block.append(DOCTEST_FLAG.sub("", lines[i][len(indent) :] if lines[i].startswith(indent) else lines[i]))
            i += 1
        if out and out[-1].strip():
            out.append("")
        out += [f"{indent}```pycon", *(f"{indent}{b}" for b in block), f"{indent}```", ""]
    return "\n".join(out)


def _definition_lists(text: str) -> str:
    """Each reST definition-list item (a term, its definition indented under it) in Markdown's form."""
    lines, after_item = text.split("\n"), False
    out: list[str] = []
    states = list(_states(lines))
    i = 0
    while i < len(lines):
        line, in_numpy_section, fenced = states[i]
        following = lines[i + 1] if i + 1 < len(lines) else ""
        is_term = (
            not fenced
            and not in_numpy_section
            and line.strip()
            and _indent(line) == 0  # deeper, it is a literal block or a list item's text
            and not NOT_A_TERM.match(line)
            and following.strip()
            and _indent(following) >= 2
            and (not out or not out[-1].strip() or after_item)
        )
        if not is_term:
            out.append(line)
            after_item = after_item and not line.strip()
            i += 1
            continue
        body_indent, j = _indent(following), i + 1
        while j < len(lines) and lines[j].strip() and _indent(lines[j]) > 0:
            j += 1
        body = [b[body_indent:] if _indent(b) >= body_indent else b.strip() for b in lines[i + 1 : j]]
        if out and out[-1].strip():
            out.append("")
        out += [line, f":   {body[0]}", *(f"    {b}" for b in body[1:]), ""]
        after_item, i = True, j
    return "\n".join(out)


def _literal_markers(text: str) -> str:
    """reST's ``text::`` is ``text:``, and ``text ::`` or a line ``::`` is nothing."""
    out = []
    for line, _, fenced in _states(text.split("\n")):
        if fenced:
            out.append(line)
        elif line.strip() == "::":
            out.append("")
        elif line.endswith(" ::"):
            out.append(line[:-3])
        elif line.endswith("::") and not line.endswith(":::"):
            out.append(line[:-1])
        else:
            out.append(line)
    return "\n".join(out)


def _roles(text: str, obj: Object, objects: dict[str, Object]) -> str:
    """Every role as Markdown; on a numpy entry's first line (a name, a type) as plain text."""
    out = []
    for line, in_numpy_section, fenced in _states(text.split("\n")):
        if fenced:
            out.append(line)
        elif in_numpy_section and _indent(line) == 0:
            out.append(ROLE.sub(lambda m: _title(m["body"])[0], line))
        else:
            out.append(ROLE.sub(lambda m: _role(m["body"], obj, objects), line))
    return "\n".join(out)


def _title(body: str) -> tuple[str, str]:
    """A role's title and target, as Sphinx reads ``~a.B``, ``a.B`` and ``title <a.B>``."""
    explicit = re.fullmatch(r"(?P<title>.*?)\s*<(?P<target>[^>]+)>", body)
    if explicit:
        return explicit["title"], explicit["target"].lstrip("~")
    target = body.lstrip("~")
    return (target.rsplit(".", 1)[-1] if body.startswith("~") else target), target


def _role(body: str, obj: Object, objects: dict[str, Object]) -> str:
    """A role's inline code, in an optional autoref when its target is known."""
    title, target = _title(body)
    path = _resolve(target, obj, objects)
    code = f"<code>{_escape(title)}</code>"
    return f'<autoref identifier="{path}" optional>{code}</autoref>' if path else code


def _resolve(target: str, obj: Object, objects: dict[str, Object]) -> str | None:
    """The path of the object that ``target`` names, seen from ``obj`` as Sphinx would."""
    module = obj if obj.is_module else obj.module
    if target.startswith("."):
        # Relative to the package, as a relative import is.
        rest = target.lstrip(".")
        base = module.path if module.is_init_module else module.path.rpartition(".")[0]
        for _ in range(len(target) - len(rest) - 1):
            base = base.rpartition(".")[0]
        candidates = [f"{base}.{rest}"]
    else:
        # In the object's scopes, innermost first, then as an absolute path.
        candidates, scope = [], obj
        while scope is not None:
            candidates.append(f"{scope.path}.{target}")
            scope = scope.parent  # type: ignore[assignment]
        candidates.append(target)
    for candidate in candidates:
        found = _lookup(candidate, objects)
        if found:
            return found
    # Sphinx's last resort for a dotted name: the one object whose path ends with it.
    suffix = "." + target.lstrip(".")
    matches = [path for path in objects if path.endswith(suffix)]
    return matches[0] if len(matches) == 1 else None


def _lookup(path: str, objects: dict[str, Object]) -> str | None:
    """The canonical path of the object at ``path`` (through imports), if griffe has it."""
    if path in objects:
        return path
    parent, _, name = path.rpartition(".")
    owner = objects.get(parent)
    if owner is None or name not in owner.members:
        return None
    member = owner.members[name]
    if member.is_alias:
        try:
            final = member.final_target.path  # type: ignore[union-attr]
        except Exception:  # an external object (os.replace): no page to link to
            return None
        return final if final in objects else None
    return member.path


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
