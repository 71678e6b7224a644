"""Live progress of independent trials (folds, sweep trials) that may run at once: one bar per running
trial, and one printed line as each ends."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rich import progress as rich_progress

if TYPE_CHECKING:
    from rich.console import Console


class TrialProgress:
    """`fold 2/4  epoch 37/80  ━━━━━━  val_mae 2.4100  0:00:05` per running trial (transient bars)."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.progress = rich_progress.Progress(
            rich_progress.TextColumn("[bold]{task.fields[label]}"),
            rich_progress.TextColumn("epoch {task.completed}/{task.total}"),
            rich_progress.BarColumn(),
            rich_progress.TextColumn("{task.fields[latest]}"),
            rich_progress.TimeElapsedColumn(),
            console=console,
            transient=True,
        )
        self.tasks: dict = {}

    def __enter__(self) -> TrialProgress:
        self.progress.start()
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.progress.stop()

    def epoch(self, key: Any, label: str, epoch: int, epochs: int, latest: str = "") -> None:
        """Trial `key` finished `epoch` of `epochs`."""
        if key not in self.tasks:
            self.tasks[key] = self.progress.add_task("trial", total=epochs, label=label, latest="")
        self.progress.update(self.tasks[key], completed=epoch, total=epochs, latest=latest, label=label)

    def say(self, line: str) -> None:
        """Print `line` above the bars."""
        self.progress.console.print(line, highlight=False, soft_wrap=True)

    def finish(self, key: Any, line: str) -> None:
        """Trial `key` ended: drop its bar and print `line` above the others."""
        task = self.tasks.pop(key, None)
        if task is not None:
            self.progress.remove_task(task)
        self.say(line)
