"""MkDocs hooks for the documentation site (mkdocs.yml names this file under `hooks:`).

The pages link to source files the way a reader on GitHub follows them, relative to the page
(`../src/dlrun/cli.py`). Those files are outside docs/, so MkDocs cannot copy them into the site and its
strict build would fail on every such link. This hook rewrites each of them before MkDocs checks links:
to the file in the repository when mkdocs.yml sets `repo_url`, else to its plain text. A link to a file
that does not exist is a warning, so `mkdocs build --strict` still fails on it.
"""

from __future__ import annotations

import posixpath
import re
from pathlib import Path

from mkdocs.plugins import get_plugin_logger

log = get_plugin_logger("dlrun")
_LINK = re.compile(r"\[(?P<text>[^\]]+)\]\((?P<target>[^)\s]+)\)")
_FENCE = re.compile(r"^\s*(```|~~~)")


def on_page_markdown(markdown: str, page, config, files) -> str:
    """Rewrite the page's links that leave docs/ (fenced code blocks are left alone)."""
    docs_dir = Path(config["docs_dir"]).resolve()
    root = docs_dir.parent
    page_folder = posixpath.dirname(page.file.src_uri)
    out, fenced = [], False
    for line in markdown.split("\n"):
        if _FENCE.match(line):
            fenced = not fenced
        if not fenced:
            line = _LINK.sub(lambda match: _rewrite(match, page_folder, root, config, page.file.src_uri), line)
        out.append(line)
    return "\n".join(out)


def _rewrite(match: re.Match, page_folder: str, root: Path, config, source: str) -> str:
    target = match["target"]
    if "://" in target or target.startswith(("#", "/", "mailto:")):
        return match[0]
    path, _, anchor = target.partition("#")
    resolved = posixpath.normpath(posixpath.join("docs", page_folder, path))
    if resolved == "docs" or resolved.startswith("docs/"):
        return match[0]  # a page or file inside docs/: MkDocs checks it
    if resolved.startswith("..") or not (root / resolved).exists():
        log.warning(f"Doc file '{source}' links to '{target}', which is not a file of the repository ({resolved})")
        return match[0]
    repo_url = config.get("repo_url")
    if not repo_url:
        return match["text"]
    return f"[{match['text']}]({repo_url.rstrip('/')}/blob/main/{resolved}{'#' + anchor if anchor else ''})"
