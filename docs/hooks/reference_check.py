"""An MkDocs hook: every module of the package has a ``::: module`` block on some page.

A module added to ``src/learning_diagrams`` and left out of the API reference is a warning
(so a strict build fails, as it does for a page left out of the navigation), naming the
module. The runnable examples are documented by their pages in ``docs/examples/`` instead.

Loaded by mkdocs.yml (``hooks:``).
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

log = logging.getLogger("mkdocs.hooks.reference_check")

PACKAGE = "learning_diagrams"
NOT_IN_REFERENCE = ("learning_diagrams.examples", "learning_diagrams.__main__")
BLOCK = re.compile(r"^:::\s+([\w.]+)", re.MULTILINE)


def on_files(files: Any, *, config: Any, **kwargs: Any) -> Any:
    rendered = set()
    for file in files.documentation_pages():
        rendered.update(BLOCK.findall(file.content_string))
    root = Path(config.config_file_path).parent / "src"
    modules = set()
    for path in (root / PACKAGE).rglob("*.py"):
        parts = path.relative_to(root).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        if not any(p.startswith("_") for p in parts):
            modules.add(".".join(parts))
    missing = sorted(m for m in modules - rendered if not m.startswith(NOT_IN_REFERENCE))
    if missing:
        log.warning(
            "modules with no '::: module' block on any page (add them to docs/reference/): %s", ", ".join(missing)
        )
    return files
