"""The documentation: the MkDocs site builds strictly, covers every command and config section, its CLI
reference is current, it renders in a real headless Chromium, and the README stays short and says nothing twice."""

from __future__ import annotations

import functools
import http.server
import os
import re
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import typer

from dlrun import cli
from dlrun.commands import reference
from dlrun.config import docs as config_docs
from tests.conftest import ROOT, invoke

DOCS = ROOT / "docs"
README = ROOT / "README.md"
README_LINES_AT_MOST = 200
GENERATED = {"cli.md", "config.md", "architecture.md"}  # written by tools/cli_reference.py, dlrun config docs, tests.test_architecture
FENCE = re.compile(r"^\s*(```|~~~)")


def _pages() -> dict[str, str]:
    return {path.name: path.read_text(encoding="utf-8") for path in sorted(DOCS.glob("*.md"))}


def _topic_text() -> str:
    """Every hand-written page: what explains a command or a config section to a reader."""
    return "\n".join(text for name, text in _pages().items() if name not in GENERATED)


def _outside_fences(text: str) -> list[str]:
    lines, fenced = [], False
    for line in text.splitlines():
        if FENCE.match(line):
            fenced = not fenced
            lines.append("")
        else:
            lines.append("" if fenced else line)
    return lines


def headings(text: str) -> list[str]:
    return [line.strip() for line in _outside_fences(text) if re.match(r"#{1,6} ", line)]


def paragraphs(text: str) -> list[str]:
    """Prose blocks (not code, tables, headings or comments), whitespace normalised; short ones left out."""
    blocks = re.split(r"\n\s*\n", "\n".join(_outside_fences(text)))
    found = []
    for block in blocks:
        block = " ".join(block.split())
        if len(block) >= 60 and not block.startswith(("#", "|", "<!--", "--8<--")):
            found.append(block)
    return found


def _repeated(items: list[str]) -> list[str]:
    return sorted({item for item in items if items.count(item) > 1})


# --- the README -------------------------------------------------------------------------------------------


def test_the_readme_is_short_and_says_nothing_twice():
    text = README.read_text(encoding="utf-8")
    assert len(text.splitlines()) <= README_LINES_AT_MOST, "the README is the front door; topics go in docs/"
    assert _repeated(headings(text)) == []
    assert _repeated(paragraphs(text)) == []


def test_the_readme_links_to_files_that_exist():
    text = README.read_text(encoding="utf-8")
    links = [target.split("#")[0] for target in re.findall(r"\]\(([^)\s]+)\)", text) if "://" not in target]
    assert links, "the README points at the docs"
    assert [link for link in links if link and not (ROOT / link).exists()] == []


def test_the_readme_example_config_is_valid(tmp_path):
    text = README.read_text(encoding="utf-8")
    (example,) = re.findall(r"```yaml\n(.*?)```", text, flags=re.S)
    name = re.search(r"^dlrun config validate (\S+)", text, flags=re.M)[1]
    (tmp_path / name).write_text(example, encoding="utf-8")
    result = invoke("config", "validate", tmp_path / name)
    assert result.exit_code == 0, result.output


def test_no_page_repeats_a_heading_and_no_paragraph_is_written_twice():
    pages = _pages()
    assert {name: _repeated(headings(text)) for name, text in pages.items() if _repeated(headings(text))} == {}
    everywhere = [paragraph for name, text in pages.items() if name not in GENERATED for paragraph in paragraphs(text)]
    everywhere += paragraphs(README.read_text(encoding="utf-8"))
    assert _repeated(everywhere) == []


def test_no_page_has_text_that_markdown_would_take_for_an_html_tag():
    """`<name>` outside code is swallowed as an unknown HTML tag: the reader sees nothing (write it in backticks)."""
    found = []
    for name, text in [*_pages().items(), ("README.md", README.read_text(encoding="utf-8"))]:
        for number, line in enumerate(_outside_fences(text), start=1):
            prose = re.sub(r"`[^`]*`", "", line)
            if re.search(r"<[A-Za-z/]", prose) and not prose.lstrip().startswith("<!--"):
                found.append(f"{name}:{number}: {line.strip()}")
    assert found == []


def test_the_duplicate_checks_catch_a_repeated_section():
    section = "## Evaluating\n\nEvery evaluation reports the naive baseline on the same split next to the model.\n\n"
    text = "# dlrun\n\n" + section + "```\n## not a heading\n```\n" + section
    assert _repeated(headings(text)) == ["## Evaluating"]
    assert _repeated(paragraphs(text)) == ["Every evaluation reports the naive baseline on the same split next to the model."]


# --- what the pages cover -----------------------------------------------------------------------------------


def _app():
    return typer.main.get_command(cli.app)


def test_the_cli_reference_is_current():
    shipped = (ROOT / reference.DOCS_FILE).read_text(encoding="utf-8")
    assert shipped == reference.render(_app()), "run `make docs` (python tools/cli_reference.py)"


