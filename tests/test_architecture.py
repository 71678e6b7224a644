"""The house's shape: imports point one way down the layers, no cycles (function-level imports
included), a small top level, short modules, and docs/architecture.md generated from the docstrings."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

SOURCE = ROOT / "src" / "dlrun"
ARCHITECTURE = ROOT / "docs" / "architecture.md"

# From the top down: a module may import its own package and anything in a lower layer, nothing above
# and nothing beside it (two packages of one layer do not import each other).
LAYERS = [
    ["__main__"],
    ["cli"],
    ["commands"],
    ["trials", "inference", "visualize"],
    ["training"],
    ["models", "runs"],
    ["data", "config"],
    ["backend"],
    ["registry", "atomic", "terminal", "signals", "plugins", "examples"],
    ["dlrun", "errors"],  # dlrun: the package's __init__ (its version)
]
TOP_LEVEL_MODULES_AT_MOST = 12
LINES_AT_MOST = 400


def _modules() -> dict[str, Path]:
    found = {}
    for path in sorted(SOURCE.rglob("*.py")):
        parts = path.relative_to(SOURCE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


def _imports(path: Path, modules: dict[str, Path]) -> set[str]:
    """Every dlrun module `path` imports, at module level or inside functions."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "dlrun":
            for alias in node.names:
                full = f"{node.module}.{alias.name}"
                found.add(full if full in modules else node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.split(".")[0] == "dlrun")
    return found


def _group(module: str) -> str:
    """The top-level package or module a dotted name belongs to (`dlrun.trials.kfold` -> `trials`)."""
    parts = module.split(".")
    return "dlrun" if len(parts) == 1 else parts[1]


def _layer(group: str) -> int:
    for depth, names in enumerate(LAYERS):
        if group in names:
            return depth
    raise AssertionError(f"{group} is in no layer of LAYERS: place it there")


def test_every_import_points_down_the_layers():
    modules = _modules()
    wrong = []
    for name, path in modules.items():
        source = _group(name)
        for target in _imports(path, modules):
            destination = _group(target)
            if destination == source:
                continue
            if _layer(destination) <= _layer(source):
                wrong.append(f"{name} imports {target} ({source} -> {destination})")
    assert wrong == []


def test_no_import_cycles_not_even_through_function_level_imports():
    modules = _modules()
    graph = {name: {target for target in _imports(path, modules) if target != name} for name, path in modules.items()}
    # A package's __init__ importing its own modules is how a package is built, not a cycle.
    for name in graph:
        if modules[name].name == "__init__.py":
            graph[name] = {target for target in graph[name] if not target.startswith(name + ".")}
    state: dict[str, str] = {}
    cycles = []

    def visit(node: str, trail: list[str]) -> None:
        state[node] = "open"
        for target in sorted(graph.get(node, ())):
            if state.get(target) == "open":
                cycles.append(" -> ".join(trail[trail.index(target) :] + [target]))
            elif target not in state:
                visit(target, [*trail, target])
        state[node] = "done"

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])
    assert cycles == []


def test_the_top_level_is_small_and_modules_are_short():
    top = sorted(path.name for path in SOURCE.glob("*.py"))
    assert len(top) <= TOP_LEVEL_MODULES_AT_MOST, top
    long = {
        str(path.relative_to(SOURCE)): count
        for path in SOURCE.rglob("*.py")
        if (count := len(path.read_text(encoding="utf-8").splitlines())) > LINES_AT_MOST
    }
    assert long == {}


def test_every_module_and_package_says_what_it_holds():
    missing = [name for name, path in _modules().items() if not ast.get_docstring(ast.parse(path.read_text(encoding="utf-8")))]
    assert missing == []


def _ruff(*arguments: str) -> subprocess.CompletedProcess:
    ruff = shutil.which("ruff") or str(Path(sys.executable).parent / "ruff")
    if not Path(ruff).exists():
        pytest.skip("ruff is not installed (it comes with the dev extra: pip install -e '.[dev]')")
    return subprocess.run([ruff, *arguments, "src", "tests", "benchmarks", "tools"], cwd=ROOT, capture_output=True, text=True)


