"""MkDocs hooks for the documentation site (mkdocs.yml names this file under `hooks:`).

The pages link to source files the way a reader on GitHub follows them, relative to the page
(`../src/dlrun/cli.py`). Those files are outside docs/, so MkDocs cannot copy them into the site and its
strict build would fail on every such link. This hook rewrites each of them before MkDocs checks links:
to the file in the repository when mkdocs.yml sets `repo_url`, else to its plain text. A link to a file
that does not exist is left as it is, so MkDocs reports it and `mkdocs build --strict` fails on it.
"""

from __future__ import annotations

import posixpath
import re
from pathlib import Path

_LINK = re.compile(r"\[(?P<text>[^\]]+)\]\((?P<target>[^)\s]+)\)")
_FENCE = re.compile(r"^\s*(```|~~~)")


def on_page_markdown(markdown: str, page, config, files) -> str:
    """Rewrite the page's links that leave docs/ (fenced code blocks are left alone)."""
    docs_dir = Path(config["docs_dir"]).resolve()
    page_folder = posixpath.join(docs_dir.name, posixpath.dirname(page.file.src_uri))  # relative to the repository
    out, fenced = [], False
    for line in markdown.split("\n"):
        if _FENCE.match(line):
            fenced = not fenced
        if not fenced:
            line = _LINK.sub(lambda match: _rewrite(match, page_folder, docs_dir, config), line)
        out.append(line)
    return "\n".join(out)


def _rewrite(match: re.Match, page_folder: str, docs_dir: Path, config) -> str:
    target = match["target"]
    if "://" in target or target.startswith(("#", "/", "mailto:")):
        return match[0]
    path, _, anchor = target.partition("#")
    resolved = posixpath.normpath(posixpath.join(page_folder, path))
    if resolved == docs_dir.name or resolved.startswith(docs_dir.name + "/"):
        return match[0]  # a page or file inside docs/: MkDocs checks it
    if resolved.startswith("..") or not (docs_dir.parent / resolved).exists():
        return match[0]  # MkDocs reports it as not found
    repo_url = config.get("repo_url")
    if not repo_url:
        return match["text"]
    return f"[{match['text']}]({repo_url.rstrip('/')}/blob/main/{resolved}{'#' + anchor if anchor else ''})"