def test_the_cli_reference_names_every_command_argument_and_option():
    text = reference.render(_app())
    sections = dict(re.findall(r"^## `([^`]+)` \{#[^}]+\}\n(.*?)(?=^## |\Z)", text, flags=re.M | re.S))

    def walk(command, context):
        assert context.command_path in sections, context.command_path
        for parameter in command.get_params(context):
            shown_as = (
                [parameter.metavar or parameter.name.upper()]
                if parameter.param_type_name == "argument"
                else [*parameter.opts, *parameter.secondary_opts]
            )  # an argument as its help shows it: CONFIG, RUN_DIR...
            for name in [name.strip("[].") for name in shown_as]:
                if name not in ("--help", "-h") and not parameter.hidden:
                    shown = re.search(rf"`[^`]*{re.escape(name)}\b", sections[context.command_path], flags=re.I)  # CONFIG_FILE
                    assert shown, (context.command_path, name)
        for name in getattr(command, "list_commands", lambda _: [])(context):
            walk(command.get_command(context, name), typer.Context(command.get_command(context, name), info_name=name, parent=context))

    root = _app()
    walk(root, typer.Context(root, info_name="dlrun"))
    assert len(sections) == len(reference.commands(root)) >= 20


def test_the_cli_reference_escapes_markup_and_leaves_out_hidden_commands():
    app = typer.Typer(help="A tiny app.")
    group = typer.Typer(help="A group.")
    app.add_typer(group, name="group")

    @app.command("shown")
    def shown(out: str = typer.Option("x", "--out", metavar="DIR", help="Write under DIR/<kind>/ (`a|b` or *all*).")):
        """First paragraph.

        Second paragraph, kept apart."""

    @app.command("secret", hidden=True)
    def secret():
        """Never listed."""

    @group.command("leaf")
    def leaf(path: str = typer.Argument(..., help="A path.")):
        """A leaf command."""

    text = reference.render(typer.main.get_command(app), name="tiny")
    assert reference.commands(typer.main.get_command(app), name="tiny") == ["tiny", "tiny shown", "tiny group", "tiny group leaf"]
    assert "secret" not in text
    markdown = pytest.importorskip("markdown", reason="Python-Markdown comes with mkdocs (pip install -e '.[dev]')")
    html = markdown.markdown(text, extensions=["tables", "attr_list"])  # what MkDocs makes of it: markup shown as text
    assert "<td><code>--out DIR</code></td>\n<td>Write under DIR/&lt;kind&gt;/ (<code>a|b</code> or *all*). [default: x]</td>" in html
    assert "First paragraph.\n\nSecond paragraph, kept apart.\n" in text
    assert "| [`tiny group leaf`](#tiny-group-leaf) | A leaf command. |" in text and "## `tiny group leaf` {#tiny-group-leaf}" in text


def test_every_command_is_explained_on_a_topic_page():
    text = _topic_text()
    missing = [path for path in reference.commands(_app())[1:] if not re.search(rf"\b{re.escape(path)}\b", text)]
    assert missing == [], "say on a page in docs/ what these commands are for"


def test_every_config_section_and_name_is_explained_on_a_topic_page():
    """Derived from the schema (the config reference's tables): each section key and each name that picks a table."""
    text = _topic_text()
    wanted = set()
    for heading in re.findall(r"^## (.+)$", config_docs.render(), flags=re.M):
        path, _, tag = heading.partition(" (")
        path = path.removesuffix(".KEY.PATH")  # a mapping keyed by config paths (search.space): its name is the section
        if path != "top level":
            wanted.add(path.split(".")[-1])
        if tag:
            wanted.add(tag.rstrip(")").split(": ")[1])
    wanted |= set(re.findall(r"^\| `(\w+)` \|", config_docs.render().split("\n## ")[1], flags=re.M))  # top-level keys
    assert len(wanted) >= 30
    missing = sorted(name for name in wanted if not re.search(rf"`{name}`|\b{name}:|\.{name}\b", text))
    assert missing == [], "say on a page in docs/ what these config sections and names are"


# --- the site -----------------------------------------------------------------------------------------------


