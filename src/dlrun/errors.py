"""The errors dlrun raises for user mistakes; the CLI turns each into one stderr message."""

from __future__ import annotations


class DlrunError(Exception):
    """Base class: a problem the user can act on, reported without a traceback."""

    exit_code = 1


class ConfigError(DlrunError, ValueError):
    """The config (file, `--set` override or a value that replaces one of its keys) is invalid (a ValueError, like Keras'
    own "Could not interpret ... identifier" errors)."""

    exit_code = 2

    def __init__(self, problems: list[str] | str, source: str | None = None):
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        self.source = source
        super().__init__(self._render())

    def _render(self) -> str:
        header = f"invalid config {self.source}" if self.source else "invalid config"
        if len(self.problems) == 1:
            return f"{header}: {self.problems[0]}"
        lines = [f"{header} ({len(self.problems)} problems):"]
        lines.extend(f"  {problem}" for problem in self.problems)
        return "\n".join(lines)


class UsageError(DlrunError, ValueError):
    """A command-line mistake: an argument or option value, or options that do not go together (like Click's
    `BadParameter`); the config itself may be fine."""

    exit_code = 2


class DataError(DlrunError):
    """A dataset could not be found, read or used as configured."""

    exit_code = 2


class RunError(DlrunError):
    """A run folder is missing, unusable, or could not be written."""

    exit_code = 2


class TrainingFailed(DlrunError):
    """Training stopped on an error; the run folder records it as failed."""

    exit_code = 1
    traceback: str | None = None  # a worker's own traceback (it failed unexpectedly), recorded in run.json


class TrialPruned(DlrunError):
    """A sweep's pruner stopped the trial as hopeless after `step` `number` (epoch 3; or fold 2, seed 2 for a
    trial trained in parts); its run folder records it as pruned, `{step: number, "reason": ...}`."""

    exit_code = 1

    def __init__(self, number: int, reason: str, step: str = "epoch"):
        self.number, self.reason, self.step = number, reason, step
        super().__init__(f"pruned after {step} {number}: {reason}")

    def record(self) -> dict:
        """What run.json and sweep.json say of it: `{"epoch": 3, "reason": ...}` (or "fold", "seed")."""
        return {self.step: self.number, "reason": self.reason}


class Interrupted(DlrunError):
    """The user interrupted the work (Ctrl-C or SIGTERM); what was written is kept."""

    exit_code = 130


class PluginError(DlrunError):
    """A plug-in (a dataset or architecture another distribution registers) cannot be used."""

    exit_code = 2
