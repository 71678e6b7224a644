"""Write docs/cli.md, the CLI reference, from the Typer app (`make docs`); tests/test_docs.py keeps it current."""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    sys.path.insert(0, str(ROOT / "src"))  # this checkout's dlrun, also without an editable install
    import typer

    from dlrun import atomic, cli
    from dlrun.commands import reference

    target = ROOT / reference.DOCS_FILE
    atomic.write_text(target, reference.render(typer.main.get_command(cli.app)))
    print(f"wrote {target}")


if __name__ == "__main__":
    main()