def _mkdocs(project: Path, site: Path) -> subprocess.CompletedProcess:
    pytest.importorskip("mkdocs", reason="mkdocs is not installed (pip install -e '.[dev]')")
    pytest.importorskip("material", reason="mkdocs-material is not installed (pip install -e '.[dev]')")
    command = [sys.executable, "-m", "mkdocs", "build", "--strict", "--config-file", str(project / "mkdocs.yml"), "--site-dir", str(site)]
    return subprocess.run(
        command,
        cwd=site.parent,  # not the project: paths in mkdocs.yml must not depend on where it runs
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    target = tmp_path_factory.mktemp("site")
    built = _mkdocs(ROOT, target)
    assert built.returncode == 0, built.stderr
    assert "WARNING" not in built.stderr, built.stderr
    return target


@pytest.fixture
def project_copy(tmp_path) -> Path:
    """The repository with a copy of docs/ and mkdocs.yml to break, everything else linked."""
    copy = tmp_path / "project"
    copy.mkdir()
    for entry in ROOT.iterdir():
        if entry.name in ("docs", "mkdocs.yml"):
            continue
        (copy / entry.name).symlink_to(entry)
    shutil.copytree(DOCS, copy / "docs")
    shutil.copy(ROOT / "mkdocs.yml", copy / "mkdocs.yml")
    return copy


def test_the_site_builds_strict_with_every_page(site):
    nav = re.findall(r":\s+(\S+\.md)\s*$", (ROOT / "mkdocs.yml").read_text(encoding="utf-8"), flags=re.M)
    assert sorted(nav) == sorted(_pages())
    for page in nav:
        assert (site / ("index.html" if page == "index.md" else page.removesuffix(".md") + "/index.html")).is_file(), page
    benchmarks = (site / "benchmarks" / "index.html").read_text(encoding="utf-8")
    for heading in re.findall(r"^## (\w[^`(\n]*)", (ROOT / "BENCHMARKS.md").read_text(encoding="utf-8"), flags=re.M):
        assert heading.strip() in benchmarks, heading  # BENCHMARKS.md is included, not copied


BREAKAGES = {  # page -> text added to it: what the strict build must report
    "orphan.md": ("# Orphan\n\nNo page links here and the nav does not name it.\n", "orphan.md"),
    "index.md": ("\n[a broken anchor](configs.md#no-such-heading)\n", "does not contain an anchor '#no-such-heading'"),
    "configs.md": ("\n[a missing page](no-such-page.md)\n", "no-such-page.md"),
    "sweeps.md": ("\n[a missing source file](../src/dlrun/no_such_module.py)\n", "no_such_module.py"),
}


def test_an_orphan_page_a_broken_anchor_or_link_fails_the_strict_build(project_copy, tmp_path):
    """One build with every breakage (a build takes seconds): each must be reported, and the build must fail."""
    for name, (text, _) in BREAKAGES.items():
        page = project_copy / "docs" / name
        page.write_text((page.read_text(encoding="utf-8") if page.exists() else "") + text, encoding="utf-8")
    built = _mkdocs(project_copy, tmp_path / "site")
    assert built.returncode != 0
    warnings = [record for record in re.split(r"\n(?=[A-Z]+ +- )", built.stderr) if record.startswith("WARNING")]
    for _, expected in BREAKAGES.values():
        assert any(expected in warning for warning in warnings), (expected, built.stderr)


@pytest.mark.parametrize("repo_url", ["https://example.org/dlrun", None])
def test_links_to_source_files_point_at_the_repository_or_are_plain_text(project_copy, tmp_path, repo_url):
    config = project_copy / "mkdocs.yml"
    lines = [line for line in config.read_text(encoding="utf-8").splitlines() if not line.startswith("repo_url:")]
    config.write_text("\n".join([*lines, f"repo_url: {repo_url}" if repo_url else "", ""]), encoding="utf-8")
    built = _mkdocs(project_copy, tmp_path / "site")
    assert built.returncode == 0, built.stderr
    page = (tmp_path / "site" / "architecture" / "index.html").read_text(encoding="utf-8")
    if repo_url:
        assert f'href="{repo_url}/blob/main/src/dlrun/cli.py"' in page
    else:
        assert "<li><code>dlrun.cli</code>: The <code>dlrun</code> command line" in page  # the link text stays
        assert not re.search(r'href="[^"]*src/dlrun', page)


@pytest.fixture(scope="module")
def served(site):
    """The built site over HTTP on localhost (Material's search and navigation expect a server, not file:)."""
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(site))
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize(
    "page, screenshot, images_at_least", [("", "home.png", 1), ("evaluation/", "evaluation.png", 0), ("cli/", "cli.png", 0)]
)
def test_pages_render_in_chromium(browser, served, tmp_path, page, screenshot, images_at_least):
    tab = browser.new_page(viewport={"width": 1280, "height": 900})
    events: list[str] = []
    tab.on("console", lambda message: events.append(f"console {message.type}: {message.text}"))
    tab.on("pageerror", lambda error: events.append(f"page error: {error}"))
    tab.on("requestfailed", lambda request: events.append(f"failed: {request.url}"))
    tab.on("request", lambda request: None if request.url.startswith((served, "data:")) else events.append(f"request: {request.url}"))
    response = tab.goto(f"{served}/{page}", wait_until="networkidle")
    assert response is not None and response.status == 200
    tab.screenshot(path=str(tmp_path / screenshot), full_page=True)
    assert (tmp_path / screenshot).stat().st_size > 10_000
    assert events == []  # no console message, no script error, nothing fetched from outside the site (fonts: off)
    widths = tab.evaluate("Array.from(document.images, image => image.complete ? image.naturalWidth : 0)")
    assert len(widths) >= images_at_least and all(width > 0 for width in widths), widths
    assert tab.locator("nav.md-nav--primary").count() >= 1  # Material's navigation rendered
    assert "dlrun" in tab.title()