def test_ruff_finds_nothing():
    """`ruff check` with the rules pyproject.toml selects (pycodestyle errors, pyflakes, import order, pyupgrade)."""
    found = _ruff("check")
    assert found.returncode == 0, found.stdout + found.stderr


def test_the_code_is_in_ruff_format():
    """`ruff format --check` at pyproject.toml's line length: `make format` rewrites what this finds."""
    found = _ruff("format", "--check")
    assert found.returncode == 0, found.stdout + found.stderr


def render() -> str:
    """docs/architecture.md: the layers from the top down, each package with its modules' first docstring lines."""
    modules = _modules()
    lines = [
        "# Architecture",
        "",
        "Generated from the module docstrings by `python -m tests.test_architecture` (`make docs`); a test",
        "keeps it current. Imports point one way, from the top of this page down: a module imports its own",
        "package and the layers below, never a layer above or a package beside it, and there are no import",
        "cycles (tests/test_architecture.py). Every command trains through one function,",
        "`dlrun.training.trainer.Training`: K-fold folds, the final refit and sweep trials included.",
        "",
        "## The repository",
        "",
        "The package from the top down (imports point only down this list), then the rest of the repository:",
        "",
        "```",
        "src/dlrun/cli.py, commands/   the Typer app; one thin module per command",
        "src/dlrun/trials/             dlrun kfold and dlrun sweep: plan independent fits, run them on an executor",
        "                              (this process, a pool, Ray Tune), aggregate",
        "src/dlrun/inference/          dlrun predict (and the files it reads), dlrun export",
        "src/dlrun/visualize/          dlrun visualize: curves, activations, filters, Grad-CAM",
        "src/dlrun/training/           the one training function every command uses (trainer.Training), its plan",
        "                              (phases, feature cache), batches, the custom loop, gradients, callbacks,",
        "                              recorders, checkpoints and --resume, compiling, evaluation next to the baseline",
        "src/dlrun/models/, runs/      architectures (build only); run folders, history, runs table, compare,",
        "                              reports, plots, TensorBoard, MLflow",
        "src/dlrun/data/, config/      datasets; the config schema, YAML, --set, JSON schema, docs, dlrun init",
        "src/dlrun/backend.py          the Keras backend: auto choice, quiet import, seeding",
        "src/dlrun/errors.py, atomic.py, registry.py, terminal.py, signals.py   shared by all",
        'tests/                        pytest; `-m "not slow"` skips the end-to-end tests',
        "benchmarks/                   dlrun side by side with plain Keras scripts (benchmarks/reference/); see BENCHMARKS.md",
        "docs/                         the documentation site (mkdocs.yml): a page per topic; config.md, cli.md and",
        "                              architecture.md generated; RELIABILITY.md (each promise and its test)",
        "tools/                        scripts for make: mutation testing, the CLI reference, the site's hooks",
        "```",
        "",
    ]
    for depth, groups in enumerate(LAYERS, start=1):
        lines += [f"## Layer {depth}: {', '.join(f'`{group}`' for group in groups)}", ""]
        for group in groups:
            members = [name for name in modules if _group(name) == group and (group != "dlrun" or name == "dlrun")]
            for name in members:
                docstring = ast.get_docstring(ast.parse(modules[name].read_text(encoding="utf-8"))) or ""
                summary = " ".join(docstring.split("\n\n")[0].split())
                path = modules[name].relative_to(ROOT)
                heading = name if name != "dlrun" else "dlrun (the package)"
                lines.append(f"- [`{heading}`](../{path}): {summary}")
            lines.append("")
    return "\n".join(lines).rstrip("\n") + "\n"


def test_docs_architecture_is_current():
    assert ARCHITECTURE.read_text(encoding="utf-8") == render(), "run: python -m tests.test_architecture"


@pytest.mark.parametrize("link", ["docs/architecture.md"])
def test_the_readme_links_to_the_architecture(link):
    assert f"({link})" in (ROOT / "README.md").read_text(encoding="utf-8")


if __name__ == "__main__":
    ARCHITECTURE.write_text(render(), encoding="utf-8")
    print(f"wrote {ARCHITECTURE}")
