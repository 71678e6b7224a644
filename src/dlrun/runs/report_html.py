"""The HTML pieces of the run report (`dlrun.runs.report`): escaping, embedded figures, tables, cells."""

from __future__ import annotations

import base64
import html
import json
from pathlib import Path

IMAGE_TYPES = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".gif": "image/gif"}


def escape(value) -> str:
    """HTML-escape any value (quotes too, so it is safe inside attributes)."""
    return html.escape(str(value), quote=True)


def figure(path: Path, caption: str) -> str:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    kind = IMAGE_TYPES[path.suffix.lower()]
    return (f'<figure><img src="data:{kind};base64,{data}" alt="{escape(caption)}">'
            f"<figcaption>{escape(caption)}</figcaption></figure>")


def table(headers: list[str], rows: list[list[str]], header: bool = True) -> str:
    """An HTML table; cells are escaped already. A cell starting with `<td` or `<th` is used as it is."""
    head = "<tr>" + "".join(f"<th>{cell}</th>" for cell in headers) + "</tr>" if header else ""
    body = "".join("<tr>" + "".join(cell if cell.startswith(("<td", "<th")) else f"<td>{cell}</td>" for cell in row) + "</tr>"
                   for row in rows)
    return f"<table>{head}{body}</table>"


def status(status) -> str:
    text = escape(status or "unknown")
    return f'<td><span class="status-{text}">{text}</span>'


def number(value) -> str:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return "" if value is None else str(value)
    return f"{value:,}" if isinstance(value, int) else f"{value:.4f}"


def cell(value) -> str:
    return json.dumps(value) if isinstance(value, (dict, list)) or value is None else str(value)
