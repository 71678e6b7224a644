"""The HTML pieces of the run report (`dlrun.runs.report`): escaping, embedded figures, tables, cells."""

from __future__ import annotations

import base64
import html
import json
import string
from pathlib import Path
from typing import Any

IMAGE_TYPES = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".gif": "image/gif"}


def escape(value: Any) -> str:
    """HTML-escape any value (quotes too, so it is safe inside attributes)."""
    return html.escape(str(value), quote=True)


def figure(path: Path, caption: str) -> str:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    kind = IMAGE_TYPES[path.suffix.lower()]
    return f'<figure><img src="data:{kind};base64,{data}" alt="{escape(caption)}"><figcaption>{escape(caption)}</figcaption></figure>'


def table(headers: list[str], rows: list[list[str]], header: bool = True) -> str:
    """An HTML table; cells are escaped already. A cell starting with `<td` or `<th` is used as it is."""
    head = "<tr>" + "".join(f"<th>{cell}</th>" for cell in headers) + "</tr>" if header else ""
    body = "".join(
        "<tr>" + "".join(cell if cell.startswith(("<td", "<th")) else f"<td>{cell}</td>" for cell in row) + "</tr>" for row in rows
    )
    return f"<table>{head}{body}</table>"


def status(status: str | None) -> str:
    text = escape(status or "unknown")
    return f'<td><span class="status-{text}">{text}</span>'


def number(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return "" if value is None else str(value)
    return f"{value:,}" if isinstance(value, int) else f"{value:.4f}"


def cell(value: Any) -> str:
    return json.dumps(value) if isinstance(value, (dict, list)) or value is None else str(value)


# The page around a report's body: self-contained (styles inline, no scripts, no fonts to fetch).
PAGE = string.Template("""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>$title</title>
<style>
body { font-family: system-ui, sans-serif; margin: 1.5rem auto; max-width: 1200px; padding: 0 1rem; color: #222; }
h1 { font-size: 1.5rem; } h2 { border-bottom: 2px solid #ccd; padding-bottom: .2rem; margin-top: 2.5rem; }
h3 { margin-top: 1.5rem; }
table { border-collapse: collapse; margin: .5rem 0; font-size: .9rem; }
th, td { border: 1px solid #ccd; padding: .25rem .6rem; text-align: left; vertical-align: top; }
th { background: #eef; } td.number { text-align: right; font-variant-numeric: tabular-nums; }
.status-completed { color: #070; font-weight: bold; } .status-failed, .status-crashed { color: #b00; font-weight: bold; }
.status-interrupted, .status-running { color: #a60; font-weight: bold; } .status-pruned { color: #808; font-weight: bold; }
.better { color: #070; } .worse { color: #b00; }
figure { display: inline-block; margin: .5rem; vertical-align: top; }
figure img { max-width: 560px; border: 1px solid #ddd; } figcaption { font-size: .8rem; color: #555; }
pre { background: #f6f6fa; padding: .75rem; overflow-x: auto; font-size: .85rem; }
details { margin: .5rem 0; } summary { cursor: pointer; font-weight: bold; }
.note { color: #555; font-size: .9rem; }
</style>
</head>
<body>
$body
</body>
</html>
""")
