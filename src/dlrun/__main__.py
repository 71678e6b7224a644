"""`python -m dlrun` runs the same CLI as the `dlrun` console script."""

from dlrun import cli

if __name__ == "__main__":
    cli.main()
