"""An MkDocs hook: links from a page to repository files outside ``docs/``.

The pages are read on the forge too, where ``[`examples/fewshot.py`](../../src/...)`` opens
the source; the site holds no copy of the sources, so there the link would be broken. This
hook keeps the link's text and drops the link, after checking that the file exists: a
link to a file that is not in the repository is still a warning, and fails a strict build.

Loaded by mkdocs.yml (``hooks:``).
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

log = logging.getLogger("mkdocs.hooks.repo_links")

LINK = re.compile(r"(?<!!)\[(?P<text>[^\]]+)\]\((?P<target>[^)\s#]+)(?P<anchor>#[^)\s]*)?\)")
FENCE = re.compile(r"^\s*(```|~~~)")


def on_page_markdown(markdown: str, *, page: Any, config: Any, files: Any, **kwargs: Any) -> str:
    docs = Path(config["docs_dir"]).resolve()
    here = (docs / page.file.src_uri).parent

    def unlink(match: re.Match[str]) -> str:
        target = match["target"]
        if re.match(r"[a-z][a-z0-9+.-]*:", target):  # http:, mailto:, ...
            return match[0]
        resolved = (here / target).resolve()
        if resolved.is_relative_to(docs):
            return match[0]  # a page or picture of the site: MkDocs checks it
        if not resolved.exists():
            log.warning("Doc file '%s' links to '%s', which is not in the repository", page.file.src_uri, target)
        return match["text"]

    out, fenced = [], False
    for line in markdown.split("\n"):
        if FENCE.match(line):
            fenced = not fenced
        out.append(line if fenced else LINK.sub(unlink, line))
    return "\n".join(out)
